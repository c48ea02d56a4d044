// The optional LLM back end: a question the grammar could not read goes to Ollama's
// /api/chat with the plant's names and the plan's JSON Schema; the plan it returns is read
// like any client's plan and still has to pass check() before it runs.
//
// The HTTP client is libcurl, as for the notifier's webhooks, with the same guards: http and
// https only, no redirects, no proxy from the environment (the configured URL is the one
// place a question may go), a timeout for the whole exchange, and a circuit breaker per URL
// (src/resilience), so that a dead Ollama costs one timeout per reset period rather than one
// per question.
#include <curl/curl.h>
#include <date/tz.h>

#include <algorithm>
#include <boost/json.hpp>
#include <chrono>
#include <memory>
#include <mutex>

#include "ask/ollama.h"
#include "resilience/resilience.h"

namespace clisonix::ask {

namespace json = boost::json;

namespace detail {

namespace {

// Vocabularies beyond this many devices are summarised by count: the prompt has to fit a
// small model's context, and types, assets and metrics carry the words a question uses.
constexpr size_t max_devices_in_prompt = 400;
// Bigger replies are refused: a plan is a few hundred bytes.
constexpr size_t max_reply_bytes = 1 << 20;

std::string_view kind_name(plan_kind k) {
    switch (k) {
        case plan_kind::telemetry:
            return "telemetry";
        case plan_kind::alarms:
            return "alarms";
        case plan_kind::health:
            return "health";
        case plan_kind::offline:
            return "offline";
        case plan_kind::forecast:
            return "forecast";
    }
    return "telemetry";
}

void append_list(std::string& out, const std::vector<std::string>& items) {
    for (size_t i = 0; i < items.size(); ++i) {
        if (i) out += ", ";
        out += items[i];
    }
}

bool printable(std::string_view s) {
    for (unsigned char ch : s)
        if (ch < 0x20 || ch == 0x7f) return false;
    return true;
}

// Ollama's own words for a failed request ({"error": "model 'x' not found"}), else the
// start of the body when it is plain text.
std::string error_text_of(std::string_view body) {
    boost::system::error_code ec;
    auto v = json::parse(body, ec);
    if (!ec && v.is_object())
        if (auto* e = v.as_object().if_contains("error"); e && e->is_string())
            return std::string(e->as_string().subview().substr(0, 300));
    std::string start(body.substr(0, 200));
    return printable(start) ? start : std::string();
}

struct easy_deleter {
    void operator()(CURL* h) const { curl_easy_cleanup(h); }
};
struct list_deleter {
    void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};

struct reply_buffer {
    std::string body;
    bool too_large = false;
};

size_t keep_reply(char* data, size_t size, size_t count, void* user) {
    auto* out = static_cast<reply_buffer*>(user);
    const size_t n = size * count;
    if (out->body.size() + n > max_reply_bytes) {
        out->too_large = true;
        return 0;  // ends the transfer
    }
    out->body.append(data, n);
    return n;
}

resilience::breaker_registry& breakers() {
    static resilience::breaker_registry registry{resilience::breaker_options{}};
    return registry;
}

std::string chat_url(std::string_view base) {
    std::string url(base);
    while (!url.empty() && url.back() == '/')
        url.pop_back();
    return url + "/api/chat";
}

}  // namespace

std::string rfc3339_in(int64_t ms, std::string_view time_zone) {
    const date::sys_time<std::chrono::seconds> at{
        std::chrono::floor<std::chrono::seconds>(std::chrono::milliseconds(ms))};
    try {
        const auto* zone =
            time_zone.empty() ? date::current_zone() : date::locate_zone(std::string(time_zone));
        return date::format("%FT%T%Ez", date::make_zoned(zone, at));
    } catch (const std::exception&) {
        return date::format("%FT%TZ", at);
    }
}

std::string ollama_system_prompt(const vocabulary& vocab, int64_t now_ms, std::string_view schema) {
    std::string p;
    p.reserve(4096 + vocab.devices.size() * 64);
    p += "You turn a question about an industrial plant into a query plan for Clisonix. "
         "Answer with one JSON object that follows the schema below, and nothing else. "
         "Use only the names listed here, spelled exactly as listed; never invent a device, "
         "type, asset or metric. Every plan is checked against these names before it runs.\n\n";
    p += "Time zone: " + (vocab.time_zone.empty() ? std::string("UTC") : vocab.time_zone) + "\n";
    p += "Now: " + rfc3339_in(now_ms, vocab.time_zone) + "\n";
    p += "Write \"from\" and \"to\" as RFC 3339 times with the offset of that time zone; the "
         "range is [from, to). For the current value (aggregate \"last\") both are now.\n\n";

    p += "Devices (name: type; the assets containing it, nearest first):\n";
    const size_t shown = std::min(vocab.devices.size(), max_devices_in_prompt);
    for (size_t i = 0; i < shown; ++i) {
        const auto& d = vocab.devices[i];
        p += "- " + d.name + ": " + (d.type.empty() ? std::string("no type") : d.type);
        if (!d.label.empty()) p += " (\"" + d.label + "\")";
        if (!d.assets.empty()) {
            p += "; in ";
            append_list(p, d.assets);
        }
        p += "\n";
    }
    if (shown < vocab.devices.size())
        p += "- and " + std::to_string(vocab.devices.size() - shown) +
             " more devices: name them only as the question does.\n";

    p += "\nDevice types (name, plural: metrics):\n";
    for (const auto& t : vocab.types) {
        p += "- " + t.name + ", " + t.plural + ": ";
        append_list(p, t.metrics);
        p += "\n";
    }
    p += "\nAssets (name: type, inside which asset):\n";
    for (const auto& a : vocab.assets) {
        p += "- " + a.name + ": " + a.type;
        if (!a.parent.empty()) p += ", in " + a.parent;
        p += "\n";
    }
    p += "\nMetrics (name [unit]: words people use for it):\n";
    for (const auto& m : vocab.metrics) {
        p += "- " + m.name;
        if (!m.unit.empty()) p += " [" + m.unit + "]";
        if (!m.synonyms.empty()) {
            p += ": ";
            append_list(p, m.synonyms);
        }
        p += "\n";
    }

    p += "\nPlan kinds: ";
    for (auto k : {plan_kind::telemetry, plan_kind::alarms, plan_kind::health, plan_kind::offline,
                   plan_kind::forecast}) {
        if (k != plan_kind::telemetry) p += ", ";
        p += kind_name(k);
    }
    p += ". telemetry: values and aggregates of one metric. alarms: open alarms, their count, "
         "the rules or devices alarming most. health: the least or most healthy devices "
         "(metric empty, or the metric contributing). offline: devices not online now. "
         "forecast: when a metric will reach the threshold's value.\n";
    p += "Aggregates: last (now, current), mean, min, max, sum, count, p50, p90, p95, p99, change "
         "(last minus first), trend (rising or falling), time_above and time_below (how long "
         "the metric was above or below the threshold).\n";
    p += "Scope: \"devices\" names machines, or \"device_type\" and/or \"asset\" select every "
         "device of that type under that asset. group_by: device (one row per machine), asset "
         "(with asset_level \"line\" or \"site\"), or none (one number). \"filter\" keeps the "
         "groups whose aggregate satisfies op and value; \"order\" (desc or asc) and \"limit\" "
         "rank them (\"which ... the most\" is order desc, limit 1). \"unit\" is the metric's "
         "unit as listed above. Put the words the time came from in \"time_text\". For alarms, "
         "\"alarm_status\" is open, active or any. A member that does not apply is \"\" (text), "
         "[] (devices) or null (filter, threshold, order, limit). \"source\" is \"llm\".\n";
    p += "\nThe answer's JSON Schema:\n";
    p += schema;
    p += "\n";
    return p;
}

std::string ollama_chat_request(std::string_view model, std::string_view system_prompt,
                                std::string_view question, std::string_view schema) {
    json::object body;
    body["model"] = model;
    json::array messages;
    messages.push_back(json::object{{"role", "system"}, {"content", system_prompt}});
    messages.push_back(json::object{{"role", "user"}, {"content", question}});
    body["messages"] = std::move(messages);
    // Ollama constrains the model's output to this schema (structured outputs).
    boost::system::error_code ec;
    auto schema_value = json::parse(schema, ec);
    body["format"] = ec ? json::value("json") : std::move(schema_value);
    body["stream"] = false;
    // The same question gets the same plan.
    body["options"] = json::object{{"temperature", 0}};
    return json::serialize(body);
}

result<std::string> ollama_reply_content(std::string_view reply_body) {
    auto not_chat = [](std::string why) {
        return make_error("invalid_argument", "Ollama's reply is not a chat answer: " + why, "llm");
    };
    boost::system::error_code ec;
    auto v = json::parse(reply_body, ec);
    if (ec) return not_chat("not JSON (" + ec.message() + ")");
    if (!v.is_object()) return not_chat("not a JSON object");
    const auto* message = v.as_object().if_contains("message");
    if (!message || !message->is_object()) return not_chat("no \"message\" object");
    const auto* content = message->as_object().if_contains("content");
    if (!content || !content->is_string()) return not_chat("no \"message.content\" text");
    return std::string(content->as_string());
}

result<std::string> ollama_post_chat(const llm_options& llm, const std::string& body) {
    static std::once_flag curl_ready;
    std::call_once(curl_ready, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
    const std::string& base = llm.ollama_url;
    const std::string url = chat_url(base);
    struct exchange {
        long code = 0;
        reply_buffer reply;
    };
    auto& breaker = breakers().get("ollama:" + base);
    auto r = resilience::call(breaker, [&]() -> result<exchange> {
        std::unique_ptr<CURL, easy_deleter> h(curl_easy_init());
        if (!h) return make_error("unavailable", "ollama: cannot create an HTTP client");
        curl_slist* raw = nullptr;
        raw = curl_slist_append(raw, "Content-Type: application/json");
        raw = curl_slist_append(raw, "Expect:");  // no 100-continue round trip
        std::unique_ptr<curl_slist, list_deleter> headers(raw);
        exchange out;
        char errbuf[CURL_ERROR_SIZE] = {};
        CURL* c = h.get();
        const long timeout = static_cast<long>(std::max<int64_t>(1, llm.timeout_ms));
        curl_easy_setopt(c, CURLOPT_URL, url.c_str());
        curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
        curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout);
        curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, timeout);
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers.get());
        curl_easy_setopt(c, CURLOPT_POST, 1L);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body.data());
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
        curl_easy_setopt(c, CURLOPT_USERAGENT, "Clisonix-Ask/1");
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, keep_reply);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &out.reply);
        curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
        curl_easy_setopt(c, CURLOPT_PROXY, "");
        const CURLcode rc = curl_easy_perform(c);
        // A reply too big to be a plan is the model's fault, not the server's: not a failure.
        if (rc != CURLE_OK && out.reply.too_large) return out;
        if (rc == CURLE_OPERATION_TIMEDOUT)
            return make_error("unavailable", "ollama at " + base + " did not answer within " +
                                                 std::to_string(timeout) + " ms (ask.timeout)");
        if (rc != CURLE_OK)
            return make_error("unavailable", "ollama at " + base + " is not reachable: " +
                                                 (errbuf[0] ? errbuf : curl_easy_strerror(rc)));
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &out.code);
        if (out.code < 200 || out.code >= 300) {
            const std::string why = error_text_of(out.reply.body);
            return make_error("unavailable", "ollama at " + base + " answered " +
                                                 std::to_string(out.code) +
                                                 (why.empty() ? "" : ": " + why));
        }
        return out;
    });
    if (!r) {
        if (r.error().message.starts_with("circuit open"))
            return make_error("unavailable", "ollama at " + base +
                                                 " failed repeatedly and is not asked for " +
                                                 std::to_string(breaker.retry_in().count()) +
                                                 " ms (" + r.error().message + ")");
        return r.error();
    }
    if (r->reply.too_large)
        return make_error("invalid_argument",
                          "Ollama's reply is larger than " + std::to_string(max_reply_bytes) +
                              " bytes; a plan is a small JSON object",
                          "llm");
    return std::move(r->reply.body);
}

