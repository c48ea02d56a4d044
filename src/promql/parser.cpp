// PromQL text to an expression tree: a lexer and a precedence-climbing parser that checks
// types as Prometheus does and refuses, by name, what the evaluator does not implement.
#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <cmath>
#include <limits>

#include "promql/ast.h"
#include "promql/functions.h"

namespace clisonix::promql {

bool label_matcher::matches(std::string_view v) const {
    switch (kind) {
        case op::equal:
            return v == value;
        case op::not_equal:
            return v != value;
        case op::regex:
            return std::regex_match(v.begin(), v.end(), *pattern);
        case op::not_regex:
            return !std::regex_match(v.begin(), v.end(), *pattern);
    }
    return false;
}

bool is_comparison(binary_op op) {
    return op == binary_op::eq || op == binary_op::ne || op == binary_op::gt ||
           op == binary_op::lt || op == binary_op::ge || op == binary_op::le;
}

bool is_set_op(binary_op op) {
    return op == binary_op::land || op == binary_op::lor || op == binary_op::lunless;
}

namespace {

enum class tok {
    end,
    ident,
    number,
    duration,
    string,
    lparen,
    rparen,
    lbrace,
    rbrace,
    lbracket,
    rbracket,
    comma,
    colon,
    at,
    assign,
    neq,
    regex_eq,
    regex_ne,
    add,
    sub,
    mul,
    div,
    mod,
    pow,
    eqeq,
    gt,
    lt,
    ge,
    le,
};

struct token {
    tok kind = tok::end;
    std::string text;  // ident, string (unescaped), number and duration as written
    size_t pos = 0;
};

struct parse_failure {
    size_t pos;
    std::string message;
    bool unsupported = false;
};

bool is_ident_start(char c) {
    return std::isalpha(static_cast<unsigned char>(c)) || c == '_' || c == ':';
}
bool is_ident_char(char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == ':';
}

std::string describe(const token& t) {
    switch (t.kind) {
        case tok::end:
            return "end of input";
        case tok::ident:
            return "identifier \"" + t.text + "\"";
        case tok::number:
            return "number \"" + t.text + "\"";
        case tok::duration:
            return "duration \"" + t.text + "\"";
        case tok::string:
            return "string";
        default:
            return "\"" + t.text + "\"";
    }
}

class lexer {
public:
    explicit lexer(std::string_view s) : _s(s) {}

    std::vector<token> run() {
        std::vector<token> out;
        for (;;) {
            skip_space();
            token t;
            t.pos = _i;
            if (_i >= _s.size()) {
                out.push_back(t);
                return out;
            }
            char c = _s[_i];
            if (std::isdigit(static_cast<unsigned char>(c)) ||
                (c == '.' && _i + 1 < _s.size() &&
                 std::isdigit(static_cast<unsigned char>(_s[_i + 1])))) {
                read_number(t);
            } else if (is_ident_start(c)) {
                size_t start = _i;
                while (_i < _s.size() && is_ident_char(_s[_i]))
                    ++_i;
                t.kind = tok::ident;
                t.text = std::string(_s.substr(start, _i - start));
            } else if (c == '"' || c == '\'' || c == '`') {
                read_string(t);
            } else {
                read_operator(t);
            }
            out.push_back(std::move(t));
        }
    }

private:
    void skip_space() {
        while (_i < _s.size()) {
            if (std::isspace(static_cast<unsigned char>(_s[_i]))) {
                ++_i;
            } else if (_s[_i] == '#') {  // a comment to the end of the line
                while (_i < _s.size() && _s[_i] != '\n')
                    ++_i;
            } else {
                return;
            }
        }
    }

