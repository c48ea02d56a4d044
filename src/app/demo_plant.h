// Private to the app: the simulated plant behind `clisonix demo`.
//
// Everything here is a pure function of (seed, machine, simulated second): no clocks, no
// state, no I/O, so the same seed gives the same plant, the same fault schedule and the same
// values on every run and in the unit tests (tests/demo/). demo.cpp turns these values into
// real API calls and telemetry.
//
// The plant: 2 sites, 3 lines each, 20 machines of three kinds (pump: 6 sensors,
// compressor: 5, conveyor: 4) sampled once per simulated second. Signals:
//   - load: a daily cycle compressed into `day_seconds` (10 minutes, so that a newcomer sees
//     a whole "day" while watching) times a speed set-point that steps every 2 minutes;
//   - current follows the load at once, temperature follows it with a lag (so the two are
//     positively correlated), rpm follows the set-point, pressure ~ speed² and
//     flow ~ speed (pump affinity laws), vibration rises with speed; every sensor has noise.
// Faults repeat every `fault_cycle_seconds` on machines chosen by the seed (see
// faults_in_cycle()); the first one starts 30 s after the start.
//
// Thread safety: every function is pure; a `plant` is immutable after make_plant().
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace clisonix::app::sim {

inline constexpr int64_t day_seconds = 600;          // one compressed "day" of load
inline constexpr int64_t setpoint_seconds = 120;     // speed set-point steps
inline constexpr int64_t fault_cycle_seconds = 900;  // the fault schedule repeats

struct metric_spec {
    std::string_view name;  // "temperature"
    std::string_view unit;  // "°C"
    double low, high;       // the expected (normal) range
};

// A kind of machine is a device type: its sensors and its overheating limits.
struct kind_spec {
    std::string_view name;  // device type name: "pump"
    std::string_view description;
    std::vector<metric_spec> metrics;
    double overheat;        // temperature alarm above this ...
    double overheat_clear;  // ... cleared below this
};
const std::vector<kind_spec>& kinds();
const metric_spec* find_metric(const kind_spec& k, std::string_view metric);
// The sensor of the kind that a stuck-sensor fault freezes: pressure, else rpm.
std::string_view stuck_metric(const kind_spec& k);

struct machine {
    std::string name;  // device name: "pump-03"
    size_t kind;       // index into kinds()
    std::string site;  // asset names
    std::string line;
    bool over_mqtt;  // fed over MQTT (else HTTP)
};

struct line_asset {
    std::string name;
    std::string site;
};

struct plant {
    uint64_t seed = 0;
    std::vector<std::string> sites;
    std::vector<line_asset> lines;
    std::vector<machine> machines;
};

// The plant of a seed: the layout is fixed, the seed moves phases, set-points and faults.
plant make_plant(uint64_t seed);

enum class fault_kind { bearing_wear, overheating, stuck_sensor, drift, silent };
std::string_view fault_name(fault_kind k);  // "bearing wear"

struct fault {
    fault_kind kind;
    size_t machine;           // index into plant::machines
    std::string_view metric;  // the sensor affected ("" for silent: all of them)
    int64_t start;            // simulated seconds since the start, [start, end)
    int64_t end;
    int64_t peak;  // bearing wear: the jump; overheating: the top of the ramp
};

// The faults of cycle `cycle` (0, 1, ...), in start order: bearing wear at +30 s (creeping
// vibration, then a jump at +90 s), overheating at +45 s (a 120 s ramp past the type's
// limit), a silent device at +120 s (for 4.5 min), a stuck sensor at +180 s and drift at
// +240 s. Each on a different machine chosen by (seed, cycle).
std::vector<fault> faults_in_cycle(const plant& p, int64_t cycle);
// Every fault of any cycle that overlaps [from, to), in start order.
std::vector<fault> faults_between(const plant& p, int64_t from, int64_t to);

// The machine's load in [0, 1] at simulated second `t` (without faults).
double load(const plant& p, size_t machine, int64_t t);
// The speed set-point in {0.7, 0.85, 1.0}.
double setpoint(const plant& p, size_t machine, int64_t t);

struct reading {
    bool present = true;  // false: the device is silent this second
    std::vector<std::pair<std::string_view, double>> values;  // metric -> value, kind's order
};
// The machine's sensors at simulated second `t`. t < 0 is history (the backfill): never
// faulty, so the detectors learn the healthy machine first.
reading sample(const plant& p, size_t machine, int64_t t);

// The value the metric would have at t on a healthy machine (sample() without faults).
double healthy_value(const plant& p, size_t machine, std::string_view metric, int64_t t);

// {"ts":<ts_ms>,"values":{"temperature":61.2,...}} — the JSON telemetry body of a reading.
std::string telemetry_json(const reading& r, int64_t ts_ms);
// "telemetry,device=<name> temperature=61.2,... <ts_ms>\n" — a line-protocol line (ms).
void append_line(std::string& out, std::string_view device, const reading& r, int64_t ts_ms);

// The rules the demo installs, per device type, one for each kind of fault as a plant
// engineer would set it up: an overheating threshold with a duration and a clear condition,
// an anomaly rule on vibration (bearing wear), a no-data rule (silent device), a flat-line
// rule on the sensor that can stick, the motor current outside its rated range for a minute
// (drift), and machine health above its fixed threshold for a minute; then, after those
// of every type, one rule on the forecast per type for each fault that builds up slowly:
// the temperature (overheating) and the current (drift) expected past their limits within
// ten minutes, so that the plant engineer hears of them before the threshold rules fire.
// `speed` compresses the durations as it compresses the schedule (speed 10: "for 1m"
// becomes "for 6s", "within 10m every 10s" becomes "within 1m every 1s").
struct rule_def {
    std::string name;
    std::string device_type;
    std::string severity;
    std::string condition;
    std::string clear;  // "" for none
};
std::vector<rule_def> rules_for(double speed);
// The name of the rule (of rules_for()) whose alarm the fault must raise on its machine.
std::string rule_for_fault(const plant& p, const fault& f);
// The rule on the forecast (of rules_for()) that must warn of the fault before
// rule_for_fault's alarm: overheating and drift; "" for the other kinds.
std::string forecast_rule_for_fault(const plant& p, const fault& f);

// "6s", "1m", "90s", "250ms": the shortest text the rule language reads as `seconds`.
std::string duration_text(double seconds);

// "90", "90s", "10m", "1h" -> seconds; nullopt for anything else (negative, no number).
std::optional<int64_t> parse_seconds(std::string_view text);

// One line: what is simulated and when the first fault comes (at `speed`).
std::string summary(const plant& p, double speed);

}  // namespace clisonix::app::sim
