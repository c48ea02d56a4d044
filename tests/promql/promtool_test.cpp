// The Prometheus API of the real binary, read by Debian's promtool: every supported range
// function gives what Clisonix' own /api/v1/query gives for the same data (the *_over_time
// functions against its bucketed aggregates) or what Prometheus' formula gives from the raw
// points (rate, increase, delta, irate, idelta), and unsupported PromQL is refused by name.
//
// promtool 2.42 sends headers (the API key) only for range queries; its instant queries go
// through nginx, which adds the key as a proxy in front of Clisonix would.
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include <cmath>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "support/test_support.h"

namespace clisonix {
namespace {

using testing::process;
using testing::server_process;
using testing::temp_dir;

constexpr int64_t t0_ms = 1'764'892'800'000;  // 2025-12-05T00:00:00Z
constexpr int points = 241;                   // one hour every 15 s
const char* const devices[] = {"d1", "d2", "d3"};

// Point k of a device: 15 s apart plus 1..999 ms, so that no point sits on a minute boundary
// and PromQL's windows (t - 1m, t] hold what the API's buckets [t - 1m, t) hold.
int64_t ts_of(int k, int d) {
    return t0_ms + k * 15'000LL + 1 + (k * 7919 + d * 131) % 999;
}
double counter_step(int k, int d) {
    return (k * 13 + d * 7) % 11 + 1;
}
double temperature_of(int k, int d) {
    return 20 + ((k * 37 + d * 11) % 50) / 4.0;
}

struct point {
    int64_t ts;
    double v;
};

boost::json::value parse_json(const std::string& text) {
    boost::system::error_code ec;
    auto v = boost::json::parse(text, ec);
    EXPECT_FALSE(ec) << ec.message() << " in " << text.substr(0, 300);
    return v;
}

double number(const boost::json::value& v) {
    if (v.is_double()) return v.as_double();
    if (v.is_int64()) return static_cast<double>(v.as_int64());
    return static_cast<double>(v.as_uint64());
}

// Prometheus' sample value text to a double ("NaN", "+Inf" included).
double sample_value(const boost::json::value& v) {
    return std::stod(std::string(v.as_string()));
}

int64_t sample_ms(const boost::json::value& v) {
    return std::llround(number(v) * 1000);
}

// Prometheus' extrapolatedRate written out again from its description, over the raw points
// (the window (t - range, t]): the test's own account of rate, increase and delta.
std::optional<double> extrapolated(const std::vector<point>& all, int64_t t, int64_t range,
                                   bool counter, bool per_second) {
    std::vector<point> w;
    for (const auto& p : all)
        if (p.ts > t - range && p.ts <= t) w.push_back(p);
    if (w.size() < 2) return std::nullopt;
    double change = w.back().v - w.front().v;
    if (counter)
        for (size_t i = 1; i < w.size(); ++i)
            if (w[i].v < w[i - 1].v) change += w[i - 1].v;
    double sampled = (w.back().ts - w.front().ts) / 1000.0;
    double average = sampled / static_cast<double>(w.size() - 1);
    double to_start = (w.front().ts - (t - range)) / 1000.0;
    double to_end = (t - w.back().ts) / 1000.0;
    if (to_start >= average * 1.1) to_start = average / 2;
    if (counter && change > 0 && w.front().v >= 0)
        to_start = std::min(to_start, sampled * (w.front().v / change));
    if (to_end >= average * 1.1) to_end = average / 2;
    double result = change * (sampled + to_start + to_end) / sampled;
    return per_second ? result / (range / 1000.0) : result;
}

std::optional<double> last_two(const std::vector<point>& all, int64_t t, int64_t range,
                               bool per_second) {
    std::vector<point> w;
    for (const auto& p : all)
        if (p.ts > t - range && p.ts <= t) w.push_back(p);
    if (w.size() < 2) return std::nullopt;
    const point &a = w[w.size() - 2], &b = w.back();
    if (!per_second) return b.v - a.v;
    return (b.v < a.v ? b.v : b.v - a.v) / ((b.ts - a.ts) / 1000.0);
}

class promql_promtool : public ::testing::Test {
protected:
    void SetUp() override {
        server = std::make_unique<server_process>(std::vector<std::string>{
            "--set", "analytics.detector=off", "--set", "analytics.health=false"});
        auto created = server->post("/api/v1/apikeys", R"({"name":"grafana","role":"viewer"})",
                                    {"Content-Type: application/json"});
        ASSERT_EQ(created.status, 201) << created.body;
        key = std::string(parse_json(created.body).at("key").as_string());
        std::string lines;
        for (int d = 0; d < 3; ++d) {
            double counter = 100 * d;
            for (int k = 0; k < points; ++k) {
                counter += counter_step(k, d);
                if (d == 1 && k == 120) counter = 3;  // a counter reset
                lines += "plant,device=" + std::string(devices[d]) +
                         ",line=" + (d < 2 ? "a" : "b") + " counter=" + std::to_string(counter) +
                         ",temperature=" + std::to_string(temperature_of(k, d)) + " " +
                         std::to_string(ts_of(k, d)) + "\n";
            }
        }
        ASSERT_EQ(server->post("/api/v1/write?precision=ms", lines).status, 204);
        url = "http://127.0.0.1:" + std::to_string(server->port()) + "/prometheus";
    }

