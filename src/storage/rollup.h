// Private to the storage module: the rollups of a block (docs/format/part.md, "Rollups").
//
// A block's rollups are summaries (count, sum, min, max, first, last, first and last
// timestamp) of its points per 1-minute and per 1-hour interval (UTC, aligned to the epoch),
// built when a part is written and stored in the part beside the block. A query whose
// buckets cover whole intervals sums the rows instead of decoding the block. A level is kept
// only when its rows average at least min_points_per_row points (a row costs about as much
// as a few points: docs/decisions/0064-rollups.md) and the block spans at least two rows.
// Numeric types only; string blocks have none.
//
// Thread safety: free functions without shared state.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "common/result.h"
#include "storage/storage.h"

namespace clisonix::storage::rollup {

inline constexpr int64_t minute_ns = 60LL * 1'000'000'000;
inline constexpr int64_t hour_ns = 3600LL * 1'000'000'000;
inline constexpr uint64_t min_points_per_row = 16;

enum level : uint8_t { minute = 1, hour = 2 };  // bits of levels()

inline int64_t interval_ns(level l) {
    return l == minute ? minute_ns : hour_ns;
}

// One interval's summary; `start` is the interval's first nanosecond.
struct row {
    int64_t start;
    summary stats;
};

// Appends the rollups of one block's points (`ts` ascending and unique, values as in
// write_batch::point) to `out`; appends nothing when no level pays for itself.
// `keep_hours`: the hourly level is kept whatever it costs (a downsampled entry has no points
// left to answer from).
void build(value_type type, std::span<const int64_t> ts, std::span<const uint64_t> raw,
           std::vector<uint8_t>& out, bool keep_hours = false);

// The levels (bits of `level`) present in a block's rollups; 0 for none or malformed bytes.
uint8_t levels(std::span<const uint8_t> rollups);

// Decodes the rows of one level of a block whose first timestamp is `block_first_ts`,
// replacing `rows`. Errors: "corrupt" when the bytes do not decode, "not_found" when the
// level is absent.
status read(std::span<const uint8_t> rollups, int64_t block_first_ts, level l,
            std::vector<row>& rows);

}  // namespace clisonix::storage::rollup
