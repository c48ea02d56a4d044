// The LLM back end of Ask (llm_plan, src/ask/ollama.cpp) against `ollama_standin`: a STAND-IN
// for an Ollama server (no real model can run here), a plain HTTP server on loopback that
// records each /api/chat request and answers with the canned reply a test gives it.
//
// What a user would notice: the request carries the model, the plan's schema as `format`,
// stream false, temperature 0, the plant's names and "now" in the system prompt and the
// question as the user's message; a plan comes back marked "llm" exactly as the model wrote
// it (check() is what refuses invented names, see ollama_route_test.cpp); a reply that is not
// a plan, a 500, a hang and a refused connection are errors naming the URL; after repeated
// failures the breaker stops asking; nothing is sent without ask.ollama_url.
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <chrono>

#include "ask/ask.h"
#include "ask/ollama.h"
#include "notify/receiver.h"

namespace clisonix::ask {
namespace {

namespace json = boost::json;
using namespace std::chrono_literals;

// STAND-IN for Ollama's /api/chat: the notifier tests' HTTP receiver, answering every
// request with a chat reply whose message.content the test chooses.
class ollama_standin {
public:
    std::string url() const { return "http://127.0.0.1:" + std::to_string(_http.port()); }
    // A well-formed /api/chat reply carrying `content` as the assistant's message.
    void reply_with(const std::string& content) {
        _http.set_status(200);
        _http.set_body(json::serialize(
            json::object{{"model", "llama3.1:8b"},
                         {"created_at", "2026-12-05T09:15:01Z"},
                         {"message", json::object{{"role", "assistant"}, {"content", content}}},
                         {"done", true}}));
    }
    void reply_raw(int status, std::string body) {
        _http.set_status(status);
        _http.set_body(std::move(body));
    }
    void hang(std::chrono::milliseconds how_long) { _http.set_delay(how_long); }
    void stop() { _http.stop(); }
    std::vector<testing::received_request> requests() { return _http.requests(); }

private:
    testing::receiver _http;
};

// 2026-12-05 10:15 in Berlin (09:15 UTC).
constexpr int64_t now_ms = 1796462100000;
// Yesterday in Berlin: [2026-12-04 00:00+01:00, 2026-12-05 00:00+01:00).
constexpr int64_t yesterday_from = 1796338800000;
constexpr int64_t yesterday_to = 1796425200000;
const std::string question = "which pumps on line 2 ran hotter than 80 °C yesterday?";

vocabulary plant() {
    vocabulary v;
    v.time_zone = "Europe/Berlin";
    for (int i = 1; i <= 8; ++i) {
        device_word d;
        d.name = (i < 10 ? "pump-0" : "pump-") + std::to_string(i);
        d.type = "pump";
        d.assets = {i <= 4 ? "line-1" : "line-2", "north-site"};
        d.online = true;
        v.devices.push_back(d);
    }
    v.devices[5].label = "Cooling water pump";
    v.types.push_back({"pump", "pumps", {"temperature", "vibration_rms"}});
    v.assets.push_back({"north-site", "site", "", {}});
    v.assets.push_back(
        {"line-1", "line", "north-site", {"pump-01", "pump-02", "pump-03", "pump-04"}});
    v.assets.push_back(
        {"line-2", "line", "north-site", {"pump-05", "pump-06", "pump-07", "pump-08"}});
    v.metrics.push_back({"temperature", "°C", {"temp", "hot", "hotter"}});
    v.metrics.push_back({"vibration_rms", "mm/s", {"vibration", "vib"}});
    return v;
}

// The plan a model would write for `question` (the contract's example), with overrides.
json::object hotter_than_80(json::object changes = {}) {
    json::object p{{"kind", "telemetry"},
                   {"devices", json::array{}},
                   {"device_type", "pump"},
                   {"asset", "line-2"},
                   {"metric", "temperature"},
                   {"unit", "°C"},
                   {"from", "2026-12-04T00:00:00+01:00"},
                   {"to", "2026-12-05T00:00:00+01:00"},
                   {"time_text", "yesterday"},
                   {"aggregate", "max"},
                   {"group_by", "device"},
                   {"filter", json::object{{"op", ">"}, {"value", 80}}},
                   {"asset_level", ""},
                   {"order", "desc"},
                   {"limit", nullptr},
                   {"threshold", nullptr},
                   {"alarm_status", ""},
                   {"source", "llm"}};
    for (auto& [k, v] : changes)
        p[k] = v;
    return p;
}

llm_options options_for(const ollama_standin& standin, int64_t timeout_ms = 5000) {
    return llm_options{standin.url(), "llama3.1:8b", timeout_ms};
}

TEST(OllamaTest, SendsTheModelTheSchemaAndThePlantAndReadsBackItsPlan) {
    ollama_standin standin;
    standin.reply_with(json::serialize(hotter_than_80()));

    auto p = llm_plan(question, plant(), {now_ms}, options_for(standin));

    ASSERT_TRUE(p.ok()) << p.error().message;
    EXPECT_EQ(p->source, "llm");
    EXPECT_EQ(p->kind, plan_kind::telemetry);
    EXPECT_TRUE(p->devices.empty());
    EXPECT_EQ(p->device_type, "pump");
    EXPECT_EQ(p->asset, "line-2");
    EXPECT_EQ(p->metric, "temperature");
    EXPECT_EQ(p->unit, "°C");
    EXPECT_EQ(p->from_ms, yesterday_from);
    EXPECT_EQ(p->to_ms, yesterday_to);
    EXPECT_EQ(p->time_text, "yesterday");
    EXPECT_EQ(p->agg, aggregate::max);
    EXPECT_EQ(p->group_by, grouping::device);
    ASSERT_TRUE(p->filter.has_value());
    EXPECT_EQ(p->filter->op, ">");
    EXPECT_EQ(p->filter->value, 80);
    EXPECT_EQ(p->order, "desc");
    EXPECT_FALSE(p->limit.has_value());

    auto got = standin.requests();
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].method, "POST");
    EXPECT_EQ(got[0].target, "/api/chat");
    EXPECT_EQ(got[0].header("content-type"), "application/json");
    auto body = json::parse(got[0].body).as_object();
    EXPECT_EQ(body.at("model"), "llama3.1:8b");
    EXPECT_EQ(body.at("stream"), false);
    EXPECT_EQ(body.at("options").at("temperature").to_number<double>(), 0.0);
    EXPECT_EQ(body.at("format"), json::parse(plan_json_schema())) << "format is the plan's schema";
    const auto& messages = body.at("messages").as_array();
    ASSERT_EQ(messages.size(), 2u);
    EXPECT_EQ(messages[0].at("role"), "system");
    EXPECT_EQ(messages[1], (json::object{{"role", "user"}, {"content", question}}));
    const std::string system(messages[0].at("content").as_string());
    for (const char* expected : {
             "Time zone: Europe/Berlin\n",
             "Now: 2026-12-05T10:15:00+01:00\n",
             "- pump-01: pump; in line-1, north-site\n",
             "- pump-06: pump (\"Cooling water pump\"); in line-2, north-site\n",
             "- pump-08: pump; in line-2, north-site\n",
             "- pump, pumps: temperature, vibration_rms\n",
             "- line-2: line, in north-site\n",
             "- north-site: site\n",
             "- temperature [°C]: temp, hot, hotter\n",
             "- vibration_rms [mm/s]: vibration, vib\n",
             "never invent a device",
             "\"source\" is \"llm\"",
         })
        EXPECT_NE(system.find(expected), std::string::npos) << "system prompt lacks: " << expected;
    EXPECT_NE(system.find(plan_json_schema()), std::string::npos) << "the schema is in the prompt";
}

