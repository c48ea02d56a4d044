// Clisonix — the forecast service over HTTP.
//
//   GET /api/v1/forecast            a forecast per selected series (point, 50/95 % intervals)
//   GET /api/v1/forecast/crossing   when each selected series passes a limit (above= or below=)
//   GET /api/v1/forecast/predicted  the fleet's metrics expected past their type's range,
//                                   from the service's background list (only from series
//                                   whose history holds at least as many steps as it looks
//                                   ahead: 48 at forecast.predicted_horizon / 48 each)
//
// The selection is /api/v1/query's (device, metric, measurement globs, tag.K=V, asset);
// horizon, step and history are durations (`6h`, `5m`, `7d`). Without step: the series'
// typical spacing rounded up to a nice step; without horizon: 48 steps. Answers:
//
//   /forecast  {"forecasts":[{"measurement","tags":{..},"metric","step_ms","horizon_ms",
//               "model","season_steps","error":{"mae","smape"},"history_points",
//               "last":[ts_ms,value],"points":[[ts_ms,point,lower50,upper50,lower95,upper95],..]}],
//               "skipped":[{"measurement","tags","metric","reason"}]}
//              (points continue the grid: the first is one step after `last`)
//   /crossing  {"crossings":[{"measurement","tags","metric","limit","direction":"above"|"below",
//               "within_horizon","expected_ms","earliest_ms","latest_ms" (null when not
//               within the horizon; latest also when after it),"probability","horizon_end_ms",
//               "step_ms","model","last":[ts_ms,value]}],"skipped":[..]}
//   /predicted {"predictions":[{"device","metric","limit","direction","expected_ms",
//               "earliest_ms","latest_ms","probability","value"}] (by expected_ms),
//               "computed_ms","horizon_ms","refresh_ms","targets","evaluated","note"}
//
// Errors: 400 naming the parameter (unknown parameters too; `selection` when more than
// forecast.max_series series match), 404 naming `asset` for an unknown asset. Kept apart
// from forecast.h so that the core knows no HTTP.
#pragma once

#include "forecast/forecast.h"
#include "query/query.h"

namespace clisonix::http {
class router;
}

namespace clisonix::forecast {

// `devices_under` resolves `asset=` (as query::add_routes); `svc` outlives the routes.
void add_routes(http::router& routes, service& svc, query::devices_under_fn devices_under = {});

}  // namespace clisonix::forecast
