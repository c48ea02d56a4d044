// Clisonix — streaming anomaly detection ("ALBA"): detectors, the ensemble, NAB scoring.
//
// A detector sees one series' points in time order and returns, for each point, an anomaly
// score in [0, 1] computed from that point and the points before it only (no look-ahead).
// Its state is a fixed-size value (state_bytes(), the same after warm-up as before), so the
// memory for thousands of series is known up front: from 80 bytes (level) to 64 KiB
// (artime, the default) per series. Detectors need no labels and no per-series
// settings: every series is served by the same constants.
//
//   auto d = analytics::make_detector("ensemble");
//   for (auto& p : points) store(p.ts, (*d)->update(p.ts, p.value));
//
// Scores are sparse by design: a detector raises one high score when something new starts
// and then damps its output for a while (alert suppression), because one alarm per incident
// is what an operator (and the NAB benchmark) wants.
//
// The ingest pipeline uses series_detectors: one detector state per series id, safe to
// call from several ingest threads.
//
// NAB: run_nab() runs detectors over the Numenta Anomaly Benchmark layout and scores them
// with this module's own implementation of NAB's scoring (score_nab()).
//
// Thread safety: a detector is not thread-safe (one per series, one caller at a time);
// series_detectors and the free functions may be called from any thread.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/result.h"

namespace clisonix::analytics {

// One series' streaming anomaly detector.
class detector {
public:
    virtual ~detector() = default;
    // Feeds the next point (in arrival order) and returns its anomaly score in [0, 1].
    // Non-finite values are scored 0 and leave the state unchanged.
    virtual double update(int64_t ts_ns, double value) = 0;
    // Bytes of state this detector holds, the object included.
    virtual size_t state_bytes() const = 0;
    // The name make_detector() knows it by.
    virtual std::string_view name() const = 0;
};

// The product's one decision threshold: `anomaly(m) > 0.8` means "an anomaly" on every
// series. The default detector scores above it only for an alarm that comes with a new
// extreme of the series (docs/analytics.md, "Calibrated score"); its other alarms (a new
// shape within the usual range, which every noisy series produces now and then) score
// below it. Rules and the demo use this value.
inline constexpr double anomaly_decision_threshold = 0.8;

// Scores (anomaly, machine health and its contributions) are stored with this many decimals:
// finer steps mean nothing to a threshold like the one above, and a series of exact
// 3-decimal values is what the block codec stores as small integers (docs/format/block.md,
// decimal) instead of 64-bit patterns. round_score gives the double of that decimal text.
inline constexpr int score_decimals = 3;
inline double round_score(double score) {
    return std::nearbyint(score * 1000.0) / 1000.0;
}

// "ensemble" (the default) and the single detectors it combines, in that order.
std::vector<std::string_view> detector_names();
// A fresh detector; an unknown name is invalid_argument (the message lists the names).
result<std::unique_ptr<detector>> make_detector(std::string_view name = "ensemble");

// One detector state per series id, created on the first point of a series. Calls for
// different series run in parallel (the ids are spread over striped locks); calls for one
// series must come in time order. Memory: state_bytes() of one detector per series seen,
// up to max_series; points of further series score 0 and are counted in dropped().
class series_detectors {
public:
    explicit series_detectors(std::string_view detector = "ensemble", size_t max_series = 1 << 20);
    ~series_detectors();
    series_detectors(const series_detectors&) = delete;
    series_detectors& operator=(const series_detectors&) = delete;

