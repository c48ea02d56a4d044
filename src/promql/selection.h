// Finding the stored series behind PromQL label matchers (private to promql/).
#pragma once

#include <string>
#include <vector>

#include "promql/ast.h"

namespace clisonix::promql {

struct selected_series {
    storage::series_id id;
    storage::value_type type;
    std::string key;  // the canonical Clisonix key
    labels metric;
};

// The numeric series whose labels satisfy every matcher, sorted by labels; series that
// collide on one label set carry `clisonix_key` (see promql.h). A matcher on `clisonix_key`
// matches the series' canonical key whether it collides or not.
std::vector<selected_series> select_series(const storage::engine& engine,
                                           const std::vector<label_matcher>& matchers);

// The value of label `name`, or nullptr.
const std::string* label_value(const labels& ls, std::string_view name);

}  // namespace clisonix::promql
