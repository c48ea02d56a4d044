// The dashboard's static files (the Vite build in web/dist) served by `clisonix serve`.
//
// A middleware placed last in the chain: it answers only GET and HEAD requests that no API
// route matched and whose path is not under /api/, so the API keeps its own 404s:
//   /assets/<name>   a hashed build asset, `Cache-Control: public, max-age=31536000, immutable`
//   /<file.ext>      another top-level file of the build (favicon), `no-cache`
//   anything else    index.html with `no-cache` (client-side routes such as /devices/pump-1)
// Files are read per request (the build is small; a rebuild needs no restart). Paths are
// checked character by character, so nothing outside the directory can be named.
// index.html gets the dashboard's Content-Security-Policy (docs/decisions/0028).
//
// Thread safety: the middleware is stateless and may run on every worker thread.
#pragma once

#include <filesystem>
#include <string>

#include "config/config.h"
#include "http/http.h"

namespace clisonix::app {

// `web.dir` when set; else the first of <binary dir>/web, <binary dir>/../share/clisonix/web
// (the Debian package's /usr/bin and /usr/share), <binary dir>/../web/dist and the source
// tree's web/dist that holds an index.html (the first candidate when none does).
std::filesystem::path web_directory(const config::config& cfg);

http::middleware serve_web(std::filesystem::path dir);

// The policy on index.html: scripts, styles, fonts from this origin only, images also as
// data: URLs, fetch and the live WebSocket to this origin: 'self', plus ws:// and wss:// of
// `host` (the request's Host header) when it is a plain host[:port], for browsers whose
// 'self' does not cover WebSocket schemes.
std::string dashboard_csp(bool tls, std::string_view host);

}  // namespace clisonix::app
