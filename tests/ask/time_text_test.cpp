// Time expressions read in Europe/Berlin at a fixed now, across the October DST change too.
#include <gtest/gtest.h>

#include <sstream>

#include "ask/demo_vocabulary.h"
#include "ask/time_text.h"

namespace clisonix::ask::detail {
namespace {

using clisonix::ask::testing::saturday_1030;

constexpr int64_t hour = 3'600'000;
// Monday 2026-10-26 10:00 CET: yesterday (Sunday) was 25 hours long.
constexpr int64_t monday_after_dst = 1793005200000;

int64_t at(std::string_view rfc3339_text) {
    auto ms = parse_rfc3339(rfc3339_text);
    EXPECT_TRUE(ms.has_value()) << rfc3339_text;
    return ms.value_or(0);
}

std::vector<std::string> words(std::string_view text) {
    std::istringstream in{std::string(text)};
    std::vector<std::string> out;
    for (std::string w; in >> w;)
        out.push_back(w);
    return out;
}

const date::time_zone* berlin() {
    auto z = zone_named("Europe/Berlin");
    EXPECT_TRUE(z.ok());
    return *z;
}

// The whole text must be one time expression.
time_range read(std::string_view text, int64_t now = saturday_1030) {
    auto tokens = words(text);
    auto found = time_at(tokens, 0, now, berlin());
    EXPECT_TRUE(found.has_value()) << text;
    if (!found) return {};
    EXPECT_TRUE(found->ok()) << text << ": " << found->error().message;
    if (!found->ok()) return {};
    EXPECT_EQ((*found)->end, tokens.size()) << text;
    return (*found)->range;
}

std::string refusal(std::string_view text, int64_t now = saturday_1030) {
    auto tokens = words(text);
    auto found = time_at(tokens, 0, now, berlin());
    if (!found || found->ok()) return "(no error)";
    EXPECT_EQ(found->error().field, "time");
    return found->error().message;
}

void expect_range(std::string_view text, std::string_view from, std::string_view to,
                  int64_t now = saturday_1030) {
    auto r = read(text, now);
    EXPECT_EQ(rfc3339(r.from_ms, berlin()), from) << text;
    EXPECT_EQ(rfc3339(r.to_ms, berlin()), to) << text;
}

TEST(ask_time_text, now_and_its_synonyms_are_the_instant_now) {
    for (const char* text : {"now", "right now", "currently", "at the moment"}) {
        auto r = read(text);
        EXPECT_TRUE(r.instant) << text;
        EXPECT_EQ(r.from_ms, saturday_1030) << text;
        EXPECT_EQ(r.to_ms, saturday_1030) << text;
        EXPECT_EQ(r.text, text);
    }
}

TEST(ask_time_text, calendar_days_weeks_and_months_in_local_time) {
    expect_range("today", "2026-12-05T00:00:00+01:00", "2026-12-05T10:30:00+01:00");
    expect_range("yesterday", "2026-12-04T00:00:00+01:00", "2026-12-05T00:00:00+01:00");
    expect_range("this week", "2026-11-30T00:00:00+01:00", "2026-12-05T10:30:00+01:00");
    expect_range("last week", "2026-11-23T00:00:00+01:00", "2026-11-30T00:00:00+01:00");
    expect_range("this month", "2026-12-01T00:00:00+01:00", "2026-12-05T10:30:00+01:00");
    expect_range("last month", "2026-11-01T00:00:00+01:00", "2026-12-01T00:00:00+01:00");
    expect_range("on monday", "2026-11-30T00:00:00+01:00", "2026-12-01T00:00:00+01:00");
    expect_range("last friday", "2026-12-04T00:00:00+01:00", "2026-12-05T00:00:00+01:00");
    expect_range("last tuesday morning", "2026-12-01T06:00:00+01:00", "2026-12-01T12:00:00+01:00");
}

TEST(ask_time_text, rolling_ranges_end_now) {
    int64_t now = saturday_1030;
    for (auto [text, length] :
         std::vector<std::pair<const char*, int64_t>>{{"in the last 3 hours", 3 * hour},
                                                      {"over the past 30 minutes", hour / 2},
                                                      {"during the last 2 days", 48 * hour},
                                                      {"last hour", hour},
                                                      {"the last 24 h", 24 * hour},
                                                      {"last 24 h", 24 * hour},
                                                      {"past 6 hours", 6 * hour},
                                                      {"3 h", 3 * hour},
                                                      {"in the last week", 7 * 24 * hour},
                                                      {"for 90 min", 90 * 60'000}}) {
        auto r = read(text);
        EXPECT_EQ(r.to_ms, now) << text;
        EXPECT_EQ(r.to_ms - r.from_ms, length) << text;
        EXPECT_FALSE(r.future) << text;
    }
}

TEST(ask_time_text, since_a_day_a_weekday_or_a_clock_time) {
    expect_range("since monday 06:00", "2026-11-30T06:00:00+01:00", "2026-12-05T10:30:00+01:00");
    expect_range("since 6 am", "2026-12-05T06:00:00+01:00", "2026-12-05T10:30:00+01:00");
    expect_range("since 06:00", "2026-12-05T06:00:00+01:00", "2026-12-05T10:30:00+01:00");
    expect_range("since yesterday", "2026-12-04T00:00:00+01:00", "2026-12-05T10:30:00+01:00");
    expect_range("since midnight", "2026-12-05T00:00:00+01:00", "2026-12-05T10:30:00+01:00");
    // A clock time later than now is yesterday's.
    expect_range("since 22:00", "2026-12-04T22:00:00+01:00", "2026-12-05T10:30:00+01:00");
    // Saturday after 10:30 has not come this week: last Saturday.
    expect_range("since saturday 11:00", "2026-11-28T11:00:00+01:00", "2026-12-05T10:30:00+01:00");
}

TEST(ask_time_text, parts_of_days_and_clock_ranges) {
    expect_range("this morning", "2026-12-05T06:00:00+01:00", "2026-12-05T10:30:00+01:00");
    expect_range("last night", "2026-12-04T22:00:00+01:00", "2026-12-05T06:00:00+01:00");
    expect_range("yesterday afternoon", "2026-12-04T12:00:00+01:00", "2026-12-04T18:00:00+01:00");
    expect_range("between 8 and 10 this morning", "2026-12-05T08:00:00+01:00",
                 "2026-12-05T10:00:00+01:00");
    expect_range("between 8 am and 10 am", "2026-12-05T08:00:00+01:00",
                 "2026-12-05T10:00:00+01:00");
    expect_range("from 14:00 to 16:00 yesterday", "2026-12-04T14:00:00+01:00",
                 "2026-12-04T16:00:00+01:00");
    expect_range("between 2 and 4 yesterday afternoon", "2026-12-04T14:00:00+01:00",
                 "2026-12-04T16:00:00+01:00");
    // Reaching past now: it ends now.
    expect_range("between 9 and 12", "2026-12-05T09:00:00+01:00", "2026-12-05T10:30:00+01:00");
}

TEST(ask_time_text, times_that_do_not_make_sense_are_refused_with_the_reason) {
    EXPECT_EQ(refusal("this afternoon"), "\"this afternoon\" has not begun yet (it is 10:30)");
    EXPECT_EQ(refusal("from 14:00 to 16:00"),
              "\"from 14:00 to 16:00\" has not begun yet (it is 10:30)");
    EXPECT_EQ(refusal("since lunch"),
              "\"since lunch\" is not a time I can read: say \"since 06:00\", \"since Monday "
              "06:00\" or \"since yesterday\"");
    EXPECT_EQ(refusal("between 10 and 8 yesterday"),
              "\"between 10 and 8 yesterday\" ends before it begins");
}

TEST(ask_time_text, values_with_units_are_not_times) {
    auto tokens = words("between 2 and 4 bar");
    EXPECT_FALSE(time_at(tokens, 0, saturday_1030, berlin()).has_value());
    tokens = words("over 5 bar");
    EXPECT_FALSE(time_at(tokens, 0, saturday_1030, berlin()).has_value());
    tokens = words("last value");
    EXPECT_FALSE(time_at(tokens, 0, saturday_1030, berlin()).has_value());
}

TEST(ask_time_text, the_future_is_marked_for_forecasts) {
    auto r = read("in the next hour");
    EXPECT_TRUE(r.future);
    EXPECT_EQ(r.from_ms, saturday_1030);
    EXPECT_EQ(r.to_ms, saturday_1030 + hour);
    r = read("in 2 hours");
    EXPECT_TRUE(r.future);
    EXPECT_EQ(r.to_ms - r.from_ms, 2 * hour);
}

TEST(ask_time_text, days_across_the_october_dst_change_are_25_hours_long) {
    auto r = read("yesterday", monday_after_dst);
    EXPECT_EQ(rfc3339(r.from_ms, berlin()), "2026-10-25T00:00:00+02:00");
    EXPECT_EQ(rfc3339(r.to_ms, berlin()), "2026-10-26T00:00:00+01:00");
    EXPECT_EQ(r.to_ms - r.from_ms, 25 * hour);
    // Local clock times on both sides of the change: 01:00 CEST to 04:00 CET is 4 hours.
    r = read("between 1 and 4 yesterday", monday_after_dst);
    EXPECT_EQ(rfc3339(r.from_ms, berlin()), "2026-10-25T01:00:00+02:00");
    EXPECT_EQ(rfc3339(r.to_ms, berlin()), "2026-10-25T04:00:00+01:00");
    EXPECT_EQ(r.to_ms - r.from_ms, 4 * hour);
    // The last 24 hours are 24 real hours, whatever the clocks did.
    r = read("in the last 24 hours", monday_after_dst + 12 * hour);
    EXPECT_EQ(r.to_ms - r.from_ms, 24 * hour);
    r = read("last week", monday_after_dst);
    EXPECT_EQ(rfc3339(r.from_ms, berlin()), "2026-10-19T00:00:00+02:00");
    EXPECT_EQ(rfc3339(r.to_ms, berlin()), "2026-10-26T00:00:00+01:00");
}

TEST(ask_time_text, rfc3339_round_trips_and_names_bad_zones) {
    EXPECT_EQ(at("2026-12-05T10:30:00+01:00"), saturday_1030);
    EXPECT_EQ(at("2026-12-05T09:30:00Z"), saturday_1030);
    EXPECT_EQ(at("2026-12-05T09:30:00.250Z"), saturday_1030 + 250);
    EXPECT_EQ(rfc3339(saturday_1030 + 250, berlin()), "2026-12-05T10:30:00.250+01:00");
    EXPECT_FALSE(parse_rfc3339("2026-12-05 10:30").has_value());
    EXPECT_FALSE(parse_rfc3339("2026-13-05T10:30:00Z").has_value());
    auto z = zone_named("Mars/Olympus");
    ASSERT_FALSE(z.ok());
    EXPECT_EQ(z.error().field, "time_zone");
    EXPECT_EQ(z.error().message,
              "\"Mars/Olympus\" is not a time zone this server knows (an IANA name such as "
              "\"Europe/Berlin\")");
}

}  // namespace
}  // namespace clisonix::ask::detail
