// WAL record encoding, decoding and segment scanning.
#include "storage/wal.h"

#include <bit>
#include <cstring>

#include "storage/codec.h"
#include "storage/io.h"

namespace clisonix::storage::wal {

namespace {

inline uint8_t* put_varint(uint8_t* p, uint64_t v) {
    while (v >= 0x80) {
        *p++ = static_cast<uint8_t>(v | 0x80);
        v >>= 7;
    }
    *p++ = static_cast<uint8_t>(v);
    return p;
}
// A float64 group's exponent byte for values stored as their 8 raw bytes.
constexpr uint8_t raw_values = 0xff;

inline uint64_t zigzag(int64_t v) {
    return (static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63);
}
inline int64_t unzigzag(uint64_t u) {
    return static_cast<int64_t>(u >> 1) ^ -static_cast<int64_t>(u & 1);
}

struct reader {
    const uint8_t* p;
    const uint8_t* end;
    bool varint(uint64_t& v) {
        v = 0;
        for (int shift = 0; shift < 64; shift += 7) {
            if (p == end) return false;
            uint8_t b = *p++;
            v |= static_cast<uint64_t>(b & 0x7f) << shift;
            if (!(b & 0x80)) return true;
        }
        return false;
    }
    bool byte(uint8_t& b) {
        if (p == end) return false;
        b = *p++;
        return true;
    }
    size_t left() const { return static_cast<size_t>(end - p); }
};

}  // namespace

void grouping::build(const write_batch& batch) {
    // A counting sort by batch-local series: stable, so points of one series keep their
    // order in the batch (the later of two equal timestamps wins on replay as it did live).
    const auto& pts = batch.points();
    size_t ns = batch.series_count();
    counts.assign(ns + 1, 0);
    for (const auto& p : pts)
        ++counts[p.series + 1];
    for (size_t i = 1; i <= ns; ++i)
        counts[i] += counts[i - 1];
    starts.clear();
    locals.clear();
    for (uint32_t s = 0; s < ns; ++s) {
        if (counts[s + 1] == counts[s]) continue;
        locals.push_back(s);
        starts.push_back(counts[s]);
    }
    starts.push_back(static_cast<uint32_t>(pts.size()));
    order.resize(pts.size());
    for (uint32_t i = 0; i < pts.size(); ++i)
        order[counts[pts[i].series]++] = i;
}

namespace {

inline int64_t wrapping_sub(int64_t a, int64_t b) {
    return static_cast<int64_t>(static_cast<uint64_t>(a) - static_cast<uint64_t>(b));
}
inline int64_t wrapping_add(int64_t a, int64_t b) {
    return static_cast<int64_t>(static_cast<uint64_t>(a) + static_cast<uint64_t>(b));
}

// The smallest exponent at which every value of the group is an exact decimal (as the block
// codec's decimal columns), or -1. Sensor values are decimal text, so this nearly always
// holds with e of 1-3 and turns 8-byte doubles into mantissa differences of a byte or two.
int group_exponent(const write_batch::point* pts, const uint32_t* order, uint32_t b, uint32_t e,
                   std::vector<int64_t>& mantissas) {
    int exponent = 0;
    mantissas.clear();
    for (uint32_t i = b; i < e; ++i) {
        double v = std::bit_cast<double>(pts[order[i]].raw);
        int64_t m;
        if (!codec::decimal_mantissa(v, exponent, m)) {
            do {
                if (++exponent > codec::max_exponent) return -1;
            } while (!codec::decimal_mantissa(v, exponent, m));
            // A value exact at an exponent is exact at every larger one (the same correctly
            // rounded quotient), unless its mantissa outgrows 2^53: redo the earlier ones.
            for (uint32_t j = b; j < i; ++j)
                if (!codec::decimal_mantissa(std::bit_cast<double>(pts[order[j]].raw), exponent,
                                             mantissas[j - b]))
                    return -1;
        }
        mantissas.push_back(m);
    }
    return exponent;
}

}  // namespace

void encode(const write_batch& batch, std::span<const series_id> ids,
            std::span<const value_type> types, const grouping& g, std::vector<uint8_t>& out) {
    const auto& pts = batch.points();
    thread_local std::vector<int64_t> mantissas;
    // Per group at most: id, type, count, exponent; per point at most a timestamp and a
    // value varint (or 8 raw bytes), 21 bytes.
    size_t bound = record_header + 1 + 20 + g.locals.size() * 22 + pts.size() * 21;
    for (const auto& s : batch.strings())
        bound += s.size() + 10;
    size_t start = out.size();
    out.resize(start + bound);
    uint8_t* base = out.data() + start;
    uint8_t* p = base + record_header;
    *p++ = kind_points;
    // Timestamps of a group start from the batch's first timestamp, not from 0: a batch
    // spans seconds, so a group's first timestamp costs a byte or two instead of nine.
    const int64_t base_ts = pts.empty() ? 0 : pts[0].ts;
    p = put_varint(p, zigzag(base_ts));
    p = put_varint(p, g.locals.size());
    for (size_t gi = 0; gi < g.locals.size(); ++gi) {
        uint32_t local = g.locals[gi];
        uint32_t b = g.starts[gi], e = g.starts[gi + 1];
        value_type type = types[local];
        p = put_varint(p, ids[local]);
        *p++ = static_cast<uint8_t>(type);
        p = put_varint(p, e - b);
        // The first timestamp against the base, the second against the first, then each
        // difference against the one before: a regular interval costs a byte per point.
        int64_t prev = base_ts, prev_delta = 0;
        for (uint32_t i = b; i < e; ++i) {
            int64_t ts = pts[g.order[i]].ts;
            int64_t delta = wrapping_sub(ts, prev);
            p = put_varint(p, zigzag(i < b + 2 ? delta : wrapping_sub(delta, prev_delta)));
            prev = ts;
            prev_delta = delta;
        }
        switch (type) {
            case value_type::float64: {
                int exponent = group_exponent(pts.data(), g.order.data(), b, e, mantissas);
                if (exponent < 0) {
                    *p++ = raw_values;
                    for (uint32_t i = b; i < e; ++i) {
                        io::put_u64(p, pts[g.order[i]].raw);
                        p += 8;
                    }
                    break;
                }
                *p++ = static_cast<uint8_t>(exponent);
                int64_t prev_m = 0;
                for (int64_t m : mantissas) {
                    p = put_varint(p, zigzag(wrapping_sub(m, prev_m)));
                    prev_m = m;
                }
                break;
            }
            case value_type::int64: {
                int64_t prev_v = 0;
                for (uint32_t i = b; i < e; ++i) {
                    auto v = static_cast<int64_t>(pts[g.order[i]].raw);
                    p = put_varint(p, zigzag(wrapping_sub(v, prev_v)));
                    prev_v = v;
                }
                break;
            }
            case value_type::boolean:
                for (uint32_t i = b; i < e; ++i)
                    *p++ = pts[g.order[i]].raw ? 1 : 0;
                break;
            case value_type::string:
                for (uint32_t i = b; i < e; ++i) {
                    const auto& s = batch.strings()[pts[g.order[i]].raw];
                    p = put_varint(p, s.size());
                    std::memcpy(p, s.data(), s.size());
                    p += s.size();
                }
                break;
        }
    }
    size_t len = static_cast<size_t>(p - base) - record_header;
    io::put_u32(base, static_cast<uint32_t>(len));
    io::put_u32(base + 4, io::crc32c(base + record_header, len));
    out.resize(start + record_header + len);
}

bool decode(std::span<const uint8_t> payload, decoded& out) {
    out.clear();
    reader r{payload.data(), payload.data() + payload.size()};
    uint8_t kind;
    if (!r.byte(kind) || (kind != kind_points && kind != kind_points_v1)) return false;
    const bool compact = kind == kind_points;
    uint64_t zbase, ngroups;
    if (!r.varint(zbase)) return false;
    const int64_t base = unzigzag(zbase);
    // Each group takes at least 4 bytes, each point at least 2 (compact: a timestamp byte
    // and, beyond the group's exponent byte, at least one value byte): bounds what a forged
    // count can make us allocate.
    if (!r.varint(ngroups) || ngroups > r.left() / 4) return false;
    out.groups.reserve(ngroups);
    for (uint64_t gi = 0; gi < ngroups; ++gi) {
        uint64_t id, n;
        uint8_t type;
        if (!r.varint(id) || id >= 0xffffffffu || !r.byte(type) || type < 1 || type > 4 ||
            !r.varint(n) || n == 0 || n > r.left() / 2)
            return false;
        decoded::group grp{static_cast<series_id>(id), static_cast<value_type>(type),
                           static_cast<uint32_t>(out.points.size()), static_cast<uint32_t>(n)};
        int64_t prev = base, prev_delta = 0;
        for (uint64_t i = 0; i < n; ++i) {
            uint64_t d;
            if (!r.varint(d)) return false;
            int64_t delta = unzigzag(d);
            if (compact && i >= 2) delta = wrapping_add(delta, prev_delta);
            prev = wrapping_add(prev, delta);
            prev_delta = delta;
            out.points.push_back({prev, 0});
        }
        sample* s = out.points.data() + grp.first;
        uint8_t exponent = raw_values;
        if (compact && grp.type == value_type::float64) {
            if (!r.byte(exponent) ||
                (exponent != raw_values && exponent > static_cast<uint8_t>(codec::max_exponent)))
                return false;
        }
        if (compact && grp.type == value_type::int64) exponent = 0;
        if (compact && (grp.type == value_type::float64 || grp.type == value_type::int64) &&
            exponent != raw_values) {
            int64_t v = 0;
            for (uint64_t i = 0; i < n; ++i) {
                uint64_t d;
                if (!r.varint(d)) return false;
                v = wrapping_add(v, unzigzag(d));
                if (grp.type == value_type::int64) {
                    s[i].raw = static_cast<uint64_t>(v);
                } else {
                    // Mantissas are exact up to 2^53; anything beyond was never written.
                    if (v > (int64_t{1} << 53) || v < -(int64_t{1} << 53)) return false;
                    s[i].raw = std::bit_cast<uint64_t>(codec::decimal_value(v, exponent));
                }
            }
            out.groups.push_back(grp);
            continue;
        }
        switch (grp.type) {
            case value_type::float64:
            case value_type::int64:
                if (r.left() / 8 < n) return false;
                for (uint64_t i = 0; i < n; ++i) {
                    s[i].raw = io::get_u64(r.p);
                    r.p += 8;
                }
                break;
            case value_type::boolean:
                for (uint64_t i = 0; i < n; ++i) {
                    uint8_t b;
                    if (!r.byte(b) || b > 1) return false;
                    s[i].raw = b;
                }
                break;
            case value_type::string:
                for (uint64_t i = 0; i < n; ++i) {
                    uint64_t len;
                    if (!r.varint(len) || len > r.left()) return false;
                    s[i].raw = out.strings.size();
                    out.strings.emplace_back(reinterpret_cast<const char*>(r.p), len);
                    r.p += len;
                }
                break;
        }
        out.groups.push_back(grp);
    }
    return r.left() == 0;
}

scan_result scan(std::span<const uint8_t> segment,
                 const std::function<bool(std::span<const uint8_t>)>& on_record) {
    scan_result res;
    size_t pos = 0;
    while (pos < segment.size()) {
        if (segment.size() - pos < record_header) break;
        uint32_t len = io::get_u32(&segment[pos]);
        uint32_t crc = io::get_u32(&segment[pos + 4]);
        if (len == 0 || len > max_payload || len > segment.size() - pos - record_header) break;
        auto payload = segment.subspan(pos + record_header, len);
        if (io::crc32c(payload.data(), payload.size()) != crc) break;
        if (!on_record(payload)) break;
        pos += record_header + len;
        ++res.records;
    }
    res.valid_bytes = pos;
    res.damaged = pos != segment.size();
    return res;
}

std::string segment_name(uint64_t seq) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%020llu.log", static_cast<unsigned long long>(seq));
    return buf;
}

int64_t parse_segment_name(std::string_view name) {
    if (name.size() != 24 || name.substr(20) != ".log") return -1;
    int64_t v = 0;
    for (size_t i = 0; i < 20; ++i) {
        if (name[i] < '0' || name[i] > '9') return -1;
        if (v > (INT64_MAX - 9) / 10) return -1;
        v = v * 10 + (name[i] - '0');
    }
    return v;
}

}  // namespace clisonix::storage::wal
