// The registry: device types, devices, attributes and online status, on the metadata store
// with an in-memory mirror for the telemetry hot path.
#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <unordered_set>

#include "analytics/analytics.h"
#include "common/time.h"
#include "devices/internal.h"
#include "observe/observe.h"

namespace clisonix::devices {

namespace json = boost::json;
using meta::value;

namespace detail {

status check_name(std::string_view name, std::string_view field) {
    const std::string f(field);
    if (name.empty()) return make_error("invalid_argument", f + ": required", f);
    if (name.size() > 64) return make_error("invalid_argument", f + ": at most 64 characters", f);
    bool digits_only = true;
    for (size_t i = 0; i < name.size(); ++i) {
        unsigned char c = static_cast<unsigned char>(name[i]);
        bool alnum = std::isalnum(c) != 0;
        if (!std::isdigit(c)) digits_only = false;
        if (alnum || (i > 0 && (c == '.' || c == '_' || c == '@' || c == '-'))) continue;
        return make_error("invalid_argument",
                          f + ": \"" + std::string(name) +
                              "\" may hold only letters, digits and . _ @ - (not first)",
                          f);
    }
    if (digits_only)
        return make_error(
            "invalid_argument",
            f + ": \"" + std::string(name) + "\" is all digits, which reads as an id; add a letter",
            f);
    return {};
}

status check_text(std::string_view text, std::string_view field, size_t max, bool required) {
    const std::string f(field);
    if (required && text.empty()) return make_error("invalid_argument", f + ": required", f);
    if (text.size() > max)
        return make_error("invalid_argument", f + ": at most " + std::to_string(max) + " bytes", f);
    for (unsigned char c : text)
        if (c < 0x20 || c == 0x7f)
            return make_error("invalid_argument", f + ": control characters are not allowed", f);
    return {};
}

std::optional<int64_t> as_id(std::string_view ref) {
    if (ref.empty() || ref.size() > 18) return std::nullopt;
    int64_t n = 0;
    for (char c : ref) {
        if (c < '0' || c > '9') return std::nullopt;
        n = n * 10 + (c - '0');
    }
    return n;
}

std::string metrics_to_json(const std::map<std::string, metric_spec>& metrics) {
    json::object o;
    for (const auto& [name, m] : metrics) {
        json::object spec{{"unit", m.unit}};
        if (m.min) spec["min"] = *m.min;
        if (m.max) spec["max"] = *m.max;
        o[name] = std::move(spec);
    }
    return json::serialize(o);
}

result<std::map<std::string, metric_spec>> metrics_from_json(const json::value& v,
                                                             std::string_view field) {
    const std::string f(field);
    if (!v.is_object()) return make_error("invalid_argument", f + ": must be an object", f);
    std::map<std::string, metric_spec> out;
    for (const auto& [key, spec] : v.as_object()) {
        const std::string name(key);
        const std::string at = f + "/" + name;
        if (auto ok = check_text(name, at, 256, true); !ok) return ok.error();
        if (!spec.is_object())
            return make_error("invalid_argument", at + ": must be an object", at);
        metric_spec m;
        for (const auto& [k, val] : spec.as_object()) {
            if (k == "unit") {
                if (!val.is_string())
                    return make_error("invalid_argument", at + "/unit: must be a string",
                                      at + "/unit");
                m.unit = std::string(val.as_string());
                if (auto ok = check_text(m.unit, at + "/unit", 64, false); !ok) return ok.error();
            } else if (k == "min" || k == "max") {
                if (!val.is_number())
                    return make_error("invalid_argument",
                                      at + "/" + std::string(k) + ": must be a number",
                                      at + "/" + std::string(k));
                (k == "min" ? m.min : m.max) = val.to_number<double>();
            } else {
                return make_error(
                    "invalid_argument",
                    at + ": unknown field \"" + std::string(k) + "\" (unit, min, max)",
                    at + "/" + std::string(k));
            }
        }
        if (m.min && m.max && *m.min > *m.max)
            return make_error("invalid_argument", at + ": min is greater than max", at);
        out.emplace(name, std::move(m));
    }
    return out;
}

std::string analytics_to_json(const type_analytics& a) {
    json::object o;
    if (a.detector) o["detector"] = *a.detector;
    if (a.metrics) {
        json::array globs;
        for (const auto& g : *a.metrics)
            globs.push_back(json::value(g));
        o["metrics"] = std::move(globs);
    }
    if (a.health) o["health"] = *a.health;
    if (a.health_baseline_ms) o["health_baseline_ms"] = *a.health_baseline_ms;
    return json::serialize(o);
}

result<type_analytics> analytics_from_json(const json::value& v) {
    if (!v.is_object())
        return make_error("invalid_argument", "analytics: must be an object", "analytics");
    type_analytics a;
    for (const auto& [k, val] : v.as_object()) {
        const std::string at = "analytics." + std::string(k);
        if (val.is_null()) continue;  // null: the server's default
        if (k == "detector") {
            if (!val.is_string())
                return make_error("invalid_argument", at + ": must be a string", at);
            std::string name(val.as_string());
            std::string known = "off";
            bool found = name == "off";
            for (auto n : analytics::detector_names()) {
                known += ", " + std::string(n);
                found = found || n == name;
            }
            if (!found)
                return make_error("invalid_argument",
                                  at + ": unknown detector \"" + name + "\"; known: " + known, at);
            a.detector = std::move(name);
        } else if (k == "metrics") {
            // One glob ("vib*") or a list of names and globs.
            std::vector<std::string> globs;
            auto add = [&](const json::value& g) -> status {
                if (!g.is_string() || g.as_string().empty() || g.as_string().size() > 256)
                    return make_error("invalid_argument",
                                      at + ": expected a glob or a list of globs (1 to 256 "
                                           "characters each)",
                                      at);
                globs.emplace_back(g.as_string());
                return {};
            };
            if (val.is_array()) {
                if (val.as_array().empty() || val.as_array().size() > 1000)
                    return make_error("invalid_argument",
                                      at + ": a list needs 1 to 1000 entries (\"*\" for all)", at);
                for (const auto& g : val.as_array())
                    if (auto st = add(g); !st) return st.error();
            } else if (auto st = add(val); !st) {
                return st.error();
            }
            a.metrics = std::move(globs);
        } else if (k == "health") {
            if (!val.is_bool())
                return make_error("invalid_argument", at + ": must be true or false", at);
            a.health = val.as_bool();
        } else if (k == "health_baseline_ms") {
            if (!val.is_int64() && !val.is_uint64())
                return make_error("invalid_argument", at + ": must be an integer", at);
            auto ms = val.to_number<int64_t>();
            if (ms < 1000 || ms > 30LL * 24 * 3600 * 1000)
                return make_error("invalid_argument",
                                  at + ": must be between 1000 (1 s) and 2592000000 (30 days)", at);
            a.health_baseline_ms = ms;
        } else {
            return make_error("invalid_argument",
                              "analytics: unknown field \"" + std::string(k) +
                                  "\" (detector, metrics, health, health_baseline_ms)",
                              at);
        }
    }
    return a;
}

}  // namespace detail

using namespace detail;

namespace {

std::string conflict_name(std::string_view name) {
    return "A device or asset named \"" + std::string(name) + "\" already exists";
}

device_type type_from_row(const std::vector<value>& row) {
    device_type t;
    t.id = as_int(row[0]);
    t.name = as_text(row[1]);
    t.description = as_text(row[2]);
    json::error_code ec;
    auto m = json::parse(as_text(row[3]), ec);
    if (!ec) {
        auto parsed = metrics_from_json(m, "metrics");
        if (parsed) t.metrics = std::move(*parsed);
    }
    t.offline_timeout_ms = as_int(row[4]);
    t.created_at = as_int(row[5]);
    t.updated_at = as_int(row[6]);
    auto a = json::parse(as_text(row[7]), ec);
    if (!ec) {
        // Stored settings that no longer parse (a detector since removed) fall back to the
        // server's defaults rather than hiding the type.
        if (auto parsed = analytics_from_json(a)) t.analytics = std::move(*parsed);
    }
    return t;
}

constexpr std::string_view type_columns =
    "SELECT id, name, description, metrics, offline_timeout_ms, created_at, updated_at, "
    "analytics FROM device_types";
constexpr std::string_view device_columns =
    "SELECT id, name, type, label, description, created_at, updated_at, last_seen FROM devices";

status check_type(const device_type& t) {
    if (auto ok = check_name(t.name, "name"); !ok) return ok;
    if (auto ok = check_text(t.description, "description", 1024, false); !ok) return ok;
    if (t.offline_timeout_ms <= 0)
        return make_error("invalid_argument", "offline_timeout_ms: must be positive",
                          "offline_timeout_ms");
    for (const auto& [name, m] : t.metrics) {
        const std::string at = "metrics/" + name;
        if (auto ok = check_text(name, at, 256, true); !ok) return ok;
        if (auto ok = check_text(m.unit, at + "/unit", 64, false); !ok) return ok;
        if (m.min && m.max && *m.min > *m.max)
            return make_error("invalid_argument", at + ": min is greater than max", at);
    }
    return {};
}

status check_scope(std::string_view scope, bool allow_empty) {
    if (scope == "client" || scope == "server" || scope == "shared") return {};
    if (allow_empty && scope.empty()) return {};
    return make_error(
        "invalid_argument",
        "scope: expected client, server or shared; got \"" + std::string(scope) + "\"", "scope");
}

}  // namespace

options options_from(const config::config& cfg) {
    options o;
    o.offline_timeout = cfg.get_duration("devices.offline_timeout");
    o.flush_interval = cfg.get_duration("devices.flush_interval");
    o.max_attributes = static_cast<size_t>(cfg.get_int("devices.max_attributes"));
    o.max_attribute_bytes = static_cast<size_t>(cfg.get_int("devices.max_attribute_bytes"));
    return o;
}

// ---- lifecycle --------------------------------------------------------------------------

registry::registry(meta::store& store, auth::auth_service& auth, options opts)
    : _impl(std::make_unique<impl>(store, auth, std::move(opts))) {}

registry::~registry() {
    stop();
}

status registry::reload() {
    auto types = _impl->store.query(type_columns);
    if (!types) return types.error();
    auto devs = _impl->store.query("SELECT id, name, type, last_seen FROM devices");
    if (!devs) return devs.error();
    {
        std::unique_lock lock(_impl->mutex);
        _impl->types.clear();
        for (const auto& row : types->data) {
            auto t = type_from_row(row);
            _impl->types[t.name] =
                type_state{t.offline_timeout_ms, std::move(t.metrics), std::move(t.analytics)};
        }
        // A device still known keeps its state: last-seen times not flushed yet and the
        // connection flag live only here.
        auto known = std::move(_impl->devices);
        _impl->devices.clear();
        for (const auto& row : devs->data) {
            const int64_t id = as_int(row[0]);
            const std::string name = as_text(row[1]);
            auto it = known.find(name);
            std::shared_ptr<device_state> d;
            if (it != known.end() && it->second->id == id) {
                d = it->second;
                const int64_t stored = as_int(row[3]);
                if (stored > d->last_seen.load()) d->last_seen = stored;
            } else {
                d = std::make_shared<device_state>();
                d->id = id;
                d->name = name;
                d->last_seen = as_int(row[3]);
                d->flushed = d->last_seen.load();
            }
            d->type = as_text(row[2]);
            _impl->devices[name] = std::move(d);
        }
    }
    _impl->invalidate();
    return {};
}

status registry::start() {
    if (auto st = reload(); !st) return st;
    std::lock_guard lock(_impl->flush_mutex);
    if (_impl->started) return {};
    _impl->started = true;
    _impl->stopping = false;
    _impl->flusher = std::thread([this] {
        std::unique_lock lock(_impl->flush_mutex);
        while (!_impl->stopping) {
            _impl->flush_wake.wait_for(lock, _impl->opts.flush_interval,
                                       [this] { return _impl->stopping; });
            lock.unlock();
            if (auto st = flush(); !st)
                log::warn("device last-seen times not stored", {{"error", st.error().message}});
            lock.lock();
        }
    });
    return {};
}

void registry::stop() {
    {
        std::lock_guard lock(_impl->flush_mutex);
        if (!_impl->started) return;
        _impl->stopping = true;
        _impl->started = false;
    }
    _impl->flush_wake.notify_all();
    if (_impl->flusher.joinable()) _impl->flusher.join();
    (void)flush();
}

status registry::flush() {
    std::vector<std::pair<std::shared_ptr<device_state>, int64_t>> dirty;
    {
        std::shared_lock lock(_impl->mutex);
        for (const auto& [name, d] : _impl->devices) {
            int64_t seen = d->last_seen.load(std::memory_order_relaxed);
            if (seen > d->flushed.load(std::memory_order_relaxed)) dirty.emplace_back(d, seen);
        }
    }
    if (dirty.empty()) return {};
    auto st = _impl->store.transaction([&](meta::store& tx) -> status {
        for (const auto& [d, seen] : dirty) {
            auto r = tx.execute(
                "UPDATE devices SET last_seen = $2 WHERE id = $1 AND (last_seen IS NULL OR "
                "last_seen < $2)",
                std::array<value, 2>{d->id, seen});
            if (!r) return r.error();
        }
        return {};
    });
    if (!st) return st;
    for (const auto& [d, seen] : dirty)
        d->flushed.store(seen, std::memory_order_relaxed);
    return {};
}

// ---- mirror and cache -------------------------------------------------------------------

void registry::impl::invalidate() {
    {
        std::unique_lock lock(cache_mutex);
        generation.fetch_add(1);
        cache.clear();
    }
    std::vector<std::function<void()>> listeners;
    {
        std::lock_guard lock(listeners_mutex);
        listeners = change_listeners;
    }
    for (const auto& l : listeners)
        l();
}

void registry::impl::mirror_type(const device_type& t) {
    {
        std::unique_lock lock(mutex);
        types[t.name] = type_state{t.offline_timeout_ms, t.metrics, t.analytics};
    }
    invalidate();
}

bool registry::impl::is_online(const device_state& d, int64_t now) const {
    if (d.connected.load(std::memory_order_relaxed)) return true;
    int64_t seen = d.last_seen.load(std::memory_order_relaxed);
    if (seen <= 0 || d.declared_offline.load(std::memory_order_relaxed)) return false;
    auto t = types.find(d.type);
    int64_t timeout =
        t != types.end() ? t->second.offline_timeout_ms : opts.offline_timeout.count();
    return now - seen < timeout;
}

series_entry registry::impl::entry_for(std::string_view key) {
    {
        std::shared_lock lock(cache_mutex);
        auto it = cache.find(key);
        if (it != cache.end()) return it->second;
    }
    const uint64_t gen = generation.load();
    series_entry e;
    auto info = storage::parse_key(key);
    if (info) {
        const std::string* device_name = nullptr;
        for (const auto& [k, v] : info->tags)
            if (k == "device") device_name = &v;
        if (device_name) {
            std::shared_lock lock(mutex);
            auto d = devices.find(*device_name);
            if (d != devices.end()) {
                e.device = d->second;
                const auto& field = info->field;
                bool derived = storage::is_derived_field(field);
                auto t = types.find(d->second->type);
                if (!derived && t != types.end()) {
                    auto m = t->second.metrics.find(field);
                    if (m != t->second.metrics.end() && (m->second.min || m->second.max)) {
                        e.ranged = true;
                        if (m->second.min) e.min = *m->second.min;
                        if (m->second.max) e.max = *m->second.max;
                    }
                }
            }
        }
    }
    std::unique_lock lock(cache_mutex);
    if (generation.load() == gen) {
        if (cache.size() >= opts.max_cached_series) cache.clear();
        cache.emplace(std::string(key), e);
    }
    return e;
}

void registry::impl::resolve_series(const storage::write_batch& batch,
                                    std::vector<series_entry>& out) {
    const auto& series = batch.series_entries();
    out.assign(series.size(), series_entry{});
    // One shared lock for the whole batch: a lock per series is an atomic write to the same
    // cache line from every ingest thread, thousands of times per batch.
    thread_local std::vector<size_t> missing;
    missing.clear();
    {
        std::shared_lock lock(cache_mutex);
        for (size_t i = 0; i < series.size(); ++i) {
            auto it = cache.find(series[i].key);
            if (it != cache.end())
                out[i] = it->second;
            else
                missing.push_back(i);
        }
    }
    for (size_t i : missing)
        out[i] = entry_for(series[i].key);
}

// ---- telemetry hooks --------------------------------------------------------------------

void registry::enrich(storage::write_batch& batch) {
    thread_local std::vector<series_entry> entries;
    thread_local std::vector<int64_t> flag_index;
    _impl->resolve_series(batch, entries);
    bool any = false;
    for (const auto& e : entries)
        any = any || e.ranged;
    if (!any) return;
    flag_index.assign(entries.size(), -1);
    const size_t n = batch.points().size();
    for (size_t i = 0; i < n; ++i) {
        const auto p = batch.points()[i];  // a copy: adding points moves the vector
        const auto& e = entries[p.series];
        if (!e.ranged) continue;
        auto type = batch.series_entries()[p.series].type;
        if (type != storage::value_type::float64 && type != storage::value_type::int64) continue;
        double v = storage::as_double(type, p.raw);
        if (!(v < e.min || v > e.max)) continue;
        if (flag_index[p.series] == -1) {
            std::string key = std::string(batch.series_entries()[p.series].key) + ".out_of_range";
            auto idx = batch.series(key, storage::value_type::float64);
            flag_index[p.series] = idx ? static_cast<int64_t>(*idx) : -2;
        }
        if (flag_index[p.series] < 0) continue;
        batch.add(static_cast<uint32_t>(flag_index[p.series]), p.ts, 1.0);
    }
}

void registry::observe(const storage::write_batch& batch) {
    thread_local std::vector<series_entry> entries;
    _impl->resolve_series(batch, entries);
    const int64_t now = now_ms();
    const device_state* last = nullptr;
    for (const auto& e : entries) {
        if (!e.device || e.device.get() == last) continue;
        last = e.device.get();
        int64_t prev = e.device->last_seen.load(std::memory_order_relaxed);
        while (prev < now && !e.device->last_seen.compare_exchange_weak(prev, now)) {
        }
    }
}

void registry::seen(std::string_view device, int64_t unix_ms) {
    std::shared_lock lock(_impl->mutex);
    auto it = _impl->devices.find(device);
    if (it == _impl->devices.end()) return;
    auto& seen = it->second->last_seen;
    int64_t prev = seen.load(std::memory_order_relaxed);
    while (prev < unix_ms && !seen.compare_exchange_weak(prev, unix_ms)) {
    }
}

void registry::set_connected(std::string_view device, bool connected) {
    {
        std::shared_lock lock(_impl->mutex);
        auto it = _impl->devices.find(device);
        if (it == _impl->devices.end()) return;
        it->second->connected.store(connected);
        if (connected) it->second->declared_offline.store(false);
    }
    seen(device, now_ms());
}

void registry::set_offline(std::string_view device) {
    std::shared_lock lock(_impl->mutex);
    auto it = _impl->devices.find(device);
    if (it == _impl->devices.end()) return;
    it->second->connected.store(false);
    it->second->declared_offline.store(true);
}

// ---- device types -----------------------------------------------------------------------

status registry::impl::ensure_type(meta::store& tx, std::string_view name, bool& created) {
    created = false;
    if (auto ok = check_name(name, "type"); !ok) return ok;
    auto r = tx.query("SELECT 1 FROM device_types WHERE name = $1",
                      std::array<value, 1>{std::string(name)});
    if (!r) return r.error();
    if (!r->data.empty()) return {};
    int64_t now = now_ms();
    auto ins = tx.execute(
        "INSERT INTO device_types (name, description, metrics, offline_timeout_ms, created_at, "
        "updated_at) VALUES ($1, '', '{}', $2, $3, $3)",
        std::array<value, 3>{std::string(name), int64_t{opts.offline_timeout.count()}, now});
    if (!ins) return ins.error();
    created = true;
    return {};
}

result<device_type> registry::create_type(const device_type& given) {
    device_type t = given;
    if (t.offline_timeout_ms == 0) t.offline_timeout_ms = _impl->opts.offline_timeout.count();
    if (auto ok = check_type(t); !ok) return ok.error();
    int64_t now = now_ms();
    auto r = _impl->store.query(
        "INSERT INTO device_types (name, description, metrics, offline_timeout_ms, created_at, "
        "updated_at, analytics) VALUES ($1, $2, $3, $4, $5, $5, $6) RETURNING id",
        std::array<value, 6>{t.name, t.description, metrics_to_json(t.metrics),
                             t.offline_timeout_ms, now, analytics_to_json(t.analytics)});
    if (!r) {
        if (r.error().code == "conflict")
            return make_error("conflict", "A device type named \"" + t.name + "\" already exists",
                              "name");
        return r.error();
    }
    device_type out = t;
    out.id = as_int(r->data.at(0).at(0));
    out.created_at = out.updated_at = now;
    _impl->mirror_type(out);
    return out;
}

result<std::vector<device_type>> registry::list_types() {
    auto r = _impl->store.query(std::string(type_columns) + " ORDER BY name");
    if (!r) return r.error();
    std::vector<device_type> out;
    for (const auto& row : r->data)
        out.push_back(type_from_row(row));
    return out;
}

result<device_type> registry::get_type(std::string_view ref) {
    auto id = as_id(ref);
    auto r = id ? _impl->store.query(std::string(type_columns) + " WHERE id = $1",
                                     std::array<value, 1>{*id})
                : _impl->store.query(std::string(type_columns) + " WHERE name = $1",
                                     std::array<value, 1>{std::string(ref)});
    if (!r) return r.error();
    if (r->data.empty())
        return make_error("not_found", "No device type " + std::string(ref), "type");
    return type_from_row(r->data[0]);
}

result<device_type> registry::update_type(std::string_view ref, const type_update& change) {
    auto t = get_type(ref);
    if (!t) return t;
    if (change.description) t->description = *change.description;
    if (change.metrics) t->metrics = *change.metrics;
    if (change.offline_timeout_ms) t->offline_timeout_ms = *change.offline_timeout_ms;
    if (change.analytics) t->analytics = *change.analytics;
    if (auto ok = check_type(*t); !ok) return ok.error();
    t->updated_at = now_ms();
    auto r = _impl->store.execute(
        "UPDATE device_types SET description = $2, metrics = $3, offline_timeout_ms = $4, "
        "updated_at = $5, analytics = $6 WHERE id = $1",
        std::array<value, 6>{t->id, t->description, metrics_to_json(t->metrics),
                             t->offline_timeout_ms, t->updated_at,
                             analytics_to_json(t->analytics)});
    if (!r) return r.error();
    _impl->mirror_type(*t);
    return t;
}

status registry::delete_type(std::string_view ref) {
    auto t = get_type(ref);
    if (!t) return t.error();
    auto st = _impl->store.transaction([&](meta::store& tx) -> status {
        auto used =
            tx.query("SELECT COUNT(*) FROM devices WHERE type = $1", std::array<value, 1>{t->name});
        if (!used) return used.error();
        if (int64_t n = as_int(used->data.at(0).at(0)); n > 0)
            return make_error("conflict",
                              "Device type \"" + t->name + "\" is used by " + std::to_string(n) +
                                  " device(s); change or delete them first",
                              "type");
        auto del =
            tx.execute("DELETE FROM device_types WHERE id = $1", std::array<value, 1>{t->id});
        if (!del) return del.error();
        return {};
    });
    if (!st) return st;
    {
        std::unique_lock lock(_impl->mutex);
        _impl->types.erase(t->name);
    }
    _impl->invalidate();
    return {};
}

// ---- devices ----------------------------------------------------------------------------

namespace {

status check_device_fields(const new_device& d) {
    if (auto ok = check_name(d.name, "name"); !ok) return ok;
    if (auto ok = check_name(d.type, "type"); !ok) return ok;
    if (auto ok = check_text(d.label, "label", 256, false); !ok) return ok;
    if (auto ok = check_text(d.description, "description", 1024, false); !ok) return ok;
    return {};
}

}  // namespace

status registry::impl::insert_device(meta::store& tx, const new_device& d, const auth::actor& by,
                                     int64_t now, created_device& out, bool& type_created) {
    if (auto ok = ensure_type(tx, d.type, type_created); !ok) return ok;
    auto node = tx.query("INSERT INTO graph_nodes (kind, name) VALUES ('device', $1) RETURNING id",
                         std::array<value, 1>{d.name});
    if (!node) {
        if (node.error().code == "conflict")
            return make_error("conflict", conflict_name(d.name), "name");
        return node.error();
    }
    out.info.id = as_int(node->data.at(0).at(0));
    auto ins = tx.execute(
        "INSERT INTO devices (id, name, type, label, description, created_at, updated_at) "
        "VALUES ($1, $2, $3, $4, $5, $6, $6)",
        std::array<value, 6>{out.info.id, d.name, d.type, d.label, d.description, now});
    if (!ins) {
        if (ins.error().code == "conflict")
            return make_error("conflict", conflict_name(d.name), "name");
        return ins.error();
    }
    // Same store, same thread: auth's transaction joins this one, so the device and its
    // token commit together. A token left by an earlier device of this name is replaced.
    auto token = auth.issue_device_token(d.name, by);
    if (!token && token.error().code == "conflict") token = auth.rotate_device_token(d.name, by);
    if (!token) return token.error();
    out.token = std::move(*token);
    out.info.name = d.name;
    out.info.type = d.type;
    out.info.label = d.label;
    out.info.description = d.description;
    out.info.created_at = out.info.updated_at = now;
    return {};
}

void registry::impl::mirror_device(const device& d, bool type_created) {
    std::unique_lock lock(mutex);
    if (type_created && !types.contains(d.type))
        types[d.type] = type_state{opts.offline_timeout.count(), {}, {}};
    auto s = std::make_shared<device_state>();
    s->id = d.id;
    s->name = d.name;
    s->type = d.type;
    devices[d.name] = std::move(s);
}

result<std::string> registry::issue_token(std::string_view device, const auth::actor& by) {
    auto known = get_device(device);
    if (!known) {
        if (known.error().code != "not_found") return known.error();
        new_device fresh;
        fresh.name = std::string(device);
        auto created = create_device(fresh, by);
        if (!created) return created.error();
        return std::move(created->token);
    }
    auto token = _impl->auth.issue_device_token(device, by);
    if (!token && token.error().code == "conflict")
        token = _impl->auth.rotate_device_token(device, by);
    return token;
}

result<created_device> registry::create_device(const new_device& d, const auth::actor& by) {
    if (auto ok = check_device_fields(d); !ok) return ok.error();
    created_device out;
    bool type_created = false;
    auto st = _impl->store.transaction([&](meta::store& tx) -> status {
        return _impl->insert_device(tx, d, by, now_ms(), out, type_created);
    });
    if (!st) return st.error();
    _impl->mirror_device(out.info, type_created);
    _impl->invalidate();
    return out;
}

namespace {

device device_from_row(const std::vector<value>& row) {
    device d;
    d.id = as_int(row[0]);
    d.name = as_text(row[1]);
    d.type = as_text(row[2]);
    d.label = as_text(row[3]);
    d.description = as_text(row[4]);
    d.created_at = as_int(row[5]);
    d.updated_at = as_int(row[6]);
    if (!std::holds_alternative<std::monostate>(row[7])) d.last_seen = as_int(row[7]);
    return d;
}

}  // namespace

result<std::vector<device>> registry::list_devices(std::string_view type_filter) {
    auto r =
        type_filter.empty()
            ? _impl->store.query(std::string(device_columns) + " ORDER BY name")
            : _impl->store.query(std::string(device_columns) + " WHERE type = $1 ORDER BY name",
                                 std::array<value, 1>{std::string(type_filter)});
    if (!r) return r.error();
    std::vector<device> out;
    const int64_t now = now_ms();
    std::shared_lock lock(_impl->mutex);
    for (const auto& row : r->data) {
        auto d = device_from_row(row);
        auto it = _impl->devices.find(d.name);
        if (it != _impl->devices.end()) {
            int64_t seen = it->second->last_seen.load();
            if (seen > 0 && (!d.last_seen || seen > *d.last_seen)) d.last_seen = seen;
            d.connected = it->second->connected.load();
            d.online = _impl->is_online(*it->second, now);
        }
        out.push_back(std::move(d));
    }
    return out;
}

result<device> registry::get_device(std::string_view ref) {
    auto id = as_id(ref);
    auto r = id ? _impl->store.query(std::string(device_columns) + " WHERE id = $1",
                                     std::array<value, 1>{*id})
                : _impl->store.query(std::string(device_columns) + " WHERE name = $1",
                                     std::array<value, 1>{std::string(ref)});
    if (!r) return r.error();
    if (r->data.empty()) return make_error("not_found", "No device " + std::string(ref), "device");
    auto d = device_from_row(r->data[0]);
    std::shared_lock lock(_impl->mutex);
    auto it = _impl->devices.find(d.name);
    if (it != _impl->devices.end()) {
        int64_t seen = it->second->last_seen.load();
        if (seen > 0 && (!d.last_seen || seen > *d.last_seen)) d.last_seen = seen;
        d.connected = it->second->connected.load();
        d.online = _impl->is_online(*it->second, now_ms());
    }
    return d;
}

result<device> registry::update_device(std::string_view ref, const device_update& change) {
    auto d = get_device(ref);
    if (!d) return d;
    new_device check{d->name, change.type.value_or(d->type), change.label.value_or(d->label),
                     change.description.value_or(d->description)};
    if (auto ok = check_device_fields(check); !ok) return ok.error();
    bool type_created = false;
    const int64_t now = now_ms();
    auto st = _impl->store.transaction([&](meta::store& tx) -> status {
        if (auto ok = _impl->ensure_type(tx, check.type, type_created); !ok) return ok;
        auto r = tx.execute(
            "UPDATE devices SET type = $2, label = $3, description = $4, updated_at = $5 WHERE "
            "id = $1",
            std::array<value, 5>{d->id, check.type, check.label, check.description, now});
        if (!r) return r.error();
        return {};
    });
    if (!st) return st.error();
    {
        std::unique_lock lock(_impl->mutex);
        if (type_created)
            _impl->types[check.type] = type_state{_impl->opts.offline_timeout.count(), {}, {}};
        auto it = _impl->devices.find(d->name);
        if (it != _impl->devices.end()) it->second->type = check.type;
    }
    _impl->invalidate();
    d->type = check.type;
    d->label = check.label;
    d->description = check.description;
    d->updated_at = now;
    return d;
}

status registry::delete_device(std::string_view ref, const auth::actor& by) {
    auto d = get_device(ref);
    if (!d) return d.error();
    auto st = _impl->store.transaction([&](meta::store& tx) -> status {
        auto del = tx.execute("DELETE FROM graph_nodes WHERE id = $1", std::array<value, 1>{d->id});
        if (!del) return del.error();
        // A device created later under the same name starts with a baseline of its own.
        auto baseline = tx.execute("DELETE FROM health_baselines WHERE device = $1",
                                   std::array<value, 1>{d->name});
        if (!baseline) return baseline.error();
        auto revoked = _impl->auth.revoke_device_token(d->name, by);
        if (!revoked && revoked.error().code != "not_found") return revoked;
        return {};
    });
    if (!st) return st;
    {
        std::unique_lock lock(_impl->mutex);
        _impl->devices.erase(d->name);
    }
    _impl->invalidate();
    return {};
}

result<std::string> registry::type_of(std::string_view device) {
    std::shared_lock lock(_impl->mutex);
    auto it = _impl->devices.find(device);
    if (it == _impl->devices.end())
        return make_error("not_found", "No device " + std::string(device), "device");
    return it->second->type;
}

std::optional<type_analytics> registry::analytics_of(std::string_view device) const {
    std::shared_lock lock(_impl->mutex);
    auto it = _impl->devices.find(device);
    if (it == _impl->devices.end()) return std::nullopt;
    auto t = _impl->types.find(it->second->type);
    return t != _impl->types.end() ? t->second.analytics : type_analytics{};
}

uint64_t registry::generation() const {
    return _impl->generation.load();
}

status registry::set_health_baseline(const health_baseline& b) {
    auto r = _impl->store.execute(
        "INSERT INTO health_baselines (device, from_ms, to_ms, set_by, updated_at) VALUES ($1, $2, "
        "$3, $4, $5) ON CONFLICT (device) DO UPDATE SET from_ms = excluded.from_ms, to_ms = "
        "excluded.to_ms, set_by = excluded.set_by, updated_at = excluded.updated_at",
        std::array<value, 5>{b.device, b.from_ms, b.to_ms, b.set_by, now_ms()});
    if (!r) return r.error();
    return {};
}

result<std::vector<health_baseline>> registry::health_baselines() {
    auto r = _impl->store.query(
        "SELECT device, from_ms, to_ms, set_by, updated_at FROM health_baselines ORDER BY device");
    if (!r) return r.error();
    std::vector<health_baseline> out;
    for (const auto& row : r->data)
        out.push_back(
            {as_text(row[0]), as_int(row[1]), as_int(row[2]), as_text(row[3]), as_int(row[4])});
    return out;
}

import_report registry::import_devices(const std::vector<import_row>& rows, const auth::actor& by) {
    import_report report;
    // Fast path: every row that looks good in one transaction (one commit, not one per
    // device). Any failure in it (a name taken meanwhile ...) rolls it back, and the rows
    // go one by one instead, each with its own error.
    std::vector<const import_row*> todo;
    for (const auto& row : rows) {
        if (auto ok = check_device_fields(row.device); !ok)
            report.errors.push_back({row.line, ok.error().field, ok.error().message});
        else
            todo.push_back(&row);
    }
    std::vector<std::pair<size_t, created_device>> created;
    std::vector<std::pair<size_t, std::string>> skipped;
    bool types_created = false;
    const int64_t now = now_ms();
    auto fast = _impl->store.transaction([&](meta::store& tx) -> status {
        for (const auto* row : todo) {
            auto kind = tx.query("SELECT kind FROM graph_nodes WHERE name = $1",
                                 std::array<value, 1>{row->device.name});
            if (!kind) return kind.error();
            if (!kind->data.empty()) {
                if (as_text(kind->data[0][0]) != "device")
                    return make_error("conflict", conflict_name(row->device.name), "name");
                skipped.emplace_back(row->line, row->device.name);
                continue;
            }
            created_device out;
            bool type_created = false;
            if (auto ok = _impl->insert_device(tx, row->device, by, now, out, type_created); !ok)
                return ok;
            types_created = types_created || type_created;
            created.emplace_back(row->line, std::move(out));
        }
        return {};
    });
    if (fast) {
        for (const auto& [line, d] : created)
            _impl->mirror_device(d.info, types_created);
        _impl->invalidate();
        report.created = std::move(created);
        report.skipped = std::move(skipped);
        return report;
    }
    for (const auto* row : todo) {
        auto made = create_device(row->device, by);
        if (made) {
            report.created.emplace_back(row->line, std::move(*made));
        } else if (made.error().code == "conflict" && made.error().field == "name" &&
                   get_device(row->device.name).ok()) {
            report.skipped.emplace_back(row->line, row->device.name);
        } else {
            report.errors.push_back({row->line, made.error().field, made.error().message});
        }
    }
    std::sort(report.errors.begin(), report.errors.end(),
              [](const import_error& a, const import_error& b) { return a.line < b.line; });
    return report;
}

// ---- attributes -------------------------------------------------------------------------

namespace {

result<json::object> parse_object(std::string_view text, std::string_view field) {
    json::error_code ec;
    auto v = json::parse(text, ec);
    if (ec || !v.is_object())
        return make_error("invalid_argument",
                          std::string(field) + ": expected a JSON object of attribute keys",
                          std::string(field));
    return std::move(v.as_object());
}

}  // namespace

result<std::string> registry::attributes(std::string_view device, std::string_view scope) {
    if (auto ok = check_scope(scope, true); !ok) return ok.error();
    auto d = get_device(device);
    if (!d) return d.error();
    auto r = scope.empty()
                 ? _impl->store.query(
                       "SELECT scope, key, value FROM device_attributes WHERE device_id = $1 "
                       "ORDER BY key",
                       std::array<value, 1>{d->id})
                 : _impl->store.query(
                       "SELECT scope, key, value FROM device_attributes WHERE device_id = $1 AND "
                       "scope = $2 ORDER BY key",
                       std::array<value, 2>{d->id, std::string(scope)});
    if (!r) return r.error();
    json::object out;
    for (const char* s : {"client", "server", "shared"})
        if (scope.empty() || scope == s) out[s] = json::object();
    for (const auto& row : r->data) {
        json::error_code ec;
        auto v = json::parse(as_text(row[2]), ec);
        out[as_text(row[0])].as_object()[as_text(row[1])] = ec ? json::value(nullptr) : v;
    }
    return json::serialize(out);
}

status registry::set_attributes(std::string_view device, std::string_view scope,
                                std::string_view json_object) {
    if (auto ok = check_scope(scope, false); !ok) return ok;
    auto obj = parse_object(json_object, "body");
    if (!obj) return obj.error();
    if (obj->empty()) return make_error("invalid_argument", "body: no attributes given", "body");
    const auto& opts = _impl->opts;
    for (const auto& [k, v] : *obj) {
        if (auto ok = check_text(k, "body/" + std::string(k), 256, true); !ok) return ok;
        if (const size_t size = json::serialize(v).size(); size > opts.max_attribute_bytes)
            return make_error("too_large",
                              "body/" + std::string(k) + ": the value has " + std::to_string(size) +
                                  " bytes, the limit is " +
                                  std::to_string(opts.max_attribute_bytes) +
                                  " (devices.max_attribute_bytes)",
                              "body/" + std::string(k));
    }
    auto d = get_device(device);
    if (!d) return d.error();
    const int64_t now = now_ms();
    auto st = _impl->store.transaction([&](meta::store& tx) -> status {
        // The count is read in the transaction that adds, so that concurrent writes of one
        // device cannot together pass the bound; keys it has already are updates, not new.
        auto have = tx.query("SELECT scope, key FROM device_attributes WHERE device_id = $1",
                             std::array<value, 1>{d->id});
        if (!have) return have.error();
        std::unordered_set<std::string> existing;
        for (const auto& row : have->data)
            if (as_text(row[0]) == scope) existing.insert(as_text(row[1]));
        size_t adding = 0;
        for (const auto& [k, v] : *obj)
            if (!existing.count(std::string(k))) ++adding;
        if (adding > 0 && have->data.size() + adding > opts.max_attributes)
            return make_error("too_many_requests",
                              "body: device " + d->name + " has " +
                                  std::to_string(have->data.size()) + " attributes, " +
                                  std::to_string(adding) + " more would pass the limit of " +
                                  std::to_string(opts.max_attributes) + " (devices.max_attributes)",
                              "body");
        for (const auto& [k, v] : *obj) {
            auto r = tx.execute(
                "INSERT INTO device_attributes (device_id, scope, key, value, updated_at) VALUES "
                "($1, $2, $3, $4, $5) ON CONFLICT (device_id, scope, key) DO UPDATE SET value = "
                "excluded.value, updated_at = excluded.updated_at",
                std::array<value, 5>{d->id, std::string(scope), std::string(k), json::serialize(v),
                                     now});
            if (!r) return r.error();
        }
        return {};
    });
    if (!st) return st;
    if (scope == "shared") {
        std::vector<std::function<void(const std::string&, const std::string&)>> listeners;
        {
            std::lock_guard lock(_impl->listeners_mutex);
            listeners = _impl->shared_listeners;
        }
        const std::string text = json::serialize(*obj);
        for (const auto& l : listeners)
            l(d->name, text);
    }
    return {};
}

status registry::delete_attributes(std::string_view device, std::string_view scope,
                                   const std::vector<std::string>& keys) {
    if (auto ok = check_scope(scope, false); !ok) return ok;
    if (keys.empty()) return make_error("invalid_argument", "keys: required", "keys");
    auto d = get_device(device);
    if (!d) return d.error();
    return _impl->store.transaction([&](meta::store& tx) -> status {
        for (const auto& k : keys) {
            auto r = tx.execute(
                "DELETE FROM device_attributes WHERE device_id = $1 AND scope = $2 AND key = $3",
                std::array<value, 3>{d->id, std::string(scope), k});
            if (!r) return r.error();
        }
        return {};
    });
}

status registry::set_client_attributes(std::string_view device, std::string_view json_object) {
    return set_attributes(device, "client", json_object);
}

result<std::string> registry::attribute_response(std::string_view device,
                                                 std::string_view request) {
    json::object req;
    if (!request.empty()) {
        auto parsed = parse_object(request, "request");
        if (!parsed) return parsed.error();
        req = std::move(*parsed);
    }
    auto keys_of = [&](std::string_view name) -> result<std::optional<std::vector<std::string>>> {
        auto* v = req.if_contains(name);
        if (!v) return std::optional<std::vector<std::string>>();
        if (!v->is_string())
            return make_error("invalid_argument",
                              std::string(name) + ": expected a comma-separated string",
                              std::string(name));
        std::vector<std::string> keys;
        std::string_view text = v->as_string();
        size_t start = 0;
        while (start <= text.size()) {
            size_t comma = std::min(text.find(',', start), text.size());
            auto k = text.substr(start, comma - start);
            while (!k.empty() && k.front() == ' ')
                k.remove_prefix(1);
            while (!k.empty() && k.back() == ' ')
                k.remove_suffix(1);
            if (!k.empty()) keys.emplace_back(k);
            start = comma + 1;
        }
        return std::optional<std::vector<std::string>>(std::move(keys));
    };
    auto client_keys = keys_of("clientKeys");
    if (!client_keys) return client_keys.error();
    auto shared_keys = keys_of("sharedKeys");
    if (!shared_keys) return shared_keys.error();
    const bool all = !*client_keys && !*shared_keys;
    auto all_attrs = attributes(device, "");
    if (!all_attrs) return all_attrs.error();
    auto doc = json::parse(*all_attrs).as_object();
    json::object out;
    auto pick = [&](const char* scope, const std::optional<std::vector<std::string>>& keys) {
        const auto& have = doc.at(scope).as_object();
        if (all) {
            out[scope] = have;
            return;
        }
        if (!keys) return;
        json::object sel;
        for (const auto& k : *keys)
            if (auto* v = have.if_contains(k)) sel[k] = *v;
        out[scope] = std::move(sel);
    };
    pick("client", *client_keys);
    pick("shared", *shared_keys);
    return json::serialize(out);
}

void registry::on_shared_attributes(
    std::function<void(const std::string& device, const std::string& json)> listener) {
    std::lock_guard lock(_impl->listeners_mutex);
    _impl->shared_listeners.push_back(std::move(listener));
}

void registry::on_change(std::function<void()> listener) {
    std::lock_guard lock(_impl->listeners_mutex);
    _impl->change_listeners.push_back(std::move(listener));
}

}  // namespace clisonix::devices
