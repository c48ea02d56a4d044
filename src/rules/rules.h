// Clisonix — rules and alarms (ASI, the real-time engine).
//
// Rules are JSON documents (`/api/v1/rules`) with a scope (one device, a device type, or
// every device under an asset), a severity and a condition in a small language, parsed once
// when the rule is saved (docs/decisions/0020-rule-language.md):
//
//   temperature > 80 for 5m              temperature outside 10..80 for 30s
//   temperature rises more than 2 per minute
//   anomaly(temperature) > 0.8 for 3 points
//   no data for 10m                      no data from temperature for 10m
//   abs(supply - return) > 5 and mean(flow, 5m) < 2
//   forecast(temperature, 2h) > 90       crosses(temperature, above 90) within 6h
//
// Rules on the forecast (crosses(), forecast()) are evaluated on a timer per rule (every
// tenth of the horizon within [10 s, 5 min], or `every 30s` in the condition), not on every
// point; the forecast comes from options::forecast (wired to the forecast module by the
// server), so this module depends on neither forecast nor query. A crosses() alarm says when
// the crossing is expected, carries it in `details` ({"expected_ms":..,"earliest_ms":..,
// "latest_ms":..,"probability":..}), is updated as later forecasts move it and clears when
// the forecast no longer says so (docs/decisions/0057-forecast-rules.md).
//
// The engine evaluates rules as durable batches arrive (observe(), from the ingest pipeline
// and from anomaly scoring), never by polling the store: rules are indexed by metric (and
// device), a series key is resolved once to the (rule, device) states it feeds, and each
// point updates only those. "no data" rules are checked by a timer thread.
//
// Alarms live in the metadata store: active -> acknowledged -> cleared (or active ->
// cleared); at most one alarm per (rule, device) is open (not cleared), repeats count up.
// The alarm changes of one batch commit in one transaction with their notifications
// (alarm_sink::enqueue); after the commit the sink is woken and every alarm listener gets
// the event JSON:
//   {"event":"alarm.created|alarm.updated|alarm.acknowledged|alarm.cleared",
//    "alarm":{...alarm_json...},"at":ms}
// On start the engine rebuilds its per-(rule, device) state from the open alarms, so a
// restart neither repeats nor forgets an alarm. Several engines may share one store (the
// nodes of a cluster, each evaluating the same points): the store admits each alarm change
// once, the others adopt the stored alarm without writing or notifying it again, and an
// incident replayed after it cleared (the same first point) is not raised again
// (docs/decisions/0073-alarms-once-in-a-cluster.md).
//
// Errors: "invalid_argument" (a bad rule document, with `field` naming the member and the
// message the position: "position 14: expected a number after '>'"), "not_found",
// "conflict" (a rule name taken; an alarm already cleared), "unavailable" (the store).
//
// Thread safety: every engine method may be called from any thread. observe() serialises
// on one mutex (held while a batch's alarm changes commit); the metadata store is written
// only when an alarm changes. Listeners run outside that mutex, in commit order; they must
// not call back into the engine's alarm methods from the listener itself.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "meta/meta.h"
#include "storage/storage.h"

