// Private to the storage module: the write-ahead log's record format (docs/format/wal.md).
//
// A segment file wal/<seq>.log is a sequence of records [u32 length][u32 crc32c][payload].
// A payload holds one write batch's points grouped by series. Decoding validates every
// count and length: arbitrary bytes give `false`, never a crash or an unbounded allocation.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "storage/storage.h"

namespace clisonix::storage::wal {

inline constexpr size_t record_header = 8;
inline constexpr uint32_t max_payload = 1u << 30;
// Payload kinds (docs/format/wal.md). Kind 1, raw 8-byte values and timestamp differences,
// was written by format version 1; it is still replayed. Kind 2 is what encode() writes.
inline constexpr uint8_t kind_points_v1 = 1;
inline constexpr uint8_t kind_points = 2;

// One batch grouped by series: points[order[starts[g]] .. order[starts[g+1]-1]] belong to the
// batch-local series locals[g], whose engine id is ids[locals[g]].
struct grouping {
    std::vector<uint32_t> order;
    std::vector<uint32_t> starts;
    std::vector<uint32_t> locals;
    std::vector<uint32_t> counts;  // scratch
    void build(const write_batch& batch);
};

// Appends a whole record (header and payload) for `batch` to `out`.
void encode(const write_batch& batch, std::span<const series_id> ids,
            std::span<const value_type> types, const grouping& g, std::vector<uint8_t>& out);

struct decoded {
    struct group {
        series_id id;
        value_type type;
        uint32_t first;  // into points
        uint32_t count;
    };
    std::vector<group> groups;
    std::vector<sample> points;
    std::vector<std::string> strings;  // string points' raw indexes this
    void clear() {
        groups.clear();
        points.clear();
        strings.clear();
    }
};

// Decodes a payload of either kind; false if it is malformed.
bool decode(std::span<const uint8_t> payload, decoded& out);

struct scan_result {
    size_t valid_bytes = 0;  // the prefix made of complete, checksummed records
    size_t records = 0;
    bool damaged = false;  // bytes after valid_bytes that are not a complete record
};

// Walks the records of a segment, calling on_record(payload) for each whose checksum holds;
// stops at the first short or damaged record, or when on_record returns false.
scan_result scan(std::span<const uint8_t> segment,
                 const std::function<bool(std::span<const uint8_t>)>& on_record);

std::string segment_name(uint64_t seq);  // "00000000000000000042.log"
// The seq of a segment file name, or -1.
int64_t parse_segment_name(std::string_view name);

}  // namespace clisonix::storage::wal
