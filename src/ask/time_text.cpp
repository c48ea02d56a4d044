// Clisonix — Ask: time expressions read in the plant's time zone (see time_text.h).
#include "ask/time_text.h"
#include "ask/words.h"

#include <date/tz.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <initializer_list>

namespace clisonix::ask::detail {
namespace {

using namespace std::chrono;
using local_ms = date::local_time<milliseconds>;

constexpr int64_t minute_ms = 60'000;
constexpr int64_t hour_ms = 60 * minute_ms;
constexpr int64_t day_ms = 24 * hour_ms;

std::optional<int64_t> small_integer(std::string_view s) {
    if (s.empty() || s.size() > 6) return std::nullopt;
    int64_t v = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc{} || p != s.data() + s.size()) return std::nullopt;
    return v;
}

std::optional<int64_t> unit_ms(std::string_view w) {
    if (w == "minute" || w == "minutes" || w == "min" || w == "mins") return minute_ms;
    if (w == "hour" || w == "hours" || w == "h" || w == "hr" || w == "hrs") return hour_ms;
    if (w == "day" || w == "days" || w == "d") return day_ms;
    if (w == "week" || w == "weeks" || w == "wk" || w == "wks" || w == "w") return 7 * day_ms;
    return std::nullopt;
}

// Monday = 0.
std::optional<int> weekday_of(std::string_view w) {
    static constexpr std::array<std::string_view, 7> full = {
        "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"};
    static constexpr std::array<std::string_view, 5> brief = {"mon", "tue", "wed", "thu", "fri"};
    for (size_t i = 0; i < full.size(); ++i)
        if (w == full[i]) return static_cast<int>(i);
    for (size_t i = 0; i < brief.size(); ++i)
        if (w == brief[i]) return static_cast<int>(i);
    if (w == "tues") return 1;
    if (w == "thur" || w == "thurs") return 3;
    return std::nullopt;
}

// A part of a day: [begin, end) in hours of local time from that day's midnight.
struct day_part {
    int begin = 0;
    int end = 24;
    bool afternoon = false;  // bare hours in it are after noon ("between 2 and 4 this afternoon")
};
std::optional<day_part> day_part_of(std::string_view w) {
    if (w == "morning") return day_part{6, 12, false};
    if (w == "afternoon") return day_part{12, 18, true};
    if (w == "evening") return day_part{18, 24, true};
    if (w == "night") return day_part{22, 30, true};  // into the next morning
    return std::nullopt;
}

struct clock_of_day {
    int minutes = 0;        // since midnight
    size_t used = 0;        // tokens read
    bool meridiem = false;  // "am"/"pm" said which half
};

class reader {
public:
    reader(const std::vector<std::string>& tokens, int64_t now_ms, const date::time_zone* zone)
        : _t(tokens), _now(now_ms), _zone(zone) {
        _local_now = _zone->to_local(date::sys_time<milliseconds>(milliseconds(now_ms)));
        _today = date::floor<date::days>(_local_now);
    }

    std::optional<result<time_found>> at(size_t i) {
        if (auto r = now_words(i)) return r;
        if (auto r = calendar_day(i)) return r;
        if (auto r = this_or_last(i)) return r;
        if (auto r = relative(i)) return r;
        if (auto r = since(i)) return r;
        if (auto r = between(i)) return r;
        if (auto r = weekday_alone(i)) return r;
        return std::nullopt;
    }

private:
    bool is(size_t i, std::string_view w) const { return i < _t.size() && _t[i] == w; }
    bool any(size_t i, std::initializer_list<std::string_view> ws) const {
        if (i >= _t.size()) return false;
        return std::find(ws.begin(), ws.end(), _t[i]) != ws.end();
    }
    std::string_view word(size_t i) const { return i < _t.size() ? _t[i] : std::string_view{}; }

    int64_t sys_ms(local_ms t) const {
        return _zone->to_sys(t, date::choose::earliest).time_since_epoch().count();
    }
    int64_t at_hour(date::local_days d, int minutes) const {
        return sys_ms(local_ms(d) + std::chrono::minutes(minutes));
    }
    date::local_days monday_of_this_week() const {
        unsigned since_monday = (date::weekday(_today).c_encoding() + 6) % 7;
        return _today - date::days(since_monday);
    }
    // The latest day with this weekday, today included.
    date::local_days last_weekday(int monday0, bool today_counts = true) const {
        int today_index = static_cast<int>((date::weekday(_today).c_encoding() + 6) % 7);
        int back = (today_index - monday0 + 7) % 7;
        if (back == 0 && !today_counts) back = 7;
        return _today - date::days(back);
    }

