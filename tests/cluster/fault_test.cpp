// The cluster fault test (issue #16): a whole cluster started by `scripts/cluster up` (three
// nats-server, PostgreSQL, Redis, three Clisonix nodes, nginx), continuous HTTP and MQTT
// QoS 1 load through nginx, and N times a random node or NATS server SIGKILLed and started
// again (`scripts/cluster start`), one at a time. Then, with exact values:
//   1. every HTTP write answered 204 is there, every point once, with its value;
//   2. every MQTT message answered with a PUBACK likewise;
//   3. after each kill, queries through nginx answer 200 again within 5 s;
//   4. K incidents of a threshold rule make exactly K alarms, and the webhook receiver got
//      every notification's X-Clisonix-Event-Id (at least once: delivery is at-least-once);
//   5. a live WebSocket subscriber, reconnecting when its node dies, receives telemetry
//      after every kill.
//
// CLISONIX_FAULT_KILLS sets N (default 20), CLISONIX_FAULT_SEED replays a run (the seed is
// printed at the start; a failure repeats it with the kill sequence). N stays 20 under
// AddressSanitizer too: the test mostly waits for restarts, and 20 kills took 95 s in the
// release build and 85 to 160 s in the ASan build on 2 cores (cluster start included),
// inside the test's TIMEOUT (420 s). The cluster's directory goes with `down --purge` also
// when the test fails; rerun with the printed seed to read its logs.
#include <gtest/gtest.h>
#include <mosquitto.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <boost/json.hpp>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "live/ws_client.h"
#include "notify/receiver.h"
#include "support/test_support.h"

namespace clisonix {
namespace {

namespace json = boost::json;
using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

constexpr int default_kills = 20;

int64_t wall_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

int64_t ms_since(steady::time_point t) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(steady::now() - t).count();
}

std::string env_or(const char* name, std::string fallback) {
    const char* v = std::getenv(name);
    return v && *v ? std::string(v) : fallback;
}

// The port of "http://127.0.0.1:P" or "127.0.0.1:P".
uint16_t port_of(std::string_view address) {
    return static_cast<uint16_t>(std::stoi(std::string(address.substr(address.rfind(':') + 1))));
}

// One request with its own answer timeout (test_support's http_request waits 10 s).
testing::http_response call(uint16_t port, std::string_view method, std::string_view target,
                            std::string_view body, const std::vector<std::string>& headers,
                            std::chrono::milliseconds timeout = 10s) {
    testing::connection c(port);
    if (!c.connected()) return {};
    std::string req = std::string(method) + " " + std::string(target) +
                      " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n";
    for (const auto& h : headers)
        req += h + "\r\n";
    if (!body.empty() || method == "POST" || method == "PUT")
        req += "Content-Length: " + std::to_string(body.size()) + "\r\n";
    req += "\r\n";
    req += body;
    if (!c.send(req)) return {};
    return c.read_response(timeout);
}

// The layout `scripts/cluster up` started, stopped and purged on destruction, also when the
// test fails half-way.
class cluster_guard {
public:
    cluster_guard(std::filesystem::path dir, std::vector<std::string> env)
        : _dir(std::move(dir)), _env(std::move(env)) {}
    ~cluster_guard() {
        if (!_started) return;
        auto down = run({"down", "--dir", _dir.string(), "--purge"}, 120s);
        if (!down) std::cerr << "scripts/cluster down failed: " << _last_err << "\n";
    }
    cluster_guard(const cluster_guard&) = delete;
    cluster_guard& operator=(const cluster_guard&) = delete;

    ::testing::AssertionResult up() {
        _started = true;  // whatever `up` got to start, `down` stops
        auto last = run({"up", "--dir", _dir.string()}, 240s);
        if (!last) return ::testing::AssertionFailure() << "scripts/cluster up: " << _last_err;
        json::error_code ec;
        auto v = json::parse(*last, ec);
        if (ec || !v.is_object())
            return ::testing::AssertionFailure() << "scripts/cluster up printed " << *last;
        layout = v.as_object();
        for (const auto& n : layout.at("nodes").as_array())
            _pids[std::string(n.at("id").as_string())] = static_cast<int>(n.at("pid").as_int64());
        for (const auto& n : layout.at("nats").as_array())
            _pids[std::string(n.at("name").as_string())] = static_cast<int>(n.at("pid").as_int64());
        return ::testing::AssertionSuccess();
    }

    uint16_t http_port() const { return port_of(layout.at("http").as_string()); }
    uint16_t mqtt_port() const { return port_of(layout.at("mqtt").as_string()); }
    std::string admin_password() const {
        return std::string(layout.at("admin_password").as_string());
    }

    void kill(const std::string& name) {
        ::kill(_pids.at(name), SIGKILL);
        // The process is not our child (the script started it); wait until it is gone.
        for (int i = 0; i < 200 && ::kill(_pids.at(name), 0) == 0; ++i) {
            if (zombie(_pids.at(name))) break;
            std::this_thread::sleep_for(10ms);
        }
    }

