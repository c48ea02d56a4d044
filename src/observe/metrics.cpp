// Prometheus metrics: handles update atomics without locks; the registry's mutex guards only
// lookups and exposition.
#include <algorithm>
#include <atomic>
#include <cassert>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <mutex>
#include <sstream>
#include <stdexcept>

#include <unistd.h>

#include <fmt/format.h>

#include "observe/observe.h"

namespace clisonix::metrics {

struct counter::impl {
    std::atomic<double> value{0};
};

struct gauge::impl {
    std::atomic<double> value{0};
};

// Per-bucket (not cumulative) counts; the last slot is the +Inf bucket. The count is the sum
// of the buckets so that exposition always shows _count equal to the +Inf bucket.
struct histogram::impl {
    explicit impl(std::vector<double> b)
        : bounds(std::move(b)), counts(new std::atomic<uint64_t>[bounds.size() + 1]) {
        for (size_t i = 0; i <= bounds.size(); ++i)
            counts[i] = 0;
    }
    std::vector<double> bounds;
    std::unique_ptr<std::atomic<uint64_t>[]> counts;
    std::atomic<double> sum{0};
};

void counter::inc(double by) {
    // Counters only go up; a negative step is a caller bug and would break rate().
    assert(by >= 0);
    if (_impl && by >= 0) _impl->value.fetch_add(by, std::memory_order_relaxed);
}

double counter::value() const {
    return _impl ? _impl->value.load(std::memory_order_relaxed) : 0;
}

void gauge::set(double v) {
    if (_impl) _impl->value.store(v, std::memory_order_relaxed);
}

void gauge::add(double by) {
    if (_impl) _impl->value.fetch_add(by, std::memory_order_relaxed);
}

double gauge::value() const {
    return _impl ? _impl->value.load(std::memory_order_relaxed) : 0;
}

void histogram::observe(double v) {
    if (!_impl) return;
    const auto& b = _impl->bounds;
    // First bucket whose upper bound is >= v; NaN compares false everywhere and lands in +Inf.
    size_t i = std::isnan(v) ? b.size() : std::lower_bound(b.begin(), b.end(), v) - b.begin();
    _impl->counts[i].fetch_add(1, std::memory_order_relaxed);
    _impl->sum.fetch_add(v, std::memory_order_relaxed);
}

std::vector<double> latency_buckets() {
    return {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
}

namespace {

enum class kind { counter, gauge, histogram };

constexpr std::string_view kind_name(kind k) {
    constexpr std::string_view names[] = {"counter", "gauge", "histogram"};
    return names[static_cast<int>(k)];
}

// One of the three handles is bound; the impl types are reachable only through registry.
struct series {
    counter c;
    gauge g;
    histogram h;
};

struct family {
    std::string name;
    std::string help;
    kind k;
    std::vector<std::string> label_names;
    std::vector<double> buckets;
    std::function<double()> read;               // set for callback gauges, which have no series
    std::map<labels, series> series_by_labels;  // sorted by label values for exposition
};

bool valid_name(std::string_view s, bool allow_colon) {
    auto head = [&](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
               (allow_colon && c == ':');
    };
    if (s.empty() || !head(s[0])) return false;
    return std::all_of(s.begin(), s.end(),
                       [&](char c) { return head(c) || (c >= '0' && c <= '9'); });
}

[[noreturn]] void misuse(std::string_view name, std::string_view why) {
    throw std::logic_error(fmt::format("metric {}: {}", name, why));
}

// Integral values print without an exponent; others as the shortest text that round-trips.
void append_number(std::string& out, double v) {
    if (std::isnan(v)) {
        out += "NaN";
    } else if (std::isinf(v)) {
        out += v > 0 ? "+Inf" : "-Inf";
    } else if (v == std::trunc(v) && std::fabs(v) < 1e15) {
        fmt::format_to(std::back_inserter(out), "{:.0f}", v);
    } else {
        fmt::format_to(std::back_inserter(out), "{}", v);
    }
}

void append_escaped(std::string& out, std::string_view s, bool quote) {
    for (char c : s) {
        if (c == '\\') {
            out += "\\\\";
        } else if (c == '\n') {
            out += "\\n";
        } else if (c == '"' && quote) {
            out += "\\\"";
        } else {
            out += c;
        }
    }
}

// `name{a="x",b="y",le="0.5"} value\n`; `extra` is the histogram's le label.
void append_sample(std::string& out, std::string_view name, const family& f, const labels& values,
                   std::string_view extra_name, std::string_view extra_value, double v) {
    out += name;
    if (!values.empty() || !extra_name.empty()) {
        out += '{';
        for (size_t i = 0; i < values.size(); ++i) {
            if (i > 0) out += ',';
            out += f.label_names[i];
            out += "=\"";
            append_escaped(out, values[i], true);
            out += '"';
        }
        if (!extra_name.empty()) {
            if (!values.empty()) out += ',';
            fmt::format_to(std::back_inserter(out), "{}=\"{}\"", extra_name, extra_value);
        }
        out += '}';
    }
    out += ' ';
    append_number(out, v);
    out += '\n';
}

void append_histogram(std::string& out, const family& f, const labels& values,
                      const std::vector<double>& bounds, const std::atomic<uint64_t>* counts,
                      double sum) {
    uint64_t cumulative = 0;
    std::string le;
    for (size_t i = 0; i <= bounds.size(); ++i) {
        cumulative += counts[i].load(std::memory_order_relaxed);
        le.clear();
        append_number(le, i < bounds.size() ? bounds[i] : INFINITY);
        append_sample(out, f.name + "_bucket", f, values, "le", le,
                      static_cast<double>(cumulative));
    }
    append_sample(out, f.name + "_sum", f, values, {}, {}, sum);
    append_sample(out, f.name + "_count", f, values, {}, {}, static_cast<double>(cumulative));
}

}  // namespace

struct registry::impl {
    mutable std::mutex mutex;
    std::vector<std::unique_ptr<family>> families;  // registration order
    std::map<std::string, family*, std::less<>> by_name;

    // The family `name`, created on first use; later uses must agree with the first.
    family& find_or_add(std::string_view name, std::string_view help, kind k,
                        const std::vector<std::string>& label_names,
                        const std::vector<double>& buckets) {
        if (auto it = by_name.find(name); it != by_name.end()) {
            family& f = *it->second;
            if (f.k != k) misuse(name, fmt::format("already registered as a {}", kind_name(f.k)));
            if (f.label_names != label_names) misuse(name, "registered with other label names");
            if (f.buckets != buckets) misuse(name, "registered with other buckets");
            return f;
        }
        if (!valid_name(name, true)) misuse(name, "invalid metric name");
        if (k == kind::counter && !name.ends_with("_total"))
            misuse(name, "counter names end in _total");
        for (const auto& l : label_names) {
            if (!valid_name(l, false) || l.starts_with("__"))
                misuse(name, "invalid label name " + l);
            if (k == kind::histogram && l == "le") misuse(name, "le is reserved for buckets");
        }
        auto f = std::make_unique<family>();
        f->name = name;
        f->help = help;
        f->k = k;
        f->label_names = label_names;
        f->buckets = buckets;
        families.push_back(std::move(f));
        by_name.emplace(std::string(name), families.back().get());
        return *families.back();
    }

    series& find_or_add_series(std::string_view name, std::string_view help, kind k,
                               const std::vector<std::string>& label_names, const labels& values,
                               const std::vector<double>& buckets = {}) {
        if (values.size() != label_names.size()) {
            misuse(name, fmt::format("{} label values for {} label names", values.size(),
                                     label_names.size()));
        }
        family& f = find_or_add(name, help, k, label_names, buckets);
        if (f.read) misuse(name, "already registered as a callback gauge");
        return f.series_by_labels[values];
    }
};

registry::registry() : _impl(std::make_unique<impl>()) {}
registry::~registry() = default;

counter registry::get_counter(std::string_view name, std::string_view help,
                              const std::vector<std::string>& label_names, const labels& values) {
    std::lock_guard lock(_impl->mutex);
    auto& s = _impl->find_or_add_series(name, help, kind::counter, label_names, values);
    if (!s.c._impl) s.c._impl = std::make_shared<counter::impl>();
    return s.c;
}

gauge registry::get_gauge(std::string_view name, std::string_view help,
                          const std::vector<std::string>& label_names, const labels& values) {
    std::lock_guard lock(_impl->mutex);
    auto& s = _impl->find_or_add_series(name, help, kind::gauge, label_names, values);
    if (!s.g._impl) s.g._impl = std::make_shared<gauge::impl>();
    return s.g;
}

histogram registry::get_histogram(std::string_view name, std::string_view help,
                                  const std::vector<double>& buckets,
                                  const std::vector<std::string>& label_names,
                                  const labels& values) {
    // The +Inf bucket is always there; a caller may list it or not.
    std::vector<double> bounds = buckets;
    if (!bounds.empty() && bounds.back() == INFINITY) bounds.pop_back();
    for (size_t i = 0; i < bounds.size(); ++i) {
        if (!std::isfinite(bounds[i]) || (i > 0 && bounds[i] <= bounds[i - 1])) {
            misuse(name, "buckets must be finite and strictly increasing");
        }
    }
    std::lock_guard lock(_impl->mutex);
    auto& s = _impl->find_or_add_series(name, help, kind::histogram, label_names, values, bounds);
    if (!s.h._impl) s.h._impl = std::make_shared<histogram::impl>(bounds);
    return s.h;
}

void registry::add_callback_gauge(std::string_view name, std::string_view help,
                                  std::function<double()> read) {
    std::lock_guard lock(_impl->mutex);
    family& f = _impl->find_or_add(name, help, kind::gauge, {}, {});
    if (!f.series_by_labels.empty()) misuse(name, "already registered as a plain gauge");
    f.read = std::move(read);  // registering again replaces the reader
}

std::string registry::expose() const {
    std::string out;
    std::lock_guard lock(_impl->mutex);
    for (const auto& f : _impl->families) {
        out += "# HELP ";
        out += f->name;
        out += ' ';
        append_escaped(out, f->help, false);
        fmt::format_to(std::back_inserter(out), "\n# TYPE {} {}\n", f->name, kind_name(f->k));
        if (f->read) append_sample(out, f->name, *f, {}, {}, {}, f->read());
        for (const auto& [values, s] : f->series_by_labels) {
            if (s.c._impl) append_sample(out, f->name, *f, values, {}, {}, s.c.value());
            if (s.g._impl) append_sample(out, f->name, *f, values, {}, {}, s.g.value());
            if (const auto& h = s.h._impl) {
                append_histogram(out, *f, values, h->bounds, h->counts.get(), h->sum.load());
            }
        }
    }
    return out;
}

registry& global() {
    // Never destroyed, so threads still running at exit can keep updating their handles.
    static registry* r = new registry;
    return *r;
}

namespace {

// Seconds since the epoch when this process started, from /proc; 0 when unreadable.
double process_start_time() {
    std::ifstream stat("/proc/self/stat");
    std::string line;
    if (!std::getline(stat, line)) return 0;
    // The command name (field 2) may hold spaces and parentheses; fields after it are plain.
    auto close = line.rfind(')');
    if (close == std::string::npos) return 0;
    std::istringstream rest(line.substr(close + 1));
    std::string token;
    for (int field = 3; field <= 22 && rest >> token; ++field) {
        if (field != 22) continue;
        std::ifstream proc_stat("/proc/stat");
        std::string key;
        double boot_time = 0;
        while (proc_stat >> key) {
            if (key == "btime") {
                proc_stat >> boot_time;
                break;
            }
        }
        if (boot_time == 0) return 0;
        return boot_time + std::stod(token) / static_cast<double>(sysconf(_SC_CLK_TCK));
    }
    return 0;
}

double unix_now() {
    using namespace std::chrono;
    return duration<double>(system_clock::now().time_since_epoch()).count();
}

}  // namespace

void add_process_metrics(registry& r, std::string_view version, std::string_view commit) {
    double start = process_start_time();
    if (start == 0) start = unix_now();  // no /proc: the process started about now
    r.add_callback_gauge("process_resident_memory_bytes", "Resident memory size in bytes.", [] {
        std::ifstream statm("/proc/self/statm");
        double size = 0, resident = 0;
        if (!(statm >> size >> resident)) return 0.0;
        return resident * static_cast<double>(sysconf(_SC_PAGESIZE));
    });
    r.add_callback_gauge("process_open_fds", "Number of open file descriptors.", [] {
        std::error_code ec;
        double n = 0;
        for (std::filesystem::directory_iterator it("/proc/self/fd", ec), end; !ec && it != end;
             it.increment(ec)) {
            ++n;
        }
        return std::max(0.0, n - 1);  // the directory listing holds one fd itself
    });
    r.add_callback_gauge("process_start_time_seconds",
                         "Start time of the process since unix epoch in seconds.",
                         [start] { return start; });
    r.add_callback_gauge("clisonix_uptime_seconds", "Seconds since the process started.",
                         [start] { return std::max(0.0, unix_now() - start); });
    r.get_gauge("clisonix_build_info", "Version and commit of this build; the value is always 1.",
                {"version", "commit"}, {std::string(version), std::string(commit)})
        .set(1);
}

}  // namespace clisonix::metrics
