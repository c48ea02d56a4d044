// Rollups of a block: building the rows per interval and their compact encoding.
// Byte layout: docs/format/part.md ("Rollups"); why these levels: docs/decisions/0064-rollups.md.
#include "storage/rollup.h"

#include <bit>
#include <cmath>
#include <limits>

#include "storage/block.h"
#include "storage/codec.h"

namespace clisonix::storage::rollup {

namespace {

// Flags of a level: which value columns are decimal mantissas at the level's exponent.
constexpr uint8_t sums_decimal = 1;    // sum - count * min, unsigned, per row or escaped
constexpr uint8_t values_decimal = 2;  // first, min, max, last as differences (below)

int64_t interval_of(int64_t ts, int64_t width) {
    int64_t q = ts / width;
    return ts % width < 0 ? q - 1 : q;
}

error corrupt(std::string_view why) {
    return make_error("corrupt", "corrupt rollups: " + std::string(why));
}

// The rows of one level, summarized exactly as block headers are (block::summarize).
void summarize_level(value_type type, std::span<const int64_t> ts, std::span<const uint64_t> raw,
                     int64_t width, std::vector<row>& rows) {
    rows.clear();
    size_t i = 0;
    while (i < ts.size()) {
        int64_t iv = interval_of(ts[i], width);
        size_t j = i + 1;
        while (j < ts.size() && interval_of(ts[j], width) == iv)
            ++j;
        row r{};
        r.start = iv * width;
        block::summarize(type, ts.subspan(i, j - i), raw.subspan(i, j - i), r.stats);
        rows.push_back(r);
        i = j;
    }
}

size_t count_intervals(std::span<const int64_t> ts, int64_t width) {
    size_t n = 0;
    int64_t prev = 0;
    for (size_t i = 0; i < ts.size(); ++i) {
        int64_t iv = interval_of(ts[i], width);
        if (i == 0 || iv != prev) ++n;
        prev = iv;
    }
    return n;
}

// The smallest exponent at which every first, min, max and last is a decimal mantissa, or -1.
int common_exponent(const std::vector<row>& rows) {
    int e = 0;
    int64_t m;
    for (const auto& r : rows) {
        for (double v : {r.stats.first, r.stats.min, r.stats.max, r.stats.last}) {
            while (!codec::decimal_mantissa(v, e, m)) {
                if (!std::isfinite(v) || ++e > codec::max_exponent) return -1;
            }
        }
    }
    return e;
}

struct mantissas {
    int64_t first, min, max, last;
};

mantissas mantissas_of(const row& r, int e) {
    mantissas m{};
    codec::decimal_mantissa(r.stats.first, e, m.first);
    codec::decimal_mantissa(r.stats.min, e, m.min);
    codec::decimal_mantissa(r.stats.max, e, m.max);
    codec::decimal_mantissa(r.stats.last, e, m.last);
    return m;
}

// sum - count * min at exponent e, when the sum is a mantissa there and the difference fits.
bool sum_excess(const row& r, int e, uint64_t& out) {
    int64_t sum_m, min_m, base, diff;
    if (!codec::decimal_mantissa(r.stats.sum, e, sum_m) ||
        !codec::decimal_mantissa(r.stats.min, e, min_m))
        return false;
    if (__builtin_mul_overflow(static_cast<int64_t>(r.stats.count), min_m, &base) ||
        __builtin_sub_overflow(sum_m, base, &diff) || diff < 0)
        return false;
    out = static_cast<uint64_t>(diff);
    return true;
}

// Rows: varint count, u8 exponent, u8 flags, then per row a shape varint (interval delta << 1
// | 1 when count or the offsets of the first and last timestamp in the interval changed,
// followed by those three varints) and the values.
void encode_level(const std::vector<row>& rows, int64_t width, int64_t block_first_ts,
                  std::vector<uint8_t>& out) {
    int e = common_exponent(rows);
    uint8_t flags = 0;
    if (e >= 0) {
        flags |= values_decimal;
        // Decimal first/min/max/last guarantee min <= first, last <= max (no NaN among them).
        // A compensated sum of decimals is now and then one ulp off the decimal it stands
        // for: such a row escapes to the raw double, the others stay varints.
        flags |= sums_decimal;
    } else {
        e = 0;
    }
    codec::put_varint(out, rows.size());
    codec::put_u8(out, static_cast<uint8_t>(e));
    codec::put_u8(out, flags);
    int64_t prev_iv = interval_of(block_first_ts, width);
    uint64_t prev_count = 0;
    int64_t prev_first_off = 0, prev_last_off = 0;
    int64_t prev_last_m = 0;
    for (const auto& r : rows) {
        int64_t iv = r.start / width;
        int64_t first_off = r.stats.first_ts - r.start, last_off = r.stats.last_ts - r.start;
        bool changed =
            r.stats.count != prev_count || first_off != prev_first_off || last_off != prev_last_off;
        codec::put_varint(out, (static_cast<uint64_t>(iv - prev_iv) << 1) | (changed ? 1 : 0));
        if (changed) {
            codec::put_varint(out, r.stats.count);
            codec::put_varint(out, static_cast<uint64_t>(first_off));
            codec::put_varint(out, static_cast<uint64_t>(last_off));
        }
        prev_iv = iv;
        prev_count = r.stats.count;
        prev_first_off = first_off;
        prev_last_off = last_off;
        if (flags & values_decimal) {
            // Small non-negative differences for slowly moving sensor values.
            auto m = mantissas_of(r, e);
            codec::put_varint(out, codec::zigzag(m.first - prev_last_m));
            codec::put_varint(out, static_cast<uint64_t>(m.first - m.min));
            codec::put_varint(out, static_cast<uint64_t>(m.max - m.first));
            codec::put_varint(out, static_cast<uint64_t>(m.last - m.min));
            prev_last_m = m.last;
        } else {
            for (double v : {r.stats.first, r.stats.min, r.stats.max, r.stats.last})
                codec::put_u64(out, std::bit_cast<uint64_t>(v));
        }
        uint64_t excess;
        if (!(flags & sums_decimal)) {
            codec::put_u64(out, std::bit_cast<uint64_t>(r.stats.sum));
        } else if (sum_excess(r, e, excess) && excess < (uint64_t{1} << 63)) {
            codec::put_varint(out, excess << 1);
        } else {
            codec::put_varint(out, 1);
            codec::put_u64(out, std::bit_cast<uint64_t>(r.stats.sum));
        }
    }
}

bool decode_level(codec::reader& rd, int64_t width, int64_t block_first_ts,
                  std::vector<row>& rows) {
    uint64_t n;
    uint8_t e, flags;
    if (!rd.varint(n) || !rd.u8(e) || !rd.u8(flags) || e > codec::max_exponent || flags > 3 ||
        n > block::max_points)
        return false;
    rows.clear();
    rows.reserve(n);
    int64_t prev_iv = interval_of(block_first_ts, width);
    uint64_t count = 0, first_off = 0, last_off = 0;
    int64_t prev_last_m = 0;
    for (uint64_t i = 0; i < n; ++i) {
        uint64_t shape;
        if (!rd.varint(shape)) return false;
        if (shape & 1)
            if (!rd.varint(count) || !rd.varint(first_off) || !rd.varint(last_off)) return false;
        if (count == 0 || first_off > last_off || last_off >= static_cast<uint64_t>(width))
            return false;
        int64_t iv = prev_iv + static_cast<int64_t>(shape >> 1);
        prev_iv = iv;
        row r{};
        r.start = iv * width;
        r.stats.count = count;
        r.stats.first_ts = r.start + static_cast<int64_t>(first_off);
        r.stats.last_ts = r.start + static_cast<int64_t>(last_off);
        int64_t min_m = 0;
        if (flags & values_decimal) {
            uint64_t d_first, d_min, d_max, d_last;
            if (!rd.varint(d_first) || !rd.varint(d_min) || !rd.varint(d_max) || !rd.varint(d_last))
                return false;
            // Wrapping arithmetic: damaged bytes give wrong numbers, never undefined behaviour
            // (the section's checksum catches damage before this runs).
            auto add = [](int64_t a, uint64_t b) {
                return static_cast<int64_t>(static_cast<uint64_t>(a) + b);
            };
            auto sub = [](int64_t a, uint64_t b) {
                return static_cast<int64_t>(static_cast<uint64_t>(a) - b);
            };
            int64_t first_m = add(prev_last_m, static_cast<uint64_t>(codec::unzigzag(d_first)));
            min_m = sub(first_m, d_min);
            int64_t max_m = add(first_m, d_max);
            int64_t last_m = add(min_m, d_last);
            prev_last_m = last_m;
            r.stats.first = codec::decimal_value(first_m, e);
            r.stats.min = codec::decimal_value(min_m, e);
            r.stats.max = codec::decimal_value(max_m, e);
            r.stats.last = codec::decimal_value(last_m, e);
        } else {
            uint64_t v[4];
            for (auto& x : v)
                if (!rd.u64(x)) return false;
            r.stats.first = std::bit_cast<double>(v[0]);
            r.stats.min = std::bit_cast<double>(v[1]);
            r.stats.max = std::bit_cast<double>(v[2]);
            r.stats.last = std::bit_cast<double>(v[3]);
        }
        uint64_t excess = 1;  // 1: the raw double follows
        if (flags & sums_decimal) {
            if (!rd.varint(excess) || ((excess & 1) && excess != 1)) return false;
        }
        if (excess & 1) {
            uint64_t x;
            if (!rd.u64(x)) return false;
            r.stats.sum = std::bit_cast<double>(x);
        } else {
            uint64_t base = static_cast<uint64_t>(min_m) * count;
            r.stats.sum = codec::decimal_value(static_cast<int64_t>(base + (excess >> 1)), e);
        }
        rows.push_back(r);
    }
    return true;
}

}  // namespace

void build(value_type type, std::span<const int64_t> ts, std::span<const uint64_t> raw,
           std::vector<uint8_t>& out, bool keep_hours) {
    // Intervals starting before the first representable time have no start to store.
    if (type == value_type::string || ts.empty() ||
        ts.front() < std::numeric_limits<int64_t>::min() + hour_ns)
        return;
    raw = raw.first(ts.size());
    // Finer level first, each as a varint length and its bytes, after one byte of level bits.
    uint8_t bits = 0;
    for (level l : {minute, hour}) {
        size_t n = count_intervals(ts, interval_ns(l));
        if (n >= 2 && ts.size() >= n * min_points_per_row) bits |= l;
    }
    if (keep_hours) bits |= hour;
    if (bits == 0) return;
    thread_local std::vector<row> rows;
    thread_local std::vector<uint8_t> level_bytes;
    codec::put_u8(out, bits);
    for (level l : {minute, hour}) {
        if (!(bits & l)) continue;
        summarize_level(type, ts, raw, interval_ns(l), rows);
        level_bytes.clear();
        encode_level(rows, interval_ns(l), ts.front(), level_bytes);
        codec::put_varint(out, level_bytes.size());
        out.insert(out.end(), level_bytes.begin(), level_bytes.end());
    }
}

uint8_t levels(std::span<const uint8_t> rollups) {
    if (rollups.empty() || rollups[0] > (minute | hour)) return 0;
    return rollups[0];
}

status read(std::span<const uint8_t> rollups, int64_t block_first_ts, level l,
            std::vector<row>& rows) {
    uint8_t bits = levels(rollups);
    if (!(bits & l)) return make_error("not_found", "no rollups at this interval");
    codec::reader rd(rollups.subspan(1));
    for (level at : {minute, hour}) {
        if (!(bits & at)) continue;
        uint64_t len;
        if (!rd.varint(len) || len > rd.left()) return corrupt("level length out of bounds");
        if (at != l) {
            rd = codec::reader(rd.pos() + len, rd.pos() + rd.left());
            continue;
        }
        codec::reader level_rd(rd.pos(), rd.pos() + len);
        if (!decode_level(level_rd, interval_ns(l), block_first_ts, rows) || !level_rd.done())
            return corrupt("rows do not decode");
        return {};
    }
    return corrupt("level missing");
}

}  // namespace clisonix::storage::rollup
