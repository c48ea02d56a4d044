#include "app/health_scoring.h"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>

#include "common/json_text.h"

namespace clisonix::app {

namespace {

constexpr double nan = std::numeric_limits<double>::quiet_NaN();
// Rows kept while a device learns: beyond, it trains on what it has (a device sending many
// rows per second reaches the row minimum long before its baseline time is over).
constexpr size_t max_baseline_rows = 20'000;

// Key fields are escaped as in line protocol; names shown to people are not.
std::string unescape(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '\\' && i + 1 < s.size()) ++i;
        out.push_back(s[i]);
    }
    return out;
}

// "measurement,tags" of a canonical key: what the health series share with the device's.
std::string_view prefix_of(std::string_view key) {
    auto field = field_of_key(key);
    return key.substr(0, key.size() - field.size() - (field.size() < key.size() ? 1 : 0));
}

}  // namespace

std::string_view field_of_key(std::string_view key) {
    for (size_t i = key.size(); i-- > 0;)
        if (key[i] == ' ' && (i == 0 || key[i - 1] != '\\')) return key.substr(i + 1);
    return {};
}

std::string device_of_key(std::string_view key) {
    // Tags are between the first unescaped ',' and the field's space; values may hold
    // escaped commas, spaces and equals signs.
    auto prefix = prefix_of(key);
    size_t i = 0;
    while (i < prefix.size() && !(prefix[i] == ',' && (i == 0 || prefix[i - 1] != '\\')))
        ++i;
    while (i < prefix.size()) {
        size_t start = ++i;  // after ','
        while (i < prefix.size() && !(prefix[i] == ',' && prefix[i - 1] != '\\'))
            ++i;
        auto tag = prefix.substr(start, i - start);
        if (tag.starts_with("device=")) return unescape(tag.substr(7));
    }
    return {};
}

struct health_scoring::device_state {
    std::string name;
    std::string prefix;                // "measurement,tags" of the health series
    std::vector<std::string> metrics;  // row columns (escaped fields)
    std::vector<double> latest;        // sample-and-hold, per column
    uint32_t epoch = 0;                // bumped whenever the columns change
    int64_t baseline_ns = 0;

    // Learning: rows since the first point (columns may still be added).
    std::vector<std::vector<double>> rows;
    int64_t first_ts = -1;
    std::string train_error;  // why the last attempt to train failed

    // Trained.
    std::optional<analytics::health_model> model;
    std::string source;                      // "first_data" or "window"
    int64_t window_from = 0, window_to = 0;  // ns
    std::vector<std::string> score_keys;     // "<prefix> health.<metric>" per column
    std::string health_key;                  // "<prefix> health"

    double last_score = nan;
    std::vector<double> last_contributions;
    std::vector<bool> contribution_stored;  // per column: its last stored contribution was > 0
    int64_t last_ts = 0;
    int64_t last_stored_ts = 0;
    bool stored_any = false;
    int last_stored_level = 0;  // of the last stored row: 0 normal, 1 watch, 2 abnormal
    uint64_t rows_scored = 0;

    size_t bytes() const {
        size_t b = sizeof(*this) + latest.capacity() * sizeof(double);
        b += rows.size() * (sizeof(std::vector<double>) + metrics.size() * sizeof(double));
        if (model) b += model->state_bytes();
        return b;
    }
};

health_scoring::health_scoring(storage::engine& engine, size_t max_devices)
    : _engine(engine),
      _max_devices(max_devices),
      _rows_scored(metrics::global().get_counter("clisonix_health_rows_scored_total",
                                                 "Device rows given a machine-health score")),
      _devices_dropped(metrics::global().get_counter(
          "clisonix_health_devices_dropped_total",
          "Devices left without a health model because analytics.health_max_devices was reached")) {
    // Read when /metrics is scraped, not kept up to date on every scoring round.
    metrics::global().add_callback_gauge(
        "clisonix_health_models", "Devices with a trained health model",
        [this] { return static_cast<double>(devices_with_model()); });
    metrics::global().add_callback_gauge("clisonix_health_state_bytes",
                                         "Bytes of health models and learning rows, all devices",
                                         [this] { return static_cast<double>(state_bytes()); });
}

