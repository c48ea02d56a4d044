// `clisonix demo`'s Sparkplug B edge node (see demo_sparkplug.h).
#include "app/demo_sparkplug.h"

#include <mosquitto.h>

#include <atomic>
#include <cmath>
#include <string>
#include <vector>

#include "mqtt/mqtt.h"

namespace clisonix::app {

struct demo_edge_node::state {
    struct mosquitto* mosq = nullptr;
    std::atomic<int> connack{-1};
    std::atomic<bool> birth_due{true};  // after each (re)connect and each rebirth request
    uint64_t seq = 0;
    uint64_t cycles = 0;
    std::string topic(const char* kind, bool with_device = false) const {
        std::string t = std::string("spBv1.0/") + group + "/" + kind + "/" + edge_node;
        if (with_device) t += std::string("/") + device;
        return t;
    }
    void publish(const std::string& topic, const std::string& payload) {
        mosquitto_publish(mosq, nullptr, topic.c_str(), static_cast<int>(payload.size()),
                          payload.data(), 0, false);
    }
    uint64_t next_seq() {
        const uint64_t s = seq;
        seq = (seq + 1) % 256;
        return s;
    }
};

namespace {

// The press: pressure and temperature follow the stroke cycle, a counter of strokes.
std::vector<mqtt::sparkplug_point> press_metrics(int64_t now_ms, uint64_t cycles, bool birth) {
    const double t = static_cast<double>(now_ms) / 1000.0;
    const double pressure = 120.0 + 15.0 * std::sin(t / 20.0);
    const double temperature = 48.0 + 4.0 * std::sin(t / 300.0) + 0.5 * std::sin(t / 7.0);
    std::vector<mqtt::sparkplug_point> m = {
        {"pressure", 1, "Double", std::round(pressure * 100) / 100, "bar"},
        {"oil_temperature", 2, "Float", std::round(temperature * 10) / 10, "°C"},
        {"running", 3, "Boolean", 1, ""},
        {"strokes", 4, "Int64", static_cast<double>(cycles), ""},
    };
    if (!birth)
        for (auto& p : m) {
            p.name.clear();  // data by alias, as edge nodes send it
            p.unit.clear();
        }
    return m;
}

}  // namespace

demo_edge_node::demo_edge_node(std::unique_ptr<state> s) : _s(std::move(s)) {}

std::unique_ptr<demo_edge_node> demo_edge_node::start(const std::string& host, int port,
                                                      const std::string& api_key,
                                                      std::string& error) {
    auto s = std::make_unique<state>();
    s->mosq = mosquitto_new("clisonix-demo-sparkplug-edge", true, s.get());
    if (!s->mosq) {
        error = "no MQTT client";
        return nullptr;
    }
    mosquitto_int_option(s->mosq, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311);
    mosquitto_username_pw_set(s->mosq, api_key.c_str(), api_key.c_str());
    const auto death = mqtt::encode_sparkplug(0, std::nullopt, {{"bdSeq", 0, "UInt64", 0, ""}});
    mosquitto_will_set(s->mosq, s->topic("NDEATH").c_str(), static_cast<int>(death.size()),
                       death.data(), 0, false);
    mosquitto_reconnect_delay_set(s->mosq, 1, 10, true);
    mosquitto_connect_callback_set(s->mosq, [](struct mosquitto* m, void* self, int rc) {
        auto* st = static_cast<state*>(self);
        st->connack = rc;
        if (rc != 0) return;
        mosquitto_subscribe(m, nullptr, st->topic("NCMD").c_str(), 0);
        st->birth_due = true;
    });
    mosquitto_message_callback_set(
        s->mosq, [](struct mosquitto*, void* self, const struct mosquitto_message*) {
            static_cast<state*>(self)->birth_due = true;  // the only command: Rebirth
        });
    if (int rc = mosquitto_connect(s->mosq, host.c_str(), port, 30); rc != MOSQ_ERR_SUCCESS) {
        error = mosquitto_strerror(rc);
        mosquitto_destroy(s->mosq);
        return nullptr;
    }
    mosquitto_loop_start(s->mosq);
    return std::unique_ptr<demo_edge_node>(new demo_edge_node(std::move(s)));
}

demo_edge_node::~demo_edge_node() {
    if (!_s || !_s->mosq) return;
    // A clean disconnect drops the will: say NDEATH ourselves.
    _s->publish(_s->topic("NDEATH"),
                mqtt::encode_sparkplug(0, std::nullopt, {{"bdSeq", 0, "UInt64", 0, ""}}));
    mosquitto_disconnect(_s->mosq);
    mosquitto_loop_stop(_s->mosq, false);
    mosquitto_destroy(_s->mosq);
}

void demo_edge_node::tick(int64_t now_ms) {
    auto& s = *_s;
    if (s.connack != 0) return;
    const auto ts = static_cast<uint64_t>(now_ms);
    ++s.cycles;
    if (s.birth_due.exchange(false)) {
        s.seq = 0;
        s.publish(s.topic("NBIRTH"),
                  mqtt::encode_sparkplug(
                      ts, s.next_seq(),
                      {{"bdSeq", 0, "UInt64", 0, ""},
                       {"uptime_s", 100, "Int64", static_cast<double>(s.cycles), "s"}}));
        s.publish(s.topic("DBIRTH", true),
                  mqtt::encode_sparkplug(ts, s.next_seq(), press_metrics(now_ms, s.cycles, true)));
        return;
    }
    s.publish(s.topic("DDATA", true),
              mqtt::encode_sparkplug(ts, s.next_seq(), press_metrics(now_ms, s.cycles, false)));
}

}  // namespace clisonix::app
