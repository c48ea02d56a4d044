// InfluxDB 1.x /query through the real binary, with node-influx (tests/peers) as the client:
// it writes a plant's points with known values, runs the InfluxQL Grafana sends, and every
// answer is compared with what this file computes from the same points by hand.
#include <gtest/gtest.h>

#include <algorithm>
#include <boost/json.hpp>
#include <cmath>
#include <map>
#include <optional>
#include <thread>

#include "support/test_support.h"

namespace clisonix::testing {
namespace {

namespace json = boost::json;

constexpr int64_t t0_ms = 1704067200000;  // 2024-01-01T00:00:00Z
constexpr int64_t minute_ms = 60'000;
const std::string range = "time >= 1704067200000ms AND time < 1704067920000ms";  // 12 minutes

struct point {
    std::string device, line;
    int64_t ts_ms;
    double temperature;  // multiples of 0.25: sums and means are exact
    int64_t cycles;
    std::string state;
};

// Three machines, a point every 20 s for 10 minutes; press-2 is silent in minutes 3..5.
std::vector<point> plant() {
    const std::pair<const char*, const char*> machines[] = {
        {"press-1", "a"}, {"press-2", "a"}, {"lathe-1", "b"}};
    std::vector<point> out;
    for (int k = 0; k < 3; ++k)
        for (int i = 0; i < 30; ++i) {
            if (k == 1 && i >= 9 && i <= 17) continue;
            out.push_back({machines[k].first, machines[k].second, t0_ms + i * 20'000 + k * 7'000,
                           20 + ((i * 7 + k * 3) % 17) * 0.25, int64_t{i} * 3 + k * 100,
                           i % 4 == 0 ? "idle" : "run"});
        }
    std::sort(out.begin(), out.end(),
              [](const point& a, const point& b) { return a.ts_ms < b.ts_ms; });
    return out;
}

std::vector<point> where(const std::vector<point>& points,
                         const std::function<bool(const point&)>& keep) {
    std::vector<point> out;
    for (const auto& p : points)
        if (keep(p)) out.push_back(p);
    return out;
}

// Buckets of `step_ms` over the 12-minute range: start -> the points in it.
std::map<int64_t, std::vector<point>> buckets(const std::vector<point>& points, int64_t step_ms) {
    std::map<int64_t, std::vector<point>> out;
    for (int64_t b = t0_ms; b < t0_ms + 12 * minute_ms; b += step_ms)
        out[b];
    for (const auto& p : points)
        out[p.ts_ms / step_ms * step_ms].push_back(p);
    return out;
}

double mean(const std::vector<point>& ps) {
    double sum = 0;
    for (const auto& p : ps)
        sum += p.temperature;
    return sum / static_cast<double>(ps.size());
}

std::vector<double> sorted_temperatures(const std::vector<point>& ps) {
    std::vector<double> v;
    for (const auto& p : ps)
        v.push_back(p.temperature);
    std::sort(v.begin(), v.end());
    return v;
}

// The JSON numbers of a row, as doubles (null as NaN), so that 21 and 21.0 compare equal.
std::vector<double> row_numbers(const json::value& row) {
    std::vector<double> out;
    for (const auto& v : row.as_array())
        out.push_back(v.is_null()     ? NAN
                      : v.is_double() ? v.as_double()
                                      : static_cast<double>(v.to_number<int64_t>()));
    return out;
}

std::string show_row(const std::vector<double>& r) {
    std::string s = "[";
    for (size_t i = 0; i < r.size(); ++i)
        s += (i ? "," : "") +
             (std::isnan(r[i]) ? std::string("null") : json::serialize(json::value(r[i])));
    return s + "]";
}

// Compares a series' rows with the expected ones (NaN: null).
void expect_rows(const json::value& series, const std::vector<std::vector<double>>& expected,
                 const std::string& what) {
    const auto& values = series.at("values").as_array();
    std::string got, want;
    for (const auto& row : values)
        got += show_row(row_numbers(row));
    for (const auto& row : expected)
        want += show_row(row);
    EXPECT_EQ(got, want) << what;
}

class influx_client_test : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        // No anomaly or health series: the answers hold exactly the written fields.
        server = new server_process(
            {"--set", "analytics.detector=off", "--set", "analytics.health=false"});
        write_key = key("writer", "operator");
        read_key = key("grafana", "viewer");
    }
    static void TearDownTestSuite() {
        delete server;
        server = nullptr;
    }