    std::string text(size_t begin, size_t end) const {
        std::string s;
        for (size_t k = begin; k < end && k < _t.size(); ++k) {
            if (!s.empty()) s += ' ';
            s += _t[k];
        }
        return s;
    }

    // The range [from, to) ending at now at the latest; refused when it has not begun.
    result<time_found> past(size_t begin, size_t end, int64_t from, int64_t to) const {
        std::string words = text(begin, end);
        if (from >= _now)
            return make_error("invalid_argument",
                              "\"" + words + "\" has not begun yet (it is " + clock_now() + ")",
                              "time");
        time_found f{begin, end, {from, std::min(to, _now), words, false, false}};
        return f;
    }
    result<time_found> future(size_t begin, size_t end, int64_t length) const {
        time_found f{begin, end, {_now, _now + length, text(begin, end), false, true}};
        return f;
    }
    std::string clock_now() const {
        return date::format("%H:%M", date::floor<minutes>(_local_now));
    }

    std::optional<result<time_found>> now_words(size_t i) const {
        size_t end = 0;
        if (any(i, {"now", "currently", "presently"}))
            end = i + 1;
        else if (is(i, "right") && is(i + 1, "now"))
            end = i + 2;
        else if (is(i, "at") && is(i + 1, "the") && is(i + 2, "moment"))
            end = i + 3;
        else if (is(i, "at") && is(i + 1, "present"))
            end = i + 2;
        else if (is(i, "as") && is(i + 1, "of") && is(i + 2, "now"))
            end = i + 3;
        else
            return std::nullopt;
        time_found f{i, end, {_now, _now, text(i, end), true, false}};
        return result<time_found>(f);
    }

    // today, yesterday, tomorrow, each with an optional part of the day.
    std::optional<result<time_found>> calendar_day(size_t i) const {
        if (is(i, "tomorrow")) {
            int64_t end_of_tomorrow = at_hour(_today + date::days(2), 0);
            return future(i, i + 1, end_of_tomorrow - _now);
        }
        date::local_days day;
        if (is(i, "today"))
            day = _today;
        else if (is(i, "yesterday"))
            day = _today - date::days(1);
        else
            return std::nullopt;
        if (any(i + 1, {"between", "from"})) {  // "yesterday between 8 and 10"
            if (auto r = between(i + 1, day)) {
                if (*r) {
                    (**r).begin = i;
                    (**r).range.text = text(i, (**r).end);
                }
                return r;
            }
        }
        if (auto part = day_part_of(word(i + 1)))
            return past(i, i + 2, at_hour(day, part->begin * 60), at_hour(day, part->end * 60));
        return past(i, i + 1, at_hour(day, 0), at_hour(day + date::days(1), 0));
    }

    // this week / month / year / morning / afternoon / evening; last week / month / year /
    // night / <weekday>; tonight.
    std::optional<result<time_found>> this_or_last(size_t i) const {
        if (is(i, "tonight")) return past(i, i + 1, at_hour(_today, 18 * 60), _now);
        if (is(i, "this")) {
            std::string_view w = word(i + 1);
            if (w == "week") return past(i, i + 2, at_hour(monday_of_this_week(), 0), _now);
            date::year_month_day ymd(_today);
            if (w == "month") {
                auto first = date::local_days(ymd.year() / ymd.month() / 1);
                return past(i, i + 2, at_hour(first, 0), _now);
            }
            if (w == "year") {
                auto first = date::local_days(ymd.year() / 1 / 1);
                return past(i, i + 2, at_hour(first, 0), _now);
            }
            if (auto part = day_part_of(w); part && w != "night")
                return past(i, i + 2, at_hour(_today, part->begin * 60),
                            at_hour(_today, part->end * 60));
            return std::nullopt;
        }
        if (!any(i, {"last", "previous"})) return std::nullopt;
        std::string_view w = word(i + 1);
        if (w == "week") {
            auto monday = monday_of_this_week();
            return past(i, i + 2, at_hour(monday - date::days(7), 0), at_hour(monday, 0));
        }
        date::year_month_day ymd(_today);
        if (w == "month") {
            auto first = date::local_days(ymd.year() / ymd.month() / 1);
            auto previous = date::year_month_day(first - date::days(1));
            auto previous_first = date::local_days(previous.year() / previous.month() / 1);
            return past(i, i + 2, at_hour(previous_first, 0), at_hour(first, 0));
        }
        if (w == "year") {
            auto first = date::local_days(ymd.year() / 1 / 1);
            auto previous_first = date::local_days((ymd.year() - date::years(1)) / 1 / 1);
            return past(i, i + 2, at_hour(previous_first, 0), at_hour(first, 0));
        }
        if (w == "night") {
            auto yesterday = _today - date::days(1);
            return past(i, i + 2, at_hour(yesterday, 22 * 60), at_hour(_today, 6 * 60));
        }
        if (auto wd = weekday_of(w)) {
            auto day = last_weekday(*wd, false);
            if (auto part = day_part_of(word(i + 2)))  // "last tuesday morning"
                return past(i, i + 3, at_hour(day, part->begin * 60), at_hour(day, part->end * 60));
            return past(i, i + 2, at_hour(day, 0), at_hour(day + date::days(1), 0));
        }
        return std::nullopt;
    }

