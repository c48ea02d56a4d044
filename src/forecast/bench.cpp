// `clisonix forecast-bench` (see forecast.h): M4's CSV layout in, forecasts and M4's measures
// (sMAPE, MASE, OWA against Naive2, MSIS, coverage) out.
#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>

#include "forecast/forecast.h"
#include "forecast/models.h"

namespace clisonix::forecast {
namespace {

struct series {
    std::string id;
    std::vector<double> values;
    size_t line = 0;
};

std::string unquoted(std::string_view field) {
    while (!field.empty() && (field.front() == ' ' || field.front() == '\t'))
        field.remove_prefix(1);
    while (!field.empty() && (field.back() == ' ' || field.back() == '\t' || field.back() == '\r'))
        field.remove_suffix(1);
    if (field.size() >= 2 && field.front() == '"' && field.back() == '"')
        field = field.substr(1, field.size() - 2);
    return std::string(field);
}

bool is_missing(const std::string& f) {
    return f.empty() || f == "NA" || f == "NaN" || f == "nan";
}

// Reads M4's layout: an optional header row ("V1","V2",...), then one series a line, its id
// first. Empty fields at the end of a line are padding; inside a series they are missing
// values (NaN).
result<std::vector<series>> read_series(const std::string& file) {
    std::ifstream in(file);
    if (!in) return make_error("not_found", file + ": cannot be read");
    std::vector<series> out;
    std::string line;
    size_t number = 0;
    bool any_line = false;
    while (std::getline(in, line)) {
        ++number;
        if (unquoted(line).empty()) continue;
        any_line = true;
        std::vector<std::string> fields;
        std::stringstream ss(line);
        std::string f;
        while (std::getline(ss, f, ','))
            fields.push_back(unquoted(f));
        if (!line.empty() && line.back() == ',') fields.emplace_back();
        // The header: a first line whose second field is not a number.
        if (out.empty() && number == 1 && fields.size() > 1 && !is_missing(fields[1])) {
            double v;
            auto [p, ec] =
                std::from_chars(fields[1].data(), fields[1].data() + fields[1].size(), v);
            if (ec != std::errc() || p != fields[1].data() + fields[1].size()) continue;
        }
        series s;
        s.id = fields[0];
        s.line = number;
        if (s.id.empty())
            return make_error("invalid_argument", file + ":" + std::to_string(number) +
                                                      ": the first field (the series id) is empty");
        size_t last = fields.size();
        while (last > 1 && is_missing(fields[last - 1]))
            --last;
        for (size_t i = 1; i < last; ++i) {
            const auto& v = fields[i];
            if (is_missing(v)) {
                s.values.push_back(std::numeric_limits<double>::quiet_NaN());
                continue;
            }
            double x = 0;
            auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), x);
            if (ec != std::errc() || p != v.data() + v.size() || !std::isfinite(x))
                return make_error("invalid_argument", file + ":" + std::to_string(number) +
                                                          ": series " + s.id + ", value " +
                                                          std::to_string(i) + ": '" + v +
                                                          "' is not a number");
            s.values.push_back(x);
        }
        out.push_back(std::move(s));
    }
    if (!any_line || out.empty())
        return make_error("invalid_argument", file + ":" +
                                                  std::to_string(std::max<size_t>(number, 1)) +
                                                  ": no series (the file is empty)");
    return out;
}

struct one_score {
    double smape = 0, mase = 0, msis = 0, inside = 0, inside50 = 0, smape_naive2 = 0,
           mase_naive2 = 0;
};

bench_scores average(const std::vector<one_score>& s, const std::vector<size_t>& which,
                     int horizon) {
    bench_scores b;
    b.series = which.size();
    if (which.empty()) return b;
    double inside = 0, inside50 = 0;
    for (size_t i : which) {
        inside50 += s[i].inside50;
        b.smape += s[i].smape;
        b.mase += s[i].mase;
        b.msis += s[i].msis;
        b.smape_naive2 += s[i].smape_naive2;
        b.mase_naive2 += s[i].mase_naive2;
        inside += s[i].inside;
    }
    const double c = static_cast<double>(which.size());
    b.smape /= c, b.mase /= c, b.msis /= c, b.smape_naive2 /= c, b.mase_naive2 /= c;
    b.coverage = 100 * inside / (c * horizon);
    b.coverage50 = 100 * inside50 / (c * horizon);
    b.owa = 0.5 * ((b.smape_naive2 > 0 ? b.smape / b.smape_naive2 : 0) +
                   (b.mase_naive2 > 0 ? b.mase / b.mase_naive2 : 0));
    return b;
}

