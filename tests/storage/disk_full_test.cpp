// The engine on a file system that fills up (a small tmpfs): a failed WAL, series-log or
// part write leaves nothing half-written behind, nothing acknowledged is lost, reads go on,
// and writes resume by themselves once space is back.
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <chrono>
#include <filesystem>
#include <thread>

#include "observe/observe.h"
#include "storage/storage.h"
#include "storage/wal.h"
#include "support/test_support.h"

namespace clisonix::storage {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

constexpr int64_t sec = 1'000'000'000;
constexpr int64_t t0 = 1710028800LL * sec;  // 2024-03-10T00:00:00Z
constexpr uint64_t mib = 1 << 20;

#define MOUNT_OR_SKIP(fs_)                                     \
    if (!(fs_).mounted()) GTEST_SKIP() << (fs_).skip_reason(); \
    static_assert(true)

options opts_on(const testing::tmpfs_dir& fs_, uint64_t min_free) {
    options o;
    o.dir = fs_.path().string() + "/tsdb";
    o.min_free_bytes = min_free;
    return o;
}

std::unique_ptr<engine> open_engine(const options& o) {
    auto e = engine::open(o);
    EXPECT_TRUE(e.ok()) << (e.ok() ? "" : e.error().message);
    return e.ok() ? std::move(*e) : nullptr;
}

// `n` points of series `key`, value i + first / 4 at t0 + (first + i) s.
write_batch batch_of(const std::string& key, int first, int n) {
    write_batch b;
    auto s = b.series(key, value_type::float64);
    for (int i = first; i < first + n; ++i)
        b.add(*s, t0 + i * sec, i / 4.0);
    return b;
}

// Checks that `key` holds exactly the points batch_of(key, 0, n) wrote.
void expect_points(const engine& e, const std::string& key, int n) {
    auto info = e.series_by_key(key);
    ASSERT_TRUE(info.has_value()) << key;
    std::vector<sample> out;
    ASSERT_TRUE(e.scan(info->id, INT64_MIN, INT64_MAX, out).ok());
    ASSERT_EQ(out.size(), static_cast<size_t>(n)) << key;
    for (int i = 0; i < n; ++i) {
        ASSERT_EQ(out[i].ts, t0 + i * sec) << key << " point " << i;
        ASSERT_EQ(std::bit_cast<double>(out[i].raw), i / 4.0) << key << " point " << i;
    }
}

// Waits until the engine takes writes again (its space check runs every 200 ms).
bool wait_writable(const engine& e, std::chrono::milliseconds limit = 5s) {
    auto until = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < until) {
        if (e.writable().ok()) return true;
        std::this_thread::sleep_for(50ms);
    }
    return false;
}

std::vector<fs::path> files_in(const fs::path& dir) {
    std::vector<fs::path> out;
    for (const auto& f : fs::directory_iterator(dir))
        out.push_back(f.path());
    std::sort(out.begin(), out.end());
    return out;
}

