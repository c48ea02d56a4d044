// The telemetry log on NATS JetStream (nats.c): the stream, the publisher, the applier.
#include <nats/nats.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include "cluster/cluster.h"
#include "ingest/ingest.h"
#include "observe/observe.h"

namespace clisonix::cluster {
namespace {

using namespace std::chrono_literals;
using clock = std::chrono::steady_clock;

std::string nats_text(natsStatus s, jsErrCode jerr) {
    std::string text = natsStatus_GetText(s);
    if (jerr != 0) text += " (JetStream error " + std::to_string(static_cast<int>(jerr)) + ")";
    return text;
}

int64_t ms_left(clock::time_point deadline) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now()).count();
}

// One attempt at a JetStream call during start: at most 2 s, and not past the deadline.
jsOptions bounded_wait(clock::time_point deadline) {
    jsOptions o;
    jsOptions_Init(&o);
    o.Wait = std::clamp<int64_t>(ms_left(deadline), 100, 2000);
    return o;
}

// Engine errors that pass with time: the applier retries the same message rather than
// skipping it, so that the stream order holds.
bool transient(const error& e) {
    return e.code == errc::overloaded || e.code == errc::storage_full ||
           e.code == errc::unavailable;
}

class nats_log final : public telemetry_log {
public:
    nats_log(options opts, ingest::pipeline& sink) : _opts(std::move(opts)), _sink(sink) {
        // Message ids unique across restarts of this node: a publish retried within this
        // process keeps its id (JetStream stores it once), a new write never reuses one.
        std::random_device rd;
        _id_prefix = _opts.node_id + "-" + std::to_string(rd()) + std::to_string(rd()) + "-";
    }
    ~nats_log() override { stop(); }

    status connect();
    status publish(const storage::write_batch& batch) override;
    status ready() const override;
    status caught_up() const override;
    status broadcast(std::string_view topic, std::string_view payload) override;
    void on_broadcast(std::string_view topic,
                      std::function<void(std::string_view)> handler) override;
    void stop_notices() override;
    void stop() override;

private:
    struct outcome {
        bool stopped = false;          // the node stops: leave the messages unacknowledged
        std::optional<error> failure;  // refused for good
    };
    void apply_loop();
    void apply_run(std::span<natsMsg* const> run);
    outcome write_retrying(std::span<natsMsg* const> run);
    void finish(natsMsg* msg, const std::optional<error>& failure);
    uint64_t recorded_sequence() const;
    void record_applied();

    // One shard's part of a write on its way to JetStream.
    struct part {
        std::string subject, id, payload;
        bool done = false;      // the asynchronous publish was answered
        uint64_t sequence = 0;  // its stream sequence once acknowledged, else 0
        std::string reason;     // why not, for the 503
    };
    static void on_async_ack(jsCtx* js, natsMsg* msg, jsPubAck* ack, jsPubAckErr* failure,
                             void* closure);

    options _opts;
    ingest::pipeline& _sink;
    std::string _id_prefix;
    std::atomic<uint64_t> _next_id{0};

    natsOptions* _nats_opts = nullptr;
    natsConnection* _conn = nullptr;
    jsCtx* _js = nullptr;
    jsCtx* _js_async = nullptr;  // its acknowledgements reach on_async_ack
    std::mutex _publish_mutex;
    std::condition_variable _publish_cv;
    std::map<std::string, part*, std::less<>> _in_flight;  // by message id
    natsSubscription* _sub = nullptr;
    // on_broadcast's subscriptions and handlers (a handler's address is its closure).
    struct notice_handler {
        std::string self;  // this node's id: its own notices are skipped
        std::function<void(std::string_view)> handler;
    };
    std::vector<std::unique_ptr<notice_handler>> _notice_handlers;
    std::vector<natsSubscription*> _notice_subs;

    std::thread _applier;
    std::atomic<bool> _stopping{false};
    storage::write_batch _apply_batch;  // the applier thread's

