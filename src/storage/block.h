// Private to the storage module: the compressed block, the unit the engine writes to disk.
//
// A block holds one series' points over a time range, sorted by time, timestamps unique.
// Layout (docs/format/block.md): a header (format version, value type, count, first and
// last timestamp, the summary, the codec of each column, column lengths, a CRC32C of the
// whole block), then the timestamp column, then the value column.
//
// Timestamps: delta-of-delta, zigzag varints, with runs of equal deltas collapsed, so that
// regular sampling costs a few bytes per block. Values: every candidate codec is tried and
// the smallest kept, per block:
//   float64  Gorilla XOR; decimal (VictoriaMetrics's: to int64 mantissas with one shared
//            power-of-ten exponent when that is exact, then delta or delta-of-delta zigzag
//            varints); each optionally followed by zstd
//   int64    delta / delta-of-delta zigzag varints, constant run; optionally zstd
//   boolean  bit-packed or run-length
//   string   dictionary + zstd, or plain LZ4/zstd
// Decoding validates every length and count: corrupt bytes give an error, never a crash.
//
// Thread safety: free functions without shared state.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "common/result.h"
#include "storage/storage.h"

namespace clisonix::storage::block {

// The most points one block holds; the engine splits longer runs. Bounds what a decoder
// allocates for a forged header (8 MiB per column).
inline constexpr uint32_t max_points = 1u << 20;

// What a reader needs to know about a block without decoding its columns.
struct header {
    value_type type = value_type::float64;
    uint32_t count = 0;
    int64_t first_ts = 0;
    int64_t last_ts = 0;
    summary stats;  // numeric types: count, sum, min, max, first, last; strings: count only
    uint8_t ts_codec = 0;
    uint8_t value_codec = 0;
};

// The summary of a run of points (ascending timestamps): count, first and last timestamp;
// for numeric types also the Neumaier-compensated sum, min and max (NaN ignored unless every
// value is NaN), first and last value. Block headers and rollup rows use it alike.
void summarize(value_type type, std::span<const int64_t> ts, std::span<const uint64_t> raw,
               summary& s);

// The compact encoding of a summary's sum, min, max, first and last, as the block header
// holds it (decimal mantissas where exact, ~15 bytes for sensor data); part indexes reuse it.
void put_summary_values(const summary& s, std::vector<uint8_t>& out);
// Reads those values from the start of `in` into `s`: the bytes read, 0 when malformed.
size_t get_summary_values(std::span<const uint8_t> in, summary& s);

// Appends the encoding of one block to `out`. `ts` ascending and unique, at most max_points;
// `raw` as in write_batch::point, one per timestamp (for strings, indexes into `strings`).
// Returns the header written. Summary: min and max skip NaN (NaN only if every value is).
header encode(value_type type, std::span<const int64_t> ts, std::span<const uint64_t> raw,
              std::span<const std::string> strings, std::vector<uint8_t>& out);

// The same block without what a part's index entry already holds (type, count, time range,
// summary): format version 2, about 30 bytes less per block. Read back with that entry.
header encode_columns(value_type type, std::span<const int64_t> ts, std::span<const uint64_t> raw,
                      std::span<const std::string> strings, std::vector<uint8_t>& out);

// What a part's index entry says of its block: type, count, first_ts and last_ts are used.
// A version 2 block is read only with it; a version 1 block ignores it.
using known = header;

// Reads the header of the block at the start of `in` and the block's total size in bytes.
// `in` must hold the whole block: the checksum is verified, so a summary is never trusted
// from damaged bytes. Errors: code "corrupt", the message says what is wrong.
result<header> read_header(std::span<const uint8_t> in, size_t* block_size = nullptr,
                           const known* entry = nullptr);

// Decodes a whole block (verifying its checksum). Appends to ts/raw (and strings, whose
// indexes raw then holds, offset by the size strings had before).
status decode(std::span<const uint8_t> in, std::vector<int64_t>& ts, std::vector<uint64_t>& raw,
              std::vector<std::string>* strings = nullptr, const known* entry = nullptr);

// Name of a codec id, for statistics and `clisonix` diagnostics ("gorilla+zstd", ...).
std::string codec_name(uint8_t codec);

}  // namespace clisonix::storage::block
