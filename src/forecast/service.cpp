// The forecast service (see forecast.h): stored series on a grid, a bounded cache, and the
// background "predicted to cross a limit" list.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <limits>
#include <list>
#include <map>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "common/time.h"
#include "forecast/forecast.h"
#include "observe/observe.h"
#include "query/query.h"
#include "storage/storage.h"

namespace clisonix::forecast {

namespace {

constexpr int64_t second_ns = 1'000'000'000;
constexpr int64_t minute_ns = 60 * second_ns;
constexpr int64_t hour_ns = 60 * minute_ns;
constexpr int64_t day_ns = 24 * hour_ns;
constexpr int default_horizon_steps = 48;

const std::string* tag_value(const storage::series_info& s, std::string_view key) {
    for (const auto& [k, v] : s.tags)
        if (k == key) return &v;
    return nullptr;
}

bool forecastable(const storage::series_info& s) {
    return (s.type == storage::value_type::float64 || s.type == storage::value_type::int64) &&
           !storage::is_derived_field(s.field);
}

int64_t ceil_div(int64_t a, int64_t b) {
    return a / b + (a % b != 0 ? 1 : 0);
}

// The median interval between the series' newest points: the windows widen until one holds
// enough points, so that a fast series is not scanned over days.
std::optional<int64_t> typical_spacing(const storage::engine& engine, storage::series_id id,
                                       int64_t last_ns) {
    std::vector<storage::sample> points;
    for (int64_t window : {minute_ns, hour_ns, day_ns, 30 * day_ns}) {
        points.clear();
        if (!engine.scan(id, last_ns - window, last_ns + 1, points)) return std::nullopt;
        if (points.size() >= 33) break;
    }
    if (points.size() < 2) return std::nullopt;
    const size_t keep = std::min<size_t>(points.size(), 101);
    std::vector<int64_t> gaps;
    for (size_t i = points.size() - keep + 1; i < points.size(); ++i)
        if (points[i].ts > points[i - 1].ts) gaps.push_back(points[i].ts - points[i - 1].ts);
    if (gaps.empty()) return std::nullopt;
    std::nth_element(gaps.begin(), gaps.begin() + static_cast<std::ptrdiff_t>(gaps.size() / 2),
                     gaps.end());
    return gaps[gaps.size() / 2];
}

}  // namespace

grid to_grid(std::span<const std::pair<int64_t, double>> buckets, int64_t step_ns, int64_t end_ns,
             int n) {
    grid g{step_ns, end_ns,
           std::vector<double>(static_cast<size_t>(std::max(n, 0)),
                               std::numeric_limits<double>::quiet_NaN())};
    const int64_t start = end_ns - static_cast<int64_t>(g.values.size()) * step_ns;
    for (const auto& [ts, v] : buckets) {
        if (ts < start || ts >= end_ns) continue;
        g.values[static_cast<size_t>((ts - start) / step_ns)] = v;
    }
    return g;
}

int64_t grid_end(int64_t last_point_ns, int64_t now_ns, int64_t step_ns) {
    auto floor_to = [step_ns](int64_t t) {
        int64_t q = t / step_ns;
        if (t % step_ns != 0 && t < 0) --q;
        return q * step_ns;
    };
    return std::min(floor_to(now_ns), floor_to(last_point_ns) + step_ns);
}

int64_t nice_step(int64_t ns) {
    static constexpr int64_t steps[] = {
        second_ns,     5 * second_ns,  10 * second_ns, 15 * second_ns, 30 * second_ns, minute_ns,
        5 * minute_ns, 10 * minute_ns, 15 * minute_ns, 30 * minute_ns, hour_ns,        2 * hour_ns,
        3 * hour_ns,   6 * hour_ns,    12 * hour_ns,   day_ns};
    for (int64_t s : steps)
        if (s >= ns) return s;
    return ceil_div(ns, day_ns) * day_ns;
}

struct service::impl {
    const storage::engine& engine;
    service_options opts;

