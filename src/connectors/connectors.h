// Clisonix — industrial connectors: Clisonix connects to machines that speak a plant-floor
// protocol (Modbus TCP today) and writes what it reads through the ingest pipeline, as any
// other client's points (durable, scored, evaluated by rules).
//
// A connector is configuration in the metadata store (table `connectors`, admin routes at
// /api/v1/connectors):
//   {"name":"press-4","type":"modbus","enabled":true,"endpoint":"tcp://10.0.0.5:502",
//    "poll_interval_ms":1000,"timeout_ms":1000,
//    "mapping":[{"address":"holding:0","unit_id":1,"device":"press-4","metric":"temperature",
//                "unit":"°C","scale":0.1,"offset":0,"data_type":"int16",
//                "word_order":"big","byte_order":"big"}, ...]}
// Credentials (`username`, `password`) are kept for the protocols that have them; the
// password is sealed at rest like notification channel secrets (AES-256-GCM, notify.h) and
// never returned: reads say `password_set`.
//
// Each type is one `driver` (validation of its parts of the document, and sessions that
// connect and read) registered in builtin_drivers(). The runner gives every enabled
// connector a thread of its own: a connector that fails, is slow or hangs never delays
// another one or the ingest path. Every connect and read goes through the connector
// endpoint's circuit breaker (resilience.h, endpoint "connector:<endpoint>"); after a
// failure the session is closed and reconnected after backoff with full jitter.
//
// Points: measurement `telemetry`, tag `device`, field `metric` (as JSON telemetry), value
// raw * scale + offset as a float, timestamped when the poll's answer came. A poll that
// fails writes nothing: an outage is a gap in the data.
//
// Metrics (label `connector`, the name): clisonix_connector_points_read_total,
// clisonix_connector_errors_total, clisonix_connector_requests_total (protocol requests),
// clisonix_connector_connected (1 or 0); and the breakers' own.
//
// Thread safety: every member of service may be called from any thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "config/config.h"
#include "http/http.h"
#include "meta/meta.h"
#include "observe/observe.h"
#include "resilience/resilience.h"
#include "storage/storage.h"

