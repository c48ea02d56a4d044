// Modbus TCP connectors through the real binary against a real Modbus TCP server (Debian's
// pymodbus, tests/connectors/modbus_server.py): exact values, scaling, word and byte order,
// several unit ids, request batching, state and metrics; an outage (the error named, the
// breaker open, recovery by itself, a gap in the data); a hanging endpoint that delays no
// other connector; and the API's validation, permissions and hidden passwords.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <csignal>
#include <cstdlib>
#include <iostream>
#include <thread>

#include "common/time.h"
// modbus_peer.h runs CLISONIX_SOURCE_DIR/tests/connectors/modbus_server.py.
#include "connectors/modbus_peer.h"
#include "support/test_support.h"

namespace clisonix {
namespace {

using namespace std::chrono_literals;
using namespace testing::modbus_peer;
using testing::http_request;
using testing::server_process;
namespace json = boost::json;

// The points of one series in [from_ms, to_ms], as (ms, value).
std::vector<std::pair<int64_t, double>> points(server_process& srv, const std::string& device,
                                               const std::string& metric, int64_t from_ms,
                                               int64_t to_ms) {
    auto r = srv.get("/api/v1/query?device=" + device + "&metric=" + metric +
                     "&from=" + std::to_string(from_ms) + "&to=" + std::to_string(to_ms));
    EXPECT_EQ(r.status, 200) << r.body;
    std::vector<std::pair<int64_t, double>> out;
    const auto doc = json::parse(r.body);
    for (const auto& s : doc.at("series").as_array())
        for (const auto& p : s.at("points").as_array())
            out.emplace_back(p.as_array()[0].to_number<int64_t>(),
                             p.as_array()[1].to_number<double>());
    return out;
}

std::string metric_line(server_process& srv, const std::string& prefix) {
    auto body = srv.get("/metrics").body;
    auto at = body.find("\n" + prefix);
    if (at == std::string::npos) return "";
    auto end = body.find('\n', at + 1);
    return body.substr(at + 1, end - at - 1);
}

TEST(modbus_connector_test, reads_exact_values_in_every_order_and_unit) {
    const uint16_t port = testing::free_port();
    auto modbus = start_modbus_server(port);
    server_process srv(fast_flags());
    // One poll an hour: exactly one poll happens, so its requests can be counted.
    auto made = call(srv, "POST", "/api/v1/connectors", values_connector("press-4", port, 3600000));
    ASSERT_EQ(made.status, 201) << made.body;
    const int64_t id = json::parse(made.body).at("id").as_int64();
    auto state =
        wait_for(srv, "/api/v1/connectors/" + std::to_string(id), [](const json::value& v) {
            return v.at("state").at("points_read").to_number<uint64_t>() > 0;
        });
    const auto& st = state.at("state");
    EXPECT_EQ(st.at("status"), "connected");
    EXPECT_EQ(st.at("points_read").to_number<uint64_t>(), 14u);
    EXPECT_EQ(st.at("errors").to_number<uint64_t>(), 0u);
    EXPECT_EQ(st.at("last_error"), "");
    EXPECT_NEAR(static_cast<double>(st.at("last_success").as_int64()),
                static_cast<double>(now_ms()), 15000);

    EXPECT_EQ(last_value(srv, "press", "temperature"), -12.5);
    EXPECT_EQ(last_value(srv, "press", "f_big"), -2750.0);
    EXPECT_EQ(last_value(srv, "press", "f_little"), -2750.0);
    EXPECT_EQ(last_value(srv, "press", "f_swapped"), -2750.0);
    EXPECT_EQ(last_value(srv, "press", "i32"), -100000.0);
    EXPECT_EQ(last_value(srv, "press", "input0"), 1234 * 2 - 1000);
    EXPECT_EQ(last_value(srv, "press", "coil0"), 1.0);
    EXPECT_EQ(last_value(srv, "press", "coil1"), 0.0);
    EXPECT_EQ(last_value(srv, "press", "di0"), 1.0);
    EXPECT_EQ(last_value(srv, "press-2", "h0"), 7.0);
    EXPECT_EQ(last_value(srv, "press-2", "h0_tenths"), 0.7);  // not 7 * 0.1 = 0.7000000000000001
    EXPECT_EQ(last_value(srv, "press-2", "f64"), -0.1);
    EXPECT_EQ(last_value(srv, "press-2", "input0"), 42.0);

    // Batched: unit 1 holding 0..7 and 10..11, input 0, coils 0..1, discrete 0; unit 2 holding
    // 0..4 and input 0: seven requests for fourteen mappings.
    EXPECT_EQ(metric_line(srv, "clisonix_connector_requests_total{connector=\"press-4\"}"),
              "clisonix_connector_requests_total{connector=\"press-4\"} 7");
    EXPECT_EQ(metric_line(srv, "clisonix_connector_points_read_total{connector=\"press-4\"}"),
              "clisonix_connector_points_read_total{connector=\"press-4\"} 14");
    EXPECT_EQ(metric_line(srv, "clisonix_connector_connected{connector=\"press-4\"}"),
              "clisonix_connector_connected{connector=\"press-4\"} 1");
}

// 130 adjacent registers are two requests (125 + 5), the protocol's limit per read.
TEST(modbus_connector_test, batches_adjacent_registers_up_to_125_per_request) {
    const uint16_t port = testing::free_port();
    auto modbus = start_modbus_server(port);
    server_process srv(fast_flags());
    std::string mapping;
    for (int reg = 100; reg < 230; ++reg)
        mapping += std::string(mapping.empty() ? "" : ",") + R"({"address":"holding:)" +
                   std::to_string(reg) + R"(","device":"wide","metric":"r)" + std::to_string(reg) +
                   R"("})";
    auto made = call(srv, "POST", "/api/v1/connectors",
                     R"({"name":"wide","type":"modbus","endpoint":"tcp://127.0.0.1:)" +
                         std::to_string(port) + R"(","poll_interval_ms":3600000,"mapping":[)" +
                         mapping + "]}");
    ASSERT_EQ(made.status, 201) << made.body;
    wait_for(srv, "/api/v1/connectors", [](const json::value& v) {
        return v.at("connectors")
                   .as_array()[0]
                   .at("state")
                   .at("points_read")
                   .to_number<uint64_t>() >= 130;
    });
    EXPECT_EQ(metric_line(srv, "clisonix_connector_requests_total{connector=\"wide\"}"),
              "clisonix_connector_requests_total{connector=\"wide\"} 2");
    EXPECT_EQ(last_value(srv, "wide", "r100"), 100.0);
    EXPECT_EQ(last_value(srv, "wide", "r224"), 224.0);
    EXPECT_EQ(last_value(srv, "wide", "r225"), 225.0);
    EXPECT_EQ(last_value(srv, "wide", "r229"), 229.0);
}

