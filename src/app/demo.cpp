// `clisonix demo`: the server (the same serve() as `clisonix serve`) plus a simulated plant
// (demo_plant.h) that a thread provisions and feeds through the public API, the way a user
// and real devices would: devices, assets, relations and rules over HTTP with the admin's
// login; telemetry with each device's own token over HTTP (half the machines) and over MQTT
// to the built-in broker (the other half). docs/decisions/0031-demo-simulator.md and
// 0032-demo-feeds.md say why it is built this way.
#include <mosquitto.h>

#include <algorithm>
#include <atomic>
#include <boost/json.hpp>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "app/app.h"
#include "app/client.h"
#include "app/demo_modbus.h"
#include "app/demo_plant.h"
#include "app/demo_sparkplug.h"
#include "common/progress.h"

namespace clisonix::app {

namespace {

namespace json = boost::json;
using std::chrono::milliseconds;

int64_t wall_ms() {
    return std::chrono::duration_cast<milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

// Messages of the simulator go to stderr (serve() owns the log and closes it on its way
// out, while this thread may still be finishing a request).
std::mutex say_mutex;
void say(const std::string& line) {
    std::lock_guard lock(say_mutex);
    std::fprintf(stderr, "demo: %s\n", line.c_str());
    std::fflush(stderr);
}

// The admin password of the demo: $CLISONIX_ADMIN_PASSWORD, else the one kept in the data
// directory from an earlier run, else a new one kept there (mode 0600) for the next run.
result<std::string> demo_password(const std::string& data_dir) {
    if (const char* env = std::getenv("CLISONIX_ADMIN_PASSWORD"); env && *env)
        return std::string(env);
    const auto file = std::filesystem::path(data_dir) / "demo-admin-password";
    if (std::ifstream in(file); in) {
        std::string pw;
        std::getline(in, pw);
        if (!pw.empty()) return pw;
    }
    static constexpr char alphabet[] = "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    std::random_device rd;
    std::string pw;
    for (int i = 0; i < 20; ++i)
        pw.push_back(alphabet[rd() % (sizeof alphabet - 1)]);
    {
        std::ofstream out(file, std::ios::trunc);
        if (!out) return make_error("unavailable", "cannot write " + file.string());
        out << pw << "\n";
    }
    std::error_code ec;
    std::filesystem::permissions(
        file, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write,
        std::filesystem::perm_options::replace, ec);
    return pw;
}

// One MQTT device: a libmosquitto client with its own network thread.
struct mqtt_device {
    struct mosquitto* mosq = nullptr;
    std::atomic<int> connack{-1};  // -1 waiting, 0 accepted, >0 refused
    ~mqtt_device() {
        if (!mosq) return;
        mosquitto_disconnect(mosq);
        mosquitto_loop_stop(mosq, false);
        mosquitto_destroy(mosq);
    }
};

class simulator {
public:
    simulator(const config::config& cfg, const demo_options& opt, std::string password)
        : _opt(opt), _plant(sim::make_plant(opt.seed)), _password(std::move(password)) {
        std::string bind = cfg.get_string("http.bind");
        _host = (bind.empty() || bind == "0.0.0.0" || bind == "::") ? "127.0.0.1" : bind;
        _port = static_cast<int>(cfg.get_int("http.port"));
        _url = "http://" + _host + ":" + std::to_string(_port);
        _data_dir = cfg.get_string("data.dir");
        // The broker's port, when this build has a broker and it listens on a known port.
        if (config::find_key("mqtt.port")) {
            bool enabled = !config::find_key("mqtt.enabled") || cfg.get_bool("mqtt.enabled");
            bool tls =
                config::find_key("mqtt.tls_cert") && !cfg.get_string("mqtt.tls_cert").empty();
            int port = static_cast<int>(cfg.get_int("mqtt.port"));
            if (enabled && !tls && port > 0) _mqtt_port = port;
        }
    }

    void stop() {
        {
            std::lock_guard lock(_mutex);
            _stop = true;
        }
        _wake.notify_all();
    }
    bool failed() const { return _failed; }

    void run() {
        if (!wait_ready()) return;
        if (!login()) return fail();
        provision();
        if (stopping()) return;
        provision_modbus();
        banner();
        _start_ms = wall_ms() / 1000 * 1000;
        backfill();
        if (stopping()) return;
        wait_for_scoring();
        install_rules();
        connect_mqtt();
        start_sparkplug();
        feed();
        _edge.reset();  // its NDEATH, before the library goes
        if (!_mqtt.empty()) {
            _mqtt.clear();  // disconnects and joins each client's thread
            mosquitto_lib_cleanup();
        }
    }

private:
    bool stopping() {
        std::lock_guard lock(_mutex);
        return _stop;
    }
    // Sleeps until `deadline_ms` (wall clock) or stop(); false when stopped.
    bool sleep_until(int64_t deadline_ms) {
        std::unique_lock lock(_mutex);
        while (!_stop) {
            int64_t left = deadline_ms - wall_ms();
            if (left <= 0) return true;
            _wake.wait_for(lock, milliseconds(left));
        }
        return false;
    }
    // The server cannot run the demo: say so and stop it the way Ctrl-C would.
    void fail() {
        _failed = true;
        std::raise(SIGTERM);
    }
    // Each distinct warning once, so that a missing API or a flapping link does not flood.
    void warn_once(const std::string& key, const std::string& message) {
        if (_warned.insert(key).second) say("warning: " + message);
    }

    bool wait_ready() {
        for (int64_t deadline = wall_ms() + 120'000; wall_ms() < deadline;) {
            if (stopping()) return false;
            if (auto c = client::connect(_url, ""); c) {
                if (auto r = (*c)->request("GET", "/healthz"); r && r->status == 200) return true;
            }
            if (!sleep_until(wall_ms() + 200)) return false;
        }
        say("the server did not answer /healthz within 2 minutes; no simulation");
        return false;
    }

    bool login() {
        auto c = client::connect(_url, "");
        if (!c) {
            say("cannot reach the server: " + c.error().message);
            return false;
        }
        json::object body{{"username", "admin"}, {"password", _password}};
        auto r =
            (*c)->request("POST", "/api/v1/auth/login", json::serialize(body), "application/json");
        if (!r || r->status != 200) {
            say(std::string("cannot log in as admin (") +
                (r ? error_message(*r) : r.error().message) + "). The data directory " + _data_dir +
                " has an admin with another password: set CLISONIX_ADMIN_PASSWORD to it, or "
                "run the demo with another --data.");
            return false;
        }
        std::error_code ec;
        auto v = json::parse(r->body, ec);
        if (ec || !v.is_object() || !v.as_object().contains("access_token")) {
            say("unexpected login answer: " + r->body.substr(0, 200));
            return false;
        }
        auto admin =
            client::connect(_url, std::string(v.as_object().at("access_token").as_string()));
        if (!admin) return false;
        _admin = std::move(*admin);
        return true;
    }

    // POST as the admin; 2xx and 409 (exists already: the demo runs again on its data) are
    // success; 404 means the API is not in this build (one warning per API).
    enum class outcome { created, exists, missing, failed };
    outcome post(const std::string& api, const std::string& target, const json::object& body,
                 std::string* answer = nullptr) {
        auto r = _admin->request("POST", target, json::serialize(body), "application/json");
        if (!r) {
            warn_once(api + ":io", api + ": " + r.error().message);
            return outcome::failed;
        }
        if (answer) *answer = r->body;
        if (r->status >= 200 && r->status < 300) return outcome::created;
        if (r->status == 409) return outcome::exists;
        if (r->status == 404 || r->status == 405) {
            warn_once(api + ":404", api + " is not available in this server (" + target +
                                        " answered " + std::to_string(r->status) +
                                        "); the demo goes on without it");
            return outcome::missing;
        }
        warn_once(api + ":" + std::to_string(r->status), api + ": " + target + " answered " +
                                                             std::to_string(r->status) + ": " +
                                                             error_message(*r));
        return outcome::failed;
    }

    static std::string token_in(const std::string& body) {
        std::error_code ec;
        auto v = json::parse(body, ec);
        if (ec || !v.is_object()) return {};
        const auto& o = v.as_object();
        if (auto it = o.find("token"); it != o.end() && it->value().is_string())
            return std::string(it->value().as_string());
        return {};
    }

    // One simulated Modbus machine and the connector that polls it, so that a newcomer sees a
    // Modbus device beside the HTTP and MQTT ones. The port is new at every start: a
    // connector kept from an earlier run is pointed at it.
    void provision_modbus() {
        if (!_press.start(0)) {
            warn_once("modbus", "the simulated Modbus machine cannot listen; no Modbus device");
            return;
        }
        post("device types", "/api/v1/device-types",
             {{"name", "hydraulic-press"},
              {"description", "Hydraulic press (Modbus TCP)"},
              {"metrics",
               json::object{
                   {"oil_temperature", json::object{{"unit", "°C"}, {"min", 10}, {"max", 70}}},
                   {"pressure", json::object{{"unit", "bar"}, {"min", 0}, {"max", 200}}},
                   {"current", json::object{{"unit", "A"}, {"min", 0}, {"max", 15}}}}}});
        post("devices", "/api/v1/devices",
             {{"name", demo_modbus_machine::device},
              {"type", "hydraulic-press"},
              {"label", "Hydraulic press (Modbus TCP)"},
              {"description",
               "Simulated by clisonix demo, read by the connector demo-press-modbus"}});
        if (!_plant.lines.empty())
            post("relations", "/api/v1/relations",
                 {{"from", _plant.lines.front().name},
                  {"to", demo_modbus_machine::device},
                  {"type", "contains"}});
        const auto doc = _press.connector_document();
        std::string answer;
        if (post("connectors", "/api/v1/connectors", doc, &answer) != outcome::exists) return;
        auto list = _admin->request("GET", "/api/v1/connectors", "", "");
        if (!list || list->status != 200) return;
        std::error_code ec;
        auto v = json::parse(list->body, ec);
        if (ec || !v.is_object()) return;
        for (const auto& c : v.as_object().at("connectors").as_array())
            if (c.at("name") == doc.at("name")) {
                auto r = _admin->request(
                    "PUT", "/api/v1/connectors/" + std::to_string(c.at("id").to_number<int64_t>()),
                    json::serialize(doc), "application/json");
                if (!r || r->status != 200)
                    warn_once("modbus:put", "the demo's Modbus connector was not updated");
            }
    }

    void provision() {
        size_t created = 0, existing = 0;
        auto count = [&](outcome o) {
            created += o == outcome::created;
            existing += o == outcome::exists;
            return o;
        };
        for (const auto& k : sim::kinds()) {
            json::object metrics;
            for (const auto& m : k.metrics)
                metrics[m.name] =
                    json::object{{"unit", std::string(m.unit)}, {"min", m.low}, {"max", m.high}};
            count(post("device types", "/api/v1/device-types",
                       {{"name", std::string(k.name)},
                        {"description", std::string(k.description)},
                        {"metrics", metrics}}));
        }
        for (const auto& s : _plant.sites)
            count(post("assets", "/api/v1/assets", {{"name", s}, {"type", "site"}}));
        for (const auto& l : _plant.lines) {
            count(post("assets", "/api/v1/assets", {{"name", l.name}, {"type", "line"}}));
            count(post("relations", "/api/v1/relations",
                       {{"from", l.site}, {"to", l.name}, {"type", "contains"}}));
        }
        _tokens.assign(_plant.machines.size(), {});
        for (size_t i = 0; i < _plant.machines.size(); ++i) {
            if (stopping()) return;
            const auto& m = _plant.machines[i];
            const auto& k = sim::kinds()[m.kind];
            std::string answer;
            auto o = count(post("devices", "/api/v1/devices",
                                {{"name", m.name},
                                 {"type", std::string(k.name)},
                                 {"label", std::string(k.description) + " " + m.name},
                                 {"description", "Simulated by clisonix demo on " + m.line}},
                                &answer));
            if (o == outcome::created) _tokens[i] = token_in(answer);
            count(post("relations", "/api/v1/relations",
                       {{"from", m.line}, {"to", m.name}, {"type", "contains"}}));
            // An existing device's token was shown once, at creation: get a fresh one.
            if (_tokens[i].empty()) {
                std::string target = "/api/v1/devices/" + m.name + "/token";
                if (post("device tokens", target, json::object{}, &answer) == outcome::created)
                    _tokens[i] = token_in(answer);
            }
            if (_tokens[i].empty())
                warn_once("token:" + m.name, "no access token for " + m.name +
                                                 ": its telemetry goes with the admin's login");
        }
        count(post("users", "/api/v1/users",
                   {{"username", "operator"}, {"password", _password}, {"role", "operator"}}));
        say("plant provisioned: " + std::to_string(created) + " objects created, " +
            std::to_string(existing) + " already there");
    }

    // The detectors score the history on their own thread, behind the backfill. Rules that
    // arrived before they caught up would raise alarms dated in the history, on the hour in
    // which the detectors are still learning: noise a newcomer would take for faults.
    void wait_for_scoring() {
        constexpr std::string_view gauge = "\nclisonix_anomaly_queue_points ";
        for (int64_t deadline = wall_ms() + 120'000; wall_ms() < deadline;) {
            auto r = _admin->request("GET", "/metrics");
            if (!r || r->status != 200) return;  // no metrics to go by: carry on
            auto at = r->body.find(gauge);
            if (at == std::string::npos) return;  // scoring is off
            if (std::atof(r->body.c_str() + at + gauge.size()) == 0) return;
            if (!sleep_until(wall_ms() + 250)) return;
        }
        warn_once("scoring", "the detectors are still scoring the history after 2 minutes");
    }

    // After the backfill, so that rules judge the live plant only: the history's first
    // hour is also when the detectors learn, and its alarms would only be noise.
    void install_rules() {
        size_t created = 0;
        for (const auto& r : sim::rules_for(_opt.speed)) {
            json::object rule{{"name", r.name},
                              {"scope", json::object{{"device_type", r.device_type}}},
                              {"severity", r.severity},
                              {"condition", r.condition},
                              {"notify", json::array{}}};
            if (!r.clear.empty()) rule["clear"] = r.clear;
            created += post("rules", "/api/v1/rules", rule) == outcome::created;
        }
        if (created) say("rules installed: " + std::to_string(created));
    }

    void banner() {
        std::string out =
            "\nClisonix demo is running\n  Dashboard: http://localhost:" + std::to_string(_port) +
            "/\n  Login:     admin / " + _password + "   (or operator / the same password)\n";
        if (_mqtt_port > 0)
            out += "  MQTT:      localhost:" + std::to_string(_mqtt_port) +
                   " (a device's token as the username)\n";
        out += "  " + sim::summary(_plant, _opt.speed) + "\n  Ctrl-C stops it; the data stays in " +
               _data_dir + "\n\n";
        std::cout << out << std::flush;
    }

    int64_t ts_of(int64_t k) const {
        if (k < 0) return _start_ms + k * 1000;
        return _start_ms + static_cast<int64_t>(static_cast<double>(k) * 1000.0 / _opt.speed);
    }

    // The newest point already stored for the plant (a restart on the same data), or 0.
    int64_t newest_stored() {
        int64_t newest = 0;
        for (const auto& m : {_plant.machines.front().name, _plant.machines.back().name}) {
            auto r = _admin->request("GET", "/api/v1/last?device=" + m);
            if (!r || r->status != 200) continue;
            std::error_code ec;
            auto v = json::parse(r->body, ec);
            if (ec || !v.is_object()) continue;
            const auto* series = v.as_object().if_contains("series");
            if (!series || !series->is_array()) continue;
            for (const auto& s : series->as_array()) {
                const auto* points = s.is_object() ? s.as_object().if_contains("points") : nullptr;
                if (!points || !points->is_array()) continue;
                for (const auto& p : points->as_array())
                    if (p.is_array() && !p.as_array().empty() && p.as_array()[0].is_int64())
                        newest = std::max(newest, p.as_array()[0].as_int64());
            }
        }
        return newest;
    }

    // The last `backfill` seconds before the start, healthy, as line protocol in batches of
    // 5 minutes of the whole plant (about 30 000 points each).
    void backfill() {
        if (_opt.backfill_seconds <= 0) return;
        int64_t from = -_opt.backfill_seconds;
        if (int64_t newest = newest_stored(); newest > 0)
            from = std::max(from, (newest - _start_ms) / 1000 + 1);
        if (from >= 0) return;
        const int64_t total = -from;
        constexpr int64_t chunk = 300;
        say("backfilling the last " + std::to_string(total) + " s of history");
        std::string body;
        int64_t points = 0;
        // Seconds of history; a log file gets a line per quarter.
        progress_display shown(std::cerr, "demo: backfill", stderr_is_terminal(), 25);
        for (int64_t k0 = from; k0 < 0; k0 += chunk) {
            if (stopping()) return;
            body.clear();
            for (int64_t k = k0; k < std::min<int64_t>(0, k0 + chunk); ++k)
                for (size_t i = 0; i < _plant.machines.size(); ++i) {
                    auto r = sim::sample(_plant, i, k);
                    points += static_cast<int64_t>(r.values.size());
                    sim::append_line(body, _plant.machines[i].name, r, ts_of(k));
                }
            auto r = _admin->request("POST", "/api/v1/write?precision=ms", body, "text/plain");
            if (!r || r->status / 100 != 2) {
                say("backfill stopped: " + (r ? error_message(*r) : r.error().message));
                return;
            }
            int64_t done = std::min<int64_t>(total, k0 + chunk - from);
            std::lock_guard lock(say_mutex);
            shown.update(static_cast<size_t>(done), static_cast<size_t>(total),
                         std::to_string(points) + " points");
        }
    }

    void connect_mqtt() {
        bool any = std::any_of(_plant.machines.begin(), _plant.machines.end(),
                               [](const sim::machine& m) { return m.over_mqtt; });
        if (!any) return;
        _mqtt.resize(_plant.machines.size());
        if (_mqtt_port <= 0) {
            say("warning: no MQTT broker in this server (or on an unknown port): the MQTT "
                "machines send over HTTP");
            _mqtt.clear();
            return;
        }
        mosquitto_lib_init();
        for (size_t i = 0; i < _plant.machines.size(); ++i) {
            const auto& m = _plant.machines[i];
            if (!m.over_mqtt || _tokens[i].empty()) continue;
            auto dev = std::make_unique<mqtt_device>();
            std::string id = "clisonix-demo-" + m.name;
            dev->mosq = mosquitto_new(id.c_str(), true, dev.get());
            if (!dev->mosq) continue;
            mosquitto_int_option(dev->mosq, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311);
            mosquitto_username_pw_set(dev->mosq, _tokens[i].c_str(), nullptr);
            mosquitto_reconnect_delay_set(dev->mosq, 1, 10, true);
            mosquitto_connect_callback_set(dev->mosq, [](struct mosquitto*, void* self, int rc) {
                static_cast<mqtt_device*>(self)->connack = rc;
            });
            int rc = mosquitto_connect(dev->mosq, _host.c_str(), _mqtt_port, 30);
            if (rc != MOSQ_ERR_SUCCESS) {
                say("warning: the MQTT broker on port " + std::to_string(_mqtt_port) +
                    " is not reachable (" + mosquitto_strerror(rc) +
                    "): the MQTT machines send over HTTP");
                _mqtt.clear();
                mosquitto_lib_cleanup();
                return;
            }
            mosquitto_loop_start(dev->mosq);
            _mqtt[i] = std::move(dev);
        }
        // Every CONNACK within 5 s, else HTTP for all of them: one path or the other, not a mix
        // that would hide a broken broker.
        for (int64_t deadline = wall_ms() + 5000; wall_ms() < deadline;) {
            size_t waiting = 0, refused = 0, accepted = 0;
            for (auto& d : _mqtt) {
                if (!d) continue;
                waiting += d->connack < 0;
                refused += d->connack > 0;
                accepted += d->connack == 0;
            }
            if (refused) break;
            if (!waiting) {
                say("MQTT: " + std::to_string(accepted) +
                    " machines connected to the broker on port " + std::to_string(_mqtt_port));
                return;
            }
            if (!sleep_until(wall_ms() + 50)) return;
        }
        say("warning: the MQTT broker on port " + std::to_string(_mqtt_port) +
            " did not accept the devices' tokens in time: the MQTT machines send over HTTP");
        _mqtt.clear();
        mosquitto_lib_cleanup();
    }

    // One Sparkplug B edge node (demo_sparkplug.h) with an API key of role operator.
    void start_sparkplug() {
        if (_mqtt_port <= 0 || !config::find_key("sparkplug.enabled")) return;
        std::string answer;
        if (post("API keys", "/api/v1/apikeys",
                 {{"name", "demo-sparkplug-edge"}, {"role", "operator"}},
                 &answer) != outcome::created)
            return;
        std::error_code ec;
        auto v = json::parse(answer, ec);
        if (ec || !v.is_object() || !v.as_object().contains("key")) return;
        const std::string key(v.as_object().at("key").as_string());
        mosquitto_lib_init();
        std::string error;
        _edge = demo_edge_node::start(_host, _mqtt_port, key, error);
        if (!_edge) {
            warn_once("sparkplug", "the Sparkplug B edge node cannot connect: " + error);
            return;
        }
        say(std::string("Sparkplug B: edge node ") + demo_edge_node::group + "/" +
            demo_edge_node::edge_node + " publishes device " + demo_edge_node::device);
    }

    void announce_faults(int64_t from_k, int64_t to_k) {
        for (const auto& f : sim::faults_between(_plant, from_k, to_k)) {
            if (f.start < from_k) continue;
            std::string what =
                std::string(sim::fault_name(f.kind)) + " on " + _plant.machines[f.machine].name;
            if (!f.metric.empty()) what += " (" + std::string(f.metric) + ")";
            say("fault: " + what + " for " + std::to_string(f.end - f.start) +
                " simulated seconds");
        }
    }

    // Once a second: every machine's samples that fell due, as one request or message each.
    void feed() {
        std::vector<std::unique_ptr<client>> http(_plant.machines.size());
        int64_t next_k = 0;
        int64_t tick = wall_ms();
        while (!stopping()) {
            int64_t due = static_cast<int64_t>(static_cast<double>(wall_ms() - _start_ms) *
                                               _opt.speed / 1000.0);
            // After a long stall (a suspended laptop), skip ahead rather than flood.
            next_k = std::max(next_k, due - 600);
            if (due >= next_k) {
                announce_faults(next_k, due + 1);
                for (size_t i = 0; i < _plant.machines.size(); ++i)
                    send(i, next_k, due + 1, http[i]);
                if (_edge) _edge->tick(wall_ms());
                next_k = due + 1;
            }
            tick += 1000;
            if (!sleep_until(std::max(tick, wall_ms() + 50))) break;
        }
    }

    void send(size_t i, int64_t from_k, int64_t to_k, std::unique_ptr<client>& http) {
        const auto& m = _plant.machines[i];
        std::vector<std::string> items;
        for (int64_t k = from_k; k < to_k; ++k) {
            auto r = sim::sample(_plant, i, k);
            if (r.present) items.push_back(sim::telemetry_json(r, ts_of(k)));
        }
        if (items.empty()) return;  // silent
        std::string body = items.size() == 1 ? items.front() : "[";
        if (items.size() > 1) {
            for (size_t j = 0; j < items.size(); ++j)
                body += (j ? "," : "") + items[j];
            body += "]";
        }
        if (i < _mqtt.size() && _mqtt[i]) {
            int rc = mosquitto_publish(_mqtt[i]->mosq, nullptr, "v1/devices/me/telemetry",
                                       static_cast<int>(body.size()), body.data(), 1, false);
            if (rc != MOSQ_ERR_SUCCESS)
                warn_once("mqtt:" + m.name + std::to_string(rc),
                          m.name + ": MQTT publish failed: " + mosquitto_strerror(rc));
            return;
        }
        if (!http) {
            if (_tokens[i].empty()) {
                // No device token (an older server): the admin writes the device's telemetry.
                auto r = _admin->request("POST", "/api/v1/devices/" + m.name + "/telemetry", body,
                                         "application/json");
                if (!r || r->status / 100 != 2)
                    warn_once("http:" + m.name, m.name + ": telemetry not accepted: " +
                                                    (r ? error_message(*r) : r.error().message));
                return;
            }
            auto c = client::connect(_url, _tokens[i]);
            if (!c) {
                warn_once("connect:" + m.name, m.name + ": " + c.error().message);
                return;
            }
            http = std::move(*c);
        }
        auto r = http->request("POST", "/api/v1/telemetry", body, "application/json");
        if (!r || r->status / 100 != 2)
            warn_once("http:" + m.name + (r ? std::to_string(r->status) : "io"),
                      m.name + ": telemetry not accepted: " +
                          (r ? error_message(*r) : r.error().message));
    }

    demo_options _opt;
    sim::plant _plant;
    std::string _password;
    std::string _host, _url, _data_dir;
    int _port = 0;
    int _mqtt_port = 0;
    std::unique_ptr<client> _admin;
    demo_modbus_machine _press;        // polled by the server's Modbus connector
    std::vector<std::string> _tokens;  // per machine
    std::vector<std::unique_ptr<mqtt_device>> _mqtt;
    std::unique_ptr<demo_edge_node> _edge;
    std::set<std::string> _warned;
    int64_t _start_ms = 0;
    std::atomic<bool> _failed{false};

    std::mutex _mutex;
    std::condition_variable _wake;
    bool _stop = false;  // guarded by _mutex
};

// Whether a listener could bind `port` on all addresses now: TCP (SOCK_STREAM, with
// SO_REUSEADDR as listeners set it, so that closing connections do not count) or UDP
// (SOCK_DGRAM, without it: a UDP port held with SO_REUSEADDR would be shared, not refused).
bool port_free(int port, int type = SOCK_STREAM) {
    int fd = ::socket(AF_INET, type, 0);
    if (fd < 0) return true;  // cannot tell: let the listener try
    int one = 1;
    if (type == SOCK_STREAM) ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_ANY);
    a.sin_port = htons(static_cast<uint16_t>(port));
    bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    ::close(fd);
    return ok;
}

// A port the system says is free now (0 when it cannot say).
int some_free_port() {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return 0;
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    socklen_t len = sizeof a;
    int port = 0;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0)
        port = ntohs(a.sin_port);
    ::close(fd);
    return port;
}

}  // namespace

