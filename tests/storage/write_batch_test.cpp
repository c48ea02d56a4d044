// write_batch: series lookup, and a reused batch that allocates nothing per new series.
#include <gtest/gtest.h>

#include <cstdio>
#include <string>

#include "../../bench/allocation_counter.h"
#include "storage/storage.h"

namespace clisonix::storage {
namespace {

constexpr int64_t t0 = 1710028800LL * 1'000'000'000;

// Keys longer than a short string's inline buffer, as real series keys are.
std::string_view key_of(char (&buf)[96], int round, int series) {
    int n = std::snprintf(buf, sizeof buf,
                          "telemetry,device=machine-%05d,round=r%03d vibration_rms", series, round);
    return {buf, static_cast<size_t>(n)};
}

void fill(write_batch& b, int round, int series) {
    char buf[96];
    for (int s = 0; s < series; ++s) {
        auto i = b.series(key_of(buf, round, s), value_type::float64);
        ASSERT_TRUE(i.ok());
        ASSERT_EQ(*i, static_cast<uint32_t>(s));
        b.add(*i, t0 + s, s * 0.5);
    }
}

TEST(storage_write_batch, a_reused_batch_allocates_nothing_per_new_series) {
    write_batch b;
    fill(b, 0, 3000);  // grows the key bytes, the index and the points once
    char buf[96];
    EXPECT_EQ(b.series_entries()[0].key, key_of(buf, 0, 0));  // kept through every growth
    b.clear();
    const uint64_t before = bench::allocations();
    fill(b, 1, 3000);  // every series is new to this batch
    EXPECT_EQ(bench::allocations() - before, 0u);
    ASSERT_EQ(b.series_count(), 3000u);
    EXPECT_EQ(b.series_entries()[1234].key, key_of(buf, 1, 1234));
    EXPECT_EQ(*b.series(key_of(buf, 1, 2999), value_type::float64), 2999u);
    EXPECT_EQ(b.series_count(), 3000u);
}

TEST(storage_write_batch, copies_and_moves_keep_their_keys) {
    write_batch b;
    ASSERT_EQ(*b.series("m f", value_type::float64), 0u);
    ASSERT_EQ(*b.series("m,device=a-rather-long-device-name g", value_type::int64), 1u);
    write_batch copy = b;
    write_batch moved = std::move(b);
    b = write_batch{};
    ASSERT_EQ(*b.series("other f", value_type::float64), 0u);
    for (const write_batch* x : {&copy, &moved}) {
        ASSERT_EQ(x->series_count(), 2u);
        EXPECT_EQ(x->series_entries()[0].key, "m f");
        EXPECT_EQ(x->series_entries()[1].key, "m,device=a-rather-long-device-name g");
    }
    EXPECT_EQ(*copy.series("m f", value_type::float64), 0u);
    auto conflict = copy.series("m f", value_type::int64);
    ASSERT_FALSE(conflict.ok());
    EXPECT_EQ(conflict.error().message,
              "field type conflict: m f is float earlier in the batch, integer here");
}

}  // namespace
}  // namespace clisonix::storage
