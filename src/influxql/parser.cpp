// The InfluxQL parser: a scanner driven by the parser (a `/` starts a regex only where the
// grammar expects one) and a recursive descent over the statements Grafana sends.
#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>

#include "influxql/ast.h"
#include "query/query.h"

namespace clisonix::influxql {

bool regex::search(std::string_view s) const {
    return std::regex_search(s.begin(), s.end(), *re);
}

bool source::matches(std::string_view name) const {
    return pattern ? pattern->search(name) : name == measurement;
}

std::string field_expr::column() const {
    if (!alias.empty()) return alias;
    switch (fn) {
        case function::raw:
            return field;
        case function::mean:
            return "mean";
        case function::max:
            return "max";
        case function::min:
            return "min";
        case function::sum:
            return "sum";
        case function::count:
            return "count";
        case function::last:
            return "last";
        case function::first:
            return "first";
        case function::median:
            return "median";
        case function::spread:
            return "spread";
        case function::stddev:
            return "stddev";
        case function::percentile:
            return "percentile";
    }
    return field;
}

namespace {

enum class tok {
    eof,
    ident,         // bare word (keywords too)
    quoted_ident,  // "..."
    string,        // '...'
    number,        // 12, 1.5
    duration,      // 10s, 1704067200000ms
    regex,         // /.../ (only where the parser asks for one)
    punct,         // , ( ) ; . * + - / = != <> < <= > >= =~ !~
    bad,           // an unterminated string, a stray character
};

struct token {
    tok kind = tok::eof;
    std::string text;  // identifiers and strings unquoted and unescaped; punctuation as written
    size_t pos = 0;
    size_t end = 0;
    std::string raw;  // as written, for error messages
};

bool is_ident_start(char c) {
    return std::isalpha(static_cast<unsigned char>(c)) || c == '_';
}
bool is_ident_char(char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
}

bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return std::tolower(static_cast<unsigned char>(x)) ==
                      std::tolower(static_cast<unsigned char>(y));
           });
}

// Nanoseconds per InfluxQL duration unit, 0 for an unknown unit.
int64_t unit_ns(std::string_view unit) {
    if (unit == "ns") return 1;
    if (unit == "u" || unit == "µ" || unit == "us") return 1'000;
    if (unit == "ms") return 1'000'000;
    if (unit == "s") return 1'000'000'000;
    if (unit == "m") return 60'000'000'000;
    if (unit == "h") return 3'600'000'000'000;
    if (unit == "d") return 86'400'000'000'000;
    if (unit == "w") return 604'800'000'000'000;
    return 0;
}

class parser {
public:
    explicit parser(std::string_view text) : _text(text) {}

    result<std::vector<statement>> statements() {
        std::vector<statement> out;
        for (;;) {
            while (accept_punct(";")) {
            }
            if (peek().kind == tok::eof) break;
            auto st = one_statement();
            if (!st) return st.error();
            out.push_back(std::move(*st));
            if (peek().kind == tok::eof) break;
            if (!accept_punct(";")) return expected(peek(), ";");
        }
        if (out.empty()) return expected(peek(), "SELECT, SHOW");
        return out;
    }

private:
    std::string_view _text;
    size_t _pos = 0;

    // ---- scanning ----

    size_t skip_space(size_t p) const {
        for (;;) {
            while (p < _text.size() && std::isspace(static_cast<unsigned char>(_text[p])))
                ++p;
            if (_text.substr(p).starts_with("--")) {
                while (p < _text.size() && _text[p] != '\n')
                    ++p;
                continue;
            }
            return p;
        }
    }

