// Column codecs of the compressed block; see codec.h and docs/format/block.md.
#include "storage/codec.h"

#include <lz4.h>
// For the magicless frame format: the block header already identifies the column.
#define ZSTD_STATIC_LINKING_ONLY
#include <zstd.h>

#include <algorithm>
#include <array>
#include <cassert>
#include <cmath>

namespace clisonix::storage::codec {

// ---- zstd / LZ4 ---------------------------------------------------------------------------

namespace {
// One compression context per thread: creating one costs far more than compressing a block.
struct zstd_contexts {
    ZSTD_CCtx* c = ZSTD_createCCtx();
    ZSTD_DCtx* d = ZSTD_createDCtx();
    ~zstd_contexts() {
        ZSTD_freeCCtx(c);
        ZSTD_freeDCtx(d);
    }
};
zstd_contexts& zstd_ctx() {
    thread_local zstd_contexts ctx;
    return ctx;
}
}  // namespace

void zstd_compress(std::span<const uint8_t> in, std::vector<uint8_t>& out, int level) {
    auto& ctx = zstd_ctx();
    size_t at = out.size();
    out.resize(at + ZSTD_compressBound(in.size()));
    ZSTD_CCtx_reset(ctx.c, ZSTD_reset_session_only);
    ZSTD_CCtx_setParameter(ctx.c, ZSTD_c_compressionLevel, level);
    // The block header already holds sizes and a checksum; the frame need not repeat them.
    ZSTD_CCtx_setParameter(ctx.c, ZSTD_c_contentSizeFlag, 0);
    ZSTD_CCtx_setParameter(ctx.c, ZSTD_c_checksumFlag, 0);
    ZSTD_CCtx_setParameter(ctx.c, ZSTD_c_dictIDFlag, 0);
    ZSTD_CCtx_setParameter(ctx.c, ZSTD_c_format, ZSTD_f_zstd1_magicless);
    size_t n = ZSTD_compress2(ctx.c, out.data() + at, out.size() - at, in.data(), in.size());
    if (ZSTD_isError(n)) {
        out.resize(at);  // cannot happen with a bound-sized buffer; callers fall back
        return;
    }
    out.resize(at + n);
}

bool zstd_decompress(std::span<const uint8_t> in, size_t raw_size, std::vector<uint8_t>& out) {
    auto& ctx = zstd_ctx();
    size_t at = out.size();
    out.resize(at + raw_size);
    ZSTD_DCtx_reset(ctx.d, ZSTD_reset_session_only);
    ZSTD_DCtx_setParameter(ctx.d, ZSTD_d_format, ZSTD_f_zstd1_magicless);
    ZSTD_inBuffer ib{in.data(), in.size(), 0};
    ZSTD_outBuffer ob{out.data() + at, raw_size, 0};
    size_t r = ZSTD_decompressStream(ctx.d, &ob, &ib);
    // Complete frame (r == 0), all input consumed, exactly raw_size bytes produced.
    bool ok = !ZSTD_isError(r) && r == 0 && ib.pos == ib.size && ob.pos == raw_size;
    if (!ok) out.resize(at);
    return ok;
}

void lz4_compress(std::span<const uint8_t> in, std::vector<uint8_t>& out) {
    size_t at = out.size();
    int bound = LZ4_compressBound(static_cast<int>(in.size()));
    out.resize(at + static_cast<size_t>(bound));
    int n = LZ4_compress_default(reinterpret_cast<const char*>(in.data()),
                                 reinterpret_cast<char*>(out.data() + at),
                                 static_cast<int>(in.size()), bound);
    out.resize(at + static_cast<size_t>(n > 0 ? n : 0));
}

bool lz4_decompress(std::span<const uint8_t> in, size_t raw_size, std::vector<uint8_t>& out) {
    if (in.size() > INT32_MAX || raw_size > INT32_MAX) return false;
    size_t at = out.size();
    out.resize(at + raw_size);
    int n = LZ4_decompress_safe(reinterpret_cast<const char*>(in.data()),
                                reinterpret_cast<char*>(out.data() + at),
                                static_cast<int>(in.size()), static_cast<int>(raw_size));
    bool ok = n >= 0 && static_cast<size_t>(n) == raw_size;
    if (!ok) out.resize(at);
    return ok;
}

// ---- compression wrapper ----------------------------------------------------------------

namespace {

// A decoded column never exceeds this multiple of its encoded size (plus a constant), which
// bounds what a decoder allocates for forged input; encoders do not choose a codec that would
// break the rule.
constexpr uint64_t max_ratio = 1024;
constexpr uint64_t ratio_slack = 4096;
bool within_ratio(uint64_t raw, uint64_t encoded) {
    return raw <= encoded * max_ratio + ratio_slack;
}

// Appends `raw` compressed as codec flag `flag` (codec_zstd or codec_lz4): varint raw length,
// then the frame. False (and nothing appended) if that is not smaller than `limit` bytes.
bool wrap(uint8_t flag, std::span<const uint8_t> raw, std::vector<uint8_t>& out, size_t limit) {
    size_t at = out.size();
    put_varint(out, raw.size());
    if (flag == codec_zstd)
        zstd_compress(raw, out, 1);
    else
        lz4_compress(raw, out);
    size_t n = out.size() - at;
    if (n >= limit || !within_ratio(raw.size(), n)) {
        out.resize(at);
        return false;
    }
    return true;
}

// Unwraps a compressed column into `buf`; an error message or empty.
std::string unwrap(uint8_t codec, std::span<const uint8_t> in, uint64_t max_raw,
                   std::vector<uint8_t>& buf, std::span<const uint8_t>& body) {
    body = in;
    if ((codec & (codec_zstd | codec_lz4)) == 0) return {};
    if ((codec & codec_zstd) && (codec & codec_lz4)) return "codec has both zstd and LZ4 flags";
    reader r(in);
    uint64_t raw_len;
    if (!r.varint(raw_len)) return "compressed column truncated";
    if (raw_len > max_raw || !within_ratio(raw_len, in.size()))
        return "compressed column claims " + std::to_string(raw_len) + " bytes, more than possible";
    buf.clear();
    std::span<const uint8_t> frame(r.pos(), r.left());
    bool ok = (codec & codec_zstd) ? zstd_decompress(frame, raw_len, buf)
                                   : lz4_decompress(frame, raw_len, buf);
    if (!ok)
        return (codec & codec_zstd) ? "zstd frame does not decode" : "LZ4 data does not decode";
    body = buf;
    return {};
}

std::vector<uint8_t>& decode_buffer() {
    thread_local std::vector<uint8_t> buf;
    return buf;
}

}  // namespace

// ---- timestamps -----------------------------------------------------------------------------

// Differences use wrapping unsigned arithmetic, so that any int64 sequence round-trips and
// nothing overflows; for sorted, regular timestamps the delta-of-delta is 0 after the first.
namespace {
void write_ts_dod(std::span<const int64_t> ts, std::vector<uint8_t>& out) {
    uint64_t prev = ts.empty() ? 0 : static_cast<uint64_t>(ts[0]);
    uint64_t prev_delta = 0;
    size_t i = 1;
    while (i < ts.size()) {
        uint64_t delta = static_cast<uint64_t>(ts[i]) - prev;
        uint64_t dod = delta - prev_delta;
        prev = static_cast<uint64_t>(ts[i]);
        prev_delta = delta;
        ++i;
        if (dod != 0) {
            put_varint(out, zigzag(static_cast<int64_t>(dod)));
            continue;
        }
        // A zero is followed by how many more zeros come right after it.
        uint64_t run = 0;
        while (i < ts.size() && static_cast<uint64_t>(ts[i]) - prev == prev_delta) {
            prev = static_cast<uint64_t>(ts[i]);
            ++run;
            ++i;
        }
        put_varint(out, 0);
        put_varint(out, run);
    }
}
}  // namespace

uint8_t encode_ts(std::span<const int64_t> ts, std::vector<uint8_t>& out, scratch& s) {
    // Evenly spaced: the header's first timestamp and span say it all.
    if (ts.size() >= 2) {
        uint64_t first = static_cast<uint64_t>(ts[0]);
        uint64_t step = static_cast<uint64_t>(ts[1]) - first;
        bool even = true;
        for (size_t i = 2; i < ts.size() && even; ++i)
            even = static_cast<uint64_t>(ts[i]) == first + step * i;
        if (even) return ts_regular;
    } else {
        return ts_regular;
    }
    s.ts.clear();
    write_ts_dod(ts, s.ts);
    // Irregular timestamps (jitter) leave repeating patterns that zstd still finds.
    if (s.ts.size() > 32 && wrap(codec_zstd, s.ts, out, s.ts.size())) return ts_dod | codec_zstd;
    out.insert(out.end(), s.ts.begin(), s.ts.end());
    return ts_dod;
}

bool decode_ts(uint8_t codec, std::span<const uint8_t> in, uint32_t count, int64_t first_ts,
               int64_t last_ts, std::vector<int64_t>& out) {
    if (count == 0) return in.empty();
    size_t at = out.size();
    if (codec == ts_regular) {
        // The step is span / (count - 1), which must be exact (for count 1, the span is 0).
        uint64_t span = static_cast<uint64_t>(last_ts) - static_cast<uint64_t>(first_ts);
        if (!in.empty() || (count == 1 ? span != 0 : span % (count - 1) != 0)) return false;
        uint64_t step = count == 1 ? 0 : span / (count - 1);
        out.resize(at + count);
        for (uint32_t i = 0; i < count; ++i)
            out[at + i] = static_cast<int64_t>(static_cast<uint64_t>(first_ts) + step * i);
        return true;
    }
    if (codec == ts_raw) {
        if (in.size() != uint64_t{count} * 8 ||
            static_cast<int64_t>(load_u64(in.data())) != first_ts)
            return false;
        out.resize(at + count);
        for (uint32_t i = 0; i < count; ++i)
            out[at + i] = static_cast<int64_t>(load_u64(&in[8 * size_t{i}]));
        return true;
    }
    if ((codec & ~codec_zstd) != ts_dod) return false;
    std::span<const uint8_t> body;
    // A timestamp varint is at most 10 bytes, a run two varints.
    if (!unwrap(codec, in, uint64_t{count} * 10 + 10, decode_buffer(), body).empty()) return false;
    in = body;
    out.resize(at + count);
    int64_t* o = out.data() + at;
    o[0] = first_ts;
    uint64_t prev = static_cast<uint64_t>(first_ts);
    uint64_t delta = 0;
    reader r(in);
    uint32_t i = 1;
    while (i < count) {
        uint64_t z;
        if (!r.varint(z)) break;
        if (z != 0) {
            delta += static_cast<uint64_t>(unzigzag(z));
            prev += delta;
            o[i++] = static_cast<int64_t>(prev);
            continue;
        }
        uint64_t run;
        if (!r.varint(run) || run >= count - i) break;
        for (uint64_t k = 0; k <= run; ++k) {
            prev += delta;
            o[i++] = static_cast<int64_t>(prev);
        }
    }
    if (i != count || !r.done()) {
        out.resize(at);
        return false;
    }
    return true;
}

// ---- values -------------------------------------------------------------------------------

std::string codec_name(uint8_t codec) {
    static constexpr const char* kinds[] = {"raw",  "gorilla",  "const",  "delta",  "dod",
                                            "rice", "for",      "bits",   "runs",   "plain",
                                            "dict", "dod-runs", "smooth", "regular"};
    static_assert(std::size(kinds) == codec_kind_count);
    uint8_t kind = codec & codec_kind_mask;
    if (kind >= codec_kind_count || ((codec & codec_zstd) && (codec & codec_lz4)))
        return "unknown(" + std::to_string(codec) + ")";
    std::string n = (codec & codec_decimal) ? "decimal-" : "";
    n += kinds[kind];
    if (codec & codec_zstd) n += "+zstd";
    if (codec & codec_lz4) n += "+lz4";
    return n;
}

namespace {

constexpr double pow10[max_exponent + 1] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,
                                            1e7,  1e8,  1e9,  1e10, 1e11, 1e12, 1e13,
                                            1e14, 1e15, 1e16, 1e17, 1e18};
constexpr double max_mantissa = 9007199254740992.0;  // 2^53: every smaller integer is exact

// The mantissa of `bits` at exponent e if bits == m / 10^e exactly (as doubles), else false.
// m / 10^e is a correctly rounded division of two exact doubles, so it reproduces the parsed
// value of the decimal text "m * 10^-e" bit for bit.
inline bool mantissa_at(uint64_t bits, int e, int64_t& m) {
    double v = std::bit_cast<double>(bits);
    double x = v * pow10[e];
    if (!(std::fabs(x) <= max_mantissa)) return false;  // also NaN
    m = static_cast<int64_t>(std::nearbyint(x));
    return std::bit_cast<uint64_t>(static_cast<double>(m) / pow10[e]) == bits;
}

}  // namespace

