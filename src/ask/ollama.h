// Private to src/ask: the pieces of llm_plan() (ask.h), apart so that tests can check each one.
//
// One exchange with Ollama's POST /api/chat:
//   request  {"model", "messages": [system prompt, the question], "format": <plan schema>,
//             "stream": false, "options": {"temperature": 0}}
//   reply    {"model", "message": {"role": "assistant", "content": "<the plan as JSON>"}, ...}
// The content is read by plan_from_json(); check() decides whether the plan may run.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "ask/ask.h"
#include "common/result.h"

namespace clisonix::ask::detail {

// The system prompt: what the model is for, the time zone and "now", the plant's names
// (devices with type and assets, types with their metrics, assets with their parents, metrics
// with units and synonyms), the plan's vocabulary, and the schema its answer must follow.
std::string ollama_system_prompt(const vocabulary& vocab, int64_t now_ms, std::string_view schema);

// The /api/chat request body for `question`; `schema` is the JSON Schema text (plan_json_schema()).
std::string ollama_chat_request(std::string_view model, std::string_view system_prompt,
                                std::string_view question, std::string_view schema);

// message.content of a non-streamed /api/chat reply; "invalid_argument" (field "llm") when the
// reply is not one.
result<std::string> ollama_reply_content(std::string_view reply_body);

// Every member the schema's "required" lists is in the model's JSON object. Ollama holds the
// output to the schema, but a server that ignores `format` would let a partial plan through,
// and plan_from_json() reads a missing member as empty (a missing "from" as 1970).
// "invalid_argument" naming the first missing member; ok when `content` is no object (then
// plan_from_json() says what is wrong).
status has_required_members(std::string_view content, std::string_view schema);

// POSTs `body` to <ollama_url>/api/chat through the breaker "ollama:<ollama_url>" and returns
// the reply body. "unavailable" naming the URL: not reachable, no answer within timeout_ms,
// a non-2xx answer (with Ollama's own error text), or the breaker open after repeated failures.
result<std::string> ollama_post_chat(const llm_options& llm, const std::string& body);

// "now" and other instants as RFC 3339 in `time_zone` ("2026-12-05T10:15:00+01:00"); UTC when
// the zone is unknown.
std::string rfc3339_in(int64_t ms, std::string_view time_zone);

}  // namespace clisonix::ask::detail
