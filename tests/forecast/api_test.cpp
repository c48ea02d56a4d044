// The forecast API through the real binary: a daily pattern and a daily ramp written with
// explicit timestamps over the last 10 days, then their forecasts, crossings, the predicted
// list, the cache in /metrics and the error answers.
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include <chrono>
#include <cmath>
#include <string>
#include <thread>

#include "support/test_support.h"

namespace clisonix {
namespace {

namespace json = boost::json;
using testing::server_process;

constexpr int64_t hour_s = 3600;
constexpr int64_t hour_ms = hour_s * 1000;

int64_t hour_of_day(int64_t t_ms) {
    return (t_ms / hour_ms) % 24;
}
// p1's temp: a daily sine between 10 and 30.
double temp_at(int64_t t_ms) {
    return 20 + 10 * std::sin(2 * M_PI * static_cast<double>(hour_of_day(t_ms)) / 24);
}
// t1's level: rises all day from 0 to 95.8 % and empties at midnight.
double level_at(int64_t t_ms) {
    return 100.0 * static_cast<double>(hour_of_day(t_ms)) / 24;
}

class forecast_api : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        srv = new server_process(
            {"--set", "forecast.refresh_interval=1s", "--set", "forecast.max_series=3"});
        // The tank type's level has a maximum the ramp passes every day; the pump's
        // temperature a maximum its pattern never reaches.
        for (const char* type : {R"({"name":"tank","metrics":{"level":{"max":95}}})",
                                 R"({"name":"pump","metrics":{"temp":{"min":0,"max":100}}})"})
            ASSERT_EQ(
                srv->post("/api/v1/device-types", type, {"Content-Type: application/json"}).status,
                201);
        for (const char* device :
             {R"({"name":"t1","type":"tank"})", R"({"name":"t2","type":"tank"})",
              R"({"name":"p1","type":"pump"})"})
            ASSERT_EQ(
                srv->post("/api/v1/devices", device, {"Content-Type: application/json"}).status,
                201);
        const int64_t now_s = std::chrono::duration_cast<std::chrono::seconds>(
                                  std::chrono::system_clock::now().time_since_epoch())
                                  .count();
        std::string lines;
        for (int64_t t = (now_s / hour_s) * hour_s - 10 * 24 * hour_s; t <= now_s; t += hour_s) {
            const std::string ts = " " + std::to_string(t) + "\n";
            lines += "plant,device=p1 temp=" + std::to_string(temp_at(t * 1000)) + ts;
            lines += "plant,device=t1 level=" + std::to_string(level_at(t * 1000)) + ts;
            lines += "plant,device=p1 mode=\"auto\"" + ts;
        }
        // t2 is new: its last six hours climb steeply towards 95, too little history for
        // the predicted list (it looks 48 steps of 30 minutes ahead) to trust.
        for (int i = 0; i < 6; ++i)
            lines += "plant,device=t2 level=" + std::to_string(70 + 5 * i) + " " +
                     std::to_string((now_s / hour_s - 5 + i) * hour_s) + "\n";
        auto w = srv->post("/api/v1/write?precision=s", lines);
        ASSERT_EQ(w.status, 204) << w.body;
    }
    static void TearDownTestSuite() {
        delete srv;
        srv = nullptr;
    }

    static json::value get_json(const std::string& target, int status = 200) {
        auto r = srv->get(target);
        EXPECT_EQ(r.status, status) << target << ": " << r.body;
        return json::parse(r.body);
    }

    static double metric_value(const std::string& name) {
        auto body = srv->get("/metrics").body;
        auto at = body.find("\n" + name + " ");
        EXPECT_NE(at, std::string::npos) << name;
        return at == std::string::npos ? -1 : std::stod(body.substr(at + name.size() + 2));
    }

    static server_process* srv;
};

server_process* forecast_api::srv = nullptr;

