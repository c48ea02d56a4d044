// Structured logging: each line is formatted here once per sink (JSON for the file, text for
// the console) and handed to spdlog sinks, which own files, rotation and locking.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <mutex>
#include <stdexcept>
#include <thread>

#include <fmt/format.h>
#include <spdlog/sinks/daily_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>

#include "observe/observe.h"

namespace clisonix::log {
namespace {

using sink_ptr = std::shared_ptr<spdlog::sinks::sink>;

struct sinks {
    sink_ptr file;     // null when no directory was given
    sink_ptr console;  // null when the console is off
};

// Writers copy the pointer under g_mutex and log outside it; the sinks lock themselves.
// g_lifecycle_mutex serialises init() and shutdown().
std::mutex g_lifecycle_mutex;
std::mutex g_mutex;
std::shared_ptr<const sinks> g_sinks;
std::atomic<int> g_min_level{static_cast<int>(level::info)};
std::jthread g_flusher;

thread_local std::string t_request_id;

constexpr std::string_view level_name(level lvl) {
    constexpr std::string_view names[] = {"trace", "debug", "info", "warn", "error"};
    return names[static_cast<int>(lvl)];
}

constexpr std::string_view console_level_name(level lvl) {
    constexpr std::string_view names[] = {"TRACE", "DEBUG", "INFO ", "WARN ", "ERROR"};
    return names[static_cast<int>(lvl)];
}

spdlog::level::level_enum to_spdlog(level lvl) {
    return static_cast<spdlog::level::level_enum>(static_cast<int>(lvl));
}

// Length of the valid UTF-8 sequence starting at s[i], or 0 when the bytes there are not one
// (overlong forms, surrogates and code points above U+10FFFF are invalid).
size_t utf8_sequence_length(std::string_view s, size_t i) {
    auto byte = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
    unsigned char b = byte(i);
    size_t len = b < 0xC2 ? 0 : b < 0xE0 ? 2 : b < 0xF0 ? 3 : b < 0xF5 ? 4 : 0;
    if (len == 0 || i + len > s.size()) return 0;
    for (size_t k = 1; k < len; ++k) {
        if ((byte(i + k) & 0xC0) != 0x80) return 0;
    }
    unsigned char b1 = byte(i + 1);
    if (b == 0xE0 && b1 < 0xA0) return 0;  // overlong
    if (b == 0xED && b1 > 0x9F) return 0;  // surrogate
    if (b == 0xF0 && b1 < 0x90) return 0;  // overlong
    if (b == 0xF4 && b1 > 0x8F) return 0;  // above U+10FFFF
    return len;
}

// Appends `s` with control characters escaped as \u00XX and invalid UTF-8 replaced by U+FFFD,
// so that every line stays one line of valid UTF-8 whatever a caller passes.
void append_escaped(std::string& out, std::string_view s, bool json) {
    for (size_t i = 0; i < s.size();) {
        auto c = static_cast<unsigned char>(s[i]);
        if (c < 0x20 || c == 0x7F) {
            fmt::format_to(std::back_inserter(out), "\\u{:04x}", c);
            ++i;
        } else if (c == '"' || c == '\\') {
            if (json) out += '\\';
            out += static_cast<char>(c);
            ++i;
        } else if (c < 0x80) {
            out += static_cast<char>(c);
            ++i;
        } else if (size_t len = utf8_sequence_length(s, i); len > 0) {
            out.append(s.substr(i, len));
            i += len;
        } else {
            out += "\xEF\xBF\xBD";
            ++i;
        }
    }
}

void append_json_string(std::string& out, std::string_view s) {
    out += '"';
    append_escaped(out, s, true);
    out += '"';
}

void append_json_value(std::string& out, const field::value_type& value) {
    std::visit(
        [&](const auto& v) {
            using T = std::decay_t<decltype(v)>;
            if constexpr (std::is_same_v<T, std::string_view>) {
                append_json_string(out, v);
            } else if constexpr (std::is_same_v<T, bool>) {
                out += v ? "true" : "false";
            } else if constexpr (std::is_same_v<T, double>) {
                if (std::isfinite(v)) {
                    fmt::format_to(std::back_inserter(out), "{}", v);
                } else {
                    out += "null";  // JSON has no spelling for inf or nan
                }
            } else {
                fmt::format_to(std::back_inserter(out), "{}", v);
            }
        },
        value);
}

// Text values are quoted when a reader could not otherwise tell where they end.
void append_text_value(std::string& out, const field::value_type& value) {
    const auto* text = std::get_if<std::string_view>(&value);
    if (!text) {
        std::visit([&](const auto& v) { fmt::format_to(std::back_inserter(out), "{}", v); }, value);
        return;
    }
    bool quote = text->empty() || text->find_first_of(" \"=\\") != std::string_view::npos;
    for (char c : *text)
        quote = quote || static_cast<unsigned char>(c) < 0x20;
    if (quote) out += '"';
    append_escaped(out, *text, quote);
    if (quote) out += '"';
}

struct utc_time {
    std::tm tm;
    int millis;
};

utc_time now_utc() {
    auto now = std::chrono::system_clock::now();
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch());
    std::time_t secs = static_cast<std::time_t>(ms.count() / 1000);
    utc_time t{};
    gmtime_r(&secs, &t.tm);
    t.millis = static_cast<int>(ms.count() % 1000);
    return t;
}

void append_time(std::string& out, const utc_time& t, bool iso) {
    fmt::format_to(std::back_inserter(out), "{:04}-{:02}-{:02}{}{:02}:{:02}:{:02}.{:03}{}",
                   t.tm.tm_year + 1900, t.tm.tm_mon + 1, t.tm.tm_mday, iso ? 'T' : ' ',
                   t.tm.tm_hour, t.tm.tm_min, t.tm.tm_sec, t.millis, iso ? "Z" : "");
}

std::string format_json(const utc_time& t, level lvl, std::string_view msg,
                        std::initializer_list<field> fields) {
    std::string out = "{\"ts\":\"";
    append_time(out, t, true);
    out += "\",\"level\":\"";
    out += level_name(lvl);
    out += "\",\"msg\":";
    append_json_string(out, msg);
    if (!t_request_id.empty()) {
        out += ",\"request_id\":";
        append_json_string(out, t_request_id);
    }
    for (const auto& f : fields) {
        out += ',';
        append_json_string(out, f.key);
        out += ':';
        append_json_value(out, f.value);
    }
    out += '}';
    return out;
}

std::string format_text(const utc_time& t, level lvl, std::string_view msg,
                        std::initializer_list<field> fields) {
    std::string out;
    append_time(out, t, false);
    out += ' ';
    out += console_level_name(lvl);
    out += ' ';
    append_escaped(out, msg, false);
    for (const auto& f : fields) {
        out += ' ';
        append_escaped(out, f.key, false);
        out += '=';
        append_text_value(out, f.value);
    }
    if (!t_request_id.empty()) {
        out += " request_id=";
        append_text_value(out, std::string_view(t_request_id));
    }
    return out;
}

// A full disk makes every write and flush of the log file fail (spdlog throws): that is said
// on stderr once, then at most once a minute with the count of failures since, and never
// takes down the thread that logged or flushed.
void report_sink_failure(const std::exception& e) {
    static std::mutex m;
    static int64_t last_ms = 0;
    static uint64_t since_last = 0;
    const int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::steady_clock::now().time_since_epoch())
                            .count();
    std::lock_guard lock(m);
    if (last_ms != 0 && now - last_ms < 60'000) {
        ++since_last;
        return;
    }
    std::fprintf(stderr,
                 "log write failed: %s (%llu more since the last report; reported at most once "
                 "a minute)\n",
                 e.what(), static_cast<unsigned long long>(since_last));
    last_ms = now;
    since_last = 0;
}

