// InfluxDB line protocol parser: the hot path of ingest.
//
// One pass over each line with pointers; names are kept as views into the body and copied
// only into the reused series-key scratch; numbers go through std::from_chars. Nothing is
// allocated per line or point once the parser's and the batch's buffers have grown.
//
// Series lookup: write_batch::series hashes the whole key of every point, which cost more
// than the parsing itself. The parser keeps its own table from a line's canonical
// `measurement,tags` prefix to the batch indices of its fields (in the order the lines give
// them), so a line costs one hash of its prefix and a short compare per field; the batch
// is asked only for series it has not seen in this request.
#include <algorithm>
#include <array>
#include <bit>
#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>

#include "ingest/ingest.h"
#include "ingest/keys.h"

namespace clisonix::ingest {

using detail::element;
using detail::escapable;
using storage::value_type;

std::optional<precision> parse_precision(std::string_view text, bool minutes_and_hours) {
    if (text == "ns" || text == "n") return precision::ns;
    if (text == "us" || text == "u") return precision::us;
    if (text == "ms") return precision::ms;
    if (text == "s") return precision::s;
    if (minutes_and_hours && text == "m") return precision::m;
    if (minutes_and_hours && text == "h") return precision::h;
    return std::nullopt;
}

namespace {

int64_t nanoseconds_per(precision p) {
    switch (p) {
        case precision::ns:
            return 1;
        case precision::us:
            return 1'000;
        case precision::ms:
            return 1'000'000;
        case precision::s:
            return 1'000'000'000;
        case precision::m:
            return 60'000'000'000;
        case precision::h:
            return 3'600'000'000'000;
    }
    return 1;
}

std::string_view precision_name(precision p) {
    switch (p) {
        case precision::ns:
            return "ns";
        case precision::us:
            return "us";
        case precision::ms:
            return "ms";
        case precision::s:
            return "s";
        case precision::m:
            return "m";
        case precision::h:
            return "h";
    }
    return "ns";
}

std::string line_name(size_t line_no) {
    return "line " + std::to_string(line_no);
}

error line_error(size_t line_no, std::string_view what, std::string code = "invalid_argument") {
    auto name = line_name(line_no);
    return make_error(std::move(code), name + ": " + std::string(what), name);
}

using detail::quoted;

std::string hex_byte(char c) {
    static constexpr char hex[] = "0123456789ABCDEF";
    auto b = static_cast<unsigned char>(c);
    return {hex[b >> 4], hex[b & 0xF]};
}

std::string bad_value(std::string_view field) {
    return "invalid field value for " + quoted(field) +
           ": expected a number, string, boolean or integer";
}

// What a byte means inside a name: most are plain; a table lookup is one load and one
// compare per byte where testing each special character was several.
enum name_byte : uint8_t { plain, ends_name, backslash, unusual_byte };

template <bool stop_at_equals>
constexpr std::array<uint8_t, 256> name_byte_classes() {
    std::array<uint8_t, 256> classes{};
    for (int c = 0; c < 256; ++c) {
        if (detail::unusual_byte(static_cast<unsigned char>(c))) classes[c] = unusual_byte;
    }
    classes[','] = classes[' '] = ends_name;
    if (stop_at_equals) classes['='] = ends_name;
    classes['\\'] = backslash;
    return classes;
}

// The end of a name that starts at `p`: the first unescaped ',' or ' ' (and '=' when
// `stop_at_equals`). Sets `escaped` when a backslash occurs, `unusual` when a control
// character or a byte >= 0x80 does (then detail::name_problem decides).
template <bool stop_at_equals>
inline const char* scan_name(const char* p, const char* end, bool& escaped, bool& unusual) {
    static constexpr auto classes = name_byte_classes<stop_at_equals>();
    while (p < end) {
        const uint8_t k = classes[static_cast<unsigned char>(*p)];
        if (k == plain) {
            ++p;
            continue;
        }
        if (k == ends_name) break;
        if (k == unusual_byte) {
            unusual = true;
        } else {
            escaped = true;
            if (p + 1 < end && escapable(p[1])) {
                p += 2;
                continue;
            }
        }
        ++p;
    }
    return p;
}

// Orders tags by their unescaped keys (escaped keys are rare: compared through scratch).
int compare_keys(std::string_view a, bool a_escaped, std::string_view b, bool b_escaped,
                 std::string& scratch_a, std::string& scratch_b) {
    if (!a_escaped && !b_escaped) return a.compare(b);
    scratch_a.clear();
    scratch_b.clear();
    detail::append_unescaped(scratch_a, a);
    detail::append_unescaped(scratch_b, b);
    return scratch_a.compare(scratch_b);
}

bool parse_bool(std::string_view t, bool& v) {
    if (t == "t" || t == "T" || t == "true" || t == "True" || t == "TRUE") {
        v = true;
        return true;
    }
    if (t == "f" || t == "F" || t == "false" || t == "False" || t == "FALSE") {
        v = false;
        return true;
    }
    return false;
}

}  // namespace

namespace {

constexpr uint32_t no_series = UINT32_MAX;

// A per-process random seed keeps crafted series names from piling into one probe chain.
const uint64_t hash_seed = std::random_device{}() * 0x9E3779B97F4A7C15ull | 1;

inline uint64_t mix(uint64_t h, uint64_t w) {
    h = (h ^ w) * 0xbf58476d1ce4e5b9ull;
    return h ^ (h >> 31);
}

inline uint64_t hash_bytes(std::string_view s) {
    uint64_t h = hash_seed ^ s.size();
    const char* p = s.data();
    size_t n = s.size();
    for (; n >= 8; p += 8, n -= 8) {
        uint64_t w;
        std::memcpy(&w, p, 8);
        h = mix(h, w);
    }
    uint64_t w = 0;
    std::memcpy(&w, p, n);
    return mix(h, w ^ 0x94d049bb133111ebull);
}

}  // namespace

struct line_parser::state {
    struct tag_ref {
        std::string_view key, value;      // as written (escaped)
        bool key_escaped, value_escaped;  // holds a backslash: unescape before use
    };
    struct field_ref {
        std::string_view key;  // as written (escaped)
        bool key_escaped;
        value_type type;
        uint64_t raw;           // float bits, int64, boolean 0/1
        std::string_view text;  // string fields: the value, unescaped
    };
    struct cached_field {
        std::string key;  // canonical field key
        value_type type;
        uint32_t series;  // batch index, valid while the entry's generation is current
    };
    struct prefix_entry {
        std::string prefix;  // canonical `measurement,tag=value...`
        uint64_t hash;
        uint64_t generation;
        std::vector<cached_field> fields;
        // Beyond `scan_limit` fields, an open-addressing table over `fields` (index + 1,
        // 0 = empty), so that a line listing the fields in another order than the previous
        // line costs a probe per field, not a scan of them all (which made alternating
        // field orders O(fields^2) per line).
        std::vector<uint32_t> field_slots;
        static constexpr size_t scan_limit = 8;

