// Assets, relations and the graph queries: breadth-first, one query per level, so that a
// deep plant costs a handful of round trips and no query ever loads the whole graph.
#include <algorithm>
#include <array>
#include <cctype>
#include <set>
#include <tuple>
#include <unordered_map>

#include "devices/internal.h"

namespace clisonix::devices {

using namespace detail;
using meta::value;

namespace {

constexpr std::string_view contains = "contains";
// Levels followed at most: a bound on the work of one request, far beyond any real plant.
constexpr int max_levels = 1000;

constexpr std::string_view node_columns =
    "SELECT n.id, n.kind, n.name, COALESCE(a.type, d.type, '') FROM graph_nodes n LEFT JOIN "
    "assets a ON a.id = n.id LEFT JOIN devices d ON d.id = n.id";

node node_from_row(const std::vector<value>& row, size_t at = 0) {
    node n;
    n.id = as_int(row[at]);
    n.kind = as_text(row[at + 1]);
    n.name = as_text(row[at + 2]);
    n.type = as_text(row[at + 3]);
    return n;
}

std::string placeholders(size_t first, size_t count) {
    std::string out;
    for (size_t i = 0; i < count; ++i)
        out += (i ? ", $" : "$") + std::to_string(first + i);
    return out;
}

constexpr std::string_view asset_columns =
    "SELECT id, name, type, label, description, created_at, updated_at FROM assets";

asset asset_from_row(const std::vector<value>& row) {
    return asset{as_int(row[0]),  as_text(row[1]), as_text(row[2]), as_text(row[3]),
                 as_text(row[4]), as_int(row[5]),  as_int(row[6])};
}

status check_asset(const new_asset& a) {
    if (auto ok = check_name(a.name, "name"); !ok) return ok;
    if (auto ok = check_text(a.type, "type", 64, true); !ok) return ok;
    if (auto ok = check_text(a.label, "label", 256, false); !ok) return ok;
    if (auto ok = check_text(a.description, "description", 1024, false); !ok) return ok;
    return {};
}

status check_relation_type(std::string_view type) {
    if (type.empty() || type.size() > 64)
        return make_error("invalid_argument", "type: 1 to 64 characters", "type");
    for (unsigned char c : type)
        if (!std::isalnum(c) && c != '_' && c != '-' && c != '.')
            return make_error(
                "invalid_argument",
                "type: \"" + std::string(type) + "\" may hold only letters, digits and _ - .",
                "type");
    return {};
}

struct edge_row {
    int64_t id;
    int64_t from;
    int64_t to;
    std::string type;
    int64_t created_at;
};

}  // namespace

// ---- nodes ------------------------------------------------------------------------------

static result<node> resolve_in(meta::store& s, std::string_view ref, std::string_view field) {
    auto id = as_id(ref);
    auto r = id ? s.query(std::string(node_columns) + " WHERE n.id = $1", std::array<value, 1>{*id})
                : s.query(std::string(node_columns) + " WHERE n.name = $1",
                          std::array<value, 1>{std::string(ref)});
    if (!r) return r.error();
    if (r->data.empty())
        return make_error("not_found",
                          std::string(field) + ": no asset or device " + std::string(ref),
                          std::string(field));
    return node_from_row(r->data[0]);
}

result<node> registry::resolve(std::string_view ref) {
    return resolve_in(_impl->store, ref, "node");
}

// ---- assets -----------------------------------------------------------------------------

result<asset> registry::create_asset(const new_asset& a) {
    if (auto ok = check_asset(a); !ok) return ok.error();
    asset out{0, a.name, a.type, a.label, a.description, now_ms(), 0};
    out.updated_at = out.created_at;
    auto st = _impl->store.transaction([&](meta::store& tx) -> status {
        auto n = tx.query("INSERT INTO graph_nodes (kind, name) VALUES ('asset', $1) RETURNING id",
                          std::array<value, 1>{a.name});
        if (!n) {
            if (n.error().code == "conflict")
                return make_error("conflict",
                                  "A device or asset named \"" + a.name + "\" already exists",
                                  "name");
            return n.error();
        }
        out.id = as_int(n->data.at(0).at(0));
        auto ins = tx.execute(
            "INSERT INTO assets (id, name, type, label, description, created_at, updated_at) "
            "VALUES ($1, $2, $3, $4, $5, $6, $6)",
            std::array<value, 6>{out.id, a.name, a.type, a.label, a.description, out.created_at});
        if (!ins) return ins.error();
        return {};
    });
    if (!st) return st.error();
    return out;
}

result<std::vector<asset>> registry::list_assets(std::string_view type_filter) {
    auto r = type_filter.empty()
                 ? _impl->store.query(std::string(asset_columns) + " ORDER BY name")
                 : _impl->store.query(std::string(asset_columns) + " WHERE type = $1 ORDER BY name",
                                      std::array<value, 1>{std::string(type_filter)});
    if (!r) return r.error();
    std::vector<asset> out;
    for (const auto& row : r->data)
        out.push_back(asset_from_row(row));
    return out;
}

result<asset> registry::get_asset(std::string_view ref) {
    auto id = as_id(ref);
    auto r = id ? _impl->store.query(std::string(asset_columns) + " WHERE id = $1",
                                     std::array<value, 1>{*id})
                : _impl->store.query(std::string(asset_columns) + " WHERE name = $1",
                                     std::array<value, 1>{std::string(ref)});
    if (!r) return r.error();
    if (r->data.empty()) return make_error("not_found", "No asset " + std::string(ref), "asset");
    return asset_from_row(r->data[0]);
}

result<asset> registry::update_asset(std::string_view ref, const asset_update& change) {
    auto a = get_asset(ref);
    if (!a) return a;
    new_asset check{a->name, change.type.value_or(a->type), change.label.value_or(a->label),
                    change.description.value_or(a->description)};
    if (auto ok = check_asset(check); !ok) return ok.error();
    const int64_t now = now_ms();
    auto r = _impl->store.execute(
        "UPDATE assets SET type = $2, label = $3, description = $4, updated_at = $5 WHERE id = $1",
        std::array<value, 5>{a->id, check.type, check.label, check.description, now});
    if (!r) return r.error();
    a->type = check.type;
    a->label = check.label;
    a->description = check.description;
    a->updated_at = now;
    return a;
}

status registry::delete_asset(std::string_view ref) {
    auto a = get_asset(ref);
    if (!a) return a.error();
    // graph_nodes cascades to the asset row and to every relation touching it.
    auto r = _impl->store.execute("DELETE FROM graph_nodes WHERE id = $1 AND kind = 'asset'",
                                  std::array<value, 1>{a->id});
    if (!r) return r.error();
    _impl->invalidate();  // its relations went with it
    return {};
}

// ---- relations --------------------------------------------------------------------------

namespace {

// Breadth-first over `contains` from `start` downwards, in `tx`; the chain of ids from
// start to `target` when it is reached, else empty.
result<std::vector<int64_t>> contains_chain(meta::store& tx, int64_t start, int64_t target) {
    std::unordered_map<int64_t, int64_t> parent{{start, start}};
    std::vector<int64_t> frontier{start};
    for (int level = 0; level < max_levels && !frontier.empty(); ++level) {
        std::vector<value> params{std::string(contains)};
        for (auto id : frontier)
            params.emplace_back(id);
        auto r = tx.query("SELECT from_id, to_id FROM relations WHERE type = $1 AND from_id IN (" +
                              placeholders(2, frontier.size()) + ")",
                          params);
        if (!r) return r.error();
        std::vector<int64_t> next;
        for (const auto& row : r->data) {
            int64_t from = as_int(row[0]), to = as_int(row[1]);
            if (parent.contains(to)) continue;
            parent[to] = from;
            if (to == target) {
                std::vector<int64_t> chain{to};
                while (chain.back() != start)
                    chain.push_back(parent[chain.back()]);
                std::reverse(chain.begin(), chain.end());
                return chain;
            }
            next.push_back(to);
        }
        frontier = std::move(next);
    }
    return std::vector<int64_t>{};
}

std::string name_of(meta::store& tx, int64_t id) {
    auto r = tx.query("SELECT name FROM graph_nodes WHERE id = $1", std::array<value, 1>{id});
    if (!r || r->data.empty()) return std::to_string(id);
    return as_text(r->data[0][0]);
}

constexpr std::string_view relation_columns =
    "SELECT r.id, r.type, r.created_at, f.id, f.kind, f.name, COALESCE(fa.type, fd.type, ''), "
    "t.id, t.kind, t.name, COALESCE(ta.type, td.type, '') FROM relations r "
    "JOIN graph_nodes f ON f.id = r.from_id LEFT JOIN assets fa ON fa.id = f.id "
    "LEFT JOIN devices fd ON fd.id = f.id JOIN graph_nodes t ON t.id = r.to_id "
    "LEFT JOIN assets ta ON ta.id = t.id LEFT JOIN devices td ON td.id = t.id";

relation relation_from_row(const std::vector<value>& row) {
    relation r;
    r.id = as_int(row[0]);
    r.type = as_text(row[1]);
    r.created_at = as_int(row[2]);
    r.from = node_from_row(row, 3);
    r.to = node_from_row(row, 7);
    return r;
}

}  // namespace

result<relation> registry::add_relation(std::string_view from, std::string_view to,
                                        std::string_view type) {
    if (auto ok = check_relation_type(type); !ok) return ok.error();
    relation out;
    auto st = _impl->store.transaction([&](meta::store& tx) -> status {
        // One relation writer at a time across processes, so that two inserts cannot each
        // pass the cycle check and together close a cycle. (SQLite: BEGIN IMMEDIATE did it.)
        if (tx.backend() == "postgres") {
            auto lock = tx.query("SELECT pg_advisory_xact_lock(74210009)");
            if (!lock) return lock.error();
        }
        auto f = resolve_in(tx, from, "from");
        if (!f) return f.error();
        auto t = resolve_in(tx, to, "to");
        if (!t) return t.error();
        if (f->id == t->id)
            return make_error("invalid_argument",
                              "to: a relation joins two different nodes; both are " + f->name,
                              "to");
        if (type == contains) {
            auto chain = contains_chain(tx, t->id, f->id);
            if (!chain) return chain.error();
            if (!chain->empty()) {
                std::string cycle = f->name;
                for (auto id : *chain)
                    cycle += " -> " + name_of(tx, id);
                return make_error("conflict",
                                  "\"" + f->name + "\" contains \"" + t->name +
                                      "\" would close a contains cycle: " + cycle,
                                  "to");
            }
        }
        const int64_t now = now_ms();
        auto r = tx.query(
            "INSERT INTO relations (from_kind, from_id, to_kind, to_id, type, created_at) VALUES "
            "($1, $2, $3, $4, $5, $6) RETURNING id",
            std::array<value, 6>{f->kind, f->id, t->kind, t->id, std::string(type), now});
        if (!r) {
            if (r.error().code == "conflict")
                return make_error("conflict",
                                  "The relation " + f->name + " " + std::string(type) + " " +
                                      t->name + " already exists",
                                  "to");
            return r.error();
        }
        out = relation{as_int(r->data.at(0).at(0)), *f, *t, std::string(type), now};
        return {};
    });
    if (!st) return st.error();
    _impl->invalidate();
    return out;
}

result<std::vector<relation>> registry::list_relations(const relation_filter& filter) {
    std::string where;
    std::vector<value> params;
    for (auto [ref, column, field] :
         {std::tuple{filter.from, "r.from_id", "from"}, std::tuple{filter.to, "r.to_id", "to"}}) {
        if (ref.empty()) continue;
        auto n = resolve_in(_impl->store, ref, field);
        if (!n) return n.error();
        params.emplace_back(n->id);
        where += std::string(where.empty() ? " WHERE " : " AND ") + column + " = $" +
                 std::to_string(params.size());
    }
    if (!filter.type.empty()) {
        params.emplace_back(filter.type);
        where += std::string(where.empty() ? " WHERE " : " AND ") + "r.type = $" +
                 std::to_string(params.size());
    }
    auto r = _impl->store.query(std::string(relation_columns) + where + " ORDER BY r.id", params);
    if (!r) return r.error();
    std::vector<relation> out;
    for (const auto& row : r->data)
        out.push_back(relation_from_row(row));
    return out;
}

status registry::delete_relation(int64_t id) {
    auto r = _impl->store.execute("DELETE FROM relations WHERE id = $1", std::array<value, 1>{id});
    if (!r) return r.error();
    if (*r == 0) return make_error("not_found", "No relation " + std::to_string(id), "id");
    _impl->invalidate();
    return {};
}

// ---- graph queries ----------------------------------------------------------------------

result<std::vector<node>> registry::children(std::string_view ref, std::string_view type) {
    auto n = resolve(ref);
    if (!n) return n.error();
    std::string sql =
        std::string(node_columns) + " JOIN relations r ON r.to_id = n.id WHERE r.from_id = $1";
    std::vector<value> params{n->id};
    if (type != "*") {
        sql += " AND r.type = $2";
        params.emplace_back(std::string(type));
    }
    auto r = _impl->store.query(sql + " ORDER BY n.name", params);
    if (!r) return r.error();
    std::vector<node> out;
    std::set<int64_t> seen;
    for (const auto& row : r->data) {
        auto c = node_from_row(row);
        c.depth = 1;
        if (seen.insert(c.id).second) out.push_back(std::move(c));
    }
    return out;
}

namespace {

// Breadth-first over `contains`: downwards (children) or upwards (parents) from `start`,
// to `depth` levels (-1: all). Each node once, at its smallest depth; by depth, then name.
result<std::vector<node>> walk(meta::store& s, const node& start, int depth, bool down) {
    std::vector<node> out{start};
    std::set<int64_t> seen{start.id};
    std::vector<int64_t> frontier{start.id};
    const char* join = down ? " JOIN relations r ON r.to_id = n.id WHERE r.type = $1 AND "
                              "r.from_id IN ("
                            : " JOIN relations r ON r.from_id = n.id WHERE r.type = $1 AND "
                              "r.to_id IN (";
    for (int level = 1; !frontier.empty() && level <= max_levels && (depth < 0 || level <= depth);
         ++level) {
        std::vector<value> params{std::string(contains)};
        for (auto id : frontier)
            params.emplace_back(id);
        auto r = s.query(std::string(node_columns) + join + placeholders(2, frontier.size()) +
                             ") ORDER BY n.name",
                         params);
        if (!r) return r.error();
        frontier.clear();
        for (const auto& row : r->data) {
            auto n = node_from_row(row);
            if (!seen.insert(n.id).second) continue;
            n.depth = level;
            frontier.push_back(n.id);
            out.push_back(std::move(n));
        }
    }
    return out;
}

}  // namespace

result<std::vector<node>> registry::ancestor_nodes(std::string_view ref) {
    auto n = resolve(ref);
    if (!n) return n.error();
    auto all = walk(_impl->store, *n, -1, false);
    if (!all) return all;
    all->erase(all->begin());
    return all;
}

result<std::vector<node>> registry::subtree(std::string_view ref, int depth) {
    auto n = resolve(ref);
    if (!n) return n.error();
    return walk(_impl->store, *n, depth, true);
}

result<std::vector<std::string>> registry::devices_under(std::string_view asset, int depth) {
    auto n = resolve_in(_impl->store, asset, "asset");
    if (!n) return n.error();
    auto all = walk(_impl->store, *n, depth, true);
    if (!all) return all.error();
    std::vector<std::string> names;
    for (const auto& x : *all)
        if (x.kind == "device") names.push_back(x.name);
    std::sort(names.begin(), names.end());
    return names;
}

result<std::vector<std::string>> registry::ancestors(std::string_view ref) {
    auto all = ancestor_nodes(ref);
    if (!all) return all.error();
    std::vector<std::string> names;
    for (const auto& x : *all)
        if (x.kind == "asset") names.push_back(x.name);
    return names;
}

result<path> registry::shortest_path(std::string_view from, std::string_view to, bool directed) {
    auto f = resolve_in(_impl->store, from, "from");
    if (!f) return f.error();
    auto t = resolve_in(_impl->store, to, "to");
    if (!t) return t.error();
    // node id -> (previous node id, the edge between them)
    std::unordered_map<int64_t, std::pair<int64_t, edge_row>> parent;
    parent.emplace(f->id, std::pair{f->id, edge_row{}});
    std::vector<int64_t> frontier{f->id};
    bool found = f->id == t->id;
    for (int level = 0; !found && !frontier.empty() && level < max_levels; ++level) {
        std::vector<value> params;
        for (auto id : frontier)
            params.emplace_back(id);
        std::string in = placeholders(1, frontier.size());
        std::string sql =
            "SELECT id, from_id, to_id, type, created_at FROM relations WHERE from_id IN (" + in +
            ")";
        if (!directed) sql += " OR to_id IN (" + in + ")";
        auto r = _impl->store.query(sql + " ORDER BY id", params);
        if (!r) return r.error();
        std::set<int64_t> in_frontier(frontier.begin(), frontier.end());
        std::vector<int64_t> next;
        for (const auto& row : r->data) {
            edge_row e{as_int(row[0]), as_int(row[1]), as_int(row[2]), as_text(row[3]),
                       as_int(row[4])};
            // Each edge may lead outwards from either end that is in the frontier.
            for (int side = 0; side < 2; ++side) {
                int64_t here = side == 0 ? e.from : e.to;
                int64_t there = side == 0 ? e.to : e.from;
                if (side == 1 && directed) break;
                if (!in_frontier.contains(here) || parent.contains(there)) continue;
                parent.emplace(there, std::pair{here, e});
                next.push_back(there);
                if (there == t->id) found = true;
            }
        }
        frontier = std::move(next);
    }
    if (!found)
        return make_error("not_found",
                          "No path from " + f->name + " to " + t->name +
                              (directed ? " following relation directions" : ""),
                          "to");
    std::vector<int64_t> ids{t->id};
    std::vector<edge_row> edges;
    while (ids.back() != f->id) {
        const auto& [prev, e] = parent.at(ids.back());
        edges.push_back(e);
        ids.push_back(prev);
    }
    std::reverse(ids.begin(), ids.end());
    std::reverse(edges.begin(), edges.end());
    path out;
    std::unordered_map<int64_t, node> nodes;
    for (size_t i = 0; i < ids.size(); ++i) {
        auto n = resolve_in(_impl->store, std::to_string(ids[i]), "node");
        if (!n) return n.error();
        n->depth = static_cast<int>(i);
        nodes[ids[i]] = *n;
        out.nodes.push_back(*n);
    }
    for (const auto& e : edges)
        out.edges.push_back(relation{e.id, nodes.at(e.from), nodes.at(e.to), e.type, e.created_at});
    return out;
}

}  // namespace clisonix::devices
