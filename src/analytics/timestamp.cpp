#include "analytics/timestamp.h"

namespace clisonix::analytics {

namespace {

// Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar (H. Hinnant's algorithm).
int64_t days_from_civil(int64_t y, int64_t m, int64_t d) {
    y -= m <= 2 ? 1 : 0;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const int64_t yoe = y - era * 400;
    const int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

bool digits(std::string_view s, size_t pos, size_t n, int64_t& out) {
    if (pos + n > s.size()) return false;
    out = 0;
    for (size_t i = pos; i < pos + n; ++i) {
        if (s[i] < '0' || s[i] > '9') return false;
        out = out * 10 + (s[i] - '0');
    }
    return true;
}

}  // namespace

result<int64_t> parse_timestamp(std::string_view s) {
    int64_t y, mo, d, h, mi, sec;
    const bool shape = s.size() >= 19 && s[4] == '-' && s[7] == '-' &&
                       (s[10] == ' ' || s[10] == 'T') && s[13] == ':' && s[16] == ':';
    if (!shape || !digits(s, 0, 4, y) || !digits(s, 5, 2, mo) || !digits(s, 8, 2, d) ||
        !digits(s, 11, 2, h) || !digits(s, 14, 2, mi) || !digits(s, 17, 2, sec) || mo < 1 ||
        mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60) {
        return make_error("invalid_argument", "expected YYYY-MM-DD HH:MM:SS");
    }
    int64_t frac_ns = 0;
    if (s.size() > 19) {
        if (s[19] != '.' || s.size() == 20 || s.size() > 29) {
            return make_error("invalid_argument", "expected YYYY-MM-DD HH:MM:SS[.ffffff]");
        }
        int64_t f = 0;
        if (!digits(s, 20, s.size() - 20, f)) {
            return make_error("invalid_argument", "expected YYYY-MM-DD HH:MM:SS[.ffffff]");
        }
        for (size_t i = s.size() - 20; i < 9; ++i)
            f *= 10;
        frac_ns = f;
    }
    const int64_t secs = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec;
    return secs * 1'000'000'000 + frac_ns;
}

}  // namespace clisonix::analytics
