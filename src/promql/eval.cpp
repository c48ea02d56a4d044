// The PromQL evaluator. Every node is evaluated once for all steps of the query at once
// (a value per series per step), so that each selected series is scanned once over
// [start - range - offset, end - offset] and its windows slide along the steps instead of
// being read again for every step.
#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>
#include <string>
#include <unordered_map>

#include "promql/ast.h"
#include "promql/functions.h"
#include "promql/selection.h"

namespace clisonix::promql {

namespace {

constexpr int64_t ns_per_ms = 1'000'000;
// Prometheus' staleness marker: a NaN with this payload ends a series.
constexpr uint64_t stale_nan_bits = 0x7ff0000000000002ULL;

// An element-wise math function of PromQL: the value, then its scalar arguments (0 when the
// function takes none).
using math_function = double (*)(double x, double a, double b);

math_function math_function_named(std::string_view f) {
    if (f == "abs") return [](double x, double, double) { return std::abs(x); };
    if (f == "ceil") return [](double x, double, double) { return std::ceil(x); };
    if (f == "floor") return [](double x, double, double) { return std::floor(x); };
    if (f == "exp") return [](double x, double, double) { return std::exp(x); };
    if (f == "ln") return [](double x, double, double) { return std::log(x); };
    if (f == "log2") return [](double x, double, double) { return std::log2(x); };
    if (f == "log10") return [](double x, double, double) { return std::log10(x); };
    if (f == "sqrt") return [](double x, double, double) { return std::sqrt(x); };
    if (f == "sgn") return [](double x, double, double) { return x > 0 ? 1 : (x < 0 ? -1 : x); };
    if (f == "round")  // Prometheus: halves round up, to the nearest multiple of `to_nearest`.
        return [](double x, double to_nearest, double) {
            double inverse = 1.0 / to_nearest;
            return std::floor(x * inverse + 0.5) / inverse;
        };
    if (f == "clamp_min") return [](double x, double low, double) { return std::max(low, x); };
    if (f == "clamp_max") return [](double x, double high, double) { return std::min(high, x); };
    if (f == "clamp")
        return [](double x, double low, double high) { return std::max(low, std::min(high, x)); };
    return [](double x, double, double) { return x; };
}

struct failure {
    std::string code;  // invalid_argument (400) or too_large / conflict (422)
    std::string message;
};

struct grid {
    int64_t start = 0;
    int64_t step = 1;
    size_t count = 1;
    int64_t at(size_t i) const { return start + step * static_cast<int64_t>(i); }
};

struct vec_series {
    labels metric;
    std::vector<double> v;
    std::vector<uint8_t> has;
};

struct value {
    bool scalar = false;
    std::vector<double> scalars;  // per step, when scalar
    std::vector<vec_series> series;
    bool raw_matrix = false;  // an instant query of a range selector: raw samples
    std::vector<series_points> matrix;
};

// One series' samples, timestamps in ms.
struct samples {
    std::vector<int64_t> ts;
    std::vector<double> values;
    std::vector<uint8_t> stale;
};

double arithmetic(binary_op op, double a, double b) {
    switch (op) {
        case binary_op::add:
            return a + b;
        case binary_op::sub:
            return a - b;
        case binary_op::mul:
            return a * b;
        case binary_op::div:
            return a / b;
        case binary_op::mod:
            return std::fmod(a, b);
        case binary_op::pow:
            return std::pow(a, b);
        default:
            return 0;
    }
}

bool compare(binary_op op, double a, double b) {
    switch (op) {
        case binary_op::eq:
            return a == b;
        case binary_op::ne:
            return a != b;
        case binary_op::gt:
            return a > b;
        case binary_op::lt:
            return a < b;
        case binary_op::ge:
            return a >= b;
        case binary_op::le:
            return a <= b;
        default:
            return false;
    }
}

void drop_name(labels& ls) {
    std::erase_if(ls, [](const auto& l) { return l.first == "__name__"; });
}

std::string labels_text(const labels& ls) {
    std::string out = "{";
    for (const auto& [n, v] : ls) {
        if (out.size() > 1) out += ", ";
        out += n + "=\"" + v + "\"";
    }
    return out + "}";
}

// The key of a series for vector matching: its labels minus __name__ (or only those of `on`,
// or minus those of `ignoring`).
std::string signature(const labels& ls, bool on, const std::vector<std::string>& names) {
    std::string key;
    for (const auto& [n, v] : ls) {
        bool listed = std::find(names.begin(), names.end(), n) != names.end();
        if (on ? !listed : (listed || n == "__name__")) continue;
        key.append(n).push_back('\xff');
        key.append(v).push_back('\xff');
    }
    return key;
}

class evaluator {
public:
    evaluator(const storage::engine& engine, grid g, bool instant, const limits& lim)
        : _engine(engine), _g(g), _instant(instant), _lim(lim) {}

