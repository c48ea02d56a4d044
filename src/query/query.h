// Clisonix — the query engine: series selection, bucketed aggregates, top-k, last values.
//
// One query language, spoken by the HTTP API (`GET /api/v1/query?...`) and the CLI
// (`clisonix query ...`), both parsed by parse_spec():
//
//   device, metric, measurement   globs (`*`, `?`) over the series' device tag, field, measurement
//   tag.K=V                       exact match (or glob) on any other tag
//   from, to                      RFC 3339, epoch milliseconds, `now`, or relative (`-1h`,
//                                 `now-15m`); [from, to); default the last hour
//   agg                           raw (default), min, max, mean, sum, count, first, last,
//                                 stddev, p50, p90, p99
//   step                          bucket width (`10s`, `1m`, `1h`); buckets are aligned to
//                                 multiples of the step since the epoch; without a step an
//                                 aggregate covers the whole range (one point at `from`)
//   group_by                      dimensions kept apart: any of `measurement`, `metric` and tag
//                                 keys, comma-separated; series equal in these are merged into
//                                 one before aggregating. Default: every series on its own.
//                                 `group_by=metric` merges all devices (a fleet-wide mean).
//   order                         time_asc (default) or time_desc for points; max_desc,
//                                 max_asc, min_desc, ..., last_desc (any agg name + _asc/_desc)
//                                 ranks series by that aggregate over the range (top-k)
//   limit                         at most this many series (with a ranking order) or points
//
// Results are exact: aggregates equal a straightforward computation over the raw points.
// A numeric aggregate over a string series is refused ("invalid_argument", field "agg").
//
// One answer holds at most `max_points` points (`query.max_points`): before any point is
// read, the selected series' counts in the range (from block summaries) bound the answer,
// and a query over the cap is refused with "invalid_argument" (field "agg" for raw points,
// "step" for too many buckets) saying to aggregate, narrow the range or page with `limit`.
// An aggregate that needs raw points (stddev, p50..p99) is held to the same cap per group.
//
// Thread safety: everything here is stateless; the engine is thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "common/result.h"
#include "storage/storage.h"

namespace clisonix::http {
class router;
}

namespace clisonix::query {

enum class aggregate { raw, min, max, mean, sum, count, first, last, stddev, p50, p90, p99 };

struct spec {
    std::string device = "*";
    std::string metric = "*";
    std::string measurement = "*";
    std::vector<std::pair<std::string, std::string>> tags;  // tag.K=V filters
    int64_t from = 0;                                       // ns, inclusive
    int64_t to = 0;                                         // ns, exclusive
    aggregate agg = aggregate::raw;
    int64_t step = 0;                   // ns; 0: one bucket over the range
    std::vector<std::string> group_by;  // empty: every series apart
    std::string order = "time_asc";
    int64_t limit = 0;  // 0: no limit
    // Set by the API's `asset` parameter: only series whose device tag is one of these
    // (sorted) are selected. Not a parse_spec() parameter.
    std::optional<std::vector<std::string>> devices;
    // Points one answer may hold (see the top); 0: no cap. Not a parse_spec() parameter.
    int64_t max_points = 0;
    // A further test on each selected series (InfluxQL's WHERE on tags: OR, regexes, !=);
    // empty: none. Not a parse_spec() parameter.
    std::function<bool(const storage::series_info&)> filter;
};

// Parses query parameters (as the API receives them). `now_ns` anchors relative times.
// Errors: "invalid_argument" with field = the parameter name.
result<spec> parse_spec(const std::map<std::string, std::string, std::less<>>& params,
                        int64_t now_ns);

// A value in its series' own type.
using value = std::variant<double, int64_t, bool, std::string>;

struct series_result {
    std::string measurement;
    std::vector<std::pair<std::string, std::string>> tags;
    std::string metric;
    std::vector<std::pair<int64_t, value>> points;  // (timestamp ns, value)
};

// The series the spec selects (device, metric, measurement, tag filters).
std::vector<storage::series_info> select(const storage::engine& engine, const spec& s);

result<std::vector<series_result>> run(const storage::engine& engine, const spec& s);

// The newest point of each selected series, from the engine's latest-value cache.
std::vector<series_result> last_values(const storage::engine& engine, const spec& s);

// {"series":[{"measurement":..,"tags":{..},"metric":..,"points":[[ts_ms,value],...]}]}
std::string to_json(const std::vector<series_result>& results);
// {"series":[{"measurement":..,"tags":{..},"metric":..,"type":"float"}]}
std::string series_to_json(const std::vector<storage::series_info>& series);
// measurement,tags,metric,time_ms,value with a header line; tags as k=v;k=v.
std::string to_csv(const std::vector<series_result>& results);

// The names of the devices under an asset (by name or id), for the `asset` parameter;
// "not_found" for an unknown asset (answered 404 with field `asset`).
using devices_under_fn = std::function<result<std::vector<std::string>>(std::string_view asset)>;

// Narrows `s` to the devices under `asset` (the API's `asset` parameter). Errors carry field
// "asset": "not_found" for an unknown asset, "invalid_argument" without an asset graph.
status restrict_to_asset(spec& s, std::string_view asset, const devices_under_fn& devices_under);

// GET /api/v1/query, /api/v1/last (same answer shape, one point per series),
// /api/v1/series ({"series":[{"measurement","tags","metric","type"}]}). With
// `devices_under`, each also takes `asset=` (the devices under it, e.g. a line).
// `max_points` caps each answer of /api/v1/query (see the top; 0: no cap).
void add_routes(http::router& routes, const storage::engine& engine,
                devices_under_fn devices_under = {}, int64_t max_points = 0);

// `*` matches any run of characters, `?` one; everything else is literal.
bool glob_match(std::string_view pattern, std::string_view text);

// Parses "10s", "1m", "1h", "250ms", "1d" into nanoseconds; an error names `field`.
result<int64_t> parse_step(std::string_view text, std::string_view field);
// Parses a point in time (see `from`) into nanoseconds.
result<int64_t> parse_time(std::string_view text, int64_t now_ns, std::string_view field);

}  // namespace clisonix::query
