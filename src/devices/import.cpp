// Bulk provisioning: the device CSV format, and `clisonix device import` on top of the API.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <ostream>
#include <sstream>

#include "common/csv.h"
#include "common/progress.h"
#include "devices/internal.h"

namespace clisonix::devices {

namespace json = boost::json;

namespace {

constexpr std::string_view columns[] = {"name", "type", "label", "description"};

std::vector<std::string> split_csv(std::string_view line, bool& unterminated) {
    auto cells = split_csv_line(line, &unterminated);
    for (auto& cell : cells) {
        // Spaces around a cell are layout, not data (names never hold spaces).
        while (!cell.empty() && cell.front() == ' ')
            cell.erase(cell.begin());
        while (!cell.empty() && cell.back() == ' ')
            cell.pop_back();
    }
    return cells;
}

std::string csv_cell(const std::string& s) {
    if (s.find_first_of(",\"\r\n") == std::string::npos) return s;
    std::string out = "\"";
    for (char c : s) {
        if (c == '"') out.push_back('"');
        out.push_back(c);
    }
    return out + "\"";
}

std::string lower(std::string s) {
    for (auto& c : s)
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

}  // namespace

void parse_device_csv(std::string_view text, std::vector<import_row>& rows,
                      std::vector<import_error>& errors) {
    // Column i of a row holds field order[i].
    std::vector<size_t> order = {0, 1, 2, 3};
    bool first = true;
    std::map<std::string, size_t, std::less<>> names;  // name -> line, for duplicates
    size_t line_no = 0;
    size_t start = 0;
    while (start < text.size()) {
        size_t end = std::min(text.find('\n', start), text.size());
        std::string_view line = text.substr(start, end - start);
        start = end + 1;
        ++line_no;
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        if (line.find_first_not_of(" \t") == std::string_view::npos || line.front() == '#')
            continue;
        bool unterminated = false;
        auto cells = split_csv(line, unterminated);
        if (unterminated) {
            errors.push_back({line_no, "", "a quoted cell is not closed on this line"});
            first = false;
            continue;
        }
        if (first) {
            first = false;
            if (lower(cells[0]) == "name") {
                order.clear();
                for (const auto& c : cells) {
                    auto col = lower(c);
                    auto it = std::find(std::begin(columns), std::end(columns), col);
                    if (it == std::end(columns)) {
                        errors.push_back({line_no, "header",
                                          "unknown column \"" + c +
                                              "\"; the columns are name, type, label, "
                                              "description"});
                        rows.clear();
                        return;
                    }
                    size_t index = static_cast<size_t>(it - std::begin(columns));
                    if (std::find(order.begin(), order.end(), index) != order.end()) {
                        errors.push_back({line_no, "header", "column \"" + c + "\" twice"});
                        rows.clear();
                        return;
                    }
                    order.push_back(index);
                }
                continue;
            }
        }
        if (cells.size() > order.size()) {
            errors.push_back({line_no, "",
                              "expected at most " + std::to_string(order.size()) +
                                  " columns, found " + std::to_string(cells.size())});
            continue;
        }
        import_row row;
        row.line = line_no;
        std::string* fields[] = {&row.device.name, &row.device.type, &row.device.label,
                                 &row.device.description};
        for (size_t i = 0; i < cells.size(); ++i)
            *fields[order[i]] = cells[i];
        if (row.device.type.empty()) row.device.type = "default";
        if (auto ok = detail::check_name(row.device.name, "name"); !ok) {
            errors.push_back({line_no, "name", ok.error().message});
            continue;
        }
        if (auto ok = detail::check_name(row.device.type, "type"); !ok) {
            errors.push_back({line_no, "type", ok.error().message});
            continue;
        }
        if (auto it = names.find(row.device.name); it != names.end()) {
            errors.push_back(
                {line_no, "name",
                 "name: " + row.device.name + " is already on line " + std::to_string(it->second)});
            continue;
        }
        names.emplace(row.device.name, line_no);
        rows.push_back(std::move(row));
    }
}

namespace {

// "name: reason" -> "reason", so that the CLI's `FILE:LINE: field: reason` says it once.
std::string without_field(const std::string& message, const std::string& field) {
    if (!field.empty() && message.starts_with(field + ": "))
        return message.substr(field.size() + 2);
    return message;
}

void print_error(std::ostream& err, const std::string& file, size_t line, const std::string& field,
                 const std::string& message) {
    err << file << ":" << line << ": ";
    if (!field.empty()) err << field << ": ";
    err << without_field(message, field) << "\n";
}

}  // namespace

int run_import_command(const import_command& cmd,
                       const std::function<result<post_result>(const std::string& csv)>& post,
                       std::ostream& out, std::ostream& err, bool tty) {
    std::ifstream in(cmd.file, std::ios::binary);
    if (!in) {
        err << "device import: cannot read " << cmd.file << ": " << std::strerror(errno) << "\n";
        return 2;
    }
    std::stringstream buffer;
    buffer << in.rdbuf();
    std::vector<import_row> rows;
    std::vector<import_error> local;
    parse_device_csv(buffer.str(), rows, local);
    for (const auto& e : local)
        if (e.field == "header") {
            print_error(err, cmd.file, e.line, e.field, e.message);
            return 2;
        }
    if (rows.empty() && local.empty()) {
        err << "device import: " << cmd.file << ": no device rows\n";
        return 2;
    }

    // The tokens are shown once: the file is private before the first one is written.
    int fd = -1;
    if (!cmd.tokens_out.empty()) {
        fd = ::open(cmd.tokens_out.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0 || ::fchmod(fd, 0600) != 0) {
            err << "device import: cannot write " << cmd.tokens_out << ": " << std::strerror(errno)
                << "\n";
            if (fd >= 0) ::close(fd);
            return 2;
        }
    }
    struct closer {
        int fd;
        ~closer() {
            if (fd >= 0) ::close(fd);
        }
    } close_tokens{fd};
    std::string tokens = "name,token\n";
    auto write_tokens = [&]() -> bool {
        if (fd < 0) {
            out << tokens;
            tokens.clear();
            return true;
        }
        size_t at = 0;
        while (at < tokens.size()) {
            ssize_t n = ::write(fd, tokens.data() + at, tokens.size() - at);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) return false;
            at += static_cast<size_t>(n);
        }
        tokens.clear();
        return true;
    };

