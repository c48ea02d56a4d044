// JSON telemetry: the three forms, types, and errors that name the JSON path.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "ingest/ingest.h"
#include "ingest/test_render.h"

namespace clisonix::ingest {
namespace {

using testing::render;
using strings = std::vector<std::string>;

constexpr int64_t now = 1'700'000'000'123'000'000;

class json_telemetry : public ::testing::Test {
protected:
    status parse(std::string_view body, std::string_view device = "pump-3") {
        json_options opts;
        opts.now_ns = now;
        opts.bounds = bounds;
        return parser.parse(body, device, opts, batch);
    }
    void expect_error(std::string_view body, std::string_view code, std::string_view field,
                      std::string_view message) {
        auto st = parse(body);
        ASSERT_FALSE(st.ok()) << body;
        EXPECT_EQ(st.error().code, code) << body;
        EXPECT_EQ(st.error().field, field) << body;
        EXPECT_EQ(st.error().message, message) << body;
        EXPECT_TRUE(batch.empty()) << body;
    }
    json_parser parser;
    storage::write_batch batch;
    limits bounds;
};

TEST_F(json_telemetry, flat_object_at_server_time) {
    ASSERT_TRUE(parse(R"({"temperature":21.5,"running":true,"mode":"auto","rpm":1450})").ok());
    EXPECT_EQ(render(batch),
              (strings{
                  "telemetry,device=pump-3 temperature|float|1700000000123000000|21.5",
                  "telemetry,device=pump-3 running|boolean|1700000000123000000|true",
                  "telemetry,device=pump-3 mode|string|1700000000123000000|\"auto\"",
                  "telemetry,device=pump-3 rpm|float|1700000000123000000|1450",
              }));
}

TEST_F(json_telemetry, ts_in_milliseconds_with_values) {
    ASSERT_TRUE(parse(R"({"ts":1700000000000,"values":{"temperature":-3.25,"ok":false}})").ok());
    EXPECT_EQ(render(batch),
              (strings{
                  "telemetry,device=pump-3 temperature|float|1700000000000000000|-3.25",
                  "telemetry,device=pump-3 ok|boolean|1700000000000000000|false",
              }));
}

TEST_F(json_telemetry, flat_object_may_carry_its_ts) {
    ASSERT_TRUE(parse(R"({"temperature":1,"ts":5})").ok());
    EXPECT_EQ(render(batch), strings{"telemetry,device=pump-3 temperature|float|5000000|1"});
}

TEST_F(json_telemetry, an_array_of_objects) {
    ASSERT_TRUE(parse(R"([{"ts":1,"values":{"t":1}},{"ts":2,"values":{"t":2}},{"t":3}])").ok());
    EXPECT_EQ(render(batch), (strings{
                                 "telemetry,device=pump-3 t|float|1000000|1",
                                 "telemetry,device=pump-3 t|float|2000000|2",
                                 "telemetry,device=pump-3 t|float|1700000000123000000|3",
                             }));
    EXPECT_EQ(batch.series_count(), 1u);
}

TEST_F(json_telemetry, device_and_metric_names_are_escaped_in_the_series_key) {
    ASSERT_TRUE(parse(R"({"flow rate,l/s":2})", "line 1,pump=a").ok());
    EXPECT_EQ(
        render(batch),
        strings{
            R"(telemetry,device=line\ 1\,pump\=a flow\ rate\,l/s|float|1700000000123000000|2)"});
}

TEST_F(json_telemetry, an_empty_array_stores_nothing) {
    ASSERT_TRUE(parse("[]").ok());
    EXPECT_TRUE(batch.empty());
}

TEST_F(json_telemetry, errors_name_the_json_path) {
    expect_error(R"({"ts":1,"values":{"temperature":null}})", "invalid_argument",
                 "values.temperature", "values.temperature: expected a number, string or boolean");
    expect_error(R"({"temperature":{"c":1}})", "invalid_argument", "temperature",
                 "temperature: expected a number, string or boolean");
    expect_error(R"([{"a":1},{"values":{"b":[1]}}])", "invalid_argument", "[1].values.b",
                 "[1].values.b: expected a number, string or boolean");
    expect_error(R"([{"a":1},7])", "invalid_argument", "[1]", "[1]: expected an object");
    expect_error(R"({"ts":"yesterday","a":1})", "invalid_argument", "ts",
                 "ts: expected an integer number of milliseconds since 1970-01-01");
    expect_error(R"({"ts":1.5,"a":1})", "invalid_argument", "ts",
                 "ts: expected an integer number of milliseconds since 1970-01-01");
    expect_error(R"([{"ts":9223372036854775807,"a":1}])", "invalid_argument", "[0].ts",
                 "[0].ts: out of range");
    expect_error(R"({"values":3})", "invalid_argument", "values",
                 "values: expected an object of metric values");
    expect_error(R"({"values":{"a":1},"extra":2})", "invalid_argument", "extra",
                 "extra: unexpected key: next to \"values\" only \"ts\" is allowed");
    expect_error(R"({"ts":5})", "invalid_argument", "", "expected at least one metric value");
    expect_error(R"({"values":{}})", "invalid_argument", "values",
                 "values: expected at least one metric value");
    expect_error(R"({"":1})", "invalid_argument", "\"\"", "\"\": empty metric name");
    expect_error("42", "invalid_argument", "", "expected an object or an array of objects");
    expect_error(R"([{"a":1},{"a":"text"}])", "invalid_argument", "[1].a",
                 "[1].a: field type conflict: telemetry,device=pump-3 a is float earlier in "
                 "the batch, string here");
}

TEST_F(json_telemetry, names_follow_the_line_protocol_rule) {
    // Valid JSON, but "\u0007" escapes a control character into the metric name.
    expect_error(R"({"values":{"a\u0007b":1}})", "invalid_argument", "values.a\ab",
                 "values.a\ab: metric name \"a\ab\" holds the control character 0x07 at "
                 "byte 1");
    // The device comes from the path or a token: the same rule, named as "device".
    auto st = parse(R"({"a":1})", "pump\xBD");
    ASSERT_FALSE(st.ok());
    EXPECT_EQ(st.error().field, "device");
    EXPECT_EQ(st.error().message,
              "device \"pump\xEF\xBF\xBD\" is not valid UTF-8 (byte 0xBD at byte 4)");
    EXPECT_FALSE(parse(R"({"a":1})", "pump\n3").ok());
    EXPECT_TRUE(parse(R"({"température":1})", "pompe-é").ok());
}

TEST_F(json_telemetry, malformed_json_names_the_byte) {
    auto st = parse(R"({"a":1,})");
    ASSERT_FALSE(st.ok());
    EXPECT_EQ(st.error().code, "invalid_argument");
    EXPECT_EQ(st.error().message.rfind("invalid JSON at byte ", 0), 0u) << st.error().message;
    EXPECT_TRUE(batch.empty());
    EXPECT_FALSE(parse(R"({"a":1} trailing)").ok());
    EXPECT_FALSE(parse(R"({"a":1)").ok());
    EXPECT_FALSE(parse("").ok());
}

TEST_F(json_telemetry, limits_are_too_large_naming_the_key) {
    bounds.max_points_per_request = 2;
    expect_error(R"([{"a":1,"b":2},{"a":3}])", "too_large", "[1].a",
                 "[1].a: the request has more points than the limit of 2 "
                 "(ingest.max_points_per_request)");
    bounds = {};
    bounds.max_series_per_request = 1;
    expect_error(R"({"a":1,"b":2})", "too_large", "b",
                 "b: the request has more series than the limit of 1 "
                 "(ingest.max_series_per_request)");
}

TEST_F(json_telemetry, a_large_document_outgrows_the_arena_and_still_parses) {
    std::string body = "[";
    for (int i = 0; i < 5000; ++i) {
        if (i) body += ",";
        body += R"({"ts":)" + std::to_string(i) + R"(,"values":{"temperature":)" +
                std::to_string(i) + R"(.5,"label":"sample number )" + std::to_string(i) + "\"}}";
    }
    body += "]";
    ASSERT_TRUE(parse(body).ok());
    ASSERT_EQ(batch.point_count(), 10000u);
    auto points = render(batch);
    EXPECT_EQ(points[9998], "telemetry,device=pump-3 temperature|float|4999000000|4999.5");
    EXPECT_EQ(points[9999],
              "telemetry,device=pump-3 label|string|4999000000|\"sample number 4999\"");
}

}  // namespace
}  // namespace clisonix::ingest
