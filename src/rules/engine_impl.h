// Private to rules: the state of the engine, shared by the streaming evaluator
// (evaluator.cpp) and the alarms (alarms.cpp). All engine state is guarded by one mutex;
// alarm events are handed to listeners in commit order under a second one.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "common/time.h"
#include "observe/observe.h"
#include "rules/language.h"
#include "rules/rules.h"

namespace clisonix::rules {

namespace detail {

struct string_hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const noexcept {
        return std::hash<std::string_view>{}(s);
    }
};
template <typename V>
using string_map = std::unordered_map<std::string, V, string_hash, std::equal_to<>>;

}  // namespace detail

struct engine::impl {
    // Per (rule, device): what the condition has seen and where its alarm stands.
    struct state {
        std::string device;
        std::vector<double> values;
        std::vector<uint8_t> known;
        std::vector<int64_t> newest;  // per metric: the latest point's data time evaluated
        uint32_t unknown = 0;
        struct window {
            std::deque<std::pair<int64_t, double>> points;
            double sum = 0;
        };
        std::vector<window> windows;
        std::vector<double> means;
        std::vector<double> forecasts;  // per forecast(): the latest answer's point
        int64_t true_since = -1, true_points = 0, false_since = -1;
        bool fired = false;  // the condition holds (for its duration) in this episode
        bool armed = true;   // false after a manual clear until the condition goes false
        bool has_prev = false;
        int64_t prev_ts = 0;
        double prev_v = 0;
        int64_t last_seen = -1;  // wall ms of the newest data (no-data rules)
        bool open = false;       // an alarm not cleared
        bool in_batch = false;   // saved in saved_states (changes queued, not yet flushed)
        alarm current;
    };

    struct compiled {
        rule doc;
        detail::symbols syms;
        detail::condition cond;
        detail::expression clear;
        int64_t clear_after_ms = 0;
        std::vector<std::vector<int32_t>> windows_of_slot;
        detail::string_map<state> states;
        int64_t compiled_at = 0;  // engine clock when the rule was loaded or saved
        // Rules on the forecast: evaluated by check_forecasts() every `every_ms`, not per point.
        bool scheduled = false;
        int64_t every_ms = 0;
        int64_t next_due = 0;  // engine clock

        state& state_for(std::string_view device) {
            auto it = states.find(device);
            if (it != states.end()) return it->second;
            state& st = states[std::string(device)];
            st.device = device;
            st.values.assign(syms.metrics.size(), 0);
            st.known.assign(syms.metrics.size(), 0);
            st.newest.assign(syms.metrics.size(), INT64_MIN);
            st.unknown = static_cast<uint32_t>(syms.metrics.size());
            st.windows.resize(syms.means.size());
            st.means.assign(syms.means.size(), 0);
            st.forecasts.assign(syms.forecasts.size(), 0);
            return st;
        }
        // An alarm open from before (a restart, a changed rule): the condition held at its
        // last point, and every point up to that one was evaluated then. A node of a cluster
        // replays the log from the last point it applied, which can lie before: counting
        // those points again would repeat the episode.
        void resume_open(const alarm& a) {
            auto& st = state_for(a.device);
            st.open = true;
            st.fired = true;  // no repeat while the condition holds
            st.current = a;
            // Forecast and no-data alarms carry the engine's clock, not a point's time.
            if (!scheduled && cond.what != detail::kind::no_data)
                st.newest.assign(st.newest.size(), a.last_at);
        }
        // A changed rule keeps the open alarms of its previous definition (update_rule and a
        // reload alike); everything else starts afresh.
        void keep_open_alarms(const compiled& before) {
            for (const auto& [device, st] : before.states)
                if (st.open) resume_open(st.current);
        }
    };

    struct target {
        compiled* rule;  // null: a health contribution series (`contribution` is set)
        state* st;
        int32_t slot;  // -1: a no-data rule (any metric)
        double* contribution = nullptr;
    };

    impl(meta::store& s, scope_hooks h, alarm_sink* k, options o)
        : store(s),
          hooks(std::move(h)),
          sink(k),
          opts(std::move(o)),
          evaluations_counter(metrics::global().get_counter("clisonix_rule_evaluations_total",
                                                            "Rule conditions evaluated")),
          alarm_events_counter(metrics::global().get_counter("clisonix_alarm_events_total",
                                                             "Alarm changes committed")) {
        if (!opts.clock) opts.clock = now_ms;
    }

    meta::store& store;
    scope_hooks hooks;
    alarm_sink* sink;
    options opts;

