// Clisonix — forecasting and time to threshold ("ALBI").
//
// forecast() takes one series' recent history on a regular grid (one value per step, NaN
// where a step has no data) and answers, for each of the next `horizon` steps, a point
// forecast with 50 % and 95 % prediction intervals. The seasonal period is found from the
// data (a day, a week or a shift pattern, in steps), not assumed. The model is the product's
// one method (chosen by rolling-origin cross-validation on M4's hourly series,
// docs/forecasting.md); the single models it combines can be asked for by name, for the
// benchmark.
//
//   forecast::options o{.horizon = 72, .step_ns = 5 * 60'000'000'000LL};
//   auto f = forecast::forecast(values, o);
//   if (f) show(f->point, f->lower95, f->upper95);
//
// crossing() reads the forecast's distribution (not a straight line) for the first step at
// which the series is expected to be above (or below) a limit.
//
// service (below) forecasts stored series: it reads a series' history from the time-series
// engine as the mean per step bucket, puts it on a regular grid, calls forecast() and keeps
// the answer in a bounded LRU cache until the next bucket starts. It also computes, in the
// background, the fleet's "predicted to cross a limit" list. Its HTTP routes are in
// forecast/routes.h, so that this header knows no HTTP.
//
// Thread safety: forecast() and crossing() are pure and may be called from any thread; a
// service may be used from any thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/result.h"

namespace clisonix::storage {
class engine;
}
namespace clisonix::query {
struct spec;
}

