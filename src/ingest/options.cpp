// Ingest's bounds per request from the `ingest.*` config keys.
#include "config/config.h"
#include "ingest/ingest.h"

namespace clisonix::ingest {

limits limits_from(const config::config& cfg) {
    limits l;
    l.max_line_bytes = static_cast<uint64_t>(cfg.get_int("ingest.max_line_bytes"));
    l.max_points_per_request = static_cast<uint64_t>(cfg.get_int("ingest.max_points_per_request"));
    l.max_series_per_request = static_cast<uint64_t>(cfg.get_int("ingest.max_series_per_request"));
    l.max_body_bytes = static_cast<uint64_t>(cfg.get_int("http.body_limit"));
    return l;
}

}  // namespace clisonix::ingest
