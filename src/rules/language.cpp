// The rule language: a hand-written lexer and recursive-descent parser, and the evaluator.
//
//   condition  := "no" "data" ["from" metric] "for" duration
//               | metric ("rises" | "falls") "more" "than" number "per" unit [hold]
//               | "crosses" "(" metric "," ["above" | "below"] number ")" "within" duration
//                 [every]
//               | expr [hold] [every]          (every: only when expr uses forecast())
//   hold       := "for" (duration | integer "points")
//   every      := "every" duration             (how often a rule on the forecast is evaluated)
//   expr       := and ("or" and)*
//   and        := not ("and" not)*
//   not        := "not" not | compare
//   compare    := sum [("<" | "<=" | ">" | ">=" | "==" | "!=") sum | "outside" num ".." num]
//   sum        := product (("+" | "-") product)*
//   product    := unary (("*" | "/") unary)*
//   unary      := "-" unary | primary
//   primary    := number | metric | "(" expr ")" | abs(expr) | min(expr, expr...)
//               | max(expr, expr...) | mean(metric, duration) | anomaly(metric)
//               | health()   (the device's machine-health score, the series `health`)
//               | forecast(metric, duration)   (the point forecast that far ahead)
#include "rules/language.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>

namespace clisonix::rules::detail {

int32_t symbols::slot_of(std::string_view metric) {
    for (size_t i = 0; i < metrics.size(); ++i)
        if (metrics[i] == metric) return static_cast<int32_t>(i);
    metrics.emplace_back(metric);
    return static_cast<int32_t>(metrics.size() - 1);
}

bool on_forecast(const condition& c, const symbols& syms) {
    return c.what == kind::crosses || !syms.forecasts.empty();
}

int64_t scheduled_interval_ms(const condition& c, const symbols& syms) {
    if (c.every_ms > 0) return c.every_ms;
    int64_t horizon = c.what == kind::crosses ? c.within_ms : 0;
    for (const auto& f : syms.forecasts)
        horizon = std::max(horizon, f.horizon_ms);
    // A forecast changes little within a tenth of its horizon; the bounds keep a 1-minute
    // horizon from costing a forecast per second and a 7-day one from going stale for hours.
    return std::clamp<int64_t>(horizon / 10, 10'000, 300'000);
}

std::string format_number(double v) {
    if (std::isnan(v) || std::isinf(v)) return "null";
    char buf[64];
    auto r = std::to_chars(buf, buf + sizeof buf, v);
    return std::string(buf, r.ptr);
}

namespace {

enum class tok : uint8_t { end, number, ident, quoted, punct };

struct token {
    tok type = tok::end;
    std::string_view text;  // ident / punct / quoted (without quotes)
    double number = 0;
    uint32_t pos = 0;
};

bool ident_start(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}
bool ident_char(char c) {
    return ident_start(c) || (c >= '0' && c <= '9');
}
bool digit(char c) {
    return c >= '0' && c <= '9';
}

class parser {
public:
    parser(std::string_view text, symbols& syms) : _text(text), _syms(syms) {}

