// The demo's Modbus press: libmodbus's own server calls (modbus_tcp_listen, modbus_receive,
// modbus_reply) on one client at a time, the registers refreshed before every answer.
#include "app/demo_modbus.h"

#include <arpa/inet.h>
#include <modbus.h>
#include <netinet/in.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <unistd.h>

#include <bit>
#include <chrono>
#include <cmath>

namespace clisonix::app {

namespace {

int64_t steady_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

// A press cycle every 6 s: pressure builds to about 180 bar and falls, the oil warms slowly
// towards 48 °C, the current follows the pressure.
void refresh(modbus_mapping_t* m, int64_t since_start_ms) {
    const double t = static_cast<double>(since_start_ms) / 1000.0;
    const double phase = std::fmod(t, 6.0) / 6.0;
    const double pressure = 20.0 + 160.0 * std::pow(std::sin(phase * M_PI), 2);
    const double temperature = 48.0 - 18.0 * std::exp(-t / 600.0) + 0.5 * std::sin(t / 30.0);
    const auto strokes = static_cast<uint32_t>(t / 6.0);
    const double current = 4.0 + pressure * 0.05;
    m->tab_registers[0] =
        static_cast<uint16_t>(static_cast<int16_t>(std::lround(temperature * 10)));
    const auto p = std::bit_cast<uint32_t>(static_cast<float>(pressure));
    m->tab_registers[1] = static_cast<uint16_t>(p >> 16);
    m->tab_registers[2] = static_cast<uint16_t>(p & 0xffff);
    m->tab_registers[3] = static_cast<uint16_t>(strokes & 0xffff);  // least significant first
    m->tab_registers[4] = static_cast<uint16_t>(strokes >> 16);
    m->tab_input_registers[0] = static_cast<uint16_t>(std::lround(current * 100));
    m->tab_bits[0] = 1;
}

}  // namespace

bool demo_modbus_machine::start(int port) {
    modbus_t* probe = modbus_new_tcp("127.0.0.1", port);
    if (!probe) return false;
    _listen_fd = modbus_tcp_listen(probe, 1);
    modbus_free(probe);
    if (_listen_fd < 0) return false;
    // Port 0: the one the system chose.
    sockaddr_in bound{};
    socklen_t len = sizeof bound;
    if (::getsockname(_listen_fd, reinterpret_cast<sockaddr*>(&bound), &len) != 0) return false;
    _port = ntohs(bound.sin_port);
    _thread = std::thread([this] { serve(); });
    return true;
}

void demo_modbus_machine::stop() {
    _stop = true;
    if (_thread.joinable()) _thread.join();
    if (_listen_fd >= 0) ::close(_listen_fd);
    _listen_fd = -1;
}

void demo_modbus_machine::serve() {
    modbus_t* ctx = modbus_new_tcp("127.0.0.1", _port);
    modbus_mapping_t* map = modbus_mapping_new(8, 0, 8, 8);
    if (!ctx || !map) return;
    const int64_t started = steady_ms();
    uint8_t query[MODBUS_TCP_MAX_ADU_LENGTH];
    int client = -1;
    // Waits up to 200 ms for `fd` to be readable, so that stop() is heard.
    auto readable = [](int fd) {
        fd_set set;
        FD_ZERO(&set);
        FD_SET(fd, &set);
        timeval tv{0, 200'000};
        return ::select(fd + 1, &set, nullptr, nullptr, &tv) > 0;
    };
    while (!_stop) {
        if (client < 0) {
            if (!readable(_listen_fd)) continue;
            int fd = _listen_fd;
            client = modbus_tcp_accept(ctx, &fd);
            continue;
        }
        if (!readable(client)) continue;
        const int n = modbus_receive(ctx, query);
        if (n == -1) {  // the connector went away: wait for the next one
            ::close(client);
            client = -1;
            continue;
        }
        if (n == 0) continue;  // a request for another unit
        refresh(map, steady_ms() - started);
        modbus_reply(ctx, query, n, map);
    }
    if (client >= 0) ::close(client);
    modbus_mapping_free(map);
    modbus_free(ctx);
}

boost::json::object demo_modbus_machine::connector_document() const {
    namespace json = boost::json;
    auto entry = [](const char* address, const char* metric, const char* unit,
                    const char* data_type, double scale, const char* word_order) {
        return json::object{
            {"address", address},     {"device", device}, {"metric", metric},        {"unit", unit},
            {"data_type", data_type}, {"scale", scale},   {"word_order", word_order}};
    };
    return json::object{
        {"name", "demo-press-modbus"},
        {"type", "modbus"},
        {"endpoint", "tcp://127.0.0.1:" + std::to_string(_port)},
        {"poll_interval_ms", 1000},
        {"timeout_ms", 1000},
        {"mapping", json::array{entry("holding:0", "oil_temperature", "°C", "int16", 0.1, "big"),
                                entry("holding:1", "pressure", "bar", "float32", 1, "big"),
                                entry("holding:3", "strokes", "", "uint32", 1, "little"),
                                entry("input:0", "current", "A", "uint16", 0.01, "big"),
                                entry("coil:0", "running", "", "bool", 1, "big")}}};
}

}  // namespace clisonix::app
