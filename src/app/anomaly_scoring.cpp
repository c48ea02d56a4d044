#include "app/anomaly_scoring.h"

#include <algorithm>

namespace clisonix::app {

namespace {

constexpr std::string_view suffix = ".anomaly";

// `*` and `?` globs over a field name.
bool glob(std::string_view pattern, std::string_view text) {
    size_t p = 0, t = 0, star = std::string_view::npos, mark = 0;
    while (t < text.size()) {
        if (p < pattern.size() && (pattern[p] == '?' || pattern[p] == text[t])) {
            ++p;
            ++t;
        } else if (p < pattern.size() && pattern[p] == '*') {
            star = p++;
            mark = t;
        } else if (star != std::string_view::npos) {
            p = star + 1;
            t = ++mark;
        } else {
            return false;
        }
    }
    while (p < pattern.size() && pattern[p] == '*')
        ++p;
    return p == pattern.size();
}

// The field of a canonical key: after the last unescaped space.
std::string_view field_of(std::string_view key) {
    for (size_t i = key.size(); i-- > 0;)
        if (key[i] == ' ' && (i == 0 || key[i - 1] != '\\')) return key.substr(i + 1);
    return {};
}

}  // namespace

anomaly_scoring::anomaly_scoring(std::string detector, std::string metrics, size_t max_series)
    : _metrics(std::move(metrics)), _detectors(detector, max_series) {}

uint32_t anomaly_scoring::id_of(std::string_view key) {
    std::lock_guard lock(_ids_mutex);
    auto it = _ids.find(key);
    if (it != _ids.end()) return it->second;
    auto id = static_cast<uint32_t>(_ids.size());
    _ids.emplace(std::string(key), id);
    return id;
}

void anomaly_scoring::score(storage::write_batch& batch) {
    const auto& series = batch.series_entries();
    const size_t original_series = series.size();
    // Per batch series: its detector id and the index of its score series (or -1).
    std::vector<int64_t> score_series(original_series, -1);
    std::vector<uint32_t> ids(original_series, 0);
    std::string key;
    for (size_t i = 0; i < original_series; ++i) {
        const auto& entry = series[i];
        if (entry.type != storage::value_type::float64 && entry.type != storage::value_type::int64)
            continue;
        auto field = field_of(entry.key);
        if (field.ends_with(suffix) || !glob(_metrics, field)) continue;
        ids[i] = id_of(entry.key);
        key.assign(entry.key).append(suffix);
        auto index = batch.series(key, storage::value_type::float64);
        if (index) score_series[i] = *index;
    }
    // Points of a series in time order, as the detector must see them.
    std::vector<storage::write_batch::point> scored;
    for (const auto& p : batch.points())
        if (p.series < original_series && score_series[p.series] >= 0) scored.push_back(p);
    std::stable_sort(scored.begin(), scored.end(), [](const auto& a, const auto& b) {
        return a.series != b.series ? a.series < b.series : a.ts < b.ts;
    });
    for (const auto& p : scored) {
        const auto type = series[p.series].type;
        double v = type == storage::value_type::float64
                       ? std::bit_cast<double>(p.raw)
                       : static_cast<double>(static_cast<int64_t>(p.raw));
        double s = _detectors.score(ids[p.series], p.ts, v);
        batch.add(static_cast<uint32_t>(score_series[p.series]), p.ts, s);
    }
}

}  // namespace clisonix::app
