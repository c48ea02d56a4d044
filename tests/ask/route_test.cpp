// POST /api/v1/ask and `clisonix ask` through the real binary: an answered question with its
// plan, rows and chart, a question not understood, the 400s naming the field, the route in the
// OpenAPI document, the vocabulary following the registry, and the CLI's output and exit codes.
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include <string>

#include "support/test_support.h"

namespace clisonix {
namespace {

namespace json = boost::json;
using testing::server_process;

constexpr int64_t hour_s = 3600;
constexpr int64_t day_start_s = 1'796'342'400;  // 2026-12-04T00:00:00Z
constexpr const char* at = "2026-12-05T12:00:00Z";
const std::vector<std::string> json_header{"Content-Type: application/json"};

class ask_route : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        srv = new server_process({"--set", "ask.time_zone=UTC"});
        ASSERT_EQ(
            srv->post("/api/v1/device-types",
                      R"({"name":"pump","metrics":{"temperature":{"unit":"°C"}}})", json_header)
                .status,
            201);
        for (const char* device :
             {R"({"name":"pump-01","type":"pump"})", R"({"name":"pump-02","type":"pump"})"})
            ASSERT_EQ(srv->post("/api/v1/devices", device, json_header).status, 201);
        // pump-01: 60 + h at each hour h of 2026-12-04.
        std::string lines;
        for (int h = 0; h < 24; ++h)
            lines += "plant,device=pump-01 temperature=" + std::to_string(60 + h) + " " +
                     std::to_string(day_start_s + h * hour_s) + "\n";
        auto w = srv->post("/api/v1/write?precision=s", lines);
        ASSERT_EQ(w.status, 204) << w.body;
    }
    static void TearDownTestSuite() {
        delete srv;
        srv = nullptr;
    }

    static testing::http_response ask(const std::string& body) {
        return srv->post("/api/v1/ask", body, json_header);
    }
    static std::string url() { return "http://127.0.0.1:" + std::to_string(srv->port()); }

    static server_process* srv;
};
server_process* ask_route::srv = nullptr;

TEST_F(ask_route, answers_with_the_sentence_the_plan_the_rows_and_a_chart) {
    auto r = ask(std::string(R"({"question":"what is the temperature of pump-01 now?","at":")") +
                 at + "\"}");
    ASSERT_EQ(r.status, 200) << r.body;
    auto doc = json::parse(r.body).as_object();
    EXPECT_EQ(doc.at("understood"), true);
    EXPECT_EQ(doc.at("question"), "what is the temperature of pump-01 now?");
    EXPECT_EQ(doc.at("answer"),
              "The temperature of pump-01 is 83 °C, measured at 23:00 yesterday.");
    const auto& plan = doc.at("plan").as_object();
    EXPECT_EQ(plan.at("kind"), "telemetry");
    EXPECT_EQ(plan.at("devices"), json::parse(R"(["pump-01"])"));
    EXPECT_EQ(plan.at("metric"), "temperature");
    EXPECT_EQ(plan.at("unit"), "°C");
    EXPECT_EQ(plan.at("source"), "parser");
    EXPECT_EQ(doc.at("data"), json::parse(R"({"columns":["device","last","time"],
        "rows":[["pump-01",83,"2026-12-04T23:00:00+00:00"]]})"));
    EXPECT_EQ(doc.at("chart"), json::parse(R"({"type":"number","y":"last","unit":"°C"})"));
    // The same moment in Unix ms.
    auto ms = ask(R"({"question":"what is the temperature of pump-01 now?","at":1796472000000})");
    ASSERT_EQ(ms.status, 200) << ms.body;
    EXPECT_EQ(json::parse(ms.body).at("answer"), doc.at("answer"));
}

TEST_F(ask_route, a_question_it_cannot_read_is_not_understood_with_suggestions) {
    auto r = ask(R"({"question":"is the pump ok?"})");
    ASSERT_EQ(r.status, 200) << r.body;
    auto doc = json::parse(r.body).as_object();
    EXPECT_EQ(doc.at("understood"), false);
    EXPECT_EQ(doc.at("question"), "is the pump ok?");
    EXPECT_FALSE(doc.at("not_understood").as_array().empty());
    EXPECT_FALSE(doc.at("suggestions").as_array().empty());
    EXPECT_FALSE(doc.contains("answer"));
}

