// Private to the storage module: the series index (canonical key -> dense id and type) and
// the per-series state the engine keeps beside it (head points, latest value).
//
// Beside it, an inverted index (docs/decisions/0066-tag-index.md): for each measurement,
// field and (tag key, value), the ids of the series that have it, ascending. It lives in
// memory only: series.log holds every key, and replaying it at open rebuilds it.
//
// Ids are dense from 0 in creation order. Slots live in fixed-size chunks that never move,
// so a slot reference stays valid while other threads create series, and lookups by id
// need no lock. The index persists itself in `series.log` (docs/format/part.md): a record
// per series, appended and fsynced before the series is used by any WAL record.
#pragma once

#include <atomic>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "storage/io.h"
#include "storage/storage.h"

namespace clisonix::storage {

inline constexpr series_id no_series = 0xffffffffu;

// Points of one series not yet in parts, in arrival order. `sorted` holds while every
// append was newer than the previous point, so queries can binary-search.
struct head_points {
    std::vector<sample> points;
    std::vector<std::string> strings;  // string series: the values `raw` indexes
    int64_t min_ts = 0, max_ts = 0;
    bool sorted = true;

    bool empty() const { return points.empty(); }
    // Sorts by time and keeps the last written point of each timestamp.
    void normalize();
};

struct series_slot {
    series_info info;
    // Guarded by the engine's head mutex.
    head_points head;
    bool in_touched = false;  // listed in the engine's set of series with head points
    uint32_t head_hint = 0;   // points the head held at the last flush: reserved up front
    // A background flush keeps the newest points of a series in the head (see the engine's
    // freeze); points at or before this time were kept once and go with the next flush.
    int64_t kept_until = INT64_MIN;
    bool has_last = false;
    sample last{};
    std::string last_string;
};

class series_index {
public:
    static result<std::unique_ptr<series_index>> open(const std::string& dir, uint64_t max_series);
    ~series_index();

    uint32_t size() const { return _size.load(std::memory_order_acquire); }
    series_slot& at(series_id id) { return _chunks[id >> chunk_bits][id & chunk_mask]; }
    const series_slot& at(series_id id) const { return _chunks[id >> chunk_bits][id & chunk_mask]; }

    std::optional<series_id> find(std::string_view key) const;
    // ids[i] = the id of entries[i].key, or no_series.
    void find(std::span<const write_batch::series_entry> entries,
              std::vector<series_id>& ids) const;
    // Creates the series whose ids[i] is no_series, appending them durably to series.log.
    // Fails for a malformed key, a type that conflicts with a series created meanwhile, the
    // series limit, or the disk; then nothing is created.
    status create(std::span<const write_batch::series_entry> entries, std::vector<series_id>& ids);

    // Ids of the series that satisfy the selector's measurement, field and tag parts
    // (its filter is the caller's), ascending.
    std::vector<series_id> select(const series_selector& selector) const;

    // Bytes of series.log.
    uint64_t file_bytes() const;

private:
    static constexpr uint32_t chunk_bits = 12;
    static constexpr uint32_t chunk_size = 1u << chunk_bits;
    static constexpr uint32_t chunk_mask = chunk_size - 1;

    // Every write looks up each of its series once: a hash that takes 8 bytes per step
    // (a multiply-fold mix) costs a third of std::hash's byte-oriented one on 30-byte keys.
    struct key_hash {
        using is_transparent = void;
        static uint64_t mix(uint64_t a, uint64_t b) {
            __uint128_t r = static_cast<__uint128_t>(a) * b;
            return static_cast<uint64_t>(r) ^ static_cast<uint64_t>(r >> 64);
        }
        // Not noexcept on purpose: libstdc++ then stores each node's hash, so a lookup compares
        // hashes before keys and never rehashes a neighbour's key to find its bucket's end
        // (without it, walking the chain was 7 % of ingest with scoring on).
        size_t operator()(std::string_view s) const {
            uint64_t h = 0x9E3779B97F4A7C15ull ^ s.size();
            const char* p = s.data();
            size_t n = s.size();
            for (; n >= 8; p += 8, n -= 8) {
                uint64_t w;
                std::memcpy(&w, p, 8);
                h = mix(h ^ w, 0xBF58476D1CE4E5B9ull);
            }
            uint64_t w = 0;
            if (n > 0) std::memcpy(&w, p, n);
            return mix(h ^ w, 0x94D049BB133111EBull);
        }
    };

    series_index() = default;
    series_id add(series_info info);

    // Ids in creation order, so appending keeps each list sorted.
    using posting_list = std::vector<series_id>;
    // Ordered, so that a glob with a literal prefix (`pump-*`) visits only that range.
    using postings_by_value = std::map<std::string, posting_list, std::less<>>;

    std::string _path;
    uint64_t _max_series = 0;
    std::vector<std::unique_ptr<series_slot[]>> _chunks;
    std::atomic<uint32_t> _size{0};
    mutable std::shared_mutex _mutex;  // _by_key, appends
    std::unordered_map<std::string_view, series_id, key_hash, std::equal_to<>> _by_key;
    // The inverted index. A lock of its own: creating a series holds _mutex across the
    // series.log fsync, and selection must not wait for that; the postings lock is held only
    // to append a few ids, or to read the lists a selection names.
    mutable std::shared_mutex _postings_mutex;
    postings_by_value _by_measurement;
    postings_by_value _by_field;
    std::map<std::string, postings_by_value, std::less<>> _by_tag;  // tag key -> value -> ids
    io::file _log;
    uint64_t _log_bytes = 0;
};

}  // namespace clisonix::storage
