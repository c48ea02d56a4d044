// Clisonix — configuration: the schema, the five sources, and their one-line errors.
#include "config/config.h"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include <toml++/toml.h>

#include "common/edit_distance.h"

namespace clisonix::config {
namespace {

constexpr int64_t kib = 1024;
constexpr int64_t mib = 1024 * kib;
constexpr int64_t gib = 1024 * mib;
constexpr int64_t seconds = 1000;
constexpr int64_t minutes = 60 * seconds;
constexpr int64_t hours = 60 * minutes;

using enum value_type;

std::string check_duration_list(std::string_view text);

// An IANA zone name the system's tz database holds (/usr/share/zoneinfo), read by Ask.
std::string check_time_zone(std::string_view text) {
    if (text.empty()) return {};
    for (char c : text)
        if (!std::isalnum(static_cast<unsigned char>(c)) && c != '/' && c != '_' && c != '-' &&
            c != '+')
            return "expected an IANA time zone name such as Europe/Berlin";
    if (text.front() == '/' || text.find("..") != std::string_view::npos ||
        !std::filesystem::is_regular_file(std::filesystem::path("/usr/share/zoneinfo") / text))
        return "no time zone \"" + std::string(text) + "\" in the system's tz database";
    return {};
}

// A NATS durable consumer name: no dots, wildcards or spaces; kept to a plain alphabet.
std::string check_node_id(std::string_view text) {
    for (char c : text)
        if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_')
            return "may hold only letters, digits, '-' and '_'";
    return {};
}

// Adding a setting is one line here: env name, validation, `config show` and the README
// reference all follow from it. Keep the order the README should list them in.
// clang-format off
constexpr key_spec keys[] = {
    {"http.bind", string, "0.0.0.0", 0, 0, {}, false, "Address the HTTP server listens on"},
    {"http.port", integer, "8030", 1, 65535, {}, false, "HTTP port for the API, dashboard and metrics"},
    {"http.threads", integer, "0", 0, 256, {}, false, "Worker threads serving HTTP; 0 = one per core"},
    {"http.header_limit", size, "16KiB", kib, mib, {}, false, "Largest request header accepted (431 beyond)"},
    {"http.body_limit", size, "8MiB", kib, gib, {}, false, "Largest request body accepted (413 beyond)"},
    {"http.header_timeout", duration, "10s", 100, 10 * minutes, {}, false, "Time a client has to send the request header"},
    {"http.idle_timeout", duration, "60s", seconds, hours, {}, false, "Keep-alive connections idle longer are closed"},
    {"http.drain_timeout", duration, "30s", 0, 10 * minutes, {}, false, "On SIGTERM, how long in-flight requests may take to finish"},
    {"http.max_connections", integer, "10000", 1, 1000000, {}, false, "Concurrent connections accepted; more wait in the backlog"},
    {"http.max_connections_per_ip", integer, "256", 0, 1000000, {}, false, "Concurrent connections from one address; more are closed at once (0 = no limit)"},
    {"http.tls.cert", string, "", 0, 0, {}, false, "PEM certificate chain; with `http.tls.key`, the server speaks only HTTPS"},
    {"http.tls.key", string, "", 0, 0, {}, false, "PEM private key of `http.tls.cert`"},
    {"http.tls.min_version", enumeration, "1.3", 0, 0, "1.3|1.2", false, "Oldest TLS version accepted; 1.1 and below are always refused"},
    {"gateway.login_limit", integer, "100", 1, 1000000, {}, false, "Login and token refresh requests per client address per window"},
    {"gateway.login_window", duration, "15m", seconds, 24 * hours, {}, false, "Window of `gateway.login_limit`"},
    {"gateway.api_limit", integer, "6000", 1, 100000000, {}, false, "API requests per user or API key per window"},
    {"gateway.api_window", duration, "1m", seconds, 24 * hours, {}, false, "Window of `gateway.api_limit`"},
    {"gateway.device_limit", integer, "600", 1, 100000000, {}, false, "Telemetry requests per device per window"},
    {"gateway.device_window", duration, "1m", seconds, 24 * hours, {}, false, "Window of `gateway.device_limit`"},
    {"gateway.trusted_proxies", string, "", 0, 0, {}, false, "Comma-separated proxy addresses or CIDR blocks whose X-Forwarded-For is believed"},
    {"gateway.cors_origins", string, "", 0, 0, {}, false, "Comma-separated origins allowed to call the API from a browser (`https://host:port`)"},
    {"redis.url", string, "", 0, 0, {}, true, "Redis for rate limits and failed-login lockouts shared by several nodes: `redis://[:password@]host[:port][/db]`; empty = in-process"},
    {"cluster.node_id", string, "", 0, 0, {}, false, "This node's id in a cluster (letters, digits, `-`, `_`): the name of its durable consumer of the telemetry log; empty = no cluster", check_node_id},
    {"cluster.nats", string, "", 0, 0, {}, true, "Comma-separated NATS servers (`nats://host:port`, or `nats://user:password@host:port`) holding the replicated telemetry log (JetStream); empty = a single node writing only its own engine"},
    {"cluster.shards", integer, "16", 1, 1024, {}, false, "Shards of the telemetry log (subject `clisonix.telemetry.<shard>`, by a hash of the device); the same on every node"},
    {"cluster.stream_replicas", integer, "3", 1, 5, {}, false, "Copies JetStream keeps of the telemetry log (at most the number of NATS servers); a write is acknowledged once a majority stored it"},
    {"cluster.publish_timeout", duration, "5s", 100, 10 * minutes, {}, false, "How long a write waits for JetStream to acknowledge it (retried with the same message id meanwhile); beyond it the write gets 503 `unavailable`"},
    {"cluster.apply_wait", duration, "5s", 0, 10 * minutes, {}, false, "How long a write acknowledged by JetStream waits for this node to apply it, so that the writer reads it here; beyond it 503 `unavailable` (the points stay in the log and arrive)"},
    {"cluster.start_timeout", duration, "30s", seconds, hours, {}, false, "How long `serve` waits at start for the NATS servers and the telemetry stream before it gives up"},
    {"cluster.stream_max_age", duration, "72h", seconds, 3650 * 24 * hours, {}, false, "How long the telemetry log keeps a message (JetStream MaxAge; the same on every node): a node away longer must start from a copy of another node's data directory (docs/cluster.md); its disk is about ingest rate x 5-8 bytes/point (compressed) x this age on each NATS server"},
    {"data.dir", string, "./data", 0, 0, {}, false, "Directory for the database, logs and time-series data"},
    {"web.dir", string, "", 0, 0, {}, false, "Built dashboard (index.html, assets/) served at `/`; empty = `web/` next to the binary, else `../share/clisonix/web` from it (the package's `/usr/share/clisonix/web`), else `../web/dist`, else the source tree's `web/dist`"},
    {"log.level", enumeration, "info", 0, 0, "trace|debug|info|warn|error", false, "Lowest level written"},
    {"log.file", boolean, "true", 0, 0, {}, false, "Write JSON lines to `<data.dir>/logs/clisonix_YYYY-MM-DD.log`, a file per day"},
    {"log.keep_days", integer, "14", 1, 3650, {}, false, "Rotated log files kept"},
    {"meta.url", string, "", 0, 0, {}, true, "Metadata store: empty = SQLite in data.dir; `sqlite:PATH` or `postgres://user:pass@host:port/db`"},
    {"storage.sync", enumeration, "always", 0, 0, "always|interval", false, "always: a write is acknowledged after its WAL fsync (group commit); interval: before it, fsync every `storage.sync_interval` (acknowledged writes may be lost)"},
    {"storage.sync_interval", duration, "1s", 10, minutes, {}, false, "fsync period when `storage.sync = \"interval\"`"},
    {"storage.retention", duration, "0ms", 0, 100 * 365 * 24 * hours, {}, false, "Data older than this is dropped a whole day at a time (`90d`); 0 = keep forever"},
    {"storage.raw_retention", duration, "0ms", 0, 100 * 365 * 24 * hours, {}, false, "Days older than this keep only their 1-minute and 1-hour rollup rows, their raw points are dropped (`30d`); 0 = raw points as long as the day is kept"},
    {"storage.raw_retention_by_measurement", string, "", 0, 0, {}, false, "`storage.raw_retention` per measurement, overriding it: `telemetry=7d,vibration=2d` (0 = keep raw points)", check_duration_list},
    {"storage.out_of_order_window", duration, "1h", 0, 30 * 24 * hours, {}, false, "How far behind a series' newest point a write may still land"},
    {"storage.max_head", size, "512MiB", mib, 64 * gib, {}, false, "Memory for points not yet in blocks; beyond it writes get 503 + Retry-After"},
    {"storage.max_series", integer, "1000000", 1, 100000000, {}, false, "Distinct series the engine accepts"},
    {"storage.min_free", size, "64MiB", 0, 1024 * gib, {}, false, "Free space kept on the data directory's file system: below it writes get 503 `storage_full` + Retry-After until space is freed (flushes and the metadata store still find room); 0 = only when the disk is full"},
    {"analytics.detector", string, "ensemble", 0, 0, {}, false, "Anomaly detector scoring every numeric point (`clisonix nab` lists them); `off` disables scoring"},
    {"analytics.metrics", string, "*", 0, 0, {}, false, "Glob over metric names that get a `<metric>.anomaly` series (`*` = all, `temp*`)"},
    {"analytics.health", boolean, "true", 0, 0, {}, false, "One machine-health score per device over its numeric metrics (series `health`, `health.<metric>`)"},
    {"analytics.health_baseline", duration, "1h", seconds, 30 * 24 * hours, {}, false, "How long after a device's first point its health model learns normal before it scores"},
    {"analytics.health_interval", duration, "1m", 0, 24 * hours, {}, false, "How often a device's health score is stored (data time); a score crossing the watch (0.3) or abnormal (0.5) level is stored at once, with its three largest per-metric contributions `health.<metric>`; 0 = every row with all contributions"},
    {"analytics.health_max_devices", integer, "100000", 1, 10000000, {}, false, "Devices with a health model at most; further devices get none (counted in /metrics)"},
    {"ingest.max_line_bytes", size, "64KiB", 256, 16 * mib, {}, false, "Longest line-protocol line accepted (413 beyond)"},
    {"ingest.max_points_per_request", integer, "1000000", 1, 100000000, {}, false, "Points one write request may carry (413 beyond)"},
    {"ingest.max_series_per_device", integer, "1000", 0, 100000000, {}, false, "Distinct series (metrics) one device may create, derived series not counted; a write adding more is refused with 429 (MQTT 5.0: 0x97), series it already has keep working (0 = no limit)"},
    {"ingest.max_series_per_request", integer, "100000", 1, 10000000, {}, false, "Distinct series one write request may carry (413 beyond)"},
    {"query.max_points", integer, "1000000", 1000, 1000000000, {}, false, "Points one query answer may hold (JSON, CSV, `clisonix query`); a raw query over it gets 400 asking to aggregate (`agg`, `step`), narrow `from`/`to` or page with `limit`, decided before any point is read"},
    {"promql.max_points", integer, "5000000", 1000, 1000000000, {}, false, "Points one Prometheus API answer (`/prometheus/api/v1/query_range`) and each step of its evaluation may hold; beyond, 422 asking to narrow the selection or the range or raise the step"},
    {"forecast.cache_entries", integer, "1000", 0, 10000000, {}, false, "Forecasts kept by the forecast service (least recently used beyond); one lasts until its series gains a bucket (one step); 0 = no cache"},
    {"forecast.max_history_points", integer, "2000", 10, 1000000, {}, false, "History buckets one series' forecast reads at most (the window is 4 weeks or 10 horizons, whichever is longer, capped here); an explicit `history` over it gets 400"},
    {"forecast.max_steps", integer, "1000", 1, 100000, {}, false, "Steps one forecast may have (`horizon` / `step`); more gets 400 naming `horizon`; without `step` the step is widened to fit"},
    {"forecast.max_series", integer, "100", 1, 100000, {}, false, "Series one forecast answer may hold; a wider selection gets 400 asking to narrow it"},
    {"forecast.refresh_interval", duration, "1m", seconds, 24 * hours, {}, false, "How often the background round of `/api/v1/forecast/predicted` (metrics expected past their type's range) runs"},
    {"forecast.predicted_horizon", duration, "24h", minutes, 30 * 24 * hours, {}, false, "Horizon the predicted-to-cross list is computed over (the longest `horizon` its route accepts)"},
    {"forecast.predicted_budget", duration, "10s", 100, hours, {}, false, "Time one background round of the predicted list may spend; a fleet that does not fit is continued in the next round"},
    {"ask.time_zone", string, "", 0, 0, {}, false, "IANA time zone (`Europe/Berlin`) questions to `/api/v1/ask` are read and answered in (\"yesterday\", \"since Monday 06:00\"); empty = the machine's /etc/localtime", check_time_zone},
    {"ask.ollama_url", string, "", 0, 0, {}, false, "Ollama server (`http://host:11434`) asked for a plan when the grammar cannot read a question; every plan is still checked; empty = no question leaves the server"},
    {"ask.model", string, "llama3.1", 0, 0, {}, false, "Ollama model asked for plans (with `ask.ollama_url`)"},
    {"ask.timeout", duration, "10s", 100, 5 * minutes, {}, false, "Time the Ollama server has to propose a plan; after it the question is answered as not understood, and the reasons say the model did not answer in time"},
    {"auth.argon2_memory_kib", integer, "19456", 1024, 4194304, {}, false, "Argon2id memory cost of password hashes, in KiB"},
    {"auth.argon2_iterations", integer, "2", 1, 100, {}, false, "Argon2id passes over that memory"},
    {"auth.password_min_length", integer, "12", 8, 1024, {}, false, "Shortest password accepted"},
    {"auth.access_ttl", duration, "15m", seconds, 24 * hours, {}, false, "Lifetime of a JWT access token"},
    {"auth.refresh_ttl", duration, "7d", hours, 365 * 24 * hours, {}, false, "Lifetime of a refresh token (each use replaces it)"},
    {"auth.jwt_secret", string, "", 0, 0, {}, true, "Key signing access tokens (32+ characters); empty = generated once into `<data.dir>/jwt.key` (mode 0600)"},
    {"auth.issuer", string, "clisonix", 0, 0, {}, false, "`iss` of access tokens, checked on every request"},
    {"auth.audience", string, "clisonix-api", 0, 0, {}, false, "`aud` of access tokens, checked on every request"},
    {"auth.login_max_failures", integer, "5", 1, 1000, {}, false, "Failed logins per account and client IP before the lockout"},
    {"auth.login_lockout", duration, "15m", seconds, 24 * hours, {}, false, "How long a locked-out account and IP are refused"},
    {"auth.login_max_failures_per_account", integer, "20", 1, 100000, {}, false, "Failed logins per account from any address before that account is locked out for everyone (guesses spread over many addresses); anyone can spend these, so keep it well above `auth.login_max_failures`"},
    {"auth.login_failure_entries", integer, "100000", 100, 100000000, {}, false, "Fixed size of each failed-login table (per account and IP, per account): beyond it the entry that failed least recently is evicted"},
    {"auth.login_threads", integer, "2", 1, 256, {}, false, "Threads hashing passwords (login, new passwords) apart from the HTTP workers, so that slow Argon2 work never holds them"},
    {"auth.login_queue", integer, "16", 0, 100000, {}, false, "Logins waiting for a hashing thread; more are answered 429 `too_many_requests` with Retry-After"},
    {"devices.offline_timeout", duration, "10m", seconds, 365 * 24 * hours, {}, false, "Offline timeout of device types created on the fly (a device without telemetry that long is offline)"},
    {"devices.max_attributes", integer, "1000", 1, 10000000, {}, false, "Attributes one device may hold over its client, server and shared scopes; a write adding more is refused with 429 (MQTT 5.0: 0x97), changes to existing ones still pass"},
    {"devices.max_attribute_bytes", size, "8KiB", 16, 16 * mib, {}, false, "Largest attribute value (its JSON text); larger is refused with 413 (MQTT 5.0: DISCONNECT 0x95)"},
    {"devices.flush_interval", duration, "10s", 100, hours, {}, false, "How often devices' last-seen times are written to the metadata store"},
    {"mqtt.enabled", boolean, "true", 0, 0, {}, false, "Run the built-in MQTT broker for devices (3.1.1 and 5.0)"},
    {"mqtt.bind", string, "0.0.0.0", 0, 0, {}, false, "Address the MQTT broker listens on"},
    {"mqtt.port", integer, "1883", 0, 65535, {}, false, "MQTT port (TLS only when `mqtt.tls_cert` is set); 0 = a free port chosen at start"},
    {"mqtt.tls_cert", string, "", 0, 0, {}, false, "PEM certificate chain; with `mqtt.tls_key`, the MQTT port speaks only MQTT over TLS"},
    {"mqtt.tls_key", string, "", 0, 0, {}, false, "PEM private key of `mqtt.tls_cert`"},
    {"mqtt.max_packet_size", size, "256KiB", 64, 256 * mib, {}, false, "Largest MQTT packet accepted (5.0: DISCONNECT 0x95 beyond, 3.1.1: closed)"},
    {"mqtt.max_connections", integer, "100000", 1, 10000000, {}, false, "Concurrent MQTT connections; more are closed at once"},
    {"mqtt.rate_limit", integer, "1000", 0, 100000000, {}, false, "Messages per second one device may publish (burst: one second's worth); beyond it the connection is closed (5.0: 0x96); 0 = no limit"},
    {"mqtt.keep_alive_max", duration, "10m", seconds, 18 * hours, {}, false, "Longest keep-alive granted; clients asking more or none get this one (5.0: Server Keep Alive)"},
    {"mqtt.max_connections_per_ip", integer, "256", 0, 10000000, {}, false, "Concurrent MQTT connections from one address; more are closed at once (0 = no limit)"},
    {"mqtt.max_connect_size", size, "16KiB", 64, 256 * mib, {}, false, "Largest CONNECT accepted (with its will message); a client announcing more is closed before CONNACK"},
    {"mqtt.connect_timeout", duration, "10s", 100, 10 * minutes, {}, false, "Time a new connection has, from its start, to complete its CONNECT; slower clients are closed"},
    {"mqtt.receive_maximum", integer, "1000", 1, 65535, {}, false, "Unacknowledged QoS 1 messages per connection (5.0: Receive Maximum; 3.1.1: reading pauses)"},
    {"mqtt.max_queued", integer, "1000", 1, 10000000, {}, false, "Outbound QoS 1 messages kept per session for a slow or offline client; the oldest is dropped beyond"},
    {"mqtt.session_expiry_max", duration, "1d", 0, 365 * 24 * hours, {}, false, "Longest time a persistent session is kept while its client is offline (in memory, not across restarts)"},
    {"sparkplug.enabled", boolean, "true", 0, 0, {}, false, "Serve Sparkplug B 3.0 edge nodes on the MQTT broker (`spBv1.0/...` topics; an API key of role operator logs in as the username)"},
    {"sparkplug.host_id", string, "clisonix", 0, 0, {}, false, "Sparkplug host application id: its state is the retained `spBv1.0/STATE/<host id>` message"},
    {"coap.port", integer, "5683", 0, 65535, {}, false, "UDP port of the CoAP endpoint for devices (ThingsBoard's CoAP API); 0 = no CoAP endpoint"},
    {"coap.bind", string, "0.0.0.0", 0, 0, {}, false, "Address the CoAP endpoint listens on"},
    {"coap.max_payload", size, "64KiB", 64, 8 * mib, {}, false, "Largest CoAP request body (block-wise ones whole); beyond it the answer is 4.13 with Size1"},
    {"notify.max_attempts", integer, "8", 1, 1000, {}, false, "Delivery attempts of a notification before it is dead (listed at /api/v1/notifications/dead)"},
    {"notify.backoff_base", duration, "1s", 10, hours, {}, false, "First retry delay ceiling; doubles per attempt, drawn with full jitter"},
    {"notify.backoff_max", duration, "5m", 10, 24 * hours, {}, false, "Longest delay between two attempts of one notification"},
    {"notify.webhook_timeout", duration, "5s", 100, minutes, {}, false, "Time a webhook has to answer, for channels without `timeout_ms`"},
    {"notify.breaker_error_threshold", integer, "50", 1, 100, {}, false, "Percentage of failed calls in the window at which a channel's circuit breaker opens"},
    {"notify.breaker_window", duration, "10s", 100, hours, {}, false, "Rolling window over which the breaker counts calls (10 buckets)"},
    {"notify.breaker_min_volume", integer, "5", 1, 100000, {}, false, "Calls in the window before a breaker may open"},
    {"notify.breaker_reset_timeout", duration, "30s", 10, hours, {}, false, "Time a breaker stays open before it lets one trial call through (half-open)"},
    {"notify.claim_lease", duration, "60s", 100, hours, {}, false, "How long a node may hold the outbox rows it claimed before another node sharing the PostgreSQL meta store takes them over (set it above a batch's delivery time)"},
    {"notify.webhook_allow", string, "", 0, 0, {}, false, "Comma-separated CIDR blocks and host names webhooks may reach although loopback, link-local, private (RFC 1918, fc00::/7, 100.64/10), unspecified or multicast (on-site receivers: `10.20.0.0/16,alarms.plant.local`)"},
    {"notify.secret_key", string, "", 0, 0, {}, true, "Key encrypting channel secrets at rest (32+ characters; nodes sharing a PostgreSQL need the same one); empty = generated once into `<data.dir>/notify.key` (mode 0600)"},
    {"connectors.run", boolean, "true", 0, 0, {}, false, "Poll the enabled connectors in this process; in a cluster, set it true on one node only (every node that runs them writes their points)"},
    {"connectors.backoff_base", duration, "500ms", 10, hours, {}, false, "First reconnect delay ceiling of a connector after a failure; doubles per failure, drawn with full jitter"},
    {"connectors.backoff_max", duration, "30s", 10, hours, {}, false, "Longest delay before a failing connector tries its endpoint again"},
    {"connectors.breaker_min_volume", integer, "5", 1, 100000, {}, false, "Connects and polls of a connector endpoint in the breaker's window (10s) before its breaker may open"},
    {"connectors.breaker_reset_timeout", duration, "30s", 10, hours, {}, false, "Time a connector endpoint's breaker stays open before one trial connect (half-open)"},
    {"live.max_queue_bytes", size, "1MiB", kib, gib, {}, false, "Bytes queued for one live WebSocket client; a client that falls further behind is closed (1008, slow consumer)"},
    {"live.max_queue_messages", integer, "1000", 1, 1000000, {}, false, "Messages queued for one live WebSocket client before it is closed as a slow consumer"},
    {"live.max_connections", integer, "1000", 1, 1000000, {}, false, "Authenticated live WebSocket connections at /api/v1/live; more get 503 (connections still waiting for their token do not count)"},
    {"live.max_connections_per_user", integer, "20", 1, 1000000, {}, false, "Authenticated live WebSocket connections of one user or API key; more get 429"},
    {"live.max_pending", integer, "100", 1, 1000000, {}, false, "Live WebSocket connections waiting for their first-message token, from all addresses; more get 503"},
    {"live.max_pending_per_address", integer, "4", 1, 10000, {}, false, "Live WebSocket connections from one client address waiting for their first-message token; more get 429"},
    {"live.auth_timeout", duration, "5s", 100, 10 * minutes, {}, false, "Time a live WebSocket client has to send its token when the upgrade request carried none"},
    {"live.revalidate_interval", duration, "1m", 100, hours, {}, false, "How often the credential of each open live WebSocket connection is checked again, to close those revoked by another process or node"},
};
// clang-format on

// CLISONIX_* names that are not settings: read by the CLI itself or by tests.
bool is_reserved(std::string_view name) {
    return name == "CLISONIX_CONFIG" || name == "CLISONIX_ADMIN_PASSWORD" ||
           name.starts_with("CLISONIX_TEST_");
}

struct unit {
    std::string_view suffix;
    int64_t factor;
};
// Largest first, so that the first unit dividing a value exactly is its canonical one.
constexpr unit size_units[] = {{"TiB", 1024 * gib}, {"GiB", gib}, {"MiB", mib}, {"KiB", kib}};
constexpr unit duration_units[] = {{"d", 24 * hours}, {"h", hours}, {"m", minutes}, {"s", seconds}};

// The suffix of the base unit (bytes, milliseconds), which a bare number also means.
std::string_view base_suffix(value_type t) {
    return t == duration ? "ms" : "";
}
std::span<const unit> units_of(value_type t) {
    if (t == duration) return duration_units;
    return size_units;
}

std::string canonical(value_type t, int64_t n) {
    for (const unit& u : units_of(t)) {
        if (n != 0 && n % u.factor == 0) return std::to_string(n / u.factor).append(u.suffix);
    }
    return std::to_string(n).append(base_suffix(t));
}

std::string_view type_name(value_type t) {
    switch (t) {
        case integer:
            return "integer";
        case boolean:
            return "boolean";
        case string:
            return "string";
        case enumeration:
            return "enumeration";
        case duration:
            return "duration";
        case size:
            return "size";
    }
    return {};
}

// "trace, debug, info" from "trace|debug|info", each choice wrapped in `quote`.
std::string join_choices(const key_spec& spec, std::string_view quote) {
    std::string out(quote);
    for (char c : spec.choices) {
        out += c == '|' ? std::string(quote) + ", " + std::string(quote) : std::string(1, c);
    }
    return out.append(quote);
}

std::string expectation(const key_spec& spec) {
    switch (spec.type) {
        case integer:
            return "must be an integer";
        case boolean:
            return "must be true or false";
        case string:
            return "must be a string";
        case size:
            return "must be a size such as 512, 16KiB, 8MiB, 1GiB";
        case duration:
            return "must be a duration such as 250ms, 10s, 5m, 2h, 7d";
        case enumeration:
            return "must be one of " + join_choices(spec, "");
    }
    return {};
}

std::string range_text(const key_spec& spec) {
    if (spec.type == integer) {
        return std::to_string(spec.min) + ".." + std::to_string(spec.max);
    }
    return canonical(spec.type, spec.min) + ".." + canonical(spec.type, spec.max);
}

std::string lower(std::string_view s) {
    std::string out(s);
    std::transform(out.begin(), out.end(), out.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return out;
}

enum class number { ok, bad, too_large };

number parse_int(std::string_view text, int64_t& out) {
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
    if (ec == std::errc::result_out_of_range) return number::too_large;
    if (ec != std::errc{} || end != text.data() + text.size()) return number::bad;
    return number::ok;
}

// "<digits><unit>"; no sign, no fraction, no space. A bare number is in the base unit.
number parse_scaled(value_type t, std::string_view text, int64_t& out) {
    size_t digits = text.find_first_not_of("0123456789");
    if (digits == 0) return number::bad;
    std::string_view suffix = digits == std::string_view::npos ? "" : text.substr(digits);
    int64_t factor = 0;
    if (suffix.empty() || suffix == base_suffix(t) || (t == size && suffix == "B")) factor = 1;
    for (const unit& u : units_of(t)) {
        if (suffix == u.suffix) factor = u.factor;
    }
    if (factor == 0) return number::bad;
    number n = parse_int(text.substr(0, digits), out);
    if (n != number::ok) return n;
    return __builtin_mul_overflow(out, factor, &out) ? number::too_large : number::ok;
}

// Parses `text` as a value of `spec` into `out`; returns why it is not one, or "".
std::string parse(const key_spec& spec, std::string_view text, config::entry& out) {
    number n = number::ok;
    switch (spec.type) {
        case string:
            if (spec.check) {
                if (std::string why = spec.check(text); !why.empty()) return why;
            }
            out.text = text;
            return {};
        case enumeration: {
            for (size_t start = 0; start <= spec.choices.size();) {
                size_t end = std::min(spec.choices.find('|', start), spec.choices.size());
                if (spec.choices.substr(start, end - start) == text) {
                    out.text = text;
                    return {};
                }
                start = end + 1;
            }
            return expectation(spec);
        }
        case boolean: {
            std::string l = lower(text);
            if (l == "true" || l == "1" || l == "yes" || l == "on") {
                out.flag = true;
            } else if (l == "false" || l == "0" || l == "no" || l == "off") {
                out.flag = false;
            } else {
                return expectation(spec);
            }
            out.text = out.flag ? "true" : "false";
            return {};
        }
        case integer:
            n = parse_int(text, out.number);
            break;
        case size:
        case duration:
            n = parse_scaled(spec.type, text, out.number);
            break;
    }
    if (n == number::bad) return expectation(spec);
    if (n == number::too_large || out.number < spec.min || out.number > spec.max) {
        return "must be " + range_text(spec);
    }
    out.text = spec.type == integer ? std::to_string(out.number) : canonical(spec.type, out.number);
    return {};
}

// A TOML basic string: what `config show` and the messages print for text.
std::string quote(std::string_view s) {
    std::string out = "\"";
    for (char c : s) {
        if (c == '"' || c == '\\') {
            out += '\\';
            out += c;
        } else if (c == '\n') {
            out += "\\n";
        } else if (c == '\t') {
            out += "\\t";
        } else if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c));
            out += buf;
        } else {
            out += c;
        }
    }
    return out + "\"";
}

