// The parsed form of a PromQL query (private to promql/).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <regex>
#include <string>
#include <vector>

#include "promql/promql.h"

namespace clisonix::promql {

enum class value_kind { scalar, instant_vector, range_vector };

struct label_matcher {
    enum class op { equal, not_equal, regex, not_regex } kind = op::equal;
    std::string name;
    std::string value;
    std::shared_ptr<const std::regex> pattern;  // regex ops: `^(?:value)$`, compiled once

    bool matches(std::string_view v) const;
};

// A vector selector, with a range for a range selector (`x[5m]`).
struct selector {
    std::vector<label_matcher> matchers;
    int64_t range_ms = 0;   // 0: an instant selector
    int64_t offset_ms = 0;  // `offset`
};

enum class binary_op { add, sub, mul, div, mod, pow, eq, ne, gt, lt, ge, le, land, lor, lunless };

enum class aggregation {
    sum,
    avg,
    min,
    max,
    count,
    group,
    stddev,
    stdvar,
    topk,
    bottomk,
    quantile
};

struct expr {
    enum class type { number, selector, call, aggregate, binary, unary_minus, paren } node;
    value_kind kind = value_kind::scalar;
    double number = 0;
    selector sel;
    // call: the function's name; aggregate: its parameter (topk's k) first, then the vector.
    std::string function;
    std::vector<std::shared_ptr<const expr>> args;
    aggregation agg = aggregation::sum;
    bool without = false;
    std::vector<std::string> grouping;
    binary_op op = binary_op::add;
    bool return_bool = false;
    bool has_on = false;  // on(...) given (else ignoring(...) or nothing)
    std::vector<std::string> matching;
};

bool is_comparison(binary_op op);
// A Prometheus duration ("5m", "1h30m", "250ms") or float seconds ("300", "1.5"), in ms.
std::optional<int64_t> parse_duration_ms(std::string_view text);
bool is_set_op(binary_op op);

}  // namespace clisonix::promql
