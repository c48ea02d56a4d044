// Line protocol conformance: the InfluxDB line protocol reference, case by case.
#include <gtest/gtest.h>

#include <bit>
#include <string>
#include <vector>

#include "ingest/ingest.h"
#include "ingest/test_render.h"

namespace clisonix::ingest {
namespace {

using testing::render;
using strings = std::vector<std::string>;

constexpr int64_t now = 1'700'000'000'000'000'000;

struct accepted {
    std::string name;
    std::string body;
    strings points;
    precision unit = precision::ns;
};

// Every case is one request; `points` is what the batch holds afterwards, in order.
const std::vector<accepted> accepted_cases = {
    {"float", "m f=1.5 10", {"m f|float|10|1.5"}},
    {"float_without_a_fraction", "m f=1 10", {"m f|float|10|1"}},
    {"float_exponent",
     "m a=1e3,b=-1.5E-3,c=2.5e+2 10",
     {"m a|float|10|1000", "m b|float|10|-0.0015", "m c|float|10|250"}},
    {"float_leading_dot", "m f=.5,g=-.25 10", {"m f|float|10|0.5", "m g|float|10|-0.25"}},
    {"integer", "m f=42i,g=-42i 10", {"m f|integer|10|42", "m g|integer|10|-42"}},
    {"integer_extremes",
     "m a=9223372036854775807i,b=-9223372036854775808i 10",
     {"m a|integer|10|9223372036854775807", "m b|integer|10|-9223372036854775808"}},
    {"unsigned_as_integer",
     "m f=42u,g=9223372036854775807u 10",
     {"m f|integer|10|42", "m g|integer|10|9223372036854775807"}},
    {"booleans_true",
     "m a=t,b=T,c=true,d=True,e=TRUE 10",
     {"m a|boolean|10|true", "m b|boolean|10|true", "m c|boolean|10|true", "m d|boolean|10|true",
      "m e|boolean|10|true"}},
    {"booleans_false",
     "m a=f,b=F,c=false,d=False,e=FALSE 10",
     {"m a|boolean|10|false", "m b|boolean|10|false", "m c|boolean|10|false",
      "m d|boolean|10|false", "m e|boolean|10|false"}},
    {"string", "m s=\"hello world\" 10", {"m s|string|10|\"hello world\""}},
    {"string_empty", "m s=\"\" 10", {"m s|string|10|\"\""}},
    {"string_escaped_quote", R"(m s="say \"hi\"" 10)", {"m s|string|10|\"say \"hi\"\""}},
    {"string_escaped_backslash", R"(m s="a\\b" 10)", {"m s|string|10|\"a\\b\""}},
    {"string_other_backslash_is_literal", R"(m s="a\nb" 10)", {"m s|string|10|\"a\\nb\""}},
    {"string_holds_comma_space_equals",
     "m s=\"a, b=c\",n=1i 10",
     {"m s|string|10|\"a, b=c\"", "m n|integer|10|1"}},
    {"missing_timestamp_is_server_time", "m f=1", {"m f|float|1700000000000000000|1"}},
    {"negative_timestamp", "m f=1 -10", {"m f|float|-10|1"}},
    {"tags", "m,host=a,region=eu f=1 10", {"m,host=a,region=eu f|float|10|1"}},
    {"tags_sorted_by_key",
     "m,region=eu,host=a,az=1 f=1 10",
     {"m,az=1,host=a,region=eu f|float|10|1"}},
    {"measurement_escaped_space_and_comma", R"(my\ m\,x f=1 10)", {R"(my\ m\,x f|float|10|1)"}},
    {"measurement_unescaped_equals", "m=x f=1 10", {"m=x f|float|10|1"}},
    {"measurement_escaped_equals", R"(m\=x f=1 10)", {"m=x f|float|10|1"}},
    {"tag_key_and_value_escapes", R"(m,t\ k=v\,1\=2 f=1 10)", {R"(m,t\ k=v\,1\=2 f|float|10|1)"}},
    {"field_key_escapes", R"(m f\ 1\=x\,y=1 10)", {R"(m f\ 1\=x\,y|float|10|1)"}},
    {"backslash_before_other_characters_is_literal",
     R"(m,path=C:\dir f=1 10)",
     {R"(m,path=C:\\dir f|float|10|1)"}},
    {"escaped_tag_keys_sort_by_their_text",
     R"(m,b=1,a\ z=2 f=1 10)",
     {R"(m,a\ z=2,b=1 f|float|10|1)"}},
    {"unicode", "温度,设备=泵 值=1 10", {"温度,设备=泵 值|float|10|1"}},
    {"four_byte_utf8_and_escapes_next_to_it",
     "m\xF0\x9F\x94\xA5\\ x,t\xC3\xA9=v\xE2\x82\xAC f=1 10",
     {"m\xF0\x9F\x94\xA5\\ x,t\xC3\xA9=v\xE2\x82\xAC f|float|10|1"}},
    // A string value is data: controls are allowed in it (the reference allows them too).
    {"string_value_with_a_tab_and_utf8",
     "m s=\"a\tb \xC3\xA9\" 10",
     {"m s|string|10|\"a\tb \xC3\xA9\""}},
    {"several_lines_share_series",
     "m,d=1 a=1,b=2 10\nm,d=1 a=3,b=4 20",
     {"m,d=1 a|float|10|1", "m,d=1 b|float|10|2", "m,d=1 a|float|20|3", "m,d=1 b|float|20|4"}},
    {"comments_and_blank_lines",
     "# a comment\n\nm f=1 10\n   \n  # indented\n\n",
     {"m f|float|10|1"}},
    {"crlf_line_ends", "m f=1 10\r\nm f=2 20\r\n", {"m f|float|10|1", "m f|float|20|2"}},
    {"leading_and_trailing_spaces",
     "  m f=1 10  \n\tm f=2",
     {"m f|float|10|1", "m f|float|1700000000000000000|2"}},
    {"precision_us", "m f=1 5", {"m f|float|5000|1"}, precision::us},
    {"precision_ms", "m f=1 5", {"m f|float|5000000|1"}, precision::ms},
    {"precision_s", "m f=1 1704067200", {"m f|float|1704067200000000000|1"}, precision::s},
    {"precision_m", "m f=1 2", {"m f|float|120000000000|1"}, precision::m},
    {"precision_h", "m f=1 2", {"m f|float|7200000000000|1"}, precision::h},
    {"precision_does_not_touch_server_time",
     "m f=1",
     {"m f|float|1700000000000000000|1"},
     precision::s},
    {"empty_body", "", {}},
    {"bench_line",
     "telemetry,device=d00042 temperature=54.21,vibration_rms=1.234,rpm=1451 "
     "1704067200000000000",
     {"telemetry,device=d00042 temperature|float|1704067200000000000|54.21",
      "telemetry,device=d00042 vibration_rms|float|1704067200000000000|1.234",
      "telemetry,device=d00042 rpm|float|1704067200000000000|1451"}},
};

