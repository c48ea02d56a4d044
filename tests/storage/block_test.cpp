// The compressed block: exact round trips for every type and codec, sizes on the benchmark's
// kind of data, summaries, corrupt input, and the golden bytes of format version 1.
#include "storage/block.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <limits>
#include <random>

#include "storage/codec.h"
#include "support/workload.h"

namespace clisonix::storage {
namespace {

using clisonix::testing::workload;

using bytes = std::vector<uint8_t>;

uint64_t bits(double d) {
    return std::bit_cast<uint64_t>(d);
}

std::vector<int64_t> regular_ts(size_t n, int64_t start = 1'704'067'200'000'000'000,
                                int64_t step = 10'000'000'000) {
    std::vector<int64_t> ts(n);
    for (size_t i = 0; i < n; ++i)
        ts[i] = start + static_cast<int64_t>(i) * step;
    return ts;
}

struct decoded {
    std::vector<int64_t> ts;
    std::vector<uint64_t> raw;
    std::vector<std::string> strings;
};

// Encodes, decodes, and checks that every point comes back bit for bit.
bytes round_trip(value_type type, const std::vector<int64_t>& ts, const std::vector<uint64_t>& raw,
                 const std::vector<std::string>& strings = {}) {
    bytes out;
    auto h = block::encode(type, ts, raw, strings, out);
    EXPECT_EQ(h.count, ts.size());
    size_t size = 0;
    auto rh = block::read_header(out, &size);
    EXPECT_TRUE(rh.ok()) << (rh.ok() ? "" : rh.error().message);
    EXPECT_EQ(size, out.size());
    decoded d;
    d.strings = {"already here"};  // string indexes come back offset by this
    auto st = block::decode(out, d.ts, d.raw, &d.strings);
    EXPECT_TRUE(st.ok()) << (st.ok() ? "" : st.error().message);
    EXPECT_EQ(d.ts, ts);
    if (type == value_type::string) {
        EXPECT_EQ(d.raw.size(), raw.size());
        for (size_t i = 0; i < raw.size() && i < d.raw.size(); ++i) {
            if (d.raw[i] >= d.strings.size()) {
                ADD_FAILURE() << "string index out of range at " << i;
                break;
            }
            EXPECT_EQ(d.raw[i], 1 + i);
            EXPECT_EQ(d.strings[d.raw[i]], strings[raw[i]]) << "at " << i;
        }
    } else {
        EXPECT_EQ(d.raw, raw);
    }
    // The same points as a part writes them (version 2: columns only), read with what the
    // index entry knows; it is the version 1 block less its header fields and summary.
    bytes columns;
    auto ch = block::encode_columns(type, ts, raw, strings, columns);
    EXPECT_EQ(ch.count, h.count);
    EXPECT_EQ(ch.ts_codec, h.ts_codec);
    EXPECT_EQ(ch.value_codec, h.value_codec);
    EXPECT_LT(columns.size(), out.size());
    decoded c;
    auto cst = block::decode(columns, c.ts, c.raw, &c.strings, &h);
    EXPECT_TRUE(cst.ok()) << (cst.ok() ? "" : cst.error().message);
    EXPECT_EQ(c.ts, ts);
    EXPECT_EQ(c.raw.size(), raw.size());
    if (type != value_type::string) {
        EXPECT_EQ(c.raw, raw);
    }
    size = 0;
    EXPECT_TRUE(block::read_header(columns, &size, &h).ok());
    EXPECT_EQ(size, columns.size());
    return out;
}

// Forces one value codec through the column codec directly and checks the round trip.
void forced_round_trip(value_type type, uint8_t codec, const std::vector<uint64_t>& raw,
                       const std::vector<std::string>& strings = {}) {
    codec::scratch s;
    bytes col;
    uint8_t got = codec::encode_values(type, raw, strings, col, s, codec);
    ASSERT_EQ(codec::codec_name(got), codec::codec_name(codec));
    std::vector<uint64_t> out;
    std::vector<std::string> strs;
    auto err =
        codec::decode_values(type, got, col, static_cast<uint32_t>(raw.size()), out, &strs, 0);
    ASSERT_EQ(err, "") << codec::codec_name(codec);
    if (type == value_type::string) {
        ASSERT_EQ(out.size(), raw.size());
        for (size_t i = 0; i < raw.size(); ++i)
            EXPECT_EQ(strs[out[i]], strings[raw[i]]);
    } else {
        EXPECT_EQ(out, raw) << codec::codec_name(codec);
    }
}

std::vector<uint64_t> special_floats() {
    const double inf = std::numeric_limits<double>::infinity();
    std::vector<double> d = {0.0,
                             -0.0,
                             inf,
                             -inf,
                             std::numeric_limits<double>::denorm_min(),
                             -std::numeric_limits<double>::denorm_min(),
                             std::numeric_limits<double>::min() / 3,
                             std::numeric_limits<double>::max(),
                             std::numeric_limits<double>::lowest(),
                             std::numeric_limits<double>::epsilon(),
                             1e-300,
                             9007199254740993.0,
                             0.1,
                             54.21};
    std::vector<uint64_t> r;
    for (double x : d)
        r.push_back(bits(x));
    r.push_back(0x7ff8000000000000ull);  // quiet NaN
    r.push_back(0x7ff0000000000001ull);  // signalling NaN with a payload
    r.push_back(0xfff8dead00beef01ull);  // negative NaN with a payload
    return r;
}

// ---- round trips ----------------------------------------------------------------------------

TEST(block_round_trip, float_special_values_bit_exact) {
    auto raw = special_floats();
    round_trip(value_type::float64, regular_ts(raw.size()), raw);
    // Each special value alone, and next to ordinary decimals (the decimal codec must refuse).
    for (uint64_t v : special_floats()) {
        round_trip(value_type::float64, regular_ts(1), {v});
        std::vector<uint64_t> mixed;
        for (int i = 0; i < 50; ++i)
            mixed.push_back(bits(20.0 + i * 0.25));
        mixed[17] = v;
        round_trip(value_type::float64, regular_ts(mixed.size()), mixed);
    }
}

TEST(block_round_trip, float_random_bits_and_decimals) {
    std::mt19937_64 rng(7);
    for (int trial = 0; trial < 30; ++trial) {
        size_t n = 1 + rng() % 3000;
        std::vector<uint64_t> raw(n);
        for (auto& r : raw) {
            switch (trial % 3) {
                case 0:
                    r = rng();  // any bit pattern, NaNs included
                    break;
                case 1:
                    r = bits(static_cast<double>(static_cast<int64_t>(rng() % 200000) - 100000) /
                             1000.0);
                    break;
                default:
                    r = bits(std::ldexp(static_cast<double>(rng() >> 11), -40));
            }
        }
        round_trip(value_type::float64, regular_ts(n), raw);
    }
}

TEST(block_round_trip, every_float_codec_forced) {
    std::vector<uint64_t> dec, any;
    std::mt19937_64 rng(3);
    double walk = 50;
    for (int i = 0; i < 1000; ++i) {
        walk += static_cast<double>(static_cast<int>(rng() % 21) - 10) / 100.0;
        dec.push_back(bits(std::round(walk * 100) / 100));
        any.push_back(rng());
    }
    using namespace codec;
    for (uint8_t c : {val_delta, val_dod, val_rice, val_for, val_smooth})
        forced_round_trip(value_type::float64, c | codec_decimal, dec);
    // zstd is tried on the varint streams only: Rice output is already entropy-coded.
    for (uint8_t c : {val_delta, val_dod})
        forced_round_trip(value_type::float64, c | codec_decimal | codec_zstd, dec);
    forced_round_trip(value_type::float64, val_gorilla, dec);
    forced_round_trip(value_type::float64, val_gorilla, any);
    forced_round_trip(value_type::float64, val_gorilla | codec_zstd, any);
    forced_round_trip(value_type::float64, val_const, std::vector<uint64_t>(100, bits(-0.0)));
    forced_round_trip(value_type::float64, val_const,
                      std::vector<uint64_t>(100, 0x7ff0000000000001ull));
}

TEST(block_round_trip, int64_full_range) {
    const int64_t mn = std::numeric_limits<int64_t>::min(),
                  mx = std::numeric_limits<int64_t>::max();
    std::vector<uint64_t> raw;
    for (int64_t v : {mn, mx, int64_t{0}, mn, int64_t{-1}, mx, int64_t{1}, mn + 1, mx - 1})
        raw.push_back(static_cast<uint64_t>(v));
    round_trip(value_type::int64, regular_ts(raw.size()), raw);
    std::mt19937_64 rng(11);
    for (int trial = 0; trial < 20; ++trial) {
        size_t n = 1 + rng() % 3000;
        std::vector<uint64_t> r(n);
        int64_t acc = static_cast<int64_t>(rng());
        for (auto& x : r) {
            if (trial % 2)
                x = rng();
            else
                x = static_cast<uint64_t>(acc += static_cast<int64_t>(rng() % 9) - 4);
        }
        round_trip(value_type::int64, regular_ts(n), r);
    }
    using namespace codec;
    std::vector<uint64_t> walk, wild;
    for (int i = 0; i < 500; ++i) {
        walk.push_back(static_cast<uint64_t>(1500 + i % 5 - 2));
        wild.push_back(i % 2 ? static_cast<uint64_t>(mn) : static_cast<uint64_t>(mx));
    }
    for (uint8_t c : {val_delta, val_dod, val_rice, val_for, val_smooth}) {
        forced_round_trip(value_type::int64, c, walk);
        forced_round_trip(value_type::int64, c, wild);  // Rice escapes, wrapping deltas
    }
    forced_round_trip(value_type::int64, val_delta | codec_zstd, walk);
    forced_round_trip(value_type::int64, val_dod | codec_zstd, walk);
    forced_round_trip(value_type::int64, val_const,
                      std::vector<uint64_t>(9, static_cast<uint64_t>(mn)));
}

TEST(block_round_trip, booleans) {
    std::mt19937_64 rng(5);
    for (size_t n : {1, 7, 8, 9, 1000, 4321}) {
        std::vector<uint64_t> random(n), runs(n), same(n, 1);
        for (size_t i = 0; i < n; ++i) {
            random[i] = rng() & 1;
            runs[i] = (i / 97) & 1;
        }
        round_trip(value_type::boolean, regular_ts(n), random);
        round_trip(value_type::boolean, regular_ts(n), runs);
        round_trip(value_type::boolean, regular_ts(n), same);
        forced_round_trip(value_type::boolean, codec::val_bits, random);
        forced_round_trip(value_type::boolean, codec::val_runs, random);
    }
}

TEST(block_round_trip, strings_empty_binary_long_repetitive) {
    std::string binary;
    for (int i = 0; i < 256; ++i)
        binary.push_back(static_cast<char>(i));
    std::string long_text(1 << 20, 'x');
    for (size_t i = 0; i < long_text.size(); i += 7)
        long_text[i] = static_cast<char>('a' + i % 26);
    std::vector<std::string> strings = {"", binary, long_text, "running", "stopped", "fault"};
    std::vector<uint64_t> raw = {0, 1, 2, 0, 3, 4};
    round_trip(value_type::string, regular_ts(raw.size()), raw, strings);
    // Repetitive: the dictionary.
    std::vector<uint64_t> states;
    for (int i = 0; i < 2000; ++i)
        states.push_back(3 + (i / 50) % 3);
    auto out = round_trip(value_type::string, regular_ts(states.size()), states, strings);
    EXPECT_LT(out.size(), 200u);
    // Distinct every time.
    std::vector<std::string> uniq;
    std::vector<uint64_t> idx;
    for (int i = 0; i < 500; ++i) {
        uniq.push_back("event " + std::to_string(i * 7919));
        idx.push_back(static_cast<uint64_t>(i));
    }
    round_trip(value_type::string, regular_ts(idx.size()), idx, uniq);
    using namespace codec;
    for (uint8_t c : std::initializer_list<uint8_t>{val_str_plain, val_str_plain | codec_zstd,
                                                    val_str_plain | codec_lz4, val_str_dict,
                                                    val_str_dict | codec_zstd})
        forced_round_trip(value_type::string, c, states, strings);
}

TEST(block_round_trip, timestamps_irregular_and_extreme) {
    const int64_t mn = std::numeric_limits<int64_t>::min(),
                  mx = std::numeric_limits<int64_t>::max();
    std::vector<uint64_t> v2 = {1, 2};
    round_trip(value_type::int64, {mn, mx}, v2);
    round_trip(value_type::int64, {-5, 3}, v2);
    std::mt19937_64 rng(9);
    std::vector<int64_t> jitter, gaps;
    int64_t t = 1'700'000'000'000'000'000, g = -1'000'000;
    for (int i = 0; i < 3000; ++i) {
        jitter.push_back(t += 1'000'000'000 + static_cast<int64_t>(rng() % 2'000'000));
        gaps.push_back(g += 1 + static_cast<int64_t>(rng() % 3 == 0 ? rng() % (1LL << 40) : 10));
    }
    std::vector<uint64_t> raw(3000, 7);
    round_trip(value_type::int64, jitter, raw);
    round_trip(value_type::int64, gaps, raw);
    // Not the contract, but must still round-trip exactly rather than corrupt: unsorted input.
    std::vector<int64_t> unsorted = {5, 1, 9, 9, -100};
    round_trip(value_type::int64, unsorted, std::vector<uint64_t>(5, 1));
}

TEST(block_round_trip, empty_block) {
    bytes out;
    auto h = block::encode(value_type::float64, {}, {}, {}, out);
    EXPECT_EQ(h.count, 0u);
    decoded d;
    ASSERT_TRUE(block::decode(out, d.ts, d.raw).ok());
    EXPECT_TRUE(d.ts.empty());
    EXPECT_TRUE(d.raw.empty());
}

TEST(block_round_trip, decode_appends) {
    auto ts = regular_ts(10);
    std::vector<uint64_t> raw(10, bits(1.5));
    bytes out;
    block::encode(value_type::float64, ts, raw, {}, out);
    block::encode(value_type::float64, ts, raw, {}, out);  // two blocks back to back
    size_t first = 0;
    ASSERT_TRUE(block::read_header(out, &first).ok());
    decoded d;
    ASSERT_TRUE(block::decode(std::span(out).first(first), d.ts, d.raw).ok());
    ASSERT_TRUE(block::decode(std::span(out).subspan(first), d.ts, d.raw).ok());
    EXPECT_EQ(d.ts.size(), 20u);
    EXPECT_EQ(d.raw.size(), 20u);
    EXPECT_EQ(d.ts[10], ts[0]);
}

TEST(block_round_trip, string_block_needs_strings_vector) {
    bytes out;
    std::vector<std::string> s = {"a"};
    block::encode(value_type::string, regular_ts(1), std::vector<uint64_t>{0}, s, out);
    decoded d;
    auto st = block::decode(out, d.ts, d.raw, nullptr);
    ASSERT_FALSE(st.ok());
    EXPECT_EQ(st.error().code, "invalid_argument");
}

// ---- sizes ----------------------------------------------------------------------------------

TEST(block_size, regular_timestamps_cost_nothing) {
    for (size_t n : {1, 2, 360, 2160, 8640}) {
        codec::scratch s;
        bytes col;
        EXPECT_EQ(codec::encode_ts(regular_ts(n), col, s), codec::ts_regular);
        EXPECT_EQ(col.size(), 0u) << n;  // first and last in the header say it all
    }
    // One late sample: delta-of-delta runs, a few bytes whatever the length.
    auto ts = regular_ts(2160);
    ts[1000] += 1'000'000;
    codec::scratch s;
    bytes col;
    EXPECT_EQ(codec::encode_ts(ts, col, s), codec::ts_dod);
    EXPECT_LE(col.size(), 24u);
    std::vector<int64_t> back;
    ASSERT_TRUE(codec::decode_ts(codec::ts_dod, col, 2160, ts.front(), ts.back(), back));
    EXPECT_EQ(back, ts);
}

// A block of one reading, or of one repeated reading, stores it as a decimal: 0.001 takes an
// exponent byte and a one-byte mantissa instead of the 9-byte varint of its bit pattern.
TEST(block_size, a_constant_decimal_is_stored_as_its_mantissa) {
    for (double v : {0.001, 0.5, 42.25, -3.1}) {
        for (size_t n : {1, 5}) {
            codec::scratch s;
            bytes col;
            std::vector<uint64_t> raw(n, std::bit_cast<uint64_t>(v));
            uint8_t got = codec::encode_values(value_type::float64, raw, {}, col, s);
            EXPECT_EQ(codec::codec_name(got), "decimal-const") << v;
            EXPECT_LE(col.size(), 3u) << v;
            std::vector<uint64_t> back;
            ASSERT_EQ(codec::decode_values(value_type::float64, got, col, static_cast<uint32_t>(n),
                                           back, nullptr, 0),
                      "");
            EXPECT_EQ(back, raw) << v;
        }
    }
    // Not a short decimal (0.1 + 0.2, zero): the 64-bit pattern as before.
    for (double v : {0.1 + 0.2, 0.0}) {
        codec::scratch s;
        bytes col;
        std::vector<uint64_t> raw(3, std::bit_cast<uint64_t>(v));
        EXPECT_EQ(codec::codec_name(codec::encode_values(value_type::float64, raw, {}, col, s)),
                  "const")
            << v;
    }
    round_trip(value_type::float64, regular_ts(1), {std::bit_cast<uint64_t>(0.001)});
}

// The benchmark's workload (../shared/bench/gen.py): 10 s samples at sensor resolution.
// Regressions in any codec show up here as a failed bound.
TEST(block_size, benchmark_workload_under_one_byte_per_point) {
    for (int block_points : {360, 2160}) {
        double bytes_total = 0, points_total = 0;
        for (int device = 0; device < 8; ++device) {
            std::vector<int64_t> ts;
            auto values = workload::make(device, 8640, 1'704'067'200, ts);
            for (int m = 0; m < workload::metric_count; ++m) {
                double metric_bytes = 0;
                for (int i = 0; i < 8640; i += block_points) {
                    std::vector<uint64_t> raw;
                    for (int k = i; k < i + block_points; ++k)
                        raw.push_back(bits(values[m][k]));
                    bytes out;
                    block::encode(value_type::float64,
                                  std::span(ts).subspan(static_cast<size_t>(i),
                                                        static_cast<size_t>(block_points)),
                                  raw, {}, out);
                    metric_bytes += static_cast<double>(out.size());
                }
                // vibration_rms (5 % noise at 0.001 resolution) is the one metric above 1.
                EXPECT_LT(metric_bytes / 8640, m == 1 ? 1.5 : 1.0)
                    << workload::names[m] << " in blocks of " << block_points;
                bytes_total += metric_bytes;
                points_total += 8640;
            }
        }
        double per_point = bytes_total / points_total;
        std::printf("workload, blocks of %d points: %.3f bytes/point\n", block_points, per_point);
        EXPECT_LT(per_point, block_points == 360 ? 0.76 : 0.66);
    }
}

// ---- summary --------------------------------------------------------------------------------

TEST(block_summary, matches_a_straightforward_computation) {
    std::mt19937_64 rng(21);
    std::vector<uint64_t> raw;
    std::vector<double> v;
    for (int i = 0; i < 1000; ++i) {
        double x = static_cast<double>(static_cast<int64_t>(rng() % 100000) - 50000) / 100.0;
        v.push_back(x);
        raw.push_back(bits(x));
    }
    auto ts = regular_ts(raw.size(), 1000, 7);
    bytes out;
    auto h = block::encode(value_type::float64, ts, raw, {}, out);
    // Decimal cents: the exact sum, computed in integers, is what Kahan-compensation gives.
    int64_t cents = 0;
    for (double x : v)
        cents += static_cast<int64_t>(std::llround(x * 100));
    auto rh = block::read_header(out);
    ASSERT_TRUE(rh.ok());
    for (const summary& s : {h.stats, rh->stats}) {
        EXPECT_EQ(s.count, 1000u);
        EXPECT_EQ(s.sum, static_cast<double>(cents) / 100.0);
        EXPECT_EQ(s.min, *std::min_element(v.begin(), v.end()));
        EXPECT_EQ(s.max, *std::max_element(v.begin(), v.end()));
        EXPECT_EQ(s.first, v.front());
        EXPECT_EQ(s.last, v.back());
        EXPECT_EQ(s.first_ts, 1000);
        EXPECT_EQ(s.last_ts, 1000 + 999 * 7);
    }
    EXPECT_EQ(rh->first_ts, 1000);
    EXPECT_EQ(rh->last_ts, 1000 + 999 * 7);
    EXPECT_EQ(rh->type, value_type::float64);
    EXPECT_EQ(rh->value_codec, h.value_codec);
}

TEST(block_summary, compensated_sum_and_nan) {
    // 1e16 + 1 + 1 - 1e16: a naive double sum gives 0, the compensated one 2.
    std::vector<uint64_t> raw = {bits(1e16), bits(1.0), bits(1.0), bits(-1e16)};
    bytes tmp;
    auto h = block::encode(value_type::float64, regular_ts(4), raw, {}, tmp);
    EXPECT_EQ(h.stats.sum, 2.0);
    // NaN is skipped by min and max, carried by the sum, kept in first/last.
    bytes out;
    raw = {bits(NAN), bits(3.0), bits(-2.0), bits(NAN)};
    h = block::encode(value_type::float64, regular_ts(4), raw, {}, out);
    auto rh = block::read_header(out);
    ASSERT_TRUE(rh.ok());
    EXPECT_EQ(rh->stats.min, -2.0);
    EXPECT_EQ(rh->stats.max, 3.0);
    EXPECT_TRUE(std::isnan(rh->stats.sum));
    EXPECT_TRUE(std::isnan(rh->stats.first));
    EXPECT_EQ(bits(rh->stats.last), bits(NAN));
}

TEST(block_summary, integers_booleans_strings) {
    std::vector<uint64_t> ints = {static_cast<uint64_t>(-7), 12, 3};
    bytes tmp;
    auto h = block::encode(value_type::int64, regular_ts(3), ints, {}, tmp);
    EXPECT_EQ(h.stats.sum, 8.0);
    EXPECT_EQ(h.stats.min, -7.0);
    EXPECT_EQ(h.stats.max, 12.0);
    EXPECT_EQ(h.stats.first, -7.0);
    EXPECT_EQ(h.stats.last, 3.0);
    bytes out;
    block::encode(value_type::boolean, regular_ts(5), std::vector<uint64_t>{1, 0, 1, 1, 0}, {},
                  out);
    auto rh = block::read_header(out);
    ASSERT_TRUE(rh.ok());
    EXPECT_EQ(rh->stats.count, 5u);
    EXPECT_EQ(rh->stats.sum, 3.0);
    EXPECT_EQ(rh->stats.min, 0.0);
    EXPECT_EQ(rh->stats.max, 1.0);
    EXPECT_EQ(rh->stats.first, 1.0);
    EXPECT_EQ(rh->stats.last, 0.0);
    out.clear();
    std::vector<std::string> s = {"a", "b"};
    block::encode(value_type::string, regular_ts(2, 50, 5), std::vector<uint64_t>{0, 1}, s, out);
    rh = block::read_header(out);
    ASSERT_TRUE(rh.ok());
    EXPECT_EQ(rh->stats.count, 2u);
    EXPECT_EQ(rh->stats.first_ts, 50);
    EXPECT_EQ(rh->stats.last_ts, 55);
    EXPECT_EQ(rh->stats.sum, 0.0);
}

// ---- corrupt input ----------------------------------------------------------------------------

std::vector<bytes> sample_blocks() {
    std::vector<bytes> blocks;
    std::vector<int64_t> ts;
    auto values = workload::make(1, 400, 1'704'067'200, ts);
    std::vector<uint64_t> dec, any, ints, bools, idx;
    std::mt19937_64 rng(1);
    for (size_t i = 0; i < 400; ++i) {
        dec.push_back(bits(values[0][i]));
        any.push_back(rng());
        ints.push_back(static_cast<uint64_t>(1450 + static_cast<int>(rng() % 5)));
        bools.push_back((i / 13) & 1);
        idx.push_back(i % 3);
    }
    std::vector<std::string> strs = {"running", "stopped", std::string(300, 'z')};
    auto add = [&](value_type t, const std::vector<uint64_t>& raw,
                   const std::vector<std::string>& s = {}) {
        blocks.emplace_back();
        block::encode(t, ts, raw, s, blocks.back());
    };
    add(value_type::float64, dec);
    add(value_type::float64, any);
    add(value_type::int64, ints);
    add(value_type::boolean, bools);
    add(value_type::string, idx, strs);
    return blocks;
}

TEST(block_corrupt, every_truncation_is_an_error) {
    for (const bytes& b : sample_blocks()) {
        for (size_t n = 0; n < b.size(); ++n) {
            std::span<const uint8_t> cut(b.data(), n);
            decoded d;
            auto st = block::decode(cut, d.ts, d.raw, &d.strings);
            ASSERT_FALSE(st.ok()) << "truncated to " << n;
            EXPECT_EQ(st.error().code, "corrupt");
            EXPECT_TRUE(d.ts.empty() && d.raw.empty() && d.strings.empty());
            EXPECT_FALSE(block::read_header(cut).ok());
        }
    }
}

TEST(block_corrupt, a_columns_only_block_needs_its_index_entry) {
    bytes columns;
    std::vector<int64_t> ts = {1000, 2000, 3000};
    std::vector<uint64_t> raw = {std::bit_cast<uint64_t>(1.5), std::bit_cast<uint64_t>(2.5),
                                 std::bit_cast<uint64_t>(3.5)};
    auto h = block::encode_columns(value_type::float64, ts, raw, {}, columns);
    decoded d;
    auto st = block::decode(columns, d.ts, d.raw);
    ASSERT_FALSE(st.ok());
    EXPECT_EQ(st.error().message,
              "corrupt block: a version 2 block is read with its part's index entry");
    // An entry that claims a point more than the columns hold. (The time range is the
    // entry's alone: evenly spaced timestamps are stored as no bytes at all. The part's index
    // checksum guards it.)
    block::known wrong = h;
    wrong.count = 4;
    EXPECT_FALSE(block::decode(columns, d.ts, d.raw, nullptr, &wrong).ok());
    EXPECT_TRUE(d.ts.empty() && d.raw.empty());
    ASSERT_TRUE(block::decode(columns, d.ts, d.raw, nullptr, &h).ok());
    EXPECT_EQ(d.ts, ts);
    EXPECT_EQ(d.raw, raw);
    // Every truncation and bit flip is an error, as for version 1.
    for (size_t n = 0; n < columns.size(); ++n)
        EXPECT_FALSE(block::decode(std::span(columns).first(n), d.ts, d.raw, nullptr, &h).ok());
    for (size_t bit = 0; bit < columns.size() * 8; ++bit) {
        bytes flipped = columns;
        flipped[bit / 8] ^= static_cast<uint8_t>(1u << (bit % 8));
        decoded f;
        EXPECT_FALSE(block::decode(flipped, f.ts, f.raw, nullptr, &h).ok()) << "bit " << bit;
    }
}

TEST(block_corrupt, bit_flips_are_caught_by_the_checksum) {
    std::mt19937_64 rng(99);
    for (const bytes& b : sample_blocks()) {
        for (int trial = 0; trial < 500; ++trial) {
            bytes c = b;
            c[rng() % c.size()] ^= static_cast<uint8_t>(1u << (rng() % 8));
            decoded d;
            auto st = block::decode(c, d.ts, d.raw, &d.strings);
            ASSERT_FALSE(st.ok());
            EXPECT_EQ(st.error().code, "corrupt");
        }
    }
}

// Damage behind a recomputed checksum reaches the column decoders: they must refuse or
// decode, never crash, and never return more points than the header's count.
TEST(block_corrupt, damage_with_a_valid_checksum_never_crashes) {
    std::mt19937_64 rng(5);
    for (const bytes& b : sample_blocks()) {
        for (int trial = 0; trial < 3000; ++trial) {
            bytes c = b;
            int flips = 1 + static_cast<int>(rng() % 4);
            for (int f = 0; f < flips; ++f)
                c[rng() % (c.size() - 4)] ^= static_cast<uint8_t>(1u << (rng() % 8));
            uint32_t crc = codec::crc32c(std::span(c).first(c.size() - 4));
            for (int i = 0; i < 4; ++i)
                c[c.size() - 4 + i] = static_cast<uint8_t>(crc >> (8 * i));
            decoded d;
            auto st = block::decode(c, d.ts, d.raw, &d.strings);
            if (st.ok()) {
                auto h = block::read_header(c);
                ASSERT_TRUE(h.ok());
                EXPECT_EQ(d.ts.size(), h->count);
                EXPECT_EQ(d.raw.size(), h->count);
            } else {
                EXPECT_EQ(st.error().code, "corrupt");
                EXPECT_TRUE(d.ts.empty() && d.raw.empty() && d.strings.empty());
            }
        }
    }
}

bytes with_crc(bytes b) {
    uint32_t crc = codec::crc32c(b);
    for (int i = 0; i < 4; ++i)
        b.push_back(static_cast<uint8_t>(crc >> (8 * i)));
    return b;
}

TEST(block_corrupt, messages_say_what_is_wrong) {
    decoded d;
    auto expect = [&](const bytes& b, const std::string& message) {
        auto st = block::decode(b, d.ts, d.raw, &d.strings);
        ASSERT_FALSE(st.ok()) << message;
        EXPECT_EQ(st.error().code, "corrupt");
        EXPECT_EQ(st.error().message, message);
    };
    expect({}, "corrupt block: empty input");
    expect({9, 1, 1, 0}, "corrupt block: unknown format version 9");
    expect({1, 7, 1, 0, 0, 0, 0, 0, 0}, "corrupt block: unknown value type 7");
    // A forged count far beyond the limit: refused before anything is allocated.
    expect(with_crc({1, 2, 1, 5, 0xff, 0xff, 0xff, 0xff, 0x0f, 0, 0, 0, 0}),
           "corrupt block: point count 4294967295 exceeds the limit of 1048576");
    // Column lengths larger than the input.
    expect(with_crc({1, 4, 1, 9, 2, 0x80, 0x08, 0, 0, 0}),
           "corrupt block: column lengths run past the end of the input");
    bytes good;
    block::encode(value_type::int64, regular_ts(3), std::vector<uint64_t>{1, 2, 3}, {}, good);
    good[good.size() - 1] ^= 1;
    expect(good, "corrupt block: checksum mismatch");
    // An unknown codec id behind a valid checksum.
    good[good.size() - 1] ^= 1;
    bytes bad(good.begin(), good.end() - 4);
    bad[3] = 0x1e;
    expect(with_crc(bad), "corrupt block: value codec unknown(30) is not valid for integer values");
}

// ---- golden bytes ---------------------------------------------------------------------------

// tests/data/block_v1.bin: eight blocks written by format version 1. If decoding them changes,
// the on-disk format changed: bump the version and keep a reader for version 1.
struct golden_input {
    value_type type;
    std::vector<int64_t> ts;
    std::vector<uint64_t> raw;
    std::vector<std::string> strings;
};

std::vector<golden_input> golden_inputs() {
    std::vector<golden_input> g;
    std::vector<int64_t> ts = regular_ts(40);
    ts[20] += 1234;  // one irregular timestamp
    golden_input f{value_type::float64, ts, {}, {}};
    for (int i = 0; i < 40; ++i)
        f.raw.push_back(bits(workload::parsed("%.2f", 54.21 + 0.01 * (i % 7) - 0.03 * (i % 3))));
    g.push_back(f);
    golden_input x = f;  // computed values with binary noise: Gorilla
    for (int i = 0; i < 40; ++i)
        x.raw[static_cast<size_t>(i)] = bits(1.0 / 3.0 + (i / 8) * 0.1);
    g.push_back(x);
    golden_input s{value_type::float64, regular_ts(6), {}, {}};
    for (uint64_t v : special_floats()) {
        if (s.raw.size() < 6) s.raw.push_back(v);
    }
    s.raw[5] = 0xfff8dead00beef01ull;
    g.push_back(s);
    golden_input n{value_type::int64, regular_ts(30, -5, 1000), {}, {}};
    for (int i = 0; i < 30; ++i)
        n.raw.push_back(static_cast<uint64_t>(1498 + (i * 7) % 5));
    g.push_back(n);
    golden_input b{value_type::boolean, regular_ts(20), {}, {}};
    for (int i = 0; i < 20; ++i)
        b.raw.push_back(i % 6 < 2);
    g.push_back(b);
    golden_input w{value_type::float64, {}, {}, {}};  // a sensor: smoothed-level residuals
    auto sensor = workload::make(0, 300, 1'704'067'200, w.ts);
    for (double v : sensor[0])
        w.raw.push_back(bits(v));
    g.push_back(w);
    golden_input r{value_type::boolean, regular_ts(300), {}, {}};  // long runs
    for (int i = 0; i < 300; ++i)
        r.raw.push_back(i >= 100 && i < 250);
    g.push_back(r);
    golden_input t{value_type::string, regular_ts(8), {}, {"ok", "", "fault: E42", "ok"}};
    for (int i = 0; i < 8; ++i)
        t.raw.push_back(static_cast<uint64_t>(i % 4));
    g.push_back(t);
    return g;
}

TEST(block_golden, version_1_bytes_decode) {
    std::string path = std::string(CLISONIX_SOURCE_DIR) + "/tests/data/block_v1.bin";
    if (std::getenv("CLISONIX_WRITE_GOLDEN")) {
        bytes all;
        for (auto& g : golden_inputs())
            block::encode(g.type, g.ts, g.raw, g.strings, all);
        std::ofstream(path, std::ios::binary)
            .write(reinterpret_cast<const char*>(all.data()),
                   static_cast<std::streamsize>(all.size()));
    }
    std::ifstream f(path, std::ios::binary);
    ASSERT_TRUE(f) << path;
    bytes all((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    std::span<const uint8_t> rest(all);
    for (auto& g : golden_inputs()) {
        size_t size = 0;
        auto h = block::read_header(rest, &size);
        ASSERT_TRUE(h.ok()) << h.error().message;
        EXPECT_EQ(h->type, g.type);
        EXPECT_EQ(h->count, g.ts.size());
        decoded d;
        ASSERT_TRUE(block::decode(rest.first(size), d.ts, d.raw, &d.strings).ok());
        EXPECT_EQ(d.ts, g.ts);
        if (g.type == value_type::string) {
            ASSERT_EQ(d.raw.size(), g.raw.size());
            for (size_t i = 0; i < g.raw.size(); ++i)
                EXPECT_EQ(d.strings[d.raw[i]], g.strings[g.raw[i]]);
        } else {
            EXPECT_EQ(d.raw, g.raw);
        }
        rest = rest.subspan(size);
    }
    EXPECT_TRUE(rest.empty());
}

}  // namespace
}  // namespace clisonix::storage
