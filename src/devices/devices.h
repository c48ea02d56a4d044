// Clisonix — devices and the asset graph: devices, device types (profiles), attributes,
// online status, assets, relations and the graph queries over them.
//
// Model (in the metadata store; migrations 7-9):
//   - a device has a unique name (its `device` tag in telemetry), a type, a label and a
//     description; its access token is issued by auth and shown once, at creation;
//   - a device type (profile) lists the metrics its devices send, each with a unit and an
//     expected range, and the time without telemetry after which a device is offline. A
//     type named by a device but not yet defined is created with defaults;
//   - attributes in three scopes: client (reported by the device, over MQTT), server (set
//     by the platform) and shared (set by the platform, pushed to the device);
//   - assets (site, area, line, machine or any other type) and typed relations between
//     assets and devices. `contains` is the hierarchy (never a cycle); other types
//     (`feeds`, `monitors`, custom) are free. Devices and assets share one id space and one
//     name space, so a node is named everywhere by its name or its numeric id (names are
//     never all digits).
//
// Telemetry beside the store: `seen()` keeps the last-seen time in memory (a hash lookup and
// an atomic store) and a thread flushes it to the store every `flush_interval` and at stop.
// `enrich()` flags points outside their type's expected range with a point 1.0 in the series
// `<metric>.out_of_range` (same measurement, tags and timestamp), so the flag is as durable
// as the point; the range of each series key is cached, so the hot path queries nothing.
// The registry mirrors devices and types in memory: one registry per metadata store.
//
// Error codes: "invalid_argument" (with the field), "not_found", "conflict" (duplicate
// name, a type in use, a `contains` cycle), and the store's ("unavailable" ...).
//
// Thread safety: every method may be called from any thread. Listeners are called without
// locks held, after the change is committed.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <iosfwd>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "auth/auth.h"
#include "common/result.h"
#include "config/config.h"
#include "meta/meta.h"
#include "storage/storage.h"

namespace clisonix::http {
class router;
}