// The model invents pump-99, or speaks Fahrenheit: llm_plan hands the plan on exactly as
// written (never corrected into something the model did not say), so that check() refuses
// it and the user is told why.
TEST(OllamaTest, APlanNamingAnUnknownDeviceComesBackAsWrittenForCheckToRefuse) {
    ollama_standin standin;
    standin.reply_with(json::serialize(
        hotter_than_80({{"devices", json::array{"pump-99"}}, {"device_type", ""}, {"asset", ""}})));
    auto p = llm_plan(question, plant(), {now_ms}, options_for(standin));
    ASSERT_TRUE(p.ok()) << p.error().message;
    EXPECT_EQ(p->devices, std::vector<std::string>{"pump-99"});
    EXPECT_EQ(p->source, "llm");
}

TEST(OllamaTest, APlanWithAWrongUnitComesBackAsWrittenForCheckToRefuse) {
    ollama_standin standin;
    standin.reply_with(json::serialize(
        hotter_than_80({{"unit", "°F"}, {"filter", json::object{{"op", ">"}, {"value", 176}}}})));
    auto p = llm_plan(question, plant(), {now_ms}, options_for(standin));
    ASSERT_TRUE(p.ok()) << p.error().message;
    EXPECT_EQ(p->unit, "°F");
    EXPECT_EQ(p->filter->value, 176);
}