    status lex() {
        size_t i = 0;
        const size_t n = _text.size();
        while (i < n) {
            char c = _text[i];
            if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
                ++i;
                continue;
            }
            token t;
            t.pos = static_cast<uint32_t>(i);
            if (digit(c) || (c == '.' && i + 1 < n && digit(_text[i + 1]))) {
                size_t j = i;
                while (j < n && digit(_text[j]))
                    ++j;
                if (j < n && _text[j] == '.' && j + 1 < n && digit(_text[j + 1])) {
                    ++j;
                    while (j < n && digit(_text[j]))
                        ++j;
                }
                if (j < n && (_text[j] == 'e' || _text[j] == 'E')) {
                    size_t k = j + 1;
                    if (k < n && (_text[k] == '+' || _text[k] == '-')) ++k;
                    if (k < n && digit(_text[k])) {
                        j = k;
                        while (j < n && digit(_text[j]))
                            ++j;
                    }
                }
                auto r = std::from_chars(_text.data() + i, _text.data() + j, t.number);
                if (r.ec != std::errc() || !std::isfinite(t.number))
                    return fail(t.pos, "the number " + std::string(_text.substr(i, j - i)) +
                                           " is out of range");
                t.type = tok::number;
                t.text = _text.substr(i, j - i);
                i = j;
            } else if (ident_start(c)) {
                size_t j = i + 1;
                // Dots join words ("temperature.anomaly"), never end a name.
                while (j < n && (ident_char(_text[j]) ||
                                 (_text[j] == '.' && j + 1 < n && ident_char(_text[j + 1]))))
                    ++j;
                t.type = tok::ident;
                t.text = _text.substr(i, j - i);
                i = j;
            } else if (c == '"') {
                size_t j = i + 1;
                while (j < n && _text[j] != '"')
                    ++j;
                if (j >= n) return fail(t.pos, "a quoted metric name is not closed with '\"'");
                if (j == i + 1) return fail(t.pos, "a quoted metric name is empty");
                t.type = tok::quoted;
                t.text = _text.substr(i + 1, j - i - 1);
                i = j + 1;
            } else {
                static constexpr std::string_view two[] = {"<=", ">=", "==", "!=", ".."};
                t.type = tok::punct;
                bool found = false;
                for (auto p : two)
                    if (_text.substr(i, 2) == p) {
                        t.text = _text.substr(i, 2);
                        found = true;
                    }
                if (!found) {
                    if (std::string_view("()<>,+-*/").find(c) == std::string_view::npos) {
                        if (c == '=') return fail(t.pos, "unexpected '='; compare with '=='");
                        if (c == '&' || c == '|' || c == '!')
                            return fail(t.pos,
                                        std::string("unexpected '") + c + "'; use and, or, not");
                        return fail(t.pos, std::string("unexpected character '") + c + "'");
                    }
                    t.text = _text.substr(i, 1);
                }
                i += t.text.size();
            }
            _tokens.push_back(t);
        }
        token e;
        e.pos = static_cast<uint32_t>(n);
        _tokens.push_back(e);
        return {};
    }

    result<condition> parse_condition() {
        condition c;
        if (is_word("no") && word_at(1, "data")) {
            c.what = kind::no_data;
            _at += 2;
            if (is_word("from")) {
                ++_at;
                auto m = metric_name("'from'");
                if (!m) return m.error();
                c.no_data_metric = *m;
            }
            if (!is_word("for")) return fail(cur().pos, "expected 'for' and a duration");
            ++_at;
            auto d = duration("'for'");
            if (!d) return d.error();
            c.no_data_ms = *d;
            if (auto st = expect_end(); !st) return st.error();
            return c;
        }
        if ((cur().type == tok::ident || cur().type == tok::quoted) &&
            (word_at(1, "rises") || word_at(1, "falls"))) {
            c.what = kind::rate;
            c.rate_slot = _syms.slot_of(cur().text);
            c.rises = word_at(1, "rises");
            _at += 2;
            if (!is_word("more")) return fail(cur().pos, "expected 'more than'");
            ++_at;
            if (!is_word("than")) return fail(cur().pos, "expected 'than' after 'more'");
            ++_at;
            auto lim = number_after("'than'");
            if (!lim) return lim.error();
            if (*lim < 0) return fail(_tokens[_at - 1].pos, "the rate must not be negative");
            c.limit = *lim;
            if (!is_word("per")) return fail(cur().pos, "expected 'per' and a time unit");
            ++_at;
            auto unit = cur();
            if (unit.type != tok::ident)
                return fail(unit.pos, "expected second, minute or hour after 'per'");
            if (unit.text == "second" || unit.text == "s")
                c.per_ms = 1000;
            else if (unit.text == "minute" || unit.text == "m" || unit.text == "min")
                c.per_ms = 60'000;
            else if (unit.text == "hour" || unit.text == "h")
                c.per_ms = 3'600'000;
            else
                return fail(unit.pos, "expected second, minute or hour after 'per'");
            ++_at;
            if (auto st = hold(c); !st) return st.error();
            if (auto st = expect_end(); !st) return st.error();
            return c;
        }
        if (is_word("crosses") && _tokens[_at + 1].type == tok::punct &&
            _tokens[_at + 1].text == "(")
            return parse_crosses(c);
        auto root = or_expr();
        if (!root) return root.error();
        c.expr.root = *root;
        if (auto st = check_boolean(*root, "the condition"); !st) return st.error();
        if (auto st = hold(c); !st) return st.error();
        if (is_word("every")) {
            if (_syms.forecasts.empty())
                return fail(cur().pos,
                            "'every' is for rules on the forecast (crosses(), forecast()); other "
                            "rules are evaluated on every point");
            if (auto st = every(c); !st) return st.error();
        }
        if (auto st = expect_end(); !st) return st.error();
        c.expr.nodes = std::move(_nodes);
        c.expr.value_node = value_node(c.expr, c.expr.root);
        return c;
    }

