// The time-series engine: WAL with group commit, in-memory head, flushes into immutable
// parts, merged scans, aggregates from block summaries, compaction and retention.
// Layout and reasons: docs/decisions/0007-engine-layout.md; formats: docs/format/.
#include <fcntl.h>
#include <sys/file.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <climits>
#include <cmath>
#include <condition_variable>
#include <filesystem>
#include <limits>
#include <map>
#include <mutex>
#include <shared_mutex>
#include <thread>

#include "common/time.h"
#include "observe/observe.h"
#include "storage/block.h"
#include "storage/io.h"
#include "storage/part.h"
#include "storage/rollup.h"
#include "storage/series_index.h"
#include "storage/storage.h"
#include "storage/wal.h"

namespace clisonix::storage {

namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

constexpr uint64_t segment_limit = 64ull << 20;
constexpr uint64_t point_bytes = sizeof(sample);
// The head is flushed in the background once it holds this share of max_head_bytes, so that
// writers normally never meet the hard limit, or once its oldest point is this old.
constexpr uint64_t flush_share_divisor = 2;
constexpr std::chrono::minutes flush_age{5};
constexpr size_t compact_min_parts = 4;
// A background flush leaves each series' newest points in the head, up to this far behind
// its newest and at most this many (only the newest), so that points still arriving out of
// order from concurrent writers land in the head beside them instead of overlapping the
// block just written: a block that nothing overlaps answers aggregates from its rollups.
constexpr int64_t keep_tail_ns = 5 * 60 * 1'000'000'000LL;
constexpr size_t keep_tail_points = 32;
constexpr std::chrono::seconds maintenance_every{30};
// A full file system (see engine::writable): writes resume once this much more than the
// reserve is free, so that they do not flap on and off around the reserve with each flush.
constexpr uint64_t resume_margin_bytes = 1ull << 20;
// After a write failed for want of space, writes stay refused at least this long; the hold
// doubles (up to the max) when space runs out again soon after writes resumed, as it does
// under a quota, which statvfs does not see.
constexpr std::chrono::seconds full_hold_min{1}, full_hold_max{30}, full_again_within{10};
// A background flush that failed is retried after a pause that doubles up to this.
constexpr std::chrono::seconds flush_retry_max{30};

int64_t steady_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

// RFC 3339 in UTC, fractional seconds only when present.
std::string format_time(int64_t ts) {
    int64_t secs = ts / 1'000'000'000, frac = ts % 1'000'000'000;
    if (frac < 0) {
        frac += 1'000'000'000;
        --secs;
    }
    int64_t days = secs / 86400, rem = secs % 86400;
    if (rem < 0) {
        rem += 86400;
        --days;
    }
    std::string out = day_name(days);
    char buf[48];
    std::snprintf(buf, sizeof buf, "T%02d:%02d:%02d", static_cast<int>(rem / 3600),
                  static_cast<int>(rem / 60 % 60), static_cast<int>(rem % 60));
    out += buf;
    if (frac != 0) {
        std::snprintf(buf, sizeof buf, ".%09lld", static_cast<long long>(frac));
        std::string f = buf;
        while (f.back() == '0')
            f.pop_back();
        out += f;
    }
    out += 'Z';
    return out;
}

// "1h", "90m", "36h", "1500ms": the largest unit that divides the duration.
std::string format_duration(int64_t ns) {
    struct unit {
        int64_t n;
        const char* name;
    };
    static constexpr unit units[] = {{86400'000'000'000, "d"}, {3600'000'000'000, "h"},
                                     {60'000'000'000, "m"},    {1'000'000'000, "s"},
                                     {1'000'000, "ms"},        {1'000, "us"}};
    for (const auto& u : units)
        if (ns != 0 && ns % u.n == 0) return std::to_string(ns / u.n) + u.name;
    return std::to_string(ns) + "ns";
}

// The first timestamp after `day`, saturating at the end of time.
int64_t day_end(int64_t day) {
    int64_t end;
    if (__builtin_mul_overflow(day + 1, day_ns, &end)) return std::numeric_limits<int64_t>::max();
    return end;
}

// The start of ts's bucket; the first bucket of time may start before INT64_MIN, then it is
// reported as INT64_MIN.
int64_t bucket_of(int64_t ts, int64_t step) {
    int64_t q = ts / step;
    if (ts % step < 0) --q;
    int64_t start;
    if (__builtin_mul_overflow(q, step, &start)) return std::numeric_limits<int64_t>::min();
    return start;
}

// A summary being built: Neumaier-compensated sum; min and max ignore NaN unless every value
// is NaN (as the block summaries do).
struct accumulator {
    summary s;
    double comp = 0;
    bool numeric = true;

    void add_sum(double v) {
        double n = s.sum + v;
        comp += std::fabs(s.sum) >= std::fabs(v) ? (s.sum - n) + v : (v - n) + s.sum;
        s.sum = n;
    }
    static void fold_min(double& mn, double v) {
        if (!(v >= mn)) mn = std::isnan(mn) || v < mn ? v : mn;
    }
    static void fold_max(double& mx, double v) {
        if (!(v <= mx)) mx = std::isnan(mx) || v > mx ? v : mx;
    }
    // A run of points in time order, usually later than everything added so far: the same
    // arithmetic as add_point without its per-point bookkeeping. (Rows of downsampled entries
    // may overlap later points in time: first and last go by timestamp.)
    void add_points(value_type type, const sample* p, size_t n) {
        if (n == 0) return;
        if (s.count == 0) {
            s.min = s.max = NAN;
        }
        if (s.count == 0 || p[0].ts < s.first_ts) {
            s.first_ts = p[0].ts;
            s.first = numeric ? as_double(type, p[0].raw) : 0;
        }
        if (s.count == 0 || p[n - 1].ts >= s.last_ts) {
            s.last_ts = p[n - 1].ts;
            s.last = numeric ? as_double(type, p[n - 1].raw) : 0;
        }
        s.count += n;
        if (!numeric) return;
        auto fold = [&](auto value_of) {
            for (size_t i = 0; i < n; ++i) {
                double v = value_of(p[i].raw);
                add_sum(v);
                fold_min(s.min, v);
                fold_max(s.max, v);
            }
        };
        if (type == value_type::float64)
            fold([](uint64_t raw) { return std::bit_cast<double>(raw); });
        else
            fold([type](uint64_t raw) { return as_double(type, raw); });
    }
    // `o` is usually later in time than everything added so far (see add_points).
    void add_summary(const summary& o) {
        if (o.count == 0) return;
        if (s.count == 0) s.min = s.max = NAN;
        if (s.count == 0 || o.first_ts < s.first_ts) {
            s.first_ts = o.first_ts;
            s.first = o.first;
        }
        if (s.count == 0 || o.last_ts >= s.last_ts) {
            s.last_ts = o.last_ts;
            s.last = o.last;
        }
        s.count += o.count;
        if (!numeric) return;
        add_sum(o.sum);
        fold_min(s.min, o.min);
        fold_max(s.max, o.max);
    }
    summary done() const {
        summary r = s;
        if (!numeric) {
            r.sum = r.min = r.max = r.first = r.last = 0;
        } else if (std::isfinite(r.sum + comp)) {
            r.sum += comp;
        }
        return r;
    }
};

// What a part's index entry says of its block: blocks written since part format version 4
// hold only their columns (docs/format/block.md, version 2).
block::known known_of(const part::entry& e) {
    block::known k;
    k.type = e.type;
    k.count = static_cast<uint32_t>(std::min<uint64_t>(e.stats.count, UINT32_MAX));
    k.first_ts = e.stats.first_ts;
    k.last_ts = e.stats.last_ts;
    k.stats = e.stats;
    return k;
}

struct frozen_head {
    std::vector<std::pair<series_id, head_points>> series;  // ascending id
    uint64_t wal_seq = 0;  // WAL segments up to this one are covered once this is in parts
    uint64_t bytes = 0;
    uint64_t points = 0;
    const head_points* find(series_id id) const {
        auto it = std::lower_bound(series.begin(), series.end(), id,
                                   [](const auto& e, series_id v) { return e.first < v; });
        return it != series.end() && it->first == id ? &it->second : nullptr;
    }
};

struct partition {
    std::vector<std::shared_ptr<part>> parts;  // ascending seq: later parts win
};

struct commit_job {
    const write_batch* batch = nullptr;
    const std::vector<series_id>* ids = nullptr;
    const wal::grouping* grouping = nullptr;
    std::span<const uint8_t> record;
    status result;
};

struct segment {
    io::file f;
    std::string path;
    uint64_t seq = 0;
    uint64_t bytes = 0;
};

// The first point at or after `ts` in points sorted by time. Heads are mostly regular: a
// guess by interpolation, then a search outward from it, touches a couple of cache lines
// where a binary search over a cold head would miss the cache at every step.
std::vector<sample>::const_iterator first_not_before(const std::vector<sample>& points,
                                                     int64_t ts) {
    if (points.empty() || ts <= points.front().ts) return points.begin();
    if (ts > points.back().ts) return points.end();
    const double span =
        static_cast<double>(points.back().ts) - static_cast<double>(points.front().ts);
    const double share = (static_cast<double>(ts) - static_cast<double>(points.front().ts)) / span;
    size_t guess = std::min(points.size() - 1,
                            static_cast<size_t>(share * static_cast<double>(points.size() - 1)));
    // Widen [lo, hi) around the guess until it holds the answer, then search inside it.
    size_t lo = guess, hi = guess + 1, width = 1;
    while (lo > 0 && points[lo].ts >= ts) {
        lo = lo > width ? lo - width : 0;
        width *= 2;
    }
    width = 1;
    while (hi < points.size() && points[hi - 1].ts < ts) {
        hi = std::min(points.size(), hi + width);
        width *= 2;
    }
    return std::lower_bound(points.begin() + static_cast<ptrdiff_t>(lo),
                            points.begin() + static_cast<ptrdiff_t>(hi), ts,
                            [](const sample& s, int64_t v) { return s.ts < v; });
}

// Appends `h`'s points in [from, to) in time order, the last write of a timestamp winning.
void append_head(const head_points& h, value_type type, int64_t from, int64_t to,
                 std::vector<sample>& out, std::vector<std::string>* strings) {
    if (h.empty() || h.max_ts < from || h.min_ts >= to) return;
    size_t start = out.size();
    if (h.sorted) {
        auto lo = first_not_before(h.points, from);
        auto hi = to > h.max_ts ? h.points.end() : first_not_before(h.points, to);
        out.insert(out.end(), lo, hi);
    } else {
        for (const auto& p : h.points)
            if (p.ts >= from && p.ts < to) out.push_back(p);
        std::stable_sort(out.begin() + static_cast<ptrdiff_t>(start), out.end(),
                         [](const sample& a, const sample& b) { return a.ts < b.ts; });
        size_t w = start;
        for (size_t i = start; i < out.size(); ++i) {
            if (w > start && out[w - 1].ts == out[i].ts)
                out[w - 1] = out[i];
            else
                out[w++] = out[i];
        }
        out.resize(w);
    }
    if (type == value_type::string) {
        for (size_t i = start; i < out.size(); ++i) {
            if (strings) {
                strings->push_back(h.strings[out[i].raw]);
                out[i].raw = strings->size() - 1;
            } else {
                out[i].raw = 0;
            }
        }
    }
}

// Sorts by time keeping, for equal timestamps, the one appended last (sources are appended
// oldest first, so newer data wins).
void merge_sorted_runs(std::vector<sample>& v) {
    bool ordered = true;
    for (size_t i = 1; i < v.size() && ordered; ++i)
        ordered = v[i - 1].ts < v[i].ts;
    if (ordered) return;
    std::stable_sort(v.begin(), v.end(),
                     [](const sample& a, const sample& b) { return a.ts < b.ts; });
    size_t w = 0;
    for (size_t i = 0; i < v.size(); ++i) {
        if (w > 0 && v[w - 1].ts == v[i].ts)
            v[w - 1] = v[i];
        else
            v[w++] = v[i];
    }
    v.resize(w);
}

class engine_impl final : public engine {
public:
    explicit engine_impl(const options& o)
        : _opts(o),
          _full_gauge(metrics::global().get_gauge(
              "clisonix_storage_disk_full",
              "1 while writes are refused because the data directory's file system is full")),
          _free_gauge(metrics::global().get_gauge(
              "clisonix_storage_free_bytes",
              "Free bytes of the data directory's file system, as last checked")),
          _refused_full(metrics::global().get_counter(
              "clisonix_storage_writes_refused_total",
              "Writes refused by the storage engine, by reason", {"reason"}, {"disk_full"})) {}
    ~engine_impl() override;

    status start();

    status write(const write_batch& batch) override;
    std::vector<series_info> series(
        const std::function<bool(const series_info&)>& match) const override;
    std::vector<series_info> select(const series_selector& selector) const override;
    std::optional<series_info> series_by_key(std::string_view key) const override;
    bool has_series(std::string_view key) const override;
    status scan(series_id id, int64_t from, int64_t to, std::vector<sample>& out,
                std::vector<std::string>* strings) const override;
    // scan() without counting its work as a query's (statistics() merges overlapping sources).
    status scan_points(series_id id, int64_t from, int64_t to, std::vector<sample>& out,
                       std::vector<std::string>* strings, bool count_work) const;
    status aggregate(series_id id, int64_t from, int64_t to, int64_t step,
                     std::vector<std::pair<int64_t, summary>>& out) const override;
    std::optional<sample> last(series_id id, std::string* string_value) const override;
    status flush() override;
    status compact() override;
    status compact_tiered();
    status apply_retention(int64_t now) override;
    status apply_raw_retention(int64_t now) override;
    // The raw retention of a series' measurement (0: raw points are kept).
    int64_t raw_retention_of(series_id id) const;
    bool keeps_rollups(series_id id) const;
    stats statistics() const override;

private:
    struct sources {
        std::vector<std::shared_ptr<part>> parts;  // ascending (day, seq)
        std::vector<std::shared_ptr<frozen_head>> frozen;
        std::vector<sample> head;  // the active head's points in range, normalized
        std::vector<std::string> head_strings;
        int64_t head_min = 0, head_max = 0;
        bool has_head = false;
    };

    status load_parts();
    status replay_wal();
    status open_segment(uint64_t seq);
    void apply_point(series_slot& slot, series_id id, int64_t ts, uint64_t raw,
                     const std::string* str, uint64_t& bytes);
    void apply(const std::vector<commit_job*>& jobs);
    status write_group(const std::vector<commit_job*>& jobs);
    status commit(commit_job& job);
    void become_leader();
    void resign_leader();
    status rotate_segment();
    status freeze(bool keep_tail);
    status flush_head(bool keep_tail);
    status flush_locked(bool keep_tail);
    status write_frozen(const std::shared_ptr<frozen_head>& fh);
    void delete_segments_upto(uint64_t seq);
    // `raw_retention_now`: downsample the series past their raw retention as of then (only
    // when `parts` is the whole partition, so that no older part holds points they replaced).
    status compact_partition(int64_t day, const std::vector<std::shared_ptr<part>>& parts,
                             std::optional<int64_t> raw_retention_now = std::nullopt);
    void restore_last_from_parts();
    void gather(series_id id, int64_t from, int64_t to, sources& src) const;
    status decode_block(const part& p, const part::entry& e, int64_t from, int64_t to,
                        std::vector<sample>& out, std::vector<std::string>* strings) const;
    struct query_work {
        uint64_t points_decoded = 0;
        uint64_t rollup_rows = 0;
    };
    status aggregate_downsampled(const part& p, const part::entry& e, int64_t from, int64_t to,
                                 int64_t step, std::vector<std::pair<int64_t, summary>>& whole,
                                 query_work& work) const;
    status aggregate_with_rollups(const part& p, const part::entry& e, int64_t from, int64_t to,
                                  int64_t step, std::vector<std::pair<int64_t, summary>>& whole,
                                  std::vector<sample>& pts, query_work& work) const;
    void count_query_work(const query_work& work) const;
    void background();
    void compactor();
    void syncer();
    error failed_error() const;
    // Disk space: note_out_of_space after an operation failed with "storage_full" (refuses
    // writes from then on), check_space from the background thread (the reserve, and the way
    // back), full_error for the answer writes get meanwhile.
    void note_out_of_space(const error& e);
    void check_space();
    error full_error() const;
    status refuse_full();
    status writable() const override;

    options _opts;
    std::string _wal_dir, _parts_dir;
    io::file _lock;
    std::unique_ptr<series_index> _index;

    // The active head lives in the series slots; guarded by _head_mutex (writers apply under
    // it exclusively, once per commit group, never per point).
    mutable std::shared_mutex _head_mutex;
    std::vector<series_id> _touched;
    std::atomic<uint64_t> _head_bytes{0};
    std::atomic<uint64_t> _frozen_bytes{0};
    uint64_t _covered_before = 0;  // the WAL segment the freeze before closed (leader only)
    std::atomic<int64_t> _head_since{0};

    // What readers snapshot: parts by partition and heads being flushed.
    mutable std::mutex _view_mutex;
    std::map<int64_t, partition> _partitions;
    std::vector<std::shared_ptr<frozen_head>> _frozen;

    // Group commit.
    std::mutex _wal_mutex;
    std::condition_variable _wal_cv;
    std::vector<commit_job*> _pending_jobs, _writing_jobs;
    uint64_t _appended = 0, _done = 0;
    bool _leader = false;
    std::shared_ptr<segment> _segment;  // replaced by the leader only
    std::mutex _segment_mutex;          // guards the pointer for the interval syncer
    std::atomic<bool> _failed{false};
    std::string _failure;  // set once, before _failed

    // The file system is full (engine::writable). Set by note_out_of_space or check_space,
    // cleared by check_space only.
    std::atomic<bool> _full{false};
    std::atomic<uint64_t> _free_bytes{0};  // as last measured
    mutable std::mutex _full_mutex;        // guards the fields below
    std::string _full_cause;               // the failed operation; empty: below the reserve
    int64_t _full_hold_until = 0, _full_hold_ns = 0, _resumed_at = 0;  // steady ns
    metrics::gauge _full_gauge, _free_gauge;
    metrics::counter _refused_full;

    std::mutex _maint_mutex;    // flush and retention: one at a time
    std::mutex _compact_mutex;  // compactions: one at a time, beside flushes
    uint64_t _next_part_seq = 1;

    // What queries read: points decoded from blocks, rollup rows used instead (/metrics).
    mutable std::atomic<uint64_t> _points_decoded{0};
    mutable std::atomic<uint64_t> _rollup_rows_read{0};
    mutable metrics::counter _points_decoded_metric =
        metrics::global().get_counter("clisonix_storage_query_points_decoded_total",
                                      "Points that queries decoded from compressed blocks");
    mutable metrics::counter _rollup_rows_metric = metrics::global().get_counter(
        "clisonix_storage_query_rollup_rows_read_total",
        "Rollup rows (1-minute and 1-hour summaries) that queries used instead of decoding");

    std::mutex _bg_mutex;
    std::condition_variable _bg_cv;
    std::condition_variable _sync_cv;
    bool _stop = false;
    std::condition_variable _compact_cv;
    std::thread _bg, _sync, _compactor;
};

// ---- open ----------------------------------------------------------------------------

status engine_impl::start() {
    if (_opts.dir.empty()) return make_error("invalid_argument", "storage directory is empty");
    _wal_dir = _opts.dir + "/wal";
    _parts_dir = _opts.dir + "/parts";
    for (const auto& d : {_opts.dir, _wal_dir, _parts_dir})
        if (auto s = io::make_dirs(d); !s) return s;
    // Two processes on one folder would interleave their WAL appends and part numbers.
    auto lock = io::open_file(_opts.dir + "/LOCK", O_RDWR | O_CREAT);
    if (!lock) return lock.error();
    if (::flock(lock->fd(), LOCK_EX | LOCK_NB) != 0)
        return make_error("unavailable",
                          "storage directory " + _opts.dir + " is in use by another process");
    _lock = std::move(*lock);
    auto ix = series_index::open(_opts.dir, _opts.max_series);
    if (!ix) return ix.error();
    _index = std::move(*ix);
    if (auto s = load_parts(); !s) return s;
    restore_last_from_parts();
    if (auto s = replay_wal(); !s) return s;
    check_space();
    _bg = std::thread([this] { background(); });
    _compactor = std::thread([this] { compactor(); });
    if (_opts.sync == options::sync_mode::interval) _sync = std::thread([this] { syncer(); });
    return {};
}

status engine_impl::load_parts() {
    std::error_code ec;
    uint64_t max_seq = 0;
    for (const auto& d : fs::directory_iterator(_parts_dir, ec)) {
        auto day = parse_day_name(d.path().filename().string());
        if (!day || !d.is_directory()) continue;
        auto& part_list = _partitions[*day].parts;
        for (const auto& f : fs::directory_iterator(d.path(), ec)) {
            std::string name = f.path().filename().string();
            if (name.ends_with(".tmp")) {
                // A part or compaction that never finished; its data is still elsewhere.
                fs::remove(f.path(), ec);
                continue;
            }
            auto seq = parse_part_name(name);
            if (!seq) continue;
            auto p = part::open(f.path().string(), *seq, *day);
            if (!p) {
                log::error("storage: part skipped",
                           {{"path", f.path().string()}, {"error", p.error().message}});
                continue;
            }
            max_seq = std::max(max_seq, *seq);
            part_list.push_back(std::move(*p));
        }
        std::sort(part_list.begin(), part_list.end(),
                  [](const auto& a, const auto& b) { return a->seq() < b->seq(); });
        if (part_list.empty()) _partitions.erase(*day);
    }
    if (ec) return make_error("unavailable", "list " + _parts_dir + " failed: " + ec.message());
    _next_part_seq = max_seq + 1;
    return {};
}

void engine_impl::restore_last_from_parts() {
    // The newest block of each series (the later part on equal times) holds its last point.
    struct best {
        const part* p = nullptr;
        const part::entry* e = nullptr;
    };
    std::vector<best> newest(_index->size());
    for (const auto& [day, pt] : _partitions)
        for (const auto& p : pt.parts)
            for (const auto& e : p->all()) {
                if (e.series >= newest.size()) continue;
                auto& b = newest[e.series];
                if (!b.e || e.stats.last_ts >= b.e->stats.last_ts) b = {p.get(), &e};
            }
    std::vector<int64_t> ts;
    std::vector<uint64_t> raw;
    std::vector<std::string> strs;
    for (series_id id = 0; id < newest.size(); ++id) {
        const auto& b = newest[id];
        if (!b.e) continue;
        auto& slot = _index->at(id);
        double v = b.e->stats.last;
        slot.has_last = true;
        slot.last.ts = b.e->stats.last_ts;
        if (b.e->downsampled && b.e->type == value_type::int64) {
            // No block to read: the summary's double is all that is left.
            slot.last.raw = static_cast<uint64_t>(static_cast<int64_t>(v));
            continue;
        }
        // The summary holds the value as a double: exact for floats and booleans, and for
        // integers within 2^53; anything else is read from the block.
        if (b.e->type == value_type::float64) {
            slot.last.raw = std::bit_cast<uint64_t>(v);
            continue;
        }
        if (b.e->type == value_type::boolean) {
            slot.last.raw = v != 0 ? 1 : 0;
            continue;
        }
        if (b.e->type == value_type::int64 && std::fabs(v) <= 9007199254740992.0) {
            slot.last.raw = static_cast<uint64_t>(static_cast<int64_t>(v));
            continue;
        }
        ts.clear();
        raw.clear();
        strs.clear();
        const auto known = known_of(*b.e);
        if (!block::decode(b.p->bytes(*b.e), ts, raw, &strs, &known) || ts.empty()) {
            slot.has_last = false;
            continue;
        }
        slot.last = {ts.back(), raw.back()};
        if (b.e->type == value_type::string) slot.last_string = strs[raw.back()];
    }
}

status engine_impl::replay_wal() {
    std::vector<std::pair<uint64_t, std::string>> segs;
    std::error_code ec;
    for (const auto& f : fs::directory_iterator(_wal_dir, ec)) {
        int64_t seq = wal::parse_segment_name(f.path().filename().string());
        if (seq >= 0) segs.emplace_back(static_cast<uint64_t>(seq), f.path().string());
    }
    if (ec) return make_error("unavailable", "list " + _wal_dir + " failed: " + ec.message());
    std::sort(segs.begin(), segs.end());
    wal::decoded rec;
    uint64_t records = 0, points = 0, skipped_groups = 0;
    std::unique_lock hl(_head_mutex);
    for (size_t si = 0; si < segs.size(); ++si) {
        const auto& [seq, path] = segs[si];
        auto data = io::read_all(path);
        if (!data) return data.error();
        auto res = wal::scan(*data, [&](std::span<const uint8_t> payload) {
            if (!wal::decode(payload, rec)) return false;
            uint64_t bytes = 0;
            for (const auto& g : rec.groups) {
                if (g.id >= _index->size() || _index->at(g.id).info.type != g.type) {
                    ++skipped_groups;
                    continue;
                }
                auto& slot = _index->at(g.id);
                for (uint32_t i = g.first; i < g.first + g.count; ++i) {
                    const auto& p = rec.points[i];
                    apply_point(slot, g.id, p.ts, p.raw,
                                g.type == value_type::string ? &rec.strings[p.raw] : nullptr,
                                bytes);
                }
                points += g.count;
            }
            _head_bytes += bytes;
            ++records;
            return true;
        });
        if (!res.damaged) continue;
        bool last = si + 1 == segs.size();
        log::warn(last ? "storage: WAL tail damaged (a write cut short); truncated"
                       : "storage: WAL segment damaged; the rest of it is skipped",
                  {{"path", path},
                   {"records_kept", static_cast<int64_t>(res.records)},
                   {"valid_bytes", static_cast<int64_t>(res.valid_bytes)},
                   {"bytes_dropped", static_cast<int64_t>(data->size() - res.valid_bytes)}});
        if (last && ::truncate(path.c_str(), static_cast<off_t>(res.valid_bytes)) != 0)
            return io::failure("truncate", path, errno);
    }
    if (skipped_groups > 0)
        log::warn("storage: WAL points of unknown series skipped",
                  {{"groups", static_cast<int64_t>(skipped_groups)}});
    if (records > 0)
        log::info("storage: WAL replayed", {{"records", static_cast<int64_t>(records)},
                                            {"points", static_cast<int64_t>(points)},
                                            {"segments", static_cast<int64_t>(segs.size())}});
    bool head_empty = _touched.empty();
    if (!head_empty) _head_since = steady_ns();
    hl.unlock();
    uint64_t next = segs.empty() ? 1 : segs.back().first + 1;
    // Nothing to keep: everything the segments held is in parts already (or unusable).
    if (head_empty && !segs.empty()) delete_segments_upto(segs.back().first);
    return open_segment(next);
}

status engine_impl::open_segment(uint64_t seq) {
    auto seg = std::make_shared<segment>();
    seg->seq = seq;
    seg->path = _wal_dir + "/" + wal::segment_name(seq);
    auto f = io::open_file(seg->path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND);
    if (!f) return f.error();
    seg->f = std::move(*f);
    if (auto s = io::sync_dir(_wal_dir); !s) return s;
    std::lock_guard lock(_segment_mutex);
    _segment = std::move(seg);
    return {};
}

engine_impl::~engine_impl() {
    {
        std::lock_guard lock(_bg_mutex);
        _stop = true;
    }
    _bg_cv.notify_all();
    _sync_cv.notify_all();
    _compact_cv.notify_all();
    if (_bg.joinable()) _bg.join();
    if (_compactor.joinable()) _compactor.join();
    if (_sync.joinable()) _sync.join();
    if (!_index || !_segment) return;
    if (!_failed) {
        std::lock_guard lock(_maint_mutex);
        if (auto s = flush_locked(false); !s)
            log::error("storage: flush at close failed; the WAL keeps the data",
                       {{"error", s.error().message}});
    }
    if (_segment) {
        if (auto s = io::sync_data(_segment->f.fd(), _segment->path); !s)
            log::error("storage: WAL sync at close failed", {{"error", s.error().message}});
    }
}

// ---- write path ------------------------------------------------------------------------

error engine_impl::failed_error() const {
    return make_error("unavailable", "storage is unavailable after a disk error: " + _failure);
}

error engine_impl::full_error() const {
    std::string cause;
    {
        std::lock_guard lock(_full_mutex);
        cause = _full_cause;
    }
    std::string why = cause.empty()
                          ? "less than the reserve of " + std::to_string(_opts.min_free_bytes) +
                                " bytes (storage.min_free)"
                          : cause;
    return make_error("storage_full", "the file system of " + _opts.dir + " is full: " +
                                          std::to_string(_free_bytes.load()) + " bytes free (" +
                                          why + "); writes are refused until space is freed");
}

status engine_impl::refuse_full() {
    _refused_full.inc();
    return full_error();
}

status engine_impl::writable() const {
    if (_failed) return failed_error();
    if (_full) return full_error();
    return {};
}

void engine_impl::note_out_of_space(const error& e) {
    if (e.code != errc::storage_full) return;
    if (auto free = io::free_bytes(_opts.dir)) {
        _free_bytes = *free;
        _free_gauge.set(static_cast<double>(*free));
    }
    int64_t now = steady_ns();
    {
        std::lock_guard lock(_full_mutex);
        _full_cause = e.message;
        bool again_soon = _resumed_at != 0 &&
                          now - _resumed_at < std::chrono::nanoseconds(full_again_within).count();
        const int64_t shortest = std::chrono::nanoseconds(full_hold_min).count();
        _full_hold_ns = again_soon ? std::clamp(_full_hold_ns * 2, shortest,
                                                std::chrono::nanoseconds(full_hold_max).count())
                                   : shortest;
        _full_hold_until = now + _full_hold_ns;
    }
    if (!_full.exchange(true)) {
        _full_gauge.set(1);
        log::error("storage: file system full; writes refused until space is freed",
                   {{"dir", _opts.dir},
                    {"free_bytes", static_cast<int64_t>(_free_bytes.load())},
                    {"error", e.message}});
    }
}

void engine_impl::check_space() {
    auto free = io::free_bytes(_opts.dir);
    if (!free) return;  // the writes themselves will say what is wrong
    _free_bytes = *free;
    _free_gauge.set(static_cast<double>(*free));
    if (!_full) {
        if (*free >= _opts.min_free_bytes) return;
        {
            std::lock_guard lock(_full_mutex);
            _full_cause.clear();
            _full_hold_until = 0;
        }
        if (!_full.exchange(true)) {
            _full_gauge.set(1);
            log::error("storage: free space below the reserve; writes refused until space is freed",
                       {{"dir", _opts.dir},
                        {"free_bytes", static_cast<int64_t>(*free)},
                        {"min_free_bytes", static_cast<int64_t>(_opts.min_free_bytes)}});
        }
        return;
    }
    int64_t now = steady_ns();
    {
        std::lock_guard lock(_full_mutex);
        if (now < _full_hold_until || *free < _opts.min_free_bytes + resume_margin_bytes) return;
        _resumed_at = now;
        _full_cause.clear();
    }
    _full = false;
    _full_gauge.set(0);
    log::info("storage: space available again; writes resume",
              {{"dir", _opts.dir}, {"free_bytes", static_cast<int64_t>(*free)}});
}

void engine_impl::apply_point(series_slot& slot, series_id id, int64_t ts, uint64_t raw,
                              const std::string* str, uint64_t& bytes) {
    auto& h = slot.head;
    if (str) {
        raw = h.strings.size();
        h.strings.push_back(*str);
        bytes += str->size();
    }
    if (h.points.empty()) {
        if (!slot.in_touched) {
            slot.in_touched = true;
            _touched.push_back(id);
        }
        h.points.push_back({ts, raw});
        h.min_ts = h.max_ts = ts;
        h.sorted = true;
        bytes += point_bytes;
    } else if (ts > h.max_ts) {
        h.points.push_back({ts, raw});
        h.max_ts = ts;
        bytes += point_bytes;
    } else if (ts == h.max_ts && h.sorted) {
        h.points.back().raw = raw;  // same timestamp: the later write replaces it
    } else {
        h.points.push_back({ts, raw});
        h.sorted = false;
        h.min_ts = std::min(h.min_ts, ts);
        bytes += point_bytes;
    }
    if (!slot.has_last || ts >= slot.last.ts) {
        slot.has_last = true;
        slot.last = {ts, raw};
        if (str) slot.last_string = *str;
    }
}

void engine_impl::apply(const std::vector<commit_job*>& jobs) {
    uint64_t bytes = 0;
    std::unique_lock hl(_head_mutex);
    for (const auto* job : jobs) {
        const auto& pts = job->batch->points();
        const auto& strs = job->batch->strings();
        const auto& g = *job->grouping;
        for (size_t gi = 0; gi < g.locals.size(); ++gi) {
            series_id id = (*job->ids)[g.locals[gi]];
            auto& slot = _index->at(id);
            uint32_t b = g.starts[gi], e = g.starts[gi + 1];
            if (slot.info.type == value_type::string) {
                for (uint32_t i = b; i < e; ++i) {
                    const auto& p = pts[g.order[i]];
                    apply_point(slot, id, p.ts, p.raw, &strs[p.raw], bytes);
                }
                continue;
            }
            auto& h = slot.head;
            if (h.points.empty() && h.points.capacity() < slot.head_hint)
                h.points.reserve(slot.head_hint);  // the size it reached before the last flush
            // The common case, points newer than everything in the head, stays in this loop;
            // the rest goes through apply_point.
            uint32_t i = b;
            if (!h.points.empty()) {
                int64_t max_ts = h.max_ts;
                size_t before = h.points.size();
                for (; i < e; ++i) {
                    const auto& p = pts[g.order[i]];
                    if (p.ts <= max_ts) break;
                    h.points.push_back({p.ts, p.raw});
                    max_ts = p.ts;
                }
                h.max_ts = max_ts;
                bytes += (h.points.size() - before) * point_bytes;
                if (i > b && (!slot.has_last || h.points.back().ts >= slot.last.ts)) {
                    slot.has_last = true;
                    slot.last = h.points.back();
                }
            }
            for (; i < e; ++i) {
                const auto& p = pts[g.order[i]];
                apply_point(slot, id, p.ts, p.raw, nullptr, bytes);
            }
        }
    }
    if (bytes > 0 && _head_since.load() == 0) _head_since = steady_ns();
    _head_bytes += bytes;
}

status engine_impl::rotate_segment() {
    // Only the leader calls this: no write is in flight on the old segment.
    auto old = _segment;
    if (auto s = io::sync_data(old->f.fd(), old->path); !s) return s;
    return open_segment(old->seq + 1);
}

status engine_impl::write_group(const std::vector<commit_job*>& jobs) {
    if (_failed) return failed_error();
    if (_full) return full_error();
    uint64_t total = 0;
    for (const auto* j : jobs)
        total += j->record.size();
    if (_segment->bytes > 0 && _segment->bytes + total > segment_limit) {
        if (auto s = rotate_segment(); !s) {
            if (s.error().code != errc::storage_full) return s;
            note_out_of_space(s.error());
            return full_error();
        }
    }
    auto& seg = *_segment;
    // One writev for the whole group: the records are not copied into a shared buffer.
    std::vector<iovec> iov;
    iov.reserve(jobs.size());
    for (const auto* j : jobs)
        iov.push_back({const_cast<uint8_t*>(j->record.data()), j->record.size()});
    size_t first = 0;
    status st;
    while (first < iov.size()) {
        int n = static_cast<int>(std::min<size_t>(iov.size() - first, IOV_MAX));
        ssize_t w = ::writev(seg.f.fd(), &iov[first], n);
        if (w < 0) {
            if (errno == EINTR) continue;
            st = io::failure("write", seg.path, errno);
            break;
        }
        size_t left = static_cast<size_t>(w);
        while (first < iov.size() && left >= iov[first].iov_len)
            left -= iov[first++].iov_len;
        if (left > 0) {
            iov[first].iov_base = static_cast<uint8_t*>(iov[first].iov_base) + left;
            iov[first].iov_len -= left;
        }
    }
    bool sync_failed = false;
    if (st && _opts.sync == options::sync_mode::always) {
        st = io::sync_data(seg.f.fd(), seg.path);
        sync_failed = !st;
    }
    if (!st) {
        // Cut the failed group (or the part of it that reached the file) off, durably, so that
        // the log holds only acknowledged records and the next group is appended right after
        // them, not behind a half record that would end the replay there. Out of space, the
        // segment stays in use and writes resume when space is back. If the cut fails, or an
        // fsync failed for another reason (the kernel may have dropped the pages it could not
        // write), what is on disk is unknown: the engine stops taking writes until restart.
        bool cut = ::ftruncate(seg.f.fd(), static_cast<off_t>(seg.bytes)) == 0 &&
                   ::fdatasync(seg.f.fd()) == 0;
        bool out_of_space = st.error().code == errc::storage_full;
        if (!cut || (sync_failed && !out_of_space)) {
            _failure = st.error().message;
            _failed = true;
            log::error("storage: WAL failed; writes refused until restart", {{"error", _failure}});
            return st;
        }
        if (!out_of_space) return st;
        note_out_of_space(st.error());
        return full_error();
    }
    seg.bytes += total;
    apply(jobs);
    return {};
}

void engine_impl::become_leader() {
    std::unique_lock lk(_wal_mutex);
    _wal_cv.wait(lk, [&] { return !_leader; });
    _leader = true;
}

void engine_impl::resign_leader() {
    {
        std::lock_guard lk(_wal_mutex);
        _leader = false;
    }
    _wal_cv.notify_all();
}

status engine_impl::commit(commit_job& job) {
    std::unique_lock lk(_wal_mutex);
    _pending_jobs.push_back(&job);
    uint64_t mine = ++_appended;
    while (_done < mine) {
        if (_leader) {
            _wal_cv.wait(lk);
            continue;
        }
        // Group commit: the first writer to find no leader writes and fsyncs every record
        // queued so far, its own included, then wakes their writers.
        _leader = true;
        _writing_jobs.clear();
        _writing_jobs.swap(_pending_jobs);
        uint64_t upto = _appended;
        lk.unlock();
        status st = write_group(_writing_jobs);
        lk.lock();
        for (auto* j : _writing_jobs)
            j->result = st;
        _done = upto;
        _leader = false;
        _wal_cv.notify_all();
    }
    return job.result;
}

status engine_impl::write(const write_batch& batch) {
    if (batch.empty()) return {};
    if (_failed) return failed_error();
    if (_full) return refuse_full();
    struct scratch {
        std::vector<series_id> ids;
        std::vector<value_type> types;
        wal::grouping grouping;
        std::vector<uint8_t> record;
    };
    static thread_local scratch sc;
    const auto& entries = batch.series_entries();
    const auto& pts = batch.points();

    uint64_t incoming = pts.size() * point_bytes;
    for (const auto& s : batch.strings())
        incoming += s.size();
    uint64_t held = _head_bytes.load() + _frozen_bytes.load();
    if (held + incoming > _opts.max_head_bytes) {
        _bg_cv.notify_all();
        return make_error("overloaded",
                          "storage is busy: the in-memory head holds " + std::to_string(held) +
                              " bytes and the write adds " + std::to_string(incoming) + " (limit " +
                              std::to_string(_opts.max_head_bytes) + "); retry shortly");
    }

    _index->find(entries, sc.ids);
    sc.types.resize(entries.size());
    for (size_t i = 0; i < entries.size(); ++i)
        sc.types[i] = entries[i].type;
    sc.grouping.build(batch);
    const auto& g = sc.grouping;

    // Validate everything before anything is logged: a refused batch stores nothing.
    int64_t retention_cutoff = _opts.retention_ns > 0 ? now_ns() - _opts.retention_ns
                                                      : std::numeric_limits<int64_t>::min();
    bool missing = false;
    {
        std::shared_lock hl(_head_mutex);
        for (size_t gi = 0; gi < g.locals.size(); ++gi) {
            uint32_t local = g.locals[gi];
            series_id id = sc.ids[local];
            int64_t oldest_allowed = retention_cutoff;
            const series_slot* slot = nullptr;
            if (id == no_series) {
                missing = true;
            } else {
                slot = &_index->at(id);
                if (slot->info.type != entries[local].type)
                    return make_error("invalid_argument",
                                      "field type conflict: " + slot->info.key + " is " +
                                          std::string(type_name(slot->info.type)) +
                                          ", the write has " +
                                          std::string(type_name(entries[local].type)),
                                      slot->info.key);
                int64_t behind;
                if (slot->has_last &&
                    !__builtin_sub_overflow(slot->last.ts, _opts.out_of_order_window_ns, &behind))
                    oldest_allowed = std::max(oldest_allowed, behind);
            }
            for (uint32_t i = g.starts[gi]; i < g.starts[gi + 1]; ++i) {
                int64_t ts = pts[g.order[i]].ts;
                if (ts >= oldest_allowed) continue;
                const std::string key(entries[local].key);
                if (ts < retention_cutoff)
                    return make_error("invalid_argument",
                                      "point too old: " + key + " at " + format_time(ts) +
                                          " is older than the retention of " +
                                          format_duration(_opts.retention_ns),
                                      key);
                return make_error("invalid_argument",
                                  "point too old: " + key + " at " + format_time(ts) +
                                      " is more than " +
                                      format_duration(_opts.out_of_order_window_ns) +
                                      " behind the newest point of the series",
                                  key);
            }
        }
    }
    if (missing) {
        if (auto s = _index->create(entries, sc.ids); !s) {
            if (s.error().code != errc::storage_full) return s;
            note_out_of_space(s.error());
            return refuse_full();
        }
    }

    sc.record.clear();
    wal::encode(batch, sc.ids, sc.types, g, sc.record);
    if (sc.record.size() - wal::record_header > wal::max_payload)
        return make_error("invalid_argument", "write batch too large for one WAL record");
    commit_job job;
    job.batch = &batch;
    job.ids = &sc.ids;
    job.grouping = &g;
    job.record = sc.record;
    auto st = commit(job);
    if (st) batch.set_engine_ids(sc.ids);
    if (st && _head_bytes.load() >= _opts.max_head_bytes / flush_share_divisor) _bg_cv.notify_all();
    if (!st && st.error().code == errc::storage_full) _refused_full.inc();
    return st;
}

// ---- flush -----------------------------------------------------------------------------

// keep_tail (background flushes): each sorted numeric series keeps its newest points in the
// head (keep_tail_ns, keep_tail_points), unless they were kept once already or their day is
// past the raw retention. Their WAL segments then stay until the next flush has written them:
// the frozen head covers only the segments of the freeze before (wal_seq). A crash replays
// those segments, points already in parts included; the duplicates are identical.
status engine_impl::freeze(bool keep_tail) {
    // As leader, no group is being written or applied: the head holds exactly the records
    // of the segments up to the current one, which is then closed.
    become_leader();
    bool empty;
    {
        std::shared_lock hl(_head_mutex);
        empty = _touched.empty();
    }
    uint64_t covered = _segment->seq;
    if (!empty) {
        if (auto s = rotate_segment(); !s) {
            resign_leader();
            return make_error(s.error().code,
                              "WAL rotation failed; flush postponed: " + s.error().message);
        }
        auto fh = std::make_shared<frozen_head>();
        const int64_t now = now_ns();
        std::vector<series_id> still;  // series that keep points in the head
        uint64_t kept_bytes = 0;
        std::unique_lock hl(_head_mutex);
        std::sort(_touched.begin(), _touched.end());
        fh->series.reserve(_touched.size());
        for (series_id id : _touched) {
            auto& slot = _index->at(id);
            auto& h = slot.head;
            slot.in_touched = false;
            if (h.empty()) continue;
            size_t cut = h.points.size();  // points [0, cut) are frozen
            if (keep_tail && h.sorted && slot.info.type != value_type::string) {
                int64_t floor = std::max(h.max_ts - keep_tail_ns, slot.kept_until);
                size_t newest = h.points.size() - std::min(h.points.size(), keep_tail_points);
                auto first_kept = std::upper_bound(
                    h.points.begin() + static_cast<ptrdiff_t>(newest), h.points.end(), floor,
                    [](int64_t t, const sample& p) { return t < p.ts; });
                int64_t raw_retention = raw_retention_of(id);
                if (first_kept != h.points.end() &&
                    (raw_retention == 0 || day_end(day_of(first_kept->ts)) > now - raw_retention))
                    cut = static_cast<size_t>(first_kept - h.points.begin());
            }
            slot.head_hint = static_cast<uint32_t>(std::min<size_t>(cut + cut / 4, 1u << 16));
            if (cut == h.points.size()) {
                fh->points += h.points.size();
                fh->series.emplace_back(id, std::move(h));
                h = head_points{};
                continue;
            }
            head_points kept;
            kept.points.assign(h.points.begin() + static_cast<ptrdiff_t>(cut), h.points.end());
            kept.min_ts = kept.points.front().ts;
            kept.max_ts = kept.points.back().ts;
            slot.kept_until = kept.max_ts;
            kept_bytes += kept.points.size() * point_bytes;
            if (cut > 0) {
                h.points.resize(cut);
                h.max_ts = h.points.back().ts;
                fh->points += cut;
                fh->series.emplace_back(id, std::move(h));
            }
            h = std::move(kept);
            slot.in_touched = true;
            still.push_back(id);
        }
        _touched.swap(still);
        // Kept points stay in the segments of this freeze: only those of the freeze before
        // are covered once this head is in parts.
        fh->wal_seq = _touched.empty() ? covered : _covered_before;
        _covered_before = covered;
        uint64_t held = _head_bytes.exchange(kept_bytes);
        fh->bytes = held > kept_bytes ? held - kept_bytes : 0;
        _frozen_bytes += fh->bytes;
        _head_since = _touched.empty() ? 0 : steady_ns();
        std::lock_guard vl(_view_mutex);
        _frozen.push_back(std::move(fh));
    }
    resign_leader();
    return {};
}

status engine_impl::flush() {
    return flush_head(false);
}

// keep_tail: the head's flush when it is due (size or age), which keeps the series' newest
// points in the head (freeze).
status engine_impl::flush_head(bool keep_tail) {
    if (_failed) return failed_error();
    std::lock_guard lock(_maint_mutex);
    auto st = flush_locked(keep_tail);
    // Parts that cannot be written for want of space: the head stays in memory (and in the
    // WAL), and writes stop until space is back, or the head would only grow.
    if (!st) note_out_of_space(st.error());
    return st;
}

status engine_impl::flush_locked(bool keep_tail) {
    // Heads frozen earlier are written even when this freeze fails (a full disk): oldest first.
    auto frozen = freeze(keep_tail);
    std::vector<std::shared_ptr<frozen_head>> todo;
    {
        std::lock_guard vl(_view_mutex);
        todo = _frozen;
    }
    for (const auto& fh : todo)
        if (auto s = write_frozen(fh); !s) return s;
    return frozen;
}

status engine_impl::write_frozen(const std::shared_ptr<frozen_head>& fh) {
    std::map<int64_t, part_builder> builders;
    std::vector<sample> sorted;
    std::vector<int64_t> ts;
    std::vector<uint64_t> raw;
    for (const auto& [id, h] : fh->series) {
        sorted.clear();
        value_type type = _index->at(id).info.type;
        // Keep raw string indexes pointing into h.strings (append_head would remap them).
        if (h.sorted) {
            sorted.assign(h.points.begin(), h.points.end());
        } else {
            head_points copy;
            copy.points = h.points;
            copy.sorted = false;
            copy.normalize();
            sorted = std::move(copy.points);
        }
        size_t i = 0;
        while (i < sorted.size()) {
            int64_t day = day_of(sorted[i].ts);
            ts.clear();
            raw.clear();
            while (i < sorted.size() && day_of(sorted[i].ts) == day) {
                ts.push_back(sorted[i].ts);
                raw.push_back(sorted[i].raw);
                ++i;
            }
            builders[day].add(id, type, ts, raw, h.strings, keeps_rollups(id));
        }
    }
    std::vector<std::pair<int64_t, std::shared_ptr<part>>> made;
    // A failure (a full disk) keeps the frozen head in memory for the next flush: the parts
    // of other days already written for it go, or they would be written twice.
    auto give_up = [&](const error& e) {
        std::error_code ec;
        for (const auto& [day, p] : made)
            fs::remove(p->path(), ec);
        return e;
    };
    for (auto& [day, b] : builders) {
        std::string dir = _parts_dir + "/" + day_name(day);
        bool new_dir = !fs::exists(dir);
        if (auto s = io::make_dirs(dir); !s) return give_up(s.error());
        if (new_dir)
            if (auto s = io::sync_dir(_parts_dir); !s) return give_up(s.error());
        uint64_t seq = _next_part_seq++;
        std::string path = dir + "/" + part_name(seq);
        if (auto s = b.write(path); !s) return give_up(s.error());
        auto p = part::open(path, seq, day);
        if (!p) {
            std::error_code ec;
            fs::remove(path, ec);
            return give_up(p.error());
        }
        made.emplace_back(day, std::move(*p));
    }
    {
        std::lock_guard vl(_view_mutex);
        for (auto& [day, p] : made)
            _partitions[day].parts.push_back(std::move(p));
        _frozen.erase(std::find(_frozen.begin(), _frozen.end(), fh));
    }
    _frozen_bytes -= fh->bytes;
    delete_segments_upto(fh->wal_seq);
    return {};
}

void engine_impl::delete_segments_upto(uint64_t seq) {
    std::error_code ec;
    bool any = false;
    for (const auto& f : fs::directory_iterator(_wal_dir, ec)) {
        int64_t s = wal::parse_segment_name(f.path().filename().string());
        if (s >= 0 && static_cast<uint64_t>(s) <= seq) {
            fs::remove(f.path(), ec);
            any = true;
        }
    }
    if (any)
        if (auto s = io::sync_dir(_wal_dir); !s)
            log::warn("storage: WAL directory sync failed", {{"error", s.error().message}});
}

// ---- compaction and retention -------------------------------------------------------------

status engine_impl::compact() {
    {
        std::lock_guard lock(_compact_mutex);
        std::vector<std::pair<int64_t, std::vector<std::shared_ptr<part>>>> todo;
        {
            std::lock_guard vl(_view_mutex);
            for (const auto& [day, pt] : _partitions)
                if (pt.parts.size() > 1) todo.emplace_back(day, pt.parts);
        }
        for (const auto& [day, parts] : todo)
            if (auto s = compact_partition(day, parts); !s) return s;
    }
    int64_t now = now_ns();
    if (auto s = apply_raw_retention(now); !s) return s;
    return apply_retention(now);
}

status engine_impl::compact_tiered() {
    // Merging a whole busy partition on every round would rewrite its data once per round.
    // Instead the newest parts are merged once there are several of about the same total
    // size as the part before them (each point is rewritten about log(n) times), and a
    // partition whose day is over (beyond yesterday) is merged into one.
    std::lock_guard lock(_compact_mutex);
    int64_t today = day_of(now_ns());
    std::vector<std::pair<int64_t, std::vector<std::shared_ptr<part>>>> todo;
    {
        std::lock_guard vl(_view_mutex);
        for (const auto& [day, pt] : _partitions) {
            const auto& parts = pt.parts;
            if (parts.size() < 2) continue;
            if (day < today - 1) {
                todo.emplace_back(day, parts);
                continue;
            }
            std::vector<uint64_t> sizes;
            for (const auto& p : parts)
                sizes.push_back(p->file_bytes());
            size_t first = tiered_merge_start(sizes, compact_min_parts);
            if (first < parts.size())
                todo.emplace_back(day,
                                  std::vector<std::shared_ptr<part>>(
                                      parts.begin() + static_cast<ptrdiff_t>(first), parts.end()));
        }
    }
    for (const auto& [day, parts] : todo)
        if (auto s = compact_partition(day, parts); !s) return s;
    return {};
}

// `parts`: a run of consecutive parts of the partition, ascending seq.
status engine_impl::compact_partition(int64_t day, const std::vector<std::shared_ptr<part>>& parts,
                                      std::optional<int64_t> raw_retention_now) {
    std::vector<series_id> ids;
    for (const auto& p : parts)
        for (const auto& e : p->all())
            if (ids.empty() || ids.back() != e.series) ids.push_back(e.series);
    std::sort(ids.begin(), ids.end());
    ids.erase(std::unique(ids.begin(), ids.end()), ids.end());

    part_builder b;
    std::vector<sample> pts;
    std::vector<std::string> strs;
    std::vector<int64_t> ts;
    std::vector<uint64_t> raw;
    for (series_id id : ids) {
        pts.clear();
        strs.clear();
        value_type type = value_type::float64;
        bool downsampled = false;  // some of its entries already are
        for (const auto& p : parts)
            for (const auto& e : p->entries(id)) {
                type = e.type;
                if (e.downsampled) {
                    downsampled = true;
                    continue;
                }
                if (auto s = decode_block(*p, e, std::numeric_limits<int64_t>::min(),
                                          std::numeric_limits<int64_t>::max(), pts, &strs);
                    !s)
                    return s;
            }
        merge_sorted_runs(pts);
        ts.resize(pts.size());
        raw.resize(pts.size());
        for (size_t i = 0; i < pts.size(); ++i) {
            ts[i] = pts[i].ts;
            raw[i] = pts[i].raw;
        }
        int64_t raw_retention = raw_retention_of(id);
        bool past_raw_retention = raw_retention_now && raw_retention > 0 &&
                                  day_end(day) <= *raw_retention_now - raw_retention;
        if (!downsampled && !past_raw_retention) {
            b.add(id, type, ts, raw, strs, keeps_rollups(id));
            continue;
        }
        // A series downsampled here stays so: points written into the day later join its
        // rows (blocks and rows of one series cannot share a part). Strings have no rows.
        for (const auto& p : parts)
            for (const auto& e : p->entries(id))
                if (e.downsampled) b.add_downsampled(e, p->rollups(e));
        if (type != value_type::string) b.add_downsampled(id, type, ts, raw);
    }
    // The merged part takes the newest input's seq and replaces its file atomically, so a
    // crash at any point leaves either the inputs or a part that supersedes them.
    uint64_t seq = parts.back()->seq();
    std::string dir = _parts_dir + "/" + day_name(day);
    std::string path = dir + "/" + part_name(seq);
    if (auto s = b.write(path); !s) return s;
    auto merged = part::open(path, seq, day);
    if (!merged) return merged.error();
    {
        std::lock_guard vl(_view_mutex);
        // Retention may have dropped the partition meanwhile (its folder, the merged file
        // included, is gone): nothing to install then.
        auto it = _partitions.find(day);
        if (it == _partitions.end()) return {};
        auto& list = it->second.parts;
        for (const auto& p : parts)
            if (std::find(list.begin(), list.end(), p) == list.end()) return {};
        std::erase_if(list, [&](const auto& p) {
            return std::find(parts.begin(), parts.end(), p) != parts.end();
        });
        list.insert(list.begin(), std::move(*merged));
        std::sort(list.begin(), list.end(),
                  [](const auto& a, const auto& b) { return a->seq() < b->seq(); });
    }
    std::error_code ec;
    for (size_t i = 0; i + 1 < parts.size(); ++i)
        fs::remove(parts[i]->path(), ec);
    return io::sync_dir(dir);
}

int64_t engine_impl::raw_retention_of(series_id id) const {
    if (id >= _index->size()) return _opts.raw_retention_ns;
    const std::string& measurement = _index->at(id).info.measurement;
    for (const auto& [name, ns] : _opts.raw_retention_by_measurement)
        if (name == measurement) return ns;
    return _opts.raw_retention_ns;
}

// Series the platform derives from a device's data (anomaly scores, range flags, health)
// keep no rollup rows: there are as many of them as data series, so rows would add a
// third to the rollups' bytes for series that are read over short ranges (charts, rules).
// Their aggregates decode the blocks; downsampled days still keep hourly rows for them.
bool engine_impl::keeps_rollups(series_id id) const {
    return id >= _index->size() || !is_derived_field(_index->at(id).info.field);
}

status engine_impl::apply_raw_retention(int64_t now) {
    // Days that ended less than the shortest raw retention ago cannot be due.
    int64_t shortest = _opts.raw_retention_ns > 0 ? _opts.raw_retention_ns : INT64_MAX;
    for (const auto& [name, ns] : _opts.raw_retention_by_measurement)
        if (ns > 0) shortest = std::min(shortest, ns);
    if (shortest == INT64_MAX) return {};
    std::lock_guard lock(_compact_mutex);
    std::vector<std::pair<int64_t, std::vector<std::shared_ptr<part>>>> todo;
    {
        std::lock_guard vl(_view_mutex);
        for (const auto& [day, pt] : _partitions) {
            // Days past the retention are about to be dropped whole.
            if (_opts.retention_ns > 0 && day_end(day) <= now - _opts.retention_ns) continue;
            if (day_end(day) > now - shortest) continue;
            bool due = false;
            for (const auto& p : pt.parts) {
                if (p->points() == 0) continue;  // downsampled already
                for (const auto& e : p->all()) {
                    if (e.downsampled) continue;
                    int64_t r = raw_retention_of(e.series);
                    if (r > 0 && day_end(day) <= now - r) {
                        due = true;
                        break;
                    }
                }
                if (due) break;
            }
            if (due) todo.emplace_back(day, pt.parts);
        }
    }
    for (const auto& [day, parts] : todo)
        if (auto s = compact_partition(day, parts, now); !s) return s;
    if (!todo.empty())
        log::info("storage: partitions past the raw retention downsampled",
                  {{"partitions", static_cast<int64_t>(todo.size())}});
    return {};
}

status engine_impl::apply_retention(int64_t now) {
    if (_opts.retention_ns <= 0) return {};
    int64_t cutoff = now - _opts.retention_ns;
    std::lock_guard lock(_maint_mutex);
    std::vector<int64_t> dropped;
    {
        std::lock_guard vl(_view_mutex);
        for (auto it = _partitions.begin(); it != _partitions.end();) {
            if (day_end(it->first) <= cutoff) {
                dropped.push_back(it->first);
                it = _partitions.erase(it);
            } else {
                ++it;
            }
        }
    }
    if (dropped.empty()) return {};
    std::error_code ec;
    for (int64_t day : dropped) {
        fs::remove_all(_parts_dir + "/" + day_name(day), ec);
        if (ec)
            return make_error("unavailable",
                              "remove partition " + day_name(day) + " failed: " + ec.message());
    }
    int64_t gone_before = day_end(dropped.back());
    {
        std::unique_lock hl(_head_mutex);
        for (series_id id = 0; id < _index->size(); ++id) {
            auto& slot = _index->at(id);
            if (slot.has_last && slot.last.ts < gone_before && slot.head.empty())
                slot.has_last = false;
        }
    }
    log::info("storage: partitions past the retention dropped",
              {{"partitions", static_cast<int64_t>(dropped.size())},
               {"before", format_time(gone_before)}});
    return io::sync_dir(_parts_dir);
}

// ---- background ------------------------------------------------------------------------------

void engine_impl::background() {
    std::unique_lock lk(_bg_mutex);
    int64_t next_flush = 0, flush_pause = 0;  // steady ns: the retry pause after a failure
    while (!_stop) {
        _bg_cv.wait_for(lk, std::chrono::milliseconds(200));
        if (_stop) break;
        lk.unlock();
        check_space();
        uint64_t bytes = _head_bytes.load();
        int64_t since = _head_since.load();
        int64_t now = steady_ns();
        bool due = bytes >= _opts.max_head_bytes / flush_share_divisor ||
                   (since != 0 && now - since >= std::chrono::nanoseconds(flush_age).count());
        // While full, a flush is what may give space back: the WAL it deletes is larger than
        // the compressed parts it writes.
        if (_full && (bytes > 0 || _frozen_bytes.load() > 0)) due = true;
        if (due && !_failed && now >= next_flush) {
            // While full, everything goes, so that every WAL segment can be deleted.
            if (auto s = flush_head(!_full); !s) {
                flush_pause = std::min(
                    std::max<int64_t>(flush_pause * 2, std::chrono::nanoseconds(1s).count()),
                    std::chrono::nanoseconds(flush_retry_max).count());
                next_flush = now + flush_pause;
                log::error(
                    "storage: background flush failed",
                    {{"error", s.error().message}, {"retry_in_ms", flush_pause / 1'000'000}});
            } else {
                flush_pause = 0;
                next_flush = 0;
            }
        }
        lk.lock();
    }
}

// Compaction and retention run in their own thread so that a long merge never holds up the
// flushes that keep the head within its memory bound.
void engine_impl::compactor() {
    std::unique_lock lk(_bg_mutex);
    while (!_stop) {
        _compact_cv.wait_for(lk, maintenance_every);
        if (_stop) break;
        lk.unlock();
        if (auto s = compact_tiered(); !s)
            log::error("storage: compaction failed", {{"error", s.error().message}});
        if (auto s = apply_raw_retention(now_ns()); !s)
            log::error("storage: downsampling failed", {{"error", s.error().message}});
        if (auto s = apply_retention(now_ns()); !s)
            log::error("storage: retention failed", {{"error", s.error().message}});
        lk.lock();
    }
}

void engine_impl::syncer() {
    std::unique_lock lk(_bg_mutex);
    while (!_stop) {
        _sync_cv.wait_for(lk, _opts.sync_interval);
        if (_stop) break;
        std::shared_ptr<segment> seg;
        {
            std::lock_guard sl(_segment_mutex);
            seg = _segment;
        }
        lk.unlock();
        if (seg)
            if (auto s = io::sync_data(seg->f.fd(), seg->path); !s) {
                note_out_of_space(s.error());
                log::error("storage: WAL sync failed", {{"error", s.error().message}});
            }
        lk.lock();
    }
}

// ---- reads -------------------------------------------------------------------------------------

std::vector<series_info> engine_impl::series(
    const std::function<bool(const series_info&)>& match) const {
    std::vector<series_info> out;
    uint32_t n = _index->size();
    for (series_id id = 0; id < n; ++id) {
        const auto& info = _index->at(id).info;
        if (match(info)) out.push_back(info);
    }
    return out;
}

std::vector<series_info> engine_impl::select(const series_selector& selector) const {
    std::vector<series_info> out;
    for (series_id id : _index->select(selector)) {
        const auto& info = _index->at(id).info;
        if (!selector.filter || selector.filter(info)) out.push_back(info);
    }
    return out;
}

std::optional<series_info> engine_impl::series_by_key(std::string_view key) const {
    auto id = _index->find(key);
    if (!id) return std::nullopt;
    return _index->at(*id).info;
}

bool engine_impl::has_series(std::string_view key) const {
    return _index->find(key).has_value();
}

void engine_impl::gather(series_id id, int64_t from, int64_t to, sources& src) const {
    value_type type = _index->at(id).info.type;
    // A head written out of order (concurrent batches land in any order) is sorted once here,
    // briefly holding writers off, rather than by every read that follows.
    // Head before view: a freeze moves points from the head to the frozen list while holding
    // the head exclusively, so this order never misses them or sees them twice.
    std::shared_lock hl(_head_mutex);
    if (!_index->at(id).head.sorted) {
        hl.unlock();
        {
            std::unique_lock exclusive(_head_mutex);
            _index->at(id).head.normalize();
        }
        hl.lock();
    }
    {
        std::lock_guard vl(_view_mutex);
        auto lo = _partitions.lower_bound(day_of(from));
        auto hi = _partitions.upper_bound(day_of(to - 1));
        for (auto it = lo; it != hi; ++it)
            for (const auto& p : it->second.parts)
                src.parts.push_back(p);
        src.frozen = _frozen;
    }
    const auto& h = _index->at(id).head;
    if (!h.empty()) {
        src.has_head = true;
        src.head_min = h.min_ts;
        src.head_max = h.max_ts;
        append_head(h, type, from, to, src.head, &src.head_strings);
    }
}

status engine_impl::decode_block(const part& p, const part::entry& e, int64_t from, int64_t to,
                                 std::vector<sample>& out,
                                 std::vector<std::string>* strings) const {
    static thread_local std::vector<int64_t> ts;
    static thread_local std::vector<uint64_t> raw;
    ts.clear();
    raw.clear();
    bool is_string = e.type == value_type::string;
    std::vector<std::string> local;
    std::vector<std::string>* strs = is_string ? (strings ? strings : &local) : nullptr;
    const auto known = known_of(e);
    if (auto s = block::decode(p.bytes(e), ts, raw, strs, &known); !s)
        return make_error(s.error().code, s.error().message + " (in " + p.path() + ")");
    if (ts.size() != e.stats.count)
        return make_error("corrupt", "corrupt part " + p.path() + ": block count mismatch");
    auto lo = std::lower_bound(ts.begin(), ts.end(), from);
    for (size_t i = static_cast<size_t>(lo - ts.begin()); i < ts.size() && ts[i] < to; ++i)
        out.push_back({ts[i], is_string && !strings ? 0 : raw[i]});
    return {};
}

status engine_impl::scan(series_id id, int64_t from, int64_t to, std::vector<sample>& out,
                         std::vector<std::string>* strings) const {
    return scan_points(id, from, to, out, strings, true);
}

status engine_impl::scan_points(series_id id, int64_t from, int64_t to, std::vector<sample>& out,
                                std::vector<std::string>* strings, bool count_work) const {
    // `strings` is appended to, so that one vector can serve the scans of several series.
    out.clear();
    if (id >= _index->size())
        return make_error("not_found", "no series with id " + std::to_string(id));
    if (from >= to) return {};
    sources src;
    gather(id, from, to, src);
    query_work work;
    for (const auto& p : src.parts)
        for (const auto& e : p->entries(id)) {
            // Downsampled entries have no points to return (docs/format/part.md).
            if (e.downsampled || e.stats.last_ts < from || e.stats.first_ts >= to) continue;
            work.points_decoded += e.stats.count;
            if (auto s = decode_block(*p, e, from, to, out, strings); !s) return s;
        }
    if (count_work) count_query_work(work);
    value_type type = _index->at(id).info.type;
    for (const auto& fh : src.frozen)
        if (const auto* h = fh->find(id)) append_head(*h, type, from, to, out, strings);
    size_t base = strings ? strings->size() : 0;
    for (auto s : src.head) {
        if (type == value_type::string && strings) s.raw += base;
        out.push_back(s);
    }
    if (strings && type == value_type::string)
        strings->insert(strings->end(), std::make_move_iterator(src.head_strings.begin()),
                        std::make_move_iterator(src.head_strings.end()));
    merge_sorted_runs(out);
    return {};
}

status engine_impl::aggregate(series_id id, int64_t from, int64_t to, int64_t step,
                              std::vector<std::pair<int64_t, summary>>& out) const {
    out.clear();
    if (id >= _index->size())
        return make_error("not_found", "no series with id " + std::to_string(id));
    if (step <= 0)
        return make_error("invalid_argument",
                          "step must be positive, got " + std::to_string(step) + " ns", "step");
    if (from >= to) return {};
    value_type type = _index->at(id).info.type;
    sources src;
    gather(id, from, to, src);

    // Every piece of data for the series in range, as time intervals: blocks, and the heads as
    // a whole. A block's summary may stand for its points only when no other piece overlaps it
    // (no duplicate timestamp to resolve) and it lies inside the range and one bucket.
    struct piece {
        int64_t first, last;
        const part* p;
        const part::entry* e;
        bool overlaps;
    };
    // Per thread, so that a query over many series reuses the same memory.
    thread_local std::vector<piece> pieces;
    thread_local std::vector<size_t> by_start;
    thread_local std::vector<std::pair<int64_t, summary>> whole;  // (bucket, summary or row)
    pieces.clear();
    whole.clear();
    for (const auto& p : src.parts)
        for (const auto& e : p->entries(id))
            if (e.stats.last_ts >= from && e.stats.first_ts < to)
                pieces.push_back({e.stats.first_ts, e.stats.last_ts, p.get(), &e, false});
    for (const auto& fh : src.frozen)
        if (const auto* h = fh->find(id))
            pieces.push_back({h->min_ts, h->max_ts, nullptr, nullptr, false});
    if (src.has_head) pieces.push_back({src.head_min, src.head_max, nullptr, nullptr, false});
    by_start.resize(pieces.size());
    for (size_t i = 0; i < pieces.size(); ++i)
        by_start[i] = i;
    std::sort(by_start.begin(), by_start.end(),
              [&](size_t a, size_t b) { return pieces[a].first < pieces[b].first; });
    size_t owner = SIZE_MAX;
    for (size_t k : by_start) {
        if (owner != SIZE_MAX && pieces[k].first <= pieces[owner].last) {
            pieces[k].overlaps = pieces[owner].overlaps = true;
            if (pieces[k].last > pieces[owner].last) owner = k;
        } else {
            owner = k;
        }
    }

    std::vector<sample> pts;
    size_t runs = 0;  // sources that added points; one alone is already in order
    query_work work;
    bool numeric = type != value_type::string;
    // Pieces are in source order (oldest part first), which the merge of points relies on.
    for (const auto& pc : pieces) {
        if (!pc.e) continue;
        const auto& e = *pc.e;
        if (e.downsampled) {
            if (auto s = aggregate_downsampled(*pc.p, e, from, to, step, whole, work); !s) {
                count_query_work(work);
                return s;
            }
            continue;
        }
        bool use_summary = !pc.overlaps && e.stats.first_ts >= from && e.stats.last_ts < to &&
                           bucket_of(e.stats.first_ts, step) == bucket_of(e.stats.last_ts, step);
        if (use_summary) {
            whole.emplace_back(bucket_of(e.stats.first_ts, step), e.stats);
            continue;
        }
        // The same rule per rollup row: its points are this block's alone.
        if (!pc.overlaps && numeric && e.rollup_size > 0) {
            if (auto s = aggregate_with_rollups(*pc.p, e, from, to, step, whole, pts, work); !s) {
                count_query_work(work);
                return s;
            }
            continue;
        }
        work.points_decoded += e.stats.count;
        if (auto s = decode_block(*pc.p, e, from, to, pts, nullptr); !s) {
            count_query_work(work);
            return s;
        }
    }
    count_query_work(work);
    // Rollups or decoded blocks may have added points: count them as runs too.
    runs = pts.empty() ? 0 : 2;
    for (const auto& fh : src.frozen)
        if (const auto* h = fh->find(id)) {
            size_t before = pts.size();
            append_head(*h, type, from, to, pts, nullptr);
            runs += pts.size() > before;
        }
    if (pts.empty()) {
        pts.swap(src.head);  // the newest hour of a busy series is often all in the head
        runs = !pts.empty();
    } else if (!src.head.empty()) {
        pts.insert(pts.end(), src.head.begin(), src.head.end());
        ++runs;
    }
    if (runs > 1) merge_sorted_runs(pts);

    // Merge point runs and whole-block summaries in time order, bucket by bucket.
    size_t wi = 0, pi = 0;
    std::sort(whole.begin(), whole.end(),
              [](const auto& a, const auto& b) { return a.second.first_ts < b.second.first_ts; });
    accumulator acc;
    acc.numeric = numeric;
    int64_t cur = 0, cur_end = 0;           // the open bucket [cur, cur_end)
    bool open = false, to_the_end = false;  // to_the_end: cur + step is past the end of time
    auto emit = [&] {
        if (open && acc.s.count > 0) out.emplace_back(cur, acc.done());
        acc = accumulator{};
        acc.numeric = numeric;
    };
    while (wi < whole.size() || pi < pts.size()) {
        bool take_block =
            pi >= pts.size() || (wi < whole.size() && whole[wi].second.first_ts < pts[pi].ts);
        int64_t ts = take_block ? whole[wi].second.first_ts : pts[pi].ts;
        // Points arrive in time order: a division only when a bucket ends.
        if (!open || (ts >= cur_end && !to_the_end)) {
            emit();
            cur = bucket_of(ts, step);
            to_the_end = __builtin_add_overflow(cur, step, &cur_end);
            open = true;
        }
        if (take_block) {
            acc.add_summary(whole[wi].second);
            ++wi;
        } else {
            // The points of this bucket up to the next summary, as one run.
            size_t end = pi + 1;
            while (end < pts.size() && (to_the_end || pts[end].ts < cur_end) &&
                   (wi >= whole.size() || pts[end].ts < whole[wi].second.first_ts))
                ++end;
            acc.add_points(type, pts.data() + pi, end - pi);
            pi = end;
        }
    }
    emit();
    return {};
}

// The rows of one level of a block's rollups (none when the block keeps no such level); a
// damaged section is an error naming the part.
status read_rollup_level(const part& p, const part::entry& e, rollup::level l,
                         std::vector<rollup::row>& rows) {
    rows.clear();
    auto blob = p.rollups(e);
    if (!(rollup::levels(blob) & l)) return {};
    if (auto s = rollup::read(blob, e.stats.first_ts, l, rows); !s)
        return make_error(s.error().code, s.error().message + " (in " + p.path() + ")");
    return {};
}

void engine_impl::count_query_work(const query_work& work) const {
    if (work.points_decoded > 0) {
        _points_decoded += work.points_decoded;
        _points_decoded_metric.inc(static_cast<double>(work.points_decoded));
    }
    if (work.rollup_rows > 0) {
        _rollup_rows_read += work.rollup_rows;
        _rollup_rows_metric.inc(static_cast<double>(work.rollup_rows));
    }
}

// A block that no other piece overlaps but that spans several buckets (or the range's edge):
// each rollup row whose points lie inside [from, to) and one bucket stands for them, the
// hour's row first, else the minute rows of that hour; the block is decoded only when points
// in range remain that no row stands for, and only those points are kept.
status engine_impl::aggregate_with_rollups(const part& p, const part::entry& e, int64_t from,
                                           int64_t to, int64_t step,
                                           std::vector<std::pair<int64_t, summary>>& whole,
                                           std::vector<sample>& pts, query_work& work) const {
    thread_local std::vector<rollup::row> hours, minutes;
    thread_local std::vector<std::pair<int64_t, int64_t>> covered;  // [first_ts, last_ts]
    auto read = [&](rollup::level l, std::vector<rollup::row>& rows) {
        return read_rollup_level(p, e, l, rows);
    };
    auto fits = [&](const summary& st) {
        return st.first_ts >= from && st.last_ts < to &&
               bucket_of(st.first_ts, step) == bucket_of(st.last_ts, step);
    };
    auto in_range = [&](const summary& st) { return st.last_ts >= from && st.first_ts < to; };
    if (auto s = read(rollup::hour, hours); !s) return s;
    // Minute rows only when some hour in range cannot stand for its points.
    minutes.clear();
    bool need_minutes =
        hours.empty() || std::any_of(hours.begin(), hours.end(), [&](const rollup::row& h) {
            return in_range(h.stats) && !fits(h.stats);
        });
    if (need_minutes)
        if (auto s = read(rollup::minute, minutes); !s) return s;
    covered.clear();
    bool rest_in_range = false;  // points in range that no row stands for
    auto use = [&](const summary& st) {
        whole.emplace_back(bucket_of(st.first_ts, step), st);
        covered.emplace_back(st.first_ts, st.last_ts);
        ++work.rollup_rows;
    };
    size_t mi = 0;
    auto use_minutes_until = [&](int64_t end) {
        for (; mi < minutes.size() && minutes[mi].start < end; ++mi) {
            const auto& st = minutes[mi].stats;
            if (fits(st))
                use(st);
            else if (in_range(st))
                rest_in_range = true;
        }
    };
    if (!hours.empty()) {
        for (const auto& h : hours) {
            if (fits(h.stats)) {
                use(h.stats);
                // Skip this hour's minute rows.
                while (mi < minutes.size() && minutes[mi].start < h.start + rollup::hour_ns)
                    ++mi;
            } else if (!minutes.empty()) {
                use_minutes_until(h.start + rollup::hour_ns);
            } else if (in_range(h.stats)) {
                rest_in_range = true;
            }
        }
    } else {
        use_minutes_until(std::numeric_limits<int64_t>::max());
    }
    if (!rest_in_range) return {};
    thread_local std::vector<sample> decoded;
    decoded.clear();
    work.points_decoded += e.stats.count;
    if (auto s = decode_block(p, e, from, to, decoded, nullptr); !s) return s;
    size_t ci = 0;
    for (const auto& pt : decoded) {
        while (ci < covered.size() && covered[ci].second < pt.ts)
            ++ci;
        if (ci < covered.size() && covered[ci].first <= pt.ts) continue;
        pts.push_back(pt);
    }
    return {};
}

// A downsampled entry (its points are gone): each row that lies inside [from, to) and one
// bucket stands for its points exactly, the hour's row first, else that hour's minute rows.
// A row that does not (a step that is not a multiple of its interval, a range that cuts it) is
// counted whole in the bucket of its first point, when that point lies in the range.
status engine_impl::aggregate_downsampled(const part& p, const part::entry& e, int64_t from,
                                          int64_t to, int64_t step,
                                          std::vector<std::pair<int64_t, summary>>& whole,
                                          query_work& work) const {
    thread_local std::vector<rollup::row> hours, minutes;
    auto fits = [&](const summary& st) {
        return st.first_ts >= from && st.last_ts < to &&
               bucket_of(st.first_ts, step) == bucket_of(st.last_ts, step);
    };
    auto starts_in_range = [&](const summary& st) {
        return st.first_ts >= from && st.first_ts < to;
    };
    auto use = [&](const summary& st) {
        whole.emplace_back(bucket_of(st.first_ts, step), st);
        ++work.rollup_rows;
    };
    if (fits(e.stats)) {
        whole.emplace_back(bucket_of(e.stats.first_ts, step), e.stats);
        return {};
    }
    auto read = [&](rollup::level l, std::vector<rollup::row>& rows) {
        return read_rollup_level(p, e, l, rows);
    };
    if (auto s = read(rollup::hour, hours); !s) return s;
    if (hours.empty()) {  // rows cannot start before the start of time: the summary alone
        if (starts_in_range(e.stats)) use(e.stats);
        return {};
    }
    bool need_minutes = std::any_of(hours.begin(), hours.end(), [&](const rollup::row& h) {
        return h.stats.last_ts >= from && h.stats.first_ts < to && !fits(h.stats);
    });
    minutes.clear();
    if (need_minutes)
        if (auto s = read(rollup::minute, minutes); !s) return s;
    size_t mi = 0;
    for (const auto& h : hours) {
        int64_t hour_end = h.start + rollup::hour_ns;
        if (fits(h.stats)) {
            use(h.stats);
            while (mi < minutes.size() && minutes[mi].start < hour_end)
                ++mi;
            continue;
        }
        bool has_minutes = false;
        for (; mi < minutes.size() && minutes[mi].start < hour_end; ++mi) {
            has_minutes = true;
            if (fits(minutes[mi].stats) || starts_in_range(minutes[mi].stats))
                use(minutes[mi].stats);
        }
        if (!has_minutes && starts_in_range(h.stats)) use(h.stats);
    }
    return {};
}

std::optional<sample> engine_impl::last(series_id id, std::string* string_value) const {
    if (id >= _index->size()) return std::nullopt;
    std::shared_lock hl(_head_mutex);
    const auto& slot = _index->at(id);
    if (!slot.has_last) return std::nullopt;
    if (string_value) {
        if (slot.info.type == value_type::string)
            *string_value = slot.last_string;
        else
            string_value->clear();
    }
    return slot.last;
}

stats engine_impl::statistics() const {
    stats st;
    st.series = _index->size();
    // Each source's span of one series. A point rewritten after its first version reached
    // a part (or a frozen head) is in two sources: where spans of a series overlap, its
    // points are counted once through a scan, which merges them as queries see them.
    struct span_of {
        series_id id;
        int64_t lo, hi;
        uint64_t n;
        bool exact;  // no duplicate timestamps inside this one source
    };
    std::vector<span_of> spans;
    {
        std::unique_lock hl(_head_mutex);
        for (series_id id : _touched) {
            auto& h = _index->at(id).head;
            // Sorting out-of-order heads here makes the count exact and the next scans cheaper.
            h.normalize();
            st.head_points += h.points.size();
            if (!h.empty()) spans.push_back({id, h.min_ts, h.max_ts, h.points.size(), true});
        }
        std::lock_guard vl(_view_mutex);
        for (const auto& fh : _frozen) {
            for (const auto& [id, h] : fh->series)
                if (!h.empty())
                    spans.push_back({id, h.min_ts, h.max_ts, h.points.size(), h.sorted});
            st.head_points += fh->points;
        }
        st.partitions = _partitions.size();
        for (const auto& [day, pt] : _partitions)
            for (const auto& p : pt.parts)
                for (const auto& e : p->all()) {
                    st.rollup_bytes += e.rollup_size;
                    // A downsampled entry holds rows, not points (statistics count raw points).
                    if (!e.downsampled)
                        spans.push_back(
                            {e.series, e.stats.first_ts, e.stats.last_ts, e.stats.count, true});
                }
    }
    std::sort(spans.begin(), spans.end(), [](const span_of& a, const span_of& b) {
        return a.id != b.id ? a.id < b.id : a.lo < b.lo;
    });
    std::vector<sample> merged;
    for (size_t i = 0; i < spans.size();) {
        // A cluster: spans of one series that overlap one another, transitively.
        size_t j = i + 1;
        int64_t hi = spans[i].hi;
        uint64_t n = spans[i].n;
        bool exact = spans[i].exact;
        for (; j < spans.size() && spans[j].id == spans[i].id && spans[j].lo <= hi; ++j) {
            hi = std::max(hi, spans[j].hi);
            n += spans[j].n;
            exact = false;
        }
        if (exact) {
            st.points += n;
        } else {
            // [lo, hi) merged, plus the one point stored at hi (the newest of its versions).
            merged.clear();
            if (scan_points(spans[i].id, spans[i].lo, hi, merged, nullptr, false))
                st.points += merged.size() + 1;
            else
                st.points += n;
        }
        i = j;
    }
    st.query_points_decoded = _points_decoded.load();
    st.query_rollup_rows_read = _rollup_rows_read.load();
    std::error_code ec;
    for (auto it = fs::recursive_directory_iterator(_opts.dir, ec);
         !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
        std::error_code fec;
        if (it->is_regular_file(fec)) st.disk_bytes += it->file_size(fec);
    }
    return st;
}

}  // namespace

result<std::unique_ptr<engine>> engine::open(const options& opts) {
    auto e = std::make_unique<engine_impl>(opts);
    if (auto s = e->start(); !s) return s.error();
    return std::unique_ptr<engine>(std::move(e));
}

}  // namespace clisonix::storage
