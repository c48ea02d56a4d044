// The ensemble over the shared NAB development subset (../shared/nab beside the repository).
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "analytics/analytics.h"
#include "analytics/detectors.h"
#include "support/shared_data.h"

namespace a = clisonix::analytics;

#if defined(__SANITIZE_ADDRESS__)
#define CLISONIX_UNDER_SANITIZER 1
#else
#define CLISONIX_UNDER_SANITIZER 0
#endif

TEST(nab, ensemble_standard_score_on_the_shared_subset) {
    if (CLISONIX_UNDER_SANITIZER) GTEST_SKIP() << "too slow under the sanitizers";
    const auto nab = clisonix::testing::shared_data("nab");
    if (auto why = clisonix::testing::missing(nab / "data")) GTEST_SKIP() << *why;
    a::nab_options o;
    o.data_dir = (nab / "data").string();
    o.labels_file = (nab / "labels.json").string();
    o.detectors = {"ensemble"};
    o.loco = true;
    auto r = a::run_nab(o);
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(r->files, 25u);
    EXPECT_EQ(r->rows, 129577u);
    EXPECT_EQ(r->windows, 39u);
    const auto& standard = r->detectors.at(0).scores.at(0);
    std::printf("%s\n%s", a::format_nab_table(*r).c_str(), a::format_nab_loco(*r).c_str());
    // Regression floors just below the scores reached today (docs/analytics.md): swept
    // 76.3, above Numenta HTM's 67.2 and ARTime's published 74.6 (which uses NAB's
    // look-ahead, below); 28.1 at the product's fixed threshold 0.8.
    EXPECT_GT(standard.normalized, 76.1);
    EXPECT_GT(r->detectors.at(0).fixed.normalized, 27.9);
    // Leave one category out, the threshold carried over from the other three: 70.2,
    // 70.1, 79.1, and no false positive on the series without anomalies.
    const auto& folds = r->detectors.at(0).folds;
    ASSERT_EQ(folds.size(), 4u);
    EXPECT_EQ(folds[0].category, "artificialNoAnomaly");
    EXPECT_EQ(folds[0].held_out.fp, 0u);
    EXPECT_EQ(folds[1].category, "artificialWithAnomaly");
    EXPECT_GT(folds[1].held_out.normalized, 70.0);
    EXPECT_EQ(folds[2].category, "realKnownCause");
    EXPECT_GT(folds[2].held_out.normalized, 69.9);
    EXPECT_EQ(folds[3].category, "realTraffic");
    EXPECT_GT(folds[3].held_out.normalized, 78.9);
}

// The same files started 25 to 400 rows later (the windows move with them): a detector that
// generalises scores about the same from any starting point. Today 76.3, 65.1, 66.9, 66.9,
// 64.8, 63.7, 58.5, 58.8 (mean 65.1; 64.1 with the fixed-length learning period).
TEST(nab, ensemble_score_from_other_starting_points) {
    if (CLISONIX_UNDER_SANITIZER) GTEST_SKIP() << "too slow under the sanitizers";
    const auto nab = clisonix::testing::shared_data("nab");
    if (auto why = clisonix::testing::missing(nab / "data")) GTEST_SKIP() << *why;
    double sum = 0, lowest = 100;
    const std::vector<size_t> skips = {0, 25, 50, 100, 150, 200, 300, 400};
    for (size_t skip : skips) {
        a::nab_options o;
        o.data_dir = (nab / "data").string();
        o.labels_file = (nab / "labels.json").string();
        o.detectors = {"ensemble"};
        o.skip_rows = skip;
        auto r = a::run_nab(o);
        ASSERT_TRUE(r) << r.error().message;
        const double standard = r->detectors.at(0).scores.at(0).normalized;
        std::printf("skip %zu: %.1f\n", skip, standard);
        sum += standard;
        lowest = std::min(lowest, standard);
    }
    EXPECT_GT(sum / static_cast<double>(skips.size()), 64.9);
    EXPECT_GT(lowest, 58.3);
}

// Our ARTime, given what NAB hands its detectors (the file's length, hence the
// probationary period as learning period, and the whole file's min and max), reproduces
// ARTime's published standard score on this subset: the reimplementation is faithful.
TEST(nab, artime_with_nab_look_ahead_reproduces_the_published_score) {
    if (CLISONIX_UNDER_SANITIZER) GTEST_SKIP() << "too slow under the sanitizers";
    const auto nab = clisonix::testing::shared_data("nab");
    if (auto why = clisonix::testing::missing(nab / "data")) GTEST_SKIP() << *why;
    const auto out = std::filesystem::temp_directory_path() / "clisonix_nab_artime_test";
    std::filesystem::remove_all(out);
    a::nab_options o;
    o.data_dir = (nab / "data").string();
    o.labels_file = (nab / "labels.json").string();
    o.out_dir = out.string();
    o.detectors = {"level"};  // any detector: its result files carry values and labels
    ASSERT_TRUE(a::run_nab(o));
    std::vector<a::nab_series> files;
    for (const auto& e : std::filesystem::recursive_directory_iterator(out)) {
        if (!e.is_regular_file()) continue;
        std::ifstream in(e.path());
        std::string line;
        std::getline(in, line);
        std::vector<double> values;
        a::nab_series s;
        while (std::getline(in, line)) {
            const auto c1 = line.find(',');
            const auto c2 = line.find(',', c1 + 1);
            values.push_back(std::stod(line.substr(c1 + 1, c2 - c1 - 1)));
            const bool inside = line.back() == '1';
            const size_t row = values.size() - 1;
            if (inside && (s.windows.empty() || s.windows.back().second + 1 != row))
                s.windows.push_back({row, row});
            else if (inside)
                s.windows.back().second = row;
        }
        a::detail::artime_settings set;
        set.learning = static_cast<uint32_t>(a::nab_probation(values.size()));
        set.known_range = true;
        set.range_min = *std::min_element(values.begin(), values.end());
        set.range_max = *std::max_element(values.begin(), values.end());
        set.calibrated = false;  // ARTime's own confidence
        a::detail::artime_state d(set);
        for (double v : values)
            s.scores.push_back(d.update(v));
        files.push_back(std::move(s));
    }
    std::filesystem::remove_all(out);
    ASSERT_EQ(files.size(), 25u);
    const auto standard = a::score_nab(files, a::nab_profiles()[0]);
    EXPECT_NEAR(standard.normalized, 74.6, 0.1);
}