    ::testing::AssertionResult start(const std::string& name) {
        auto last = run({"start", name, "--dir", _dir.string()}, 120s);
        if (!last)
            return ::testing::AssertionFailure()
                   << "scripts/cluster start " << name << ": " << _last_err;
        json::error_code ec;
        auto v = json::parse(*last, ec);
        if (ec || !v.is_object() || !v.as_object().contains("pid"))
            return ::testing::AssertionFailure()
                   << "scripts/cluster start " << name << " printed " << *last;
        _pids[name] = static_cast<int>(v.at("pid").as_int64());
        return ::testing::AssertionSuccess();
    }

    json::object layout;
    const std::filesystem::path& dir() const { return _dir; }

private:
    static bool zombie(int pid) {
        std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
        std::string line;
        std::getline(stat, line);
        auto close = line.rfind(')');
        return close == std::string::npos || (close + 2 < line.size() && line[close + 2] == 'Z');
    }

    // The script's last stdout line, or nullopt (then _last_err says why).
    std::optional<std::string> run(std::vector<std::string> args,
                                   std::chrono::milliseconds timeout) {
        std::vector<std::string> argv{"/bin/bash",
                                      std::string(CLISONIX_SOURCE_DIR) + "/scripts/cluster"};
        argv.insert(argv.end(), args.begin(), args.end());
        testing::process p(argv, _env, CLISONIX_SOURCE_DIR);
        auto code = p.wait(timeout);
        std::string out = p.out();
        if (code != 0) {
            _last_err = "exit " + (code ? std::to_string(*code) : std::string("(timed out)")) +
                        "\nstdout: " + out + "\nstderr: " + p.err();
            return std::nullopt;
        }
        while (!out.empty() && out.back() == '\n')
            out.pop_back();
        auto nl = out.rfind('\n');
        return nl == std::string::npos ? out : out.substr(nl + 1);
    }

    std::filesystem::path _dir;
    std::vector<std::string> _env;
    std::map<std::string, int> _pids;
    bool _started = false;
    std::string _last_err;
};

// Points sent and points acknowledged, per device: ts -> value.
struct point_book {
    std::mutex mutex;
    std::map<std::string, std::map<int64_t, double>> sent, acked;

    void record_sent(const std::string& device, int64_t ts, double v) {
        std::lock_guard lock(mutex);
        sent[device][ts] = v;
    }
    void record_acked(const std::string& device, int64_t ts, double v) {
        std::lock_guard lock(mutex);
        acked[device][ts] = v;
    }
    size_t acked_count() {
        std::lock_guard lock(mutex);
        size_t n = 0;
        for (const auto& [d, points] : acked)
            n += points.size();
        return n;
    }
};

// The HTTP writer: every 40 ms one line-protocol batch through nginx with one point per
// device, sent again (same timestamps, same values) until it is answered 204. The alarm
// device's values stay between the rule's clear (500) and fire (1000) levels except during
// an incident: three batches above 1000, then three below 500.
class http_writer {
public:
    static constexpr int incident_high = 3, incident_low = 3;

