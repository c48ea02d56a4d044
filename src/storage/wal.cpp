// WAL record encoding, decoding and segment scanning.
#include "storage/wal.h"

#include <bit>
#include <cstring>

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

void encode(const write_batch& batch, std::span<const series_id> ids,
            std::span<const value_type> types, const grouping& g, std::vector<uint8_t>& out) {
    const auto& pts = batch.points();
    size_t bound = record_header + 1 + 20 + g.locals.size() * 21 + pts.size() * 18;
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
        int64_t prev = base_ts;
        for (uint32_t i = b; i < e; ++i) {
            int64_t ts = pts[g.order[i]].ts;
            p = put_varint(p, zigzag(static_cast<int64_t>(static_cast<uint64_t>(ts) -
                                                          static_cast<uint64_t>(prev))));
            prev = ts;
        }
        switch (type) {
            case value_type::float64:
            case value_type::int64:
                for (uint32_t i = b; i < e; ++i) {
                    io::put_u64(p, pts[g.order[i]].raw);
                    p += 8;
                }
                break;
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
    if (!r.byte(kind) || kind != kind_points) return false;
    uint64_t zbase, ngroups;
    if (!r.varint(zbase)) return false;
    const int64_t base = unzigzag(zbase);
    // Each group takes at least 4 bytes, each point at least 2: bounds what a forged count
    // can make us allocate.
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
        int64_t prev = base;
        for (uint64_t i = 0; i < n; ++i) {
            uint64_t d;
            if (!r.varint(d)) return false;
            prev = static_cast<int64_t>(static_cast<uint64_t>(prev) +
                                        static_cast<uint64_t>(unzigzag(d)));
            out.points.push_back({prev, 0});
        }
        sample* s = out.points.data() + grp.first;
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