class line_protocol_accepts : public ::testing::TestWithParam<accepted> {};

TEST_P(line_protocol_accepts, the_reference_form) {
    const auto& c = GetParam();
    line_parser parser;
    storage::write_batch batch;
    line_options opts;
    opts.unit = c.unit;
    opts.now_ns = now;
    auto st = parser.parse(c.body, opts, batch);
    ASSERT_TRUE(st.ok()) << st.error().message;
    EXPECT_EQ(render(batch), c.points);
}

INSTANTIATE_TEST_SUITE_P(reference, line_protocol_accepts, ::testing::ValuesIn(accepted_cases),
                         [](const auto& info) { return info.param.name; });

struct refused {
    std::string name;
    std::string body;
    std::string code;
    std::string field;
    std::string message;
    precision unit = precision::ns;
};

const std::string bad_temperature =
    "invalid field value for \"temperature\": expected a number, string, boolean or integer";

const std::vector<refused> refused_cases = {
    {"not_a_value", "m f=abc 10", "invalid_argument", "line 1",
     "line 1: invalid field value for \"f\": expected a number, string, boolean or integer"},
    {"third_line_is_bad", "m temperature=1 1\nm temperature=2 2\nm temperature=hot 3",
     "invalid_argument", "line 3", "line 3: " + bad_temperature},
    {"line_numbers_count_comments_and_blanks", "# c\n\nm temperature=x", "invalid_argument",
     "line 3", "line 3: " + bad_temperature},
    {"nan", "m temperature=NaN 10", "invalid_argument", "line 1", "line 1: " + bad_temperature},
    {"inf", "m temperature=inf 10", "invalid_argument", "line 1", "line 1: " + bad_temperature},
    {"negative_inf", "m temperature=-Inf 10", "invalid_argument", "line 1",
     "line 1: " + bad_temperature},
    {"hex", "m temperature=0x10 10", "invalid_argument", "line 1", "line 1: " + bad_temperature},
    {"not_a_boolean", "m temperature=yes 10", "invalid_argument", "line 1",
     "line 1: " + bad_temperature},
    {"boolean_with_tail", "m temperature=truex 10", "invalid_argument", "line 1",
     "line 1: " + bad_temperature},
    {"negative_unsigned", "m temperature=-1u 10", "invalid_argument", "line 1",
     "line 1: " + bad_temperature},
    {"text_after_a_string", "m temperature=\"a\"x 10", "invalid_argument", "line 1",
     "line 1: " + bad_temperature},
    {"float_out_of_range", "m f=1e400 10", "invalid_argument", "line 1",
     "line 1: float out of range for field \"f\""},
    {"integer_out_of_range", "m f=9223372036854775808i 10", "invalid_argument", "line 1",
     "line 1: integer out of range for field \"f\""},
    {"unsigned_beyond_int64", "m f=9223372036854775808u 10", "invalid_argument", "line 1",
     "line 1: unsigned integer for field \"f\" does not fit in a signed 64-bit integer"},
    {"unterminated_string", "m s=\"abc 10", "invalid_argument", "line 1",
     "line 1: unterminated string value for field \"s\""},
    {"newline_inside_a_string", "m f=1 1\nm s=\"a\nb\" 10", "invalid_argument", "line 2",
     "line 2: unterminated string value for field \"s\""},
    {"missing_fields", "m", "invalid_argument", "line 1",
     "line 1: missing fields: expected a space and key=value"},
    {"missing_fields_after_tags", "m,t=1 ", "invalid_argument", "line 1",
     "line 1: missing fields: expected a space and key=value"},
    {"missing_measurement", ",t=1 f=1", "invalid_argument", "line 1",
     "line 1: missing measurement"},
    {"field_without_equals", "m 10", "invalid_argument", "line 1",
     "line 1: invalid field \"10\": expected key=value"},
    {"missing_field_value", "m f= 10", "invalid_argument", "line 1",
     "line 1: missing value for field \"f\""},
    {"missing_field_value_before_comma", "m f=,g=1 10", "invalid_argument", "line 1",
     "line 1: missing value for field \"f\""},
    {"empty_field_key", "m =1 10", "invalid_argument", "line 1", "line 1: empty field key"},
    {"trailing_comma_in_fields", "m f=1, 10", "invalid_argument", "line 1",
     "line 1: empty field key"},
    {"tag_without_equals", "m,t f=1", "invalid_argument", "line 1",
     "line 1: invalid tag \"t\": expected key=value"},
    {"empty_tag_value", "m,t= f=1", "invalid_argument", "line 1",
     "line 1: missing value for tag \"t\""},
    {"empty_tag_key", "m,=v f=1", "invalid_argument", "line 1", "line 1: empty tag key"},
    {"unescaped_equals_in_tag_value", "m,t=a=b f=1", "invalid_argument", "line 1",
     "line 1: unescaped \"=\" in the value of tag \"t\""},
    {"duplicate_tag", "m,t=1,t=2 f=1", "invalid_argument", "line 1", "line 1: duplicate tag \"t\""},
    {"duplicate_tag_out_of_order", "m,t=1,a=1,t=2 f=1", "invalid_argument", "line 1",
     "line 1: duplicate tag \"t\""},
    {"invalid_timestamp", "m f=1 abc", "invalid_argument", "line 1",
     "line 1: invalid timestamp \"abc\": expected an integer"},
    {"float_timestamp", "m f=1 1.5", "invalid_argument", "line 1",
     "line 1: invalid timestamp \"1.5\": expected an integer"},
    {"timestamp_beyond_int64", "m f=1 9223372036854775808", "invalid_argument", "line 1",
     "line 1: timestamp \"9223372036854775808\" is out of range"},
    {"timestamp_overflows_at_precision", "m f=1 9223372037", "invalid_argument", "line 1",
     "line 1: timestamp \"9223372037\" is out of range at precision s", precision::s},
    {"text_after_the_timestamp", "m f=1 10 extra", "invalid_argument", "line 1",
     "line 1: unexpected text after the timestamp"},
    {"type_conflict_in_one_request", "m f=1 10\nm f=1i 20", "invalid_argument", "line 2",
     "line 2: field type conflict: m f is float earlier in the batch, integer here"},
    // Names: no control character (0x00-0x1F, 0x7F) and valid UTF-8, as InfluxData's
    // decoder (nonPrintable, utf8.Valid); the line and the reason are named.
    {"control_character_in_the_measurement", "m f=1 1\nm\x07x f=1 10", "invalid_argument", "line 2",
     "line 2: measurement \"m\x07x\" holds the control character 0x07 at byte 1"},
    {"nul_in_a_tag_key", std::string("m,t\0k=v f=1 10", 14), "invalid_argument", "line 1",
     std::string("line 1: tag key \"t\0k\" holds the control character 0x00 at byte 1", 64)},
    {"delete_in_a_tag_value", "m,t=v\x7F f=1 10", "invalid_argument", "line 1",
     "line 1: the value of tag \"t\" \"v\x7F\" holds the control character 0x7F at byte 1"},
    {"tab_in_a_field_key", "m a\tb=1 10", "invalid_argument", "line 1",
     "line 1: field key \"a\tb\" holds the control character 0x09 at byte 1"},
    {"invalid_utf8_in_the_measurement", "m\xBD f=1 10", "invalid_argument", "line 1",
     "line 1: measurement \"m\xEF\xBF\xBD\" is not valid UTF-8 (byte 0xBD at byte 1)"},
    {"invalid_utf8_in_a_tag_key", "m,\xC3(=v f=1 10", "invalid_argument", "line 1",
     "line 1: tag key \"\xEF\xBF\xBD(\" is not valid UTF-8 (byte 0xC3 at byte 0)"},
    {"overlong_utf8_in_a_tag_value", "m,t=\xC0\xAF f=1 10", "invalid_argument", "line 1",
     "line 1: the value of tag \"t\" \"\xEF\xBF\xBD\xEF\xBF\xBD\" is not valid UTF-8 (byte "
     "0xC0 at byte 0)"},
    {"surrogate_in_a_field_key", "m \xED\xA0\x80=1 10", "invalid_argument", "line 1",
     "line 1: field key \"\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\" is not valid UTF-8 (byte "
     "0xED at byte 0)"},
    {"truncated_utf8_before_an_escape", "m\xE2\x82\\ x f=1 10", "invalid_argument", "line 1",
     "line 1: measurement \"m\xEF\xBF\xBD\xEF\xBF\xBD\\ x\" is not valid UTF-8 (byte 0xE2 at "
     "byte 1)"},
    {"invalid_utf8_in_a_string_value",
     "m s=\"ok\",t=\"a\xFF"
     "b\" 10",
     "invalid_argument", "line 1",
     "line 1: the string value of field \"t\" is not valid UTF-8 (byte 0xFF at byte 1)"},
    {"invalid_utf8_after_an_escape_in_a_string_value", "m s=\"a\\\xFF\" 10", "invalid_argument",
     "line 1", "line 1: the string value of field \"s\" is not valid UTF-8 (byte 0xFF at byte 2)"},
};

