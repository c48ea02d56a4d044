// Clisonix — the time-series engine ("Memory"): durable writes, compressed blocks, scans.
//
// Data model (InfluxDB's): a series is (measurement, tag set, field); its canonical key is
// the line-protocol text `measurement,tag1=v1,tag2=v2 field` with tags sorted by key and
// line-protocol escaping. A point is (int64 nanosecond timestamp, value). A series has one
// value type, fixed by its first write; a write of another type is refused.
//
// Write path: parsers fill a write_batch; engine::write() appends it to the write-ahead log,
// waits until the log is fsynced (group commit: concurrent writers share one fsync), then
// makes the points visible. A second value for the same (series, timestamp) replaces the
// first. Points older than the out-of-order window behind the series' newest point are
// refused with a clear error; the whole batch is refused, never half stored.
//
// On disk (docs/format/): wal/ segments of CRC-checked records, replayed at open (a torn
// tail is truncated, never a refusal to start); partitions of one UTC day each, holding
// immutable parts of compressed blocks with per-block summaries; a series index.
//
// Thread safety: every engine method may be called from any thread.
#pragma once

#include <bit>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace clisonix::config {
class config;
}

namespace clisonix::storage {

enum class value_type : uint8_t { float64 = 1, int64 = 2, boolean = 3, string = 4 };

// "float", "integer", "boolean", "string".
std::string_view type_name(value_type t);

using series_id = uint32_t;

// A point's value (see write_batch::point) as a number: floats as they are, integers and
// booleans (0/1) converted; strings have no number and give 0.
inline double as_double(value_type t, uint64_t raw) {
    switch (t) {
        case value_type::float64:
            return std::bit_cast<double>(raw);
        case value_type::int64:
            return static_cast<double>(static_cast<int64_t>(raw));
        case value_type::boolean:
            return raw != 0 ? 1.0 : 0.0;
        case value_type::string:
            break;
    }
    return 0;
}

// The points of one write, grouped by series. Reused across requests: clear() keeps the
// capacity (points, key bytes, the key index), so a steady stream of batches allocates
// nothing per point and nothing per series.
class write_batch {
public:
    write_batch() = default;
    write_batch(const write_batch& o);
    write_batch& operator=(const write_batch& o);
    write_batch(write_batch&&) noexcept = default;
    write_batch& operator=(write_batch&&) noexcept = default;

    // The batch-local index of the series with this canonical key (see above) and field
    // value type, added on first use. `key` is copied once per batch, not per point.
    // Returns an error (code "invalid_argument") if the same key was added with another type.
    result<uint32_t> series(std::string_view key, value_type type);

    void add(uint32_t series, int64_t ts_ns, double v) {
        _points.push_back({series, ts_ns, std::bit_cast<uint64_t>(v)});
    }
    void add_int(uint32_t series, int64_t ts_ns, int64_t v) {
        _points.push_back({series, ts_ns, static_cast<uint64_t>(v)});
    }
    void add_bool(uint32_t series, int64_t ts_ns, bool v) {
        _points.push_back({series, ts_ns, v ? 1u : 0u});
    }
    void add_string(uint32_t series, int64_t ts_ns, std::string_view v);

    size_t point_count() const { return _points.size(); }
    size_t series_count() const { return _series.size(); }
    bool empty() const { return _points.empty(); }
    void clear();

    struct series_entry {
        std::string_view key;  // into the batch's own key bytes, valid until clear()
        value_type type;
    };
    // A point's value: the bits of a double (float64), an int64 (int64, boolean 0/1), or an
    // index into strings() (string).
    struct point {
        uint32_t series;
        int64_t ts;
        uint64_t raw;
    };
    const std::vector<series_entry>& series_entries() const { return _series; }
    const std::vector<point>& points() const { return _points; }
    const std::vector<std::string>& strings() const { return _strings; }
    // After engine::write succeeded: the engine's id of each series (as series_entries()),
    // so that what listens to durable batches can keep its per-series state in vectors
    // indexed by id instead of looking every key up again. Empty before, and after clear().
    std::span<const series_id> engine_ids() const { return _engine_ids; }
    // Called by the engine: the ids of a batch it has just stored.
    void set_engine_ids(std::span<const series_id> ids) const {
        _engine_ids.assign(ids.begin(), ids.end());
    }

private:
    uint32_t* find_slot(std::string_view key, size_t hash);
    void grow_index();
    void rebase_keys(const char* old_base);

