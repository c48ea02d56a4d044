// Private to the app: streaming anomaly detection wired into the ingest pipeline.
//
// For every numeric point of a write, the series' detector (src/analytics/) gives a score in
// [0, 1], and the score is written in the same batch as the series `<field>.anomaly` beside
// it (same measurement and tags), so that it is stored, queried and charted like any other
// series and is durable together with the points it scores.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "analytics/analytics.h"
#include "storage/storage.h"

namespace clisonix::app {

class anomaly_scoring {
public:
    // `detector`: a name from analytics::detector_names(); `metrics`: a glob over field
    // names that are scored ("*": all).
    anomaly_scoring(std::string detector, std::string metrics, size_t max_series);

    // Appends the scores of `batch`'s numeric points to `batch` itself.
    void score(storage::write_batch& batch);

private:
    uint32_t id_of(std::string_view key);

    std::string _metrics;
    analytics::series_detectors _detectors;
    std::mutex _ids_mutex;
    struct key_hash {
        using is_transparent = void;
        size_t operator()(std::string_view s) const noexcept {
            return std::hash<std::string_view>{}(s);
        }
    };
    std::unordered_map<std::string, uint32_t, key_hash, std::equal_to<>> _ids;  // _ids_mutex
};

}  // namespace clisonix::app
