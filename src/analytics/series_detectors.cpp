// One detector per series behind striped locks: ingest threads writing different series
// rarely meet on the same lock, and no lock is held across more than one series' update.
#include <atomic>
#include <mutex>
#include <unordered_map>

#include "analytics/analytics.h"

namespace clisonix::analytics {

namespace {
constexpr size_t stripe_count = 64;
}

struct series_detectors::stripe {
    mutable std::mutex mutex;
    std::unordered_map<uint32_t, std::unique_ptr<detector>> series;
    // Shared by all stripes through stripe 0; kept here to avoid another allocation.
    std::atomic<size_t> count{0};
    std::atomic<uint64_t> dropped{0};
};

series_detectors::series_detectors(std::string_view detector, size_t max_series)
    : _detector(detector),
      _max_series(max_series),
      _valid(make_detector(detector).ok()),
      _stripes(new stripe[stripe_count]) {}

series_detectors::~series_detectors() = default;

double series_detectors::score(uint32_t series, int64_t ts_ns, double value) {
    // Fibonacci hashing spreads consecutive ids over the stripes.
    auto& s = _stripes[(series * 2654435769u) >> 26];
    std::lock_guard lock(s.mutex);
    auto it = s.series.find(series);
    if (it == s.series.end()) {
        if (!_valid || _stripes[0].count.load(std::memory_order_relaxed) >= _max_series) {
            _stripes[0].dropped.fetch_add(1, std::memory_order_relaxed);
            return 0.0;
        }
        it = s.series.emplace(series, std::move(*make_detector(_detector))).first;
        _stripes[0].count.fetch_add(1, std::memory_order_relaxed);
    }
    return it->second->update(ts_ns, value);
}

void series_detectors::erase(uint32_t series) {
    auto& s = _stripes[(series * 2654435769u) >> 26];
    std::lock_guard lock(s.mutex);
    if (s.series.erase(series) > 0) _stripes[0].count.fetch_sub(1, std::memory_order_relaxed);
}

size_t series_detectors::series_count() const {
    return _stripes[0].count.load(std::memory_order_relaxed);
}

uint64_t series_detectors::dropped() const {
    return _stripes[0].dropped.load(std::memory_order_relaxed);
}

size_t series_detectors::state_bytes() const {
    size_t total = 0;
    for (size_t i = 0; i < stripe_count; ++i) {
        std::lock_guard lock(_stripes[i].mutex);
        for (const auto& [id, d] : _stripes[i].series)
            total += d->state_bytes();
    }
    return total;
}

bool series_detectors::valid() const {
    return _valid;
}

}  // namespace clisonix::analytics