void sink_line(const sink_ptr& sink, level lvl, std::string_view line) {
    sink->log(spdlog::details::log_msg("clisonix", to_spdlog(lvl), line));
    if (lvl >= level::warn) sink->flush();
}

std::shared_ptr<const sinks> current_sinks() {
    std::lock_guard lock(g_mutex);
    return g_sinks;
}

void flush_all(const sinks& s) {
    for (const auto& sink : {s.file, s.console}) {
        if (!sink) continue;
        try {
            sink->flush();
        } catch (const std::exception& e) {
            report_sink_failure(e);
        }
    }
}

void shutdown_locked() {
    if (g_flusher.joinable()) {
        g_flusher.request_stop();
        g_flusher.join();
    }
    std::shared_ptr<const sinks> s;
    {
        std::lock_guard lock(g_mutex);
        s = std::move(g_sinks);
        g_sinks.reset();
    }
    if (s) flush_all(*s);
}

}  // namespace

level parse_level(std::string_view text) {
    for (int i = 0; i <= static_cast<int>(level::error); ++i) {
        if (level_name(static_cast<level>(i)) == text) return static_cast<level>(i);
    }
    return level::info;
}

void init(const options& opts) {
    std::lock_guard lifecycle(g_lifecycle_mutex);
    shutdown_locked();
    auto s = std::make_shared<sinks>();
    if (!opts.dir.empty()) {
        std::error_code ec;
        std::filesystem::create_directories(opts.dir, ec);
        if (ec) {
            throw std::runtime_error("cannot create log directory " + opts.dir + ": " +
                                     ec.message());
        }
        try {
            // Rotates at local midnight; each day's file is named clisonix_YYYY-MM-DD.log.
            auto keep = static_cast<uint16_t>(std::clamp(opts.keep_days, 0, 65535));
            s->file = std::make_shared<spdlog::sinks::daily_file_sink_mt>(
                (std::filesystem::path(opts.dir) / "clisonix.log").string(), 0, 0, false, keep);
        } catch (const spdlog::spdlog_ex& e) {
            throw std::runtime_error("cannot open log file in " + opts.dir + ": " + e.what());
        }
        s->file->set_pattern("%v");
    }
    if (opts.console) {
        s->console = std::make_shared<spdlog::sinks::stderr_sink_mt>();
        s->console->set_pattern("%v");
    }
    g_min_level = static_cast<int>(opts.min_level);
    {
        std::lock_guard lock(g_mutex);
        g_sinks = s;
    }
    // Lines below warn reach the disk within a second even when the process is killed.
    g_flusher = std::jthread([s](std::stop_token stop) {
        std::mutex m;
        std::condition_variable_any cv;
        std::unique_lock lock(m);
        while (!stop.stop_requested()) {
            cv.wait_for(lock, stop, std::chrono::seconds(1), [] { return false; });
            flush_all(*s);
        }
    });
}