    static std::string key(const std::string& name, const std::string& role) {
        auto r =
            server->post("/api/v1/apikeys", R"({"name":")" + name + R"(","role":")" + role + "\"}",
                         {"Content-Type: application/json"});
        EXPECT_EQ(r.status, 201) << r.body;
        return std::string(json::parse(r.body).at("key").as_string());
    }

    // Runs client.js over the plant's points and `queries` (id -> {q, epoch}); its answers by id.
    static std::map<std::string, json::value> run_client(
        const std::vector<std::tuple<std::string, std::string, std::string>>& queries) {
        json::array points;
        for (const auto& p : plant())
            points.push_back(json::object{
                {"measurement", "machine"},
                {"tags", json::object{{"device", p.device}, {"line", p.line}}},
                {"fields",
                 json::object{
                     {"temperature", p.temperature}, {"cycles", p.cycles}, {"state", p.state}}},
                {"ts_ms", p.ts_ms}});
        json::array qs;
        for (const auto& [id, q, epoch] : queries)
            qs.push_back(json::object{{"id", id}, {"q", q}, {"epoch", epoch}});
        temp_dir dir("clisonix-influx-client");
        const auto spec = dir.path() / "spec.json";
        write_file(spec, json::serialize(json::object{{"write_key", write_key},
                                                      {"read_key", read_key},
                                                      {"points", points},
                                                      {"queries", qs}}));
        process node({"/usr/bin/env", "node", CLISONIX_SOURCE_DIR "/tests/influxql/client.js",
                      std::to_string(server->port()), spec.string()});
        for (int i = 0; i < 1200 && node.running(); ++i)
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        std::map<std::string, json::value> out;
        const std::string text = node.out();
        size_t at = 0;
        while (true) {
            const auto end = text.find('\n', at);
            if (end == std::string::npos) break;
            const auto line = text.substr(at, end - at);
            at = end + 1;
            if (line.empty() || line[0] != '{') continue;
            auto v = json::parse(line);
            out[std::string(v.at("id").as_string())] = v;
        }
        EXPECT_TRUE(out.contains("done")) << "client.js out:\n" << text << "\nerr:\n" << node.err();
        return out;
    }

    static server_process* server;
    static std::string write_key, read_key;
};

server_process* influx_client_test::server = nullptr;
std::string influx_client_test::write_key;
std::string influx_client_test::read_key;

const json::value& first_series(const json::value& answer, size_t statement = 0) {
    return answer.at("raw").at("results").at(statement).at("series").at(0);
}

