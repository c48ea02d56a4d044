// The NAB runner: reads the NAB layout, runs detectors, writes result CSVs, scores them.
#include <algorithm>
#include <boost/json.hpp>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "analytics/analytics.h"
#include "analytics/timestamp.h"
#include "common/file_text.h"

namespace clisonix::analytics {

namespace fs = std::filesystem;

namespace {

struct data_file {
    std::string category;  // folder under data_dir
    std::string name;      // file name, with .csv
    std::vector<std::string> timestamps;
    std::vector<std::string> value_text;
    std::vector<int64_t> ts_ns;
    std::vector<double> values;
    std::vector<std::pair<size_t, size_t>> windows;
};

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.back() == '\r' || s.back() == ' '))
        s.remove_suffix(1);
    while (!s.empty() && s.front() == ' ')
        s.remove_prefix(1);
    return s;
}

status parse_csv(const fs::path& path, data_file& f) {
    auto text = read_file_text(path);
    if (!text) return text.error();
    std::string_view rest = *text;
    size_t line_no = 0;
    while (!rest.empty()) {
        const size_t eol = rest.find('\n');
        std::string_view line = trim(rest.substr(0, eol));
        rest = eol == std::string_view::npos ? std::string_view{} : rest.substr(eol + 1);
        ++line_no;
        if (line.empty()) continue;
        const auto where = path.string() + ":" + std::to_string(line_no);
        const size_t comma = line.find(',');
        if (comma == std::string_view::npos) {
            return make_error("invalid_argument", where + ": expected timestamp,value", where);
        }
        const auto ts_text = trim(line.substr(0, comma));
        const auto value_text = trim(line.substr(comma + 1));
        if (line_no == 1 && ts_text == "timestamp") continue;
        auto ts = parse_timestamp(ts_text);
        if (!ts) {
            return make_error("invalid_argument",
                              where + ": bad timestamp '" + std::string(ts_text) + "'", where);
        }
        double v = 0;
        auto [ptr, ec] =
            std::from_chars(value_text.data(), value_text.data() + value_text.size(), v);
        if (ec != std::errc{} || ptr != value_text.data() + value_text.size()) {
            return make_error("invalid_argument",
                              where + ": bad value '" + std::string(value_text) + "'", where);
        }
        f.timestamps.emplace_back(ts_text);
        f.value_text.emplace_back(value_text);
        f.ts_ns.push_back(*ts);
        f.values.push_back(v);
    }
    return {};
}

// Windows become row ranges as NAB's sweeper finds them: first row of the start timestamp to
// the first row of the end timestamp.
status apply_labels(const boost::json::value& labels, const std::string& labels_file,
                    data_file& f) {
    const std::string key = f.category + "/" + f.name;
    const auto* obj = labels.if_object();
    const auto* entry = obj ? obj->if_contains(key) : nullptr;
    if (!entry) return {};  // a file without labels has no windows
    const auto* list = entry->if_array();
    if (!list) return make_error("invalid_argument", key + ": windows must be a list", key);
    auto first_row = [&](const boost::json::value& v) -> result<size_t> {
        const auto* s = v.if_string();
        auto ts = s ? parse_timestamp(std::string_view(s->data(), s->size()))
                    : result<int64_t>(make_error("invalid_argument", "not a string"));
        if (!ts) {
            return make_error("invalid_argument", labels_file + ": " + key + ": bad timestamp",
                              key);
        }
        auto it = std::find(f.ts_ns.begin(), f.ts_ns.end(), *ts);
        if (it == f.ts_ns.end()) {
            return make_error("invalid_argument",
                              labels_file + ": " + key + ": window timestamp " +
                                  std::string(s->data(), s->size()) + " is not in the file",
                              key);
        }
        return static_cast<size_t>(it - f.ts_ns.begin());
    };
    for (const auto& w : *list) {
        const auto* pair = w.if_array();
        if (!pair || pair->size() != 2) {
            return make_error("invalid_argument", key + ": a window must be [start, end]", key);
        }
        auto s = first_row((*pair)[0]);
        if (!s) return s.error();
        auto e = first_row((*pair)[1]);
        if (!e) return e.error();
        if (*e < *s || (!f.windows.empty() && *s <= f.windows.back().second)) {
            return make_error("invalid_argument",
                              key + ": windows must be ordered, disjoint and start <= end", key);
        }
        f.windows.emplace_back(*s, *e);
    }
    return {};
}

