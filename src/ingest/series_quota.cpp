// The per-device series bound of the ingest pipeline (see pipeline::admit in ingest.h).
//
// The count per device starts from the series the engine holds (one pass over the index, at
// the first admission) and grows with every series admitted since, so that a series admitted
// for a write still in flight is not counted twice and a batch admitted by the MQTT broker
// message by message is admitted again whole by submit().
#include <mutex>
#include <string>
#include <unordered_map>
#include <unordered_set>

#include "ingest/ingest.h"
#include "observe/observe.h"

namespace clisonix::ingest {

struct pipeline::series_quota {
    uint64_t max_per_device = 0;
    std::mutex mutex;
    bool counted = false;
    std::unordered_map<std::string, uint64_t> per_device;  // series known per device
    std::unordered_set<std::string> admitted;              // keys admitted since start

    static const std::string* device_of(const storage::series_info& s) {
        for (const auto& [k, v] : s.tags)
            if (k == "device") return &v;
        return nullptr;
    }
};

void pipeline::limit_series_per_device(uint64_t max) {
    if (max == 0) {
        _quota.reset();
        return;
    }
    _quota = std::make_shared<series_quota>();
    _quota->max_per_device = max;
}

status pipeline::admit(const storage::write_batch& batch) {
    if (!_quota) return {};
    auto& q = *_quota;
    // Nearly every batch names only series the engine has: those are settled by one lookup
    // each without the quota's lock, which every writer would otherwise queue on.
    thread_local std::vector<std::string_view> unknown;
    unknown.clear();
    for (const auto& e : batch.series_entries())
        if (!_engine.has_series(e.key)) unknown.push_back(e.key);
    if (unknown.empty()) return {};
    std::lock_guard lock(q.mutex);
    if (!q.counted) {
        _engine.series([&q](const storage::series_info& s) {
            if (const auto* d = series_quota::device_of(s);
                d && !storage::is_derived_field(s.field))
                ++q.per_device[*d];
            return false;  // counted, not collected
        });
        q.counted = true;
    }
    // New series of this batch per device; nothing is counted unless the whole batch fits.
    std::vector<std::pair<std::string, std::string>> fresh;  // device, key
    std::unordered_map<std::string, uint64_t> adding;
    for (std::string_view key : unknown) {
        if (q.admitted.count(std::string(key)) || _engine.has_series(key)) continue;
        auto info = storage::parse_key(key);
        if (!info || storage::is_derived_field(info->field)) continue;
        const auto* d = series_quota::device_of(*info);
        if (!d) continue;  // not a device's series: bounded by storage.max_series only
        const uint64_t total = q.per_device[*d] + ++adding[*d];
        if (total > q.max_per_device) {
            static metrics::counter refused = metrics::global().get_counter(
                "clisonix_ingest_series_quota_refused_total",
                "Writes refused because a device reached ingest.max_series_per_device");
            refused.inc();
            return make_error("too_many_requests",
                              "metric " + info->field + ": device " + *d + " already has " +
                                  std::to_string(q.per_device[*d]) + " series, the limit is " +
                                  std::to_string(q.max_per_device) +
                                  " (ingest.max_series_per_device)",
                              "metric");
        }
        fresh.emplace_back(*d, key);
    }
    for (auto& [d, key] : fresh) {
        ++q.per_device[d];
        q.admitted.insert(std::move(key));
    }
    return {};
}

}  // namespace clisonix::ingest
