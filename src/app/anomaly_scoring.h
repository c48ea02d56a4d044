// Private to the app: streaming anomaly detection beside the ingest pipeline.
//
// For every numeric point of a durable write, the series' detector (src/analytics/) gives a
// score in [0, 1], written as the series `<field>.anomaly` beside it (same measurement and
// tags), so that it is stored, queried and charted like any other series.
//
// Scoring runs on a thread of its own at nice 19, fed by a bounded queue:
// the write path only copies the points (a few ns each), so detection costs writers almost
// nothing. When writes arrive faster than the detector can score them, the queue's bound
// holds memory flat and the excess points go unscored, counted in
// clisonix_anomaly_points_skipped_total; the data itself is never affected. The scoring
// thread holds no lock a writer needs for longer than a swap of two vectors: the scores are
// written (and handed to on_scored) by a second thread at normal priority, so that a
// low-priority thread never leads a WAL group commit or holds the head or rules locks while
// writers wait. Scores are derived data: a crash may lose the newest few.
//
// The same thread scores machine health (health_scoring.h): the points of each device's
// metrics also go to its health model, and the health points are written in the same
// engine write as the anomaly scores. What is scored is decided per device from its type's
// analytics settings (devices::type_analytics, through settings_fn) over the server's
// defaults; answers are cached per series key until the registry's generation changes.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "analytics/analytics.h"
#include "app/health_scoring.h"
#include "observe/observe.h"
#include "storage/storage.h"

namespace clisonix::app {

// What is scored for one device (its type's settings over the server's defaults).
struct device_analytics {
    std::string detector = "ensemble";              // a detector name, or "off"
    std::vector<std::string> metrics = {"*"};       // globs over field names (anomaly and health)
    bool health = true;                             // a machine-health score for the device
    int64_t health_baseline_ns = 3600'000'000'000;  // learning time from the first data
};

// Whether `field` (escaped as in keys) is scored under these settings.
bool metric_included(const device_analytics& settings, std::string_view field);

class anomaly_scoring {
public:
    // The settings of a device (called for each new series key, and again after the
    // generation changes); `generation` changes whenever what settings() answers may have.
    using settings_fn = std::function<device_analytics(std::string_view device)>;
    using generation_fn = std::function<uint64_t()>;

    // `defaults`: for series without a device tag, and what settings() starts from;
    // `max_series`: detector states at most (per detector); `max_health_devices`: health
    // models at most; `max_queued`: points waiting at most.
    anomaly_scoring(storage::engine& engine, device_analytics defaults, size_t max_series,
                    size_t max_health_devices, size_t max_queued = 4'000'000);
    ~anomaly_scoring();  // stops the threads; points still queued are not scored

    // Per-device settings; without them every device gets the defaults. Call before the
    // first enqueue().
    void set_settings(settings_fn settings, generation_fn generation);
    // Runs first on the scoring thread, before any queued point is scored (retraining the
    // health models from their stored baseline windows at start). Call before start().
    void on_start(std::function<void()> task);
    // Starts the scoring thread and the thread that writes its scores.
    void start();

    health_scoring& health() { return _health; }

    // The pipeline listener: queues the batch's numeric points for scoring.
    void enqueue(const storage::write_batch& batch);

    // Blocks until every queued point is scored and written (tests, shutdown).
    void drain();

    // Called on the scoring thread after each batch of scores is durably written (the rules
    // engine watches `<metric>.anomaly`). Replacing it, or clearing it with nullptr, waits
    // for a call in progress, so its target may be destroyed after on_scored(nullptr).
    void on_scored(std::function<void(const storage::write_batch&)> callback);

private:
    struct job {
        uint32_t id;        // detector state and score series
        uint32_t detector;  // index in _detectors
        int64_t ts;
        double value;
    };
    // What a series key feeds, cached per key under _mutex.
    struct key_info {
        int64_t anomaly_id = -1;  // -1: no anomaly score
        int32_t detector = -1;
        int64_t health_stream = -1;  // -1: not in a health row
        uint64_t generation = 0;
    };
    uint32_t id_of(std::string_view key);                                // under _mutex
    const key_info& resolve(std::string_view key, uint64_t generation);  // under _mutex
    int32_t detector_index(const std::string& name);                     // under _mutex
    void run();
    void write_scores();

    storage::engine& _engine;
    device_analytics _defaults;
    size_t _max_series;
    settings_fn _settings;
    generation_fn _generation;
    std::function<void()> _on_start;
    std::vector<std::string> _detector_names;                              // guarded by _mutex
    std::vector<std::unique_ptr<analytics::series_detectors>> _detectors;  // guarded by _mutex
    health_scoring _health;
    size_t _max_queued;

    std::mutex _mutex;
    std::condition_variable _wake, _idle;
    std::condition_variable _out_free, _out_ready;      // the hand-off slot below
    std::vector<job> _queue;                            // guarded by _mutex
    std::vector<health_scoring::sample> _health_queue;  // guarded by _mutex
    bool _busy = false;  // guarded by _mutex: the thread holds a taken queue
    // The hand-off from the scoring thread to the writing thread, guarded by _mutex.
    storage::write_batch _out;
    size_t _out_anomaly_points = 0;  // of _out's points, anomaly scores (the rest: health)
    size_t _out_taken = 0;           // queued points _out's scores stand for
    size_t _unwritten = 0;  // points taken from the queues whose scores are not yet written
    bool _out_full = false;
    bool _writing = false;  // the writing thread holds a batch not yet written
    bool _stop = false;     // guarded by _mutex
    struct key_hash {
        using is_transparent = void;
        size_t operator()(std::string_view s) const noexcept {
            return std::hash<std::string_view>{}(s);
        }
    };
    std::unordered_map<std::string, uint32_t, key_hash, std::equal_to<>> _ids;   // _mutex
    std::unordered_map<std::string, key_info, key_hash, std::equal_to<>> _keys;  // _mutex
    // Engine series id -> its entry in _keys (nodes do not move), guarded by _mutex.
    std::vector<const key_info*> _info_by_id;
    std::vector<const key_info*> _batch_infos;  // enqueue's scratch, guarded by _mutex
    uint32_t _score_key_count = 0;              // ids given, guarded by _mutex
    std::vector<std::string> _new_score_keys;   // "<key>.anomaly" of the ids the scoring
                                                // thread has not taken yet, guarded by _mutex
    metrics::counter _scored, _skipped;
    metrics::gauge _queued;    // points waiting, for operators and the benchmark's prep step
    std::mutex _scored_mutex;  // held while the callback runs
    std::function<void(const storage::write_batch&)> _on_scored;  // guarded by _scored_mutex
    std::thread _thread, _writer;
};

}  // namespace clisonix::app