TEST_F(ask_route, bad_requests_name_the_field) {
    auto field_of = [](const testing::http_response& r) {
        return std::string(json::parse(r.body).at("error").at("field").as_string());
    };
    auto message_of = [](const testing::http_response& r) {
        return std::string(json::parse(r.body).at("error").at("message").as_string());
    };
    auto missing = ask("{}");
    EXPECT_EQ(missing.status, 400);
    EXPECT_EQ(field_of(missing), "question");
    EXPECT_EQ(message_of(missing), "question: required, a string");
    auto empty = ask(R"({"question":"  "})");
    EXPECT_EQ(empty.status, 400);
    EXPECT_EQ(message_of(empty), "question: must not be empty");
    auto long_one = ask(R"({"question":")" + std::string(501, 'a') + "\"}");
    EXPECT_EQ(long_one.status, 400);
    EXPECT_EQ(message_of(long_one), "question: at most 500 characters; got 501");
    auto bad_at = ask(R"({"question":"what is the temperature of pump-01 now?","at":"soonish"})");
    EXPECT_EQ(bad_at.status, 400);
    EXPECT_EQ(field_of(bad_at), "at");
    EXPECT_EQ(message_of(bad_at), "at: expected RFC 3339 or Unix milliseconds; got \"soonish\"");
    EXPECT_EQ(ask(R"({"question":5})").status, 400);
    EXPECT_EQ(ask(R"({"question":"x","extra":1})").status, 400);
}

TEST_F(ask_route, needs_credentials_and_is_in_the_openapi_document) {
    auto anonymous = testing::http_request(srv->port(), "POST", "/api/v1/ask",
                                           R"({"question":"hello"})", json_header);
    EXPECT_EQ(anonymous.status, 401);
    auto doc = json::parse(srv->get("/api/v1/openapi.json").body);
    EXPECT_TRUE(doc.at("paths").as_object().contains("/api/v1/ask"));
}

TEST_F(ask_route, a_new_device_is_known_to_the_next_question) {
    const std::string q = R"({"question":"what is the temperature of pump-03 now?"})";
    EXPECT_EQ(json::parse(ask(q).body).at("understood"), false);
    ASSERT_EQ(
        srv->post("/api/v1/devices", R"({"name":"pump-03","type":"pump"})", json_header).status,
        201);
    auto doc = json::parse(ask(q).body).as_object();
    EXPECT_EQ(doc.at("understood"), true) << json::serialize(doc);
    EXPECT_EQ(doc.at("answer"), "There is no temperature data for pump-03 now.");
}

TEST_F(ask_route, the_cli_prints_the_answer_and_plan_and_exits_1_when_not_understood) {
    auto ok = testing::run_clisonix({"ask", "what is the temperature of pump-01 now?", "--url",
                                     url(), "--key", srv->token(), "--at", at});
    EXPECT_EQ(ok.exit_code, 0) << ok.err;
    EXPECT_EQ(ok.out.substr(0, ok.out.find('\n')),
              "The temperature of pump-01 is 83 °C, measured at 23:00 yesterday.");
    EXPECT_NE(ok.out.find("pump-01  83    2026-12-04T23:00:00+00:00"), std::string::npos) << ok.out;
    EXPECT_NE(ok.out.find("plan:\n  kind: telemetry\n  devices: pump-01\n"), std::string::npos)
        << ok.out;

    auto as_json = testing::run_clisonix({"ask", "what is the temperature of pump-01 now?", "--url",
                                          url(), "--key", srv->token(), "--json"});
    EXPECT_EQ(as_json.exit_code, 0) << as_json.err;
    EXPECT_EQ(json::parse(as_json.out).at("understood"), true);

    auto unknown =
        testing::run_clisonix({"ask", "is the pump ok?", "--url", url(), "--key", srv->token()});
    EXPECT_EQ(unknown.exit_code, 1);
    EXPECT_EQ(unknown.out.substr(0, unknown.out.find('\n')), "Not understood:");
    EXPECT_NE(unknown.out.find("Try:\n"), std::string::npos) << unknown.out;

    EXPECT_EQ(testing::run_clisonix({"ask"}).exit_code, 2);
    auto empty = testing::run_clisonix({"ask", " ", "--url", url()});
    EXPECT_EQ(empty.exit_code, 2);
    EXPECT_EQ(empty.err, "ask: the question is empty\n");
    auto no_key =
        testing::run_clisonix({"ask", "what is the temperature of pump-01 now?", "--url", url()});
    EXPECT_EQ(no_key.exit_code, 1);
}

}  // namespace
}  // namespace clisonix