    value eval(const expr& e) {
        switch (e.node) {
            case expr::type::number: {
                value out;
                out.scalar = true;
                out.scalars.assign(_g.count, e.number);
                return out;
            }
            case expr::type::paren:
                return eval(*e.args[0]);
            case expr::type::selector:
                if (e.sel.range_ms > 0) return raw_matrix(e.sel);
                return instant_selector(e.sel);
            case expr::type::unary_minus: {
                value v = eval(*e.args[0]);
                for (double& s : v.scalars)
                    s = -s;
                for (auto& s : v.series) {
                    drop_name(s.metric);
                    for (double& x : s.v)
                        x = -x;
                }
                return v;
            }
            case expr::type::call:
                return call(e);
            case expr::type::aggregate:
                return aggregate(e);
            case expr::type::binary:
                return binary(e);
        }
        return {};
    }

private:
    // Counts the points a node holds in memory: the answer's cap bounds every step of the
    // evaluation, not only the last.
    void account(size_t series) {
        if (_lim.max_points <= 0) return;
        const int64_t points = static_cast<int64_t>(series) * static_cast<int64_t>(_g.count);
        if (points > _lim.max_points)
            throw failure{"too_large",
                          "query would hold " + std::to_string(points) + " points (" +
                              std::to_string(series) + " series x " + std::to_string(_g.count) +
                              " steps), over the limit of " + std::to_string(_lim.max_points) +
                              " (promql.max_points); narrow the selection or the "
                              "range, or raise the step"};
    }

    // The samples of `s` with timestamps in (from_ms, to_ms], in ms.
    void load(const selected_series& s, int64_t from_ms, int64_t to_ms, samples& out) {
        out.ts.clear();
        out.values.clear();
        out.stale.clear();
        _scan.clear();
        if (auto st = _engine.scan(s.id, (from_ms + 1) * ns_per_ms, (to_ms + 1) * ns_per_ms, _scan);
            !st)
            throw failure{"internal", "reading series " + s.key + ": " + st.error().message};
        out.ts.reserve(_scan.size());
        out.values.reserve(_scan.size());
        out.stale.reserve(_scan.size());
        for (const auto& p : _scan) {
            int64_t ms = p.ts >= 0 ? p.ts / ns_per_ms : -((-p.ts + ns_per_ms - 1) / ns_per_ms);
            out.ts.push_back(ms);
            out.values.push_back(storage::as_double(s.type, p.raw));
            out.stale.push_back(s.type == storage::value_type::float64 && p.raw == stale_nan_bits);
        }
    }

    static void drop_stale(samples& s) {
        size_t w = 0;
        for (size_t r = 0; r < s.ts.size(); ++r) {
            if (s.stale[r]) continue;
            s.ts[w] = s.ts[r];
            s.values[w] = s.values[r];
            ++w;
        }
        s.ts.resize(w);
        s.values.resize(w);
    }

    value instant_selector(const selector& sel) {
        auto selected = select_series(_engine, sel.matchers);
        account(selected.size());
        value out;
        out.series.reserve(selected.size());
        samples raw;
        const int64_t lookback = _lim.lookback_ms;
        for (auto& s : selected) {
            load(s, _g.at(0) - sel.offset_ms - lookback, _g.at(_g.count - 1) - sel.offset_ms, raw);
            vec_series vs{std::move(s.metric), std::vector<double>(_g.count, 0),
                          std::vector<uint8_t>(_g.count, 0)};
            size_t next = 0;
            bool any = false;
            for (size_t i = 0; i < _g.count; ++i) {
                int64_t t = _g.at(i) - sel.offset_ms;
                while (next < raw.ts.size() && raw.ts[next] <= t)
                    ++next;
                if (next == 0) continue;
                size_t latest = next - 1;
                if (raw.ts[latest] <= t - lookback || raw.stale[latest]) continue;
                vs.v[i] = raw.values[latest];
                vs.has[i] = 1;
                any = true;
            }
            if (any) out.series.push_back(std::move(vs));
        }
        return out;
    }

