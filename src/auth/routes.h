// Clisonix — authentication on the HTTP server: the auth routes, the middleware that resolves
// the caller of every request, and that caller as handlers read it.
//
// Kept apart from auth.h so that the core (users, tokens, keys, the audit log) knows no HTTP;
// only route files and the wiring in `clisonix serve` include this header.
//
// The middleware from authenticate() resolves the caller from the request's credentials,
// answers 401 (none, or a bad one; with `WWW-Authenticate: Bearer`) or 403 (valid but the
// role lacks the route's permission, see auth::allows), and lets http::permission::open
// routes through untouched.
//
// Thread safety: as auth.h; the middleware and header check may run on any server thread.
#pragma once

#include <string_view>

#include "auth/auth.h"
#include "common/result.h"
#include "http/http.h"

namespace clisonix::auth {

// The routes under /api/v1/auth, /api/v1/users, /api/v1/apikeys and /api/v1/audit. Login
// and refresh are marked http::route::checks_credentials, so the gateway's login rate limit
// counts them.
void add_routes(http::router& routes, auth_service& service);

// The authentication and authorisation middleware; put it after the gateway's limits and
// before anything that reads current_principal().
http::middleware authenticate(auth_service& service);
// The same decision on the header alone, for http::server_options::check_header: a request
// that would be refused is answered (401/403 by the middleware above) before its body is
// read. An accepted request keeps the resolved principal, so the middleware does not
// resolve it twice.
http::header_check check_before_body(auth_service& service);

// The caller of this request, or nullptr on open routes and before the middleware ran.
const principal* current_principal(const http::request& req);

// For the telemetry handlers: ok when the caller may write points for `device` (any user or
// key whose role has http::permission::write, or the device itself); otherwise a "forbidden"
// error naming the device field, to be answered with 403.
status may_write_device(const http::request& req, std::string_view device);

}  // namespace clisonix::auth
