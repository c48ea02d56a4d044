// The connector benchmark's Sparkplug B edge node (bench/connectors/run.sh): one libmosquitto
// client that publishes NBIRTH and a DBIRTH of METRICS metrics (each with an alias), then DDATA
// with every metric by alias, QoS 1 with WINDOW messages in flight, as fast as the broker
// acknowledges, for SECONDS. Payloads are made by the product's own encoder
// (src/mqtt/sparkplug_payload.cpp), one per message (its seq and timestamp change).
//
//   sparkplug_edge PORT API_KEY SECONDS [METRICS (1000)] [WINDOW (20)]
//
// Clisonix acknowledges a QoS 1 PUBLISH after its points are durable, so acknowledged
// messages × METRICS is the durable rate. A rebirth request (NCMD) means the broker refused
// data (a sequence gap, an unknown alias): it is counted and printed, and should be 0.
// Output: one line, `messages=N points=N seconds=S points/s=N rebirths=N`.
#include <mosquitto.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>

#include "mqtt/sparkplug.h"

namespace sp = clisonix::mqtt::sparkplug;
using steady = std::chrono::steady_clock;

namespace {

const std::string group = "bench";
const std::string edge_node = "edge-1";
const std::string device = "sp-machine-1";

std::string topic(const char* kind, bool with_device) {
    return "spBv1.0/" + group + "/" + kind + "/" + edge_node + (with_device ? "/" + device : "");
}

uint64_t now_ms() {
    return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                     std::chrono::system_clock::now().time_since_epoch())
                                     .count());
}

// A quarter each of Double, Float, Int32 and Boolean, as a machine's tags mix them.
constexpr sp::datatype type_of(int i) {
    switch (i % 4) {
        case 0:
            return sp::datatype::float64;
        case 1:
            return sp::datatype::float32;
        case 2:
            return sp::datatype::int32;
        default:
            return sp::datatype::boolean;
    }
}

sp::value value_of(int i, uint64_t message) {
    const double x = static_cast<double>((message * 7 + static_cast<uint64_t>(i) * 13) % 1000);
    switch (type_of(i)) {
        case sp::datatype::float64:
            return x / 10.0;
        case sp::datatype::float32:
            return static_cast<double>(static_cast<float>(x / 4.0));
        case sp::datatype::int32:
            return static_cast<int64_t>(x) - 500;
        default:
            return (message + static_cast<uint64_t>(i)) % 2 == 0;
    }
}

struct state {
    std::mutex mu;
    std::condition_variable cv;
    int connack = -1;
    uint64_t in_flight = 0;
    uint64_t acked_data = 0;  // DDATA messages acknowledged
    std::atomic<uint64_t> rebirths{0};
};

}  // namespace

