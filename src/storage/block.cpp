// The compressed block: header, timestamp column, value column, CRC32C.
// Byte layout: docs/format/block.md. Column codecs: codec.cpp.
#include "storage/block.h"

#include <cassert>
#include <cmath>

#include "storage/codec.h"

namespace clisonix::storage::block {

namespace {

constexpr uint8_t format_version = 1;
constexpr uint8_t columns_version = 2;  // inside parts: the index entry holds the rest

error corrupt(std::string what) {
    return make_error("corrupt", "corrupt block: " + what);
}

bool numeric(value_type t) {
    return t != value_type::string;
}

}  // namespace

void summarize(value_type t, std::span<const int64_t> ts, std::span<const uint64_t> raw,
               summary& s) {
    s = summary{};
    s.count = ts.size();
    if (ts.empty()) return;
    s.first_ts = ts.front();
    s.last_ts = ts.back();
    if (!numeric(t)) return;
    double sum = 0, comp = 0;
    double mn = NAN, mx = NAN;
    for (uint64_t r : raw) {
        double v = as_double(t, r);
        double n = sum + v;
        comp += std::fabs(sum) >= std::fabs(v) ? (sum - n) + v : (v - n) + sum;
        sum = n;
        if (!(v >= mn)) mn = std::isnan(mn) || v < mn ? v : mn;
        if (!(v <= mx)) mx = std::isnan(mx) || v > mx ? v : mx;
    }
    // The compensation is meaningless once the sum is not finite.
    s.sum = std::isfinite(sum) ? sum + comp : sum;
    s.min = mn;
    s.max = mx;
    s.first = as_double(t, raw.front());
    s.last = as_double(t, raw.back());
}

namespace {

// The five summary values: one exponent byte e, one byte whose bit i says that value i is
// stored as the zigzag varint of its decimal mantissa at e (usually 1-4 bytes), otherwise as
// its 8 raw bytes. Sensor data is decimal, so the summary costs ~15 bytes instead of 40.
void put_summary(const summary& st, std::vector<uint8_t>& out) {
    const double v[5] = {st.sum, st.min, st.max, st.first, st.last};
    int64_t m[5];
    int e = 0;
    // The smallest exponent at which min, max, first and last are all decimal, if any.
    for (; e <= codec::max_exponent; ++e) {
        bool all = true;
        for (int i = 1; i < 5 && all; ++i)
            all = codec::decimal_mantissa(v[i], e, m[i]);
        if (all) break;
    }
    if (e > codec::max_exponent) e = 0;
    uint8_t mask = 0;
    for (int i = 0; i < 5; ++i)
        if (codec::decimal_mantissa(v[i], e, m[i])) mask |= static_cast<uint8_t>(1u << i);
    codec::put_u8(out, static_cast<uint8_t>(e));
    codec::put_u8(out, mask);
    for (int i = 0; i < 5; ++i) {
        if (mask & (1u << i))
            codec::put_varint(out, codec::zigzag(m[i]));
        else
            codec::put_u64(out, std::bit_cast<uint64_t>(v[i]));
    }
}

bool get_summary(codec::reader& r, summary& st) {
    uint8_t e, mask;
    if (!r.u8(e) || !r.u8(mask) || e > codec::max_exponent || mask > 31) return false;
    double* v[5] = {&st.sum, &st.min, &st.max, &st.first, &st.last};
    for (int i = 0; i < 5; ++i) {
        uint64_t x;
        if (mask & (1u << i)) {
            if (!r.varint(x)) return false;
            *v[i] = codec::decimal_value(codec::unzigzag(x), e);
        } else {
            if (!r.u64(x)) return false;
            *v[i] = std::bit_cast<double>(x);
        }
    }
    return true;
}

struct parsed {
    header h;
    size_t header_len = 0;
    uint64_t ts_len = 0;
    uint64_t value_len = 0;
    size_t block_size = 0;
};

result<parsed> parse(std::span<const uint8_t> in, const known* entry) {
    codec::reader r(in);
    parsed p;
    uint8_t version, type;
    if (!r.u8(version)) return corrupt("empty input");
    if (version == columns_version) {
        if (!entry) return corrupt("a version 2 block is read with its part's index entry");
        if (!r.u8(p.h.ts_codec) || !r.u8(p.h.value_codec) || !r.varint(p.ts_len) ||
            !r.varint(p.value_len))
            return corrupt("header truncated");
        if (entry->count > max_points || static_cast<uint8_t>(entry->type) < 1 ||
            static_cast<uint8_t>(entry->type) > 4)
            return corrupt("index entry out of range");
        p.h.type = entry->type;
        p.h.count = entry->count;
        p.h.first_ts = entry->first_ts;
        p.h.last_ts = entry->last_ts;
        p.h.stats = entry->stats;
    } else if (version == format_version) {
        if (!r.u8(type) || !r.u8(p.h.ts_codec) || !r.u8(p.h.value_codec))
            return corrupt("header truncated");
        if (type < 1 || type > 4) return corrupt("unknown value type " + std::to_string(type));
        p.h.type = static_cast<value_type>(type);
        uint64_t count, zfirst, span;
        if (!r.varint(count) || !r.varint(p.ts_len) || !r.varint(p.value_len) ||
            !r.varint(zfirst) || !r.varint(span))
            return corrupt("header truncated");
        if (count > max_points)
            return corrupt("point count " + std::to_string(count) + " exceeds the limit of " +
                           std::to_string(max_points));
        p.h.count = static_cast<uint32_t>(count);
        p.h.first_ts = codec::unzigzag(zfirst);
        p.h.last_ts = static_cast<int64_t>(static_cast<uint64_t>(p.h.first_ts) + span);
        p.h.stats.count = count;
        p.h.stats.first_ts = p.h.first_ts;
        p.h.stats.last_ts = p.h.last_ts;
        if (count > 0 && numeric(p.h.type) && !get_summary(r, p.h.stats))
            return corrupt("summary truncated or malformed");
    } else {
        return corrupt("unknown format version " + std::to_string(version));
    }
    p.header_len = static_cast<size_t>(r.pos() - in.data());
    if (p.ts_len > r.left() || p.value_len > r.left() - p.ts_len ||
        r.left() - p.ts_len - p.value_len < 4)
        return corrupt("column lengths run past the end of the input");
    p.block_size = p.header_len + p.ts_len + p.value_len + 4;
    uint32_t stored = codec::load_u32(in.data() + p.block_size - 4);
    if (codec::crc32c(in.first(p.block_size - 4)) != stored) return corrupt("checksum mismatch");
    return p;
}

}  // namespace

namespace {

header encode_block(value_type type, std::span<const int64_t> ts, std::span<const uint64_t> raw,
                    std::span<const std::string> strings, std::vector<uint8_t>& out,
                    uint8_t version) {
    // Per thread, so that a steady stream of flushes reuses the same memory.
    thread_local codec::scratch s;
    thread_local std::vector<uint8_t> ts_col, val_col;
    assert(ts.size() <= max_points && raw.size() >= ts.size());
    header h;
    h.type = type;
    h.count = static_cast<uint32_t>(ts.size());
    if (!ts.empty()) {
        h.first_ts = ts.front();
        h.last_ts = ts.back();
    }
    summarize(type, ts, raw, h.stats);

    ts_col.clear();
    val_col.clear();
    h.ts_codec = codec::encode_ts(ts, ts_col, s);
    h.value_codec = codec::encode_values(type, raw.first(ts.size()), strings, val_col, s);

    size_t start = out.size();
    codec::put_u8(out, version);
    if (version == columns_version) {
        codec::put_u8(out, h.ts_codec);
        codec::put_u8(out, h.value_codec);
        codec::put_varint(out, ts_col.size());
        codec::put_varint(out, val_col.size());
    } else {
        codec::put_u8(out, static_cast<uint8_t>(type));
        codec::put_u8(out, h.ts_codec);
        codec::put_u8(out, h.value_codec);
        codec::put_varint(out, h.count);
        codec::put_varint(out, ts_col.size());
        codec::put_varint(out, val_col.size());
        codec::put_varint(out, codec::zigzag(h.first_ts));
        codec::put_varint(out,
                          static_cast<uint64_t>(h.last_ts) - static_cast<uint64_t>(h.first_ts));
        if (h.count > 0 && numeric(type)) put_summary(h.stats, out);
    }
    out.insert(out.end(), ts_col.begin(), ts_col.end());
    out.insert(out.end(), val_col.begin(), val_col.end());
    codec::put_u32(out, codec::crc32c(std::span<const uint8_t>(out).subspan(start)));
    return h;
}

}  // namespace

header encode(value_type type, std::span<const int64_t> ts, std::span<const uint64_t> raw,
              std::span<const std::string> strings, std::vector<uint8_t>& out) {
    return encode_block(type, ts, raw, strings, out, format_version);
}

header encode_columns(value_type type, std::span<const int64_t> ts, std::span<const uint64_t> raw,
                      std::span<const std::string> strings, std::vector<uint8_t>& out) {
    return encode_block(type, ts, raw, strings, out, columns_version);
}

void put_summary_values(const summary& s, std::vector<uint8_t>& out) {
    put_summary(s, out);
}

size_t get_summary_values(std::span<const uint8_t> in, summary& s) {
    codec::reader r(in);
    if (!get_summary(r, s)) return 0;
    return static_cast<size_t>(r.pos() - in.data());
}

result<header> read_header(std::span<const uint8_t> in, size_t* block_size, const known* entry) {
    auto p = parse(in, entry);
    if (!p) return p.error();
    if (block_size) *block_size = p->block_size;
    return p->h;
}

status decode(std::span<const uint8_t> in, std::vector<int64_t>& ts, std::vector<uint64_t>& raw,
              std::vector<std::string>* strings, const known* entry) {
    auto p = parse(in, entry);
    if (!p) return p.error();
    const header& h = p->h;
    if (h.type == value_type::string && strings == nullptr)
        return make_error("invalid_argument",
                          "a string block needs a strings vector to decode into");
    auto ts_col = in.subspan(p->header_len, p->ts_len);
    auto val_col = in.subspan(p->header_len + p->ts_len, p->value_len);
    size_t ts_at = ts.size();
    if (!codec::decode_ts(h.ts_codec, ts_col, h.count, h.first_ts, h.last_ts, ts))
        return corrupt("timestamp column does not decode (codec " + codec_name(h.ts_codec) + ")");
    if (h.count > 0 && ts.back() != h.last_ts) {
        ts.resize(ts_at);
        return corrupt("last timestamp does not match the header");
    }
    uint64_t base = strings ? strings->size() : 0;
    std::string err =
        codec::decode_values(h.type, h.value_codec, val_col, h.count, raw, strings, base);
    if (!err.empty()) {
        ts.resize(ts_at);
        return corrupt(err);
    }
    return {};
}

std::string codec_name(uint8_t codec) {
    return codec::codec_name(codec);
}

}  // namespace clisonix::storage::block