    result<expression> parse_expression() {
        expression e;
        auto root = or_expr();
        if (!root) return root.error();
        e.root = *root;
        if (auto st = check_boolean(*root, "the clear condition"); !st) return st.error();
        if (is_word("for"))
            return fail(cur().pos, "a clear condition takes no 'for'; use clear_after");
        if (auto st = expect_end(); !st) return st.error();
        e.nodes = std::move(_nodes);
        e.value_node = value_node(e, e.root);
        return e;
    }

    result<int64_t> parse_duration_only() {
        auto d = duration("the start");
        if (!d) return d.error();
        if (auto st = expect_end(); !st) return st.error();
        return *d;
    }

private:
    // crosses(<metric>, [above|below] <limit>) within <T> [every <T>]
    result<condition> parse_crosses(condition& c) {
        _at += 2;  // "crosses" "("
        auto m = metric_name("'crosses('");
        if (!m) return m.error();
        if (!is_punct(","))
            return fail(cur().pos, "expected ',' and a limit, as in crosses(temperature, 90)");
        ++_at;
        if (is_word("above") || is_word("below")) {
            c.cross_direction = is_word("above") ? direction::above : direction::below;
            ++_at;
        }
        auto lim = number_after(c.cross_direction == direction::either  ? "','"
                                : c.cross_direction == direction::above ? "'above'"
                                                                        : "'below'");
        if (!lim) return lim.error();
        if (!is_punct(")")) return fail(cur().pos, "expected ')' to close crosses(");
        ++_at;
        if (!is_word("within"))
            return fail(
                cur().pos,
                "expected 'within' and a horizon, as in crosses(temperature, 90) within 6h");
        ++_at;
        auto w = horizon("'within'");
        if (!w) return w.error();
        c.what = kind::crosses;
        c.cross_slot = _syms.slot_of(*m);
        c.cross_limit = *lim;
        c.within_ms = *w;
        if (is_word("for"))
            return fail(cur().pos,
                        "a crosses() rule takes no 'for': it fires when the forecast says so");
        if (is_word("every"))
            if (auto st = every(c); !st) return st.error();
        if (auto st = expect_end(); !st) return st.error();
        return c;
    }

    // A forecast horizon: a duration of 1 s to 30 d.
    result<int64_t> horizon(const std::string& after) {
        const uint32_t pos = cur().pos;
        auto d = duration(after);
        if (!d) return d.error();
        if (*d < 1000 || *d > 30LL * 86'400'000)
            return fail(pos, "the horizon must be between 1s and 30d");
        return *d;
    }

    status every(condition& c) {
        ++_at;  // "every"
        const uint32_t pos = cur().pos;
        auto d = duration("'every'");
        if (!d) return d.error();
        if (*d < 1000 || *d > 3'600'000) return fail(pos, "'every' must be between 1s and 1h");
        c.every_ms = *d;
        return {};
    }

    static error fail(uint32_t pos, const std::string& message) {
        return make_error("invalid_argument", "position " + std::to_string(pos) + ": " + message);
    }

    const token& cur() const { return _tokens[_at]; }
    bool is_word(std::string_view w) const { return word_at(0, w); }
    bool word_at(size_t ahead, std::string_view w) const {
        size_t i = _at + ahead;
        return i < _tokens.size() && _tokens[i].type == tok::ident && _tokens[i].text == w;
    }
    bool is_punct(std::string_view p) const { return cur().type == tok::punct && cur().text == p; }

    std::string describe(const token& t) const {
        switch (t.type) {
            case tok::end:
                return "the end";
            case tok::quoted:
                return "\"" + std::string(t.text) + "\"";
            default:
                return "'" + std::string(t.text) + "'";
        }
    }