        // The cached field `key`. Lines of one series usually list their fields in one
        // order, or the reverse one (two collectors): the slots next to `previous` (where
        // the line's previous field was found) are tried first.
        cached_field* find_field(std::string_view key, size_t previous) {
            const size_t n = fields.size();
            if (previous + 1 < n && fields[previous + 1].key == key) return &fields[previous + 1];
            if (previous > 0 && previous - 1 < n && fields[previous - 1].key == key)
                return &fields[previous - 1];
            if (field_slots.empty()) {
                for (auto& c : fields)
                    if (c.key == key) return &c;
                return nullptr;
            }
            const size_t mask = field_slots.size() - 1;
            for (size_t i = hash_bytes(key) & mask;; i = (i + 1) & mask) {
                uint32_t slot = field_slots[i];
                if (slot == 0) return nullptr;
                if (fields[slot - 1].key == key) return &fields[slot - 1];
            }
        }

        void add_field(std::string_view key, value_type type, uint32_t series) {
            fields.push_back({std::string(key), type, series});
            if (fields.size() <= scan_limit) return;
            if (fields.size() * 2 > field_slots.size()) {
                field_slots.assign(std::bit_ceil(fields.size() * 4), 0);
                for (uint32_t n = 0; n < fields.size(); ++n)
                    place(n);
            } else {
                place(static_cast<uint32_t>(fields.size() - 1));
            }
        }