    mutable std::mutex _mutex;
    std::condition_variable _applied_cv;
    uint64_t _applied = 0;   // highest stream sequence applied here
    uint64_t _recorded = 0;  // what the applied file says (the applier thread's)
    clock::time_point _recorded_at{};
    // Stream sequences the log dropped before this node applied them: [first, last], or
    // first == 0 for none. Set at start.
    uint64_t _missed_first = 0, _missed_last = 0;
    uint64_t _start_last = 0;  // the stream's last sequence when this node started
    std::atomic<bool> _caught_up{false};
    // Recent sequences this engine refused for good (a type conflict), so that the writer
    // waiting for them hears why; bounded.
    std::map<uint64_t, error> _refused;
};

status nats_log::connect() {
    const auto deadline = clock::now() + _opts.start_timeout;
    std::vector<const char*> urls;
    for (const auto& u : _opts.nats_urls)
        urls.push_back(u.c_str());
    natsStatus s = natsOptions_Create(&_nats_opts);
    if (s == NATS_OK) s = natsOptions_SetServers(_nats_opts, urls.data(), int(urls.size()));
    if (s == NATS_OK) s = natsOptions_SetName(_nats_opts, ("clisonix-" + _opts.node_id).c_str());
    // Reconnect for ever: a NATS server that dies is replaced by another of the list.
    if (s == NATS_OK) s = natsOptions_SetMaxReconnect(_nats_opts, -1);
    if (s == NATS_OK) s = natsOptions_SetReconnectWait(_nats_opts, 250);
    if (s == NATS_OK) s = natsOptions_SetTimeout(_nats_opts, 2000);
    // With a callback the first connect is retried in the background (without one it would
    // block for ever); the stream's creation below waits for it, up to start_timeout.
    if (s == NATS_OK)
        s = natsOptions_SetRetryOnFailedConnect(
            _nats_opts, true, [](natsConnection*, void*) {}, nullptr);
    if (s != NATS_OK)
        return make_error("invalid_config", "cluster.nats: " + nats_text(s, jsErrCode(0)),
                          "cluster.nats");
    s = natsConnection_Connect(&_conn, _nats_opts);
    if (s != NATS_OK && s != NATS_NOT_YET_CONNECTED)
        return make_error("unavailable",
                          "cannot connect to cluster.nats: " + nats_text(s, jsErrCode(0)));
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = _opts.publish_timeout.count();
    if (s = natsConnection_JetStream(&_js, _conn, &jo); s != NATS_OK)
        return make_error("unavailable", "JetStream context: " + nats_text(s, jsErrCode(0)));
    jsOptions async_jo;
    jsOptions_Init(&async_jo);
    async_jo.Wait = _opts.publish_timeout.count();
    async_jo.PublishAsync.AckHandler = &nats_log::on_async_ack;
    async_jo.PublishAsync.AckHandlerClosure = this;
    async_jo.PublishAsync.MaxPending = 65536;
    if (s = natsConnection_JetStream(&_js_async, _conn, &async_jo); s != NATS_OK)
        return make_error("unavailable", "JetStream context: " + nats_text(s, jsErrCode(0)));

    // The stream, created idempotently: an identical stream is fine, and a stream made
    // earlier with other settings is used as it is (its replicas are named in the log).
    const std::string subjects = std::string(subject_prefix) + "*";
    const char* subject_list[] = {subjects.c_str()};
    const std::string name(stream_name);
    jsStreamConfig sc;
    jsStreamConfig_Init(&sc);
    sc.Name = name.c_str();
    sc.Subjects = subject_list;
    sc.SubjectsLen = 1;
    sc.Storage = js_FileStorage;
    sc.Replicas = _opts.stream_replicas;
    sc.MaxAge = std::chrono::duration_cast<std::chrono::nanoseconds>(_opts.stream_max_age).count();
    // Retried publishes are recognised by their message id for 2 minutes (JetStream's
    // default), never longer than a message is kept.
    sc.Duplicates = std::chrono::duration_cast<std::chrono::nanoseconds>(
                        std::min<std::chrono::milliseconds>(_opts.stream_max_age, 2min))
                        .count();
    for (;;) {
        jsStreamInfo* si = nullptr;
        jsErrCode jerr = jsErrCode(0);
        jsOptions attempt = bounded_wait(deadline);
        s = js_AddStream(&si, _js, &sc, &attempt, &jerr);
        if (si) jsStreamInfo_Destroy(si);
        if (s == NATS_OK) break;
        if (jerr == JSStreamNameExistErr) {
            // Made earlier with other settings (another cluster.stream_max_age): updated, or
            // used as it is when JetStream refuses the change (fewer replicas than servers).
            s = js_UpdateStream(&si, _js, &sc, &attempt, &jerr);
            if (si) jsStreamInfo_Destroy(si);
            if (s != NATS_OK)
                log::warn("the telemetry stream exists with other settings; used as it is",
                          {{"stream", name},
                           {"replicas", _opts.stream_replicas},
                           {"error", nats_text(s, jerr)}});
            break;
        }
        if (ms_left(deadline) <= 0)
            return make_error(
                "unavailable",
                "the telemetry stream " + name +
                    " could not be created within cluster.start_timeout: " + nats_text(s, jerr));
        std::this_thread::sleep_for(250ms);
    }

    // The node's durable consumer: every shard, in stream order, explicit acks. Created
    // here and bound to, so that closing the subscription never deletes it. A new one starts
    // after what the data directory already holds (a copy of another node's), else at the
    // start of the log; an existing one goes on where it is.
    _recorded = recorded_sequence();
    jsConsumerConfig cc;
    jsConsumerConfig_Init(&cc);
    cc.Durable = _opts.node_id.c_str();
    cc.AckPolicy = js_AckExplicit;
    cc.DeliverPolicy = _recorded > 0 ? js_DeliverByStartSequence : js_DeliverAll;
    cc.OptStartSeq = _recorded > 0 ? _recorded + 1 : 0;
    cc.FilterSubject = subjects.c_str();
    cc.AckWait = int64_t(30) * 1'000'000'000;  // ns; a message applies far faster
    cc.MaxAckPending = 4096;
    uint64_t ack_floor = 0;
    for (;;) {
        jsConsumerInfo* ci = nullptr;
        jsErrCode jerr = jsErrCode(0);
        jsOptions attempt = bounded_wait(deadline);
        s = js_GetConsumerInfo(&ci, _js, name.c_str(), _opts.node_id.c_str(), &attempt, &jerr);
        if (s != NATS_OK && jerr == JSConsumerNotFoundErr)
            s = js_AddConsumer(&ci, _js, name.c_str(), &cc, &attempt, &jerr);
        if (ci) {
            ack_floor = ci->AckFloor.Stream;
            jsConsumerInfo_Destroy(ci);
        }
        if (s == NATS_OK) break;
        if (ms_left(deadline) <= 0)
            return make_error(
                "unavailable",
                "the consumer " + _opts.node_id +
                    " could not be created within cluster.start_timeout: " + nats_text(s, jerr));
        std::this_thread::sleep_for(250ms);
    }
    // Messages the log dropped (older than its MaxAge) that neither the consumer nor the data
    // directory got: this node's engine lacks them.
    for (;;) {
        jsStreamInfo* si = nullptr;
        jsErrCode jerr = jsErrCode(0);
        jsOptions attempt = bounded_wait(deadline);
        s = js_GetStreamInfo(&si, _js, name.c_str(), &attempt, &jerr);
        if (s == NATS_OK && si) {
            const uint64_t held = std::max(ack_floor, _recorded);
            _applied = held;
            _start_last = si->State.LastSeq;
            if (_start_last <= held) _caught_up = true;
            const uint64_t dropped_through = si->State.FirstSeq > 0 ? si->State.FirstSeq - 1 : 0;
            if (dropped_through > held) {
                _missed_first = held + 1;
                _missed_last = dropped_through;
            }
            jsStreamInfo_Destroy(si);
            break;
        }
        if (si) jsStreamInfo_Destroy(si);
        if (ms_left(deadline) <= 0)
            return make_error("unavailable",
                              "the telemetry stream's state could not be read "
                              "within cluster.start_timeout: " +
                                  nats_text(s, jerr));
        std::this_thread::sleep_for(250ms);
    }
    static metrics::gauge missed = metrics::global().get_gauge(
        "clisonix_cluster_missed_messages",
        "Telemetry log messages dropped (older than cluster.stream_max_age) before this node "
        "applied them: its engine lacks their points");
    missed.set(_missed_first ? double(_missed_last - _missed_first + 1) : 0.0);
    if (_missed_first)
        log::error("cluster log: this node missed messages the log no longer holds",
                   {{"first", _missed_first}, {"last", _missed_last}});
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = name.c_str();
    so.Consumer = _opts.node_id.c_str();
    jsErrCode jerr = jsErrCode(0);
    if (s = js_PullSubscribe(&_sub, _js, subjects.c_str(), _opts.node_id.c_str(), nullptr, &so,
                             &jerr);
        s != NATS_OK)
        return make_error("unavailable",
                          "cannot subscribe to the telemetry stream: " + nats_text(s, jerr));
    _applier = std::thread([this] { apply_loop(); });
    log::info(
        "cluster telemetry log ready",
        {{"node", _opts.node_id}, {"shards", _opts.shards}, {"replicas", _opts.stream_replicas}});
    return {};
}

