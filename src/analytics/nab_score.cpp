// NAB's scoring (Lavin & Ahmad 2015, NAB v1.1 sweeper), re-implemented row for row.
#include <algorithm>
#include <array>
#include <cmath>
#include <limits>

#include "analytics/analytics.h"

namespace clisonix::analytics {

namespace {

constexpr std::array<nab_profile, 3> profiles = {{
    {"standard", 1.0, 1.0, 0.11},
    {"reward_low_FP_rate", 1.0, 1.0, 0.22},
    {"reward_low_FN_rate", 1.0, 2.0, 0.11},
}};

constexpr int32_t no_window = -1;

struct scored_row {
    double score;
    double sweep;    // the row's worth if it were a detection
    int32_t window;  // index into the pooled window list, or no_window
};

}  // namespace

std::span<const nab_profile> nab_profiles() {
    return profiles;
}

size_t nab_probation(size_t rows) {
    return std::min<size_t>(rows * 15 / 100, 750);
}

double nab_sigmoid(double y) {
    if (y > 3.0) return -1.0;
    return 2.0 / (1.0 + std::exp(5.0 * y)) - 1.0;
}

namespace {

// Every row after the probation with its score and its worth as a detection, and the
// number of windows over all files.
std::vector<scored_row> score_rows(std::span<const nab_series> files, const nab_profile& profile,
                                   size_t& total_windows) {
    const double max_tp = nab_sigmoid(-1.0);
    std::vector<scored_row> rows;
    total_windows = 0;
    for (const auto& file : files) {
        const size_t n = file.scores.size();
        const size_t probation = nab_probation(n);
        const auto first_window = static_cast<int32_t>(total_windows);
        total_windows += file.windows.size();
        size_t next = 0;         // the next window not yet passed
        bool have_prev = false;  // a window has ended before the current row
        size_t prev_end = 0;
        size_t prev_width = 0;
        for (size_t i = 0; i < n; ++i) {
            while (next < file.windows.size() && file.windows[next].second < i) {
                have_prev = true;
                prev_end = file.windows[next].second;
                prev_width = prev_end - file.windows[next].first + 1;
                ++next;
            }
            double sweep;
            int32_t window = no_window;
            if (next < file.windows.size() && file.windows[next].first <= i) {
                const auto [s, e] = file.windows[next];
                const double width = static_cast<double>(e - s + 1);
                const double y = -static_cast<double>(e - i + 1) / width;
                sweep = profile.a_tp * nab_sigmoid(y) / max_tp;
                window = first_window + static_cast<int32_t>(next);
            } else if (have_prev && prev_width > 1) {
                const double y =
                    static_cast<double>(i - prev_end) / static_cast<double>(prev_width - 1);
                sweep = profile.a_fp * nab_sigmoid(y);
            } else {
                sweep = -profile.a_fp;
            }
            if (i >= probation) rows.push_back({file.scores[i], sweep, window});
        }
    }
    return rows;
}

// Fills tp/fn/fp and the normalised score from the rows at or above `threshold`.
void count_at(const std::vector<scored_row>& rows, size_t total_windows, const nab_profile& profile,
              double threshold, double raw, nab_score& out) {
    out.raw = raw;
    std::vector<bool> hit(total_windows, false);
    for (const auto& r : rows) {
        if (!(r.score >= threshold)) continue;
        if (r.window == no_window) {
            ++out.fp;
        } else {
            hit[static_cast<size_t>(r.window)] = true;
        }
    }
    out.tp = static_cast<size_t>(std::count(hit.begin(), hit.end(), true));
    out.fn = total_windows - out.tp;
    const double perfect = profile.a_tp * static_cast<double>(total_windows);
    const double null = -profile.a_fn * static_cast<double>(total_windows);
    out.normalized = perfect > null ? 100.0 * (raw - null) / (perfect - null) : 0.0;
}

}  // namespace

nab_score score_nab(std::span<const nab_series> files, const nab_profile& profile) {
    size_t total_windows = 0;
    std::vector<scored_row> rows = score_rows(files, profile, total_windows);
    std::stable_sort(rows.begin(), rows.end(),
                     [](const scored_row& a, const scored_row& b) { return a.score > b.score; });

    // Sweep the threshold down through every distinct score; a window's part is its best
    // (earliest) detection, or -A_FN while it has none.
    std::vector<double> part(total_windows, -profile.a_fn);
    double total = -profile.a_fn * static_cast<double>(total_windows);
    double best = total;
    double best_threshold = std::numeric_limits<double>::infinity();
    for (size_t i = 0; i < rows.size();) {
        const double threshold = rows[i].score;
        for (; i < rows.size() && rows[i].score == threshold; ++i) {
            const auto& r = rows[i];
            if (r.window == no_window) {
                total += r.sweep;
            } else if (r.sweep > part[static_cast<size_t>(r.window)]) {
                total += r.sweep - part[static_cast<size_t>(r.window)];
                part[static_cast<size_t>(r.window)] = r.sweep;
            }
        }
        if (total > best) {
            best = total;
            best_threshold = threshold;
        }
    }

    nab_score out;
    out.threshold = std::isinf(best_threshold) ? 1.1 : best_threshold;
    count_at(rows, total_windows, profile, best_threshold, best, out);
    return out;
}

nab_score score_nab_at(std::span<const nab_series> files, const nab_profile& profile,
                       double threshold) {
    size_t total_windows = 0;
    std::vector<scored_row> rows = score_rows(files, profile, total_windows);
    // A window counts its earliest detection; in row order that is the first one seen.
    std::vector<double> part(total_windows, -profile.a_fn);
    std::vector<bool> hit(total_windows, false);
    double total = 0;
    for (const auto& r : rows) {
        if (!(r.score >= threshold)) continue;
        if (r.window == no_window) {
            total += r.sweep;
        } else if (!hit[static_cast<size_t>(r.window)]) {
            hit[static_cast<size_t>(r.window)] = true;
            part[static_cast<size_t>(r.window)] = r.sweep;
        }
    }
    for (double p : part)
        total += p;
    nab_score out;
    out.threshold = threshold;
    count_at(rows, total_windows, profile, threshold, total, out);
    return out;
}

}  // namespace clisonix::analytics