bool is_plain_integer(std::string_view s) {
    if (s.starts_with('-')) s.remove_prefix(1);
    return !s.empty() && s.find_first_not_of("0123456789") == std::string_view::npos;
}

// How a rejected value is shown: bare when it reads as a number, quoted otherwise, and never
// for a secret, since a mistyped password is still a password.
std::string shown(const key_spec& spec, std::string_view text) {
    if (spec.secret) return "<redacted>";
    return is_plain_integer(text) ? std::string(text) : quote(text);
}

error value_error(const key_spec& spec, const std::string& value, std::string_view from,
                  const std::string& why) {
    std::string message = "config: " + std::string(spec.key);
    if (!value.empty()) message += " = " + value;
    message += " (from " + std::string(from) + "): " + why;
    return make_error("invalid_config", std::move(message), std::string(spec.key));
}

// `name` is a schema key, or an environment name when `as_env` is set.
error unknown_key(std::string_view name, std::string_view from, bool as_env) {
    std::string best;
    size_t best_distance = 3;  // suggest only within two edits
    for (const key_spec& spec : keys) {
        std::string candidate = as_env ? env_name(spec.key) : std::string(spec.key);
        size_t d = edit_distance(name, candidate);
        if (d < best_distance) {
            best = std::move(candidate);
            best_distance = d;
        }
    }
    std::string message =
        "config: " + std::string(name) + " (from " + std::string(from) + "): unknown key";
    if (!best.empty()) message += " (did you mean " + best + "?)";
    return make_error("invalid_config", std::move(message), std::string(name));
}

