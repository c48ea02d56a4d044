// Clisonix — the Prometheus query API: PromQL over the stored series, for Grafana and promtool.
//
// The series mapping (docs/prometheus.md), one rule shared with the remote-write receiver:
//   metric name  the measurement when the field is `value`, else `<measurement>_<field>`;
//                every character outside [a-zA-Z0-9_:] becomes `_`
//                (`telemetry,device=press-1 temperature` ->
//                telemetry_temperature{device="press-1"})
//   labels       the series' tags, names sanitised the same way; a tag whose name would be
//                `__name__` or start with `__` is not a label
//   collisions   Clisonix series that map to one name and label set in an answer each get the
//                label `clisonix_key` (their canonical key), so that no two answer series are
//                the same and a matcher on it selects one
//
// PromQL supported (anything else is refused naming what, never answered wrongly): vector
// and range selectors (`=`, `!=`, `=~`, `!~`, `offset`), rate/irate/increase/delta/idelta,
// *_over_time, changes/resets, sum/avg/min/max/count/group/stddev/stdvar/topk/bottomk/quantile
// with by/without, arithmetic, comparisons (with `bool`) and and/or/unless between vectors
// (one-to-one, on/ignoring) and scalars, unary minus, and a few math functions (abs, ceil,
// floor, round, clamp*, exp, ln, log2, log10, sqrt, sgn, scalar, vector, time).
//
// Semantics are Prometheus 3's: instant selectors look back 5 minutes, windows are
// left-open (t - range, t], rate/increase/delta extrapolate as Prometheus does
// (docs/decisions/0089-promql-engine.md).
//
// Thread safety: stateless; the engine is thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/result.h"
#include "storage/storage.h"

namespace clisonix::http {
class router;
}

namespace clisonix::promql {

using labels = std::vector<std::pair<std::string, std::string>>;  // sorted by name

// The mapping, both ways (see the top).
std::string sanitize_name(std::string_view text);
std::string metric_name(std::string_view measurement, std::string_view field);
// The Prometheus labels of a Clisonix series, `__name__` included, sorted by name.
labels labels_of(const storage::series_info& series);

struct expr;  // a parsed query (private: ast.h)

// Parses PromQL. Errors ("invalid_argument"): `<line>:<col>: parse error: ...`, or
// `unsupported PromQL: ...` naming the function or feature.
result<std::shared_ptr<const expr>> parse(std::string_view query);

// One answer series: its labels and its points (timestamp ms, value).
struct series_points {
    labels metric;
    std::vector<std::pair<int64_t, double>> points;
};

struct answer {
    enum class kind { scalar, vector, matrix } type = kind::vector;
    std::vector<series_points> series;  // scalar: one series without labels
};

struct limits {
    int64_t max_points = 5'000'000;        // points one answer may hold (422 beyond)
    int64_t lookback_ms = 5 * 60 * 1000;   // instant selectors' lookback
    int64_t max_steps_per_series = 11000;  // Prometheus' own bound (400 beyond)
};

// Evaluates `e` at start, start + step, ..., end (ms; an instant query has start == end).
// Errors: "invalid_argument" (400: a wrong type for a range query, too many steps) and
// "unprocessable" (422: an answer over max_points, duplicate series in a match).
result<answer> evaluate(const storage::engine& engine, const expr& e, int64_t start_ms,
                        int64_t end_ms, int64_t step_ms, bool instant, const limits& lim);

// Prometheus' JSON answer: {"status":"success","data":{"resultType":...,"result":[...]}}.
std::string to_json(const answer& a);

// /prometheus/api/v1/{query,query_range,series,labels,label/{name}/values,metadata,
// status/buildinfo}, each GET and POST (form body), permission `read`.
void add_routes(http::router& routes, const storage::engine& engine, limits lim = {});

}  // namespace clisonix::promql
