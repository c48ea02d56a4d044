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
#include <functional>
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
    // What produced it: "median(ar-ridge, ar-ridge-linear, ar-ridge-day24)" for "auto" (or
    // "snaive" where "auto" fell back to it), else the model's name.
    std::string model;
    int season = 1;  // the seasonal period used, in steps (1: none)
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

// ---- The benchmark on M4's layout (`clisonix forecast-bench`) ------------------------------

struct bench_options {
    std::string train_file;  // M4's CSV: a header row, then "id",v1,v2,... (one series a line)
    std::string test_file;   // optional: the same ids, then the next `horizon` values
    std::string out_dir;     // point.csv, lower.csv, upper.csv (95 %), scores.csv when scored
    int horizon = 48;
    int season = 24;  // M4's period m: for MASE, MSIS and Naive2 only (the models find theirs)
    std::string method = "auto";
    // Cross-validation inside the training part: when > 0, the last `holdout` values of every
    // training series are cut off and scored as its test (then there is no test file).
    int holdout = 0;
    int folds = 4;  // the series are also scored in this many groups (series i in group i % folds)
    // After every series: series done, series in all, its id.
    std::function<void(size_t done, size_t total, const std::string& id)> progress;
};

// M4's measures, averaged over series (coverage: the share of all actuals inside the 95 %
// interval, in percent), and Naive2's sMAPE and MASE on the same series for OWA.
struct bench_scores {
    size_t series = 0;
    double smape = 0, mase = 0, owa = 0, msis = 0, coverage = 0;
    double coverage50 = 0;  // the same for the 50 % interval
    double smape_naive2 = 0, mase_naive2 = 0;
};

struct bench_report {
    std::string method;
    size_t series = 0;
    int horizon = 0;
    bool scored = false;              // a test file or a holdout was given
    bench_scores all;                 // when scored
    std::vector<bench_scores> folds;  // when scored
    double ms_per_series = 0;         // one core's time per forecast (mean)
};

// Forecasts every training series (all cores), writes the CSVs and, with a test, scores them.
// Errors: invalid_argument as "file:line: reason" (a non-number, an empty file, a series
// shorter than needed, a test id that is not in the training file, a test row shorter than the
// horizon, an unknown method); not_found (a file that cannot be read); unavailable (out_dir
// cannot be written).
result<bench_report> run_bench(const bench_options& opts);

// The report for a terminal: the measures over all series, per fold, and Naive2's.
std::string format_bench(const bench_report& report);

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
