// The dashboard's files served by the real `clisonix serve` from a `web.dir` the test writes:
// cache headers, content types, the page's CSP, client-route fallback, and that the API and
// paths outside the directory are never answered with a file.
#include <gtest/gtest.h>

#include "support/test_support.h"

namespace clisonix::testing {
namespace {

class web_assets : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        dir = new temp_dir("clisonix-web");
        std::filesystem::create_directories(dir->path() / "assets");
        write_file(dir->path() / "index.html", "<!doctype html><title>dash</title>");
        write_file(dir->path() / "favicon.svg", "<svg/>");
        write_file(dir->path() / "assets" / "index-Ab12_c.js", "console.log(1)");
        write_file(dir->path() / "assets" / "index-Zz9.css", "body{}");
        write_file(dir->path().parent_path() / "clisonix-web-secret.txt", secret);
        server = new server_process({"--set", "web.dir=" + dir->str()});
    }
    static void TearDownTestSuite() {
        delete server;
        std::filesystem::remove(dir->path().parent_path() / "clisonix-web-secret.txt");
        delete dir;
    }
    static temp_dir* dir;
    static server_process* server;
    static constexpr const char* secret = "outside-the-web-dir-7f3a";
};
temp_dir* web_assets::dir = nullptr;
server_process* web_assets::server = nullptr;

TEST_F(web_assets, index_is_not_cached_and_carries_the_dashboard_csp) {
    auto r = http_request(server->port(), "GET", "/");
    ASSERT_EQ(r.status, 200);
    EXPECT_EQ(r.body, "<!doctype html><title>dash</title>");
    EXPECT_EQ(r.header("content-type"), "text/html; charset=utf-8");
    EXPECT_EQ(r.header("cache-control"), "no-cache");
    auto csp = r.header("content-security-policy");
    EXPECT_NE(csp.find("script-src 'self';"), std::string::npos) << csp;
    EXPECT_NE(csp.find("style-src 'self';"), std::string::npos) << csp;
    EXPECT_NE(csp.find("img-src 'self' data:;"), std::string::npos) << csp;
    // The test client sends `Host: 127.0.0.1`: the WebSocket origins name exactly that host.
    EXPECT_NE(csp.find("connect-src 'self' ws://127.0.0.1 wss://127.0.0.1;"), std::string::npos)
        << csp;
    EXPECT_EQ(csp.find("unsafe"), std::string::npos) << csp;
    EXPECT_EQ(r.header("x-content-type-options"), "nosniff");
}

TEST_F(web_assets, a_host_header_that_is_not_a_plain_host_is_left_out_of_the_csp) {
    connection c(server->port());
    ASSERT_TRUE(c.connected());
    ASSERT_TRUE(
        c.send("GET / HTTP/1.1\r\nHost: evil\"; script-src *\r\nConnection: close\r\n\r\n"));
    auto r = c.read_response();
    ASSERT_EQ(r.status, 200);
    auto csp = r.header("content-security-policy");
    EXPECT_NE(csp.find("connect-src 'self'; worker-src"), std::string::npos) << csp;
    EXPECT_EQ(csp.find("evil"), std::string::npos) << csp;
}

TEST_F(web_assets, hashed_assets_are_immutable_with_their_type) {
    auto js = http_request(server->port(), "GET", "/assets/index-Ab12_c.js");
    ASSERT_EQ(js.status, 200);
    EXPECT_EQ(js.body, "console.log(1)");
    EXPECT_EQ(js.header("content-type"), "text/javascript; charset=utf-8");
    EXPECT_EQ(js.header("cache-control"), "public, max-age=31536000, immutable");
    auto css = http_request(server->port(), "GET", "/assets/index-Zz9.css");
    ASSERT_EQ(css.status, 200);
    EXPECT_EQ(css.header("content-type"), "text/css; charset=utf-8");
    auto head = http_request(server->port(), "HEAD", "/assets/index-Zz9.css");
    EXPECT_EQ(head.status, 200);
    EXPECT_EQ(head.body, "");
}

TEST_F(web_assets, top_level_files_are_served_and_revalidated) {
    auto r = http_request(server->port(), "GET", "/favicon.svg");
    ASSERT_EQ(r.status, 200);
    EXPECT_EQ(r.header("content-type"), "image/svg+xml");
    EXPECT_EQ(r.header("cache-control"), "no-cache");
}

TEST_F(web_assets, client_routes_get_the_page) {
    for (const char* path : {"/devices/pump-1", "/alarms", "/login", "/audit?actor=admin"}) {
        auto r = http_request(server->port(), "GET", path);
        EXPECT_EQ(r.status, 200) << path;
        EXPECT_EQ(r.body, "<!doctype html><title>dash</title>") << path;
        EXPECT_EQ(r.header("cache-control"), "no-cache") << path;
    }
}

TEST_F(web_assets, missing_assets_and_api_paths_keep_their_404) {
    auto asset = http_request(server->port(), "GET", "/assets/index-missing.js");
    EXPECT_EQ(asset.status, 404);
    EXPECT_NE(asset.body.find("\"not_found\""), std::string::npos);
    auto file = http_request(server->port(), "GET", "/robots.txt");
    EXPECT_EQ(file.status, 404);
    auto api = http_request(server->port(), "GET", "/api/v1/no-such-route");
    EXPECT_EQ(api.status, 404);
    EXPECT_NE(api.body.find("\"not_found\""), std::string::npos);
    EXPECT_EQ(api.header("content-type"), "application/json");
    auto post = http_request(server->port(), "POST", "/devices/pump-1", "x");
    EXPECT_EQ(post.status, 404);
}

TEST_F(web_assets, nothing_outside_the_directory_is_served) {
    for (const char* path :
         {"/assets/../../clisonix-web-secret.txt", "/assets/%2e%2e/%2e%2e/clisonix-web-secret.txt",
          "/assets/..%2f..%2fclisonix-web-secret.txt", "/..%2fclisonix-web-secret.txt",
          "/assets/.hidden", "/assets/a%00.js"}) {
        auto r = http_request(server->port(), "GET", path);
        EXPECT_EQ(r.body.find(secret), std::string::npos) << path;
        EXPECT_NE(r.status, 200) << path;
        EXPECT_NE(r.header("cache-control"), "public, max-age=31536000, immutable") << path;
    }
}

}  // namespace
}  // namespace clisonix::testing
