// JetStream's own publish rate, the ceiling of Clisonix's telemetry log on the same servers:
// publishes messages of a given size to a stream made like CLISONIX_TELEMETRY (file storage,
// the same replicas, a 2-minute duplicate window, a message id on every message), spread over
// the shards' subjects, asynchronously with a bounded number awaiting their acknowledgement.
// Prints one line: messages/s, MB/s, and points/s at the given points per message.
//
//   jetstream_publish publish NATS_URLS BYTES POINTS_PER_MESSAGE SECONDS [IN_FLIGHT] [REPLICAS]
//   jetstream_publish info NATS_URLS STREAM     one line: messages=M bytes=B of STREAM
//
// The publish stream is CLISONIX_PUBLISH_BENCH (subjects clisonix.publishbench.<shard>), made
// new for the run and deleted after it, so that it never mixes with the telemetry stream.
// Exit 2 on bad arguments, 1 when NATS fails.
#include <nats/nats.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <vector>

namespace {

constexpr const char* bench_stream = "CLISONIX_PUBLISH_BENCH";
constexpr const char* bench_prefix = "clisonix.publishbench.";
constexpr int shards = 16;  // cluster.shards' default

[[noreturn]] void usage() {
    std::fprintf(stderr,
                 "usage: jetstream_publish publish NATS_URLS BYTES POINTS_PER_MESSAGE SECONDS "
                 "[IN_FLIGHT] [REPLICAS]\n"
                 "       jetstream_publish info NATS_URLS STREAM\n");
    std::exit(2);
}

[[noreturn]] void fail(const char* what, natsStatus s, jsErrCode jerr = jsErrCode(0)) {
    std::fprintf(stderr, "jetstream_publish: %s: %s (JetStream error %d)\n", what,
                 natsStatus_GetText(s), int(jerr));
    std::exit(1);
}

double number(const char* text, const char* field, double min) {
    char* end = nullptr;
    const double v = std::strtod(text, &end);
    if (end == text || *end != '\0' || v < min) {
        std::fprintf(stderr, "jetstream_publish: %s must be a number >= %g, not '%s'\n", field, min,
                     text);
        std::exit(2);
    }
    return v;
}

// Acknowledgements in flight, bounded: the publisher waits for a free slot, as a node's
// publishes wait for their acknowledgements before the next request's.
struct window {
    std::mutex mutex;
    std::condition_variable freed;
    int64_t in_flight = 0;
    int64_t acked = 0;
    int64_t failed = 0;
};

void on_ack(jsCtx*, natsMsg* msg, jsPubAck* pa, jsPubAckErr*, void* closure) {
    auto* w = static_cast<window*>(closure);
    {
        std::lock_guard lock(w->mutex);
        --w->in_flight;
        if (pa)
            ++w->acked;
        else
            ++w->failed;
    }
    w->freed.notify_one();
    natsMsg_Destroy(msg);
}

natsConnection* connect(const std::string& urls) {
    std::vector<std::string> list;
    for (size_t at = 0; at <= urls.size();) {
        const size_t comma = std::min(urls.find(',', at), urls.size());
        list.push_back(urls.substr(at, comma - at));
        at = comma + 1;
    }
    std::vector<const char*> ptrs;
    for (const auto& u : list)
        ptrs.push_back(u.c_str());
    natsOptions* opts = nullptr;
    natsStatus s = natsOptions_Create(&opts);
    if (s == NATS_OK) s = natsOptions_SetServers(opts, ptrs.data(), int(ptrs.size()));
    if (s == NATS_OK) s = natsOptions_SetName(opts, "clisonix-jetstream-publish-bench");
    natsConnection* conn = nullptr;
    if (s == NATS_OK) s = natsConnection_Connect(&conn, opts);
    natsOptions_Destroy(opts);
    if (s != NATS_OK) fail("connect", s);
    return conn;
}

int info(const std::string& urls, const char* stream) {
    natsConnection* conn = connect(urls);
    jsCtx* js = nullptr;
    natsStatus s = natsConnection_JetStream(&js, conn, nullptr);
    if (s != NATS_OK) fail("JetStream context", s);
    jsStreamInfo* si = nullptr;
    jsErrCode jerr = jsErrCode(0);
    s = js_GetStreamInfo(&si, js, stream, nullptr, &jerr);
    if (s != NATS_OK) fail("stream info", s, jerr);
    std::printf("messages=%llu bytes=%llu\n", (unsigned long long)si->State.Msgs,
                (unsigned long long)si->State.Bytes);
    jsStreamInfo_Destroy(si);
    jsCtx_Destroy(js);
    natsConnection_Destroy(conn);
    return 0;
}

int publish(const std::string& urls, size_t bytes, double points_per_message, double seconds,
            int64_t max_in_flight, int replicas) {
    natsConnection* conn = connect(urls);
    window w;
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = 5000;  // cluster.publish_timeout's default
    jo.PublishAsync.AckHandler = &on_ack;
    jo.PublishAsync.AckHandlerClosure = &w;
    jo.PublishAsync.MaxPending = max_in_flight + 1;  // our window bounds it first
    jsCtx* js = nullptr;
    natsStatus s = natsConnection_JetStream(&js, conn, &jo);
    if (s != NATS_OK) fail("JetStream context", s);

    const std::string subjects = std::string(bench_prefix) + "*";
    const char* subject_list[] = {subjects.c_str()};
    jsStreamConfig sc;
    jsStreamConfig_Init(&sc);
    sc.Name = bench_stream;
    sc.Subjects = subject_list;
    sc.SubjectsLen = 1;
    sc.Storage = js_FileStorage;
    sc.Replicas = replicas;
    sc.MaxAge = int64_t(72) * 3600 * 1000000000;  // cluster.stream_max_age's default
    sc.Duplicates = int64_t(120) * 1000000000;    // as the telemetry stream's
    jsErrCode jerr = jsErrCode(0);
    js_DeleteStream(js, bench_stream, nullptr, &jerr);  // a stream left by a killed run
    jerr = jsErrCode(0);
    jsStreamInfo* si = nullptr;
    s = js_AddStream(&si, js, &sc, nullptr, &jerr);
    if (s != NATS_OK) fail("create the stream", s, jerr);
    jsStreamInfo_Destroy(si);

    // Bytes like a payload's: not all zeros, in case anything on the way compresses.
    std::vector<char> payload(bytes);
    for (size_t i = 0; i < bytes; ++i)
        payload[i] = char((i * 2654435761u) >> 24);
    std::vector<std::string> subject(shards);
    for (int i = 0; i < shards; ++i)
        subject[i] = std::string(bench_prefix) + std::to_string(i);

    using clock = std::chrono::steady_clock;
    const auto start = clock::now();
    const auto end = start + std::chrono::duration<double>(seconds);
    int64_t sent = 0;
    char id[64];
    while (clock::now() < end) {
        {
            std::unique_lock lock(w.mutex);
            w.freed.wait(lock, [&] { return w.in_flight < max_in_flight; });
            ++w.in_flight;
        }
        natsMsg* msg = nullptr;
        s = natsMsg_Create(&msg, subject[sent % shards].c_str(), nullptr, payload.data(),
                           int(payload.size()));
        jsPubOptions po;
        jsPubOptions_Init(&po);
        std::snprintf(id, sizeof id, "bench-%lld", (long long)sent);
        po.MsgId = id;  // as a node's: duplicate detection is part of the cost
        if (s == NATS_OK) s = js_PublishMsgAsync(js, &msg, &po);
        if (s != NATS_OK) {
            natsMsg_Destroy(msg);
            fail("publish", s);
        }
        ++sent;
    }
    jsPubOptions done;
    jsPubOptions_Init(&done);
    done.MaxWait = 10000;
    s = js_PublishAsyncComplete(js, &done);
    const double elapsed = std::chrono::duration<double>(clock::now() - start).count();
    if (s != NATS_OK) fail("wait for the last acknowledgements", s);

    int64_t acked, failed;
    {
        std::lock_guard lock(w.mutex);
        acked = w.acked;
        failed = w.failed;
    }
    si = nullptr;
    jerr = jsErrCode(0);
    uint64_t stored_bytes = 0;
    if (js_GetStreamInfo(&si, js, bench_stream, nullptr, &jerr) == NATS_OK) {
        stored_bytes = si->State.Bytes;
        jsStreamInfo_Destroy(si);
    }
    js_DeleteStream(js, bench_stream, nullptr, &jerr);
    const double msgs = double(acked) / elapsed;
    std::printf(
        "messages/s=%.0f MB/s=%.2f points/s=%.0f acked=%lld failed=%lld "
        "payload_bytes=%zu stored_bytes_per_message=%.0f in_flight=%lld replicas=%d\n",
        msgs, msgs * double(bytes) / 1e6, msgs * points_per_message, (long long)acked,
        (long long)failed, bytes, acked ? double(stored_bytes) / double(acked) : 0.0,
        (long long)max_in_flight, replicas);
    jsCtx_Destroy(js);
    natsConnection_Destroy(conn);
    return failed == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 3) usage();
    const std::string mode = argv[1];
    if (mode == "info") {
        if (argc != 4) usage();
        return info(argv[2], argv[3]);
    }
    if (mode != "publish" || argc < 6 || argc > 8) usage();
    const auto bytes = size_t(number(argv[3], "BYTES", 1));
    const double points = number(argv[4], "POINTS_PER_MESSAGE", 0);
    const double seconds = number(argv[5], "SECONDS", 0.1);
    const auto in_flight = int64_t(argc > 6 ? number(argv[6], "IN_FLIGHT", 1) : 64);
    const int replicas = int(argc > 7 ? number(argv[7], "REPLICAS", 1) : 3);
    return publish(argv[2], bytes, points, seconds, in_flight, replicas);
}