TEST(modbus_connector_test, polls_on_schedule_and_follows_changing_registers) {
    const uint16_t port = testing::free_port();
    auto modbus = start_modbus_server(port);
    server_process srv(fast_flags());
    const int64_t from = now_ms();
    ASSERT_EQ(
        call(srv, "POST", "/api/v1/connectors", values_connector("press-5", port, 100)).status,
        201);
    wait_for(srv, "/api/v1/connectors", [](const json::value& v) {
        return v.at("connectors")
                   .as_array()[0]
                   .at("state")
                   .at("points_read")
                   .to_number<uint64_t>() >= 14 * 15;
    });
    auto counter = points(srv, "press", "counter", from, now_ms());
    ASSERT_GE(counter.size(), 15u);
    // The server counts up every 100 ms: every poll sees the count at least as high (it
    // wraps only after 65536 counts).
    for (size_t i = 1; i < counter.size(); ++i) {
        EXPECT_GT(counter[i].first, counter[i - 1].first);
        EXPECT_GE(counter[i].second, counter[i - 1].second);
    }
    EXPECT_GT(counter.back().second, counter.front().second);
}

TEST(modbus_connector_test, an_outage_is_named_opens_the_breaker_recovers_and_leaves_a_gap) {
    const uint16_t port = testing::free_port();
    auto modbus = start_modbus_server(port);
    server_process srv(fast_flags());
    auto made = call(srv, "POST", "/api/v1/connectors", values_connector("press-6", port, 100));
    ASSERT_EQ(made.status, 201) << made.body;
    const std::string target =
        "/api/v1/connectors/" + std::to_string(json::parse(made.body).at("id").as_int64());
    wait_for(srv, target, [](const json::value& v) {
        return v.at("state").at("points_read").to_number<uint64_t>() >= 14 * 3;
    });

    modbus->signal(SIGKILL);
    ASSERT_TRUE(modbus->wait(10s));
    const int64_t stopped = now_ms();
    auto failing = wait_for(srv, target, [](const json::value& v) {
        return v.at("state").at("status") == "failing" && v.at("state").at("breaker") == "open";
    });
    const std::string error(failing.at("state").at("last_error").as_string());
    EXPECT_NE(error.find("modbus"), std::string::npos) << error;
    EXPECT_NE(error.find("127.0.0.1:" + std::to_string(port)), std::string::npos) << error;
    EXPECT_GE(failing.at("state").at("errors").to_number<uint64_t>(), 2u);
    EXPECT_EQ(
        metric_line(srv, "clisonix_circuit_breaker_state{endpoint=\"connector:tcp://127.0.0.1:" +
                             std::to_string(port) + "\"}"),
        "clisonix_circuit_breaker_state{endpoint=\"connector:tcp://127.0.0.1:" +
            std::to_string(port) + "\"} 1");
    EXPECT_EQ(metric_line(srv, "clisonix_connector_connected{connector=\"press-6\"}"),
              "clisonix_connector_connected{connector=\"press-6\"} 0");
    std::this_thread::sleep_for(1500ms);  // down a while: a trial comes and fails

    const int64_t restarted = now_ms();
    modbus = start_modbus_server(port);
    auto back = wait_for(srv, target, [restarted](const json::value& v) {
        return v.at("state").at("status") == "connected" &&
               v.at("state").at("last_success").is_int64() &&
               v.at("state").at("last_success").as_int64() > restarted + 300;
    });
    EXPECT_EQ(back.at("state").at("breaker"), "closed");
    // No point was invented for the time the server was away.
    EXPECT_TRUE(points(srv, "press", "temperature", stopped + 1, restarted).empty());
    EXPECT_FALSE(points(srv, "press", "temperature", restarted, now_ms()).empty());
    EXPECT_FALSE(points(srv, "press", "temperature", stopped - 5000, stopped).empty());
}