    status expect_end() {
        if (cur().type == tok::end) return {};
        return fail(cur().pos, "unexpected " + describe(cur()) + " after the condition");
    }

    static bool keyword(std::string_view w) {
        return w == "and" || w == "or" || w == "not" || w == "for" || w == "outside";
    }

    result<std::string> metric_name(const std::string& after) {
        const auto& t = cur();
        if (t.type == tok::quoted || (t.type == tok::ident && !keyword(t.text))) {
            ++_at;
            return std::string(t.text);
        }
        return fail(t.pos, "expected a metric name after " + after);
    }

    result<double> number_after(const std::string& after) {
        bool negative = false;
        uint32_t pos = cur().pos;
        if (is_punct("-")) {
            negative = true;
            ++_at;
        }
        if (cur().type != tok::number) return fail(pos, "expected a number after " + after);
        double v = cur().number;
        ++_at;
        return negative ? -v : v;
    }

    // A number and a unit: "5m", "5 m", "250ms".
    result<int64_t> duration(const std::string& after) {
        const auto& n = cur();
        if (n.type != tok::number) return fail(n.pos, "expected a duration after " + after);
        ++_at;
        const auto& u = cur();
        int64_t scale = 0;
        if (u.type == tok::ident) {
            if (u.text == "ms") scale = 1;
            if (u.text == "s") scale = 1000;
            if (u.text == "m" || u.text == "min") scale = 60'000;
            if (u.text == "h") scale = 3'600'000;
            if (u.text == "d") scale = 86'400'000;
        }
        if (!scale) return fail(u.pos, "expected a time unit (ms, s, m, h, d) after the number");
        ++_at;
        double ms = n.number * static_cast<double>(scale);
        if (ms <= 0 || ms > 366.0 * 86'400'000)
            return fail(n.pos, "the duration must be > 0 and at most 366d");
        return static_cast<int64_t>(ms);
    }

    status hold(condition& c) {
        if (!is_word("for")) return {};
        ++_at;
        const auto& n = cur();
        if (n.type == tok::number && (word_at(1, "points") || word_at(1, "point"))) {
            if (n.number < 1 || n.number != std::floor(n.number) || n.number > 1e9)
                return fail(n.pos, "the number of points must be a whole number >= 1");
            c.hold_points = static_cast<int64_t>(n.number);
            _at += 2;
            return {};
        }
        if (n.type != tok::number)
            return fail(n.pos, "expected a duration or a number of points after 'for'");
        auto d = duration("'for'");
        if (!d) return d.error();
        c.hold_ms = *d;
        return {};
    }

    int32_t add(node n) {
        _nodes.push_back(std::move(n));
        return static_cast<int32_t>(_nodes.size() - 1);
    }

    static bool boolean(op k) {
        switch (k) {
            case op::lt:
            case op::le:
            case op::gt:
            case op::ge:
            case op::eq:
            case op::ne:
            case op::and_:
            case op::or_:
            case op::not_:
            case op::outside:
                return true;
            default:
                return false;
        }
    }

    status check_boolean(int32_t root, const std::string& what) {
        if (boolean(_nodes[root].kind)) return {};
        return fail(_nodes[root].begin, what + " must compare something (e.g. '> 80')");
    }

    static int32_t value_node(const expression& e, int32_t i) {
        const auto& n = e.nodes[i];
        switch (n.kind) {
            case op::lt:
            case op::le:
            case op::gt:
            case op::ge:
            case op::eq:
            case op::ne:
            case op::outside:
                return n.a;
            case op::and_:
            case op::or_:
            case op::not_:
                return value_node(e, n.a);
            default:
                return i;
        }
    }

    uint32_t end_of_previous() const {
        return _at ? _tokens[_at - 1].pos + static_cast<uint32_t>(_tokens[_at - 1].text.size()) +
                         (_tokens[_at - 1].type == tok::quoted ? 2 : 0)
                   : 0;
    }

    int32_t binary(op k, int32_t a, int32_t b) {
        node n;
        n.kind = k;
        n.a = a;
        n.b = b;
        n.begin = _nodes[a].begin;
        n.end = _nodes[b].end;
        return add(std::move(n));
    }

