// The write endpoints in-process: router + server + pipeline + the storage engine in a temp
// dir, spoken to over real sockets; what was written is read back through engine::scan.
#include <gtest/gtest.h>
#include <zlib.h>

#include <atomic>
#include <bit>
#include <charconv>
#include <limits>
#include <thread>

#include "http/http.h"
#include "ingest/ingest.h"
#include "ingest/routes_fixture.h"

namespace clisonix::ingest {
namespace {

std::string gzip(std::string_view text) {
    z_stream zs{};
    EXPECT_EQ(deflateInit2(&zs, Z_BEST_SPEED, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY),
              Z_OK);
    std::string out(deflateBound(&zs, text.size()) + 32, '\0');
    zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(text.data()));
    zs.avail_in = static_cast<uInt>(text.size());
    zs.next_out = reinterpret_cast<Bytef*>(out.data());
    zs.avail_out = static_cast<uInt>(out.size());
    EXPECT_EQ(deflate(&zs, Z_FINISH), Z_STREAM_END);
    out.resize(zs.total_out);
    deflateEnd(&zs);
    return out;
}

TEST_F(ingest_routes, line_protocol_is_stored_and_reads_back_exactly) {
    auto r = post("/api/v1/write",
                  "weather,site=north,host=a temp=21.5,count=3i,ok=t,note=\"sunny, \\\"dry\\\"\" "
                  "1704067200000000000\n"
                  "weather,host=a,site=north temp=-0.25 1704067210000000000\n");
    EXPECT_EQ(r.status, 204);
    EXPECT_EQ(r.body, "");
    EXPECT_EQ(read_back("weather,host=a,site=north temp"),
              (strings{"1704067200000000000=21.5", "1704067210000000000=-0.25"}));
    EXPECT_EQ(read_back("weather,host=a,site=north count"), strings{"1704067200000000000=3i"});
    EXPECT_EQ(read_back("weather,host=a,site=north ok"), strings{"1704067200000000000=true"});
    EXPECT_EQ(read_back("weather,host=a,site=north note"),
              strings{"1704067200000000000=\"sunny, \"dry\"\""});
    EXPECT_EQ(batches_heard.load(), 1);
    EXPECT_EQ(points_heard.load(), 5u);
}

TEST_F(ingest_routes, escaped_names_round_trip_through_the_engine_key) {
    ASSERT_EQ(
        post("/api/v1/write?precision=s", R"(my\ m,sp\ ace=a\,b\=c,path=C:\dir f\,x=1 1704067200)")
            .status,
        204);
    std::vector<std::pair<std::string, std::string>> tags = {{"path", "C:\\dir"},
                                                             {"sp ace", "a,b=c"}};
    auto key = storage::make_key("my m", tags, "f,x");
    EXPECT_EQ(read_back(key), strings{"1704067200000000000=1"});
    auto info = engine->series_by_key(key);
    ASSERT_TRUE(info.has_value());
    EXPECT_EQ(info->measurement, "my m");
    EXPECT_EQ(info->tags, tags);
    EXPECT_EQ(info->field, "f,x");
}

TEST_F(ingest_routes, influxdb_1x_write_with_its_precision_spellings) {
    EXPECT_EQ(post("/write?db=plant&precision=s", "m f=1 1704067200").status, 204);
    EXPECT_EQ(post("/write?db=plant&precision=m", "m g=2 28401120").status, 204);
    EXPECT_EQ(post("/write?db=plant&precision=u", "m h=3 1704067200000000").status, 204);
    EXPECT_EQ(post("/write?db=plant&precision=n", "m i=4 1704067200000000000").status, 204);
    EXPECT_EQ(read_back("m f"), strings{"1704067200000000000=1"});
    EXPECT_EQ(read_back("m g"), strings{"1704067200000000000=2"});
    EXPECT_EQ(read_back("m h"), strings{"1704067200000000000=3"});
    EXPECT_EQ(read_back("m i"), strings{"1704067200000000000=4"});

    auto no_db = post("/write", "m f=1");
    EXPECT_EQ(no_db.status, 400);
    EXPECT_EQ(
        no_db.body,
        R"({"error":{"code":"invalid_argument","message":"the query parameter \"db\" is required","field":"db"}})");
    auto bad = post("/write?db=x&precision=d", "m f=1");
    EXPECT_EQ(bad.status, 400);
    EXPECT_EQ(
        bad.body,
        R"({"error":{"code":"invalid_argument","message":"precision \"d\" is not one of n, ns, u, us, ms, s, m, h","field":"precision"}})");
}