health_scoring::~health_scoring() {
    metrics::global().add_callback_gauge("clisonix_health_models",
                                         "Devices with a trained health model", [] { return 0.0; });
    metrics::global().add_callback_gauge("clisonix_health_state_bytes",
                                         "Bytes of health models and learning rows, all devices",
                                         [] { return 0.0; });
}

std::optional<uint32_t> health_scoring::device_slot(std::string_view device, std::string_view key) {
    if (auto it = _device_ids.find(std::string(device)); it != _device_ids.end()) return it->second;
    if (_devices.size() >= _max_devices) {
        _devices_dropped.inc();
        return std::nullopt;
    }
    const auto dev = static_cast<uint32_t>(_devices.size());
    auto d = std::make_unique<device_state>();
    d->name = device;
    d->prefix = prefix_of(key);
    _devices.push_back(std::move(d));
    _device_ids.emplace(std::string(device), dev);
    return dev;
}

std::optional<uint32_t> health_scoring::stream_of(std::string_view key, std::string_view device,
                                                  int64_t baseline_ns) {
    std::lock_guard lock(_mutex);
    if (auto it = _stream_ids.find(std::string(key)); it != _stream_ids.end()) {
        _devices[_streams[it->second].device]->baseline_ns = baseline_ns;
        return it->second;
    }
    auto slot = device_slot(device, key);
    if (!slot) return std::nullopt;
    const uint32_t dev = *slot;
    _devices[dev]->baseline_ns = baseline_ns;
    auto id = static_cast<uint32_t>(_streams.size());
    _streams.push_back({dev, std::string(field_of_key(key))});
    _stream_ids.emplace(std::string(key), id);
    return id;
}

int32_t health_scoring::column_of(stream& s, device_state& d) {
    if (s.epoch == d.epoch && s.column >= 0) return s.column;
    auto it = std::find(d.metrics.begin(), d.metrics.end(), s.metric);
    if (it != d.metrics.end()) {
        s.column = static_cast<int32_t>(it - d.metrics.begin());
    } else if (!d.model) {
        // Still learning: a metric seen for the first time widens the rows.
        d.metrics.push_back(s.metric);
        d.latest.push_back(nan);
        for (auto& r : d.rows)
            r.push_back(nan);
        ++d.epoch;
        s.column = static_cast<int32_t>(d.metrics.size() - 1);
    } else {
        s.column = -1;  // a metric that started after training: in the next baseline
    }
    s.epoch = d.epoch;
    return s.column;
}

void health_scoring::try_train(device_state& d) {
    // Train on complete rows: the first rows of a device lack the metrics that start later.
    std::vector<std::vector<double>> complete;
    complete.reserve(d.rows.size());
    for (const auto& r : d.rows)
        if (std::all_of(r.begin(), r.end(), [](double v) { return std::isfinite(v); }))
            complete.push_back(r);
    if (complete.size() < analytics::health_model::min_baseline_rows() &&
        d.rows.size() < max_baseline_rows)
        return;
    auto model = analytics::health_model::train(complete);
    if (!model) {
        d.train_error = model.error().message;
        if (d.rows.size() >= max_baseline_rows) d.rows.erase(d.rows.begin());
        return;
    }
    d.model.emplace(std::move(*model));
    d.source = "first_data";
    d.window_from = d.first_ts;
    d.window_to = d.last_ts + 1'000'000;  // [from, to) in ms, the last row included
    d.rows = {};
    d.train_error.clear();
    d.score_keys.clear();
    for (const auto& m : d.metrics)
        d.score_keys.push_back(d.prefix + " health." + m);
    d.health_key = d.prefix + " health";
}

void health_scoring::set_store_interval(int64_t ns) {
    std::lock_guard lock(_mutex);
    _store_interval_ns = ns;
}

