// The OPC UA client against node-opcua (a server no one here wrote), under security None and
// Basic256Sha256 Sign and SignAndEncrypt: browse, read, subscriptions, and the errors a user
// meets (wrong password, a server or a client certificate not trusted).
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <set>
#include <thread>

#include "opcua/crypto.h"
#include "opcua/node_server.h"
#include "opcua/opcua.h"
#include "support/test_support.h"

using namespace clisonix;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

struct server_fixture {
    clisonix::testing::temp_dir dir{"clisonix-opcua"};
    uint16_t port = 0;
    std::unique_ptr<clisonix::testing::process> server;
    std::string trusted_cert, trusted_key;  // a client certificate the server trusts
    std::string trust_dir;                  // our trust list, holding the server's certificate

    server_fixture() {
        // Our certificate first, so that the server starts with it in its trust list.
        trusted_cert = dir.str() + "/client/cert.pem";
        trusted_key = dir.str() + "/client/key.pem";
        opcua::crypto::certificate cert;
        opcua::crypto::pkey key;
        auto st = opcua::crypto::load_or_generate(trusted_cert, trusted_key,
                                                  "urn:clisonix:test:opcua-client", cert, key);
        if (!st) throw std::runtime_error(st.error().message);
        fs::create_directories(dir.path() / "pki");
        port = clisonix::testing::free_port();
        std::string why;
        server = opcua_test::start_node_server(port, dir.str() + "/pki", {trusted_cert}, why);
        if (!server) throw std::runtime_error(why);
        trust_dir = dir.str() + "/trusted";
        fs::create_directories(trust_dir);
        fs::copy_file(dir.path() / "pki" / "server.der", fs::path(trust_dir) / "server.der");
    }

    std::string url() const { return "opc.tcp://127.0.0.1:" + std::to_string(port); }

    opcua::client_options options(opcua::security_policy policy, opcua::security_mode mode) const {
        opcua::client_options o;
        o.endpoint_url = url();
        o.policy = policy;
        o.mode = mode;
        o.certificate_path = trusted_cert;
        o.private_key_path = trusted_key;
        o.application_uri = "urn:clisonix:test:opcua-client";
        o.trust_dir = trust_dir;
        o.request_timeout = 5s;
        return o;
    }
};

server_fixture* fixture = nullptr;

opcua::node_id node(std::string_view text) {
    auto id = opcua::parse_node_id(text);
    EXPECT_TRUE(id) << (id ? "" : id.error().message);
    return id ? *id : opcua::node_id{};
}

struct security_case {
    const char* name;
    opcua::security_policy policy;
    opcua::security_mode mode;
};

class opcua_client_test : public ::testing::TestWithParam<security_case> {
public:
    static void SetUpTestSuite() { fixture = new server_fixture(); }
    static void TearDownTestSuite() {
        delete fixture;
        fixture = nullptr;
    }
    opcua::client_options options() const {
        return fixture->options(GetParam().policy, GetParam().mode);
    }
};

TEST_P(opcua_client_test, browse_finds_the_plant_variables) {
    opcua::client c;
    auto st = c.connect(options());
    ASSERT_TRUE(st) << st.error().message;
    auto refs = c.browse(node("ns=1;s=Plant"));
    ASSERT_TRUE(refs) << refs.error().message;
    std::vector<std::string> names;
    for (const auto& r : *refs) {
        names.push_back(r.browse_name);
        EXPECT_EQ(r.node_class, 2u) << r.browse_name;  // Variable
        EXPECT_EQ(r.browse_name_namespace, 1);
    }
    std::sort(names.begin(), names.end());
    EXPECT_EQ(names, (std::vector<std::string>{"Count", "Name", "Running", "Temperature"}));
    auto temp = std::find_if(refs->begin(), refs->end(),
                             [](auto& r) { return r.browse_name == "Temperature"; });
    ASSERT_NE(temp, refs->end());
    EXPECT_EQ(temp->target.to_string(), "ns=1;s=Pump1.Temp");
    // From the root down to the folder, as a user exploring the server would.
    auto objects = c.browse(opcua::node_id::of(85));
    ASSERT_TRUE(objects) << objects.error().message;
    EXPECT_TRUE(std::any_of(objects->begin(), objects->end(),
                            [](auto& r) { return r.display_name == "Plant"; }));
}

