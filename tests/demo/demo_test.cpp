// `clisonix demo` as a newcomer runs it: the real binary, a free port, a temp data dir, and
// --speed 10 so that the fault schedule (and the rules' durations) pass ten times faster.
// Telemetry still goes through the real ingest paths (HTTP with device tokens, MQTT to the
// built-in broker); what the test checks it reads back through the public API.
#include <gtest/gtest.h>
#include <signal.h>

#include <boost/json.hpp>
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <string>
#include <thread>

#include "app/demo_plant.h"
#include "support/test_support.h"

namespace clisonix {
namespace {

using namespace std::chrono_literals;
using testing::free_port;
using testing::http_request;
using testing::process;
using testing::read_file;
using testing::temp_dir;
namespace json = boost::json;

#if defined(__SANITIZE_ADDRESS__)
constexpr bool under_sanitizer = true;
#else
constexpr bool under_sanitizer = false;
#endif

constexpr const char* password = "demo-test-password-1";

// Waits until `pred` holds or `timeout` passes; true when it held.
template <typename Pred>
bool eventually(Pred pred, std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
        if (pred()) return true;
        std::this_thread::sleep_for(250ms);
    }
    return pred();
}

bool has_key(const std::string& key) {
    auto r = testing::run_clisonix({"config", "reference"});
    return r.out.find("`" + key + "`") != std::string::npos;
}

struct demo_run {
    uint16_t port = free_port();
    std::unique_ptr<process> proc;
    std::string token;

    demo_run(const temp_dir& data, std::vector<std::string> extra,
             std::vector<std::string> env = {"CLISONIX_ADMIN_PASSWORD=" + std::string(password)}) {
        std::vector<std::string> args{CLISONIX_BINARY, "demo",     "--port",  std::to_string(port),
                                      "--data",        data.str(), "--speed", "10"};
        if (has_key("mqtt.port")) {
            args.push_back("--set");
            args.push_back("mqtt.port=" + std::to_string(free_port()));
        }
        if (has_key("coap.port")) args.insert(args.end(), {"--set", "coap.port=0"});
        args.insert(args.end(), extra.begin(), extra.end());
        proc = std::make_unique<process>(args, env);
    }

    // The banner is printed once the plant is provisioned, just before the simulation starts;
    // banner_ms is then a second before the first simulated second, at the latest.
    int64_t banner_ms = 0;
    bool wait_banner(std::chrono::milliseconds timeout = 30s) {
        bool shown = eventually(
            [&] {
                return proc->out().find("Dashboard: http://localhost:" + std::to_string(port) +
                                        "/") != std::string::npos;
            },
            timeout);
        banner_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                        std::chrono::system_clock::now().time_since_epoch())
                        .count() -
                    1000;
        return shown;
    }

    void login(const std::string& pw = password) {
        auto r = http_request(port, "POST", "/api/v1/auth/login",
                              R"({"username":"admin","password":")" + pw + "\"}",
                              {"Content-Type: application/json"});
        ASSERT_EQ(r.status, 200) << r.body;
        token = std::string(json::parse(r.body).as_object().at("access_token").as_string());
    }

    testing::http_response get(const std::string& target) {
        return http_request(port, "GET", target, {}, {"Authorization: Bearer " + token});
    }

    // The largest value of a query's points (-inf without any).
    double max_of(const std::string& query) {
        auto r = get(query);
        double best = -1e300;
        if (r.status != 200) return best;
        auto v = json::parse(r.body);  // kept: the loop below refers into it
        for (const auto& s : v.as_object().at("series").as_array())
            for (const auto& p : s.as_object().at("points").as_array())
                if (p.as_array()[1].is_number())
                    best = std::max(best, p.as_array()[1].to_number<double>());
        return best;
    }

    size_t points(const std::string& device, const std::string& metric,
                  const std::string& range = "&from=-2m") {
        auto r = get("/api/v1/query?device=" + device + "&metric=" + metric + range);
        if (r.status != 200) return 0;
        size_t n = 0;
        auto v = json::parse(r.body);
        for (const auto& s : v.as_object().at("series").as_array())
            n += s.as_object().at("points").as_array().size();
        return n;
    }

    // An alarm of `rule` (a part of its name) on `device` that started at or after `since_ms`.
    bool alarm_since(int64_t since_ms, const std::string& device, const std::string& rule) {
        auto r = get("/api/v1/alarms?limit=100");
        if (r.status != 200) return false;
        auto v = json::parse(r.body);
        for (const auto& a : v.as_object().at("alarms").as_array()) {
            const auto& o = a.as_object();
            if (o.at("device").as_string() == device &&
                std::string(o.at("rule").as_string()).find(rule) != std::string::npos &&
                o.at("first_at").to_number<int64_t>() >= since_ms)
                return true;
        }
        return false;
    }

    int stop() {
        proc->signal(SIGTERM);
        auto code = proc->wait(20s);
        return code ? *code : -1;
    }
};

