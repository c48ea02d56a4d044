// Private to the app: streaming anomaly detection beside the ingest pipeline.
//
// For every numeric point of a durable write, the series' detector (src/analytics/) gives a
// score in [0, 1], written as the series `<field>.anomaly` beside it (same measurement and
// tags), so that it is stored, queried and charted like any other series.
//
// Scoring runs on a thread of its own, fed by a bounded queue: the write path only copies
// the points (a few ns each), so detection costs writers almost nothing. When writes arrive
// faster than the detector can score them, the queue's bound holds memory flat and the
// excess points go unscored, counted in clisonix_anomaly_points_skipped_total; the data
// itself is never affected. Scores are derived data: a crash may lose the newest few.
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
#include "observe/observe.h"
#include "storage/storage.h"

namespace clisonix::app {

class anomaly_scoring {
public:
    // `detector`: a name from analytics::detector_names(); `metrics`: a glob over field
    // names that are scored ("*": all); `max_queued`: points waiting at most.
    anomaly_scoring(storage::engine& engine, std::string detector, std::string metrics,
                    size_t max_series, size_t max_queued = 4'000'000);
    ~anomaly_scoring();  // stops the thread; points still queued are not scored

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
        uint32_t id;  // detector state and score series
        int64_t ts;
        double value;
    };
    uint32_t id_of(std::string_view key);  // under _mutex
    void run();

    storage::engine& _engine;
    std::string _metrics;
    analytics::series_detectors _detectors;
    size_t _max_queued;

    std::mutex _mutex;
    std::condition_variable _wake, _idle;
    std::vector<job> _queue;  // guarded by _mutex
    bool _busy = false;       // guarded by _mutex: the thread holds a taken queue
    bool _stop = false;       // guarded by _mutex
    struct key_hash {
        using is_transparent = void;
        size_t operator()(std::string_view s) const noexcept {
            return std::hash<std::string_view>{}(s);
        }
    };
    std::unordered_map<std::string, uint32_t, key_hash, std::equal_to<>> _ids;  // _mutex
    std::vector<std::string> _score_keys;  // id -> "<key>.anomaly", guarded by _mutex
    metrics::counter _scored, _skipped;
    metrics::gauge _queued;    // points waiting, for operators and the benchmark's prep step
    std::mutex _scored_mutex;  // held while the callback runs
    std::function<void(const storage::write_batch&)> _on_scored;  // guarded by _scored_mutex
    std::thread _thread;
};

}  // namespace clisonix::app