    std::vector<series_entry> _series;
    std::vector<point> _points;
    std::vector<std::string> _strings;
    // Every key's bytes, back to back: one buffer reused across batches instead of a string
    // per series. Growing or copying it moves the bytes; the entries' views are then
    // re-pointed (a vector, not a string: a move keeps its heap buffer, where a short
    // string's bytes would move with the object).
    std::vector<char> _key_bytes;
    // The key index: open addressing with linear probing over a power-of-two table of
    // (batch-local index + 1), 0 for empty; its slots are reused across batches.
    std::vector<uint32_t> _slots;
    std::vector<size_t> _hashes;     // per series: its key's hash (rehashing, probing)
    std::vector<uint32_t> _slot_of;  // per series: its slot (clear() empties only those)
    // Derived from a write, not part of the batch's content: set through a const batch.
    mutable std::vector<series_id> _engine_ids;
};

struct options {
    std::string dir;  // the engine's folder, e.g. <data.dir>/tsdb
    enum class sync_mode { always, interval };
    sync_mode sync = sync_mode::always;  // always: ack after fsync; interval: fsync every
    std::chrono::milliseconds sync_interval{1000};            //   sync_interval (acks may be lost)
    int64_t out_of_order_window_ns = 3600LL * 1'000'000'000;  // 1 h
    int64_t retention_ns = 0;                                 // 0: keep forever
    // Days that ended this long ago keep only their rollup rows (docs/format/part.md,
    // "Downsampled entries"); 0: raw points as long as the day. Per measurement, the list
    // overrides it (0 there: keep raw points).
    int64_t raw_retention_ns = 0;
    std::vector<std::pair<std::string, int64_t>> raw_retention_by_measurement;
    uint64_t max_head_bytes = 512ull << 20;  // beyond: flush; still beyond: writes push back
    uint64_t max_series = 1'000'000;
    // Writes are refused ("storage_full") while the file system of `dir` has less than this
    // free, so that flushes (which shrink the WAL into parts) and the metadata store next to
    // it still find room; 0: refused only when the disk answers ENOSPC/EDQUOT.
    uint64_t min_free_bytes = 64ull << 20;
};

// The options from the `storage.*` config keys; the engine's folder is <data_dir>/tsdb.
options options_from(const config::config& cfg, const std::string& data_dir);

struct series_info {
    series_id id;
    std::string key;                                        // canonical key
    std::string measurement;                                // parsed from the key, unescaped
    std::vector<std::pair<std::string, std::string>> tags;  // sorted by key
    std::string field;
    value_type type;
};

// One series' points in [from, to), ascending by time; values as in write_batch::point.
struct sample {
    int64_t ts;
    uint64_t raw;
};

// Aggregates over a run of points, exact (sum in double, Kahan-compensated).
struct summary {
    uint64_t count = 0;
    double sum = 0, min = 0, max = 0, first = 0, last = 0;
    int64_t first_ts = 0, last_ts = 0;
};

// Which series a selection wants. The engine answers measurement, field and tags from its
// inverted index (a posting list of series ids per measurement, field and tag value), so a
// selection costs the series it names, not every series stored; `filter` runs only over the
// series those leave.
struct series_selector {
    std::string measurement = "*";  // glob (`*` any run, `?` one character) over the measurement
    std::string field = "*";        // glob over the field
    // Each: the series has the tag `first` and its value matches the glob `second`.
    std::vector<std::pair<std::string, std::string>> tag_globs;
    // Each: the series has the tag `first` and its value is one of `second` (exact text).
    std::vector<std::pair<std::string, std::vector<std::string>>> tag_values;
    // What the index cannot say (value type, derived fields, a pair of tags); empty: nothing.
    std::function<bool(const series_info&)> filter;
};

struct stats {
    uint64_t series = 0;
    uint64_t points = 0;       // stored, after replacement of duplicates
    uint64_t head_points = 0;  // not yet in blocks
    uint64_t disk_bytes = 0;   // everything under dir
    uint64_t partitions = 0;
    uint64_t rollup_bytes = 0;            // of disk_bytes, the parts' rollups
    uint64_t query_points_decoded = 0;    // since open: points scans and aggregates decoded
    uint64_t query_rollup_rows_read = 0;  // since open: rollup rows aggregates used instead
};

class engine {
public:
    static result<std::unique_ptr<engine>> open(const options& opts);
    virtual ~engine() = default;