    private:
        void place(uint32_t n) {
            const size_t mask = field_slots.size() - 1;
            size_t i = hash_bytes(fields[n].key) & mask;
            while (field_slots[i] != 0)
                i = (i + 1) & mask;
            field_slots[i] = n + 1;
        }
    };
    // Bounds the cache's memory; past it, series go to the batch directly until the next
    // request starts with an empty cache.
    static constexpr size_t max_entries = 1 << 16;

    std::vector<tag_ref> tags;
    std::vector<field_ref> fields;
    std::string key_text;  // the series key being built
    std::string strings;   // unescaped string values of the current line (never reallocated
                           // within a line: reserved to the line's length first)
    std::string scratch_a, scratch_b, field_key;
    std::vector<prefix_entry> entries;
    std::vector<uint32_t> slots;  // open addressing: entry index + 1, 0 = empty
    uint64_t generation = 0;

    void begin_request() {
        ++generation;
        if (entries.size() >= max_entries) {
            entries.clear();
            std::fill(slots.begin(), slots.end(), 0);
        }
    }

    // The entry of `prefix`, added when missing; nullptr when the cache is full.
    prefix_entry* lookup(std::string_view prefix) {
        uint64_t h = hash_bytes(prefix);
        if (slots.empty()) slots.assign(1024, 0);
        size_t mask = slots.size() - 1;
        for (size_t i = h & mask;; i = (i + 1) & mask) {
            uint32_t slot = slots[i];
            if (slot == 0) {
                if (entries.size() >= max_entries) return nullptr;
                entries.push_back({std::string(prefix), h, generation, {}, {}});
                slots[i] = static_cast<uint32_t>(entries.size());
                if (entries.size() * 2 > slots.size()) grow();
                return &entries.back();
            }
            auto& e = entries[slot - 1];
            if (e.hash == h && e.prefix == prefix) {
                if (e.generation != generation) {
                    e.generation = generation;
                    for (auto& f : e.fields)
                        f.series = no_series;
                }
                return &e;
            }
        }
    }

    void grow() {
        slots.assign(slots.size() * 2, 0);
        size_t mask = slots.size() - 1;
        for (uint32_t n = 0; n < entries.size(); ++n) {
            size_t i = entries[n].hash & mask;
            while (slots[i] != 0)
                i = (i + 1) & mask;
            slots[i] = n + 1;
        }
    }