    token scan(bool want_regex) const {
        token t;
        size_t p = skip_space(_pos);
        t.pos = p;
        auto finish = [&](tok kind, size_t end) {
            t.kind = kind;
            t.end = end;
            t.raw = std::string(_text.substr(p, end - p));
            if (t.text.empty() && kind != tok::string && kind != tok::quoted_ident &&
                kind != tok::regex)
                t.text = t.raw;
            return t;
        };
        if (p >= _text.size()) {
            t.kind = tok::eof;
            t.end = p;
            t.raw = "EOF";
            return t;
        }
        const char c = _text[p];
        if (want_regex && c == '/') {
            size_t q = p + 1;
            std::string body;
            while (q < _text.size() && _text[q] != '/') {
                // `\/` is a slash inside the regex; every other escape is the regex's own.
                if (_text[q] == '\\' && q + 1 < _text.size() && _text[q + 1] == '/') {
                    body.push_back('/');
                    q += 2;
                    continue;
                }
                body.push_back(_text[q++]);
            }
            if (q >= _text.size()) return finish(tok::bad, q);
            t.text = body;
            return finish(tok::regex, q + 1);
        }
        if (c == '"' || c == '\'') {
            size_t q = p + 1;
            std::string body;
            while (q < _text.size() && _text[q] != c) {
                if (_text[q] == '\\' && q + 1 < _text.size()) {
                    char e = _text[q + 1];
                    body.push_back(e == 'n' ? '\n' : e);
                    q += 2;
                    continue;
                }
                body.push_back(_text[q++]);
            }
            if (q >= _text.size()) return finish(tok::bad, q);
            t.text = body;
            return finish(c == '"' ? tok::quoted_ident : tok::string, q + 1);
        }
        if (is_ident_start(c)) {
            size_t q = p;
            while (q < _text.size() && is_ident_char(_text[q]))
                ++q;
            return finish(tok::ident, q);
        }
        if (std::isdigit(static_cast<unsigned char>(c)) ||
            (c == '.' && p + 1 < _text.size() &&
             std::isdigit(static_cast<unsigned char>(_text[p + 1])))) {
            size_t q = p;
            while (q < _text.size() && std::isdigit(static_cast<unsigned char>(_text[q])))
                ++q;
            bool fraction = false;
            if (q < _text.size() && _text[q] == '.') {
                fraction = true;
                ++q;
                while (q < _text.size() && std::isdigit(static_cast<unsigned char>(_text[q])))
                    ++q;
            }
            // A duration: digits and a unit (`µ` is two bytes in UTF-8).
            if (!fraction) {
                size_t u = q;
                if (_text.substr(u).starts_with("µ"))
                    u += 2;
                else
                    while (u < _text.size() && std::isalpha(static_cast<unsigned char>(_text[u])))
                        ++u;
                if (u > q && unit_ns(_text.substr(q, u - q)) != 0) return finish(tok::duration, u);
                if (u > q) return finish(tok::bad, u);
            }
            return finish(tok::number, q);
        }
        static constexpr std::string_view two[] = {"!=", "<>", "<=", ">=", "=~", "!~", "::"};
        for (auto op : two)
            if (_text.substr(p).starts_with(op)) return finish(tok::punct, p + 2);
        if (std::string_view(",();.*+-/=<>").find(c) != std::string_view::npos)
            return finish(tok::punct, p + 1);
        // One whole UTF-8 character, so that the message shows it.
        size_t q = p + 1;
        while (q < _text.size() && (static_cast<unsigned char>(_text[q]) & 0xC0) == 0x80)
            ++q;
        return finish(tok::bad, q);
    }

    token peek(bool want_regex = false) const { return scan(want_regex); }
    token next(bool want_regex = false) {
        token t = scan(want_regex);
        _pos = t.end;
        return t;
    }

    bool is_keyword(const token& t, std::string_view word) const {
        return t.kind == tok::ident && iequals(t.text, word);
    }
    bool accept_keyword(std::string_view word) {
        if (!is_keyword(peek(), word)) return false;
        next();
        return true;
    }
    bool accept_punct(std::string_view p) {
        token t = peek();
        if (t.kind != tok::punct || t.text != p) return false;
        next();
        return true;
    }

    // ---- errors ----

