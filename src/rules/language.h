// Private to rules: the rule language's syntax tree, parser and evaluator.
//
// A condition is parsed once, when its rule is saved, into a flat tree of nodes that the
// engine evaluates for every point that can change it. Metrics a rule mentions get slots
// (0, 1, ...) shared by the condition and the clear expression, so a (rule, device) state
// keeps one last value per slot and one window per mean().
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace clisonix::rules::detail {

enum class op : uint8_t {
    number,
    metric,  // slot
    mean,    // window index (means[])
    neg,
    not_,
    add,
    sub,
    mul,
    div,
    lt,
    le,
    gt,
    ge,
    eq,
    ne,
    and_,
    or_,
    outside,  // a outside [num, num2]
    abs,
    min,
    max,
    forecast,  // forecast index (forecasts[]): the point forecast at its horizon
};

struct node {
    op kind = op::number;
    int32_t a = -1, b = -1;  // operands (node indexes)
    double num = 0, num2 = 0;
    int32_t index = -1;           // metric slot or mean window
    std::vector<int32_t> args;    // min/max
    uint32_t begin = 0, end = 0;  // source span, for messages
};

struct expression {
    std::vector<node> nodes;
    int32_t root = -1;
    int32_t value_node = -1;  // what an alarm reports as its value (left of the comparison)
    bool empty() const { return root < 0; }
};

// A mean(metric, window) of a rule: slot of the metric and the window length.
struct mean_spec {
    int32_t slot;
    int64_t window_ms;
};

// A forecast(metric, horizon) of a rule: slot of the metric and how far ahead.
struct forecast_spec {
    int32_t slot;
    int64_t horizon_ms;
};

// Metrics and means of one rule, shared by its condition and clear expression.
struct symbols {
    std::vector<std::string> metrics;  // slot -> metric (field) name
    std::vector<mean_spec> means;
    std::vector<forecast_spec> forecasts;
    bool uses_health = false;  // health() appears: alarms name the top contributors
    int32_t slot_of(std::string_view metric);
};

enum class kind : uint8_t { expression, rate, no_data, crosses };

// Which way a crosses() rule watches its limit.
enum class direction : uint8_t {
    either,  // "crosses(m, 90)": upward while the series is below 90, downward while above
    above,   // "crosses(m, above 90)": the series goes (or stays) above 90
    below,   // "crosses(m, below 10)"
};

struct condition {
    kind what = kind::expression;
    expression expr;
    int64_t hold_ms = 0;      // "for 5m"
    int64_t hold_points = 0;  // "for 3 points"
    // rate: "<metric> rises|falls more than <limit> per <unit>"
    bool rises = true;
    double limit = 0;
    int64_t per_ms = 60'000;
    int32_t rate_slot = -1;
    // no data: "no data [from <metric>] for <T>"
    std::string no_data_metric;  // empty: any metric of the device
    int64_t no_data_ms = 0;
    // crosses: "crosses(<metric>, [above|below] <limit>) within <T>"
    int32_t cross_slot = -1;
    double cross_limit = 0;
    direction cross_direction = direction::either;
    int64_t within_ms = 0;
    // "every <T>" after a rule on the forecast: how often it is evaluated; 0: not given
    // (the engine derives it from the horizon, scheduled_interval_ms()).
    int64_t every_ms = 0;
};

// A rule on the forecast (crosses(), or forecast() in its condition or clear expression) is
// evaluated on a timer, not per point: its interval is `every` when given, else a tenth of
// its longest horizon, held to [10 s, 5 min].
bool on_forecast(const condition& c, const symbols& syms);
int64_t scheduled_interval_ms(const condition& c, const symbols& syms);

// Errors: code "invalid_argument", message "position N: ..." (N counts characters from 0),
// field empty (the caller names it).
result<condition> parse_condition(std::string_view text, symbols& syms);
// A clear condition: an expression only (no `for`, rate or no-data forms).
result<expression> parse_expression(std::string_view text, symbols& syms);
// "5m", "30s", "1h", "250ms", "2d" -> milliseconds.
result<int64_t> parse_duration(std::string_view text);

// Evaluation inputs of one (rule, device).
struct eval_context {
    const double* values;               // per slot
    const double* means;                // per mean window (the current mean)
    const double* forecasts = nullptr;  // per forecast() (the point at its horizon)
};
double evaluate(const expression& e, int32_t node_index, const eval_context& ctx);

// Shortest text that reads back to the same double.
std::string format_number(double v);

}  // namespace clisonix::rules::detail
