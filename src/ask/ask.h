// Clisonix — Ask: questions about the plant in plain language.
//
// A question becomes a plan, the plan is checked, the checked plan runs, and the answer says
// in one or two sentences what the numbers behind it say:
//
//   question --parse()--> plan --check()--> plan --execute()--> answer
//                 \--(not understood, ask.ollama_url set)--> llm_plan() --/
//
// parse() is a deterministic grammar over the plant's own vocabulary (device names, types
// and their plurals, assets and their hierarchy, metric names, units and synonyms); it needs
// nothing else to run. An optional LLM back end (Ollama's /api/chat with the plan's JSON
// schema) may propose a plan for a question the grammar cannot read; check() validates every
// plan against the vocabulary before it runs, whichever produced it, so a model's invented
// device or metric is refused, never answered.
//
// Never a confident wrong answer: whatever is ambiguous (a name several devices match, a
// metric the scope's devices lack, a unit that is not the metric's) is `understood: false`
// with the reason and two or three rephrasings built from the vocabulary.
//
// Times are in the server's time zone (`ask.time_zone`); plans carry absolute [from, to) in
// Unix ms, so that a plan means the same thing whoever reads it.
//
// Thread safety: vocabulary is immutable once built; parse(), check() and the JSON functions
// are pure; execute() may run on any thread (it reads through the services in `sources`).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "common/result.h"

namespace clisonix::http {
class router;
}
namespace clisonix::storage {
class engine;
}
namespace clisonix::devices {
class registry;
}
namespace clisonix::rules {
class engine;
}
namespace clisonix::forecast {
class service;
}