TEST(demo_test, plant_is_provisioned_fed_over_http_and_mqtt_and_a_fault_raises_an_alarm) {
    temp_dir data;
    demo_run demo(data, {"--backfill", "10m"});
    ASSERT_TRUE(demo.wait_banner()) << demo.proc->out() << demo.proc->err();
    const int64_t banner_ms = demo.banner_ms;
    const std::string out = demo.proc->out();
    EXPECT_NE(out.find("Login:     admin / " + std::string(password)), std::string::npos) << out;
    EXPECT_NE(out.find("Simulating 20 machines"), std::string::npos) << out;
    demo.login();

    auto plant = app::sim::make_plant(1);
    // Devices, assets and their relations, when this server has the devices API.
    if (auto r = demo.get("/api/v1/devices"); r.status == 200) {
        for (const auto& m : plant.machines)
            EXPECT_NE(r.body.find("\"" + m.name + "\""), std::string::npos) << m.name;
        auto assets = demo.get("/api/v1/assets");
        EXPECT_EQ(assets.status, 200);
        for (const auto& l : plant.lines)
            EXPECT_NE(assets.body.find("\"" + l.name + "\""), std::string::npos) << l.name;
    } else {
        std::cerr << "note: no devices API in this build (" << r.status << ")\n";
    }

    // History is backfilled (after the banner): ten minutes of every sensor before the start.
    EXPECT_TRUE(eventually(
        [&] {
            return demo.max_of("/api/v1/query?device=pump-01&metric=temperature&from=-11m&to=-5m") >
                   0.0;
        },
        20s))
        << demo.proc->err();

    // Live telemetry (newer than the banner, so not the backfill) from a machine fed over
    // HTTP and one fed over MQTT: 10 samples a second each at --speed 10.
    const auto& over_http = plant.machines[0];
    const auto& over_mqtt = plant.machines[1];
    ASSERT_FALSE(over_http.over_mqtt);
    ASSERT_TRUE(over_mqtt.over_mqtt);
    const std::string since = "&from=" + std::to_string(banner_ms);
    EXPECT_TRUE(eventually([&] { return demo.points(over_http.name, "rpm", since) > 20; }, 15s))
        << demo.proc->err();
    EXPECT_TRUE(eventually([&] { return demo.points(over_mqtt.name, "rpm", since) > 20; }, 15s))
        << demo.proc->err();
    EXPECT_EQ(demo.proc->err().find("MQTT machines send over HTTP"), std::string::npos)
        << demo.proc->err();
    // The simulated Modbus press, polled once a second by the demo's connector.
    EXPECT_TRUE(
        eventually([&] { return demo.points("press-modbus-1", "pressure", since) >= 2; }, 15s))
        << demo.get("/api/v1/connectors").body << demo.proc->err();
    auto connectors = demo.get("/api/v1/connectors");
    EXPECT_NE(connectors.body.find("\"status\":\"connected\""), std::string::npos)
        << connectors.body;
    // The Sparkplug B edge node's device, through the broker: births, then data by alias
    // once a (wall) second.
    EXPECT_TRUE(eventually([&] { return demo.points("press-1", "pressure", since) > 3; }, 15s))
        << demo.proc->out() << demo.proc->err();
    EXPECT_NE((demo.proc->out() + demo.proc->err())
                  .find("Sparkplug B: edge node demo/edge-press-line publishes device press-1"),
              std::string::npos);

    // The bearing fault: its vibration's anomaly score goes high after the jump (simulated
    // second 90, 9 s after the start here).
    app::sim::fault bearing{}, hot{};
    for (const auto& f : app::sim::faults_in_cycle(plant, 0)) {
        if (f.kind == app::sim::fault_kind::bearing_wear) bearing = f;
        if (f.kind == app::sim::fault_kind::overheating) hot = f;
    }
    const std::string bearing_machine = plant.machines[bearing.machine].name;
    const int64_t jump_ms = banner_ms + bearing.peak * 100 - 1000;
    EXPECT_TRUE(eventually(
        [&] {
            return demo.max_of("/api/v1/query?device=" + bearing_machine +
                               "&metric=vibration_rms.anomaly&from=" + std::to_string(jump_ms)) >
                   0.8;
        },
        30s))
        << bearing_machine << "\n"
        << demo.proc->err();

    // The alarm caused by the overheating fault (6 s above the limit at this speed), when
    // this server has the rules API.
    if (auto r = demo.get("/api/v1/alarms"); r.status == 200) {
        const std::string hot_machine = plant.machines[hot.machine].name;
        EXPECT_TRUE(eventually(
            [&] { return demo.alarm_since(banner_ms, hot_machine, "overheating"); }, 30s))
            << hot_machine << "\n"
            << demo.get("/api/v1/alarms").body;
    } else {
        std::cerr << "note: no rules API in this build (" << r.status << ")\n";
    }

    EXPECT_EQ(demo.stop(), 0) << demo.proc->err();
}