TEST(OllamaTest, AnAnswerInProseIsNotAPlan) {
    ollama_standin standin;
    standin.reply_with("The hottest pump on line 2 yesterday was pump-06.");
    auto p = llm_plan(question, plant(), {now_ms}, options_for(standin));
    ASSERT_FALSE(p.ok());
    EXPECT_EQ(p.error().code, "invalid_argument");
    EXPECT_TRUE(p.error().message.starts_with("the model's answer is not a plan: "))
        << p.error().message;
}

// A server that ignores `format` may send a partial plan: a missing "from" must not read as
// 1970, so every member the schema requires must be there.
TEST(OllamaTest, APlanMissingItsTimeNamesTheMember) {
    ollama_standin standin;
    auto plan = hotter_than_80();
    plan.erase("from");
    standin.reply_with(json::serialize(plan));
    auto p = llm_plan(question, plant(), {now_ms}, options_for(standin));
    ASSERT_FALSE(p.ok());
    EXPECT_EQ(p.error().code, "invalid_argument");
    EXPECT_EQ(p.error().field, "from");
    EXPECT_EQ(p.error().message, "the model's answer is not a plan: it lacks \"from\"");
}

TEST(OllamaTest, APlanIsMarkedLlmWhateverTheModelSaysItsSourceIs) {
    ollama_standin standin;
    standin.reply_with(json::serialize(hotter_than_80({{"source", "parser"}})));
    auto p = llm_plan(question, plant(), {now_ms}, options_for(standin));
    ASSERT_TRUE(p.ok()) << p.error().message;
    EXPECT_EQ(p->source, "llm");
}

TEST(OllamaTest, AReplyThatIsNotAChatAnswerIsRefused) {
    ollama_standin standin;
    standin.reply_raw(200, "<html>a proxy's login page</html>");
    auto p = llm_plan(question, plant(), {now_ms}, options_for(standin));
    ASSERT_FALSE(p.ok());
    EXPECT_EQ(p.error().code, "invalid_argument");
    EXPECT_TRUE(p.error().message.starts_with("Ollama's reply is not a chat answer: not JSON"))
        << p.error().message;

    standin.reply_raw(200, R"({"model":"llama3.1:8b","done":true})");
    p = llm_plan(question, plant(), {now_ms}, options_for(standin));
    ASSERT_FALSE(p.ok());
    EXPECT_EQ(p.error().message, "Ollama's reply is not a chat answer: no \"message\" object");
}

TEST(OllamaTest, AServerErrorIsUnavailableNamingTheUrlAndOllamasWords) {
    ollama_standin standin;
    standin.reply_raw(500, R"({"error":"llama runner process has terminated"})");
    auto p = llm_plan(question, plant(), {now_ms}, options_for(standin));
    ASSERT_FALSE(p.ok());
    EXPECT_EQ(p.error().code, "unavailable");
    EXPECT_EQ(p.error().message,
              "ollama at " + standin.url() + " answered 500: llama runner process has terminated");
}

TEST(OllamaTest, AnUnknownModelIsUnavailableWithOllamasReason) {
    ollama_standin standin;
    standin.reply_raw(404, R"({"error":"model \"llama3.1:8b\" not found, try pulling it first"})");
    auto p = llm_plan(question, plant(), {now_ms}, options_for(standin));
    ASSERT_FALSE(p.ok());
    EXPECT_EQ(p.error().code, "unavailable");
    EXPECT_EQ(p.error().message, "ollama at " + standin.url() +
                                     " answered 404: model \"llama3.1:8b\" not found, try "
                                     "pulling it first");
}

