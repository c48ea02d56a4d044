// The live hub's HTTP route: GET /api/v1/live, a WebSocket endpoint whose upgrade the hub
// accepts or refuses.
#include "live/routes.h"

namespace clisonix::live {

void add_routes(http::router& routes, hub& h) {
    http::route r{http::method::get, "/api/v1/live",
                  "Live telemetry and alarm events over a WebSocket (token in the first message "
                  "or Sec-WebSocket-Protocol, never in the URL)",
                  http::permission::open, nullptr};
    r.websocket = [&h](http::request& req, http::websocket_accept& upgrade) {
        return h.accept(req, upgrade);
    };
    routes.add(std::move(r));
}

}  // namespace clisonix::live