class line_protocol_refuses : public ::testing::TestWithParam<refused> {};

TEST_P(line_protocol_refuses, with_the_line_and_the_reason) {
    const auto& c = GetParam();
    line_parser parser;
    storage::write_batch batch;
    line_options opts;
    opts.unit = c.unit;
    opts.now_ns = now;
    auto st = parser.parse(c.body, opts, batch);
    ASSERT_FALSE(st.ok());
    EXPECT_EQ(st.error().code, c.code);
    EXPECT_EQ(st.error().field, c.field);
    EXPECT_EQ(st.error().message, c.message);
    EXPECT_TRUE(batch.empty()) << "a refused request stores nothing";
    EXPECT_EQ(batch.series_count(), 0u);
}

INSTANTIATE_TEST_SUITE_P(reference, line_protocol_refuses, ::testing::ValuesIn(refused_cases),
                         [](const auto& info) { return info.param.name; });

TEST(line_protocol_limits, a_line_longer_than_the_limit_is_too_large) {
    line_parser parser;
    storage::write_batch batch;
    line_options opts;
    opts.bounds.max_line_bytes = 16;
    ASSERT_TRUE(parser.parse("m f=1 10\r\n", opts, batch).ok()) << "CR is not counted";
    auto st = parser.parse("m f=1 10\nm f=123456789012 10\n", opts, batch);
    ASSERT_FALSE(st.ok());
    EXPECT_EQ(st.error().code, "too_large");
    EXPECT_EQ(st.error().field, "line 2");
    EXPECT_EQ(st.error().message,
              "line 2: longer than the limit of 16 bytes (ingest.max_line_bytes)");
    EXPECT_TRUE(batch.empty());
}