TEST_F(forecast_api, a_daily_pattern_is_continued_on_the_grid) {
    auto doc = get_json("/api/v1/forecast?device=p1&metric=temp&horizon=12h&step=1h");
    auto& forecasts = doc.at("forecasts").as_array();
    ASSERT_EQ(forecasts.size(), 1u) << doc;
    auto& f = forecasts[0].as_object();
    EXPECT_EQ(f.at("measurement"), "plant");
    EXPECT_EQ(f.at("tags").at("device"), "p1");
    EXPECT_EQ(f.at("metric"), "temp");
    EXPECT_EQ(f.at("step_ms").as_int64(), hour_ms);
    EXPECT_EQ(f.at("horizon_ms").as_int64(), 12 * hour_ms);
    EXPECT_EQ(f.at("season_steps").as_int64(), 24);
    EXPECT_FALSE(f.at("model").as_string().empty());
    EXPECT_GE(f.at("error").at("mae").to_number<double>(), 0);
    EXPECT_GE(f.at("history_points").as_int64(), 240);  // 10 days of hours, the last filling
    const int64_t last_ms = f.at("last").at(0).as_int64();
    EXPECT_NEAR(f.at("last").at(1).to_number<double>(), temp_at(last_ms), 1e-3);
    auto& points = f.at("points").as_array();
    ASSERT_EQ(points.size(), 12u);
    for (size_t k = 0; k < points.size(); ++k) {
        auto& p = points[k].as_array();
        const int64_t ts = p.at(0).as_int64();
        EXPECT_EQ(ts, last_ms + static_cast<int64_t>(k + 1) * hour_ms);
        const double point = p.at(1).to_number<double>();
        EXPECT_NEAR(point, temp_at(ts), 1.0) << "step " << k + 1;
        EXPECT_LE(p.at(4).to_number<double>(), p.at(2).to_number<double>());  // lower95<=lower50
        EXPECT_LE(p.at(2).to_number<double>(), point);
        EXPECT_LE(point, p.at(3).to_number<double>());
        EXPECT_LE(p.at(3).to_number<double>(), p.at(5).to_number<double>());
    }
}

TEST_F(forecast_api, without_step_and_horizon_the_spacing_and_48_steps_are_used) {
    auto doc = get_json("/api/v1/forecast?device=p1&metric=temp");
    auto& f = doc.at("forecasts").at(0);
    EXPECT_EQ(f.at("step_ms").as_int64(), hour_ms);
    EXPECT_EQ(f.at("points").as_array().size(), 48u);
    EXPECT_EQ(f.at("horizon_ms").as_int64(), 48 * hour_ms);
}

TEST_F(forecast_api, a_series_too_short_to_forecast_is_listed_as_skipped_with_why) {
    const int64_t now_s = std::chrono::duration_cast<std::chrono::seconds>(
                              std::chrono::system_clock::now().time_since_epoch())
                              .count();
    ASSERT_EQ(srv->post("/api/v1/write?precision=s",
                        "plant,device=p2 temp=1 " + std::to_string(now_s - 3 * hour_s) +
                            "\nplant,device=p2 temp=2 " + std::to_string(now_s - 2 * hour_s))
                  .status,
              204);
    auto doc = get_json("/api/v1/forecast?device=p*&metric=temp&step=1h");
    ASSERT_EQ(doc.at("forecasts").as_array().size(), 1u) << doc;
    EXPECT_EQ(doc.at("forecasts").at(0).at("tags").at("device"), "p1");
    auto& skipped = doc.at("skipped").as_array();
    ASSERT_EQ(skipped.size(), 1u) << doc;
    EXPECT_EQ(skipped[0].at("tags").at("device"), "p2");
    // forecast()'s own words (forecast.h: fewer than 3 values is an error about the history).
    EXPECT_NE(skipped[0].at("reason").as_string().find("history"), std::string::npos) << doc;
}

TEST_F(forecast_api, strings_and_derived_series_are_not_forecast) {
    for (const char* metric : {"mode", "temp.anomaly", "temp.out_of_range"}) {
        auto doc = get_json(std::string("/api/v1/forecast?device=p1&metric=") + metric);
        EXPECT_EQ(doc.at("forecasts").as_array().size(), 0u) << metric << ": " << doc;
    }
}