    // The cache: most recently used first. An entry holds until its series' grid gains a
    // bucket (the grid's end moves) or one step has passed since it was computed.
    struct entry {
        std::string key;
        int64_t end_ns = 0;
        int64_t computed_ns = 0;
        series_forecast value;
    };
    mutable std::mutex cache_mutex;
    std::list<entry> lru;
    std::unordered_map<std::string, std::list<entry>::iterator> index;
    uint64_t hits = 0, misses = 0;
    metrics::counter hits_total = metrics::global().get_counter(
        "clisonix_forecast_cache_hits_total", "Forecasts answered from the forecast cache");
    metrics::counter misses_total = metrics::global().get_counter(
        "clisonix_forecast_cache_misses_total", "Forecasts computed (not in the forecast cache)");
    metrics::gauge entries_gauge = metrics::global().get_gauge(
        "clisonix_forecast_cache_entries", "Forecasts held in the forecast cache");
    metrics::counter predicted_rounds =
        metrics::global().get_counter("clisonix_forecast_predicted_rounds_total",
                                      "Background rounds of the predicted-to-cross list");
    metrics::gauge predicted_round_seconds = metrics::global().get_gauge(
        "clisonix_forecast_predicted_round_seconds",
        "Duration of the last background round of the predicted-to-cross list");
    metrics::counter predicted_forecasts =
        metrics::global().get_counter("clisonix_forecast_predicted_forecasts_total",
                                      "Series forecast by the background predicted-to-cross list");

    // The predicted list (background thread).
    std::function<std::vector<limit_target>()> targets_fn;
    std::thread worker;
    std::mutex worker_mutex;
    std::condition_variable wake;
    bool stopping = false;
    mutable std::mutex predicted_mutex;
    predicted_list published;
    // Worker-thread state: per target, the grid end it was last forecast on and its
    // predictions; the sweep's position.
    struct target_state {
        int64_t end_ns = -1;
        std::vector<prediction> predictions;
    };
    std::map<std::pair<std::string, std::string>, target_state> states;
    size_t cursor = 0;
    size_t swept = 0;

    impl(const storage::engine& e, service_options o) : engine(e), opts(o) {}

    std::optional<series_forecast> cached(const std::string& key, int64_t end_ns, int64_t step_ns,
                                          int64_t now) {
        std::lock_guard lock(cache_mutex);
        auto it = index.find(key);
        if (it != index.end() && it->second->end_ns == end_ns &&
            now < it->second->computed_ns + step_ns) {
            lru.splice(lru.begin(), lru, it->second);
            ++hits;
            hits_total.inc();
            return it->second->value;
        }
        ++misses;
        misses_total.inc();
        return std::nullopt;
    }

    void remember(const std::string& key, int64_t end_ns, int64_t now, const series_forecast& f) {
        std::lock_guard lock(cache_mutex);
        if (opts.cache_entries == 0) return;
        if (auto it = index.find(key); it != index.end()) {
            lru.erase(it->second);
            index.erase(it);
        }
        lru.push_front(entry{key, end_ns, now, f});
        index[key] = lru.begin();
        while (lru.size() > opts.cache_entries) {
            index.erase(lru.back().key);
            lru.pop_back();
        }
        entries_gauge.set(static_cast<double>(lru.size()));
    }

    // The step and horizon (in steps) for a series; `explicit_step` was checked by the caller.
    result<std::pair<int64_t, int>> step_and_horizon(const storage::series_info& info,
                                                     int64_t last_ns, const forecast_request& r) {
        int64_t step = r.step_ns;
        if (step == 0) {
            auto spacing = typical_spacing(engine, info.id, last_ns);
            if (!spacing)
                return make_error("invalid_argument",
                                  "history: too few points to find the series' spacing; give "
                                  "a step",
                                  "history");
            int64_t want = *spacing;
            // A horizon that would take more than max_steps of this spacing widens the step.
            if (r.horizon_ns > 0) want = std::max(want, ceil_div(r.horizon_ns, opts.max_steps));
            step = nice_step(want);
        }
        int64_t h = r.horizon_ns > 0 ? ceil_div(r.horizon_ns, step) : default_horizon_steps;
        if (h > opts.max_steps)
            return make_error("invalid_argument",
                              "horizon: " + std::to_string(h) + " steps; at most " +
                                  std::to_string(opts.max_steps) +
                                  " (forecast.max_steps): shorten the horizon or widen the step",
                              "horizon");
        return std::pair{step, static_cast<int>(h)};
    }

    int history_steps(int64_t step, int horizon, const forecast_request& r) const {
        int64_t n = r.history_ns > 0 ? ceil_div(r.history_ns, step)
                                     : std::max<int64_t>(ceil_div(28 * day_ns, step),
                                                         10 * static_cast<int64_t>(horizon));
        return static_cast<int>(std::min<int64_t>(n, opts.max_history_points));
    }

