// The gateway's config keys: defaults, and one-line errors naming the key.
#include <gtest/gtest.h>

#include "gateway/gateway.h"

namespace clisonix::gateway {
namespace {

result<settings> load_with(const std::vector<std::pair<std::string, std::string>>& values) {
    config::sources from;
    from.dotenv = "";
    for (const auto& [key, value] : values)
        from.flags.push_back({key, value, "--set"});
    auto cfg = config::load(from);
    EXPECT_TRUE(cfg.ok()) << (cfg.ok() ? "" : cfg.error().message);
    if (!cfg) return cfg.error();
    return load_settings(*cfg);
}

TEST(gateway_settings, defaults_follow_the_issue) {
    auto s = load_with({});
    ASSERT_TRUE(s.ok()) << s.error().message;
    EXPECT_EQ(s->login_limit, 100);
    EXPECT_EQ(s->login_window, std::chrono::minutes(15));
    EXPECT_EQ(s->api_limit, 6000);
    EXPECT_EQ(s->api_window, std::chrono::minutes(1));
    EXPECT_EQ(s->device_limit, 600);
    EXPECT_EQ(s->device_window, std::chrono::minutes(1));
    EXPECT_TRUE(s->trusted_proxies.empty());
    EXPECT_TRUE(s->cors_origins.empty());
    EXPECT_EQ(s->redis_url, "");
    EXPECT_FALSE(s->tls);
    EXPECT_EQ(s->tls_min_version, "1.3");
    EXPECT_EQ(s->max_connections_per_ip, 256);

    http::server_options opts;
    configure_server(*s, opts);
    EXPECT_EQ(opts.max_connections_per_ip, 256);
    EXPECT_EQ(opts.tls.cert_file, "");
    EXPECT_EQ(opts.always_headers, security_headers(false));
}

TEST(gateway_settings, values_from_config) {
    auto s = load_with({{"gateway.trusted_proxies", "10.0.0.0/8, 192.168.0.1"},
                        {"gateway.cors_origins", "https://UI.example:8443, http://localhost:5173"},
                        {"gateway.login_window", "1h"},
                        {"http.tls.cert", "/c.pem"},
                        {"http.tls.key", "/k.pem"},
                        {"http.tls.min_version", "1.2"}});
    ASSERT_TRUE(s.ok()) << s.error().message;
    EXPECT_TRUE(s->trusted_proxies.contains("10.9.8.7"));
    EXPECT_TRUE(s->trusted_proxies.contains("192.168.0.1"));
    EXPECT_FALSE(s->trusted_proxies.contains("192.168.0.2"));
    EXPECT_EQ(s->cors_origins,
              (std::vector<std::string>{"https://ui.example:8443", "http://localhost:5173"}));
    EXPECT_EQ(s->login_window, std::chrono::hours(1));
    EXPECT_TRUE(s->tls);
    http::server_options opts;
    configure_server(*s, opts);
    EXPECT_EQ(opts.tls.cert_file, "/c.pem");
    EXPECT_EQ(opts.tls.key_file, "/k.pem");
    EXPECT_EQ(opts.tls.min_version, "1.2");
    EXPECT_EQ(opts.always_headers, security_headers(true));
}

TEST(gateway_settings, mistakes_are_one_line_naming_the_key) {
    auto proxies = load_with({{"gateway.trusted_proxies", "10.0.0.0/8, proxy.local"}});
    ASSERT_FALSE(proxies.ok());
    EXPECT_EQ(proxies.error().field, "gateway.trusted_proxies");
    EXPECT_EQ(proxies.error().message,
              "config: gateway.trusted_proxies = \"10.0.0.0/8, proxy.local\" (from --set): not "
              "an IP address or network: \"proxy.local\"");
    auto origin = load_with({{"gateway.cors_origins", "ui.example"}});
    ASSERT_FALSE(origin.ok());
    EXPECT_EQ(origin.error().message,
              "config: gateway.cors_origins = \"ui.example\" (from --set): \"ui.example\" must "
              "start with http:// or https://");
    auto path = load_with({{"gateway.cors_origins", "https://ui.example/app"}});
    ASSERT_FALSE(path.ok());
    EXPECT_EQ(path.error().field, "gateway.cors_origins");
    auto half_tls = load_with({{"http.tls.cert", "/c.pem"}});
    ASSERT_FALSE(half_tls.ok());
    EXPECT_EQ(half_tls.error().field, "http.tls.key");
    EXPECT_EQ(half_tls.error().message,
              "config: http.tls.key is required when http.tls.cert is set");
}

}  // namespace
}  // namespace clisonix::gateway
