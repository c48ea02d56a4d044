// POST /api/v1/ask (see ask.h): the vocabulary (cached until the registry changes), the
// grammar, the optional LLM, the checker, the executor, and the answer JSON.
#include <boost/json.hpp>

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>

#include "ask/ask.h"
#include "common/json_text.h"
#include "common/time.h"
#include "devices/devices.h"
#include "http/http.h"
#include "query/query.h"

namespace clisonix::ask {

namespace {

// Longest question accepted: a question, not a document.
constexpr size_t max_question_chars = 500;
// The vocabulary also names the metrics of stored series: a series that appears without a
// registry change is known after at most this long.
constexpr int64_t vocabulary_max_age_ms = 30'000;

constexpr std::string_view ask_schema = R"json({"type":"object","properties":{
"question":{"type":"string","description":"The question in plain language (at most 500 characters)"},
"at":{"type":["string","integer"],"description":"What now means: RFC 3339 or Unix ms (default: the server's clock)"}},
"additionalProperties":false})json";

// The vocabulary, built once and again after any registry change (or when it is older than
// vocabulary_max_age_ms, for metrics of new series).
class vocabulary_cache {
public:
    vocabulary_cache(sources from, std::string time_zone)
        : _from(from), _time_zone(std::move(time_zone)) {}

    void invalidate() { _dirty.store(true); }

    result<std::shared_ptr<const vocabulary>> get() {
        std::lock_guard lock(_mutex);
        const uint64_t generation = _from.registry->generation();
        const int64_t now = now_ms();
        if (!_vocab || _dirty.exchange(false) || generation != _generation ||
            now - _built_ms > vocabulary_max_age_ms) {
            auto v = build_vocabulary(*_from.registry, *_from.engine, _time_zone);
            if (!v) return v.error();
            _vocab = std::make_shared<const vocabulary>(std::move(*v));
            _generation = generation;
            _built_ms = now;
        }
        return _vocab;
    }

private:
    sources _from;
    std::string _time_zone;
    std::mutex _mutex;
    std::atomic<bool> _dirty{true};
    std::shared_ptr<const vocabulary> _vocab;
    uint64_t _generation = 0;
    int64_t _built_ms = 0;
};

struct ask_request {
    std::string question;
    int64_t now_ms = 0;
};

result<ask_request> read_request(std::string_view body) {
    boost::system::error_code ec;
    auto doc = boost::json::parse(body, ec);
    if (ec || !doc.is_object())
        return make_error("invalid_json", "the body must be a JSON object with \"question\"");
    const auto& o = doc.as_object();
    ask_request r;
    const auto* q = o.if_contains("question");
    if (!q || !q->is_string())
        return make_error("invalid_argument", "question: required, a string", "question");
    r.question = std::string(q->as_string());
    const auto blank = r.question.find_first_not_of(" \t\r\n") == std::string::npos;
    if (blank) return make_error("invalid_argument", "question: must not be empty", "question");
    if (r.question.size() > max_question_chars)
        return make_error("invalid_argument",
                          "question: at most " + std::to_string(max_question_chars) +
                              " characters; got " + std::to_string(r.question.size()),
                          "question");
    r.now_ms = now_ms();
    if (const auto* at = o.if_contains("at")) {
        if (at->is_int64()) {
            r.now_ms = at->as_int64();
        } else if (at->is_string()) {
            auto ns = query::parse_time(std::string(at->as_string()), now_ns(), "at");
            if (!ns)
                return make_error("invalid_argument",
                                  "at: expected RFC 3339 or Unix milliseconds; got \"" +
                                      std::string(at->as_string()) + "\"",
                                  "at");
            r.now_ms = *ns / 1'000'000;
        } else {
            return make_error("invalid_argument", "at: expected RFC 3339 or Unix milliseconds",
                              "at");
        }
    }
    return r;
}

void append_strings(std::string& out, const std::vector<std::string>& items) {
    out += '[';
    for (size_t i = 0; i < items.size(); ++i) {
        if (i) out += ',';
        append_json_string(out, items[i]);
    }
    out += ']';
}

std::string not_understood_json(std::string_view question, const not_understood& n) {
    std::string out = "{\"understood\":false,\"question\":";
    append_json_string(out, question);
    out += ",\"not_understood\":";
    append_strings(out, n.reasons);
    out += ",\"suggestions\":";
    append_strings(out, n.suggestions);
    return out + "}";
}