namespace clisonix::devices {

struct options {
    // Offline timeout of the profiles created on the fly (devices.offline_timeout).
    std::chrono::milliseconds offline_timeout{10 * 60 * 1000};
    // How often last-seen times are written to the store (devices.flush_interval).
    std::chrono::milliseconds flush_interval{10'000};
    // Series keys whose range is cached; beyond, the cache starts over.
    size_t max_cached_series = 1'000'000;
    // Attributes per device over all scopes (devices.max_attributes): a write adding more
    // is refused whole with "too_many_requests"; updates of existing keys always pass.
    size_t max_attributes = 1000;
    // Largest attribute value as JSON text (devices.max_attribute_bytes): "too_large".
    size_t max_attribute_bytes = 8 * 1024;
};

// The options from the `devices.*` config keys.
options options_from(const config::config& cfg);

struct metric_spec {
    std::string unit;
    std::optional<double> min;  // the expected range; outside it a point is flagged
    std::optional<double> max;
};

// How a type's devices are analysed (migration 15). Every member left unset falls back to
// the server's default (the analytics.* config keys), so a type says only what differs.
struct type_analytics {
    std::optional<std::string> detector;              // an analytics detector name, or "off"
    std::optional<std::vector<std::string>> metrics;  // globs over field names that are scored
    std::optional<bool> health;                       // one machine-health score per device
    std::optional<int64_t> health_baseline_ms;        // how long health learns before scoring
    bool operator==(const type_analytics&) const = default;
};

struct device_type {
    int64_t id = 0;
    std::string name;
    std::string description;
    std::map<std::string, metric_spec> metrics;
    int64_t offline_timeout_ms = 0;
    type_analytics analytics;
    int64_t created_at = 0;  // Unix ms
    int64_t updated_at = 0;
};

struct type_update {
    std::optional<std::string> description;
    std::optional<std::map<std::string, metric_spec>> metrics;
    std::optional<int64_t> offline_timeout_ms;
    std::optional<type_analytics> analytics;  // replaces the type's analytics as a whole
};

// The baseline window a user chose for a device's health model (unix ms, [from, to)).
struct health_baseline {
    std::string device;
    int64_t from_ms = 0;
    int64_t to_ms = 0;
    std::string set_by;
    int64_t updated_at = 0;
};

struct device {
    int64_t id = 0;
    std::string name;
    std::string type;
    std::string label;
    std::string description;
    int64_t created_at = 0;
    int64_t updated_at = 0;
    std::optional<int64_t> last_seen;  // Unix ms
    bool online = false;               // seen within its type's timeout, or connected
    bool connected = false;            // an MQTT session is open
};

struct new_device {
    std::string name;
    std::string type = "default";
    std::string label;
    std::string description;
};

struct device_update {
    std::optional<std::string> type;
    std::optional<std::string> label;
    std::optional<std::string> description;
};

struct created_device {
    device info;
    std::string token;  // shown once
};

struct asset {
    int64_t id = 0;
    std::string name;
    std::string type;
    std::string label;
    std::string description;
    int64_t created_at = 0;
    int64_t updated_at = 0;
};

struct new_asset {
    std::string name;
    std::string type;
    std::string label;
    std::string description;
};

struct asset_update {
    std::optional<std::string> type;
    std::optional<std::string> label;
    std::optional<std::string> description;
};

// A device or an asset in the graph.
struct node {
    int64_t id = 0;
    std::string kind;  // "asset" or "device"
    std::string name;
    std::string type;  // asset type or device type
    int depth = 0;     // in subtree and ancestor answers: the distance from the start
};

struct relation {
    int64_t id = 0;
    node from;
    node to;
    std::string type;
    int64_t created_at = 0;
};

struct relation_filter {
    std::string from;  // a node's name or id; empty: any
    std::string to;
    std::string type;
};

// A shortest path: nodes[0] is the start, nodes.back() the end; edges[i] joins nodes[i] and
// nodes[i+1] in either direction (the edge says which).
struct path {
    std::vector<node> nodes;
    std::vector<relation> edges;
};

// One row of a device import (CSV: name,type,label,description).
struct import_row {
    size_t line = 0;  // 1-based line in the CSV text
    new_device device;
};
struct import_error {
    size_t line = 0;
    std::string field;  // "name", "type", ... or "" for the whole row
    std::string message;
};
struct import_report {
    std::vector<std::pair<size_t, created_device>> created;  // (line, device and token)
    std::vector<std::pair<size_t, std::string>> skipped;     // (line, name) already existing
    std::vector<import_error> errors;
};

// Parses device CSV: an optional header row naming the columns (name, type, label,
// description; name required), else the columns in that order. Errors name line and field.
// A header that is wrong is one error for line 1 and no rows.
void parse_device_csv(std::string_view text, std::vector<import_row>& rows,
                      std::vector<import_error>& errors);

class registry {
public:
    // `store` and `auth` outlive the registry, and `auth` works on the same store: a device
    // and its token are created in one transaction.
    registry(meta::store& store, auth::auth_service& auth, options opts = {});
    ~registry();  // stop()
    registry(const registry&) = delete;
    registry& operator=(const registry&) = delete;

    // Loads the devices and types into memory and starts the last-seen flusher.
    status start();
    // Reads the devices and types again (changed by another process sharing the store),
    // keeping what only this process knows of a device (unflushed last-seen, connected).
    status reload();
    // Flushes last-seen times and stops the flusher (idempotent).
    void stop();
    // Writes pending last-seen times now.
    status flush();

    // ---- device types
    // id and times are ignored; offline_timeout_ms 0 = options::offline_timeout.
    result<device_type> create_type(const device_type& t);
    result<std::vector<device_type>> list_types();
    result<device_type> get_type(std::string_view ref);  // name or id
    result<device_type> update_type(std::string_view ref, const type_update& change);
    status delete_type(std::string_view ref);  // "conflict" while devices use it

    // ---- devices
    result<created_device> create_device(const new_device& d, const auth::actor& by);
    result<std::vector<device>> list_devices(std::string_view type_filter = {});
    result<device> get_device(std::string_view ref);  // name or id
    result<device> update_device(std::string_view ref, const device_update& change);
    status delete_device(std::string_view ref, const auth::actor& by);  // revokes its token
    // POST /api/v1/devices/{device}/token: issued when the device has none, rotated when it
    // has one (the old token stops working); a device not registered yet is created with
    // the default type, so that every token belongs to a device the registry knows.
    result<std::string> issue_token(std::string_view device, const auth::actor& by);
    result<std::string> type_of(std::string_view device);

    // ---- analytics settings, for the scoring thread (from the in-memory mirror, no query)
    // The analytics of the device's type; nullopt for a device that is not registered.
    std::optional<type_analytics> analytics_of(std::string_view device) const;
    // Changes whenever a device or type changes: answers of analytics_of() cached under an
    // older generation are stale.
    uint64_t generation() const;
    // The health baseline windows users chose (one per device at most).
    status set_health_baseline(const health_baseline& b);
    result<std::vector<health_baseline>> health_baselines();

