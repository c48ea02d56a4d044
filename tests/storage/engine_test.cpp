// The storage engine: durability, validation, replacement, exact scans and aggregates
// against a reference computed from the raw points, compaction, retention, concurrency.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <random>
#include <thread>

#include "naive_aggregate.h"
#include "storage/io.h"
#include "storage/part.h"
#include "storage/storage.h"
#include "support/test_support.h"

namespace clisonix::storage {
namespace {

namespace fs = std::filesystem;

constexpr int64_t sec = 1'000'000'000;
constexpr int64_t hour = 3600 * sec;
constexpr int64_t day = 24 * hour;
// 2024-03-10T00:00:00Z, a partition boundary.
constexpr int64_t t0 = 1710028800LL * sec;

std::unique_ptr<engine> open_engine(const options& o) {
    auto e = engine::open(o);
    EXPECT_TRUE(e.ok()) << (e.ok() ? "" : e.error().message);
    return e.ok() ? std::move(*e) : nullptr;
}

options opts_for(const testing::temp_dir& d) {
    options o;
    o.dir = d.str() + "/tsdb";
    return o;
}

std::vector<sample> scan_all(const engine& e, series_id id) {
    std::vector<sample> out;
    auto s = e.scan(id, INT64_MIN, INT64_MAX, out);
    EXPECT_TRUE(s.ok()) << (s.ok() ? "" : s.error().message);
    return out;
}

series_id id_of(const engine& e, std::string_view key) {
    auto info = e.series_by_key(key);
    EXPECT_TRUE(info.has_value()) << key;
    return info ? info->id : 0;
}

TEST(storage_key, round_trips_with_escaping) {
    std::vector<std::pair<std::string, std::string>> tags = {{"device", "pump 3"},
                                                             {"site", "a,b=c\\d"}};
    auto key = make_key("tele metry,x", tags, "temp=1");
    EXPECT_EQ(key, "tele\\ metry\\,x,device=pump\\ 3,site=a\\,b\\=c\\\\d temp\\=1");
    auto info = parse_key(key);
    ASSERT_TRUE(info.ok());
    EXPECT_EQ(info->measurement, "tele metry,x");
    EXPECT_EQ(info->tags, tags);
    EXPECT_EQ(info->field, "temp=1");
    EXPECT_EQ(info->key, key);
    EXPECT_EQ(make_key("m", {}, "f"), "m f");
}

TEST(storage_key, rejects_malformed_keys) {
    auto check = [](std::string_view key, std::string_view message) {
        auto r = parse_key(key);
        ASSERT_FALSE(r.ok()) << key;
        EXPECT_EQ(r.error().code, "invalid_argument");
        EXPECT_EQ(r.error().message, message);
    };
    check("m", "malformed series key \"m\": no field after the tags");
    check(" f", "malformed series key \" f\": the measurement is empty");
    check("m,a f", "malformed series key \"m,a f\": tag \"a\" has no '='");
    check("m,a= f", "malformed series key \"m,a= f\": tag \"a\" has an empty value");
    check("m,b=1,a=2 f", "malformed series key \"m,b=1,a=2 f\": tags are not sorted by key");
    check("m f\\", "malformed series key \"m f\\\": ends in a backslash");
    check("m ", "malformed series key \"m \": the field is empty");
}

TEST(storage_engine, write_scan_and_survive_restart_with_and_without_flush) {
    testing::temp_dir d;
    auto o = opts_for(d);
    std::vector<sample> before_a, before_b;
    {
        auto e = open_engine(o);
        write_batch b;
        auto a = *b.series("telemetry,device=d1 temperature", value_type::float64);
        auto c = *b.series("telemetry,device=d1 count", value_type::int64);
        for (int i = 0; i < 100; ++i) {
            b.add(a, t0 + i * sec, 20.0 + i * 0.25);
            b.add_int(c, t0 + i * sec, (int64_t{1} << 60) + i);
        }
        ASSERT_TRUE(e->write(b).ok());
        before_a = scan_all(*e, id_of(*e, "telemetry,device=d1 temperature"));
        ASSERT_EQ(before_a.size(), 100u);
        EXPECT_EQ(before_a[3].ts, t0 + 3 * sec);
        EXPECT_EQ(std::bit_cast<double>(before_a[3].raw), 20.75);
        ASSERT_TRUE(e->flush().ok());
        b.clear();
        auto c2 = *b.series("telemetry,device=d1 count", value_type::int64);
        b.add_int(c2, t0 + 500 * sec, -7);
        ASSERT_TRUE(e->write(b).ok());  // only in the WAL when the engine goes away
        before_b = scan_all(*e, id_of(*e, "telemetry,device=d1 count"));
        ASSERT_EQ(before_b.size(), 101u);
        EXPECT_EQ(static_cast<int64_t>(before_b[99].raw), (int64_t{1} << 60) + 99);
    }
    auto e = open_engine(o);
    EXPECT_EQ(scan_all(*e, id_of(*e, "telemetry,device=d1 temperature")).size(), 100u);
    auto again = scan_all(*e, id_of(*e, "telemetry,device=d1 count"));
    ASSERT_EQ(again.size(), before_b.size());
    for (size_t i = 0; i < again.size(); ++i) {
        EXPECT_EQ(again[i].ts, before_b[i].ts);
        EXPECT_EQ(again[i].raw, before_b[i].raw);
    }
    auto l = e->last(id_of(*e, "telemetry,device=d1 count"));
    ASSERT_TRUE(l.has_value());
    EXPECT_EQ(l->ts, t0 + 500 * sec);
    EXPECT_EQ(static_cast<int64_t>(l->raw), -7);
    auto info = e->series_by_key("telemetry,device=d1 temperature");
    ASSERT_TRUE(info.has_value());
    EXPECT_EQ(info->measurement, "telemetry");
    EXPECT_EQ(info->field, "temperature");
    EXPECT_EQ(info->type, value_type::float64);
    ASSERT_EQ(info->tags.size(), 1u);
    EXPECT_EQ(info->tags[0].second, "d1");
    EXPECT_FALSE(e->series_by_key("telemetry,device=d2 temperature").has_value());
    auto all = e->series([](const series_info& s) { return s.field == "count"; });
    ASSERT_EQ(all.size(), 1u);
    EXPECT_EQ(all[0].key, "telemetry,device=d1 count");
}

TEST(storage_engine, statistics_count_rewritten_points_once) {
    testing::temp_dir d;
    auto e = open_engine(opts_for(d));
    auto put_range = [&](std::string_view key, int from, int to, double v) {
        write_batch b;
        auto s = *b.series(key, value_type::float64);
        for (int i = from; i < to; ++i)
            b.add(s, t0 + i * sec, v);
        ASSERT_TRUE(e->write(b).ok());
    };
    put_range("m,device=a f", 0, 100, 1);
    put_range("m,device=b f", 0, 100, 1);
    ASSERT_TRUE(e->flush().ok());
    // Device a: 50 of its points rewritten and 50 new ones; device b: only new ones.
    put_range("m,device=a f", 50, 150, 2);
    put_range("m,device=b f", 100, 150, 2);
    auto st = e->statistics();
    EXPECT_EQ(st.points, 150u + 150u);
    EXPECT_EQ(st.head_points, 100u + 50u);
    ASSERT_TRUE(e->flush().ok());
    EXPECT_EQ(e->statistics().points, 300u);
    ASSERT_TRUE(e->compact().ok());
    EXPECT_EQ(e->statistics().points, 300u);
    auto a = scan_all(*e, id_of(*e, "m,device=a f"));
    ASSERT_EQ(a.size(), 150u);
    EXPECT_EQ(std::bit_cast<double>(a[49].raw), 1);
    EXPECT_EQ(std::bit_cast<double>(a[50].raw), 2);
}

TEST(storage_engine, a_type_conflict_refuses_the_whole_batch) {
    testing::temp_dir d;
    auto e = open_engine(opts_for(d));
    write_batch b;
    auto s = *b.series("telemetry,device=d1 temperature", value_type::float64);
    b.add(s, t0, 1.5);
    ASSERT_TRUE(e->write(b).ok());
    b.clear();
    auto other = *b.series("telemetry,device=d1 humidity", value_type::float64);
    auto bad = *b.series("telemetry,device=d1 temperature", value_type::int64);
    b.add(other, t0, 40);
    b.add_int(bad, t0 + sec, 2);
    auto st = e->write(b);
    ASSERT_FALSE(st.ok());
    EXPECT_EQ(st.error().code, "invalid_argument");
    EXPECT_EQ(st.error().message,
              "field type conflict: telemetry,device=d1 temperature is float, the write has "
              "integer");
    EXPECT_FALSE(e->series_by_key("telemetry,device=d1 humidity").has_value());
    EXPECT_EQ(scan_all(*e, 0).size(), 1u);
    EXPECT_EQ(e->statistics().series, 1u);
}

TEST(storage_engine, points_behind_the_window_refuse_the_whole_batch) {
    testing::temp_dir d;
    auto o = opts_for(d);
    o.out_of_order_window_ns = hour;
    auto e = open_engine(o);
    write_batch b;
    auto s = *b.series("telemetry,device=d1 temperature", value_type::float64);
    b.add(s, t0 + 2 * hour, 1);
    ASSERT_TRUE(e->write(b).ok());
    b.clear();
    s = *b.series("telemetry,device=d1 temperature", value_type::float64);
    b.add(s, t0 + hour, 2);           // exactly the window behind: accepted
    b.add(s, t0 + 90 * 60 * sec, 3);  // inside
    ASSERT_TRUE(e->write(b).ok());
    b.clear();
    s = *b.series("telemetry,device=d1 temperature", value_type::float64);
    b.add(s, t0 + 3 * hour, 4);
    b.add(s, t0 + hour - 1, 5);
    auto st = e->write(b);
    ASSERT_FALSE(st.ok());
    EXPECT_EQ(st.error().code, "invalid_argument");
    EXPECT_EQ(st.error().message,
              "point too old: telemetry,device=d1 temperature at 2024-03-10T00:59:59.999999999Z "
              "is more than 1h behind the newest point of the series");
    auto pts = scan_all(*e, 0);
    ASSERT_EQ(pts.size(), 3u);
    EXPECT_EQ(pts.back().ts, t0 + 2 * hour);
    EXPECT_EQ(e->last(0)->ts, t0 + 2 * hour);
    // The window holds after a restart too (the newest point comes back from the parts).
    ASSERT_TRUE(e->flush().ok());
    e.reset();
    e = open_engine(o);
    b.clear();
    s = *b.series("telemetry,device=d1 temperature", value_type::float64);
    b.add(s, t0 + 30 * 60 * sec, 6);
    st = e->write(b);
    ASSERT_FALSE(st.ok());
    EXPECT_EQ(st.error().message,
              "point too old: telemetry,device=d1 temperature at 2024-03-10T00:30:00Z is more "
              "than 1h behind the newest point of the series");
}

TEST(storage_engine, a_later_write_of_a_timestamp_replaces_the_earlier_everywhere) {
    testing::temp_dir d;
    auto o = opts_for(d);
    auto e = open_engine(o);
    auto put = [&](int64_t ts, double v) {
        write_batch b;
        auto s = *b.series("m f", value_type::float64);
        b.add(s, ts, v);
        ASSERT_TRUE(e->write(b).ok());
    };
    auto value_at = [&](int64_t ts) {
        std::vector<sample> out;
        EXPECT_TRUE(e->scan(0, ts, ts + 1, out).ok());
        EXPECT_EQ(out.size(), 1u);
        return out.empty() ? NAN : std::bit_cast<double>(out[0].raw);
    };
    put(t0 + 10, 1);
    put(t0 + 10, 2);  // head replaces head
    EXPECT_EQ(value_at(t0 + 10), 2);
    put(t0 + 20, 5);
    put(t0 + 10, 3);  // out of order within the head
    EXPECT_EQ(value_at(t0 + 10), 3);
    ASSERT_TRUE(e->flush().ok());
    EXPECT_EQ(value_at(t0 + 10), 3);
    EXPECT_EQ(e->statistics().points, 2u);
    put(t0 + 10, 4);  // head over a part
    EXPECT_EQ(value_at(t0 + 10), 4);
    EXPECT_EQ(e->statistics().points, 2u);  // the replaced point is not counted again
    ASSERT_TRUE(e->flush().ok());           // newer part over older part
    EXPECT_EQ(value_at(t0 + 10), 4);
    EXPECT_EQ(e->statistics().points, 2u);
    std::vector<std::pair<int64_t, summary>> agg;
    ASSERT_TRUE(e->aggregate(0, t0, t0 + hour, hour, agg).ok());
    ASSERT_EQ(agg.size(), 1u);
    EXPECT_EQ(agg[0].second.count, 2u);
    EXPECT_EQ(agg[0].second.sum, 9);
    ASSERT_TRUE(e->compact().ok());
    EXPECT_EQ(value_at(t0 + 10), 4);
    EXPECT_EQ(e->statistics().points, 2u);
    e.reset();
    e = open_engine(o);
    EXPECT_EQ(value_at(t0 + 10), 4);
    EXPECT_EQ(scan_all(*e, 0).size(), 2u);
    // Within one batch the later point wins too.
    write_batch b;
    auto s = *b.series("m f", value_type::float64);
    b.add(s, t0 + 30, 7);
    b.add(s, t0 + 30, 8);
    ASSERT_TRUE(e->write(b).ok());
    EXPECT_EQ(value_at(t0 + 30), 8);
    EXPECT_EQ(std::bit_cast<double>(e->last(0)->raw), 8);
}

TEST(storage_engine, strings_booleans_and_their_aggregates) {
    testing::temp_dir d;
    auto o = opts_for(d);
    auto e = open_engine(o);
    write_batch b;
    auto st = *b.series("m status", value_type::string);
    auto on = *b.series("m on", value_type::boolean);
    b.add_string(st, t0 + 1, "idle");
    b.add_string(st, t0 + 2, "running");
    b.add_string(st, t0 + 1, "starting");
    b.add_bool(on, t0 + 1, true);
    b.add_bool(on, t0 + 2, false);
    b.add_bool(on, t0 + 3, true);
    ASSERT_TRUE(e->write(b).ok());
    for (int round = 0; round < 3; ++round) {
        auto sid = id_of(*e, "m status");
        std::vector<sample> out;
        std::vector<std::string> strs;
        ASSERT_TRUE(e->scan(sid, t0, t0 + 10, out, &strs).ok());
        ASSERT_EQ(out.size(), 2u) << round;
        EXPECT_EQ(strs[out[0].raw], "starting");
        EXPECT_EQ(strs[out[1].raw], "running");
        // A second scan appends its strings; raw indexes the whole vector.
        std::vector<sample> more;
        ASSERT_TRUE(e->scan(sid, t0 + 2, t0 + 3, more, &strs).ok());
        ASSERT_EQ(more.size(), 1u);
        EXPECT_EQ(strs[more[0].raw], "running");
        EXPECT_EQ(strs[out[0].raw], "starting");  // the first scan's indexes still hold
        std::string last;
        ASSERT_TRUE(e->last(sid, &last).has_value());
        EXPECT_EQ(last, "running");
        std::vector<std::pair<int64_t, summary>> agg;
        ASSERT_TRUE(e->aggregate(sid, t0, t0 + 10, 10, agg).ok());
        ASSERT_EQ(agg.size(), 1u);
        EXPECT_EQ(agg[0].first, t0);
        EXPECT_EQ(agg[0].second.count, 2u);
        EXPECT_EQ(agg[0].second.first_ts, t0 + 1);
        EXPECT_EQ(agg[0].second.last_ts, t0 + 2);
        EXPECT_EQ(agg[0].second.sum, 0);
        auto bid = id_of(*e, "m on");
        ASSERT_TRUE(e->aggregate(bid, t0, t0 + 10, 10, agg).ok());
        ASSERT_EQ(agg.size(), 1u);
        EXPECT_EQ(agg[0].second.count, 3u);
        EXPECT_EQ(agg[0].second.sum, 2);
        EXPECT_EQ(agg[0].second.min, 0);
        EXPECT_EQ(agg[0].second.last, 1);
        if (round == 0) {
            ASSERT_TRUE(e->flush().ok());
        }
        if (round == 1) {
            e.reset();
            e = open_engine(o);
        }
    }
}

// ---- exactness against a reference ----------------------------------------------------

struct reference {
    std::map<series_id, std::map<int64_t, uint64_t>> points;
};

void check_against(const engine& e, const reference& ref, const std::vector<value_type>& types,
                   std::mt19937_64& rng, int64_t lo, int64_t hi, const std::string& when) {
    SCOPED_TRACE(when);
    for (const auto& [id, pts] : ref.points) {
        value_type type = types[id];
        auto got = scan_all(e, id);
        ASSERT_EQ(got.size(), pts.size()) << "series " << id;
        size_t i = 0;
        for (const auto& [ts, raw] : pts) {
            ASSERT_EQ(got[i].ts, ts) << "series " << id << " point " << i;
            ASSERT_EQ(got[i].raw, raw) << "series " << id << " point " << i;
            ++i;
        }
        auto l = e.last(id);
        ASSERT_TRUE(l.has_value());
        EXPECT_EQ(l->ts, pts.rbegin()->first);
        EXPECT_EQ(l->raw, pts.rbegin()->second);

        static const int64_t steps[] = {1, 997, sec, 60 * sec, hour, 7 * hour, day, 3 * day};
        for (int q = 0; q < 12; ++q) {
            int64_t from = std::uniform_int_distribution<int64_t>(lo - hour, hi)(rng);
            int64_t to = std::uniform_int_distribution<int64_t>(from, hi + hour)(rng);
            if (q == 0) {
                from = INT64_MIN / 2;
                to = INT64_MAX / 2;
            }
            int64_t step = steps[std::uniform_int_distribution<size_t>(0, 7)(rng)];
            if (step == 1 && to - from > 200'000) step = 997 * 1000;
            std::vector<sample> part;
            ASSERT_TRUE(e.scan(id, from, to, part).ok());
            auto b = pts.lower_bound(from), en = pts.lower_bound(to);
            ASSERT_EQ(part.size(), static_cast<size_t>(std::distance(b, en)));
            std::vector<std::pair<int64_t, summary>> agg;
            ASSERT_TRUE(e.aggregate(id, from, to, step, agg).ok());
            // The straightforward computation.
            auto want = testing_ref::naive_aggregate(
                b, en, step, [&](uint64_t raw) { return as_double(type, raw); });
            ASSERT_EQ(agg.size(), want.size())
                << "from " << from << " to " << to << " step " << step;
            for (size_t k = 0; k < want.size(); ++k) {
                const auto& g = agg[k].second;
                const auto& w = want[k].second;
                ASSERT_EQ(agg[k].first, want[k].first);
                ASSERT_TRUE(testing_ref::same_exact_fields(g, w));
                ASSERT_NEAR(g.sum, w.sum, 1e-9 * std::max(1.0, std::fabs(w.sum)) * g.count);
            }
        }
    }
}

TEST(storage_engine, scans_and_aggregates_equal_a_reference_computation) {
    testing::temp_dir d;
    auto o = opts_for(d);
    o.out_of_order_window_ns = 10 * day;
    auto e = open_engine(o);
    std::mt19937_64 rng(20240310);
    const std::vector<std::pair<std::string, value_type>> keys = {
        {"telemetry,device=a temperature", value_type::float64},
        {"telemetry,device=a count", value_type::int64},
        {"telemetry,device=b on", value_type::boolean},
        {"telemetry,device=b pressure", value_type::float64}};
    std::vector<value_type> types;
    reference ref;
    // Three partitions: the day before t0, t0's day and the next.
    const int64_t lo = t0 - day / 2, hi = t0 + 2 * day - 1;
    write_batch b;
    for (int round = 0; round < 40; ++round) {
        b.clear();
        int n = std::uniform_int_distribution<int>(1, 6000)(rng);
        int mode = round % 4;
        std::vector<std::pair<uint32_t, series_id>> locals;
        for (const auto& [k, t] : keys)
            locals.emplace_back(*b.series(k, t), 0);
        int64_t cursor = std::uniform_int_distribution<int64_t>(lo, t0 + day)(rng);
        for (int i = 0; i < n; ++i) {
            size_t s = std::uniform_int_distribution<size_t>(0, keys.size() - 1)(rng);
            int64_t ts;
            if (mode == 0) {  // mostly in order, seconds apart
                cursor += std::uniform_int_distribution<int64_t>(1, 10 * sec)(rng);
                ts = cursor;
            } else if (mode == 1) {  // anywhere in the range
                ts = std::uniform_int_distribution<int64_t>(lo, hi)(rng);
            } else if (mode == 2 && ref.points.count(s)) {  // rewrite an existing timestamp
                auto& m = ref.points[s];
                auto it = m.lower_bound(std::uniform_int_distribution<int64_t>(lo, hi)(rng));
                ts = it == m.end() ? m.rbegin()->first : it->first;
            } else {  // dense runs straddling a day boundary
                ts = t0 + day - 5000 * sec + (i % 10000) * sec;
            }
            uint64_t raw;
            switch (keys[s].second) {
                case value_type::float64:
                    raw = std::bit_cast<uint64_t>(
                        std::round(std::normal_distribution<double>(20, 5)(rng) * 100) / 100);
                    b.add(locals[s].first, ts, std::bit_cast<double>(raw));
                    break;
                case value_type::int64: {
                    int64_t v = std::uniform_int_distribution<int64_t>(-1000, 1000)(rng);
                    if (i % 97 == 0) v = (int64_t{1} << 62) + i;
                    raw = static_cast<uint64_t>(v);
                    b.add_int(locals[s].first, ts, v);
                    break;
                }
                default:
                    raw = rng() & 1;
                    b.add_bool(locals[s].first, ts, raw != 0);
                    break;
            }
            ref.points[s][ts] = raw;
        }
        ASSERT_TRUE(e->write(b).ok()) << round;
        if (types.empty())
            for (const auto& [k, t] : keys) {
                ASSERT_EQ(id_of(*e, k), types.size());
                types.push_back(t);
            }
        int action = std::uniform_int_distribution<int>(0, 9)(rng);
        if (action <= 2) {
            ASSERT_TRUE(e->flush().ok());
        }
        if (action == 3) {
            ASSERT_TRUE(e->compact().ok());
        }
        if (action == 4) {
            e.reset();
            e = open_engine(o);
        }
        if (round % 8 == 7)
            check_against(*e, ref, types, rng, lo, hi, "round " + std::to_string(round));
    }
    ASSERT_TRUE(e->flush().ok());
    check_against(*e, ref, types, rng, lo, hi, "after flush");
    ASSERT_TRUE(e->compact().ok());
    check_against(*e, ref, types, rng, lo, hi, "after compaction");
    auto st = e->statistics();
    uint64_t total = 0;
    for (const auto& [id, m] : ref.points)
        total += m.size();
    EXPECT_EQ(st.points, total);
    EXPECT_EQ(st.head_points, 0u);
    EXPECT_EQ(st.partitions, 3u);
    e.reset();
    e = open_engine(o);
    check_against(*e, ref, types, rng, lo, hi, "after restart");
}

TEST(storage_engine, whole_blocks_are_summed_from_their_summaries_exactly) {
    testing::temp_dir d;
    auto e = open_engine(opts_for(d));
    write_batch b;
    auto s = *b.series("m f", value_type::float64);
    // 3 blocks of 8192 points plus a tail, one point a second.
    const int n = 3 * 8192 + 100;
    double sum = 0;
    for (int i = 0; i < n; ++i) {
        b.add(s, t0 + i * sec, i % 7);
        sum += i % 7;
    }
    ASSERT_TRUE(e->write(b).ok());
    ASSERT_TRUE(e->flush().ok());
    std::vector<std::pair<int64_t, summary>> agg;
    ASSERT_TRUE(e->aggregate(0, t0, t0 + day, day, agg).ok());
    ASSERT_EQ(agg.size(), 1u);
    EXPECT_EQ(agg[0].second.count, static_cast<uint64_t>(n));
    EXPECT_EQ(agg[0].second.sum, sum);
    EXPECT_EQ(agg[0].second.min, 0);
    EXPECT_EQ(agg[0].second.max, 6);
    EXPECT_EQ(agg[0].second.first_ts, t0);
    EXPECT_EQ(agg[0].second.last_ts, t0 + (n - 1) * sec);
    EXPECT_EQ(agg[0].second.last, (n - 1) % 7);
}

TEST(storage_engine, retention_drops_whole_partitions_and_frees_disk) {
    testing::temp_dir d;
    auto o = opts_for(d);
    o.retention_ns = 3 * day;
    o.out_of_order_window_ns = 30 * day;
    auto e = open_engine(o);
    int64_t now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                      std::chrono::system_clock::now().time_since_epoch())
                      .count();
    int64_t today = now / day * day;
    write_batch b;
    auto s = *b.series("m f", value_type::float64);
    for (int k = 0; k < 3; ++k)  // yesterday, the day before, and today
        for (int i = 0; i < 1000; ++i)
            b.add(s, today - (2 - k) * day + i * sec, k);
    ASSERT_TRUE(e->write(b).ok());
    b.clear();
    s = *b.series("m f", value_type::float64);
    b.add(s, now - 4 * day, 1);
    auto st = e->write(b);
    ASSERT_FALSE(st.ok());
    EXPECT_EQ(st.error().code, "invalid_argument");
    EXPECT_TRUE(st.error().message.starts_with("point too old: m f at "));
    EXPECT_TRUE(st.error().message.ends_with(" is older than the retention of 3d"));
    ASSERT_TRUE(e->flush().ok());
    auto before = e->statistics();
    EXPECT_EQ(before.partitions, 3u);
    EXPECT_EQ(before.points, 3000u);
    ASSERT_TRUE(e->apply_retention(now).ok());
    EXPECT_EQ(e->statistics().partitions, 3u);  // nothing is older than 3 days yet
    // The cutoff falls just after the end of the oldest partition.
    ASSERT_TRUE(e->apply_retention(today + 2 * day + 1).ok());
    auto after = e->statistics();
    EXPECT_EQ(after.partitions, 2u);
    EXPECT_EQ(after.points, 2000u);
    EXPECT_LT(after.disk_bytes, before.disk_bytes);
    EXPECT_EQ(scan_all(*e, 0).front().ts, today - day);
    ASSERT_TRUE(e->apply_retention(today + 10 * day).ok());
    EXPECT_EQ(e->statistics().partitions, 0u);
    EXPECT_TRUE(scan_all(*e, 0).empty());
    EXPECT_FALSE(e->last(0).has_value());
    e.reset();
    e = open_engine(o);
    EXPECT_EQ(e->statistics().partitions, 0u);
    EXPECT_TRUE(scan_all(*e, 0).empty());
}

TEST(storage_engine, compact_also_drops_what_a_shorter_retention_expires) {
    testing::temp_dir d;
    auto o = opts_for(d);
    int64_t now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                      std::chrono::system_clock::now().time_since_epoch())
                      .count();
    {
        auto e = open_engine(o);  // no retention: anything goes
        write_batch b;
        auto s = *b.series("m f", value_type::float64);
        b.add(s, now - 10 * day, 1);
        b.add(s, now, 2);
        ASSERT_TRUE(e->write(b).ok());
    }
    o.retention_ns = 3 * day;
    auto e = open_engine(o);
    EXPECT_EQ(e->statistics().partitions, 2u);
    ASSERT_TRUE(e->compact().ok());
    EXPECT_EQ(e->statistics().partitions, 1u);
    auto pts = scan_all(*e, 0);
    ASSERT_EQ(pts.size(), 1u);
    EXPECT_EQ(pts[0].ts, now);
}

TEST(storage_engine, compaction_merges_parts_and_keeps_data_identical) {
    testing::temp_dir d;
    auto o = opts_for(d);
    auto e = open_engine(o);
    for (int f = 0; f < 6; ++f) {
        write_batch b;
        for (int s = 0; s < 20; ++s) {
            auto id = *b.series("m,device=d" + std::to_string(s) + " v", value_type::float64);
            for (int i = 0; i < 50; ++i)
                b.add(id, t0 + (f * 50 + i) * sec, f * 1000 + i + s);
        }
        ASSERT_TRUE(e->write(b).ok());
        ASSERT_TRUE(e->flush().ok());
    }
    std::vector<std::vector<sample>> before;
    for (series_id id = 0; id < 20; ++id)
        before.push_back(scan_all(*e, id));
    auto parts_before = e->statistics();
    ASSERT_TRUE(e->compact().ok());
    size_t files = 0;
    for (const auto& f : fs::recursive_directory_iterator(o.dir + "/parts"))
        files += f.path().extension() == ".part";
    EXPECT_EQ(files, 1u);
    EXPECT_LT(e->statistics().disk_bytes, parts_before.disk_bytes);
    for (int round = 0; round < 2; ++round) {
        for (series_id id = 0; id < 20; ++id) {
            auto got = scan_all(*e, id);
            ASSERT_EQ(got.size(), before[id].size());
            for (size_t i = 0; i < got.size(); ++i) {
                EXPECT_EQ(got[i].ts, before[id][i].ts);
                EXPECT_EQ(got[i].raw, before[id][i].raw);
            }
        }
        e.reset();
        e = open_engine(o);
    }
}

TEST(storage_engine, background_compaction_merges_the_newest_parts_of_similar_size) {
    using v = std::vector<uint64_t>;
    EXPECT_EQ(tiered_merge_start(v{}, 4), 0u);
    EXPECT_EQ(tiered_merge_start(v{10, 10, 10}, 4), 3u);               // too few
    EXPECT_EQ(tiered_merge_start(v{10, 10, 10, 10}, 4), 0u);           // all four
    EXPECT_EQ(tiered_merge_start(v{100, 10, 10, 10, 10}, 4), 1u);      // not the big one
    EXPECT_EQ(tiered_merge_start(v{100, 10, 10, 10}, 4), 4u);          // only three small ones
    EXPECT_EQ(tiered_merge_start(v{100, 40, 10, 10, 10, 10}, 4), 0u);  // 40 <= 80, 100 <= 160
    EXPECT_EQ(tiered_merge_start(v{1000, 40, 10, 10, 10, 10}, 4), 1u);
}

TEST(storage_engine, concurrent_writers_lose_nothing) {
    testing::temp_dir d;
    auto o = opts_for(d);
    o.max_head_bytes = 1 << 20;  // flushes run while the writers write
    auto e = open_engine(o);
    constexpr int threads = 4, batches = 40, series_n = 50, per = 10;
    std::vector<std::thread> ts;
    std::atomic<int> failures{0};
    for (int t = 0; t < threads; ++t)
        ts.emplace_back([&, t] {
            write_batch b;
            for (int k = 0; k < batches; ++k) {
                b.clear();
                for (int s = 0; s < series_n; ++s) {
                    auto id = *b.series("m,device=d" + std::to_string(s) + " v", value_type::int64);
                    for (int i = 0; i < per; ++i) {
                        int64_t n = (k * per + i) * threads + t;
                        b.add_int(id, t0 + n * sec, n * 10 + s);
                    }
                }
                for (;;) {
                    auto st = e->write(b);
                    if (st.ok()) break;
                    if (st.error().code != "overloaded") {
                        ++failures;
                        return;
                    }
                    std::this_thread::sleep_for(std::chrono::milliseconds(5));
                }
            }
        });
    for (auto& t : ts)
        t.join();
    EXPECT_EQ(failures.load(), 0);
    auto check = [&] {
        EXPECT_EQ(e->statistics().series, static_cast<uint64_t>(series_n));
        for (int s = 0; s < series_n; ++s) {
            auto pts = scan_all(*e, id_of(*e, "m,device=d" + std::to_string(s) + " v"));
            ASSERT_EQ(pts.size(), static_cast<size_t>(threads * batches * per));
            for (size_t i = 0; i < pts.size(); ++i) {
                ASSERT_EQ(pts[i].ts, t0 + static_cast<int64_t>(i) * sec);
                ASSERT_EQ(static_cast<int64_t>(pts[i].raw), static_cast<int64_t>(i) * 10 + s);
            }
        }
    };
    check();
    e.reset();
    e = open_engine(o);
    check();
}

// Writers, readers, flushes and compactions at once: readers never see a point vanish or a
// time out of order, and the end state is every point written.
TEST(storage_engine, reads_flushes_and_compactions_run_safely_beside_writes) {
    testing::temp_dir d;
    auto o = opts_for(d);
    o.max_head_bytes = 256 << 10;
    auto e = open_engine(o);
    constexpr int writers = 2, batches = 60, per = 50;
    std::atomic<int> done{0};
    std::atomic<int> problems{0};
    std::vector<std::thread> ts;
    for (int w = 0; w < writers; ++w)
        ts.emplace_back([&, w] {
            write_batch b;
            for (int k = 0; k < batches; ++k) {
                b.clear();
                auto id = *b.series("m,w=" + std::to_string(w) + " v", value_type::float64);
                for (int i = 0; i < per; ++i)
                    b.add(id, t0 + (k * per + i) * sec, k * per + i);
                for (;;) {
                    auto st = e->write(b);
                    if (st.ok()) break;
                    if (st.error().code != "overloaded") {
                        ++problems;
                        break;
                    }
                    std::this_thread::sleep_for(std::chrono::milliseconds(1));
                }
            }
            ++done;
        });
    ts.emplace_back([&] {  // a reader: counts only grow, times strictly ascend
        std::vector<size_t> seen(writers, 0);
        while (done.load() < writers) {
            for (int w = 0; w < writers; ++w) {
                auto info = e->series_by_key("m,w=" + std::to_string(w) + " v");
                if (!info) continue;
                std::vector<sample> out;
                if (!e->scan(info->id, INT64_MIN, INT64_MAX, out).ok()) ++problems;
                for (size_t i = 1; i < out.size(); ++i)
                    if (out[i - 1].ts >= out[i].ts) ++problems;
                if (out.size() < seen[w]) ++problems;
                seen[w] = out.size();
                std::vector<std::pair<int64_t, summary>> agg;
                if (!e->aggregate(info->id, t0, t0 + day, 60 * sec, agg).ok()) ++problems;
                uint64_t n = 0;
                for (const auto& [bucket, sm] : agg)
                    n += sm.count;
                if (n < out.size()) ++problems;
            }
        }
    });
    ts.emplace_back([&] {  // maintenance by hand as well as in the background
        while (done.load() < writers) {
            if (!e->flush().ok()) ++problems;
            if (!e->compact().ok()) ++problems;
            (void)e->statistics();
        }
    });
    for (auto& t : ts)
        t.join();
    EXPECT_EQ(problems.load(), 0);
    for (int w = 0; w < writers; ++w) {
        auto pts = scan_all(*e, id_of(*e, "m,w=" + std::to_string(w) + " v"));
        ASSERT_EQ(pts.size(), static_cast<size_t>(batches * per));
        for (size_t i = 0; i < pts.size(); ++i)
            ASSERT_EQ(std::bit_cast<double>(pts[i].raw), static_cast<double>(i));
    }
}

TEST(storage_engine, a_full_head_pushes_back_with_overloaded) {
    testing::temp_dir d;
    auto o = opts_for(d);
    o.max_head_bytes = 16000;  // 1000 points; the background flush starts at half
    auto e = open_engine(o);
    auto batch = [](write_batch& b, int n, int64_t start) {
        b.clear();
        auto s = *b.series("m f", value_type::float64);
        for (int i = 0; i < n; ++i)
            b.add(s, start + i, i);
    };
    write_batch b;
    batch(b, 400, t0);
    ASSERT_TRUE(e->write(b).ok());
    batch(b, 700, t0 + 1000);
    auto st = e->write(b);
    ASSERT_FALSE(st.ok());
    EXPECT_EQ(st.error().code, "overloaded");
    EXPECT_EQ(st.error().message,
              "storage is busy: the in-memory head holds 6400 bytes and the write adds 11200 "
              "(limit 16000); retry shortly");
    EXPECT_EQ(scan_all(*e, 0).size(), 400u);
    ASSERT_TRUE(e->flush().ok());
    ASSERT_TRUE(e->write(b).ok());
    EXPECT_EQ(scan_all(*e, 0).size(), 1100u);
}

TEST(storage_engine, the_series_limit_is_a_clear_error) {
    testing::temp_dir d;
    auto o = opts_for(d);
    o.max_series = 3;
    auto e = open_engine(o);
    write_batch b;
    for (int i = 0; i < 2; ++i)
        b.add(*b.series("m f" + std::to_string(i), value_type::float64), t0, 1);
    ASSERT_TRUE(e->write(b).ok());
    b.clear();
    for (int i = 0; i < 4; ++i)
        b.add(*b.series("m f" + std::to_string(i), value_type::float64), t0 + 1, 1);
    auto st = e->write(b);
    ASSERT_FALSE(st.ok());
    EXPECT_EQ(st.error().code, "invalid_argument");
    EXPECT_EQ(st.error().message,
              "series limit reached: 2 series exist and the write adds 2 more; the limit "
              "(storage max_series) is 3");
    EXPECT_EQ(e->statistics().series, 2u);
    EXPECT_EQ(scan_all(*e, 0).size(), 1u);
}

TEST(storage_engine, statistics_count_series_points_and_partitions) {
    testing::temp_dir d;
    auto e = open_engine(opts_for(d));
    write_batch b;
    auto s = *b.series("m f", value_type::float64);
    b.add(s, t0 - 1, 1);
    b.add(s, t0 + 5, 2);
    b.add(s, t0 + 3, 3);
    b.add(s, t0 + 5, 4);  // replaces
    ASSERT_TRUE(e->write(b).ok());
    auto st = e->statistics();
    EXPECT_EQ(st.series, 1u);
    EXPECT_EQ(st.head_points, 3u);
    EXPECT_EQ(st.points, 3u);
    EXPECT_EQ(st.partitions, 0u);
    ASSERT_TRUE(e->flush().ok());
    st = e->statistics();
    EXPECT_EQ(st.head_points, 0u);
    EXPECT_EQ(st.points, 3u);
    EXPECT_EQ(st.partitions, 2u);
    EXPECT_GT(st.disk_bytes, 0u);
}

TEST(storage_engine, the_first_and_last_representable_timestamps_round_trip) {
    testing::temp_dir d;
    auto o = opts_for(d);
    {
        auto e = open_engine(o);
        write_batch b;
        b.add(*b.series("m low", value_type::float64), INT64_MIN, 1);
        b.add(*b.series("m low", value_type::float64), INT64_MIN + 1, 2);
        b.add(*b.series("m high", value_type::float64), INT64_MAX, 3);
        ASSERT_TRUE(e->write(b).ok());
        ASSERT_TRUE(e->flush().ok());
        EXPECT_EQ(e->statistics().partitions, 2u);
    }
    auto e = open_engine(o);
    auto low = scan_all(*e, 0);
    ASSERT_EQ(low.size(), 2u);
    EXPECT_EQ(low[0].ts, INT64_MIN);
    EXPECT_EQ(low[1].ts, INT64_MIN + 1);
    std::vector<sample> high;
    ASSERT_TRUE(e->scan(1, INT64_MAX - 1, INT64_MAX, high).ok());
    EXPECT_TRUE(high.empty());  // `to` is exclusive
    EXPECT_EQ(e->last(1)->ts, INT64_MAX);
    std::vector<std::pair<int64_t, summary>> agg;
    ASSERT_TRUE(e->aggregate(0, INT64_MIN, 0, day, agg).ok());
    ASSERT_EQ(agg.size(), 1u);
    EXPECT_EQ(agg[0].first, INT64_MIN);  // the bucket would start before time does
    EXPECT_EQ(agg[0].second.count, 2u);
    EXPECT_EQ(agg[0].second.sum, 3);
}

TEST(storage_engine, the_latest_value_comes_back_exactly_from_parts) {
    testing::temp_dir d;
    auto o = opts_for(d);
    const int64_t big = (int64_t{1} << 60) + 1;  // not exact as a double
    {
        auto e = open_engine(o);
        write_batch b;
        b.add_int(*b.series("m i", value_type::int64), t0 + 5, big);
        b.add_int(*b.series("m i", value_type::int64), t0 + 1, 3);
        b.add(*b.series("m f", value_type::float64), t0 + 2, -0.1);
        b.add_bool(*b.series("m b", value_type::boolean), t0 + 3, true);
        ASSERT_TRUE(e->write(b).ok());
        ASSERT_TRUE(e->flush().ok());
    }
    auto e = open_engine(o);
    ASSERT_TRUE(e->last(0).has_value());
    EXPECT_EQ(e->last(0)->ts, t0 + 5);
    EXPECT_EQ(static_cast<int64_t>(e->last(0)->raw), big);
    EXPECT_EQ(std::bit_cast<double>(e->last(1)->raw), -0.1);
    EXPECT_EQ(e->last(2)->raw, 1u);
}

TEST(storage_engine, interval_sync_mode_acknowledges_and_logs_writes) {
    testing::temp_dir d;
    auto o = opts_for(d);
    o.sync = options::sync_mode::interval;
    o.sync_interval = std::chrono::milliseconds(10);
    auto e = open_engine(o);
    write_batch b;
    auto s = *b.series("m f", value_type::float64);
    for (int i = 0; i < 100; ++i)
        b.add(s, t0 + i, i);
    ASSERT_TRUE(e->write(b).ok());
    EXPECT_EQ(scan_all(*e, 0).size(), 100u);  // visible at once
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    // What a crash of the process now leaves: the WAL (written; the background fsyncs it).
    fs::copy(o.dir, d.str() + "/copy", fs::copy_options::recursive);
    e.reset();
    o.dir = d.str() + "/copy";
    e = open_engine(o);
    EXPECT_EQ(scan_all(*e, 0).size(), 100u);
}

// series.log: the series one write creates share one compressed record (format in
// docs/format/part.md), and a log of separate records as earlier versions wrote it still opens.
TEST(storage_engine, series_created_together_share_one_compressed_log_record) {
    testing::temp_dir d;
    auto o = opts_for(d);
    const std::string log = o.dir + "/series.log";
    std::vector<std::string> keys;
    {
        auto e = open_engine(o);
        write_batch b;
        for (int dev = 0; dev < 1000; ++dev)
            for (const char* m : {"temperature", "pressure", "vibration_rms"}) {
                char name[16];
                std::snprintf(name, sizeof name, "d%05d", dev);
                keys.push_back(std::string("telemetry,device=") + name + " " + m);
                auto s = b.series(keys.back(), value_type::float64);
                ASSERT_TRUE(s.ok());
                b.add(*s, t0 + dev, dev);
            }
        write_batch two;  // fewer than four new series: one record each
        keys.push_back("telemetry,device=x status");
        keys.push_back("telemetry,device=x count");
        ASSERT_TRUE(two.series(keys[3000], value_type::string).ok());
        ASSERT_TRUE(two.series(keys[3001], value_type::int64).ok());
        two.add_string(0, t0, "running");
        two.add_int(1, t0, 7);
        ASSERT_TRUE(e->write(b).ok());
        ASSERT_TRUE(e->write(two).ok());
    }
    size_t key_bytes = 0;
    for (const auto& k : keys)
        key_bytes += k.size();
    const auto size = fs::file_size(log);
    EXPECT_LT(size, key_bytes / 4) << "3,002 keys of " << key_bytes << " bytes";

    auto check = [&](const engine& e) {
        for (size_t i = 0; i < keys.size(); ++i) {
            auto info = e.series_by_key(keys[i]);
            ASSERT_TRUE(info.has_value()) << keys[i];
            EXPECT_EQ(info->id, i) << keys[i];
        }
        EXPECT_EQ(e.series_by_key(keys[3000])->type, value_type::string);
        EXPECT_EQ(e.series_by_key(keys[3001])->type, value_type::int64);
        auto pts = scan_all(e, 2999);
        ASSERT_EQ(pts.size(), 1u);
        EXPECT_EQ(std::bit_cast<double>(pts[0].raw), 999.0);
    };
    {
        auto e = open_engine(o);
        check(*e);
    }
    // A torn append inside the last record: the series in it are dropped (no acknowledged
    // write used them), the rest opens.
    fs::resize_file(log, size - 3);
    {
        auto e = open_engine(o);
        EXPECT_TRUE(e->series_by_key(keys[2999]).has_value());
        EXPECT_FALSE(e->series_by_key(keys[3001]).has_value());
        EXPECT_EQ(e->statistics().series, 3001u);
    }

    // The layout of earlier versions: one [length][crc][id][type][key] record per series.
    testing::temp_dir old;
    auto oo = opts_for(old);
    fs::create_directories(oo.dir);
    {
        std::vector<uint8_t> bytes;
        uint32_t id = 0;
        for (const char* k : {"m,device=a temperature", "m,device=b temperature"}) {
            std::vector<uint8_t> payload(5);
            for (int i = 0; i < 4; ++i)
                payload[static_cast<size_t>(i)] = static_cast<uint8_t>(id >> (8 * i));
            payload[4] = static_cast<uint8_t>(value_type::float64);
            payload.insert(payload.end(), k, k + std::strlen(k));
            const uint32_t len = static_cast<uint32_t>(payload.size());
            const uint32_t crc = io::crc32c(payload.data(), payload.size());
            for (uint32_t v : {len, crc})
                for (int i = 0; i < 4; ++i)
                    bytes.push_back(static_cast<uint8_t>(v >> (8 * i)));
            bytes.insert(bytes.end(), payload.begin(), payload.end());
            ++id;
        }
        std::FILE* f = std::fopen((oo.dir + "/series.log").c_str(), "wb");
        ASSERT_NE(f, nullptr);
        std::fwrite(bytes.data(), 1, bytes.size(), f);
        std::fclose(f);
    }
    auto e = open_engine(oo);
    ASSERT_NE(e, nullptr);
    EXPECT_EQ(e->series_by_key("m,device=b temperature")->id, 1u);
    write_batch b;  // and new series are appended after them
    for (const char* k : {"m,device=c temperature", "m,device=d temperature",
                          "m,device=e temperature", "m,device=f temperature"})
        b.add(*b.series(k, value_type::float64), t0, 1.5);
    ASSERT_TRUE(e->write(b).ok());
    e.reset();
    e = open_engine(oo);
    EXPECT_EQ(e->series_by_key("m,device=f temperature")->id, 5u);
    EXPECT_EQ(e->statistics().series, 6u);
}

TEST(storage_engine, damaged_parts_give_errors_not_crashes) {
    testing::temp_dir d;
    auto o = opts_for(d);
    {
        auto e = open_engine(o);
        write_batch b;
        auto s = *b.series("m f", value_type::float64);
        for (int i = 0; i < 1000; ++i)
            b.add(s, t0 + i * sec, i * 0.5);
        b.add(*b.series("m g", value_type::float64), t0 + day, 1);
        ASSERT_TRUE(e->write(b).ok());
    }
    std::vector<fs::path> parts;
    for (const auto& f : fs::recursive_directory_iterator(o.dir + "/parts"))
        if (f.path().extension() == ".part") parts.push_back(f.path());
    std::sort(parts.begin(), parts.end());
    ASSERT_EQ(parts.size(), 2u);  // t0's day ("m f"), the next day ("m g")
    auto bytes = testing::read_file(parts[0]);
    bytes[20] ^= 0x01;  // inside the first block of "m f"
    testing::write_file(parts[0], bytes);
    {
        auto e = open_engine(o);
        std::vector<sample> out;
        auto st = e->scan(0, INT64_MIN, INT64_MAX, out);
        ASSERT_FALSE(st.ok());
        EXPECT_EQ(st.error().code, "corrupt");
        EXPECT_NE(st.error().message.find(parts[0].string()), std::string::npos)
            << st.error().message;
        EXPECT_EQ(scan_all(*e, 1).size(), 1u);  // the other partition still reads
    }
    bytes = testing::read_file(parts[1]);
    bytes[bytes.size() - 5] ^= 0x01;  // the footer's checksum
    testing::write_file(parts[1], bytes);
    auto e = open_engine(o);  // the damaged part is skipped, the engine opens
    EXPECT_TRUE(scan_all(*e, 1).empty());
    EXPECT_EQ(e->statistics().partitions, 1u);
}

TEST(storage_engine, bad_arguments_are_errors) {
    testing::temp_dir d;
    auto e = open_engine(opts_for(d));
    std::vector<sample> out;
    auto st = e->scan(5, 0, 10, out);
    ASSERT_FALSE(st.ok());
    EXPECT_EQ(st.error().code, "not_found");
    EXPECT_EQ(st.error().message, "no series with id 5");
    write_batch b;
    b.add(*b.series("m f", value_type::float64), t0, 1);
    ASSERT_TRUE(e->write(b).ok());
    std::vector<std::pair<int64_t, summary>> agg;
    st = e->aggregate(0, 0, 10, 0, agg);
    ASSERT_FALSE(st.ok());
    EXPECT_EQ(st.error().message, "step must be positive, got 0 ns");
    EXPECT_FALSE(e->last(7).has_value());
    auto second = engine::open(opts_for(d));
    ASSERT_FALSE(second.ok());
    EXPECT_EQ(second.error().code, "unavailable");
    EXPECT_EQ(second.error().message,
              "storage directory " + d.str() + "/tsdb is in use by another process");
    options bad;
    auto r = engine::open(bad);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().message, "storage directory is empty");
}

}  // namespace
}  // namespace clisonix::storage