    void read_number(token& t) {
        size_t start = _i;
        if (_s.substr(_i, 2) == "0x" || _s.substr(_i, 2) == "0X") {
            _i += 2;
            while (_i < _s.size() && std::isxdigit(static_cast<unsigned char>(_s[_i])))
                ++_i;
        } else {
            while (_i < _s.size() &&
                   (std::isdigit(static_cast<unsigned char>(_s[_i])) || _s[_i] == '.'))
                ++_i;
            if (_i < _s.size() && (_s[_i] == 'e' || _s[_i] == 'E')) {
                size_t save = _i++;
                if (_i < _s.size() && (_s[_i] == '+' || _s[_i] == '-')) ++_i;
                if (_i < _s.size() && std::isdigit(static_cast<unsigned char>(_s[_i]))) {
                    while (_i < _s.size() && std::isdigit(static_cast<unsigned char>(_s[_i])))
                        ++_i;
                } else {
                    _i = save;
                }
            }
        }
        t.kind = tok::number;
        // A unit right after the digits makes a duration: 5m, 1h30m, 250ms.
        if (_i < _s.size() && std::string_view("smhdwy").find(_s[_i]) != std::string_view::npos) {
            while (_i < _s.size() && (std::isalnum(static_cast<unsigned char>(_s[_i]))))
                ++_i;
            t.kind = tok::duration;
        } else if (_i < _s.size() && is_ident_char(_s[_i])) {
            throw parse_failure{start, "bad number or duration syntax: \"" +
                                           std::string(_s.substr(start, _i - start + 1)) + "\""};
        }
        t.text = std::string(_s.substr(start, _i - start));
    }

    void read_string(token& t) {
        char quote = _s[_i++];
        std::string value;
        for (;;) {
            if (_i >= _s.size()) throw parse_failure{t.pos, "unterminated quoted string"};
            char c = _s[_i++];
            if (c == quote) break;
            if (c == '\\' && quote != '`') {
                if (_i >= _s.size()) throw parse_failure{t.pos, "unterminated quoted string"};
                char e = _s[_i++];
                switch (e) {
                    case 'n':
                        value.push_back('\n');
                        break;
                    case 't':
                        value.push_back('\t');
                        break;
                    case 'r':
                        value.push_back('\r');
                        break;
                    case '\\':
                    case '"':
                    case '\'':
                        value.push_back(e);
                        break;
                    default:
                        // Regex escapes such as `\.` or `\d` pass through for the matcher.
                        value.push_back('\\');
                        value.push_back(e);
                }
                continue;
            }
            value.push_back(c);
        }
        t.kind = tok::string;
        t.text = std::move(value);
    }

    void read_operator(token& t) {
        struct op_text {
            std::string_view text;
            tok kind;
        };
        static constexpr std::array<op_text, 26> ops{{
            {"!=", tok::neq},   {"=~", tok::regex_eq}, {"!~", tok::regex_ne}, {"==", tok::eqeq},
            {">=", tok::ge},    {"<=", tok::le},       {"(", tok::lparen},    {")", tok::rparen},
            {"{", tok::lbrace}, {"}", tok::rbrace},    {"[", tok::lbracket},  {"]", tok::rbracket},
            {",", tok::comma},  {":", tok::colon},     {"@", tok::at},        {"=", tok::assign},
            {"+", tok::add},    {"-", tok::sub},       {"*", tok::mul},       {"/", tok::div},
            {"%", tok::mod},    {"^", tok::pow},       {">", tok::gt},        {"<", tok::lt},
            {"", tok::end},     {"", tok::end},
        }};
        for (const auto& op : ops) {
            if (op.text.empty()) break;
            if (_s.substr(_i, op.text.size()) == op.text) {
                t.kind = op.kind;
                t.text = std::string(op.text);
                _i += op.text.size();
                return;
            }
        }
        throw parse_failure{_i, "unexpected character: '" + std::string(1, _s[_i]) + "'"};
    }

