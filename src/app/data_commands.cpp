// `clisonix import` and `clisonix query`: the data commands, spoken over the HTTP API so that
// they work against any running server, local or remote.
#include <boost/json.hpp>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <sstream>

#include "app/app.h"
#include "app/client.h"
#include "common/csv.h"
#include "common/progress.h"
#include "query/query.h"

namespace clisonix::app {

namespace {

using clock = std::chrono::steady_clock;

// The import's progress over the file's bytes, with the points sent and their rate: one
// redrawn line on a terminal, a line per tenth of the file elsewhere (common/progress.h).
class progress {
public:
    explicit progress(uint64_t total) : _total(total) {}

    void update(uint64_t done, uint64_t points, bool final = false) {
        double seconds = this->seconds();
        char detail[96];
        std::snprintf(detail, sizeof detail, "%llu points  %.0f points/s",
                      static_cast<unsigned long long>(points),
                      seconds > 0 ? static_cast<double>(points) / seconds : 0.0);
        // The final update always counts as the end, even when the file shrank meanwhile.
        _display.update(final ? _total : std::min(done, _total - (_total > 0 ? 1 : 0)), _total,
                        detail);
    }

    double seconds() const { return std::chrono::duration<double>(clock::now() - _start).count(); }

private:
    uint64_t _total;
    progress_display _display{std::cerr, "import", stderr_is_terminal(), 10};
    clock::time_point _start = clock::now();
};

// The number of fields (= points) on one line-protocol line: unescaped, unquoted commas in
// the field set, plus one.
uint64_t count_fields(std::string_view line) {
    if (line.empty() || line.front() == '#') return 0;
    size_t i = 0;
    // Skip measurement and tags: up to the first unescaped space.
    for (; i < line.size() && line[i] != ' '; ++i)
        if (line[i] == '\\') ++i;
    uint64_t fields = 1;
    bool quoted = false;
    for (++i; i < line.size(); ++i) {
        char c = line[i];
        if (c == '\\') {
            ++i;
        } else if (c == '"') {
            quoted = !quoted;
        } else if (!quoted && c == ',') {
            ++fields;
        } else if (!quoted && c == ' ') {
            break;
        }
    }
    return fields;
}

std::string lp_escape(std::string_view s, bool measurement) {
    std::string out;
    for (char c : s) {
        if (c == ',' || c == ' ' || (!measurement && c == '=')) out.push_back('\\');
        out.push_back(c);
    }
    return out;
}

// One CSV row as a line-protocol line (ns timestamps); an error names the column.
result<std::string> csv_to_lp(const std::vector<std::string>& header,
                              const std::vector<std::string>& cells, const import_options& opt,
                              size_t time_column, int64_t now_ns) {
    if (cells.size() != header.size())
        return make_error("invalid_argument", "expected " + std::to_string(header.size()) +
                                                  " columns, found " +
                                                  std::to_string(cells.size()));
    auto ts = query::parse_time(cells[time_column], now_ns, header[time_column]);
    if (!ts) return ts.error();
    std::string line = lp_escape(opt.measurement, true);
    std::string fields;
    for (size_t c = 0; c < header.size(); ++c) {
        if (c == time_column || cells[c].empty()) continue;
        bool is_tag = std::find(opt.tags.begin(), opt.tags.end(), header[c]) != opt.tags.end();
        if (is_tag) {
            line += "," + lp_escape(header[c], false) + "=" + lp_escape(cells[c], false);
            continue;
        }
        if (!fields.empty()) fields.push_back(',');
        fields += lp_escape(header[c], false) + "=";
        const auto& v = cells[c];
        double number;
        auto [ptr, ec] = std::from_chars(v.data(), v.data() + v.size(), number);
        if (ec == std::errc{} && ptr == v.data() + v.size() && std::isfinite(number)) {
            fields += v;
        } else if (v == "true" || v == "false") {
            fields += v;
        } else {
            fields.push_back('"');
            for (char ch : v) {
                if (ch == '"' || ch == '\\') fields.push_back('\\');
                fields.push_back(ch);
            }
            fields.push_back('"');
        }
    }
    if (fields.empty()) return std::string();
    return line + " " + fields + " " + std::to_string(*ts);
}

}  // namespace

int import_file(const import_options& opt) {
    std::ifstream in(opt.file, std::ios::binary);
    if (!in) {
        std::cerr << "import: cannot read " << opt.file << "\n";
        return exit_usage;
    }
    in.seekg(0, std::ios::end);
    auto total = static_cast<uint64_t>(in.tellg());
    in.seekg(0);
    bool csv = opt.format == "csv" || (opt.format.empty() && opt.file.ends_with(".csv"));
    std::string precision = csv ? "ns" : opt.precision;

    auto conn = client::connect(opt.url, opt.token);
    if (!conn) {
        std::cerr << "import: " << conn.error().message << "\n";
        return exit_failure;
    }

    progress bar(total);
    uint64_t points = 0, bytes = 0;
    size_t file_line = 0;
    std::vector<std::string> header;
    size_t time_column = 0;
    int64_t now_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();

    std::string batch, line;
    std::vector<size_t> batch_lines;  // file line of each batch line, for error messages
    uint64_t batch_points = 0;
    auto send = [&]() -> int {
        if (batch.empty()) return exit_ok;
        auto r = (*conn)->request("POST", "/api/v1/write?precision=" + precision, batch,
                                  "text/plain; charset=utf-8");
        if (!r) {
            std::cerr << "\nimport: " << r.error().message << "\n";
            return exit_failure;
        }
        if (r->status != 204) {
            std::string message = error_message(*r);
            // "line N: reason" from the server, N within the batch -> the file's line.
            size_t n = 0;
            if (std::sscanf(message.c_str(), "line %zu:", &n) == 1 && n >= 1 &&
                n <= batch_lines.size())
                message = opt.file + ":" + std::to_string(batch_lines[n - 1]) +
                          message.substr(message.find(':'));
            std::cerr << "\nimport: " << message << "\nimport: " << points
                      << " points before this batch were imported\n";
            return r->status >= 400 && r->status < 500 ? exit_usage : exit_failure;
        }
        points += batch_points;
        batch.clear();
        batch_lines.clear();
        batch_points = 0;
        bar.update(bytes, points);
        return exit_ok;
    };

    while (std::getline(in, line)) {
        ++file_line;
        bytes += line.size() + 1;
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (csv) {
            if (header.empty()) {
                header = split_csv_line(line);
                auto it = std::find_if(header.begin(), header.end(), [](const std::string& h) {
                    return h == "time" || h == "timestamp" || h == "ts";
                });
                if (it == header.end()) {
                    std::cerr << "import: " << opt.file
                              << ":1: the header needs a time, timestamp or ts column\n";
                    return exit_usage;
                }
                time_column = static_cast<size_t>(it - header.begin());
                continue;
            }
            if (line.empty()) continue;
            auto lp = csv_to_lp(header, split_csv_line(line), opt, time_column, now_ns);
            if (!lp) {
                std::cerr << "import: " << opt.file << ":" << file_line << ": "
                          << lp.error().message << "\nimport: " << points
                          << " points before this line were imported\n";
                return exit_usage;
            }
            line = std::move(*lp);
            if (line.empty()) continue;
        }
        uint64_t n = count_fields(line);
        if (n == 0) continue;
        batch += line;
        batch.push_back('\n');
        batch_lines.push_back(file_line);
        batch_points += n;
        if (batch_lines.size() >= opt.batch_lines)
            if (int rc = send(); rc != exit_ok) return rc;
    }
    if (int rc = send(); rc != exit_ok) return rc;
    bar.update(total, points, true);
    double seconds = bar.seconds();
    std::printf("imported %llu points from %s in %.1f s (%.0f points/s)\n",
                static_cast<unsigned long long>(points), opt.file.c_str(), seconds,
                seconds > 0 ? static_cast<double>(points) / seconds : 0.0);
    return exit_ok;
}

int run_query(const query_options& opt) {
    auto conn = client::connect(opt.url, opt.token);
    if (!conn) {
        std::cerr << "query: " << conn.error().message << "\n";
        return exit_failure;
    }
    std::string target = "/api/v1/query?";
    for (const auto& [key, value] : opt.params) {
        if (target.back() != '?') target.push_back('&');
        for (const std::string* part : {&key, &value}) {
            for (unsigned char c : *part) {
                if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '*' || c == '~') {
                    target.push_back(static_cast<char>(c));
                } else {
                    char hex[4];
                    std::snprintf(hex, sizeof hex, "%%%02X", c);
                    target += hex;
                }
            }
            if (part == &key) target.push_back('=');
        }
    }
    auto r = (*conn)->request("GET", target, {}, {},
                              opt.format == "csv" ? "text/csv" : "application/json");
    if (!r) {
        std::cerr << "query: " << r.error().message << "\n";
        return exit_failure;
    }
    if (r->status != 200) {
        std::cerr << "query: " << error_message(*r) << "\n";
        return r->status >= 400 && r->status < 500 ? exit_usage : exit_failure;
    }
    if (opt.format != "table") {
        std::cout << r->body << (r->body.ends_with('\n') ? "" : "\n");
        return exit_ok;
    }
    // A table a person can read: one block per series.
    auto doc = boost::json::parse(r->body).as_object();
    for (const auto& s : doc.at("series").as_array()) {
        const auto& obj = s.as_object();
        std::string title(obj.at("measurement").as_string());
        for (const auto& [k, v] : obj.at("tags").as_object())
            title += " " + std::string(k) + "=" + std::string(v.as_string());
        title += " " + std::string(obj.at("metric").as_string());
        std::cout << title << "\n";
        for (const auto& p : obj.at("points").as_array()) {
            const auto& pair = p.as_array();
            auto ms = pair.at(0).to_number<int64_t>();
            std::time_t secs = static_cast<std::time_t>(ms / 1000);
            std::tm tm{};
            gmtime_r(&secs, &tm);
            char when[40];
            std::strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
            std::cout << "  " << when << "." << std::setw(3) << std::setfill('0')
                      << ((ms % 1000) + 1000) % 1000 << "Z  " << boost::json::serialize(pair.at(1))
                      << "\n";
        }
    }
    return exit_ok;
}

}  // namespace clisonix::app