    std::string where(size_t pos) const {
        size_t line = 1, col = 1;
        for (size_t i = 0; i < pos && i < _text.size(); ++i) {
            if (_text[i] == '\n') {
                ++line;
                col = 1;
            } else {
                ++col;
            }
        }
        return "line " + std::to_string(line) + ", char " + std::to_string(col);
    }
    error expected(const token& found, std::string_view what) const {
        if (found.kind == tok::bad && found.raw.size() > 0 &&
            (found.raw[0] == '\'' || found.raw[0] == '"' || found.raw[0] == '/'))
            return make_error("invalid_argument", "found " + found.raw + ", expected closing " +
                                                      found.raw.substr(0, 1) + " at " +
                                                      where(found.pos));
        return make_error("invalid_argument", "found " + found.raw + ", expected " +
                                                  std::string(what) + " at " + where(found.pos));
    }
    error unsupported(std::string_view feature, size_t pos) const {
        return make_error("not_implemented",
                          "unsupported InfluxQL: " + std::string(feature) + " at " + where(pos));
    }
    error invalid(std::string_view message, size_t pos) const {
        return make_error("invalid_argument", std::string(message) + " at " + where(pos));
    }

    // ---- pieces ----

    result<std::string> identifier(std::string_view what = "identifier") {
        token t = peek();
        if (t.kind == tok::quoted_ident || t.kind == tok::ident) {
            next();
            return t.text;
        }
        return expected(t, what);
    }

    // `"key"::tag`, `"key"::field` (what Grafana adds when a name is both): the kind of key
    // named, "" without a cast. A type cast (`::integer`) converts values: refused.
    result<std::string> optional_cast() {
        token t = peek();
        if (t.kind != tok::punct || t.text != "::") return std::string();
        next();
        token kind = next();
        if (is_keyword(kind, "tag")) return std::string("tag");
        if (is_keyword(kind, "field")) return std::string("field");
        if (kind.kind == tok::ident) return unsupported("the cast ::" + kind.text, t.pos);
        return expected(kind, "tag, field");
    }

    result<int64_t> integer(std::string_view what) {
        token t = peek();
        int64_t n = 0;
        if (t.kind == tok::number) {
            auto [ptr, ec] = std::from_chars(t.text.data(), t.text.data() + t.text.size(), n);
            if (ec == std::errc{} && ptr == t.text.data() + t.text.size() && n >= 0) {
                next();
                return n;
            }
        }
        return expected(t, what);
    }

    result<int64_t> duration(const token& t) {
        size_t digits = 0;
        while (digits < t.text.size() && std::isdigit(static_cast<unsigned char>(t.text[digits])))
            ++digits;
        int64_t n = 0;
        auto [ptr, ec] = std::from_chars(t.text.data(), t.text.data() + digits, n);
        int64_t scale = unit_ns(std::string_view(t.text).substr(digits));
        int64_t ns = 0;
        if (ec != std::errc{} || scale == 0 || __builtin_mul_overflow(n, scale, &ns))
            return invalid("duration " + t.raw + " is out of range", t.pos);
        return ns;
    }

    // FROM "m" | "db"."rp"."m" | "db".."m" | /re/
    result<source> parse_source() {
        token t = peek(true);
        source s;
        if (t.kind == tok::regex) {
            next(true);
            auto re = compile(t);
            if (!re) return re.error();
            s.pattern = std::move(*re);
            return s;
        }
        if (t.kind == tok::punct && t.text == "(") return unsupported("subqueries", t.pos);
        std::vector<std::string> parts;
        auto first = identifier("identifier, regex");
        if (!first) return first.error();
        parts.push_back(*first);
        while (accept_punct(".")) {
            token n = peek(true);
            if (n.kind == tok::punct && n.text == ".") {  // "db".."m": the default policy
                parts.emplace_back();
                continue;
            }
            if (n.kind == tok::regex && parts.size() < 3) {
                next(true);
                auto re = compile(n);
                if (!re) return re.error();
                s.pattern = std::move(*re);
                return s;
            }
            auto part = identifier();
            if (!part) return part.error();
            parts.push_back(*part);
        }
        if (parts.size() > 3)
            return invalid("a measurement has at most three parts (db.rp.name)", t.pos);
        // The database and retention policy name nothing in Clisonix: one store answers all.
        s.measurement = parts.back();
        return s;
    }

    result<regex> compile(const token& t) {
        // InfluxDB's regexes are Go's: Grafana's measurement search sends `/(?i)cpu/`, a flag
        // ECMAScript spells as icase.
        std::string_view body = t.text;
        auto flags = std::regex::ECMAScript;
        if (body.starts_with("(?i)")) {
            body.remove_prefix(4);
            flags |= std::regex::icase;
        }
        try {
            return regex{t.text, std::make_shared<std::regex>(std::string(body), flags)};
        } catch (const std::regex_error& e) {
            return invalid("invalid regular expression /" + t.text + "/: " + e.what(), t.pos);
        }
    }

