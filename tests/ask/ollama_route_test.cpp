// POST /api/v1/ask on the real binary with `ask.ollama_url` pointing at `ollama_standin` (a
// STAND-IN for Ollama, see ollama_test.cpp): a question the grammar cannot read goes to the
// model; the plan it returns is checked like any other, so an invented device or a wrong
// unit is answered `understood: false` naming it, never run; a good plan is answered and
// marked "llm"; a question the grammar reads never leaves the server.
//
// Built only once src/ask/routes.cpp exists (tests/ask/CMakeLists.txt): it needs the route.
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <chrono>

#include "notify/receiver.h"
#include "support/test_support.h"

namespace {

namespace json = boost::json;
using clisonix::testing::receiver;
using clisonix::testing::server_process;

const std::vector<std::string> json_header{"Content-Type: application/json"};
// German: a language the grammar does not read, and a model does.
const std::string odd_question = "Welche Pumpe war gestern am heißesten?";

// STAND-IN for Ollama's /api/chat, answering every request with `plan` as the model's message.
void reply_with_plan(receiver& ollama_standin, const json::object& plan) {
    ollama_standin.set_status(200);
    ollama_standin.set_body(json::serialize(json::object{
        {"model", "llama3.1:8b"},
        {"message", json::object{{"role", "assistant"}, {"content", json::serialize(plan)}}},
        {"done", true}}));
}

json::object last_temperature_of(const std::string& device, const std::string& unit) {
    return json::object{{"kind", "telemetry"},
                        {"devices", json::array{json::value(device)}},
                        {"device_type", ""},
                        {"asset", ""},
                        {"metric", "temperature"},
                        {"unit", unit},
                        {"from", "2026-12-05T10:15:00+01:00"},
                        {"to", "2026-12-05T10:15:00+01:00"},
                        {"time_text", "now"},
                        {"aggregate", "last"},
                        {"group_by", "device"},
                        {"asset_level", ""},
                        {"filter", nullptr},
                        {"order", nullptr},
                        {"limit", nullptr},
                        {"threshold", nullptr},
                        {"alarm_status", ""},
                        {"source", "llm"}};
}

class OllamaRouteTest : public ::testing::Test {
protected:
    receiver ollama_standin;
    std::unique_ptr<server_process> srv;

