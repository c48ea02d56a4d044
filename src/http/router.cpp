// Route declarations, matching, request/response helpers and the OpenAPI document.
#include <boost/json.hpp>

#include <algorithm>
#include <stdexcept>

#include "common/utf8.h"
#include "http/http.h"
#include "http/internal.h"

namespace clisonix::http {

namespace json = boost::json;

std::string_view method_name(method m) {
    switch (m) {
        case method::get:
            return "GET";
        case method::head:
            return "HEAD";
        case method::post:
            return "POST";
        case method::put:
            return "PUT";
        case method::patch:
            return "PATCH";
        case method::del:
            return "DELETE";
        case method::options:
            return "OPTIONS";
    }
    return "GET";
}

namespace {

bool iequals(std::string_view a, std::string_view b) {
    return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](char x, char y) {
        return std::tolower(static_cast<unsigned char>(x)) ==
               std::tolower(static_cast<unsigned char>(y));
    });
}

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

bool is_parameter(std::string_view segment) {
    return segment.size() > 2 && segment.front() == '{' && segment.back() == '}';
}

}  // namespace

std::string percent_decode(std::string_view text, bool plus_is_space) {
    std::string out;
    out.reserve(text.size());
    for (size_t i = 0; i < text.size(); ++i) {
        char c = text[i];
        if (c == '%' && i + 2 < text.size()) {
            int hi = hex_value(text[i + 1]), lo = hex_value(text[i + 2]);
            if (hi >= 0 && lo >= 0) {
                out.push_back(static_cast<char>(hi * 16 + lo));
                i += 2;
                continue;
            }
        }
        out.push_back(plus_is_space && c == '+' ? ' ' : c);
    }
    return out;
}

std::vector<std::string_view> split_path(std::string_view path) {
    std::vector<std::string_view> segments;
    size_t start = 1;  // paths start with '/'
    while (start <= path.size()) {
        size_t end = path.find('/', start);
        if (end == std::string_view::npos) end = path.size();
        segments.push_back(path.substr(start, end - start));
        start = end + 1;
    }
    return segments;
}

void add_form_params(std::string_view form, std::map<std::string, std::string, std::less<>>& into) {
    while (!form.empty()) {
        auto amp = form.find('&');
        std::string_view pair = form.substr(0, amp);
        form = amp == std::string_view::npos ? std::string_view{} : form.substr(amp + 1);
        if (pair.empty()) continue;
        auto eq = pair.find('=');
        std::string key = percent_decode(pair.substr(0, eq), true);
        std::string value = eq == std::string_view::npos
                                ? std::string{}
                                : percent_decode(pair.substr(eq + 1), true);
        into.insert_or_assign(std::move(key), std::move(value));
    }
}

void parse_target(std::string_view target, request& req) {
    auto qpos = target.find('?');
    std::string_view raw_path = target.substr(0, qpos);
    req.path = percent_decode(raw_path, false);
    if (qpos == std::string_view::npos) return;
    add_form_params(target.substr(qpos + 1), req.query);
}

std::string_view request::header(std::string_view name) const {
    for (const auto& [key, value] : headers)
        if (iequals(key, name)) return value;
    return {};
}

std::string_view request::query_param(std::string_view name, std::string_view fallback) const {
    auto it = query.find(name);
    return it == query.end() ? fallback : std::string_view(it->second);
}

std::string_view request::path_param(std::string_view name) const {
    auto it = path_params.find(name);
    return it == path_params.end() ? std::string_view{} : std::string_view(it->second);
}

response response::json(int status, std::string body) {
    // JSON text must be UTF-8 (RFC 8259). Boost.JSON serialises strings byte for byte, so a
    // name stored before ingest checked names would reach the client as invalid UTF-8 and
    // break its parser. Bytes >= 0x80 occur only inside string literals, so replacing the
    // invalid ones by U+FFFD keeps the document valid; the check costs a pass over ASCII.
    return response{status, "application/json", utf8::repaired(std::move(body)), {}};
}

response response::text(int status, std::string body, std::string content_type) {
    return response{status, std::move(content_type), std::move(body), {}};
}

response response::no_content() {
    return response{204, "", "", {}};
}

response response::error(int status, std::string_view code, std::string_view message,
                         std::string_view field) {
    json::object inner;
    inner["code"] = code;
    inner["message"] = message;
    if (!field.empty()) inner["field"] = field;
    json::object envelope;
    envelope["error"] = std::move(inner);
    return json(status, json::serialize(envelope));
}

response response::from_error(int status, const clisonix::error& e) {
    return error(status, e.code, e.message, e.field);
}

