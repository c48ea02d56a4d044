// Clisonix — the forecast service over HTTP.
//
//   GET /api/v1/forecast            a forecast per selected series (point, 50/95 % intervals)
//   GET /api/v1/forecast/crossing   when each selected series passes a limit (above= or below=)
//   GET /api/v1/forecast/predicted  the fleet's metrics expected past their type's range,
//                                   from the service's background list
//
// The selection is /api/v1/query's (device, metric, measurement globs, tag.K=V, asset);
// horizon, step and history are durations (`6h`, `5m`, `7d`). Kept apart from forecast.h so
// that the core knows no HTTP.
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