TEST_F(influx_client_test, NodeInfluxGetsExactAnswers) {
    const auto all = plant();
    const std::string mean_1m =
        R"(SELECT mean("temperature") FROM "machine" WHERE "device" = 'press-1' AND )" + range +
        " GROUP BY time(1m) fill(null)";
    const std::string press2 =
        "FROM machine WHERE device = 'press-2' AND " + range + " GROUP BY time(1m)";
    auto answers = run_client({
        {"mean 1m", mean_1m, "ms"},
        {"mean 1m rfc3339", mean_1m, ""},
        {"mean 1m epoch s", mean_1m, "s"},
        {"by device",
         R"(SELECT max("temperature") AS "hi", min("temperature"), count("temperature"), sum("cycles") FROM "plant"."autogen"."machine" WHERE )" +
             range + R"( GROUP BY time(2m), "device" fill(none))",
         "ms"},
        {"fills",
         "SELECT mean(temperature) " + press2 + " fill(previous); SELECT mean(temperature) " +
             press2 + " fill(0); SELECT mean(temperature) " + press2 +
             " fill(linear); SELECT count(temperature) " + press2 + "; SELECT max(cycles) " +
             press2 + " fill(linear)",
         "ms"},
        {"stats",
         "SELECT median(temperature), percentile(temperature, 90), spread(temperature), "
         "stddev(temperature) FROM machine WHERE \"device\" =~ /^press-/ AND " +
             range + " GROUP BY time(5m)",
         "ms"},
        {"raw desc",
         R"(SELECT "temperature", "cycles" FROM machine WHERE device = 'lathe-1' AND )" + range +
             " ORDER BY time DESC LIMIT 3",
         "ms"},
        {"first last",
         "SELECT first(temperature), last(state) FROM machine WHERE (device = 'press-1' OR device "
         "= "
         "'lathe-1') AND " +
             range + " GROUP BY time(5m), device SLIMIT 1",
         "ms"},
        {"recent",
         "SELECT mean(temperature) FROM machine WHERE time > now() - 1h GROUP BY time(1m)", ""},
        {"lone selector", "SELECT max(temperature) FROM machine WHERE device = 'press-1'", "ms"},
        {"rfc3339 bounds",
         "SELECT count(cycles) FROM machine WHERE time >= '2024-01-01T00:00:00Z' AND time < "
         "'2024-01-01T00:05:00Z'",
         ""},
        {"group by all", "SELECT last(cycles) FROM /^mach/ WHERE " + range + " GROUP BY *", "ms"},
        {"parse error", "SELECT mean(temperature) FROM machine WHERE", ""},
        {"unsupported", "SELECT temperature INTO copy FROM machine", ""},
        {"execution error", "SELECT mean(state) FROM machine; SHOW DATABASES", ""},
        {"select tag", "SELECT device FROM machine", ""},
        {"measurements", "SHOW MEASUREMENTS", ""},
        // Grafana's measurement search: Go's case-insensitive flag.
        {"measurement search", "SHOW MEASUREMENTS WITH MEASUREMENT =~ /(?i)MACH/ LIMIT 100", ""},
        {"measurement search none", "SHOW MEASUREMENTS WITH MEASUREMENT =~ /(?i)^press/", ""},
        {"tag keys", "SHOW TAG KEYS FROM machine", ""},
        {"tag values", R"(SHOW TAG VALUES FROM "machine" WITH KEY = "device" WHERE "line" = 'a')",
         ""},
        {"tag values in", R"(SHOW TAG VALUES WITH KEY IN ("line"))", ""},
        {"field keys", "SHOW FIELD KEYS FROM machine", ""},
        {"retention", "SHOW RETENTION POLICIES ON plant", ""},
    });

    // mean per minute of press-1; minutes 10 and 11 have no points (null).
    std::vector<std::vector<double>> want;
    for (const auto& [b, ps] :
         buckets(where(all, [](const point& p) { return p.device == "press-1"; }), minute_ms))
        want.push_back({static_cast<double>(b), ps.empty() ? NAN : mean(ps)});
    ASSERT_EQ(want.size(), 12u);
    EXPECT_EQ(
        json::serialize(
            answers["mean 1m"].at("raw").at("results").at(0).at("series").at(0).at("columns")),
        R"(["time","mean"])");
    EXPECT_EQ(first_series(answers["mean 1m"]).at("name"), "machine");
    EXPECT_FALSE(first_series(answers["mean 1m"]).as_object().contains("tags"));
    expect_rows(first_series(answers["mean 1m"]), want, "mean 1m");
    const auto& rfc = first_series(answers["mean 1m rfc3339"]).at("values").as_array();
    ASSERT_EQ(rfc.size(), 12u);
    EXPECT_EQ(rfc[1].at(0), "2024-01-01T00:01:00Z");
    EXPECT_EQ(rfc[11].at(1), nullptr);
    EXPECT_EQ(first_series(answers["mean 1m epoch s"]).at("values").at(1).at(0), 1704067260);

    // Per device, every 2 minutes, only buckets with points (fill(none)); series by tag.
    const auto& by_device =
        answers["by device"].at("raw").at("results").at(0).at("series").as_array();
    ASSERT_EQ(by_device.size(), 3u) << answers["by device"];
    const char* devices[] = {"lathe-1", "press-1", "press-2"};
    for (size_t d = 0; d < 3; ++d) {
        const std::string device = devices[d];
        EXPECT_EQ(json::serialize(by_device[d].at("tags")), R"({"device":")" + device + "\"}");
        EXPECT_EQ(json::serialize(by_device[d].at("columns")),
                  R"(["time","hi","min","count","sum"])");
        std::vector<std::vector<double>> rows;
        for (const auto& [b, ps] : buckets(
                 where(all, [&](const point& p) { return p.device == device; }), 2 * minute_ms)) {
            if (ps.empty()) continue;
            double hi = -1e9, lo = 1e9, sum = 0;
            for (const auto& p : ps) {
                hi = std::max(hi, p.temperature);
                lo = std::min(lo, p.temperature);
                sum += static_cast<double>(p.cycles);
            }
            rows.push_back({static_cast<double>(b), hi, lo, static_cast<double>(ps.size()), sum});
        }
        expect_rows(by_device[d], rows, "by device " + device);
    }
    // sum of an integer field is an integer.
    EXPECT_TRUE(by_device[0].at("values").at(0).at(4).is_int64());

    // press-2 is silent in minutes 3..5: previous, 0, linear, and count's 0.
    const auto p2 =
        buckets(where(all, [](const point& p) { return p.device == "press-2"; }), minute_ms);
    std::vector<std::vector<double>> previous, zero, linear, counts;
    std::optional<double> last;
    std::vector<std::pair<int64_t, double>> known;
    for (const auto& [b, ps] : p2)
        if (!ps.empty()) known.emplace_back(b, mean(ps));
    for (const auto& [b, ps] : p2) {
        const double m = ps.empty() ? NAN : mean(ps);
        if (!ps.empty()) last = m;
        previous.push_back({static_cast<double>(b), ps.empty() ? (last ? *last : NAN) : m});
        zero.push_back({static_cast<double>(b), ps.empty() ? 0 : m});
        counts.push_back({static_cast<double>(b), static_cast<double>(ps.size())});
        double lin = m;
        if (ps.empty()) {
            auto after = std::find_if(known.begin(), known.end(),
                                      [&](const auto& k) { return k.first > b; });
            if (after != known.end() && after != known.begin()) {
                auto before = after - 1;
                // InfluxDB's linear fill: slope per nanosecond, times the distance, plus y0.
                const double slope =
                    (after->second - before->second) /
                    static_cast<double>((after->first - before->first) * 1'000'000);
                lin = slope * static_cast<double>((b - before->first) * 1'000'000) + before->second;
            }
        }
        linear.push_back({static_cast<double>(b), lin});
    }
    EXPECT_FALSE(std::isnan(linear[4][1]));
    expect_rows(first_series(answers["fills"], 0), previous, "fill(previous)");
    expect_rows(first_series(answers["fills"], 1), zero, "fill(0)");
    expect_rows(first_series(answers["fills"], 2), linear, "fill(linear)");
    expect_rows(first_series(answers["fills"], 3), counts, "count with fill(null)");
    // Between integers the line is truncated to an integer.
    std::vector<std::pair<int64_t, int64_t>> top_cycles;
    for (const auto& [b, ps] : p2)
        if (!ps.empty()) {
            int64_t top = ps.front().cycles;
            for (const auto& p : ps)
                top = std::max(top, p.cycles);
            top_cycles.emplace_back(b, top);
        }
    std::vector<std::vector<double>> int_linear;
    for (const auto& [b, ps] : p2) {
        auto after = std::find_if(top_cycles.begin(), top_cycles.end(),
                                  [&](const auto& k) { return k.first >= b; });
        double v = NAN;
        if (after != top_cycles.end() && after->first == b) {
            v = static_cast<double>(after->second);
        } else if (after != top_cycles.end() && after != top_cycles.begin()) {
            auto before = after - 1;
            const double slope = static_cast<double>(after->second - before->second) /
                                 static_cast<double>((after->first - before->first) * 1'000'000);
            v = static_cast<double>(
                static_cast<int64_t>(slope * static_cast<double>((b - before->first) * 1'000'000) +
                                     static_cast<double>(before->second)));
        }
        int_linear.push_back({static_cast<double>(b), v});
    }
    expect_rows(first_series(answers["fills"], 4), int_linear, "max(cycles) fill(linear)");
    EXPECT_TRUE(first_series(answers["fills"], 4).at("values").at(4).at(1).is_int64());
    for (size_t s = 0; s < 5; ++s)
        EXPECT_EQ(answers["fills"].at("raw").at("results").at(s).at("statement_id"), s);

    // median, percentile 90 (nearest rank), spread, sample stddev per 5 minutes, both presses.
    std::vector<std::vector<double>> stats;
    for (const auto& [b, ps] :
         buckets(where(all, [](const point& p) { return p.device.starts_with("press-"); }),
                 5 * minute_ms)) {
        if (ps.empty()) {
            stats.push_back({static_cast<double>(b), NAN, NAN, NAN, NAN});
            continue;
        }
        auto v = sorted_temperatures(ps);
        const size_t n = v.size();
        const double median = n % 2 ? v[n / 2] : v[n / 2 - 1] + (v[n / 2] - v[n / 2 - 1]) / 2;
        const double p90 =
            v[static_cast<size_t>(std::floor(static_cast<double>(n) * 0.9 + 0.5)) - 1];
        double m = 0;
        for (const auto& p : ps)
            m += p.temperature;
        m /= static_cast<double>(n);
        double ss = 0;
        for (const auto& p : ps)
            ss += (p.temperature - m) * (p.temperature - m);
        stats.push_back({static_cast<double>(b), median, p90, v.back() - v.front(),
                         std::sqrt(ss / static_cast<double>(n - 1))});
    }
    ASSERT_EQ(stats.size(), 3u);
    const auto& stat_rows = first_series(answers["stats"]).at("values").as_array();
    ASSERT_EQ(stat_rows.size(), 3u) << answers["stats"];
    for (size_t r = 0; r < 3; ++r) {
        auto got = row_numbers(stat_rows[r]);
        for (size_t c = 0; c < 5; ++c) {
            if (std::isnan(stats[r][c]))
                EXPECT_TRUE(std::isnan(got[c])) << r << "," << c;
            else
                EXPECT_DOUBLE_EQ(got[c], stats[r][c]) << r << "," << c;
        }
    }

    // Raw points, newest first, three of them.
    auto lathe = where(all, [](const point& p) { return p.device == "lathe-1"; });
    std::vector<std::vector<double>> raw;
    for (size_t i = 0; i < 3; ++i) {
        const auto& p = lathe[lathe.size() - 1 - i];
        raw.push_back({static_cast<double>(p.ts_ms), p.temperature, static_cast<double>(p.cycles)});
    }
    expect_rows(first_series(answers["raw desc"]), raw, "raw desc");
    EXPECT_EQ(json::serialize(first_series(answers["raw desc"]).at("columns")),
              R"(["time","temperature","cycles"])");

    // first and last of lathe-1 (SLIMIT 1 keeps the first series by tag) per 5 minutes.
    const auto& fl = answers["first last"].at("raw").at("results").at(0).at("series").as_array();
    ASSERT_EQ(fl.size(), 1u);
    EXPECT_EQ(fl[0].at("tags").at("device"), "lathe-1");
    const auto lathe_5m = buckets(lathe, 5 * minute_ms);
    size_t r = 0;
    for (const auto& [b, ps] : lathe_5m) {
        const auto& row = fl[0].at("values").at(r++);
        EXPECT_EQ(row.at(0).to_number<int64_t>(), b);
        if (ps.empty()) {
            EXPECT_TRUE(row.at(1).is_null() && row.at(2).is_null()) << row;
        } else {
            EXPECT_EQ(row.at(1).to_number<double>(), ps.front().temperature);
            EXPECT_EQ(row.at(2), json::value(ps.back().state.c_str()));
        }
    }

    EXPECT_EQ(json::serialize(answers["recent"].at("raw")), R"({"results":[{"statement_id":0}]})");

    // A lone selector without GROUP BY time answers the time of the chosen point.
    auto press1 = where(all, [](const point& p) { return p.device == "press-1"; });
    const point* top = &press1.front();
    for (const auto& p : press1)
        if (p.temperature > top->temperature) top = &p;
    expect_rows(first_series(answers["lone selector"]),
                {{static_cast<double>(top->ts_ms), top->temperature}}, "lone selector");

    const auto first5 = where(all, [](const point& p) { return p.ts_ms < t0_ms + 5 * minute_ms; });
    EXPECT_EQ(json::serialize(first_series(answers["rfc3339 bounds"]).at("values")),
              R"([["2024-01-01T00:00:00Z",)" + std::to_string(first5.size()) + "]]");

    // GROUP BY *: a series per tag set, each with all its tags; a lone selector's time.
    const auto& every =
        answers["group by all"].at("raw").at("results").at(0).at("series").as_array();
    ASSERT_EQ(every.size(), 3u) << answers["group by all"];
    for (size_t d = 0; d < 3; ++d) {
        const std::string device = devices[d];
        const auto mine = where(all, [&](const point& p) { return p.device == device; });
        EXPECT_EQ(json::serialize(every[d].at("tags")),
                  R"({"device":")" + device + R"(","line":")" + mine.back().line + "\"}");
        expect_rows(
            every[d],
            {{static_cast<double>(mine.back().ts_ms), static_cast<double>(mine.back().cycles)}},
            "group by all " + device);
    }

    EXPECT_EQ(answers["parse error"].at("status"), 400);
    EXPECT_EQ(
        answers["parse error"].at("error"),
        R"(A 400 Bad Request error occurred: {"error":"error parsing query: found EOF, expected identifier, ( at line 1, char 44"})");
    EXPECT_EQ(answers["unsupported"].at("status"), 400);
    EXPECT_EQ(
        answers["unsupported"].at("error"),
        R"(A 400 Bad Request error occurred: {"error":"unsupported InfluxQL: SELECT INTO at line 1, char 20"})");
    EXPECT_EQ(
        json::serialize(answers["execution error"].at("raw")),
        R"({"results":[{"statement_id":0,"error":"mean() cannot apply to the string field \"state\""},)"
        R"({"statement_id":1,"series":[{"name":"databases","columns":["name"],"values":[["clisonix"]]}]}]})");

    EXPECT_EQ(json::serialize(answers["select tag"].at("raw")),
              R"({"results":[{"statement_id":0,"error":"unsupported InfluxQL: selecting the tag )"
              R"(\"device\"; GROUP BY it instead"}]})");

    auto show = [&](const char* id) { return json::serialize(answers[id].at("raw")); };
    EXPECT_EQ(
        show("measurements"),
        R"({"results":[{"statement_id":0,"series":[{"name":"measurements","columns":["name"],"values":[["machine"]]}]}]})");
    EXPECT_EQ(show("measurement search"), show("measurements"));
    EXPECT_EQ(show("measurement search none"), R"({"results":[{"statement_id":0}]})");
    EXPECT_EQ(
        show("tag keys"),
        R"({"results":[{"statement_id":0,"series":[{"name":"machine","columns":["tagKey"],"values":[["device"],["line"]]}]}]})");
    EXPECT_EQ(
        show("tag values"),
        R"({"results":[{"statement_id":0,"series":[{"name":"machine","columns":["key","value"],"values":[["device","press-1"],["device","press-2"]]}]}]})");
    EXPECT_EQ(
        show("tag values in"),
        R"({"results":[{"statement_id":0,"series":[{"name":"machine","columns":["key","value"],"values":[["line","a"],["line","b"]]}]}]})");
    EXPECT_EQ(
        show("field keys"),
        R"({"results":[{"statement_id":0,"series":[{"name":"machine","columns":["fieldKey","fieldType"],"values":[["cycles","integer"],["state","string"],["temperature","float"]]}]}]})");
    EXPECT_EQ(
        show("retention"),
        R"({"results":[{"statement_id":0,"series":[{"columns":["name","duration","shardGroupDuration","replicaN","default"],"values":[["autogen","0s","168h0m0s",1,true]]}]}]})");

    // node-influx's own helpers over SHOW answers.
    EXPECT_EQ(json::serialize(answers["getDatabaseNames"].at("value")), R"(["clisonix"])");
    EXPECT_EQ(json::serialize(answers["getMeasurements"].at("value")), R"(["machine"])");
    EXPECT_EQ(
        json::serialize(answers["getSeries"].at("value")),
        R"(["machine,device=lathe-1,line=b","machine,device=press-1,line=a","machine,device=press-2,line=a"])");
    // A lone selector answers its point's time: press-1's newest point is at 00:09:40.
    const auto& newest = press1.back();
    ASSERT_EQ(newest.ts_ms, t0_ms + 9 * minute_ms + 40'000);
    const auto& rows = answers["query rows"].at("value").as_array();
    ASSERT_EQ(rows.size(), 1u) << answers["query rows"];
    EXPECT_EQ(rows[0].at("time"), "2024-01-01T00:09:40.000Z");
    EXPECT_EQ(rows[0].at("last").to_number<double>(), newest.temperature);
    EXPECT_EQ(rows[0].at("device"), "press-1");
    EXPECT_EQ(answers["bad key"].at("status"), 401) << answers["bad key"];
}