    // Nesting is bounded so that no input can exhaust the stack.
    struct depth_guard {
        int& depth;
        explicit depth_guard(int& d) : depth(d) { ++depth; }
        ~depth_guard() { --depth; }
    };
    static constexpr int max_depth = 64;
    status check_depth() {
        if (_depth > max_depth)
            return fail(cur().pos, "nested deeper than " + std::to_string(max_depth) + " levels");
        return {};
    }

    result<int32_t> or_expr() {
        depth_guard guard(_depth);
        if (auto st = check_depth(); !st) return st.error();
        auto left = and_expr();
        if (!left) return left;
        while (is_word("or")) {
            ++_at;
            auto right = and_expr();
            if (!right) return right;
            left = binary(op::or_, *left, *right);
        }
        return left;
    }

    result<int32_t> and_expr() {
        auto left = not_expr();
        if (!left) return left;
        while (is_word("and")) {
            ++_at;
            auto right = not_expr();
            if (!right) return right;
            left = binary(op::and_, *left, *right);
        }
        return left;
    }

    result<int32_t> not_expr() {
        depth_guard guard(_depth);
        if (auto st = check_depth(); !st) return st.error();
        if (is_word("not")) {
            uint32_t pos = cur().pos;
            ++_at;
            auto inner = not_expr();
            if (!inner) return inner;
            node n;
            n.kind = op::not_;
            n.a = *inner;
            n.begin = pos;
            n.end = _nodes[*inner].end;
            return add(std::move(n));
        }
        return compare();
    }

    result<int32_t> compare() {
        auto left = sum();
        if (!left) return left;
        static constexpr std::pair<std::string_view, op> ops[] = {{"<", op::lt},  {"<=", op::le},
                                                                  {">", op::gt},  {">=", op::ge},
                                                                  {"==", op::eq}, {"!=", op::ne}};
        for (const auto& [text, k] : ops) {
            if (!is_punct(text)) continue;
            std::string after = "'" + std::string(text) + "'";
            ++_at;
            auto right = sum(after);
            if (!right) return right;
            int32_t n = binary(k, *left, *right);
            for (const auto& [t2, k2] : ops)
                if (is_punct(t2))
                    return fail(cur().pos, "comparisons do not chain; join them with 'and'");
            return n;
        }
        if (is_word("outside")) {
            ++_at;
            auto lo = number_after("'outside'");
            if (!lo) return lo.error();
            if (!is_punct(".."))
                return fail(cur().pos, "expected '..' between the bounds of the range");
            ++_at;
            auto hi = number_after("'..'");
            if (!hi) return hi.error();
            if (*hi < *lo)
                return fail(_tokens[_at - 1].pos,
                            "the range's upper bound is below its lower bound");
            node n;
            n.kind = op::outside;
            n.a = *left;
            n.num = *lo;
            n.num2 = *hi;
            n.begin = _nodes[*left].begin;
            n.end = end_of_previous();
            return add(std::move(n));
        }
        return left;
    }

    result<int32_t> sum(const std::string& after = "the start") {
        auto left = product(after);
        if (!left) return left;
        while (is_punct("+") || is_punct("-")) {
            op k = cur().text == "+" ? op::add : op::sub;
            std::string a = "'" + std::string(cur().text) + "'";
            ++_at;
            auto right = product(a);
            if (!right) return right;
            left = binary(k, *left, *right);
        }
        return left;
    }

    result<int32_t> product(const std::string& after) {
        auto left = unary(after);
        if (!left) return left;
        while (is_punct("*") || is_punct("/")) {
            op k = cur().text == "*" ? op::mul : op::div;
            std::string a = "'" + std::string(cur().text) + "'";
            ++_at;
            auto right = unary(a);
            if (!right) return right;
            left = binary(k, *left, *right);
        }
        return left;
    }

    result<int32_t> unary(const std::string& after) {
        depth_guard guard(_depth);
        if (auto st = check_depth(); !st) return st.error();
        if (is_punct("-")) {
            uint32_t pos = cur().pos;
            ++_at;
            auto inner = unary("'-'");
            if (!inner) return inner;
            node n;
            n.kind = op::neg;
            n.a = *inner;
            n.begin = pos;
            n.end = _nodes[*inner].end;
            return add(std::move(n));
        }
        return primary(after);
    }