    // [in|over|during|for|within] [the] (last|past|previous|next) [N] unit, and N unit.
    std::optional<result<time_found>> relative(size_t i) const {
        size_t k = i;
        std::string_view preposition;
        if (any(k, {"in", "over", "during", "for", "within"})) preposition = _t[k++];
        bool the = false;
        if (is(k, "the")) {
            the = true;
            ++k;
        }
        bool ahead = false, back = false;
        if (any(k, {"last", "past", "previous"})) {
            back = true;
            ++k;
        } else if (any(k, {"next", "coming"})) {
            ahead = true;
            ++k;
        }
        int64_t n = 1;
        bool counted = false;
        if (auto v = small_integer(word(k))) {
            n = *v;
            counted = true;
            ++k;
        }
        auto unit = unit_ms(word(k));
        if (!unit) return std::nullopt;
        // Single letters ("h", "d") only right after a number ("24h", "last 3 h").
        if (word(k).size() == 1 && !counted) return std::nullopt;
        if (!back && !ahead && !counted) return std::nullopt;  // "in the week"
        // "last week" alone is the calendar week (this_or_last); "the last week" is 7 days.
        if (back && !the && !counted && *unit >= 7 * day_ms) return std::nullopt;
        if (the && !back && !ahead) return std::nullopt;  // "for the 3 hours"
        ++k;
        if (n <= 0) {
            return make_error("invalid_argument",
                              "\"" + text(i, k) + "\": the length must be more than 0", "time");
        }
        if (ahead || (!back && (preposition == "in" || preposition == "within")))
            return future(i, k, n * *unit);
        return past(i, k, _now - n * *unit, _now);
    }

    // A time of day: 6, 6 am, 06:00, 6:30 pm, midnight, noon.
    std::optional<clock_of_day> clock_at(size_t i) const {
        std::string_view w = word(i);
        if (w == "midnight") return clock_of_day{0, 1, true};
        if (w == "noon" || w == "midday") return clock_of_day{12 * 60, 1, true};
        int hour = 0, minute = 0;
        size_t colon = w.find(':');
        if (colon != std::string_view::npos) {
            auto h = small_integer(w.substr(0, colon));
            auto m = small_integer(w.substr(colon + 1));
            if (!h || !m || w.size() - colon - 1 != 2) return std::nullopt;
            hour = static_cast<int>(*h);
            minute = static_cast<int>(*m);
        } else {
            auto h = small_integer(w);
            if (!h) return std::nullopt;
            hour = static_cast<int>(*h);
        }
        if (hour > 24 || minute > 59 || (hour == 24 && minute != 0)) return std::nullopt;
        clock_of_day c{hour * 60 + minute, 1, false};
        if (any(i + 1, {"am", "pm"}) && hour >= 1 && hour <= 12) {
            bool pm = is(i + 1, "pm");
            c.minutes = (hour % 12 + (pm ? 12 : 0)) * 60 + minute;
            c.used = 2;
            c.meridiem = true;
        } else if (is(i + 1, "o") && is(i + 2, "clock")) {
            c.used = 3;
        }
        return c;
    }