// Drops the first `rows` rows; windows move with the rows, those that end before go.
status skip_rows(data_file& f, size_t rows) {
    // Probation and at least one row must remain to score anything.
    if (f.values.size() <= rows + 1) {
        const std::string key = f.category + "/" + f.name;
        return make_error("invalid_argument",
                          "skip: " + key + " has " + std::to_string(f.values.size()) +
                              " rows, not more than " + std::to_string(rows + 1),
                          "skip");
    }
    const auto cut = [rows](auto& v) { v.erase(v.begin(), v.begin() + static_cast<long>(rows)); };
    cut(f.timestamps);
    cut(f.value_text);
    cut(f.ts_ns);
    cut(f.values);
    std::vector<std::pair<size_t, size_t>> kept;
    for (auto [s, e] : f.windows)
        if (e >= rows) kept.emplace_back(s >= rows ? s - rows : 0, e - rows);
    f.windows = std::move(kept);
    return {};
}

std::string format_score(double v) {
    char buf[32];
    auto [ptr, ec] = std::to_chars(buf, buf + sizeof buf, v);
    (void)ec;
    return std::string(buf, ptr);
}

// For each category: the threshold chosen on all the others (standard profile), and the
// category scored at it; files and scored are in the same order.
std::vector<nab_fold> leave_one_category_out(const std::vector<data_file>& files,
                                             const std::vector<nab_series>& scored) {
    const auto& standard = nab_profiles()[0];
    std::vector<std::string> categories;
    for (const auto& f : files)
        if (categories.empty() || categories.back() != f.category) categories.push_back(f.category);
    std::vector<nab_fold> folds;
    for (const auto& c : categories) {
        std::vector<nab_series> held, rest;
        for (size_t i = 0; i < files.size(); ++i)
            (files[i].category == c ? held : rest).push_back(scored[i]);
        nab_fold fold;
        fold.category = c;
        fold.files = held.size();
        for (const auto& h : held)
            fold.windows += h.windows.size();
        fold.threshold = score_nab(rest, standard).threshold;
        fold.held_out = score_nab_at(held, standard, fold.threshold);
        fold.own = score_nab(held, standard);
        fold.fixed = score_nab_at(held, standard, anomaly_decision_threshold);
        folds.push_back(std::move(fold));
    }
    return folds;
}

}  // namespace

result<nab_report> run_nab(const nab_options& opts) {
    std::vector<std::string> names = opts.detectors;
    if (names.empty()) {
        for (auto n : detector_names())
            names.emplace_back(n);
    }
    for (const auto& n : names) {
        auto d = make_detector(n);
        if (!d) return d.error();
    }
    std::error_code ec;
    if (!fs::is_directory(opts.data_dir, ec)) {
        return make_error("not_found", "no data directory " + opts.data_dir, "data");
    }
    auto label_text = read_file_text(opts.labels_file);
    if (!label_text) return make_error("not_found", "cannot read " + opts.labels_file, "labels");
    boost::system::error_code jec;
    auto labels = boost::json::parse(*label_text, jec);
    if (jec) {
        return make_error("invalid_argument", opts.labels_file + ": " + jec.message(), "labels");
    }

    std::vector<data_file> files;
    for (const auto& cat : fs::directory_iterator(opts.data_dir, ec)) {
        if (!cat.is_directory()) continue;
        for (const auto& entry : fs::directory_iterator(cat.path(), ec)) {
            if (!entry.is_regular_file() || entry.path().extension() != ".csv") continue;
            data_file f;
            f.category = cat.path().filename().string();
            f.name = entry.path().filename().string();
            files.push_back(std::move(f));
        }
    }
    std::sort(files.begin(), files.end(), [](const data_file& a, const data_file& b) {
        return std::tie(a.category, a.name) < std::tie(b.category, b.name);
    });
    if (files.empty()) {
        return make_error("not_found", "no <category>/<file>.csv under " + opts.data_dir, "data");
    }
    nab_report report;
    for (auto& f : files) {
        if (auto st = parse_csv(fs::path(opts.data_dir) / f.category / f.name, f); !st) {
            return st.error();
        }
        if (auto st = apply_labels(labels, opts.labels_file, f); !st) return st.error();
        if (opts.skip_rows > 0) {
            if (auto st = skip_rows(f, opts.skip_rows); !st) return st.error();
        }
        report.rows += f.values.size();
        report.windows += f.windows.size();
    }
    report.files = files.size();

    const size_t total = names.size() * files.size();
    size_t done = 0;
    if (opts.progress) opts.progress(0, total, "");
    for (const auto& name : names) {
        nab_detector_result dr;
        dr.detector = name;
        std::vector<nab_series> scored;
        scored.reserve(files.size());
        for (const auto& f : files) {
            auto det = std::move(*make_detector(name));
            nab_series s;
            s.windows = f.windows;
            s.scores.resize(f.values.size());
            const auto start = std::chrono::steady_clock::now();
            for (size_t i = 0; i < f.values.size(); ++i) {
                s.scores[i] = det->update(f.ts_ns[i], f.values[i]);
            }
            dr.seconds +=
                std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
            dr.state_bytes = std::max(dr.state_bytes, det->state_bytes());
            if (!opts.out_dir.empty()) {
                const auto dir = fs::path(opts.out_dir) / f.category;
                fs::create_directories(dir, ec);
                const auto path = dir / (name + "_" + f.name);
                std::ofstream out(path, std::ios::binary | std::ios::trunc);
                out << "timestamp,value,anomaly_score,label\n";
                size_t w = 0;
                for (size_t i = 0; i < f.values.size(); ++i) {
                    while (w < f.windows.size() && f.windows[w].second < i)
                        ++w;
                    const bool inside = w < f.windows.size() && f.windows[w].first <= i;
                    out << f.timestamps[i] << ',' << f.value_text[i] << ','
                        << format_score(s.scores[i]) << ',' << (inside ? '1' : '0') << '\n';
                }
                if (!out) {
                    return make_error("unavailable", "cannot write " + path.string(), "out");
                }
            }
            scored.push_back(std::move(s));
            ++done;
            if (opts.progress) opts.progress(done, total, name + " " + f.category + "/" + f.name);
        }
        for (const auto& p : nab_profiles())
            dr.scores.push_back(score_nab(scored, p));
        const auto& standard = nab_profiles()[0];
        dr.fixed = score_nab_at(scored, standard, anomaly_decision_threshold);
        if (opts.loco) dr.folds = leave_one_category_out(files, scored);
        report.detectors.push_back(std::move(dr));
    }
    return report;
}