    // A range selector alone: only an instant query may answer one (Prometheus' matrix of
    // raw samples).
    value raw_matrix(const selector& sel) {
        if (!_instant)
            throw failure{"invalid_argument",
                          "invalid expression type \"range vector\" for range query, must be "
                          "Scalar or instant Vector"};
        auto selected = select_series(_engine, sel.matchers);
        value out;
        out.raw_matrix = true;
        samples raw;
        int64_t total = 0;
        for (auto& s : selected) {
            int64_t end = _g.at(0) - sel.offset_ms;
            load(s, end - sel.range_ms, end, raw);
            drop_stale(raw);
            if (raw.ts.empty()) continue;
            total += static_cast<int64_t>(raw.ts.size());
            if (_lim.max_points > 0 && total > _lim.max_points)
                throw failure{"too_large", "query would return more than " +
                                               std::to_string(_lim.max_points) +
                                               " points (promql.max_points); narrow the selection "
                                               "or the range"};
            series_points sp{std::move(s.metric), {}};
            sp.points.reserve(raw.ts.size());
            for (size_t i = 0; i < raw.ts.size(); ++i)
                sp.points.emplace_back(raw.ts[i], raw.values[i]);
            out.matrix.push_back(std::move(sp));
        }
        return out;
    }

    std::vector<double> scalar_arg(const expr& e) {
        value v = eval(e);
        return std::move(v.scalars);
    }

    value range_call(const expr& e) {
        const expr* arg = nullptr;
        std::vector<double> param(_g.count, 0);
        for (const auto& a : e.args) {
            if (a->kind == value_kind::range_vector)
                arg = a.get();
            else
                param = scalar_arg(*a);
        }
        while (arg->node == expr::type::paren)
            arg = arg->args[0].get();
        const selector& sel = arg->sel;
        auto selected = select_series(_engine, sel.matchers);
        account(selected.size());
        // last_over_time keeps the metric name; every other function drops it.
        const bool keep_name = e.function == "last_over_time";
        value out;
        samples raw;
        for (auto& s : selected) {
            load(s, _g.at(0) - sel.offset_ms - sel.range_ms, _g.at(_g.count - 1) - sel.offset_ms,
                 raw);
            drop_stale(raw);
            if (raw.ts.empty()) continue;
            vec_series vs{std::move(s.metric), std::vector<double>(_g.count, 0),
                          std::vector<uint8_t>(_g.count, 0)};
            if (!keep_name) drop_name(vs.metric);
            size_t lo = 0, hi = 0;
            bool any = false;
            for (size_t i = 0; i < _g.count; ++i) {
                const int64_t t = _g.at(i) - sel.offset_ms;
                while (hi < raw.ts.size() && raw.ts[hi] <= t)
                    ++hi;
                while (lo < hi && raw.ts[lo] <= t - sel.range_ms)
                    ++lo;
                window w{std::span<const int64_t>(raw.ts).subspan(lo, hi - lo),
                         std::span<const double>(raw.values).subspan(lo, hi - lo), t - sel.range_ms,
                         t, sel.range_ms};
                double result = 0;
                if (apply_range_function(e.function, w, param[i], result)) {
                    vs.v[i] = result;
                    vs.has[i] = 1;
                    any = true;
                }
            }
            if (any) out.series.push_back(std::move(vs));
        }
        return out;
    }