TEST(line_protocol_limits, more_points_than_the_limit_is_too_large) {
    line_parser parser;
    storage::write_batch batch;
    line_options opts;
    opts.bounds.max_points_per_request = 3;
    ASSERT_TRUE(parser.parse("m a=1,b=2 1\nm a=1 2", opts, batch).ok());
    EXPECT_EQ(batch.point_count(), 3u);
    auto st = parser.parse("m a=1,b=2 1\nm a=1,b=2 2", opts, batch);
    ASSERT_FALSE(st.ok());
    EXPECT_EQ(st.error().code, "too_large");
    EXPECT_EQ(st.error().field, "line 2");
    EXPECT_EQ(st.error().message,
              "line 2: the request has more points than the limit of 3 "
              "(ingest.max_points_per_request)");
    EXPECT_TRUE(batch.empty());
}

TEST(line_protocol_limits, more_series_than_the_limit_is_too_large) {
    line_parser parser;
    storage::write_batch batch;
    line_options opts;
    opts.bounds.max_series_per_request = 2;
    ASSERT_TRUE(parser.parse("m,d=1 a=1 1\nm,d=2 a=1 1\nm,d=1 a=5 2", opts, batch).ok());
    auto st = parser.parse("m,d=1 a=1 1\nm,d=2 a=1 1\nm,d=3 a=1 1", opts, batch);
    ASSERT_FALSE(st.ok());
    EXPECT_EQ(st.error().code, "too_large");
    EXPECT_EQ(st.error().field, "line 3");
    EXPECT_EQ(st.error().message,
              "line 3: the request has more series than the limit of 2 "
              "(ingest.max_series_per_request)");
}

