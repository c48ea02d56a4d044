// The `cluster.*` config keys.
#include "config/config.h"

#include "cluster/cluster.h"

namespace clisonix::cluster {

result<std::optional<options>> options_from(const config::config& cfg) {
    options o;
    o.node_id = cfg.get_string("cluster.node_id");
    const std::string& urls = cfg.get_string("cluster.nats");
    size_t start = 0;
    while (start <= urls.size()) {
        size_t comma = urls.find(',', start);
        if (comma == std::string::npos) comma = urls.size();
        std::string url = urls.substr(start, comma - start);
        url.erase(0, url.find_first_not_of(' '));
        url.erase(url.find_last_not_of(' ') + 1);
        if (!url.empty()) o.nats_urls.push_back(url);
        start = comma + 1;
    }
    if (o.nats_urls.empty() && o.node_id.empty()) return std::optional<options>{};
    if (o.nats_urls.empty())
        return make_error("invalid_config",
                          "cluster.node_id is set but cluster.nats is empty: name the NATS "
                          "servers (nats://host:port, comma-separated) or unset cluster.node_id",
                          "cluster.nats");
    if (o.node_id.empty())
        return make_error("invalid_config",
                          "cluster.nats is set but cluster.node_id is empty: every node of a "
                          "cluster needs its own id",
                          "cluster.node_id");
    o.shards = static_cast<uint32_t>(cfg.get_int("cluster.shards"));
    o.stream_replicas = static_cast<int>(cfg.get_int("cluster.stream_replicas"));
    o.publish_timeout = cfg.get_duration("cluster.publish_timeout");
    o.apply_wait = cfg.get_duration("cluster.apply_wait");
    o.start_timeout = cfg.get_duration("cluster.start_timeout");
    o.stream_max_age = cfg.get_duration("cluster.stream_max_age");
    o.state_dir = cfg.get_string("data.dir");
    return std::optional<options>{std::move(o)};
}

}  // namespace clisonix::cluster