    // since yesterday / this morning / Monday [06:00] / 6am / midnight / last week.
    std::optional<result<time_found>> since(size_t i) const {
        if (!is(i, "since")) return std::nullopt;
        size_t k = i + 1;
        if (is(k, "yesterday")) {
            if (auto c = clock_at(k + 1))  // "since yesterday 18:00"
                return past(i, k + 1 + c->used, at_hour(_today - date::days(1), c->minutes), _now);
            return past(i, k + 1, at_hour(_today - date::days(1), 0), _now);
        }
        if (is(k, "today")) return past(i, k + 1, at_hour(_today, 0), _now);
        if (is(k, "this") && is(k + 1, "morning"))
            return past(i, k + 2, at_hour(_today, 6 * 60), _now);
        if (is(k, "last") && is(k + 1, "week"))
            return past(i, k + 2, at_hour(monday_of_this_week() - date::days(7), 0), _now);
        if (is(k, "the") && is(k + 1, "start") && is(k + 2, "of") && is(k + 3, "the") &&
            is(k + 4, "week"))
            return past(i, k + 5, at_hour(monday_of_this_week(), 0), _now);
        if (is(k, "last") && weekday_of(word(k + 1))) ++k;  // "since last Monday"
        if (auto wd = weekday_of(word(k))) {
            int minutes = 0;
            size_t end = k + 1;
            if (auto c = clock_at(k + 1)) {
                minutes = c->minutes;
                end = k + 1 + c->used;
            }
            auto day = last_weekday(*wd);
            if (at_hour(day, minutes) > _now) day -= date::days(7);
            return past(i, end, at_hour(day, minutes), _now);
        }
        if (auto c = clock_at(k)) {
            // The latest such time: "since 22:00" at 01:00 is since yesterday 22:00.
            auto day = _today;
            if (at_hour(day, c->minutes) > _now) day -= date::days(1);
            return past(i, k + c->used, at_hour(day, c->minutes), _now);
        }
        std::string after = text(k, std::min(k + 2, _t.size()));
        return make_error("invalid_argument",
                          "\"since " + after +
                              "\" is not a time I can read: say \"since 06:00\", \"since Monday "
                              "06:00\" or \"since yesterday\"",
                          "time");
    }

    // between A and B / from A to B, with an optional day: today (the default), yesterday,
    // this morning / afternoon / evening, yesterday afternoon, on Monday.
    std::optional<result<time_found>> between(size_t i,
                                              std::optional<date::local_days> on = {}) const {
        bool is_between = is(i, "between");
        if (!is_between && !is(i, "from")) return std::nullopt;
        auto a = clock_at(i + 1);
        if (!a) return std::nullopt;
        size_t k = i + 1 + a->used;
        if (is_between ? !is(k, "and") : !any(k, {"to", "until", "till"})) return std::nullopt;
        auto b = clock_at(k + 1);
        if (!b) return std::nullopt;
        k += 1 + b->used;
        // Numbers with a unit after them are values, not times ("between 2 and 4 bar").
        if (!canonical_unit(word(k)).empty() || unit_ms(word(k))) return std::nullopt;
        date::local_days day = on ? *on : _today;
        std::optional<day_part> part;
        size_t end = k;
        if (on) {
            // The day was said before the clock times.
        } else if (is(k, "this") && day_part_of(word(k + 1))) {
            part = day_part_of(word(k + 1));
            end = k + 2;
        } else if (any(k, {"today", "yesterday"})) {
            if (is(k, "yesterday")) day -= date::days(1);
            end = k + 1;
            if (auto p = day_part_of(word(k + 1))) {
                part = p;
                end = k + 2;
            }
        } else if (is(k, "on") && weekday_of(word(k + 1))) {
            day = last_weekday(*weekday_of(word(k + 1)));
            end = k + 2;
        } else if (auto wd = weekday_of(word(k))) {
            day = last_weekday(*wd);
            end = k + 1;
        } else if (is(k, "in") && is(k + 1, "the") && day_part_of(word(k + 2))) {
            part = day_part_of(word(k + 2));
            end = k + 3;
        }
        int from = a->minutes, to = b->minutes;
        if (part && part->afternoon) {
            if (!a->meridiem && from < 12 * 60) from += 12 * 60;
            if (!b->meridiem && to < 12 * 60) to += 12 * 60;
        }
        if (to <= from) {
            return make_error("invalid_argument", "\"" + text(i, end) + "\" ends before it begins",
                              "time");
        }
        return past(i, end, at_hour(day, from), at_hour(day, to));
    }

    // Monday / on Monday / Monday morning: the latest such day, today included.
    std::optional<result<time_found>> weekday_alone(size_t i) const {
        size_t k = is(i, "on") ? i + 1 : i;
        auto wd = weekday_of(word(k));
        if (!wd) return std::nullopt;
        auto day = last_weekday(*wd);
        if (auto part = day_part_of(word(k + 1)))
            return past(i, k + 2, at_hour(day, part->begin * 60), at_hour(day, part->end * 60));
        return past(i, k + 1, at_hour(day, 0), at_hour(day + date::days(1), 0));
    }

