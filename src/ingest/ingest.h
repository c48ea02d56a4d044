// Clisonix — ingest: the write path from request bodies to durable, validated batches.
//
// Two parsers fill a storage::write_batch:
//   - InfluxDB line protocol (`measurement,tag=v field=1.5,n=3i,ok=t,s="x" 1704067200000000000`),
//     exactly as the InfluxDB line protocol reference says: escaping, quoting, the i/u
//     suffixes, booleans, comments, optional timestamps in ns/us/ms/s (and m/h for 1.x).
//   - JSON telemetry for one device: {"temperature":21.5}, {"ts":<ms>,"values":{...}}, or an
//     array of these, stored as measurement `telemetry` with tag `device`.
// A request is atomic: every line (element) is valid and the batch is filled, or the parse
// fails, the batch is left empty, and the error names the first bad line ("line 3") or JSON
// path ("[1].values.temperature") with the reason. Passing a limit is code "too_large".
//
// The line parser is the product's hot path: a parser and a batch reused across requests
// allocate nothing per line or point once warmed up.
//
// The pipeline writes a batch to the engine (durable on return) and then hands it to the
// listeners (anomaly detection, rules). add_routes() declares the HTTP write endpoints.
//
// Thread safety: a parser is used by one thread at a time; pipeline::submit may be called
// from any thread; listeners are added before the first submit.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/result.h"
#include "storage/storage.h"

namespace clisonix::config {
class config;
}

namespace clisonix::http {
class router;
struct request;
}  // namespace clisonix::http

namespace clisonix::ingest {

// Bounds on one request; each mirrors a config key (named in the error when passed).
struct limits {
    uint64_t max_line_bytes = 64 * 1024;           // ingest.max_line_bytes
    uint64_t max_points_per_request = 1'000'000;   // ingest.max_points_per_request
    uint64_t max_series_per_request = 100'000;     // ingest.max_series_per_request
    uint64_t max_body_bytes = 8ull * 1024 * 1024;  // http.body_limit: bounds inflated gzip too
};

// The limits from the `ingest.*` config keys and http.body_limit.
limits limits_from(const config::config& cfg);

enum class precision { ns, us, ms, s, m, h };

// "ns"/"n", "us"/"u", "ms", "s", and when `minutes_and_hours` (InfluxDB 1.x) "m", "h".
std::optional<precision> parse_precision(std::string_view text, bool minutes_and_hours = false);

struct line_options {
    precision unit = precision::ns;
    int64_t now_ns = 0;  // the timestamp of lines that carry none
    limits bounds = {};
};

class line_parser {
public:
    line_parser();
    ~line_parser();
    line_parser(line_parser&&) noexcept;
    line_parser& operator=(line_parser&&) noexcept;

    // Clears `out`, then fills it with every point of `body`. On error `out` is empty.
    status parse(std::string_view body, const line_options& opts, storage::write_batch& out);

private:
    struct state;  // scratch buffers and the series cache, kept across requests
    std::unique_ptr<state> _state;
};

struct json_options {
    int64_t now_ns = 0;  // the timestamp of objects without "ts"
    limits bounds = {};
};

class json_parser {
public:
    // Clears `out`, then fills it with the telemetry of `device`. On error `out` is empty.
    status parse(std::string_view body, std::string_view device, const json_options& opts,
                 storage::write_batch& out);

private:
    std::string _key;
    std::vector<unsigned char> _arena;  // backing store of the parsed document, reused
};

// What a Prometheus remote-write request held besides its errors: the samples put in the
// batch, and those left out because they carry no value to store.
struct remote_write_counts {
    uint64_t samples = 0;
    // Staleness markers (the NaN 0x7ff0000000000002 Prometheus writes when a series ends):
    // a query of the stored series ends where its points end; no value stands for the marker
    // (docs/decisions/0085-remote-write-stale-markers.md).
    uint64_t stale_markers = 0;
    // NaN and ±Inf samples: Clisonix stores finite numbers only, as its line protocol does.
    uint64_t not_finite = 0;
};

// Prometheus remote write 1.0: a snappy block-compressed protobuf `prometheus.WriteRequest`.
// Each series' `__name__` is the measurement, its other labels the tags (empty values are
// absent labels), the field `value`; sample timestamps are ms, stored as ns. Metadata and
// exemplars are parsed and ignored.
class remote_write_decoder {
public:
    remote_write_decoder();
    ~remote_write_decoder();
    remote_write_decoder(remote_write_decoder&&) noexcept;
    remote_write_decoder& operator=(remote_write_decoder&&) noexcept;