status assign(config& c, const key_spec& spec, std::string_view text, std::string_view from) {
    config::entry e;
    std::string why = parse(spec, text, e);
    if (!why.empty()) return value_error(spec, shown(spec, text), from, why);
    e.source = from;
    c.entries.insert_or_assign(std::string(spec.key), std::move(e));
    return {};
}

// A variable from the environment or the .env file; `where` names the set for messages.
status assign_env(config& c, std::string_view name, std::string_view value, std::string_view from,
                  std::string_view where) {
    if (!name.starts_with("CLISONIX_") || is_reserved(name)) return {};
    for (const key_spec& spec : keys) {
        if (env_name(spec.key) == name) return assign(c, spec, value, from);
    }
    return unknown_key(name, where, true);
}

// Reads a whole file; on failure `error` holds the reason.
bool read_file(const std::string& path, std::string& out, std::string& error) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        error = std::strerror(errno);
        return false;
    }
    std::ostringstream buffer;
    buffer << in.rdbuf();
    out = buffer.str();
    return true;
}

bool is_prefix_of_key(std::string_view path) {
    return std::any_of(std::begin(keys), std::end(keys), [&](const key_spec& spec) {
        return spec.key.size() > path.size() && spec.key.starts_with(path) &&
               spec.key[path.size()] == '.';
    });
}