    std::string_view _s;
    size_t _i = 0;
};

// "5m", "1h30m", "250ms" or seconds as a number ("300", "1.5") to milliseconds.
std::optional<int64_t> duration_ms(const token& t) {
    if (t.kind == tok::number) {
        double seconds = 0;
        auto r = std::from_chars(t.text.data(), t.text.data() + t.text.size(), seconds);
        if (r.ec != std::errc() || r.ptr != t.text.data() + t.text.size()) return std::nullopt;
        return static_cast<int64_t>(std::llround(seconds * 1000));
    }
    std::string_view s = t.text;
    int64_t total = 0;
    size_t i = 0;
    int last_rank = 100;
    while (i < s.size()) {
        size_t start = i;
        while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i])))
            ++i;
        if (i == start) return std::nullopt;
        int64_t n = 0;
        std::from_chars(s.data() + start, s.data() + i, n);
        size_t unit_start = i;
        while (i < s.size() && std::isalpha(static_cast<unsigned char>(s[i])))
            ++i;
        std::string_view unit = s.substr(unit_start, i - unit_start);
        struct unit_ms {
            std::string_view name;
            int64_t ms;
            int rank;
        };
        static constexpr unit_ms units[] = {
            {"y", 365LL * 86400000, 7},
            {"w", 7LL * 86400000, 6},
            {"d", 86400000, 5},
            {"h", 3600000, 4},
            {"m", 60000, 3},
            {"s", 1000, 2},
            {"ms", 1, 1},
        };
        const unit_ms* found = nullptr;
        for (const auto& u : units)
            if (u.name == unit) found = &u;
        // Units must come largest first, each at most once, as in Prometheus.
        if (!found || found->rank >= last_rank) return std::nullopt;
        last_rank = found->rank;
        total += n * found->ms;
    }
    return total;
}

int precedence(tok kind, const token& t) {
    switch (kind) {
        case tok::pow:
            return 6;
        case tok::mul:
        case tok::div:
        case tok::mod:
            return 5;
        case tok::add:
        case tok::sub:
            return 4;
        case tok::eqeq:
        case tok::neq:
        case tok::gt:
        case tok::lt:
        case tok::ge:
        case tok::le:
            return 3;
        case tok::ident:
            if (t.text == "and" || t.text == "unless") return 2;
            if (t.text == "or") return 1;
            if (t.text == "atan2") return 5;
            return -1;
        default:
            return -1;
    }
}

std::optional<aggregation> aggregation_named(std::string_view name) {
    static constexpr std::pair<std::string_view, aggregation> table[] = {
        {"sum", aggregation::sum},           {"avg", aggregation::avg},
        {"min", aggregation::min},           {"max", aggregation::max},
        {"count", aggregation::count},       {"group", aggregation::group},
        {"stddev", aggregation::stddev},     {"stdvar", aggregation::stdvar},
        {"topk", aggregation::topk},         {"bottomk", aggregation::bottomk},
        {"quantile", aggregation::quantile},
    };
    for (const auto& [n, a] : table)
        if (n == name) return a;
    return std::nullopt;
}

bool is_unsupported_aggregation(std::string_view name) {
    return name == "count_values" || name == "limitk" || name == "limit_ratio";
}

std::string_view kind_name(value_kind k) {
    switch (k) {
        case value_kind::scalar:
            return "scalar";
        case value_kind::instant_vector:
            return "instant vector";
        case value_kind::range_vector:
            return "range vector";
    }
    return "";
}

using node = std::shared_ptr<expr>;

class parser {
public:
    explicit parser(std::vector<token> tokens) : _t(std::move(tokens)) {}

    node run() {
        node e = parse_binary(0);
        if (peek().kind != tok::end)
            throw parse_failure{peek().pos, "unexpected " + describe(peek())};
        return e;
    }

private:
    const token& peek(size_t ahead = 0) const { return _t[std::min(_i + ahead, _t.size() - 1)]; }
    const token& next() {
        const token& t = _t[_i];
        if (_i + 1 < _t.size()) ++_i;
        return t;
    }
    const token& expect(tok kind, std::string_view what) {
        if (peek().kind != kind)
            throw parse_failure{
                peek().pos, "unexpected " + describe(peek()) + ", expected " + std::string(what)};
        return next();
    }
    bool is_keyword(std::string_view word) const {
        return peek().kind == tok::ident && peek().text == word;
    }