    http_writer(uint16_t port, std::string key, std::vector<std::string> devices,
                std::string alarm_device, int64_t t0, point_book& book)
        : _port(port),
          _key(std::move(key)),
          _devices(std::move(devices)),
          _alarm_device(std::move(alarm_device)),
          _t0(t0),
          _book(book) {
        _thread = std::thread([this] { loop(); });
    }
    ~http_writer() { stop(); }
    void stop() {
        _stop = true;
        if (_thread.joinable()) _thread.join();
    }
    void request_incident() { ++_incidents_requested; }
    int incidents_done() const { return _incidents_done; }
    int64_t batches_acked() const { return _acked; }
    int64_t failures() const { return _failures; }
    int64_t last_ts() const { return _last_ts; }
    // Milliseconds from `t` until a batch was acknowledged after it (waiting up to
    // `timeout`), or nullopt.
    std::optional<int64_t> acked_after(steady::time_point t, std::chrono::milliseconds timeout) {
        const auto deadline = steady::now() + timeout;
        while (true) {
            const auto last = steady::time_point(steady::duration(_last_ack));
            if (last > t)
                return std::chrono::duration_cast<std::chrono::milliseconds>(last - t).count();
            if (steady::now() >= deadline) return std::nullopt;
            std::this_thread::sleep_for(10ms);
        }
    }
    // The timestamp of each incident's first point above 1000: its alarm's first_at.
    std::vector<int64_t> incident_starts() {
        std::lock_guard lock(_starts_mutex);
        return _incident_starts;
    }

private:
    void loop() {
        int64_t seq = 0;
        int phase = 0;  // 0: normal; 1..high: high batches; then low batches
        while (!_stop) {
            if (phase == 0 && _incidents_started < _incidents_requested) {
                ++_incidents_started;
                phase = 1;
            }
            const int64_t ts = _t0 + seq * 10;
            std::string body;
            std::vector<std::tuple<std::string, int64_t, double>> points;
            for (size_t d = 0; d < _devices.size(); ++d) {
                double v = static_cast<double>(d) * 100000 + static_cast<double>(seq) + 0.25;
                points.emplace_back(_devices[d], ts, v);
            }
            double alarm_v = 700 + static_cast<double>(seq % 100) + 0.5;
            if (phase >= 1 && phase <= incident_high)
                alarm_v = 1500 + static_cast<double>(seq % 100) + 0.5;
            else if (phase > incident_high)
                alarm_v = 100 + static_cast<double>(seq % 100) + 0.5;
            points.emplace_back(_alarm_device, ts, alarm_v);
            for (const auto& [device, t, v] : points) {
                body += "telemetry,device=" + device + " v=" + std::to_string(v) + " " +
                        std::to_string(t) + "\n";
                _book.record_sent(device, t, v);
            }
            // Sent again until acknowledged, or until the test stops (then it stays
            // unacknowledged: the test stops the writer only once every incident is done).
            bool acked = false;
            while (!acked && !_stop) {
                auto r = call(_port, "POST", "/api/v1/write?precision=ms", body,
                              {"Authorization: Token " + _key}, 15s);
                acked = r.status == 204;
                if (!acked) {
                    ++_failures;
                    std::this_thread::sleep_for(50ms);
                }
            }
            if (acked) {
                ++_acked;
                _last_ack = steady::now().time_since_epoch().count();
                for (const auto& [device, t, v] : points)
                    _book.record_acked(device, t, v);
                if (phase == 1) {
                    std::lock_guard lock(_starts_mutex);
                    _incident_starts.push_back(ts);
                }
                if (phase > 0 && ++phase > incident_high + incident_low) {
                    phase = 0;
                    ++_incidents_done;
                }
            }
            _last_ts = ts;
            ++seq;
            std::this_thread::sleep_for(40ms);
        }
    }
    uint16_t _port;
    std::string _key;
    std::vector<std::string> _devices;
    std::string _alarm_device;
    int64_t _t0;
    point_book& _book;
    std::atomic<bool> _stop{false};
    std::atomic<int> _incidents_requested{0}, _incidents_started{0}, _incidents_done{0};
    std::atomic<int64_t> _acked{0}, _failures{0}, _last_ts{0};
    std::atomic<steady::rep> _last_ack{0};
    std::mutex _starts_mutex;
    std::vector<int64_t> _incident_starts;
    std::thread _thread;
};

// One MQTT device publishing QoS 1 telemetry through nginx's MQTT port with libmosquitto:
// a message is acknowledged when its PUBACK came (on_publish). At most `window` messages
// wait for their PUBACK; one that waited 5 s leaves the window unacknowledged (the client
// library may still send it again after a reconnect, and its PUBACK then still counts).
// libmosquitto's thread only queues the PUBACKs' message ids; this writer's own thread
// matches them to its messages, so that no lock of ours is held while calling libmosquitto.
class mqtt_writer {
public:
    static constexpr int window = 20;

    mqtt_writer(uint16_t port, const std::string& token, std::string device, int64_t t0,
                double base, point_book& book)
        : _device(std::move(device)), _t0(t0), _base(base), _book(book) {
        _mosq = mosquitto_new(("fault-" + _device).c_str(), true, this);
        mosquitto_int_option(_mosq, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311);
        mosquitto_username_pw_set(_mosq, token.c_str(), nullptr);
        mosquitto_reconnect_delay_set(_mosq, 1, 1, false);
        mosquitto_max_inflight_messages_set(_mosq, window);
        mosquitto_connect_callback_set(_mosq, [](mosquitto*, void* self, int rc) {
            auto* me = static_cast<mqtt_writer*>(self);
            if (rc == 0) {
                me->_connected = true;
                ++me->_connects;
            }
        });
        mosquitto_disconnect_callback_set(_mosq, [](mosquitto*, void* self, int) {
            static_cast<mqtt_writer*>(self)->_connected = false;
        });
        mosquitto_publish_callback_set(_mosq, [](mosquitto*, void* self, int mid) {
            auto* me = static_cast<mqtt_writer*>(self);
            std::lock_guard lock(me->_acks_mutex);
            me->_acks.push_back(mid);
        });
        mosquitto_connect_async(_mosq, "127.0.0.1", port, 5);
        mosquitto_loop_start(_mosq);
        _thread = std::thread([this] { loop(); });
    }
    ~mqtt_writer() {
        stop();
        mosquitto_disconnect(_mosq);
        mosquitto_loop_stop(_mosq, true);
        mosquitto_destroy(_mosq);
    }
    // No new messages from now on; PUBACKs still count.
    void quiesce() { _publishing = false; }
    void stop() {
        _stop = true;
        if (_thread.joinable()) _thread.join();
    }
    int64_t acked() const { return _acked; }
    int connects() const { return _connects; }

private:
    struct in_flight {
        int64_t ts;
        double v;
        steady::time_point sent;
    };