bool decimal_mantissa(double v, int e, int64_t& m) {
    return e >= 0 && e <= max_exponent && mantissa_at(std::bit_cast<uint64_t>(v), e, m);
}
double decimal_value(int64_t m, int e) {
    return static_cast<double>(m) / pow10[e];
}

namespace {

// VictoriaMetrics-style decimal conversion: the smallest exponent at which every value is an
// exact mantissa. A value exact at e stays exact at any larger e (same correctly rounded
// quotient), so e only grows while scanning; a second pass fills and re-verifies mantissas.
bool to_decimal(std::span<const uint64_t> raw, std::vector<int64_t>& m, int& exponent) {
    int e = 0;
    int64_t mm;
    for (uint64_t r : raw) {
        while (!mantissa_at(r, e, mm)) {
            double x = std::fabs(std::bit_cast<double>(r)) * pow10[e];
            if (!(x <= max_mantissa) || ++e > max_exponent) return false;
        }
    }
    m.resize(raw.size());
    for (size_t i = 0; i < raw.size(); ++i)
        if (!mantissa_at(raw[i], e, m[i])) return false;
    exponent = e;
    return true;
}

constexpr int rice_limit = 24;  // quotients from here on are escaped: 24 zeros, 64 raw bits

inline uint64_t rice_cost(uint64_t z, int k) {
    uint64_t q = z >> k;
    return q < rice_limit ? q + 1 + static_cast<uint64_t>(k) : rice_limit + 64;
}
inline void rice_put(bit_writer& w, uint64_t z, int k) {
    uint64_t q = z >> k;
    if (q < rice_limit) {
        w.put(1, static_cast<int>(q) + 1);
        w.put(z, k);
    } else {
        w.put(0, rice_limit);
        w.put(z, 64);
    }
}
inline uint64_t rice_get(bit_reader& r, int k) {
    int q = r.zeros(rice_limit);
    if (q == rice_limit) return r.get_wide(64);
    return (static_cast<uint64_t>(q) << k) | r.get_wide(k);
}

// The Rice parameter with the fewest bits for these values (first `skip` ignored): tried
// around log2 of their mean, where the optimum lies.
template <typename Z>
int best_rice_k(size_t n, Z z) {
    double mean = 0;
    for (size_t i = 0; i < n; ++i)
        mean += static_cast<double>(z(i));
    mean = n ? mean / static_cast<double>(n) : 0;
    int k0 = mean < 1 ? 0 : static_cast<int>(std::log2(mean));
    int best_k = 0;
    uint64_t best = UINT64_MAX;
    for (int k = std::max(0, k0 - 2); k <= std::min(63, k0 + 1); ++k) {
        uint64_t c = 0;
        for (size_t i = 0; i < n; ++i)
            c += rice_cost(z(i), k);
        if (c < best) {
            best = c;
            best_k = k;
        }
    }
    return best_k;
}

inline uint64_t sub(int64_t a, int64_t b) {
    return static_cast<uint64_t>(a) - static_cast<uint64_t>(b);
}

// ---- integer transforms (int64 values and decimal mantissas) ----

void write_delta(std::span<const int64_t> x, std::vector<uint8_t>& out) {
    size_t at = out.size();
    out.resize(at + 10 * x.size());
    uint8_t* p = out.data() + at;
    p = put_varint_raw(p, zigzag(x[0]));
    for (size_t i = 1; i < x.size(); ++i)
        p = put_varint_raw(p, zigzag(static_cast<int64_t>(sub(x[i], x[i - 1]))));
    out.resize(static_cast<size_t>(p - out.data()));
}

void write_dod(std::span<const int64_t> x, std::vector<uint8_t>& out) {
    size_t at = out.size();
    out.resize(at + 10 * x.size());
    uint8_t* p = out.data() + at;
    p = put_varint_raw(p, zigzag(x[0]));
    uint64_t prev = 0;
    for (size_t i = 1; i < x.size(); ++i) {
        uint64_t d = sub(x[i], x[i - 1]);
        p = put_varint_raw(p, zigzag(static_cast<int64_t>(d - prev)));
        prev = d;
    }
    out.resize(static_cast<size_t>(p - out.data()));
}

void write_rice(std::span<const int64_t> x, std::vector<uint8_t>& out) {
    put_varint(out, zigzag(x[0]));
    auto z = [&](size_t i) { return zigzag(static_cast<int64_t>(sub(x[i + 1], x[i]))); };
    int k = best_rice_k(x.size() - 1, z);
    put_u8(out, static_cast<uint8_t>(k));
    bit_writer w(out);
    for (size_t i = 0; i + 1 < x.size(); ++i)
        rice_put(w, z(i), k);
    w.flush();
}

void write_for(std::span<const int64_t> x, std::vector<uint8_t>& out) {
    int64_t mn = x[0];
    for (int64_t v : x)
        mn = std::min(mn, v);
    put_varint(out, zigzag(mn));
    auto z = [&](size_t i) { return sub(x[i], mn); };
    int k = best_rice_k(x.size(), z);
    put_u8(out, static_cast<uint8_t>(k));
    bit_writer w(out);
    for (size_t i = 0; i < x.size(); ++i)
        rice_put(w, z(i), k);
    w.flush();
}

// The smoothed-level predictor: for a random walk under measurement noise (most sensors), the
// previous value is a noisy guess of the next; an exponentially smoothed level with gain
// 2^-j is a better one, and its residuals are smaller than deltas. Fixed point with 4
// fraction bits, wrapping arithmetic: encoder and decoder compute bit-identical levels.
struct smoother {
    uint64_t level;  // value * 16
    int j;
    smoother(int64_t first, int shift) : level(static_cast<uint64_t>(first) << 4), j(shift) {}
    int64_t predict() const { return static_cast<int64_t>(level + 8) >> 4; }
    void update(int64_t x) {
        int64_t diff = static_cast<int64_t>((static_cast<uint64_t>(x) << 4) - level);
        level += static_cast<uint64_t>(diff >> j);
    }
};
constexpr int max_smooth_shift = 8;

void smooth_residuals(std::span<const int64_t> x, int j, std::vector<uint64_t>& z) {
    z.resize(x.size() - 1);
    smoother sm(x[0], j);
    for (size_t i = 1; i < x.size(); ++i) {
        z[i - 1] = zigzag(static_cast<int64_t>(sub(x[i], sm.predict())));
        sm.update(x[i]);
    }
}

uint64_t rice_bits(std::span<const uint64_t> z, int& k) {
    k = best_rice_k(z.size(), [&](size_t i) { return z[i]; });
    uint64_t c = 0;
    for (uint64_t v : z)
        c += rice_cost(v, k);
    return c;
}

// Tries gains 1/2, 1/4, 1/8 (larger shifts gained nothing on sensor data) and writes the best.
void write_smooth(std::span<const int64_t> x, std::vector<uint8_t>& out, scratch& s) {
    int best_j = 1, best_k = 0;
    uint64_t best = UINT64_MAX;
    for (int j = 1; j <= 3; ++j) {
        smooth_residuals(x, j, s.residuals);
        int k;
        uint64_t c = rice_bits(s.residuals, k);
        if (c < best) {
            best = c;
            best_j = j;
            best_k = k;
        }
    }
    smooth_residuals(x, best_j, s.residuals);
    put_varint(out, zigzag(x[0]));
    put_u8(out, static_cast<uint8_t>(best_j));
    put_u8(out, static_cast<uint8_t>(best_k));
    bit_writer w(out);
    for (uint64_t z : s.residuals)
        rice_put(w, z, best_k);
    w.flush();
}

bool all_equal(std::span<const uint64_t> v) {
    for (uint64_t x : v)
        if (x != v[0]) return false;
    return true;
}

// Keeps the smaller of `cand` and `best` (by size) in `best`.
void keep_smaller(uint8_t codec, std::vector<uint8_t>& cand, uint8_t& best_codec,
                  std::vector<uint8_t>& best) {
    if (best_codec == 0xff || cand.size() < best.size()) {
        std::swap(cand, best);
        best_codec = codec;
    }
}

// Encodes the int64s `x` (n >= 2, not all equal) with every integer transform, and the best
// varint stream also through zstd; leaves the smallest in `best`. `prefix` bytes (the decimal
// exponent) begin every candidate. `force` restricts to one codec id when it is one of them.
void encode_ints(std::span<const int64_t> x, uint8_t flags, std::span<const uint8_t> prefix,
                 std::vector<uint8_t>& best, uint8_t& best_codec, scratch& s, uint8_t force) {
    auto want = [&](uint8_t codec) { return force == 0xff || force == (codec | flags); };
    auto start = [&](std::vector<uint8_t>& v) {
        v.assign(prefix.begin(), prefix.end());
        return &v;
    };
    // Varint streams: delta, dod; the smaller is also tried through zstd.
    uint8_t varint_codec = 0xff;
    std::vector<uint8_t>& vbest = s.c;
    for (uint8_t kind : {val_delta, val_dod}) {
        if (!want(kind) && !want(kind | codec_zstd)) continue;
        start(s.a);
        kind == val_delta ? write_delta(x, s.a) : write_dod(x, s.a);
        keep_smaller(kind, s.a, varint_codec, vbest);
    }
    if (varint_codec != 0xff) {
        if (want(varint_codec | codec_zstd)) {
            s.a.clear();
            if (wrap(codec_zstd, vbest, s.a, force == 0xff ? vbest.size() : SIZE_MAX))
                keep_smaller(varint_codec | codec_zstd | flags, s.a, best_codec, best);
        }
        if (want(varint_codec)) keep_smaller(varint_codec | flags, vbest, best_codec, best);
    }
    if (want(val_rice)) {
        start(s.a);
        write_rice(x, s.a);
        keep_smaller(val_rice | flags, s.a, best_codec, best);
    }
    if (want(val_for)) {
        start(s.a);
        write_for(x, s.a);
        keep_smaller(val_for | flags, s.a, best_codec, best);
    }
    if (want(val_smooth)) {
        start(s.a);
        write_smooth(x, s.a, s);
        keep_smaller(val_smooth | flags, s.a, best_codec, best);
    }
}

void write_gorilla(std::span<const uint64_t> v, std::vector<uint8_t>& out) {
    bit_writer w(out);
    w.put(v[0], 64);
    int lead = -1, trail = 0;  // the current window; none yet
    for (size_t i = 1; i < v.size(); ++i) {
        uint64_t x = v[i] ^ v[i - 1];
        if (x == 0) {
            w.put(0, 1);
            continue;
        }
        int l = std::countl_zero(x), t = std::countr_zero(x);
        if (lead >= 0 && l >= lead && t >= trail) {
            w.put(0b10, 2);
            w.put(x >> trail, 64 - lead - trail);
        } else {
            int len = 64 - l - t;
            w.put(0b11, 2);
            w.put(static_cast<uint64_t>(l), 6);
            w.put(static_cast<uint64_t>(len - 1), 6);
            w.put(x >> t, len);
            lead = l;
            trail = t;
        }
    }
    w.flush();
}

void write_raw(std::span<const uint64_t> v, std::vector<uint8_t>& out) {
    for (uint64_t x : v)
        put_u64(out, x);
}

uint8_t encode_numeric(value_type type, std::span<const uint64_t> raw, std::vector<uint8_t>& out,
                       scratch& s, uint8_t force) {
    auto want = [&](uint8_t codec) { return force == 0xff || force == codec; };
    if (all_equal(raw) && (want(val_const) || raw.size() == 1)) {
        // A decimal reading such as 0.001 is 2 bytes as its exponent and mantissa, 9 as the
        // varint of its 64-bit pattern (blocks of one point: health contributions, alarms).
        int e = 0;
        if (type == value_type::float64 && force == 0xff && to_decimal(raw.first(1), s.ints, e) &&
            1 + varint_size(zigzag(s.ints[0])) <
                varint_size(zigzag(static_cast<int64_t>(raw[0])))) {
            put_u8(out, static_cast<uint8_t>(e));
            put_varint(out, zigzag(s.ints[0]));
            return codec_decimal | val_const;
        }
        put_varint(out, zigzag(static_cast<int64_t>(raw[0])));
        return val_const;
    }
    std::vector<uint8_t>& best = s.b;
    uint8_t best_codec = 0xff;
    best.clear();
    bool decimal = false;
    if (type == value_type::float64) {
        int e = 0;
        if (to_decimal(raw, s.ints, e)) {
            decimal = true;
            uint8_t prefix[1] = {static_cast<uint8_t>(e)};
            encode_ints(s.ints, codec_decimal, prefix, best, best_codec, s, force);
        }
        // Gorilla is tried even when the decimal conversion works: for values with many
        // significant digits that change rarely it wins.
        if (want(val_gorilla) || want(val_gorilla | codec_zstd)) {
            s.a.clear();
            write_gorilla(raw, s.a);
            if (!decimal && want(val_gorilla | codec_zstd)) {
                s.c.clear();
                if (wrap(codec_zstd, s.a, s.c, force == 0xff ? s.a.size() : SIZE_MAX))
                    keep_smaller(val_gorilla | codec_zstd, s.c, best_codec, best);
            }
            if (want(val_gorilla)) keep_smaller(val_gorilla, s.a, best_codec, best);
        }
    } else {
        s.ints.resize(raw.size());
        std::memcpy(s.ints.data(), raw.data(), raw.size() * 8);
        encode_ints(s.ints, 0, {}, best, best_codec, s, force);
    }
    if (best_codec == 0xff || (force == 0xff && best.size() >= raw.size() * 8)) {
        write_raw(raw, out);
        return val_raw;
    }
    out.insert(out.end(), best.begin(), best.end());
    return best_codec;
}

uint8_t encode_bool(std::span<const uint64_t> raw, std::vector<uint8_t>& out, scratch& s,
                    uint8_t force) {
    // Runs: first value, then each run's length.
    s.a.clear();
    put_u8(s.a, raw[0] != 0);
    size_t i = 0;
    while (i < raw.size()) {
        size_t j = i + 1;
        while (j < raw.size() && (raw[j] != 0) == (raw[i] != 0))
            ++j;
        put_varint(s.a, j - i);
        i = j;
    }
    size_t bits_size = (raw.size() + 7) / 8;
    if (force == val_runs || (force != val_bits && s.a.size() < bits_size)) {
        out.insert(out.end(), s.a.begin(), s.a.end());
        return val_runs;
    }
    bit_writer w(out);
    for (uint64_t v : raw)
        w.put(v != 0, 1);
    w.flush();
    return val_bits;
}

std::string_view string_at(std::span<const std::string> strings, uint64_t i) {
    // An index outside `strings` is a caller's bug; it is stored as the empty string rather
    // than read out of bounds.
    assert(i < strings.size());
    return i < strings.size() ? std::string_view(strings[i]) : std::string_view();
}

uint8_t encode_string(std::span<const uint64_t> raw, std::span<const std::string> strings,
                      std::vector<uint8_t>& out, scratch& s, uint8_t force) {
    auto want = [&](uint8_t codec) { return force == 0xff || force == codec; };
    std::vector<uint8_t>& best = s.b;
    uint8_t best_codec = 0xff;
    // Plain.
    s.c.clear();
    uint64_t expanded = 0;
    for (uint64_t i : raw) {
        auto sv = string_at(strings, i);
        put_varint(s.c, sv.size());
        s.c.insert(s.c.end(), sv.begin(), sv.end());
        expanded += sv.size();
    }
    for (uint8_t flag : {codec_zstd, codec_lz4}) {
        if (!want(val_str_plain | flag)) continue;
        s.a.clear();
        if (wrap(flag, s.c, s.a, force == 0xff ? s.c.size() : SIZE_MAX))
            keep_smaller(val_str_plain | flag, s.a, best_codec, best);
    }
    // Dictionary: distinct strings in order of first use, then an index per value.
    auto& ids = s.dict;
    ids.clear();
    s.a.clear();
    s.ints.clear();
    for (uint64_t i : raw) {
        auto [it, added] = ids.try_emplace(string_at(strings, i), ids.size());
        s.ints.push_back(static_cast<int64_t>(it->second));
    }
    if (ids.size() < raw.size() && (want(val_str_dict) || want(val_str_dict | codec_zstd))) {
        std::vector<std::string_view> order(ids.size());
        for (auto& [k, v] : ids)
            order[v] = k;
        put_varint(s.a, order.size());
        for (auto sv : order) {
            put_varint(s.a, sv.size());
            s.a.insert(s.a.end(), sv.begin(), sv.end());
        }
        for (int64_t id : s.ints)
            put_varint(s.a, static_cast<uint64_t>(id));
        if (within_ratio(expanded, s.a.size())) {
            if (want(val_str_dict | codec_zstd)) {
                s.ts.clear();
                if (wrap(codec_zstd, s.a, s.ts, force == 0xff ? s.a.size() : SIZE_MAX))
                    keep_smaller(val_str_dict | codec_zstd, s.ts, best_codec, best);
            }
            if (want(val_str_dict)) keep_smaller(val_str_dict, s.a, best_codec, best);
        }
    }
    if (best_codec == 0xff || best.size() >= s.c.size()) {
        out.insert(out.end(), s.c.begin(), s.c.end());
        return val_str_plain;
    }
    out.insert(out.end(), best.begin(), best.end());
    return best_codec;
}

// ---- decoders: each appends exactly n values or returns an error message ----

std::string decode_ints(uint8_t kind, std::span<const uint8_t> in, uint32_t n, uint64_t* o) {
    reader r(in);
    uint64_t z;
    switch (kind) {
        case val_const: {
            if (!r.varint(z)) return "constant truncated";
            uint64_t v = static_cast<uint64_t>(unzigzag(z));
            for (uint32_t i = 0; i < n; ++i)
                o[i] = v;
            break;
        }
        case val_delta: {
            uint64_t v = 0;
            for (uint32_t i = 0; i < n; ++i) {
                if (!r.varint(z)) return "delta column truncated";
                v = i == 0 ? static_cast<uint64_t>(unzigzag(z))
                           : v + static_cast<uint64_t>(unzigzag(z));
                o[i] = v;
            }
            break;
        }
        case val_dod: {
            uint64_t v = 0, d = 0;
            for (uint32_t i = 0; i < n; ++i) {
                if (!r.varint(z)) return "delta-of-delta column truncated";
                if (i == 0) {
                    v = static_cast<uint64_t>(unzigzag(z));
                } else {
                    d += static_cast<uint64_t>(unzigzag(z));
                    v += d;
                }
                o[i] = v;
            }
            break;
        }
        case val_rice:
        case val_for: {
            uint8_t k;
            if (!r.varint(z) || !r.u8(k)) return "Rice column header truncated";
            if (k > 63) return "Rice parameter " + std::to_string(k) + " out of range";
            uint64_t base = static_cast<uint64_t>(unzigzag(z));
            bit_reader br({r.pos(), r.left()});
            if (kind == val_rice) {
                uint64_t v = base;
                o[0] = v;
                for (uint32_t i = 1; i < n; ++i) {
                    v += static_cast<uint64_t>(unzigzag(rice_get(br, k)));
                    o[i] = v;
                }
            } else {
                for (uint32_t i = 0; i < n; ++i)
                    o[i] = base + rice_get(br, k);
            }
            if (br.overrun()) return "Rice bit stream truncated";
            if ((br.consumed_bits() + 7) / 8 != r.left())
                return "Rice bit stream has trailing bytes";
            return {};
        }
        case val_smooth: {
            uint8_t j, k;
            if (!r.varint(z) || !r.u8(j) || !r.u8(k)) return "smoothed column header truncated";
            if (j > max_smooth_shift || k > 63) return "smoothed column parameters out of range";
            bit_reader br({r.pos(), r.left()});
            smoother sm(unzigzag(z), j);
            o[0] = static_cast<uint64_t>(unzigzag(z));
            for (uint32_t i = 1; i < n; ++i) {
                uint64_t v = static_cast<uint64_t>(sm.predict()) +
                             static_cast<uint64_t>(unzigzag(rice_get(br, k)));
                o[i] = v;
                sm.update(static_cast<int64_t>(v));
            }
            if (br.overrun()) return "Rice bit stream truncated";
            if ((br.consumed_bits() + 7) / 8 != r.left())
                return "Rice bit stream has trailing bytes";
            return {};
        }
        case val_raw:
            if (r.left() != uint64_t{n} * 8) return "raw column length does not match the count";
            for (uint32_t i = 0; i < n; ++i)
                o[i] = load_u64(r.pos() + 8 * size_t{i});
            return {};
        default:
            return "unknown integer codec";
    }
    if (!r.done()) return "column has trailing bytes";
    return {};
}

std::string decode_gorilla(std::span<const uint8_t> in, uint32_t n, uint64_t* o) {
    bit_reader br(in);
    uint64_t v = br.get_wide(64);
    o[0] = v;
    int lead = -1, trail = 0;
    for (uint32_t i = 1; i < n; ++i) {
        if (br.bit()) {
            uint64_t x;
            if (!br.bit()) {
                if (lead < 0) return "Gorilla stream reuses a window before setting one";
                x = br.get_wide(64 - lead - trail) << trail;
            } else {
                int l = static_cast<int>(br.get(6));
                int len = static_cast<int>(br.get(6)) + 1;
                if (l + len > 64) return "Gorilla window out of range";
                lead = l;
                trail = 64 - l - len;
                x = br.get_wide(len) << trail;
            }
            v ^= x;
        }
        o[i] = v;
        if (br.overrun()) return "Gorilla stream truncated";
    }
    if (br.overrun()) return "Gorilla stream truncated";
    if ((br.consumed_bits() + 7) / 8 != in.size()) return "Gorilla stream has trailing bytes";
    return {};
}

std::string decode_bool(uint8_t kind, std::span<const uint8_t> in, uint32_t n, uint64_t* o) {
    if (kind == val_bits) {
        if (in.size() != (uint64_t{n} + 7) / 8) return "bit column length does not match the count";
        for (uint32_t i = 0; i < n; ++i)
            o[i] = (in[i / 8] >> (7 - i % 8)) & 1;
        return {};
    }
    if (kind != val_runs) return "codec not valid for boolean values";
    reader r(in);
    uint8_t v;
    if (!r.u8(v) || v > 1) return "run column has no valid first value";
    uint32_t i = 0;
    while (i < n) {
        uint64_t len;
        if (!r.varint(len) || len == 0 || len > n - i)
            return "run lengths do not add up to the count";
        for (uint64_t k = 0; k < len; ++k)
            o[i++] = v;
        v ^= 1;
    }
    if (!r.done()) return "run column has trailing bytes";
    return {};
}

std::string decode_string(uint8_t kind, std::span<const uint8_t> in, uint32_t n, uint64_t* o,
                          std::vector<std::string>& strings, uint64_t base) {
    reader r(in);
    auto get = [&](std::string_view& sv) {
        uint64_t len;
        std::span<const uint8_t> b;
        if (!r.varint(len) || !r.bytes(len, b)) return false;
        sv = {reinterpret_cast<const char*>(b.data()), b.size()};
        return true;
    };
    if (kind == val_str_plain) {
        std::string_view sv;
        for (uint32_t i = 0; i < n; ++i) {
            if (!get(sv)) return "string length runs past the end of the column";
            strings.emplace_back(sv);
            o[i] = base + i;
        }
    } else if (kind == val_str_dict) {
        uint64_t nd;
        if (!r.varint(nd) || nd > n || nd > r.left()) return "dictionary size out of range";
        thread_local std::vector<std::string_view> dict;
        dict.resize(nd);
        for (auto& sv : dict)
            if (!get(sv)) return "dictionary entry runs past the end of the column";
        // Indexes are checked, and the expanded size bounded, before anything is copied:
        // repeats of a long entry must stay within the ratio bound.
        thread_local std::vector<uint32_t> ids;
        ids.resize(n);
        uint64_t expanded = 0;
        for (uint32_t i = 0; i < n; ++i) {
            uint64_t id = 0;
            if (!r.varint(id) || id >= nd) return "dictionary index out of range";
            ids[i] = static_cast<uint32_t>(id);
            expanded += dict[id].size();
        }
        if (!r.done()) return "string column has trailing bytes";
        if (!within_ratio(expanded, in.size())) return "dictionary expands beyond the size bound";
        for (uint32_t i = 0; i < n; ++i) {
            strings.emplace_back(dict[ids[i]]);
            o[i] = base + i;
        }
    } else {
        return "codec not valid for string values";
    }
    if (!r.done()) return "string column has trailing bytes";
    return {};
}

}  // namespace

