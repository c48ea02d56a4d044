// Clisonix — Ask: the deterministic grammar that reads a question over the plant's vocabulary.
//
// Three passes: the question becomes normalised tokens (lower case, numbers in digits,
// "80°C" as "80" "°c", typos of vocabulary words corrected); the tokens become items (a time
// range, a device, an asset, a type, a metric, a number with its unit, a grammar word), the
// longest vocabulary phrase winning at each position; the items become a plan by the rules
// of its kind. Whatever the rules cannot place (a name that matches several things, a unit
// that is not the metric's, a number nothing uses) makes the question not understood, with
// suggestions that this same grammar understands.
#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <set>

#include "ask/ask.h"
#include "ask/time_text.h"
#include "ask/words.h"
#include "common/edit_distance.h"

namespace clisonix::ask {
namespace {

constexpr int64_t hour_ms = 3'600'000;
constexpr int64_t day_ms = 24 * hour_ms;

// ---- tokens -------------------------------------------------------------------------------

bool is_digit(char c) {
    return c >= '0' && c <= '9';
}
bool is_alpha(char c) {
    return (c >= 'a' && c <= 'z') || static_cast<unsigned char>(c) >= 0x80;
}

std::optional<double> number_of(std::string_view s) {
    if (s.empty()) return std::nullopt;
    double v = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc{} || p != s.data() + s.size() || !std::isfinite(v)) return std::nullopt;
    return v;
}

constexpr std::array<std::string_view, 21> number_words = {
    "zero",     "one",     "two",     "three",     "four",     "five",     "six",
    "seven",    "eight",   "nine",    "ten",       "eleven",   "twelve",   "thirteen",
    "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen", "twenty"};

// Splits "pump4" into "pump" "4", "24h" into "24" "h", "80°c" into "80" "°c", "3.5mm/s" into
// "3.5" "mm/s"; keeps "06:00", "m³/h", "p95", "vibration_rms".
void split_word(std::string w, std::vector<std::string>& out) {
    while (!w.empty() && (w.back() == '.' || w.back() == ':' || w.back() == '/'))
        w.pop_back();
    if (w.empty()) return;
    if (is_digit(w[0]) || (w[0] == '-' && w.size() > 1 && is_digit(w[1]))) {
        size_t k = 1;
        while (k < w.size() && (is_digit(w[k]) || w[k] == '.' || w[k] == ':' || w[k] == ','))
            ++k;
        std::string number = w.substr(0, k);
        number.erase(std::remove(number.begin(), number.end(), ','), number.end());
        out.push_back(number);
        if (k < w.size()) split_word(w.substr(k), out);
        return;
    }
    bool keep = w.find_first_of("/:_") != std::string::npos ||
                (w.size() == 3 && w[0] == 'p' && is_digit(w[1]) && is_digit(w[2]));
    if (!keep) {
        size_t k = 0;
        while (k < w.size() && !is_digit(w[k]))
            ++k;
        if (k > 0 && k < w.size()) {
            out.push_back(w.substr(0, k));
            split_word(w.substr(k), out);
            return;
        }
    }
    out.push_back(std::move(w));
}

std::vector<std::string> tokenize(std::string_view question) {
    std::string s;
    s.reserve(question.size());
    for (size_t i = 0; i < question.size(); ++i) {
        unsigned char c = static_cast<unsigned char>(question[i]);
        // U+2019 (’) is an apostrophe; U+2103 (℃) is degrees Celsius.
        if (c == 0xE2 && i + 2 < question.size() &&
            static_cast<unsigned char>(question[i + 1]) == 0x80 &&
            static_cast<unsigned char>(question[i + 2]) == 0x99) {
            s += '\'';
            i += 2;
        } else if (c == 0xE2 && i + 2 < question.size() &&
                   static_cast<unsigned char>(question[i + 1]) == 0x84 &&
                   static_cast<unsigned char>(question[i + 2]) == 0x83) {
            s += "\xC2\xB0"
                 "c";
            i += 2;
        } else {
            s += static_cast<char>(std::tolower(c));
        }
    }
    std::vector<std::string> raw;
    std::string word;
    auto flush = [&] {
        if (!word.empty()) raw.push_back(std::move(word));
        word.clear();
    };
    for (size_t i = 0; i < s.size(); ++i) {
        char c = s[i];
        unsigned char u = static_cast<unsigned char>(c);
        if (c == '\'') {  // "pump's" -> "pump"; "o'clock" -> "o" "clock"
            flush();
            if (i + 1 < s.size() && s[i + 1] == 's' && (i + 2 >= s.size() || !is_alpha(s[i + 2])))
                ++i;
            continue;
        }
        if (c == '>' || c == '<' || c == '=' || c == '!') {
            flush();
            std::string op(1, c);
            if (i + 1 < s.size() && s[i + 1] == '=') {
                op += '=';
                ++i;
            }
            if (op != "!") raw.push_back(op);
            continue;
        }
        if (c == '-') {
            // A minus sign starts a number; elsewhere a hyphen separates ("pump-04").
            if (word.empty() && i + 1 < s.size() && is_digit(s[i + 1]) &&
                (i == 0 || s[i - 1] == ' ')) {
                word += c;
                continue;
            }
            flush();
            continue;
        }
        if (c == ',' && !word.empty() && is_digit(word.back()) && i + 3 < s.size() + 1 &&
            i + 3 <= s.size() && is_digit(s[i + 1])) {
            word += c;  // "1,500"
            continue;
        }
        if (std::isalnum(u) || u >= 0x80 || c == '.' || c == ':' || c == '/' || c == '_' ||
            c == '%') {
            word += c;
            continue;
        }
        flush();
    }
    flush();

    std::vector<std::string> tokens;
    for (auto& w : raw)
        split_word(std::move(w), tokens);

    // Numbers in words, and units spelt in two tokens.
    std::vector<std::string> out;
    for (size_t i = 0; i < tokens.size(); ++i) {
        const std::string& t = tokens[i];
        auto n = std::find(number_words.begin(), number_words.end(), t);
        if (n != number_words.end()) {
            out.push_back(std::to_string(n - number_words.begin()));
            continue;
        }
        if (t == "whats" || t == "hows" || t == "wheres") {  // "whats the temp"
            out.push_back(t.substr(0, t.size() - 1));
            out.push_back("is");
            continue;
        }
        // "cubic meters per hour", "cubic metres an hour"
        if (t == "cubic" && i + 3 < tokens.size() &&
            (tokens[i + 1] == "meters" || tokens[i + 1] == "metres" || tokens[i + 1] == "meter" ||
             tokens[i + 1] == "metre") &&
            (tokens[i + 2] == "per" || tokens[i + 2] == "an" || tokens[i + 2] == "a") &&
            tokens[i + 3] == "hour") {
            out.push_back("m\xC2\xB3/h");
            i += 3;
            continue;
        }
        bool next_c = i + 1 < tokens.size() && (tokens[i + 1] == "c" || tokens[i + 1] == "celsius");
        if ((t == "\xC2\xB0" || t == "deg" || t == "degrees" || t == "degree") && next_c) {
            out.push_back(
                "\xC2\xB0"
                "c");
            ++i;
            continue;
        }
        out.push_back(t);
    }
    return out;
}

// ---- grammar words ------------------------------------------------------------------------

// Every word the grammar itself reads or skips, so that typo correction leaves them alone.
const std::set<std::string_view>& grammar_words() {
    static const std::set<std::string_view> words = {
        // fillers
        "a",
        "an",
        "the",
        "of",
        "on",
        "in",
        "at",
        "for",
        "to",
        "from",
        "by",
        "with",
        "and",
        "or",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "being",
        "has",
        "have",
        "had",
        "do",
        "does",
        "did",
        "what",
        "which",
        "who",
        "whose",
        "when",
        "where",
        "how",
        "why",
        "will",
        "would",
        "can",
        "could",
        "should",
        "show",
        "me",
        "tell",
        "give",
        "list",
        "find",
        "get",
        "please",
        "i",
        "we",
        "us",
        "our",
        "my",
        "it",
        "its",
        "this",
        "that",
        "these",
        "those",
        "there",
        "value",
        "values",
        "reading",
        "readings",
        "level",
        "levels",
        "so",
        "far",
        "far",
        "about",
        "any",
        "all",
        "every",
        "each",
        "some",
        "ran",
        "run",
        "running",
        "runs",
        "went",
        "go",
        "goes",
        "going",
        "got",
        "get",
        "gets",
        "then",
        "than",
        "were",
        "did",
        "right",
        "status",
        "state",
        "currently",
        "today",
        "yesterday",
        "tomorrow",
        "week",
        "month",
        "year",
        "hour",
        "hours",
        "minute",
        "minutes",
        "day",
        "days",
        "weeks",
        "since",
        "between",
        "until",
        "till",
        "during",
        "over",
        "past",
        "last",
        "next",
        "previous",
        "morning",
        "afternoon",
        "evening",
        "night",
        "tonight",
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
        "midnight",
        "noon",
        // aggregates, comparisons, ranking
        "current",
        "now",
        "latest",
        "average",
        "avg",
        "mean",
        "typical",
        "max",
        "maximum",
        "highest",
        "peak",
        "hottest",
        "warmest",
        "min",
        "minimum",
        "lowest",
        "coldest",
        "coolest",
        "total",
        "sum",
        "many",
        "count",
        "number",
        "median",
        "percentile",
        "change",
        "changed",
        "difference",
        "delta",
        "rise",
        "rose",
        "risen",
        "increase",
        "increased",
        "drop",
        "dropped",
        "fall",
        "fell",
        "fallen",
        "trend",
        "trending",
        "rising",
        "falling",
        "increasing",
        "decreasing",
        "climbing",
        "long",
        "above",
        "below",
        "under",
        "exceed",
        "exceeds",
        "exceeded",
        "exceeding",
        "beyond",
        "more",
        "greater",
        "higher",
        "hotter",
        "warmer",
        "faster",
        "bigger",
        "larger",
        "less",
        "lower",
        "colder",
        "cooler",
        "slower",
        "smaller",
        "least",
        "most",
        "top",
        "bottom",
        "best",
        "worst",
        "reach",
        "reaches",
        "reached",
        "hit",
        "hits",
        "cross",
        "crosses",
        "equal",
        "equals",
        "per",
        "overall",
        "altogether",
        "combined",
        "across",
        "hot",
        "cold",
        "warm",
        "fastest",
        "slowest",
        // kinds
        "alarm",
        "alarms",
        "alarmed",
        "alert",
        "alerts",
        "alerted",
        "open",
        "active",
        "health",
        "healthy",
        "healthiest",
        "unhealthy",
        "unhealthiest",
        "condition",
        "anomaly",
        "anomalies",
        "anomalous",
        "offline",
        "online",
        "down",
        "silent",
        "reporting",
        "disconnected",
        "forecast",
        "predicted",
        "machine",
        "machines",
        "device",
        "devices",
        "equipment",
        "sensor",
        "sensors",
        "plant",
        "factory",
        "everything",
        "anything",
        "line",
        "lines",
        "site",
        "sites",
        "p50",
        "p90",
        "p95",
        "p99",
        "rank",
        "sort",
        "order",
        "fast",
        "slow",
        "pumping",
        "alarming",
        "shape",
        "shaking",
        "getting",
        "growing",
        "cool",
        "cubic",
        "vibrated",
        "vibrating",
        "vibrates",
        "drawing",
        "pulling",
        "putting",
        "pushing",
        "record",
        "send",
        "score",
        "scores",
        "data",
        "numbers",
        "summary",
        "ok",
        "okay",
        "vs",
        "versus",
        "compare",
        "thanks",
        "same",
        "moment",
        "present",
        "whole",
        "total",
    };
    return words;
}

bool grammar_word(std::string_view w) {
    return grammar_words().count(w) > 0;
}

// ---- the lexicon: every phrase of the vocabulary, as token parts --------------------------

// In the order of item_kind's names (recognise() maps one to the other).
enum class form_kind { device, asset, type, generic, metric };

struct form {
    std::vector<std::string> parts;
    form_kind kind;
    std::vector<std::string> names;  // several: an alias more than one asset shares
    bool plural = false;
};

// "north-line-2" -> "north" "line" "2"; "pump-04" -> "pump" "04".
std::vector<std::string> name_parts(std::string_view name) {
    std::vector<std::string> raw;
    std::string part;
    for (char c : name) {
        char l = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        if (c == '-' || c == ' ' || c == '.') {
            if (!part.empty()) raw.push_back(std::move(part));
            part.clear();
        } else {
            part += l;
        }
    }
    if (!part.empty()) raw.push_back(std::move(part));
    std::vector<std::string> out;
    for (auto& r : raw)
        split_word(std::move(r), out);
    return out;
}

bool same_part(std::string_view token, std::string_view part) {
    if (token == part) return true;
    if (!token.empty() && !part.empty() && is_digit(token[0]) && is_digit(part[0])) {
        auto a = number_of(token), b = number_of(part);
        return a && b && *a == *b;
    }
    return false;
}

struct lexicon {
    std::vector<form> forms;
    std::set<std::string> words;  // single words of the vocabulary, for typo correction
    std::set<std::string> asset_types;