status nats_log::ready() const {
    if (!_missed_first) return {};
    return make_error("unavailable",
                      "this node missed telemetry log messages " + std::to_string(_missed_first) +
                          ".." + std::to_string(_missed_last) +
                          ", which the log dropped (older than cluster.stream_max_age) before "
                          "it applied them; start it on a copy of another node's data "
                          "directory (docs/cluster.md)");
}

status nats_log::caught_up() const {
    if (_caught_up) return {};
    uint64_t applied;
    {
        std::lock_guard lock(_mutex);
        applied = _applied;
    }
    return make_error("unavailable", "catching up on the telemetry log: applied through sequence " +
                                         std::to_string(applied) + " of " +
                                         std::to_string(_start_last) +
                                         " when this node started; try another node");
}

// The last stream sequence the engine in state_dir holds, 0 when none is recorded.
uint64_t nats_log::recorded_sequence() const {
    if (_opts.state_dir.empty()) return 0;
    std::ifstream in(std::filesystem::path(_opts.state_dir) / applied_file);
    uint64_t seq = 0;
    return in >> seq ? seq : 0;
}

// Written after the engine writes it names returned, at most once a second and at stop: it
// may lag the engine (a restart applies those messages again, harmlessly), never lead it.
void nats_log::record_applied() {
    uint64_t applied;
    {
        std::lock_guard lock(_mutex);
        applied = _applied;
    }
    if (_opts.state_dir.empty() || applied <= _recorded) return;
    const auto dir = std::filesystem::path(_opts.state_dir);
    const auto tmp = dir / (std::string(applied_file) + ".tmp");
    {
        std::ofstream out(tmp, std::ios::trunc);
        out << applied << "\n";
        if (!out.flush()) return;
    }
    std::error_code ec;
    std::filesystem::rename(tmp, dir / applied_file, ec);
    if (!ec) _recorded = applied;
}

