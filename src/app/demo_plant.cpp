#include "app/demo_plant.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <numbers>

namespace clisonix::app::sim {

namespace {

// splitmix64: a strong, cheap mix, so that hash(seed, a, b, c) is a pure random source.
uint64_t mix(uint64_t x) {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

uint64_t hash(uint64_t seed, uint64_t a, uint64_t b = 0, uint64_t c = 0) {
    return mix(mix(mix(mix(seed) ^ a) ^ b) ^ c);
}

double unit(uint64_t h) {
    return static_cast<double>(h >> 11) * 0x1.0p-53;
}  // [0, 1)

int64_t floor_div(int64_t a, int64_t b) {
    return a / b - ((a % b != 0) && ((a < 0) != (b < 0)));
}

// A standard normal value for (seed, machine, metric, t), clipped to ±3.5.
double gauss(uint64_t seed, size_t machine, size_t metric, int64_t t) {
    uint64_t base = hash(seed, 0x6e6f697365ull + machine, metric, static_cast<uint64_t>(t));
    double u1 = std::max(unit(mix(base ^ 1)), 1e-12);
    double u2 = unit(mix(base ^ 2));
    double z = std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2);
    return std::clamp(z, -3.5, 3.5);
}

double round3(double v) {
    return std::round(v * 1000.0) / 1000.0;
}

// The share of the daily cycle in [0.15, 0.85]; sites are out of phase.
double day_share(const plant& p, size_t machine, int64_t t) {
    const auto& m = p.machines[machine];
    uint64_t site = m.site == p.sites.front() ? 0 : 1;
    double phase = unit(hash(p.seed, 0x646179ull, site)) * day_seconds;
    return 0.5 +
           0.35 * std::sin(2.0 * std::numbers::pi * (static_cast<double>(t) + phase) / day_seconds);
}

// The metric's value of a healthy machine at t: the normalised level within [low, high]
// plus noise, mapped to the metric's range.
double healthy(const plant& p, size_t machine, size_t metric_index, int64_t t) {
    const auto& k = kinds()[p.machines[machine].kind];
    const auto& ms = k.metrics[metric_index];
    const double span = ms.high - ms.low;
    const double sp = setpoint(p, machine, t);
    const double speed01 = (sp - 0.7) / 0.3;
    const double noise = gauss(p.seed, machine, metric_index, t);
    const std::string_view name = ms.name;
    double f = 0, sigma = 0;
    if (name == "temperature") {
        // Heat follows the load with a lag: the mean of the load 30 s and 90 s ago.
        double lagged = 0.5 * load(p, machine, t - 30) + 0.5 * load(p, machine, t - 90);
        f = 0.1 + 0.85 * lagged;
        sigma = 0.008;
    } else if (name == "vibration_rms") {
        f = 0.2 + 0.3 * speed01 + 0.15 * load(p, machine, t);
        sigma = 0.035;
    } else if (name == "current") {
        f = 0.05 + 0.9 * load(p, machine, t);
        sigma = 0.012;
    } else if (name == "pressure") {
        f = 0.1 + 0.8 * (sp * sp - 0.49) / 0.51;
        sigma = 0.01;
    } else if (name == "flow") {
        f = 0.1 + 0.6 * speed01 + 0.25 * day_share(p, machine, t);
        sigma = 0.015;
    } else if (name == "rpm") {
        // An induction motor: speed by the set-point, slipping a little under load.
        return round3(ms.high * sp * (1.0 - 0.01 * load(p, machine, t)) + 0.0015 * ms.high * noise);
    }
    return round3(ms.low + span * (f + sigma * noise));
}

size_t metric_index(const kind_spec& k, std::string_view metric) {
    for (size_t i = 0; i < k.metrics.size(); ++i)
        if (k.metrics[i].name == metric) return i;
    return k.metrics.size();
}

std::string format_number(double v) {
    char buf[32];
    auto r = std::to_chars(buf, buf + sizeof buf, v);
    return std::string(buf, r.ptr);
}

}  // namespace

const std::vector<kind_spec>& kinds() {
    static const std::vector<kind_spec> all = {
        {"pump",
         "Centrifugal pump with a variable-speed drive",
         {{"temperature", "°C", 40, 70},
          {"vibration_rms", "mm/s", 0.8, 3.0},
          {"current", "A", 12, 28},
          {"pressure", "bar", 3, 6},
          {"flow", "m³/h", 20, 60},
          {"rpm", "rpm", 1000, 1500}},
         80,
         75},
        {"compressor",
         "Screw air compressor",
         {{"temperature", "°C", 55, 85},
          {"vibration_rms", "mm/s", 1.5, 4.5},
          {"current", "A", 35, 65},
          {"pressure", "bar", 6.5, 9.5},
          {"rpm", "rpm", 2000, 3000}},
         95,
         90},
        {"conveyor",
         "Belt conveyor drive",
         {{"temperature", "°C", 30, 55},
          {"vibration_rms", "mm/s", 0.5, 2.5},
          {"current", "A", 4, 12},
          {"rpm", "rpm", 40, 120}},
         70,
         65},
    };
    return all;
}

const metric_spec* find_metric(const kind_spec& k, std::string_view metric) {
    size_t i = metric_index(k, metric);
    return i < k.metrics.size() ? &k.metrics[i] : nullptr;
}

plant make_plant(uint64_t seed) {
    plant p;
    p.seed = seed;
    p.sites = {"north-site", "south-site"};
    const int machines_per_line[] = {4, 3, 3, 4, 3, 3};  // 20 machines
    int count[3] = {0, 0, 0};
    for (size_t s = 0; s < p.sites.size(); ++s) {
        std::string site_short = s == 0 ? "north" : "south";
        for (int l = 0; l < 3; ++l) {
            size_t line_index = s * 3 + static_cast<size_t>(l);
            line_asset line{site_short + "-line-" + std::to_string(l + 1), p.sites[s]};
            for (int j = 0; j < machines_per_line[line_index]; ++j) {
                size_t kind = (line_index + static_cast<size_t>(j)) % kinds().size();
                int n = ++count[kind];
                machine m;
                m.name =
                    std::string(kinds()[kind].name) + (n < 10 ? "-0" : "-") + std::to_string(n);
                m.kind = kind;
                m.site = line.site;
                m.line = line.name;
                m.over_mqtt = p.machines.size() % 2 == 1;
                p.machines.push_back(std::move(m));
            }
            p.lines.push_back(std::move(line));
        }
    }
    return p;
}

std::string_view fault_name(fault_kind k) {
    switch (k) {
        case fault_kind::bearing_wear:
            return "bearing wear";
        case fault_kind::overheating:
            return "overheating";
        case fault_kind::stuck_sensor:
            return "stuck sensor";
        case fault_kind::drift:
            return "sensor drift";
        case fault_kind::silent:
            return "silent device";
    }
    return "fault";
}

std::string_view stuck_metric(const kind_spec& k) {
    // One that otherwise moves with the set-point, so that a stuck reading is visible.
    return find_metric(k, "pressure") ? "pressure" : "rpm";
}

std::vector<fault> faults_in_cycle(const plant& p, int64_t cycle) {
    const int64_t base = cycle * fault_cycle_seconds;
    const size_t n = p.machines.size();
    std::vector<bool> used(n, false);
    auto pick = [&](fault_kind k) {
        size_t i =
            hash(p.seed, 0x6661756c74ull, static_cast<uint64_t>(cycle), static_cast<uint64_t>(k)) %
            n;
        while (used[i])
            i = (i + 1) % n;
        used[i] = true;
        return i;
    };
    std::vector<fault> out;
    out.push_back({fault_kind::bearing_wear, pick(fault_kind::bearing_wear), "vibration_rms",
                   base + 30, base + 420, base + 90});
    // A two-minute ramp: slow enough for a forecast to see where it is going before the
    // threshold rule's minute above the limit has passed.
    out.push_back({fault_kind::overheating, pick(fault_kind::overheating), "temperature", base + 45,
                   base + 390, base + 165});
    out.push_back({fault_kind::silent, pick(fault_kind::silent), "", base + 120, base + 390, 0});
    size_t stuck = pick(fault_kind::stuck_sensor);
    out.push_back({fault_kind::stuck_sensor, stuck, stuck_metric(kinds()[p.machines[stuck].kind]),
                   base + 180, base + 600, 0});
    out.push_back(
        {fault_kind::drift, pick(fault_kind::drift), "current", base + 240, base + 840, 0});
    return out;
}

std::vector<fault> faults_between(const plant& p, int64_t from, int64_t to) {
    std::vector<fault> out;
    if (to <= 0 || to <= from) return out;
    // Every fault ends within its own cycle, so only the cycles of [from, to) matter.
    for (int64_t c = floor_div(std::max<int64_t>(from, 0), fault_cycle_seconds);
         c * fault_cycle_seconds < to; ++c)
        for (auto& f : faults_in_cycle(p, c))
            if (f.start < to && f.end > from) out.push_back(f);
    std::stable_sort(out.begin(), out.end(),
                     [](const fault& a, const fault& b) { return a.start < b.start; });
    return out;
}

double setpoint(const plant& p, size_t machine, int64_t t) {
    static constexpr double steps[] = {0.7, 0.85, 1.0};
    int64_t offset = static_cast<int64_t>(hash(p.seed, 0x6f6666ull, machine) % setpoint_seconds);
    int64_t bucket = floor_div(t + offset, setpoint_seconds);
    return steps[hash(p.seed, 0x7370ull, machine, static_cast<uint64_t>(bucket)) % 3];
}

double load(const plant& p, size_t machine, int64_t t) {
    return std::clamp(0.1 + 0.9 * day_share(p, machine, t) * setpoint(p, machine, t), 0.0, 1.0);
}

reading sample(const plant& p, size_t machine, int64_t t) {
    reading r;
    const auto& k = kinds()[p.machines[machine].kind];
    std::vector<fault> active;
    if (t >= 0)
        for (auto& f : faults_between(p, t, t + 1))
            if (f.machine == machine) active.push_back(f);
    for (const auto& f : active)
        if (f.kind == fault_kind::silent) {
            r.present = false;
            return r;
        }
    r.values.reserve(k.metrics.size());
    for (size_t i = 0; i < k.metrics.size(); ++i) {
        const auto& ms = k.metrics[i];
        double v = healthy(p, machine, i, t);
        for (const auto& f : active) {
            if (f.metric != ms.name) continue;
            const double span = ms.high - ms.low;
            const double since = static_cast<double>(t - f.start);
            switch (f.kind) {
                case fault_kind::bearing_wear:
                    // Wear creeps up for a minute; then the race is damaged: impacts make the
                    // level jump and the reading erratic (12x the healthy noise).
                    if (t < f.peak) {
                        v *= 1.0 + 0.15 * since / static_cast<double>(f.peak - f.start);
                    } else {
                        double calm = v - ms.low;
                        v = std::max(
                            ms.low * 0.5,
                            ms.low + 1.5 * calm +
                                12.0 * 0.035 * span * gauss(p.seed, machine, 0x696d70ull + i, t));
                    }
                    break;
                case fault_kind::overheating: {
                    // From any load the ramp ends 10 degrees past the type's limit.
                    double top = k.overheat + 10.0 - (ms.low + 0.1 * span);
                    double share = 1.0;
                    if (t < f.peak)
                        share = since / static_cast<double>(f.peak - f.start);
                    else if (t >= f.end - 60)
                        share = static_cast<double>(f.end - t) / 60.0;
                    v += top * share;
                    break;
                }
                case fault_kind::stuck_sensor:
                    v = healthy(p, machine, i, f.start);
                    break;
                case fault_kind::drift:
                    v += 0.0015 * span * since;
                    break;
                case fault_kind::silent:
                    break;
            }
            v = round3(v);
        }
        r.values.emplace_back(ms.name, v);
    }
    return r;
}

double healthy_value(const plant& p, size_t machine, std::string_view metric, int64_t t) {
    const auto& k = kinds()[p.machines[machine].kind];
    size_t i = metric_index(k, metric);
    return i < k.metrics.size() ? healthy(p, machine, i, t) : 0.0;
}

std::string telemetry_json(const reading& r, int64_t ts_ms) {
    std::string out = "{\"ts\":" + std::to_string(ts_ms) + ",\"values\":{";
    for (size_t i = 0; i < r.values.size(); ++i) {
        if (i) out.push_back(',');
        out += "\"";
        out += r.values[i].first;
        out += "\":" + format_number(r.values[i].second);
    }
    out += "}}";
    return out;
}

void append_line(std::string& out, std::string_view device, const reading& r, int64_t ts_ms) {
    if (!r.present || r.values.empty()) return;
    out += "telemetry,device=";
    out += device;
    out.push_back(' ');
    for (size_t i = 0; i < r.values.size(); ++i) {
        if (i) out.push_back(',');
        out += r.values[i].first;
        out.push_back('=');
        out += format_number(r.values[i].second);
    }
    out.push_back(' ');
    out += std::to_string(ts_ms);
    out.push_back('\n');
}

std::string duration_text(double seconds) {
    int64_t ms = std::max<int64_t>(1, std::llround(seconds * 1000.0));
    if (ms % 3'600'000 == 0) return std::to_string(ms / 3'600'000) + "h";
    if (ms % 60'000 == 0) return std::to_string(ms / 60'000) + "m";
    if (ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
    return std::to_string(ms) + "ms";
}

std::vector<rule_def> rules_for(double speed) {
    std::vector<rule_def> out;
    for (const auto& k : kinds()) {
        std::string type(k.name);
        out.push_back(
            {type + " overheating", type, "major",
             "temperature > " + format_number(k.overheat) + " for " + duration_text(60.0 / speed),
             "temperature < " + format_number(k.overheat_clear)});
        out.push_back(
            {type + " vibration anomaly", type, "minor", "anomaly(vibration_rms) > 0.8", ""});
        out.push_back({type + " no data", type, "critical",
                       "no data for " + duration_text(120.0 / speed), ""});
        // A reading that no longer moves at all: a live sensor always has some noise, so
        // every point of the last 30 s equal to their mean means a stuck transmitter.
        const std::string stuck(stuck_metric(k));
        const std::string window = duration_text(30.0 / speed);
        out.push_back(
            {type + " stuck sensor", type, "minor",
             "abs(" + stuck + " - mean(" + stuck + ", " + window + ")) < 0.0005 for " + window,
             ""});
        // Motor current beyond its rated range for a minute: a healthy machine stays inside
        // it at any load, a drifting current transmitter (or a failing motor) leaves it.
        const metric_spec* current = find_metric(k, "current");
        out.push_back({type + " current out of range", type, "major",
                       "current outside " + format_number(current->low) + ".." +
                           format_number(current->high) + " for " + duration_text(60.0 / speed),
                       ""});
        // The machine as a whole, away from the normal it learned in its first hour (the
        // backfill) for a minute: the product's fixed health threshold, 0.5.
        out.push_back({type + " health", type, "minor",
                       "health() > 0.5 for " + duration_text(60.0 / speed), ""});
    }
    // Rules on the forecast, after the others (whose order the dashboard and the tests know).
    // The horizon and the interval shrink with the speed down to the language's 1 s minimum.
    const std::string within = duration_text(std::max(1.0, 600.0 / speed));
    // Current follows the load at once, set-point steps included, so a forecast of it is
    // surer over minutes than over a whole (compressed) day: a 10-minute horizon saw healthy
    // machines at full load "heading past" their rated current.
    const std::string within_current = duration_text(std::max(1.0, 300.0 / speed));
    const std::string every = duration_text(std::max(1.0, 10.0 / speed));
    for (const auto& k : kinds()) {
        std::string type(k.name);
        out.push_back({type + " temperature forecast", type, "warning",
                       "crosses(temperature, above " + format_number(k.overheat) + ") within " +
                           within + " every " + every,
                       ""});
        out.push_back({type + " current forecast", type, "warning",
                       "crosses(current, above " + format_number(find_metric(k, "current")->high) +
                           ") within " + within_current + " every " + every,
                       ""});
    }
    return out;
}

std::string forecast_rule_for_fault(const plant& p, const fault& f) {
    const std::string type(kinds()[p.machines[f.machine].kind].name);
    if (f.kind == fault_kind::overheating) return type + " temperature forecast";
    if (f.kind == fault_kind::drift) return type + " current forecast";
    return {};
}

std::string rule_for_fault(const plant& p, const fault& f) {
    const std::string type(kinds()[p.machines[f.machine].kind].name);
    switch (f.kind) {
        case fault_kind::bearing_wear:
            return type + " vibration anomaly";
        case fault_kind::overheating:
            return type + " overheating";
        case fault_kind::silent:
            return type + " no data";
        case fault_kind::stuck_sensor:
            return type + " stuck sensor";
        case fault_kind::drift:
            return type + " current out of range";
    }
    return {};
}

std::optional<int64_t> parse_seconds(std::string_view text) {
    int64_t n = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
    if (ec != std::errc() || end == text.data() || n < 0) return std::nullopt;
    std::string_view unit(end, static_cast<size_t>(text.data() + text.size() - end));
    if (unit.empty() || unit == "s") return n;
    if (unit == "m") return n * 60;
    if (unit == "h") return n * 3600;
    return std::nullopt;
}

std::string summary(const plant& p, double speed) {
    int per_kind[3] = {0, 0, 0};
    size_t sensors = 0, mqtt = 0;
    for (const auto& m : p.machines) {
        ++per_kind[m.kind];
        sensors += kinds()[m.kind].metrics.size();
        mqtt += m.over_mqtt ? 1 : 0;
    }
    auto first = faults_in_cycle(p, 0).front();
    std::string in = format_number(std::round(static_cast<double>(first.start) / speed * 10) / 10);
    std::string out =
        "Simulating " + std::to_string(p.machines.size()) + " machines (" +
        std::to_string(per_kind[0]) + " pumps, " + std::to_string(per_kind[1]) + " compressors, " +
        std::to_string(per_kind[2]) + " conveyors; " + std::to_string(sensors) +
        " sensors at 1 Hz) on " + std::to_string(p.sites.size()) + " sites and " +
        std::to_string(p.lines.size()) + " lines, " + std::to_string(p.machines.size() - mqtt) +
        " over HTTP and " + std::to_string(mqtt) +
        " over MQTT; first fault: " + std::string(fault_name(first.kind)) + " on " +
        p.machines[first.machine].name + " in " + in +
        " s, then overheating, a silent device, a stuck sensor and drift";
    if (speed != 1.0) out += " (speed " + format_number(speed) + ")";
    return out;
}

}  // namespace clisonix::app::sim
