#include <gtest/gtest.h>
#include <boost/json.hpp>

#include "http/http.h"

namespace clisonix::http {
namespace {

response ok(request&) {
    return response::json(200, "{}");
}

class router_test : public ::testing::Test {
protected:
    router_test() {
        routes.add({method::get, "/api/v1/devices", "List devices", permission::read, ok});
        routes.add({method::get, "/api/v1/devices/{device}", "One device", permission::read, ok});
        routes.add({method::get, "/api/v1/devices/export", "Export devices", permission::read, ok});
        routes.add({method::post, "/api/v1/devices/{device}/telemetry", "Write telemetry",
                    permission::read, ok});
    }
    router routes;
};

TEST_F(router_test, matches_literal_paths) {
    auto m = routes.find(method::get, "/api/v1/devices");
    ASSERT_NE(m.found, nullptr);
    EXPECT_EQ(m.found->path, "/api/v1/devices");
    EXPECT_TRUE(m.params.empty());
}

TEST_F(router_test, extracts_and_decodes_path_parameters) {
    auto m = routes.find(method::post, "/api/v1/devices/pump%2F3/telemetry");
    ASSERT_NE(m.found, nullptr);
    EXPECT_EQ(m.found->path, "/api/v1/devices/{device}/telemetry");
    EXPECT_EQ(m.params.at("device"), "pump/3");
}

TEST_F(router_test, literal_segment_wins_over_parameter) {
    auto m = routes.find(method::get, "/api/v1/devices/export");
    ASSERT_NE(m.found, nullptr);
    EXPECT_EQ(m.found->path, "/api/v1/devices/export");
}

TEST_F(router_test, reports_a_known_path_with_another_method) {
    auto m = routes.find(method::del, "/api/v1/devices/pump-1");
    EXPECT_EQ(m.found, nullptr);
    EXPECT_TRUE(m.path_exists);
    auto none = routes.find(method::get, "/api/v1/nothing");
    EXPECT_EQ(none.found, nullptr);
    EXPECT_FALSE(none.path_exists);
}

TEST_F(router_test, head_is_served_by_get_routes) {
    auto m = routes.find(method::head, "/api/v1/devices");
    ASSERT_NE(m.found, nullptr);
}

TEST_F(router_test, empty_parameter_does_not_match) {
    EXPECT_EQ(routes.find(method::get, "/api/v1/devices/").found, nullptr);
}

TEST_F(router_test, duplicate_and_malformed_declarations_are_startup_errors) {
    EXPECT_THROW(routes.add({method::get, "/api/v1/devices", "again", permission::read, ok}),
                 std::logic_error);
    EXPECT_THROW(routes.add({method::get, "/api/v1/x{id}", "bad", permission::read, ok}),
                 std::logic_error);
    EXPECT_THROW(routes.add({method::get, "no-slash", "bad", permission::read, ok}),
                 std::logic_error);
    EXPECT_THROW(routes.add({method::get, "/api/v1/unguarded", "no permission", "", ok}),
                 std::logic_error);
}

TEST_F(router_test, openapi_document_lists_every_route_with_its_parameters) {
    auto doc = boost::json::parse(openapi_document(routes, "Clisonix API", "1.2.3")).as_object();
    EXPECT_EQ(doc.at("openapi").as_string(), "3.1.0");
    EXPECT_EQ(doc.at("info").at("version").as_string(), "1.2.3");
    const auto& paths = doc.at("paths").as_object();
    EXPECT_EQ(paths.size(), 4u);
    const auto& telemetry = paths.at("/api/v1/devices/{device}/telemetry").at("post");
    EXPECT_EQ(telemetry.at("summary").as_string(), "Write telemetry");
    const auto& param = telemetry.at("parameters").as_array().at(0);
    EXPECT_EQ(param.at("name").as_string(), "device");
    EXPECT_EQ(param.at("in").as_string(), "path");
    EXPECT_EQ(telemetry.at("x-permission").as_string(), "read");
    EXPECT_TRUE(doc.at("components").at("schemas").as_object().contains("Error"));
}

TEST(response_test, error_envelope_has_code_message_and_field) {
    auto r = response::error(400, "invalid_argument", "must be a number", "value");
    EXPECT_EQ(r.status, 400);
    EXPECT_EQ(r.content_type, "application/json");
    EXPECT_EQ(
        r.body,
        R"({"error":{"code":"invalid_argument","message":"must be a number","field":"value"}})");
    EXPECT_EQ(response::error(404, "not_found", "No such resource").body,
              R"({"error":{"code":"not_found","message":"No such resource"}})");
}

}  // namespace
}  // namespace clisonix::http
