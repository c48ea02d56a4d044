// `clisonix demo`'s Sparkplug B edge node: a simulated press line publishing NBIRTH, DBIRTH
// and then DDATA by alias through the built-in broker, as an Ignition or Node-RED edge would.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

namespace clisonix::app {

class demo_edge_node {
public:
    static constexpr const char* group = "demo";
    static constexpr const char* edge_node = "edge-press-line";
    static constexpr const char* device = "press-1";

    // Connects to the broker with an API key of role operator (the username); an error
    // message when it cannot. Births follow the CONNACK and every rebirth request.
    static std::unique_ptr<demo_edge_node> start(const std::string& host, int port,
                                                 const std::string& api_key, std::string& error);
    ~demo_edge_node();  // NDEATH (by the will), disconnect
    demo_edge_node(const demo_edge_node&) = delete;
    demo_edge_node& operator=(const demo_edge_node&) = delete;

    // Once a second: births when due, then the press's DDATA at `now_ms`.
    void tick(int64_t now_ms);

    struct state;

private:
    explicit demo_edge_node(std::unique_ptr<state> s);
    std::unique_ptr<state> _s;
};

}  // namespace clisonix::app
