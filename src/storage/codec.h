// Private to the storage module: the column codecs behind block.cpp, and the byte-level
// helpers they share (little-endian integers, varints, zigzag, a bit writer and reader,
// CRC32C, zstd/LZ4 wrappers).
//
// Encoders append to a caller's buffer and never allocate per point; decoders read through a
// bounds-checked cursor and report corrupt input as `false`/an error, never by reading past
// the end, so that arbitrary bytes on disk cannot crash the process.
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/result.h"
#include "storage/io.h"
#include "storage/storage.h"

namespace clisonix::storage::codec {

// ---- byte helpers -------------------------------------------------------------------------

inline uint64_t zigzag(int64_t v) {
    return (static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63);
}
inline int64_t unzigzag(uint64_t u) {
    return static_cast<int64_t>((u >> 1) ^ (0 - (u & 1)));
}

inline void put_u8(std::vector<uint8_t>& out, uint8_t v) {
    out.push_back(v);
}
inline void put_u32(std::vector<uint8_t>& out, uint32_t v) {
    uint8_t b[4];
    for (int i = 0; i < 4; ++i)
        b[i] = static_cast<uint8_t>(v >> (8 * i));
    out.insert(out.end(), b, b + 4);
}
inline void put_u64(std::vector<uint8_t>& out, uint64_t v) {
    uint8_t b[8];
    for (int i = 0; i < 8; ++i)
        b[i] = static_cast<uint8_t>(v >> (8 * i));
    out.insert(out.end(), b, b + 8);
}
inline void put_varint(std::vector<uint8_t>& out, uint64_t v) {
    uint8_t b[10];
    size_t n = 0;
    while (v >= 0x80) {
        b[n++] = static_cast<uint8_t>(v | 0x80);
        v >>= 7;
    }
    b[n++] = static_cast<uint8_t>(v);
    out.insert(out.end(), b, b + n);
}
// Varint writer into a buffer with at least 10 bytes of room; returns the new end.
inline uint8_t* put_varint_raw(uint8_t* p, uint64_t v) {
    while (v >= 0x80) {
        *p++ = static_cast<uint8_t>(v | 0x80);
        v >>= 7;
    }
    *p++ = static_cast<uint8_t>(v);
    return p;
}
inline size_t varint_size(uint64_t v) {
    return v == 0 ? 1 : (70 - std::countl_zero(v)) / 7;
}

inline uint32_t load_u32(const uint8_t* p) {
    uint32_t v;
    std::memcpy(&v, p, 4);
    if constexpr (std::endian::native == std::endian::big) v = __builtin_bswap32(v);
    return v;
}
inline uint64_t load_u64(const uint8_t* p) {
    uint64_t v;
    std::memcpy(&v, p, 8);
    if constexpr (std::endian::native == std::endian::big) v = __builtin_bswap64(v);
    return v;
}

// A bounds-checked read cursor. Every getter returns false (and reads nothing) when the
// bytes are not there or are malformed.
class reader {
public:
    reader() = default;
    explicit reader(std::span<const uint8_t> s) : _p(s.data()), _end(s.data() + s.size()) {}
    reader(const uint8_t* p, const uint8_t* end) : _p(p), _end(end) {}

    size_t left() const { return static_cast<size_t>(_end - _p); }
    const uint8_t* pos() const { return _p; }
    bool done() const { return _p == _end; }