    void match_acks() {
        std::vector<int> acks;
        {
            std::lock_guard lock(_acks_mutex);
            acks.swap(_acks);
        }
        for (int mid : acks) {
            for (auto* from : {&_pending, &_expired}) {
                auto it = from->find(mid);
                if (it == from->end()) continue;
                _book.record_acked(_device, it->second.ts, it->second.v);
                from->erase(it);
                ++_acked;
                break;
            }
        }
        for (auto it = _pending.begin(); it != _pending.end();) {
            if (steady::now() - it->second.sent > 5s) {
                _expired[it->first] = it->second;
                it = _pending.erase(it);
            } else {
                ++it;
            }
        }
    }

    void loop() {
        int64_t seq = 0;
        while (!_stop) {
            std::this_thread::sleep_for(20ms);
            match_acks();
            if (!_connected || !_publishing || _pending.size() >= static_cast<size_t>(window))
                continue;
            const int64_t ts = _t0 + seq * 10;
            const double v = _base + static_cast<double>(seq) + 0.75;
            ++seq;
            std::string payload =
                "{\"ts\":" + std::to_string(ts) + ",\"values\":{\"v\":" + std::to_string(v) + "}}";
            _book.record_sent(_device, ts, v);
            int mid = 0;
            int rc = mosquitto_publish(_mosq, &mid, "v1/devices/me/telemetry",
                                       static_cast<int>(payload.size()), payload.data(), 1, false);
            if (rc == MOSQ_ERR_SUCCESS) {
                _expired.erase(mid);
                _pending[mid] = {ts, v, steady::now()};
            }
        }
        match_acks();
    }

    std::string _device;
    int64_t _t0;
    double _base;
    point_book& _book;
    mosquitto* _mosq = nullptr;
    std::map<int, in_flight> _pending, _expired;  // by message id; this writer's thread only
    std::mutex _acks_mutex;
    std::vector<int> _acks;  // PUBACKed message ids not matched yet
    std::atomic<bool> _connected{false}, _publishing{true}, _stop{false};
    std::atomic<int> _connects{0};
    std::atomic<int64_t> _acked{0};
    std::thread _thread;
};

// A live WebSocket subscriber through nginx to one device's telemetry; it reconnects (new
// connection, first-message token, subscribe) whenever its connection drops or stays silent
// for 2 s, and notes when each telemetry message arrived.
class live_subscriber {
public:
    live_subscriber(uint16_t port, std::string key, std::string device)
        : _port(port), _key(std::move(key)), _device(std::move(device)) {
        _thread = std::thread([this] { loop(); });
    }
    ~live_subscriber() { stop(); }
    void stop() {
        _stop = true;
        if (_thread.joinable()) _thread.join();
    }
    // Whether a telemetry message arrived after `t` (waiting up to `timeout`).
    bool received_after(steady::time_point t, std::chrono::milliseconds timeout) {
        auto deadline = steady::now() + timeout;
        while (true) {
            {
                std::lock_guard lock(_mutex);
                if (_last > t) return true;
            }
            if (steady::now() >= deadline) return false;
            std::this_thread::sleep_for(20ms);
        }
    }
    int64_t messages() const { return _messages; }
    int connections() const { return _connections; }

private:
    void loop() {
        while (!_stop) {
            testing::ws_client::options o;
            o.protocols = "clisonix.v1";
            testing::ws_client ws(_port, o);
            if (!ws.open() || !ws.send(R"({"type":"auth","token":")" + _key + "\"}") ||
                !expect(ws, "authenticated") ||
                !ws.send(R"({"type":"subscribe","telemetry":{"devices":[")" + _device + "\"]}}") ||
                !expect(ws, "subscribed")) {
                std::this_thread::sleep_for(100ms);
                continue;
            }
            ++_connections;
            while (!_stop) {
                auto m = ws.read(2s);
                if (!m) break;
                if (type_of(*m) == "telemetry") {
                    ++_messages;
                    std::lock_guard lock(_mutex);
                    _last = steady::now();
                }
            }
        }
    }
    static std::string type_of(const std::string& message) {
        json::error_code ec;
        auto v = json::parse(message, ec);
        if (ec || !v.is_object() || !v.as_object().contains("type")) return {};
        return std::string(v.at("type").as_string());
    }
    static bool expect(testing::ws_client& ws, std::string_view type) {
        for (int i = 0; i < 5; ++i) {
            auto m = ws.read(3s);
            if (!m) return false;
            if (type_of(*m) == type) return true;
        }
        return false;
    }

    uint16_t _port;
    std::string _key, _device;
    std::atomic<bool> _stop{false};
    std::atomic<int64_t> _messages{0};
    std::atomic<int> _connections{0};
    std::mutex _mutex;
    steady::time_point _last{};
    std::thread _thread;
};

