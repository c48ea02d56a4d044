// Private to the app: one machine-health score per device, beside the anomaly scores.
//
// A device is the `device` tag of its series. Its metrics (numeric fields, not the derived
// `.anomaly`, `.out_of_range` or `health*` series) form one row per timestamp: the latest
// value of each metric (sample-and-hold; a metric not seen yet is NaN). The device's
// analytics::health_model learns normal from its rows during the first `baseline` of data
// time (and at least health_model::min_baseline_rows() complete rows), or from a window a
// user picks (retrain(), which reads the stored history through the engine). Then every row
// gets an assessment, written as the series `health` and `health.<metric>` (the first series'
// measurement and tags, so that they are queried and charted like any other series).
//
// This class holds no thread: anomaly_scoring's thread calls score() with the points of each
// round and writes the health points together with the anomaly scores. Nothing here depends
// on how the model works inside, only on the health_model interface.
//
// Thread safety: every method may be called from any thread (one mutex; score() holds it
// for a round, retrain() only while it swaps the model in).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "analytics/analytics.h"
#include "common/result.h"
#include "observe/observe.h"
#include "storage/storage.h"

namespace clisonix::app {

// The field of a canonical key (after the last unescaped space), escaped as in the key.
std::string_view field_of_key(std::string_view key);
// The `device` tag of a canonical key, or "" when it has none.
std::string device_of_key(std::string_view key);

class health_scoring {
public:
    health_scoring(storage::engine& engine, size_t max_devices);
    ~health_scoring();

    // The stream id of (device, metric) for the series `key`; nullopt when the device limit
    // is reached (counted). `baseline_ns`: how long the device learns from its first data.
    std::optional<uint32_t> stream_of(std::string_view key, std::string_view device,
                                      int64_t baseline_ns);

    struct sample {
        uint32_t stream;
        int64_t ts;
        double value;
    };
    // Feeds a round's samples (any order: sorted here by device and time) and adds the health
    // points of every scored row to `out`. Returns the rows scored.
    size_t score(std::vector<sample>& samples, storage::write_batch& out);

    // Retrains `device` on its stored history in [from_ns, to_ns): every numeric, non-derived
    // series of the device for which `include(field)` holds. Scores already written stay.
    // Errors: not_found (no stored series for the device), invalid_argument with field
    // "from" (too few rows in the window: the message has the count).
    // `source` is what the API reports: "window" (a user's choice) or "first_data" (the
    // first baseline of a device, retrained at start).
    result<size_t> retrain(std::string_view device, int64_t from_ns, int64_t to_ns,
                           const std::function<bool(std::string_view field)>& include,
                           std::string_view source = "window");

    // A device's stored numeric series (those `include(device, field)` accepts) span
    // [first_ns, last_ns]. At start, the first baseline of each device is retrained from it.
    struct stored_device {
        std::string device;
        int64_t first_ns = 0;
        int64_t last_ns = 0;
    };
    std::vector<stored_device> stored_devices(
        const std::function<bool(const std::string& device, std::string_view field)>& include)
        const;

    // The device's health as the API answers it (JSON object); nullopt when the device has
    // sent nothing scored here yet.
    std::optional<std::string> status_json(std::string_view device) const;

    size_t devices_with_model() const;
    size_t state_bytes() const;  // models and row buffers of every device

    // How often (in data time) a device's score is stored (analytics.health_interval;
    // docs/decisions/0062-health-storage-cadence.md). Every row is scored and the API shows
    // the latest; a row whose score crosses the watch (0.3) or abnormal (0.5) level is stored
    // at once with its contributions. 0: every row, with contributions.
    void set_store_interval(int64_t ns);

private:
    struct device_state;
    struct stream {
        uint32_t device;
        std::string metric;  // the field, escaped as in keys
        int32_t column = -1;
        uint32_t epoch = 0;  // the device's epoch `column` was resolved in
    };
    // Under _mutex: the device's index, added (prefix taken from one of its series keys) when
    // new; nullopt, counted as dropped, when analytics.health_max_devices is reached.
    std::optional<uint32_t> device_slot(std::string_view device, std::string_view key);
    // Under _mutex: the column of a stream in its device's row, -1 when not in the model.
    int32_t column_of(stream& s, device_state& d);
    void finish_row(device_state& d, int64_t ts, storage::write_batch& out, size_t& scored);
    void try_train(device_state& d);
    void write_scores(device_state& d, int64_t ts, storage::write_batch& out);

    storage::engine& _engine;
    size_t _max_devices;
    int64_t _store_interval_ns = 60'000'000'000;
    mutable std::mutex _mutex;
    std::vector<std::unique_ptr<device_state>> _devices;
    std::unordered_map<std::string, uint32_t> _device_ids;
    std::vector<stream> _streams;
    std::unordered_map<std::string, uint32_t> _stream_ids;  // series key -> stream
    metrics::counter _rows_scored, _devices_dropped;
};

}  // namespace clisonix::app