// The credentials InfluxDB clients and Grafana send, the POST form, and refusals.
TEST_F(influx_client_test, CredentialsParametersAndRefusals) {
    const uint16_t port = server->port();
    const std::string q = "/query?db=any&q=SHOW%20DATABASES";
    const std::string databases =
        R"({"results":[{"statement_id":0,"series":[{"name":"databases","columns":["name"],"values":[["clisonix"]]}]}]})";
    // base64("grafana:" + key)
    auto base64 = [](const std::string& in) {
        static const char* abc = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        std::string out;
        size_t i = 0;
        for (; i + 2 < in.size(); i += 3) {
            uint32_t n = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8) | uint8_t(in[i + 2]);
            for (int s = 18; s >= 0; s -= 6)
                out += abc[(n >> s) & 63];
        }
        if (i + 1 == in.size()) {
            uint32_t n = uint8_t(in[i]) << 16;
            out += abc[(n >> 18) & 63];
            out += abc[(n >> 12) & 63];
            out += "==";
        } else if (i + 2 == in.size()) {
            uint32_t n = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8);
            out += abc[(n >> 18) & 63];
            out += abc[(n >> 12) & 63];
            out += abc[(n >> 6) & 63];
            out += '=';
        }
        return out;
    };
    for (const auto& header :
         {"Authorization: Basic " + base64("grafana:" + read_key),
          "Authorization: Token " + read_key, "Authorization: Bearer " + read_key}) {
        auto r = http_request(port, "GET", q, {}, {header});
        EXPECT_EQ(r.status, 200) << header << " " << r.body;
        EXPECT_EQ(r.body, databases);
    }
    // /write takes the same InfluxDB credentials: Basic with the key as the password.
    auto written =
        http_request(port, "POST", "/write?db=any", "basic_auth value=1 1704067200000000000",
                     {"Authorization: Basic " + base64("telegraf:" + write_key)});
    EXPECT_EQ(written.status, 204) << written.body;
    auto up = http_request(port, "GET", q + "&u=grafana&p=" + read_key);
    EXPECT_EQ(up.body, databases);

    // Grafana's POST method: the query in a form body.
    auto form = http_request(
        port, "POST", "/query?db=any&epoch=ms",
        "q=SELECT+count%28temperature%29+FROM+machine+WHERE+time+%3E%3D+0%3B+SHOW+MEASUREMENTS",
        {"Authorization: Token " + read_key, "Content-Type: application/x-www-form-urlencoded"});
    EXPECT_EQ(form.status, 200) << form.body;
    auto results = json::parse(form.body).at("results").as_array();
    ASSERT_EQ(results.size(), 2u) << form.body;
    // node-influx's test wrote the plant already or not (test order): both statements answer.
    EXPECT_EQ(results[1].at("statement_id"), 1);

    auto pretty =
        http_request(port, "GET", q + "&pretty=true", {}, {"Authorization: Token " + read_key});
    EXPECT_EQ(pretty.body,
              "{\n    \"results\": [\n        {\n            \"statement_id\": 0,\n            "
              "\"series\": [\n"
              "                {\n                    \"name\": \"databases\",\n                   "
              " \"columns\": [\n"
              "                        \"name\"\n                    ],\n                    "
              "\"values\": [\n"
              "                        [\n                            \"clisonix\"\n               "
              "         ]\n"
              "                    ]\n                }\n            ]\n        }\n    ]\n}");

    auto epoch =
        http_request(port, "GET", q + "&epoch=days", {}, {"Authorization: Token " + read_key});
    EXPECT_EQ(epoch.status, 400);
    EXPECT_EQ(epoch.body, R"({"error":"epoch \"days\" is not one of ns, u, µ, ms, s, m, h"})");
    auto missing =
        http_request(port, "GET", "/query?db=x", {}, {"Authorization: Token " + read_key});
    EXPECT_EQ(missing.status, 400);
    EXPECT_EQ(missing.body, R"({"error":"missing required parameter \"q\""})");

    // No credentials, a wrong key, and a device token (which may write, never read).
    EXPECT_EQ(http_request(port, "GET", q).status, 401);
    EXPECT_EQ(http_request(port, "GET", q + "&u=x&p=cxk_wrong").status, 401);
    EXPECT_EQ(
        http_request(port, "GET", q, {}, {"Authorization: Basic " + base64("grafana:cxk_wrong")})
            .status,
        401);
    auto device = server->post("/api/v1/devices", R"({"name":"press-9"})",
                               {"Content-Type: application/json"});
    ASSERT_EQ(device.status, 201) << device.body;
    const std::string token(json::parse(device.body).at("token").as_string());
    auto forbidden = http_request(port, "GET", q, {}, {"Authorization: Bearer " + token});
    EXPECT_EQ(forbidden.status, 403) << forbidden.body;
    EXPECT_NE(forbidden.body.find("needs read permission"), std::string::npos) << forbidden.body;
}

}  // namespace
}  // namespace clisonix::testing