// Every acknowledged point of `device` answered through nginx with its exact value; no
// timestamp twice; nothing that was never sent; the count aggregate equal to the raw count.
::testing::AssertionResult holds_exactly(uint16_t port, const std::string& key,
                                         const std::string& device,
                                         const std::map<int64_t, double>& sent,
                                         const std::map<int64_t, double>& acked, int64_t from,
                                         int64_t to, size_t& present) {
    const std::string range = "/api/v1/query?device=" + device +
                              "&metric=v&from=" + std::to_string(from) +
                              "&to=" + std::to_string(to);
    const std::vector<std::string> auth{"Authorization: Token " + key};
    auto raw = call(port, "GET", range, {}, auth, 20s);
    if (raw.status != 200)
        return ::testing::AssertionFailure()
               << device << ": raw query answered " << raw.status << " " << raw.body;
    std::map<int64_t, double> got;
    size_t total = 0;
    std::string problems;
    auto note = [&](const std::string& what) {
        if (problems.size() < 2000) problems += "\n  " + what;
    };
    const auto raw_doc = json::parse(raw.body);
    for (const auto& s : raw_doc.at("series").as_array())
        for (const auto& p : s.at("points").as_array()) {
            int64_t ts = p.as_array()[0].to_number<int64_t>();
            double v = p.as_array()[1].to_number<double>();
            ++total;
            if (!got.emplace(ts, v).second) note("ts " + std::to_string(ts) + " twice");
        }
    for (const auto& [ts, v] : got) {
        auto it = sent.find(ts);
        if (it == sent.end())
            note("ts " + std::to_string(ts) + " was never sent");
        else if (it->second != v)
            note("ts " + std::to_string(ts) + " holds " + std::to_string(v) + ", sent " +
                 std::to_string(it->second));
    }
    size_t missing = 0;
    for (const auto& [ts, v] : acked) {
        auto it = got.find(ts);
        if (it == got.end()) {
            if (++missing <= 5) note("acknowledged ts " + std::to_string(ts) + " missing");
        } else if (it->second != v) {
            note("acknowledged ts " + std::to_string(ts) + " holds " + std::to_string(it->second) +
                 ", acknowledged " + std::to_string(v));
        }
    }
    if (missing) note(std::to_string(missing) + " acknowledged points missing in all");
    auto count = call(port, "GET", range + "&agg=count", {}, auth, 20s);
    if (count.status != 200) {
        note("count query answered " + std::to_string(count.status) + " " + count.body);
    } else {
        double counted = 0;
        const auto count_doc = json::parse(count.body);
        for (const auto& s : count_doc.at("series").as_array())
            for (const auto& p : s.at("points").as_array())
                counted += p.as_array()[1].to_number<double>();
        if (counted != static_cast<double>(total))
            note("agg=count says " + std::to_string(counted) + ", the raw answer holds " +
                 std::to_string(total));
    }
    present = got.size();
    if (!problems.empty())
        return ::testing::AssertionFailure() << device << " (" << acked.size() << " acknowledged, "
                                             << total << " answered):" << problems;
    return ::testing::AssertionSuccess();
}

// When the points through nginx are wrong: what each node answers on its own, and the
// warnings and errors in its log, so that a failure names the node and its reason.
std::string each_node(const cluster_guard& cluster, const std::string& key,
                      const std::string& device, const std::map<int64_t, double>& sent,
                      const std::map<int64_t, double>& acked, int64_t from, int64_t to) {
    std::string out = "\nasked of each node directly:";
    for (const auto& n : cluster.layout.at("nodes").as_array()) {
        const std::string id(n.at("id").as_string());
        size_t present = 0;
        auto r = holds_exactly(port_of(n.at("http").as_string()), key, device, sent, acked, from,
                               to, present);
        out += "\n" + id + ": " + (r ? std::string("holds every point") : r.message());
        std::ifstream log(cluster.dir() / "logs" / (id + ".log"));
        std::vector<std::string> lines;
        for (std::string line; std::getline(log, line);)
            if (line.find("WARN") != std::string::npos || line.find("ERROR") != std::string::npos ||
                line.find("\"level\":\"warn") != std::string::npos ||
                line.find("\"level\":\"error") != std::string::npos)
                lines.push_back(line.substr(0, 300));
        const size_t first = lines.size() > 8 ? lines.size() - 8 : 0;
        for (size_t i = first; i < lines.size(); ++i)
            out += "\n  log: " + lines[i];
    }
    return out;
}

// Retries `check` until it passes or `timeout` runs out (a restarted node catching up).
::testing::AssertionResult eventually(const std::function<::testing::AssertionResult()>& check,
                                      std::chrono::milliseconds timeout) {
    auto deadline = steady::now() + timeout;
    while (true) {
        auto r = check();
        if (r || steady::now() >= deadline) return r;
        std::this_thread::sleep_for(500ms);
    }
}

