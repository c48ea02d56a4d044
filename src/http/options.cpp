// The server's options from the `http.*` config keys.
#include "config/config.h"
#include "http/http.h"

namespace clisonix::http {

server_options server_options_from(const config::config& cfg) {
    server_options o;
    o.bind = cfg.get_string("http.bind");
    o.port = static_cast<uint16_t>(cfg.get_int("http.port"));
    o.threads = static_cast<int>(cfg.get_int("http.threads"));
    o.header_limit = static_cast<uint32_t>(cfg.get_int("http.header_limit"));
    o.body_limit = static_cast<uint64_t>(cfg.get_int("http.body_limit"));
    o.header_timeout = cfg.get_duration("http.header_timeout");
    o.idle_timeout = cfg.get_duration("http.idle_timeout");
    o.drain_timeout = cfg.get_duration("http.drain_timeout");
    o.max_connections = static_cast<int>(cfg.get_int("http.max_connections"));
    return o;
}

}  // namespace clisonix::http