    // now() | 'RFC 3339' | 1704067200000ms | 1704067200000000000, then (+|-) durations.
    result<time_expr> parse_time_expr() {
        time_expr out;
        token t = next();
        if (is_keyword(t, "now")) {
            if (!accept_punct("(") || !accept_punct(")")) return expected(peek(), "(");
            out.relative_to_now = true;
        } else if (t.kind == tok::string) {
            // RFC 3339, or InfluxQL's UTC forms '2024-01-01 00:00:00[.fraction]' and
            // '2024-01-01'.
            auto ns = query::parse_time(t.text, 0, "time");
            if (!ns && t.text.size() == 10)
                ns = query::parse_time(t.text + "T00:00:00Z", 0, "time");
            if (!ns && t.text.size() > 10 && t.text[10] == ' ')
                ns = query::parse_time(t.text + "Z", 0, "time");
            bool digits_only =
                !t.text.empty() && std::all_of(t.text.begin(), t.text.end(), ::isdigit);
            if (!ns || digits_only)
                return invalid("invalid time \"" + t.text +
                                   "\": expected RFC 3339 such as '2024-01-01T00:00:00Z'",
                               t.pos);
            out.ns = *ns;
        } else if (t.kind == tok::duration) {
            auto ns = duration(t);
            if (!ns) return ns.error();
            out.ns = *ns;
        } else if (t.kind == tok::number) {
            int64_t n = 0;
            auto [ptr, ec] = std::from_chars(t.text.data(), t.text.data() + t.text.size(), n);
            if (ec != std::errc{} || ptr != t.text.data() + t.text.size())
                return invalid("invalid time " + t.raw + ": expected integer nanoseconds", t.pos);
            out.ns = n;
        } else {
            return expected(t, "now(), a time string, a duration or a number");
        }
        for (;;) {
            token op = peek();
            if (op.kind != tok::punct || (op.text != "+" && op.text != "-")) break;
            next();
            token d = next();
            if (d.kind != tok::duration) return expected(d, "duration");
            auto ns = duration(d);
            if (!ns) return ns.error();
            if (op.text == "+" ? __builtin_add_overflow(out.ns, *ns, &out.ns)
                               : __builtin_sub_overflow(out.ns, *ns, &out.ns))
                return invalid("time out of range", d.pos);
        }
        return out;
    }

    result<condition> parse_or() {
        auto first = parse_and();
        if (!first) return first;
        if (!is_keyword(peek(), "or")) return first;
        condition any;
        any.type = condition::kind::any;
        any.parts.push_back(std::move(*first));
        while (accept_keyword("or")) {
            auto part = parse_and();
            if (!part) return part;
            any.parts.push_back(std::move(*part));
        }
        return any;
    }

    result<condition> parse_and() {
        auto first = parse_unary();
        if (!first) return first;
        if (!is_keyword(peek(), "and")) return first;
        condition all;
        all.type = condition::kind::all;
        all.parts.push_back(std::move(*first));
        while (accept_keyword("and")) {
            auto part = parse_unary();
            if (!part) return part;
            all.parts.push_back(std::move(*part));
        }
        return all;
    }