TEST(cluster_fault_test, kills_lose_and_double_nothing_acknowledged) {
    const auto test_started = steady::now();
    const int kills = std::stoi(env_or("CLISONIX_FAULT_KILLS", std::to_string(default_kills)));
    const uint64_t seed = std::stoull(env_or("CLISONIX_FAULT_SEED", std::to_string(wall_ms())));
    std::cout << "fault test: " << kills << " kills, seed " << seed
              << " (replay with CLISONIX_FAULT_SEED=" << seed << ")" << std::endl;
    std::mt19937_64 rng(seed);
    constexpr int incidents = 4;

    testing::temp_dir dir("clisonix-fault");
    testing::receiver hook;
    // This build's binary (the sanitizer build's under ASan). On every node, for `up` and
    // each `start`: webhooks may reach the receiver on loopback, outbox rows a killed node
    // had claimed go to another node after 3 s instead of a minute, retries wait at most 2 s.
    cluster_guard cluster(dir.path() / "cluster",
                          {std::string("CLISONIX_BINARY=") + CLISONIX_BINARY,
                           "CLISONIX_CLUSTER_NODE_SETTINGS=notify.webhook_allow=127.0.0.1 "
                           "notify.claim_lease=3s notify.backoff_max=2s"});
    ASSERT_TRUE(cluster.up());
    const uint16_t http = cluster.http_port();
    std::cout << "cluster up after " << ms_since(test_started) << " ms" << std::endl;

    // An admin API key through nginx: valid on every node (the keys are in PostgreSQL).
    auto login = call(http, "POST", "/api/v1/auth/login",
                      R"({"username":"admin","password":")" + cluster.admin_password() + "\"}",
                      {"Content-Type: application/json"});
    ASSERT_EQ(login.status, 200) << login.body;
    const std::string bearer = "Authorization: Bearer " +
                               std::string(json::parse(login.body).at("access_token").as_string());
    auto made_key = call(http, "POST", "/api/v1/apikeys", R"({"name":"fault","role":"admin"})",
                         {bearer, "Content-Type: application/json"});
    ASSERT_EQ(made_key.status, 201) << made_key.body;
    const std::string key(json::parse(made_key.body).at("key").as_string());
    const std::vector<std::string> admin{"Authorization: Token " + key,
                                         "Content-Type: application/json"};

    // The rule and its webhook.
    auto channel = call(
        http, "POST", "/api/v1/channels",
        R"({"name":"ops","type":"webhook","url":")" + hook.url() + R"(","secret":"fault-secret"})",
        admin);
    ASSERT_EQ(channel.status, 201) << channel.body;
    const std::string alarm_device = "boiler-1";
    auto rule = call(http, "POST", "/api/v1/rules",
                     R"({"name":"boiler hot","scope":{"device":")" + alarm_device +
                         R"("},"severity":"major","condition":"v > 1000","clear":"v < 500",)"
                         R"("notify":["ops"]})",
                     admin);
    ASSERT_EQ(rule.status, 201) << rule.body;

    std::vector<std::string> mqtt_tokens;
    for (const std::string device : {"mq-0", "mq-1"}) {
        auto t = call(http, "POST", "/api/v1/devices/" + device + "/token", "", admin);
        ASSERT_EQ(t.status, 201) << t.body;
        mqtt_tokens.emplace_back(json::parse(t.body).at("token").as_string());
    }

    // The load, started after the cluster (and so stopped before it goes down).
    point_book book;
    const int64_t t0 = wall_ms() - 3'600'000 / 2;  // half an hour back: 10 ms apart fits
    live_subscriber live(http, key, "h-0");
    http_writer writer(http, key, {"h-0", "h-1", "h-2"}, alarm_device, t0, book);
    std::vector<std::unique_ptr<mqtt_writer>> mqtt;
    mosquitto_lib_init();
    for (size_t i = 0; i < mqtt_tokens.size(); ++i)
        mqtt.push_back(std::make_unique<mqtt_writer>(cluster.mqtt_port(), mqtt_tokens[i],
                                                     "mq-" + std::to_string(i), t0,
                                                     static_cast<double>(i + 1) * 1e6, book));
    // Every load is flowing before the first kill.
    auto warm = steady::now() + 30s;
    while (steady::now() < warm && (writer.batches_acked() < 5 || mqtt[0]->acked() < 5 ||
                                    mqtt[1]->acked() < 5 || live.messages() < 3))
        std::this_thread::sleep_for(50ms);
    ASSERT_GE(writer.batches_acked(), 5) << "the HTTP writer got no 204 through nginx";
    ASSERT_GE(mqtt[0]->acked(), 5) << "no PUBACK through nginx's MQTT port";
    ASSERT_GE(live.messages(), 3) << "the live subscriber got no telemetry through nginx";

    // The kills, one process at a time; the incidents spread over them.
    const std::vector<std::string> names{"n1", "n2", "n3", "nats1", "nats2", "nats3"};
    std::vector<std::string> sequence;
    std::vector<int> incident_at;
    for (int j = 0; j < incidents; ++j)
        incident_at.push_back(kills * (2 * j + 1) / (2 * incidents));
    int64_t worst_recovery = 0;
    std::string worst_recovery_kill;
    std::vector<std::string> slow_recoveries, silent_live, no_writes;
    int64_t worst_write_gap = 0;
    std::string worst_write_kill;
    for (int k = 0; k < kills; ++k) {
        for (int at : incident_at)
            if (at == k) writer.request_incident();
        const std::string victim = names[rng() % names.size()];
        sequence.push_back(victim);
        const auto killed = steady::now();
        const int64_t writer_ts_at_kill = writer.last_ts();
        cluster.kill(victim);
        // Queries through nginx: the time until three answers in a row are 200.
        int in_a_row = 0;
        std::optional<int64_t> recovered;
        int64_t first_of_run = 0;
        while (ms_since(killed) < 10'000) {
            const int64_t at = ms_since(killed);
            auto q = call(http, "GET",
                          "/api/v1/query?device=h-0&metric=v&agg=count&from=" + std::to_string(t0),
                          {}, {"Authorization: Token " + key}, 2s);
            if (q.status == 200) {
                if (in_a_row++ == 0) first_of_run = at;
                if (in_a_row == 3) {
                    recovered = first_of_run;
                    break;
                }
            } else {
                in_a_row = 0;
            }
            std::this_thread::sleep_for(20ms);
        }
        const int64_t recovery = recovered.value_or(ms_since(killed));
        if (recovery > worst_recovery) {
            worst_recovery = recovery;
            worst_recovery_kill = "kill " + std::to_string(k + 1) + " (" + victim + ")";
        }
        if (!recovered || recovery > 5000)
            slow_recoveries.push_back(
                "kill " + std::to_string(k + 1) + " (" + victim + "): " +
                (recovered ? std::to_string(recovery) + " ms" : std::string("no 200 within 10 s")));
        ASSERT_TRUE(cluster.start(victim)) << "kill " << k + 1;
        const auto back = steady::now();
        // Writes acknowledged again (measured, not asserted: the issue bounds queries), then
        // live telemetry after the restart, whichever node the subscriber is on by then.
        auto writes = writer.acked_after(killed, 30s);
        if (writes && *writes > worst_write_gap) {
            worst_write_gap = *writes;
            worst_write_kill = "kill " + std::to_string(k + 1) + " (" + victim + ")";
        }
        if (!writes) no_writes.push_back("kill " + std::to_string(k + 1) + " (" + victim + ")");
        if (!live.received_after(back, 10s))
            silent_live.push_back("kill " + std::to_string(k + 1) + " (" + victim + ")");
        std::cout << "kill " << k + 1 << "/" << kills << ": " << victim << ", queries 200 after "
                  << recovery << " ms, writes acknowledged after "
                  << (writes ? std::to_string(*writes) + " ms" : std::string("(none in 30 s)"))
                  << ", back after " << ms_since(killed) << " ms (HTTP writer at ts "
                  << writer_ts_at_kill << ")" << std::endl;
        std::this_thread::sleep_for(500ms);
    }
    std::string kill_list;
    for (const auto& s : sequence)
        kill_list += " " + s;

    // Every incident complete, then the load stops.
    auto incidents_deadline = steady::now() + 30s;
    while (writer.incidents_done() < incidents && steady::now() < incidents_deadline)
        std::this_thread::sleep_for(50ms);
    EXPECT_EQ(writer.incidents_done(), incidents);
    std::this_thread::sleep_for(300ms);
    writer.stop();
    for (auto& m : mqtt)
        m->quiesce();
    live.stop();
    std::this_thread::sleep_for(6s);  // late PUBACKs of messages resent after a reconnect
    for (auto& m : mqtt)
        m->stop();
    mqtt.clear();
    mosquitto_lib_cleanup();

    EXPECT_TRUE(slow_recoveries.empty())
        << "queries through nginx did not answer 200 within 5 s after:" <<
        [&] {
            std::string s;
            for (const auto& r : slow_recoveries)
                s += "\n  " + r;
            return s;
        }()
        << "\nkills:" << kill_list << ", seed " << seed;
    EXPECT_TRUE(no_writes.empty())
        << "no write was acknowledged within 30 s of " << no_writes.size() << " kills, e.g. "
        << (no_writes.empty() ? "" : no_writes.front()) << "\nkills:" << kill_list << ", seed "
        << seed;
    EXPECT_TRUE(silent_live.empty())
        << "the live subscriber received nothing within 10 s of " << silent_live.size()
        << " kills, e.g. " << (silent_live.empty() ? "" : silent_live.front())
        << "\nkills:" << kill_list << ", seed " << seed;

    // 1 and 2: the points, through nginx, three times in a row (nginx takes each to another
    // node), after the nodes caught up.
    const int64_t to = wall_ms();
    size_t acked_points = 0, present_points = 0;
    {
        std::lock_guard lock(book.mutex);
        for (const auto& [device, points] : book.acked)
            acked_points += points.size();
    }
    for (const auto& [device, sent] : book.sent) {
        const auto& acked = book.acked[device];
        size_t present = 0;
        const auto held = eventually(
            [&] {
                for (int round = 0; round < 3; ++round) {
                    auto r = holds_exactly(http, key, device, sent, acked, t0, to, present);
                    if (!r) return r;
                }
                return ::testing::AssertionSuccess();
            },
            30s);
        EXPECT_TRUE(held) << "kills:" << kill_list << ", seed " << seed
                          << (held ? "" : each_node(cluster, key, device, sent, acked, t0, to));
        present_points += present;
    }

    // 4: exactly one alarm per incident, each cleared, and every notification received.
    auto alarms =
        call(http, "GET", "/api/v1/alarms?device=" + alarm_device + "&limit=1000", {}, admin);
    ASSERT_EQ(alarms.status, 200) << alarms.body;
    auto alarm_doc = json::parse(alarms.body).as_object();
    // One alarm per incident, each starting at its incident's first point above 1000 and
    // cleared by the run below 500.
    std::vector<int64_t> first_ats;
    std::string alarm_list;
    for (const auto& a : alarm_doc.at("alarms").as_array()) {
        first_ats.push_back(a.at("first_at").as_int64());
        alarm_list += "\n  alarm " + std::to_string(a.at("id").as_int64()) + ": first_at " +
                      std::to_string(a.at("first_at").as_int64()) + ", created_at " +
                      std::to_string(a.at("created_at").as_int64()) + ", count " +
                      std::to_string(a.at("count").as_int64()) + ", " +
                      std::string(a.at("status").as_string());
        EXPECT_EQ(a.at("rule"), "boiler hot");
        EXPECT_EQ(a.at("status"), "cleared") << json::serialize(a);
        // The values crossed 1000 once per incident: a second count is a crossing evaluated
        // twice (a node replaying points it had evaluated before its kill).
        EXPECT_EQ(a.at("count"), 1) << json::serialize(a);
    }
    std::sort(first_ats.begin(), first_ats.end());
    std::string starts;
    for (int64_t ts : writer.incident_starts())
        starts += " " + std::to_string(ts);
    EXPECT_EQ(alarm_doc.at("total").as_int64(), incidents)
        << "alarms for (boiler hot, " << alarm_device << "):" << alarm_list
        << "\nincidents starting at:" << starts << "\nkills:" << kill_list << ", seed " << seed;
    EXPECT_EQ(first_ats, writer.incident_starts())
        << "alarms for (boiler hot, " << alarm_device << "):" << alarm_list
        << "\nincidents starting at:" << starts;
    std::map<int64_t, std::string> outbox;  // notification id -> event name
    auto delivered = eventually(
        [&] {
            outbox.clear();
            auto n = call(http, "GET", "/api/v1/notifications?limit=1000", {}, admin);
            if (n.status != 200)
                return ::testing::AssertionFailure() << "notifications: " << n.status << n.body;
            std::string undelivered;
            const auto doc = json::parse(n.body);
            for (const auto& row : doc.at("notifications").as_array()) {
                if (row.at("channel") != "ops") continue;
                outbox[row.at("id").as_int64()] =
                    std::string(row.at("event").at("event").as_string());
                if (row.at("state") != "delivered") undelivered += " " + json::serialize(row);
            }
            if (!undelivered.empty())
                return ::testing::AssertionFailure() << "not delivered:" << undelivered;
            return ::testing::AssertionSuccess();
        },
        30s);
    EXPECT_TRUE(delivered) << "kills:" << kill_list << ", seed " << seed;
    std::map<std::string, int> events;
    for (const auto& [id, event] : outbox)
        ++events[event];
    EXPECT_EQ(events["alarm.created"], incidents);
    EXPECT_EQ(events["alarm.cleared"], incidents);
    std::string event_counts;
    for (const auto& [name, n] : events)
        event_counts += " " + name + " x" + std::to_string(n);
    EXPECT_EQ(outbox.size(), 2u * static_cast<size_t>(incidents))
        << "the outbox of channel ops holds:" << event_counts;
    std::set<int64_t> received;
    size_t deliveries = 0;
    for (const auto& r : hook.requests()) {
        ++deliveries;
        received.insert(std::stoll(r.header("x-clisonix-event-id")));
    }
    std::string unreceived;
    for (const auto& [id, event] : outbox)
        if (!received.count(id)) unreceived += " " + std::to_string(id) + " (" + event + ")";
    EXPECT_TRUE(unreceived.empty()) << "the receiver never got:" << unreceived;
    EXPECT_EQ(received.size(), outbox.size()) << "the receiver got event ids not in the outbox";

    // 7: the summary.
    int64_t mqtt_acked = 0;
    {
        std::lock_guard lock(book.mutex);
        for (const auto& [device, points] : book.acked)
            if (device.rfind("mq-", 0) == 0) mqtt_acked += static_cast<int64_t>(points.size());
    }
    std::cout << "fault test summary: seed " << seed << ", " << kills << " kills:" << kill_list
              << "\n  points acknowledged " << acked_points << " (MQTT " << mqtt_acked
              << "), answered " << present_points << ", HTTP write failures retried "
              << writer.failures() << "\n  worst query recovery " << worst_recovery << " ms at "
              << worst_recovery_kill << ", longest wait for a write acknowledgement "
              << worst_write_gap << " ms at " << worst_write_kill << "\n  live: " << live.messages()
              << " messages over " << live.connections() << " connections\n  alarms "
              << alarm_doc.at("total").as_int64() << " for " << incidents
              << " incidents; notifications " << outbox.size() << ", distinct event ids received "
              << received.size() << " in " << deliveries << " deliveries\n  took "
              << ms_since(test_started) << " ms" << std::endl;
}

}  // namespace
}  // namespace clisonix