    explicit lexicon(const vocabulary& v) {
        auto add = [&](std::vector<std::string> parts, form_kind k, std::vector<std::string> names,
                       bool plural = false) {
            if (parts.empty()) return;
            for (const auto& p : parts)
                if (!p.empty() && is_alpha(p[0])) words.insert(p);
            // One form per parts: a second asset with the same alias makes it ambiguous.
            for (auto& f : forms) {
                if (f.parts == parts && f.kind == k) {
                    for (auto& n : names)
                        if (std::find(f.names.begin(), f.names.end(), n) == f.names.end())
                            f.names.push_back(n);
                    return;
                }
            }
            forms.push_back({std::move(parts), k, std::move(names), plural});
        };
        for (const auto& d : v.devices) {
            add(name_parts(d.name), form_kind::device, {d.name});
        }
        for (const auto& a : v.assets)
            asset_types.insert(a.type);
        for (const auto& a : v.assets) {
            auto parts = name_parts(a.name);
            add(parts, form_kind::asset, {a.name});
            // "line 2" for "north-line-2": suffixes that end in a number and start with a word.
            if (!parts.empty() && is_digit(parts.back()[0])) {
                for (size_t k = 1; k + 1 < parts.size(); ++k) {
                    if (!is_alpha(parts[k][0])) continue;
                    std::vector<std::string> suffix(parts.begin() + static_cast<ptrdiff_t>(k),
                                                    parts.end());
                    add(suffix, form_kind::asset, {a.name});
                }
            }
            // "L2" for line 2, "north L2" for north-line-2.
            for (size_t k = 0; k < parts.size(); ++k) {
                if (parts[k] != "line" || k + 1 >= parts.size() || !is_digit(parts[k + 1][0]))
                    continue;
                std::vector<std::string> alias(parts.begin() + static_cast<ptrdiff_t>(k),
                                               parts.end());
                alias[0] = "l";
                add(alias, form_kind::asset, {a.name});
                std::vector<std::string> whole = parts;
                whole[k] = "l";
                if (k > 0) add(whole, form_kind::asset, {a.name});
            }
            // "north" for "north-site": the name without its type word.
            if (parts.size() == 2 && parts.back() == a.type && !a.type.empty())
                add({parts.front()}, form_kind::asset, {a.name});
        }
        for (const auto& t : v.types) {
            add(name_parts(t.name), form_kind::type, {t.name});
            add(name_parts(t.plural.empty() ? detail::plural_of(t.name) : t.plural),
                form_kind::type, {t.name}, true);
        }
        for (std::string_view g : {"machine", "device", "sensor", "equipment", "asset"})
            add({std::string(g)}, form_kind::generic, {}, g == "equipment");
        for (std::string_view g :
             {"machines", "devices", "sensors", "assets", "plant", "factory", "everything"})
            add({std::string(g)}, form_kind::generic, {}, true);
        for (const auto& m : v.metrics) {
            for (const auto& syn : m.synonyms)
                add(name_parts(syn), form_kind::metric, {m.name});
            add({m.name}, form_kind::metric, {m.name});
        }
        // Long grammar words people misspell: typos are corrected towards them too.
        for (std::string_view w :
             {"yesterday",  "average",  "maximum", "minimum", "highest",   "lowest",   "median",
              "percentile", "offline",  "alarms",  "healthy", "between",   "morning",  "afternoon",
              "evening",    "tomorrow", "monday",  "tuesday", "wednesday", "thursday", "friday",
              "saturday",   "sunday",   "minutes", "hottest", "coldest"})
            words.insert(std::string(w));
    }

    // The single vocabulary word `w` is a typo of, when exactly one is nearest.
    std::optional<std::string> correction(std::string_view w) const {
        if (w.size() < 5 || words.count(std::string(w)) || grammar_word(w) ||
            !detail::canonical_unit(w).empty())
            return std::nullopt;
        for (char c : w)
            if (!(c >= 'a' && c <= 'z')) return std::nullopt;
        size_t bound = w.size() >= 8 ? 2 : 1;
        size_t best = bound + 1;
        std::vector<std::string_view> found;
        for (const auto& candidate : words) {
            if (candidate.size() < 4) continue;
            if (candidate.size() > w.size() + bound || w.size() > candidate.size() + bound)
                continue;
            size_t d = edit_distance(w, candidate);
            if (d < best) {
                best = d;
                found = {candidate};
            } else if (d == best && d <= bound) {
                found.push_back(candidate);
            }
        }
        if (best <= bound && found.size() == 1) return std::string(found.front());
        return std::nullopt;
    }
};

// ---- items --------------------------------------------------------------------------------

enum class item_kind { word, number, unit, time, device, asset, type, generic, metric };

struct item {
    item_kind kind = item_kind::word;
    std::string text;                // the words
    std::vector<std::string> names;  // device(s), asset candidates, type, metric
    double number = 0;
    std::string unit;  // canonical, for units
    bool plural = false;
    detail::time_range time;
    bool used = false;  // read by a rule
    bool bad = false;   // a name refused already ("east line 1"): not part of the scope
};

bool word_is(const item& it, std::string_view w) {
    return it.kind == item_kind::word && it.text == w;
}

// ---- reading a question -------------------------------------------------------------------

std::string join(const std::vector<std::string>& tokens, size_t begin, size_t end) {
    std::string s;
    for (size_t k = begin; k < end && k < tokens.size(); ++k) {
        if (!s.empty()) s += ' ';
        s += tokens[k];
    }
    return s;
}

std::string list_names(const std::vector<std::string>& names, size_t most = 3) {
    std::string s;
    if (names.size() > most + 1) {
        return names.front() + ", " + names[1] + " ... " + names.back();
    }
    for (size_t i = 0; i < names.size(); ++i) {
        if (i) s += i + 1 == names.size() ? " or " : ", ";
        s += names[i];
    }
    return s;
}

struct comparator {
    std::string op;
    size_t words = 0;
};

// A comparison phrase starting at items[i] ("above", "hotter than", "at least", ">=").
std::optional<comparator> comparator_at(const std::vector<item>& items, size_t i) {
    auto w = [&](size_t k) -> std::string_view {
        return k < items.size() && items[k].kind == item_kind::word
                   ? std::string_view(items[k].text)
                   : std::string_view();
    };
    std::string_view a = w(i), b = w(i + 1), c = w(i + 2);
    if (a.empty()) return std::nullopt;
    if (a == ">" || a == "above" || a == "over" || a == "exceed" || a == "exceeds" ||
        a == "exceeded" || a == "exceeding" || a == "beyond" || a == "cross" || a == "crosses" ||
        a == "crossed")
        return comparator{">", 1};
    if (a == "<" || a == "below" || a == "under") return comparator{"<", 1};
    if (a == ">=" || a == "reach" || a == "reaches" || a == "reached" || a == "hit" || a == "hits")
        return comparator{">=", 1};
    if (a == "<=") return comparator{"<=", 1};
    if (a == "=" || a == "equals") return comparator{"=", 1};
    if (a == "equal" && b == "to") return comparator{"=", 2};
    if (a == "at" && b == "least") return comparator{">=", 2};
    if (a == "at" && b == "most") return comparator{"<=", 2};
    if (a == "no" && b == "more" && c == "than") return comparator{"<=", 3};
    if (a == "no" && b == "less" && c == "than") return comparator{">=", 3};
    static constexpr std::string_view up[] = {"more",   "greater", "higher", "hotter",
                                              "warmer", "faster",  "bigger", "larger"};
    static constexpr std::string_view down[] = {"less",   "lower",  "colder",
                                                "cooler", "slower", "smaller"};
    if (b == "than") {
        for (auto u : up)
            if (a == u) return comparator{">", 2};
        for (auto d : down)
            if (a == d) return comparator{"<", 2};
    }
    return std::nullopt;
}

struct found_comparison {
    comparison c;
    std::string unit;  // canonical, may be empty
    std::string text;  // "above 80 °C"
    bool how_long = false;
};

struct reader {
    const vocabulary& v;
    const lexicon& lex;
    const date::time_zone* zone;
    int64_t now;
    std::vector<std::string> tokens;
    std::vector<item> items;
    std::vector<std::string> reasons;