    // Bulk provisioning: every good row is created, every bad one reported; existing names
    // are skipped (so that an import can be run again).
    import_report import_devices(const std::vector<import_row>& rows, const auth::actor& by);

    // ---- attributes: values are JSON; `json_object` maps keys to values.
    // scope: "client", "server", "shared"; empty = all three ({"client":{..},...}).
    result<std::string> attributes(std::string_view device, std::string_view scope);
    status set_attributes(std::string_view device, std::string_view scope,
                          std::string_view json_object);
    status delete_attributes(std::string_view device, std::string_view scope,
                             const std::vector<std::string>& keys);
    status set_client_attributes(std::string_view device, std::string_view json_object);
    // MQTT attribute request {"clientKeys":"a,b","sharedKeys":"c"} ->
    // {"client":{...},"shared":{...}}; no key lists = every client and shared attribute.
    result<std::string> attribute_response(std::string_view device, std::string_view request);
    // Shared attributes changed through the API: `json` is an object of the changed keys.
    void on_shared_attributes(
        std::function<void(const std::string& device, const std::string& json)> listener);
    // Called after every change of devices, types, assets or relations, on the thread that
    // made it: what answers "which devices are under this asset / of this type" must be
    // asked again (the rules engine's cached scopes).
    void on_change(std::function<void()> listener);

    // ---- online status
    void seen(std::string_view device, int64_t unix_ms);
    void set_connected(std::string_view device, bool connected);
    // A death announced by the device's gateway (Sparkplug B NDEATH/DDEATH): offline now,
    // whatever its type's timeout and however late its last points are written, until
    // set_connected(device, true) (its next birth).
    void set_offline(std::string_view device);

    // ---- telemetry hooks for ingest::pipeline
    void enrich(storage::write_batch& batch);         // enricher: out-of-range flags
    void observe(const storage::write_batch& batch);  // listener: seen() per device

    // ---- assets
    result<asset> create_asset(const new_asset& a);
    result<std::vector<asset>> list_assets(std::string_view type_filter = {});
    result<asset> get_asset(std::string_view ref);
    result<asset> update_asset(std::string_view ref, const asset_update& change);
    status delete_asset(std::string_view ref);  // and its relations

    // ---- relations: from/to are names or ids of assets or devices.
    result<relation> add_relation(std::string_view from, std::string_view to,
                                  std::string_view type);
    result<std::vector<relation>> list_relations(const relation_filter& filter);
    status delete_relation(int64_t id);

    // ---- graph queries over `contains` (children: over `type`, "*" = any)
    result<node> resolve(std::string_view ref);
    result<std::vector<node>> children(std::string_view ref, std::string_view type = "contains");
    result<std::vector<node>> ancestor_nodes(std::string_view ref);  // nearest first
    result<std::vector<node>> subtree(std::string_view ref, int depth = -1);
    // Shortest path over relations of any type and either direction (`directed`: from->to
    // only). "not_found" when there is none.
    result<path> shortest_path(std::string_view from, std::string_view to, bool directed = false);

    // Names of devices under an asset (by name or id), through `contains`, to `depth`
    // (-1 = all). Sorted.
    result<std::vector<std::string>> devices_under(std::string_view asset, int depth = -1);
    // Names of every asset above a device or asset (nearest first).
    result<std::vector<std::string>> ancestors(std::string_view node);

private:
    struct impl;
    std::unique_ptr<impl> _impl;
};

// /api/v1/devices, /api/v1/device-types, /api/v1/assets, /api/v1/relations,
// /api/v1/graph/path and /api/v1/devices/{id}/token.
void add_routes(http::router& routes, registry& reg);

// `clisonix device import FILE --tokens-out FILE`: reads the CSV, posts it in chunks through
// `post` (the body of POST /api/v1/devices/import; returns status and body), writes the
// tokens of new devices to `tokens_out` (mode 0600), progress on `err` (a bar when
// `tty`), per-row errors as `FILE:LINE: field: reason`. Returns 0, 1 (server or I/O
// failure) or 2 (bad input: an unreadable file, a bad header, any bad row).
struct import_command {
    std::string file;
    std::string tokens_out;
    size_t chunk_rows = 500;
};
struct post_result {
    int status = 0;
    std::string body;
};
int run_import_command(const import_command& cmd,
                       const std::function<result<post_result>(const std::string& csv)>& post,
                       std::ostream& out, std::ostream& err, bool tty);

}  // namespace clisonix::devices
