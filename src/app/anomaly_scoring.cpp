#include "app/anomaly_scoring.h"

#include "query/query.h"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <thread>

namespace clisonix::app {

namespace {

constexpr std::string_view suffix = ".anomaly";

}  // namespace

bool metric_included(const device_analytics& settings, std::string_view field) {
    return std::any_of(settings.metrics.begin(), settings.metrics.end(),
                       [&](const std::string& glob) { return query::glob_match(glob, field); });
}

anomaly_scoring::anomaly_scoring(storage::engine& engine, device_analytics defaults,
                                 size_t max_series, size_t max_health_devices, size_t max_queued)
    : _engine(engine),
      _defaults(std::move(defaults)),
      _max_series(max_series),
      _health(engine, max_health_devices),
      _max_queued(max_queued),
      _scored(metrics::global().get_counter("clisonix_anomaly_points_scored_total",
                                            "Points given an anomaly score")),
      _skipped(
          metrics::global().get_counter("clisonix_anomaly_points_skipped_total",
                                        "Points left unscored because writes outran the detector")),
      _queued(metrics::global().get_gauge("clisonix_anomaly_queue_points",
                                          "Points waiting to be scored")) {}

anomaly_scoring::~anomaly_scoring() {
    {
        std::lock_guard lock(_mutex);
        _stop = true;
    }
    _wake.notify_all();
    _out_free.notify_all();
    _out_ready.notify_all();
    if (_thread.joinable()) _thread.join();
    if (_writer.joinable()) _writer.join();
}

void anomaly_scoring::set_settings(settings_fn settings, generation_fn generation) {
    std::lock_guard lock(_mutex);
    _settings = std::move(settings);
    _generation = std::move(generation);
    _info_by_id.clear();
    _keys.clear();
}

void anomaly_scoring::on_start(std::function<void()> task) {
    _on_start = std::move(task);
}

void anomaly_scoring::start() {
    if (_thread.joinable()) return;
    _writer = std::thread([this] { write_scores(); });
    _thread = std::thread([this] { run(); });
}

uint32_t anomaly_scoring::id_of(std::string_view key) {
    auto it = _ids.find(key);
    if (it != _ids.end()) return it->second;
    const uint32_t id = _score_key_count++;
    _ids.emplace(std::string(key), id);
    _new_score_keys.push_back(std::string(key) + std::string(suffix));
    return id;
}

int32_t anomaly_scoring::detector_index(const std::string& name) {
    for (size_t i = 0; i < _detector_names.size(); ++i)
        if (_detector_names[i] == name) return static_cast<int32_t>(i);
    auto d = std::make_unique<analytics::series_detectors>(name, _max_series);
    if (!d->valid()) return -1;  // a type's stored detector that this build does not know
    _detector_names.push_back(name);
    _detectors.push_back(std::move(d));
    return static_cast<int32_t>(_detectors.size() - 1);
}

const anomaly_scoring::key_info& anomaly_scoring::resolve(std::string_view key,
                                                          uint64_t generation) {
    auto it = _keys.find(key);
    if (it != _keys.end() && it->second.generation == generation) return it->second;
    key_info info;
    info.generation = generation;
    auto field = field_of_key(key);
    if (!storage::is_derived_field(field)) {
        std::string device = device_of_key(key);
        const device_analytics settings =
            device.empty() || !_settings ? _defaults : _settings(device);
        const bool included = metric_included(settings, field);
        if (included && settings.detector != "off") {
            info.detector = detector_index(settings.detector);
            if (info.detector >= 0) info.anomaly_id = id_of(key);
        }
        if (included && settings.health && !device.empty())
            if (auto s = _health.stream_of(key, device, settings.health_baseline_ns))
                info.health_stream = *s;
    }
    // A series whose detector changed starts the new one from scratch.
    if (it != _keys.end() && it->second.anomaly_id >= 0 &&
        (it->second.detector != info.detector || info.anomaly_id < 0))
        _detectors[static_cast<size_t>(it->second.detector)]->erase(
            static_cast<uint32_t>(it->second.anomaly_id));
    if (it != _keys.end()) {
        it->second = info;
        return it->second;
    }
    return _keys.emplace(std::string(key), info).first->second;
}

void anomaly_scoring::enqueue(const storage::write_batch& batch) {
    const auto& series = batch.series_entries();
    const auto engine_ids = batch.engine_ids();
    const bool by_id = engine_ids.size() == series.size();
    size_t skipped = 0;
    {
        std::lock_guard lock(_mutex);
        const uint64_t generation = _generation ? _generation() : 0;
        // Per batch series: what it feeds (null: nothing).
        auto& infos = _batch_infos;
        infos.assign(series.size(), nullptr);
        bool any = false;
        for (size_t i = 0; i < series.size(); ++i) {
            const auto& entry = series[i];
            if (entry.type != storage::value_type::float64 &&
                entry.type != storage::value_type::int64)
                continue;
            // By the engine's id: a vector index instead of a lookup of the key per batch.
            const key_info* info = nullptr;
            if (by_id && engine_ids[i] < _info_by_id.size()) info = _info_by_id[engine_ids[i]];
            if (!info || info->generation != generation) {
                info = &resolve(entry.key, generation);
                if (by_id) {
                    if (engine_ids[i] >= _info_by_id.size())
                        _info_by_id.resize(engine_ids[i] + 1, nullptr);
                    _info_by_id[engine_ids[i]] = info;
                }
            }
            if (info->anomaly_id < 0 && info->health_stream < 0) continue;
            infos[i] = info;
            any = true;
        }
        if (any) {
            for (const auto& p : batch.points()) {
                const auto* info = infos[p.series];
                if (!info) continue;
                if (_queue.size() + _health_queue.size() >= _max_queued) {
                    ++skipped;
                    continue;
                }
                const double v = storage::as_double(series[p.series].type, p.raw);
                if (info->anomaly_id >= 0)
                    _queue.push_back({static_cast<uint32_t>(info->anomaly_id),
                                      static_cast<uint32_t>(info->detector), p.ts, v});
                if (info->health_stream >= 0)
                    _health_queue.push_back({static_cast<uint32_t>(info->health_stream), p.ts, v});
            }
        }
        _queued.set(static_cast<double>(_queue.size() + _health_queue.size() + _unwritten));
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
    _idle.wait(lock, [this] {
        return (_queue.empty() && _health_queue.empty() && !_busy && !_out_full && !_writing) ||
               _stop;
    });
}

void anomaly_scoring::run() {
    // Scoring yields the CPU to writers and readers: under saturation the queue's bound
    // sheds scoring work, never ingest throughput. (Linux: nice applies per thread.) Not
    // SCHED_IDLE: it stops scoring whenever anything else runs on the machine, and the
    // writers' waits it was to prevent are gone: the thread holds no lock they need
    // (docs/decisions/0065-write-path-with-scoring.md).
    ::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), 19);
    if (_on_start) _on_start();
    std::vector<job> work;
    std::vector<health_scoring::sample> health_work;
    std::vector<analytics::series_detectors*> detectors;
    std::vector<std::string> score_keys;  // id -> "<key>.anomaly"
    storage::write_batch scores;
    std::vector<int64_t> batch_index;  // id -> index in `scores`, per round
    size_t taken = 0;                  // points of the round
    // Scores handed to the writing thread at a time (about 1 MB of WAL record): writing one
    // slice is short, so that writers never wait behind millions of scores.
    constexpr size_t slice_points = 1 << 16;
    constexpr int saturated_pause = 7;  // see below
    for (;;) {
        {
            std::unique_lock lock(_mutex);
            _busy = false;
            _idle.notify_all();
            _out_ready.notify_all();  // a stopping writer waits for the round to end
            _wake.wait(lock, [this] { return _stop || !_queue.empty() || !_health_queue.empty(); });
            if (_stop) return;
            work.swap(_queue);
            health_work.swap(_health_queue);
            for (auto& k : _new_score_keys)
                score_keys.push_back(std::move(k));
            _new_score_keys.clear();
            detectors.clear();
            for (auto& d : _detectors)
                detectors.push_back(d.get());
            _busy = true;
            // Taken points count as waiting until their scores are written: the gauge is
            // what tells an operator (and the benchmark's prep step) that scores lag.
            taken = work.size() + health_work.size();
            _unwritten += taken;
            _queued.set(static_cast<double>(_unwritten));
        }
        // Each series' points in time order, as its detector must see them.
        std::stable_sort(work.begin(), work.end(), [](const job& a, const job& b) {
            return a.id != b.id ? a.id < b.id : a.ts < b.ts;
        });
        // In slices, scored and handed on in order: a series split between two slices keeps
        // its time order.
        for (size_t begin = 0; begin < work.size() || !health_work.empty();) {
            const auto slice_start = std::chrono::steady_clock::now();
            const double skipped_at_start = _skipped.value();
            const size_t end = std::min(work.size(), begin + slice_points);
            scores.clear();
            batch_index.clear();
            for (size_t k = begin; k < end; ++k) {
                const job& j = work[k];
                if (j.id >= batch_index.size()) batch_index.resize(j.id + 1, -1);
                if (batch_index[j.id] < 0) {
                    auto index = scores.series(score_keys[j.id], storage::value_type::float64);
                    batch_index[j.id] = index ? *index : -2;
                }
                if (batch_index[j.id] < 0) continue;
                scores.add(
                    static_cast<uint32_t>(batch_index[j.id]), j.ts,
                    analytics::round_score(detectors[j.detector]->score(j.id, j.ts, j.value)));
            }
            const size_t anomaly_points = scores.point_count();
            size_t slice_taken = end - begin;
            if (!health_work.empty()) {
                _health.score(health_work, scores);
                slice_taken += health_work.size();
                health_work.clear();
            }
            begin = end;
            bool stopping;
            {
                std::unique_lock lock(_mutex);
                stopping = _stop;
                if (scores.empty()) {
                    _unwritten -= slice_taken;
                    _queued.set(
                        static_cast<double>(_queue.size() + _health_queue.size() + _unwritten));
                } else {
                    _out_free.wait(lock, [this] { return !_out_full; });
                    std::swap(scores, _out);
                    _out_anomaly_points = anomaly_points;
                    _out_taken = slice_taken;
                    _out_full = true;
                    _out_ready.notify_one();
                }
            }
            // Writes outran the queue while this slice was scored: step aside seven times as
            // long, so that scoring takes at most an eighth of the time it could while the
            // writers are that busy (more points go unscored, counted), and all of it again
            // once they are not. nice 19 alone leaves it the cores whenever a writer waits.
            if (_skipped.value() != skipped_at_start && !stopping)
                std::this_thread::sleep_for((std::chrono::steady_clock::now() - slice_start) *
                                            saturated_pause);
        }
        work.clear();
    }
}

void anomaly_scoring::write_scores() {
    storage::write_batch batch;
    size_t taken = 0;  // points whose scores the last batch held (written or refused)
    for (;;) {
        size_t anomaly_points;
        {
            std::unique_lock lock(_mutex);
            _unwritten -= taken;
            taken = 0;
            _queued.set(static_cast<double>(_queue.size() + _health_queue.size() + _unwritten));
            _writing = false;
            _idle.notify_all();
            _out_ready.wait(lock, [this] { return _out_full || (_stop && !_busy); });
            if (!_out_full) return;  // stopping, and the scoring thread has nothing more
            batch.clear();
            std::swap(batch, _out);
            anomaly_points = _out_anomaly_points;
            taken = _out_taken;
            _out_full = false;
            _writing = true;
            _out_free.notify_one();
        }
        if (auto st = _engine.write(batch); !st) {
            log::warn("anomaly scores not stored",
                      {{"error", st.error().message}, {"points", batch.point_count()}});
            continue;
        }
        if (anomaly_points) _scored.inc(static_cast<double>(anomaly_points));
        std::lock_guard lock(_scored_mutex);
        if (_on_scored) _on_scored(batch);
    }
}

}  // namespace clisonix::app
