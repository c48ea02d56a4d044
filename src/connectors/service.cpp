// Connectors in the metadata store, their validation, and the runners (one thread each).
#include <algorithm>
#include <atomic>
#include <cmath>
#include <condition_variable>
#include <mutex>
#include <thread>

#include <boost/json.hpp>

#include "common/time.h"
#include "connectors/connectors.h"
#include "notify/notify.h"

namespace clisonix::connectors {

namespace json = boost::json;
using meta::as_int;
using meta::as_text;

void driver_registry::add(std::unique_ptr<driver> d) {
    std::string type(d->type());
    _drivers[type] = std::shared_ptr<driver>(std::move(d));
}

const driver* driver_registry::find(std::string_view type) const {
    auto it = _drivers.find(type);
    return it == _drivers.end() ? nullptr : it->second.get();
}

std::vector<std::string> driver_registry::types() const {
    std::vector<std::string> out;
    for (const auto& [type, d] : _drivers)
        out.push_back(type);
    return out;
}

driver_registry builtin_drivers(const std::string& opcua_pki_dir) {
    driver_registry r;
    r.add(make_modbus_driver());
    r.add(make_opcua_driver(opcua_pki_dir));
    return r;
}

options options_from(const config::config& cfg) {
    options o;
    o.backoff_base = cfg.get_duration("connectors.backoff_base");
    o.backoff_max = cfg.get_duration("connectors.backoff_max");
    o.breaker.volume_threshold = static_cast<int>(cfg.get_int("connectors.breaker_min_volume"));
    o.breaker.reset_timeout = cfg.get_duration("connectors.breaker_reset_timeout");
    return o;
}

namespace {

error invalid(std::string field, std::string reason) {
    return make_error("invalid_argument", field + ": " + reason, field);
}

bool valid_name(std::string_view n) {
    if (n.empty() || n.size() > 64 || !std::isalnum(static_cast<unsigned char>(n[0]))) return false;
    return std::all_of(n.begin(), n.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
    });
}

// Device and metric names become series key parts: printable, no control characters, and
// none of the characters the key format or globs give a meaning.
bool valid_key_part(std::string_view n) {
    if (n.empty() || n.size() > 128) return false;
    return std::none_of(n.begin(), n.end(), [](char c) {
        auto u = static_cast<unsigned char>(c);
        return u < 0x20 || u == 0x7f || c == ',' || c == '=' || c == ' ' || c == '"' || c == '*' ||
               c == '?';
    });
}

constexpr std::string_view data_types[] = {"int16",  "uint16",  "int32",   "uint32", "int64",
                                           "uint64", "float32", "float64", "bool"};

status validate_common(const connector& c, const driver_registry& drivers) {
    if (!valid_name(c.name))
        return invalid("name",
                       "must be 1..64 of A-Z a-z 0-9 . _ - starting with a letter or digit");
    if (!drivers.find(c.type)) {
        std::string known;
        for (const auto& t : drivers.types())
            known += (known.empty() ? "" : ", ") + t;
        return invalid("type", "\"" + c.type + "\" is not a connector type (known: " + known + ")");
    }
    if (c.endpoint.empty() || c.endpoint.size() > 512)
        return invalid("endpoint", "must be 1..512 characters");
    if (c.poll_interval_ms < 10 || c.poll_interval_ms > 24 * 3600 * 1000)
        return invalid("poll_interval_ms", "must be between 10 and 86400000");
    if (c.timeout_ms < 10 || c.timeout_ms > 60'000)
        return invalid("timeout_ms", "must be between 10 and 60000");
    if (c.username.size() > 256) return invalid("username", "must be at most 256 characters");
    if (c.password.size() > 1024) return invalid("password", "must be at most 1024 characters");
    if (c.mappings.empty()) return invalid("mapping", "must hold at least one entry");
    if (c.mappings.size() > 10'000) return invalid("mapping", "must hold at most 10000 entries");
    for (size_t i = 0; i < c.mappings.size(); ++i) {
        const auto& m = c.mappings[i];
        const std::string at = "mapping[" + std::to_string(i) + "].";
        if (m.address.empty()) return invalid(at + "address", "is required");
        if (!valid_key_part(m.device))
            return invalid(
                at + "device",
                "must be 1..128 characters without spaces, control characters or , = \" * ?");
        if (!valid_key_part(m.metric) || storage::is_derived_field(m.metric))
            return invalid(at + "metric",
                           "must be 1..128 characters without spaces, control characters or , = "
                           "\" * ?, and not a derived name (.anomaly, health ...)");
        if (m.unit.size() > 32) return invalid(at + "unit", "must be at most 32 characters");
        if (!std::isfinite(m.scale) || m.scale == 0)
            return invalid(at + "scale", "must be a finite number other than 0");
        if (!std::isfinite(m.offset)) return invalid(at + "offset", "must be a finite number");
        if (std::find(std::begin(data_types), std::end(data_types), m.data_type) ==
            std::end(data_types))
            return invalid(at + "data_type",
                           "\"" + m.data_type +
                               "\" is not one of int16 uint16 int32 uint32 int64 uint64 float32 "
                               "float64 bool");
        if (m.word_order != "big" && m.word_order != "little")
            return invalid(at + "word_order", "must be big or little");
        if (m.byte_order != "big" && m.byte_order != "little")
            return invalid(at + "byte_order", "must be big or little");
    }
    return drivers.find(c.type)->validate(c);
}

// The stored form of the mapping list (JSON, one column).
std::string mappings_json(const std::vector<mapping>& list) {
    json::array a;
    for (const auto& m : list)
        a.push_back(json::object{{"address", m.address},
                                 {"unit_id", m.unit_id},
                                 {"device", m.device},
                                 {"metric", m.metric},
                                 {"unit", m.unit},
                                 {"scale", m.scale},
                                 {"offset", m.offset},
                                 {"data_type", m.data_type},
                                 {"word_order", m.word_order},
                                 {"byte_order", m.byte_order}});
    return json::serialize(a);
}

std::vector<mapping> mappings_from(std::string_view text) {
    std::vector<mapping> out;
    json::error_code ec;
    auto v = json::parse(text, ec);
    if (ec || !v.is_array()) return out;
    for (const auto& e : v.as_array()) {
        if (!e.is_object()) continue;
        const auto& o = e.as_object();
        auto str = [&o](const char* k) {
            const auto* p = o.if_contains(k);
            return p && p->is_string() ? std::string(p->as_string()) : std::string();
        };
        auto num = [&o](const char* k, double fallback) {
            const auto* p = o.if_contains(k);
            return p && p->is_number() ? p->to_number<double>() : fallback;
        };
        mapping m;
        m.address = str("address");
        m.unit_id = static_cast<int64_t>(num("unit_id", 1));
        m.device = str("device");
        m.metric = str("metric");
        m.unit = str("unit");
        m.scale = num("scale", 1);
        m.offset = num("offset", 0);
        m.data_type = str("data_type");
        m.word_order = str("word_order");
        m.byte_order = str("byte_order");
        out.push_back(std::move(m));
    }
    return out;
}

constexpr std::string_view columns =
    "id, name, type, enabled, endpoint, username, password, poll_interval_ms, timeout_ms, "
    "mapping, created_at, updated_at";

// The sealed password is bound to the connector's id: copied to another row it does not open.
std::string secret_context(int64_t id) {
    return "connector:" + std::to_string(id);
}

}  // namespace

struct service::impl {
    meta::store& store;
    driver_registry drivers;
    sink_fn sink;
    options opts;
    metrics::registry& metrics;
    resilience::breaker_registry breakers;

    // One runner per enabled connector, keyed by id; restarted when its row changed.
    struct runner {
        connector config;
        std::shared_ptr<connector_state> state = std::make_shared<connector_state>();
        std::mutex mu;  // guards *state, stopping
        std::condition_variable cv;
        bool stopping = false;
        std::thread thread;
    };
    std::mutex mu;  // guards runners, started
    std::map<int64_t, std::unique_ptr<runner>> runners;
    bool started = false;

    impl(meta::store& s, driver_registry d, sink_fn k, options o, metrics::registry& m)
        : store(s),
          drivers(std::move(d)),
          sink(std::move(k)),
          opts(std::move(o)),
          metrics(m),
          breakers(opts.breaker, {}, m) {}

    connector from_row(const std::vector<meta::value>& row) {
        connector c;
        c.id = as_int(row[0]);
        c.name = as_text(row[1]);
        c.type = as_text(row[2]);
        c.enabled = as_int(row[3]) != 0;
        c.endpoint = as_text(row[4]);
        c.username = as_text(row[5]);
        c.password = as_text(row[6]);
        c.poll_interval_ms = as_int(row[7]);
        c.timeout_ms = as_int(row[8]);
        c.mappings = mappings_from(as_text(row[9]));
        c.created_at = as_int(row[10]);
        c.updated_at = as_int(row[11]);
        return c;
    }

    // The stored row with its password opened (left sealed when it does not open: the
    // connect that needs it fails and says so).
    connector opened(connector c) {
        if (auto plain = notify::open_secret(opts.secret_key, secret_context(c.id), c.password))
            c.password = std::move(*plain);
        return c;
    }

    result<std::vector<connector>> load() {
        auto r = store.query("SELECT " + std::string(columns) + " FROM connectors ORDER BY id");
        if (!r) return r.error();
        std::vector<connector> out;
        for (const auto& row : r->data)
            out.push_back(opened(from_row(row)));
        return out;
    }

    result<connector> load_one(int64_t id) {
        auto r = store.query("SELECT " + std::string(columns) + " FROM connectors WHERE id = $1",
                             std::array<meta::value, 1>{id});
        if (!r) return r.error();
        if (r->data.empty())
            return make_error("not_found", "No connector with id " + std::to_string(id), "id");
        return opened(from_row(r->data.front()));
    }

    static bool same_config(const connector& a, const connector& b) {
        return a.updated_at == b.updated_at && a.name == b.name && a.enabled == b.enabled;
    }

    // Brings the runners in line with `wanted` (the store's rows): new or changed enabled
    // connectors (re)start, removed or disabled ones stop. Stopping joins outside the lock.
    void apply(const std::vector<connector>& wanted) {
        std::vector<std::unique_ptr<runner>> retired;
        {
            std::lock_guard lock(mu);
            if (!started) return;
            std::map<int64_t, const connector*> by_id;
            for (const auto& c : wanted)
                by_id[c.id] = &c;
            for (auto it = runners.begin(); it != runners.end();) {
                auto w = by_id.find(it->first);
                if (w == by_id.end() || !w->second->enabled ||
                    !same_config(*w->second, it->second->config)) {
                    retired.push_back(std::move(it->second));
                    it = runners.erase(it);
                } else {
                    ++it;
                }
            }
            for (const auto& c : wanted) {
                if (!c.enabled || runners.contains(c.id)) continue;
                auto r = std::make_unique<runner>();
                r->config = c;
                r->state->status = "connecting";
                auto* raw = r.get();
                raw->thread = std::thread([this, raw] { run(*raw); });
                runners[c.id] = std::move(r);
            }
        }
        for (auto& r : retired)
            stop_runner(*r);
    }

    static void stop_runner(runner& r) {
        {
            std::lock_guard lock(r.mu);
            r.stopping = true;
        }
        r.cv.notify_all();
        if (r.thread.joinable()) r.thread.join();
    }

    void stop_all() {
        std::map<int64_t, std::unique_ptr<runner>> all;
        {
            std::lock_guard lock(mu);
            started = false;
            all.swap(runners);
        }
        for (auto& [id, r] : all)
            stop_runner(*r);
    }

    // Sleeps until `until` or until the runner is asked to stop; false when it is.
    static bool wait_until(runner& r, std::chrono::steady_clock::time_point until) {
        std::unique_lock lock(r.mu);
        r.cv.wait_until(lock, until, [&r] { return r.stopping; });
        return !r.stopping;
    }

    void run(runner& r) {
        const connector& c = r.config;
        const metrics::labels label{c.name};
        auto points =
            metrics.get_counter("clisonix_connector_points_read_total",
                                "Points a connector read and wrote", {"connector"}, label);
        auto errors =
            metrics.get_counter("clisonix_connector_errors_total",
                                "Failed connects and polls of a connector", {"connector"}, label);
        auto requests =
            metrics.get_counter("clisonix_connector_requests_total",
                                "Protocol requests a connector sent", {"connector"}, label);
        auto connected =
            metrics.get_gauge("clisonix_connector_connected",
                              "1 while a connector's session is connected", {"connector"}, label);
        auto& breaker = breakers.get("connector:" + c.endpoint);
        const driver* d = drivers.find(c.type);
        std::unique_ptr<session> s;
        bool is_connected = false;
        uint64_t requests_counted = 0;
        int failures_in_a_row = 0;
        std::vector<reading> out;
        storage::write_batch batch;
        std::vector<uint32_t> series_of(c.mappings.size());
        // Each mapping entry's series key, built once: the mapping is fixed for the runner's
        // life (a change restarts it), and a poll of thousands of registers should not
        // format thousands of keys.
        std::vector<std::string> keys;
        keys.reserve(c.mappings.size());
        for (const auto& m : c.mappings) {
            const std::pair<std::string, std::string> tag{"device", m.device};
            keys.push_back(storage::make_key("telemetry", std::span(&tag, 1), m.metric));
        }
        const auto interval = std::chrono::milliseconds(c.poll_interval_ms);
        auto next = std::chrono::steady_clock::now();

        auto set_state = [&](std::string_view status, const std::string* error) {
            std::lock_guard lock(r.mu);
            r.state->status = std::string(status);
            if (error) {
                r.state->last_error = *error;
                r.state->last_error_at = now_ms();
                ++r.state->errors;
            }
        };
        auto count_requests = [&] {
            if (!s) return;
            const uint64_t total = s->requests();
            if (total > requests_counted)
                requests.inc(static_cast<double>(total - requests_counted));
            requests_counted = total;
        };
        // A failure closes the session and waits a backoff (at least the breaker's retry time)
        // before the next connect.
        auto failed = [&](const std::string& message) {
            errors.inc();
            count_requests();
            if (s) s->close();
            s.reset();
            is_connected = false;
            connected.set(0);
            set_state("failing", &message);
            log::warn("connector failed", {{"connector", c.name}, {"error", message}});
            ++failures_in_a_row;
            auto delay =
                resilience::backoff(failures_in_a_row, opts.backoff_base, opts.backoff_max);
            delay = std::max(delay, std::min(breaker.retry_in(), opts.backoff_max));
            next = std::chrono::steady_clock::now() + delay;
        };

        while (wait_until(r, next)) {
            if (!is_connected) {
                set_state(failures_in_a_row ? "failing" : "connecting", nullptr);
                s = d->open(c);
                requests_counted = 0;
                auto st = resilience::call(breaker, [&] { return s->connect(); });
                if (!st) {
                    failed(st.error().message);
                    continue;
                }
                is_connected = true;
                connected.set(1);
                set_state("connected", nullptr);
            }
            out.clear();
            auto st = resilience::call(breaker, [&] { return s->poll(out); });
            count_requests();
            if (!st) {
                failed(st.error().message);
                continue;
            }
            if (!out.empty()) {
                batch.clear();
                bool ok = true;
                const int64_t ts = now_ns();
                for (size_t i = 0; i < c.mappings.size() && ok; ++i) {
                    auto idx = batch.series(keys[i], storage::value_type::float64);
                    if (!idx)
                        ok = false;
                    else
                        series_of[i] = *idx;
                }
                for (const auto& rd : out)
                    if (ok && rd.index < series_of.size() && std::isfinite(rd.value))
                        batch.add(series_of[rd.index], ts, rd.value);
                auto written = ok ? sink(batch)
                                  : status(make_error("invalid_argument",
                                                      "two mapping entries name one series with "
                                                      "different types"));
                if (!written) {
                    // The endpoint answered; the write was refused (overload, full disk): not
                    // the endpoint's fault, so the session stays open.
                    errors.inc();
                    std::string message = "write refused: " + written.error().message;
                    set_state("connected", &message);
                } else {
                    points.inc(static_cast<double>(batch.point_count()));
                    std::lock_guard lock(r.mu);
                    r.state->points_read += batch.point_count();
                    r.state->last_success = now_ms();
                }
            } else {
                std::lock_guard lock(r.mu);
                r.state->last_success = now_ms();
            }
            failures_in_a_row = 0;
            // On the connector's own beat (no drift from wake-ups): a poll or write that
            // overran one or more ticks skips them rather than polling twice at once.
            const auto now = std::chrono::steady_clock::now();
            next += interval;
            if (next <= now) next += interval * ((now - next) / interval + 1);
        }
        if (s) s->close();
        connected.set(0);
    }
};

service::service(meta::store& store, driver_registry drivers, sink_fn sink, options opts,
                 metrics::registry& metrics)
    : _impl(std::make_unique<impl>(store, std::move(drivers), std::move(sink), std::move(opts),
                                   metrics)) {}

service::~service() {
    stop();
}

status service::start() {
    {
        std::lock_guard lock(_impl->mu);
        _impl->started = true;
    }
    return reload();
}

void service::stop() {
    _impl->stop_all();
}

status service::reload() {
    auto all = _impl->load();
    if (!all) return all.error();
    _impl->apply(*all);
    return {};
}

status service::validate(const connector& c) const {
    return validate_common(c, _impl->drivers);
}

result<connector> service::create(connector c) {
    if (auto st = validate(c); !st) return st.error();
    const int64_t now = now_ms();
    c.created_at = c.updated_at = now;
    const std::string plain = c.password;
    auto st = _impl->store.transaction([&](meta::store& tx) -> status {
        auto taken = tx.query("SELECT 1 FROM connectors WHERE name = $1",
                              std::array<meta::value, 1>{c.name});
        if (!taken) return taken.error();
        if (!taken->data.empty())
            return make_error("conflict", "A connector named " + c.name + " exists", "name");
        auto ins = tx.execute(
            "INSERT INTO connectors (name, type, enabled, endpoint, username, password, "
            "poll_interval_ms, timeout_ms, mapping, created_at, updated_at) VALUES ($1, $2, $3, "
            "$4, $5, '', $6, $7, $8, $9, $9)",
            std::array<meta::value, 9>{c.name, c.type, int64_t{c.enabled ? 1 : 0}, c.endpoint,
                                       c.username, c.poll_interval_ms, c.timeout_ms,
                                       mappings_json(c.mappings), now});
        if (!ins) return ins.error();
        auto id = tx.query("SELECT id FROM connectors WHERE name = $1",
                           std::array<meta::value, 1>{c.name});
        if (!id) return id.error();
        c.id = as_int(id->data.at(0).at(0));
        // Sealed once the id is known: the id is part of what the seal authenticates.
        auto pw = tx.execute(
            "UPDATE connectors SET password = $2 WHERE id = $1",
            std::array<meta::value, 2>{
                c.id, notify::seal_secret(_impl->opts.secret_key, secret_context(c.id), plain)});
        if (!pw) return pw.error();
        return {};
    });
    if (!st) return st.error();
    if (auto r = reload(); !r) log::warn("connectors not reloaded", {{"error", r.error().message}});
    return c;
}

result<connector> service::update(int64_t id, connector c) {
    auto old = get(id);
    if (!old) return old.error();
    c.id = id;
    if (c.password.empty()) c.password = old->password;
    if (auto st = validate(c); !st) return st.error();
    c.created_at = old->created_at;
    // Strictly later than before: the runners tell a changed row by its updated_at.
    c.updated_at = std::max(now_ms(), old->updated_at + 1);
    auto st = _impl->store.transaction([&](meta::store& tx) -> status {
        auto taken = tx.query("SELECT 1 FROM connectors WHERE name = $1 AND id <> $2",
                              std::array<meta::value, 2>{c.name, id});
        if (!taken) return taken.error();
        if (!taken->data.empty())
            return make_error("conflict", "A connector named " + c.name + " exists", "name");
        auto n = tx.execute(
            "UPDATE connectors SET name = $2, type = $3, enabled = $4, endpoint = $5, username = "
            "$6, password = $7, poll_interval_ms = $8, timeout_ms = $9, mapping = $10, "
            "updated_at = $11 WHERE id = $1",
            std::array<meta::value, 11>{
                id, c.name, c.type, int64_t{c.enabled ? 1 : 0}, c.endpoint, c.username,
                notify::seal_secret(_impl->opts.secret_key, secret_context(id), c.password),
                c.poll_interval_ms, c.timeout_ms, mappings_json(c.mappings), c.updated_at});
        if (!n) return n.error();
        if (*n == 0)
            return make_error("not_found", "No connector with id " + std::to_string(id), "id");
        return {};
    });
    if (!st) return st.error();
    if (auto r = reload(); !r) log::warn("connectors not reloaded", {{"error", r.error().message}});
    return c;
}

status service::remove(int64_t id) {
    auto n = _impl->store.execute("DELETE FROM connectors WHERE id = $1",
                                  std::array<meta::value, 1>{id});
    if (!n) return n.error();
    if (*n == 0) return make_error("not_found", "No connector with id " + std::to_string(id), "id");
    return reload();
}

result<connector> service::get(int64_t id) {
    return _impl->load_one(id);
}

result<std::vector<connector>> service::list() {
    return _impl->load();
}

connector_state service::state(int64_t id) {
    connector_state out;
    std::string endpoint;
    {
        std::lock_guard lock(_impl->mu);
        auto it = _impl->runners.find(id);
        if (it == _impl->runners.end()) return out;  // disabled (or not started)
        std::lock_guard state_lock(it->second->mu);
        out = *it->second->state;
        endpoint = it->second->config.endpoint;
    }
    out.breaker =
        std::string(resilience::state_name(_impl->breakers.get("connector:" + endpoint).state()));
    return out;
}

const driver_registry& service::drivers() const {
    return _impl->drivers;
}

}  // namespace clisonix::connectors