TEST_P(opcua_client_test, read_gives_exact_values_with_timestamps) {
    opcua::client c;
    auto st = c.connect(options());
    ASSERT_TRUE(st) << st.error().message;
    auto values =
        c.read({node("ns=1;s=Pump1.Count"), node("ns=1;s=Pump1.Running"), node("ns=1;s=Pump1.Name"),
                node("ns=1;s=Pump1.Temp"), node("ns=1;s=NoSuchNode"), node("i=2258")});
    ASSERT_TRUE(values) << values.error().message;
    ASSERT_EQ(values->size(), 6u);
    const auto& v = *values;
    EXPECT_EQ(v[0].status, 0u);
    EXPECT_EQ(v[0].v.type, 6);  // Int32
    EXPECT_EQ(v[0].v.as_double(), 42.0);
    EXPECT_EQ(v[1].v.type, 1);  // Boolean
    EXPECT_EQ(v[1].v.to_string(), "true");
    EXPECT_EQ(v[2].v.type, 12);  // String
    EXPECT_EQ(v[2].v.to_string(), "Pump 1");
    EXPECT_EQ(v[3].v.type, 11);  // Double
    ASSERT_TRUE(v[3].v.as_double());
    EXPECT_GE(*v[3].v.as_double(), 20.0);
    EXPECT_EQ(opcua::status_name_of(v[4].status), "BadNodeIdUnknown");
    EXPECT_FALSE(v[4].good());
    // The server's clock (Server_ServerStatus_CurrentTime), a DateTime near ours.
    EXPECT_EQ(v[5].v.type, 13);
    const int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
    ASSERT_TRUE(v[5].v.as_double());
    EXPECT_NEAR(*v[5].v.as_double(), double(now), 60000.0);
    EXPECT_NEAR(double(v[0].server_time_ms), double(now), 60000.0);
    EXPECT_GT(v[3].source_time_ms, 0);
}

TEST_P(opcua_client_test, a_subscription_delivers_changing_values) {
    opcua::client c;
    auto st = c.connect(options());
    ASSERT_TRUE(st) << st.error().message;
    std::vector<double> temps;
    std::vector<std::string> others;
    auto id =
        c.subscribe({node("ns=1;s=Pump1.Temp"), node("ns=1;s=Pump1.Count")}, 100ms,
                    [&](const opcua::data_change& d) {
                        if (d.node.to_string() == "ns=1;s=Pump1.Temp")
                            temps.push_back(*d.value.v.as_double());
                        else
                            others.push_back(d.node.to_string() + "=" + d.value.v.to_string());
                    });
    ASSERT_TRUE(id) << id.error().message;
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (temps.size() < 4 && std::chrono::steady_clock::now() < deadline) {
        auto n = c.publish(1s);
        ASSERT_TRUE(n) << n.error().message;
    }
    ASSERT_GE(temps.size(), 4u);
    EXPECT_TRUE(std::is_sorted(temps.begin(), temps.end()));
    EXPECT_GT(temps.back(), temps.front());
    EXPECT_EQ(others,
              (std::vector<std::string>{"ns=1;s=Pump1.Count=42"}));  // once: it never changes
    c.close();
    EXPECT_FALSE(c.connected());
}

TEST_P(opcua_client_test, a_user_with_the_right_password_reads) {
    auto o = options();
    o.user = "operator";
    o.password = "pump-secret";
    opcua::client c;
    auto st = c.connect(o);
    ASSERT_TRUE(st) << st.error().message;
    auto values = c.read({node("ns=1;s=Pump1.Count")});
    ASSERT_TRUE(values) << values.error().message;
    EXPECT_EQ((*values)[0].v.as_double(), 42.0);
}

TEST_P(opcua_client_test, a_wrong_password_is_refused_by_name) {
    auto o = options();
    o.user = "operator";
    o.password = "not-the-secret";
    opcua::client c;
    auto st = c.connect(o);
    ASSERT_FALSE(st);
    EXPECT_EQ(st.error().code, "invalid_credentials");
    EXPECT_EQ(st.error().message, "OPC UA ActivateSession failed: BadUserAccessDenied");
    EXPECT_FALSE(c.connected());
}

TEST_P(opcua_client_test, the_channel_token_is_renewed_before_its_lifetime_ends) {
    // node-opcua grants at least 2.5 s and closes a channel whose token is not renewed within
    // 125 % of that: reads for 6 s live only if the client renews (at 75 %, 1.9 s).
    auto o = options();
    o.channel_lifetime = 2500ms;
    opcua::client c;
    auto st = c.connect(o);
    ASSERT_TRUE(st) << st.error().message;
    std::set<uint32_t> tokens{c.security_token_id()};
    const auto until = std::chrono::steady_clock::now() + 6s;
    while (std::chrono::steady_clock::now() < until) {
        auto v = c.read({node("ns=1;s=Pump1.Count")});
        ASSERT_TRUE(v) << v.error().message;
        EXPECT_EQ((*v)[0].v.as_double(), 42.0);
        tokens.insert(c.security_token_id());
        std::this_thread::sleep_for(200ms);
    }
    EXPECT_GE(tokens.size(), 3u);  // the first and at least two renewals
}