    // The anomaly score of the point (see detector::update).
    double score(uint32_t series, int64_t ts_ns, double value);
    // Forgets a series (deleted, or expired by retention).
    void erase(uint32_t series);
    size_t series_count() const;
    // Points not scored because max_series was reached.
    uint64_t dropped() const;
    // Bytes of detector state held for all series (excluding the map's own nodes).
    size_t state_bytes() const;
    // False when the detector name is unknown; then score() always returns 0.
    bool valid() const;

private:
    struct stripe;
    std::string _detector;
    size_t _max_series;
    bool _valid;
    std::unique_ptr<stripe[]> _stripes;
};

// ---- Machine health (multivariate) -------------------------------------------------------

// One machine's health: how far the machine as a whole (a row of its numeric metrics, one
// value per metric in a fixed order) is from the normal it learned on a baseline window.
// The score is in [0, 1]: 0 is "running as in the baseline", 0.5 is the model's own
// "abnormal" decision (the product's fixed threshold: `health() > 0.5` in a rule), 1 is
// far from normal. Each metric's contribution says which sensors are to blame.
//
//   auto model = analytics::health_model::train(baseline_rows);   // rows: one value per metric
//   if (!model) report(model.error());
//   for (auto& row : live_rows) { auto a = model->update(row); store(a.score, a.contributions); }
//
// update() is streaming: the score of a row depends on that row and the rows before it
// only. A NaN in a row means "not measured this time" (the model uses what it has).
// The state is fixed after train(): state_bytes() does not grow with the rows scored.
// Not thread-safe: one model per machine, one caller at a time.
class health_model {
public:
    struct assessment {
        double score = 0;                   // in [0, 1]; >= 0.5 is abnormal
        std::vector<double> contributions;  // per metric, >= 0, summing to `score`
    };

    // Learns normal from the baseline rows (each as wide as the first). Errors:
    // invalid_argument when there are fewer than min_baseline_rows() usable rows or the
    // rows differ in width (the message says which row).
    static result<health_model> train(std::span<const std::vector<double>> rows);
    // Rows the baseline needs at least.
    static size_t min_baseline_rows();

    health_model(health_model&&) noexcept;
    health_model& operator=(health_model&&) noexcept;
    ~health_model();