    status parse_line(std::string_view line, size_t line_no, const line_options& opts,
                      storage::write_batch& out);
};

line_parser::line_parser() : _state(std::make_unique<state>()) {}
line_parser::~line_parser() = default;
line_parser::line_parser(line_parser&&) noexcept = default;
line_parser& line_parser::operator=(line_parser&&) noexcept = default;

status line_parser::parse(std::string_view body, const line_options& opts,
                          storage::write_batch& out) {
    out.clear();
    _state->begin_request();
    const char* p = body.data();
    const char* const end = p + body.size();
    size_t line_no = 0;
    while (p < end) {
        ++line_no;
        const char* nl = static_cast<const char*>(std::memchr(p, '\n', end - p));
        const char* line_end = nl ? nl : end;
        std::string_view line(p, line_end - p);
        p = nl ? nl + 1 : end;
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        if (line.size() > opts.bounds.max_line_bytes) {
            out.clear();
            return line_error(line_no,
                              "longer than the limit of " +
                                  std::to_string(opts.bounds.max_line_bytes) +
                                  " bytes (ingest.max_line_bytes)",
                              "too_large");
        }
        size_t first = 0;
        while (first < line.size() && (line[first] == ' ' || line[first] == '\t'))
            ++first;
        if (first == line.size() || line[first] == '#') continue;
        if (auto st = _state->parse_line(line.substr(first), line_no, opts, out); !st) {
            out.clear();
            return st;
        }
    }
    return {};
}

status line_parser::state::parse_line(std::string_view line, size_t line_no,
                                      const line_options& opts, storage::write_batch& out) {
    const char* p = line.data();
    const char* const end = p + line.size();

    // Measurement: up to the first unescaped ',' (tags follow) or ' ' (fields follow).
    bool measurement_escaped = false, unusual = false;
    const char* m_begin = p;
    p = scan_name<false>(p, end, measurement_escaped, unusual);
    std::string_view measurement(m_begin, p - m_begin);
    if (measurement.empty()) return line_error(line_no, "missing measurement");
    if (unusual)
        if (auto why = detail::name_problem(measurement))
            return line_error(line_no, "measurement " + quoted(measurement) + " " + *why);

    // Tag set.
    tags.clear();
    bool sorted = true;
    while (p < end && *p == ',') {
        ++p;
        bool key_escaped = false, value_escaped = false;
        const char* k = p;
        unusual = false;
        p = scan_name<true>(p, end, key_escaped, unusual);
        std::string_view key(k, p - k);
        if (key.empty()) return line_error(line_no, "empty tag key");
        if (unusual)
            if (auto why = detail::name_problem(key))
                return line_error(line_no, "tag key " + quoted(key) + " " + *why);
        if (p == end || *p != '=')
            return line_error(line_no, "invalid tag " + quoted(key) + ": expected key=value");
        const char* v = ++p;
        unusual = false;
        p = scan_name<true>(p, end, value_escaped, unusual);
        std::string_view value(v, p - v);
        if (p < end && *p == '=')
            return line_error(line_no, "unescaped \"=\" in the value of tag " + quoted(key));
        if (value.empty()) return line_error(line_no, "missing value for tag " + quoted(key));
        if (unusual)
            if (auto why = detail::name_problem(value))
                return line_error(
                    line_no, "the value of tag " + quoted(key) + " " + quoted(value) + " " + *why);
        if (!tags.empty()) {
            const auto& prev = tags.back();
            int c =
                compare_keys(prev.key, prev.key_escaped, key, key_escaped, scratch_a, scratch_b);
            if (c == 0) return line_error(line_no, "duplicate tag " + quoted(key));
            if (c > 0) sorted = false;
        }
        tags.push_back({key, value, key_escaped, value_escaped});
    }
    while (p < end && *p == ' ')
        ++p;
    if (p == end) return line_error(line_no, "missing fields: expected a space and key=value");

    if (!sorted) {
        std::sort(tags.begin(), tags.end(), [this](const tag_ref& a, const tag_ref& b) {
            return compare_keys(a.key, a.key_escaped, b.key, b.key_escaped, scratch_a, scratch_b) <
                   0;
        });
        for (size_t i = 1; i < tags.size(); ++i) {
            if (compare_keys(tags[i - 1].key, tags[i - 1].key_escaped, tags[i].key,
                             tags[i].key_escaped, scratch_a, scratch_b) == 0)
                return line_error(line_no, "duplicate tag " + quoted(tags[i].key));
        }
    }

    // Field set: key=value pairs separated by ','; values are typed by their spelling.
    fields.clear();
    strings.clear();
    strings.reserve(line.size());  // string views into it stay valid for the whole line
    for (;;) {
        bool key_escaped = false;
        const char* k = p;
        unusual = false;
        p = scan_name<true>(p, end, key_escaped, unusual);
        std::string_view key(k, p - k);
        if (key.empty()) return line_error(line_no, "empty field key");
        if (unusual)
            if (auto why = detail::name_problem(key))
                return line_error(line_no, "field key " + quoted(key) + " " + *why);
        if (p == end || *p != '=')
            return line_error(line_no, "invalid field " + quoted(key) + ": expected key=value");
        ++p;
        if (p == end || *p == ',' || *p == ' ')
            return line_error(line_no, "missing value for field " + quoted(key));

        field_ref f{key, key_escaped, value_type::float64, 0, {}};
        if (*p == '"') {
            // A string: `\"` and `\\` are escapes; any other backslash is itself.
            const char* s = ++p;
            bool escaped = false;
            unsigned char high = 0;  // any byte >= 0x80: check UTF-8 (controls are allowed,
                                     // as in the reference: a string value is data, not a name)
            while (p < end && *p != '"') {
                high |= static_cast<unsigned char>(*p);
                if (*p == '\\' && p + 1 < end) {
                    escaped = true;
                    high |= static_cast<unsigned char>(p[1]);
                    p += 2;
                } else {
                    ++p;
                }
            }
            if (p == end)
                return line_error(line_no, "unterminated string value for field " + quoted(key));
            std::string_view text(s, p - s);
            if ((high & 0x80) != 0)
                if (size_t bad = utf8::first_invalid(text); bad != std::string_view::npos)
                    return line_error(line_no, "the string value of field " + quoted(key) +
                                                   " is not valid UTF-8 (byte 0x" +
                                                   hex_byte(text[bad]) + " at byte " +
                                                   std::to_string(bad) + ")");
            ++p;
            if (p < end && *p != ',' && *p != ' ') return line_error(line_no, bad_value(key));
            if (escaped) {
                size_t start = strings.size();
                for (size_t i = 0; i < text.size(); ++i) {
                    if (text[i] == '\\' && i + 1 < text.size() &&
                        (text[i + 1] == '"' || text[i + 1] == '\\'))
                        ++i;
                    strings.push_back(text[i]);
                }
                text = std::string_view(strings.data() + start, strings.size() - start);
            }
            f.type = value_type::string;
            f.text = text;
        } else {
            const char* v = p;
            while (p < end && *p != ',' && *p != ' ')
                ++p;
            std::string_view token(v, p - v);
            char first = token.front(), last = token.back();
            if (first == 't' || first == 'T' || first == 'f' || first == 'F') {
                bool b;
                if (!parse_bool(token, b)) return line_error(line_no, bad_value(key));
                f.type = value_type::boolean;
                f.raw = b ? 1 : 0;
            } else if (last == 'i') {
                int64_t n;
                auto [ptr, ec] = std::from_chars(v, p - 1, n);
                if (ec == std::errc::result_out_of_range)
                    return line_error(line_no, "integer out of range for field " + quoted(key));
                if (ec != std::errc{} || ptr != p - 1 || token.size() < 2 || *v == '+')
                    return line_error(line_no, bad_value(key));
                f.type = value_type::int64;
                f.raw = static_cast<uint64_t>(n);
            } else if (last == 'u') {
                uint64_t n;
                auto [ptr, ec] = std::from_chars(v, p - 1, n);
                if (ec == std::errc::result_out_of_range ||
                    (ec == std::errc{} && ptr == p - 1 &&
                     n > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())))
                    return line_error(line_no, "unsigned integer for field " + quoted(key) +
                                                   " does not fit in a signed 64-bit integer");
                if (ec != std::errc{} || ptr != p - 1 || token.size() < 2 || *v == '+')
                    return line_error(line_no, bad_value(key));
                f.type = value_type::int64;
                f.raw = n;
            } else {
                // from_chars also reads "inf" and "nan": only digits, '.', '-' may start.
                const char* digits = first == '-' ? v + 1 : v;
                if (digits == p || !((*digits >= '0' && *digits <= '9') || *digits == '.'))
                    return line_error(line_no, bad_value(key));
                double d;
                auto [ptr, ec] = std::from_chars(v, p, d);
                if (ec == std::errc::result_out_of_range)
                    return line_error(line_no, "float out of range for field " + quoted(key));
                if (ec != std::errc{} || ptr != p || !std::isfinite(d))
                    return line_error(line_no, bad_value(key));
                f.raw = std::bit_cast<uint64_t>(d);
            }
        }
        fields.push_back(f);
        if (p == end || *p == ' ') break;
        ++p;  // ','
    }