    // Clisonix' own answer: device -> points.
    std::map<std::string, std::vector<point>> own_query(const std::string& params) {
        auto r = server->get("/api/v1/query?measurement=plant&from=" + std::to_string(t0_ms) +
                             "&to=" + std::to_string(t0_ms + 7'200'000) + "&" + params);
        EXPECT_EQ(r.status, 200) << r.body;
        std::map<std::string, std::vector<point>> out;
        const auto doc = parse_json(r.body);
        for (const auto& s : doc.at("series").as_array()) {
            std::string device(s.at("tags").at("device").as_string());
            for (const auto& p : s.at("points").as_array())
                out[device].push_back({p.at(0).to_number<int64_t>(), number(p.at(1))});
        }
        return out;
    }

    // promtool query range; device -> (t ms -> value).
    std::map<std::string, std::map<int64_t, double>> promtool_range(const std::string& expr,
                                                                    int64_t start, int64_t end,
                                                                    const std::string& step) {
        process p({"/usr/bin/promtool", "query", "range", "--header",
                   "Authorization: Bearer " + key, "-o", "json", "--start",
                   std::to_string(start / 1000), "--end", std::to_string(end / 1000), "--step",
                   step, url, expr});
        auto code = p.wait(std::chrono::seconds(60));
        EXPECT_EQ(code, 0) << expr << ": " << p.out() << p.err();
        std::map<std::string, std::map<int64_t, double>> out;
        if (code != 0) return out;
        const auto doc = parse_json(p.out());
        for (const auto& s : doc.as_array()) {
            const auto& metric = s.at("metric").as_object();
            std::string device =
                metric.contains("device") ? std::string(metric.at("device").as_string()) : "";
            for (const auto& v : s.at("values").as_array())
                out[device][sample_ms(v.at(0))] = sample_value(v.at(1));
        }
        return out;
    }

