// Machine health through the real binary: a device's health model learns from its first data
// and then scores; a shifted metric raises the score and is named as the top contributor, in
// the API and in the alarm of a `health() > 0.5 for 1m` rule; a baseline window chosen over
// the API retrains the model and is retrained again after a restart; bad input answers 400;
// device-type settings turn the detector and health off per type.
#include <gtest/gtest.h>

#include <algorithm>
#include <boost/json.hpp>
#include <cmath>
#include <functional>
#include <map>
#include <thread>
#include <utility>

#include "support/test_support.h"

namespace clisonix {
namespace {

using namespace std::chrono_literals;
using testing::http_request;
using testing::server_process;

constexpr int64_t t0_ms = 1'704'067'200'000;  // 2024-01-01T00:00:00Z
constexpr int64_t step_ms = 10'000;           // one row every 10 s
const std::vector<std::string> json_header = {"Content-Type: application/json"};

boost::json::object parse(const testing::http_response& r) {
    boost::json::error_code ec;
    auto v = boost::json::parse(r.body, ec);
    if (ec || !v.is_object()) return {};
    return v.as_object();
}

// Deterministic noise in [-0.5, 0.5).
struct noise {
    uint32_t seed = 7;
    double operator()() {
        seed = seed * 1'664'525u + 1'013'904'223u;
        return static_cast<double>(seed >> 8) / static_cast<double>(1u << 24) - 0.5;
    }
};

// Rows [first, last) of a machine: vibration_rms ~ 2 (+ shift), current ~ 10, temperature ~ 60.
std::string rows(std::string_view device, int first, int last, noise& n,
                 double vibration_shift = 0) {
    std::string body;
    for (int i = first; i < last; ++i) {
        const int64_t ts = t0_ms + i * step_ms;
        body += "telemetry,device=" + std::string(device) +
                " vibration_rms=" + std::to_string(2 + 0.1 * n() + vibration_shift) +
                ",current=" + std::to_string(10 + 0.5 * n()) +
                ",temperature=" + std::to_string(60 + n()) + " " + std::to_string(ts) + "\n";
    }
    return body;
}

// Polls `get` until `done` holds on its answer (10 s at most); returns the last answer.
boost::json::object wait_for(const std::function<testing::http_response()>& get,
                             const std::function<bool(const boost::json::object&)>& done) {
    boost::json::object doc;
    for (int i = 0; i < 200; ++i) {
        doc = parse(get());
        if (done(doc)) break;
        std::this_thread::sleep_for(50ms);
    }
    return doc;
}

boost::json::object health_of(server_process& srv, std::string_view device,
                              const std::function<bool(const boost::json::object&)>& done) {
    return wait_for([&] { return srv.get("/api/v1/devices/" + std::string(device) + "/health"); },
                    done);
}

int64_t rows_scored(const boost::json::object& h) {
    auto* r = h.if_contains("rows_scored");
    return r ? r->as_int64() : -1;
}

size_t points_of(server_process& srv, std::string_view device, std::string_view metric) {
    auto q = parse(srv.get("/api/v1/query?device=" + std::string(device) +
                           "&metric=" + std::string(metric) + "&from=0&to=4102444800000"));
    size_t n = 0;
    if (auto* s = q.if_contains("series"))
        for (const auto& series : s->as_array())
            n += series.at("points").as_array().size();
    return n;
}

std::vector<std::pair<int64_t, double>> stored_points(server_process& srv, std::string_view device,
                                                      std::string_view metric) {
    auto q = parse(srv.get("/api/v1/query?device=" + std::string(device) +
                           "&metric=" + std::string(metric) + "&from=0&to=4102444800000"));
    std::vector<std::pair<int64_t, double>> out;
    if (auto* s = q.if_contains("series"))
        for (const auto& series : s->as_array())
            for (const auto& p : series.at("points").as_array())
                out.emplace_back(p.at(0).to_number<int64_t>(), p.at(1).to_number<double>());
    return out;
}

// Polls until the series holds `n` points (scores are written just after the API shows them).
size_t wait_points(server_process& srv, std::string_view device, std::string_view metric,
                   size_t n) {
    size_t got = 0;
    for (int i = 0; i < 200 && (got = points_of(srv, device, metric)) < n; ++i)
        std::this_thread::sleep_for(50ms);
    return got;
}

testing::http_response send(server_process& srv, std::string_view method, std::string_view target,
                            std::string_view body) {
    return http_request(srv.port(), method, target, body,
                        {"Authorization: Bearer " + srv.token(), "Content-Type: application/json"});
}

TEST(health_test, learns_then_scores_and_names_the_shifted_metric_in_api_and_alarm) {
    server_process srv(
        {"--set", "analytics.health_baseline=10m", "--set", "analytics.detector=off"});
    EXPECT_EQ(srv.get("/api/v1/devices/nobody/health").status, 404);
    auto rule = srv.post("/api/v1/rules",
                         R"({"name":"machine unhealthy","scope":{"device":"m1"},
                             "severity":"major","condition":"health() > 0.5 for 1m"})",
                         json_header);
    ASSERT_EQ(rule.status, 201) << rule.body;