// Two questions the vocabulary answers, for a plan refused after parsing (the grammar builds
// its own suggestions for what it could not read).
std::vector<std::string> fallback_suggestions(const vocabulary& vocab) {
    std::vector<std::string> out;
    for (const auto& t : vocab.types) {
        if (t.metrics.empty()) continue;
        for (const auto& d : vocab.devices)
            if (d.type == t.name) {
                out.push_back("what is the " + t.metrics.front() + " of " + d.name + " now?");
                break;
            }
        out.push_back("what was the average " + t.metrics.front() + " of the " + t.plural +
                      " yesterday?");
        break;
    }
    out.push_back("which devices are offline?");
    return out;
}

// Why the language model did not turn the question into a plan, for the user: the grammar's
// own reasons come first, and this one says that the model was asked and what went wrong
// (down, too slow, an answer that is no plan), naming the configuration key to look at.
std::string llm_failure_reason(const error& e) {
    if (e.code == errc::unavailable)
        return "the language model at ask.ollama_url could not be asked: " + e.message;
    if (e.code == errc::invalid_config) return "the language model is not set up: " + e.message;
    return "the language model did not answer with a usable plan: " + e.message;
}

http::response answer_question(const ask_request& req, const vocabulary& vocab, const sources& from,
                               const llm_options& llm) {
    const parse_options opts{.now_ms = req.now_ms};
    auto parsed = parse(req.question, vocab, opts);
    plan p;
    // The grammar's refusal, kept while the model is asked: if the model fails or its plan is
    // refused, the user sees both why the grammar could not read the question and why the
    // model did not help.
    std::optional<not_understood> grammar_refusal;
    if (auto* n = std::get_if<not_understood>(&parsed)) {
        if (llm.ollama_url.empty())
            return http::response::json(200, not_understood_json(req.question, *n));
        auto proposed = llm_plan(req.question, vocab, opts, llm);
        if (!proposed) {
            n->reasons.push_back(llm_failure_reason(proposed.error()));
            return http::response::json(200, not_understood_json(req.question, *n));
        }
        grammar_refusal = std::move(*n);
        p = std::move(*proposed);
        p.source = "llm";
    } else {
        p = std::move(std::get<plan>(parsed));
    }
    // Every plan is checked, whoever made it.
    if (auto st = check(p, vocab, req.now_ms); !st) {
        if (grammar_refusal) {
            grammar_refusal->reasons.push_back("the language model's plan was refused: " +
                                               st.error().message);
            if (grammar_refusal->suggestions.empty())
                grammar_refusal->suggestions = fallback_suggestions(vocab);
            return http::response::json(200, not_understood_json(req.question, *grammar_refusal));
        }
        not_understood n{{st.error().message}, fallback_suggestions(vocab)};
        return http::response::json(200, not_understood_json(req.question, n));
    }
    auto a = execute(p, vocab, from);
    if (!a) {
        if (a.error().code == errc::invalid_argument || a.error().code == errc::not_found) {
            not_understood n{{a.error().message}, fallback_suggestions(vocab)};
            return http::response::json(200, not_understood_json(req.question, n));
        }
        return http::response::from_error(a.error());
    }
    std::string out = "{\"understood\":true,\"question\":";
    append_json_string(out, req.question);
    out += ",\"answer\":";
    append_json_string(out, a->text);
    out += ",\"plan\":" + plan_to_json(p, vocab.time_zone);
    out += ",\"data\":" + a->data_json;
    out += ",\"chart\":" + a->chart_json + "}";
    return http::response::json(200, std::move(out));
}

}  // namespace

void add_routes(http::router& routes, sources from, llm_options llm, std::string time_zone) {
    auto cache = std::make_shared<vocabulary_cache>(from, std::move(time_zone));
    // Assets and relations change without a new registry generation: listen as well.
    if (from.registry) from.registry->on_change([cache] { cache->invalidate(); });
    routes.add({http::method::post, "/api/v1/ask",
                "Answer a question about the plant in plain language", http::permission::read,
                [cache, from, llm](http::request& req) {
                    auto r = read_request(req.body);
                    if (!r) return http::response::from_error(r.error());
                    if (!from.registry || !from.engine)
                        return http::response::from_error(
                            make_error("unavailable", "the device registry is not available"));
                    auto vocab = cache->get();
                    if (!vocab) return http::response::from_error(vocab.error());
                    return answer_question(*r, **vocab, from, llm);
                },
                std::string(ask_schema)});
}

}  // namespace clisonix::ask