// A notice's payload is the sender's node id, a newline, then the notice.
status nats_log::broadcast(std::string_view topic, std::string_view payload) {
    const std::string subject = "clisonix.notice." + std::string(topic);
    std::string data = _opts.node_id + "\n";
    data += payload;
    natsStatus s = natsConnection_Publish(_conn, subject.c_str(), data.data(), int(data.size()));
    if (s != NATS_OK)
        return make_error("unavailable", "cluster notice " + std::string(topic) +
                                             " not sent: " + nats_text(s, jsErrCode(0)));
    return {};
}

void nats_log::on_broadcast(std::string_view topic, std::function<void(std::string_view)> handler) {
    auto h = std::make_unique<notice_handler>(notice_handler{_opts.node_id, std::move(handler)});
    const std::string subject = "clisonix.notice." + std::string(topic);
    natsSubscription* sub = nullptr;
    natsStatus s = natsConnection_Subscribe(
        &sub, _conn, subject.c_str(),
        [](natsConnection*, natsSubscription*, natsMsg* msg, void* closure) {
            auto* h = static_cast<notice_handler*>(closure);
            std::string_view data(natsMsg_GetData(msg), size_t(natsMsg_GetDataLength(msg)));
            const size_t nl = data.find('\n');
            if (nl != std::string_view::npos && data.substr(0, nl) != h->self)
                h->handler(data.substr(nl + 1));
            natsMsg_Destroy(msg);
        },
        h.get());
    if (s != NATS_OK) {
        log::error("cluster notices not subscribed",
                   {{"topic", std::string(topic)}, {"error", nats_text(s, jsErrCode(0))}});
        return;
    }
    _notice_subs.push_back(sub);
    _notice_handlers.push_back(std::move(h));
}