    noise n;
    // Five minutes: still learning, half way by time.
    ASSERT_EQ(srv.post("/api/v1/write?precision=ms", rows("m1", 0, 30, n)).status, 204);
    auto h = health_of(srv, "m1", [](const auto& d) {
        return d.contains("progress") && d.at("progress").at("rows").as_int64() >= 29;
    });
    EXPECT_EQ(h.at("state"), "learning") << boost::json::serialize(h);
    EXPECT_NEAR(h.at("progress").at("fraction").to_number<double>(), 29.0 / 60, 0.02);
    EXPECT_EQ(h.at("progress").at("baseline_ms"), 600'000);
    EXPECT_TRUE(h.at("score").is_null());
    // The model's own minimum of baseline rows decides when training can happen at the
    // earliest; the counts below follow from it (the model behind the interface may change).
    const int64_t min_rows = h.at("progress").at("min_rows").as_int64();
    ASSERT_LE(min_rows, 100) << "this test sends 160 rows before checking the scores";
    const int64_t trained_row = std::max<int64_t>(60, min_rows - 1);
    const int64_t normal_scored = 159 - trained_row;

    // Twenty minutes in all: trained at 10 min (row 60), then 99 rows scored, all normal.
    ASSERT_EQ(srv.post("/api/v1/write?precision=ms", rows("m1", 30, 160, n)).status, 204);
    h = health_of(srv, "m1", [&](const auto& d) { return rows_scored(d) >= normal_scored; });
    ASSERT_EQ(h.at("state"), "trained") << boost::json::serialize(h);
    EXPECT_EQ(rows_scored(h), normal_scored);
    EXPECT_EQ(h.at("baseline").at("source"), "first_data");
    EXPECT_EQ(h.at("baseline").at("from"), t0_ms);
    EXPECT_EQ(h.at("baseline").at("to"), t0_ms + trained_row * step_ms + 1);
    EXPECT_EQ(h.at("metrics").as_array().size(), 3u);
    EXPECT_LT(h.at("score").to_number<double>(), 0.5);
    EXPECT_EQ(h.at("at"), t0_ms + 159 * step_ms);
    EXPECT_EQ(parse(srv.get("/api/v1/alarms")).at("total"), 0) << "nothing while normal";

    // Vibration jumps by 20 standard deviations for five minutes.
    ASSERT_EQ(srv.post("/api/v1/write?precision=ms", rows("m1", 160, 190, n, 2.0)).status, 204);
    h = health_of(srv, "m1", [&](const auto& d) { return rows_scored(d) >= normal_scored + 30; });
    ASSERT_EQ(rows_scored(h), normal_scored + 30);
    EXPECT_GE(h.at("score").to_number<double>(), 0.5) << boost::json::serialize(h);
    const auto& contributions = h.at("contributions").as_array();
    ASSERT_EQ(contributions.size(), 3u);
    EXPECT_EQ(contributions.at(0).at("metric"), "vibration_rms");
    EXPECT_GE(contributions.at(0).at("value").to_number<double>(),
              contributions.at(1).at("value").to_number<double>());

    auto alarms = wait_for([&] { return srv.get("/api/v1/alarms"); },
                           [](const auto& d) { return d.at("total").as_int64() > 0; });
    ASSERT_EQ(alarms.at("total"), 1);
    const auto& a = alarms.at("alarms").at(0).as_object();
    EXPECT_EQ(a.at("rule"), "machine unhealthy");
    EXPECT_EQ(a.at("device"), "m1");
    // Held for one minute from the first abnormal row: at 27:40 when the model flags the
    // first shifted row (26:40), a little later if it needs a row or two to be sure.
    EXPECT_GE(a.at("first_at").as_int64(), t0_ms + 166 * step_ms);
    EXPECT_LE(a.at("first_at").as_int64(), t0_ms + 175 * step_ms);
    const std::string message(a.at("message").as_string());
    EXPECT_TRUE(message.starts_with("health() ")) << message;
    EXPECT_NE(message.find("; mostly vibration_rms ("), std::string::npos) << message;

    // Operators see the cost in /metrics.
    auto metrics = srv.get("/metrics").body;
    EXPECT_NE(metrics.find("clisonix_health_models 1"), std::string::npos);
    EXPECT_NE(metrics.find("clisonix_health_rows_scored_total " +
                           std::to_string(normal_scored + 30) + "\n"),
              std::string::npos);
    EXPECT_NE(metrics.find("clisonix_health_state_bytes "), std::string::npos);

    // Stored (analytics.health_interval = 1m by default): the score once a minute, and at once
    // when it crosses the watch (0.3) or abnormal (0.5) level, then with its contributions;
    // values rounded to 0.001.
    std::vector<std::pair<int64_t, double>> health, before;
    for (int i = 0; i < 100; ++i) {  // until the scoring thread has written its last round
        before = std::exchange(health, stored_points(srv, "m1", "health"));
        if (!health.empty() && health == before) break;
        std::this_thread::sleep_for(200ms);
    }
    ASSERT_FALSE(health.empty());
    EXPECT_EQ(health.front().first, t0_ms + (trained_row + 1) * step_ms) << "the first scored row";
    EXPECT_GE(health.back().first, t0_ms + 189 * step_ms - 60'000) << "at least once a minute";
    auto level = [](double v) { return (v >= 0.3) + (v >= 0.5); };
    std::vector<int64_t> crossings;  // rows that carry contributions
    size_t regular = 0;
    for (size_t i = 0; i < health.size(); ++i) {
        const auto [ts, v] = health[i];
        EXPECT_DOUBLE_EQ(v, std::round(v * 1000) / 1000) << ts;
        const int before_level = i == 0 ? 0 : level(health[i - 1].second);
        if (level(v) != before_level) crossings.push_back(ts);
        if (i == 0) continue;
        const int64_t gap = ts - health[i - 1].first;
        if (level(v) == before_level) {
            EXPECT_EQ(gap, 60'000) << "once a minute at the same level, at " << ts;
            ++regular;
        }
        EXPECT_LE(gap, 60'000) << ts;
    }
    EXPECT_GE(regular, 12u) << "16 normal minutes and 5 abnormal ones, mostly at one level";
    ASSERT_FALSE(crossings.empty()) << "the vibration shift crosses 0.5";
    EXPECT_GE(crossings.back(), t0_ms + 160 * step_ms);
    // Contributions only at crossings, and the vibration shift's crossing names vibration.
    auto vibration = stored_points(srv, "m1", "health.vibration_rms");
    ASSERT_FALSE(vibration.empty());
    for (const auto& [ts, v] : vibration)
        EXPECT_NE(std::find(crossings.begin(), crossings.end(), ts), crossings.end()) << ts;
    EXPECT_EQ(vibration.back().first, crossings.back());
    EXPECT_GE(vibration.back().second, 0.01);
}

// Rows of a machine with five metrics a..e ~ 10: `shifted` are raised by 20 deviations.
std::string five_metric_rows(int first, int last, noise& n, std::string_view shifted) {
    std::string body;
    for (int i = first; i < last; ++i) {
        body += "telemetry,device=m5 ";
        for (char m : std::string_view("abcde")) {
            double v = 10 + 0.5 * n() + (shifted.find(m) != std::string_view::npos ? 10.0 : 0.0);
            body += std::string(m == 'a' ? "" : ",") + m + "=" + std::to_string(v);
        }
        body += " " + std::to_string(t0_ms + i * step_ms) + "\n";
    }
    return body;
}

// At a crossing at most the three largest contributions (each at least 0.01) are stored, and
// a metric named before but not now gets a 0, so that every metric's latest stored
// contribution is true: what a rule's note names, not a stale value.
TEST(health_test, a_crossing_stores_the_three_largest_contributions_and_zeroes_the_rest) {
    server_process srv(
        {"--set", "analytics.health_baseline=10m", "--set", "analytics.detector=off"});
    noise n;
    ASSERT_EQ(srv.post("/api/v1/write?precision=ms", five_metric_rows(0, 100, n, "")).status, 204);
    // One row with a and b far off, ten minutes back to normal, then c, d and e shift.
    ASSERT_EQ(srv.post("/api/v1/write?precision=ms", five_metric_rows(100, 101, n, "ab")).status,
              204);
    ASSERT_EQ(srv.post("/api/v1/write?precision=ms", five_metric_rows(101, 160, n, "")).status,
              204);
    ASSERT_EQ(srv.post("/api/v1/write?precision=ms", five_metric_rows(160, 190, n, "cde")).status,
              204);
    auto h = health_of(srv, "m5", [](const auto& d) {
        return d.contains("at") && d.at("at") == t0_ms + 189 * step_ms;
    });
    ASSERT_EQ(h.at("state"), "trained") << boost::json::serialize(h);
    std::map<int64_t, std::map<char, double>> at;  // crossing time -> metric -> contribution
    for (std::vector<std::pair<int64_t, double>> got, before; char m : std::string("abcde")) {
        for (int i = 0; i < 100; ++i) {  // until the scoring thread has written its last round
            before = std::exchange(got, stored_points(srv, "m5", std::string("health.") + m));
            if (!got.empty() && got == before) break;
            std::this_thread::sleep_for(100ms);
        }
        for (const auto& [ts, v] : got)
            at[ts][m] = v;
    }
    ASSERT_GE(at.size(), 2u) << "a crossing up with a and b, and one with c, d and e";
    for (const auto& [ts, named] : at) {
        size_t nonzero = 0;
        for (const auto& [m, v] : named)
            nonzero += v > 0;
        EXPECT_LE(nonzero, 3u) << ts;
    }
    // The first crossing names a or b first; the last names only c, d and e, and a and b,
    // named before, are zeroed by then.
    const auto& first = at.begin()->second;
    EXPECT_TRUE(first.contains('a') || first.contains('b'));
    std::map<char, double> latest;
    for (const auto& [ts, named] : at)
        for (const auto& [m, v] : named)
            latest[m] = v;
    EXPECT_EQ(latest['a'], 0.0);
    EXPECT_EQ(latest['b'], 0.0);
    EXPECT_GT(latest['c'] + latest['d'] + latest['e'], 0.0);
    for (const auto& [m, v] : at.rbegin()->second)
        if (v > 0) {
            EXPECT_NE(std::string_view("cde").find(m), std::string_view::npos) << m;
        }
}

TEST(health_test, baseline_window_retrains_and_is_retrained_after_restart) {
    testing::temp_dir data;
    noise n;
    const int64_t from = t0_ms + 60 * step_ms, to = t0_ms + 120 * step_ms;
    {
        server_process srv(server_process::on{data},
                           {"--set", "analytics.health_baseline=10m", "--set",
                            "analytics.detector=off", "--set", "analytics.health_interval=0s"});
        // Ten normal minutes (the first baseline), then ten minutes in a new regime (a new
        // bearing: vibration 1.0 higher), abnormal to the first model.
        ASSERT_EQ(srv.post("/api/v1/write?precision=ms", rows("m2", 0, 10, n)).status, 204);
        auto learning = health_of(srv, "m2", [](const auto& d) { return d.contains("progress"); });
        ASSERT_TRUE(learning.contains("progress")) << boost::json::serialize(learning);
        const int64_t min_rows = learning.at("progress").at("min_rows").as_int64();
        ASSERT_LE(min_rows, 60) << "the baseline window below holds 60 rows";
        ASSERT_GT(min_rows, 10) << "a window of 10 rows must be too short";
        ASSERT_EQ(srv.post("/api/v1/write?precision=ms", rows("m2", 10, 60, n)).status, 204);
        // m3 keeps the baseline it learned from its first ten minutes.
        ASSERT_EQ(srv.post("/api/v1/write?precision=ms", rows("m3", 0, 70, n)).status, 204);
        ASSERT_EQ(srv.post("/api/v1/write?precision=ms", rows("m2", 60, 120, n, 1.0)).status, 204);
        // Trained on rows 0..60 (ten minutes), rows 61..119 scored.
        auto h = health_of(srv, "m2", [](const auto& d) { return rows_scored(d) >= 59; });
        ASSERT_EQ(rows_scored(h), 59);
        ASSERT_EQ(h.at("state"), "trained");
        EXPECT_GE(h.at("score").to_number<double>(), 0.5) << "the new regime is abnormal";

        // Bad input names the field.
        auto bad =
            srv.post("/api/v1/devices/m2/health/baseline",
                     R"({"from":)" + std::to_string(to) + R"(,"to":)" + std::to_string(from) + "}",
                     json_header);
        EXPECT_EQ(bad.status, 400);
        EXPECT_EQ(parse(bad).at("error").at("field"), "to") << bad.body;
        bad = srv.post("/api/v1/devices/m2/health/baseline", R"({"to":"now"})", json_header);
        EXPECT_EQ(bad.status, 400);
        EXPECT_EQ(parse(bad).at("error").at("field"), "from") << bad.body;
        bad = srv.post("/api/v1/devices/m2/health/baseline", R"({"from":"yesterday","to":"now"})",
                       json_header);
        EXPECT_EQ(bad.status, 400);
        EXPECT_EQ(parse(bad).at("error").at("field"), "from") << bad.body;
        bad = srv.post("/api/v1/devices/m2/health/baseline",
                       R"({"from":)" + std::to_string(from) + R"(,"to":)" +
                           std::to_string(from + 10 * step_ms) + "}",
                       json_header);
        EXPECT_EQ(bad.status, 400);
        EXPECT_EQ(parse(bad).at("error").at("field"), "from") << bad.body;
        EXPECT_NE(bad.body.find("holds 10 complete rows"), std::string::npos) << bad.body;
        EXPECT_EQ(srv.post("/api/v1/devices/nobody/health/baseline", R"({"from":0,"to":1000})",
                           json_header)
                      .status,
                  404);

        // Viewers read health but may not retrain it.
        ASSERT_EQ(srv.post("/api/v1/users",
                           R"({"username":"watcher","password":"a-long-enough-password-3",
                               "role":"viewer"})",
                           json_header)
                      .status,
                  201);
        auto login = http_request(srv.port(), "POST", "/api/v1/auth/login",
                                  R"({"username":"watcher","password":"a-long-enough-password-3"})",
                                  json_header);
        ASSERT_EQ(login.status, 200) << login.body;
        const std::string viewer =
            "Authorization: Bearer " + std::string(parse(login).at("access_token").as_string());
        EXPECT_EQ(http_request(srv.port(), "GET", "/api/v1/devices/m2/health", "", {viewer}).status,
                  200);
        EXPECT_EQ(
            http_request(srv.port(), "POST", "/api/v1/devices/m2/health/baseline",
                         R"({"from":0,"to":1000})", {viewer, "Content-Type: application/json"})
                .status,
            403);

        // The new regime as the baseline.
        auto ok = srv.post(
            "/api/v1/devices/m2/health/baseline",
            R"({"from":)" + std::to_string(from) + R"(,"to":"2024-01-01T00:20:00Z"})", json_header);
        ASSERT_EQ(ok.status, 200) << ok.body;
        auto doc = parse(ok);
        EXPECT_EQ(doc.at("rows"), 60);
        EXPECT_EQ(doc.at("health").at("baseline").at("source"), "window");
        EXPECT_EQ(doc.at("health").at("baseline").at("from"), from);
        EXPECT_EQ(doc.at("health").at("baseline").at("to"), to);
        // The scores written before stay as they were.
        EXPECT_EQ(wait_points(srv, "m2", "health", 59), 59u);

        ASSERT_EQ(srv.post("/api/v1/write?precision=ms", rows("m2", 120, 130, n, 1.0)).status, 204);
        h = health_of(srv, "m2", [](const auto& d) { return rows_scored(d) >= 69; });
        ASSERT_EQ(rows_scored(h), 69);
        EXPECT_LT(h.at("score").to_number<double>(), 0.5) << "normal to the new baseline";
        // Scored is not yet stored (scores are written behind the scoring, and the server is
        // killed below): what the restart must keep is what was stored.
        EXPECT_EQ(wait_points(srv, "m2", "health", 69), 69u);
    }
    server_process again(server_process::on{data},
                         {"--set", "analytics.health_baseline=10m", "--set",
                          "analytics.detector=off", "--set", "analytics.health_interval=0s"});
    auto h = health_of(again, "m2", [](const auto& d) { return d.at("state") == "trained"; });
    ASSERT_EQ(h.at("state"), "trained") << boost::json::serialize(h);
    EXPECT_EQ(h.at("baseline").at("source"), "window");
    EXPECT_EQ(h.at("baseline").at("from"), from);
    EXPECT_EQ(h.at("baseline").at("to"), to);
    // A device without a chosen window is retrained from its first stored ten minutes.
    auto m3 = health_of(again, "m3", [](const auto& d) { return d.at("state") == "trained"; });
    ASSERT_EQ(m3.at("state"), "trained") << boost::json::serialize(m3);
    EXPECT_EQ(m3.at("baseline").at("source"), "first_data");
    EXPECT_EQ(m3.at("baseline").at("from"), t0_ms);
    EXPECT_EQ(m3.at("baseline").at("to"), t0_ms + 60 * step_ms + 1);
    // Scoring goes on at once (no new learning period) and with the window's model.
    ASSERT_EQ(again.post("/api/v1/write?precision=ms", rows("m2", 130, 131, n, 1.0)).status, 204);
    h = health_of(again, "m2", [](const auto& d) { return rows_scored(d) >= 1; });
    EXPECT_EQ(rows_scored(h), 1);
    EXPECT_LT(h.at("score").to_number<double>(), 0.5);
    EXPECT_EQ(wait_points(again, "m2", "health", 70), 70u);
}

TEST(health_test, device_type_settings_choose_detector_metrics_and_health) {
    server_process srv({"--set", "analytics.health_baseline=10m"});
    auto bad = send(srv, "POST", "/api/v1/device-types",
                    R"({"name":"odd","analytics":{"detector":"crystal-ball"}})");
    EXPECT_EQ(bad.status, 400);
    EXPECT_EQ(parse(bad).at("error").at("field"), "analytics.detector") << bad.body;
    EXPECT_NE(bad.body.find("unknown detector \\\"crystal-ball\\\""), std::string::npos)
        << bad.body;
    bad = send(srv, "POST", "/api/v1/device-types", R"({"name":"odd","analytics":{"health":1}})");
    EXPECT_EQ(bad.status, 400);
    EXPECT_EQ(parse(bad).at("error").at("field"), "analytics.health") << bad.body;

    auto made = send(srv, "POST", "/api/v1/device-types",
                     R"({"name":"quiet","analytics":{"detector":"off","health":false}})");
    ASSERT_EQ(made.status, 201) << made.body;
    EXPECT_EQ(parse(made).at("analytics").at("detector"), "off");
    made = send(srv, "POST", "/api/v1/device-types",
                R"({"name":"picky","analytics":{"detector":"level","metrics":"temp*",
                    "health_baseline_ms":60000}})");
    ASSERT_EQ(made.status, 201) << made.body;
    EXPECT_EQ(parse(srv.get("/api/v1/device-types/picky")).at("analytics").at("metrics"),
              boost::json::array{"temp*"});
    for (auto [name, type] : {std::pair{"q1", "quiet"}, std::pair{"p1", "picky"}})
        ASSERT_EQ(send(srv, "POST", "/api/v1/devices",
                       R"({"name":")" + std::string(name) + R"(","type":")" + type + R"("})")
                      .status,
                  201);

