// Private to the storage module: immutable part files (docs/format/part.md).
//
// A part holds compressed blocks of many series for one partition (a UTC day): the blocks,
// the blocks' rollups (rollup.h), an index entry per block (series, offset, size, the size
// of its rollups, the block's summary), then a footer with the index's checksum. A part is written
// once (temp file, fsync, rename, fsync of the directory) and never changed; opening it maps the
// file and loads only its index.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "storage/storage.h"

namespace clisonix::storage {

inline constexpr int64_t day_ns = 86'400LL * 1'000'000'000;
inline constexpr uint32_t max_block_points = 8192;

// The partition (days since 1970-01-01 UTC) of a timestamp, rounding down.
inline int64_t day_of(int64_t ts) {
    int64_t d = ts / day_ns;
    return (ts % day_ns < 0) ? d - 1 : d;
}
std::string day_name(int64_t day);  // "2023-11-14"
std::optional<int64_t> parse_day_name(std::string_view name);
std::string part_name(uint64_t seq);  // "00000000000000000007.part"
std::optional<uint64_t> parse_part_name(std::string_view name);

// Background compaction policy: given a partition's part sizes in seq order, the index of
// the first of the newest parts to merge (a suffix in which each older part is at most twice
// the newer ones together), or sizes.size() when that suffix has fewer than `min_parts`.
size_t tiered_merge_start(std::span<const uint64_t> sizes, size_t min_parts);

class part {
public:
    struct entry {
        series_id series;
        value_type type;
        uint32_t size;
        uint64_t offset;
        summary stats;             // count, first_ts, last_ts always; values for numeric types
        uint32_t rollup_size = 0;  // bytes of the block's rollups (rollup.h); 0: none
        uint64_t rollup_offset = 0;
        // Downsampled: the block's points are gone (size 0), its summary and rollups remain.
        bool downsampled = false;
    };

    static result<std::shared_ptr<part>> open(const std::string& path, uint64_t seq, int64_t day);
    ~part();
    part(const part&) = delete;
    part& operator=(const part&) = delete;

    // The blocks of one series, ascending by time.
    std::span<const entry> entries(series_id id) const;
    const std::vector<entry>& all() const { return _entries; }
    std::span<const uint8_t> bytes(const entry& e) const { return {_map + e.offset, e.size}; }
    std::span<const uint8_t> rollups(const entry& e) const {
        return {_map + e.rollup_offset, e.rollup_size};
    }

    uint64_t seq() const { return _seq; }
    int64_t day() const { return _day; }
    uint64_t file_bytes() const { return _size; }
    uint64_t points() const { return _points; }  // raw points, not those of downsampled entries
    bool has_downsampled() const { return _has_downsampled; }
    const std::string& path() const { return _path; }

private:
    part() = default;
    std::string _path;
    uint64_t _seq = 0;
    int64_t _day = 0;
    const uint8_t* _map = nullptr;
    size_t _size = 0;
    uint64_t _points = 0;
    bool _has_downsampled = false;
    std::vector<entry> _entries;
};

// Builds one part in memory, series by series in ascending id order.
class part_builder {
public:
    // Adds the points of one series (ascending, unique timestamps), cut into blocks of at
    // most max_block_points, with each block's rollups unless `rollups` is false.
    void add(series_id id, value_type type, std::span<const int64_t> ts,
             std::span<const uint64_t> raw, std::span<const std::string> strings,
             bool rollups = true);
    // Adds the points of one numeric series as downsampled entries: per run of at most
    // max_block_points, its summary and rollups (the hourly level always) without the block.
    void add_downsampled(series_id id, value_type type, std::span<const int64_t> ts,
                         std::span<const uint64_t> raw);
    // Copies a downsampled entry of another part, with its rollups.
    void add_downsampled(const part::entry& e, std::span<const uint8_t> rollups);
    bool empty() const { return _entries.empty(); }
    size_t bytes() const { return _data.size(); }
    // Writes the part durably to `path` (via path.tmp and a rename).
    status write(const std::string& path);

private:
    std::vector<uint8_t> _data;
    std::vector<uint8_t> _rollups;  // written after the blocks
    std::vector<part::entry> _entries;
};

}  // namespace clisonix::storage
