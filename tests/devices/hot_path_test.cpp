// What the registry adds to every write: enrich() and observe() on a warm cache. Prints the
// cost per point; the bound is loose (a shared, loaded CI machine), the number is the point.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>

#include "devices/devices.h"
#include "registry_contract.h"
#include "support/test_support.h"

namespace clisonix::devices::testing {
namespace {

TEST(devices_hot_path, enrich_and_observe_cost_per_point) {
    clisonix::testing::temp_dir dir;
    auto store = meta::open("", dir.str());
    ASSERT_TRUE(store.ok());
    auth::auth_service auth(**store, fast_auth_options());
    registry reg(**store, auth);
    ASSERT_TRUE(reg.start().ok());
    device_type t;
    t.name = "thermo";
    t.metrics["temperature"] = {"C", 0.0, 100.0};
    ASSERT_TRUE(reg.create_type(t).ok());
    constexpr int devices = 100;
    for (int d = 0; d < devices; ++d)
        ASSERT_TRUE(
            reg.create_device({"d-" + std::to_string(d), "thermo", "", ""}, {"t", "l"}).ok());

    // 100 devices x 2 metrics x 50 points = 10,000 points per batch; 1% out of range.
    storage::write_batch b;
    auto fill = [&] {
        b.clear();
        for (int d = 0; d < devices; ++d) {
            auto temp = *b.series("telemetry,device=d-" + std::to_string(d) + " temperature",
                                  storage::value_type::float64);
            auto hum = *b.series("telemetry,device=d-" + std::to_string(d) + " humidity",
                                 storage::value_type::float64);
            for (int i = 0; i < 50; ++i) {
                b.add(temp, i * 1000, i == 7 ? 150.0 : 20.0 + i);
                b.add(hum, i * 1000, 40.0);
            }
        }
    };
    fill();
    reg.enrich(b);  // warms the cache
    ASSERT_EQ(b.point_count(), 10'000u + devices);

    constexpr int rounds = 50;
    std::chrono::nanoseconds spent{0};
    for (int r = 0; r < rounds; ++r) {
        fill();  // not timed: the parser's work
        auto start = std::chrono::steady_clock::now();
        reg.enrich(b);
        reg.observe(b);
        spent += std::chrono::steady_clock::now() - start;
    }
    double ns_per_point = static_cast<double>(spent.count()) / (rounds * 10'000.0);
    std::printf("registry enrich+observe: %.1f ns per point (%d series, 10000 points per batch)\n",
                ns_per_point, devices * 2);
    RecordProperty("ns_per_point", std::to_string(ns_per_point));
    EXPECT_LT(ns_per_point, 2000.0);
}

}  // namespace
}  // namespace clisonix::devices::testing