void shutdown() {
    std::lock_guard lifecycle(g_lifecycle_mutex);
    shutdown_locked();
}

bool enabled(level lvl) {
    return static_cast<int>(lvl) >= g_min_level.load(std::memory_order_relaxed);
}

void write(level lvl, std::string_view msg, std::initializer_list<field> fields) {
    if (!enabled(lvl)) return;
    auto t = now_utc();
    auto s = current_sinks();
    if (!s) {
        std::string line = format_text(t, lvl, msg, fields);
        line += '\n';
        std::fwrite(line.data(), 1, line.size(), stderr);
        return;
    }
    // A full disk or a failed rotation must not take down the caller, nor keep the line
    // from the console.
    if (s->file) {
        try {
            sink_line(s->file, lvl, format_json(t, lvl, msg, fields));
        } catch (const std::exception& e) {
            report_sink_failure(e);
        }
    }
    if (s->console) {
        try {
            sink_line(s->console, lvl, format_text(t, lvl, msg, fields));
        } catch (const std::exception& e) {
            report_sink_failure(e);
        }
    }
}

request_scope::request_scope(std::string_view request_id) : _previous(std::move(t_request_id)) {
    t_request_id = request_id;
}

request_scope::~request_scope() {
    t_request_id = std::move(_previous);
}

}  // namespace clisonix::log