TEST_F(ingest_routes, influxdb_2x_write) {
    EXPECT_EQ(post("/api/v2/write?bucket=b&org=o&precision=ms", "m f=1.5 1704067200000").status,
              204);
    EXPECT_EQ(read_back("m f"), strings{"1704067200000000000=1.5"});
    EXPECT_EQ(post("/api/v2/write?org=o", "m f=1").status, 400);
    auto hours = post("/api/v2/write?bucket=b&precision=h", "m f=1 1");
    EXPECT_EQ(hours.status, 400);
    EXPECT_EQ(
        hours.body,
        R"({"error":{"code":"invalid_argument","message":"precision \"h\" is not one of ns, us, ms, s","field":"precision"}})");
}

TEST_F(ingest_routes, a_bad_third_line_stores_nothing) {
    auto r = post("/api/v1/write",
                  "m temperature=1 1704067200000000000\n"
                  "m temperature=2 1704067210000000000\n"
                  "m temperature=warm 1704067220000000000\n");
    EXPECT_EQ(r.status, 400);
    EXPECT_EQ(
        r.body,
        R"({"error":{"code":"invalid_argument","message":"line 3: invalid field value for \"temperature\": expected a number, string, boolean or integer","field":"line 3"}})");
    EXPECT_EQ(read_back("m temperature"), strings{"absent"});
    EXPECT_EQ(batches_heard.load(), 0);
}

TEST_F(ingest_routes, a_type_conflict_with_stored_data_is_400_and_stores_nothing) {
    ASSERT_EQ(post("/api/v1/write", "m f=1 1704067200000000000").status, 204);
    auto r = post("/api/v1/write", "m g=1 1704067210000000000\nm f=2i 1704067210000000000");
    EXPECT_EQ(r.status, 400);
    EXPECT_NE(r.body.find(R"("code":"invalid_argument")"), std::string::npos) << r.body;
    EXPECT_NE(r.body.find("field type conflict"), std::string::npos) << r.body;
    EXPECT_EQ(read_back("m f"), strings{"1704067200000000000=1"});
    EXPECT_EQ(read_back("m g"), strings{"absent"});
}

TEST_F(ingest_routes, a_line_over_the_limit_is_413) {
    auto r = post("/api/v1/write", "m f=1\nm s=\"" + std::string(2000, 'x') + "\"\n");
    EXPECT_EQ(r.status, 413);
    EXPECT_EQ(
        r.body,
        R"J({"error":{"code":"too_large","message":"line 2: longer than the limit of 1024 bytes (ingest.max_line_bytes)","field":"line 2"}})J");
}

TEST_F(ingest_routes, gzip_bodies_are_inflated) {
    std::string body;
    for (int i = 0; i < 100; ++i)
        body += "m,d=d" + std::to_string(i % 10) + " f=" + std::to_string(i) + " " +
                std::to_string(t0 + i) + "\n";
    auto r = post("/api/v1/write", gzip(body), {"Content-Encoding: gzip"});
    EXPECT_EQ(r.status, 204) << r.body;
    EXPECT_EQ(read_back("m,d=d3 f").size(), 10u);
    EXPECT_EQ(read_back("m,d=d3 f").back(), std::to_string(t0 + 93) + "=93");

    auto telemetry =
        post("/api/v1/devices/pump-3/telemetry",
             gzip(R"({"ts":1704067200000,"values":{"rpm":1450}})"), {"Content-Encoding: GZIP"});
    EXPECT_EQ(telemetry.status, 204) << telemetry.body;
    EXPECT_EQ(read_back("telemetry,device=pump-3 rpm"), strings{"1704067200000000000=1450"});
}

