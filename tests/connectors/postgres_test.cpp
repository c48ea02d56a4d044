// Connectors on a shared PostgreSQL store: a connector saved through one process starts,
// changes and stops on another that follows the change feed, with the password sealed under
// the shared key; only the process with connectors.run polls.
#include <gtest/gtest.h>

#include <boost/json.hpp>

// modbus_peer.h runs CLISONIX_SOURCE_DIR/tests/connectors/modbus_server.py.
#include "connectors/modbus_peer.h"
#include "support/pg_test_db.h"
#include "support/test_support.h"

namespace clisonix {
namespace {

using namespace std::chrono_literals;
using namespace testing::modbus_peer;
using testing::server_process;
namespace json = boost::json;

std::vector<std::string> node_flags(bool runs_connectors) {
    auto flags = fast_flags();
    flags.insert(flags.end(),
                 {"--set", "notify.secret_key=0123456789abcdef0123456789abcdef", "--set",
                  std::string("connectors.run=") + (runs_connectors ? "true" : "false")});
    return flags;
}

TEST(connectors_postgres_test, a_connector_saved_on_one_node_runs_on_the_polling_node) {
    auto db = testing::pg_test_database::create("connectors");
    ASSERT_TRUE(db) << db.error().message;
    const std::vector<std::string> env{"CLISONIX_META_URL=" + (*db)->url()};
    const uint16_t port = testing::free_port();
    auto modbus = start_modbus_server(port);
    server_process api_node(node_flags(false), env);
    server_process poller(node_flags(true), env);

    auto body = values_connector("shared", port, 200);
    body.insert(body.size() - 1, R"(,"username":"plc","password":"sealed-on-a")");
    auto made = call(api_node, "POST", "/api/v1/connectors", body);
    ASSERT_EQ(made.status, 201) << made.body;
    const std::string one =
        "/api/v1/connectors/" + std::to_string(json::parse(made.body).at("id").as_int64());
    // The node that saved it does not poll; the other hears of it and does.
    EXPECT_EQ(json::parse(made.body).at("state").at("status"), "disabled");
    auto running = wait_for(poller, one, [](const json::value& v) {
        return v.at("state").at("points_read").to_number<uint64_t>() > 0;
    });
    EXPECT_EQ(running.at("state").at("status"), "connected");
    EXPECT_EQ(running.at("password_set"), true);
    // Without a cluster log each node has its own time-series engine: the poller stores them.
    EXPECT_EQ(last_value(poller, "press", "temperature"), -12.5);

    // Disabled through the first node: the poller stops.
    auto off = values_connector("shared", port, 200);
    off.insert(1, R"("enabled":false,)");
    auto put = call(api_node, "PUT", one, off);
    ASSERT_EQ(put.status, 200) << put.body;
    EXPECT_EQ(put.body.find("sealed-on-a"), std::string::npos);
    wait_for(poller, one,
             [](const json::value& v) { return v.at("state").at("status") == "disabled"; });
    EXPECT_EQ(call(api_node, "DELETE", one).status, 204);
    EXPECT_EQ(poller.get(one).status, 404);
}

}  // namespace
}  // namespace clisonix