std::string format_nab_table(const nab_report& report) {
    std::string out;
    char line[256];
    std::snprintf(line, sizeof line, "NAB: %zu files, %zu rows, %zu windows\n", report.files,
                  report.rows, report.windows);
    out += line;
    std::snprintf(line, sizeof line, "%-14s %9s %14s %14s %5s %5s %5s %11s %11s %10s\n", "detector",
                  "standard", "reward_low_FP", "reward_low_FN", "TP", "FN", "FP", "fixed_thr",
                  "state_bytes", "points/s");
    out += line;
    for (const auto& d : report.detectors) {
        const double rate = d.seconds > 0 ? static_cast<double>(report.rows) / d.seconds : 0.0;
        const nab_score none{};
        const auto& st = d.scores.size() > 0 ? d.scores[0] : none;
        const auto& fp = d.scores.size() > 1 ? d.scores[1] : none;
        const auto& fn = d.scores.size() > 2 ? d.scores[2] : none;
        std::snprintf(line, sizeof line,
                      "%-14s %9.1f %14.1f %14.1f %5zu %5zu %5zu %11.1f %11zu %10.3g\n",
                      d.detector.c_str(), st.normalized, fp.normalized, fn.normalized, st.tp, st.fn,
                      st.fp, d.fixed.normalized, d.state_bytes, rate);
        out += line;
    }
    char note[128];
    std::snprintf(note, sizeof note, "fixed_thr: standard score at the fixed threshold %.2f\n",
                  anomaly_decision_threshold);
    out += note;
    return out;
}

std::string format_nab_loco(const nab_report& report) {
    std::string out;
    char line[256];
    out += "Leave one category out (standard profile; threshold chosen on the other categories)\n";
    std::snprintf(line, sizeof line, "%-14s %-24s %7s %9s %9s %6s %9s %9s\n", "detector",
                  "held-out category", "windows", "threshold", "held_out", "FP", "own_best",
                  "fixed_thr");
    out += line;
    for (const auto& d : report.detectors) {
        double worst = 1e9;
        for (const auto& f : d.folds) {
            if (f.windows == 0) {
                std::snprintf(line, sizeof line, "%-14s %-24s %7zu %9.3f %9s %6zu %9s %9s\n",
                              d.detector.c_str(), f.category.c_str(), f.windows, f.threshold, "n/a",
                              f.held_out.fp, "n/a", "n/a");
            } else {
                worst = std::min(worst, f.held_out.normalized);
                std::snprintf(line, sizeof line, "%-14s %-24s %7zu %9.3f %9.1f %6zu %9.1f %9.1f\n",
                              d.detector.c_str(), f.category.c_str(), f.windows, f.threshold,
                              f.held_out.normalized, f.held_out.fp, f.own.normalized,
                              f.fixed.normalized);
            }
            out += line;
        }
        if (worst < 1e9) {
            std::snprintf(line, sizeof line, "%-14s %-24s %7s %9s %9.1f\n", d.detector.c_str(),
                          "worst fold", "", "", worst);
            out += line;
        }
    }
    return out;
}

}  // namespace clisonix::analytics
