// The query language as users type it: times, steps, parameters and their errors.
#include <gtest/gtest.h>

#include "query/query.h"

namespace clisonix::query {
namespace {

constexpr int64_t s_ns = 1'000'000'000;
constexpr int64_t now = 1'700'000'000 * s_ns;

using params = std::map<std::string, std::string, std::less<>>;

TEST(parse_time_test, accepts_rfc3339_epoch_ms_now_and_relative) {
    EXPECT_EQ(*parse_time("2024-01-01T00:00:00Z", now, "from"), 1'704'067'200 * s_ns);
    EXPECT_EQ(*parse_time("2024-01-01T01:30:00.25+01:30", now, "from"),
              1'704'067'200 * s_ns + 250'000'000);
    EXPECT_EQ(*parse_time("1704067200000", now, "from"), 1'704'067'200 * s_ns);
    EXPECT_EQ(*parse_time("now", now, "to"), now);
    EXPECT_EQ(*parse_time("-1h", now, "from"), now - 3600 * s_ns);
    EXPECT_EQ(*parse_time("now-15m", now, "from"), now - 900 * s_ns);
}

TEST(parse_time_test, refuses_times_past_the_64_bit_range_instead_of_wrapping) {
    // 100,000 days fit a duration in nanoseconds, but now plus them does not.
    auto r = parse_time("now+100000d", now, "to");
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, "invalid_argument");
    EXPECT_EQ(r.error().field, "to");
    EXPECT_EQ(r.error().message, "to: \"now+100000d\" is out of range (1677 to 2262)");
    EXPECT_FALSE(parse_time("now-100000d", -now, "from"));
    EXPECT_FALSE(parse_time("now+99999999999999d", now, "to"));
    EXPECT_FALSE(parse_time("9999-01-01T00:00:00Z", now, "to"));
    EXPECT_EQ(*parse_time("2262-01-01T00:00:00Z", now, "to"), 9'214'646'400 * s_ns);
}

TEST(parse_time_test, rejects_other_text_naming_the_parameter) {
    auto r = parse_time("yesterday", now, "from");
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().field, "from");
    EXPECT_EQ(r.error().message,
              "from: expected RFC 3339 (2024-01-01T00:00:00Z), epoch milliseconds, now, or a "
              "relative time such as -1h; got \"yesterday\"");
    EXPECT_FALSE(parse_time("2024-13-01T00:00:00Z", now, "from"));
    EXPECT_FALSE(parse_time("2024-01-01T00:00:00", now, "from"));  // no zone
    EXPECT_FALSE(parse_time("-1parsec", now, "from"));
}

TEST(parse_step_test, units_and_errors) {
    EXPECT_EQ(*parse_step("10s", "step"), 10 * s_ns);
    EXPECT_EQ(*parse_step("1m", "step"), 60 * s_ns);
    EXPECT_EQ(*parse_step("1h", "step"), 3600 * s_ns);
    EXPECT_EQ(*parse_step("250ms", "step"), 250'000'000);
    EXPECT_EQ(*parse_step("1d", "step"), 86400 * s_ns);
    auto bad = parse_step("0s", "step");
    ASSERT_FALSE(bad);
    EXPECT_EQ(bad.error().message,
              "step: expected a positive duration such as 10s, 1m, 1h; got \"0s\"");
    EXPECT_FALSE(parse_step("10", "step"));
    EXPECT_FALSE(parse_step("m", "step"));
}

TEST(parse_spec_test, defaults_to_the_last_hour_raw) {
    auto s = parse_spec({}, now);
    ASSERT_TRUE(s);
    EXPECT_EQ(s->from, now - 3600 * s_ns);
    EXPECT_EQ(s->to, now);
    EXPECT_EQ(s->agg, aggregate::raw);
    EXPECT_EQ(s->device, "*");
}

TEST(parse_spec_test, reads_every_parameter) {
    auto s = parse_spec({{"device", "pump-*"},
                         {"metric", "temperature"},
                         {"tag.site", "north"},
                         {"from", "-6h"},
                         {"to", "now"},
                         {"agg", "mean"},
                         {"step", "1h"},
                         {"group_by", "metric,site"},
                         {"order", "max_desc"},
                         {"limit", "10"}},
                        now);
    ASSERT_TRUE(s) << s.error().message;
    EXPECT_EQ(s->device, "pump-*");
    EXPECT_EQ(s->tags, (std::vector<std::pair<std::string, std::string>>{{"site", "north"}}));
    EXPECT_EQ(s->from, now - 6 * 3600 * s_ns);
    EXPECT_EQ(s->agg, aggregate::mean);
    EXPECT_EQ(s->step, 3600 * s_ns);
    EXPECT_EQ(s->group_by, (std::vector<std::string>{"metric", "site"}));
    EXPECT_EQ(s->order, "max_desc");
    EXPECT_EQ(s->limit, 10);
}

struct bad_case {
    params in;
    std::string field;
    std::string message;
};

TEST(parse_spec_test, every_mistake_names_its_parameter) {
    std::vector<bad_case> cases = {
        {{{"agg", "median"}},
         "agg",
         "agg: expected one of raw, min, max, mean, sum, count, first, last, stddev, p50, p90, "
         "p99; got \"median\""},
        {{{"order", "biggest"}},
         "order",
         "order: expected time_asc, time_desc, or an aggregate with _asc or _desc such as "
         "max_desc; got \"biggest\""},
        {{{"limit", "-3"}}, "limit", "limit: expected a positive integer; got \"-3\""},
        {{{"devise", "x"}}, "devise", "unknown query parameter \"devise\""},
        {{{"from", "now"}, {"to", "-1h"}}, "from", "from: must be before to"},
        {{{"step", "1m"}}, "step", "step: needs an aggregate (agg=mean, max, ...)"},
        {{{"agg", "max"}, {"step", "1ms"}, {"from", "-30d"}},
         "step",
         "step: more than 1,000,000 buckets in the range; use a wider step"},
    };
    for (const auto& c : cases) {
        auto s = parse_spec(c.in, now);
        ASSERT_FALSE(s) << c.message;
        EXPECT_EQ(s.error().code, "invalid_argument");
        EXPECT_EQ(s.error().field, c.field);
        EXPECT_EQ(s.error().message, c.message);
    }
}

}  // namespace
}  // namespace clisonix::query