// Accepts connections (the kernel does, from the backlog) and never answers a request.
class silent_listener {
public:
    silent_listener() {
        _fd = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        a.sin_port = 0;
        ::bind(_fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
        ::listen(_fd, 16);
        socklen_t len = sizeof a;
        ::getsockname(_fd, reinterpret_cast<sockaddr*>(&a), &len);
        _port = ntohs(a.sin_port);
    }
    ~silent_listener() { ::close(_fd); }
    uint16_t port() const { return _port; }

private:
    int _fd = -1;
    uint16_t _port = 0;
};

TEST(modbus_connector_test, a_hanging_endpoint_delays_no_other_connector) {
    const uint16_t port = testing::free_port();
    auto modbus = start_modbus_server(port);
    silent_listener hang;
    server_process srv(fast_flags());
    auto stuck = call(
        srv, "POST", "/api/v1/connectors",
        R"({"name":"stuck","type":"modbus","endpoint":"tcp://127.0.0.1:)" +
            std::to_string(hang.port()) +
            R"(","poll_interval_ms":100,"timeout_ms":5000,"mapping":[{"address":"holding:0","device":"stuck","metric":"v"}]})");
    ASSERT_EQ(stuck.status, 201) << stuck.body;
    std::this_thread::sleep_for(300ms);  // the stuck connector is waiting on its answer now
    const int64_t from = now_ms();
    ASSERT_EQ(
        call(srv, "POST", "/api/v1/connectors", values_connector("healthy", port, 100)).status,
        201);
    std::this_thread::sleep_for(3s);
    const int64_t to = now_ms();
    auto counter = points(srv, "press", "counter", from, to);
    // About 30 polls in 3 s at 100 ms; a connector held up by the other would have none.
    EXPECT_GE(counter.size(), 20u);
    for (size_t i = 1; i < counter.size(); ++i)
        EXPECT_LT(counter[i].first - counter[i - 1].first, 1000) << "a poll was held up";
    auto all = json::parse(srv.get("/api/v1/connectors").body).at("connectors").as_array();
    ASSERT_EQ(all.size(), 2u);
    EXPECT_EQ(all[0].at("state").at("points_read").to_number<uint64_t>(), 0u);
    // The HTTP API answered all along (the requests above), and the stuck one says why.
    auto failed = wait_for(
        srv, "/api/v1/connectors/" + std::to_string(all[0].at("id").as_int64()),
        [](const json::value& v) { return v.at("state").at("errors").to_number<uint64_t>() > 0; });
    const std::string error(failed.at("state").at("last_error").as_string());
    EXPECT_NE(error.find("timed out"), std::string::npos) << error;
}