    result<int32_t> metric_node(std::string_view name, uint32_t begin, uint32_t end) {
        node n;
        n.kind = op::metric;
        n.index = _syms.slot_of(name);
        n.begin = begin;
        n.end = end;
        return add(std::move(n));
    }

    result<int32_t> primary(const std::string& after) {
        const token t = cur();
        if (t.type == tok::number) {
            ++_at;
            node n;
            n.kind = op::number;
            n.num = t.number;
            n.begin = t.pos;
            n.end = t.pos + static_cast<uint32_t>(t.text.size());
            return add(std::move(n));
        }
        if (t.type == tok::quoted) {
            ++_at;
            return metric_node(t.text, t.pos, t.pos + static_cast<uint32_t>(t.text.size()) + 2);
        }
        if (is_punct("(")) {
            ++_at;
            auto inner = or_expr();
            if (!inner) return inner;
            if (!is_punct(")")) return fail(cur().pos, "expected ')'");
            ++_at;
            return inner;
        }
        if (t.type == tok::ident && !keyword(t.text)) {
            ++_at;
            if (!is_punct("("))
                return metric_node(t.text, t.pos, t.pos + static_cast<uint32_t>(t.text.size()));
            return call(t);
        }
        std::string what = after == "the start" ? "a metric, a number or '('"
                                                : "a number, a metric or '(' after " + after;
        if (after != "the start") {
            // "temperature > x80": the one message users see most, keep it plain.
            if (after.size() > 2 &&
                (after[1] == '<' || after[1] == '>' || after[1] == '=' || after[1] == '!'))
                what = "a number after " + after;
        }
        return fail(t.pos, "expected " + what);
    }

    result<int32_t> call(const token& name) {
        uint32_t open_pos = cur().pos;
        ++_at;  // '('
        auto close = [&](node& n) -> status {
            if (!is_punct(")"))
                return fail(cur().pos, "expected ')' to close " + std::string(name.text) + "(");
            n.end = cur().pos + 1;
            ++_at;
            return {};
        };
        node n;
        n.begin = name.pos;
        if (name.text == "abs") {
            auto a = or_expr();
            if (!a) return a;
            n.kind = op::abs;
            n.a = *a;
            if (auto st = close(n); !st) return st.error();
            return add(std::move(n));
        }
        if (name.text == "min" || name.text == "max") {
            n.kind = name.text == "min" ? op::min : op::max;
            for (;;) {
                auto a = or_expr();
                if (!a) return a;
                n.args.push_back(*a);
                if (!is_punct(",")) break;
                ++_at;
            }
            if (n.args.size() < 2)
                return fail(cur().pos, std::string(name.text) + "() takes two or more values");
            if (auto st = close(n); !st) return st.error();
            return add(std::move(n));
        }
        if (name.text == "mean") {
            auto m = metric_name("'mean('");
            if (!m) return m.error();
            if (!is_punct(","))
                return fail(cur().pos, "expected ',' and a window, as in mean(temperature, 5m)");
            ++_at;
            auto w = duration("','");
            if (!w) return w.error();
            n.kind = op::mean;
            n.index = static_cast<int32_t>(_syms.means.size());
            _syms.means.push_back({_syms.slot_of(*m), *w});
            if (auto st = close(n); !st) return st.error();
            return add(std::move(n));
        }
        if (name.text == "anomaly") {
            auto m = metric_name("'anomaly('");
            if (!m) return m.error();
            n.kind = op::metric;
            n.index = _syms.slot_of(*m + ".anomaly");
            if (auto st = close(n); !st) return st.error();
            return add(std::move(n));
        }
        if (name.text == "health") {
            // The device's machine health as a whole: no argument, one series per device.
            n.kind = op::metric;
            n.index = _syms.slot_of("health");
            _syms.uses_health = true;
            if (auto st = close(n); !st) return st.error();
            return add(std::move(n));
        }
        if (name.text == "forecast") {
            auto m = metric_name("'forecast('");
            if (!m) return m.error();
            if (!is_punct(","))
                return fail(cur().pos,
                            "expected ',' and a horizon, as in forecast(temperature, 2h)");
            ++_at;
            auto h = horizon("','");
            if (!h) return h.error();
            n.kind = op::forecast;
            n.index = static_cast<int32_t>(_syms.forecasts.size());
            _syms.forecasts.push_back({_syms.slot_of(*m), *h});
            if (auto st = close(n); !st) return st.error();
            return add(std::move(n));
        }
        if (name.text == "crosses")
            return fail(name.pos,
                        "crosses() is a condition of its own, as in crosses(temperature, 90) "
                        "within 6h; combine forecast(temperature, 6h) with others instead");
        (void)open_pos;
        return fail(name.pos, "unknown function '" + std::string(name.text) +
                                  "'; known: abs, min, max, mean, anomaly, health, forecast");
    }