    value call(const expr& e) {
        const std::string& f = e.function;
        if (is_range_function(f)) return range_call(e);
        if (f == "time") {
            value out;
            out.scalar = true;
            for (size_t i = 0; i < _g.count; ++i)
                out.scalars.push_back(static_cast<double>(_g.at(i)) / 1000);
            return out;
        }
        if (f == "vector") {
            value s = eval(*e.args[0]);
            value out;
            out.series.push_back({{}, std::move(s.scalars), std::vector<uint8_t>(_g.count, 1)});
            return out;
        }
        value in = eval(*e.args[0]);
        if (f == "scalar") {
            value out;
            out.scalar = true;
            out.scalars.assign(_g.count, std::numeric_limits<double>::quiet_NaN());
            for (size_t i = 0; i < _g.count; ++i) {
                int present = 0;
                double v = 0;
                for (const auto& s : in.series)
                    if (s.has[i]) {
                        ++present;
                        v = s.v[i];
                    }
                if (present == 1) out.scalars[i] = v;
            }
            return out;
        }
        std::vector<double> a(_g.count, 0), b(_g.count, 0);
        if (e.args.size() > 1) a = scalar_arg(*e.args[1]);
        if (e.args.size() > 2) b = scalar_arg(*e.args[2]);
        if (f == "round" && e.args.size() == 1) a.assign(_g.count, 1);
        // The function is looked up once, not per point.
        const math_function apply = math_function_named(f);
        const bool clamp = f == "clamp";
        for (auto& s : in.series) {
            drop_name(s.metric);
            for (size_t i = 0; i < _g.count; ++i) {
                if (!s.has[i]) continue;
                // clamp with min > max gives no value at all, as in Prometheus.
                if (clamp && a[i] > b[i]) {
                    s.has[i] = 0;
                    continue;
                }
                s.v[i] = apply(s.v[i], a[i], b[i]);
            }
        }
        return in;
    }

    value aggregate(const expr& e) {
        std::vector<double> param;
        if (e.args.size() == 2) param = scalar_arg(*e.args[0]);
        value in = eval(*e.args.back());
        // The groups: series equal in the `by` labels (or in all but the `without` ones).
        std::unordered_map<std::string, size_t> group_of_key;
        std::vector<labels> group_labels;
        std::vector<size_t> group_of(in.series.size());
        for (size_t s = 0; s < in.series.size(); ++s) {
            labels kept;
            for (const auto& l : in.series[s].metric) {
                bool listed =
                    std::find(e.grouping.begin(), e.grouping.end(), l.first) != e.grouping.end();
                if (e.without ? (!listed && l.first != "__name__") : listed) kept.push_back(l);
            }
            std::string key;
            for (const auto& [n, v] : kept) {
                key.append(n).push_back('\xff');
                key.append(v).push_back('\xff');
            }
            auto [it, added] = group_of_key.emplace(key, group_labels.size());
            if (added) group_labels.push_back(std::move(kept));
            group_of[s] = it->second;
        }
        const size_t groups = group_labels.size();
        if (e.agg == aggregation::topk || e.agg == aggregation::bottomk)
            return top_k(e, std::move(in), param, group_of, groups);

        value out;
        out.series.resize(groups);
        for (size_t g = 0; g < groups; ++g)
            out.series[g] = {std::move(group_labels[g]), std::vector<double>(_g.count, 0),
                             std::vector<uint8_t>(_g.count, 0)};
        std::vector<std::vector<double>> members(groups);
        for (size_t i = 0; i < _g.count; ++i) {
            for (auto& m : members)
                m.clear();
            for (size_t s = 0; s < in.series.size(); ++s)
                if (in.series[s].has[i]) members[group_of[s]].push_back(in.series[s].v[i]);
            for (size_t g = 0; g < groups; ++g) {
                auto& values = members[g];
                if (values.empty()) continue;
                out.series[g].has[i] = 1;
                out.series[g].v[i] = combine(e.agg, values, param.empty() ? 0 : param[i]);
            }
        }
        std::erase_if(out.series, [](const vec_series& s) {
            return std::none_of(s.has.begin(), s.has.end(), [](uint8_t h) { return h != 0; });
        });
        return out;
    }

    static double combine(aggregation agg, std::vector<double>& values, double param) {
        const double n = static_cast<double>(values.size());
        switch (agg) {
            case aggregation::sum:
            case aggregation::avg: {
                double sum = 0, c = 0;
                for (double v : values) {
                    double t = sum + v;
                    c += std::abs(sum) >= std::abs(v) ? (sum - t) + v : (v - t) + sum;
                    sum = t;
                }
                return agg == aggregation::sum ? sum + c : (sum + c) / n;
            }
            case aggregation::count:
                return n;
            case aggregation::group:
                return 1;
            case aggregation::min:
            case aggregation::max: {
                double out = values[0];
                for (double v : values)
                    if ((agg == aggregation::max ? v > out : v < out) || std::isnan(out)) out = v;
                return out;
            }
            case aggregation::stddev:
            case aggregation::stdvar: {
                double mean = 0, m2 = 0, count = 0;
                for (double v : values) {
                    count += 1;
                    double d = v - mean;
                    mean += d / count;
                    m2 += d * (v - mean);
                }
                return agg == aggregation::stdvar ? m2 / count : std::sqrt(m2 / count);
            }
            case aggregation::quantile:
                return quantile(param, values);
            default:
                return 0;
        }
    }

