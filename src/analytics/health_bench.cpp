// `clisonix health-bench`: runs the machine health model over files in SKAB's layout and
// scores it by SKAB's outlier protocol. The reader that feeds the model never looks at the
// label columns; the scorer reads them afterwards, from the file, on its own.
#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>

#include "analytics/analytics.h"
#include "common/file_text.h"

namespace clisonix::analytics {

namespace fs = std::filesystem;

namespace {

// Label columns in SKAB's format: never given to the model.
bool is_label_column(std::string_view name) {
    return name == "anomaly" || name == "changepoint";
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.back() == '\r' || s.back() == ' ' || s.back() == '\t'))
        s.remove_suffix(1);
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
        s.remove_prefix(1);
    return s;
}

std::vector<std::string_view> split(std::string_view line, char sep) {
    std::vector<std::string_view> out;
    size_t from = 0;
    while (true) {
        size_t at = line.find(sep, from);
        out.push_back(trim(line.substr(from, at == std::string_view::npos ? at : at - from)));
        if (at == std::string_view::npos) break;
        from = at + 1;
    }
    return out;
}

// The file's lines with their 1-based line numbers; blank lines are skipped.
struct numbered_line {
    size_t number;
    std::string_view text;
};
std::vector<numbered_line> lines_of(std::string_view text) {
    std::vector<numbered_line> out;
    size_t number = 0, from = 0;
    while (from < text.size()) {
        size_t at = text.find('\n', from);
        if (at == std::string_view::npos) at = text.size();
        ++number;
        auto line = trim(text.substr(from, at - from));
        if (!line.empty()) out.push_back({number, line});
        from = at + 1;
    }
    return out;
}

error bad_row(const std::string& file, size_t line, std::string_view field,
              const std::string& reason) {
    std::string where = file + ":" + std::to_string(line);
    return make_error("invalid_argument", where + ": " + std::string(field) + ": " + reason, where);
}

// What the model is given: timestamps and the sensor columns (labels left out).
struct sensor_table {
    std::vector<std::string> columns;
    std::vector<std::string> timestamps;
    std::vector<std::vector<double>> rows;  // NaN where a field is empty (not measured)
};

result<sensor_table> read_sensors(const std::string& name, std::string_view text) {
    auto lines = lines_of(text);
    if (lines.empty()) return bad_row(name, 1, "header", "the file is empty");
    auto header = split(lines.front().text, ';');
    if (header.size() < 2)
        return bad_row(name, lines.front().number, "header",
                       "expected ';'-separated columns: a timestamp, then sensors");
    sensor_table t;
    std::vector<size_t> sensor_index;
    for (size_t c = 1; c < header.size(); ++c)
        if (!is_label_column(header[c])) {
            sensor_index.push_back(c);
            t.columns.emplace_back(header[c]);
        }
    if (sensor_index.empty())
        return bad_row(name, lines.front().number, "header", "no sensor column");
    for (size_t i = 1; i < lines.size(); ++i) {
        auto fields = split(lines[i].text, ';');
        if (fields.size() != header.size())
            return bad_row(name, lines[i].number, "row",
                           "has " + std::to_string(fields.size()) + " fields; the header has " +
                               std::to_string(header.size()));
        if (fields[0].empty()) return bad_row(name, lines[i].number, header[0], "empty");
        std::vector<double> row;
        row.reserve(sensor_index.size());
        for (size_t c : sensor_index) {
            auto f = fields[c];
            double v = std::nan("");
            if (!f.empty()) {
                auto [end, ec] = std::from_chars(f.data(), f.data() + f.size(), v);
                if (ec != std::errc() || end != f.data() + f.size() || std::isinf(v))
                    return bad_row(name, lines[i].number, header[c],
                                   "not a number: '" + std::string(f) + "'");
            }
            row.push_back(v);
        }
        t.timestamps.emplace_back(fields[0]);
        t.rows.push_back(std::move(row));
    }
    return t;
}

// The scorer's own reader: the `anomaly` column only (0 or 1 per row), or nothing when the
// file has no such column.
result<std::optional<std::vector<bool>>> read_labels(const std::string& name,
                                                     std::string_view text) {
    auto lines = lines_of(text);
    if (lines.empty()) return std::optional<std::vector<bool>>{};
    auto header = split(lines.front().text, ';');
    auto col = std::find(header.begin(), header.end(), "anomaly");
    if (col == header.end()) return std::optional<std::vector<bool>>{};
    const size_t c = size_t(col - header.begin());
    std::vector<bool> labels;
    for (size_t i = 1; i < lines.size(); ++i) {
        auto fields = split(lines[i].text, ';');
        double v = -1;
        auto f = c < fields.size() ? fields[c] : std::string_view{};
        std::from_chars(f.data(), f.data() + f.size(), v);
        if (v != 0 && v != 1)
            return bad_row(name, lines[i].number, "anomaly",
                           "expected 0 or 1, got '" + std::string(f) + "'");
        labels.push_back(v == 1);
    }
    return std::optional<std::vector<bool>>(std::move(labels));
}

std::string csv_field(const std::string& s) {
    if (s.find_first_of(",\"\n") == std::string::npos) return s;
    std::string out = "\"";
    for (char ch : s) {
        if (ch == '"') out += '"';
        out += ch;
    }
    return out + "\"";
}

}  // namespace