// Two endpoints down for the whole run (a closed port, and a listener that never answers)
// cost a third connector not a single poll. Compressed: with reconnect backoff up to 300 ms
// and the breaker trying again after 1 s (fast_flags), each second here takes the down
// connectors through as many connects, timeouts and breaker cycles as about a minute does at
// the defaults (backoff up to 30 s, breaker 30 s), so the default 10 s stand for the ten
// minutes users ask about. CLISONIX_TEST_CONNECTOR_OUTAGE_SECONDS=600 runs the real ten.
// A loaded machine (tests side by side on two cores) can hold any thread for a few hundred
// milliseconds and cost a poll now and then whatever else runs; so the same connector runs
// alone on a second server against the same Modbus server as the control, and the one beside
// the down endpoints may miss no more polls than the control (one more a minute at most).
TEST(modbus_connector_test, endpoints_down_for_the_whole_run_cost_another_connector_no_poll) {
    const char* env = std::getenv("CLISONIX_TEST_CONNECTOR_OUTAGE_SECONDS");
    const int seconds = env ? std::atoi(env) : 10;
    ASSERT_GT(seconds, 0);
    const uint16_t port = testing::free_port();
    auto modbus = start_modbus_server(port);
    silent_listener hang;
    const uint16_t closed = testing::free_port();  // nothing listens there
    server_process srv(fast_flags());
    server_process control(fast_flags());
    for (const auto& [name, endpoint_port] :
         {std::pair{"refused", closed}, {"hanging", hang.port()}})
        ASSERT_EQ(
            call(
                srv, "POST", "/api/v1/connectors",
                R"({"name":")" + std::string(name) +
                    R"(","type":"modbus","endpoint":"tcp://127.0.0.1:)" +
                    std::to_string(endpoint_port) +
                    R"(","poll_interval_ms":100,"timeout_ms":1000,"mapping":[{"address":"holding:0","device":")" +
                    name + R"(","metric":"v"}]})")
                .status,
            201);
    constexpr int64_t interval_ms = 200;
    for (auto* s : {&srv, &control})
        ASSERT_EQ(call(*s, "POST", "/api/v1/connectors",
                       values_connector("healthy", port, static_cast<int>(interval_ms)))
                      .status,
                  201);
    auto list = [&] {
        return json::parse(srv.get("/api/v1/connectors").body).at("connectors").as_array();
    };
    auto state_of = [&](const json::array& all, std::string_view name) {
        for (const auto& c : all)
            if (c.at("name").as_string() == name) return c.at("state").as_object();
        ADD_FAILURE() << "no connector " << name;
        return json::object{};
    };
    // Both are down before the window opens, and stay down through it.
    wait_for(srv, "/api/v1/connectors", [&](const json::value&) {
        auto all = list();
        return state_of(all, "refused").at("errors").to_number<uint64_t>() > 0 &&
               state_of(all, "hanging").at("errors").to_number<uint64_t>() > 0;
    });
    const auto before = list();
    const int64_t from = now_ms();
    std::this_thread::sleep_for(std::chrono::seconds(seconds));
    const int64_t to = now_ms();
    const auto after = list();

    // Polls run on the connector's beat: a missed one leaves a gap of two intervals or more.
    auto missed = [&](const std::vector<std::pair<int64_t, double>>& polls, std::string& where) {
        int64_t n = 0;
        for (size_t i = 1; i < polls.size(); ++i) {
            const int64_t gap = polls[i].first - polls[i - 1].first;
            if (gap * 2 >= 3 * interval_ms) {
                n += (gap + interval_ms / 2) / interval_ms - 1;
                where += " " + std::to_string(gap) + " ms at " + std::to_string(polls[i - 1].first);
            }
        }
        return n;
    };
    auto beside = points(srv, "press", "counter", from, to);
    auto alone = points(control, "press", "counter", from, to);
    std::string beside_gaps, alone_gaps;
    const int64_t missed_beside = missed(beside, beside_gaps);
    const int64_t missed_alone = missed(alone, alone_gaps);
    const auto expected = static_cast<size_t>((to - from) / interval_ms);
    // The control polled (the comparison means something), and the down endpoints cost the
    // connector beside them nothing the control did not lose too.
    EXPECT_GE(alone.size() * 4, expected * 3) << alone.size() << " of " << expected;
    EXPECT_LE(missed_beside, missed_alone + 1 + seconds / 60)
        << "beside the down endpoints: " << beside.size() << " polls, gaps" << beside_gaps
        << "\nalone: " << alone.size() << " polls, gaps" << alone_gaps;
    std::cout << "healthy connector over " << to - from << " ms (" << expected
              << " ticks): beside the down endpoints " << beside.size() << " polls, "
              << missed_beside << " missed; alone " << alone.size() << " polls, " << missed_alone
              << " missed\n";
    EXPECT_EQ(state_of(after, "healthy").at("errors").to_number<uint64_t>(), 0u);
    EXPECT_EQ(state_of(after, "healthy").at("status"), "connected");
    // The down ones kept trying all along (at least once every two seconds) and read nothing.
    for (const char* down : {"refused", "hanging"}) {
        const auto tried = state_of(after, down).at("errors").to_number<uint64_t>() -
                           state_of(before, down).at("errors").to_number<uint64_t>();
        EXPECT_GE(tried, static_cast<uint64_t>(seconds / 2)) << down;
        EXPECT_EQ(state_of(after, down).at("points_read").to_number<uint64_t>(), 0u) << down;
        EXPECT_EQ(state_of(after, down).at("status"), "failing") << down;
    }
}

