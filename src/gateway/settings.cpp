// The gateway's config keys, and the server settings that follow from them.
#include <algorithm>
#include <cctype>

#include "gateway/gateway.h"

namespace clisonix::gateway {
namespace {

std::string_view trim(std::string_view s) {
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front())))
        s.remove_prefix(1);
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back())))
        s.remove_suffix(1);
    return s;
}

error config_error(std::string_view key, const config::config& cfg, const std::string& why) {
    return make_error("invalid_config",
                      "config: " + std::string(key) + " = \"" + cfg.get_string(key) + "\" (from " +
                          cfg.source(key) + "): " + why,
                      std::string(key));
}

// An origin is what a browser sends: scheme, host and port, no path. Kept in lower case
// because browsers send it so and the comparison is exact.
result<std::vector<std::string>> parse_origins(const config::config& cfg) {
    std::vector<std::string> origins;
    std::string_view csv = cfg.get_string("gateway.cors_origins");
    while (!csv.empty()) {
        auto comma = csv.find(',');
        std::string entry(trim(csv.substr(0, comma)));
        csv = comma == std::string_view::npos ? std::string_view{} : csv.substr(comma + 1);
        if (entry.empty()) continue;
        for (auto& c : entry)
            c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        std::string_view rest = entry;
        if (rest.starts_with("https://"))
            rest.remove_prefix(8);
        else if (rest.starts_with("http://"))
            rest.remove_prefix(7);
        else
            return config_error("gateway.cors_origins", cfg,
                                "\"" + entry + "\" must start with http:// or https://");
        if (rest.empty() || rest.find_first_of("/?#*@ ") != std::string_view::npos)
            return config_error("gateway.cors_origins", cfg,
                                "\"" + entry + "\" must be scheme://host[:port], without a path");
        origins.push_back(std::move(entry));
    }
    return origins;
}

}  // namespace

result<settings> load_settings(const config::config& cfg) {
    settings s;
    s.login_limit = cfg.get_int("gateway.login_limit");
    s.login_window = cfg.get_duration("gateway.login_window");
    s.api_limit = cfg.get_int("gateway.api_limit");
    s.api_window = cfg.get_duration("gateway.api_window");
    s.device_limit = cfg.get_int("gateway.device_limit");
    s.device_window = cfg.get_duration("gateway.device_window");
    auto proxies = network_list::parse(cfg.get_string("gateway.trusted_proxies"));
    if (!proxies) return config_error("gateway.trusted_proxies", cfg, proxies.error().message);
    s.trusted_proxies = std::move(*proxies);
    auto origins = parse_origins(cfg);
    if (!origins) return origins.error();
    s.cors_origins = std::move(*origins);
    s.redis_url = cfg.get_string("redis.url");
    s.max_connections_per_ip = static_cast<int>(cfg.get_int("http.max_connections_per_ip"));
    s.tls_cert = cfg.get_string("http.tls.cert");
    s.tls_key = cfg.get_string("http.tls.key");
    s.tls_min_version = cfg.get_string("http.tls.min_version");
    if (s.tls_cert.empty() != s.tls_key.empty()) {
        std::string missing = s.tls_cert.empty() ? "http.tls.cert" : "http.tls.key";
        std::string given = s.tls_cert.empty() ? "http.tls.key" : "http.tls.cert";
        return make_error("invalid_config",
                          "config: " + missing + " is required when " + given + " is set", missing);
    }
    s.tls = !s.tls_cert.empty();
    return s;
}

void configure_server(const settings& s, http::server_options& opts) {
    opts.max_connections_per_ip = s.max_connections_per_ip;
    opts.tls.cert_file = s.tls_cert;
    opts.tls.key_file = s.tls_key;
    opts.tls.min_version = s.tls_min_version;
    for (auto& header : security_headers(s.tls))
        opts.always_headers.push_back(std::move(header));
}

}  // namespace clisonix::gateway