    std::vector<import_error> errors = local;
    size_t created = 0, skipped = 0;
    const size_t total = rows.size();
    progress_display shown(err, "device import", tty);
    for (size_t begin = 0; begin < rows.size(); begin += cmd.chunk_rows) {
        size_t end = std::min(rows.size(), begin + cmd.chunk_rows);
        std::string body = "name,type,label,description\n";
        for (size_t i = begin; i < end; ++i) {
            const auto& d = rows[i].device;
            body += csv_cell(d.name) + "," + csv_cell(d.type) + "," + csv_cell(d.label) + "," +
                    csv_cell(d.description) + "\n";
        }
        // Line k of the chunk (the header is line 1) is rows[begin + k - 2] of the file.
        auto file_line = [&](size_t chunk_line) -> size_t {
            size_t i = begin + chunk_line - 2;
            return chunk_line >= 2 && i < end ? rows[i].line : 0;
        };
        auto r = post(body);
        if (!r) {
            if (tty) err << "\n";
            err << "device import: " << r.error().message << "\n";
            (void)write_tokens();
            return 1;
        }
        json::error_code ec;
        auto doc = json::parse(r->body, ec);
        if (r->status != 200 || ec || !doc.is_object() || !doc.as_object().contains("created")) {
            if (tty) err << "\n";
            std::string message = "HTTP " + std::to_string(r->status);
            if (!ec && doc.is_object())
                if (auto* e = doc.as_object().if_contains("error"); e && e->is_object())
                    if (auto* m = e->as_object().if_contains("message"); m && m->is_string())
                        message = std::string(m->as_string());
            err << "device import: " << message << "\n";
            (void)write_tokens();
            return r->status >= 400 && r->status < 500 ? 2 : 1;
        }
        const auto& o = doc.as_object();
        for (const auto& c : o.at("created").as_array()) {
            const auto& d = c.as_object();
            tokens += csv_cell(std::string(d.at("name").as_string())) + "," +
                      std::string(d.at("token").as_string()) + "\n";
            ++created;
        }
        skipped += o.at("skipped").as_array().size();
        for (const auto& e : o.at("errors").as_array()) {
            const auto& x = e.as_object();
            errors.push_back({file_line(static_cast<size_t>(x.at("line").to_number<int64_t>())),
                              std::string(x.at("field").as_string()),
                              std::string(x.at("message").as_string())});
        }
        if (!write_tokens()) {
            if (tty) err << "\n";
            err << "device import: cannot write " << cmd.tokens_out << ": " << std::strerror(errno)
                << "\n";
            return 1;
        }
        // Off a terminal only the summary below: the import is one request per chunk.
        if (tty) shown.update(end, total, "devices");
    }
    std::sort(errors.begin(), errors.end(),
              [](const import_error& a, const import_error& b) { return a.line < b.line; });
    for (const auto& e : errors)
        print_error(err, cmd.file, e.line, e.field, e.message);
    out << "device import: " << created << " created, " << skipped << " already existed, "
        << errors.size() << " failed\n";
    return errors.empty() ? 0 : 2;
}

}  // namespace clisonix::devices