    value top_k(const expr& e, value in, const std::vector<double>& param,
                const std::vector<size_t>& group_of, size_t groups) {
        const bool top = e.agg == aggregation::topk;
        std::vector<std::vector<uint8_t>> chosen(in.series.size(),
                                                 std::vector<uint8_t>(_g.count, 0));
        std::vector<std::vector<size_t>> members(groups);
        for (size_t i = 0; i < _g.count; ++i) {
            double kf = param[i];
            if (std::isnan(kf) || kf < 1) continue;
            size_t k = kf >= 1e9 ? static_cast<size_t>(1e9) : static_cast<size_t>(kf);
            for (auto& m : members)
                m.clear();
            for (size_t s = 0; s < in.series.size(); ++s)
                if (in.series[s].has[i]) members[group_of[s]].push_back(s);
            for (auto& m : members) {
                // NaN ranks last either way, as in Prometheus.
                auto better = [&](size_t a, size_t b) {
                    double x = in.series[a].v[i], y = in.series[b].v[i];
                    if (std::isnan(x)) return false;
                    if (std::isnan(y)) return true;
                    return top ? x > y : x < y;
                };
                size_t take = std::min(k, m.size());
                std::partial_sort(m.begin(), m.begin() + static_cast<std::ptrdiff_t>(take), m.end(),
                                  better);
                for (size_t j = 0; j < take; ++j)
                    chosen[m[j]][i] = 1;
            }
        }
        value out;
        for (size_t s = 0; s < in.series.size(); ++s) {
            bool any = false;
            for (size_t i = 0; i < _g.count; ++i) {
                in.series[s].has[i] = chosen[s][i];
                any = any || chosen[s][i];
            }
            if (any) out.series.push_back(std::move(in.series[s]));
        }
        return out;
    }

    value binary(const expr& e) {
        value lhs = eval(*e.args[0]);
        value rhs = eval(*e.args[1]);
        const bool comparison = is_comparison(e.op);
        if (lhs.scalar && rhs.scalar) {
            for (size_t i = 0; i < _g.count; ++i)
                lhs.scalars[i] = comparison
                                     ? (compare(e.op, lhs.scalars[i], rhs.scalars[i]) ? 1 : 0)
                                     : arithmetic(e.op, lhs.scalars[i], rhs.scalars[i]);
            return lhs;
        }
        if (lhs.scalar || rhs.scalar) {
            const bool scalar_left = lhs.scalar;
            value& vec = scalar_left ? rhs : lhs;
            const std::vector<double>& sc = scalar_left ? lhs.scalars : rhs.scalars;
            for (auto& s : vec.series) {
                if (!comparison || e.return_bool) drop_name(s.metric);
                for (size_t i = 0; i < _g.count; ++i) {
                    if (!s.has[i]) continue;
                    double l = scalar_left ? sc[i] : s.v[i], r = scalar_left ? s.v[i] : sc[i];
                    if (!comparison) {
                        s.v[i] = arithmetic(e.op, l, r);
                    } else if (e.return_bool) {
                        s.v[i] = compare(e.op, l, r) ? 1 : 0;
                    } else if (!compare(e.op, l, r)) {
                        s.has[i] = 0;  // the vector's own value stays where it compares true
                    }
                }
            }
            drop_empty(vec);
            return std::move(vec);
        }
        if (is_set_op(e.op)) return set_operation(e, std::move(lhs), std::move(rhs));
        return vector_match(e, std::move(lhs), std::move(rhs));
    }

    static void drop_empty(value& v) {
        std::erase_if(v.series, [](const vec_series& s) {
            return std::none_of(s.has.begin(), s.has.end(), [](uint8_t h) { return h != 0; });
        });
    }

