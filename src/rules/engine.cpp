// The streaming rule engine and the alarm store.
//
// Hot path: observe() resolves each series key of a batch once to the (rule, device)
// states it feeds (cached until rules or scopes change), then walks the points. A point
// costs a few array writes and one evaluation per rule it can change; the metadata store is
// written only when an alarm changes. All engine state is guarded by one mutex; alarm
// events are handed to listeners in commit order under a second one.
#include <algorithm>
#include <array>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <map>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "common/time.h"
#include "observe/observe.h"
#include "rules/internal.h"
#include "rules/language.h"
#include "rules/rules.h"

namespace clisonix::rules {

namespace {

using detail::kind;

struct string_hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const noexcept {
        return std::hash<std::string_view>{}(s);
    }
};
template <typename V>
using string_map = std::unordered_map<std::string, V, string_hash, std::equal_to<>>;

// The field and the `device` tag of a canonical series key, without allocating for the
// common case (no escapes). False when the key has no device tag.
bool split_key(std::string_view key, std::string& device, std::string& field) {
    if (key.find('\\') != std::string_view::npos) {
        auto info = storage::parse_key(key);
        if (!info) return false;
        for (const auto& [k, v] : info->tags)
            if (k == "device") {
                device = v;
                field = info->field;
                return true;
            }
        return false;
    }
    auto space = key.rfind(' ');
    if (space == std::string_view::npos) return false;
    field.assign(key.substr(space + 1));
    auto tags = key.substr(0, space);
    size_t at = tags.find(",device=");
    if (at == std::string_view::npos) return false;
    auto rest = tags.substr(at + 8);
    device.assign(rest.substr(0, rest.find(',')));
    return !device.empty();
}

}  // namespace

struct engine::impl {
    // Per (rule, device): what the condition has seen and where its alarm stands.
    struct state {
        std::string device;
        std::vector<double> values;
        std::vector<uint8_t> known;
        uint32_t unknown = 0;
        struct window {
            std::deque<std::pair<int64_t, double>> points;
            double sum = 0;
        };
        std::vector<window> windows;
        std::vector<double> means;
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
        string_map<state> states;
        int64_t compiled_at = 0;  // engine clock when the rule was loaded or saved