namespace clisonix::rules {

// How scopes are resolved (wired to devices::registry by serve.cpp). Any hook may be empty:
// a device-type scope then matches nothing, an asset scope nothing.
struct scope_hooks {
    std::function<std::string(std::string_view device)> type_of;
    std::function<std::vector<std::string>(std::string_view device)> ancestors;
    std::function<std::vector<std::string>(std::string_view asset)> devices_under;
    // The registered devices of a type: a no-data rule scoped by type watches each of them,
    // including one that went silent before the rule was saved or the server started.
    std::function<std::vector<std::string>(std::string_view type)> devices_of_type;
    // When the device last sent data (Unix ms; engine clock), if ever.
    std::function<std::optional<int64_t>(std::string_view device)> last_seen;
};

// Where alarm notifications go (notify::notifier, adapted by serve.cpp).
struct alarm_sink {
    virtual ~alarm_sink() = default;
    // Inside the alarm's transaction: one outbox entry per channel.
    virtual status enqueue(meta::store& tx, const std::vector<std::string>& channels,
                           std::string_view event_json) = 0;
    // After the commit.
    virtual void wake() = 0;
    // At rule save: unknown channel names are an "invalid_argument".
    virtual status validate_channels(const std::vector<std::string>& names) = 0;
};

enum class scope_kind { device, device_type, asset };

struct rule {
    int64_t id = 0;
    std::string name;
    scope_kind scope = scope_kind::device;
    std::string scope_value;
    std::string severity;  // critical, major, minor, warning
    std::string condition;
    std::string clear;        // clear condition, or empty
    std::string clear_after;  // clear delay ("10m"), or empty
    std::vector<std::string> notify;
    bool enabled = true;
    int64_t created_at = 0, updated_at = 0;  // unix ms
};

// A rule document from JSON (POST/PUT body); checks members and types, not the condition.
result<rule> rule_from_json(std::string_view json);
std::string rule_json(const rule& r);

struct comment {
    int64_t id = 0;
    int64_t at = 0;
    std::string author;
    std::string text;
};

struct alarm {
    int64_t id = 0;
    int64_t rule_id = 0;
    std::string rule_name;
    std::string device;
    std::string severity;
    std::string status;  // active, acknowledged, cleared
    int64_t count = 1;
    int64_t first_at = 0, last_at = 0;  // when the condition fired first / last (data time, ms)
    double value = 0;
    std::string message;
    // A JSON object with what the rule's kind adds (crosses(): expected_ms, earliest_ms,
    // latest_ms, probability), or empty.
    std::string details;
    int64_t created_at = 0, updated_at = 0;
    std::string acked_by, cleared_by;
    int64_t acked_at = 0, cleared_at = 0;  // 0: not yet
    std::vector<comment> comments;         // filled by get_alarm only
};

std::string alarm_json(const alarm& a);

struct alarm_filter {
    std::string status;    // "", active, acknowledged, cleared, open (active or acknowledged)
    std::string severity;  // "" or one severity
    std::string device;
    std::string asset;  // devices under it (scope_hooks::devices_under)
    // Alarms whose [first_at, last_at] (or [first_at, now) while open) meets [from, to), ms;
    // 0: unbounded.
    int64_t from = 0, to = 0;
    int64_t limit = 100, offset = 0;
};

struct alarm_page {
    std::vector<alarm> alarms;
    int64_t total = 0;
};

// One question to the forecast: the series `metric` of `device`, `horizon_ms` ahead of now,
// and (when `limit` is set) when it is expected to pass the limit (above it when `above`).
struct forecast_query {
    std::string device;
    std::string metric;
    int64_t horizon_ms = 0;
    std::optional<double> limit;
    bool above = true;
};

struct forecast_answer {
    double point = 0;  // the point forecast at the horizon
    // With a limit: the forecast distribution puts the series past it (probability >= 0.5)
    // within the horizon. Times are Unix ms; earliest (probability 2.5 %) <= expected (50 %)
    // <= latest (97.5 %); latest is empty when it lies beyond the horizon.
    bool crosses = false;
    std::optional<int64_t> expected_ms, earliest_ms, latest_ms;
    double probability = 0;  // the highest probability of being past the limit, 0..1
};

// Answers a forecast query; an error (too little history, the store unavailable) leaves the
// rule's state for that device as it is until the next evaluation.
using forecast_hook = std::function<result<forecast_answer>(const forecast_query&)>;

struct options {
    // Unix ms "now": no-data timing and acknowledgement times. Tests inject a clock.
    std::function<int64_t()> clock;
    // Where rules on the forecast get it; empty: such rules are accepted but never fire.
    forecast_hook forecast;
    // How often the timer checks no-data rules; 0: no thread (call check_no_data()).
    std::chrono::milliseconds no_data_interval{1000};
    // How long scope answers (device types, devices under assets) are reused.
    std::chrono::milliseconds scope_ttl{10'000};
};

struct engine_stats {
    uint64_t evaluations = 0;  // condition evaluations
    uint64_t rules = 0;
    uint64_t states = 0;  // (rule, device) states
};

class engine {
public:
    // `sink` may be null (no notifications). Call start() before observe().
    engine(meta::store& store, scope_hooks hooks, alarm_sink* sink, options opts = {});
    ~engine();
    engine(const engine&) = delete;
    engine& operator=(const engine&) = delete;

    // Loads the rules and the open alarms, starts the no-data timer.
    status start();
    void stop();

    // A durable batch of points (or of anomaly scores).
    void observe(const storage::write_batch& batch);
    // Every alarm event after its commit, in commit order.
    void add_alarm_listener(std::function<void(const std::string& event_json)> listener);

    result<rule> create_rule(rule r);
    result<rule> update_rule(int64_t id, rule r);
    status delete_rule(int64_t id);  // open alarms of the rule are cleared by "system"
    result<rule> get_rule(int64_t id);
    result<std::vector<rule>> list_rules();

    result<alarm> get_alarm(int64_t id);
    result<alarm_page> list_alarms(const alarm_filter& filter);
    result<alarm> acknowledge(int64_t id, std::string_view who);
    result<alarm> clear(int64_t id, std::string_view who);
    result<comment> add_comment(int64_t id, std::string_view who, std::string_view text);

    // One pass of the no-data timer (the thread calls it; tests call it with their clock).
    void check_no_data();
    // One pass over the rules on the forecast: each rule whose interval has passed since its
    // last evaluation asks options::forecast for each device it has data of, outside the
    // engine's mutex (the timer thread calls it after check_no_data; tests call it).
    void check_forecasts();
    // Reads the rules again (changed by another process sharing the store): a rule whose
    // updated_at is unchanged keeps its state, a changed one keeps its open alarms, a rule
    // gone is dropped (its alarms were cleared by the process that deleted it).
    status reload_rules();
    // Forget cached scope answers (devices moved between assets, types changed); the
    // server calls it on every devices::registry change.
    void refresh_scopes();

    engine_stats statistics() const;

private:
    struct impl;
    std::unique_ptr<impl> _impl;
};

// The HTTP routes are declared in rules/routes.h: this header does not depend on http.

}  // namespace clisonix::rules