TEST(storage_disk_full, a_wal_append_cut_short_is_cut_off_and_writes_resume_when_space_is_back) {
    testing::tmpfs_dir tmp(4 * mib);
    MOUNT_OR_SKIP(tmp);
    auto o = opts_on(tmp, 0);
    auto e = open_engine(o);
    ASSERT_TRUE(e);
    const std::string key = "m,device=pump v";
    ASSERT_TRUE(e->write(batch_of(key, 0, 100)).ok());
    auto segments = files_in(o.dir + "/wal");
    ASSERT_EQ(segments.size(), 1u);
    const auto good_size = fs::file_size(segments[0]);

    // The record (~90 KB) starts in the segment's last page and runs out of space after it.
    tmp.fill(tmp.path() / "filler");
    auto refused = e->write(batch_of(key, 100, 10'000));
    ASSERT_FALSE(refused.ok());
    EXPECT_EQ(refused.error().code, "storage_full");
    EXPECT_NE(refused.error().message.find("the file system of " + o.dir + " is full: "),
              std::string::npos)
        << refused.error().message;
    EXPECT_NE(refused.error().message.find(" bytes free (write "), std::string::npos)
        << refused.error().message;
    // Nothing of the refused record is left in the log for the next append to land behind.
    EXPECT_EQ(fs::file_size(segments[0]), good_size);
    auto bytes = testing::read_file(segments[0]);
    auto scanned = wal::scan({reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()},
                             [](auto) { return true; });
    EXPECT_FALSE(scanned.damaged);
    EXPECT_EQ(scanned.records, 1u);

    // Refused at once while full, even a write that would fit; reads go on.
    EXPECT_EQ(e->writable().error().code, "storage_full");
    auto small = e->write(batch_of(key, 100, 1));
    ASSERT_FALSE(small.ok());
    EXPECT_EQ(small.error().code, "storage_full");
    expect_points(*e, key, 100);

    fs::remove(tmp.path() / "filler");
    ASSERT_TRUE(wait_writable(*e)) << e->writable().error().message;
    ASSERT_TRUE(e->write(batch_of(key, 100, 10'000)).ok());
    expect_points(*e, key, 10'100);

    // A restart replays or reads back everything acknowledged, once.
    e.reset();
    e = open_engine(o);
    ASSERT_TRUE(e);
    expect_points(*e, key, 10'100);
}

TEST(storage_disk_full, new_series_on_a_full_disk_leave_no_half_record_in_the_series_log) {
    testing::tmpfs_dir tmp(4 * mib);
    MOUNT_OR_SKIP(tmp);
    auto o = opts_on(tmp, 0);
    auto e = open_engine(o);
    ASSERT_TRUE(e);
    ASSERT_TRUE(e->write(batch_of("m,device=first v", 0, 10)).ok());
    const auto log_size = fs::file_size(o.dir + "/series.log");

    // 400 series with 100-byte keys that do not compress (series.log front-codes and
    // compresses the keys one write creates): more than the log's last page has room for.
    auto key_of = [](int s) {
        std::string k = "m,device=";
        uint64_t x = 0x9E3779B97F4A7C15ull * static_cast<uint64_t>(s + 1);
        for (int i = 0; i < 80; ++i) {
            x ^= x >> 29;
            x *= 0xBF58476D1CE4E5B9ull;
            k += "0123456789abcdef"[x >> 60];
        }
        return k + std::to_string(s) + " v";
    };
    auto many = [&] {
        write_batch b;
        for (int s = 0; s < 400; ++s) {
            auto id = b.series(key_of(s), value_type::float64);
            for (int i = 0; i < 10; ++i)
                b.add(*id, t0 + i * sec, i / 4.0);
        }
        return b;
    };
    tmp.fill(tmp.path() / "filler");
    auto refused = e->write(many());
    ASSERT_FALSE(refused.ok());
    EXPECT_EQ(refused.error().code, "storage_full");
    EXPECT_EQ(fs::file_size(o.dir + "/series.log"), log_size);
    EXPECT_FALSE(e->series_by_key(key_of(0)).has_value());

    fs::remove(tmp.path() / "filler");
    ASSERT_TRUE(wait_writable(*e)) << e->writable().error().message;
    ASSERT_TRUE(e->write(many()).ok());
    e.reset();
    e = open_engine(o);
    ASSERT_TRUE(e);
    expect_points(*e, "m,device=first v", 10);
    for (int s = 0; s < 400; ++s)
        expect_points(*e, key_of(s), 10);
}

TEST(storage_disk_full, a_flush_on_a_full_disk_keeps_the_head_and_succeeds_once_space_is_back) {
    testing::tmpfs_dir tmp(4 * mib);
    MOUNT_OR_SKIP(tmp);
    auto o = opts_on(tmp, 0);
    auto e = open_engine(o);
    ASSERT_TRUE(e);
    const std::string key = "m,device=pump v";
    ASSERT_TRUE(e->write(batch_of(key, 0, 5000)).ok());

    tmp.fill(tmp.path() / "filler");
    auto flushed = e->flush();
    ASSERT_FALSE(flushed.ok());
    EXPECT_EQ(flushed.error().code, "storage_full") << flushed.error().message;
    // The points stay in memory and readable; no temp file holds on to space; writes stop,
    // or the head would only grow.
    expect_points(*e, key, 5000);
    EXPECT_EQ(e->statistics().head_points, 5000u);
    for (const auto& f : fs::recursive_directory_iterator(o.dir + "/parts"))
        EXPECT_FALSE(f.path().string().ends_with(".tmp")) << f.path();
    EXPECT_EQ(e->writable().error().code, "storage_full");

    fs::remove(tmp.path() / "filler");
    ASSERT_TRUE(wait_writable(*e)) << e->writable().error().message;
    ASSERT_TRUE(e->flush().ok());
    EXPECT_EQ(e->statistics().head_points, 0u);
    expect_points(*e, key, 5000);
    e.reset();
    e = open_engine(o);
    ASSERT_TRUE(e);
    expect_points(*e, key, 5000);
    EXPECT_EQ(e->statistics().points, 5000u);
}

TEST(storage_disk_full, below_the_free_space_reserve_writes_are_refused_until_it_is_back) {
    testing::tmpfs_dir tmp(8 * mib);
    MOUNT_OR_SKIP(tmp);
    auto o = opts_on(tmp, 4 * mib);
    auto e = open_engine(o);
    ASSERT_TRUE(e);
    const std::string key = "m,device=pump v";
    ASSERT_TRUE(e->write(batch_of(key, 0, 10)).ok());

    tmp.fill(tmp.path() / "filler", 3 * mib);
    auto until = std::chrono::steady_clock::now() + 3s;
    while (e->writable().ok() && std::chrono::steady_clock::now() < until)
        std::this_thread::sleep_for(20ms);
    auto st = e->writable();
    ASSERT_FALSE(st.ok());
    EXPECT_EQ(st.error().code, "storage_full");
    EXPECT_NE(st.error().message.find("less than the reserve of 4194304 bytes (storage.min_free)"),
              std::string::npos)
        << st.error().message;
    auto& reg = metrics::global();
    auto full = reg.get_gauge("clisonix_storage_disk_full", "");
    auto refused_total =
        reg.get_counter("clisonix_storage_writes_refused_total", "", {"reason"}, {"disk_full"});
    const double refused_before = refused_total.value();
    EXPECT_EQ(full.value(), 1);
    auto refused = e->write(batch_of(key, 10, 10));
    ASSERT_FALSE(refused.ok());
    EXPECT_EQ(refused.error().code, "storage_full");
    EXPECT_EQ(refused_total.value(), refused_before + 1);
    expect_points(*e, key, 10);

    fs::remove(tmp.path() / "filler");
    ASSERT_TRUE(wait_writable(*e)) << e->writable().error().message;
    EXPECT_EQ(full.value(), 0);
    ASSERT_TRUE(e->write(batch_of(key, 10, 10)).ok());
    expect_points(*e, key, 20);
}

}  // namespace
}  // namespace clisonix::storage