result<void> write_rows(const std::filesystem::path& file, const std::vector<series>& in,
                        const std::vector<std::vector<double>>& rows, int horizon) {
    std::ofstream out(file);
    if (!out) return make_error("unavailable", file.string() + ": cannot be written");
    out << "id";
    for (int k = 1; k <= horizon; ++k)
        out << ",F" << k;
    out << "\n";
    char buf[32];
    for (size_t i = 0; i < in.size(); ++i) {
        out << in[i].id;
        for (double v : rows[i]) {
            std::snprintf(buf, sizeof buf, ",%.10g", v);
            out << buf;
        }
        out << "\n";
    }
    out.flush();
    if (!out) return make_error("unavailable", file.string() + ": cannot be written");
    return {};
}

double thread_cpu_seconds() {
    timespec ts{};
    ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

}  // namespace

result<bench_report> run_bench(const bench_options& opts) {
    if (opts.horizon < 1)
        return make_error("invalid_argument", "--horizon must be at least 1", "horizon");
    if (opts.season < 1)
        return make_error("invalid_argument", "--season must be at least 1", "season");
    auto names = method_names();
    if (std::find(names.begin(), names.end(), opts.method) == names.end()) {
        std::string known;
        for (auto n : names)
            known += (known.empty() ? "" : ", ") + std::string(n);
        return make_error("invalid_argument",
                          "--method " + opts.method + ": unknown (known: " + known + ")", "method");
    }
    if (opts.holdout > 0 && !opts.test_file.empty())
        return make_error("invalid_argument", "--holdout and --test exclude each other", "holdout");
    auto train = read_series(opts.train_file);
    if (!train) return train.error();
    const size_t h = static_cast<size_t>(opts.horizon);
    const size_t m = static_cast<size_t>(opts.season);
    const size_t cut = static_cast<size_t>(std::max(opts.holdout, 0));
    // MASE's scale needs more than one season; Naive2's test three.
    const size_t needed = std::max<size_t>(2 * m + 1, 3) + cut;
    std::vector<std::vector<double>> actual(train->size());
    for (auto& s : *train) {
        size_t finite = static_cast<size_t>(std::count_if(
            s.values.begin(), s.values.end(), [](double v) { return std::isfinite(v); }));
        if (s.values.size() < needed || finite < needed / 2 + 3)
            return make_error("invalid_argument",
                              opts.train_file + ":" + std::to_string(s.line) + ": series " + s.id +
                                  " has " + std::to_string(s.values.size()) + " values; at least " +
                                  std::to_string(needed) + " are needed" +
                                  (cut ? " (two seasons and the holdout)" : " (two seasons)"));
    }
    if (cut > 0) {
        for (size_t i = 0; i < train->size(); ++i) {
            auto& v = (*train)[i].values;
            actual[i].assign(v.end() - static_cast<std::ptrdiff_t>(cut),
                             v.end() - static_cast<std::ptrdiff_t>(cut) +
                                 static_cast<std::ptrdiff_t>(std::min(cut, h)));
            v.resize(v.size() - cut);
        }
        if (cut < h)
            return make_error("invalid_argument",
                              "--holdout must be at least the horizon (" + std::to_string(h) + ")",
                              "holdout");
    }
    const bool scored = cut > 0 || !opts.test_file.empty();
    if (!opts.test_file.empty()) {
        auto test = read_series(opts.test_file);
        if (!test) return test.error();
        std::map<std::string, size_t> index;
        for (size_t i = 0; i < train->size(); ++i)
            index[(*train)[i].id] = i;
        std::vector<bool> seen(train->size(), false);
        for (auto& t : *test) {
            auto it = index.find(t.id);
            if (it == index.end())
                return make_error("invalid_argument", opts.test_file + ":" +
                                                          std::to_string(t.line) + ": series " +
                                                          t.id + " is not in " + opts.train_file);
            const bool complete =
                t.values.size() >= h &&
                std::all_of(t.values.begin(), t.values.begin() + static_cast<std::ptrdiff_t>(h),
                            [](double v) { return std::isfinite(v); });
            if (!complete)
                return make_error("invalid_argument",
                                  opts.test_file + ":" + std::to_string(t.line) + ": series " +
                                      t.id + " has " + std::to_string(t.values.size()) +
                                      " values; the horizon needs " + std::to_string(h));
            actual[it->second].assign(t.values.begin(),
                                      t.values.begin() + static_cast<std::ptrdiff_t>(h));
            seen[it->second] = true;
        }
        for (size_t i = 0; i < train->size(); ++i)
            if (!seen[i])
                return make_error("invalid_argument", opts.train_file + ":" +
                                                          std::to_string((*train)[i].line) +
                                                          ": series " + (*train)[i].id +
                                                          " has no row in " + opts.test_file);
    }
    std::error_code ec;
    std::filesystem::create_directories(opts.out_dir, ec);
    if (ec || !std::filesystem::is_directory(opts.out_dir))
        return make_error("unavailable", opts.out_dir + ": cannot be created");

    // Every core takes the next series.
    const size_t total = train->size();
    std::vector<std::vector<double>> point(total), lower(total), upper(total), lower50(total),
        upper50(total);
    std::vector<std::string> failure(total);
    std::vector<double> cpu(total, 0.0);
    std::atomic<size_t> next{0};
    std::mutex progress_mutex;
    size_t done = 0;
    auto work = [&] {
        for (size_t i; (i = next.fetch_add(1)) < total;) {
            const auto& s = (*train)[i];
            const double t0 = thread_cpu_seconds();
            auto f = forecast(
                s.values,
                {.horizon = opts.horizon, .step_ns = 0, .season = 0, .method = opts.method});
            cpu[i] = thread_cpu_seconds() - t0;
            if (f) {
                point[i] = std::move(f->point);
                lower[i] = std::move(f->lower95);
                upper[i] = std::move(f->upper95);
                lower50[i] = std::move(f->lower50);
                upper50[i] = std::move(f->upper50);
            } else {
                failure[i] = f.error().message;
            }
            std::lock_guard lock(progress_mutex);
            ++done;
            if (opts.progress) opts.progress(done, total, s.id);
        }
    };
    const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
    std::vector<std::thread> pool;
    for (unsigned c = 1; c < cores; ++c)
        pool.emplace_back(work);
    work();
    for (auto& t : pool)
        t.join();
    for (size_t i = 0; i < total; ++i)
        if (!failure[i].empty())
            return make_error("invalid_argument",
                              opts.train_file + ":" + std::to_string((*train)[i].line) +
                                  ": series " + (*train)[i].id + ": " + failure[i]);

    const std::filesystem::path dir(opts.out_dir);
    for (auto [name, rows] : {std::pair{"point.csv", &point}, std::pair{"lower.csv", &lower},
                              std::pair{"upper.csv", &upper}})
        if (auto w = write_rows(dir / name, *train, *rows, opts.horizon); !w) return w.error();

    bench_report report;
    report.method = opts.method;
    report.series = total;
    report.horizon = opts.horizon;
    report.scored = scored;
    double cpu_total = 0;
    for (double c : cpu)
        cpu_total += c;
    report.ms_per_series = 1000 * cpu_total / static_cast<double>(total);
    if (!scored) return report;

    std::vector<one_score> scores(total);
    for (size_t i = 0; i < total; ++i) {
        const auto y = detail::filled((*train)[i].values);
        const auto& a = actual[i];
        double scale = 0;
        for (size_t t = m; t < y.size(); ++t)
            scale += std::abs(y[t] - y[t - m]);
        scale /= static_cast<double>(y.size() - m);
        if (!(scale > 0)) scale = 1;  // a series repeating exactly: errors stay in its unit
        const auto n2 = detail::naive2(y, opts.season, opts.horizon);
        auto& s = scores[i];
        for (size_t k = 0; k < h; ++k) {
            auto smape = [&](double f) {
                const double d = std::abs(a[k]) + std::abs(f);
                return d > 0 ? 200 * std::abs(a[k] - f) / d : 0;
            };
            s.smape += smape(point[i][k]) / static_cast<double>(h);
            s.smape_naive2 += smape(n2[k]) / static_cast<double>(h);
            s.mase += std::abs(a[k] - point[i][k]) / static_cast<double>(h) / scale;
            s.mase_naive2 += std::abs(a[k] - n2[k]) / static_cast<double>(h) / scale;
            const double lo = lower[i][k], hi = upper[i][k];
            double is = hi - lo;
            if (a[k] < lo) is += 2 / 0.05 * (lo - a[k]);
            if (a[k] > hi) is += 2 / 0.05 * (a[k] - hi);
            s.msis += is / static_cast<double>(h) / scale;
            s.inside += a[k] >= lo && a[k] <= hi ? 1 : 0;
            s.inside50 += a[k] >= lower50[i][k] && a[k] <= upper50[i][k] ? 1 : 0;
        }
    }
    std::vector<size_t> all(total);
    for (size_t i = 0; i < total; ++i)
        all[i] = i;
    report.all = average(scores, all, opts.horizon);
    const size_t folds = static_cast<size_t>(std::max(opts.folds, 1));
    for (size_t f = 0; f < folds; ++f) {
        std::vector<size_t> which;
        for (size_t i = f; i < total; i += folds)
            which.push_back(i);
        report.folds.push_back(average(scores, which, opts.horizon));
    }
    // Per series, for analyses beyond the summary (e.g. choosing a combination by folds).
    std::ofstream out(dir / "scores.csv");
    out << "id,fold,smape,mase,msis,coverage,smape_naive2,mase_naive2\n";
    char buf[200];
    for (size_t i = 0; i < total; ++i) {
        const auto& s = scores[i];
        std::snprintf(buf, sizeof buf, ",%zu,%.6f,%.6f,%.6f,%.6f,%.6f,%.6f\n", i % folds + 1,
                      s.smape, s.mase, s.msis, 100 * s.inside / static_cast<double>(h),
                      s.smape_naive2, s.mase_naive2);
        out << (*train)[i].id << buf;
    }
    if (!out)
        return make_error("unavailable", (dir / "scores.csv").string() + ": cannot be written");
    return report;
}

