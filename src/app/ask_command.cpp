// `clisonix ask "question"`: POST /api/v1/ask on a running server, the answer for a person.
#include <boost/json.hpp>

#include <algorithm>
#include <iostream>

#include "app/app.h"
#include "app/client.h"
#include "common/json_text.h"

namespace clisonix::app {

namespace {

namespace json = boost::json;

std::string cell_text(const json::value& v) {
    if (v.is_string()) return std::string(v.as_string());
    if (v.is_null()) return "-";
    if (v.is_double()) {
        std::string out;
        append_json_number(out, v.as_double());
        return out;
    }
    return json::serialize(v);
}

std::string member_text(const json::object& o, std::string_view key) {
    const auto* v = o.if_contains(key);
    if (!v || v->is_null()) return {};
    if (v->is_string()) return std::string(v->as_string());
    if (v->is_array()) {
        std::string out;
        for (const auto& item : v->as_array())
            out += (out.empty() ? "" : ", ") + cell_text(item);
        return out;
    }
    if (v->is_object()) {
        const auto& c = v->as_object();
        if (c.contains("op") && c.contains("value"))
            return cell_text(c.at("op")) + " " + cell_text(c.at("value"));
    }
    return cell_text(*v);
}

// The plan in one line per part, the parts that are set.
void print_plan(const json::object& plan, std::ostream& out) {
    out << "plan:\n";
    for (const char* key : {"kind", "devices", "device_type", "asset", "metric", "unit", "from",
                            "to", "time_text", "aggregate", "group_by", "asset_level", "filter",
                            "order", "limit", "threshold", "alarm_status", "source"}) {
        std::string v = member_text(plan, key);
        if (!v.empty()) out << "  " << key << ": " << v << "\n";
    }
}

// The rows as an aligned table.
void print_data(const json::object& data, std::ostream& out) {
    const auto* columns = data.if_contains("columns");
    const auto* rows = data.if_contains("rows");
    if (!columns || !rows || !columns->is_array() || !rows->is_array() || rows->as_array().empty())
        return;
    std::vector<std::vector<std::string>> cells;
    std::vector<std::string> header;
    for (const auto& c : columns->as_array())
        header.push_back(cell_text(c));
    cells.push_back(header);
    for (const auto& r : rows->as_array()) {
        std::vector<std::string> line;
        if (r.is_array())
            for (const auto& c : r.as_array())
                line.push_back(cell_text(c));
        cells.push_back(std::move(line));
    }
    std::vector<size_t> width(header.size(), 0);
    for (const auto& line : cells)
        for (size_t i = 0; i < line.size() && i < width.size(); ++i)
            width[i] = std::max(width[i], line[i].size());
    for (const auto& line : cells) {
        for (size_t i = 0; i < line.size(); ++i) {
            out << line[i];
            if (i + 1 < line.size()) out << std::string(width[i] - line[i].size() + 2, ' ');
        }
        out << "\n";
    }
}

}  // namespace

int run_ask(const ask_options& opt) {
    if (opt.question.find_first_not_of(" \t\r\n") == std::string::npos) {
        std::cerr << "ask: the question is empty\n";
        return exit_usage;
    }
    auto conn = client::connect(opt.url, opt.key);
    if (!conn) {
        std::cerr << "ask: " << conn.error().message << "\n";
        return conn.error().code == "invalid_argument" ? exit_usage : exit_failure;
    }
    json::object body{{"question", opt.question}};
    if (!opt.at.empty()) body["at"] = opt.at;
    auto r = (*conn)->request("POST", "/api/v1/ask", json::serialize(body), "application/json");
    if (!r) {
        std::cerr << "ask: " << r.error().message << "\n";
        return exit_failure;
    }
    if (r->status != 200) {
        std::cerr << "ask: " << error_message(*r) << "\n";
        return r->status == 400 ? exit_usage : exit_failure;
    }
    boost::system::error_code ec;
    auto doc = json::parse(r->body, ec);
    if (ec || !doc.is_object()) {
        std::cerr << "ask: the server's answer is not JSON: " << r->body.substr(0, 200) << "\n";
        return exit_failure;
    }
    const auto& o = doc.as_object();
    const bool understood =
        o.contains("understood") && o.at("understood").is_bool() && o.at("understood").as_bool();
    if (opt.json) {
        std::cout << r->body << (r->body.ends_with('\n') ? "" : "\n");
        return understood ? exit_ok : exit_failure;
    }
    if (!understood) {
        std::cout << "Not understood:\n";
        if (const auto* reasons = o.if_contains("not_understood"); reasons && reasons->is_array())
            for (const auto& reason : reasons->as_array())
                std::cout << "  - " << cell_text(reason) << "\n";
        if (const auto* s = o.if_contains("suggestions");
            s && s->is_array() && !s->as_array().empty()) {
            std::cout << "Try:\n";
            for (const auto& suggestion : s->as_array())
                std::cout << "  " << cell_text(suggestion) << "\n";
        }
        return exit_failure;
    }
    std::cout << member_text(o, "answer") << "\n\n";
    if (const auto* data = o.if_contains("data"); data && data->is_object()) {
        print_data(data->as_object(), std::cout);
        std::cout << "\n";
    }
    if (const auto* plan = o.if_contains("plan"); plan && plan->is_object())
        print_plan(plan->as_object(), std::cout);
    return exit_ok;
}

}  // namespace clisonix::app
