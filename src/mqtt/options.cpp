// The broker's options from the `mqtt.*` config keys.
#include "config/config.h"
#include "mqtt/mqtt.h"

namespace clisonix::mqtt {

options options_from(const config::config& cfg) {
    options o;
    o.bind = cfg.get_string("mqtt.bind");
    o.port = static_cast<uint16_t>(cfg.get_int("mqtt.port"));
    o.tls_cert = cfg.get_string("mqtt.tls_cert");
    o.tls_key = cfg.get_string("mqtt.tls_key");
    o.max_packet_size = static_cast<uint32_t>(cfg.get_int("mqtt.max_packet_size"));
    o.max_connections = static_cast<int>(cfg.get_int("mqtt.max_connections"));
    o.max_connections_per_ip = static_cast<int>(cfg.get_int("mqtt.max_connections_per_ip"));
    o.max_connect_size = static_cast<uint32_t>(cfg.get_int("mqtt.max_connect_size"));
    o.rate_limit = static_cast<double>(cfg.get_int("mqtt.rate_limit"));
    o.keep_alive_max = std::chrono::seconds(cfg.get_int("mqtt.keep_alive_max") / 1000);
    o.connect_timeout = cfg.get_duration("mqtt.connect_timeout");
    o.receive_maximum = static_cast<uint16_t>(cfg.get_int("mqtt.receive_maximum"));
    o.max_queued = static_cast<uint32_t>(cfg.get_int("mqtt.max_queued"));
    o.session_expiry_max = std::chrono::seconds(cfg.get_int("mqtt.session_expiry_max") / 1000);
    o.bounds = ingest::limits_from(cfg);
    o.sparkplug = cfg.get_bool("sparkplug.enabled");
    o.sparkplug_host_id = cfg.get_string("sparkplug.host_id");
    return o;
}

}  // namespace clisonix::mqtt