namespace clisonix::testing {
namespace {

// query.max_points bounds an InfluxQL answer as it bounds /api/v1/query: a raw SELECT over the
// cap is refused with InfluxQL advice, LIMIT pages under it, and summaries still answer.
TEST(influxql_answer_cap, raw_points_over_the_cap_are_refused_and_limit_pages) {
    server_process s({"--set", "query.max_points=1000", "--set", "analytics.detector=off", "--set",
                      "analytics.health=false"});
    std::string lines;
    for (int i = 0; i < 1500; ++i)
        lines += "big value=" + std::to_string(i) + " " + std::to_string(t0_ms + i * 1000) + "\n";
    auto w = s.post("/api/v1/write?precision=ms", lines);
    ASSERT_EQ(w.status, 204) << w.body;
    const std::string auth = "Authorization: Bearer " + s.token();
    auto ask = [&](const std::string& q) {
        std::string target = "/query?epoch=s&q=";
        for (char c : q) {
            if (std::isalnum(static_cast<unsigned char>(c)))
                target += c;
            else {
                char buf[4];
                std::snprintf(buf, sizeof buf, "%%%02X", static_cast<unsigned char>(c));
                target += buf;
            }
        }
        auto r = http_request(s.port(), "GET", target, {}, {auth});
        EXPECT_EQ(r.status, 200) << q << ": " << r.body;
        return r.body;
    };
    EXPECT_EQ(
        ask("SELECT value FROM big"),
        R"({"results":[{"statement_id":0,"error":"the query would return 1,500 raw points, )"
        R"(more than the 1,000 one answer may hold (query.max_points); use an aggregate with )"
        R"(GROUP BY time(), a shorter time range or LIMIT"}]})");
    EXPECT_EQ(ask("SELECT median(value) FROM big"),
              R"({"results":[{"statement_id":0,"error":"the query would return 1,500 raw points, )"
              R"(more than the 1,000 one answer may hold (query.max_points); use mean(), min() or )"
              R"(max(), or a shorter time range"}]})");
    EXPECT_EQ(ask("SELECT value FROM big LIMIT 2"),
              R"({"results":[{"statement_id":0,"series":[{"name":"big","columns":["time","value"],)"
              R"("values":[[1704067200,0],[1704067201,1]]}]}]})");
    EXPECT_EQ(ask("SELECT value FROM big ORDER BY time DESC LIMIT 2 OFFSET 1"),
              R"({"results":[{"statement_id":0,"series":[{"name":"big","columns":["time","value"],)"
              R"("values":[[1704068698,1498],[1704068697,1497]]}]}]})");
    EXPECT_EQ(ask("SELECT host FROM big"), R"({"results":[{"statement_id":0}]})");
    EXPECT_EQ(ask("SELECT mean(value), count(value) FROM big"),
              R"({"results":[{"statement_id":0,"series":[{"name":"big","columns":["time","mean",)"
              R"("count"],"values":[[0,749.5,1500]]}]}]})");
}

}  // namespace
}  // namespace clisonix::testing
