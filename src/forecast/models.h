// The single forecasting models behind forecast() and the seasonal tools they share.
// Internal to src/forecast (forecast.cpp, bench.cpp); users call forecast().
//
// Every model takes a gap-free history (filled()) and answers `h` point forecasts. The
// intervals are not the models' business: forecast() measures them from rolling origins.
#pragma once

#include <span>
#include <string_view>
#include <vector>

namespace clisonix::forecast::detail {

// What the models know about a series besides its values.
struct series_shape {
    int season = 1;  // the main period in steps (1: none), found from the data
    int week = 0;    // a second, longer period (7 × season) when the history holds enough of it
};

using model_fn = std::vector<double> (*)(const std::vector<double>& y, const series_shape& s,
                                         int h);

struct model {
    std::string_view name;
    model_fn fn;
};

// The single models, by name (method_names() lists them after "auto").
std::span<const model> models();

// Drops leading NaNs; fills inner gaps by linear interpolation (trailing ones by the last value).
std::vector<double> filled(std::span<const double> history);

// The period among the candidates with the highest autocorrelation above 0.3; when none fits
// or repeats, the series' own cycle (the autocorrelation's clearest peak), else 1.
int find_season(const std::vector<double>& y, long long step_ns);

// The series shape for a history: season (given when > 0, else found) and week.
series_shape shape_of(const std::vector<double>& y, int season, long long step_ns);

// M4's Naive2: the last value after a classical multiplicative seasonal adjustment, applied
// when the lag-m autocorrelation is significant at 90 % (the benchmark's reference).
std::vector<double> naive2(const std::vector<double>& y, int m, int h);

}  // namespace clisonix::forecast::detail
