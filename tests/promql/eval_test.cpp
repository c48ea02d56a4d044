// The PromQL evaluator on a real engine: exact values for selectors (lookback, left-open
// windows, offset), rate/increase/delta with Prometheus' extrapolation, aggregations, vector
// matching, the series mapping and its collisions, and the answer's cap.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>

#include "promql/promql.h"
#include "support/test_support.h"

namespace clisonix::promql {
namespace {

constexpr int64_t sec_ns = 1'000'000'000;
constexpr int64_t t0_ms = 1704067200LL * 1000;  // 2024-01-01T00:00:00Z
constexpr int64_t t0_ns = t0_ms * 1'000'000;

class promql_eval : public ::testing::Test {
protected:
    void SetUp() override {
        storage::options o;
        o.dir = dir.str() + "/tsdb";
        auto e = storage::engine::open(o);
        ASSERT_TRUE(e.ok());
        engine = std::move(*e);
        storage::write_batch b;
        // A counter every 15 s: 0, 10, 20, ... 400 (k = 0..40).
        auto c1 = *b.series("counter,device=d1 value", storage::value_type::float64);
        for (int k = 0; k <= 40; ++k)
            b.add(c1, t0_ns + k * 15 * sec_ns, 10.0 * k);
        // A counter that resets: 0, 10, 20, 30, 5, 15, 25 every 15 s.
        auto c2 = *b.series("counter,device=d2 value", storage::value_type::float64);
        const double resetting[] = {0, 10, 20, 30, 5, 15, 25};
        for (int k = 0; k < 7; ++k)
            b.add(c2, t0_ns + k * 15 * sec_ns, resetting[k]);
        // Temperatures of two devices on two lines, their anomaly scores and health.
        auto add_series = [&](const std::string& key, double v) {
            auto id = *b.series(key, storage::value_type::float64);
            for (int k = 0; k <= 40; ++k)
                b.add(id, t0_ns + k * 15 * sec_ns, v + k);
        };
        add_series("telemetry,device=press-1,line=a temperature", 100);
        add_series("telemetry,device=press-2,line=a temperature", 200);
        add_series("telemetry,device=press-3,line=b temperature", 300);
        add_series("telemetry,device=press-1,line=a temperature.anomaly", 0);
        add_series("telemetry,device=press-1,line=a health", 50);
        add_series("telemetry,device=press-1,line=a health.temperature", 60);
        // Two Clisonix series that map to one Prometheus series.
        add_series("plant.power,site=x value", 1);
        add_series("plant_power,site=x value", 2);
        ASSERT_TRUE(engine->write(b).ok());
    }

    answer run(std::string_view query, int64_t t_ms) {
        auto e = parse(query);
        EXPECT_TRUE(e.ok()) << (e.ok() ? "" : e.error().message);
        auto a = evaluate(*engine, **e, t_ms, t_ms, 1, true, lim);
        EXPECT_TRUE(a.ok()) << query << ": " << (a.ok() ? "" : a.error().message);
        return a.ok() ? *a : answer{};
    }

    answer run_range(std::string_view query, int64_t start, int64_t end, int64_t step) {
        auto e = parse(query);
        EXPECT_TRUE(e.ok());
        auto a = evaluate(*engine, **e, start, end, step, false, lim);
        EXPECT_TRUE(a.ok()) << query << ": " << (a.ok() ? "" : a.error().message);
        return a.ok() ? *a : answer{};
    }

    // The value of the answer series with these labels (NaN when absent).
    static double value_of(const answer& a, const labels& metric) {
        for (const auto& s : a.series)
            if (s.metric == metric && !s.points.empty()) return s.points.back().second;
        return std::nan("");
    }