TEST_F(forecast_api, the_ramp_is_expected_past_90_at_the_hour_it_gets_there) {
    auto doc =
        get_json("/api/v1/forecast/crossing?device=t1&metric=level&above=90&horizon=24h&step=1h");
    ASSERT_EQ(doc.at("crossings").as_array().size(), 1u) << doc;
    auto& c = doc.at("crossings").at(0);
    EXPECT_EQ(c.at("limit").to_number<double>(), 90);
    EXPECT_EQ(c.at("direction"), "above");
    ASSERT_EQ(c.at("within_horizon"), true) << c;
    const int64_t last_ms = c.at("last").at(0).as_int64();
    int64_t truth = 0;  // the first forecast step whose hour has the ramp past 90
    for (int64_t t = last_ms + hour_ms; truth == 0; t += hour_ms)
        if (level_at(t) > 90) truth = t;
    const int64_t expected = c.at("expected_ms").as_int64();
    EXPECT_LE(std::abs(expected - truth), hour_ms) << c;
    EXPECT_LE(c.at("earliest_ms").as_int64(), truth);
    if (!c.at("latest_ms").is_null()) {
        EXPECT_GE(c.at("latest_ms").as_int64(), truth);
    }
    EXPECT_GE(c.at("probability").to_number<double>(), 0.5);
    EXPECT_EQ(c.at("horizon_end_ms").as_int64(), last_ms + 24 * hour_ms);

    auto never = get_json("/api/v1/forecast/crossing?device=t1&metric=level&below=-50&step=1h");
    auto& n = never.at("crossings").at(0);
    EXPECT_EQ(n.at("within_horizon"), false);
    EXPECT_TRUE(n.at("expected_ms").is_null());
    EXPECT_TRUE(n.at("earliest_ms").is_null());
    EXPECT_TRUE(n.at("latest_ms").is_null());
    EXPECT_EQ(n.at("direction"), "below");
}