namespace clisonix::forecast {

struct options {
    int horizon = 48;                  // steps ahead, >= 1
    int64_t step_ns = 0;               // the grid's spacing; 0: unknown (seasonality in steps only)
    int season = 0;                    // seasonal period in steps; 0: found from the data, 1: none
    std::string_view method = "auto";  // "auto" (the product's) or one of method_names()
};

struct result_t {
    // One value per step ahead (horizon values each); lower <= point <= upper.
    std::vector<double> point, lower50, upper50, lower95, upper95;
    std::string model;  // what produced it, e.g. "combination(ets-damped, theta, snaive)"
    int season = 1;     // the seasonal period used, in steps (1: none)
    // The model's recent out-of-sample error on this series' own history (rolling origins
    // in the last part of the history, same horizon where the history allows):
    double mae = 0;    // mean absolute error, in the series' unit
    double smape = 0;  // symmetric MAPE, percent (0..200)
    int history = 0;   // history values used (after leading NaNs are dropped)
};

// "auto" first, then the single models it can use.
std::vector<std::string_view> method_names();

// Errors: "invalid_argument" for horizon < 1, an unknown method (field "method"), or fewer
// than 3 finite values in the history (field "history").
result<result_t> forecast(std::span<const double> history, const options& o);

struct crossing_t {
    bool within_horizon = false;  // some step's probability of being past the limit >= 0.5
    // Steps ahead (1 = the first forecast step), when known within the horizon:
    std::optional<int> expected;  // the first step past the limit with probability >= 0.5
    std::optional<int> earliest;  // ... with probability >= 0.025 (the 95 % interval's start)
    std::optional<int> latest;    // ... with probability >= 0.975 (none: after the horizon)
    double probability = 0;       // the highest probability of being past it, over the horizon
};

// When the forecast says the series passes `limit` (above it when `above`, else below).
crossing_t crossing(const result_t& f, double limit, bool above);

// ---- the forecast service: stored series, a grid, a cache ----------------------------------

// A series' history on a regular grid: values[i] is the mean of the points in
// [end - (n - i) * step, end - (n - i - 1) * step), NaN where that bucket has no point.
struct grid {
    int64_t step_ns = 0;
    int64_t end_ns = 0;  // exclusive: the start of the first bucket not on the grid
    std::vector<double> values;
};

// The grid of `buckets` (start ns, mean) (sorted, aligned to multiples of step) over the
// `n` steps ending at `end_ns` (a multiple of step). Buckets outside are ignored.
grid to_grid(std::span<const std::pair<int64_t, double>> buckets, int64_t step_ns, int64_t end_ns,
             int n);

// Where a series' grid ends: the start of the bucket holding `now_ns` (that bucket is still
// filling, so it is left out), or just after the bucket of the newest point when the series
// stopped earlier.
int64_t grid_end(int64_t last_point_ns, int64_t now_ns, int64_t step_ns);

// The smallest "nice" step (1s, 5s, 10s, 15s, 30s, 1m, 5m, 10m, 15m, 30m, 1h, 2h, 3h, 6h,
// 12h, 1d, then whole days) at least `ns`.
int64_t nice_step(int64_t ns);

struct service_options {
    size_t cache_entries = 1000;                   // forecast.cache_entries (LRU beyond)
    int max_history_points = 2000;                 // forecast.max_history_points
    int max_steps = 1000;                          // forecast.max_steps: horizon / step at most
    int max_series = 100;                          // forecast.max_series: series per answer
    int64_t refresh_interval_ns = 60'000'000'000;  // forecast.refresh_interval
    int64_t predicted_horizon_ns = 24 * 3'600'000'000'000;  // forecast.predicted_horizon
    int64_t predicted_budget_ns = 10'000'000'000;           // forecast.predicted_budget
};

// One series' forecast on its grid.
struct series_forecast {
    std::string measurement;
    std::vector<std::pair<std::string, std::string>> tags;
    std::string metric;
    int64_t step_ns = 0;
    int64_t first_ns = 0;  // timestamp of the first forecast step (the grid's end)
    int64_t last_ns = 0;   // the newest bucket with data, and its mean
    double last_value = 0;
    int history_points = 0;                  // buckets with data on the grid
    std::shared_ptr<const result_t> result;  // horizon = result->point.size() steps
    int horizon() const { return result ? static_cast<int>(result->point.size()) : 0; }
    int64_t step_time(int step) const { return first_ns + (step - 1) * step_ns; }  // 1-based
};

// A series the selection matched but that could not be forecast (too little history).
struct skipped_series {
    std::string measurement;
    std::vector<std::pair<std::string, std::string>> tags;
    std::string metric;
    error reason;
};

struct forecast_request {
    int64_t horizon_ns = 0;  // 0: 48 steps
    int64_t step_ns = 0;     // 0: from the series' typical spacing (a nice step)
    int64_t history_ns = 0;  // 0: max(4 weeks, 10 horizons), capped at max_history_points
};

struct forecasts {
    std::vector<series_forecast> series;
    std::vector<skipped_series> skipped;
};

// A metric whose device's type has an expected range, for the predicted list.
struct limit_target {
    std::string device;
    std::string metric;
    std::optional<double> min, max;
};

struct prediction {
    std::string device, metric;
    double limit = 0;
    bool above = true;
    int64_t expected_ns = 0, earliest_ns = 0;
    std::optional<int64_t> latest_ns;  // none: after the computed horizon
    double probability = 0;
    double value = 0;  // the series' newest value
    int64_t horizon_end_ns = 0;
};

struct predicted_list {
    std::vector<prediction> predictions;  // sorted by expected_ns
    int64_t computed_ns = 0;              // when the last background round ended (0: none yet)
    int64_t horizon_ns = 0;               // the horizon it was computed over
    size_t targets = 0;                   // metrics with an expected range
    size_t evaluated = 0;                 // of those, forecast in the current sweep
};

class service {
public:
    // `engine` outlives the service.
    service(const storage::engine& engine, service_options o = {});
    ~service();  // stop()
    service(const service&) = delete;
    service& operator=(const service&) = delete;

    const service_options& options() const;

    // Every numeric, non-derived series the selection matches. Errors ("invalid_argument"):
    // field "horizon" past max_steps, "history" past max_history_points, "selection" when
    // more than max_series series match.
    result<forecasts> forecast_selection(const query::spec& selection, const forecast_request& r);

    // One series by device and metric (any measurement; the one with the newest point), for
    // the rules engine. "not_found" when the device has no such numeric series.
    result<series_forecast> forecast_series(std::string_view device, std::string_view metric,
                                            int64_t horizon_ns, int64_t step_ns = 0);

    // The predicted list: starts a background thread that every refresh_interval forecasts
    // each target from `targets()` over predicted_horizon (within predicted_budget per
    // round; a sweep that does not fit continues in the next round).
    void start_predictions(std::function<std::vector<limit_target>()> targets);
    predicted_list predicted() const;
    void stop();

    struct cache_stats {
        uint64_t hits = 0, misses = 0;
        size_t entries = 0;
    };
    cache_stats cache() const;

private:
    struct impl;
    std::unique_ptr<impl> _impl;
};

}  // namespace clisonix::forecast