    bool u8(uint8_t& v) {
        if (_p == _end) return false;
        v = *_p++;
        return true;
    }
    bool u32(uint32_t& v) {
        if (left() < 4) return false;
        v = load_u32(_p);
        _p += 4;
        return true;
    }
    bool u64(uint64_t& v) {
        if (left() < 8) return false;
        v = load_u64(_p);
        _p += 8;
        return true;
    }
    // At most 10 bytes; the 10th may only carry the top bit of a uint64.
    bool varint(uint64_t& v) {
        if (left() >= 10) {  // fast path: no end check per byte
            uint64_t r = 0;
            for (int i = 0; i < 10; ++i) {
                uint8_t b = _p[i];
                r |= static_cast<uint64_t>(b & 0x7f) << (7 * i);
                if (b < 0x80) {
                    if (i == 9 && b > 1) return false;
                    _p += i + 1;
                    v = r;
                    return true;
                }
            }
            return false;
        }
        uint64_t r = 0;
        for (int i = 0; i < 10 && _p + i < _end; ++i) {
            uint8_t b = _p[i];
            r |= static_cast<uint64_t>(b & 0x7f) << (7 * i);
            if (b < 0x80) {
                if (i == 9 && b > 1) return false;
                _p += i + 1;
                v = r;
                return true;
            }
        }
        return false;
    }
    bool bytes(size_t n, std::span<const uint8_t>& out) {
        if (left() < n) return false;
        out = {_p, n};
        _p += n;
        return true;
    }

private:
    const uint8_t* _p = nullptr;
    const uint8_t* _end = nullptr;
};

// Bits, most significant first, appended to a byte vector. The last byte is zero-padded.
class bit_writer {
public:
    explicit bit_writer(std::vector<uint8_t>& out) : _out(out) {}
    // n in 0..64; only the low n bits of v are written.
    void put(uint64_t v, int n) {
        if (n == 0) return;
        if (n < 64) v &= (uint64_t{1} << n) - 1;
        if (n + _used <= 64) {
            _acc |= n == 64 ? v : v << (64 - _used - n);
            _used += n;
            if (_used == 64) spill();
            return;
        }
        int first = 64 - _used;
        int rest = n - first;
        _acc |= v >> rest;
        _used = 64;
        spill();
        _acc = v << (64 - rest);
        _used = rest;
    }
    void flush() {
        while (_used > 0) {
            _out.push_back(static_cast<uint8_t>(_acc >> 56));
            _acc <<= 8;
            _used = _used > 8 ? _used - 8 : 0;
        }
        _acc = 0;
    }

private:
    void spill() {
        uint8_t b[8];
        for (int i = 0; i < 8; ++i)
            b[i] = static_cast<uint8_t>(_acc >> (56 - 8 * i));
        _out.insert(_out.end(), b, b + 8);
        _acc = 0;
        _used = 0;
    }
    std::vector<uint8_t>& _out;
    uint64_t _acc = 0;
    int _used = 0;
};

// Reads what bit_writer wrote. Reading past the end yields zero bits and sets overrun(), so
// a decoder checks once per column instead of once per bit.
class bit_reader {
public:
    explicit bit_reader(std::span<const uint8_t> s)
        : _p(s.data()), _end(s.data() + s.size()), _total_bits(s.size() * 8) {}
    // n in 1..57 (what fits in the refilled window).
    uint64_t get(int n) {
        if (_avail < n) refill();
        uint64_t v = _win >> (64 - n);
        _win <<= n;
        _avail -= n;
        _consumed += static_cast<uint64_t>(n);
        return v;
    }
    // n in 0..64.
    uint64_t get_wide(int n) {
        if (n == 0) return 0;
        if (n <= 56) return get(n);
        uint64_t hi = get(n - 32);
        return (hi << 32) | get(32);
    }
    bool bit() { return get(1) != 0; }
    // Rice quotient: counts zero bits up to `limit` (at most 56). Fewer than `limit` zeros:
    // consumes them and the one bit that ends them. `limit` zeros: consumes just those (an
    // escape, followed by a raw value).
    int zeros(int limit) {
        if (_avail <= limit) refill();
        int z = _win == 0 ? 64 : std::countl_zero(_win);
        if (z >= limit) {
            _win <<= limit;
            _avail -= limit;
            _consumed += static_cast<uint64_t>(limit);
            return limit;
        }
        _win <<= z;
        _win <<= 1;
        _avail -= z + 1;
        _consumed += static_cast<uint64_t>(z + 1);
        return z;
    }
    bool overrun() const { return _consumed > _total_bits; }
    uint64_t consumed_bits() const { return _consumed; }

private:
    void refill() {
        // Top up the window to at least 57 valid bits; beyond the end, zeros.
        while (_avail <= 56) {
            uint64_t b = _p < _end ? *_p++ : 0;
            _win |= b << (56 - _avail);
            _avail += 8;
        }
    }
    const uint8_t* _p;
    const uint8_t* _end;
    uint64_t _win = 0;
    int _avail = 0;
    uint64_t _consumed = 0;
    uint64_t _total_bits;
};

// ---- checksums and general-purpose compressors ----------------------------------------

// CRC32C of a column or block: the engine's one implementation (io.h).
inline uint32_t crc32c(std::span<const uint8_t> data, uint32_t crc = 0) {
    return io::crc32c(data.data(), data.size(), crc);
}

// Appends the zstd compression of `in` to `out`.
void zstd_compress(std::span<const uint8_t> in, std::vector<uint8_t>& out, int level);
// Decompresses exactly `raw_size` bytes, appended to `out`; false if the frame does not hold
// exactly that many bytes or is malformed.
bool zstd_decompress(std::span<const uint8_t> in, size_t raw_size, std::vector<uint8_t>& out);
void lz4_compress(std::span<const uint8_t> in, std::vector<uint8_t>& out);
bool lz4_decompress(std::span<const uint8_t> in, size_t raw_size, std::vector<uint8_t>& out);

// ---- decimal conversion --------------------------------------------------------------------

constexpr int max_exponent = 18;
// m such that v == m / 10^e exactly (bit for bit, |m| <= 2^53), or false.
bool decimal_mantissa(double v, int e, int64_t& m);
// m / 10^e, the inverse of decimal_mantissa.
double decimal_value(int64_t m, int e);

// ---- columns ----------------------------------------------------------------------------

// Codec ids as stored in a block header: the low 5 bits name the transform, the high bits
// are flags (see docs/format/block.md).
enum : uint8_t {
    ts_raw = 0,       // 8 bytes little-endian per timestamp
    ts_dod = 11,      // delta-of-delta zigzag varints, zero runs collapsed
    ts_regular = 13,  // evenly spaced: no bytes, the step is the header's span / (count - 1)