TEST_F(forecast_api, predicted_lists_the_tank_heading_for_its_maximum) {
    json::value doc;
    for (int i = 0; i < 100; ++i) {
        doc = get_json("/api/v1/forecast/predicted");
        if (!doc.at("predictions").as_array().empty()) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    auto& list = doc.at("predictions").as_array();
    // p1's temp stays far below its type's 100; t2 has six hours of history.
    ASSERT_EQ(list.size(), 1u) << doc;
    auto& p = list[0];
    EXPECT_EQ(p.at("device"), "t1");
    EXPECT_EQ(p.at("metric"), "level");
    EXPECT_EQ(p.at("limit").to_number<double>(), 95);
    EXPECT_EQ(p.at("direction"), "above");
    const int64_t expected = p.at("expected_ms").as_int64();
    EXPECT_EQ(hour_of_day(expected), 23) << doc;  // the one hour the ramp is past 95
    EXPECT_LE(p.at("earliest_ms").as_int64(), expected);
    EXPECT_GE(p.at("probability").to_number<double>(), 0.5);
    // The newest point's value: the ramp at the newest hour written (or the one before, if
    // an hour began since the write).
    const int64_t newest = (std::chrono::duration_cast<std::chrono::milliseconds>(
                                std::chrono::system_clock::now().time_since_epoch())
                                .count() /
                            hour_ms) *
                           hour_ms;
    const double value = p.at("value").to_number<double>();
    EXPECT_TRUE(std::abs(value - level_at(newest)) < 1e-3 ||
                std::abs(value - level_at(newest - hour_ms)) < 1e-3)
        << value;
    EXPECT_GT(doc.at("computed_ms").as_int64(), 0);
    EXPECT_EQ(doc.at("targets").as_int64(), 3);
    EXPECT_NE(doc.at("note").as_string().find("background"), std::string::npos);
    // A horizon that ends before 23:00 may leave it out; one past the computed one is refused.
    auto too_far = get_json("/api/v1/forecast/predicted?horizon=48h", 400);
    EXPECT_EQ(too_far.at("error").at("field"), "horizon");
    EXPECT_EQ(too_far.at("error").at("message"),
              "horizon: at most 24h (forecast.predicted_horizon), the horizon the list is "
              "computed over");
}

TEST_F(forecast_api, a_repeated_request_is_answered_from_the_cache) {
    const std::string target = "/api/v1/forecast?device=t1&metric=level&horizon=6h&step=1h";
    get_json(target);
    const double hits = metric_value("clisonix_forecast_cache_hits_total");
    const double misses = metric_value("clisonix_forecast_cache_misses_total");
    auto again = get_json(target);
    EXPECT_EQ(again.at("forecasts").as_array().size(), 1u);
    EXPECT_EQ(metric_value("clisonix_forecast_cache_hits_total"), hits + 1);
    EXPECT_EQ(metric_value("clisonix_forecast_cache_misses_total"), misses);
    EXPECT_GE(metric_value("clisonix_forecast_cache_entries"), 1);
}

TEST_F(forecast_api, the_routes_are_described_in_the_openapi_document) {
    auto doc = get_json("/api/v1/openapi.json");
    for (const char* path :
         {"/api/v1/forecast", "/api/v1/forecast/crossing", "/api/v1/forecast/predicted"})
        EXPECT_TRUE(doc.at("paths").as_object().contains(path)) << path;
}

TEST_F(forecast_api, bad_parameters_are_400_naming_the_field_and_an_unknown_asset_404) {
    auto field_of = [](const std::string& target, int status) {
        auto doc = get_json(target, status);
        EXPECT_EQ(doc.at("error").at("code"), status == 404 ? "not_found" : "invalid_argument")
            << doc;
        return std::string(doc.at("error").at("field").as_string());
    };
    EXPECT_EQ(field_of("/api/v1/forecast?device=p1&horizon=7d&step=1m", 400), "horizon");
    auto too_long = get_json("/api/v1/forecast?device=p1&horizon=7d&step=1m", 400);
    EXPECT_EQ(too_long.at("error").at("message"),
              "horizon: 10080 steps; at most 1000 (forecast.max_steps): shorten the horizon or "
              "widen the step");
    EXPECT_EQ(field_of("/api/v1/forecast?device=p1&step=fast", 400), "step");
    EXPECT_EQ(field_of("/api/v1/forecast?device=p1&horizon=-1h", 400), "horizon");
    EXPECT_EQ(field_of("/api/v1/forecast?device=p1&history=2d&step=1m", 400), "history");
    EXPECT_EQ(field_of("/api/v1/forecast?device=p1&from=-1h", 400), "from");
    EXPECT_EQ(field_of("/api/v1/forecast?asset=nowhere", 404), "asset");
    EXPECT_EQ(field_of("/api/v1/forecast/crossing?device=t1&metric=level", 400), "above");
    auto both = get_json("/api/v1/forecast/crossing?device=t1&metric=level&above=1&below=0", 400);
    EXPECT_EQ(both.at("error").at("field"), "below");
    EXPECT_EQ(both.at("error").at("message"), "below: give above= or below=, not both");
    EXPECT_EQ(field_of("/api/v1/forecast/crossing?device=t1&metric=level&below=low", 400), "below");
    EXPECT_EQ(field_of("/api/v1/forecast/predicted?device=t1", 400), "device");

    // p1's temp, t1's and t2's level, and two more numeric series: five, over forecast.max_series
    // (3); p1's string `mode` and the derived series do not count.
    ASSERT_EQ(srv->post("/api/v1/write", "plant,device=x1 a=1\nplant,device=x1 b=2").status, 204);
    auto wide = get_json("/api/v1/forecast", 400);
    EXPECT_EQ(wide.at("error").at("field"), "selection");
    EXPECT_NE(wide.at("error").at("message").as_string().find("5 numeric series match"),
              std::string::npos)
        << wide;
}

}  // namespace
}  // namespace clisonix