    std::unique_ptr<server_process> server;
    std::string key;
    std::string url;
    // The range every comparison covers: 10 min into the data to its end, a step a minute.
    const int64_t start = t0_ms + 600'000, end = t0_ms + 3'600'000;
};

TEST_F(promql_promtool, over_time_functions_equal_the_apis_own_aggregates) {
    const std::map<std::string, std::string> own_agg{
        {"max_over_time", "max"},      {"min_over_time", "min"},  {"sum_over_time", "sum"},
        {"count_over_time", "count"},  {"avg_over_time", "mean"}, {"last_over_time", "last"},
        {"stddev_over_time", "stddev"}};
    const auto counts = own_query("metric=temperature&agg=count&step=1m");
    for (const auto& [function, agg] : own_agg) {
        auto got = promtool_range(function + "(plant_temperature[1m])", start, end, "1m");
        auto want = own_query("metric=temperature&agg=" + agg + "&step=1m");
        ASSERT_EQ(got.size(), 3u) << function;
        for (const auto& [device, values] : got) {
            ASSERT_EQ(values.size(), 51u) << function << " " << device;
            // The API's bucket [t - 1m, t) is PromQL's window (t - 1m, t].
            std::map<int64_t, double> buckets;
            for (const auto& p : want.at(device))
                buckets[p.ts + 60'000] = p.v;
            // The API's stddev is the sample's (n - 1), PromQL's the population's (n).
            if (agg == "stddev")
                for (const auto& p : counts.at(device)) {
                    double n = p.v;
                    buckets[p.ts + 60'000] *= std::sqrt((n - 1) / n);
                }
            for (const auto& [t, v] : values) {
                ASSERT_TRUE(buckets.contains(t)) << function << " " << device << " " << t;
                // stddev: the two computations round apart in the last bits.
                if (agg == "stddev")
                    EXPECT_NEAR(v, buckets[t], 1e-9) << function << " " << device << " " << t;
                else
                    EXPECT_DOUBLE_EQ(v, buckets[t]) << function << " " << device << " " << t;
            }
        }
    }
}

TEST_F(promql_promtool, rate_increase_delta_irate_idelta_follow_prometheus_formula) {
    auto raw = own_query("metric=counter");
    ASSERT_EQ(raw.size(), 3u);
    struct check {
        std::string function;
        std::function<std::optional<double>(const std::vector<point>&, int64_t)> expected;
    };
    const int64_t range = 300'000;
    const std::vector<check> checks{
        {"rate", [&](const auto& p, int64_t t) { return extrapolated(p, t, range, true, true); }},
        {"increase",
         [&](const auto& p, int64_t t) { return extrapolated(p, t, range, true, false); }},
        {"delta",
         [&](const auto& p, int64_t t) { return extrapolated(p, t, range, false, false); }},
        {"irate", [&](const auto& p, int64_t t) { return last_two(p, t, range, true); }},
        {"idelta", [&](const auto& p, int64_t t) { return last_two(p, t, range, false); }},
    };
    for (const auto& c : checks) {
        auto got = promtool_range(c.function + "(plant_counter[5m])", start, end, "1m");
        ASSERT_EQ(got.size(), 3u) << c.function;
        for (const auto& [device, values] : got) {
            ASSERT_EQ(values.size(), 51u) << c.function << " " << device;
            for (const auto& [t, v] : values) {
                auto want = c.expected(raw.at(device), t);
                ASSERT_TRUE(want.has_value()) << c.function << " " << device << " " << t;
                EXPECT_NEAR(v, *want, 1e-9 * std::max(1.0, std::abs(*want)))
                    << c.function << " " << device << " " << t;
            }
        }
    }
    // The reset of d2 at minute 30 is added back, not seen as a fall.
    auto increase =
        promtool_range("increase(plant_counter[5m])", t0_ms + 1'800'000, t0_ms + 1'860'000, "1m");
    EXPECT_GT(increase.at("d2").at(t0_ms + 1'860'000), 0);
}

TEST_F(promql_promtool, aggregations_and_arithmetic_match_the_raw_values) {
    auto raw = own_query("metric=temperature");
    const int64_t t = t0_ms + 1'800'000;
    auto latest = [&](const std::string& device) {
        double v = NAN;
        for (const auto& p : raw.at(device))
            if (p.ts <= t && p.ts > t - 300'000) v = p.v;
        return v;
    };
    auto scaled =
        promtool_range("sum by (device) (plant_temperature * 2 - 1)", t - 60'000, t, "1m");
    for (const char* d : devices)
        EXPECT_DOUBLE_EQ(scaled.at(d).at(t), latest(d) * 2 - 1) << d;
    auto top = promtool_range("topk(1, plant_temperature)", t - 60'000, t, "1m");
    ASSERT_EQ(top.size(), 1u);
    double best = std::max({latest("d1"), latest("d2"), latest("d3")});
    EXPECT_DOUBLE_EQ(top.begin()->second.at(t), best);
    auto avg = promtool_range("avg(plant_temperature)", t - 60'000, t, "1m");
    EXPECT_DOUBLE_EQ(avg.at("").at(t), (latest("d1") + latest("d2") + latest("d3")) / 3);
    auto line_b =
        promtool_range(R"(max by (line) (plant_temperature{line=~"b|c"}))", t - 60'000, t, "1m");
    EXPECT_DOUBLE_EQ(line_b.at("").at(t), latest("d3"));
}

// nginx in front of Clisonix, adding the API key to every request.
class key_adding_proxy {
public:
    key_adding_proxy(uint16_t upstream, const std::string& key) : port(testing::free_port()) {
        const std::string d = dir.str();
        testing::write_file(
            dir.path() / "nginx.conf",
            "daemon off;\nmaster_process off;\nerror_log stderr;\npid " + d +
                "/nginx.pid;\nevents {}\nhttp {\n  access_log off;\n  client_body_temp_path " + d +
                "/body;\n  proxy_temp_path " + d + "/proxy;\n  fastcgi_temp_path " + d +
                "/fastcgi;\n  uwsgi_temp_path " + d + "/uwsgi;\n  scgi_temp_path " + d +
                "/scgi;\n  server {\n    listen 127.0.0.1:" + std::to_string(port) +
                ";\n    location / {\n      proxy_pass http://127.0.0.1:" +
                std::to_string(upstream) + ";\n      proxy_set_header Authorization \"Bearer " +
                key + "\";\n    }\n  }\n}\n");
        proc = std::make_unique<process>(
            std::vector<std::string>{"/usr/sbin/nginx", "-p", d, "-c", d + "/nginx.conf"});
        for (int i = 0; i < 250; ++i) {
            if (testing::http_request(port, "GET", "/healthz").status != 0) return;
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        ADD_FAILURE() << "nginx did not start: " << proc->err();
    }
    temp_dir dir{"clisonix-nginx"};
    uint16_t port;
    std::unique_ptr<process> proc;
};

TEST_F(promql_promtool, instant_queries_equal_the_range_answer_at_that_time) {
    key_adding_proxy proxy(server->port(), key);
    const int64_t t = t0_ms + 1'800'000;
    for (std::string expr : {"rate(plant_counter[5m])", "max_over_time(plant_temperature[1m])",
                             "plant_temperature offset 10m", "increase(plant_counter[10m]) > 10"}) {
        process p({"/usr/bin/promtool", "query", "instant", "-o", "json", "--time",
                   std::to_string(t / 1000),
                   "http://127.0.0.1:" + std::to_string(proxy.port) + "/prometheus", expr});
        ASSERT_EQ(p.wait(std::chrono::seconds(60)), 0) << expr << ": " << p.err();
        auto range = promtool_range(expr, t - 60'000, t, "1m");
        auto vector = parse_json(p.out()).as_array();
        size_t at_t = 0;
        for (const auto& [device, values] : range)
            at_t += values.contains(t);
        ASSERT_EQ(vector.size(), at_t) << expr;
        ASSERT_FALSE(vector.empty()) << expr;
        for (const auto& s : vector) {
            std::string device(s.at("metric").at("device").as_string());
            EXPECT_EQ(sample_ms(s.at("value").at(0)), t);
            EXPECT_DOUBLE_EQ(sample_value(s.at("value").at(1)), range.at(device).at(t)) << expr;
        }
    }
}

TEST_F(promql_promtool, unsupported_promql_is_refused_by_name) {
    process p({"/usr/bin/promtool", "query", "range", "--header", "Authorization: Bearer " + key,
               "--start", std::to_string(start / 1000), "--end", std::to_string(end / 1000),
               "--step", "1m", url, "histogram_quantile(0.9, rate(plant_counter[5m]))"});
    EXPECT_EQ(p.wait(std::chrono::seconds(60)), 1);
    EXPECT_NE(p.err().find("bad_data: invalid parameter \"query\": unsupported PromQL: function "
                           "\"histogram_quantile\" is not supported (supported: abs,"),
              std::string::npos)
        << p.err();
    auto direct =
        testing::http_request(server->port(), "GET", "/prometheus/api/v1/query?query=x%5B5m:1m%5D",
                              {}, {"Authorization: Bearer " + key});
    EXPECT_EQ(direct.status, 400);
    EXPECT_EQ(direct.body,
              R"({"status":"error","errorType":"bad_data","error":"invalid parameter \"query\": )"
              R"j(unsupported PromQL: subqueries are not supported (at 1:2)"})j");
}

TEST_F(promql_promtool, the_api_takes_form_posts_and_lists_series_labels_and_metadata) {
    const std::vector<std::string> auth{"Authorization: Bearer " + key,
                                        "Content-Type: application/x-www-form-urlencoded"};
    auto post = testing::http_request(
        server->port(), "POST", "/prometheus/api/v1/query",
        "query=count%28plant_temperature%29&time=" + std::to_string(t0_ms / 1000 + 1800), auth);
    ASSERT_EQ(post.status, 200) << post.body;
    EXPECT_EQ(post.body,
              R"({"status":"success","data":{"resultType":"vector","result":[{"metric":{},)"
              R"("value":[1764894600,"3"]}]}})");
    auto series = testing::http_request(server->port(), "POST", "/prometheus/api/v1/series",
                                        "match%5B%5D=plant_counter%7Bdevice%3D%22d1%22%7D&match%5B%"
                                        "5D=plant_temperature%7Bline%3D%22b%22%7D",
                                        auth);
    EXPECT_EQ(
        series.body,
        R"({"status":"success","data":[{"__name__":"plant_counter","device":"d1","line":"a"},)"
        R"({"__name__":"plant_temperature","device":"d3","line":"b"}]})");
    auto labels =
        testing::http_request(server->port(), "GET", "/prometheus/api/v1/labels", {}, {auth[0]});
    EXPECT_EQ(labels.body, R"({"status":"success","data":["__name__","device","line"]})");
    auto names = testing::http_request(server->port(), "GET",
                                       "/prometheus/api/v1/label/__name__/values", {}, {auth[0]});
    EXPECT_EQ(names.body, R"({"status":"success","data":["plant_counter","plant_temperature"]})");
    auto values = testing::http_request(
        server->port(), "GET",
        "/prometheus/api/v1/label/device/values?match[]=plant_counter%7Bline%3D%22a%22%7D", {},
        {auth[0]});
    EXPECT_EQ(values.body, R"({"status":"success","data":["d1","d2"]})");
    auto metadata = testing::http_request(
        server->port(), "GET", "/prometheus/api/v1/metadata?metric=plant_counter", {}, {auth[0]});
    EXPECT_EQ(metadata.body, R"({"status":"success","data":{"plant_counter":[)"
                             R"({"type":"gauge","help":"","unit":""}]}})");
    auto build = testing::http_request(server->port(), "GET", "/prometheus/api/v1/status/buildinfo",
                                       {}, {auth[0]});
    EXPECT_EQ(build.status, 200);
    EXPECT_NE(build.body.find(R"("version":"2.42.0")"), std::string::npos);
    auto no_match =
        testing::http_request(server->port(), "GET", "/prometheus/api/v1/series", {}, {auth[0]});
    EXPECT_EQ(no_match.status, 400);
    EXPECT_EQ(
        no_match.body,
        R"({"status":"error","errorType":"bad_data","error":"no match[] parameter provided"})");
    auto bad_time = testing::http_request(
        server->port(), "GET", "/prometheus/api/v1/query_range?query=up&start=x&end=1&step=1", {},
        {auth[0]});
    EXPECT_EQ(bad_time.status, 400);
    EXPECT_EQ(bad_time.body, R"({"status":"error","errorType":"bad_data","error":"invalid )"
                             R"(parameter \"start\": cannot parse \"x\" to a valid timestamp"})");
    auto rfc3339 = testing::http_request(
        server->port(), "GET",
        "/prometheus/api/v1/query?query=count(plant_counter)&time=2025-12-05T00:30:00Z", {},
        {auth[0]});
    EXPECT_NE(rfc3339.body.find(R"("value":[1764894600,"3"])"), std::string::npos) << rfc3339.body;
    auto anonymous = testing::http_request(server->port(), "GET", "/prometheus/api/v1/labels");
    EXPECT_EQ(anonymous.status, 401);
}

TEST(promql_promtool_limits, an_answer_over_the_cap_is_422_asking_to_narrow) {
    server_process server({"--set", "promql.max_points=1000"});
    std::string lines;
    for (int d = 0; d < 3; ++d)
        lines +=
            "plant,device=d" + std::to_string(d) + " temperature=1 " + std::to_string(t0_ms) + "\n";
    ASSERT_EQ(server.post("/api/v1/write?precision=ms", lines).status, 204);
    auto r = server.get("/prometheus/api/v1/query_range?query=plant_temperature&start=" +
                        std::to_string(t0_ms / 1000) +
                        "&end=" + std::to_string(t0_ms / 1000 + 600) + "&step=1");
    EXPECT_EQ(r.status, 422);
    EXPECT_EQ(r.body, R"({"status":"error","errorType":"execution","error":"query would hold )"
                      R"(1803 points (3 series x 601 steps), over the limit of 1000 )"
                      R"((promql.max_points); narrow the selection or the range, or raise the )"
                      R"(step"})");
}

}  // namespace
}  // namespace clisonix