status has_required_members(std::string_view content, std::string_view schema) {
    boost::system::error_code ec;
    const auto plan_value = json::parse(content, ec);
    if (ec || !plan_value.is_object()) return {};  // plan_from_json says what is wrong
    const auto schema_value = json::parse(schema, ec);
    if (ec || !schema_value.is_object()) return {};
    const auto* required = schema_value.as_object().if_contains("required");
    if (!required || !required->is_array()) return {};
    for (const auto& name : required->as_array())
        if (name.is_string() && !plan_value.as_object().contains(name.as_string()))
            return make_error("invalid_argument",
                              "the model's answer is not a plan: it lacks \"" +
                                  std::string(name.as_string()) + "\"",
                              std::string(name.as_string()));
    return {};
}

}  // namespace detail

result<plan> llm_plan(std::string_view question, const vocabulary& vocab, const parse_options& opts,
                      const llm_options& llm) {
    // Off unless configured: nothing about the plant leaves the server.
    if (llm.ollama_url.empty())
        return make_error("unavailable", "no LLM back end is configured (ask.ollama_url is empty)",
                          "ask.ollama_url");
    if (!(llm.ollama_url.starts_with("http://") || llm.ollama_url.starts_with("https://")))
        return make_error(
            "invalid_config",
            "ask.ollama_url must be an http:// or https:// URL, got \"" + llm.ollama_url + "\"",
            "ask.ollama_url");
    if (llm.model.empty())
        return make_error("invalid_config",
                          "ask.model must name an Ollama model when ask.ollama_url is set",
                          "ask.model");
    const std::string schema = plan_json_schema();
    const std::string body = detail::ollama_chat_request(
        llm.model, detail::ollama_system_prompt(vocab, opts.now_ms, schema), question, schema);
    auto reply = detail::ollama_post_chat(llm, body);
    if (!reply) return reply.error();
    auto content = detail::ollama_reply_content(*reply);
    if (!content) return content.error();
    if (auto st = detail::has_required_members(*content, schema); !st) return st.error();
    auto p = plan_from_json(*content, vocab.time_zone);
    if (!p)
        return make_error("invalid_argument",
                          "the model's answer is not a plan: " + p.error().message,
                          p.error().field.empty() ? std::string("llm") : p.error().field);
    p->source = "llm";
    return std::move(*p);
}

}  // namespace clisonix::ask