    testing::temp_dir dir;
    std::unique_ptr<storage::engine> engine;
    limits lim;
};

TEST_F(promql_eval, the_mapping_names_fields_anomaly_and_health_series) {
    EXPECT_EQ(metric_name("telemetry", "temperature"), "telemetry_temperature");
    EXPECT_EQ(metric_name("telemetry", "temperature.anomaly"), "telemetry_temperature_anomaly");
    EXPECT_EQ(metric_name("telemetry", "health"), "telemetry_health");
    EXPECT_EQ(metric_name("telemetry", "health.temperature"), "telemetry_health_temperature");
    EXPECT_EQ(metric_name("up", "value"), "up");
    EXPECT_EQ(metric_name("boiler room", "flow-rate"), "boiler_room_flow_rate");
    storage::series_info info{
        0, "", "m", {{"__secret", "x"}, {"site-id", "7"}}, "value", storage::value_type::float64};
    EXPECT_EQ(labels_of(info), (labels{{"__name__", "m"}, {"site_id", "7"}}));

    const double t = t0_ms + 600'000;
    EXPECT_EQ(
        value_of(
            run("telemetry_temperature_anomaly", t),
            {{"__name__", "telemetry_temperature_anomaly"}, {"device", "press-1"}, {"line", "a"}}),
        40);
    EXPECT_EQ(value_of(run("telemetry_health", t),
                       {{"__name__", "telemetry_health"}, {"device", "press-1"}, {"line", "a"}}),
              90);
    EXPECT_EQ(
        value_of(
            run(R"(telemetry_health_temperature{device="press-1"})", t),
            {{"__name__", "telemetry_health_temperature"}, {"device", "press-1"}, {"line", "a"}}),
        100);
    // A metric name selects its own series only, not another field's.
    EXPECT_EQ(run("telemetry_temperature", t).series.size(), 3u);
}

TEST_F(promql_eval, colliding_series_are_told_apart_by_their_key) {
    auto a = run("plant_power", t0_ms + 600'000);
    ASSERT_EQ(a.series.size(), 2u);
    EXPECT_EQ(value_of(a, {{"__name__", "plant_power"},
                           {"clisonix_key", "plant.power,site=x value"},
                           {"site", "x"}}),
              41);
    EXPECT_EQ(value_of(a, {{"__name__", "plant_power"},
                           {"clisonix_key", "plant_power,site=x value"},
                           {"site", "x"}}),
              42);
    auto one = run(R"(plant_power{clisonix_key="plant_power,site=x value"})", t0_ms + 600'000);
    ASSERT_EQ(one.series.size(), 1u);
    EXPECT_EQ(one.series[0].points[0].second, 42);
}

TEST_F(promql_eval, instant_selectors_look_back_five_minutes_left_open) {
    const labels d1{{"__name__", "counter"}, {"device", "d1"}};
    // The last point is at t0 + 600 s; five minutes later it is just out of the lookback.
    EXPECT_EQ(value_of(run(R"(counter{device="d1"})", t0_ms + 899'999), d1), 400);
    EXPECT_TRUE(run(R"(counter{device="d1"})", t0_ms + 900'000).series.empty());
    // Between points: the one before.
    EXPECT_EQ(value_of(run(R"(counter{device="d1"})", t0_ms + 22'000), d1), 10);
    EXPECT_EQ(value_of(run(R"(counter{device="d1"} offset 1m)", t0_ms + 90'000), d1), 20);
}

TEST_F(promql_eval, a_staleness_marker_ends_a_series_and_is_skipped_in_windows) {
    // Prometheus marks a series gone with a NaN of payload 2 (remote write stores it).
    storage::write_batch b;
    auto id = *b.series("scraped,job=a value", storage::value_type::float64);
    b.add(id, t0_ns, 1);
    b.add(id, t0_ns + 15 * sec_ns, 2);
    b.add(id, t0_ns + 30 * sec_ns, std::bit_cast<double>(0x7ff0000000000002ULL));
    ASSERT_TRUE(engine->write(b).ok());
    EXPECT_EQ(value_of(run("scraped", t0_ms + 20'000), {{"__name__", "scraped"}, {"job", "a"}}), 2);
    EXPECT_TRUE(run("scraped", t0_ms + 40'000).series.empty());
    auto count = run("count_over_time(scraped[1m])", t0_ms + 40'000);
    EXPECT_EQ(value_of(count, {{"job", "a"}}), 2);
}

TEST_F(promql_eval, windows_are_left_open) {
    // (t - 1m, t] at t0 + 300 s holds the points at 255, 270, 285 and 300 s, not 240 s.
    auto a = run(R"(count_over_time(counter{device="d1"}[1m]))", t0_ms + 300'000);
    EXPECT_EQ(value_of(a, {{"device", "d1"}}), 4);
    auto m = run(R"(min_over_time(counter{device="d1"}[1m]))", t0_ms + 300'000);
    EXPECT_EQ(value_of(m, {{"device", "d1"}}), 170);
    auto last = run(R"(last_over_time(counter{device="d1"}[1m]))", t0_ms + 300'000);
    EXPECT_EQ(value_of(last, {{"__name__", "counter"}, {"device", "d1"}}), 200);
}

TEST_F(promql_eval, rate_extrapolates_as_prometheus_does) {
    // Points 170..200 at 255..300 s in (240, 300]: an increase of 30 over 45 s, extrapolated
    // 15 s to the window's start (within 1.1 x the 15 s spacing), 0 s to its end.
    auto a = run(R"(rate(counter{device="d1"}[1m]))", t0_ms + 300'000);
    EXPECT_DOUBLE_EQ(value_of(a, {{"device", "d1"}}), 30.0 * (60.0 / 45.0) / 60.0);
    auto inc = run(R"(increase(counter{device="d1"}[1m]))", t0_ms + 300'000);
    EXPECT_DOUBLE_EQ(value_of(inc, {{"device", "d1"}}), 40);
    // Ending 20 s after the last point (over 1.1 x the spacing): extrapolated half a spacing.
    auto late = run(R"(increase(counter{device="d1"}[1m]))", t0_ms + 620'000);
    // (560, 620]: 570, 585, 600 s -> 380, 390, 400; 20 over 30 s; start 10 s, end 7.5 s.
    EXPECT_DOUBLE_EQ(value_of(late, {{"device", "d1"}}), 20.0 * (30.0 + 10.0 + 7.5) / 30.0);
}

TEST_F(promql_eval, counter_resets_are_added_back_and_the_start_stops_at_zero) {
    // (-10 s, 90 s]: 0, 10, 20, 30, 5, 15, 25: 25 - 0 + 30 (the reset) = 55; the counter
    // starts at 0 at the first point, so nothing is extrapolated before it.
    auto inc = run(R"(increase(counter{device="d2"}[100s]))", t0_ms + 90'000);
    EXPECT_DOUBLE_EQ(value_of(inc, {{"device", "d2"}}), 55);
    auto resets = run(R"(resets(counter{device="d2"}[100s]))", t0_ms + 90'000);
    EXPECT_EQ(value_of(resets, {{"device", "d2"}}), 1);
    // delta is no counter: 25 - 0 = 25, extrapolated 10 s to the start.
    auto delta = run(R"(delta(counter{device="d2"}[100s]))", t0_ms + 90'000);
    EXPECT_DOUBLE_EQ(value_of(delta, {{"device", "d2"}}), 25.0 * 100.0 / 90.0);
    // irate: the last two points, 15 -> 25 over 15 s.
    auto irate = run(R"(irate(counter{device="d2"}[100s]))", t0_ms + 90'000);
    EXPECT_DOUBLE_EQ(value_of(irate, {{"device", "d2"}}), 10.0 / 15.0);
    auto irate_reset = run(R"(irate(counter{device="d2"}[100s]))", t0_ms + 60'000);
    EXPECT_DOUBLE_EQ(value_of(irate_reset, {{"device", "d2"}}), 5.0 / 15.0);
}

TEST_F(promql_eval, aggregations_group_by_and_without) {
    const int64_t t = t0_ms + 600'000;  // temperatures 140, 240, 340
    auto by_line = run("sum by (line) (telemetry_temperature)", t);
    EXPECT_EQ(value_of(by_line, {{"line", "a"}}), 380);
    EXPECT_EQ(value_of(by_line, {{"line", "b"}}), 340);
    auto without = run("max without (device) (telemetry_temperature)", t);
    EXPECT_EQ(value_of(without, {{"line", "a"}}), 240);
    EXPECT_EQ(value_of(run("avg(telemetry_temperature)", t), {}), 240);
    EXPECT_EQ(value_of(run("count(telemetry_temperature > 200)", t), {}), 2);
    EXPECT_DOUBLE_EQ(value_of(run("stddev(telemetry_temperature)", t), {}),
                     std::sqrt(20000.0 / 3.0));
    EXPECT_EQ(value_of(run("quantile(0.25, telemetry_temperature)", t), {}), 190);
    auto top = run("topk(1, telemetry_temperature)", t);
    ASSERT_EQ(top.series.size(), 1u);
    EXPECT_EQ(
        top.series[0].metric,
        (labels{{"__name__", "telemetry_temperature"}, {"device", "press-3"}, {"line", "b"}}));
    auto bottom = run("bottomk by (line) (1, telemetry_temperature)", t);
    EXPECT_EQ(bottom.series.size(), 2u);
    // An instant topk lists its series by value, best first, as Prometheus does.
    auto ranked = run("topk(3, telemetry_temperature)", t);
    ASSERT_EQ(ranked.series.size(), 3u);
    EXPECT_EQ(ranked.series[0].points.at(0).second, 340);
    EXPECT_EQ(ranked.series[1].points.at(0).second, 240);
    EXPECT_EQ(ranked.series[2].points.at(0).second, 140);
    auto lowest = run("(bottomk(2, telemetry_temperature * -1))", t);
    ASSERT_EQ(lowest.series.size(), 2u);
    EXPECT_EQ(lowest.series[0].points.at(0).second, -340);
    EXPECT_EQ(lowest.series[1].points.at(0).second, -240);
}

TEST_F(promql_eval, binary_operators_match_one_to_one_and_drop_the_name) {
    const int64_t t = t0_ms + 600'000;
    auto ratio = run("telemetry_health / on(device, line) telemetry_temperature", t);
    EXPECT_DOUBLE_EQ(value_of(ratio, {{"device", "press-1"}, {"line", "a"}}), 90.0 / 140.0);
    auto scaled = run("telemetry_temperature{device=\"press-1\"} * 2 - 1", t);
    EXPECT_EQ(value_of(scaled, {{"device", "press-1"}, {"line", "a"}}), 279);
    // A comparison filters and keeps the name; with bool it answers 0/1 without it.
    auto hot = run("telemetry_temperature > 200", t);
    EXPECT_EQ(hot.series.size(), 2u);
    EXPECT_EQ(hot.series[0].metric[0].first, "__name__");
    auto flags = run("telemetry_temperature > bool 200", t);
    EXPECT_EQ(value_of(flags, {{"device", "press-1"}, {"line", "a"}}), 0);
    EXPECT_EQ(value_of(flags, {{"device", "press-2"}, {"line", "a"}}), 1);
    auto unless = run("telemetry_temperature unless telemetry_temperature > 200", t);
    ASSERT_EQ(unless.series.size(), 1u);
    EXPECT_EQ(run("2 ^ 3 ^ 2 - -1", t).series.at(0).points.at(0).second, 513);
    EXPECT_EQ(run("-2 ^ 2", t).series.at(0).points.at(0).second, -4);
}

TEST_F(promql_eval, same_labels_after_dropping_names_is_prometheus_error) {
    auto e = parse(R"(rate({__name__=~"telemetry_health|telemetry_health_temperature"}[1m]))");
    ASSERT_TRUE(e.ok());
    auto a = evaluate(*engine, **e, t0_ms + 600'000, t0_ms + 600'000, 1, true, lim);
    ASSERT_FALSE(a.ok());
    EXPECT_EQ(a.error().code, "conflict");
    EXPECT_EQ(a.error().message,
              "vector cannot contain metrics with the same labelset {device=\"press-1\", "
              "line=\"a\"}");
}

TEST_F(promql_eval, a_range_query_steps_through_the_range) {
    auto a = run_range(R"(counter{device="d1"})", t0_ms, t0_ms + 120'000, 60'000);
    ASSERT_EQ(a.type, answer::kind::matrix);
    ASSERT_EQ(a.series.size(), 1u);
    EXPECT_EQ(a.series[0].points, (std::vector<std::pair<int64_t, double>>{
                                      {t0_ms, 0}, {t0_ms + 60'000, 40}, {t0_ms + 120'000, 80}}));
    auto scalar = run_range("time()", t0_ms, t0_ms + 60'000, 30'000);
    EXPECT_EQ(scalar.series.at(0).points.size(), 3u);
    EXPECT_EQ(scalar.series.at(0).points[2].second, t0_ms / 1000 + 60);
}

TEST_F(promql_eval, the_answer_cap_and_the_step_bound_refuse_clearly) {
    lim.max_points = 1000;
    auto e = parse("telemetry_temperature");
    ASSERT_TRUE(e.ok());
    auto a = evaluate(*engine, **e, t0_ms, t0_ms + 600'000, 1'000, false, lim);
    ASSERT_FALSE(a.ok());
    EXPECT_EQ(a.error().code, "too_large");
    EXPECT_EQ(a.error().message,
              "query would hold 1803 points (3 series x 601 steps), over the limit of 1000 "
              "(promql.max_points); narrow the selection or the range, or raise the step");
    auto steps = evaluate(*engine, **e, t0_ms, t0_ms + 20'000'000, 1'000, false, lim);
    ASSERT_FALSE(steps.ok());
    EXPECT_EQ(steps.error().message,
              "exceeded maximum resolution of 11000 points per timeseries. Try decreasing the "
              "query resolution (?step=XX)");
}

TEST_F(promql_eval, answers_are_prometheus_json) {
    answer a;
    a.type = answer::kind::vector;
    a.series.push_back({{{"__name__", "x"}, {"d", "q\""}}, {{t0_ms + 500, 1.5}}});
    a.series.push_back({{}, {{t0_ms, std::nan("")}}});
    EXPECT_EQ(to_json(a), R"({"status":"success","data":{"resultType":"vector","result":[)"
                          R"({"metric":{"__name__":"x","d":"q\""},"value":[1704067200.5,"1.5"]},)"
                          R"({"metric":{},"value":[1704067200,"NaN"]}]}})");
    answer m;
    m.type = answer::kind::matrix;
    m.series.push_back(
        {{}, {{t0_ms, INFINITY}, {t0_ms + 1, -INFINITY}, {t0_ms + 20, 1e21}, {t0_ms + 300, 0.1}}});
    EXPECT_EQ(to_json(m),
              R"({"status":"success","data":{"resultType":"matrix","result":[{"metric":{},)"
              R"("values":[[1704067200,"+Inf"],[1704067200.001,"-Inf"],)"
              R"([1704067200.02,"1000000000000000000000"],[1704067200.3,"0.1"]]}]}})");
}

}  // namespace
}  // namespace clisonix::promql