INSTANTIATE_TEST_SUITE_P(security, opcua_client_test,
                         ::testing::Values(security_case{"None", opcua::security_policy::none,
                                                         opcua::security_mode::none},
                                           security_case{"Basic256Sha256_Sign",
                                                         opcua::security_policy::basic256sha256,
                                                         opcua::security_mode::sign},
                                           security_case{"Basic256Sha256_SignAndEncrypt",
                                                         opcua::security_policy::basic256sha256,
                                                         opcua::security_mode::sign_and_encrypt}),
                         [](const auto& info) { return std::string(info.param.name); });

class opcua_trust_test : public ::testing::Test {
public:
    static void SetUpTestSuite() { fixture = new server_fixture(); }
    static void TearDownTestSuite() {
        delete fixture;
        fixture = nullptr;
    }
};

TEST_F(opcua_trust_test, a_server_certificate_not_in_the_trust_list_is_refused) {
    clisonix::testing::temp_dir empty;
    auto o = fixture->options(opcua::security_policy::basic256sha256,
                              opcua::security_mode::sign_and_encrypt);
    o.trust_dir = empty.str();
    opcua::client c;
    auto st = c.connect(o);
    ASSERT_FALSE(st);
    EXPECT_EQ(st.error().code, "forbidden");
    const std::string der =
        clisonix::testing::read_file(fs::path(fixture->trust_dir) / "server.der");
    const std::string thumbprint = opcua::crypto::hex(opcua::crypto::sha1(der));
    EXPECT_EQ(st.error().message, "the OPC UA server certificate (SHA-1 " + thumbprint +
                                      ") is not trusted: copy it into " + empty.str());
    EXPECT_TRUE(fs::is_empty(empty.path()));

    // Trust on first use, when asked for, keeps the certificate and connects.
    o.trust_on_first_use = true;
    st = c.connect(o);
    ASSERT_TRUE(st) << st.error().message;
    EXPECT_EQ(c.server_thumbprint(), thumbprint);
    EXPECT_TRUE(fs::exists(empty.path() / ("server-" + thumbprint + ".der")));
}

TEST_F(opcua_trust_test, a_client_certificate_the_server_does_not_trust_is_refused) {
    clisonix::testing::temp_dir own;
    auto o = fixture->options(opcua::security_policy::basic256sha256, opcua::security_mode::sign);
    o.certificate_path = own.str() + "/cert.pem";  // generated on connect: unknown to the server
    o.private_key_path = own.str() + "/key.pem";
    opcua::client c;
    auto st = c.connect(o);
    ASSERT_FALSE(st);
    // The generated certificate is there for an administrator to trust; the error says where.
    ASSERT_TRUE(fs::exists(o.certificate_path));
    opcua::crypto::certificate cert;
    opcua::crypto::pkey key;
    ASSERT_TRUE(
        opcua::crypto::load_or_generate(o.certificate_path, o.private_key_path, "", cert, key));
    EXPECT_EQ(st.error().code, "forbidden") << st.error().message;
    EXPECT_EQ(st.error().message,
              "OPC UA server refused the secure channel: BadSecurityChecksFailed: the server "
              "probably does not "
              "trust our certificate (SHA-1 " +
                  opcua::crypto::hex(opcua::crypto::sha1(cert.der)) + ", " + o.certificate_path +
                  ")");
    EXPECT_EQ(fs::status(o.private_key_path).permissions() & fs::perms::all,
              fs::perms::owner_read | fs::perms::owner_write);
}

TEST_F(opcua_trust_test, security_without_a_mode_and_bad_urls_are_refused_before_connecting) {
    opcua::client c;
    auto o = fixture->options(opcua::security_policy::basic256sha256, opcua::security_mode::none);
    auto st = c.connect(o);
    ASSERT_FALSE(st);
    EXPECT_EQ(st.error().field, "security_mode");
    o = fixture->options(opcua::security_policy::none, opcua::security_mode::none);
    o.endpoint_url = "http://127.0.0.1:1";
    st = c.connect(o);
    ASSERT_FALSE(st);
    EXPECT_EQ(st.error().message, "endpoint URL 'http://127.0.0.1:1' must start with opc.tcp://");
    // A port where nothing listens: a clear error, bounded by the connect timeout.
    o.endpoint_url = "opc.tcp://127.0.0.1:" + std::to_string(clisonix::testing::free_port());
    st = c.connect(o);
    ASSERT_FALSE(st);
    EXPECT_EQ(st.error().code, "unavailable");
    EXPECT_NE(st.error().message.find("cannot connect to"), std::string::npos)
        << st.error().message;
}

}  // namespace