    // Clears `out`, then fills it with every sample of `body`. On error `out` is empty and the
    // error names the part at fault: "body" (not snappy, not a WriteRequest; "too_large" when
    // it inflates beyond bounds.max_body_bytes) or "timeseries[3].labels[1].name" (no
    // `__name__`, a label name outside [a-zA-Z_][a-zA-Z0-9_]*, one starting with "__", a
    // label twice, a timestamp out of range); "too_large" beyond the points or series bound.
    result<remote_write_counts> decode(std::string_view body, const limits& bounds,
                                       storage::write_batch& out);

private:
    struct state;  // the message, the uncompressed body and the key scratch, kept
    std::unique_ptr<state> _state;
};

// Writes batches to the engine and tells the listeners about every durable batch.
class pipeline {
public:
    using listener = std::function<void(const storage::write_batch&)>;
    // Adds derived points to a batch before it is written (the device registry's
    // out-of-range flags), so that they are durable together with the points they derive
    // from. (Anomaly scores are written later, by the scoring thread, as batches of their own.)
    using enricher = std::function<void(storage::write_batch&)>;

    explicit pipeline(storage::engine& engine) : _engine(engine) {}

    // admit(batch), then apply(batch), or in a cluster the replicator (see below). The
    // engine's error comes back unchanged ("invalid_argument", "overloaded" ...).
    status submit(storage::write_batch& batch);
    // Enrichers, then engine.write(batch); on success every listener sees the batch (with the
    // derived points), in the order added. In a cluster, the applier of the telemetry log
    // calls it for every message (the series quota was checked by the node that took it).
    status apply(storage::write_batch& batch);

    // In a cluster, submit() hands admitted batches to `r` (the telemetry log, src/cluster)
    // instead of applying them; the log applies them on every node through apply().
    // Before the first submit.
    using replicator = std::function<status(const storage::write_batch&)>;
    void replicate_through(replicator r) { _replicator = std::move(r); }

    // The most distinct series one device (the `device` tag) may have, derived series
    // (`.anomaly`, `.out_of_range` ...) not counted; 0 = no bound (ingest.max_series_per_device).
    // Before the first submit. Series that exist already are never refused.
    void limit_series_per_device(uint64_t max);
    // Whether the new series of `batch` fit the bound: error "too_many_requests" (field
    // "metric", the message naming the device, the metric and the limit) and nothing counted,
    // or ok and its new series counted from here on (admitting them again is free). The MQTT
    // broker admits each message before merging it into a batch; submit() admits anyway.
    status admit(const storage::write_batch& batch);

    // Before the first submit: enrichers and listeners are not synchronised against submit.
    void add_enricher(enricher e) { _enrichers.push_back(std::move(e)); }
    void add_listener(listener l) { _listeners.push_back(std::move(l)); }

    storage::engine& engine() { return _engine; }

private:
    struct series_quota;  // series_quota.cpp
    storage::engine& _engine;
    std::shared_ptr<series_quota> _quota;
    std::vector<enricher> _enrichers;
    std::vector<listener> _listeners;
    replicator _replicator;
};

// POST /api/v1/write, /write (InfluxDB 1.x), /api/v2/write (InfluxDB 2.x) with line
// protocol, and POST /api/v1/devices/{device}/telemetry with JSON; all permission::write.
// 204 on success; 400 parse errors and type conflicts; 413 limits; 415 an unknown
// Content-Encoding; 503 + Retry-After: 1 when the engine is overloaded, 503 `storage_full` +
// Retry-After: 10 when the data directory's file system is full.
// POST /prometheus/api/v1/write and /api/v1/prom/write (InfluxDB 1.8's path): Prometheus
// remote write, answered as the remote-write specification wants its senders to act: 204 once
// durable; 4xx for what a retry cannot fix (Prometheus drops the batch), including the series
// quota (400, not 429: a retry would stall the sender's queue for nothing); 5xx only for what
// passes (overload, a full disk).
void add_routes(http::router& routes, pipeline& sink, const limits& bounds);

// The device that the credential of a request speaks for ("" for none).
using device_of_request = std::function<std::string(const http::request&)>;

// POST /api/v1/telemetry (device token as Bearer) and POST /api/v1/{device_token}/telemetry:
// JSON telemetry written as the device the token belongs to, and no other (403 without one).
void add_device_routes(http::router& routes, pipeline& sink, const limits& bounds,
                       device_of_request device_of);

// Inflates a gzip body into `out`, at most `max_bytes` of it. Errors: "too_large" beyond
// the bound, "invalid_argument" for bytes that are not gzip.
status gunzip(std::string_view body, uint64_t max_bytes, std::string& out);

}  // namespace clisonix::ingest