    // One series' forecast, from the cache when `use_cache`. `known` is the series' step and
    // horizon when the caller has worked them out already (finding the step without one scans
    // the series' newest points).
    result<series_forecast> compute(const storage::series_info& info, const forecast_request& r,
                                    int64_t now, bool use_cache, int64_t* end_out = nullptr,
                                    std::optional<std::pair<int64_t, int>> known = {}) {
        auto last = engine.last(info.id);
        if (!last)
            return make_error("invalid_argument", "history: the series has no points", "history");
        auto sh =
            known ? result<std::pair<int64_t, int>>(*known) : step_and_horizon(info, last->ts, r);
        if (!sh) return sh.error();
        const auto [step, horizon] = *sh;
        const int n = history_steps(step, horizon, r);
        const int64_t end = grid_end(last->ts, now, step);
        if (end_out) *end_out = end;
        const std::string key = info.key + '\n' + std::to_string(step) + '\n' +
                                std::to_string(horizon) + '\n' + std::to_string(n);
        if (use_cache)
            if (auto hit = cached(key, end, step, now)) return *hit;

        std::vector<std::pair<int64_t, storage::summary>> buckets;
        if (auto st =
                engine.aggregate(info.id, end - static_cast<int64_t>(n) * step, end, step, buckets);
            !st)
            return st.error();
        std::vector<std::pair<int64_t, double>> means;
        means.reserve(buckets.size());
        for (const auto& [ts, s] : buckets)
            if (s.count > 0) means.emplace_back(ts, s.sum / static_cast<double>(s.count));
        grid g = to_grid(means, step, end, n);

        series_forecast out;
        out.measurement = info.measurement;
        out.tags = info.tags;
        out.metric = info.field;
        out.step_ns = step;
        out.first_ns = end;
        for (size_t i = g.values.size(); i-- > 0;)
            if (std::isfinite(g.values[i])) {
                if (out.history_points == 0) {
                    out.last_ns = end - static_cast<int64_t>(g.values.size() - i) * step;
                    out.last_value = g.values[i];
                }
                ++out.history_points;
            }
        auto f = forecast::forecast(g.values, {.horizon = horizon, .step_ns = step});
        if (!f) return f.error();
        out.result = std::make_shared<const result_t>(std::move(*f));
        if (use_cache) remember(key, end, now, out);
        return out;
    }

    // forecast_series()' lookups (device, metric) -> series, kept for a minute: the rules
    // engine asks for the same series on every evaluation, and a pass over every series of
    // the engine per question would cost more than the cached forecast it leads to. Another
    // measurement of the same device and metric created since shows within that minute.
    struct lookup {
        std::vector<storage::series_info> series;
        int64_t at_ns = 0;
    };
    std::mutex lookup_mutex;
    std::map<std::pair<std::string, std::string>, lookup, std::less<>> lookups;

    std::vector<storage::series_info> series_of(std::string_view device, std::string_view metric,
                                                int64_t now) {
        constexpr int64_t keep_ns = 60 * second_ns;
        std::pair<std::string, std::string> key{device, metric};
        {
            std::lock_guard lock(lookup_mutex);
            auto it = lookups.find(key);
            if (it != lookups.end() && now - it->second.at_ns < keep_ns) return it->second.series;
        }
        storage::series_selector selector;
        selector.tag_values.push_back({"device", {std::string(device)}});
        // The field as a glob narrows by the index; the filter keeps the match exact.
        selector.field = metric;
        selector.filter = [&](const storage::series_info& info) {
            return info.field == metric && forecastable(info);
        };
        auto found = engine.select(selector);
        if (found.empty()) return found;  // not kept: a device's first points count at once
        std::lock_guard lock(lookup_mutex);
        // Bounded like the cache: past it, the lookups start over.
        if (lookups.size() >= std::max<size_t>(opts.cache_entries, 1)) lookups.clear();
        lookups[std::move(key)] = {found, now};
        return found;
    }

