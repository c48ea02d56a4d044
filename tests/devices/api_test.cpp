// Devices and the asset graph through the real binary: a device created by the API writes
// telemetry with its token, the query API answers over an asset's subtree, out-of-range
// points are kept and flagged, and bulk provisioning reports bad rows by line.
#include <sys/stat.h>

#include <gmock/gmock.h>

#include <boost/json.hpp>

#include <thread>

#include "support/test_support.h"

namespace clisonix {
namespace {

using ::testing::HasSubstr;
using testing::http_request;
using testing::server_process;
namespace json = boost::json;

constexpr int64_t t0_ms = 1'704'067'200'000;  // 2024-01-01T00:00:00Z

const std::string range = "from=0&to=4102444800000";

std::string field_of(const testing::http_response& r) {
    auto v = json::parse(r.body);
    const auto& e = v.at("error").as_object();
    return e.contains("field") ? std::string(e.at("field").as_string()) : "";
}

class devices_api : public ::testing::Test {
protected:
    testing::http_response post_json(const std::string& target, const std::string& body) {
        return srv.post(target, body, {"Content-Type: application/json"});
    }
    std::string create_device(const std::string& name, const std::string& type) {
        auto r =
            post_json("/api/v1/devices", R"({"name":")" + name + R"(","type":")" + type + R"("})");
        EXPECT_EQ(r.status, 201) << r.body;
        return std::string(json::parse(r.body).at("token").as_string());
    }
    void relate(const std::string& from, const std::string& to) {
        auto r = post_json("/api/v1/relations",
                           R"({"from":")" + from + R"(","to":")" + to + R"(","type":"contains"})");
        EXPECT_EQ(r.status, 201) << r.body;
    }
    testing::http_response telemetry(const std::string& token, const std::string& body) {
        return http_request(srv.port(), "POST", "/api/v1/telemetry", body,
                            {"Authorization: Bearer " + token, "Content-Type: application/json"});
    }

