// The one mapping between Clisonix series and Prometheus series (docs/prometheus.md), both
// ways: names and labels of a stored series, and the index selection that finds the stored
// series behind a set of label matchers.
#include <algorithm>
#include <unordered_set>

#include "promql/ast.h"
#include "promql/selection.h"

namespace clisonix::promql {

namespace {

bool is_name_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == ':';
}

bool is_plain_name(std::string_view s) {
    return !s.empty() && std::all_of(s.begin(), s.end(), is_name_char);
}

// A sanitised name back to a glob over the original text: each `_` may have been any
// character that is not a name character (or `_` itself).
std::string glob_of(std::string_view sanitized) {
    std::string g(sanitized);
    std::replace(g.begin(), g.end(), '_', '?');
    return g;
}

// The regex `a|b|c` (or `(a|b|c)`) of literal words, as Grafana writes a multi-value
// variable: its words, for the index; nullopt for any other pattern.
std::optional<std::vector<std::string>> literal_alternatives(std::string_view pattern) {
    if (pattern.size() >= 2 && pattern.front() == '(' && pattern.back() == ')')
        pattern = pattern.substr(1, pattern.size() - 2);
    std::vector<std::string> words;
    size_t start = 0;
    for (size_t i = 0; i <= pattern.size(); ++i) {
        if (i == pattern.size() || pattern[i] == '|') {
            words.emplace_back(pattern.substr(start, i - start));
            start = i + 1;
            continue;
        }
        char c = pattern[i];
        bool literal = is_name_char(c) || c == '-' || c == ' ' || c == '/';
        if (!literal) return std::nullopt;
    }
    for (const auto& w : words)
        if (w.empty()) return std::nullopt;
    return words;
}

}  // namespace

std::string sanitize_name(std::string_view text) {
    std::string out(text);
    for (char& c : out)
        if (!is_name_char(c)) c = '_';
    return out;
}

std::string metric_name(std::string_view measurement, std::string_view field) {
    if (field == "value") return sanitize_name(measurement);
    std::string joined;
    joined.reserve(measurement.size() + 1 + field.size());
    joined.append(measurement).push_back('_');
    joined.append(field);
    return sanitize_name(joined);
}

labels labels_of(const storage::series_info& series) {
    labels out;
    out.reserve(series.tags.size() + 1);
    out.emplace_back("__name__", metric_name(series.measurement, series.field));
    for (const auto& [key, value] : series.tags) {
        std::string name = sanitize_name(key);
        if (name.rfind("__", 0) == 0) continue;
        // Two tags that sanitise to one name: the first (in key order) is the label.
        bool taken =
            std::any_of(out.begin(), out.end(), [&](const auto& l) { return l.first == name; });
        if (!taken) out.emplace_back(std::move(name), value);
    }
    std::sort(out.begin(), out.end());
    return out;
}

const std::string* label_value(const labels& ls, std::string_view name) {
    for (const auto& [n, v] : ls)
        if (n == name) return &v;
    return nullptr;
}

namespace {

bool matches_all(const labels& ls, std::string_view key,
                 const std::vector<label_matcher>& matchers) {
    for (const auto& m : matchers) {
        if (m.name == "clisonix_key") {
            if (!m.matches(key)) return false;
            continue;
        }
        const std::string* v = label_value(ls, m.name);
        if (!m.matches(v ? std::string_view(*v) : std::string_view{})) return false;
    }
    return true;
}

}  // namespace

std::vector<selected_series> select_series(const storage::engine& engine,
                                           const std::vector<label_matcher>& matchers) {
    storage::series_selector base;
    // Tags the index can answer: an exact value (or a list of literal alternatives) of a
    // label whose name has no `_`, which only the tag of that very name can give.
    for (const auto& m : matchers) {
        if (m.name == "__name__" || m.name.find('_') != std::string::npos || m.value.empty() ||
            !is_plain_name(m.name))
            continue;
        if (m.kind == label_matcher::op::equal) {
            base.tag_values.emplace_back(m.name, std::vector<std::string>{m.value});
        } else if (m.kind == label_matcher::op::regex) {
            if (auto words = literal_alternatives(m.value))
                base.tag_values.emplace_back(m.name, std::move(*words));
        }
    }
    std::vector<selected_series> out;
    auto keep = [&](const storage::series_info& info) {
        if (info.type == storage::value_type::string) return;  // PromQL has numbers only
        labels ls = labels_of(info);
        if (matches_all(ls, info.key, matchers))
            out.push_back({info.id, info.type, info.key, std::move(ls)});
    };
    // An exact metric name: the measurement/field pairs that could give it, from the index.
    const label_matcher* name = nullptr;
    for (const auto& m : matchers)
        if (m.name == "__name__" && m.kind == label_matcher::op::equal) name = &m;
    if (name) {
        if (!is_plain_name(name->value)) return out;
        std::vector<std::pair<std::string, std::string>> candidates;
        candidates.emplace_back(glob_of(name->value), "value");
        for (size_t i = 1; i + 1 < name->value.size(); ++i)
            if (name->value[i] == '_')
                candidates.emplace_back(glob_of(name->value.substr(0, i)),
                                        glob_of(name->value.substr(i + 1)));
        std::unordered_set<storage::series_id> seen;
        for (const auto& [measurement, field] : candidates) {
            auto selector = base;
            selector.measurement = measurement;
            selector.field = field;
            for (const auto& info : engine.select(selector)) {
                if (!seen.insert(info.id).second) continue;
                keep(info);
            }
        }
    } else {
        for (const auto& info : engine.select(base))
            keep(info);
    }
    // Collisions: series that map to one label set are told apart by their key.
    std::sort(out.begin(), out.end(), [](const selected_series& a, const selected_series& b) {
        return a.metric < b.metric;
    });
    for (size_t i = 0; i < out.size();) {
        size_t j = i + 1;
        while (j < out.size() && out[j].metric == out[i].metric)
            ++j;
        if (j - i > 1) {
            for (size_t k = i; k < j; ++k) {
                out[k].metric.emplace_back("clisonix_key", out[k].key);
                std::sort(out[k].metric.begin(), out[k].metric.end());
            }
        }
        i = j;
    }
    return out;
}

}  // namespace clisonix::promql
