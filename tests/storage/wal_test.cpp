// The write-ahead log: record round trip, and recovery from torn or damaged segments.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <filesystem>
#include <functional>
#include <random>

#include "storage/storage.h"
#include "storage/wal.h"
#include "support/test_support.h"

namespace clisonix::storage {
namespace {

namespace fs = std::filesystem;

constexpr int64_t t0 = 1710028800LL * 1'000'000'000;

TEST(storage_wal, records_round_trip_every_value_type) {
    write_batch b;
    auto f = *b.series("m f", value_type::float64);
    auto i = *b.series("m i", value_type::int64);
    auto o = *b.series("m o", value_type::boolean);
    auto s = *b.series("m s", value_type::string);
    b.add(f, t0 + 5, -1.25);
    b.add_int(i, t0 - 3, INT64_MIN);
    b.add(f, t0 + 1, 2.5);
    b.add_bool(o, INT64_MAX, true);
    b.add_string(s, t0, "hello, world");
    b.add_string(s, t0, "");
    b.add_int(i, INT64_MIN, INT64_MAX);
    wal::grouping g;
    g.build(b);
    std::vector<series_id> ids = {7, 9, 11, 13};
    std::vector<value_type> types = {value_type::float64, value_type::int64, value_type::boolean,
                                     value_type::string};
    std::vector<uint8_t> rec;
    wal::encode(b, ids, types, g, rec);
    wal::decoded d;
    size_t seen = 0;
    auto res = wal::scan(rec, [&](std::span<const uint8_t> payload) {
        ++seen;
        return wal::decode(payload, d);
    });
    EXPECT_EQ(seen, 1u);
    EXPECT_EQ(res.records, 1u);
    EXPECT_EQ(res.valid_bytes, rec.size());
    EXPECT_FALSE(res.damaged);
    ASSERT_EQ(d.groups.size(), 4u);
    EXPECT_EQ(d.groups[0].id, 7u);
    ASSERT_EQ(d.groups[0].count, 2u);
    EXPECT_EQ(d.points[d.groups[0].first].ts, t0 + 5);
    EXPECT_EQ(std::bit_cast<double>(d.points[d.groups[0].first].raw), -1.25);
    EXPECT_EQ(d.points[d.groups[0].first + 1].ts, t0 + 1);
    EXPECT_EQ(d.groups[1].id, 9u);
    EXPECT_EQ(d.groups[1].type, value_type::int64);
    EXPECT_EQ(d.points[d.groups[1].first].ts, t0 - 3);
    EXPECT_EQ(static_cast<int64_t>(d.points[d.groups[1].first].raw), INT64_MIN);
    EXPECT_EQ(d.points[d.groups[1].first + 1].ts, INT64_MIN);
    EXPECT_EQ(static_cast<int64_t>(d.points[d.groups[1].first + 1].raw), INT64_MAX);
    EXPECT_EQ(d.points[d.groups[2].first].ts, INT64_MAX);
    EXPECT_EQ(d.points[d.groups[2].first].raw, 1u);
    ASSERT_EQ(d.groups[3].count, 2u);
    EXPECT_EQ(d.strings[d.points[d.groups[3].first].raw], "hello, world");
    EXPECT_EQ(d.strings[d.points[d.groups[3].first + 1].raw], "");

    // Every cut of the payload, and every single-byte change, is rejected or decodes to
    // something well-formed; none crashes.
    std::span<const uint8_t> payload(rec.data() + wal::record_header,
                                     rec.size() - wal::record_header);
    for (size_t n = 0; n < payload.size(); ++n)
        EXPECT_FALSE(wal::decode(payload.first(n), d)) << n;
    auto res2 = wal::scan(std::span<const uint8_t>(rec).first(rec.size() - 1),
                          [](std::span<const uint8_t>) { return true; });
    EXPECT_EQ(res2.records, 0u);
    EXPECT_EQ(res2.valid_bytes, 0u);
    EXPECT_TRUE(res2.damaged);
}

// Sensor data (decimal values at a regular interval) costs a few bytes per point in the log,
// and values that are no short decimal come back bit for bit.
TEST(storage_wal, records_are_compact_for_decimal_series_and_exact_for_any_double) {
    write_batch b;
    std::vector<uint32_t> series;
    for (int s = 0; s < 100; ++s)
        series.push_back(*b.series("telemetry,device=d" + std::to_string(s) + " temperature",
                                   value_type::float64));
    for (int i = 0; i < 50; ++i)
        for (int s = 0; s < 100; ++s)
            b.add(series[s], t0 + i * 10'000'000'000LL, (5421 + (i * 7 + s * 13) % 40) / 100.0);
    auto odd = *b.series("m odd", value_type::float64);
    const double odd_values[] = {0.1 + 0.2, -0.0, std::nan(""), 1e300, -4.9e-324, 21.5};
    for (int i = 0; i < 6; ++i)
        b.add(odd, t0 + i, odd_values[i]);
    // Decimals whose exponent grows along the group: 0, then 1, then 3 digits.
    auto growing = *b.series("m growing", value_type::float64);
    const double growing_values[] = {21, 21.5, -3, 21.125, 1e9};
    for (int i = 0; i < 5; ++i)
        b.add(growing, t0 + i, growing_values[i]);
    wal::grouping g;
    g.build(b);
    std::vector<series_id> ids(b.series_count());
    std::vector<value_type> types(b.series_count(), value_type::float64);
    for (size_t i = 0; i < ids.size(); ++i)
        ids[i] = static_cast<series_id>(i * 3);
    std::vector<uint8_t> rec;
    wal::encode(b, ids, types, g, rec);
    // 5,011 points: a timestamp byte and a value byte or two each (raw values took 8).
    EXPECT_LT(rec.size(), 3 * b.point_count());
    wal::decoded d;
    ASSERT_TRUE(wal::decode(std::span<const uint8_t>(rec).subspan(wal::record_header), d));
    ASSERT_EQ(d.groups.size(), 102u);
    for (int s = 0; s < 100; ++s) {
        const auto& grp = d.groups[s];
        EXPECT_EQ(grp.id, static_cast<series_id>(s * 3));
        ASSERT_EQ(grp.count, 50u);
        for (int i = 0; i < 50; ++i) {
            EXPECT_EQ(d.points[grp.first + i].ts, t0 + i * 10'000'000'000LL);
            EXPECT_EQ(std::bit_cast<double>(d.points[grp.first + i].raw),
                      (5421 + (i * 7 + s * 13) % 40) / 100.0);
        }
    }
    const auto& grp = d.groups[100];
    ASSERT_EQ(grp.count, 6u);
    for (int i = 0; i < 6; ++i)
        EXPECT_EQ(d.points[grp.first + i].raw, std::bit_cast<uint64_t>(odd_values[i])) << i;
    const auto& grown = d.groups[101];
    ASSERT_EQ(grown.count, 5u);
    for (int i = 0; i < 5; ++i)
        EXPECT_EQ(std::bit_cast<double>(d.points[grown.first + i].raw), growing_values[i]) << i;
}

// The fuzzer's seed segment was written from docs/format/wal.md (version 1: raw values) by a
// separate encoder; it pins the format: the log of an older version is still replayed.
TEST(storage_wal, the_documented_format_decodes) {
    auto bytes =
        testing::read_file(CLISONIX_SOURCE_DIR "/fuzz/corpus/wal_replay_fuzz/segment_two_records");
    std::vector<wal::decoded> recs;
    auto res = wal::scan(
        std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()),
        [&](std::span<const uint8_t> payload) {
            recs.emplace_back();
            return wal::decode(payload, recs.back());
        });
    ASSERT_EQ(res.records, 2u);
    EXPECT_FALSE(res.damaged);
    const auto& a = recs[0];
    ASSERT_EQ(a.groups.size(), 2u);
    EXPECT_EQ(a.groups[0].id, 0u);
    EXPECT_EQ(a.groups[0].type, value_type::float64);
    ASSERT_EQ(a.groups[0].count, 2u);
    EXPECT_EQ(a.points[0].ts, t0);
    EXPECT_EQ(std::bit_cast<double>(a.points[0].raw), 21.0);
    EXPECT_EQ(a.points[1].ts, t0 + 10'000'000'000);
    EXPECT_EQ(std::bit_cast<double>(a.points[1].raw), 21.5);
    EXPECT_EQ(a.groups[1].type, value_type::int64);
    EXPECT_EQ(a.points[2].ts, t0 - 5);
    EXPECT_EQ(a.points[2].raw, 7u);
    const auto& b = recs[1];
    ASSERT_EQ(b.groups.size(), 2u);
    EXPECT_EQ(b.groups[0].type, value_type::boolean);
    EXPECT_EQ(b.points[0].raw, 1u);
    EXPECT_EQ(b.points[1].ts, t0 + 1);
    EXPECT_EQ(b.points[1].raw, 0u);
    EXPECT_EQ(b.groups[1].id, 3u);
    EXPECT_EQ(b.strings[b.points[2].raw], "idle");
    EXPECT_EQ(b.strings[b.points[3].raw], "");
}

TEST(storage_wal, segment_names_parse_back) {
    EXPECT_EQ(wal::segment_name(42), "00000000000000000042.log");
    EXPECT_EQ(wal::parse_segment_name("00000000000000000042.log"), 42);
    EXPECT_EQ(wal::parse_segment_name("0000000000000000042.log"), -1);
    EXPECT_EQ(wal::parse_segment_name("0000000000000000004x.log"), -1);
}

// Writes `n` batches of 10 points (batch k: timestamps t0+10k.., value k), one WAL record
// each, and copies the engine's folder while it is open: the copy is what a crash leaves.
void write_and_snapshot(const std::string& dir, const std::string& snapshot, int n, int first = 0) {
    options o;
    o.dir = dir;
    auto e = engine::open(o);
    ASSERT_TRUE(e.ok());
    for (int k = first; k < first + n; ++k) {
        write_batch b;
        auto s = *b.series("m f", value_type::float64);
        for (int j = 0; j < 10; ++j)
            b.add(s, t0 + k * 10 + j, k);
        ASSERT_TRUE((*e)->write(b).ok());
    }
    fs::copy(dir, snapshot, fs::copy_options::recursive);
}

std::vector<std::string> segments(const std::string& dir) {
    std::vector<std::string> out;
    for (const auto& f : fs::directory_iterator(dir + "/wal"))
        out.push_back(f.path().string());
    std::sort(out.begin(), out.end());
    return out;
}

std::vector<size_t> record_ends(const std::string& path) {
    auto bytes = testing::read_file(path);
    std::vector<size_t> ends;
    size_t pos = 0;
    wal::scan(
        std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()),
        [&](std::span<const uint8_t> p) {
            pos += wal::record_header + p.size();
            ends.push_back(pos);
            return true;
        });
    return ends;
}

// The values of series "m f" after opening `dir`, one per batch that survived;
// `while_open` runs before the engine closes (and flushes the WAL away).
std::vector<int> surviving_batches(const std::string& dir,
                                   const std::function<void()>& while_open = {}) {
    options o;
    o.dir = dir;
    auto e = engine::open(o);
    EXPECT_TRUE(e.ok()) << (e.ok() ? "" : e.error().message);
    if (!e.ok()) return {};
    if (while_open) while_open();
    std::vector<sample> out;
    EXPECT_TRUE((*e)->scan(0, INT64_MIN, INT64_MAX, out).ok());
    std::vector<int> batches;
    for (size_t i = 0; i < out.size(); i += 10) {
        int k = static_cast<int>(std::bit_cast<double>(out[i].raw));
        for (size_t j = i; j < i + 10; ++j) {
            EXPECT_LT(j, out.size());
            if (j >= out.size()) break;
            EXPECT_EQ(out[j].ts, t0 + k * 10 + static_cast<int64_t>(j - i));
        }
        batches.push_back(k);
    }
    return batches;
}

std::vector<int> range(int from, int to) {
    std::vector<int> v;
    for (int i = from; i < to; ++i)
        v.push_back(i);
    return v;
}

TEST(storage_wal, a_torn_tail_is_truncated_and_every_complete_record_kept) {
    testing::temp_dir d;
    std::string snap = d.str() + "/snap";
    write_and_snapshot(d.str() + "/live", snap, 12);
    auto segs = segments(snap);
    ASSERT_EQ(segs.size(), 1u);
    auto ends = record_ends(segs[0]);
    ASSERT_EQ(ends.size(), 12u);
    std::mt19937 rng(7);
    std::vector<size_t> cuts = {
        0, 1, 7, 8, ends[0] - 1, ends[0], ends[0] + 3, ends[10] + 1, ends[11] - 1};
    for (int i = 0; i < 12; ++i)
        cuts.push_back(std::uniform_int_distribution<size_t>(0, ends[11])(rng));
    for (size_t cut : cuts) {
        SCOPED_TRACE("cut at " + std::to_string(cut));
        std::string dir = d.str() + "/cut" + std::to_string(cut);
        if (fs::exists(dir)) continue;
        fs::copy(snap, dir, fs::copy_options::recursive);
        std::string seg = segments(dir)[0];
        fs::resize_file(seg, cut);
        int complete =
            static_cast<int>(std::upper_bound(ends.begin(), ends.end(), cut) - ends.begin());
        // The torn bytes are gone; a segment left with nothing in it is removed.
        auto check_file = [&] {
            if (complete == 0)
                EXPECT_FALSE(fs::exists(seg));
            else
                EXPECT_EQ(fs::file_size(seg), ends[complete - 1]);
        };
        EXPECT_EQ(surviving_batches(dir, check_file), range(0, complete));
        // And it opens again, the same.
        EXPECT_EQ(surviving_batches(dir), range(0, complete));
    }
}

TEST(storage_wal, a_damaged_record_ends_the_last_segment_there) {
    testing::temp_dir d;
    std::string snap = d.str() + "/snap";
    write_and_snapshot(d.str() + "/live", snap, 6);
    auto ends = record_ends(segments(snap)[0]);
    ASSERT_EQ(ends.size(), 6u);
    std::mt19937 rng(11);
    for (int trial = 0; trial < 10; ++trial) {
        std::string dir = d.str() + "/flip" + std::to_string(trial);
        fs::copy(snap, dir, fs::copy_options::recursive);
        std::string seg = segments(dir)[0];
        auto bytes = testing::read_file(seg);
        size_t at = std::uniform_int_distribution<size_t>(0, bytes.size() - 1)(rng);
        bytes[at] = static_cast<char>(bytes[at] ^ (1 + trial));
        testing::write_file(seg, bytes);
        int damaged =
            static_cast<int>(std::upper_bound(ends.begin(), ends.end(), at) - ends.begin());
        SCOPED_TRACE("flipped byte " + std::to_string(at) + " in record " +
                     std::to_string(damaged));
        EXPECT_EQ(surviving_batches(dir), range(0, damaged));
    }
}

TEST(storage_wal, a_damaged_older_segment_loses_only_its_rest) {
    testing::temp_dir d;
    std::string first = d.str() + "/first", second = d.str() + "/second";
    write_and_snapshot(d.str() + "/live", first, 4);  // segment 1: batches 0..3
    write_and_snapshot(first, second, 3, 4);          // segment 2: batches 4..6
    auto segs = segments(second);
    ASSERT_EQ(segs.size(), 2u);
    auto ends = record_ends(segs[0]);
    ASSERT_EQ(ends.size(), 4u);
    auto bytes = testing::read_file(segs[0]);
    bytes[ends[1] + 10] ^= 0x40;  // inside record 2 of segment 1
    testing::write_file(segs[0], bytes);
    // An older segment is left as it is (only the last one is truncated).
    EXPECT_EQ(surviving_batches(second, [&] { EXPECT_EQ(fs::file_size(segs[0]), bytes.size()); }),
              (std::vector<int>{0, 1, 4, 5, 6}));
}

}  // namespace
}  // namespace clisonix::storage