status assign_toml(config& c, const key_spec& spec, const toml::node& node, std::string_view from) {
    if (const auto* s = node.as_string()) return assign(c, spec, s->get(), from);
    const bool numeric = spec.type == integer || spec.type == size || spec.type == duration;
    if (const auto* i = node.as_integer(); i && numeric) {
        return assign(c, spec, std::to_string(i->get()), from);
    }
    if (const auto* b = node.as_boolean(); b && spec.type == boolean) {
        return assign(c, spec, b->get() ? "true" : "false", from);
    }
    std::string value;
    if (spec.secret) {
        value = "<redacted>";
    } else if (!node.is_table()) {
        std::ostringstream literal;
        node.visit([&](const auto& n) { literal << n; });
        value = literal.str();
    }
    return value_error(spec, value, from, expectation(spec));
}

status walk_toml(config& c, const toml::table& table, const std::string& prefix,
                 std::string_view from) {
    for (const auto& [k, node] : table) {
        std::string path =
            prefix.empty() ? std::string(k.str()) : prefix + "." + std::string(k.str());
        if (const key_spec* spec = find_key(path)) {
            if (status s = assign_toml(c, *spec, node, from); !s) return s;
        } else if (const auto* sub = node.as_table();
                   sub && (is_prefix_of_key(path) || !sub->empty())) {
            // Descend into unknown tables too, so that the message names the full key.
            if (status s = walk_toml(c, *sub, path, from); !s) return s;
        } else {
            return unknown_key(path, from, false);
        }
    }
    return {};
}

