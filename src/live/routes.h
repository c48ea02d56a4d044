// Clisonix — live updates: the route that puts the hub (live.h) on the HTTP server.
//
// Kept apart from live.h so that the hub, the engine of live updates, does not declare
// routes; only the wiring in `clisonix serve` includes this header.
#pragma once

#include "http/http.h"
#include "live/live.h"

namespace clisonix::live {

// GET /api/v1/live: permission::open at the HTTP layer, the hub asks for the token.
void add_routes(http::router& routes, hub& h);

}  // namespace clisonix::live
