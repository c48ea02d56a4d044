// Clisonix — cluster: the replicated telemetry log on NATS JetStream.
//
// Without `cluster.nats` none of this runs: a node writes into its own engine as always.
// With it, a write batch is split by shard (a stable hash of the `device` tag, or of the
// series key when there is none); each shard's part is published to the JetStream stream
// CLISONIX_TELEMETRY on subject `clisonix.telemetry.<shard>` with a message id, so that a
// retried publish is stored once. The client's write is acknowledged only after JetStream
// acknowledged every part, and after this node's own applier applied them (read your
// writes). Every node applies every shard, in stream order, through a durable consumer named
// after its node id, into its local engine, acknowledging a message only once the engine
// write returned; a restarted node resumes from its consumer and catches up. The stream keeps
// messages for cluster.stream_max_age; each node records in its data directory the last
// sequence its engine holds, so that a node started on a copy of another node's data
// directory starts its consumer after that sequence, and a node that was away longer than
// the log keeps messages reports the gap (ready()) instead of answering with holes.
// docs/format/cluster-log.md is the payload; docs/decisions/0071-cluster-telemetry-log.md
// the design; docs/cluster.md the whole layout, its failures and limits.
//
// Thread safety: telemetry_log::publish may be called from any thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "storage/storage.h"

namespace clisonix::config {
class config;
}

namespace clisonix::ingest {
class pipeline;
}

namespace clisonix::cluster {

inline constexpr std::string_view stream_name = "CLISONIX_TELEMETRY";
inline constexpr std::string_view subject_prefix = "clisonix.telemetry.";

struct options {
    std::string node_id;                 // cluster.node_id: the durable consumer's name
    std::vector<std::string> nats_urls;  // cluster.nats
    uint32_t shards = 16;                // cluster.shards
    int stream_replicas = 3;             // cluster.stream_replicas
    std::chrono::milliseconds publish_timeout{5000};             // cluster.publish_timeout
    std::chrono::milliseconds apply_wait{5000};                  // cluster.apply_wait
    std::chrono::milliseconds start_timeout{30000};              // cluster.start_timeout
    std::chrono::milliseconds stream_max_age{72 * 3600 * 1000};  // cluster.stream_max_age
    // Where the node records the last stream sequence its engine holds (data.dir); empty:
    // not recorded.
    std::string state_dir;
};

// The file in options::state_dir that records the last stream sequence applied there.
inline constexpr std::string_view applied_file = "cluster-applied";

// The `cluster.*` keys: nullopt when `cluster.nats` is empty (a single node); an error
// (code invalid_config, field the key) when only one of `cluster.nats` and
// `cluster.node_id` is set.
result<std::optional<options>> options_from(const config::config& cfg);

// The shard of a canonical series key: FNV-1a 64 of its `device` tag's value (unescaped),
// or of the whole key when it has no device tag, modulo `shards`.
uint32_t shard_of(std::string_view series_key, uint32_t shards);

// The payload of one shard's message (docs/format/cluster-log.md): the points of `batch`
// whose series fall in `shard`, in batch order. Empty when there are none.
void encode_shard(const storage::write_batch& batch, std::span<const uint32_t> shard_of_series,
                  uint32_t shard, std::string& out);
// Clears `out` and fills it from a payload; "corrupt" when the bytes do not parse.
status decode(std::string_view payload, storage::write_batch& out);
// Adds a payload's points after those in `out` (several messages applied as one write);
// also "invalid_argument" when a key comes with another type than `out` has for it. On
// error `out` holds part of the payload.
status decode_append(std::string_view payload, storage::write_batch& out);

// The node's connection to the cluster log: the publisher and the applier.
class telemetry_log {
public:
    // Connects (retrying for start_timeout while the NATS servers come up), creates the stream
    // if it does not exist, and starts the applier, which writes through `sink.apply`.
    static result<std::unique_ptr<telemetry_log>> open(const options& opts, ingest::pipeline& sink);
    virtual ~telemetry_log() = default;

    // Publishes `batch` by shard and returns once JetStream acknowledged every part and this
    // node applied them. Errors: "unavailable" (no acknowledgement within publish_timeout,
    // or not applied here within apply_wait; the message names which), or the engine's error
    // when this node's engine refused the points (a type conflict: "invalid_argument").
    virtual status publish(const storage::write_batch& batch) = 0;

    // Notices between the nodes on NATS core subject `clisonix.notice.<topic>`: at most once,
    // to the nodes connected at that moment, nothing kept (what a notice announces is also in
    // the metadata store). Every other node's handlers of `topic` hear `payload`; this node's
    // do not. "unavailable" when NATS does not take it.
    virtual status broadcast(std::string_view topic, std::string_view payload) = 0;
    // Subscribes at once; `handler` runs on a NATS thread, one notice at a time.
    virtual void on_broadcast(std::string_view topic,
                              std::function<void(std::string_view payload)> handler) = 0;
    // Unsubscribes every handler (none runs after it returns), before the parts they call
    // stop; stop() does it too.
    virtual void stop_notices() = 0;

    // Whether this node has applied what the log held when it started (or found nothing left
    // to fetch): "unavailable" naming how far it is until then. A restarted node answers
    // requests only once this holds (serve's cluster gate), so that nobody reads the hole its
    // downtime left; once true it stays true.
    virtual status caught_up() const = 0;

    // Whether this node holds everything the log ever held: "unavailable" naming the
    // messages it missed when the log dropped them (older than cluster.stream_max_age)
    // before this node applied them; /readyz answers 503 with it.
    virtual status ready() const = 0;

    // Stops the applier (before the engine closes) and closes the connection.
    virtual void stop() = 0;
};

}  // namespace clisonix::cluster