namespace clisonix::connectors {

// One protocol address read into one series.
struct mapping {
    // The protocol's address. Modbus: "<table>:<register>" with table holding, input, coil
    // or discrete and register 0..65535 (the protocol address, not the 4xxxx number).
    std::string address;
    int64_t unit_id = 1;  // Modbus: the unit (slave) id, 0..255
    std::string device;
    std::string metric;
    std::string unit;  // shown to people; not part of the series
    double scale = 1;
    double offset = 0;
    // int16 uint16 int32 uint32 int64 uint64 float32 float64 (registers) or bool (bits).
    std::string data_type = "uint16";
    std::string word_order = "big";  // "big": the first register holds the most significant word
    std::string byte_order = "big";  // "little": the two bytes of every register swapped
};

struct connector {
    int64_t id = 0;
    std::string name;  // 1..64 of [A-Za-z0-9._-], starting with a letter or digit; unique
    std::string type;  // a registered driver's type
    bool enabled = true;
    std::string endpoint;  // Modbus: tcp://host:port
    std::string username;
    std::string password;  // plaintext in memory; sealed in the store
    int64_t poll_interval_ms = 1000;
    int64_t timeout_ms = 1000;
    std::vector<mapping> mappings;
    int64_t created_at = 0;  // Unix ms
    int64_t updated_at = 0;
};

// What a session read: the value of mapping `index` (raw * scale + offset already applied).
struct reading {
    size_t index;
    double value;
};

// One connection to an endpoint, used by one runner thread only (drivers need not be
// thread safe: libmodbus contexts are not).
class session {
public:
    virtual ~session() = default;
    // Connects within the connector's timeout; an error says why ("unavailable": refused,
    // timed out; "invalid_argument": the endpoint cannot be used).
    virtual status connect() = 0;
    // Reads every mapping once (a subscribing driver: what arrived since the last call,
    // waiting at most the poll interval), appending to `out`. Any error fails the whole poll:
    // nothing of it is written, and the runner closes the session and reconnects.
    virtual status poll(std::vector<reading>& out) = 0;
    virtual void close() = 0;
    // Protocol requests sent since the session opened (for the requests metric).
    virtual uint64_t requests() const { return 0; }
};

// A protocol.
class driver {
public:
    virtual ~driver() = default;
    virtual std::string_view type() const = 0;
    // The type-specific checks of a connector that passed the common ones (name, intervals,
    // device and metric names, data types, orders): "invalid_argument" naming the field,
    // e.g. "endpoint" or "mapping[3].address", and the reason.
    virtual status validate(const connector& c) const = 0;
    // A session for a validated connector (not connected yet).
    virtual std::unique_ptr<session> open(const connector& c) const = 0;
};

// The drivers by type.
class driver_registry {
public:
    void add(std::unique_ptr<driver> d);
    const driver* find(std::string_view type) const;
    std::vector<std::string> types() const;

private:
    std::map<std::string, std::shared_ptr<driver>, std::less<>> _drivers;
};

// Every protocol Clisonix speaks; a new type is one line here (drivers.cpp). OPC UA keeps
// its certificates under opcua_pki_dir (<data.dir>/opcua in the server; empty: security
// None only).
driver_registry builtin_drivers(const std::string& opcua_pki_dir = {});
// The Modbus TCP driver (libmodbus).
std::unique_ptr<driver> make_modbus_driver();
// The OPC UA driver (opcua.h): mapping addresses are node ids ("ns=2;s=Pump1.Temp").
std::unique_ptr<driver> make_opcua_driver(std::string pki_dir);

// A connector's state as the runner sees it.
struct connector_state {
    std::string status = "disabled";  // connected, connecting, failing, disabled
    int64_t last_success = 0;         // Unix ms; 0 = never
    std::string last_error;
    int64_t last_error_at = 0;
    uint64_t points_read = 0;
    uint64_t errors = 0;
    std::string breaker = "closed";
};

struct options {
    resilience::breaker_options breaker;
    std::chrono::milliseconds backoff_base{500};
    std::chrono::milliseconds backoff_max{30'000};
    // 32 bytes sealing passwords at rest (notify::options::secret_key); empty = as given.
    std::string secret_key;
};

// connectors.* config keys; the secret key is the caller's (the notifier's).
options options_from(const config::config& cfg);

// Where points go: ingest::pipeline::submit in the server.
using sink_fn = std::function<status(storage::write_batch& batch)>;

class service {
public:
    // `store` must outlive the service and carry the connectors migration.
    service(meta::store& store, driver_registry drivers, sink_fn sink, options opts,
            metrics::registry& metrics = metrics::global());
    ~service();  // stops every runner
    service(const service&) = delete;
    service& operator=(const service&) = delete;

    // Loads the connectors and starts a runner for each enabled one.
    status start();
    void stop();
    // Re-reads the store and restarts the runners of connectors that changed (another
    // process's changes, heard through the metadata change feed).
    status reload();

    // CRUD. Errors: "invalid_argument" with the field, "conflict" (name taken), "not_found".
    // update replaces everything but the id; an empty password keeps the stored one.
    result<connector> create(connector c);
    result<connector> update(int64_t id, connector c);
    status remove(int64_t id);
    result<connector> get(int64_t id);
    result<std::vector<connector>> list();
    // Validation alone (the common checks, then the driver's).
    status validate(const connector& c) const;

    connector_state state(int64_t id);
    const driver_registry& drivers() const;

private:
    struct impl;
    std::unique_ptr<impl> _impl;
};

// /api/v1/connectors (admin).
void add_routes(http::router& routes, service& s);

}  // namespace clisonix::connectors