TEST(line_protocol, a_reused_parser_and_batch_start_each_request_afresh) {
    line_parser parser;
    storage::write_batch batch;
    line_options opts;
    ASSERT_TRUE(parser.parse("m,b=2,a=1 s=\"x\\\"y\",f=1i 5", opts, batch).ok());
    ASSERT_FALSE(parser.parse("m f=1 1\nm f=oops", opts, batch).ok());
    ASSERT_TRUE(parser.parse("m f=2 7", opts, batch).ok());
    EXPECT_EQ(render(batch), strings{"m f|float|7|2"});
}

TEST(line_protocol, series_are_found_whatever_the_field_order_and_request) {
    line_parser parser;
    storage::write_batch batch;
    line_options opts;
    ASSERT_TRUE(
        parser.parse("m,d=1 a=1,b=2 1\nm,d=1 b=3,a=4 2\nm,d=1 c=5,a=6 3", opts, batch).ok());
    EXPECT_EQ(render(batch),
              (strings{"m,d=1 a|float|1|1", "m,d=1 b|float|1|2", "m,d=1 b|float|2|3",
                       "m,d=1 a|float|2|4", "m,d=1 c|float|3|5", "m,d=1 a|float|3|6"}));
    EXPECT_EQ(batch.series_count(), 3u);
    // A later request starts with a fresh batch: another type for the same series is the
    // engine's to judge against stored data, not a conflict inside this request.
    ASSERT_TRUE(parser.parse("m,d=1 a=1i,c=\"x\" 4", opts, batch).ok());
    EXPECT_EQ(render(batch), (strings{"m,d=1 a|integer|4|1", "m,d=1 c|string|4|\"x\""}));
    auto st = parser.parse("m,d=1 a=1i 5\nm,d=1 a=2 6", opts, batch);
    ASSERT_FALSE(st.ok());
    EXPECT_EQ(st.error().message,
              "line 2: field type conflict: m,d=1 a is integer earlier in the batch, float here");
}