    // Optional timestamp, in the request's precision.
    int64_t ts = opts.now_ns;
    while (p < end && *p == ' ')
        ++p;
    if (p < end) {
        const char* t = p;
        while (p < end && *p != ' ')
            ++p;
        std::string_view token(t, p - t);
        int64_t n;
        auto [ptr, ec] = std::from_chars(t, p, n);
        if (ec == std::errc::result_out_of_range)
            return line_error(line_no, "timestamp " + quoted(token) + " is out of range");
        if (ec != std::errc{} || ptr != p)
            return line_error(line_no,
                              "invalid timestamp " + quoted(token) + ": expected an integer");
        if (__builtin_mul_overflow(n, nanoseconds_per(opts.unit), &ts))
            return line_error(line_no, "timestamp " + quoted(token) +
                                           " is out of range at precision " +
                                           std::string(precision_name(opts.unit)));
        while (p < end && *p == ' ')
            ++p;
        if (p < end) return line_error(line_no, "unexpected text after the timestamp");
    }

    if (out.point_count() + fields.size() > opts.bounds.max_points_per_request)
        return line_error(line_no,
                          "the request has more points than the limit of " +
                              std::to_string(opts.bounds.max_points_per_request) +
                              " (ingest.max_points_per_request)",
                          "too_large");

