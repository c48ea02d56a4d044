// JSON Schema validation of request bodies (valijson over Boost.JSON), schemas compiled
// once per route at start-up.
#include <boost/json.hpp>
#include <valijson/adapters/boost_json_adapter.hpp>
#include <valijson/schema.hpp>
#include <valijson/schema_parser.hpp>
#include <valijson/validation_results.hpp>
#include <valijson/validator.hpp>

#include <map>
#include <stdexcept>

#include "gateway/gateway.h"

namespace clisonix::gateway {
namespace {

// Deep enough for any body the API takes; shallow enough that neither the parser's nor
// the validator's recursion can exhaust a worker's stack.
constexpr size_t max_depth = 64;

struct compiled_schema {
    boost::json::value document;  // for the wording of type errors
    valijson::Schema schema;
};

std::string pointer_escape(std::string_view name) {
    std::string out;
    for (char c : name) {
        if (c == '~')
            out += "~0";
        else if (c == '/')
            out += "~1";
        else
            out += c;
    }
    return out;
}

// valijson names the place of an error as {"<root>", "[user]", "[0]"}.
std::string pointer_of(const std::vector<std::string>& context) {
    std::string out;
    for (const auto& part : context) {
        if (part == "<root>") continue;
        std::string_view p = part;
        if (p.starts_with('[') && p.ends_with(']')) p = p.substr(1, p.size() - 2);
        out += "/" + pointer_escape(p);
    }
    return out;
}

// The name between the last pair of single quotes: "Missing required property 'x'."
std::string quoted_name(std::string_view description) {
    auto close = description.rfind('\'');
    if (close == std::string_view::npos || close == 0) return {};
    auto open = description.rfind('\'', close - 1);
    if (open == std::string_view::npos) return {};
    return std::string(description.substr(open + 1, close - open - 1));
}

std::string with_article(std::string_view type) {
    if (type == "integer" || type == "object" || type == "array") return "an " + std::string(type);
    if (type == "null") return "null";
    return "a " + std::string(type);
}

// The "type" the schema wants at `context`, following properties and items; "" when the
// schema is more involved than that.
std::string expected_type(const boost::json::value& schema,
                          const std::vector<std::string>& context) {
    const boost::json::value* at = &schema;
    for (const auto& part : context) {
        if (part == "<root>") continue;
        if (!at->is_object()) return {};
        const auto& obj = at->as_object();
        std::string_view name = part;
        if (name.starts_with('[') && name.ends_with(']')) name = name.substr(1, name.size() - 2);
        const boost::json::value* next = nullptr;
        if (auto* props = obj.if_contains("properties"); props && props->is_object())
            next = props->as_object().if_contains(name);
        if (!next) next = obj.if_contains("items");
        if (!next) return {};
        at = next;
    }
    if (!at->is_object()) return {};
    auto* type = at->as_object().if_contains("type");
    if (!type) return {};
    if (type->is_string()) return with_article(type->as_string());
    if (type->is_array()) {
        std::string list;
        for (const auto& t : type->as_array())
            if (t.is_string()) list += (list.empty() ? "" : ", ") + std::string(t.as_string());
        return "one of " + list;
    }
    return {};
}

http::response invalid(const compiled_schema& compiled,
                       const valijson::ValidationResults::Error& e) {
    std::string path = pointer_of(e.context);
    std::string_view d = e.description;
    std::string where = path.empty() ? "The body" : path;
    if (d.starts_with("Missing required property")) {
        std::string field = path + "/" + pointer_escape(quoted_name(d));
        return http::response::error(400, "invalid_argument", "Missing required field " + field,
                                     field);
    }
    if (d.starts_with("Object contains a property that could not be validated")) {
        std::string field = path + "/" + pointer_escape(quoted_name(d));
        return http::response::error(400, "invalid_argument", "Unknown field " + field, field);
    }
    if (d.starts_with("Value type not permitted")) {
        auto type = expected_type(compiled.document, e.context);
        if (!type.empty())
            return http::response::error(400, "invalid_argument", where + " must be " + type, path);
    }
    return http::response::error(400, "invalid_argument", where + ": " + std::string(d), path);
}

std::string json_error(const boost::system::error_code& ec, size_t offset, bool at_end) {
    if (ec == boost::json::error::too_deep)
        return "The request body is not valid JSON: nested deeper than " +
               std::to_string(max_depth) + " levels";
    std::string reason = ec.message();
    if (at_end) return "The request body is not valid JSON: " + reason + " at the end";
    return "The request body is not valid JSON: " + reason + " at byte " + std::to_string(offset);
}

}  // namespace

http::middleware validate_json(const http::router& routes) {
    auto schemas =
        std::make_shared<std::map<const http::route*, std::unique_ptr<compiled_schema>>>();
    for (const auto& r : routes.routes()) {
        if (r->request_schema.empty()) continue;
        std::string where = std::string(http::method_name(r->verb)) + " " + r->path;
        auto c = std::make_unique<compiled_schema>();
        boost::system::error_code ec;
        c->document = boost::json::parse(r->request_schema, ec);
        if (ec)
            throw std::logic_error("request schema of " + where + " is not JSON: " + ec.message());
        try {
            valijson::SchemaParser parser;
            valijson::adapters::BoostJsonAdapter adapter(c->document);
            parser.populateSchema(adapter, c->schema);
        } catch (const std::exception& e) {
            throw std::logic_error("request schema of " + where + " does not compile: " + e.what());
        }
        schemas->emplace(r.get(), std::move(c));
    }
    return [schemas](http::request& req, const http::next& call_next) {
        if (!req.matched) return call_next(req);
        auto it = schemas->find(req.matched);
        if (it == schemas->end()) return call_next(req);
        if (req.body.empty())
            return http::response::error(400, "invalid_json",
                                         "The request body is empty; this route takes JSON");
        boost::json::parse_options options;
        options.max_depth = max_depth;
        boost::json::stream_parser parser({}, options);
        boost::system::error_code ec;
        size_t used = parser.write(req.body.data(), req.body.size(), ec);
        bool at_end = false;
        if (!ec) {
            parser.finish(ec);
            at_end = true;
        }
        if (ec) return http::response::error(400, "invalid_json", json_error(ec, used, at_end));
        boost::json::value body = parser.release();

        valijson::Validator validator;
        valijson::ValidationResults results;
        valijson::adapters::BoostJsonAdapter target(body);
        if (validator.validate(it->second->schema, target, &results)) return call_next(req);
        valijson::ValidationResults::Error first;
        results.popError(first);
        return invalid(*it->second, first);
    };
}

}  // namespace clisonix::gateway