    result<condition> parse_unary() {
        if (accept_punct("(")) {
            auto inner = parse_or();
            if (!inner) return inner;
            if (!accept_punct(")")) return expected(peek(), ")");
            return inner;
        }
        token key = peek();
        if (key.kind != tok::ident && key.kind != tok::quoted_ident)
            return expected(key, "identifier, (");
        if (key.kind == tok::ident &&
            (iequals(key.text, "now") || iequals(key.text, "true") || iequals(key.text, "false")))
            return unsupported("a condition that does not start with a tag key or time", key.pos);
        next();
        auto cast = optional_cast();
        if (!cast) return cast.error();
        if (*cast == "field")
            return unsupported(
                "a condition on the field " + key.raw + "; WHERE compares tags and time", key.pos);
        token op = next();
        static constexpr std::string_view ops[] = {"=", "!=", "<>", "=~", "!~",
                                                   "<", "<=", ">",  ">="};
        if (op.kind != tok::punct ||
            std::find(std::begin(ops), std::end(ops), op.text) == std::end(ops))
            return expected(op, "=, !=, <>, =~, !~, <, <=, >, >=");
        condition c;
        c.leaf.key = key.text;
        c.leaf.op = op.text == "<>" ? "!=" : op.text;
        c.leaf.pos = key.pos;
        if (iequals(key.text, "time")) {
            c.leaf.is_time = true;
            if (c.leaf.op == "!=" || c.leaf.op == "=~" || c.leaf.op == "!~")
                return unsupported("time " + op.text + " (use <, <=, >, >= or =)", op.pos);
            auto when = parse_time_expr();
            if (!when) return when.error();
            c.leaf.when = *when;
            return c;
        }
        if (c.leaf.op == "=~" || c.leaf.op == "!~") {
            token re = next(true);
            if (re.kind != tok::regex) return expected(re, "regex");
            auto compiled = compile(re);
            if (!compiled) return compiled.error();
            c.leaf.pattern = std::move(*compiled);
            return c;
        }
        token value = next();
        if (value.kind == tok::string) {
            c.leaf.text = value.text;
            return c;
        }
        if (value.kind == tok::number || value.kind == tok::duration || is_keyword(value, "true") ||
            is_keyword(value, "false") || (value.kind == tok::punct && value.text == "-"))
            return unsupported("a condition on a field value (" + key.raw + " " + op.text + " " +
                                   value.raw + "); compare tags with strings and time with times",
                               key.pos);
        if (value.kind == tok::ident || value.kind == tok::quoted_ident)
            return unsupported("comparing two keys (" + key.raw + " " + op.text + " " + value.raw +
                                   "); compare a tag with a 'string'",
                               value.pos);
        return expected(value, "string, regex");
    }

    result<std::optional<condition>> optional_where() {
        if (!accept_keyword("where")) return std::optional<condition>{};
        auto c = parse_or();
        if (!c) return c.error();
        return std::optional<condition>(std::move(*c));
    }

    // mean("value") | percentile("value", 95) | "value"
    result<field_expr> parse_field() {
        token t = peek();
        field_expr f;
        if (t.kind == tok::punct && t.text == "*")
            return unsupported("SELECT * (name the fields)", t.pos);
        if (t.kind == tok::ident) {
            token after = scan_after(t);
            if (after.kind == tok::punct && after.text == "(") {
                static const std::pair<std::string_view, function> names[] = {
                    {"mean", function::mean},
                    {"max", function::max},
                    {"min", function::min},
                    {"sum", function::sum},
                    {"count", function::count},
                    {"last", function::last},
                    {"first", function::first},
                    {"median", function::median},
                    {"spread", function::spread},
                    {"stddev", function::stddev},
                    {"percentile", function::percentile}};
                auto it = std::find_if(std::begin(names), std::end(names),
                                       [&](const auto& n) { return iequals(n.first, t.text); });
                if (it == std::end(names)) {
                    std::string lower = t.text;
                    for (auto& ch : lower)
                        ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
                    return unsupported("the function " + lower + "()", t.pos);
                }
                next();
                next();  // (
                f.fn = it->second;
                token arg = peek(true);
                if (arg.kind == tok::punct && arg.text == "*")
                    return unsupported(t.text + "(*) (name the field)", arg.pos);
                if (arg.kind == tok::regex) return unsupported(t.text + "(/regex/)", arg.pos);
                if (arg.kind == tok::ident && scan_after(arg).kind == tok::punct &&
                    scan_after(arg).text == "(")
                    return unsupported("nested functions (" + t.text + "(" + arg.text + "(...)))",
                                       arg.pos);
                auto field = identifier("field key");
                if (!field) return field.error();
                f.field = *field;
                auto cast = optional_cast();
                if (!cast) return cast.error();
                if (*cast == "tag") return unsupported(t.text + "() of a tag", arg.pos);
                if (f.fn == function::percentile) {
                    if (!accept_punct(",")) return expected(peek(), ",");
                    token n = next();
                    double v = 0;
                    auto [ptr, ec] =
                        std::from_chars(n.text.data(), n.text.data() + n.text.size(), v);
                    if (n.kind != tok::number || ec != std::errc{} || v < 0 || v > 100)
                        return invalid(
                            "percentile() takes a number from 0 to 100 as its second "
                            "argument, found " +
                                n.raw,
                            n.pos);
                    f.percentile = v;
                }
                token close = next();
                if (close.kind != tok::punct || close.text != ")") {
                    if (close.kind == tok::punct && close.text == ",")
                        return invalid(
                            t.text + "() takes " +
                                (f.fn == function::percentile ? "two arguments" : "one argument"),
                            close.pos);
                    return expected(close, ")");
                }
            } else {
                next();
                f.field = t.text;
            }
        } else if (t.kind == tok::quoted_ident) {
            next();
            f.field = t.text;
        } else {
            return expected(t, "field key, function");
        }
        if (f.fn == function::raw) {
            auto cast = optional_cast();
            if (!cast) return cast.error();
            if (*cast == "tag") return unsupported("selecting a tag; GROUP BY it instead", t.pos);
        }
        token op = peek();
        if (op.kind == tok::punct &&
            (op.text == "+" || op.text == "-" || op.text == "*" || op.text == "/"))
            return unsupported("arithmetic in SELECT (" + op.text + ")", op.pos);
        if (op.kind == tok::ident && iequals(op.text, "as")) {
            next();
            auto alias = identifier();
            if (!alias) return alias.error();
            f.alias = *alias;
        }
        return f;
    }