void router::add(route r) {
    if (r.path.empty() || r.path.front() != '/')
        throw std::logic_error("route template must start with '/': " + r.path);
    for (auto segment : split_path(r.path)) {
        bool has_brace = segment.find_first_of("{}") != std::string_view::npos;
        if (has_brace && !is_parameter(segment))
            throw std::logic_error("malformed path parameter in route " + r.path);
    }
    if (r.permission.empty()) throw std::logic_error("route declares no permission: " + r.path);
    if (r.websocket && r.verb != method::get)
        throw std::logic_error("a WebSocket route must be GET: " + r.path);
    if (!r.handle && !r.websocket) throw std::logic_error("route has no handler: " + r.path);
    for (const auto& existing : _routes)
        if (existing->verb == r.verb && existing->path == r.path)
            throw std::logic_error("route declared twice: " + std::string(method_name(r.verb)) +
                                   " " + r.path);
    _routes.push_back(std::make_unique<route>(std::move(r)));
    _segments.push_back(split_path(_routes.back()->path));
}

router::match router::find(method verb, std::string_view raw_path) const {
    // Match on raw segments, then decode each parameter once, so that an encoded '/' inside
    // a device name stays inside its segment and "%2541" names the device "%41", not "A".
    raw_path = raw_path.substr(0, raw_path.find('?'));
    auto wanted = split_path(raw_path);
    match best;
    int best_literals = -1;
    for (size_t r = 0; r < _routes.size(); ++r) {
        const auto& candidate = _routes[r];
        const auto& pattern = _segments[r];
        if (pattern.size() != wanted.size()) continue;
        int literals = 0;
        bool ok = true;
        for (size_t i = 0; i < pattern.size() && ok; ++i) {
            if (is_parameter(pattern[i]))
                ok = !wanted[i].empty();
            else if (pattern[i] == wanted[i] || (wanted[i].find('%') != std::string_view::npos &&
                                                 pattern[i] == percent_decode(wanted[i], false)))
                ++literals;
            else
                ok = false;
        }
        if (!ok) continue;
        if (candidate->verb != verb && !(verb == method::head && candidate->verb == method::get)) {
            best.path_exists = true;
            continue;
        }
        if (literals <= best_literals) continue;
        best_literals = literals;
        best.found = candidate.get();
        best.params.clear();
        for (size_t i = 0; i < pattern.size(); ++i)
            if (is_parameter(pattern[i]))
                best.params.emplace(std::string(pattern[i].substr(1, pattern[i].size() - 2)),
                                    percent_decode(wanted[i], false));
    }
    return best;
}

std::string openapi_document(const router& routes, std::string_view title,
                             std::string_view version) {
    json::object error_schema = {{"type", "object"},
                                 {"required", json::array{"error"}},
                                 {"properties",
                                  {{"error",
                                    {{"type", "object"},
                                     {"required", json::array{"code", "message"}},
                                     {"properties",
                                      {{"code", {{"type", "string"}}},
                                       {"message", {{"type", "string"}}},
                                       {"field", {{"type", "string"}}}}}}}}}};

    json::object paths;
    for (const auto& r : routes.routes()) {
        json::array parameters;
        for (auto segment : split_path(r->path))
            if (is_parameter(segment))
                parameters.push_back({{"name", segment.substr(1, segment.size() - 2)},
                                      {"in", "path"},
                                      {"required", true},
                                      {"schema", {{"type", "string"}}}});
        std::string verb(method_name(r->verb));
        std::transform(verb.begin(), verb.end(), verb.begin(), ::tolower);
        json::object operation = {
            {"summary", r->summary},
            {"operationId", verb + r->path},
            {"responses",
             {{"default",
               {{"description", "Error"},
                {"content",
                 {{"application/json", {{"schema", {{"$ref", "#/components/schemas/Error"}}}}}}}}},
              {"200", {{"description", "Success"}}}}}};
        if (!parameters.empty()) operation["parameters"] = std::move(parameters);
        operation["x-permission"] = r->permission;
        if (r->websocket) {
            // OpenAPI has no WebSocket operations: the upgrade is described as what it is.
            operation["x-websocket"] = true;
            auto& responses = operation["responses"].as_object();
            responses.erase("200");
            responses["101"] = {{"description", "Switching Protocols: the WebSocket is open"}};
            responses["426"] = {{"description", "Upgrade Required: not a WebSocket request"}};
        }
        if (!r->request_schema.empty())
            operation["requestBody"] = {
                {"required", true},
                {"content", {{"application/json", {{"schema", json::parse(r->request_schema)}}}}}};
        auto& entry = paths[r->path];
        if (!entry.is_object()) entry = json::object();
        entry.as_object()[verb] = std::move(operation);
    }
    json::object doc = {{"openapi", "3.1.0"},
                        {"info", {{"title", title}, {"version", version}}},
                        {"paths", std::move(paths)},
                        {"components", {{"schemas", {{"Error", std::move(error_schema)}}}}}};
    return json::serialize(doc);
}

}  // namespace clisonix::http