        state& state_for(std::string_view device) {
            auto it = states.find(device);
            if (it != states.end()) return it->second;
            state& st = states[std::string(device)];
            st.device = device;
            st.values.assign(syms.metrics.size(), 0);
            st.known.assign(syms.metrics.size(), 0);
            st.unknown = static_cast<uint32_t>(syms.metrics.size());
            st.windows.resize(syms.means.size());
            st.means.assign(syms.means.size(), 0);
            return st;
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
    string_map<std::vector<compiled*>> by_metric_device, by_metric;
    string_map<std::vector<target>> targets;  // series key -> what it feeds
    // The latest `health.<metric>` value per device and metric, so that an alarm of a rule
    // using health() names what drove the score (written before `health` in each row).
    string_map<std::map<std::string, double>> contributions;
    string_map<std::string> type_cache;
    string_map<std::unordered_set<std::string>> asset_cache;
    string_map<std::unordered_set<std::string>> type_devices_cache;
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

    // ---- rules -------------------------------------------------------------------------

    // `check_channels`: on save. A stored rule whose channel was deleted since still loads
    // (the notifier skips unknown channels), so a restart never silences a rule.
    result<std::unique_ptr<compiled>> compile(const rule& r, bool check_channels = true) {
        auto c = std::make_unique<compiled>();
        c->doc = r;
        c->compiled_at = opts.clock();
        if (r.name.empty() || r.name.size() > 128)
            return make_error("invalid_argument", "name must have 1 to 128 characters", "name");
        if (r.scope_value.empty() || r.scope_value.size() > 256)
            return make_error("invalid_argument",
                              "scope must name one device, device_type or asset", "scope");
        static constexpr std::string_view severities[] = {"critical", "major", "minor", "warning"};
        if (std::find(std::begin(severities), std::end(severities), r.severity) ==
            std::end(severities))
            return make_error("invalid_argument",
                              "severity must be critical, major, minor or warning", "severity");
        auto cond = detail::parse_condition(r.condition, c->syms);
        if (!cond) return make_error("invalid_argument", cond.error().message, "condition");
        c->cond = std::move(*cond);
        if (!r.clear.empty() && !r.clear_after.empty())
            return make_error("invalid_argument", "set either clear or clear_after, not both",
                              "clear_after");
        if (c->cond.what == kind::no_data && (!r.clear.empty() || !r.clear_after.empty()))
            return make_error("invalid_argument",
                              "a no-data rule clears when data arrives; it takes no clear",
                              r.clear.empty() ? "clear_after" : "clear");
        if (!r.clear.empty()) {
            if (c->cond.what == kind::rate)
                return make_error("invalid_argument",
                                  "a rate rule clears when the rate is back; use clear_after",
                                  "clear");
            auto e = detail::parse_expression(r.clear, c->syms);
            if (!e) return make_error("invalid_argument", e.error().message, "clear");
            c->clear = std::move(*e);
        }
        if (!r.clear_after.empty()) {
            auto d = detail::parse_duration(r.clear_after);
            if (!d) return make_error("invalid_argument", d.error().message, "clear_after");
            c->clear_after_ms = *d;
        }
        if (check_channels && sink && !r.notify.empty())
            if (auto st = sink->validate_channels(r.notify); !st)
                return make_error("invalid_argument", st.error().message, "notify");
        c->windows_of_slot.resize(c->syms.metrics.size());
        for (size_t w = 0; w < c->syms.means.size(); ++w)
            c->windows_of_slot[c->syms.means[w].slot].push_back(static_cast<int32_t>(w));
        return c;
    }

    // Under mutex: the indexes from `rules`; the series resolution starts over.
    void reindex() {
        by_metric_device.clear();
        by_metric.clear();
        targets.clear();
        for (auto& [id, c] : rules)
            index(c.get());
    }

    // Under mutex: adds one rule to the indexes (a new rule: no full reindex, so that
    // creating many rules stays linear). The caller clears `targets`.
    void index(compiled* c) {
        if (!c->doc.enabled) return;
        std::vector<std::string> metrics;
        if (c->cond.what == kind::no_data)
            metrics.push_back(c->cond.no_data_metric.empty() ? "*" : c->cond.no_data_metric);
        else
            metrics = c->syms.metrics;
        for (const auto& m : metrics) {
            if (c->doc.scope == scope_kind::device)
                by_metric_device[m + "\n" + c->doc.scope_value].push_back(c);
            else
                by_metric[m].push_back(c);
        }
    }

    void expire_scopes(int64_t now) {
        if (now < scope_expiry) return;
        type_cache.clear();
        asset_cache.clear();
        type_devices_cache.clear();
        targets.clear();
        scope_expiry = now + opts.scope_ttl.count();
    }

    const std::unordered_set<std::string>& devices_under(const std::string& asset) {
        auto it = asset_cache.find(asset);
        if (it != asset_cache.end()) return it->second;
        std::unordered_set<std::string> set;
        if (hooks.devices_under)
            for (auto& d : hooks.devices_under(asset))
                set.insert(std::move(d));
        return asset_cache.emplace(asset, std::move(set)).first->second;
    }

    const std::unordered_set<std::string>& devices_of_type(const std::string& type) {
        auto it = type_devices_cache.find(type);
        if (it != type_devices_cache.end()) return it->second;
        std::unordered_set<std::string> set;
        if (hooks.devices_of_type)
            for (auto& d : hooks.devices_of_type(type))
                set.insert(std::move(d));
        return type_devices_cache.emplace(type, std::move(set)).first->second;
    }

    const std::string& type_of(const std::string& device) {
        auto it = type_cache.find(device);
        if (it != type_cache.end()) return it->second;
        return type_cache.emplace(device, hooks.type_of ? hooks.type_of(device) : std::string())
            .first->second;
    }

    bool in_scope(const compiled& c, const std::string& device) {
        switch (c.doc.scope) {
            case scope_kind::device:
                return c.doc.scope_value == device;
            case scope_kind::device_type:
                return type_of(device) == c.doc.scope_value;
            case scope_kind::asset:
                return devices_under(c.doc.scope_value).contains(device);
        }
        return false;
    }

    int32_t slot_of(const compiled& c, std::string_view metric) {
        for (size_t i = 0; i < c.syms.metrics.size(); ++i)
            if (c.syms.metrics[i] == metric) return static_cast<int32_t>(i);
        return -1;
    }

    const std::vector<target>& resolve(std::string_view key) {
        auto it = targets.find(key);
        if (it != targets.end()) return it->second;
        std::vector<target> out;
        if (split_key(key, key_device, key_field)) {
            if (key_field.starts_with("health."))
                out.push_back(
                    {nullptr, nullptr, -1, &contributions[key_device][key_field.substr(7)]});
            seen_devices.insert(key_device);  // for no-data rules scoped by device type
            auto add = [&](const std::vector<compiled*>& list, bool check_scope, bool any) {
                for (auto* c : list) {
                    if (check_scope && !in_scope(*c, key_device)) continue;
                    out.push_back(
                        {c, &c->state_for(key_device),
                         any || c->cond.what == kind::no_data ? -1 : slot_of(*c, key_field)});
                }
            };
            // Series the platform derives from a device's data (anomaly scores, range flags,
            // health) are not data from the device: late scores of its old points must not
            // keep a silent device's no-data rule ("*", any metric) quiet.
            const bool derived = storage::is_derived_field(key_field);
            for (std::string_view m : {std::string_view(key_field), std::string_view("*")}) {
                if (derived && m == "*") continue;
                std::string md = std::string(m) + "\n" + key_device;
                if (auto f = by_metric_device.find(md); f != by_metric_device.end())
                    add(f->second, false, m == "*");
                if (auto f = by_metric.find(m); f != by_metric.end())
                    add(f->second, true, m == "*");
            }
        }
        return targets.emplace(std::string(key), std::move(out)).first->second;
    }

    // ---- evaluation ----------------------------------------------------------------------

    void observe(const storage::write_batch& batch) {
        std::unique_lock lock(mutex);
        if (rules.empty()) return;
        const int64_t now = opts.clock();
        expire_scopes(now);
        const auto& series = batch.series_entries();
        batch_targets.assign(series.size(), nullptr);
        batch_numeric.assign(series.size(), 0);
        bool any = false;
        for (size_t i = 0; i < series.size(); ++i) {
            const auto& t = resolve(series[i].key);
            if (t.empty()) continue;
            batch_targets[i] = &t;
            batch_numeric[i] = series[i].type != storage::value_type::string;
            any = true;
        }
        if (!any) return;
        const uint64_t before = evaluations;
        for (const auto& p : batch.points()) {
            const auto* ts = batch_targets[p.series];
            if (!ts) continue;
            const double v = storage::as_double(series[p.series].type, p.raw);
            const int64_t t_ms = p.ts / 1'000'000;
            for (const auto& t : *ts) {
                if (!t.rule) {
                    *t.contribution = v;
                    continue;
                }
                point(*t.rule, *t.st, t.slot, t_ms, v, batch_numeric[p.series] != 0, now);
            }
        }
        if (evaluations != before)
            evaluations_counter.inc(static_cast<double>(evaluations - before));
        flush();
        dispatch(lock);
    }

    void point(compiled& c, state& st, int32_t slot, int64_t ts, double v, bool numeric,
               int64_t now) {
        if (c.cond.what == kind::no_data) {
            st.last_seen = now;
            if (st.open) clear_alarm(c, st, "system", "alarm.cleared");
            return;
        }
        if (!numeric || slot < 0) return;
        if (!st.known[slot]) {
            st.known[slot] = 1;
            --st.unknown;
        }
        st.values[slot] = v;
        for (int32_t w : c.windows_of_slot[slot]) {
            auto& win = st.windows[w];
            win.points.emplace_back(ts, v);
            win.sum += v;
            const int64_t horizon = ts - c.syms.means[w].window_ms;
            while (!win.points.empty() && win.points.front().first <= horizon) {
                win.sum -= win.points.front().second;
                win.points.pop_front();
            }
            st.means[w] = win.points.empty() ? 0 : win.sum / static_cast<double>(win.points.size());
        }
        bool holds;
        double value;
        if (c.cond.what == kind::rate) {
            if (slot != c.cond.rate_slot) return;
            if (!st.has_prev || ts <= st.prev_ts) {
                if (!st.has_prev || ts > st.prev_ts) {
                    st.has_prev = true;
                    st.prev_ts = ts;
                    st.prev_v = v;
                }
                return;
            }
            value = (v - st.prev_v) / static_cast<double>(ts - st.prev_ts) *
                    static_cast<double>(c.cond.per_ms);
            st.prev_ts = ts;
            st.prev_v = v;
            holds = c.cond.rises ? value > c.cond.limit : -value > c.cond.limit;
        } else {
            if (st.unknown) {
                // The clear expression may name metrics the condition does not; what the
                // condition needs is enough to decide whether it fires.
                return;
            }
            detail::eval_context ctx{st.values.data(), st.means.data()};
            holds = detail::evaluate(c.cond.expr, c.cond.expr.root, ctx) != 0;
            value = detail::evaluate(c.cond.expr, c.cond.expr.value_node, ctx);
        }
        ++evaluations;
        step(c, st, holds, value, ts);
    }

    void step(compiled& c, state& st, bool holds, double value, int64_t ts) {
        if (holds) {
            st.false_since = -1;
            if (st.true_since < 0) {
                st.true_since = ts;
                st.true_points = 0;
            }
            ++st.true_points;
            const bool held = c.cond.hold_points ? st.true_points >= c.cond.hold_points
                                                 : ts - st.true_since >= c.cond.hold_ms;
            if (held && !st.fired && st.armed) {
                std::string msg = message(c, value);
                if (c.syms.uses_health) msg += health_note(st.device);
                if (fire(c, st, ts, value, std::move(msg))) st.fired = true;
            }
            return;
        }
        st.true_since = -1;
        st.true_points = 0;
        st.fired = false;
        st.armed = true;
        if (!st.open) return;
        if (!c.clear.empty()) {
            detail::eval_context ctx{st.values.data(), st.means.data()};
            if (detail::evaluate(c.clear, c.clear.root, ctx) != 0)
                clear_alarm(c, st, "system", "alarm.cleared");
            return;
        }
        if (c.clear_after_ms > 0) {
            if (st.false_since < 0) st.false_since = ts;
            if (ts - st.false_since < c.clear_after_ms) return;
        }
        clear_alarm(c, st, "system", "alarm.cleared");
    }

    // "; mostly vibration_rms (0.41), current (0.22)": the largest contributions to the
    // device's latest health score (at most three, each at least 0.01).
    std::string health_note(const std::string& device) const {
        auto it = contributions.find(device);
        if (it == contributions.end()) return {};
        std::vector<std::pair<double, std::string_view>> top;
        for (const auto& [metric, v] : it->second)
            if (v >= 0.01) top.emplace_back(v, metric);
        std::sort(top.begin(), top.end(),
                  [](const auto& a, const auto& b) { return a.first > b.first; });
        if (top.size() > 3) top.resize(3);
        std::string out;
        for (const auto& [v, metric] : top) {
            char buf[32];
            std::snprintf(buf, sizeof buf, "%.2f", v);
            out += (out.empty() ? "; mostly " : ", ") + std::string(metric) + " (" + buf + ")";
        }
        return out;
    }

    std::string message(const compiled& c, double value) {
        const std::string& text = c.doc.condition;
        switch (c.cond.what) {
            case kind::expression: {
                const auto& n = c.cond.expr.nodes[c.cond.expr.value_node];
                size_t end = std::min<size_t>(n.end, text.size());
                return text.substr(0, end) + " " + detail::format_number(value) + text.substr(end);
            }
            case kind::rate:
                return text + " (" + detail::format_number(value) + " per " +
                       (c.cond.per_ms == 1000     ? "second"
                        : c.cond.per_ms == 60'000 ? "minute"
                                                  : "hour") +
                       ")";
            case kind::no_data:
                return text + " (" + detail::format_number(value) + " s without data)";
        }
        return text;
    }

    // ---- no data -----------------------------------------------------------------------

    // Where a no-data rule's silence clock starts for a device it has not seen data of: the
    // device's own last data (the registry's last-seen) when the rule watches any metric, so
    // that a device silent since before the rule was saved or the server started alarms on
    // time; otherwise when the rule was loaded or saved (a rule claims no silence from before
    // it existed).
    int64_t silent_since(const compiled& c, const std::string& device) {
        const int64_t from = std::max(started_at, c.compiled_at);
        if (!c.cond.no_data_metric.empty() || !hooks.last_seen) return from;
        auto seen = hooks.last_seen(device);
        return seen ? std::min(*seen, from) : from;
    }

    void check_no_data() {
        std::unique_lock lock(mutex);
        const int64_t now = opts.clock();
        expire_scopes(now);
        for (auto& [id, cp] : rules) {
            auto& c = *cp;
            if (!c.doc.enabled || c.cond.what != kind::no_data) continue;
            std::vector<std::string> devices;
            switch (c.doc.scope) {
                case scope_kind::device:
                    devices.push_back(c.doc.scope_value);
                    break;
                case scope_kind::asset:
                    for (const auto& d : devices_under(c.doc.scope_value))
                        devices.push_back(d);
                    break;
                case scope_kind::device_type: {
                    // Registered devices of the type, and any device of it seen in data.
                    const auto& registered = devices_of_type(c.doc.scope_value);
                    devices.assign(registered.begin(), registered.end());
                    for (const auto& d : seen_devices)
                        if (!registered.contains(d) && type_of(d) == c.doc.scope_value)
                            devices.push_back(d);
                    break;
                }
            }
            for (const auto& d : devices) {
                state& st = c.state_for(d);
                if (st.last_seen < 0) st.last_seen = silent_since(c, d);
                if (st.open || now - st.last_seen < c.cond.no_data_ms) continue;
                double silent = static_cast<double>(now - st.last_seen) / 1000.0;
                ++evaluations;
                fire(c, st, now, silent, message(c, silent));
            }
        }
        flush();
        dispatch(lock);
    }

    void timer_loop() {
        std::unique_lock lock(timer_mutex);
        while (!stopping) {
            timer_wake.wait_for(lock, opts.no_data_interval);
            if (stopping) break;
            lock.unlock();
            check_no_data();
            lock.lock();
        }
    }

    // ---- alarms --------------------------------------------------------------------------

    std::string event(std::string_view name, const alarm& a, int64_t at) {
        return "{\"event\":\"" + std::string(name) + "\",\"alarm\":" + alarm_json(a) +
               ",\"at\":" + std::to_string(at) + "}";
    }

    // Runs `body` and the notification of `event_json` in one transaction; on commit the
    // event is queued for the listeners. Under mutex.
    bool commit(const std::function<status(meta::store&)>& body, const compiled* c,
                const std::function<std::string()>& event_json) {
        std::string ev;
        auto st = store.transaction([&](meta::store& tx) -> status {
            if (auto s = body(tx); !s) return s;
            ev = event_json();
            if (sink && c && !c->doc.notify.empty())
                if (auto s = sink->enqueue(tx, c->doc.notify, ev); !s) return s;
            return {};
        });
        if (!st) {
            log::warn("alarm change not stored", {{"error", st.error().message}});
            return false;
        }
        if (sink && c && !c->doc.notify.empty()) sink->wake();
        alarm_events_counter.inc();
        pending.push_back(std::move(ev));
        return true;
    }

    // Alarm changes are queued as the points are evaluated and committed together by
    // flush(), at the end of each batch (or timer pass, or API call): an alarm storm over
    // thousands of devices costs one transaction, not one per device. Each state's fields
    // are saved before its first change, so a failed commit leaves it as it was and the
    // next point tries again.
    struct change {
        enum class what { create, repeat, clear };
        compiled* rule;
        state* st;
        what kind;
        alarm a;
        std::string_view event_name;
        int64_t at;
    };
    struct saved {
        state* st;
        bool open, fired, armed;
        int64_t true_since, true_points, false_since;
        alarm current;
    };
    std::vector<change> changes;
    std::vector<saved> saved_states;

    void remember(state& st) {
        if (st.in_batch) return;
        st.in_batch = true;
        saved_states.push_back({&st, st.open, st.fired, st.armed, st.true_since, st.true_points,
                                st.false_since, st.current});
    }

    bool fire(compiled& c, state& st, int64_t ts, double value, std::string msg) {
        remember(st);
        const int64_t now = opts.clock();
        const bool repeat = st.open;
        alarm a = repeat ? st.current : alarm{};
        if (repeat) {
            ++a.count;
        } else {
            a.rule_id = c.doc.id;
            a.rule_name = c.doc.name;
            a.device = st.device;
            a.severity = c.doc.severity;
            a.status = "active";
            a.count = 1;
            a.first_at = ts;
            a.created_at = now;
        }
        a.last_at = ts;
        a.value = value;
        a.message = std::move(msg);
        a.updated_at = now;
        changes.push_back({&c, &st, repeat ? change::what::repeat : change::what::create, a,
                           repeat ? "alarm.updated" : "alarm.created", now});
        st.current = std::move(a);
        st.open = true;
        return true;
    }

    bool clear_alarm(compiled& c, state& st, std::string_view who, std::string_view ev_name) {
        remember(st);
        const int64_t now = opts.clock();
        alarm a = st.current;
        a.status = "cleared";
        a.cleared_by = who;
        a.cleared_at = now;
        a.updated_at = now;
        changes.push_back({&c, &st, change::what::clear, a, ev_name, now});
        st.open = false;
        st.current = std::move(a);
        return true;
    }

    status apply(meta::store& tx, change& ch) {
        alarm& a = ch.a;
        switch (ch.kind) {
            case change::what::create: {
                auto r = tx.query(
                    "INSERT INTO alarms (rule_id, rule_name, device, severity, status, is_open, "
                    "repeat_count, first_at, last_at, last_value, message, created_at, "
                    "updated_at) VALUES ($1, $2, $3, $4, 'active', 1, 1, $5, $6, $7, $8, $9, $10) "
                    "RETURNING id",
                    std::array<meta::value, 10>{a.rule_id, a.rule_name, a.device, a.severity,
                                                a.first_at, a.last_at, a.value, a.message,
                                                a.created_at, a.updated_at});
                if (!r) return r.error();
                if (r->data.empty()) return make_error("internal", "no alarm id returned");
                a.id = detail::as_int(r->data[0][0]);
                return {};
            }
            case change::what::repeat: {
                auto r = tx.execute(
                    "UPDATE alarms SET repeat_count = $1, last_at = $2, last_value = $3, "
                    "message = $4, updated_at = $5 WHERE id = $6",
                    std::array<meta::value, 6>{a.count, a.last_at, a.value, a.message, a.updated_at,
                                               a.id});
                if (!r) return r.error();
                return {};
            }
            case change::what::clear: {
                auto r = tx.execute(
                    "UPDATE alarms SET status = 'cleared', is_open = 0, cleared_by = $1, "
                    "cleared_at = $2, updated_at = $3 WHERE id = $4 AND is_open = 1",
                    std::array<meta::value, 4>{a.cleared_by, a.cleared_at, a.updated_at, a.id});
                if (!r) return r.error();
                return {};
            }
        }
        return {};
    }

    // Under mutex: commits the queued changes with their notifications in one transaction.
    bool flush() {
        if (changes.empty()) return true;
        std::vector<std::string> events;
        std::unordered_map<state*, int64_t> ids;  // alarms created in this batch, per state
        bool notified = false;
        auto st = store.transaction([&](meta::store& tx) -> status {
            events.clear();
            ids.clear();
            notified = false;
            for (auto& ch : changes) {
                // An alarm created earlier in this batch has its id only now.
                if (ch.kind != change::what::create && ch.a.id == 0)
                    if (auto it = ids.find(ch.st); it != ids.end()) ch.a.id = it->second;
                if (auto s = apply(tx, ch); !s) return s;
                if (ch.kind == change::what::create) ids[ch.st] = ch.a.id;
                events.push_back(event(ch.event_name, ch.a, ch.at));
                if (sink && !ch.rule->doc.notify.empty()) {
                    if (auto s = sink->enqueue(tx, ch.rule->doc.notify, events.back()); !s)
                        return s;
                    notified = true;
                }
            }
            return {};
        });
        if (!st) {
            log::warn("alarm changes not stored",
                      {{"error", st.error().message}, {"changes", changes.size()}});
            for (auto& sv : saved_states) {
                sv.st->open = sv.open;
                sv.st->fired = sv.fired;
                sv.st->armed = sv.armed;
                sv.st->true_since = sv.true_since;
                sv.st->true_points = sv.true_points;
                sv.st->false_since = sv.false_since;
                sv.st->current = std::move(sv.current);
                sv.st->in_batch = false;
            }
            saved_states.clear();
            changes.clear();
            return false;
        }
        for (auto& [state_ptr, id] : ids)
            if (state_ptr->current.id == 0) state_ptr->current.id = id;
        for (auto& sv : saved_states)
            sv.st->in_batch = false;
        saved_states.clear();
        changes.clear();
        if (notified) sink->wake();
        alarm_events_counter.inc(static_cast<double>(events.size()));
        for (auto& e : events)
            pending.push_back(std::move(e));
        return true;
    }

    // Hands committed events to the listeners in commit order, outside the engine mutex.
    void dispatch(std::unique_lock<std::mutex>& lock) {
        if (pending.empty()) return;
        std::vector<std::string> events;
        events.swap(pending);
        std::unique_lock order(dispatch_mutex);
        lock.unlock();
        for (const auto& e : events)
            for (const auto& l : listeners)
                l(e);
    }

    compiled* rule_by_id(int64_t id) {
        auto it = rules.find(id);
        return it == rules.end() ? nullptr : it->second.get();
    }

    // The (rule, device) state that holds alarm `a` open, if any.
    state* open_state(const alarm& a) {
        auto* c = rule_by_id(a.rule_id);
        if (!c) return nullptr;
        auto it = c->states.find(a.device);
        if (it == c->states.end() || !it->second.open || it->second.current.id != a.id)
            return nullptr;
        return &it->second;
    }
};

engine::engine(meta::store& store, scope_hooks hooks, alarm_sink* sink, options opts)
    : _impl(std::make_unique<impl>(store, std::move(hooks), sink, std::move(opts))) {}

engine::~engine() {
    stop();
}

status engine::start() {
    auto& m = *_impl;
    {
        std::lock_guard lock(m.mutex);
        m.started_at = m.opts.clock();
        auto rows = detail::load_rules(m.store);
        if (!rows) return rows.error();
        for (auto& r : *rows) {
            auto c = m.compile(r, /*check_channels=*/false);
            if (!c) {
                log::warn("rule not loaded", {{"rule", r.name}, {"error", c.error().message}});
                continue;
            }
            m.rules[r.id] = std::move(*c);
        }
        auto open = detail::load_open_alarms(m.store);
        if (!open) return open.error();
        for (auto& a : *open) {
            auto* c = m.rule_by_id(a.rule_id);
            if (!c) continue;
            auto& st = c->state_for(a.device);
            st.open = true;
            st.fired = true;  // as before the restart: no repeat while the condition holds
            st.current = std::move(a);
        }
        m.reindex();
    }
    if (m.opts.no_data_interval.count() > 0 && !m.timer.joinable())
        m.timer = std::thread([&m] { m.timer_loop(); });
    return {};
}

void engine::stop() {
    auto& m = *_impl;
    {
        std::lock_guard lock(m.timer_mutex);
        m.stopping = true;
    }
    m.timer_wake.notify_all();
    if (m.timer.joinable()) m.timer.join();
}

void engine::observe(const storage::write_batch& batch) {
    _impl->observe(batch);
}

void engine::add_alarm_listener(std::function<void(const std::string&)> listener) {
    std::lock_guard order(_impl->dispatch_mutex);
    _impl->listeners.push_back(std::move(listener));
}

void engine::check_no_data() {
    _impl->check_no_data();
}

void engine::refresh_scopes() {
    std::lock_guard lock(_impl->mutex);
    _impl->scope_expiry = 0;
}

engine_stats engine::statistics() const {
    std::lock_guard lock(_impl->mutex);
    engine_stats s;
    s.evaluations = _impl->evaluations;
    s.rules = _impl->rules.size();
    for (const auto& [id, c] : _impl->rules)
        s.states += c->states.size();
    return s;
}

result<rule> engine::create_rule(rule r) {
    auto& m = *_impl;
    std::unique_lock lock(m.mutex);
    const int64_t now = m.opts.clock();
    r.created_at = r.updated_at = now;
    auto c = m.compile(r);
    if (!c) return c.error();
    auto id = detail::insert_rule(m.store, r);
    if (!id) return id.error();
    r.id = *id;
    (*c)->doc.id = r.id;
    auto* added = (*c).get();
    m.rules[r.id] = std::move(*c);
    m.index(added);
    m.targets.clear();
    return r;
}

result<rule> engine::update_rule(int64_t id, rule r) {
    auto& m = *_impl;
    std::unique_lock lock(m.mutex);
    auto* old = m.rule_by_id(id);
    if (!old) return make_error("not_found", "no rule with id " + std::to_string(id));
    r.id = id;
    r.created_at = old->doc.created_at;
    r.updated_at = m.opts.clock();
    auto c = m.compile(r);
    if (!c) return c.error();
    if (auto st = detail::update_rule(m.store, r); !st) return st.error();
    // Open alarms stay open under the new definition; everything else starts afresh.
    for (auto& [device, st] : old->states) {
        if (!st.open) continue;
        auto& ns = (*c)->state_for(device);
        ns.open = true;
        ns.fired = true;
        ns.current = st.current;
    }
    m.rules[id] = std::move(*c);
    m.reindex();
    return r;
}

status engine::delete_rule(int64_t id) {
    auto& m = *_impl;
    std::unique_lock lock(m.mutex);
    auto* c = m.rule_by_id(id);
    if (!c) return make_error("not_found", "no rule with id " + std::to_string(id));
    for (auto& [device, st] : c->states)
        if (st.open) m.clear_alarm(*c, st, "system", "alarm.cleared");
    if (!m.flush())
        return make_error("unavailable", "the open alarms of the rule could not be cleared");
    if (auto st = detail::delete_rule(m.store, id); !st) return st;
    m.rules.erase(id);
    m.reindex();
    m.dispatch(lock);
    return {};
}

result<rule> engine::get_rule(int64_t id) {
    std::lock_guard lock(_impl->mutex);
    auto* c = _impl->rule_by_id(id);
    if (!c) return make_error("not_found", "no rule with id " + std::to_string(id));
    return c->doc;
}

result<std::vector<rule>> engine::list_rules() {
    std::lock_guard lock(_impl->mutex);
    std::vector<rule> out;
    for (const auto& [id, c] : _impl->rules)
        out.push_back(c->doc);
    return out;
}

result<alarm> engine::get_alarm(int64_t id) {
    auto a = detail::load_alarm(_impl->store, id);
    if (!a) return a;
    auto comments = detail::load_comments(_impl->store, id);
    if (!comments) return comments.error();
    a->comments = std::move(*comments);
    return a;
}

result<alarm_page> engine::list_alarms(const alarm_filter& filter) {
    std::vector<std::string> devices;
    bool by_asset = !filter.asset.empty();
    if (by_asset && _impl->hooks.devices_under) devices = _impl->hooks.devices_under(filter.asset);
    return detail::query_alarms(_impl->store, filter, by_asset ? &devices : nullptr);
}

result<alarm> engine::acknowledge(int64_t id, std::string_view who) {
    auto& m = *_impl;
    std::unique_lock lock(m.mutex);
    auto a = detail::load_alarm(m.store, id);
    if (!a) return a;
    if (a->status == "acknowledged")
        return make_error("conflict", "alarm " + std::to_string(id) + " is already acknowledged");
    if (a->status == "cleared")
        return make_error("conflict", "alarm " + std::to_string(id) + " is cleared");
    const int64_t now = m.opts.clock();
    a->status = "acknowledged";
    a->acked_by = who;
    a->acked_at = now;
    a->updated_at = now;
    auto* c = m.rule_by_id(a->rule_id);
    bool ok = m.commit(
        [&](meta::store& tx) -> status {
            auto r = tx.execute(
                "UPDATE alarms SET status = 'acknowledged', acked_by = $1, acked_at = $2, "
                "updated_at = $3 WHERE id = $4 AND status = 'active'",
                std::array<meta::value, 4>{a->acked_by, a->acked_at, a->updated_at, a->id});
            if (!r) return r.error();
            if (*r != 1) return make_error("conflict", "the alarm changed meanwhile");
            return {};
        },
        c, [&] { return m.event("alarm.acknowledged", *a, now); });
    if (!ok) return make_error("unavailable", "the acknowledgement could not be stored");
    if (auto* st = m.open_state(*a)) st->current = *a;
    m.dispatch(lock);
    return *a;
}

result<alarm> engine::clear(int64_t id, std::string_view who) {
    auto& m = *_impl;
    std::unique_lock lock(m.mutex);
    auto a = detail::load_alarm(m.store, id);
    if (!a) return a;
    if (a->status == "cleared")
        return make_error("conflict", "alarm " + std::to_string(id) + " is already cleared");
    auto* c = m.rule_by_id(a->rule_id);
    if (auto* st = m.open_state(*a)) {
        st->current = *a;
        m.clear_alarm(*c, *st, who, "alarm.cleared");
        if (!m.flush()) return make_error("unavailable", "the clear could not be stored");
        // The condition must go false before it can raise this alarm again.
        st->armed = !st->fired;
        alarm out = st->current;
        m.dispatch(lock);
        return out;
    }
    // An alarm whose rule is gone or disabled: clear it in the store alone.
    const int64_t now = m.opts.clock();
    a->status = "cleared";
    a->cleared_by = who;
    a->cleared_at = now;
    a->updated_at = now;
    bool ok = m.commit(
        [&](meta::store& tx) -> status {
            auto r = tx.execute(
                "UPDATE alarms SET status = 'cleared', is_open = 0, cleared_by = $1, "
                "cleared_at = $2, updated_at = $3 WHERE id = $4 AND is_open = 1",
                std::array<meta::value, 4>{a->cleared_by, a->cleared_at, a->updated_at, a->id});
            if (!r) return r.error();
            return {};
        },
        c, [&] { return m.event("alarm.cleared", *a, now); });
    if (!ok) return make_error("unavailable", "the clear could not be stored");
    m.dispatch(lock);
    return *a;
}

result<comment> engine::add_comment(int64_t id, std::string_view who, std::string_view text) {
    if (text.empty() || text.size() > 4096)
        return make_error("invalid_argument", "text must have 1 to 4096 characters", "text");
    auto a = detail::load_alarm(_impl->store, id);
    if (!a) return a.error();
    return detail::insert_comment(_impl->store, id, who, text, _impl->opts.clock());
}

}  // namespace clisonix::rules