TEST(modbus_connector_test, api_validates_guards_and_hides_passwords) {
    server_process srv(fast_flags());
    auto bad = [&](const std::string& mapping, const std::string& extra = "") {
        return call(srv, "POST", "/api/v1/connectors",
                    R"({"name":"m","type":"modbus","endpoint":"tcp://127.0.0.1:1502",)" + extra +
                        R"("mapping":)" + mapping + "}");
    };
    auto expect_field = [](const testing::http_response& r, const std::string& field,
                           const std::string& words) {
        EXPECT_EQ(r.status, 400) << r.body;
        auto e = json::parse(r.body).at("error");
        EXPECT_EQ(std::string(e.at("field").as_string()), field) << r.body;
        EXPECT_NE(std::string(e.at("message").as_string()).find(words), std::string::npos)
            << r.body;
    };
    const std::string ok_entry = R"({"address":"holding:0","device":"d","metric":"m"})";
    expect_field(bad("[" + ok_entry + "," + ok_entry + "," + ok_entry +
                     R"(,{"address":"holdin:3","device":"d","metric":"x"}])"),
                 "mapping[3].address", "holdin");
    expect_field(bad(R"([{"address":"holding:70000","device":"d","metric":"m"}])"),
                 "mapping[0].address", "0..65535");
    expect_field(bad(R"([{"address":"coil:1","device":"d","metric":"m","data_type":"int16"}])"),
                 "mapping[0].data_type", "bool");
    expect_field(bad(R"([{"address":"holding:1","device":"d","metric":"m","data_type":"int24"}])"),
                 "mapping[0].data_type", "int24");
    expect_field(
        bad("[" + ok_entry + R"(,{"address":"holding:1","device":"d","metric":"m","scale":"x"}])"),
        "mapping[1].scale", "number");
    expect_field(
        bad(R"([{"address":"holding:1","device":"d","metric":"m","word_order":"middle"}])"),
        "mapping[0].word_order", "big or little");
    expect_field(bad(R"([{"address":"holding:1","device":"d","metric":"m","unit_id":300}])"),
                 "mapping[0].unit_id", "0..255");
    expect_field(bad(R"([{"address":"holding:1","device":"a b","metric":"m"}])"),
                 "mapping[0].device", "spaces");
    expect_field(bad(R"([{"address":"holding:1","device":"d","metric":"m","colour":"red"}])"),
                 "mapping[0].colour", "not a mapping field");
    expect_field(bad("[]"), "mapping", "at least one");
    expect_field(bad("[" + ok_entry + "]", R"("poll_interval_ms":1,)"), "poll_interval_ms",
                 "between");
    auto endpoint =
        call(srv, "POST", "/api/v1/connectors",
             R"({"name":"m","type":"modbus","endpoint":"udp://x:1","mapping":[)" + ok_entry + "]}");
    expect_field(endpoint, "endpoint", "tcp://host:port");
    auto type = call(
        srv, "POST", "/api/v1/connectors",
        R"({"name":"m","type":"profibus","endpoint":"tcp://x:1","mapping":[)" + ok_entry + "]}");
    expect_field(type, "type", "modbus");

    // The password is kept (sealed) and never returned.
    auto made =
        call(srv, "POST", "/api/v1/connectors",
             R"({"name":"gw","type":"modbus","enabled":false,"endpoint":"tcp://127.0.0.1:1502",)"
             R"("username":"plc","password":"hunter2-sealed","mapping":[)" +
                 ok_entry + "]}");
    ASSERT_EQ(made.status, 201) << made.body;
    EXPECT_EQ(made.body.find("hunter2"), std::string::npos);
    auto doc = json::parse(made.body).as_object();
    EXPECT_EQ(doc.at("password_set"), true);
    EXPECT_FALSE(doc.contains("password"));
    EXPECT_EQ(doc.at("state").at("status"), "disabled");
    const std::string one = "/api/v1/connectors/" + std::to_string(doc.at("id").as_int64());
    auto got = srv.get(one);
    EXPECT_EQ(got.status, 200);
    EXPECT_EQ(got.body.find("hunter2"), std::string::npos);
    EXPECT_EQ(srv.get("/api/v1/connectors").body.find("hunter2"), std::string::npos);
    EXPECT_EQ(testing::read_file(srv.data_path() / "meta.db").find("hunter2"), std::string::npos);
    // A replace without a password keeps the stored one.
    auto put = call(
        srv, "PUT", one,
        R"({"name":"gw","type":"modbus","enabled":false,"endpoint":"tcp://127.0.0.1:1503","mapping":[)" +
            ok_entry + "]}");
    ASSERT_EQ(put.status, 200) << put.body;
    EXPECT_EQ(json::parse(put.body).at("password_set"), true);
    EXPECT_EQ(json::parse(put.body).at("endpoint"), "tcp://127.0.0.1:1503");

    auto dup =
        call(srv, "POST", "/api/v1/connectors",
             R"({"name":"gw","type":"modbus","endpoint":"tcp://127.0.0.1:1502","mapping":[)" +
                 ok_entry + "]}");
    EXPECT_EQ(dup.status, 409) << dup.body;
    EXPECT_EQ(srv.get("/api/v1/connectors/999").status, 404);
    EXPECT_EQ(call(srv, "DELETE", "/api/v1/connectors/999").status, 404);

    // Only admins: an operator's API key is refused, and no credentials at all is 401.
    auto key = srv.post("/api/v1/apikeys", R"({"name":"ops","role":"operator"})", json_header);
    ASSERT_EQ(key.status, 201) << key.body;
    const std::string api_key(json::parse(key.body).at("key").as_string());
    EXPECT_EQ(http_request(srv.port(), "GET", "/api/v1/connectors", {},
                           {"Authorization: Token " + api_key})
                  .status,
              403);
    EXPECT_EQ(http_request(srv.port(), "POST", "/api/v1/connectors", made.body,
                           {"Authorization: Token " + api_key, "Content-Type: application/json"})
                  .status,
              403);
    EXPECT_EQ(http_request(srv.port(), "GET", "/api/v1/connectors").status, 401);

    EXPECT_EQ(call(srv, "DELETE", one).status, 204);
    EXPECT_EQ(srv.get(one).status, 404);
}

}  // namespace
}  // namespace clisonix