double outlier_counts::f1() const {
    const double d = double(2 * tp + fp + fn);
    return d > 0 ? 2.0 * double(tp) / d : 0;
}
double outlier_counts::far() const {
    return fp + tn ? 100.0 * double(fp) / double(fp + tn) : 0;
}
double outlier_counts::mar() const {
    return fn + tp ? 100.0 * double(fn) / double(fn + tp) : 0;
}

result<health_bench_report> run_health_bench(const health_bench_options& opts) {
    std::error_code ec;
    if (!fs::is_directory(opts.data_dir, ec))
        return make_error("not_found", "--data " + opts.data_dir + ": no such directory", "--data");
    if (opts.train_rows < health_model::min_baseline_rows())
        return make_error("invalid_argument",
                          "--train-rows " + std::to_string(opts.train_rows) +
                              ": the model needs at least " +
                              std::to_string(health_model::min_baseline_rows()),
                          "--train-rows");
    std::vector<fs::path> files;
    for (auto it = fs::recursive_directory_iterator(opts.data_dir, ec);
         !ec && it != fs::recursive_directory_iterator(); it.increment(ec))
        if (it->is_regular_file() && it->path().extension() == ".csv")
            // Lexical: a symlinked input keeps its name under data_dir (resolving it would
            // send the output to wherever the link points, over the input itself).
            files.push_back(it->path().lexically_relative(opts.data_dir));
    if (ec) return make_error("not_found", "--data " + opts.data_dir + ": " + ec.message());
    if (files.empty())
        return make_error("not_found", "--data " + opts.data_dir + ": no *.csv file under it",
                          "--data");
    std::sort(files.begin(), files.end());

    health_bench_report report;
    report.labelled = true;
    double model_seconds = 0;
    for (size_t i = 0; i < files.size(); ++i) {
        const std::string name = files[i].generic_string();
        auto text = read_file_text(fs::path(opts.data_dir) / files[i]);
        if (!text) return text.error();
        auto table = read_sensors(name, *text);
        if (!table) return table.error();
        const auto& rows = table->rows;
        if (rows.size() <= opts.train_rows)
            return make_error("invalid_argument",
                              name + ": " + std::to_string(rows.size()) +
                                  " data rows; --train-rows " + std::to_string(opts.train_rows) +
                                  " leaves none to score",
                              name);

        auto start = std::chrono::steady_clock::now();
        auto model =
            health_model::train(std::span<const std::vector<double>>(rows.data(), opts.train_rows));
        if (!model)
            return make_error("invalid_argument", name + ": " + model.error().message, name);
        std::vector<double> scores;
        scores.reserve(rows.size());
        for (const auto& row : rows)
            scores.push_back(model->update(row).score);
        model_seconds +=
            std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

        const fs::path in = fs::path(opts.data_dir) / files[i];
        const fs::path out = fs::path(opts.out_dir) / files[i];
        if (fs::exists(out, ec) && fs::equivalent(out, in, ec))
            return make_error("invalid_argument",
                              "--out " + opts.out_dir + ": would overwrite the input " + name,
                              "--out");
        fs::create_directories(out.parent_path(), ec);
        std::ofstream o(out, std::ios::binary | std::ios::trunc);
        if (!o) return make_error("unavailable", "--out: cannot write " + out.string(), "--out");
        o << "timestamp,anomaly_score\n";
        char buf[32];
        for (size_t r = 0; r < rows.size(); ++r) {
            std::snprintf(buf, sizeof buf, "%.6f", scores[r]);
            o << csv_field(table->timestamps[r]) << ',' << buf << '\n';
        }
        if (!(o.flush()))
            return make_error("unavailable", "--out: cannot write " + out.string(), "--out");

        // The scorer: labels from the file, read only now and only here.
        auto labels = read_labels(name, *text);
        if (!labels) return labels.error();
        if (!*labels)
            report.labelled = false;
        else
            for (size_t r = opts.train_rows; r < rows.size(); ++r) {
                const bool flagged = scores[r] >= 0.5, anomalous = (**labels)[r];
                auto& c = report.pooled;
                (flagged ? (anomalous ? c.tp : c.fp) : (anomalous ? c.fn : c.tn))++;
            }

        ++report.files;
        report.rows += rows.size();
        report.test_rows += rows.size() - opts.train_rows;
        report.metrics = std::max(report.metrics, table->columns.size());
        report.state_bytes = std::max(report.state_bytes, model->state_bytes());
        if (opts.progress) opts.progress(i + 1, files.size(), name);
    }
    report.seconds_per_row = report.rows ? model_seconds / double(report.rows) : 0;
    if (!report.labelled) report.pooled = {};
    return report;
}

std::string format_health_bench(const health_bench_report& r) {
    char buf[256];
    std::string out;
    std::snprintf(buf, sizeof buf,
                  "files %zu, rows %zu (test rows %zu), metrics %zu, state %zu bytes, "
                  "%.2f us per row\n",
                  r.files, r.rows, r.test_rows, r.metrics, r.state_bytes, r.seconds_per_row * 1e6);
    out += buf;
    if (r.labelled) {
        std::snprintf(buf, sizeof buf,
                      "pooled over test rows (score >= 0.5 is abnormal): F1 %.3f  FAR %.2f %%  "
                      "MAR %.2f %%  (TP %zu FP %zu TN %zu FN %zu)\n",
                      r.pooled.f1(), r.pooled.far(), r.pooled.mar(), r.pooled.tp, r.pooled.fp,
                      r.pooled.tn, r.pooled.fn);
        out += buf;
    } else {
        out += "not every file has an `anomaly` column: no F1, FAR, MAR\n";
    }
    return out;
}

}  // namespace clisonix::analytics