std::string format_bench(const bench_report& r) {
    std::string out;
    char line[256];
    std::snprintf(line, sizeof line,
                  "method %s: %zu series, horizon %d, %.3f ms per series (one core)\n",
                  r.method.c_str(), r.series, r.horizon, r.ms_per_series);
    out += line;
    if (!r.scored) return out;
    std::snprintf(line, sizeof line, "%-8s %7s %8s %7s %7s %7s %9s %9s\n", "", "series", "sMAPE",
                  "MASE", "OWA", "MSIS", "cover95", "cover50");
    out += line;
    auto row = [&](const std::string& name, const bench_scores& s) {
        std::snprintf(line, sizeof line, "%-8s %7zu %8.3f %7.3f %7.3f %7.3f %8.1f%% %8.1f%%\n",
                      name.c_str(), s.series, s.smape, s.mase, s.owa, s.msis, s.coverage,
                      s.coverage50);
        out += line;
    };
    row("all", r.all);
    for (size_t f = 0; f < r.folds.size(); ++f)
        row("fold " + std::to_string(f + 1), r.folds[f]);
    std::snprintf(line, sizeof line, "%-8s %7zu %8.3f %7.3f %7.3f\n", "naive2", r.all.series,
                  r.all.smape_naive2, r.all.mase_naive2, 1.0);
    out += line;
    return out;
}

}  // namespace clisonix::forecast
