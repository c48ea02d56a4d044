// The streaming evaluator: rules indexed by metric and device, conditions evaluated on
// each durable batch and each batch of anomaly scores, no-data timers and scope caches.
//
// Hot path: observe() resolves each series key of a batch once to the (rule, device)
// states it feeds (cached until rules or scopes change), then walks the points. A point
// costs a few array writes and one evaluation per rule it can change; the metadata store is
// written only when an alarm changes (alarms.cpp).
#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include "rules/engine_impl.h"
#include "rules/internal.h"
#include "rules/language.h"
#include "rules/rules.h"

namespace clisonix::rules {

namespace {

using detail::kind;

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

// ---- rules -------------------------------------------------------------------------

// `check_channels`: on save. A stored rule whose channel was deleted since still loads
// (the notifier skips unknown channels), so a restart never silences a rule.
result<std::unique_ptr<engine::impl::compiled>> engine::impl::compile(const rule& r,
                                                                      bool check_channels) {
    auto c = std::make_unique<compiled>();
    c->doc = r;
    c->compiled_at = opts.clock();
    if (r.name.empty() || r.name.size() > 128)
        return make_error("invalid_argument", "name must have 1 to 128 characters", "name");
    if (r.scope_value.empty() || r.scope_value.size() > 256)
        return make_error("invalid_argument", "scope must name one device, device_type or asset",
                          "scope");
    static constexpr std::string_view severities[] = {"critical", "major", "minor", "warning"};
    if (std::find(std::begin(severities), std::end(severities), r.severity) == std::end(severities))
        return make_error("invalid_argument", "severity must be critical, major, minor or warning",
                          "severity");
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
                              "a rate rule clears when the rate is back; use clear_after", "clear");
        auto e = detail::parse_expression(r.clear, c->syms);
        if (!e) return make_error("invalid_argument", e.error().message, "clear");
        c->clear = std::move(*e);
    }
    c->scheduled = detail::on_forecast(c->cond, c->syms);
    c->every_ms = detail::scheduled_interval_ms(c->cond, c->syms);
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
void engine::impl::reindex() {
    by_metric_device.clear();
    by_metric.clear();
    targets.clear();
    for (auto& [id, c] : rules)
        index(c.get());
}

// Under mutex: adds one rule to the indexes (a new rule: no full reindex, so that
// creating many rules stays linear). The caller clears `targets`.
void engine::impl::index(compiled* c) {
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

void engine::impl::expire_scopes(int64_t now) {
    if (now < scope_expiry) return;
    type_cache.clear();
    asset_cache.clear();
    type_devices_cache.clear();
    targets.clear();
    scope_expiry = now + opts.scope_ttl.count();
}

const std::unordered_set<std::string>& engine::impl::devices_under(const std::string& asset) {
    auto it = asset_cache.find(asset);
    if (it != asset_cache.end()) return it->second;
    std::unordered_set<std::string> set;
    if (hooks.devices_under)
        for (auto& d : hooks.devices_under(asset))
            set.insert(std::move(d));
    return asset_cache.emplace(asset, std::move(set)).first->second;
}

const std::unordered_set<std::string>& engine::impl::devices_of_type(const std::string& type) {
    auto it = type_devices_cache.find(type);
    if (it != type_devices_cache.end()) return it->second;
    std::unordered_set<std::string> set;
    if (hooks.devices_of_type)
        for (auto& d : hooks.devices_of_type(type))
            set.insert(std::move(d));
    return type_devices_cache.emplace(type, std::move(set)).first->second;
}

const std::string& engine::impl::type_of(const std::string& device) {
    auto it = type_cache.find(device);
    if (it != type_cache.end()) return it->second;
    return type_cache.emplace(device, hooks.type_of ? hooks.type_of(device) : std::string())
        .first->second;
}

bool engine::impl::in_scope(const compiled& c, const std::string& device) {
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

int32_t engine::impl::slot_of(const compiled& c, std::string_view metric) {
    for (size_t i = 0; i < c.syms.metrics.size(); ++i)
        if (c.syms.metrics[i] == metric) return static_cast<int32_t>(i);
    return -1;
}

const std::vector<engine::impl::target>& engine::impl::resolve(std::string_view key) {
    auto it = targets.find(key);
    if (it != targets.end()) return it->second;
    std::vector<target> out;
    if (split_key(key, key_device, key_field)) {
        if (key_field.starts_with("health."))
            out.push_back({nullptr, nullptr, -1, &contributions[key_device][key_field.substr(7)]});
        seen_devices.insert(key_device);  // for no-data rules scoped by device type
        auto add = [&](const std::vector<compiled*>& list, bool check_scope, bool any) {
            for (auto* c : list) {
                if (check_scope && !in_scope(*c, key_device)) continue;
                out.push_back({c, &c->state_for(key_device),
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
            if (auto f = by_metric.find(m); f != by_metric.end()) add(f->second, true, m == "*");
        }
    }
    return targets.emplace(std::string(key), std::move(out)).first->second;
}

// ---- evaluation ----------------------------------------------------------------------

void engine::impl::observe(const storage::write_batch& batch) {
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
    if (evaluations != before) evaluations_counter.inc(static_cast<double>(evaluations - before));
    flush();
    dispatch(lock);
}

void engine::impl::point(compiled& c, state& st, int32_t slot, int64_t ts, double v, bool numeric,
                         int64_t now) {
    if (c.cond.what == kind::no_data) {
        st.last_seen = now;
        if (st.open) clear_alarm(c, st, "system", "alarm.cleared");
        return;
    }
    if (!numeric || slot < 0) return;
    // A point no newer than the last one of its metric (a client's resend, a late copy from
    // the cluster log, a backfill) changes nothing: the condition is about the latest state,
    // and evaluating it again would end an episode early or count it twice.
    if (ts <= st.newest[slot]) return;
    st.newest[slot] = ts;
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
    // Rules on the forecast keep the latest values (the direction of crosses(), the other
    // operands of a comparison) and are evaluated by check_forecasts() on their interval.
    if (c.scheduled) return;
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

void engine::impl::step(compiled& c, state& st, bool holds, double value, int64_t ts,
                        std::string msg, std::string details) {
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
            if (msg.empty()) msg = message(c, value);
            if (c.syms.uses_health) msg += health_note(st.device);
            if (fire(c, st, ts, value, std::move(msg), std::move(details))) st.fired = true;
        } else if (held && st.fired && st.open && !details.empty() && msg != st.current.message) {
            // The same episode, a newer forecast: the alarm follows the expected time.
            refresh(c, st, ts, value, std::move(msg), std::move(details));
        }
        return;
    }
    st.true_since = -1;
    st.true_points = 0;
    st.fired = false;
    st.armed = true;
    if (!st.open) return;
    if (!c.clear.empty()) {
        detail::eval_context ctx{st.values.data(), st.means.data(), st.forecasts.data()};
        if (detail::evaluate(c.clear, c.clear.root, ctx) != 0)
            clear_alarm(c, st, "system", "alarm.cleared", ts);
        return;
    }
    if (c.clear_after_ms > 0) {
        if (st.false_since < 0) st.false_since = ts;
        if (ts - st.false_since < c.clear_after_ms) return;
    }
    clear_alarm(c, st, "system", "alarm.cleared", ts);
}

// "; mostly vibration_rms (0.41), current (0.22)": the largest contributions to the
// device's latest health score (at most three, each at least 0.01).
std::string engine::impl::health_note(const std::string& device) const {
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

std::string engine::impl::message(const compiled& c, double value) {
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
        case kind::crosses:
            return text;  // crossing_message() says more, with the forecast's answer
    }
    return text;
}

namespace {

// "14:32" (UTC); "2026-12-05 14:32" when more than 20 hours from `now`, so that a crossing
// tomorrow never reads as one today.
std::string clock_text(int64_t ms, int64_t now) {
    const int64_t s = ms / 1000 - (ms % 1000 < 0 ? 1 : 0);
    int64_t days = s / 86'400 - (s % 86'400 < 0 ? 1 : 0);
    const int64_t sod = s - days * 86'400;
    char buf[32];
    if (std::abs(ms - now) <= 20 * 3'600'000LL) {
        std::snprintf(buf, sizeof buf, "%02d:%02d", static_cast<int>(sod / 3600),
                      static_cast<int>(sod % 3600 / 60));
        return buf;
    }
    // Civil date from days since 1970-01-01 (H. Hinnant's days_from_civil, inverted).
    days += 719'468;
    const int64_t era = (days >= 0 ? days : days - 146'096) / 146'097;
    const int64_t doe = days - era * 146'097;
    const int64_t yoe = (doe - doe / 1460 + doe / 36'524 - doe / 146'096) / 365;
    const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const int64_t mp = (5 * doy + 2) / 153;
    const int64_t d = doy - (153 * mp + 2) / 5 + 1;
    const int64_t m = mp < 10 ? mp + 3 : mp - 9;
    const int64_t y = yoe + era * 400 + (m <= 2 ? 1 : 0);
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02d %02d:%02d", static_cast<int>(y),
                  static_cast<int>(m), static_cast<int>(d), static_cast<int>(sod / 3600),
                  static_cast<int>(sod % 3600 / 60));
    return buf;
}

std::string optional_ms(const std::optional<int64_t>& v) {
    return v ? std::to_string(*v) : "null";
}

}  // namespace

// "temperature on pump-04 is expected to cross 90 at 14:32 UTC (between 14:10 and 14:55)"
std::string engine::impl::crossing_message(const compiled& c, const state& st,
                                           const forecast_answer& a, int64_t now) const {
    const std::string limit = detail::format_number(c.cond.cross_limit);
    std::string what;
    switch (c.cond.cross_direction) {
        case detail::direction::either:
            what = "cross " + limit;
            break;
        case detail::direction::above:
            what = "be above " + limit;
            break;
        case detail::direction::below:
            what = "be below " + limit;
            break;
    }
    std::string out = c.syms.metrics[c.cond.cross_slot] + " on " + st.device + " is expected to " +
                      what + " at " + clock_text(*a.expected_ms, now) + " UTC";
    if (a.earliest_ms && a.latest_ms)
        out += " (between " + clock_text(*a.earliest_ms, now) + " and " +
               clock_text(*a.latest_ms, now) + ")";
    else if (a.earliest_ms)
        out += " (not before " + clock_text(*a.earliest_ms, now) + ")";
    return out;
}

// ---- rules on the forecast ------------------------------------------------------------

// Each due rule asks the forecast hook for every device it has data of. The questions are
// gathered under the mutex, asked outside it (a forecast reads the store and fits a model:
// points keep flowing meanwhile), and the answers applied under it again, to the rule only
// if it was not replaced or deleted in between.
void engine::impl::check_forecasts() {
    struct job {
        int64_t rule_id;
        const compiled* rule;
        int64_t rule_updated_at;
        std::string device;
        bool above = true;
        std::vector<forecast_query> queries;  // forecast() in order, then the crossing
        std::vector<result<forecast_answer>> answers;
    };
    std::vector<job> jobs;
    {
        std::unique_lock lock(mutex);
        if (!opts.forecast) return;
        const int64_t now = opts.clock();
        expire_scopes(now);
        for (auto& [id, cp] : rules) {
            auto& c = *cp;
            if (!c.doc.enabled || !c.scheduled || now < c.next_due) continue;
            c.next_due = now + c.every_ms;
            for (auto& [device, st] : c.states) {
                if (st.unknown || !in_scope(c, device)) continue;
                job j{id, &c, c.doc.updated_at, device, true, {}, {}};
                for (const auto& f : c.syms.forecasts)
                    j.queries.push_back(
                        {device, c.syms.metrics[f.slot], f.horizon_ms, std::nullopt, true});
                if (c.cond.what == kind::crosses) {
                    const double now_value = st.values[c.cond.cross_slot];
                    j.above = c.cond.cross_direction == detail::direction::either
                                  ? now_value < c.cond.cross_limit
                                  : c.cond.cross_direction == detail::direction::above;
                    j.queries.push_back({device, c.syms.metrics[c.cond.cross_slot],
                                         c.cond.within_ms, c.cond.cross_limit, j.above});
                }
                jobs.push_back(std::move(j));
            }
        }
    }
    if (jobs.empty()) return;
    for (auto& j : jobs)
        for (const auto& q : j.queries)
            j.answers.push_back(opts.forecast(q));

    std::unique_lock lock(mutex);
    const int64_t now = opts.clock();
    const uint64_t before = evaluations;
    for (auto& j : jobs) {
        auto* c = rule_by_id(j.rule_id);
        if (c != j.rule || c->doc.updated_at != j.rule_updated_at) continue;
        auto it = c->states.find(j.device);
        if (it == c->states.end()) continue;
        state& st = it->second;
        bool answered = true;
        for (const auto& a : j.answers)
            if (!a) {
                log::debug(
                    "no forecast for a rule",
                    {{"rule", c->doc.name}, {"device", j.device}, {"error", a.error().message}});
                answered = false;
            }
        if (!answered) continue;  // no answer is not "no crossing": the alarm stays as it is
        for (size_t i = 0; i < c->syms.forecasts.size(); ++i)
            st.forecasts[i] = j.answers[i]->point;
        ++evaluations;
        if (c->cond.what == kind::crosses) {
            const auto& a = *j.answers.back();
            const bool holds = a.crosses && a.expected_ms.has_value();
            const double value = st.values[c->cond.cross_slot];
            if (!holds) {
                step(*c, st, false, value, now);
                continue;
            }
            std::string details = "{\"expected_ms\":" + optional_ms(a.expected_ms) +
                                  ",\"earliest_ms\":" + optional_ms(a.earliest_ms) +
                                  ",\"latest_ms\":" + optional_ms(a.latest_ms) +
                                  ",\"probability\":" + detail::format_number(a.probability) + "}";
            step(*c, st, true, value, now, crossing_message(*c, st, a, now), std::move(details));
            continue;
        }
        detail::eval_context ctx{st.values.data(), st.means.data(), st.forecasts.data()};
        const bool holds = detail::evaluate(c->cond.expr, c->cond.expr.root, ctx) != 0;
        step(*c, st, holds, detail::evaluate(c->cond.expr, c->cond.expr.value_node, ctx), now);
    }
    if (evaluations != before) evaluations_counter.inc(static_cast<double>(evaluations - before));
    flush();
    dispatch(lock);
}

// ---- no data -----------------------------------------------------------------------

// Where a no-data rule's silence clock starts for a device it has not seen data of: the
// device's own last data (the registry's last-seen) when the rule watches any metric, so
// that a device silent since before the rule was saved or the server started alarms on
// time; otherwise when the rule was loaded or saved (a rule claims no silence from before
// it existed).
int64_t engine::impl::silent_since(const compiled& c, const std::string& device) {
    const int64_t from = std::max(started_at, c.compiled_at);
    if (!c.cond.no_data_metric.empty() || !hooks.last_seen) return from;
    auto seen = hooks.last_seen(device);
    return seen ? std::min(*seen, from) : from;
}

void engine::impl::check_no_data() {
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

void engine::impl::timer_loop() {
    std::unique_lock lock(timer_mutex);
    while (!stopping) {
        timer_wake.wait_for(lock, opts.no_data_interval);
        if (stopping) break;
        lock.unlock();
        check_no_data();
        check_forecasts();
        lock.lock();
    }
}

engine::impl::compiled* engine::impl::rule_by_id(int64_t id) {
    auto it = rules.find(id);
    return it == rules.end() ? nullptr : it->second.get();
}

// ---- engine: lifecycle and rules ------------------------------------------------------

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
            c->resume_open(a);
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

void engine::check_forecasts() {
    _impl->check_forecasts();
}

status engine::reload_rules() {
    auto& m = *_impl;
    // Read under the mutex, as create_rule writes: a rule this process creates meanwhile is
    // either in the rows or created after the swap, never dropped by it.
    std::unique_lock lock(m.mutex);
    auto rows = detail::load_rules(m.store);
    if (!rows) return rows.error();
    decltype(m.rules) next;
    for (auto& r : *rows) {
        auto* old = m.rule_by_id(r.id);
        if (old && old->doc.updated_at == r.updated_at) {
            next[r.id] = std::move(m.rules[r.id]);  // unchanged: its state goes on
            continue;
        }
        auto c = m.compile(r, /*check_channels=*/false);
        if (!c) {
            log::warn("rule not loaded", {{"rule", r.name}, {"error", c.error().message}});
            continue;
        }
        if (old) (*c)->keep_open_alarms(*old);
        next[r.id] = std::move(*c);
    }
    m.rules = std::move(next);
    m.reindex();
    m.scope_expiry = 0;
    return {};
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
    (*c)->keep_open_alarms(*old);
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

}  // namespace clisonix::rules