    node parse_binary(int min_prec) {
        node lhs = parse_unary();
        for (;;) {
            const token& op_tok = peek();
            int prec = precedence(op_tok.kind, op_tok);
            if (prec < 0 || prec < min_prec) return lhs;
            size_t op_pos = op_tok.pos;
            token op = next();
            auto e = std::make_shared<expr>();
            e->node = expr::type::binary;
            if (op.kind == tok::ident && op.text == "atan2")
                throw parse_failure{op_pos,
                                    "unsupported PromQL: operator \"atan2\" is not "
                                    "supported",
                                    true};
            e->op = to_op(op);
            if (is_keyword("bool")) {
                if (!is_comparison(e->op))
                    throw parse_failure{peek().pos,
                                        "bool modifier can only be used on comparison operators"};
                next();
                e->return_bool = true;
            }
            if (is_keyword("on") || is_keyword("ignoring")) {
                e->has_on = next().text == "on";
                e->matching = parse_label_list();
            }
            if (is_keyword("group_left") || is_keyword("group_right"))
                throw parse_failure{peek().pos,
                                    "unsupported PromQL: " + peek().text +
                                        " (many-to-one matching) is not supported",
                                    true};
            // ^ is right-associative; every other operator left-associative.
            node rhs = parse_binary(op.kind == tok::pow ? prec : prec + 1);
            e->args = {lhs, rhs};
            type_binary(*e, op_pos);
            lhs = e;
        }
    }

    static binary_op to_op(const token& t) {
        switch (t.kind) {
            case tok::add:
                return binary_op::add;
            case tok::sub:
                return binary_op::sub;
            case tok::mul:
                return binary_op::mul;
            case tok::div:
                return binary_op::div;
            case tok::mod:
                return binary_op::mod;
            case tok::pow:
                return binary_op::pow;
            case tok::eqeq:
                return binary_op::eq;
            case tok::neq:
                return binary_op::ne;
            case tok::gt:
                return binary_op::gt;
            case tok::lt:
                return binary_op::lt;
            case tok::ge:
                return binary_op::ge;
            case tok::le:
                return binary_op::le;
            default:
                break;
        }
        if (t.text == "and") return binary_op::land;
        if (t.text == "or") return binary_op::lor;
        return binary_op::lunless;
    }

    void type_binary(expr& e, size_t pos) {
        value_kind l = e.args[0]->kind, r = e.args[1]->kind;
        if (l == value_kind::range_vector || r == value_kind::range_vector)
            throw parse_failure{pos,
                                "binary expression must contain only scalar and instant vector "
                                "types"};
        bool both_scalar = l == value_kind::scalar && r == value_kind::scalar;
        if (is_set_op(e.op) && (l == value_kind::scalar || r == value_kind::scalar))
            throw parse_failure{pos, "set operator not allowed in binary scalar expression"};
        if (both_scalar && is_comparison(e.op) && !e.return_bool)
            throw parse_failure{pos, "comparisons between scalars must use BOOL modifier"};
        if (!e.matching.empty() || e.has_on) {
            if (l != value_kind::instant_vector || r != value_kind::instant_vector)
                throw parse_failure{pos, "vector matching only allowed between instant vectors"};
        }
        e.kind = both_scalar ? value_kind::scalar : value_kind::instant_vector;
    }

