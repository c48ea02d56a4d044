// Private to src/devices: the registry's state and helpers shared by its source files.
#pragma once

#include <atomic>
#include <condition_variable>
#include <limits>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include <boost/json.hpp>

#include "common/time.h"
#include "devices/devices.h"

namespace clisonix::devices::detail {

// Names of devices, assets and types: 1..64 of [A-Za-z0-9._@-], starting with a letter or
// digit, and not all digits (an all-digit reference is an id).
status check_name(std::string_view name, std::string_view field);
// Free text (labels, descriptions, asset types): at most `max` bytes, no control characters.
status check_text(std::string_view text, std::string_view field, size_t max, bool required);
// An id when `ref` is all digits.
std::optional<int64_t> as_id(std::string_view ref);

using meta::as_int;
using meta::as_text;

std::string metrics_to_json(const std::map<std::string, metric_spec>& metrics);
result<std::map<std::string, metric_spec>> metrics_from_json(const boost::json::value& v,
                                                             std::string_view field);

// A type's analytics as stored and answered: {"detector":..,"metrics":[..],"health":..,
// "health_baseline_ms":..}, unset members absent. Parsing checks the detector against
// analytics::detector_names() (and "off"); errors name the field ("analytics.detector").
std::string analytics_to_json(const type_analytics& a);
result<type_analytics> analytics_from_json(const boost::json::value& v);

struct string_hash {
    using is_transparent = void;
    // Not noexcept on purpose: libstdc++ then caches each node's hash (see series_index.h).
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
template <typename V>
using string_map = std::unordered_map<std::string, V, string_hash, std::equal_to<>>;

// A device as the hot path sees it.
struct device_state {
    int64_t id = 0;
    std::string name;
    std::string type;  // guarded by impl::mutex
    std::atomic<int64_t> last_seen{0};
    std::atomic<int64_t> flushed{0};
    std::atomic<bool> connected{false};
    std::atomic<bool> declared_offline{false};  // set_offline(), until set_connected(true)
};

struct type_state {
    int64_t offline_timeout_ms = 0;
    std::map<std::string, metric_spec> metrics;
    type_analytics analytics;
};

// What a series key means to the registry, cached per key.
struct series_entry {
    std::shared_ptr<device_state> device;  // null: no registered device
    bool ranged = false;
    double min = -std::numeric_limits<double>::infinity();
    double max = std::numeric_limits<double>::infinity();
};

}  // namespace clisonix::devices::detail

namespace clisonix::devices {

struct registry::impl {
    impl(meta::store& s, auth::auth_service& a, options o)
        : store(s), auth(a), opts(std::move(o)) {}

    meta::store& store;
    auth::auth_service& auth;
    options opts;

    // The mirror of devices and types; never held while calling the store.
    mutable std::shared_mutex mutex;
    detail::string_map<std::shared_ptr<detail::device_state>> devices;
    detail::string_map<detail::type_state> types;

    // Series key -> entry. `generation` changes whenever the mirror does, so that an entry
    // computed from an older mirror is not cached.
    std::shared_mutex cache_mutex;
    detail::string_map<detail::series_entry> cache;
    std::atomic<uint64_t> generation{0};

    std::mutex listeners_mutex;
    std::vector<std::function<void(const std::string&, const std::string&)>> shared_listeners;
    std::vector<std::function<void()>> change_listeners;  // guarded by listeners_mutex

    std::mutex flush_mutex;
    std::condition_variable flush_wake;
    bool stopping = false;  // guarded by flush_mutex
    bool started = false;   // guarded by flush_mutex
    std::thread flusher;

    // After any change of devices, types, assets or relations: clears the cache and tells
    // the change listeners.
    void invalidate();
    detail::series_entry entry_for(std::string_view key);
    void resolve_series(const storage::write_batch& batch, std::vector<detail::series_entry>& out);
    bool is_online(const detail::device_state& d, int64_t now) const;  // mutex held (shared)
    status ensure_type(meta::store& tx, std::string_view name, bool& created);
    // In `tx`: the device's node, row and token (fields already checked).
    status insert_device(meta::store& tx, const new_device& d, const auth::actor& by, int64_t now,
                         created_device& out, bool& type_created);
    // After the commit: the device in the mirror (and its type when it was created).
    void mirror_device(const device& d, bool type_created);
    void mirror_type(const device_type& t);
};

}  // namespace clisonix::devices