int demo(const config::config& given, const demo_options& opt) {
    config::config cfg = given;
    // Debian's mosquitto service often holds 1883 already. The demo is for a first look, so
    // rather than stop there it moves its broker to a free port (a port chosen by the user
    // stays as it is: then a clash is an error, as with `serve`).
    if (config::find_key("mqtt.port") && config::find_key("mqtt.enabled") &&
        cfg.get_bool("mqtt.enabled") && cfg.source("mqtt.port") == "default" &&
        !port_free(static_cast<int>(cfg.get_int("mqtt.port")))) {
        if (int port = some_free_port(); port > 0) {
            auto& e = cfg.entries.find("mqtt.port")->second;
            say("MQTT port " + e.text +
                " is in use (another broker?): the demo's broker listens on " +
                std::to_string(port));
            e.number = port;
            e.text = std::to_string(port);
            e.source = "demo";
        }
    }
    // The same for CoAP's 5683 (another CoAP server, or a second demo): the demo's devices do
    // not use CoAP, so it goes without rather than stopping.
    if (config::find_key("coap.port") && cfg.source("coap.port") == "default" &&
        !port_free(static_cast<int>(cfg.get_int("coap.port")), SOCK_DGRAM)) {
        auto& e = cfg.entries.find("coap.port")->second;
        say("CoAP port " + e.text + " is in use: the demo runs without its CoAP endpoint");
        e.number = 0;
        e.text = "0";
        e.source = "demo";
    }
    if (!(opt.speed > 0) || opt.speed > 1000) {
        std::cerr << "demo: --speed " << opt.speed << ": must be in (0, 1000]\n";
        return exit_usage;
    }
    // At --speed N the plant's faults unfold N times faster in data time and the demo rules'
    // durations shrink with them; so does how often machine health is stored, or a health
    // alarm would wait a whole interval for its second point.
    if (auto it = cfg.entries.find("analytics.health_interval");
        it != cfg.entries.end() && it->second.source == "default" && opt.speed != 1.0) {
        it->second.number =
            static_cast<int64_t>(static_cast<double>(it->second.number) / opt.speed);
        it->second.text = std::to_string(it->second.number) + "ms";
        it->second.source = "demo";
    }
    const std::string data_dir = cfg.get_string("data.dir");
    std::error_code ec;
    std::filesystem::create_directories(data_dir, ec);
    if (ec) {
        std::cerr << "demo: cannot create data directory " << data_dir << ": " << ec.message()
                  << "\n";
        return exit_failure;
    }
    auto password = demo_password(data_dir);
    if (!password) {
        std::cerr << "demo: " << password.error().message << "\n";
        return exit_failure;
    }
    // serve() creates the first admin with this password, so the demo can log in as it.
    ::setenv("CLISONIX_ADMIN_PASSWORD", password->c_str(), 1);

    simulator sim(cfg, opt, *password);
    std::thread plant([&sim] { sim.run(); });
    int rc = serve(cfg);  // until SIGINT/SIGTERM, then the server drains
    sim.stop();
    plant.join();
    if (rc == exit_ok && sim.failed()) return exit_failure;
    return rc;
}

}  // namespace clisonix::app