    mutable std::mutex mutex;
    std::map<int64_t, std::unique_ptr<compiled>> rules;  // by id
    // (metric "\n" device) -> device-scoped rules; metric -> type and asset scoped rules.
    // "*" stands for "any metric" (no-data rules without a metric).
    detail::string_map<std::vector<compiled*>> by_metric_device, by_metric;
    detail::string_map<std::vector<target>> targets;  // series key -> what it feeds
    // The latest `health.<metric>` value per device and metric, so that an alarm of a rule
    // using health() names what drove the score (written before `health` in each row).
    detail::string_map<std::map<std::string, double>> contributions;
    detail::string_map<std::string> type_cache;
    detail::string_map<std::unordered_set<std::string>> asset_cache;
    detail::string_map<std::unordered_set<std::string>> type_devices_cache;
    std::unordered_set<std::string> seen_devices;
    int64_t scope_expiry = 0;
    int64_t started_at = 0;
    uint64_t evaluations = 0;

    // Scratch of observe(), reused.
    std::vector<const std::vector<target>*> batch_targets;
    std::vector<uint8_t> batch_numeric;
    std::string key_device, key_field;

    std::mutex dispatch_mutex;
    std::vector<std::function<void(const std::string&)>> listeners;
    std::vector<std::string> pending;  // events committed, not yet dispatched (under mutex)

    metrics::counter evaluations_counter, alarm_events_counter;

    std::mutex timer_mutex;
    std::condition_variable timer_wake;
    bool stopping = false;
    std::thread timer;

    // Alarm changes are queued as the points are evaluated and committed together by
    // flush(), at the end of each batch (or timer pass, or API call): an alarm storm over
    // thousands of devices costs one transaction, not one per device. Each state's fields
    // are saved before its first change, so a failed commit leaves it as it was and the
    // next point tries again.
    struct change {
        // refresh: a crosses() alarm's expected time moved (message and details), no repeat.
        enum class what { create, repeat, refresh, clear };
        compiled* rule;
        state* st;
        what kind;
        alarm a;
        std::string_view event_name;
        int64_t at;
        // Another engine on the same store (a cluster node evaluating the same points) made
        // this change first: it is not written or notified again; `a` is the store's alarm.
        bool lost = false;
        // clear: the data time (ms) of the point that cleared it; 0 when no point did.
        int64_t point_ts = 0;
    };
    struct saved {
        state* st;
        bool open, fired, armed;
        int64_t true_since, true_points, false_since;
        alarm current;
    };
    std::vector<change> changes;
    std::vector<saved> saved_states;

    // ---- evaluator.cpp: rules, evaluation, no data ------------------------------------

    result<std::unique_ptr<compiled>> compile(const rule& r, bool check_channels = true);
    void reindex();
    void index(compiled* c);
    void expire_scopes(int64_t now);
    const std::unordered_set<std::string>& devices_under(const std::string& asset);
    const std::unordered_set<std::string>& devices_of_type(const std::string& type);
    const std::string& type_of(const std::string& device);
    bool in_scope(const compiled& c, const std::string& device);
    int32_t slot_of(const compiled& c, std::string_view metric);
    const std::vector<target>& resolve(std::string_view key);
    void observe(const storage::write_batch& batch);
    void point(compiled& c, state& st, int32_t slot, int64_t ts, double v, bool numeric,
               int64_t now);
    // `msg` and `details`: what a rule on the forecast says instead of message(c, value).
    void step(compiled& c, state& st, bool holds, double value, int64_t ts, std::string msg = {},
              std::string details = {});
    std::string crossing_message(const compiled& c, const state& st, const forecast_answer& a,
                                 int64_t now) const;
    std::string health_note(const std::string& device) const;
    std::string message(const compiled& c, double value);
    int64_t silent_since(const compiled& c, const std::string& device);
    void check_no_data();
    void check_forecasts();
    void timer_loop();
    compiled* rule_by_id(int64_t id);

    // ---- alarms.cpp ---------------------------------------------------------------------

    std::string event(std::string_view name, const alarm& a, int64_t at);
    bool commit(const std::function<status(meta::store&)>& body, const compiled* c,
                const std::function<std::string()>& event_json);
    void remember(state& st);
    bool fire(compiled& c, state& st, int64_t ts, double value, std::string msg,
              std::string details = {});
    void refresh(compiled& c, state& st, int64_t ts, double value, std::string msg,
                 std::string details);
    // `point_ts`: the data time (ms) of the point that cleared it, 0 when no point did.
    bool clear_alarm(compiled& c, state& st, std::string_view who, std::string_view ev_name,
                     int64_t point_ts = 0);
    status apply(meta::store& tx, change& ch);
    bool flush();
    void dispatch(std::unique_lock<std::mutex>& lock);
    state* open_state(const alarm& a);
};

}  // namespace clisonix::rules