void health_scoring::write_scores(device_state& d, int64_t ts, storage::write_batch& out) {
    auto a = d.model->update(d.latest);
    d.last_score = a.score;
    d.last_contributions = std::move(a.contributions);
    ++d.rows_scored;
    // The score is stored once per interval, and at once when it crosses the watch (0.3) or
    // the abnormal (0.5) level; the contributions only with a crossing (they explain it, and
    // rules that fire on it name them), and only the three largest of at least 0.01 (what
    // a rule's note names), with a 0 for a metric stored before that is no longer among them,
    // so that the latest stored contribution of every metric stays true. A row for every
    // point would store more health than data (11 series for 10 metrics), and irregular
    // timestamps cost more than the values.
    constexpr double watch_level = 0.3, abnormal_level = 0.5;
    const int level = (a.score >= watch_level) + (a.score >= abnormal_level);
    const bool every_row = _store_interval_ns == 0;
    const bool crossed = level != d.last_stored_level;
    const bool due = !d.stored_any || ts - d.last_stored_ts >= _store_interval_ns;
    if (!every_row && !due && !crossed) return;
    const bool detail = every_row || crossed;
    d.stored_any = true;
    d.last_stored_ts = ts;
    d.last_stored_level = level;
    // Contributions before the score: a rule on health() that fires on this row names them.
    if (detail) {
        const size_t n = std::min(d.score_keys.size(), d.last_contributions.size());
        d.contribution_stored.resize(n, false);
        std::vector<size_t> top;  // the columns stored with a value, largest first
        for (size_t i = 0; i < n; ++i)
            if (every_row || analytics::round_score(d.last_contributions[i]) >= 0.01)
                top.push_back(i);
        const size_t named = every_row ? top.size() : std::min<size_t>(top.size(), 3);
        std::partial_sort(
            top.begin(), top.begin() + static_cast<ptrdiff_t>(named), top.end(),
            [&](size_t a, size_t b) { return d.last_contributions[a] > d.last_contributions[b]; });
        top.resize(named);
        for (size_t i = 0; i < n; ++i) {
            const bool named_here = std::find(top.begin(), top.end(), i) != top.end();
            if (!named_here && !d.contribution_stored[i]) continue;
            const double v = named_here ? analytics::round_score(d.last_contributions[i]) : 0.0;
            if (auto s = out.series(d.score_keys[i], storage::value_type::float64))
                out.add(*s, ts, v);
            d.contribution_stored[i] = v > 0;
        }
    }
    if (auto s = out.series(d.health_key, storage::value_type::float64))
        out.add(*s, ts, analytics::round_score(a.score));
}

void health_scoring::finish_row(device_state& d, int64_t ts, storage::write_batch& out,
                                size_t& scored) {
    if (d.model) {
        // Rows older than the newest scored one (late points) would score out of order.
        if (ts >= d.last_ts) {
            write_scores(d, ts, out);
            ++scored;
        }
    } else {
        if (d.first_ts < 0) d.first_ts = ts;
        if (d.rows.size() < max_baseline_rows) d.rows.push_back(d.latest);
        if (ts - d.first_ts >= d.baseline_ns || d.rows.size() >= max_baseline_rows) {
            d.last_ts = ts;
            try_train(d);
        }
    }
    d.last_ts = std::max(d.last_ts, ts);
}

size_t health_scoring::score(std::vector<sample>& samples, storage::write_batch& out) {
    std::lock_guard lock(_mutex);
    // Each device's points in time order; a row is complete when the time moves on.
    std::stable_sort(samples.begin(), samples.end(), [this](const sample& a, const sample& b) {
        auto da = _streams[a.stream].device, db = _streams[b.stream].device;
        return da != db ? da < db : a.ts < b.ts;
    });
    size_t scored = 0;
    for (size_t i = 0; i < samples.size();) {
        auto& d = *_devices[_streams[samples[i].stream].device];
        const auto dev = _streams[samples[i].stream].device;
        const int64_t ts = samples[i].ts;
        for (;
             i < samples.size() && samples[i].ts == ts && _streams[samples[i].stream].device == dev;
             ++i) {
            auto col = column_of(_streams[samples[i].stream], d);
            if (col >= 0) d.latest[static_cast<size_t>(col)] = samples[i].value;
        }
        finish_row(d, ts, out, scored);
    }
    if (scored) _rows_scored.inc(static_cast<double>(scored));
    return scored;
}