    value set_operation(const expr& e, value lhs, value rhs) {
        std::unordered_map<std::string, std::vector<size_t>> rhs_by_sig;
        for (size_t r = 0; r < rhs.series.size(); ++r)
            rhs_by_sig[signature(rhs.series[r].metric, e.has_on, e.matching)].push_back(r);
        auto present = [&](const std::vector<size_t>* group, const value& side, size_t i) {
            if (!group) return false;
            for (size_t r : *group)
                if (side.series[r].has[i]) return true;
            return false;
        };
        if (e.op == binary_op::land || e.op == binary_op::lunless) {
            for (auto& s : lhs.series) {
                auto it = rhs_by_sig.find(signature(s.metric, e.has_on, e.matching));
                const std::vector<size_t>* group = it == rhs_by_sig.end() ? nullptr : &it->second;
                for (size_t i = 0; i < _g.count; ++i)
                    if (s.has[i] && present(group, rhs, i) != (e.op == binary_op::land))
                        s.has[i] = 0;
            }
            drop_empty(lhs);
            return lhs;
        }
        // or: every lhs series, and the rhs ones whose signature the lhs lacks at that step.
        std::unordered_map<std::string, std::vector<size_t>> lhs_by_sig;
        for (size_t l = 0; l < lhs.series.size(); ++l)
            lhs_by_sig[signature(lhs.series[l].metric, e.has_on, e.matching)].push_back(l);
        for (auto& s : rhs.series) {
            auto it = lhs_by_sig.find(signature(s.metric, e.has_on, e.matching));
            const std::vector<size_t>* group = it == lhs_by_sig.end() ? nullptr : &it->second;
            for (size_t i = 0; i < _g.count; ++i)
                if (s.has[i] && present(group, lhs, i)) s.has[i] = 0;
        }
        drop_empty(rhs);
        for (auto& s : rhs.series)
            lhs.series.push_back(std::move(s));
        return lhs;
    }

    value vector_match(const expr& e, value lhs, value rhs) {
        const bool comparison = is_comparison(e.op);
        std::unordered_map<std::string, std::vector<size_t>> rhs_by_sig, lhs_by_sig;
        for (size_t r = 0; r < rhs.series.size(); ++r)
            rhs_by_sig[signature(rhs.series[r].metric, e.has_on, e.matching)].push_back(r);
        value out;
        for (size_t l = 0; l < lhs.series.size(); ++l) {
            auto& s = lhs.series[l];
            std::string sig = signature(s.metric, e.has_on, e.matching);
            lhs_by_sig[sig].push_back(l);
            auto it = rhs_by_sig.find(sig);
            if (it == rhs_by_sig.end()) continue;
            labels metric = s.metric;
            if (!comparison || e.return_bool) drop_name(metric);
            std::erase_if(metric, [&](const auto& lbl) {
                bool listed =
                    std::find(e.matching.begin(), e.matching.end(), lbl.first) != e.matching.end();
                return e.has_on ? !listed : listed;
            });
            vec_series result{std::move(metric), std::vector<double>(_g.count, 0),
                              std::vector<uint8_t>(_g.count, 0)};
            bool any = false;
            for (size_t i = 0; i < _g.count; ++i) {
                if (!s.has[i]) continue;
                const vec_series* match = nullptr;
                for (size_t r : it->second) {
                    if (!rhs.series[r].has[i]) continue;
                    if (match)
                        throw failure{"conflict",
                                      "found duplicate series for the match group " +
                                          labels_text(s.metric) +
                                          " on the right hand-side of the operation: [" +
                                          labels_text(match->metric) + ", " +
                                          labels_text(rhs.series[r].metric) +
                                          "];many-to-many matching not allowed: matching labels "
                                          "must be unique on one side"};
                    match = &rhs.series[r];
                }
                if (!match) continue;
                const double l_v = s.v[i], r_v = match->v[i];
                if (!comparison) {
                    result.v[i] = arithmetic(e.op, l_v, r_v);
                } else if (e.return_bool) {
                    result.v[i] = compare(e.op, l_v, r_v) ? 1 : 0;
                } else if (compare(e.op, l_v, r_v)) {
                    result.v[i] = l_v;
                } else {
                    continue;
                }
                result.has[i] = 1;
                any = true;
            }
            if (any) out.series.push_back(std::move(result));
        }
        // The left side must be unique per match group too, at every step.
        for (const auto& [sig, members] : lhs_by_sig) {
            if (members.size() < 2 || !rhs_by_sig.contains(sig)) continue;
            for (size_t i = 0; i < _g.count; ++i) {
                int present = 0;
                for (size_t l : members)
                    present += lhs.series[l].has[i];
                if (present > 1)
                    throw failure{"conflict",
                                  "found duplicate series for the match group " +
                                      labels_text(lhs.series[members[0]].metric) +
                                      " on the left hand-side of the operation;many-to-many "
                                      "matching not allowed: matching labels must be unique on "
                                      "one side"};
            }
        }
        return out;
    }