    // Context for suggestions.
    std::string hint_type, hint_metric, hint_device;
    std::vector<std::string> hint_assets;
    std::optional<plan_kind> hint_kind;

    bool has_word(std::string_view w) const {
        return std::any_of(items.begin(), items.end(),
                           [&](const item& it) { return word_is(it, w); });
    }
    bool has_any(std::initializer_list<std::string_view> ws) const {
        for (auto w : ws)
            if (has_word(w)) return true;
        return false;
    }
    // Marks the first unused item with word `w` as used; whether there was one.
    bool take(std::string_view w) {
        for (auto& it : items)
            if (!it.used && word_is(it, w)) {
                it.used = true;
                return true;
            }
        return false;
    }
    bool take_any(std::initializer_list<std::string_view> ws) {
        bool any = false;
        for (auto w : ws)
            while (take(w))
                any = true;
        return any;
    }
    size_t index_of(std::string_view w) const {
        for (size_t i = 0; i < items.size(); ++i)
            if (word_is(items[i], w)) return i;
        return items.size();
    }

    void correct_typos() {
        for (auto& t : tokens)
            if (auto c = lex.correction(t)) t = *c;
    }

    void recognise() {
        size_t i = 0;
        while (i < tokens.size()) {
            if (auto t = detail::time_at(tokens, i, now, zone)) {
                if (!*t) {
                    reasons.push_back(t->error().message);
                    ++i;
                    continue;
                }
                item it;
                it.kind = item_kind::time;
                it.time = (*t)->range;
                it.text = it.time.text;
                items.push_back(std::move(it));
                i = (*t)->end;
                continue;
            }
            // A unit right after a number ("80 c", "30 a", "1400 rpm").
            if (!items.empty() && items.back().kind == item_kind::number &&
                !detail::canonical_unit(tokens[i]).empty()) {
                item it;
                it.kind = item_kind::unit;
                it.text = tokens[i];
                it.unit = detail::canonical_unit(tokens[i]);
                items.push_back(std::move(it));
                ++i;
                continue;
            }
            // The longest vocabulary phrase here ("current" before a metric or a value word
            // is the aggregate: "the current temperature", "current alarms").
            const form* best = nullptr;
            size_t best_len = 0;
            for (const auto& f : lex.forms) {
                if (f.parts.size() < best_len || i + f.parts.size() > tokens.size()) continue;
                bool match = true;
                for (size_t k = 0; k < f.parts.size() && match; ++k)
                    match = same_part(tokens[i + k], f.parts[k]);
                if (!match) continue;
                if (f.parts.size() > best_len ||
                    (f.parts.size() == best_len && best && f.kind < best->kind)) {
                    best = &f;
                    best_len = f.parts.size();
                }
            }
            if (best && best->kind == form_kind::metric && tokens[i] == "current" &&
                best_len == 1 && current_is_aggregate(i)) {
                best = nullptr;
            }
            if (best) {
                item it;
                it.text = join(tokens, i, i + best_len);
                it.names = best->names;
                it.plural = best->plural;
                static constexpr item_kind of_form[] = {item_kind::device, item_kind::asset,
                                                        item_kind::type, item_kind::generic,
                                                        item_kind::metric};
                it.kind = of_form[static_cast<size_t>(best->kind)];
                items.push_back(std::move(it));
                i += best_len;
                continue;
            }
            item it;
            it.text = tokens[i];
            if (auto n = number_of(tokens[i])) {
                it.kind = item_kind::number;
                it.number = *n;
            } else if (!detail::canonical_unit(tokens[i]).empty() && tokens[i].size() > 1 &&
                       tokens[i] != "deg") {
                it.kind = item_kind::unit;
                it.unit = detail::canonical_unit(tokens[i]);
            }
            items.push_back(std::move(it));
            ++i;
        }
    }

    bool current_is_aggregate(size_t i) const {
        if (i + 1 >= tokens.size()) return false;
        const std::string& next = tokens[i + 1];
        static const std::set<std::string_view> value_words = {
            "value",  "values", "reading", "readings", "level",     "levels", "state",
            "status", "alarms", "alarm",   "health",   "condition", "current"};
        if (value_words.count(next)) return true;
        for (const auto& f : lex.forms) {
            if (f.kind == form_kind::device || f.kind == form_kind::asset) continue;
            if (f.parts.front() == next && next != "current") return true;
        }
        return false;
    }

    // A metric named like a grammar word (the press's "running") is the verb when something
    // else says another metric: a metric, a unit that is not its own, or a word such as
    // "hotter" ("which pump is running hottest", "compressor-02 running above 80 degrees").
    // "is press-01 running" still asks for it, and "a current of 25 amps" keeps the current.
    void demote_metrics_named_like_grammar_words() {
        static const std::set<std::string_view> metric_hints = {
            "hot",      "hotter",    "hottest",  "warm",    "warmer",  "warmest",
            "cold",     "colder",    "coldest",  "cooler",  "coolest", "heat",
            "vibrated", "vibrating", "vibrates", "shaking", "fast",    "slow",
            "faster",   "fastest",   "slower",   "slowest", "pumping"};
        for (auto& candidate : items) {
            if (candidate.kind != item_kind::metric || !grammar_word(candidate.text)) continue;
            const metric_word* m = detail::find_metric(v, candidate.names.front());
            const std::string own_unit = m ? detail::canonical_unit(m->unit) : std::string();
            const bool other = std::any_of(items.begin(), items.end(), [&](const item& it) {
                if (it.kind == item_kind::metric)  // two such words: refused as two metrics
                    return !grammar_word(it.text) && it.names.front() != candidate.names.front();
                if (it.kind == item_kind::unit) return own_unit.empty() || it.unit != own_unit;
                return it.kind == item_kind::word && metric_hints.count(it.text) > 0;
            });
            if (other) {
                candidate.kind = item_kind::word;
                candidate.names.clear();
            }
        }
    }

    // "pump 4 and 5", "pumps 1, 2 and 3": the devices named after a type word.
    void join_device_lists() {
        for (size_t i = 0; i < items.size(); ++i) {
            bool starts = items[i].kind == item_kind::device ||
                          (items[i].kind == item_kind::type && i + 1 < items.size() &&
                           items[i + 1].kind == item_kind::number);
            if (!starts) continue;
            std::string prefix;
            std::vector<std::string> names;
            size_t k = i;
            if (items[i].kind == item_kind::device) {
                auto parts = name_parts(items[i].names.front());
                if (parts.size() != 2 || !is_digit(parts[1][0])) continue;
                prefix = parts[0];
                names = items[i].names;
                k = i + 1;
            } else {
                prefix = items[i].names.front();
                k = i + 1;
            }
            bool joined = false;
            while (k < items.size()) {
                size_t n = k;
                if (word_is(items[n], "and") || word_is(items[n], "or")) ++n;
                if (n >= items.size() || items[n].kind != item_kind::number) break;
                if (n == k && !names.empty() && !joined && items[i].kind == item_kind::device)
                    break;  // "pump 4 80" is not a list
                const device_word* found = nullptr;
                for (const auto& d : v.devices) {
                    auto parts = name_parts(d.name);
                    if (parts.size() == 2 && parts[0] == prefix &&
                        same_part(items[n].text, parts[1]))
                        found = &d;
                }
                if (!found) {
                    if (items[i].kind == item_kind::type && names.empty()) break;
                    reasons.push_back("there is no " + prefix + " " + items[n].text + " (" +
                                      plural_words(prefix) + ")");
                    items[n].used = true;
                    break;
                }
                names.push_back(found->name);
                for (size_t x = k; x <= n; ++x)
                    items[x].used = true;
                k = n + 1;
                joined = true;
            }
            if (joined || (items[i].kind == item_kind::device && names.size() > 1)) {
                item it;
                it.kind = item_kind::device;
                it.names = names;
                it.text = items[i].text;
                items[i] = it;
                items.erase(std::remove_if(items.begin() + static_cast<ptrdiff_t>(i) + 1,
                                           items.begin() + static_cast<ptrdiff_t>(k),
                                           [](const item& x) { return x.used; }),
                            items.begin() + static_cast<ptrdiff_t>(k));
            }
        }
    }

    std::string plural_words(std::string_view type) const {
        std::vector<std::string> names;
        for (const auto& d : v.devices)
            if (d.type == type) names.push_back(d.name);
        if (names.empty()) return "no such devices";
        return detail::plural_of(type) + ": " + list_names(names);
    }