    token scan_after(const token& t) const {
        parser copy(*this);
        copy._pos = t.end;
        return copy.peek();
    }

    result<statement> parse_select() {
        select_statement s;
        for (;;) {
            auto f = parse_field();
            if (!f) return f.error();
            s.fields.push_back(std::move(*f));
            if (!accept_punct(",")) break;
        }
        if (is_keyword(peek(), "into")) return unsupported("SELECT INTO", peek().pos);
        if (!accept_keyword("from")) return expected(peek(), "FROM");
        auto src = parse_source();
        if (!src) return src.error();
        s.from = std::move(*src);
        if (peek().kind == tok::punct && peek().text == ",")
            return unsupported("several measurements in FROM", peek().pos);
        auto w = optional_where();
        if (!w) return w.error();
        s.where = std::move(*w);
        if (accept_keyword("group")) {
            if (!accept_keyword("by")) return expected(peek(), "BY");
            for (;;) {
                token d = peek(true);
                if (is_keyword(d, "time") && scan_after(d).kind == tok::punct &&
                    scan_after(d).text == "(") {
                    next();
                    next();
                    token iv = next();
                    if (iv.kind != tok::duration) return expected(iv, "duration");
                    auto ns = duration(iv);
                    if (!ns) return ns.error();
                    if (*ns <= 0)
                        return invalid("GROUP BY time() needs an interval above zero", iv.pos);
                    if (s.interval) return invalid("GROUP BY time() given twice", d.pos);
                    s.interval = *ns;
                    if (peek().kind == tok::punct && peek().text == ",")
                        return unsupported("an offset in GROUP BY time()", peek().pos);
                    if (!accept_punct(")")) return expected(peek(), ")");
                } else if (d.kind == tok::punct && d.text == "*") {
                    next();
                    s.group_all = true;
                } else if (d.kind == tok::regex) {
                    return unsupported("GROUP BY /regex/", d.pos);
                } else {
                    auto tag = identifier("time(), identifier, *");
                    if (!tag) return tag.error();
                    auto cast = optional_cast();
                    if (!cast) return cast.error();
                    if (std::find(s.group_tags.begin(), s.group_tags.end(), *tag) ==
                        s.group_tags.end())
                        s.group_tags.push_back(*tag);
                }
                if (!accept_punct(",")) break;
            }
        }
        if (accept_keyword("fill")) {
            if (!accept_punct("(")) return expected(peek(), "(");
            token f = next();
            bool negative = false;
            if (f.kind == tok::punct && f.text == "-") {
                negative = true;
                f = next();
            }
            if (is_keyword(f, "null") && !negative) {
                s.fill = fill_kind::null;
            } else if (is_keyword(f, "none") && !negative) {
                s.fill = fill_kind::none;
            } else if (is_keyword(f, "previous") && !negative) {
                s.fill = fill_kind::previous;
            } else if (is_keyword(f, "linear") && !negative) {
                s.fill = fill_kind::linear;
            } else if (f.kind == tok::number) {
                s.fill = fill_kind::number;
                std::from_chars(f.text.data(), f.text.data() + f.text.size(), s.fill_value);
                if (negative) s.fill_value = -s.fill_value;
            } else {
                return expected(f, "null, none, previous, linear, number");
            }
            s.fill_given = true;
            if (!accept_punct(")")) return expected(peek(), ")");
        }
        if (accept_keyword("order")) {
            if (!accept_keyword("by")) return expected(peek(), "BY");
            token t = next();
            if (!is_keyword(t, "time") && !(t.kind == tok::quoted_ident && t.text == "time"))
                return unsupported("ORDER BY " + t.raw + " (only ORDER BY time)", t.pos);
            if (accept_keyword("desc"))
                s.descending = true;
            else
                accept_keyword("asc");
        }
        for (auto [word, target] : {std::pair{"limit", &s.limit},
                                    {"offset", &s.offset},
                                    {"slimit", &s.slimit},
                                    {"soffset", &s.soffset}}) {
            if (accept_keyword(word)) {
                auto n = integer("integer");
                if (!n) return n.error();
                *target = *n;
            }
        }
        if (accept_keyword("tz")) {
            if (!accept_punct("(")) return expected(peek(), "(");
            token zone = next();
            if (zone.kind != tok::string) return expected(zone, "string");
            if (zone.text != "UTC" && zone.text != "Etc/UTC" && zone.text != "Z")
                return unsupported("tz('" + zone.text + "'): times are answered in UTC", zone.pos);
            if (!accept_punct(")")) return expected(peek(), ")");
        }
        // A function beside a raw field, or no function while grouping by time, cannot be
        // answered as InfluxDB would: refuse rather than guess.
        bool any_raw = false, any_fn = false;
        for (const auto& f : s.fields)
            (f.fn == function::raw ? any_raw : any_fn) = true;
        if (any_raw && any_fn)
            return make_error("invalid_argument",
                              "mixing aggregate and non-aggregate queries is not supported");
        if (any_raw && s.interval)
            return make_error("invalid_argument",
                              "GROUP BY requires at least one aggregate function");
        return statement(std::move(s));
    }