    const storage::engine& _engine;
    grid _g;
    bool _instant;
    const limits& _lim;
    std::vector<storage::sample> _scan;
};

}  // namespace

result<answer> evaluate(const storage::engine& engine, const expr& e, int64_t start_ms,
                        int64_t end_ms, int64_t step_ms, bool instant, const limits& lim) {
    if (end_ms < start_ms)
        return make_error("invalid_argument", "end timestamp must not be before start time");
    if (step_ms <= 0)
        return make_error("invalid_argument",
                          "zero or negative query resolution step widths are not accepted. Try a "
                          "positive integer");
    grid g{start_ms, step_ms, static_cast<size_t>((end_ms - start_ms) / step_ms) + 1};
    if (!instant && static_cast<int64_t>(g.count) > lim.max_steps_per_series)
        return make_error("invalid_argument",
                          "exceeded maximum resolution of " +
                              std::to_string(lim.max_steps_per_series) +
                              " points per timeseries. Try decreasing the query resolution "
                              "(?step=XX)");
    if (!instant && e.kind == value_kind::range_vector)
        return make_error("invalid_argument",
                          "invalid expression type \"range vector\" for range query, must be "
                          "Scalar or instant Vector");
    try {
        evaluator ev(engine, g, instant, lim);
        value v = ev.eval(e);
        answer out;
        if (v.raw_matrix) {
            out.type = answer::kind::matrix;
            out.series = std::move(v.matrix);
            return out;
        }
        if (v.scalar) {
            out.type = instant ? answer::kind::scalar : answer::kind::matrix;
            series_points sp;
            for (size_t i = 0; i < g.count; ++i)
                sp.points.emplace_back(g.at(i), v.scalars[i]);
            out.series.push_back(std::move(sp));
            return out;
        }
        out.type = instant ? answer::kind::vector : answer::kind::matrix;
        // Series with one label set merge into one answer series (as when a function drops
        // the names of two metrics); both present at one step is Prometheus' error.
        std::sort(v.series.begin(), v.series.end(),
                  [](const vec_series& a, const vec_series& b) { return a.metric < b.metric; });
        int64_t total = 0;
        for (size_t s = 0; s < v.series.size();) {
            size_t end = s + 1;
            while (end < v.series.size() && v.series[end].metric == v.series[s].metric)
                ++end;
            series_points sp{v.series[s].metric, {}};
            for (size_t i = 0; i < g.count; ++i) {
                int present = 0;
                for (size_t k = s; k < end; ++k) {
                    if (!v.series[k].has[i]) continue;
                    if (++present > 1)
                        return make_error("conflict",
                                          "vector cannot contain metrics with the same labelset " +
                                              labels_text(v.series[s].metric));
                    sp.points.emplace_back(g.at(i), v.series[k].v[i]);
                }
            }
            total += static_cast<int64_t>(sp.points.size());
            if (lim.max_points > 0 && total > lim.max_points)
                return make_error("too_large",
                                  "query would return more than " + std::to_string(lim.max_points) +
                                      " points (promql.max_points); narrow the selection or the "
                                      "range, or raise the step");
            out.series.push_back(std::move(sp));
            s = end;
        }
        // An instant topk/bottomk lists its series best first, as Prometheus does (Grafana's
        // tables show them in answer order); anywhere else the order is the labels'.
        const expr* top = &e;
        while (top->node == expr::type::paren)
            top = top->args[0].get();
        if (instant && top->node == expr::type::aggregate &&
            (top->agg == aggregation::topk || top->agg == aggregation::bottomk)) {
            const bool descending = top->agg == aggregation::topk;
            std::stable_sort(out.series.begin(), out.series.end(),
                             [descending](const series_points& a, const series_points& b) {
                                 double x = a.points.at(0).second, y = b.points.at(0).second;
                                 if (std::isnan(x)) return false;
                                 if (std::isnan(y)) return true;
                                 return descending ? x > y : x < y;
                             });
        }
        return out;
    } catch (const failure& f) {
        return make_error(f.code, f.message);
    }
}

}  // namespace clisonix::promql
