// The words of an answer (see answer_text.h).
#include "ask/answer_text.h"

#include <date/tz.h>

#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <stdexcept>

namespace clisonix::ask::text {

namespace {

// The zone by IANA name; empty: the machine's own; unknown: UTC (the names were checked when
// the configuration was read, so this is a fallback, not a way to pass a typo).
const date::time_zone* zone(std::string_view name) {
    try {
        return name.empty() ? date::current_zone() : date::locate_zone(name);
    } catch (const std::exception&) {
        return date::locate_zone("UTC");
    }
}

using ms_time = date::sys_time<std::chrono::milliseconds>;

date::local_days local_day(const date::time_zone* z, int64_t ms) {
    return date::floor<date::days>(z->to_local(ms_time{std::chrono::milliseconds{ms}}));
}

std::string strip_zeros(std::string s) {
    if (s.find('.') == std::string::npos) return s;
    while (!s.empty() && s.back() == '0')
        s.pop_back();
    if (!s.empty() && s.back() == '.') s.pop_back();
    return s;
}

}  // namespace

std::string number(double v) {
    if (!std::isfinite(v)) return std::isnan(v) ? "no value" : (v > 0 ? "infinity" : "-infinity");
    if (v == 0) return "0";
    char buf[64];
    const double a = std::fabs(v);
    if (a >= 100) {
        std::snprintf(buf, sizeof buf, "%.0f", v);
        return buf;
    }
    // Digits after the point for 3 significant ones: 83.1 -> 1, 0.0421 -> 4.
    const int magnitude = static_cast<int>(std::floor(std::log10(a)));
    const int decimals = std::max(0, 2 - magnitude);
    std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
    std::string s = strip_zeros(buf);
    return s == "-0" ? "0" : s;
}

std::string with_unit(double v, std::string_view unit) {
    std::string s = number(v);
    if (unit.empty()) return s;
    if (unit == "%") return s + " %";
    return s + " " + std::string(unit);
}

std::string duration(int64_t ms) {
    if (ms < 0) ms = 0;
    const int64_t s = (ms + 500) / 1000;
    const int64_t days = s / 86400, hours = s % 86400 / 3600, minutes = s % 3600 / 60;
    if (days > 0)
        return std::to_string(days) + " d" + (hours ? " " + std::to_string(hours) + " h" : "");
    if (hours > 0)
        return std::to_string(hours) + " h" +
               (minutes ? " " + std::to_string(minutes) + " min" : "");
    if (minutes > 0) return std::to_string(minutes) + " min";
    return std::to_string(s) + " s";
}

std::string moment(int64_t ms, int64_t now_ms, std::string_view time_zone) {
    const auto* z = zone(time_zone);
    const auto local = z->to_local(ms_time{std::chrono::milliseconds{ms}});
    const auto day = date::floor<date::days>(local);
    const auto today = local_day(z, now_ms);
    const std::string clock = date::format("%H:%M", date::floor<std::chrono::minutes>(local));
    if (day == today) return clock;
    if (day == today - date::days{1}) return clock + " yesterday";
    if (day == today + date::days{1}) return clock + " tomorrow";
    return date::format("%Y-%m-%d %H:%M", date::floor<std::chrono::minutes>(local));
}

std::string rfc3339(int64_t ms, std::string_view time_zone) {
    const auto zt = date::make_zoned(
        zone(time_zone), date::floor<std::chrono::seconds>(ms_time{std::chrono::milliseconds{ms}}));
    return date::format("%Y-%m-%dT%H:%M:%S%Ez", zt);
}

std::string range(const plan& p, std::string_view time_zone) {
    if (!p.time_text.empty()) return p.time_text;
    if (p.agg == aggregate::last && p.from_ms >= p.to_ms) return "now";
    return "between " + moment(p.from_ms, p.to_ms, time_zone) + " and " +
           moment(p.to_ms, p.to_ms, time_zone);
}

std::string join(const std::vector<std::string>& items) {
    std::string out;
    for (size_t i = 0; i < items.size(); ++i) {
        if (i) out += i + 1 == items.size() ? " and " : ", ";
        out += items[i];
    }
    return out;
}

std::string plural(std::string_view type, const vocabulary& vocab) {
    for (const auto& t : vocab.types)
        if (t.name == type && !t.plural.empty()) return t.plural;
    return std::string(type) + "s";
}

std::string scope(const plan& p, size_t count, const vocabulary& vocab) {
    if (!p.devices.empty()) {
        if (p.devices.size() <= 3) return join(p.devices);
        return std::to_string(p.devices.size()) + " devices";
    }
    std::string what = p.device_type.empty() ? "devices" : plural(p.device_type, vocab);
    if (count == 1 && !p.device_type.empty()) what = p.device_type;
    if (!p.asset.empty()) return "the " + what + " on " + p.asset;
    if (!p.device_type.empty()) return "the " + what;
    return "all devices";
}

std::string aggregate_name(aggregate a) {
    switch (a) {
        case aggregate::last:
            return "current value";
        case aggregate::mean:
            return "average";
        case aggregate::min:
            return "minimum";
        case aggregate::max:
            return "maximum";
        case aggregate::sum:
            return "total";
        case aggregate::count:
            return "number of readings";
        case aggregate::p50:
            return "median";
        case aggregate::p90:
            return "90th percentile";
        case aggregate::p95:
            return "95th percentile";
        case aggregate::p99:
            return "99th percentile";
        case aggregate::change:
            return "change";
        case aggregate::trend:
            return "trend";
        case aggregate::time_above:
            return "time above";
        case aggregate::time_below:
            return "time below";
    }
    return "value";
}

std::string aggregate_column(aggregate a) {
    switch (a) {
        case aggregate::last:
            return "last";
        case aggregate::mean:
            return "mean";
        case aggregate::min:
            return "min";
        case aggregate::max:
            return "max";
        case aggregate::sum:
            return "sum";
        case aggregate::count:
            return "count";
        case aggregate::p50:
            return "p50";
        case aggregate::p90:
            return "p90";
        case aggregate::p95:
            return "p95";
        case aggregate::p99:
            return "p99";
        case aggregate::change:
            return "change";
        case aggregate::trend:
            return "slope_per_h";
        case aggregate::time_above:
            return "hours_above";
        case aggregate::time_below:
            return "hours_below";
    }
    return "value";
}

std::string sentence(std::string s) {
    if (!s.empty()) s[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(s[0])));
    return s;
}

}  // namespace clisonix::ask::text