    result<std::optional<source>> optional_from() {
        if (!accept_keyword("from")) return std::optional<source>{};
        auto s = parse_source();
        if (!s) return s.error();
        return std::optional<source>(std::move(*s));
    }

    status optional_on() {
        if (!accept_keyword("on")) return {};
        auto db = identifier("database name");
        if (!db) return db.error();
        return {};
    }

    status limits(show_statement& s) {
        for (auto [word, target] : {std::pair{"limit", &s.limit}, {"offset", &s.offset}}) {
            if (accept_keyword(word)) {
                auto n = integer("integer");
                if (!n) return n.error();
                *target = *n;
            }
        }
        return {};
    }

    result<statement> parse_show() {
        show_statement s;
        token what = next();
        auto finish = [&]() -> result<statement> { return statement(std::move(s)); };
        if (is_keyword(what, "databases")) {
            s.kind = show_kind::databases;
            return finish();
        }
        if (is_keyword(what, "retention")) {
            if (!accept_keyword("policies")) return expected(peek(), "POLICIES");
            s.kind = show_kind::retention_policies;
            if (auto st = optional_on(); !st) return st.error();
            return finish();
        }
        if (is_keyword(what, "measurements")) {
            s.kind = show_kind::measurements;
            if (auto st = optional_on(); !st) return st.error();
            if (accept_keyword("with")) {
                if (!accept_keyword("measurement")) return expected(peek(), "MEASUREMENT");
                token op = next();
                source filter;
                if (op.kind == tok::punct && op.text == "=~") {
                    token re = next(true);
                    if (re.kind != tok::regex) return expected(re, "regex");
                    auto compiled = compile(re);
                    if (!compiled) return compiled.error();
                    filter.pattern = std::move(*compiled);
                } else if (op.kind == tok::punct && op.text == "=") {
                    auto name = identifier("measurement name");
                    if (!name) return name.error();
                    filter.measurement = *name;
                } else {
                    return expected(op, "=, =~");
                }
                s.measurement_filter = std::move(filter);
            }
            auto w = optional_where();
            if (!w) return w.error();
            s.where = std::move(*w);
            if (auto st = limits(s); !st) return st.error();
            return finish();
        }
        if (is_keyword(what, "series")) {
            s.kind = show_kind::series;
            if (auto st = optional_on(); !st) return st.error();
            auto from = optional_from();
            if (!from) return from.error();
            s.from = std::move(*from);
            auto w = optional_where();
            if (!w) return w.error();
            s.where = std::move(*w);
            if (auto st = limits(s); !st) return st.error();
            return finish();
        }
        if (is_keyword(what, "tag") || is_keyword(what, "field")) {
            const bool tag = is_keyword(what, "tag");
            token second = next();
            if (is_keyword(second, "keys")) {
                s.kind = tag ? show_kind::tag_keys : show_kind::field_keys;
            } else if (tag && is_keyword(second, "values")) {
                s.kind = show_kind::tag_values;
            } else {
                return expected(second, tag ? "KEYS, VALUES" : "KEYS");
            }
            if (auto st = optional_on(); !st) return st.error();
            auto from = optional_from();
            if (!from) return from.error();
            s.from = std::move(*from);
            if (s.kind == show_kind::tag_values) {
                if (!accept_keyword("with")) return expected(peek(), "WITH");
                if (!accept_keyword("key")) return expected(peek(), "KEY");
                token op = next();
                if (is_keyword(op, "in")) {
                    s.key_op = "IN";
                    if (!accept_punct("(")) return expected(peek(), "(");
                    for (;;) {
                        auto key = identifier("tag key");
                        if (!key) return key.error();
                        s.keys.push_back(*key);
                        if (!accept_punct(",")) break;
                    }
                    if (!accept_punct(")")) return expected(peek(), ")");
                } else if (op.kind == tok::punct && (op.text == "=~" || op.text == "!~")) {
                    s.key_op = op.text;
                    token re = next(true);
                    if (re.kind != tok::regex) return expected(re, "regex");
                    auto compiled = compile(re);
                    if (!compiled) return compiled.error();
                    s.key_pattern = std::move(*compiled);
                } else if (op.kind == tok::punct &&
                           (op.text == "=" || op.text == "!=" || op.text == "<>")) {
                    s.key_op = op.text == "<>" ? "!=" : op.text;
                    auto key = identifier("tag key");
                    if (!key) return key.error();
                    s.keys.push_back(*key);
                } else {
                    return expected(op, "=, !=, =~, !~, IN");
                }
            }
            if (s.kind != show_kind::field_keys) {
                auto w = optional_where();
                if (!w) return w.error();
                s.where = std::move(*w);
            }
            if (auto st = limits(s); !st) return st.error();
            return finish();
        }
        if (what.kind == tok::ident) {
            std::string name = what.text;
            for (auto& ch : name)
                ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
            return unsupported("SHOW " + name, what.pos);
        }
        return expected(what, "DATABASES, MEASUREMENTS, TAG, FIELD, SERIES, RETENTION");
    }

    result<statement> one_statement() {
        token t = next();
        if (is_keyword(t, "select")) return parse_select();
        if (is_keyword(t, "show")) return parse_show();
        static constexpr std::string_view other[] = {"create", "drop", "delete",  "alter", "grant",
                                                     "revoke", "kill", "explain", "set"};
        for (auto word : other)
            if (is_keyword(t, word)) {
                std::string name(word);
                for (auto& ch : name)
                    ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
                return unsupported(name + " statements (Clisonix answers SELECT and SHOW)", t.pos);
            }
        return expected(t, "SELECT, SHOW");
    }
};

}  // namespace

result<std::vector<statement>> parse(std::string_view text) {
    return parser(text).statements();
}

}  // namespace clisonix::influxql
