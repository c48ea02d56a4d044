// The PromQL functions the engine implements (private to promql/): their signatures for the
// parser, and the window functions for the evaluator.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "promql/ast.h"

namespace clisonix::promql {

struct function_info {
    std::string_view name;
    std::vector<value_kind> args;
    size_t min_args;
    value_kind returns;
};

// nullptr for a function the engine does not implement.
const function_info* find_function(std::string_view name);
// "abs, avg_over_time, ..." for the error that refuses another one.
std::string_view supported_function_names();
bool is_range_function(std::string_view name);

// One window of a range selector: the samples with timestamps in (t - range, t].
struct window {
    std::span<const int64_t> ts;  // ms
    std::span<const double> values;
    int64_t range_start;  // t - range - offset (exclusive)
    int64_t range_end;    // t - offset
    int64_t range_ms;
};

// A range function over one window; false when the window gives no value (too few samples).
// `param` is quantile_over_time's quantile.
bool apply_range_function(std::string_view name, const window& w, double param, double& out);

// Prometheus' quantile over `values` (sorted in place), linear interpolation.
double quantile(double q, std::vector<double>& values);

}  // namespace clisonix::promql