    node parse_unary() {
        if (peek().kind == tok::sub || peek().kind == tok::add) {
            size_t pos = peek().pos;
            bool minus = next().kind == tok::sub;
            // Unary minus binds more loosely than ^: -2^2 is -(2^2).
            node operand = parse_binary(6);
            if (operand->kind == value_kind::range_vector)
                throw parse_failure{pos,
                                    "unary expression only allowed on expressions of type "
                                    "scalar or instant vector"};
            if (!minus) return operand;
            if (operand->node == expr::type::number) {
                auto e = std::make_shared<expr>(*operand);
                e->number = -e->number;
                return e;
            }
            auto e = std::make_shared<expr>();
            e->node = expr::type::unary_minus;
            e->kind = operand->kind;
            e->args = {operand};
            return e;
        }
        return parse_postfix(parse_primary());
    }

    node parse_postfix(node e) {
        for (;;) {
            if (peek().kind == tok::lbracket) {
                size_t pos = peek().pos;
                next();
                const token& d = next();
                if (d.kind != tok::duration && d.kind != tok::number)
                    throw parse_failure{
                        d.pos, "unexpected " + describe(d) + ", expected a duration in the range"};
                // `[1h:1m]`: the lexer may read `:1m` as a name (names may hold `:`).
                if (peek().kind == tok::colon ||
                    (peek().kind == tok::ident && peek().text.front() == ':'))
                    throw parse_failure{pos, "unsupported PromQL: subqueries are not supported",
                                        true};
                auto ms = duration_ms(d);
                if (!ms || *ms <= 0)
                    throw parse_failure{d.pos, "invalid range duration \"" + d.text + "\""};
                expect(tok::rbracket, "\"]\"");
                if (e->node != expr::type::selector || e->sel.range_ms != 0 ||
                    e->sel.offset_ms != 0)
                    throw parse_failure{pos, "ranges only allowed for vector selectors"};
                e->sel.range_ms = *ms;
                e->kind = value_kind::range_vector;
            } else if (is_keyword("offset")) {
                size_t pos = peek().pos;
                next();
                bool negative = false;
                if (peek().kind == tok::sub) {
                    next();
                    negative = true;
                }
                const token& d = next();
                auto ms = duration_ms(d);
                if ((d.kind != tok::duration && d.kind != tok::number) || !ms)
                    throw parse_failure{
                        d.pos, "unexpected " + describe(d) + ", expected a duration after offset"};
                if (e->node != expr::type::selector)
                    throw parse_failure{pos,
                                        "unsupported PromQL: offset is supported on "
                                        "selectors only, not on other expressions",
                                        true};
                if (e->sel.offset_ms != 0)
                    throw parse_failure{pos, "offset may not be set multiple times"};
                e->sel.offset_ms = negative ? -*ms : *ms;
            } else if (peek().kind == tok::at) {
                throw parse_failure{peek().pos,
                                    "unsupported PromQL: the @ modifier is not "
                                    "supported",
                                    true};
            } else {
                return e;
            }
        }
    }

    node number_node(double v) {
        auto e = std::make_shared<expr>();
        e->node = expr::type::number;
        e->kind = value_kind::scalar;
        e->number = v;
        return e;
    }

    node parse_primary() {
        const token& t = peek();
        switch (t.kind) {
            case tok::number: {
                next();
                return number_node(parse_number(t));
            }
            case tok::duration: {
                // Prometheus 3 reads a bare duration as its seconds (`5m` is 300).
                next();
                auto ms = duration_ms(t);
                if (!ms) throw parse_failure{t.pos, "bad duration \"" + t.text + "\""};
                return number_node(static_cast<double>(*ms) / 1000.0);
            }
            case tok::string:
                throw parse_failure{t.pos,
                                    "unsupported PromQL: string literals are not "
                                    "supported as expressions",
                                    true};
            case tok::lparen: {
                next();
                node inner = parse_binary(0);
                expect(tok::rparen, "\")\"");
                auto e = std::make_shared<expr>();
                e->node = expr::type::paren;
                e->kind = inner->kind;
                e->args = {inner};
                return e;
            }
            case tok::lbrace: {
                auto e = selector_node();
                e->sel.matchers = parse_matchers();
                check_selector(*e, t.pos);
                return e;
            }
            case tok::ident:
                return parse_identifier();
            default:
                throw parse_failure{t.pos, "unexpected " + describe(t)};
        }
    }

