// The words of an answer: numbers rounded for a person, durations, and times in the server's
// time zone (a zone with summer time, and a day that is "yesterday" only in that zone).
#include <gtest/gtest.h>

#include "ask/answer_text.h"

namespace clisonix::ask::text {
namespace {

TEST(ask_answer_text, numbers_keep_three_significant_digits_and_whole_hundreds) {
    EXPECT_EQ(number(83.14), "83.1");
    EXPECT_EQ(number(0.042149), "0.0421");
    EXPECT_EQ(number(1013.4), "1013");
    EXPECT_EQ(number(-2.5), "-2.5");
    EXPECT_EQ(number(80), "80");
    EXPECT_EQ(number(0), "0");
    EXPECT_EQ(number(-0.0001), "-0.0001");
    EXPECT_EQ(number(99.96), "100");
    EXPECT_EQ(with_unit(12, "%"), "12 %");
    EXPECT_EQ(with_unit(3.2, ""), "3.2");
    EXPECT_EQ(with_unit(81.44, "°C"), "81.4 °C");
}

TEST(ask_answer_text, durations_in_the_two_largest_units) {
    EXPECT_EQ(duration(0), "0 s");
    EXPECT_EQ(duration(30'000), "30 s");
    EXPECT_EQ(duration(45 * 60'000), "45 min");
    EXPECT_EQ(duration(2 * 3'600'000 + 15 * 60'000 + 20'000), "2 h 15 min");
    EXPECT_EQ(duration(3 * 86'400'000LL + 3'600'000), "3 d 1 h");
}

TEST(ask_answer_text, moments_read_in_the_zone_relative_to_now) {
    // 2026-12-04T23:30:00Z is 00:30 on 5 December in Berlin (UTC+1 in winter).
    const int64_t late = 1'796'428'800'000 - 30 * 60'000;
    const int64_t now = 1'796'428'800'000 + 10 * 3'600'000;  // 2026-12-05T10:00:00Z
    EXPECT_EQ(moment(late, now, "Europe/Berlin"), "00:30");
    EXPECT_EQ(moment(late, now, "UTC"), "23:30 yesterday");
    EXPECT_EQ(moment(now + 86'400'000, now, "UTC"), "10:00 tomorrow");
    EXPECT_EQ(moment(now - 3 * 86'400'000, now, "UTC"), "2026-12-02 10:00");
    EXPECT_EQ(rfc3339(late, "Europe/Berlin"), "2026-12-05T00:30:00+01:00");
    // Summer time: 2026-07-01T12:00:00Z is 14:00 in Berlin.
    EXPECT_EQ(rfc3339(1'782'907'200'000, "Europe/Berlin"), "2026-07-01T14:00:00+02:00");
}

TEST(ask_answer_text, lists_and_sentences) {
    EXPECT_EQ(join({"a"}), "a");
    EXPECT_EQ(join({"a", "b"}), "a and b");
    EXPECT_EQ(join({"a", "b", "c"}), "a, b and c");
    EXPECT_EQ(sentence("pump-01 is hot."), "Pump-01 is hot.");
}

}  // namespace
}  // namespace clisonix::ask::text