    std::string_view _text;
    symbols& _syms;
    std::vector<token> _tokens;
    size_t _at = 0;
    std::vector<node> _nodes;
    int _depth = 0;
};

}  // namespace

result<condition> parse_condition(std::string_view text, symbols& syms) {
    if (text.size() > 4096)
        return make_error("invalid_argument",
                          "position 4096: the condition is longer than 4096 characters");
    parser p(text, syms);
    if (auto st = p.lex(); !st) return st.error();
    return p.parse_condition();
}

result<expression> parse_expression(std::string_view text, symbols& syms) {
    if (text.size() > 4096)
        return make_error("invalid_argument",
                          "position 4096: the condition is longer than 4096 characters");
    parser p(text, syms);
    if (auto st = p.lex(); !st) return st.error();
    return p.parse_expression();
}

result<int64_t> parse_duration(std::string_view text) {
    symbols syms;
    parser p(text, syms);
    if (auto st = p.lex(); !st) return st.error();
    return p.parse_duration_only();
}

double evaluate(const expression& e, int32_t i, const eval_context& ctx) {
    const node& n = e.nodes[static_cast<size_t>(i)];
    switch (n.kind) {
        case op::number:
            return n.num;
        case op::metric:
            return ctx.values[n.index];
        case op::mean:
            return ctx.means[n.index];
        case op::forecast:
            return ctx.forecasts ? ctx.forecasts[n.index]
                                 : std::numeric_limits<double>::quiet_NaN();
        case op::neg:
            return -evaluate(e, n.a, ctx);
        case op::not_:
            return evaluate(e, n.a, ctx) != 0 ? 0 : 1;
        case op::add:
            return evaluate(e, n.a, ctx) + evaluate(e, n.b, ctx);
        case op::sub:
            return evaluate(e, n.a, ctx) - evaluate(e, n.b, ctx);
        case op::mul:
            return evaluate(e, n.a, ctx) * evaluate(e, n.b, ctx);
        case op::div: {
            double d = evaluate(e, n.b, ctx);
            // x / 0 has no value: every comparison with NaN is false, so nothing fires on it.
            return d == 0 ? std::numeric_limits<double>::quiet_NaN() : evaluate(e, n.a, ctx) / d;
        }
        case op::lt:
            return evaluate(e, n.a, ctx) < evaluate(e, n.b, ctx);
        case op::le:
            return evaluate(e, n.a, ctx) <= evaluate(e, n.b, ctx);
        case op::gt:
            return evaluate(e, n.a, ctx) > evaluate(e, n.b, ctx);
        case op::ge:
            return evaluate(e, n.a, ctx) >= evaluate(e, n.b, ctx);
        case op::eq:
            return evaluate(e, n.a, ctx) == evaluate(e, n.b, ctx);
        case op::ne:
            return evaluate(e, n.a, ctx) != evaluate(e, n.b, ctx);
        case op::and_:
            return evaluate(e, n.a, ctx) != 0 && evaluate(e, n.b, ctx) != 0;
        case op::or_:
            return evaluate(e, n.a, ctx) != 0 || evaluate(e, n.b, ctx) != 0;
        case op::outside: {
            double v = evaluate(e, n.a, ctx);
            return v < n.num || v > n.num2;
        }
        case op::abs:
            return std::fabs(evaluate(e, n.a, ctx));
        case op::min:
        case op::max: {
            double r = evaluate(e, n.args[0], ctx);
            for (size_t k = 1; k < n.args.size(); ++k) {
                double v = evaluate(e, n.args[k], ctx);
                r = n.kind == op::min ? std::min(r, v) : std::max(r, v);
            }
            return r;
        }
    }
    return 0;
}

}  // namespace clisonix::rules::detail