    server_process srv;
};

TEST_F(devices_api, plant_telemetry_over_a_subtree_and_out_of_range_flags) {
    auto type = post_json(
        "/api/v1/device-types",
        R"({"name":"thermo","metrics":{"temperature":{"unit":"C","min":0,"max":100}},"offline_timeout_ms":60000})");
    ASSERT_EQ(type.status, 201) << type.body;
    EXPECT_EQ(json::parse(type.body).at("metrics"),
              json::parse(R"({"temperature":{"unit":"C","min":0E0,"max":1E2}})"));

    for (auto [name, kind] :
         {std::pair{"site-1", "site"}, {"line-1", "line"}, {"line-2", "line"}}) {
        auto a = post_json("/api/v1/assets",
                           std::string(R"({"name":")") + name + R"(","type":")" + kind + "\"}");
        ASSERT_EQ(a.status, 201) << a.body;
    }
    std::map<std::string, std::string> tokens;
    for (auto name : {"t-1a", "t-2a", "t-2b"})
        tokens[name] = create_device(name, "thermo");
    relate("site-1", "line-1");
    relate("site-1", "line-2");
    relate("line-1", "t-1a");
    relate("line-2", "t-2a");
    relate("line-2", "t-2b");

    // The token is shown once: never again in the device's answer.
    auto got = srv.get("/api/v1/devices/t-2a");
    ASSERT_EQ(got.status, 200);
    EXPECT_FALSE(json::parse(got.body).as_object().contains("token"));
    EXPECT_EQ(json::parse(got.body).at("online"), false);
    EXPECT_EQ(json::parse(got.body).at("last_seen"), nullptr);

    auto ts = [](int s) { return std::to_string(t0_ms + s * 1000); };
    ASSERT_EQ(telemetry(tokens["t-1a"], R"({"ts":)" + ts(0) + R"(,"values":{"temperature":99.5}})")
                  .status,
              204);
    ASSERT_EQ(
        telemetry(tokens["t-2a"], R"([{"ts":)" + ts(0) + R"(,"values":{"temperature":41.25}},)" +
                                      R"({"ts":)" + ts(10) + R"(,"values":{"temperature":47.75}}])")
            .status,
        204);
    ASSERT_EQ(telemetry(tokens["t-2b"], R"({"ts":)" + ts(5) + R"(,"values":{"temperature":45.5}})")
                  .status,
              204);

    // The max over every device under line-2 (t-1a's 99.5 is under line-1).
    auto max =
        srv.get("/api/v1/query?asset=line-2&metric=temperature&agg=max&group_by=metric&" + range);
    ASSERT_EQ(max.status, 200) << max.body;
    EXPECT_EQ(max.body,
              "{\"series\":[{\"measurement\":\"\",\"tags\":{},\"metric\":\"temperature\","
              "\"points\":[[0,47.75]]}]}");
    auto per_device = srv.get("/api/v1/query?asset=line-2&metric=temperature&agg=max&" + range);
    auto series = json::parse(per_device.body).at("series").as_array();
    ASSERT_EQ(series.size(), 2u);
    EXPECT_EQ(series[0].at("tags").at("device"), "t-2a");
    EXPECT_EQ(series[0].at("points").at(0).at(1), 47.75);
    EXPECT_EQ(series[1].at("points").at(0).at(1), 45.5);
    auto site =
        srv.get("/api/v1/query?asset=site-1&metric=temperature&agg=max&group_by=metric&" + range);
    EXPECT_THAT(site.body, HasSubstr("[[0,99.5]]"));

    // Out of range: stored as sent, and flagged at the same timestamp.
    ASSERT_EQ(
        telemetry(tokens["t-2b"], R"({"ts":)" + ts(20) + R"(,"values":{"temperature":130.5}})")
            .status,
        204);
    auto raw = srv.get("/api/v1/query?device=t-2b&metric=temperature&" + range);
    EXPECT_THAT(raw.body, HasSubstr("\"points\":[[" + ts(5) + ",45.5],[" + ts(20) + ",130.5]]"));
    auto flag = srv.get("/api/v1/query?device=t-2b&metric=temperature.out_of_range&" + range);
    EXPECT_THAT(flag.body, HasSubstr("\"points\":[[" + ts(20) + ",1]]"));

    // Seen: the device is online now.
    auto seen = json::parse(srv.get("/api/v1/devices/t-2b").body);
    EXPECT_EQ(seen.at("online"), true);
    EXPECT_TRUE(seen.at("last_seen").is_int64());

    // Graph answers.
    auto children = json::parse(srv.get("/api/v1/assets/line-2/children").body);
    EXPECT_EQ(children.at("nodes").as_array().size(), 2u);
    EXPECT_EQ(children.at("nodes").at(0).at("name"), "t-2a");
    auto ancestors = json::parse(srv.get("/api/v1/assets/t-2b/ancestors").body);
    EXPECT_EQ(ancestors.at("nodes").at(0).at("name"), "line-2");
    EXPECT_EQ(ancestors.at("nodes").at(1).at("name"), "site-1");
    auto subtree = json::parse(srv.get("/api/v1/assets/site-1/subtree?depth=1").body);
    EXPECT_EQ(subtree.at("nodes").as_array().size(), 3u);
    auto path = json::parse(srv.get("/api/v1/graph/path?from=t-1a&to=t-2b").body);
    EXPECT_EQ(path.at("length"), 4);
    EXPECT_EQ(path.at("nodes").at(2).at("name"), "site-1");

    // A contains cycle: 409 naming it.
    auto cycle =
        post_json("/api/v1/relations", R"({"from":"line-2","to":"site-1","type":"contains"})");
    EXPECT_EQ(cycle.status, 409);
    EXPECT_THAT(cycle.body, HasSubstr("line-2 -> site-1 -> line-2"));
}

TEST_F(devices_api, bad_inputs_are_400_with_the_field_and_unknown_things_404) {
    auto bad_name = post_json("/api/v1/devices", R"({"name":"bad name"})");
    EXPECT_EQ(bad_name.status, 400) << bad_name.body;
    EXPECT_THAT(field_of(bad_name), HasSubstr("name"));
    auto digits = post_json("/api/v1/devices", R"({"name":"12345"})");
    EXPECT_EQ(digits.status, 400);
    EXPECT_EQ(field_of(digits), "name");
    auto unknown_field = post_json("/api/v1/devices", R"({"name":"d-1","colour":"red"})");
    EXPECT_EQ(unknown_field.status, 400);
    EXPECT_THAT(field_of(unknown_field), HasSubstr("colour"));
    auto bad_range =
        post_json("/api/v1/device-types", R"({"name":"x","metrics":{"t":{"min":5,"max":1}}})");
    EXPECT_EQ(bad_range.status, 400);
    EXPECT_EQ(field_of(bad_range), "metrics/t");
    auto no_asset = srv.get("/api/v1/query?asset=line-9&metric=temperature&" + range);
    EXPECT_EQ(no_asset.status, 404);
    EXPECT_EQ(field_of(no_asset), "asset");
    EXPECT_EQ(srv.get("/api/v1/devices/nobody").status, 404);
    auto depth = srv.get("/api/v1/assets/x/subtree?depth=-1");
    EXPECT_EQ(depth.status, 400);
    EXPECT_EQ(field_of(depth), "depth");

    ASSERT_EQ(post_json("/api/v1/devices", R"({"name":"d-1"})").status, 201);
    auto dup = post_json("/api/v1/devices", R"({"name":"d-1"})");
    EXPECT_EQ(dup.status, 409);
    auto client_scope = post_json("/api/v1/devices/d-1/attributes?scope=client", R"({"a":1})");
    EXPECT_EQ(client_scope.status, 400);
    EXPECT_EQ(field_of(client_scope), "scope");
    auto shared = post_json("/api/v1/devices/d-1/attributes?scope=shared", R"({"interval":5})");
    EXPECT_EQ(shared.status, 200) << shared.body;
    EXPECT_EQ(shared.body, R"({"shared":{"interval":5}})");
    EXPECT_EQ(srv.get("/api/v1/devices/d-1/attributes").body,
              R"({"client":{},"server":{},"shared":{"interval":5}})");
    // The old token route still rotates.
    auto rotated = srv.post("/api/v1/devices/d-1/token", "");
    EXPECT_EQ(rotated.status, 201) << rotated.body;
}

TEST_F(devices_api, csv_import_keeps_good_rows_and_the_cli_exits_2_on_a_bad_file) {
    auto r = srv.post("/api/v1/devices/import",
                      "name,type,label\nm-1,meter,Meter 1\nm 2,meter,\nm-3,meter,\n",
                      {"Content-Type: text/csv"});
    ASSERT_EQ(r.status, 200) << r.body;
    auto doc = json::parse(r.body);
    ASSERT_EQ(doc.at("created").as_array().size(), 2u);
    EXPECT_EQ(doc.at("created").at(1).at("name"), "m-3");
    EXPECT_EQ(doc.at("created").at(1).at("line"), 4);
    EXPECT_TRUE(doc.at("created").at(1).at("token").is_string());
    ASSERT_EQ(doc.at("errors").as_array().size(), 1u);
    EXPECT_EQ(doc.at("errors").at(0).at("line"), 3);
    EXPECT_EQ(doc.at("errors").at(0).at("field"), "name");
    EXPECT_EQ(srv.get("/api/v1/devices/m-3").status, 200);
    auto header =
        srv.post("/api/v1/devices/import", "name,colour\nx-1,red\n", {"Content-Type: text/csv"});
    EXPECT_EQ(header.status, 400);
    EXPECT_EQ(field_of(header), "header");
    auto empty = srv.post("/api/v1/devices/import", "name,type\n", {"Content-Type: text/csv"});
    EXPECT_EQ(empty.status, 400);
    EXPECT_EQ(field_of(empty), "body");

    // The CLI: a file with a bad row imports the others, reports FILE:LINE and exits 2.
    testing::temp_dir dir;
    const auto csv = dir.path() / "devices.csv";
    const auto tokens = dir.path() / "tokens.csv";
    testing::write_file(csv, "name,type\nc-1,meter\nc 2,meter\nc-3,meter\nm-1,meter\n");
    const std::string url = "http://127.0.0.1:" + std::to_string(srv.port());
    auto run = testing::run_clisonix({"device", "import", csv.string(), "--tokens-out",
                                      tokens.string(), "--url", url, "--token", srv.token()});
    EXPECT_EQ(run.exit_code, 2) << run.err;
    EXPECT_THAT(run.err, HasSubstr(csv.string() + ":3: name: \"c 2\""));
    EXPECT_EQ(run.out, "device import: 2 created, 1 already existed, 1 failed\n");
    auto written = testing::read_file(tokens);
    EXPECT_THAT(written, ::testing::StartsWith("name,token\nc-1,cxd_"));
    EXPECT_THAT(written, HasSubstr("\nc-3,cxd_"));
    struct stat st {};
    ASSERT_EQ(::stat(tokens.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
    // A token from the file works.
    auto line = written.substr(written.find("c-1,") + 4);
    auto token = line.substr(0, line.find('\n'));
    EXPECT_EQ(telemetry(token, R"({"temperature":1.5})").status, 204);

    auto missing = testing::run_clisonix(
        {"device", "import", (dir.path() / "nope.csv").string(), "--url", url});
    EXPECT_EQ(missing.exit_code, 2);
    auto good = dir.path() / "good.csv";
    testing::write_file(good, "g-1,meter\n");
    auto ok = testing::run_clisonix({"device", "import", good.string(), "--tokens-out",
                                     tokens.string(), "--url", url, "--token", srv.token()});
    EXPECT_EQ(ok.exit_code, 0) << ok.err;
    EXPECT_EQ(ok.out, "device import: 1 created, 0 already existed, 0 failed\n");
}

}  // namespace
}  // namespace clisonix
