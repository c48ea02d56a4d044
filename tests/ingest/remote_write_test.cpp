// Prometheus remote write through the real route: bodies built with the receiver's own
// protobuf definition and snappy, as Prometheus builds them; what was stored is read back
// through the engine.
#include <gtest/gtest.h>
#include <snappy.h>

#include <bit>
#include <cmath>
#include <limits>

#include "ingest/remote_write.pb.h"
#include "ingest/routes_fixture.h"
#include "observe/observe.h"

namespace clisonix::ingest {
namespace {

using strings = std::vector<std::string>;
namespace pb = prometheus::pb;

constexpr int64_t ms0 = t0 / 1'000'000;  // 2024-01-01T00:00:00Z in ms

struct series_spec {
    std::vector<std::pair<std::string, std::string>> labels;
    std::vector<std::pair<int64_t, double>> samples;  // (ms, value)
};

pb::WriteRequest request_of(const std::vector<series_spec>& all) {
    pb::WriteRequest req;
    for (const auto& spec : all) {
        auto* ts = req.add_timeseries();
        for (const auto& [name, value] : spec.labels) {
            auto* l = ts->add_labels();
            l->set_name(name);
            l->set_value(value);
        }
        for (const auto& [ms, v] : spec.samples) {
            auto* s = ts->add_samples();
            s->set_timestamp(ms);
            s->set_value(v);
        }
    }
    return req;
}

std::string compressed(const std::string& raw) {
    std::string out;
    snappy::Compress(raw.data(), raw.size(), &out);
    return out;
}

std::string body_of(const pb::WriteRequest& req) {
    return compressed(req.SerializeAsString());
}

std::string body_of(const std::vector<series_spec>& all) {
    return body_of(request_of(all));
}

const std::vector<std::string> prometheus_headers = {"Content-Encoding: snappy",
                                                     "Content-Type: application/x-protobuf",
                                                     "X-Prometheus-Remote-Write-Version: 0.1.0"};

double dropped(const char* reason) {
    std::string text = metrics::global().expose();
    std::string line =
        std::string("clisonix_remote_write_samples_dropped_total{reason=\"") + reason + "\"} ";
    auto at = text.find(line);
    return at == std::string::npos ? 0 : std::stod(text.substr(at + line.size()));
}

class remote_write : public ingest_routes {
protected:
    http_response write(const std::string& body,
                        const std::string& path = "/prometheus/api/v1/write") {
        return post(path, body, prometheus_headers);
    }
};

TEST_F(remote_write, samples_are_stored_under_name_and_labels_with_ms_timestamps_as_ns) {
    auto req = request_of({
        {{{"__name__", "up"}, {"instance", "127.0.0.1:9100"}, {"job", "node"}},
         {{ms0, 1}, {ms0 + 15'000, 0}}},
        // Labels in any order; an empty value is no label; names with specials are escaped.
        {{{"handler", "/a b,c=d"},
          {"__name__", "http_requests_total"},
          {"code", "200"},
          {"env", ""}},
         {{ms0 + 1, 1027.5}}},
    });
    auto* meta = req.add_metadata();  // metadata parses and is ignored
    meta->set_type(pb::MetricMetadata::COUNTER);
    meta->set_metric_family_name("http_requests_total");
    meta->set_help("Requests.");
    auto r = write(body_of(req));
    ASSERT_EQ(r.status, 204) << r.body;
    EXPECT_EQ(read_back("up,instance=127.0.0.1:9100,job=node value"),
              (strings{std::to_string(t0) + "=1", std::to_string(t0 + 15'000'000'000) + "=0"}));
    EXPECT_EQ(read_back("http_requests_total,code=200,handler=/a\\ b\\,c\\=d value"),
              (strings{std::to_string(t0 + 1'000'000) + "=1027.5"}));
    EXPECT_EQ(batches_heard.load(), 1);
    EXPECT_EQ(points_heard.load(), 3u);

    // InfluxDB 1.8's path takes the same body.
    auto again = write(body_of({{{{"__name__", "up"}, {"job", "influx"}}, {{ms0, 1}}}}),
                       "/api/v1/prom/write");
    ASSERT_EQ(again.status, 204) << again.body;
    EXPECT_EQ(read_back("up,job=influx value"), (strings{std::to_string(t0) + "=1"}));
}

TEST_F(remote_write, a_body_that_is_not_snappy_is_400_naming_it) {
    std::string truncated = body_of({{{{"__name__", "up"}}, {{ms0, 1}}}});
    truncated.resize(truncated.size() - 3);
    // No length prefix; a length prefix before bytes that do not decompress.
    for (const std::string& body : {std::string("\xff\xff\xff\xff\xff\xff"), truncated}) {
        auto r = write(body);
        EXPECT_EQ(r.status, 400);
        EXPECT_EQ(
            r.body,
            R"json({"error":{"code":"invalid_argument","message":"the body is not snappy block-compressed data (corrupt, truncated or another format; remote write sends a protobuf WriteRequest with Content-Encoding: snappy)","field":"body"}})json");
    }
    EXPECT_EQ(write("this is line protocol 1").status, 400);
    EXPECT_EQ(batches_heard.load(), 0);
}

TEST_F(remote_write, snappy_that_is_not_a_write_request_is_400) {
    auto r = write(compressed("\xff\xff\xff\xff garbage"));
    EXPECT_EQ(r.status, 400);
    EXPECT_EQ(
        r.body,
        R"json({"error":{"code":"invalid_argument","message":"the uncompressed body is not a protobuf prometheus.WriteRequest","field":"body"}})json");
}

TEST_F(remote_write, a_series_without_a_name_is_400_and_nothing_of_the_request_is_stored) {
    auto r = write(
        body_of({{{{"__name__", "up"}, {"job", "a"}}, {{ms0, 1}}}, {{{"job", "a"}}, {{ms0, 2}}}}));
    EXPECT_EQ(r.status, 400);
    EXPECT_EQ(
        r.body,
        R"json({"error":{"code":"invalid_argument","message":"timeseries[1].labels: the series has no __name__ label (its metric name)","field":"timeseries[1].labels"}})json");
    EXPECT_EQ(read_back("up,job=a value"), (strings{"absent"}));
    EXPECT_EQ(batches_heard.load(), 0);
}

TEST_F(remote_write, bad_label_names_are_400_naming_the_label) {
    auto bad = write(body_of({{{{"__name__", "up"}, {"0job", "a"}}, {{ms0, 1}}}}));
    EXPECT_EQ(bad.status, 400);
    EXPECT_EQ(
        bad.body,
        R"json({"error":{"code":"invalid_argument","message":"timeseries[0].labels[1].name: the label name \"0job\" is not a Prometheus label name ([a-zA-Z_][a-zA-Z0-9_]*)","field":"timeseries[0].labels[1].name"}})json");
    auto reserved = write(body_of({{{{"__meta_x", "1"}, {"__name__", "up"}}, {{ms0, 1}}}}));
    EXPECT_EQ(reserved.status, 400);
    EXPECT_NE(reserved.body.find("timeseries[0].labels[0].name: the label name \\\"__meta_x\\\" "
                                 "starts with \\\"__\\\""),
              std::string::npos)
        << reserved.body;
    auto twice = write(body_of({{{{"__name__", "up"}, {"a", "1"}, {"a", "2"}}, {{ms0, 1}}}}));
    EXPECT_EQ(twice.status, 400);
    EXPECT_NE(twice.body.find("the label \\\"a\\\" occurs twice"), std::string::npos) << twice.body;
    auto control = write(body_of({{{{"__name__", "up"}, {"a", "x\x01y"}}, {{ms0, 1}}}}));
    EXPECT_EQ(control.status, 400);
    EXPECT_NE(control.body.find("\"field\":\"timeseries[0].labels[1].value\""), std::string::npos)
        << control.body;
    EXPECT_EQ(batches_heard.load(), 0);
}

TEST_F(remote_write, stale_markers_and_non_finite_values_are_dropped_and_counted) {
    double stale_before = dropped("stale_marker"), nan_before = dropped("not_finite");
    const double stale = std::bit_cast<double>(uint64_t{0x7ff0000000000002});
    auto r = write(body_of({
        {{{"__name__", "temperature"}, {"device", "press-1"}},
         {{ms0, 20.5},
          {ms0 + 1000, stale},
          {ms0 + 2000, std::numeric_limits<double>::quiet_NaN()},
          {ms0 + 3000, std::numeric_limits<double>::infinity()}}},
        // A series whose only sample is its marker is not created.
        {{{"__name__", "temperature"}, {"device", "press-2"}}, {{ms0 + 1000, stale}}},
    }));
    ASSERT_EQ(r.status, 204) << r.body;
    EXPECT_EQ(read_back("temperature,device=press-1 value"),
              (strings{std::to_string(t0) + "=20.5"}));
    EXPECT_EQ(read_back("temperature,device=press-2 value"), (strings{"absent"}));
    EXPECT_EQ(dropped("stale_marker") - stale_before, 2);
    EXPECT_EQ(dropped("not_finite") - nan_before, 2);
}

// Limits as a server's defaults have them (8 MB bodies), for requests of Prometheus' size.
class remote_write_big : public remote_write {
protected:
    void SetUp() override {
        limits big;
        big.max_body_bytes = 8ull << 20;
        start({}, big);
    }
};

TEST_F(remote_write_big, a_big_batch_is_stored_whole) {
    std::vector<series_spec> all;
    for (int s = 0; s < 500; ++s) {
        series_spec spec{{{"__name__", "node_cpu_seconds_total"}, {"cpu", std::to_string(s)}}, {}};
        for (int i = 0; i < 100; ++i)
            spec.samples.emplace_back(ms0 + i * 1000, s * 1000.0 + i);
        all.push_back(std::move(spec));
    }
    auto body = body_of(all);
    auto r = write(body);
    ASSERT_EQ(r.status, 204) << r.body;
    EXPECT_EQ(points_heard.load(), 50'000u);
    auto last = read_back("node_cpu_seconds_total,cpu=499 value");
    ASSERT_EQ(last.size(), 100u);
    EXPECT_EQ(last.back(), std::to_string(t0 + 99'000'000'000) + "=499099");
}

TEST_F(remote_write, a_body_that_inflates_past_the_limit_is_413) {
    // 100 KB of one repeated byte compresses to a few KB; the fixture's limit is 64 KB.
    auto r =
        write(body_of({{{{"__name__", "up"}, {"blob", std::string(100'000, 'x')}}, {{ms0, 1}}}}));
    EXPECT_EQ(r.status, 413);
    EXPECT_NE(r.body.find("is larger than the limit of 65536 bytes (http.body_limit)"),
              std::string::npos)
        << r.body;
}

TEST_F(remote_write, a_type_conflict_and_a_sample_outside_the_window_are_400) {
    ASSERT_EQ(post("/api/v1/write", "pressure value=3i " + std::to_string(t0) + "\n").status, 204);
    auto conflict = write(body_of({{{{"__name__", "pressure"}}, {{ms0 + 1000, 3.5}}}}));
    EXPECT_EQ(conflict.status, 400);
    EXPECT_NE(conflict.body.find("\"code\":\"invalid_argument\""), std::string::npos)
        << conflict.body;

    ASSERT_EQ(write(body_of({{{{"__name__", "flow"}}, {{ms0 + 7'200'000, 1}}}})).status, 204);
    auto old = write(body_of({{{{"__name__", "flow"}}, {{ms0, 2}}}}));  // 2 h behind, window 1 h
    EXPECT_EQ(old.status, 400);
    EXPECT_NE(old.body.find("\"code\":\"invalid_argument\""), std::string::npos) << old.body;
    EXPECT_EQ(read_back("flow value"), (strings{std::to_string(t0 + 7'200'000'000'000) + "=1"}));
}

TEST_F(remote_write, another_content_encoding_is_415) {
    auto r = post("/prometheus/api/v1/write", body_of({{{{"__name__", "up"}}, {{ms0, 1}}}}),
                  {"Content-Encoding: gzip"});
    EXPECT_EQ(r.status, 415);
    EXPECT_NE(r.body.find("remote write sends snappy"), std::string::npos) << r.body;
}

TEST_F(remote_write, the_series_quota_is_400_not_429_so_prometheus_does_not_retry_forever) {
    sink->limit_series_per_device(1);
    ASSERT_EQ(
        write(body_of({{{{"__name__", "temperature"}, {"device", "p1"}}, {{ms0, 1}}}})).status,
        204);
    auto r = write(body_of({{{{"__name__", "pressure"}, {"device", "p1"}}, {{ms0, 1}}}}));
    EXPECT_EQ(r.status, 400);
    EXPECT_EQ(r.header("retry-after"), "");
    EXPECT_NE(r.body.find("\"code\":\"too_many_requests\""), std::string::npos) << r.body;
    EXPECT_EQ(read_back("pressure,device=p1 value"), (strings{"absent"}));
}

using remote_write_overloaded = ingest_routes_overloaded;

TEST_F(remote_write_overloaded,
       an_overloaded_engine_is_503_with_retry_after_so_prometheus_retries) {
    std::vector<series_spec> all{{{{"__name__", "m"}}, {}}};
    for (int i = 0; i < 20; ++i)
        all[0].samples.emplace_back(ms0 + i, i);
    auto r = post("/prometheus/api/v1/write", body_of(all), prometheus_headers);
    EXPECT_EQ(r.status, 503);
    EXPECT_EQ(r.header("retry-after"), "1");
    EXPECT_EQ(batches_heard.load(), 0);
}

}  // namespace
}  // namespace clisonix::ingest