TEST(demo_test, a_silent_machine_raises_a_no_data_alarm) {
    temp_dir data;
    demo_run demo(data, {"--backfill", "1m"});
    ASSERT_TRUE(demo.wait_banner()) << demo.proc->out() << demo.proc->err();
    demo.login();
    if (demo.get("/api/v1/alarms").status != 200) GTEST_SKIP() << "no rules API in this build";
    auto plant = app::sim::make_plant(1);
    app::sim::fault silent{};
    for (const auto& f : app::sim::faults_in_cycle(plant, 0))
        if (f.kind == app::sim::fault_kind::silent) silent = f;
    // Silent from simulated second 120 (12 s here); the rule says "no data for 12s".
    const std::string machine = plant.machines[silent.machine].name;
    EXPECT_TRUE(
        eventually([&] { return demo.alarm_since(demo.banner_ms, machine, "no data"); }, 40s))
        << machine << "\n"
        << demo.get("/api/v1/alarms").body;
    EXPECT_EQ(demo.stop(), 0) << demo.proc->err();
}

TEST(demo_test, a_second_run_on_the_same_data_reuses_the_plant_and_the_kept_password) {
    temp_dir data;
    std::string first_password;
    {
        // No CLISONIX_ADMIN_PASSWORD: the demo makes one, keeps it and prints it.
        demo_run demo(data, {"--backfill", "2m"}, {});
        ASSERT_TRUE(demo.wait_banner()) << demo.proc->out() << demo.proc->err();
        first_password = read_file(data.path() / "demo-admin-password");
        while (!first_password.empty() && first_password.back() == '\n')
            first_password.pop_back();
        ASSERT_GE(first_password.size(), 12u);
        EXPECT_NE(demo.proc->out().find("admin / " + first_password), std::string::npos);
        demo.login(first_password);
        EXPECT_EQ(demo.stop(), 0) << demo.proc->err();
    }
    // This time without a broker: the MQTT machines fall back to HTTP, with one warning.
    demo_run again(data, {"--backfill", "2m", "--set", "mqtt.enabled=false"}, {});
    ASSERT_TRUE(again.wait_banner()) << again.proc->out() << again.proc->err();
    EXPECT_NE(again.proc->err().find("plant provisioned: 0 objects created"), std::string::npos)
        << again.proc->err();
    again.login(first_password);
    // The devices got fresh tokens and still send, those meant for MQTT too.
    const std::string since = "&from=" + std::to_string(again.banner_ms);
    EXPECT_TRUE(eventually([&] { return again.points("pump-01", "rpm", since) > 0; }, 15s))
        << again.proc->err();
    EXPECT_TRUE(eventually([&] { return again.points("compressor-01", "rpm", since) > 0; }, 15s))
        << again.proc->err();
    EXPECT_NE(again.proc->err().find("the MQTT machines send over HTTP"), std::string::npos)
        << again.proc->err();
    EXPECT_EQ(again.stop(), 0) << again.proc->err();
}