    void SetUp() override {
        srv = std::make_unique<server_process>(std::vector<std::string>{
            "--set", "ask.ollama_url=http://127.0.0.1:" + std::to_string(ollama_standin.port()),
            "--set", "ask.model=llama3.1:8b", "--set", "ask.time_zone=Europe/Berlin", "--set",
            "ask.timeout=1s"});
        auto type =
            srv->post("/api/v1/device-types",
                      R"({"name":"pump","metrics":{"temperature":{"unit":"°C"}}})", json_header);
        ASSERT_EQ(type.status, 201) << type.body;
        for (const char* name : {"pump-01", "pump-02"}) {
            auto d =
                srv->post("/api/v1/devices",
                          std::string(R"({"name":")") + name + R"(","type":"pump"})", json_header);
            ASSERT_EQ(d.status, 201) << d.body;
        }
        // 2026-12-05 10:00 and 10:10 in Berlin.
        auto w = srv->post("/api/v1/write?precision=ms",
                           "telemetry,device=pump-01 temperature=71.5 1796461200000\n"
                           "telemetry,device=pump-01 temperature=72.5 1796461800000\n");
        ASSERT_EQ(w.status, 204) << w.body;
    }

    json::object ask(const std::string& question) {
        auto r = srv->post("/api/v1/ask",
                           json::serialize(json::object{{"question", question},
                                                        {"at", "2026-12-05T10:15:00+01:00"}}),
                           json_header);
        EXPECT_EQ(r.status, 200) << r.body;
        return json::parse(r.body).as_object();
    }

    // The reason the model adds after the grammar's own (which come first and are about
    // the question's words, not the model).
    static std::string model_reason(const json::object& a) {
        const auto& reasons = a.at("not_understood").as_array();
        EXPECT_GE(reasons.size(), 2u) << json::serialize(a);
        if (reasons.size() < 2) return {};
        EXPECT_FALSE(reasons.front().as_string().starts_with("the language model"))
            << json::serialize(a);
        return std::string(reasons.back().as_string());
    }

    static std::string all_reasons(const json::object& a) {
        std::string out;
        for (const auto& r : a.at("not_understood").as_array())
            out += std::string(r.as_string()) + "\n";
        return out;
    }
};

TEST_F(OllamaRouteTest, AGoodPlanFromTheModelIsAnsweredAndMarkedLlm) {
    reply_with_plan(ollama_standin, last_temperature_of("pump-01", "°C"));
    auto a = ask(odd_question);
    ASSERT_TRUE(a.at("understood").as_bool()) << json::serialize(a);
    EXPECT_EQ(a.at("plan").at("source"), "llm");
    EXPECT_EQ(a.at("plan").at("devices"), (json::array{"pump-01"}));
    EXPECT_NE(std::string(a.at("answer").as_string()).find("72.5"), std::string::npos)
        << a.at("answer");
    ASSERT_EQ(ollama_standin.count(), 1u);
    auto sent = json::parse(ollama_standin.requests()[0].body);
    EXPECT_EQ(sent.at("messages").at(1).at("content").as_string(), odd_question);
}

TEST_F(OllamaRouteTest, AnInventedDeviceIsRefusedNamingIt) {
    reply_with_plan(ollama_standin, last_temperature_of("pump-99", "°C"));
    auto a = ask(odd_question);
    ASSERT_FALSE(a.at("understood").as_bool()) << json::serialize(a);
    EXPECT_NE(all_reasons(a).find("pump-99"), std::string::npos) << all_reasons(a);
    EXPECT_FALSE(a.contains("answer"));
    EXPECT_GE(a.at("suggestions").as_array().size(), 2u);
}

TEST_F(OllamaRouteTest, AWrongUnitIsRefusedNamingIt) {
    reply_with_plan(ollama_standin, last_temperature_of("pump-01", "°F"));
    auto a = ask(odd_question);
    ASSERT_FALSE(a.at("understood").as_bool()) << json::serialize(a);
    EXPECT_NE(all_reasons(a).find("°F"), std::string::npos) << all_reasons(a);
}

// A model that is down, answers prose or is too slow adds no answer: the grammar's own reasons
// stand (never an error page for a question), followed by why the model did not help.
TEST_F(OllamaRouteTest, AnOllamaThatFailsLeavesTheGrammarsAnswerAndSaysWhy) {
    const std::string url = "http://127.0.0.1:" + std::to_string(ollama_standin.port());
    ollama_standin.set_status(500);
    ollama_standin.set_body(R"({"error":"llama runner process has terminated"})");
    auto a = ask(odd_question);
    EXPECT_FALSE(a.at("understood").as_bool()) << json::serialize(a);
    EXPECT_EQ(model_reason(a),
              "the language model at ask.ollama_url could not be asked: ollama at " + url +
                  " answered 500: llama runner process has terminated");
    EXPECT_GE(a.at("suggestions").as_array().size(), 2u);
    EXPECT_EQ(ollama_standin.count(), 1u);

    ollama_standin.set_status(200);
    ollama_standin.set_body(R"({"message":{"role":"assistant","content":"pump-01, probably."}})");
    a = ask(odd_question);
    EXPECT_FALSE(a.at("understood").as_bool()) << json::serialize(a);
    EXPECT_EQ(ollama_standin.count(), 2u);
    EXPECT_TRUE(model_reason(a).starts_with(
        "the language model did not answer with a usable plan: the model's answer is not a plan: "))
        << json::serialize(a);

    // ask.timeout is 1 s here.
    reply_with_plan(ollama_standin, last_temperature_of("pump-01", "°C"));
    ollama_standin.set_delay(std::chrono::seconds(5));
    const auto started = std::chrono::steady_clock::now();
    a = ask(odd_question);
    const auto took = std::chrono::steady_clock::now() - started;
    ollama_standin.set_delay(std::chrono::milliseconds(0));
    EXPECT_FALSE(a.at("understood").as_bool()) << json::serialize(a);
    EXPECT_EQ(model_reason(a),
              "the language model at ask.ollama_url could not be asked: ollama at " + url +
                  " did not answer within 1000 ms (ask.timeout)");
    EXPECT_LT(took, std::chrono::seconds(4));
}

// A plan the checker refuses is reported as the model's, after the grammar's reasons.
TEST_F(OllamaRouteTest, ARefusedPlanIsNamedAsTheModels) {
    reply_with_plan(ollama_standin, last_temperature_of("pump-99", "°C"));
    auto a = ask(odd_question);
    ASSERT_FALSE(a.at("understood").as_bool()) << json::serialize(a);
    const std::string reason = model_reason(a);
    EXPECT_TRUE(reason.starts_with("the language model's plan was refused: ")) << reason;
    EXPECT_NE(reason.find("pump-99"), std::string::npos) << reason;
    EXPECT_GE(a.at("suggestions").as_array().size(), 2u);
}

TEST_F(OllamaRouteTest, AQuestionTheGrammarReadsNeverLeavesTheServer) {
    reply_with_plan(ollama_standin, last_temperature_of("pump-02", "°C"));
    auto a = ask("what is the temperature of pump-01 now?");
    ASSERT_TRUE(a.at("understood").as_bool()) << json::serialize(a);
    EXPECT_EQ(a.at("plan").at("source"), "parser");
    EXPECT_EQ(ollama_standin.count(), 0u);
}

}  // namespace