status load_toml(config& c, const std::string& path) {
    std::string text, why;
    if (!read_file(path, text, why)) {
        return make_error("invalid_config",
                          "config: " + path + ": cannot read the config file (" + lower(why) + ")");
    }
    toml::table table;
    try {
        table = toml::parse(text, std::string_view(path));
    } catch (const toml::parse_error& e) {
        std::string description(e.description());
        std::replace(description.begin(), description.end(), '\n', ' ');
        return make_error("invalid_config",
                          "config: " + path + ":" + std::to_string(e.source().begin.line) + ":" +
                              std::to_string(e.source().begin.column) + ": " + description);
    }
    return walk_toml(c, table, "", "file " + path);
}

std::string_view trim(std::string_view s) {
    size_t begin = s.find_first_not_of(" \t\r");
    if (begin == std::string_view::npos) return {};
    return s.substr(begin, s.find_last_not_of(" \t\r") - begin + 1);
}

// See parse_duration_list (config.h); the durations are checked as a `duration` key is.
std::string duration_list(std::string_view text,
                          std::vector<std::pair<std::string, int64_t>>& out) {
    static constexpr key_spec item{"", duration, "", 0, 100 * 365 * 24 * hours};
    out.clear();
    if (trim(text).empty()) return {};
    for (size_t start = 0; start <= text.size();) {
        size_t end = std::min(text.find(',', start), text.size());
        std::string_view part = trim(text.substr(start, end - start));
        start = end + 1;
        size_t eq = part.find('=');
        if (eq == std::string_view::npos)
            return "item \"" + std::string(part) + "\" must be name=duration, e.g. telemetry=7d";
        std::string name(trim(part.substr(0, eq)));
        if (name.empty()) return "item \"" + std::string(part) + "\" has no name before =";
        for (const auto& [seen, ms] : out)
            if (seen == name) return "\"" + name + "\" is listed twice";
        config::entry e;
        if (std::string why = parse(item, trim(part.substr(eq + 1)), e); !why.empty())
            return "\"" + name + "\": " + why;
        out.emplace_back(std::move(name), e.number);
    }
    return {};
}