void nats_log::stop_notices() {
    for (natsSubscription* sub : _notice_subs) {
        // Drained: no more notices, and the one a handler may be running has returned.
        if (natsSubscription_Drain(sub) == NATS_OK)
            natsSubscription_WaitForDrainCompletion(sub, 2000);
        else
            natsSubscription_Unsubscribe(sub);
        natsSubscription_Destroy(sub);
    }
    _notice_subs.clear();
}

void nats_log::stop() {
    if (_stopping.exchange(true)) return;
    stop_notices();
    if (_applier.joinable()) _applier.join();
    record_applied();
    if (_sub) natsSubscription_Destroy(_sub);
    if (_js) jsCtx_Destroy(_js);
    if (_js_async) jsCtx_Destroy(_js_async);
    if (_conn) natsConnection_Destroy(_conn);
    if (_nats_opts) natsOptions_Destroy(_nats_opts);
    _sub = nullptr;
    _js = nullptr;
    _js_async = nullptr;
    _conn = nullptr;
    _nats_opts = nullptr;
}

void nats_log::apply_loop() {
    auto last_warning = clock::time_point{};
    while (!_stopping) {
        natsMsgList list{};
        jsErrCode jerr = jsErrCode(0);
        natsStatus s = natsSubscription_Fetch(&list, _sub, 256, 500, &jerr);
        if (s == NATS_TIMEOUT) {
            _caught_up = true;  // nothing left to fetch
            continue;
        }
        if (s != NATS_OK) {
            if (clock::now() - last_warning > 5s) {
                log::warn("cluster log: fetch failed, retrying", {{"error", nats_text(s, jerr)}});
                last_warning = clock::now();
            }
            std::this_thread::sleep_for(200ms);
            continue;
        }
        apply_run({list.Msgs, size_t(list.Count)});
        natsMsgList_Destroy(&list);
        if (!_caught_up) {
            std::lock_guard lock(_mutex);
            if (_applied >= _start_last) _caught_up = true;
        }
        if (clock::now() - _recorded_at > 1s) {
            record_applied();
            _recorded_at = clock::now();
        }
    }
}

// A fetched run of messages is one engine write (one WAL fsync for all) when its messages
// merge cleanly; else each message is written alone, so that a refusal is pinned on its own
// message and the others are stored. Either way, in stream order.
void nats_log::apply_run(std::span<natsMsg* const> run) {
    if (run.size() > 1) {
        auto merged = write_retrying(run);
        if (merged.stopped) return;
        if (!merged.failure) {
            for (natsMsg* msg : run)
                finish(msg, std::nullopt);
            _applied_cv.notify_all();
            return;
        }
    }
    for (natsMsg* msg : run) {
        auto alone = write_retrying({&msg, 1});
        if (alone.stopped) return;
        finish(msg, alone.failure);
    }
    _applied_cv.notify_all();
}

nats_log::outcome nats_log::write_retrying(std::span<natsMsg* const> run) {
    for (;;) {
        // Decoded again on every try: the pipeline's enrichers add points to the batch.
        _apply_batch.clear();
        for (natsMsg* msg : run) {
            std::string_view payload(natsMsg_GetData(msg), size_t(natsMsg_GetDataLength(msg)));
            if (auto st = decode_append(payload, _apply_batch); !st) return {false, st.error()};
        }
        auto written = _sink.apply(_apply_batch);
        if (written) return {};
        if (!transient(written.error())) return {false, written.error()};
        // Retried in place: a later message must not overtake these. Not acknowledged when
        // the node stops: delivered again after its restart.
        if (_stopping) return {true, std::nullopt};
        std::this_thread::sleep_for(100ms);
    }
}