TEST_F(ingest_routes, corrupt_gzip_is_400_and_a_bomb_is_413) {
    auto gz = gzip("m f=1 1704067200000000000\n");
    auto corrupt = gz;
    corrupt[12] ^= 0x55;
    corrupt[13] ^= 0x55;
    auto r = post("/api/v1/write", corrupt, {"Content-Encoding: gzip"});
    EXPECT_EQ(r.status, 400);
    EXPECT_NE(r.body.find(R"({"error":{"code":"invalid_argument","message":"the gzip body is)"),
              std::string::npos)
        << r.body;
    auto truncated = post("/api/v1/write", gz.substr(0, gz.size() / 2), {"Content-Encoding: gzip"});
    EXPECT_EQ(truncated.status, 400);
    EXPECT_EQ(truncated.body,
              R"({"error":{"code":"invalid_argument","message":"the gzip body is truncated"}})");
    auto not_gzip = post("/api/v1/write", "m f=1", {"Content-Encoding: gzip"});
    EXPECT_EQ(not_gzip.status, 400);

    // 1 MiB of comments inflates past the 64 KiB bound from a few KiB on the wire.
    auto bomb = gzip(std::string(1 << 20, '#'));
    ASSERT_LT(bomb.size(), 8192u);
    auto big = post("/api/v1/write", bomb, {"Content-Encoding: gzip"});
    EXPECT_EQ(big.status, 413);
    EXPECT_EQ(
        big.body,
        R"J({"error":{"code":"too_large","message":"the inflated body is larger than the limit of 65536 bytes (http.body_limit)"}})J");
    EXPECT_EQ(read_back("m f"), strings{"absent"});

    auto br = post("/api/v1/write", "m f=1", {"Content-Encoding: br"});
    EXPECT_EQ(br.status, 415);
    EXPECT_EQ(
        br.body,
        R"({"error":{"code":"unsupported_media_type","message":"Content-Encoding \"br\" is not supported: send gzip or identity","field":"content-encoding"}})");
}

TEST_F(ingest_routes, json_telemetry_is_stored_under_the_device) {
    auto r = post("/api/v1/devices/pump-3/telemetry",
                  R"([{"ts":1704067200000,"values":{"temperature":21.5,"state":"run"}},)"
                  R"({"ts":1704067210000,"temperature":22}])");
    EXPECT_EQ(r.status, 204) << r.body;
    std::vector<std::pair<std::string, std::string>> tags = {{"device", "pump-3"}};
    EXPECT_EQ(read_back(storage::make_key("telemetry", tags, "temperature")),
              (strings{"1704067200000000000=21.5", "1704067210000000000=22"}));
    EXPECT_EQ(read_back("telemetry,device=pump-3 state"), strings{"1704067200000000000=\"run\""});

    auto before = std::chrono::system_clock::now();
    EXPECT_EQ(post("/api/v1/devices/fan%201/telemetry", R"({"rpm":900})").status, 204);
    auto stored = read_back("telemetry,device=fan\\ 1 rpm");
    ASSERT_EQ(stored.size(), 1u);
    int64_t ts = std::stoll(stored[0]);
    EXPECT_GE(ts, before.time_since_epoch() / std::chrono::nanoseconds(1));
    EXPECT_EQ(stored[0].substr(stored[0].find('=')), "=900");

    auto bad = post("/api/v1/devices/pump-3/telemetry", R"({"values":{"temperature":null}})");
    EXPECT_EQ(bad.status, 400);
    EXPECT_EQ(
        bad.body,
        R"({"error":{"code":"invalid_argument","message":"values.temperature: expected a number, string or boolean","field":"values.temperature"}})");
}

TEST_F(ingest_routes, every_route_declares_the_write_permission) {
    std::vector<std::string> paths;
    for (const auto& r : routes.routes()) {
        EXPECT_EQ(r->permission, http::permission::write) << r->path;
        EXPECT_EQ(r->verb, http::method::post) << r->path;
        paths.push_back(r->path);
    }
    EXPECT_EQ(paths,
              (strings{"/api/v1/write", "/write", "/api/v2/write", "/prometheus/api/v1/write",
                       "/api/v1/prom/write", "/api/v1/devices/{device}/telemetry"}));
}

TEST_F(ingest_routes_overloaded, an_overloaded_engine_is_503_with_retry_after) {
    std::string body;
    for (int i = 0; i < 20; ++i)
        body += "m f=" + std::to_string(i) + " " + std::to_string(t0 + i) + "\n";
    auto r = post("/api/v1/write", body);
    EXPECT_EQ(r.status, 503);
    EXPECT_EQ(r.header("retry-after"), "1");
    EXPECT_NE(r.body.find(R"({"error":{"code":"overloaded")"), std::string::npos) << r.body;
    EXPECT_EQ(batches_heard.load(), 0);
}

}  // namespace
}  // namespace clisonix::ingest