    static double parse_number(const token& t) {
        if (t.text.size() > 2 && (t.text[1] == 'x' || t.text[1] == 'X'))
            return static_cast<double>(std::stoull(t.text.substr(2), nullptr, 16));
        double v = 0;
        auto r = std::from_chars(t.text.data(), t.text.data() + t.text.size(), v);
        if (r.ec != std::errc() || r.ptr != t.text.data() + t.text.size())
            throw parse_failure{t.pos, "bad number \"" + t.text + "\""};
        return v;
    }

    static node selector_node() {
        auto e = std::make_shared<expr>();
        e->node = expr::type::selector;
        e->kind = value_kind::instant_vector;
        return e;
    }

    void check_selector(const expr& e, size_t pos) {
        // Prometheus: at least one matcher that does not match the empty string.
        bool some_non_empty = false;
        for (const auto& m : e.sel.matchers)
            some_non_empty = some_non_empty || !m.matches("");
        if (!some_non_empty)
            throw parse_failure{pos,
                                "vector selector must contain at least one non-empty "
                                "matcher"};
    }

    node parse_identifier() {
        const token t = next();
        std::string lower = t.text;
        std::transform(lower.begin(), lower.end(), lower.begin(),
                       [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
        if (lower == "inf") return number_node(std::numeric_limits<double>::infinity());
        if (lower == "nan") return number_node(std::numeric_limits<double>::quiet_NaN());
        if (auto agg = aggregation_named(t.text);
            agg && (peek().kind == tok::lparen || is_keyword("by") || is_keyword("without")))
            return parse_aggregation(t, *agg);
        if (is_unsupported_aggregation(t.text) && peek().kind != tok::lbrace)
            throw parse_failure{t.pos,
                                "unsupported PromQL: aggregation \"" + t.text +
                                    "\" is not supported (supported: sum, avg, min, max, "
                                    "count, group, stddev, stdvar, topk, bottomk, "
                                    "quantile)",
                                true};
        if (peek().kind == tok::lparen) return parse_call(t);
        auto e = selector_node();
        label_matcher name;
        name.name = "__name__";
        name.value = t.text;
        e->sel.matchers.push_back(std::move(name));
        if (peek().kind == tok::lbrace) {
            auto more = parse_matchers();
            for (auto& m : more) {
                if (m.name == "__name__")
                    throw parse_failure{t.pos, "metric name must not be set twice: \"" + t.text +
                                                   "\" or \"" + m.value + "\""};
                e->sel.matchers.push_back(std::move(m));
            }
        }
        return e;
    }

    std::vector<std::string> parse_label_list() {
        expect(tok::lparen, "\"(\"");
        std::vector<std::string> names;
        while (peek().kind != tok::rparen) {
            const token& n = next();
            if (n.kind != tok::ident && n.kind != tok::string)
                throw parse_failure{
                    n.pos, "unexpected " + describe(n) + " in grouping opts, expected label"};
            names.push_back(n.text);
            if (peek().kind == tok::comma) {
                next();
            } else if (peek().kind != tok::rparen) {
                throw parse_failure{peek().pos, "unexpected " + describe(peek()) +
                                                    " in grouping opts, expected \",\" or \")\""};
            }
        }
        next();
        return names;
    }

    std::vector<label_matcher> parse_matchers() {
        expect(tok::lbrace, "\"{\"");
        std::vector<label_matcher> out;
        while (peek().kind != tok::rbrace) {
            const token& n = next();
            if (n.kind != tok::ident && n.kind != tok::string)
                throw parse_failure{
                    n.pos, "unexpected " + describe(n) + " in label matching, expected label"};
            label_matcher m;
            m.name = n.text;
            if (n.kind == tok::string &&
                (peek().kind == tok::comma || peek().kind == tok::rbrace)) {
                // Prometheus 3: {"metric.name"} is the metric name.
                m.name = "__name__";
                m.value = n.text;
                out.push_back(std::move(m));
            } else {
                const token& op = next();
                switch (op.kind) {
                    case tok::assign:
                        m.kind = label_matcher::op::equal;
                        break;
                    case tok::neq:
                        m.kind = label_matcher::op::not_equal;
                        break;
                    case tok::regex_eq:
                        m.kind = label_matcher::op::regex;
                        break;
                    case tok::regex_ne:
                        m.kind = label_matcher::op::not_regex;
                        break;
                    default:
                        throw parse_failure{op.pos, "unexpected " + describe(op) +
                                                        " in label matching, expected one of "
                                                        "\"=\", \"!=\", \"=~\", \"!~\""};
                }
                const token& v = next();
                if (v.kind != tok::string)
                    throw parse_failure{
                        v.pos, "unexpected " + describe(v) + " in label matching, expected string"};
                m.value = v.text;
                if (m.kind == label_matcher::op::regex || m.kind == label_matcher::op::not_regex)
                    m.pattern = compile_regex(m.value, v.pos);
                out.push_back(std::move(m));
            }
            if (peek().kind == tok::comma) {
                next();
            } else if (peek().kind != tok::rbrace) {
                throw parse_failure{peek().pos, "unexpected " + describe(peek()) +
                                                    " in label matching, expected \",\" or \"}\""};
            }
        }
        next();
        return out;
    }

    static std::shared_ptr<const std::regex> compile_regex(std::string_view text, size_t pos) {
        // RE2's `(?i)` prefix becomes ECMAScript's icase flag; the match is fully anchored.
        auto flags = std::regex::ECMAScript | std::regex::optimize;
        if (text.substr(0, 4) == "(?i)") {
            flags |= std::regex::icase;
            text.remove_prefix(4);
        }
        if (text.find("(?") != std::string_view::npos)
            throw parse_failure{pos,
                                "unsupported PromQL: regex flags and named groups "
                                "(\"(?\") are not supported",
                                true};
        try {
            return std::make_shared<const std::regex>("^(?:" + std::string(text) + ")$", flags);
        } catch (const std::regex_error& e) {
            throw parse_failure{
                pos, "invalid regular expression \"" + std::string(text) + "\": " + e.what()};
        }
    }

    node parse_aggregation(const token& name, aggregation agg) {
        auto e = std::make_shared<expr>();
        e->node = expr::type::aggregate;
        e->kind = value_kind::instant_vector;
        e->agg = agg;
        e->function = name.text;
        bool grouped = false;
        auto grouping = [&] {
            if (is_keyword("by") || is_keyword("without")) {
                if (grouped) throw parse_failure{peek().pos, "grouping given twice in aggregation"};
                e->without = next().text == "without";
                e->grouping = parse_label_list();
                grouped = true;
            }
        };
        grouping();
        size_t args_pos = peek().pos;
        expect(tok::lparen, "\"(\"");
        std::vector<node> args;
        while (peek().kind != tok::rparen) {
            args.push_back(parse_binary(0));
            if (peek().kind == tok::comma) {
                next();
            } else if (peek().kind != tok::rparen) {
                throw parse_failure{peek().pos, "unexpected " + describe(peek()) +
                                                    " in aggregation, expected \",\" or \")\""};
            }
        }
        next();
        grouping();
        bool takes_param =
            agg == aggregation::topk || agg == aggregation::bottomk || agg == aggregation::quantile;
        size_t wanted = takes_param ? 2 : 1;
        if (args.size() != wanted)
            throw parse_failure{args_pos,
                                "wrong number of arguments for aggregate expression "
                                "provided, expected " +
                                    std::to_string(wanted) + ", got " +
                                    std::to_string(args.size())};
        if (takes_param && args[0]->kind != value_kind::scalar)
            throw parse_failure{args_pos, "expected type scalar in aggregation parameter, got " +
                                              std::string(kind_name(args[0]->kind))};
        if (args.back()->kind != value_kind::instant_vector)
            throw parse_failure{args_pos,
                                "expected type instant vector in aggregation "
                                "expression, got " +
                                    std::string(kind_name(args.back()->kind))};
        e->args.assign(args.begin(), args.end());
        return e;
    }

    node parse_call(const token& name) {
        const function_info* f = find_function(name.text);
        if (!f)
            throw parse_failure{name.pos,
                                "unsupported PromQL: function \"" + name.text +
                                    "\" is not supported (supported: " +
                                    std::string(supported_function_names()) + ")",
                                true};
        auto e = std::make_shared<expr>();
        e->node = expr::type::call;
        e->function = name.text;
        e->kind = f->returns;
        size_t args_pos = peek().pos;
        expect(tok::lparen, "\"(\"");
        while (peek().kind != tok::rparen) {
            e->args.push_back(parse_binary(0));
            if (peek().kind == tok::comma) {
                next();
            } else if (peek().kind != tok::rparen) {
                throw parse_failure{peek().pos, "unexpected " + describe(peek()) +
                                                    " in call, expected \",\" or \")\""};
            }
        }
        next();
        size_t n = e->args.size();
        if (n < f->min_args || n > f->args.size())
            throw parse_failure{args_pos, "expected " + std::to_string(f->min_args) +
                                              (f->min_args == f->args.size() ? "" : " or more") +
                                              " argument(s) in call to \"" + name.text +
                                              "\", got " + std::to_string(n)};
        for (size_t i = 0; i < n; ++i) {
            if (e->args[i]->kind != f->args[i]) {
                if (f->args[i] == value_kind::range_vector &&
                    e->args[i]->kind == value_kind::instant_vector &&
                    e->args[i]->node != expr::type::selector)
                    throw parse_failure{args_pos,
                                        "unsupported PromQL: \"" + name.text +
                                            "\" takes a range selector such as x[5m]; "
                                            "subqueries are not supported",
                                        true};
                throw parse_failure{args_pos,
                                    "expected type " + std::string(kind_name(f->args[i])) +
                                        " in call to function \"" + name.text + "\", got " +
                                        std::string(kind_name(e->args[i]->kind))};
            }
        }
        return e;
    }

    std::vector<token> _t;
    size_t _i = 0;
};

// "1:7" for a byte offset: line and column (both from 1), as Prometheus reports them.
std::string position(std::string_view text, size_t pos) {
    size_t line = 1, col = 1;
    for (size_t i = 0; i < pos && i < text.size(); ++i) {
        if (text[i] == '\n') {
            ++line;
            col = 1;
        } else {
            ++col;
        }
    }
    return std::to_string(line) + ":" + std::to_string(col);
}

}  // namespace

std::optional<int64_t> parse_duration_ms(std::string_view text) {
    token t;
    t.text = std::string(text);
    bool digits_only =
        !text.empty() && text.find_first_not_of("0123456789.eE+-") == std::string_view::npos;
    t.kind = digits_only ? tok::number : tok::duration;
    auto ms = duration_ms(t);
    if (!ms || *ms <= 0) return std::nullopt;
    return ms;
}

result<std::shared_ptr<const expr>> parse(std::string_view query) {
    try {
        if (query.find_first_not_of(" \t\r\n") == std::string_view::npos)
            throw parse_failure{0, "no expression found in input"};
        lexer lex(query);
        parser p(lex.run());
        return std::shared_ptr<const expr>(p.run());
    } catch (const parse_failure& f) {
        std::string where = position(query, f.pos);
        if (f.unsupported) return make_error("invalid_argument", f.message + " (at " + where + ")");
        return make_error("invalid_argument", where + ": parse error: " + f.message);
    }
}

}  // namespace clisonix::promql
