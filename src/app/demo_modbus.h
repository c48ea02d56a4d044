// `clisonix demo`'s simulated Modbus machine: an in-process Modbus TCP server (libmodbus) on
// a loopback port, whose registers follow a simple hydraulic press, and the connector
// document that polls it.
#pragma once

#include <atomic>
#include <boost/json.hpp>
#include <cstdint>
#include <string>
#include <thread>

namespace clisonix::app {

// Unit 1 of the press, protocol addresses:
//   holding 0      oil temperature, int16 in tenths of °C (scale 0.1)
//   holding 1-2    hydraulic pressure, float32 bar, most significant word first
//   holding 3-4    strokes since start, uint32, least significant word first
//   input   0      motor current, uint16 in hundredths of A (scale 0.01)
//   coil    0      running
class demo_modbus_machine {
public:
    demo_modbus_machine() = default;
    ~demo_modbus_machine() { stop(); }
    demo_modbus_machine(const demo_modbus_machine&) = delete;
    demo_modbus_machine& operator=(const demo_modbus_machine&) = delete;

    // Listens on 127.0.0.1:`port` (0: a free one) and serves from a thread of its own.
    // False when it cannot listen (the demo goes on without it).
    bool start(int port);
    void stop();
    int port() const { return _port; }

    // The name of the device it feeds and the connector document for POST /api/v1/connectors.
    static constexpr const char* device = "press-modbus-1";
    boost::json::object connector_document() const;

private:
    void serve();

    int _port = 0;
    int _listen_fd = -1;
    std::atomic<bool> _stop{false};
    std::thread _thread;
};

}  // namespace clisonix::app
