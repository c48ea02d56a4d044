// The demo's simulated plant: layout, determinism, signal shapes and the fault schedule, and
// that the default anomaly detector sees the bearing fault (the demo's promise to a newcomer).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <set>

#include "analytics/analytics.h"
#include "app/demo_plant.h"

namespace clisonix::app::sim {
namespace {

size_t index_of(const plant& p, fault_kind k, int64_t cycle = 0) {
    for (const auto& f : faults_in_cycle(p, cycle))
        if (f.kind == k) return f.machine;
    ADD_FAILURE() << "no fault of kind " << fault_name(k);
    return 0;
}

fault fault_of(const plant& p, fault_kind k, int64_t cycle = 0) {
    for (const auto& f : faults_in_cycle(p, cycle))
        if (f.kind == k) return f;
    ADD_FAILURE() << "no fault of kind " << fault_name(k);
    return {};
}

double value_of(const reading& r, std::string_view metric) {
    for (const auto& [name, v] : r.values)
        if (name == metric) return v;
    ADD_FAILURE() << "no metric " << metric;
    return NAN;
}

TEST(demo_plant_test, layout_is_two_sites_six_lines_twenty_machines_half_over_mqtt) {
    auto p = make_plant(1);
    EXPECT_EQ(p.sites, (std::vector<std::string>{"north-site", "south-site"}));
    ASSERT_EQ(p.lines.size(), 6u);
    EXPECT_EQ(p.lines[0].name, "north-line-1");
    EXPECT_EQ(p.lines[5].name, "south-line-3");
    EXPECT_EQ(p.lines[5].site, "south-site");
    ASSERT_EQ(p.machines.size(), 20u);
    std::set<std::string> names;
    size_t mqtt = 0, sensors = 0;
    for (const auto& m : p.machines) {
        names.insert(m.name);
        mqtt += m.over_mqtt;
        size_t n = kinds()[m.kind].metrics.size();
        EXPECT_GE(n, 4u);
        EXPECT_LE(n, 6u);
        sensors += n;
    }
    EXPECT_EQ(names.size(), 20u);
    EXPECT_EQ(mqtt, 10u);
    EXPECT_EQ(sensors, 102u);
    EXPECT_EQ(p.machines[0].name, "pump-01");
    EXPECT_EQ(p.machines[0].line, "north-line-1");
    EXPECT_EQ(p.machines[1].name, "compressor-01");
    EXPECT_EQ(p.machines[2].name, "conveyor-01");
}

TEST(demo_plant_test, same_seed_same_values_other_seed_other_values) {
    auto a = make_plant(7), b = make_plant(7), c = make_plant(8);
    for (int64_t t : {-3600, -1, 0, 31, 95, 500}) {
        for (size_t m = 0; m < a.machines.size(); ++m) {
            auto ra = sample(a, m, t), rb = sample(b, m, t);
            EXPECT_EQ(ra.present, rb.present);
            EXPECT_EQ(ra.values, rb.values) << a.machines[m].name << " t=" << t;
        }
    }
    EXPECT_NE(sample(a, 0, 10).values, sample(c, 0, 10).values);
    // The exact first reading of seed 1, so that a change to the model is a visible choice.
    EXPECT_EQ(telemetry_json(sample(make_plant(1), 0, 0), 1000),
              R"({"ts":1000,"values":{"temperature":57.483,"vibration_rms":1.446,"current":21.791,)"
              R"("pressure":3.267,"flow":32.247,"rpm":1043.315}})");
    EXPECT_EQ(telemetry_json(sample(make_plant(1), 2, -5), 1000),
              R"({"ts":1000,"values":{"temperature":44.554,"vibration_rms":1.103,"current":9.06,)"
              R"("rpm":83.69}})");
}

TEST(demo_plant_test, healthy_values_stay_near_the_expected_range) {
    auto p = make_plant(3);
    for (size_t m = 0; m < p.machines.size(); ++m) {
        const auto& k = kinds()[p.machines[m].kind];
        for (int64_t t = -1800; t < 0; t += 7) {
            auto r = sample(p, m, t);
            ASSERT_TRUE(r.present);
            ASSERT_EQ(r.values.size(), k.metrics.size());
            for (size_t i = 0; i < r.values.size(); ++i) {
                const auto& ms = k.metrics[i];
                double margin = 0.15 * (ms.high - ms.low);
                EXPECT_GE(r.values[i].second, ms.low - margin) << ms.name << " t=" << t;
                EXPECT_LE(r.values[i].second, ms.high + margin) << ms.name << " t=" << t;
            }
            EXPECT_LT(value_of(r, "temperature"), k.overheat) << p.machines[m].name;
        }
    }
}

double correlation(const std::vector<double>& x, const std::vector<double>& y) {
    double mx = 0, my = 0;
    for (size_t i = 0; i < x.size(); ++i) {
        mx += x[i];
        my += y[i];
    }
    mx /= static_cast<double>(x.size());
    my /= static_cast<double>(y.size());
    double sxy = 0, sxx = 0, syy = 0;
    for (size_t i = 0; i < x.size(); ++i) {
        sxy += (x[i] - mx) * (y[i] - my);
        sxx += (x[i] - mx) * (x[i] - mx);
        syy += (y[i] - my) * (y[i] - my);
    }
    return sxy / std::sqrt(sxx * syy);
}

TEST(demo_plant_test, current_and_temperature_rise_together_with_the_load) {
    auto p = make_plant(1);
    for (size_t m = 0; m < p.machines.size(); ++m) {
        std::vector<double> current, temperature, loads;
        for (int64_t t = -3600; t < 0; ++t) {
            auto r = sample(p, m, t);
            current.push_back(value_of(r, "current"));
            temperature.push_back(value_of(r, "temperature"));
            loads.push_back(load(p, m, t));
        }
        EXPECT_GT(correlation(current, temperature), 0.6) << p.machines[m].name;
        EXPECT_GT(correlation(current, loads), 0.9) << p.machines[m].name;
    }
}

TEST(demo_plant_test, load_follows_a_compressed_day_and_rpm_steps_with_the_set_point) {
    auto p = make_plant(1);
    double lo = 1, hi = 0;
    std::set<double> setpoints;
    for (int64_t t = 0; t < day_seconds; ++t) {
        lo = std::min(lo, load(p, 0, t));
        hi = std::max(hi, load(p, 0, t));
        setpoints.insert(setpoint(p, 0, t));
    }
    EXPECT_GT(hi - lo, 0.3);  // a visible daily swing within one compressed day
    EXPECT_GE(setpoints.size(), 2u);
    // rpm is the set-point's speed: within a set-point step it barely moves.
    const auto& rpm = *find_metric(kinds()[p.machines[0].kind], "rpm");
    for (int64_t t = 0; t < 600; t += 13) {
        double v = value_of(sample(p, 0, t), "rpm");
        EXPECT_NEAR(v / rpm.high, setpoint(p, 0, t), 0.02) << t;
    }
}

TEST(demo_plant_test, schedule_has_every_fault_kind_on_distinct_machines_first_within_90s) {
    for (uint64_t seed : {1u, 2u, 3u, 42u}) {
        auto p = make_plant(seed);
        auto faults = faults_in_cycle(p, 0);
        ASSERT_EQ(faults.size(), 5u);
        std::set<size_t> machines;
        std::set<fault_kind> kinds_seen;
        for (const auto& f : faults) {
            machines.insert(f.machine);
            kinds_seen.insert(f.kind);
            EXPECT_LT(f.start, f.end);
            EXPECT_LE(f.end, fault_cycle_seconds);
        }
        EXPECT_EQ(machines.size(), 5u);
        EXPECT_EQ(kinds_seen.size(), 5u);
        EXPECT_LE(faults.front().start, 90);
        // The schedule repeats each cycle, on machines the seed picks again.
        auto next = faults_in_cycle(p, 1);
        EXPECT_EQ(next.front().start, fault_cycle_seconds + faults.front().start);
        // faults_between sees exactly the faults overlapping the window.
        auto at_100 = faults_between(p, 100, 101);
        EXPECT_EQ(at_100.size(), 2u);  // bearing wear and overheating
        EXPECT_TRUE(faults_between(p, -100, 0).empty());
    }
    auto p = make_plant(1);
    auto f = faults_in_cycle(p, 0);
    EXPECT_EQ(fault_name(f[0].kind), "bearing wear");
    EXPECT_EQ(f[0].start, 30);
    EXPECT_EQ(f[0].peak, 90);
    EXPECT_EQ(fault_name(f[1].kind), "overheating");
    EXPECT_EQ(f[1].start, 45);
}

TEST(demo_plant_test, history_is_never_faulty) {
    auto p = make_plant(1);
    for (size_t m = 0; m < p.machines.size(); ++m)
        for (int64_t t = -fault_cycle_seconds; t < 0; ++t)
            ASSERT_TRUE(sample(p, m, t).present);
}

TEST(demo_plant_test, stuck_sensor_is_exactly_flat_while_the_others_move) {
    auto p = make_plant(1);
    auto f = fault_of(p, fault_kind::stuck_sensor);
    std::set<double> stuck, other;
    for (int64_t t = f.start; t < f.end; ++t) {
        auto r = sample(p, f.machine, t);
        stuck.insert(value_of(r, f.metric));
        other.insert(value_of(r, "current"));
    }
    EXPECT_EQ(stuck.size(), 1u);
    EXPECT_GT(other.size(), 100u);
    // Before and after, the sensor moves again.
    std::set<double> before;
    for (int64_t t = f.start - 100; t < f.start; ++t)
        before.insert(value_of(sample(p, f.machine, t), f.metric));
    EXPECT_GT(before.size(), 10u);
}

TEST(demo_plant_test, silent_device_sends_nothing_for_its_window_only) {
    auto p = make_plant(1);
    auto f = fault_of(p, fault_kind::silent);
    EXPECT_TRUE(sample(p, f.machine, f.start - 1).present);
    for (int64_t t = f.start; t < f.end; ++t) {
        auto r = sample(p, f.machine, t);
        ASSERT_FALSE(r.present) << t;
        EXPECT_TRUE(r.values.empty());
    }
    EXPECT_TRUE(sample(p, f.machine, f.end).present);
    EXPECT_GE(f.end - f.start, 180);  // longer than the 2 min no-data rule
    std::string lp;
    append_line(lp, p.machines[f.machine].name, sample(p, f.machine, f.start), 1);
    EXPECT_EQ(lp, "");
}

TEST(demo_plant_test, overheating_passes_the_type_limit_for_minutes_then_cools) {
    for (uint64_t seed : {1u, 2u, 3u}) {
        auto p = make_plant(seed);
        auto f = fault_of(p, fault_kind::overheating);
        const auto& k = kinds()[p.machines[f.machine].kind];
        int64_t first_above = -1, seconds_above = 0;
        for (int64_t t = f.start; t < f.end; ++t) {
            double temp = value_of(sample(p, f.machine, t), "temperature");
            if (temp > k.overheat) {
                if (first_above < 0) first_above = t;
                ++seconds_above;
            }
        }
        EXPECT_GE(first_above, f.start);
        EXPECT_LE(first_above, f.peak);
        EXPECT_GE(seconds_above, 180) << "the 1m rule must hold with room to spare";
        EXPECT_LT(value_of(sample(p, f.machine, f.end + 60), "temperature"), k.overheat_clear);
    }
}

TEST(demo_plant_test, drift_grows_steadily) {
    auto p = make_plant(1);
    auto f = fault_of(p, fault_kind::drift);
    const auto& ms = *find_metric(kinds()[p.machines[f.machine].kind], f.metric);
    // 0.15 % of the range per second on top of the healthy value: half the range in 5.5 min.
    for (int64_t t = f.start; t < f.end; t += 30) {
        double offset =
            value_of(sample(p, f.machine, t), f.metric) - healthy_value(p, f.machine, f.metric, t);
        EXPECT_NEAR(offset, 0.0015 * (ms.high - ms.low) * static_cast<double>(t - f.start), 0.002)
            << t;
    }
    EXPECT_EQ(value_of(sample(p, f.machine, f.end), f.metric),
              healthy_value(p, f.machine, f.metric, f.end));
}

// The demo's rules for drift (current outside its rated range for 1 min) and for a stuck
// sensor (30 s of readings equal to their mean) evaluated here at 1 Hz over two fault cycles
// of 20 seeds: each fires during its fault, and never on a machine without that fault.
TEST(demo_plant_test, drift_and_stuck_sensor_rules_fire_on_their_faults_only) {
    for (uint64_t seed = 1; seed <= 20; ++seed) {
        auto p = make_plant(seed);
        const auto faults = faults_between(p, 0, 2 * fault_cycle_seconds);
        for (size_t m = 0; m < p.machines.size(); ++m) {
            const auto& k = kinds()[p.machines[m].kind];
            const auto& current = *find_metric(k, "current");
            const std::string_view stuck = stuck_metric(k);
            int64_t outside_since = -1, flat_since = -1;
            std::vector<double> window;                     // the stuck metric's last 30 readings
            std::vector<int64_t> drift_fired, stuck_fired;  // when an alarm would be raised
            for (int64_t t = 0; t < 2 * fault_cycle_seconds; ++t) {
                auto r = sample(p, m, t);
                if (!r.present) continue;
                double c = value_of(r, "current");
                bool outside = c < current.low || c > current.high;
                outside_since = outside ? (outside_since < 0 ? t : outside_since) : -1;
                if (outside_since >= 0 && t - outside_since == 60) drift_fired.push_back(t);
                window.push_back(value_of(r, stuck));
                if (window.size() > 30) window.erase(window.begin());
                double mean = 0;
                for (double v : window)
                    mean += v / static_cast<double>(window.size());
                bool flat = std::abs(window.back() - mean) < 0.0005;
                flat_since = flat ? (flat_since < 0 ? t : flat_since) : -1;
                if (flat_since >= 0 && t - flat_since == 30) stuck_fired.push_back(t);
            }
            auto during = [&](fault_kind kind, int64_t t) {
                for (const auto& f : faults)
                    if (f.kind == kind && f.machine == m && t >= f.start && t < f.end) return true;
                return false;
            };
            for (int64_t t : drift_fired) {
                ASSERT_TRUE(during(fault_kind::drift, t))
                    << "seed " << seed << " " << p.machines[m].name << " current at " << t;
            }
            for (int64_t t : stuck_fired) {
                ASSERT_TRUE(during(fault_kind::stuck_sensor, t))
                    << "seed " << seed << " " << p.machines[m].name << " flat at " << t;
            }
            for (const auto& f : faults) {
                if (f.machine != m) continue;
                auto fired_in = [&](const std::vector<int64_t>& at) {
                    return std::any_of(at.begin(), at.end(),
                                       [&](int64_t t) { return t >= f.start && t < f.end; });
                };
                if (f.kind == fault_kind::drift) {
                    EXPECT_TRUE(fired_in(drift_fired))
                        << "seed " << seed << " drift on " << p.machines[m].name;
                }
                if (f.kind == fault_kind::stuck_sensor) {
                    EXPECT_TRUE(fired_in(stuck_fired))
                        << "seed " << seed << " stuck " << stuck << " on " << p.machines[m].name;
                }
            }
        }
    }
}

TEST(demo_plant_test, default_detector_scores_the_bearing_fault_high_within_a_minute) {
    // As the server sees it: an hour of healthy history, then the live signal.
    for (uint64_t seed : {1u, 2u, 3u, 4u, 5u}) {
        auto p = make_plant(seed);
        auto f = fault_of(p, fault_kind::bearing_wear);
        auto det = analytics::make_detector();
        ASSERT_TRUE(static_cast<bool>(det));
        double best = 0;
        int64_t at = -1;
        for (int64_t t = -3600; t < f.peak + 60; ++t) {
            double v = value_of(sample(p, f.machine, t), "vibration_rms");
            double s = (*det)->update((t + 2'000'000'000) * 1'000'000'000, v);
            if (t >= f.peak && s > best) {
                best = s;
                at = t;
            }
        }
        EXPECT_GT(best, 0.8) << "seed " << seed << " " << p.machines[f.machine].name;
        EXPECT_LT(at, f.peak + 60);
    }
}

TEST(demo_plant_test, rules_scale_their_durations_with_speed) {
    auto rules = rules_for(1);
    ASSERT_EQ(rules.size(), 24u);
    EXPECT_EQ(rules[0].name, "pump overheating");
    EXPECT_EQ(rules[0].device_type, "pump");
    EXPECT_EQ(rules[0].condition, "temperature > 80 for 1m");
    EXPECT_EQ(rules[0].clear, "temperature < 75");
    EXPECT_EQ(rules[1].condition, "anomaly(vibration_rms) > 0.8");
    EXPECT_EQ(rules[2].condition, "no data for 2m");
    auto fast = rules_for(10);
    EXPECT_EQ(fast[0].condition, "temperature > 80 for 6s");
    EXPECT_EQ(fast[2].condition, "no data for 12s");
    EXPECT_EQ(rules[3].name, "pump stuck sensor");
    EXPECT_EQ(rules[3].condition, "abs(pressure - mean(pressure, 30s)) < 0.0005 for 30s");
    EXPECT_EQ(fast[3].condition, "abs(pressure - mean(pressure, 3s)) < 0.0005 for 3s");
    EXPECT_EQ(rules[4].condition, "current outside 12..28 for 1m");
    EXPECT_EQ(fast[4].condition, "current outside 12..28 for 6s");
    EXPECT_EQ(rules[5].name, "pump health");
    EXPECT_EQ(rules[5].condition, "health() > 0.5 for 1m");
    EXPECT_EQ(fast[5].condition, "health() > 0.5 for 6s");
    EXPECT_EQ(rules_for(1)[6].condition, "temperature > 95 for 1m");
    EXPECT_EQ(rules_for(1)[15].condition, "abs(rpm - mean(rpm, 30s)) < 0.0005 for 30s");
    // The rules on the forecast come last, two per type.
    EXPECT_EQ(rules[18].name, "pump temperature forecast");
    EXPECT_EQ(rules[18].condition, "crosses(temperature, above 80) within 10m every 10s");
    EXPECT_EQ(rules[19].name, "pump current forecast");
    EXPECT_EQ(rules[19].condition, "crosses(current, above 28) within 5m every 10s");
    EXPECT_EQ(fast[18].condition, "crosses(temperature, above 80) within 1m every 1s");
    EXPECT_EQ(rules_for(1000)[18].condition, "crosses(temperature, above 80) within 1s every 1s");
    EXPECT_EQ(rules[20].name, "compressor temperature forecast");
    EXPECT_EQ(duration_text(0.25), "250ms");
    EXPECT_EQ(duration_text(90), "90s");
    EXPECT_EQ(duration_text(7200), "2h");
}

TEST(demo_plant_test, telemetry_and_line_protocol_bodies) {
    reading r;
    r.values = {{"temperature", 61.25}, {"rpm", 1450}};
    EXPECT_EQ(telemetry_json(r, 1700000000000),
              R"({"ts":1700000000000,"values":{"temperature":61.25,"rpm":1450}})");
    std::string lp;
    append_line(lp, "pump-01", r, 1700000000000);
    EXPECT_EQ(lp, "telemetry,device=pump-01 temperature=61.25,rpm=1450 1700000000000\n");
}

TEST(demo_plant_test, parse_seconds_reads_the_backfill_flag) {
    EXPECT_EQ(parse_seconds("0"), 0);
    EXPECT_EQ(parse_seconds("90"), 90);
    EXPECT_EQ(parse_seconds("90s"), 90);
    EXPECT_EQ(parse_seconds("10m"), 600);
    EXPECT_EQ(parse_seconds("1h"), 3600);
    EXPECT_EQ(parse_seconds("-1"), std::nullopt);
    EXPECT_EQ(parse_seconds("h"), std::nullopt);
    EXPECT_EQ(parse_seconds("5d"), std::nullopt);
}

TEST(demo_plant_test, summary_names_the_first_fault_and_when) {
    auto p = make_plant(1);
    auto s = summary(p, 1);
    EXPECT_NE(s.find("20 machines"), std::string::npos) << s;
    EXPECT_NE(s.find("first fault: bearing wear on " +
                     p.machines[index_of(p, fault_kind::bearing_wear)].name + " in 30 s"),
              std::string::npos)
        << s;
    EXPECT_NE(summary(p, 10).find("in 3 s"), std::string::npos);
}

// The rules on the forecast read the mean of each forecast step (12.5 simulated seconds at
// any speed: a 10-minute horizon over 48 steps). On 20 seeds over two fault cycles: no such
// mean of a machine without the fault reaches the forecast rule's limit (no false warning,
// whatever the model), and on the faulty machine the limit is passed while the threshold
// rule still waits out its minute (so even a model that only sees the present warns first).
TEST(demo_plant_test, forecast_limits_are_reached_only_by_overheating_and_drift) {
    for (uint64_t seed = 1; seed <= 20; ++seed) {
        auto p = make_plant(seed);
        const auto faults = faults_between(p, 0, 2 * fault_cycle_seconds);
        for (size_t m = 0; m < p.machines.size(); ++m) {
            const auto& k = kinds()[p.machines[m].kind];
            const double current_high = find_metric(k, "current")->high;
            for (int64_t t = 0; t + 12 < 2 * fault_cycle_seconds; t += 6) {
                double temp = 0, current = 0;
                int n = 0;
                for (int64_t s = t; s < t + 12; ++s) {
                    auto r = sample(p, m, s);
                    if (!r.present) continue;
                    temp += value_of(r, "temperature");
                    current += value_of(r, "current");
                    ++n;
                }
                if (n == 0) continue;
                temp /= n;
                current /= n;
                bool hot = false, drifting = false;
                for (const auto& f : faults)
                    if (f.machine == m && t + 12 > f.start && t < f.end) {
                        hot |= f.kind == fault_kind::overheating;
                        drifting |= f.kind == fault_kind::drift;
                    }
                if (!hot) {
                    EXPECT_LT(temp, k.overheat)
                        << "seed " << seed << " " << p.machines[m].name << " at " << t;
                }
                if (!drifting) {
                    EXPECT_LT(current, current_high)
                        << "seed " << seed << " " << p.machines[m].name << " at " << t;
                }
            }
        }
        for (const auto& f : faults) {
            if (f.kind != fault_kind::overheating && f.kind != fault_kind::drift) continue;
            const auto& k = kinds()[p.machines[f.machine].kind];
            const double limit =
                f.kind == fault_kind::overheating ? k.overheat : find_metric(k, "current")->high;
            int64_t first_past = -1;
            for (int64_t t = f.start; t < f.end && first_past < 0; ++t)
                if (value_of(sample(p, f.machine, t), f.metric) > limit) first_past = t;
            ASSERT_GE(first_past, 0) << "seed " << seed << " " << fault_name(f.kind);
            // A minute of margin before the threshold rule's "for 1m" has passed.
            EXPECT_LE(first_past + 60, f.end) << "seed " << seed << " " << fault_name(f.kind);
        }
    }
}

}  // namespace
}  // namespace clisonix::app::sim