    // Series key: the canonical measurement and tags once per line, each field appended.
    key_text.clear();
    detail::append_canonical(key_text, measurement, measurement_escaped, element::measurement);
    for (const auto& t : tags) {
        key_text.push_back(',');
        detail::append_canonical(key_text, t.key, t.key_escaped, element::tag);
        key_text.push_back('=');
        detail::append_canonical(key_text, t.value, t.value_escaped, element::tag);
    }
    const size_t prefix = key_text.size();
    prefix_entry* entry = lookup(key_text);
    size_t previous = SIZE_MAX;  // where the previous field was found: SIZE_MAX + 1 is slot 0
    for (size_t i = 0; i < fields.size(); ++i) {
        const auto& f = fields[i];
        std::string_view canonical_field = f.key;
        if (f.key_escaped) {
            field_key.clear();
            detail::append_canonical(field_key, f.key, true, element::field);
            canonical_field = field_key;
        }
        cached_field* cached = entry ? entry->find_field(canonical_field, previous) : nullptr;
        if (cached) previous = static_cast<size_t>(cached - entry->fields.data());
        uint32_t series;
        if (cached && cached->series != no_series && cached->type == f.type) {
            series = cached->series;
        } else {
            key_text.resize(prefix);
            key_text.push_back(' ');
            key_text.append(canonical_field);
            auto found = out.series(key_text, f.type);
            if (!found) return line_error(line_no, found.error().message, found.error().code);
            if (out.series_count() > opts.bounds.max_series_per_request)
                return line_error(line_no,
                                  "the request has more series than the limit of " +
                                      std::to_string(opts.bounds.max_series_per_request) +
                                      " (ingest.max_series_per_request)",
                                  "too_large");
            series = *found;
            if (cached) {
                cached->type = f.type;
                cached->series = series;
            } else if (entry) {
                entry->add_field(canonical_field, f.type, series);
                previous = entry->fields.size() - 1;
            }
        }
        switch (f.type) {
            case value_type::float64:
                out.add(series, ts, std::bit_cast<double>(f.raw));
                break;
            case value_type::int64:
                out.add_int(series, ts, static_cast<int64_t>(f.raw));
                break;
            case value_type::boolean:
                out.add_bool(series, ts, f.raw != 0);
                break;
            case value_type::string:
                out.add_string(series, ts, f.text);
                break;
        }
    }
    return {};
}

}  // namespace clisonix::ingest
