// The query API of the real binary on names it should never have stored: every JSON answer
// is valid UTF-8; plus the time range bounds and path decoding a client sees.
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include <string>

#include "storage/storage.h"
#include "support/test_support.h"

namespace clisonix {
namespace {

using testing::server_process;
using testing::temp_dir;

constexpr int64_t t0_ms = 1'704'067'200'000;  // 2024-01-01T00:00:00Z
const std::string range_all = "from=0&to=4102444800000";

// Boost.JSON's parser refuses invalid UTF-8 (as browsers' JSON.parse does not: they read
// U+FFFD silently); it stands for a strict client.
boost::json::value strict_parse(const std::string& body) {
    boost::system::error_code ec;
    auto doc = boost::json::parse(body, ec);
    EXPECT_FALSE(ec) << ec.message() << " in " << body;
    return doc;
}

// A data dir whose engine holds names with the byte 0xBD, as ingest stored them before it
// checked names (written straight into the engine: no write path accepts them now).
void store_invalid_names(const temp_dir& data) {
    storage::options opts;
    opts.dir = (data.path() / "tsdb").string();
    auto engine = storage::engine::open(opts);
    ASSERT_TRUE(engine) << engine.error().message;
    storage::write_batch batch;
    auto number =
        batch.series("pump\xBD,device=d\xBD temperature\xBD", storage::value_type::float64);
    auto text = batch.series("pump\xBD,device=d\xBD mode", storage::value_type::string);
    ASSERT_TRUE(number && text);
    batch.add(*number, t0_ms * 1'000'000, 21.5);
    batch.add_string(*text, t0_ms * 1'000'000, "auto\xBD");
    ASSERT_TRUE((*engine)->write(batch));
}

TEST(query_api_strict, answers_are_valid_utf8_json_for_names_stored_before_the_check) {
    temp_dir data("clisonix-data");
    store_invalid_names(data);
    server_process srv(server_process::on{data}, {});
    const std::string fffd = "\xEF\xBF\xBD";

    auto series = srv.get("/api/v1/series");
    ASSERT_EQ(series.status, 200) << series.body;
    auto doc = strict_parse(series.body);
    ASSERT_EQ(doc.at("series").as_array().size(), 2u) << series.body;
    EXPECT_NE(series.body.find("\"pump" + fffd + "\""), std::string::npos) << series.body;
    EXPECT_NE(series.body.find("\"temperature" + fffd + "\""), std::string::npos);

    for (const std::string& target :
         {"/api/v1/query?" + range_all, "/api/v1/query?metric=mode&" + range_all,
          "/api/v1/query?agg=last&metric=temperature*&" + range_all,
          "/api/v1/last?device=*&" + range_all, "/api/v1/query?format=csv&" + range_all}) {
        auto r = srv.get(target);
        if (r.header("content-type") != "application/json") continue;  // csv: not JSON
        EXPECT_EQ(r.status, 200) << target << ": " << r.body;
        strict_parse(r.body);
    }
    auto text = srv.get("/api/v1/query?metric=mode&" + range_all);
    EXPECT_NE(text.body.find("\"auto" + fffd + "\""), std::string::npos) << text.body;
}

TEST(query_api_strict, a_write_with_such_a_name_is_refused_with_the_line) {
    server_process srv;
    auto r = srv.post("/api/v1/write", "pump,device=d1 t=1 1\npump\xBD,device=d1 t=1 2");
    EXPECT_EQ(r.status, 400);
    auto error = strict_parse(r.body).at("error");
    EXPECT_EQ(error.at("field"), "line 2");
    EXPECT_EQ(error.at("message"),
              "line 2: measurement \"pump\xEF\xBF\xBD\" is not valid UTF-8 (byte 0xBD at byte 4)");
    auto json = srv.post("/api/v1/devices/pump%BD/telemetry", R"({"t":1})",
                         {"Content-Type: application/json"});
    EXPECT_EQ(json.status, 400) << json.body;
    EXPECT_EQ(strict_parse(json.body).at("error").at("field"), "device");
    EXPECT_EQ(strict_parse(srv.get("/api/v1/series").body).at("series").as_array().size(), 0u);
}

TEST(query_api_strict, a_time_past_2262_is_400_naming_the_parameter) {
    server_process srv;
    for (const char* field : {"to", "from"}) {
        auto r = srv.get(std::string("/api/v1/query?") + field + "=now%2B100000d");
        EXPECT_EQ(r.status, 400) << r.body;
        auto error = strict_parse(r.body).at("error");
        EXPECT_EQ(error.at("code"), "invalid_argument");
        EXPECT_EQ(error.at("field"), field);
    }
}

TEST(query_api_strict, a_device_named_with_a_percent_sign_is_found_by_its_exact_name) {
    server_process srv;
    // %2541 is "%41" percent-encoded once: the device is "%41", never "A".
    auto w = srv.post("/api/v1/devices/%2541/telemetry",
                      R"({"ts":)" + std::to_string(t0_ms) + R"(,"values":{"t":1}})",
                      {"Content-Type: application/json"});
    ASSERT_EQ(w.status, 204) << w.body;
    auto series = strict_parse(srv.get("/api/v1/series?metric=t").body).at("series").as_array();
    ASSERT_EQ(series.size(), 1u);
    EXPECT_EQ(series.at(0).at("tags").at("device"), "%41") << boost::json::serialize(series);
    auto q = srv.get("/api/v1/query?device=%2541&metric=t&" + range_all);
    EXPECT_EQ(strict_parse(q.body).at("series").as_array().size(), 1u) << q.body;
}

}  // namespace
}  // namespace clisonix