    // Before any data: learning, with the type's baseline and the model's minimum of rows.
    auto before = parse(srv.get("/api/v1/devices/p1/health"));
    ASSERT_EQ(before.at("state"), "learning") << boost::json::serialize(before);
    EXPECT_EQ(before.at("progress").at("baseline_ms"), 60'000);
    const int64_t min_rows = before.at("progress").at("min_rows").as_int64();
    ASSERT_LE(min_rows, 100) << "this test sends 120 rows";

    noise n;
    ASSERT_EQ(srv.post("/api/v1/write?precision=ms", rows("q1", 0, 120, n) + rows("p1", 0, 120, n))
                  .status,
              204);
    // picky: only temperature is scored (anomaly and health); health learns for one minute
    // (row 6) and at least the model's minimum of rows.
    const int64_t scored = 119 - std::max<int64_t>(6, min_rows - 1);
    auto h = health_of(srv, "p1", [&](const auto& d) { return rows_scored(d) >= scored; });
    EXPECT_EQ(rows_scored(h), scored);
    EXPECT_EQ(h.at("metrics"), boost::json::array{"temperature"}) << boost::json::serialize(h);
    EXPECT_EQ(wait_points(srv, "p1", "temperature.anomaly", 120), 120u);
    EXPECT_EQ(points_of(srv, "p1", "current.anomaly"), 0u);
    // quiet: neither anomaly scores nor health.
    EXPECT_EQ(points_of(srv, "q1", "*.anomaly"), 0u);
    EXPECT_EQ(points_of(srv, "q1", "health*"), 0u);
    EXPECT_EQ(parse(srv.get("/api/v1/devices/q1/health")).at("state"), "off");

    // Back to the server's defaults: new points of q1 are scored.
    auto changed = send(srv, "PATCH", "/api/v1/device-types/quiet", R"({"analytics":{}})");
    ASSERT_EQ(changed.status, 200) << changed.body;
    ASSERT_EQ(srv.post("/api/v1/write?precision=ms", rows("q1", 120, 125, n)).status, 204);
    auto q = wait_for(
        [&] {
            return srv.get(
                "/api/v1/query?device=q1&metric=current.anomaly&from=0&to=4102444800000");
        },
        // Scores are written in batches behind the points: wait for all five, not the first.
        [](const auto& d) {
            const auto& series = d.at("series").as_array();
            return !series.empty() && series.at(0).at("points").as_array().size() >= 5;
        });
    ASSERT_EQ(q.at("series").as_array().size(), 1u);
    EXPECT_EQ(q.at("series").at(0).at("points").as_array().size(), 5u);
    EXPECT_EQ(parse(srv.get("/api/v1/devices/q1/health")).at("state"), "learning");
}

}  // namespace
}  // namespace clisonix