int main(int argc, char** argv) {
    if (argc < 4) {
        std::fprintf(stderr, "usage: sparkplug_edge PORT API_KEY SECONDS [METRICS] [WINDOW]\n");
        return 2;
    }
    const int port = std::atoi(argv[1]);
    const std::string key = argv[2];
    const double seconds = std::atof(argv[3]);
    const int metrics = argc > 4 ? std::atoi(argv[4]) : 1000;
    const uint64_t window = argc > 5 ? std::strtoull(argv[5], nullptr, 10) : 20;

    mosquitto_lib_init();
    state st;
    struct mosquitto* mosq = mosquitto_new(("bench-" + edge_node).c_str(), true, &st);
    mosquitto_int_option(mosq, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311);
    mosquitto_max_inflight_messages_set(mosq, static_cast<unsigned>(window) + 2);
    mosquitto_username_pw_set(mosq, key.c_str(), key.c_str());
    mosquitto_connect_callback_set(mosq, [](struct mosquitto* m, void* self, int rc) {
        auto* s = static_cast<state*>(self);
        if (rc == 0) mosquitto_subscribe(m, nullptr, topic("NCMD", false).c_str(), 0);
        std::lock_guard lock(s->mu);
        s->connack = rc;
        s->cv.notify_all();
    });
    mosquitto_publish_callback_set(mosq, [](struct mosquitto*, void* self, int) {
        auto* s = static_cast<state*>(self);
        std::lock_guard lock(s->mu);
        --s->in_flight;
        ++s->acked_data;
        s->cv.notify_all();
    });
    mosquitto_message_callback_set(
        mosq, [](struct mosquitto*, void* self, const struct mosquitto_message*) {
            ++static_cast<state*>(self)->rebirths;
        });
    if (int rc = mosquitto_connect(mosq, "127.0.0.1", port, 30); rc != MOSQ_ERR_SUCCESS) {
        std::fprintf(stderr, "sparkplug_edge: connect: %s\n", mosquitto_strerror(rc));
        return 1;
    }
    mosquitto_loop_start(mosq);
    {
        std::unique_lock lock(st.mu);
        if (!st.cv.wait_for(lock, std::chrono::seconds(10), [&] { return st.connack >= 0; }) ||
            st.connack != 0) {
            std::fprintf(stderr, "sparkplug_edge: CONNACK %d\n", st.connack);
            return 1;
        }
    }

    uint64_t seq = 0;
    auto publish = [&](const std::string& t, const sp::payload& p) {
        const std::string bytes = sp::encode(p);
        {
            std::unique_lock lock(st.mu);
            st.cv.wait(lock, [&] { return st.in_flight < window; });
            ++st.in_flight;
        }
        if (int rc = mosquitto_publish(mosq, nullptr, t.c_str(), static_cast<int>(bytes.size()),
                                       bytes.data(), 1, false);
            rc != MOSQ_ERR_SUCCESS) {
            std::fprintf(stderr, "sparkplug_edge: publish: %s\n", mosquitto_strerror(rc));
            std::exit(1);
        }
    };
    auto next_seq = [&] {
        const uint64_t s = seq;
        seq = (seq + 1) % 256;
        return s;
    };

    sp::payload nbirth;
    nbirth.timestamp_ms = now_ms();
    nbirth.seq = next_seq();
    {
        sp::metric bd;
        bd.name = "bdSeq";
        bd.type = static_cast<uint32_t>(sp::datatype::uint64);
        bd.v = uint64_t{0};
        nbirth.metrics.push_back(bd);
    }
    publish(topic("NBIRTH", false), nbirth);
    sp::payload dbirth;
    dbirth.timestamp_ms = now_ms();
    dbirth.seq = next_seq();
    for (int i = 0; i < metrics; ++i) {
        sp::metric m;
        char name[32];
        std::snprintf(name, sizeof name, "tag_%04d", i);
        m.name = name;
        m.alias = static_cast<uint64_t>(i);
        m.type = static_cast<uint32_t>(type_of(i));
        m.v = value_of(i, 0);
        dbirth.metrics.push_back(std::move(m));
    }
    publish(topic("DBIRTH", true), dbirth);
    {
        // The births are acknowledged (the devices and metrics exist) before the clock starts.
        std::unique_lock lock(st.mu);
        st.cv.wait(lock, [&] { return st.in_flight == 0; });
        st.acked_data = 0;
    }

    sp::payload data;
    data.metrics.resize(static_cast<size_t>(metrics));
    for (int i = 0; i < metrics; ++i) {
        data.metrics[static_cast<size_t>(i)].alias = static_cast<uint64_t>(i);
        data.metrics[static_cast<size_t>(i)].type = static_cast<uint32_t>(type_of(i));
    }
    const std::string ddata = topic("DDATA", true);
    const auto started = steady::now();
    const auto until = started + std::chrono::duration<double>(seconds);
    uint64_t message = 0;
    data.timestamp_ms = *dbirth.timestamp_ms;
    while (steady::now() < until) {
        ++message;
        // A point is (series, millisecond): a message in the same millisecond as the one before
        // would overwrite its points, so each message's timestamp is at least 1 ms later.
        data.timestamp_ms = std::max(now_ms(), *data.timestamp_ms + 1);
        data.seq = next_seq();
        for (int i = 0; i < metrics; ++i)
            data.metrics[static_cast<size_t>(i)].v = value_of(i, message);
        publish(ddata, data);
    }
    uint64_t acked = 0;
    {
        std::unique_lock lock(st.mu);
        st.cv.wait_for(lock, std::chrono::seconds(30), [&] { return st.in_flight == 0; });
        acked = st.acked_data;
    }
    const double elapsed = std::chrono::duration<double>(steady::now() - started).count();
    mosquitto_disconnect(mosq);
    mosquitto_loop_stop(mosq, false);
    mosquitto_destroy(mosq);
    mosquitto_lib_cleanup();
    const uint64_t points = acked * static_cast<uint64_t>(metrics);
    std::printf("messages=%llu points=%llu seconds=%.2f points/s=%.0f rebirths=%llu\n",
                static_cast<unsigned long long>(acked), static_cast<unsigned long long>(points),
                elapsed, static_cast<double>(points) / elapsed,
                static_cast<unsigned long long>(st.rebirths.load()));
    return 0;
}
