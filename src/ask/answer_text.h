// Private to ask: the words of an answer — numbers rounded for a person, durations, times in
// the server's time zone, the scope and the time range as a sentence says them.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "ask/ask.h"

namespace clisonix::ask::text {

// 3 significant digits, never an exponent; values of 100 and more as whole numbers
// (1013 hPa, not 1010): "83.1", "0.0421", "1013", "-2.5".
std::string number(double v);
// The number with its unit: "83.1 °C", "12 %", "3.2" (no unit).
std::string with_unit(double v, std::string_view unit);
// "2 h 15 min", "45 min", "30 s", "0 s".
std::string duration(int64_t ms);
// A moment in `time_zone` relative to `now_ms`: "14:20" (same day), "14:20 yesterday",
// "03:10 tomorrow", else "2026-12-01 14:20". An unknown zone reads as UTC.
std::string moment(int64_t ms, int64_t now_ms, std::string_view time_zone);
// RFC 3339 with the zone's offset: "2026-12-05T14:20:00+01:00".
std::string rfc3339(int64_t ms, std::string_view time_zone);
// The plan's time range in words: its time_text when set ("yesterday"), else "now" for a
// current value, else "between 08:00 and 10:00".
std::string range(const plan& p, std::string_view time_zone);
// "a, b and c".
std::string join(const std::vector<std::string>& items);
// Who the plan is about, for a sentence: "pump-04", "the pumps on line-2", "the devices
// under north-site", "all devices". `count` is how many devices that is.
std::string scope(const plan& p, size_t count, const vocabulary& vocab);
// "pump" -> "pumps" from the vocabulary's plural, else name + "s".
std::string plural(std::string_view type, const vocabulary& vocab);
// The aggregate as a noun phrase: "average", "maximum", "95th percentile".
std::string aggregate_name(aggregate a);
// The aggregate's column name in data: "max", "p95", "time_above_h".
std::string aggregate_column(aggregate a);
// "First letter upper case."
std::string sentence(std::string s);

}  // namespace clisonix::ask::text
