// The payload of the telemetry log and the shard of a series.
#include <gtest/gtest.h>

#include <bit>

#include "cluster/cluster.h"

namespace clisonix::cluster {
namespace {

std::vector<uint32_t> shards_of(const storage::write_batch& b, uint32_t shards) {
    std::vector<uint32_t> out;
    for (const auto& s : b.series_entries())
        out.push_back(shard_of(s.key, shards));
    return out;
}

TEST(cluster_codec_test, every_value_type_round_trips_bit_exact_in_batch_order) {
    storage::write_batch in;
    auto f = *in.series("m,device=a v", storage::value_type::float64);
    auto i = *in.series("m,device=a n", storage::value_type::int64);
    auto b = *in.series("m,device=a ok", storage::value_type::boolean);
    auto s = *in.series("m,device=a s", storage::value_type::string);
    in.add(f, 2'000, 0.1);
    in.add(f, 1'000, -0.0);
    in.add_int(i, 1'000, -42);
    in.add_bool(b, 1'000, true);
    in.add_string(s, 1'000, "a b,c=\"d\"");
    in.add(f, 2'000, 1e-300);  // the same timestamp again: the later value wins on apply

    std::string payload;
    std::vector<uint32_t> one_shard(in.series_count(), 0);
    encode_shard(in, one_shard, 0, payload);
    storage::write_batch out;
    ASSERT_TRUE(decode(payload, out));
    ASSERT_EQ(out.series_count(), 4u);
    ASSERT_EQ(out.point_count(), 6u);
    EXPECT_EQ(out.series_entries()[0].key, "m,device=a v");
    EXPECT_EQ(out.series_entries()[3].type, storage::value_type::string);
    const auto& p = out.points();
    EXPECT_EQ(p[0].ts, 2'000);
    EXPECT_EQ(p[0].raw, std::bit_cast<uint64_t>(0.1));
    EXPECT_EQ(p[1].raw, std::bit_cast<uint64_t>(-0.0));
    EXPECT_EQ(static_cast<int64_t>(p[2].raw), -42);
    EXPECT_EQ(p[3].raw, 1u);
    EXPECT_EQ(out.strings()[p[4].raw], "a b,c=\"d\"");
    EXPECT_EQ(p[5].raw, std::bit_cast<uint64_t>(1e-300));
}

TEST(cluster_codec_test, a_batch_splits_by_device_and_every_point_lands_in_one_shard) {
    storage::write_batch in;
    for (int d = 0; d < 50; ++d) {
        auto dev = "device" + std::to_string(d);
        auto t = *in.series("telemetry,device=" + dev + " temp", storage::value_type::float64);
        auto p = *in.series("telemetry,device=" + dev + " pressure", storage::value_type::float64);
        in.add(t, d, d);
        in.add(p, d, -d);
    }
    auto shards = shards_of(in, 16);
    // The metrics of one device share its shard.
    for (size_t i = 0; i < shards.size(); i += 2)
        EXPECT_EQ(shards[i], shards[i + 1]);
    size_t points = 0, used = 0;
    std::string payload;
    for (uint32_t shard = 0; shard < 16; ++shard) {
        encode_shard(in, shards, shard, payload);
        if (payload.empty()) continue;
        ++used;
        storage::write_batch part;
        ASSERT_TRUE(decode(payload, part));
        points += part.point_count();
    }
    EXPECT_EQ(points, 100u);
    EXPECT_GT(used, 8u);  // 50 devices spread over most of the 16 shards
}

TEST(cluster_codec_test, the_shard_of_a_device_is_stable_and_ignores_the_metric) {
    // Fixed values: a change of the hash moves every device to another shard, which a
    // running cluster must never see between versions.
    EXPECT_EQ(shard_of("telemetry,device=press-1 pressure", 16),
              shard_of("vibration,axis=x,device=press-1 rms", 16));
    EXPECT_EQ(shard_of("telemetry,device=press-1 pressure", 1), 0u);
    EXPECT_EQ(shard_of("telemetry,device=press-1 pressure", 16), 12u);
    EXPECT_EQ(shard_of("cpu,host=a usage", 16), 2u);
}

TEST(cluster_codec_test, messages_merge_in_order_and_a_type_clash_between_them_is_refused) {
    std::string first, second, clash;
    storage::write_batch a, b, c;
    a.add(*a.series("m,device=a v", storage::value_type::float64), 1000, 1.5);
    b.add(*b.series("m,device=a v", storage::value_type::float64), 1000, 2.5);
    c.add_int(*c.series("m,device=a v", storage::value_type::int64), 2000, 7);
    encode_shard(a, std::vector<uint32_t>{0}, 0, first);
    encode_shard(b, std::vector<uint32_t>{0}, 0, second);
    encode_shard(c, std::vector<uint32_t>{0}, 0, clash);
    storage::write_batch merged;
    ASSERT_TRUE(decode_append(first, merged));
    ASSERT_TRUE(decode_append(second, merged));
    ASSERT_EQ(merged.series_count(), 1u);
    ASSERT_EQ(merged.point_count(), 2u);
    EXPECT_EQ(merged.points()[1].raw, std::bit_cast<uint64_t>(2.5));  // the later one last
    auto refused = decode_append(clash, merged);
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error().code, "invalid_argument");
}

TEST(cluster_codec_test, damaged_payloads_are_refused_as_corrupt) {
    storage::write_batch in;
    in.add(*in.series("m v", storage::value_type::float64), 1, 1.5);
    std::string payload;
    encode_shard(in, std::vector<uint32_t>{0}, 0, payload);
    storage::write_batch out;
    auto truncated = decode(std::string_view(payload).substr(0, payload.size() - 1), out);
    ASSERT_FALSE(truncated);
    EXPECT_EQ(truncated.error().code, "corrupt");
    EXPECT_EQ(truncated.error().message, "cluster log message: truncated");
    EXPECT_TRUE(out.empty());
    auto foreign = decode("{\"v\":1}", out);
    ASSERT_FALSE(foreign);
    EXPECT_EQ(foreign.error().message, "cluster log message: not a CLX1 payload");
    EXPECT_FALSE(decode(payload + "x", out));
}

// A payload of 512 bytes or more travels zstd-compressed (CLZ1) and inflates to the same
// points; a damaged frame or an impossible length is "corrupt", never a crash.
TEST(cluster_codec_test, larger_payloads_travel_compressed_and_inflate_exactly) {
    storage::write_batch in;
    auto f = *in.series("telemetry,device=press-1 temperature", storage::value_type::float64);
    auto p = *in.series("telemetry,device=press-1 pressure", storage::value_type::float64);
    for (int i = 0; i < 1000; ++i) {
        in.add(f, 1'764'892'800'000'000'000 + i * 1'000'000'000LL, 20.0 + (i % 50) * 0.125);
        in.add(p, 1'764'892'800'000'000'000 + i * 1'000'000'000LL, 1.0 + (i % 7) * 0.01);
    }
    std::string payload;
    encode_shard(in, std::vector<uint32_t>{0, 0}, 0, payload);
    ASSERT_TRUE(payload.starts_with("CLZ1")) << payload.substr(0, 4);
    const size_t raw = 4 + 4 + 2 * (1 + 4 + 35) + 4 + 2000 * 20;
    EXPECT_LT(payload.size(), raw / 3) << "raw " << raw;
    storage::write_batch out;
    ASSERT_TRUE(decode(payload, out));
    ASSERT_EQ(out.point_count(), 2000u);
    for (size_t i = 0; i < 2000; ++i) {
        EXPECT_EQ(out.points()[i].ts, in.points()[i].ts) << i;
        EXPECT_EQ(out.points()[i].raw, in.points()[i].raw) << i;
    }

    std::string damaged = payload;
    damaged[damaged.size() / 2] ^= 0x5a;
    auto bad = decode(damaged, out);
    ASSERT_FALSE(bad);
    EXPECT_EQ(bad.error().code, "corrupt");
    std::string huge = payload;
    huge[4] = huge[5] = huge[6] = huge[7] = '\xff';
    auto too_long = decode(huge, out);
    ASSERT_FALSE(too_long);
    EXPECT_EQ(too_long.error().message, "cluster log message: bad CLZ1 length");

    // A small payload goes as it is.
    storage::write_batch small;
    small.add(*small.series("m v", storage::value_type::float64), 1, 1.5);
    encode_shard(small, std::vector<uint32_t>{0}, 0, payload);
    EXPECT_TRUE(payload.starts_with("CLX1"));
}

}  // namespace
}  // namespace clisonix::cluster