std::string check_duration_list(std::string_view text) {
    std::vector<std::pair<std::string, int64_t>> ignored;
    return duration_list(text, ignored);
}

// KEY=value lines, optionally `export `-prefixed and quoted. Other programs share .env files,
// so lines not naming CLISONIX_* are skipped unread. Messages never quote a line: it may
// hold a secret.
status load_dotenv(config& c, const std::string& path) {
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) return {};
    std::string text, why;
    if (!read_file(path, text, why)) {
        return make_error("invalid_config",
                          "config: " + path + ": cannot read (" + lower(why) + ")");
    }
    std::istringstream lines(text);
    std::string raw;
    for (int number = 1; std::getline(lines, raw); ++number) {
        std::string_view line = trim(raw);
        if (line.starts_with("export ")) line = trim(line.substr(7));
        if (!line.starts_with("CLISONIX_")) continue;  // also blank lines and # comments
        auto malformed = [&](std::string_view what) {
            return make_error("invalid_config", "config: " + path + ":" + std::to_string(number) +
                                                    ": " + std::string(what));
        };
        size_t eq = line.find('=');
        std::string_view name = trim(line.substr(0, eq));
        if (eq == std::string_view::npos ||
            name.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") !=
                std::string_view::npos) {
            return malformed("malformed line, expected CLISONIX_NAME=value");
        }
        std::string_view value = trim(line.substr(eq + 1));
        if (value.starts_with('"') || value.starts_with('\'')) {
            size_t close = value.find(value[0], 1);
            if (close == std::string_view::npos) return malformed("unterminated quote");
            std::string_view rest = trim(value.substr(close + 1));
            if (!rest.empty() && !rest.starts_with('#')) {
                return malformed("unexpected text after the closing quote");
            }
            value = value.substr(1, close - 1);
        } else if (size_t comment = value.find(" #"); comment != std::string_view::npos) {
            value = trim(value.substr(0, comment));  // as docker compose: " #" starts a comment
        }
        if (status s = assign_env(c, name, value, path, path); !s) return s;
    }
    return {};
}