std::vector<health_scoring::stored_device> health_scoring::stored_devices(
    const std::function<bool(const std::string&, std::string_view)>& include) const {
    std::unordered_map<std::string, stored_device> found;
    auto series = _engine.series([](const storage::series_info& s) {
        return (s.type == storage::value_type::float64 || s.type == storage::value_type::int64) &&
               !storage::is_derived_field(field_of_key(s.key));
    });
    std::vector<std::pair<int64_t, storage::summary>> buckets;
    for (const auto& s : series) {
        auto tag = std::find_if(s.tags.begin(), s.tags.end(),
                                [](const auto& t) { return t.first == "device"; });
        if (tag == s.tags.end() || !include(tag->second, field_of_key(s.key))) continue;
        // One bucket over all time: its summary has the first timestamp, from block
        // summaries without decoding.
        buckets.clear();
        constexpr int64_t all = int64_t{1} << 62;  // 1970 to the year 2116, one bucket
        if (!_engine.aggregate(s.id, 0, all, all, buckets) || buckets.empty()) continue;
        int64_t first = buckets.front().second.first_ts, last = buckets.front().second.last_ts;
        for (const auto& b : buckets) {
            first = std::min(first, b.second.first_ts);
            last = std::max(last, b.second.last_ts);
        }
        auto [it, added] = found.emplace(tag->second, stored_device{tag->second, first, last});
        if (!added) {
            it->second.first_ns = std::min(it->second.first_ns, first);
            it->second.last_ns = std::max(it->second.last_ns, last);
        }
    }
    std::vector<stored_device> out;
    for (auto& [name, d] : found)
        out.push_back(std::move(d));
    std::sort(out.begin(), out.end(),
              [](const auto& a, const auto& b) { return a.device < b.device; });
    return out;
}

result<size_t> health_scoring::retrain(std::string_view device, int64_t from_ns, int64_t to_ns,
                                       const std::function<bool(std::string_view)>& include,
                                       std::string_view source) {
    storage::series_selector selector;
    selector.tag_values.push_back({"device", {std::string(device)}});
    selector.filter = [&](const storage::series_info& s) {
        if (s.type != storage::value_type::float64 && s.type != storage::value_type::int64)
            return false;
        auto field = field_of_key(s.key);
        return !storage::is_derived_field(field) && (!include || include(field));
    };
    auto series = _engine.select(selector);
    if (series.empty())
        return make_error("not_found",
                          "Device " + std::string(device) + " has no stored numeric metrics",
                          "device");
    std::sort(series.begin(), series.end(),
              [](const auto& a, const auto& b) { return a.key < b.key; });
    // Rows by sample-and-hold over the union of the series' timestamps.
    std::vector<std::vector<storage::sample>> points(series.size());
    std::vector<int64_t> times;
    for (size_t i = 0; i < series.size(); ++i) {
        if (auto st = _engine.scan(series[i].id, from_ns, to_ns, points[i]); !st) return st.error();
        for (const auto& p : points[i])
            times.push_back(p.ts);
    }
    std::sort(times.begin(), times.end());
    times.erase(std::unique(times.begin(), times.end()), times.end());
    std::vector<std::vector<double>> rows;
    std::vector<double> held(series.size(), nan);
    std::vector<size_t> at(series.size(), 0);
    for (int64_t t : times) {
        for (size_t i = 0; i < series.size(); ++i)
            while (at[i] < points[i].size() && points[i][at[i]].ts <= t) {
                held[i] = storage::as_double(series[i].type, points[i][at[i]].raw);
                ++at[i];
            }
        if (std::all_of(held.begin(), held.end(), [](double v) { return std::isfinite(v); }))
            rows.push_back(held);
    }
    const size_t needed = analytics::health_model::min_baseline_rows();
    if (rows.size() < needed)
        return make_error("invalid_argument",
                          "from: the window holds " + std::to_string(rows.size()) +
                              " complete rows of device " + std::string(device) +
                              "; the baseline needs at least " + std::to_string(needed),
                          "from");
    auto model = analytics::health_model::train(rows);
    if (!model) return make_error("invalid_argument", "from: " + model.error().message, "from");

    // Sample-and-hold continues from each metric's newest stored value.
    std::vector<double> latest(series.size(), nan);
    for (size_t i = 0; i < series.size(); ++i)
        if (auto last = _engine.last(series[i].id))
            latest[i] = storage::as_double(series[i].type, last->raw);

    std::lock_guard lock(_mutex);
    auto slot = device_slot(device, series.front().key);
    if (!slot)
        return make_error(
            "unavailable",
            "analytics.health_max_devices reached; no health model for " + std::string(device));
    auto& d = *_devices[*slot];
    d.metrics.clear();
    for (const auto& s : series)
        d.metrics.emplace_back(field_of_key(s.key));
    d.latest = std::move(latest);
    ++d.epoch;
    d.rows = {};
    d.train_error.clear();
    d.model.emplace(std::move(*model));
    d.source = source;
    d.window_from = from_ns;
    d.window_to = to_ns;
    d.score_keys.clear();
    for (const auto& m : d.metrics)
        d.score_keys.push_back(d.prefix + " health." + m);
    d.health_key = d.prefix + " health";
    d.last_contributions.clear();
    d.contribution_stored.clear();  // the columns may have changed
    d.last_score = nan;
    return rows.size();
}