    // Names that look like a device or an asset but are none: "pump 99", "line 9",
    // "motor 3", "east site".
    void unknown_names() {
        for (size_t i = 0; i + 1 < items.size(); ++i) {
            const item& a = items[i];
            const item& b = items[i + 1];
            if (a.used || b.used) continue;
            bool number_after = b.kind == item_kind::number;
            if (a.kind == item_kind::type && !a.plural && number_after) {
                reasons.push_back("there is no " + a.names.front() + " " + b.text + " (" +
                                  plural_words(a.names.front()) + ")");
                items[i + 1].used = true;
                items[i].plural = true;  // a name was meant, not "the pump": said once
            } else if (a.kind == item_kind::word && number_after &&
                       (lex.asset_types.count(a.text) || a.text == "l")) {
                std::vector<std::string> of_type;
                for (const auto& x : v.assets)
                    if (x.type == a.text || (a.text == "l" && x.type == "line"))
                        of_type.push_back(x.name);
                reasons.push_back("there is no " + a.text + " " + b.text + " (" +
                                  detail::plural_of(a.text == "l" ? "line" : a.text) + ": " +
                                  list_names(of_type, 6) + ")");
                items[i + 1].used = true;
            } else if (a.kind == item_kind::word && number_after && !grammar_word(a.text) &&
                       !comparator_at(items, i) && a.text.size() > 1 && is_alpha(a.text[0]) &&
                       a.text != "th" && a.text != "st" && a.text != "nd" && a.text != "rd") {
                reasons.push_back("\"" + a.text + " " + b.text +
                                  "\" is not a device or an asset of the plant");
                items[i + 1].used = true;
            } else if (a.kind == item_kind::word && b.kind == item_kind::asset &&
                       !grammar_word(a.text) && a.text.size() >= 3 && is_alpha(a.text[0]) &&
                       !lex.words.count(a.text) &&
                       name_parts(b.names.front()).size() > name_parts(b.text).size()) {
                // "east line 1": a site or area word before a line no such site has.
                reasons.push_back("\"" + a.text + " " + b.text + "\" is not an asset of the plant");
                items[i + 1].bad = true;
            } else if (a.kind == item_kind::word && b.kind == item_kind::word &&
                       lex.asset_types.count(b.text) && !grammar_word(a.text) &&
                       is_alpha(a.text[0]) && a.text != "per" && a.text != "each") {
                reasons.push_back("\"" + a.text + " " + b.text + "\" is not an asset of the plant");
                items[i + 1].used = true;
            }
        }
    }
};

// ---- the plan from the items --------------------------------------------------------------

struct scope_reading {
    std::vector<std::string> devices;
    std::string type;
    std::string asset;
    bool singular = false;  // "the pump": one device is meant
    bool which = false;     // "which pump(s)": a choice among the scope
    bool which_plural = false;
};

std::variant<plan, not_understood> parse_question(std::string_view question,
                                                  const vocabulary& vocab,
                                                  const parse_options& opts, bool suggest);

std::vector<std::string> suggestions_for(const vocabulary& v, const parse_options& opts,
                                         const reader& r) {
    std::vector<std::string> candidates;
    // The device, type and metric the question was about, or the vocabulary's first ones.
    const device_word* device =
        r.hint_device.empty() ? nullptr : detail::find_device(v, r.hint_device);
    if (!device && !r.hint_type.empty())
        for (const auto& d : v.devices)
            if (d.type == r.hint_type) {
                device = &d;
                break;
            }
    if (!device && !v.devices.empty()) device = &v.devices.front();
    if (!device) return {};
    std::string metric = r.hint_metric;
    if (metric.empty() || !detail::device_has_metric(v, *device, metric)) {
        metric.clear();
        const type_word* t = detail::find_type(v, device->type);
        if (t && !t->metrics.empty())
            metric = t->metrics.front();
        else if (!v.metrics.empty())
            metric = v.metrics.front().name;
        // Temperature reads best when the type has it.
        if (t && std::find(t->metrics.begin(), t->metrics.end(), "temperature") != t->metrics.end())
            metric = "temperature";
    }
    const metric_word* m = detail::find_metric(v, metric);
    if (!m) return {};
    std::string said = detail::metric_display(*m);
    std::string plural = detail::plural_of(device->type);
    if (r.hint_kind == plan_kind::alarms) {
        std::string where = device->assets.empty() ? device->name : device->assets.front();
        candidates.push_back("what are the open alarms on " + where + "?");
        candidates.push_back("how many alarms were there on " + where + " yesterday?");
    }
    if (r.hint_kind == plan_kind::health)
        candidates.push_back("which " + device->type + " is least healthy right now?");
    for (const auto& a : r.hint_assets)
        candidates.push_back("what is the average " + said + " on " + a + " in the last 24 hours?");
    candidates.push_back("what is the " + said + " of " + device->name + " now?");
    candidates.push_back("what is the average " + said + " of the " + plural + " now?");
    candidates.push_back("which " + device->type + " had the highest " + said +
                         " in the last 24 hours?");
    std::vector<std::string> out;
    for (const auto& c : candidates) {
        if (out.size() == 3) break;
        if (std::holds_alternative<plan>(parse_question(c, v, opts, false))) out.push_back(c);
    }
    return out;
}

not_understood refuse(const vocabulary& v, const parse_options& opts, const reader& r,
                      std::vector<std::string> reasons) {
    not_understood n;
    n.reasons = std::move(reasons);
    n.suggestions = suggestions_for(v, opts, r);
    return n;
}

std::variant<plan, not_understood> parse_question(std::string_view question,
                                                  const vocabulary& vocab,
                                                  const parse_options& opts, bool suggest) {
    auto zone = detail::zone_named(vocab.time_zone);
    if (!zone) {
        not_understood n;
        n.reasons.push_back(zone.error().message);
        return n;
    }
    lexicon lex(vocab);
    reader r{vocab, lex, *zone, opts.now_ms, tokenize(question), {}, {}, {}, {}, {}, {}, {}};
    auto fail = [&](std::vector<std::string> reasons) -> std::variant<plan, not_understood> {
        if (!suggest) return not_understood{std::move(reasons), {}};
        return refuse(vocab, opts, r, std::move(reasons));
    };
    if (r.tokens.empty()) return fail({"the question is empty"});
    r.correct_typos();
    r.recognise();
    r.join_device_lists();
    r.demote_metrics_named_like_grammar_words();
    r.unknown_names();

    auto& items = r.items;
    plan p;
    p.source = "parser";

    // ---- the kind
    bool alarms =
        r.has_any({"alarm", "alarms", "alarmed", "alarming", "alert", "alerts", "alerted"});
    bool health = r.has_any({"health", "healthy", "healthiest", "unhealthy", "unhealthiest",
                             "condition", "anomaly", "anomalies", "anomalous"});
    bool trend_down = false;
    for (size_t i = 0; i + 1 < items.size(); ++i)
        if ((word_is(items[i], "going") || word_is(items[i], "go") || word_is(items[i], "goes") ||
             word_is(items[i], "went") || word_is(items[i], "trending")) &&
            word_is(items[i + 1], "down"))
            trend_down = true;
    bool offline =
        r.has_any({"offline", "silent", "disconnected"}) || (r.has_word("down") && !trend_down);
    for (size_t i = 0; i + 1 < items.size(); ++i)
        if (word_is(items[i], "not") &&
            (word_is(items[i + 1], "reporting") || word_is(items[i + 1], "online") ||
             word_is(items[i + 1], "sending")))
            offline = true;
    if (r.has_word("worst") && r.has_any({"state", "condition", "shape"})) health = true;
    // "how is pump 3 doing": its health, unless a measurement is named.
    bool doing = r.has_word("doing") &&
                 std::none_of(items.begin(), items.end(),
                              [](const item& it) { return it.kind == item_kind::metric; });
    if (doing) health = true;

    // ---- time
    std::vector<const item*> times;
    for (auto& it : items)
        if (it.kind == item_kind::time) {
            times.push_back(&it);
            it.used = true;
        }
    if (times.size() > 1)
        r.reasons.push_back("the question names two times (\"" + times[0]->text + "\" and \"" +
                            times[1]->text + "\"): name one");

    // ---- percentiles: "90th percentile", "p95", "median"
    std::optional<aggregate> agg;
    for (size_t i = 0; i < items.size(); ++i) {
        if (items[i].kind != item_kind::word) continue;
        const std::string& w = items[i].text;
        if (w == "p50" || w == "p90" || w == "p95" || w == "p99") {
            agg = *detail::aggregate_named(w);
            items[i].used = true;
        } else if (w == "median") {
            agg = aggregate::p50;
            items[i].used = true;
        } else if (w == "percentile" && i > 0) {
            size_t n = i - 1;
            if (n > 0 && items[n].kind == item_kind::word &&
                (items[n].text == "th" || items[n].text == "st" || items[n].text == "nd"))
                --n;
            if (items[n].kind != item_kind::number) continue;
            double q = items[n].number;
            if (q == 50)
                agg = aggregate::p50;
            else if (q == 90)
                agg = aggregate::p90;
            else if (q == 95)
                agg = aggregate::p95;
            else if (q == 99)
                agg = aggregate::p99;
            else
                r.reasons.push_back("the " + items[n].text +
                                    "th percentile is not one Clisonix computes (50th, 90th, "
                                    "95th, 99th)");
            for (size_t k = n; k <= i; ++k)
                items[k].used = true;
        }
    }

    // ---- ranking: "top 3", "bottom 2", "the 2 least healthy", "3 hottest"
    std::optional<int64_t> limit;
    std::string order;
    for (size_t i = 0; i + 1 < items.size(); ++i) {
        if ((word_is(items[i], "top") || word_is(items[i], "bottom")) &&
            items[i + 1].kind == item_kind::number) {
            order = word_is(items[i], "top") ? "desc" : "asc";
            limit = static_cast<int64_t>(items[i + 1].number);
            if (items[i + 1].number != std::floor(items[i + 1].number) || *limit <= 0)
                r.reasons.push_back("\"" + items[i].text + " " + items[i + 1].text +
                                    "\": a ranking needs a whole number above 0");
            items[i].used = items[i + 1].used = true;
        }
    }
    for (size_t i = 0; i + 1 < items.size(); ++i) {
        if ((word_is(items[i], "which") || word_is(items[i], "what")) &&
            items[i + 1].kind == item_kind::number && !items[i + 1].used) {
            limit = static_cast<int64_t>(items[i + 1].number);  // "which 3 machines"
            items[i + 1].used = true;
        }
    }
    static const std::set<std::string_view> up_words = {
        "most",    "highest", "hottest", "warmest", "biggest", "largest",
        "fastest", "max",     "maximum", "peak",    "worst",   "unhealthiest"};
    static const std::set<std::string_view> down_words = {
        "least", "lowest",  "coldest", "coolest", "smallest",  "slowest",
        "min",   "minimum", "fewest",  "best",    "healthiest"};
    // Superlatives that are aggregates first ("the maximum compressor temperature").
    static const std::set<std::string_view> aggregate_words = {"max", "maximum", "min", "minimum",
                                                               "peak"};
    std::string superlative;  // "desc" / "asc" from the first superlative word
    std::string comparative;  // "ran hotter" without "than": a ranking among "which" ones
    for (size_t i = 0; i < items.size(); ++i) {
        if (items[i].kind != item_kind::word) continue;
        bool up = up_words.count(items[i].text) > 0, down = down_words.count(items[i].text) > 0;
        static const std::set<std::string_view> more = {"hotter", "warmer", "higher", "faster",
                                                        "more"};
        static const std::set<std::string_view> less = {"colder", "cooler", "lower", "slower",
                                                        "less"};
        bool comparing = i + 1 < items.size() && word_is(items[i + 1], "than");
        if (!comparing && !up && !down &&
            (more.count(items[i].text) || less.count(items[i].text))) {
            up = more.count(items[i].text) > 0;
            down = !up;
            if (superlative.empty()) comparative = up ? "desc" : "asc";
            continue;
        }
        if (!up && !down) continue;
        if (i > 0 && word_is(items[i - 1], "at")) continue;  // "at least 80" compares
        if (superlative.empty()) superlative = up ? "desc" : "asc";
        // "least healthy" ranks by the health score, which is high when unhealthy.
        if ((items[i].text == "least" || items[i].text == "most") && i + 1 < items.size() &&
            (word_is(items[i + 1], "healthy")))
            superlative = items[i].text == "least" ? "desc" : "asc";
        // "the 3 hottest pumps", "lowest 3 pumps by flow"
        size_t n =
            i > 0 && items[i - 1].kind == item_kind::number && !items[i - 1].used ? i - 1
            : i + 1 < items.size() && items[i + 1].kind == item_kind::number && !items[i + 1].used
                ? i + 1
                : items.size();
        if (n < items.size()) {
            limit = static_cast<int64_t>(items[n].number);
            items[n].used = true;
        }
    }
    if (r.has_word("healthiest") && superlative.empty()) superlative = "asc";

    // ---- comparisons
    std::vector<found_comparison> comparisons;
    bool how_long = false;
    for (size_t i = 0; i + 1 < items.size(); ++i)
        if (word_is(items[i], "how") && word_is(items[i + 1], "long")) how_long = true;
    for (size_t i = 0; i < items.size(); ++i) {
        auto c = comparator_at(items, i);
        if (!c) continue;
        size_t n = i + c->words;
        while (n < items.size() &&
               (word_is(items[n], "the") || word_is(items[n], "than") || word_is(items[n], "a")))
            ++n;
        if (n >= items.size() || items[n].kind != item_kind::number) continue;
        found_comparison f;
        f.c = {c->op, items[n].number};
        f.text = join(std::vector<std::string>{items[i].text}, 0, 1);
        for (size_t k = i + 1; k <= n; ++k)
            f.text += " " + items[k].text;
        for (size_t k = i; k <= n; ++k)
            items[k].used = true;
        if (n + 1 < items.size() && items[n + 1].kind == item_kind::unit) {
            f.unit = items[n + 1].unit;
            f.text += " " + items[n + 1].text;
            items[n + 1].used = true;
        } else if (n + 1 < items.size() && items[n + 1].kind == item_kind::metric &&
                   !detail::canonical_unit(items[n + 1].text).empty()) {
            f.unit = detail::canonical_unit(items[n + 1].text);  // "1400 rpm", "30 amps"
            f.text += " " + items[n + 1].text;
            items[n + 1].kind = item_kind::unit;
            items[n + 1].used = true;
        }
        f.how_long = how_long;
        comparisons.push_back(f);
    }
    if (comparisons.size() > 1)
        r.reasons.push_back("the question compares twice (\"" + comparisons[0].text + "\" and \"" +
                            comparisons[1].text + "\"): one comparison at a time");

    // ---- forecast: "when will X reach V", "will X exceed V in the next hour"
    bool forecast = false;
    if (!comparisons.empty() && r.has_word("will") &&
        !(times.size() == 1 && !times[0]->time.future && !times[0]->time.instant))
        forecast = true;
    if (!comparisons.empty() && (r.has_word("forecast") || r.has_word("predicted")))
        forecast = true;
    if (r.has_word("when") && !comparisons.empty() &&
        (r.has_any({"reach", "reaches", "hit", "hits", "exceed", "exceeds", "cross"})))
        forecast = true;

    // ---- scope
    scope_reading scope;
    std::vector<std::vector<std::string>> assets;
    std::vector<std::string> types;
    bool generic = false, generic_plural = false;
    for (size_t i = 0; i < items.size(); ++i) {
        auto& it = items[i];
        if (it.kind == item_kind::device) {
            for (const auto& d : it.names)
                if (std::find(scope.devices.begin(), scope.devices.end(), d) == scope.devices.end())
                    scope.devices.push_back(d);
            it.used = true;
        } else if (it.kind == item_kind::asset && it.bad) {
            it.used = true;
        } else if (it.kind == item_kind::asset) {
            assets.push_back(it.names);
            it.used = true;
            if (it.names.size() > 1) {
                r.hint_assets = it.names;
                r.reasons.push_back("\"" + it.text + "\" could be " + list_names(it.names) +
                                    ": name one");
            }
        } else if (it.kind == item_kind::type || it.kind == item_kind::generic) {
            it.used = true;
            if (it.kind == item_kind::type) {
                if (std::find(types.begin(), types.end(), it.names.front()) == types.end())
                    types.push_back(it.names.front());
            } else {
                generic = true;
                generic_plural = generic_plural || it.plural;
            }
            // Which one: "which pump", "what machine", "which of the pumps".
            size_t k = i;
            while (k > 0 && (word_is(items[k - 1], "the") || word_is(items[k - 1], "of")))
                --k;
            bool which = k > 0 && (word_is(items[k - 1], "which") || word_is(items[k - 1], "what"));
            bool article =
                i > 0 && (word_is(items[i - 1], "the") || word_is(items[i - 1], "this") ||
                          word_is(items[i - 1], "that") || word_is(items[i - 1], "my") ||
                          word_is(items[i - 1], "our"));
            bool quantified =
                i > 0 && (word_is(items[i - 1], "any") || word_is(items[i - 1], "all") ||
                          word_is(items[i - 1], "every") || word_is(items[i - 1], "each"));
            // "the hottest pump", "coldest conveyor": the one the ranking picks.
            bool ranked =
                i > 0 && items[i - 1].kind == item_kind::word &&
                (up_words.count(items[i - 1].text) || down_words.count(items[i - 1].text)) &&
                !aggregate_words.count(items[i - 1].text);
            // "the average pump pressure per line": the type as an adjective names them all.
            bool adjective = it.kind == item_kind::type && !article && i + 1 < items.size() &&
                             items[i + 1].kind == item_kind::metric;
            if (which || ranked) {
                scope.which = true;
                scope.which_plural = it.plural;
            } else if (!it.plural && !quantified && !adjective &&
                       (article || it.kind == item_kind::type) &&
                       !(k > 0 && word_is(items[k - 1], "per"))) {
                scope.singular = true;
                r.hint_type = it.kind == item_kind::type ? it.names.front() : "";
            }
            (void)article;
        }
    }
    // "what alarmed most", "whats shaking the most on north line 2": which device (for
    // alarms: which rule, see below).
    bool what_most = r.has_word("what") && r.has_any({"most", "least"}) && !r.has_word("which") &&
                     scope.devices.empty() && types.empty() && !generic;
    if (r.has_word("which") ||
        (r.has_word("what") && r.has_any({"most", "least"}) && !scope.which &&
         scope.devices.empty() && types.empty() && !generic)) {
        if (!scope.which) {
            scope.which = true;
            scope.which_plural = false;
            // "which ... pumps" after other words: plural when the type word is.
            for (const auto& it : items)
                if ((it.kind == item_kind::type || it.kind == item_kind::generic) && it.plural)
                    scope.which_plural = true;
        }
    }
    if (types.size() > 1)
        r.reasons.push_back("the question names several types (" + list_names(types) +
                            "): one type at a time");
    if (assets.size() > 1) {
        std::vector<std::string> names;
        for (const auto& a : assets)
            names.push_back(a.front());
        r.reasons.push_back("the question names several assets (" + list_names(names) +
                            "): one at a time");
    }
    if (!types.empty()) scope.type = types.front();
    if (assets.size() == 1 && assets.front().size() == 1) scope.asset = assets.front().front();
    if (!scope.devices.empty()) r.hint_device = scope.devices.front();
    if (!scope.type.empty()) r.hint_type = scope.type;

    // ---- grouping words: "per line", "by site", "for each pump", "overall"
    std::optional<grouping> group;
    std::string level;
    // "which line had ...": one row per asset of that type.
    for (size_t i = 0; i + 1 < items.size(); ++i) {
        if (!(word_is(items[i], "which") || word_is(items[i], "what"))) continue;
        std::string w = items[i + 1].text;
        if (items[i + 1].kind != item_kind::word) continue;
        if (!w.empty() && w.back() == 's' && lex.asset_types.count(w.substr(0, w.size() - 1)))
            w.pop_back();
        if (!lex.asset_types.count(w)) continue;
        group = grouping::asset;
        level = w;
        scope.which = true;
        scope.which_plural = items[i + 1].text != w;
        items[i + 1].used = true;
    }
    for (size_t i = 0; i + 1 < items.size(); ++i) {
        if (!(word_is(items[i], "per") || word_is(items[i], "by") || word_is(items[i], "each") ||
              word_is(items[i], "every")))
            continue;
        const item& next = items[i + 1];
        std::string w = next.text;
        if (next.kind == item_kind::word && !w.empty() && w.back() == 's' &&
            lex.asset_types.count(w.substr(0, w.size() - 1)))
            w.pop_back();
        if (next.kind == item_kind::word && lex.asset_types.count(w)) {
            group = grouping::asset;
            level = w;
            items[i].used = items[i + 1].used = true;
        } else if (next.kind == item_kind::type || next.kind == item_kind::generic) {
            group = grouping::device;
            items[i].used = true;
        }
    }
    if (r.has_any({"overall", "altogether", "combined"}) ||
        (r.has_word("in") && r.has_word("total") && r.index_of("total") == r.index_of("in") + 1))
        group = group ? group : std::optional<grouping>(grouping::none);

    // ---- the metric
    std::vector<std::string> metrics;
    auto add_metric = [&](const std::string& m) {
        if (std::find(metrics.begin(), metrics.end(), m) == metrics.end()) metrics.push_back(m);
    };
    for (auto& it : items)
        if (it.kind == item_kind::metric) {
            add_metric(it.names.front());
            it.used = true;
        }
    bool hot_words = r.has_any({"hot", "hotter", "hottest", "warm", "warmer", "warmest", "cold",
                                "colder", "coldest", "cooler", "coolest", "heat"});
    if (hot_words && detail::find_metric(vocab, "temperature")) add_metric("temperature");
    if (r.has_any({"vibrated", "vibrating", "vibrates", "shaking"}) &&
        detail::find_metric(vocab, "vibration_rms"))
        add_metric("vibration_rms");
    if (r.has_any({"fast", "slow", "faster", "fastest", "slower", "slowest"}) &&
        detail::find_metric(vocab, "rpm"))
        add_metric("rpm");
    if (r.has_word("pumping") && detail::find_metric(vocab, "flow")) add_metric("flow");
    // A unit on its own names the metric ("how many bar", "in degrees"), or must fit it.
    std::vector<const item*> lone_units;
    for (size_t i = 0; i < items.size(); ++i) {
        auto& it = items[i];
        bool after_number = i > 0 && items[i - 1].kind == item_kind::number;
        if (it.kind == item_kind::unit && !it.used && !after_number) {
            lone_units.push_back(&it);
            it.used = true;
        }
    }
    if (metrics.empty() && !lone_units.empty()) {
        auto scoped = detail::scope_devices(vocab, scope.devices, scope.type, scope.asset);
        for (const auto& m : vocab.metrics) {
            if (detail::canonical_unit(m.unit) != lone_units.front()->unit) continue;
            if (std::any_of(scoped.begin(), scoped.end(), [&](const device_word* d) {
                    return detail::device_has_metric(vocab, *d, m.name);
                }))
                add_metric(m.name);
        }
    }
    // A unit says the metric when nothing else does ("above 3 mm/s").
    if (metrics.empty() && comparisons.size() == 1 && !comparisons[0].unit.empty()) {
        auto scoped = detail::scope_devices(vocab, scope.devices, scope.type, scope.asset);
        std::vector<std::string> with_unit;
        for (const auto& m : vocab.metrics) {
            if (detail::canonical_unit(m.unit) != comparisons[0].unit &&
                m.unit != comparisons[0].unit)
                continue;
            bool in_scope = std::any_of(scoped.begin(), scoped.end(), [&](const device_word* d) {
                return detail::device_has_metric(vocab, *d, m.name);
            });
            if (in_scope) with_unit.push_back(m.name);
        }
        if (with_unit.size() == 1)
            metrics.push_back(with_unit.front());
        else if (with_unit.size() > 1)
            r.reasons.push_back("\"" + comparisons[0].text + "\" could be " +
                                list_names(with_unit) + ": name the metric");
    }
    if (metrics.size() > 1)
        r.reasons.push_back("the question names several metrics (" + list_names(metrics) +
                            "): one at a time");
    if (!metrics.empty()) r.hint_metric = metrics.front();

    // ---- the kind, decided
    if (forecast)
        p.kind = plan_kind::forecast;
    else if (alarms)
        p.kind = plan_kind::alarms;
    else if (offline)
        p.kind = plan_kind::offline;
    else if (health)
        p.kind = plan_kind::health;
    else
        p.kind = plan_kind::telemetry;
    r.hint_kind = p.kind;
    r.take_any({"alarm",   "alarms",    "alarmed",    "alert",     "alerts",       "alerted",
                "health",  "healthy",   "healthiest", "unhealthy", "unhealthiest", "condition",
                "anomaly", "anomalies", "anomalous",  "offline",   "silent",       "disconnected",
                "down",    "reporting", "online",     "sending",   "forecast",     "predicted"});

    // ---- the scope, resolved
    auto in_scope = detail::scope_devices(vocab, scope.devices, scope.type, scope.asset);
    if (!scope.devices.empty() && !scope.asset.empty()) {
        const asset_word* a = detail::find_asset(vocab, scope.asset);
        for (const auto& d : scope.devices)
            if (a && !std::binary_search(a->devices.begin(), a->devices.end(), d))
                r.reasons.push_back(d + " is not on " + scope.asset);
    }
    if (!scope.devices.empty() && !scope.type.empty()) {
        for (const auto& d : scope.devices) {
            const device_word* dw = detail::find_device(vocab, d);
            if (dw && dw->type != scope.type && !scope.singular)
                r.reasons.push_back(d + " is a " + dw->type + ", not a " + scope.type);
        }
    }
    if (scope.devices.empty() && in_scope.empty() &&
        (!scope.type.empty() || !scope.asset.empty()) && r.reasons.empty())
        r.reasons.push_back("there is no " +
                            (scope.type.empty() ? std::string("device") : scope.type) +
                            (scope.asset.empty() ? std::string() : " on " + scope.asset));
    if (scope.singular && scope.devices.empty() && !scope.which) {
        std::vector<std::string> names;
        for (const auto* d : in_scope)
            names.push_back(d->name);
        std::string what = scope.type.empty() ? std::string("machine") : scope.type;
        if (names.size() == 1) {
            scope.devices = names;  // the only one there: "the compressor on north line 1"
        } else if (names.size() > 1) {
            r.reasons.push_back(
                "\"the " + what + "\" could be any of " + std::to_string(names.size()) + " " +
                (scope.type.empty() ? std::string("machines") : detail::plural_of(scope.type)) +
                (scope.asset.empty() ? "" : " on " + scope.asset) + " (" + list_names(names) +
                "): name one");
        }
    }
    if (!scope.devices.empty()) {
        p.devices = scope.devices;
        in_scope = detail::scope_devices(vocab, p.devices, "", "");
    } else {
        p.device_type = scope.type;
        p.asset = scope.asset;
    }

    // ---- the metric against the scope
    std::string metric = metrics.empty() ? std::string() : metrics.front();
    const metric_word* mw = metric.empty() ? nullptr : detail::find_metric(vocab, metric);
    if (mw && (p.kind == plan_kind::telemetry || p.kind == plan_kind::forecast)) {
        std::vector<std::string> lacking;
        size_t having = 0;
        for (const auto* d : in_scope) {
            if (detail::device_has_metric(vocab, *d, metric))
                ++having;
            else
                lacking.push_back(d->name);
        }
        std::string said = detail::metric_display(*mw);
        if (having == 0 && !in_scope.empty()) {
            std::string who = !p.devices.empty()       ? list_names(p.devices)
                              : !p.device_type.empty() ? detail::plural_of(p.device_type)
                              : !p.asset.empty()       ? "the machines on " + p.asset
                                                       : "the machines";
            const type_word* t = detail::find_type(vocab, in_scope.front()->type);
            std::string theirs;
            if (t && !t->metrics.empty()) {
                std::vector<std::string> words;
                for (const auto& name : t->metrics)
                    if (const auto* x = detail::find_metric(vocab, name))
                        words.push_back(detail::metric_display(*x));
                theirs = " (" + (p.devices.size() == 1 ? std::string("it has ") : "they have ") +
                         list_names(words, 8) + ")";
            }
            r.reasons.push_back(who + (p.devices.size() == 1 ? " has" : " have") + " no " + said +
                                theirs);
            r.hint_metric.clear();
        } else if (!p.devices.empty() && !lacking.empty()) {
            r.reasons.push_back(list_names(lacking) + (lacking.size() == 1 ? " has" : " have") +
                                " no " + said);
        }
        for (const item* u : lone_units)
            if (!mw->unit.empty() && u->unit != detail::canonical_unit(mw->unit) &&
                u->unit != mw->unit)
                r.reasons.push_back("\"" + u->unit + "\" does not fit " + said + ", which is in " +
                                    mw->unit);
        for (const auto& c : comparisons) {
            if (c.unit.empty() || mw->unit.empty()) continue;
            if (c.unit != detail::canonical_unit(mw->unit) && c.unit != mw->unit)
                r.reasons.push_back("\"" + c.text + "\" does not fit " + said + ", which is in " +
                                    mw->unit);
        }
        p.metric = metric;
        p.unit = mw->unit;
    }

    // ---- the aggregate
    // The first aggregate word wins; ranking words (highest, lowest) aggregate only when
    // nothing else does ("which pump had the highest average temperature": mean, ranked).
    auto set_agg = [&](aggregate a, std::string_view) {
        if (!agg) agg = a;
    };
    for (auto& it : items) {
        if (it.kind != item_kind::word || it.used) continue;
        const std::string& w = it.text;
        if (w == "average" || w == "avg" || w == "mean" || w == "typical")
            set_agg(aggregate::mean, w);
        else if (w == "total" || w == "sum")
            set_agg(aggregate::sum, w);
        else if (w == "trend" || w == "trending" || w == "rising" || w == "falling" ||
                 w == "increasing" || w == "decreasing" || w == "climbing")
            set_agg(aggregate::trend, w);
        else if (w == "change" || w == "changed" || w == "difference" || w == "delta")
            set_agg(aggregate::change, w);
    }
    for (size_t i = 0; i + 1 < items.size(); ++i) {
        if ((word_is(items[i], "going") || word_is(items[i], "go")) &&
            (word_is(items[i + 1], "up") || word_is(items[i + 1], "down")))
            set_agg(aggregate::trend, "going");
        if (word_is(items[i], "how") && word_is(items[i + 1], "much") &&
            r.has_any({"rise", "rose", "risen", "increase", "increased", "drop", "dropped", "fall",
                       "fell", "fallen", "change", "changed", "up", "down"}))
            set_agg(aggregate::change, "how much");
        if (word_is(items[i], "how") && word_is(items[i + 1], "many") &&
            p.kind == plan_kind::telemetry && comparisons.empty() &&
            r.has_any({"readings", "points", "samples", "values", "reading"}))
            set_agg(aggregate::count, "how many");
    }
    // Over a range, "highest" and "hottest" are the peak; at an instant they only rank
    // ("which pump is the hottest right now": the current values, ranked).
    bool over_range = !times.empty() && !times.front()->time.instant && !times.front()->time.future;
    for (size_t i = 0; i + 1 < items.size(); ++i) {
        if (word_is(items[i], "top") && items[i + 1].kind == item_kind::metric)
            set_agg(aggregate::max, "top");            // "the top speed"
        if (word_is(items[i], "how") && over_range) {  // "how hot did it get today"
            if (word_is(items[i + 1], "hot") || word_is(items[i + 1], "warm"))
                set_agg(aggregate::max, "how hot");
            if (word_is(items[i + 1], "cold") || word_is(items[i + 1], "cool"))
                set_agg(aggregate::min, "how cold");
        }
        // "getting hotter", "growing colder": the trend
        if ((word_is(items[i], "getting") || word_is(items[i], "get") ||
             word_is(items[i], "gets") || word_is(items[i], "growing")) &&
            items[i + 1].kind == item_kind::word &&
            (items[i + 1].text == "hotter" || items[i + 1].text == "warmer" ||
             items[i + 1].text == "colder" || items[i + 1].text == "cooler" ||
             items[i + 1].text == "higher" || items[i + 1].text == "lower" ||
             items[i + 1].text == "faster" || items[i + 1].text == "slower") &&
            !(i + 2 < items.size() && word_is(items[i + 2], "than")))
            set_agg(aggregate::trend, "getting");
    }
    if (!agg) {
        for (const auto& it : items) {
            if (it.kind != item_kind::word) continue;
            const std::string& w = it.text;
            if (w == "max" || w == "maximum" || w == "peak")
                set_agg(aggregate::max, w);
            else if (w == "min" || w == "minimum")
                set_agg(aggregate::min, w);
            else if (over_range &&
                     (w == "highest" || w == "hottest" || w == "warmest" || w == "fastest"))
                set_agg(aggregate::max, w);
            else if (over_range &&
                     (w == "lowest" || w == "coldest" || w == "coolest" || w == "slowest"))
                set_agg(aggregate::min, w);
            else if (w == "current" || w == "latest" || w == "last")
                set_agg(aggregate::last, w);
        }
    }
    r.take_any({"average",  "avg",      "mean",    "typical",    "total",      "sum",
                "trend",    "trending", "rising",  "falling",    "increasing", "decreasing",
                "climbing", "change",   "changed", "difference", "delta",      "max",
                "maximum",  "highest",  "peak",    "hottest",    "warmest",    "fastest",
                "min",      "minimum",  "lowest",  "coldest",    "coolest",    "slowest",
                "current",  "latest",   "last",    "most",       "least",      "top",
                "bottom",   "best",     "worst",   "biggest",    "largest",    "smallest",
                "fewest"});

    // ---- time, decided
    const detail::time_range* when = times.empty() ? nullptr : &times.front()->time;
    auto set_range = [&](int64_t from, int64_t to, std::string text) {
        p.from_ms = from;
        p.to_ms = to;
        p.time_text = std::move(text);
    };
    // Health and alarm questions: the range asked, else now; a comparison filters the rows.
    auto range_or_now_and_filter = [&] {
        if (when && !when->future)
            set_range(when->from_ms, when->to_ms, when->text);
        else
            set_range(opts.now_ms, opts.now_ms, "now");
        if (!comparisons.empty()) p.filter = comparisons.front().c;
    };
    if (when && when->future && p.kind != plan_kind::forecast)
        r.reasons.push_back("\"" + when->text +
                            "\" is in the future: only forecasts look ahead (\"will pump-01 "
                            "exceed 80 °C in the next hour?\")");

    switch (p.kind) {
        case plan_kind::telemetry: {
            if (metric.empty() && r.reasons.empty()) {
                std::vector<std::string> words;
                for (const auto& m : vocab.metrics)
                    if (std::any_of(in_scope.begin(), in_scope.end(), [&](const device_word* d) {
                            return detail::device_has_metric(vocab, *d, m.name);
                        }))
                        words.push_back(detail::metric_display(m));
                bool anything =
                    !scope.devices.empty() || !scope.type.empty() || !assets.empty() || generic;
                std::string unknown;  // "the humidity of": a word in the place of a measurement
                for (size_t i = 0; i + 1 < items.size() && unknown.empty(); ++i)
                    if (word_is(items[i], "the") && items[i + 1].kind == item_kind::word &&
                        !grammar_word(items[i + 1].text) && items[i + 1].text.size() >= 3 &&
                        is_alpha(items[i + 1].text[0]))
                        unknown = items[i + 1].text;
                if (!unknown.empty() && anything)
                    r.reasons.push_back("\"" + unknown + "\" is not a measurement of the plant (" +
                                        list_names(words, 8) + ")");
                else if (anything)
                    r.reasons.push_back("which measurement? (" + list_names(words, 8) + ")");
                else
                    r.reasons.push_back(
                        "the question names no machine, line or measurement of "
                        "the plant");
            }
            bool ranged = when && !when->instant;
            if (comparisons.size() == 1 && comparisons[0].how_long) {
                const auto& c = comparisons[0];
                bool up = c.c.op == ">" || c.c.op == ">=";
                agg = up ? aggregate::time_above : aggregate::time_below;
                if (c.c.op == "=") r.reasons.push_back("\"how long\" needs above or below");
                p.threshold = c.c;
            } else if (comparisons.size() == 1) {
                const auto& c = comparisons[0];
                p.filter = c.c;
                // "which pumps are above 80": now; "... ran above 80 yesterday": the peak.
                if (!agg && ranged)
                    agg = (c.c.op == "<" || c.c.op == "<=") ? aggregate::min : aggregate::max;
                if (order.empty()) order = (c.c.op == "<" || c.c.op == "<=") ? "asc" : "desc";
            }
            if (!agg) agg = ranged ? aggregate::mean : aggregate::last;
            p.agg = *agg;
            if (when && !when->future) {
                set_range(when->from_ms, when->to_ms, when->text);
            } else if (p.agg == aggregate::last) {
                set_range(opts.now_ms, opts.now_ms, "now");
            } else if (p.agg == aggregate::trend || p.agg == aggregate::change) {
                set_range(opts.now_ms - hour_ms, opts.now_ms, "in the last hour");
            } else {
                set_range(opts.now_ms - day_ms, opts.now_ms, "in the last 24 hours");
            }
            if ((p.agg == aggregate::trend || p.agg == aggregate::change ||
                 p.agg == aggregate::time_above || p.agg == aggregate::time_below) &&
                p.from_ms == p.to_ms)
                set_range(opts.now_ms - (p.agg == aggregate::trend || p.agg == aggregate::change
                                             ? hour_ms
                                             : day_ms),
                          opts.now_ms,
                          p.agg == aggregate::trend || p.agg == aggregate::change
                              ? "in the last hour"
                              : "in the last 24 hours");
            break;
        }
        case plan_kind::health: {
            if (mw) {
                p.metric = "health." + metric;
                if (!detail::find_metric(vocab, metric)) p.metric.clear();
            }
            bool ranged = when && !when->instant;
            p.agg = agg == aggregate::mean || agg == aggregate::max || agg == aggregate::min
                        ? *agg
                        : (ranged ? aggregate::mean : aggregate::last);
            range_or_now_and_filter();
            break;
        }
        case plan_kind::alarms: {
            if (!metric.empty())
                r.reasons.push_back("alarm questions cannot be narrowed to a measurement (" +
                                    metric + "): ask for the alarms of a machine or a line");
            p.agg = aggregate::count;
            if (r.has_any({"open", "current"}))
                p.alarm_status = "open";
            else if (r.has_any({"active", "unacknowledged"}))
                p.alarm_status = "active";
            else
                p.alarm_status = when && !when->instant ? "any" : "open";
            range_or_now_and_filter();
            break;
        }
        case plan_kind::offline: {
            p.agg = r.has_word("how") && r.has_word("many") ? aggregate::count : aggregate::last;
            set_range(opts.now_ms, opts.now_ms, "now");
            if (when && !when->instant)
                r.reasons.push_back("offline questions are about now, not \"" + when->text +
                                    "\": ask \"which devices are offline?\"");
            break;
        }
        case plan_kind::forecast: {
            if (metric.empty() && r.reasons.empty())
                r.reasons.push_back("which measurement should the forecast look at?");
            p.agg = aggregate::last;
            p.threshold = comparisons.front().c;
            if (p.threshold->op == "=") p.threshold->op = ">=";
            if (when && when->future)
                set_range(when->from_ms, when->to_ms, when->text);
            else if (when && !when->instant)
                r.reasons.push_back("a forecast looks ahead, not at \"" + when->text + "\"");
            else
                set_range(opts.now_ms, opts.now_ms + day_ms, "in the next 24 hours");
            break;
        }
    }

    // ---- grouping, order and limit
    bool single = p.devices.size() == 1;
    if (superlative.empty() && scope.which) superlative = comparative;  // "which site ran hotter"
    // "rank the pumps by flow", "list the conveyors by rpm from lowest to highest"
    bool listed =
        r.has_any({"rank", "sort", "order", "list"}) && r.has_word("by") && p.devices.size() != 1;
    if (listed && !group) group = grouping::device;
    if (listed && order.empty()) order = superlative.empty() ? "desc" : superlative;
    bool ranking = limit.has_value() || (scope.which && !superlative.empty());
    if (group) {
        p.group_by = *group;
        if (*group == grouping::asset) p.asset_level = level;
    } else if (p.kind == plan_kind::alarms) {
        p.group_by = scope.which || ranking || r.has_word("per") || !superlative.empty()
                         ? grouping::device
                         : grouping::none;
    } else if (p.kind == plan_kind::offline) {
        p.group_by = p.agg == aggregate::count ? grouping::none : grouping::device;
    } else if (p.kind == plan_kind::telemetry && p.devices.empty() && !scope.which && !ranking &&
               !p.filter && !r.has_word("each") && !r.has_word("every") &&
               (p.agg == aggregate::mean || p.agg == aggregate::min || p.agg == aggregate::max ||
                p.agg == aggregate::sum || p.agg == aggregate::count || p.agg == aggregate::p50 ||
                p.agg == aggregate::p90 || p.agg == aggregate::p95 || p.agg == aggregate::p99)) {
        p.group_by = grouping::none;
    } else {
        p.group_by = grouping::device;
    }
    if (!superlative.empty() &&
        (scope.which || limit || p.kind == plan_kind::health || p.kind == plan_kind::alarms) &&
        p.group_by != grouping::none) {
        order = order.empty() || limit ? superlative : order;
        if (!limit && !scope.which_plural) limit = 1;
    }
    if (p.kind == plan_kind::health && order.empty() && p.group_by != grouping::none && !single &&
        p.filter)
        order = "desc";
    p.order = p.group_by == grouping::none ? "" : order;
    p.limit = p.group_by == grouping::none ? std::nullopt : limit;
    // "what alarmed most": no machine is named, so the alarms are counted per rule — the
    // executor reads an ordered alarm plan without grouping that way (decision 0094).
    if (p.kind == plan_kind::alarms && what_most && !group) {
        p.group_by = grouping::none;
        p.order = superlative.empty() ? "desc" : superlative;
        p.limit = limit ? limit : std::optional<int64_t>(1);
    }
    if (p.kind == plan_kind::forecast || p.kind == plan_kind::offline) {
        p.order.clear();
        p.limit.reset();
    }

    // ---- a word after "the" or "at" that names nothing the plant has, in a question that
    // otherwise reads ("the temperature of the bearing on pump-01", "at the outlet"): the
    // answer would be about something else than what was asked
    if (!metric.empty()) {
        for (size_t i = 0; i + 1 < items.size(); ++i) {
            if (!(word_is(items[i], "the") || word_is(items[i], "at"))) continue;
            const item& w = items[i + 1];
            bool before_metric = i + 2 < items.size() && items[i + 2].kind == item_kind::metric;
            if (w.kind != item_kind::word || before_metric || grammar_word(w.text) ||
                w.text.size() < 3 || !is_alpha(w.text[0]) || lex.words.count(w.text) ||
                !detail::canonical_unit(w.text).empty())
                continue;
            r.reasons.push_back("\"" + w.text +
                                "\" is not a device, an asset or a measurement of the plant");
        }
    }

    // ---- clock times no time expression took ("yesterday at 25:00"), and words before a
    // measurement that make it another one ("oil temperature")
    for (size_t i = 0; i < items.size(); ++i) {
        const item& it = items[i];
        if (it.kind != item_kind::word) continue;
        if (it.text.find(':') != std::string::npos && is_digit(it.text[0]))
            r.reasons.push_back("\"" + it.text +
                                "\" is not a time I can read here (say \"between "
                                "14:00 and 16:00 yesterday\" or \"since 06:00\")");
        else if (i + 1 < items.size() && items[i + 1].kind == item_kind::metric &&
                 it.text.size() >= 3 && is_alpha(it.text[0]) && !grammar_word(it.text) &&
                 detail::canonical_unit(it.text).empty())
            r.reasons.push_back(
                "\"" + it.text + " " + items[i + 1].text + "\" is not a measurement of " +
                (p.devices.empty() ? std::string("the plant") : list_names(p.devices)));
    }

    // ---- words the grammar does not read. Answering without them would answer another
    // question: "excluding weekends", "while running", "during the night shift", "2 days ago"
    // and "per hour" would each be dropped silently and the rest answered with confidence.
    // Words that change nothing in what is asked: what the rules read besides the vocabulary
    // (ordinal endings of "90th", "how much", "going up", "how is pump-03 doing", "pumping
    // out"), and the verbs and fillers people put around a question ("drew", "raised",
    // "gonna", "hey").
    static const std::set<std::string_view> harmless = {"th",         "st",         "nd",
                                                        "rd",         "much",       "up",
                                                        "down",       "doing",      "out",
                                                        "drew",       "draw",       "draws",
                                                        "drawn",      "raised",     "raise",
                                                        "triggered",  "fired",      "logged",
                                                        "recorded",   "registered", "seen",
                                                        "saw",        "gonna",      "gotta",
                                                        "wanna",      "going",      "reach",
                                                        "reached",    "reaches",    "hit",
                                                        "hits",       "get",        "got",
                                                        "gets",       "go",         "went",
                                                        "gone",       "run",        "ran",
                                                        "runs",       "currently",  "right",
                                                        "just",       "still",      "already",
                                                        "actually",   "really",     "roughly",
                                                        "about",      "around",     "approximately",
                                                        "exactly",    "overall",    "anything",
                                                        "everything", "any",        "all",
                                                        "machine",    "machines",   "equipment",
                                                        "hey",        "hi",         "hello",
                                                        "pls",        "plz",        "thx",
                                                        "quick",      "quickly",    "kinda",
                                                        "like"};
    for (size_t i = 0; i < items.size() && r.reasons.empty(); ++i) {
        const item& it = items[i];
        if (it.kind != item_kind::word || it.text.empty() || !is_alpha(it.text[0])) continue;
        const std::string& w = it.text;
        if (harmless.count(w)) continue;
        const std::string next =
            i + 1 < items.size() && items[i + 1].kind == item_kind::word ? items[i + 1].text : "";
        static const std::set<std::string_view> parts_of_day = {
            "morning", "afternoon", "evening", "night", "overnight", "noon", "midnight"};
        static const std::set<std::string_view> time_units = {"minute", "minutes", "hour", "hours",
                                                              "day",    "days",    "week", "weeks",
                                                              "month",  "months"};
        static const std::set<std::string_view> leaving_out = {
            "except",   "excluding", "exclude", "without", "besides", "apart",
            "ignoring", "but",       "other",   "outside", "only"};
        if (w == "not" && offline) continue;
        if (parts_of_day.count(w))
            r.reasons.push_back("\"" + w +
                                "\" is not a time I can read here: say \"between 08:00 and 10:00 "
                                "this morning\" or \"since 22:00 yesterday\"");
        else if ((w == "per" || w == "each" || w == "every") && time_units.count(next))
            r.reasons.push_back("\"" + w + " " + next +
                                "\" asks for a series, which the dashboard's chart and "
                                "/api/v1/query (step) give; ask for one number over the range");
        else if (w == "hourly" || w == "daily" || w == "weekly" || w == "monthly")
            r.reasons.push_back("\"" + w +
                                "\" asks for a series, which the dashboard's chart and "
                                "/api/v1/query (step) give; ask for one number over the range");
        else if (w == "ago")
            r.reasons.push_back(
                "\"ago\" is not a time I can read: say \"yesterday\", \"on Monday\" "
                "or \"between 08:00 and 10:00 on Monday\"");
        else if (leaving_out.count(w) || w == "not")
            r.reasons.push_back("\"" + w +
                                "\": I cannot leave part of the data out or negate a condition; "
                                "ask for the machines and the time range you want");
        else if (!grammar_word(w))
            r.reasons.push_back("\"" + w +
                                "\" is not a machine, line, measurement, time or word I know");
    }

    // ---- numbers nothing used
    for (size_t i = 0; i < items.size(); ++i) {
        const item& it = items[i];
        if (it.kind != item_kind::number || it.used) continue;
        std::string said = it.text;
        if (i + 1 < items.size() && items[i + 1].kind == item_kind::unit)
            said += " " + items[i + 1].text;
        r.reasons.push_back("\"" + said +
                            "\" does not fit anywhere in the question (a threshold needs above "
                            "or below, a ranking \"top " +
                            it.text + "\")");
    }

    if (!r.reasons.empty()) return fail(r.reasons);
    if (auto ok = check(p, vocab, opts.now_ms); !ok) {
        return fail({"the plan read from the question does not hold: " + ok.error().message});
    }
    return p;
}

}  // namespace

std::variant<plan, not_understood> parse(std::string_view question, const vocabulary& vocab,
                                         const parse_options& opts) {
    return parse_question(question, vocab, opts, true);
}

}  // namespace clisonix::ask