uint8_t encode_values(value_type type, std::span<const uint64_t> raw,
                      std::span<const std::string> strings, std::vector<uint8_t>& out, scratch& s,
                      uint8_t force) {
    if (raw.empty()) return val_raw;
    switch (type) {
        case value_type::float64:
        case value_type::int64:
            return encode_numeric(type, raw, out, s, force);
        case value_type::boolean:
            return encode_bool(raw, out, s, force);
        case value_type::string:
            return encode_string(raw, strings, out, s, force);
    }
    return val_raw;
}

std::string decode_values(value_type type, uint8_t codec, std::span<const uint8_t> in,
                          uint32_t count, std::vector<uint64_t>& out,
                          std::vector<std::string>* strings, uint64_t string_base) {
    uint8_t kind = codec & codec_kind_mask;
    if (count == 0) return in.empty() ? "" : "empty block has a value column";
    bool numeric_kind = kind == val_raw || kind == val_const || kind == val_delta ||
                        kind == val_dod || kind == val_rice || kind == val_for ||
                        kind == val_smooth;
    bool ok;
    switch (type) {
        case value_type::float64:
            ok = numeric_kind || (kind == val_gorilla && !(codec & codec_decimal));
            break;
        case value_type::int64:
            ok = numeric_kind && !(codec & codec_decimal);
            break;
        case value_type::boolean:
            ok = (kind == val_bits || kind == val_runs) && (codec & ~codec_kind_mask) == 0;
            break;
        case value_type::string:
            ok = (kind == val_str_plain || kind == val_str_dict) && !(codec & codec_decimal);
            break;
        default:
            ok = false;
    }
    if (!ok)
        return "value codec " + codec_name(codec) + " is not valid for " +
               std::string(type_name(type)) + " values";

    // Every numeric transform takes at most 11 bytes per value (a Rice escape) plus a header.
    uint64_t max_raw = type == value_type::string ? UINT64_MAX : uint64_t{count} * 11 + 32;
    std::span<const uint8_t> body;
    std::string err = unwrap(codec, in, max_raw, decode_buffer(), body);
    if (!err.empty()) return err;

    size_t at = out.size();
    out.resize(at + count);
    uint64_t* o = out.data() + at;
    size_t strings_at = strings ? strings->size() : 0;
    if (type == value_type::string) {
        err = decode_string(kind, body, count, o, *strings, string_base);
    } else if (type == value_type::boolean) {
        err = decode_bool(kind, body, count, o);
    } else if (kind == val_gorilla) {
        err = decode_gorilla(body, count, o);
    } else if (codec & codec_decimal) {
        if (body.empty() || body[0] > max_exponent) {
            err = "decimal exponent missing or out of range";
        } else {
            int e = body[0];
            err = decode_ints(kind, body.subspan(1), count, o);
            if (err.empty() && e > 0) {
                double p = pow10[e];
                for (uint32_t i = 0; i < count; ++i)
                    o[i] = std::bit_cast<uint64_t>(static_cast<double>(static_cast<int64_t>(o[i])) /
                                                   p);
            } else if (err.empty()) {
                for (uint32_t i = 0; i < count; ++i)
                    o[i] = std::bit_cast<uint64_t>(static_cast<double>(static_cast<int64_t>(o[i])));
            }
        }
    } else {
        err = decode_ints(kind, body, count, o);
    }
    if (!err.empty()) {
        out.resize(at);
        if (strings) strings->resize(strings_at);
    }
    return err;
}

}  // namespace clisonix::storage::codec