std::optional<std::string> health_scoring::status_json(std::string_view device) const {
    std::lock_guard lock(_mutex);
    auto it = _device_ids.find(std::string(device));
    if (it == _device_ids.end()) return std::nullopt;
    const auto& d = *_devices[it->second];
    std::string out = "{\"device\":";
    append_json_string(out, d.name);
    out += ",\"state\":";
    out += d.model ? "\"trained\"" : "\"learning\"";
    if (!d.model) {
        size_t complete = 0;
        for (const auto& r : d.rows)
            complete += std::all_of(r.begin(), r.end(), [](double v) { return std::isfinite(v); });
        const int64_t elapsed = d.first_ts < 0 ? 0 : d.last_ts - d.first_ts;
        const double by_time =
            d.baseline_ns > 0 ? std::min(1.0, static_cast<double>(elapsed) / d.baseline_ns) : 1.0;
        const double by_rows = std::min(
            1.0, static_cast<double>(complete) / analytics::health_model::min_baseline_rows());
        out += ",\"progress\":{\"fraction\":";
        append_json_number(out, std::min(by_time, by_rows));
        out += ",\"rows\":" + std::to_string(complete) +
               ",\"min_rows\":" + std::to_string(analytics::health_model::min_baseline_rows()) +
               ",\"elapsed_ms\":" + std::to_string(elapsed / 1'000'000) +
               ",\"baseline_ms\":" + std::to_string(d.baseline_ns / 1'000'000);
        if (!d.train_error.empty()) {
            out += ",\"error\":";
            append_json_string(out, d.train_error);
        }
        out += "}";
        out += ",\"baseline\":null";
    } else {
        out += ",\"baseline\":{\"source\":\"" + d.source +
               "\",\"from\":" + std::to_string(d.window_from / 1'000'000) +
               ",\"to\":" + std::to_string(d.window_to / 1'000'000) + "}";
    }
    out += ",\"score\":";
    append_json_number(out, d.last_score);
    out += ",\"at\":";
    if (d.rows_scored)
        out += std::to_string(d.last_ts / 1'000'000);
    else
        out += "null";
    // Contributions, largest first: what to look at first.
    std::vector<size_t> order(std::min(d.last_contributions.size(), d.metrics.size()));
    for (size_t i = 0; i < order.size(); ++i)
        order[i] = i;
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
        return d.last_contributions[a] > d.last_contributions[b];
    });
    out += ",\"contributions\":[";
    for (size_t k = 0; k < order.size(); ++k) {
        if (k) out += ",";
        out += "{\"metric\":";
        append_json_string(out, unescape(d.metrics[order[k]]));
        out += ",\"value\":";
        append_json_number(out, d.last_contributions[order[k]]);
        out += "}";
    }
    out += "],\"metrics\":[";
    for (size_t i = 0; i < d.metrics.size(); ++i) {
        if (i) out += ",";
        append_json_string(out, unescape(d.metrics[i]));
    }
    out += "],\"rows_scored\":" + std::to_string(d.rows_scored) +
           ",\"state_bytes\":" + std::to_string(d.bytes()) + "}";
    return out;
}

size_t health_scoring::devices_with_model() const {
    std::lock_guard lock(_mutex);
    size_t n = 0;
    for (const auto& d : _devices)
        n += d->model ? 1 : 0;
    return n;
}

size_t health_scoring::state_bytes() const {
    std::lock_guard lock(_mutex);
    size_t b = 0;
    for (const auto& d : _devices)
        b += d->bytes();
    return b;
}

}  // namespace clisonix::app