    val_raw = 0,        // 8 bytes little-endian per value
    val_gorilla = 1,    // float64: Gorilla XOR bit stream
    val_const = 2,      // every value the same: one zigzag varint
    val_delta = 3,      // zigzag varint of the first value, then of each delta
    val_dod = 4,        // zigzag varints of the first value, first delta, then delta-of-deltas
    val_rice = 5,       // first value, then deltas Rice-coded with one parameter k
    val_for = 6,        // minimum, then value minus minimum, Rice-coded
    val_bits = 7,       // boolean: one bit per value
    val_runs = 8,       // boolean: first value, then run lengths
    val_str_plain = 9,  // string: length and bytes of each value
    val_str_dict = 10,  // string: distinct strings, then an index per value
    val_smooth = 12,    // first value, then residuals from an exponentially smoothed level, Rice
    codec_kind_count = 14,  // ts_dod and ts_regular are timestamp codecs only

    codec_kind_mask = 0x1f,
    codec_decimal = 0x20,  // float64 as int64 mantissas m with one exponent e: v = m / 10^e
    codec_zstd = 0x40,     // the transform's bytes are zstd-compressed
    codec_lz4 = 0x80,      // the transform's bytes are LZ4-compressed
};

std::string codec_name(uint8_t codec);

// Reusable scratch space, so that encoding many blocks allocates nothing once warmed.
struct scratch {
    std::vector<uint8_t> a, b, c, ts;
    std::vector<int64_t> ints;
    std::vector<uint64_t> residuals;
    std::unordered_map<std::string_view, uint32_t> dict;
};

// Appends the timestamp column; returns its codec id.
uint8_t encode_ts(std::span<const int64_t> ts, std::vector<uint8_t>& out, scratch& s);
// Appends exactly `count` timestamps from first_ts to last_ts (the header's); false (and
// nothing appended) if the bytes are corrupt.
bool decode_ts(uint8_t codec, std::span<const uint8_t> in, uint32_t count, int64_t first_ts,
               int64_t last_ts, std::vector<int64_t>& out);

// Appends the value column; returns its codec id. `force` (a codec id) restricts the choice
// to that one codec when it applies, for tests; 0xff chooses the smallest.
uint8_t encode_values(value_type type, std::span<const uint64_t> raw,
                      std::span<const std::string> strings, std::vector<uint8_t>& out, scratch& s,
                      uint8_t force = 0xff);
// Appends exactly `count` values; for strings, appends to `strings` and stores indexes
// offset by `string_base`. Returns an error message, or an empty string when the column is
// well-formed.
std::string decode_values(value_type type, uint8_t codec, std::span<const uint8_t> in,
                          uint32_t count, std::vector<uint64_t>& out,
                          std::vector<std::string>* strings, uint64_t string_base);

}  // namespace clisonix::storage::codec
