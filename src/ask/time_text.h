// Clisonix — Ask: time expressions in a question ("yesterday", "in the last 3 hours",
// "since Monday 06:00", "between 8 and 10 this morning") read as absolute [from, to) in Unix
// ms, in the plant's time zone (private to src/ask).
//
// Days, weeks and parts of a day are calendar ranges of local time (a day across a DST change
// is 23 or 25 hours long); "the last N hours" is N hours of real time. A range that reaches
// past now ends at now; one that has not begun yet is refused, never moved to another day.
//
//   part of a day: morning 06-12, afternoon 12-18, evening 18-24, last night 22-06;
//   weeks start on Monday.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace date {
class time_zone;
}

namespace clisonix::ask::detail {

// The IANA zone `name` ("Europe/Berlin"); empty: the machine's (/etc/localtime).
// Errors: "invalid_argument" naming the zone.
result<const date::time_zone*> zone_named(std::string_view name);

struct time_range {
    int64_t from_ms = 0;
    int64_t to_ms = 0;
    std::string text;      // the words it came from: "in the last 3 hours"
    bool instant = false;  // "now": from == to
    bool future = false;   // "in the next hour": [now, now + 1 h), for forecasts
};

struct time_found {
    size_t begin = 0;  // the tokens [begin, end) it was read from
    size_t end = 0;
    time_range range;
};

// The time expression beginning at tokens[at], over normalised tokens (lower case, numbers
// in digits, "6am" as "6" "am", "24h" as "24" "h"). nullopt: none begins there. An error
// ("invalid_argument", field "time") when the words begin one but do not make sense:
// "since lunch", "this evening" at 10:00.
std::optional<result<time_found>> time_at(const std::vector<std::string>& tokens, size_t at,
                                          int64_t now_ms, const date::time_zone* zone);

// RFC 3339 in the zone: "2026-12-04T00:00:00+01:00" (milliseconds only when there are some).
std::string rfc3339(int64_t ms, const date::time_zone* zone);
// "2026-12-04T00:00:00+01:00", "...Z", with or without fractional seconds.
std::optional<int64_t> parse_rfc3339(std::string_view text);

}  // namespace clisonix::ask::detail