void nats_log::finish(natsMsg* msg, const std::optional<error>& failure) {
    static metrics::counter applied =
        metrics::global().get_counter("clisonix_cluster_applied_messages_total",
                                      "Telemetry log messages this node applied to its engine");
    static metrics::counter refused = metrics::global().get_counter(
        "clisonix_cluster_refused_messages_total",
        "Telemetry log messages this node's engine refused for good (acknowledged, not stored)");
    uint64_t seq = 0;
    if (jsMsgMetaData* meta = nullptr; natsMsg_GetMetaData(&meta, msg) == NATS_OK) {
        seq = meta->Sequence.Stream;
        jsMsgMetaData_Destroy(meta);
    }
    if (failure) {
        refused.inc();
        log::error("cluster log: message not applied",
                   {{"sequence", seq}, {"error", failure->message}});
    } else {
        applied.inc();
    }
    // After the engine write returned (or refused for good): a crash before this line
    // delivers the message again, and applying it twice stores the same points.
    natsMsg_Ack(msg, nullptr);
    std::lock_guard lock(_mutex);
    if (failure) {
        _refused.emplace(seq, *failure);
        while (_refused.size() > 4096)
            _refused.erase(_refused.begin());
    }
    _applied = std::max(_applied, seq);
}

void nats_log::on_async_ack(jsCtx*, natsMsg* msg, jsPubAck* ack, jsPubAckErr* failure,
                            void* closure) {
    auto* self = static_cast<nats_log*>(closure);
    const char* id = nullptr;
    if (natsMsgHeader_Get(msg, "Nats-Msg-Id", &id) == NATS_OK && id) {
        std::lock_guard lock(self->_publish_mutex);
        if (auto it = self->_in_flight.find(id); it != self->_in_flight.end()) {
            it->second->done = true;
            if (ack) it->second->sequence = ack->Sequence;
            if (failure) it->second->reason = nats_text(failure->Err, failure->ErrCode);
        }
    }
    self->_publish_cv.notify_all();
    natsMsg_Destroy(msg);
}