// The demo as a newcomer watches it for half an hour (at --speed 10: 3 minutes): every fault
// the plant injects raises the alarm a plant engineer would expect on its machine while the
// fault is on (sim::rule_for_fault), and no machine without a fault raises any alarm at all
// (no anomaly alarm at a set-point step, none while the detectors learn). Runs with the
// default one-hour backfill, as `clisonix demo` does. DEMO_E2E_SIMULATED_SECONDS sets a
// longer span (bench/demo_soak.sh: 30 minutes of wall time).
TEST(demo_test, thirty_simulated_minutes_every_fault_alarms_and_healthy_machines_stay_quiet) {
    // A timing test of the plant at speed 10: in the Debug + ASan build the detectors take
    // about 30 s to score the backfilled hour, so the first fault cycle has passed before the
    // demo installs its rules. The release suite runs it; the sanitizers check the same code
    // paths in the shorter demo tests above.
    if (under_sanitizer) GTEST_SKIP() << "a timing test: run in the release build";
    int64_t span_s = 1800;  // simulated seconds checked
    if (const char* env = std::getenv("DEMO_E2E_SIMULATED_SECONDS"); env && std::atoll(env) > 0)
        span_s = std::atoll(env);
    temp_dir data;
    demo_run demo(data, {});
    ASSERT_TRUE(demo.wait_banner()) << demo.proc->out() << demo.proc->err();
    // Simulated second k is stamped start + k * 100 ms; the start is a second after banner_ms.
    const int64_t start_ms = demo.banner_ms + 1000;
    auto ts_of = [&](int64_t k) { return start_ms + k * 100; };
    demo.login();
    if (demo.get("/api/v1/alarms").status != 200) GTEST_SKIP() << "no rules API in this build";

    // Until the span is over, and 5 s more for the last evaluations to be stored.
    const auto until =
        std::chrono::system_clock::time_point(std::chrono::milliseconds(ts_of(span_s) + 5000));
    while (std::chrono::system_clock::now() < until) {
        ASSERT_TRUE(demo.proc->running()) << demo.proc->err();
        std::this_thread::sleep_for(1s);
    }
    demo.login();  // access tokens last 15 minutes; the soak runs longer
    auto r = demo.get("/api/v1/alarms?limit=1000");
    ASSERT_EQ(r.status, 200) << r.body;
    const auto alarms = json::parse(r.body).as_object().at("alarms").as_array();

    const auto plant = app::sim::make_plant(1);
    const auto faults = app::sim::faults_between(plant, 0, span_s);
    ASSERT_GE(faults.size(), 10u);  // at least two whole cycles of five faults
    for (const auto& f : faults) {
        const std::string machine = plant.machines[f.machine].name;
        const std::string rule = app::sim::rule_for_fault(plant, f);
        // Raised, or raised again (an alarm still open counts up), while the fault is on (up
        // to 12 simulated seconds after its end for the condition's duration to pass).
        auto during = [&](int64_t at) { return at >= ts_of(f.start) && at <= ts_of(f.end + 12); };
        bool found = false;
        for (const auto& a : alarms) {
            const auto& o = a.as_object();
            found |= o.at("device").as_string() == machine && o.at("rule").as_string() == rule &&
                     (during(o.at("first_at").to_number<int64_t>()) ||
                      during(o.at("last_at").to_number<int64_t>()));
        }
        EXPECT_TRUE(found) << "no \"" << rule << "\" alarm on " << machine << " for its "
                           << app::sim::fault_name(f.kind) << " (simulated " << f.start << ".."
                           << f.end << " s)";
    }

    // The rules on the forecast warn of each overheating and drift before its threshold rule
    // fires on the same machine (the lead time is printed), and of nothing else.
    for (const auto& f : faults) {
        const std::string forecast_rule = app::sim::forecast_rule_for_fault(plant, f);
        if (forecast_rule.empty()) continue;
        const std::string machine = plant.machines[f.machine].name;
        const std::string rule = app::sim::rule_for_fault(plant, f);
        auto first = [&](const std::string& name) {
            int64_t best = -1;
            for (const auto& a : alarms) {
                const auto& o = a.as_object();
                const int64_t at = o.at("first_at").to_number<int64_t>();
                if (o.at("device").as_string() == machine && o.at("rule").as_string() == name &&
                    at >= ts_of(f.start) && at <= ts_of(f.end + 12) && (best < 0 || at < best))
                    best = at;
            }
            return best;
        };
        const int64_t warned = first(forecast_rule), fired = first(rule);
        EXPECT_GE(warned, 0) << "no \"" << forecast_rule << "\" alarm on " << machine;
        EXPECT_GE(fired, 0) << "no \"" << rule << "\" alarm on " << machine;
        if (warned < 0 || fired < 0) continue;
        EXPECT_LT(warned, fired) << forecast_rule << " on " << machine;
        std::cout << "lead time: " << app::sim::fault_name(f.kind) << " on " << machine
                  << " (simulated " << f.start << " s): \"" << forecast_rule << "\" "
                  << (fired - warned) / 100 << " simulated s before \"" << rule << "\"\n";
    }
    for (const auto& a : alarms) {
        const auto& o = a.as_object();
        const std::string rule(o.at("rule").as_string());
        if (rule.find(" forecast") == std::string::npos) continue;
        const int64_t at = o.at("first_at").to_number<int64_t>();
        bool explained = false;
        for (const auto& f : faults)
            explained |= app::sim::forecast_rule_for_fault(plant, f) == rule &&
                         plant.machines[f.machine].name == o.at("device").as_string() &&
                         at >= ts_of(f.start) && at <= ts_of(f.end + 12);
        EXPECT_TRUE(explained) << "\"" << rule << "\" alarm on " << o.at("device").as_string()
                               << " at simulated second " << (at - start_ms) / 100
                               << " without its fault: " << o.at("message").as_string();
    }

    // Every alarm is explained by a fault of its machine: raised while that fault was on, or
    // within two simulated minutes after it (a device back from silence). So a machine
    // without a fault raises none, and a faulty one none at other times.
    const auto all_faults = app::sim::faults_between(plant, 0, span_s + 120);
    for (const auto& a : alarms) {
        const auto& o = a.as_object();
        const std::string device(o.at("device").as_string());
        const int64_t at = o.at("first_at").to_number<int64_t>();
        bool explained = false;
        for (const auto& f : all_faults)
            explained |= plant.machines[f.machine].name == device && at >= ts_of(f.start) &&
                         at <= ts_of(f.end + 120);
        EXPECT_TRUE(explained) << "\"" << o.at("rule").as_string() << "\" alarm on " << device
                               << " at simulated second " << (at - start_ms) / 100
                               << " without a fault there: " << o.at("message").as_string();
    }
    EXPECT_EQ(demo.stop(), 0) << demo.proc->err();
}

TEST(demo_test, bad_flags_exit_2) {
    auto r = testing::run_clisonix({"demo", "--speed", "0"});
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_NE(r.err.find("--speed"), std::string::npos) << r.err;
    r = testing::run_clisonix({"demo", "--backfill", "soon"});
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_NE(r.err.find("--backfill soon"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace clisonix
