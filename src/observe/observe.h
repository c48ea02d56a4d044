// Clisonix — observability: structured logs and Prometheus metrics.
//
// Logs: one JSON object per line (ts, level, msg, request_id, then the call's fields) to
// `<dir>/clisonix_YYYY-MM-DD.log`, a new file each local midnight, `keep_days` files kept;
// readable text on the console. Times are UTC. Every line written while a request is handled
// carries that request's id. Only what the caller passes is logged.
//
//   log::info("listening", {{"port", 8030}, {"bind", "0.0.0.0"}});
//
// Metrics: counters, gauges and histograms with labels, exposed in the Prometheus text
// format 0.0.4. Label values are bounded by the caller (route templates, never raw paths).
//
// Thread safety: every function here may be called from any thread.
#pragma once

#include <concepts>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace clisonix::log {

enum class level { trace, debug, info, warn, error };

// "trace".."error" -> level; unknown text -> info.
level parse_level(std::string_view text);

struct options {
    std::string dir;     // directory of the JSON log file; empty: no file
    int keep_days = 14;  // daily files kept; 0 keeps all
    level min_level = level::info;
    bool console = true;  // readable text on stderr
};

// Sets up the sinks, creating `dir` if missing; before it is called (and after shutdown),
// lines go to stderr as text. Lines below warn are flushed every second, warn and error at
// once. Calling it again replaces the previous setup. Throws std::runtime_error when the
// log file cannot be created.
void init(const options& opts);
// Flushes and closes the file.
void shutdown();

struct field {
    using value_type = std::variant<std::string_view, int64_t, double, bool>;
    field(std::string_view k, std::string_view v) : key(k), value(v) {}
    field(std::string_view k, const char* v) : key(k), value(std::string_view(v)) {}
    field(std::string_view k, const std::string& v) : key(k), value(std::string_view(v)) {}
    field(std::string_view k, bool v) : key(k), value(v) {}
    field(std::string_view k, double v) : key(k), value(v) {}
    template <std::integral I>
    field(std::string_view k, I v) : key(k), value(static_cast<int64_t>(v)) {}
    std::string_view key;
    value_type value;
};

void write(level lvl, std::string_view msg, std::initializer_list<field> fields = {});
bool enabled(level lvl);

inline void trace(std::string_view m, std::initializer_list<field> f = {}) {
    write(level::trace, m, f);
}
inline void debug(std::string_view m, std::initializer_list<field> f = {}) {
    write(level::debug, m, f);
}
inline void info(std::string_view m, std::initializer_list<field> f = {}) {
    write(level::info, m, f);
}
inline void warn(std::string_view m, std::initializer_list<field> f = {}) {
    write(level::warn, m, f);
}
inline void error(std::string_view m, std::initializer_list<field> f = {}) {
    write(level::error, m, f);
}

// While alive, every line this thread writes carries `request_id`.
class request_scope {
public:
    explicit request_scope(std::string_view request_id);
    ~request_scope();
    request_scope(const request_scope&) = delete;
    request_scope& operator=(const request_scope&) = delete;

private:
    std::string _previous;
};

}  // namespace clisonix::log

namespace clisonix::metrics {

using labels = std::vector<std::string>;  // label values, in the family's label-name order

// Handles are cheap to copy and may be cached; updates are lock-free. A default-constructed
// handle belongs to no registry and ignores updates.
class counter {
public:
    // `by` must not be negative.
    void inc(double by = 1.0);
    double value() const;

private:
    friend class registry;
    struct impl;
    std::shared_ptr<impl> _impl;
};

class gauge {
public:
    void set(double v);
    void add(double by);
    double value() const;

private:
    friend class registry;
    struct impl;
    std::shared_ptr<impl> _impl;
};

class histogram {
public:
    void observe(double v);

private:
    friend class registry;
    struct impl;
    std::shared_ptr<impl> _impl;
};

// Default latency buckets in seconds: 0.5 ms .. 10 s.
std::vector<double> latency_buckets();

class registry {
public:
    registry();
    ~registry();
    registry(const registry&) = delete;
    registry& operator=(const registry&) = delete;

    // The series of family `name` with these label values, created on first use. The same
    // name must always be used with the same kind, label names (and buckets); the first help
    // text is kept. Counter names end in `_total`. Throws std::logic_error on a broken rule,
    // an invalid name or a label value count that differs from the label name count.
    counter get_counter(std::string_view name, std::string_view help,
                        const std::vector<std::string>& label_names = {},
                        const labels& values = {});
    gauge get_gauge(std::string_view name, std::string_view help,
                    const std::vector<std::string>& label_names = {}, const labels& values = {});
    // `buckets`: upper bounds, strictly increasing; +Inf is always added.
    histogram get_histogram(std::string_view name, std::string_view help,
                            const std::vector<double>& buckets,
                            const std::vector<std::string>& label_names = {},
                            const labels& values = {});
    // A gauge whose value is read when metrics are exposed (memory, fds, uptime). `read` runs
    // under the registry's lock and must not call the registry. Adding it again replaces it.
    void add_callback_gauge(std::string_view name, std::string_view help,
                            std::function<double()> read);

    // Everything, in the Prometheus text exposition format 0.0.4: families in registration
    // order, series sorted by label values.
    std::string expose() const;

private:
    struct impl;
    std::unique_ptr<impl> _impl;
};

// The process-wide registry that /metrics exposes.
registry& global();

// process_resident_memory_bytes, process_open_fds, process_start_time_seconds,
// clisonix_uptime_seconds and clisonix_build_info{version,commit} = 1.
void add_process_metrics(registry& r, std::string_view version, std::string_view commit);

}  // namespace clisonix::metrics