    // The assessment of the next row (as wide as the baseline's rows), in time order.
    assessment update(std::span<const double> row);
    // Metrics per row.
    size_t width() const;
    // Bytes of state, the object included.
    size_t state_bytes() const;

private:
    struct state;
    explicit health_model(std::unique_ptr<state> s);
    std::unique_ptr<state> _s;
};

// ---- Machine health benchmark (SKAB layout) ------------------------------------------------

struct health_bench_options {
    std::string data_dir;     // every *.csv under it, SKAB's format (';', datetime first)
    std::string out_dir;      // <out_dir>/<same relative path>: timestamp,anomaly_score
    size_t train_rows = 400;  // the baseline: the first rows of each file
    // Per file, after it is written: files done, files in all, its path under data_dir.
    std::function<void(size_t done, size_t total, const std::string& file)> progress;
};

// Outlier detection counts over test rows (a row is flagged when its score is >= 0.5).
struct outlier_counts {
    size_t tp = 0, fp = 0, tn = 0, fn = 0;
    double f1() const;   // 2 TP / (2 TP + FP + FN)
    double far() const;  // false alarm rate, %: 100 FP / (FP + TN)
    double mar() const;  // missed alarm rate, %: 100 FN / (FN + TP)
};

struct health_bench_report {
    size_t files = 0;
    size_t rows = 0;             // data rows over every file
    size_t test_rows = 0;        // rows after each file's training part
    size_t metrics = 0;          // the widest file's sensor columns
    size_t state_bytes = 0;      // largest model state over the files
    double seconds_per_row = 0;  // model time (train + update) per data row
    bool labelled = false;       // every file has an `anomaly` column: `pooled` is meaningful
    outlier_counts pooled;       // SKAB's protocol: pooled over the test rows of every file
};

// For every *.csv under data_dir (sorted by path): learns health_model from the first
// train_rows rows, streams every row through update() (the training rows too), writes the
// scores. The model sees every column except the first (the timestamp) and the label columns
// `anomaly` and `changepoint`; those are read only by the scorer, afterwards. Errors:
// not_found (a missing directory, no CSV under it), invalid_argument (a bad row, as
// "file:line: field: reason"; a file no longer than train_rows), unavailable (out_dir cannot
// be written).
result<health_bench_report> run_health_bench(const health_bench_options& opts);

// The report for a terminal: files, rows, and when labelled the pooled F1, FAR %, MAR %.
std::string format_health_bench(const health_bench_report& report);

// ---- NAB scoring -------------------------------------------------------------------------

// Weights of a NAB application profile.
struct nab_profile {
    std::string_view name;
    double a_tp;
    double a_fn;
    double a_fp;
};
// standard (1, 1, 0.11), reward_low_FP_rate (1, 1, 0.22), reward_low_FN_rate (1, 2, 0.11).
std::span<const nab_profile> nab_profiles();

// One scored data file: the detector's score per row (file order) and the anomaly windows
// as inclusive row ranges [first, last], in order and disjoint.
struct nab_series {
    std::vector<double> scores;
    std::vector<std::pair<size_t, size_t>> windows;
};

// NAB's result for one profile over a set of files.
struct nab_score {
    double normalized = 0;  // 100 (raw - null) / (perfect - null)
    double raw = 0;         // summed over the files at the best threshold
    double threshold = 0;   // the best threshold (a score value; > 1 means "never fire")
    size_t tp = 0;          // windows detected
    size_t fn = 0;          // windows missed
    size_t fp = 0;          // detections outside every window (rows after the probation)
};

// Rows ignored at the start of an n-row file: min(floor(0.15 n), 750).
size_t nab_probation(size_t rows);
// NAB's scaled sigmoid: 2 / (1 + e^(5y)) - 1, and -1 for y > 3.
double nab_sigmoid(double y);
// Scores the files under one profile, with the threshold that maximises the raw score
// over all of them (searched over every distinct score value and "never fire").
nab_score score_nab(std::span<const nab_series> files, const nab_profile& profile);
// The same files scored at a given threshold (a row fires when its score >= threshold):
// how a threshold chosen elsewhere (other categories, or the product's fixed one) does here.
nab_score score_nab_at(std::span<const nab_series> files, const nab_profile& profile,
                       double threshold);

// ---- NAB runner -------------------------------------------------------------------------

struct nab_options {
    std::string data_dir;                // NAB layout: <category>/<file>.csv, timestamp,value
    std::string labels_file;             // NAB's combined_windows.json format
    std::string out_dir;                 // results: <out_dir>/<category>/<detector>_<file>.csv
    std::vector<std::string> detectors;  // empty: every name in detector_names()
    // After each file and detector ("level realKnownCause/ec2_cpu.csv"); first (0, total, "").
    std::function<void(size_t done, size_t total, const std::string& step)> progress;
    // Also score leave-one-category-out (nab_detector_result::folds).
    bool loco = false;
    // Start every stream this many rows into its file (windows move with it; a window that
    // ends before is dropped): the same data from another starting point, a check on how
    // much of a score depends on what the learning period happened to see.
    size_t skip_rows = 0;
};

// One leave-one-category-out fold (standard profile): the threshold is chosen on every
// other category and carried over to the held-out one, as it would be to unseen data.
struct nab_fold {
    std::string category;  // held out
    size_t files = 0;
    size_t windows = 0;    // a category without windows only counts false positives
    double threshold = 0;  // chosen on the other categories
    nab_score held_out;    // the category at that threshold
    nab_score own;         // the category at its own best threshold (in-sample)
    nab_score fixed;       // the category at anomaly_decision_threshold
};

struct nab_detector_result {
    std::string detector;
    std::vector<nab_score> scores;  // one per nab_profiles() entry, in that order
    nab_score fixed;                // standard profile at anomaly_decision_threshold
    std::vector<nab_fold> folds;    // with nab_options::loco, one per category
    size_t state_bytes = 0;         // largest state seen over the files
    double seconds = 0;             // detector time over all files
};

struct nab_report {
    size_t files = 0;
    size_t rows = 0;
    size_t windows = 0;
    std::vector<nab_detector_result> detectors;
};

// Runs each detector over every CSV under data_dir (rows in file order, none dropped),
// writes the result CSVs (timestamp,value,anomaly_score,label: label is 1 inside a window,
// else 0) and scores them. The labels are read only for that column and for the scores.
// Errors: not_found (a missing directory or file), invalid_argument (an unknown detector, a
// malformed CSV row or label file: the field names the file and line), unavailable (out_dir
// cannot be written).
result<nab_report> run_nab(const nab_options& opts);

// The report as a fixed-width table: one row per detector, the three profiles' normalised
// scores, then windows detected / missed / false positives at the standard threshold, and
// the standard score at the fixed decision threshold.
std::string format_nab_table(const nab_report& report);

// The leave-one-category-out folds as a table: per detector and held-out category, the
// threshold carried over, the held-out score at it, the in-sample score, the score at the
// fixed decision threshold; a category without windows shows its false positives.
std::string format_nab_loco(const nab_report& report);

}  // namespace clisonix::analytics
