// The one progress display of the long commands (nab, health-bench, import, device import, the
// demo's backfill). On a terminal it redraws one line with '\r'; into a file or a pipe (a log,
// CI, `| tee`) it writes whole lines and never a '\r': one per step, or one each time another
// `every_percent` of the work is done, so that a log holds a few readable lines instead of
// thousands of redraws.
#pragma once

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ostream>
#include <string>
#include <string_view>

namespace clisonix {

// "[##########          ]  50% 5/10", `width` cells wide.
inline std::string progress_bar(size_t done, size_t total, size_t width = 30) {
    const size_t shown = std::min(done, total);
    const size_t cells = total == 0 ? width : shown * width / total;
    const size_t pct = total == 0 ? 100 : shown * 100 / total;
    std::string out = "[";
    out.append(cells, '#');
    out.append(width - cells, ' ');
    char tail[64];
    std::snprintf(tail, sizeof tail, "] %3zu%% %zu/%zu", pct, done, total);
    out += tail;
    return out;
}

// True when standard error is a terminal: where the commands draw their progress.
inline bool stderr_is_terminal() {
    return ::isatty(STDERR_FILENO) != 0;
}

class progress_display {
public:
    // `label` starts every line ("nab", "import"). `every_percent` 0: off a terminal, a line
    // for every update (callers update once per step, e.g. per file); else a line each time
    // the done fraction passes another multiple of it, and at the end.
    progress_display(std::ostream& out, std::string label, bool terminal,
                     unsigned every_percent = 0)
        : _out(out), _label(std::move(label)), _terminal(terminal), _every(every_percent) {}

    // `detail` follows the counts ("realKnownCause/ec2_cpu.csv", "120000 points").
    void update(size_t done, size_t total, std::string_view detail = {}) {
        const bool last = done >= total;
        if (!_terminal && done == 0 && !last) return;  // a line says that something was done
        if (_terminal) {
            // A redraw every 100 ms at most: a terminal shows no more, and a fast loop would
            // spend its time writing.
            auto now = std::chrono::steady_clock::now();
            if (!last && _drawn && now - _last_draw < std::chrono::milliseconds(100)) return;
            _last_draw = now;
            _drawn = true;
            _out << '\r' << _label << ": " << progress_bar(done, total);
            if (!detail.empty()) _out << "  " << detail;
            // Spaces over the tail of a longer earlier line.
            _out << "   " << (last ? "\n" : "") << std::flush;
            return;
        }
        if (_every > 0 && !last) {
            const size_t percent = total == 0 ? 100 : std::min(done, total) * 100 / total;
            const size_t bucket = percent / _every;
            if (_printed && bucket <= _bucket) return;
            _bucket = bucket;
        }
        if (last && _finished) return;
        _finished = last;
        _printed = true;
        const size_t pct = total == 0 ? 100 : std::min(done, total) * 100 / total;
        _out << _label << ": " << done << "/" << total << " (" << pct << "%)";
        if (!detail.empty()) _out << " " << detail;
        _out << "\n" << std::flush;
    }

private:
    std::ostream& _out;
    std::string _label;
    bool _terminal;
    unsigned _every;
    bool _drawn = false;
    bool _printed = false;
    bool _finished = false;
    size_t _bucket = 0;
    std::chrono::steady_clock::time_point _last_draw{};
};

}  // namespace clisonix