    const std::vector<std::string>& _t;
    int64_t _now;
    const date::time_zone* _zone;
    local_ms _local_now;
    date::local_days _today;
};

}  // namespace

result<const date::time_zone*> zone_named(std::string_view name) {
    try {
        if (name.empty()) return date::current_zone();
        return date::locate_zone(name);
    } catch (const std::exception&) {
        return make_error("invalid_argument",
                          "\"" + std::string(name) +
                              "\" is not a time zone this server knows (an IANA name such as "
                              "\"Europe/Berlin\")",
                          "time_zone");
    }
}

std::optional<result<time_found>> time_at(const std::vector<std::string>& tokens, size_t at,
                                          int64_t now_ms, const date::time_zone* zone) {
    if (at >= tokens.size()) return std::nullopt;
    return reader(tokens, now_ms, zone).at(at);
}

std::string rfc3339(int64_t ms, const date::time_zone* zone) {
    auto sys = date::sys_time<milliseconds>(milliseconds(ms));
    auto info = zone->get_info(date::floor<seconds>(sys));
    auto local = date::local_time<milliseconds>((sys + info.offset).time_since_epoch());
    std::string s = date::format("%Y-%m-%dT%H:%M:%S", date::floor<seconds>(local));
    int64_t fraction = ((ms % 1000) + 1000) % 1000;
    if (fraction != 0) {
        char buf[8];
        std::snprintf(buf, sizeof buf, ".%03d", static_cast<int>(fraction));
        s += buf;
    }
    int64_t offset_min = info.offset.count() / 60;
    char sign = offset_min < 0 ? '-' : '+';
    offset_min = offset_min < 0 ? -offset_min : offset_min;
    char buf[8];
    std::snprintf(buf, sizeof buf, "%c%02d:%02d", sign, static_cast<int>(offset_min / 60),
                  static_cast<int>(offset_min % 60));
    return s + buf;
}

std::optional<int64_t> parse_rfc3339(std::string_view s) {
    auto digits = [&](size_t at, size_t n) -> std::optional<int> {
        if (at + n > s.size()) return std::nullopt;
        int v = 0;
        for (size_t k = at; k < at + n; ++k) {
            if (s[k] < '0' || s[k] > '9') return std::nullopt;
            v = v * 10 + (s[k] - '0');
        }
        return v;
    };
    auto year = digits(0, 4), month = digits(5, 2), day = digits(8, 2);
    auto hour = digits(11, 2), minute = digits(14, 2), second = digits(17, 2);
    if (!year || !month || !day || !hour || !minute || !second || s.size() < 20 || s[4] != '-' ||
        s[7] != '-' || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') || s[13] != ':' ||
        s[16] != ':')
        return std::nullopt;
    date::year_month_day ymd{date::year(*year), date::month(static_cast<unsigned>(*month)),
                             date::day(static_cast<unsigned>(*day))};
    if (!ymd.ok() || *hour > 23 || *minute > 59 || *second > 60) return std::nullopt;
    size_t k = 19;
    int64_t fraction_ms = 0;
    if (k < s.size() && s[k] == '.') {
        ++k;
        int scale = 100;
        size_t begin = k;
        while (k < s.size() && s[k] >= '0' && s[k] <= '9') {
            fraction_ms += (s[k] - '0') * scale;
            scale /= 10;
            ++k;
        }
        if (k == begin) return std::nullopt;
    }
    int64_t offset_s = 0;
    if (k < s.size() && (s[k] == 'Z' || s[k] == 'z')) {
        ++k;
    } else if (k < s.size() && (s[k] == '+' || s[k] == '-')) {
        auto oh = digits(k + 1, 2), om = digits(k + 4, 2);
        if (!oh || !om || k + 3 >= s.size() || s[k + 3] != ':') return std::nullopt;
        offset_s = (*oh * 3600 + *om * 60) * (s[k] == '-' ? -1 : 1);
        k += 6;
    } else {
        return std::nullopt;
    }
    if (k != s.size()) return std::nullopt;
    int64_t days = date::sys_days(ymd).time_since_epoch().count();
    int64_t seconds_of_day = *hour * 3600 + *minute * 60 + *second;
    return (days * 86400 + seconds_of_day - offset_s) * 1000 + fraction_ms;
}

}  // namespace clisonix::ask::detail