    void run_predictions();
    void predict_round();
};

service::service(const storage::engine& engine, service_options o)
    : _impl(std::make_unique<impl>(engine, o)) {}

service::~service() {
    stop();
}

const service_options& service::options() const {
    return _impl->opts;
}

result<forecasts> service::forecast_selection(const query::spec& selection,
                                              const forecast_request& r) {
    auto& m = *_impl;
    if (r.step_ns > 0 && r.horizon_ns > 0 && ceil_div(r.horizon_ns, r.step_ns) > m.opts.max_steps)
        return make_error("invalid_argument",
                          "horizon: " + std::to_string(ceil_div(r.horizon_ns, r.step_ns)) +
                              " steps; at most " + std::to_string(m.opts.max_steps) +
                              " (forecast.max_steps): shorten the horizon or widen the step",
                          "horizon");
    if (r.step_ns > 0 && r.history_ns > 0) {
        int64_t n = ceil_div(r.history_ns, r.step_ns);
        if (n > m.opts.max_history_points)
            return make_error("invalid_argument",
                              "history: " + std::to_string(n) + " steps; at most " +
                                  std::to_string(m.opts.max_history_points) +
                                  " (forecast.max_history_points): shorten it or widen the step",
                              "history");
        if (n < 3)
            return make_error("invalid_argument", "history: at least 3 steps are needed",
                              "history");
    }
    std::vector<storage::series_info> chosen;
    for (auto& info : query::select(m.engine, selection))
        if (forecastable(info)) chosen.push_back(std::move(info));
    if (chosen.size() > static_cast<size_t>(m.opts.max_series))
        return make_error("invalid_argument",
                          "selection: " + std::to_string(chosen.size()) +
                              " numeric series match; at most " +
                              std::to_string(m.opts.max_series) +
                              " per answer (forecast.max_series): narrow it with device, "
                              "metric, measurement, tag.K=V or asset",
                          "selection");
    forecasts out;
    const int64_t now = now_ns();
    for (const auto& info : chosen) {
        auto f = m.compute(info, r, now, true);
        if (f) {
            out.series.push_back(std::move(*f));
        } else if (f.error().field == "horizon") {
            return f.error();  // the same bound for every series: the request is wrong
        } else {
            out.skipped.push_back({info.measurement, info.tags, info.field, f.error()});
        }
    }
    return out;
}

result<series_forecast> service::forecast_series(std::string_view device, std::string_view metric,
                                                 int64_t horizon_ns, int64_t step_ns) {
    auto& m = *_impl;
    auto matches = m.series_of(device, metric, now_ns());
    const storage::series_info* newest = nullptr;
    int64_t newest_ts = 0;
    for (const auto& info : matches)
        if (auto last = m.engine.last(info.id); last && (!newest || last->ts > newest_ts))
            newest = &info, newest_ts = last->ts;
    if (!newest)
        return make_error(
            "not_found",
            "no numeric series " + std::string(metric) + " of device " + std::string(device),
            "metric");
    return m.compute(*newest, {.horizon_ns = horizon_ns, .step_ns = step_ns}, now_ns(), true);
}

service::cache_stats service::cache() const {
    std::lock_guard lock(_impl->cache_mutex);
    return {_impl->hits, _impl->misses, _impl->lru.size()};
}

// ---- the predicted list ----------------------------------------------------------------------

void service::start_predictions(std::function<std::vector<limit_target>()> targets) {
    auto& m = *_impl;
    if (m.worker.joinable()) return;
    m.targets_fn = std::move(targets);
    m.worker = std::thread([&m] { m.run_predictions(); });
}

void service::stop() {
    auto& m = *_impl;
    {
        std::lock_guard lock(m.worker_mutex);
        m.stopping = true;
    }
    m.wake.notify_all();
    if (m.worker.joinable()) m.worker.join();
}

predicted_list service::predicted() const {
    std::lock_guard lock(_impl->predicted_mutex);
    return _impl->published;
}

void service::impl::run_predictions() {
    std::unique_lock lock(worker_mutex);
    while (!stopping) {
        lock.unlock();
        predict_round();
        lock.lock();
        wake.wait_for(lock, std::chrono::nanoseconds(opts.refresh_interval_ns),
                      [this] { return stopping; });
    }
}

// One round: continues the sweep over the targets where the last round stopped, until every
// target has been seen or the budget is spent; a target whose grid has not moved keeps its
// predictions without a new forecast.
void service::impl::predict_round() {
    const auto started = std::chrono::steady_clock::now();
    std::vector<limit_target> targets = targets_fn ? targets_fn() : std::vector<limit_target>{};
    std::map<std::pair<std::string, std::string>, const limit_target*> by_key;
    for (const auto& t : targets)
        if (t.min || t.max) by_key.emplace(std::pair{t.device, t.metric}, &t);
    // Targets gone (device deleted, range removed) are forgotten.
    for (auto it = states.begin(); it != states.end();)
        it = by_key.contains(it->first) ? std::next(it) : states.erase(it);
    std::vector<const limit_target*> order;
    for (const auto& [key, t] : by_key)
        order.push_back(t);
    if (cursor >= order.size()) cursor = 0;

    // One pass over the engine's series per round (not one per target): each target's
    // series by device and metric.
    std::map<std::pair<std::string, std::string>, std::vector<storage::series_info>> series_of;
    storage::series_selector selector;
    auto& devices = selector.tag_values.emplace_back("device", std::vector<std::string>{}).second;
    for (const auto& [key, t] : by_key)
        devices.push_back(key.first);
    selector.filter = [&](const storage::series_info& info) {
        return forecastable(info) && by_key.contains({*tag_value(info, "device"), info.field});
    };
    for (auto& info : engine.select(selector))
        series_of[{*tag_value(info, "device"), info.field}].push_back(std::move(info));

    const forecast_request req{.horizon_ns = opts.predicted_horizon_ns};
    size_t visited = 0;
    while (visited < order.size()) {
        // At least one target per round, so that a sweep always moves on.
        if (visited > 0 && std::chrono::steady_clock::now() - started >
                               std::chrono::nanoseconds(opts.predicted_budget_ns))
            break;
        {
            std::lock_guard lock(worker_mutex);
            if (stopping) return;
        }
        const limit_target& t = *order[cursor];
        auto& state = states[{t.device, t.metric}];
        cursor = (cursor + 1) % order.size();
        ++visited;
        swept = std::min(swept + 1, order.size());
        const storage::series_info* newest = nullptr;
        int64_t newest_ts = 0;
        for (const auto& info : series_of[{t.device, t.metric}])
            if (auto last = engine.last(info.id); last && (!newest || last->ts > newest_ts))
                newest = &info, newest_ts = last->ts;
        if (!newest) {
            state = {};
            continue;
        }
        const int64_t now = now_ns();
        int64_t end = -1;
        // Skip when the grid has not moved: cheap to check before forecasting.
        auto sh = step_and_horizon(*newest, newest_ts, req);
        if (sh && grid_end(newest_ts, now, sh->first) == state.end_ns) continue;
        auto f = sh ? compute(*newest, req, now, false, &end, *sh)
                    : compute(*newest, req, now, false, &end);
        predicted_forecasts.inc();
        state.end_ns = end;
        state.predictions.clear();
        // A forecast from fewer buckets with data than the steps it looks ahead says little
        // (a new device, a fleet's first hours at a 24 h horizon): the list names none from
        // it rather than a confident-looking guess. GET /api/v1/forecast still answers it.
        if (!f || f->history_points < f->horizon()) continue;
        auto last = engine.last(newest->id);
        const double value = last ? storage::as_double(newest->type, last->raw) : f->last_value;
        auto add = [&](double limit, bool above) {
            auto c = crossing(*f->result, limit, above);
            if (!c.within_horizon) return;
            prediction p;
            p.device = t.device;
            p.metric = t.metric;
            p.limit = limit;
            p.above = above;
            p.expected_ns = f->step_time(*c.expected);
            p.earliest_ns = f->step_time(c.earliest.value_or(*c.expected));
            if (c.latest) p.latest_ns = f->step_time(*c.latest);
            p.probability = c.probability;
            p.value = value;
            p.horizon_end_ns = f->step_time(f->horizon());
            state.predictions.push_back(std::move(p));
        };
        if (t.max) add(*t.max, true);
        if (t.min) add(*t.min, false);
    }
    predicted_list list;
    for (const auto& [key, s] : states)
        for (const auto& p : s.predictions)
            list.predictions.push_back(p);
    std::sort(list.predictions.begin(), list.predictions.end(),
              [](const prediction& a, const prediction& b) {
                  return std::tie(a.expected_ns, a.device, a.metric) <
                         std::tie(b.expected_ns, b.device, b.metric);
              });
    list.computed_ns = now_ns();
    list.horizon_ns = opts.predicted_horizon_ns;
    list.targets = order.size();
    list.evaluated = std::min(swept, order.size());
    predicted_rounds.inc();
    predicted_round_seconds.set(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
    std::lock_guard lock(predicted_mutex);
    published = std::move(list);
}

}  // namespace clisonix::forecast
