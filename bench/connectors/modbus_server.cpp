// The connector benchmark's Modbus TCP server (bench/connectors/run.sh): libmodbus's own
// server calls, as the demo's press (src/app/demo_modbus.cpp), answering as fast as it can.
// libmodbus's TCP server answers every unit id from one register table, so 100 holding
// registers here are 100 registers on each of the 50 unit ids the connector polls. The
// registers change on every request (a counter and a slow ramp), so that no two polls store
// the same values.
//
//   modbus_server PORT_FILE    listens on a free loopback port, writes it to PORT_FILE, and
//                              serves one client at a time until killed
#include <arpa/inet.h>
#include <modbus.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <fstream>

namespace {

constexpr int registers = 100;

void refresh(modbus_mapping_t* m, uint32_t request) {
    for (int r = 0; r < registers; ++r)
        m->tab_registers[r] =
            static_cast<uint16_t>((request + static_cast<uint32_t>(r) * 37) % 4096);
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: modbus_server PORT_FILE\n");
        return 2;
    }
    modbus_t* ctx = modbus_new_tcp("127.0.0.1", 0);
    modbus_mapping_t* map = modbus_mapping_new(0, 0, registers, 0);
    if (!ctx || !map) return 1;
    const int listen_fd = modbus_tcp_listen(ctx, 1);
    if (listen_fd < 0) {
        std::perror("modbus_tcp_listen");
        return 1;
    }
    sockaddr_in bound{};
    socklen_t len = sizeof bound;
    if (::getsockname(listen_fd, reinterpret_cast<sockaddr*>(&bound), &len) != 0) return 1;
    { std::ofstream(argv[1]) << ntohs(bound.sin_port) << "\n"; }
    uint8_t query[MODBUS_TCP_MAX_ADU_LENGTH];
    uint32_t requests = 0;
    for (;;) {
        int fd = listen_fd;
        if (modbus_tcp_accept(ctx, &fd) < 0) continue;
        for (;;) {
            const int n = modbus_receive(ctx, query);
            if (n == -1) break;  // the client went away: wait for the next one
            if (n == 0) continue;
            refresh(map, ++requests);
            modbus_reply(ctx, query, n, map);
        }
        modbus_close(ctx);
    }
}
