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
// Thread safety: every function here is pure and may be called from any thread.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

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

}  // namespace clisonix::forecast
