#include "app/anomaly_scoring.h"

#include "query/query.h"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>

namespace clisonix::app {

namespace {

constexpr std::string_view suffix = ".anomaly";
// Series the platform derives from others: scoring them would score a score or a flag.
constexpr std::string_view range_flag_suffix = ".out_of_range";

// The field of a canonical key: after the last unescaped space.
std::string_view field_of(std::string_view key) {
    for (size_t i = key.size(); i-- > 0;)
        if (key[i] == ' ' && (i == 0 || key[i - 1] != '\\')) return key.substr(i + 1);
    return {};
}

}  // namespace

anomaly_scoring::anomaly_scoring(storage::engine& engine, std::string detector, std::string metrics,
                                 size_t max_series, size_t max_queued)
    : _engine(engine),
      _metrics(std::move(metrics)),
      _detectors(detector, max_series),
      _max_queued(max_queued),
      _scored(metrics::global().get_counter("clisonix_anomaly_points_scored_total",
                                            "Points given an anomaly score")),
      _skipped(
          metrics::global().get_counter("clisonix_anomaly_points_skipped_total",
                                        "Points left unscored because writes outran the detector")),
      _queued(metrics::global().get_gauge("clisonix_anomaly_queue_points",
                                          "Points waiting to be scored")),
      _thread([this] { run(); }) {}

anomaly_scoring::~anomaly_scoring() {
    {
        std::lock_guard lock(_mutex);
        _stop = true;
    }
    _wake.notify_all();
    _thread.join();
}

uint32_t anomaly_scoring::id_of(std::string_view key) {
    auto it = _ids.find(key);
    if (it != _ids.end()) return it->second;
    auto id = static_cast<uint32_t>(_score_keys.size());
    _ids.emplace(std::string(key), id);
    _score_keys.push_back(std::string(key) + std::string(suffix));
    return id;
}

void anomaly_scoring::enqueue(const storage::write_batch& batch) {
    const auto& series = batch.series_entries();
    size_t skipped = 0;
    {
        std::lock_guard lock(_mutex);
        // Per batch series: its id, or -1 when it is not scored.
        std::vector<int64_t> ids(series.size(), -1);
        for (size_t i = 0; i < series.size(); ++i) {
            const auto& entry = series[i];
            if (entry.type != storage::value_type::float64 &&
                entry.type != storage::value_type::int64)
                continue;
            auto field = field_of(entry.key);
            if (field.ends_with(suffix) || field.ends_with(range_flag_suffix) ||
                !query::glob_match(_metrics, field))
                continue;
            ids[i] = id_of(entry.key);
        }
        for (const auto& p : batch.points()) {
            if (ids[p.series] < 0) continue;
            if (_queue.size() >= _max_queued) {
                ++skipped;
                continue;
            }
            _queue.push_back({static_cast<uint32_t>(ids[p.series]), p.ts,
                              storage::as_double(series[p.series].type, p.raw)});
        }
        _queued.set(static_cast<double>(_queue.size()));
    }
    if (skipped) _skipped.inc(static_cast<double>(skipped));
    _wake.notify_one();
}

void anomaly_scoring::on_scored(std::function<void(const storage::write_batch&)> callback) {
    std::lock_guard lock(_scored_mutex);
    _on_scored = std::move(callback);
}

void anomaly_scoring::drain() {
    std::unique_lock lock(_mutex);
    _idle.wait(lock, [this] { return (_queue.empty() && !_busy) || _stop; });
}

void anomaly_scoring::run() {
    // Scoring yields the CPU to writers and readers: under saturation the queue's bound
    // sheds scoring work, never ingest throughput. (Linux: nice applies per thread.)
    ::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), 19);
    std::vector<job> work;
    storage::write_batch scores;
    std::vector<int64_t> batch_index;  // id -> index in `scores`, per round
    for (;;) {
        {
            std::unique_lock lock(_mutex);
            _busy = false;
            _idle.notify_all();
            _wake.wait(lock, [this] { return _stop || !_queue.empty(); });
            if (_stop) return;
            work.swap(_queue);
            _busy = true;
            _queued.set(static_cast<double>(work.size()));
        }
        // Each series' points in time order, as its detector must see them.
        std::stable_sort(work.begin(), work.end(), [](const job& a, const job& b) {
            return a.id != b.id ? a.id < b.id : a.ts < b.ts;
        });
        scores.clear();
        batch_index.clear();
        for (const auto& j : work) {
            if (j.id >= batch_index.size()) batch_index.resize(j.id + 1, -1);
            if (batch_index[j.id] < 0) {
                std::string key;
                {
                    std::lock_guard lock(_mutex);
                    key = _score_keys[j.id];
                }
                auto index = scores.series(key, storage::value_type::float64);
                batch_index[j.id] = index ? *index : -2;
            }
            if (batch_index[j.id] < 0) continue;
            scores.add(static_cast<uint32_t>(batch_index[j.id]), j.ts,
                       _detectors.score(j.id, j.ts, j.value));
        }
        if (!scores.empty()) {
            if (auto st = _engine.write(scores); !st) {
                log::warn("anomaly scores not stored",
                          {{"error", st.error().message}, {"points", scores.point_count()}});
            } else {
                _scored.inc(static_cast<double>(scores.point_count()));
                std::lock_guard lock(_scored_mutex);
                if (_on_scored) _on_scored(scores);
            }
        }
        work.clear();
        {
            std::lock_guard lock(_mutex);
            _queued.set(static_cast<double>(_queue.size()));
        }
    }
}

}  // namespace clisonix::app