status nats_log::publish(const storage::write_batch& batch) {
    static metrics::counter published =
        metrics::global().get_counter("clisonix_cluster_published_messages_total",
                                      "Telemetry log messages JetStream acknowledged to this node");
    static metrics::counter failed = metrics::global().get_counter(
        "clisonix_cluster_publish_failures_total",
        "Writes answered 503 because JetStream did not acknowledge them in time");
    if (batch.empty()) return {};
    thread_local std::vector<uint32_t> shard_of_series;
    const auto& series = batch.series_entries();
    shard_of_series.resize(series.size());
    for (size_t i = 0; i < series.size(); ++i)
        shard_of_series[i] = shard_of(series[i].key, _opts.shards);

    // Every shard's part is published at once and the acknowledgements awaited together (one
    // round trip instead of one per shard); a part not acknowledged then is published again,
    // one at a time with its id, until cluster.publish_timeout.
    const auto deadline = clock::now() + _opts.publish_timeout;
    thread_local std::vector<part> parts;
    size_t used = 0;
    for (uint32_t shard = 0; shard < _opts.shards; ++shard) {
        if (parts.size() <= used) parts.emplace_back();
        part& p = parts[used];
        encode_shard(batch, shard_of_series, shard, p.payload);
        if (p.payload.empty()) continue;
        p.subject = std::string(subject_prefix) + std::to_string(shard);
        p.id = _id_prefix + std::to_string(_next_id++);
        p.done = false;
        p.sequence = 0;
        p.reason = "no acknowledgement";
        ++used;
    }
    {
        std::lock_guard lock(_publish_mutex);
        for (size_t i = 0; i < used; ++i)
            _in_flight.emplace(parts[i].id, &parts[i]);
    }
    for (size_t i = 0; i < used; ++i) {
        natsMsg* msg = nullptr;
        part& p = parts[i];
        natsStatus st = natsMsg_Create(&msg, p.subject.c_str(), nullptr, p.payload.data(),
                                       int(p.payload.size()));
        if (st == NATS_OK) {
            jsPubOptions po;
            jsPubOptions_Init(&po);
            po.MsgId = p.id.c_str();  // the same id on every retry: stored once
            po.MaxWait = std::clamp<int64_t>(ms_left(deadline), 1, 2000);
            st = js_PublishMsgAsync(_js_async, &msg, &po);
        }
        if (st != NATS_OK) {  // no answer will come: retried below
            std::lock_guard lock(_publish_mutex);
            p.done = true;
            p.reason = nats_text(st, jsErrCode(0));
        }
        if (msg) natsMsg_Destroy(msg);  // not taken by the library (the publish failed)
    }
    {
        std::unique_lock lock(_publish_mutex);
        _publish_cv.wait_until(lock, std::min(deadline, clock::now() + 2500ms), [&] {
            for (size_t i = 0; i < used; ++i)
                if (!parts[i].done) return false;
            return true;
        });
        for (size_t i = 0; i < used; ++i)
            _in_flight.erase(parts[i].id);
    }

    thread_local std::vector<uint64_t> sequences;
    sequences.clear();
    for (size_t i = 0; i < used; ++i) {
        part& p = parts[i];
        while (p.sequence == 0) {
            if (ms_left(deadline) <= 0) {
                failed.inc();
                return make_error(
                    "unavailable",
                    "the cluster log (JetStream) did not acknowledge the write within " +
                        std::to_string(_opts.publish_timeout.count()) +
                        " ms (cluster.publish_timeout): " + p.reason +
                        "; nothing is lost by sending it again");
            }
            natsMsg* msg = nullptr;
            natsStatus st = natsMsg_Create(&msg, p.subject.c_str(), nullptr, p.payload.data(),
                                           int(p.payload.size()));
            jsPubAck* ack = nullptr;
            jsErrCode jerr = jsErrCode(0);
            if (st == NATS_OK) {
                jsPubOptions po;
                jsPubOptions_Init(&po);
                po.MsgId = p.id.c_str();
                po.MaxWait = std::clamp<int64_t>(ms_left(deadline), 1, 2000);
                st = js_PublishMsg(&ack, _js, msg, &po, &jerr);
            }
            if (msg) natsMsg_Destroy(msg);
            if (st == NATS_OK) {
                p.sequence = ack->Sequence;
                jsPubAck_Destroy(ack);
            } else {
                p.reason = nats_text(st, jerr);
                std::this_thread::sleep_for(50ms);
            }
        }
        sequences.push_back(p.sequence);
        published.inc();
    }
    if (sequences.empty() || _opts.apply_wait.count() == 0) return {};
    const uint64_t last_seq = *std::max_element(sequences.begin(), sequences.end());

    // Read your writes: the answer waits until this node's applier has the points.
    std::unique_lock lock(_mutex);
    if (!_applied_cv.wait_for(lock, _opts.apply_wait, [&] { return _applied >= last_seq; }))
        return make_error("unavailable",
                          "the write is stored in the cluster log but this node has not applied "
                          "it within " +
                              std::to_string(_opts.apply_wait.count()) +
                              " ms (cluster.apply_wait); it will arrive, and nothing is lost by "
                              "sending it again");
    for (uint64_t seq : sequences)
        if (auto it = _refused.find(seq); it != _refused.end()) return it->second;
    return {};
}

}  // namespace

result<std::unique_ptr<telemetry_log>> telemetry_log::open(const options& opts,
                                                           ingest::pipeline& sink) {
    auto log = std::make_unique<nats_log>(opts, sink);
    if (auto st = log->connect(); !st) return st.error();
    return std::unique_ptr<telemetry_log>(std::move(log));
}

}  // namespace clisonix::cluster