TEST(line_protocol, wide_lines_in_alternating_field_order_land_in_their_series) {
    // More fields than the entry scans: the field table finds them in any order.
    std::string forward = "m,d=1", backward = "m,d=1";
    for (int f = 0; f < 20; ++f) {
        forward += (f ? ",f" : " f") + std::to_string(f) + "=" + std::to_string(f);
        backward += (f ? ",f" : " f") + std::to_string(19 - f) + "=" + std::to_string(19 - f);
    }
    line_parser parser;
    storage::write_batch batch;
    line_options opts;
    for (int round = 0; round < 2; ++round) {
        ASSERT_TRUE(parser
                        .parse(forward + " 1\n" + backward + " 2\n" + forward + " 3\n" +
                                   "m,d=1 f7=7,f21=21 4",
                               opts, batch)
                        .ok());
        EXPECT_EQ(batch.series_count(), 21u);
        EXPECT_EQ(batch.point_count(), 62u);
        for (const auto& p : batch.points()) {
            const auto& key = batch.series_entries()[p.series].key;
            EXPECT_EQ(key,
                      "m,d=1 f" + std::to_string(static_cast<int>(std::bit_cast<double>(p.raw))));
        }
    }
}

TEST(line_protocol, precision_names_in_both_spellings) {
    EXPECT_EQ(parse_precision("ns"), precision::ns);
    EXPECT_EQ(parse_precision("n"), precision::ns);
    EXPECT_EQ(parse_precision("us"), precision::us);
    EXPECT_EQ(parse_precision("u"), precision::us);
    EXPECT_EQ(parse_precision("ms"), precision::ms);
    EXPECT_EQ(parse_precision("s"), precision::s);
    EXPECT_EQ(parse_precision("m"), std::nullopt);
    EXPECT_EQ(parse_precision("m", true), precision::m);
    EXPECT_EQ(parse_precision("h", true), precision::h);
    EXPECT_EQ(parse_precision("x", true), std::nullopt);
}

}  // namespace
}  // namespace clisonix::ingest