TEST(OllamaTest, AHangEndsAtTheTimeout) {
    ollama_standin standin;
    standin.reply_with(json::serialize(hotter_than_80()));
    standin.hang(20s);
    const auto started = std::chrono::steady_clock::now();
    auto p = llm_plan(question, plant(), {now_ms}, options_for(standin, 500));
    const auto took = std::chrono::steady_clock::now() - started;
    ASSERT_FALSE(p.ok());
    EXPECT_EQ(p.error().code, "unavailable");
    EXPECT_EQ(p.error().message,
              "ollama at " + standin.url() + " did not answer within 500 ms (ask.timeout)");
    EXPECT_GE(took, 450ms);
    EXPECT_LT(took, 5s);
    EXPECT_EQ(standin.requests().size(), 1u) << "the request did arrive";
}

TEST(OllamaTest, ARefusedConnectionIsUnavailableNamingTheUrl) {
    ollama_standin standin;
    const std::string url = standin.url();
    standin.stop();
    auto p = llm_plan(question, plant(), {now_ms}, {url, "llama3.1:8b", 2000});
    ASSERT_FALSE(p.ok());
    EXPECT_EQ(p.error().code, "unavailable");
    EXPECT_TRUE(p.error().message.starts_with("ollama at " + url + " is not reachable: "))
        << p.error().message;
}

// Five failures in the breaker's window open it: the sixth question is not sent at all, so a
// dead Ollama does not cost every question a timeout.
TEST(OllamaTest, RepeatedFailuresOpenTheBreaker) {
    ollama_standin standin;
    standin.reply_raw(503, R"({"error":"server busy"})");
    for (int i = 0; i < 5; ++i) {
        auto p = llm_plan(question, plant(), {now_ms}, options_for(standin));
        ASSERT_FALSE(p.ok());
        EXPECT_EQ(p.error().message, "ollama at " + standin.url() + " answered 503: server busy");
    }
    standin.reply_with(json::serialize(hotter_than_80()));
    auto p = llm_plan(question, plant(), {now_ms}, options_for(standin));
    ASSERT_FALSE(p.ok());
    EXPECT_EQ(p.error().code, "unavailable");
    EXPECT_TRUE(p.error().message.starts_with("ollama at " + standin.url() +
                                              " failed repeatedly and is not asked for "))
        << p.error().message;
    EXPECT_EQ(standin.requests().size(), 5u) << "the sixth question was not sent";
}

TEST(OllamaTest, NothingIsSentWithoutAnOllamaUrl) {
    auto p = llm_plan(question, plant(), {now_ms}, {"", "llama3.1:8b", 5000});
    ASSERT_FALSE(p.ok());
    EXPECT_EQ(p.error().code, "unavailable");
    EXPECT_EQ(p.error().field, "ask.ollama_url");
    EXPECT_EQ(p.error().message, "no LLM back end is configured (ask.ollama_url is empty)");

    p = llm_plan(question, plant(), {now_ms}, {"127.0.0.1:11434", "llama3.1:8b", 5000});
    ASSERT_FALSE(p.ok());
    EXPECT_EQ(p.error().code, "invalid_config");
    EXPECT_EQ(p.error().message,
              "ask.ollama_url must be an http:// or https:// URL, got \"127.0.0.1:11434\"");

    ollama_standin standin;
    p = llm_plan(question, plant(), {now_ms}, {standin.url(), "", 5000});
    ASSERT_FALSE(p.ok());
    EXPECT_EQ(p.error().field, "ask.model");
    EXPECT_TRUE(standin.requests().empty());
}

TEST(OllamaTest, ALargePlantIsSummarisedInThePrompt) {
    vocabulary v = plant();
    for (int i = 9; i <= 450; ++i)
        v.devices.push_back({"pump-" + std::to_string(i), "pump", "", {"line-2"}, true});
    const std::string prompt = detail::ollama_system_prompt(v, now_ms, "{}");
    EXPECT_NE(prompt.find("- pump-400: pump; in line-2\n"), std::string::npos);
    EXPECT_EQ(prompt.find("- pump-401:"), std::string::npos);
    EXPECT_NE(prompt.find("- and 50 more devices"), std::string::npos);
}

TEST(OllamaTest, TimesAreWrittenInTheServersZone) {
    EXPECT_EQ(detail::rfc3339_in(now_ms, "Europe/Berlin"), "2026-12-05T10:15:00+01:00");
    EXPECT_EQ(detail::rfc3339_in(now_ms, "America/New_York"), "2026-12-05T04:15:00-05:00");
    EXPECT_EQ(detail::rfc3339_in(now_ms, "Not/AZone"), "2026-12-05T09:15:00Z");
}

}  // namespace
}  // namespace clisonix::ask