    // Durable on return (in `always` mode). Errors: "invalid_argument" (type conflict, a
    // point outside the out-of-order window or the retention), "overloaded" (head full:
    // answer 503 with Retry-After), "storage_full" (see writable()), "unavailable" (disk).
    // Nothing is stored on error.
    virtual status write(const write_batch& batch) = 0;
    // Whether writes are taken now: ok, or the error they get. "storage_full" while the file
    // system of the engine's folder has less than min_free_bytes free, or since a write there
    // failed with ENOSPC/EDQUOT; its free space is checked every 200 ms and writes resume by
    // themselves once it is back. "unavailable" after a disk error only a restart clears.
    virtual status writable() const = 0;

    // Series whose measurement, tags and field match; `match` sees each series once.
    virtual std::vector<series_info> series(
        const std::function<bool(const series_info&)>& match) const = 0;
    // Series that satisfy every part of the selector, in creation order (as series() lists
    // them). A series created while this runs is in the answer or not, never half.
    virtual std::vector<series_info> select(const series_selector& selector) const = 0;
    virtual std::optional<series_info> series_by_key(std::string_view key) const = 0;
    // Whether the series exists, without copying its description (the write path asks).
    virtual bool has_series(std::string_view key) const = 0;

    // Points of one series in [from, to) in time order. Strings: raw indexes `strings`.
    // Days downsampled by the raw retention have no points left to return.
    virtual status scan(series_id id, int64_t from, int64_t to, std::vector<sample>& out,
                        std::vector<std::string>* strings = nullptr) const = 0;
    // Aggregates per bucket of `step` ns aligned to multiples of step, over [from, to);
    // whole blocks inside a bucket are summed from their summaries, whole 1-minute and
    // 1-hour intervals of a block from its rollups, without decoding.
    // Buckets without points are absent. Strings: count, first and last only.
    // Days downsampled by the raw retention answer from their rows: exact for steps that are
    // multiples of a kept interval over aligned ranges; otherwise a row counts whole in the
    // bucket of its first point (docs/format/part.md, "Downsampled entries").
    virtual status aggregate(series_id id, int64_t from, int64_t to, int64_t step,
                             std::vector<std::pair<int64_t, summary>>& out) const = 0;
    // The newest point of the series (the latest-value cache).
    virtual std::optional<sample> last(series_id id, std::string* string_value = nullptr) const = 0;

    // Moves the head into blocks now (normally done in the background).
    virtual status flush() = 0;
    // Merges small parts, downsamples days past the raw retention and drops partitions past
    // the retention.
    virtual status compact() = 0;
    virtual status apply_retention(int64_t now_ns) = 0;
    // Rewrites each partition holding raw points of a series past its raw retention (as of
    // `now_ns`) so that those series keep only their rollup rows there. Scans return no
    // points for them; aggregates answer from the rows (see aggregate() in the docs).
    virtual status apply_raw_retention(int64_t now_ns) = 0;
    virtual stats statistics() const = 0;
};

// Whether a field is one the platform derives from a device's data (`<metric>.anomaly`,
// `<metric>.out_of_range`, `health`, `health.<metric>`): never scored, never part of a health
// row, never range-checked, and not data from the device for its no-data rules.
bool is_derived_field(std::string_view field);
// Parses a canonical series key back into its parts; an error for malformed text.
result<series_info> parse_key(std::string_view key);
// Builds the canonical key (tags must be sorted by key; escaping applied).
std::string make_key(std::string_view measurement,
                     std::span<const std::pair<std::string, std::string>> tags,
                     std::string_view field);

}  // namespace clisonix::storage
