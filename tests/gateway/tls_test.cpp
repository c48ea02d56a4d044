// TLS with a certificate made at test time, checked with openssl s_client and curl.
#include <gtest/gtest.h>

#include "gateway/gateway.h"
#include "gateway/test_server.h"

namespace clisonix::gateway {
namespace {

using clisonix::testing::process;
using clisonix::testing::temp_dir;
using namespace std::chrono_literals;

struct run_output {
    int exit_code = -1;
    std::string out, err;
};

run_output run(const std::vector<std::string>& argv) {
    process p(argv);
    auto code = p.wait(30s);
    return {code.value_or(-1), p.out(), p.err()};
}

class tls_test : public ::testing::Test {
protected:
    void SetUp() override {
        cert = (dir.path() / "cert.pem").string();
        key = (dir.path() / "key.pem").string();
        auto made = run({"/usr/bin/openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                         "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", cert,
                         "-days", "2", "-subj", "/CN=localhost", "-addext",
                         "subjectAltName=DNS:localhost,IP:127.0.0.1"});
        ASSERT_EQ(made.exit_code, 0) << made.err;
        routes.add(
            {http::method::get, "/hello", "Hello", http::permission::open, [](http::request& req) {
                 return http::response::json(
                     200, std::string("{\"secure\":") + (req.secure ? "true" : "false") + "}");
             }});
    }

    std::unique_ptr<testing::test_server> start(std::string min_version = "1.3") {
        settings s;
        s.tls = true;
        s.tls_cert = cert;
        s.tls_key = key;
        s.tls_min_version = std::move(min_version);
        auto opts = testing::small_options();
        configure_server(s, opts);
        return std::make_unique<testing::test_server>(opts, routes,
                                                      std::vector<http::middleware>{});
    }

    run_output s_client(uint16_t port, std::string_view version,
                        std::vector<std::string> extra = {}) {
        std::vector<std::string> argv = {
            "/usr/bin/openssl",         "s_client", "-connect", "127.0.0.1:" + std::to_string(port),
            "-" + std::string(version), "-CAfile",  cert};
        argv.insert(argv.end(), extra.begin(), extra.end());
        return run(argv);
    }

    run_output curl(uint16_t port) {
        return run({"/usr/bin/curl", "-sS", "-D", "-", "--max-time", "10", "--cacert", cert,
                    "--resolve", "localhost:" + std::to_string(port) + ":127.0.0.1",
                    "https://localhost:" + std::to_string(port) + "/hello"});
    }

    temp_dir dir{"clisonix-tls"};
    std::string cert, key;
    http::router routes;
};

TEST_F(tls_test, tls_1_3_by_default_and_1_2_refused) {
    auto srv = start();
    auto v13 = s_client(srv->port(), "tls1_3");
    EXPECT_EQ(v13.exit_code, 0) << v13.out << v13.err;
    EXPECT_NE(v13.out.find("New, TLSv1.3, Cipher is "), std::string::npos) << v13.out;
    EXPECT_NE(v13.out.find("Verify return code: 0 (ok)"), std::string::npos) << v13.out;
    auto v12 = s_client(srv->port(), "tls1_2");
    EXPECT_NE(v12.exit_code, 0) << v12.out;
    EXPECT_EQ(v12.out.find("New, TLSv1.2, Cipher is "), std::string::npos) << v12.out;
    EXPECT_NE(v12.out.find("New, (NONE), Cipher is (NONE)"), std::string::npos) << v12.out;
    EXPECT_NE(v12.err.find("alert protocol version"), std::string::npos) << v12.err;
}

TEST_F(tls_test, tls_1_2_when_allowed_and_1_1_never) {
    auto srv = start("1.2");
    auto v12 = s_client(srv->port(), "tls1_2");
    EXPECT_EQ(v12.exit_code, 0) << v12.out << v12.err;
    EXPECT_NE(v12.out.find("New, TLSv1.2, Cipher is "), std::string::npos) << v12.out;
    EXPECT_EQ(s_client(srv->port(), "tls1_3").exit_code, 0);
    // The client is told to offer 1.1 at any security level, so that the refusal seen is
    // the server's.
    auto v11 = s_client(srv->port(), "tls1_1", {"-cipher", "DEFAULT@SECLEVEL=0"});
    EXPECT_NE(v11.exit_code, 0) << v11.out;
    EXPECT_EQ(v11.out.find("New, TLSv1.1, Cipher is "), std::string::npos) << v11.out;
    EXPECT_NE(v11.out.find("New, (NONE), Cipher is (NONE)"), std::string::npos) << v11.out;
    EXPECT_NE(v11.err.find("alert protocol version"), std::string::npos) << v11.err;
}

TEST_F(tls_test, curl_gets_an_answer_with_hsts) {
    auto srv = start();
    auto r = curl(srv->port());
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("HTTP/1.1 200 OK\r\n"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("Strict-Transport-Security: max-age=31536000; includeSubDomains\r\n"),
              std::string::npos)
        << r.out;
    EXPECT_NE(r.out.find("\r\n\r\n{\"secure\":true}"), std::string::npos) << r.out;
    // Plain HTTP to the TLS port gets nothing useful.
    auto plain = clisonix::testing::http_request(srv->port(), "GET", "/hello");
    EXPECT_NE(plain.status, 200);
}

TEST_F(tls_test, a_missing_or_mismatched_key_is_a_listen_error) {
    http::server_options opts = testing::small_options();
    opts.tls.cert_file = cert;
    opts.tls.key_file = (dir.path() / "missing.pem").string();
    http::server missing(opts, routes, {});
    auto st = missing.listen();
    ASSERT_FALSE(st.ok());
    EXPECT_EQ(st.error().field, "http.tls.key");
    EXPECT_EQ(st.error().code, "invalid_config");

    auto other_key = (dir.path() / "other.pem").string();
    ASSERT_EQ(run({"/usr/bin/openssl", "genpkey", "-algorithm", "ec", "-pkeyopt",
                   "ec_paramgen_curve:prime256v1", "-out", other_key})
                  .exit_code,
              0);
    opts.tls.key_file = other_key;
    http::server mismatched(opts, routes, {});
    auto st2 = mismatched.listen();
    ASSERT_FALSE(st2.ok());
    EXPECT_EQ(st2.error().field, "http.tls.key");
}

}  // namespace
}  // namespace clisonix::gateway