const config::entry& entry_of(const config& c, std::string_view key, bool type_ok) {
    auto it = c.entries.find(key);
    if (it == c.entries.end()) throw std::out_of_range("config: no key " + std::string(key));
    if (!type_ok) throw std::logic_error("config: wrong type asked of " + std::string(key));
    return it->second;
}

bool has_type(std::string_view key, std::initializer_list<value_type> types) {
    const key_spec* spec = find_key(key);
    return spec && std::find(types.begin(), types.end(), spec->type) != types.end();
}

}  // namespace

std::string parse_duration_list(std::string_view text,
                                std::vector<std::pair<std::string, int64_t>>& out) {
    return duration_list(text, out);
}

std::span<const key_spec> schema() {
    return keys;
}

const key_spec* find_key(std::string_view key) {
    for (const key_spec& spec : keys) {
        if (spec.key == key) return &spec;
    }
    return nullptr;
}

std::string env_name(std::string_view key) {
    std::string out = "CLISONIX_";
    for (char c : key) {
        out += c == '.' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    }
    return out;
}

std::map<std::string, std::string> from_process_environment() {
    std::map<std::string, std::string> out;
    for (char** e = environ; e && *e; ++e) {
        std::string_view var(*e);
        size_t eq = var.find('=');
        if (eq == std::string_view::npos || !var.starts_with("CLISONIX_")) continue;
        out.emplace(var.substr(0, eq), var.substr(eq + 1));
    }
    return out;
}

