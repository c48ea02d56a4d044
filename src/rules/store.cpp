// Rules, alarms and comments in the metadata store (migrations 10-12), and their JSON.
#include <array>
#include <boost/json.hpp>

#include "rules/internal.h"
#include "rules/language.h"

namespace clisonix::rules {

namespace detail {

namespace {

std::string_view scope_name(scope_kind k) {
    switch (k) {
        case scope_kind::device:
            return "device";
        case scope_kind::device_type:
            return "device_type";
        case scope_kind::asset:
            return "asset";
    }
    return "device";
}

scope_kind scope_from(std::string_view s) {
    if (s == "device_type") return scope_kind::device_type;
    if (s == "asset") return scope_kind::asset;
    return scope_kind::device;
}

std::string notify_text(const std::vector<std::string>& names) {
    std::string out = "[";
    for (size_t i = 0; i < names.size(); ++i) {
        if (i) out += ",";
        append_json_string(out, names[i]);
    }
    return out + "]";
}

std::vector<std::string> notify_from(const std::string& text) {
    std::vector<std::string> out;
    boost::system::error_code ec;
    auto v = boost::json::parse(text, ec);
    if (ec || !v.is_array()) return out;
    for (const auto& e : v.as_array())
        if (e.is_string()) out.emplace_back(e.as_string());
    return out;
}

constexpr std::string_view rule_columns =
    "id, name, scope_kind, scope_value, severity, condition_text, clear_text, clear_after, "
    "notify, enabled, created_at, updated_at";

rule rule_from_row(const std::vector<meta::value>& row) {
    rule r;
    r.id = as_int(row[0]);
    r.name = as_text(row[1]);
    r.scope = scope_from(as_text(row[2]));
    r.scope_value = as_text(row[3]);
    r.severity = as_text(row[4]);
    r.condition = as_text(row[5]);
    r.clear = as_text(row[6]);
    r.clear_after = as_text(row[7]);
    r.notify = notify_from(as_text(row[8]));
    r.enabled = as_int(row[9]) != 0;
    r.created_at = as_int(row[10]);
    r.updated_at = as_int(row[11]);
    return r;
}

constexpr std::string_view alarm_columns =
    "id, rule_id, rule_name, device, severity, status, repeat_count, first_at, last_at, "
    "last_value, message, created_at, updated_at, acked_by, acked_at, cleared_by, cleared_at, "
    "details";

alarm alarm_from_row(const std::vector<meta::value>& row) {
    alarm a;
    a.id = as_int(row[0]);
    a.rule_id = as_int(row[1]);
    a.rule_name = as_text(row[2]);
    a.device = as_text(row[3]);
    a.severity = as_text(row[4]);
    a.status = as_text(row[5]);
    a.count = as_int(row[6]);
    a.first_at = as_int(row[7]);
    a.last_at = as_int(row[8]);
    a.value = as_double(row[9]);
    a.message = as_text(row[10]);
    a.created_at = as_int(row[11]);
    a.updated_at = as_int(row[12]);
    a.details = as_text(row[17]);
    a.acked_by = as_text(row[13]);
    a.acked_at = as_int(row[14]);
    a.cleared_by = as_text(row[15]);
    a.cleared_at = as_int(row[16]);
    return a;
}

status db_error(const result<int64_t>& r) {
    if (r) return {};
    return r.error();
}

}  // namespace

result<std::vector<rule>> load_rules(meta::store& store) {
    auto r = store.query("SELECT " + std::string(rule_columns) + " FROM rules ORDER BY id");
    if (!r) return r.error();
    std::vector<rule> out;
    for (const auto& row : r->data)
        out.push_back(rule_from_row(row));
    return out;
}

result<int64_t> insert_rule(meta::store& store, const rule& r) {
    auto res = store.query(
        "INSERT INTO rules (name, scope_kind, scope_value, severity, condition_text, clear_text, "
        "clear_after, notify, enabled, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, "
        "$7, $8, $9, $10, $11) RETURNING id",
        std::array<meta::value, 11>{r.name, std::string(scope_name(r.scope)), r.scope_value,
                                    r.severity, r.condition, r.clear, r.clear_after,
                                    notify_text(r.notify), int64_t{r.enabled ? 1 : 0}, r.created_at,
                                    r.updated_at});
    if (!res) {
        if (res.error().code == "conflict")
            return make_error("conflict", "a rule named \"" + r.name + "\" exists", "name");
        return res.error();
    }
    if (res->data.empty()) return make_error("internal", "no rule id returned");
    return as_int(res->data[0][0]);
}

status update_rule(meta::store& store, const rule& r) {
    auto res = store.execute(
        "UPDATE rules SET name = $1, scope_kind = $2, scope_value = $3, severity = $4, "
        "condition_text = $5, clear_text = $6, clear_after = $7, notify = $8, enabled = $9, "
        "updated_at = $10 WHERE id = $11",
        std::array<meta::value, 11>{r.name, std::string(scope_name(r.scope)), r.scope_value,
                                    r.severity, r.condition, r.clear, r.clear_after,
                                    notify_text(r.notify), int64_t{r.enabled ? 1 : 0}, r.updated_at,
                                    r.id});
    if (!res) {
        if (res.error().code == "conflict")
            return make_error("conflict", "a rule named \"" + r.name + "\" exists", "name");
        return res.error();
    }
    if (*res == 0) return make_error("not_found", "no rule with id " + std::to_string(r.id));
    return {};
}

status delete_rule(meta::store& store, int64_t id) {
    return db_error(
        store.execute("DELETE FROM rules WHERE id = $1", std::array<meta::value, 1>{id}));
}

result<std::vector<alarm>> load_open_alarms(meta::store& store) {
    auto r = store.query("SELECT " + std::string(alarm_columns) +
                         " FROM alarms WHERE is_open = 1 ORDER BY id");
    if (!r) return r.error();
    std::vector<alarm> out;
    for (const auto& row : r->data)
        out.push_back(alarm_from_row(row));
    return out;
}

result<alarm> load_alarm(meta::store& store, int64_t id) {
    auto r = store.query("SELECT " + std::string(alarm_columns) + " FROM alarms WHERE id = $1",
                         std::array<meta::value, 1>{id});
    if (!r) return r.error();
    if (r->data.empty()) return make_error("not_found", "no alarm with id " + std::to_string(id));
    return alarm_from_row(r->data[0]);
}

result<std::vector<comment>> load_comments(meta::store& store, int64_t alarm_id) {
    auto r = store.query(
        "SELECT id, at, author, body FROM alarm_comments WHERE alarm_id = $1 ORDER BY id",
        std::array<meta::value, 1>{alarm_id});
    if (!r) return r.error();
    std::vector<comment> out;
    for (const auto& row : r->data)
        out.push_back({as_int(row[0]), as_int(row[1]), as_text(row[2]), as_text(row[3])});
    return out;
}

result<comment> insert_comment(meta::store& store, int64_t alarm_id, std::string_view author,
                               std::string_view text, int64_t at) {
    auto r = store.query(
        "INSERT INTO alarm_comments (alarm_id, at, author, body) VALUES ($1, $2, $3, $4) "
        "RETURNING id",
        std::array<meta::value, 4>{alarm_id, at, std::string(author), std::string(text)});
    if (!r) return r.error();
    if (r->data.empty()) return make_error("internal", "no comment id returned");
    return comment{as_int(r->data[0][0]), at, std::string(author), std::string(text)};
}

result<alarm_page> query_alarms(meta::store& store, const alarm_filter& f,
                                const std::vector<std::string>* devices) {
    alarm_page page;
    if (devices && devices->empty()) return page;
    std::string where = " WHERE 1 = 1";
    std::vector<meta::value> params;
    auto param = [&](meta::value v) {
        params.push_back(std::move(v));
        return "$" + std::to_string(params.size());
    };
    if (f.status == "open")
        where += " AND is_open = 1";
    else if (!f.status.empty())
        where += " AND status = " + param(f.status);
    if (!f.severity.empty()) where += " AND severity = " + param(f.severity);
    if (!f.device.empty()) where += " AND device = " + param(f.device);
    if (devices) {
        where += " AND device IN (";
        for (size_t i = 0; i < devices->size(); ++i)
            where += (i ? ", " : "") + param((*devices)[i]);
        where += ")";
    }
    // An open alarm is still going on: it meets any `from`.
    if (f.from) where += " AND (last_at >= " + param(f.from) + " OR is_open = 1)";
    if (f.to) where += " AND first_at < " + param(f.to);
    auto total = store.query("SELECT COUNT(*) FROM alarms" + where, params);
    if (!total) return total.error();
    page.total = total->data.empty() ? 0 : as_int(total->data[0][0]);
    std::string sql = "SELECT " + std::string(alarm_columns) + " FROM alarms" + where +
                      " ORDER BY id DESC LIMIT " + param(f.limit) + " OFFSET " + param(f.offset);
    auto r = store.query(sql, params);
    if (!r) return r.error();
    for (const auto& row : r->data)
        page.alarms.push_back(alarm_from_row(row));
    return page;
}

}  // namespace detail

std::string rule_json(const rule& r) {
    using detail::append_json_string;
    std::string out = "{\"id\":" + std::to_string(r.id) + ",\"name\":";
    append_json_string(out, r.name);
    out += ",\"scope\":{\"" + std::string(detail::scope_name(r.scope)) + "\":";
    append_json_string(out, r.scope_value);
    out += "},\"severity\":";
    append_json_string(out, r.severity);
    out += ",\"condition\":";
    append_json_string(out, r.condition);
    if (!r.clear.empty()) {
        out += ",\"clear\":";
        append_json_string(out, r.clear);
    }
    if (!r.clear_after.empty()) {
        out += ",\"clear_after\":";
        append_json_string(out, r.clear_after);
    }
    out += ",\"notify\":" + detail::notify_text(r.notify);
    out += std::string(",\"enabled\":") + (r.enabled ? "true" : "false");
    out += ",\"created_at\":" + std::to_string(r.created_at) +
           ",\"updated_at\":" + std::to_string(r.updated_at) + "}";
    return out;
}

std::string alarm_json(const alarm& a) {
    using detail::append_json_string;
    std::string out = "{\"id\":" + std::to_string(a.id) + ",\"rule\":";
    append_json_string(out, a.rule_name);
    out += ",\"rule_id\":" + std::to_string(a.rule_id) + ",\"device\":";
    append_json_string(out, a.device);
    out += ",\"severity\":";
    append_json_string(out, a.severity);
    out += ",\"status\":";
    append_json_string(out, a.status);
    out += ",\"count\":" + std::to_string(a.count) + ",\"first_at\":" + std::to_string(a.first_at) +
           ",\"last_at\":" + std::to_string(a.last_at) +
           ",\"value\":" + detail::format_number(a.value) + ",\"message\":";
    append_json_string(out, a.message);
    // Already JSON (written by the engine only): an object of what the rule's kind adds.
    if (!a.details.empty()) out += ",\"details\":" + a.details;
    out += ",\"created_at\":" + std::to_string(a.created_at) +
           ",\"updated_at\":" + std::to_string(a.updated_at);
    auto who = [&](std::string_view name, const std::string& by, int64_t at) {
        out += ",\"" + std::string(name) + "_by\":";
        if (by.empty())
            out += "null";
        else
            append_json_string(out, by);
        out += ",\"" + std::string(name) + "_at\":" + (at ? std::to_string(at) : "null");
    };
    who("acked", a.acked_by, a.acked_at);
    who("cleared", a.cleared_by, a.cleared_at);
    if (!a.comments.empty()) {
        out += ",\"comments\":[";
        for (size_t i = 0; i < a.comments.size(); ++i) {
            const auto& c = a.comments[i];
            out += (i ? ",{\"id\":" : "{\"id\":") + std::to_string(c.id) +
                   ",\"at\":" + std::to_string(c.at) + ",\"author\":";
            append_json_string(out, c.author);
            out += ",\"text\":";
            append_json_string(out, c.text);
            out += "}";
        }
        out += "]";
    }
    return out + "}";
}

result<rule> rule_from_json(std::string_view json) {
    boost::system::error_code ec;
    auto doc = boost::json::parse(json, ec);
    if (ec || !doc.is_object())
        return make_error("invalid_argument", "the body must be a JSON object", "body");
    const auto& o = doc.as_object();
    rule r;
    auto text = [&](std::string_view key, std::string& out, bool required) -> status {
        auto* v = o.if_contains(key);
        if (!v) {
            if (required)
                return make_error("invalid_argument", std::string(key) + " is required",
                                  std::string(key));
            return {};
        }
        if (!v->is_string())
            return make_error("invalid_argument", std::string(key) + " must be a string",
                              std::string(key));
        out = std::string(v->as_string());
        return {};
    };
    for (const auto& [k, v] : o) {
        static constexpr std::string_view known[] = {
            "name",   "scope",   "severity", "condition",  "clear",     "clear_after",
            "notify", "enabled", "id",       "created_at", "updated_at"};
        if (std::find(std::begin(known), std::end(known), std::string_view(k)) == std::end(known))
            return make_error("invalid_argument", "unknown member " + std::string(k),
                              std::string(k));
    }
    if (auto st = text("name", r.name, true); !st) return st.error();
    auto* scope = o.if_contains("scope");
    if (!scope) return make_error("invalid_argument", "scope is required", "scope");
    if (!scope->is_object() || scope->as_object().size() != 1)
        return make_error("invalid_argument",
                          "scope must be one of {\"device\":...}, {\"device_type\":...}, "
                          "{\"asset\":...}",
                          "scope");
    const auto& [sk, sv] = *scope->as_object().begin();
    if (sk != "device" && sk != "device_type" && sk != "asset")
        return make_error("invalid_argument", "scope must be one of device, device_type, asset",
                          "scope");
    if (!sv.is_string() || sv.as_string().empty())
        return make_error("invalid_argument", "scope." + std::string(sk) + " must be a name",
                          "scope." + std::string(sk));
    r.scope = detail::scope_from(sk);
    r.scope_value = std::string(sv.as_string());
    if (auto st = text("severity", r.severity, true); !st) return st.error();
    if (auto st = text("condition", r.condition, true); !st) return st.error();
    if (auto st = text("clear", r.clear, false); !st) return st.error();
    if (auto st = text("clear_after", r.clear_after, false); !st) return st.error();
    if (auto* n = o.if_contains("notify")) {
        if (!n->is_array())
            return make_error("invalid_argument", "notify must be an array of channel names",
                              "notify");
        for (size_t i = 0; i < n->as_array().size(); ++i) {
            const auto& e = n->as_array()[i];
            if (!e.is_string() || e.as_string().empty())
                return make_error("invalid_argument", "notify entries must be channel names",
                                  "notify[" + std::to_string(i) + "]");
            r.notify.emplace_back(e.as_string());
        }
    }
    if (auto* e = o.if_contains("enabled")) {
        if (!e->is_bool())
            return make_error("invalid_argument", "enabled must be true or false", "enabled");
        r.enabled = e->as_bool();
    }
    return r;
}

}  // namespace clisonix::rules