namespace clisonix::ask {

// ---- the plant's vocabulary ------------------------------------------------------------

struct metric_word {
    std::string name;                   // the field: "vibration_rms"
    std::string unit;                   // "mm/s" (from the device types), may be empty
    std::vector<std::string> synonyms;  // "vibration", "vib"; built-in plus the name's words
};

struct type_word {
    std::string name;                  // "pump"
    std::string plural;                // "pumps"
    std::vector<std::string> metrics;  // the type's metric names
};

struct asset_word {
    std::string name;                  // "line-2"
    std::string type;                  // "line", "site"
    std::string parent;                // the asset containing it ("north-site"), empty at the top
    std::vector<std::string> devices;  // every device under it (the whole subtree), sorted
};

struct device_word {
    std::string name;  // "pump-04"
    std::string type;  // "pump"
    std::string label;
    std::vector<std::string> assets;  // the assets containing it, nearest first
    bool online = false;
};

struct vocabulary {
    std::vector<device_word> devices;  // sorted by name
    std::vector<type_word> types;
    std::vector<asset_word> assets;
    std::vector<metric_word> metrics;  // every metric any type or stored series names
    std::string time_zone;             // IANA name the times are read in ("Europe/Berlin")
};

// The vocabulary as it is now: the registry's devices, types and assets, and the metric
// names of the stored series (so that a metric of a device without a type is known too).
result<vocabulary> build_vocabulary(devices::registry& registry, const storage::engine& engine,
                                    std::string_view time_zone);

// ---- the plan ---------------------------------------------------------------------------

enum class plan_kind { telemetry, alarms, health, offline, forecast };

enum class aggregate {
    last,  // "now", "current"
    mean,
    min,
    max,
    sum,
    count,
    p50,
    p90,
    p95,
    p99,
    change,      // last minus first in the range
    trend,       // rising / falling / flat from the least-squares slope over the range
    time_above,  // total time the metric was above `threshold` (sample-and-hold)
    time_below,
};

enum class grouping { device, asset, none };

struct comparison {
    std::string op;  // ">", ">=", "<", "<=", "=", "!="
    double value = 0;
};

struct plan {
    plan_kind kind = plan_kind::telemetry;
    // The scope: explicit devices, or every device of `device_type` under `asset` (either may
    // be empty; both empty with no devices: the whole plant).
    std::vector<std::string> devices;
    std::string device_type;
    std::string asset;
    std::string metric;   // a field name; empty for alarms / offline, or health overall
    std::string unit;     // the metric's unit as the vocabulary knows it
    int64_t from_ms = 0;  // [from, to) in Unix ms; for `last` the time the value is read at
    int64_t to_ms = 0;
    std::string time_text;  // the words the range came from: "yesterday"
    aggregate agg = aggregate::last;
    grouping group_by = grouping::device;
    std::string asset_level;              // with group_by asset: "line" or "site" (an asset type)
    std::optional<comparison> threshold;  // time_above/time_below; forecast: the level to reach
    std::optional<comparison> filter;     // keep groups whose aggregate satisfies it
    std::string order;                    // "desc", "asc" or empty
    std::optional<int64_t> limit;
    std::string alarm_status;  // alarms: "open", "active", "any"
    std::string source;        // "parser" or "llm"
};

// Why a question was not understood, and what to ask instead.
struct not_understood {
    std::vector<std::string> reasons;      // each names the words and why
    std::vector<std::string> suggestions;  // two or three questions that would be understood
};

struct parse_options {
    int64_t now_ms = 0;  // "now"; times are read in the vocabulary's time zone
};

// The grammar's reading of `question`: a plan (already checked), or what it could not read.
std::variant<plan, not_understood> parse(std::string_view question, const vocabulary& vocab,
                                         const parse_options& opts);

// Every plan runs only after this says yes: names exist in the vocabulary, the metric exists
// for the scope's devices, the unit matches, the range is ordered and not in the future past
// `now_ms`, the aggregate fits the kind, threshold and filter where needed, limit > 0.
// Errors: "invalid_argument" with field = the plan's member ("devices", "metric", ...).
status check(const plan& p, const vocabulary& vocab, int64_t now_ms);

// ---- plan as JSON -----------------------------------------------------------------------

// The plan as the answer shows it (times as RFC 3339 in the vocabulary's time zone).
std::string plan_to_json(const plan& p, std::string_view time_zone);
// A plan from JSON (the LLM's output, or a client's): "invalid_argument" naming the member.
result<plan> plan_from_json(std::string_view json, std::string_view time_zone);
// The JSON Schema of a plan, as Ollama's `format` takes it.
std::string plan_json_schema();

// ---- running a plan ---------------------------------------------------------------------

// What execute() reads from; every member outlives the call.
struct sources {
    const storage::engine* engine = nullptr;
    devices::registry* registry = nullptr;
    rules::engine* rules = nullptr;          // alarms; null: alarm questions not understood
    forecast::service* forecasts = nullptr;  // null: forecast questions not understood
    // Raw points one answer may read (query.max_points): p95, trend and time above/below
    // read raw points; over this the answer says so instead of using part of the data.
    int64_t max_points = 1'000'000;
};

struct answer {
    std::string text;        // one or two sentences with numbers and units
    std::string data_json;   // {"columns":[...],"rows":[[...],...]} or {"series":[...]}
    std::string chart_json;  // {"type":"bar"|"line"|"table"|"number", ...}
};

result<answer> execute(const plan& p, const vocabulary& vocab, const sources& from);

// ---- the optional LLM back end ----------------------------------------------------------

struct llm_options {
    std::string ollama_url;  // empty: off (nothing leaves the server)
    std::string model;
    int64_t timeout_ms = 10000;
};

// Asks the model for a plan for `question` (Ollama /api/chat, format = plan_json_schema(),
// the vocabulary's names in the system prompt). The plan still has to pass check().
// Errors: "unavailable" (not reachable, timeout), "invalid_argument" (no valid plan JSON).
result<plan> llm_plan(std::string_view question, const vocabulary& vocab, const parse_options& opts,
                      const llm_options& llm);

// ---- the API ----------------------------------------------------------------------------

// POST /api/v1/ask {"question": "...", "at": optional time for "now"} (permission read):
// the answer JSON ({"understood":true,"question","answer","plan","data","chart"} or
// {"understood":false,"question","not_understood":[...],"suggestions":[...]}).
void add_routes(http::router& routes, sources from, llm_options llm, std::string time_zone);

}  // namespace clisonix::ask