int64_t config::get_int(std::string_view key) const {
    return entry_of(*this, key, has_type(key, {integer, size, duration})).number;
}

bool config::get_bool(std::string_view key) const {
    return entry_of(*this, key, has_type(key, {boolean})).flag;
}

const std::string& config::get_string(std::string_view key) const {
    return entry_of(*this, key, has_type(key, {string, enumeration})).text;
}

const std::string& config::source(std::string_view key) const {
    return entry_of(*this, key, true).source;
}

std::string config::show() const {
    std::string out;
    for (const key_spec& spec : keys) {
        auto it = entries.find(spec.key);
        if (it == entries.end()) continue;
        const entry& e = it->second;
        std::string value = e.text;
        if (spec.secret && !value.empty()) {
            value = quote("<redacted>");
        } else if (spec.type != integer && spec.type != boolean) {
            value = quote(value);
        }
        out += std::string(spec.key) + " = " + value + "  # from " + e.source + "\n";
    }
    return out;
}

result<config> load(const sources& from) {
    config c;
    for (const key_spec& spec : keys) {
        if (status s = assign(c, spec, spec.default_value, "default"); !s) return s.error();
    }
    if (!from.file.empty()) {
        if (status s = load_toml(c, from.file); !s) return s.error();
        c.file = from.file;
    }
    if (!from.dotenv.empty()) {
        if (status s = load_dotenv(c, from.dotenv); !s) return s.error();
    }
    for (const auto& [name, value] : from.environment) {
        if (status s = assign_env(c, name, value, name, "environment"); !s) return s.error();
    }
    for (const sources::flag& f : from.flags) {
        const key_spec* spec = find_key(f.key);
        if (!spec) return unknown_key(f.key, f.name, false);
        if (status s = assign(c, *spec, f.value, f.name); !s) return s.error();
    }
    return c;
}

std::string reference_markdown() {
    std::string out =
        "| Key | Type | Default | Allowed | Env | Description |\n"
        "|---|---|---|---|---|---|\n";
    for (const key_spec& spec : keys) {
        std::string type(type_name(spec.type));
        if (spec.secret) type += " (secret)";
        std::string default_value = spec.default_value.empty()
                                        ? std::string("*(empty)*")
                                        : "`" + std::string(spec.default_value) + "`";
        std::string allowed;
        switch (spec.type) {
            case integer:
            case size:
            case duration:
                allowed = range_text(spec);
                break;
            case boolean:
                allowed = "`true`, `false`";
                break;
            case string:
                allowed = "text";
                break;
            case enumeration:
                allowed = join_choices(spec, "`");
                break;
        }
        std::string doc(spec.doc);
        for (size_t p = 0; (p = doc.find('|', p)) != std::string::npos; p += 2) {
            doc.replace(p, 1, "\\|");  // a bare | would end the table cell
        }
        out += "| `" + std::string(spec.key) + "` | " + type + " | " + default_value + " | " +
               allowed + " | `" + env_name(spec.key) + "` | " + doc + " |\n";
    }
    return out;
}

}  // namespace clisonix::config
