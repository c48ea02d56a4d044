// mqtt_load — many MQTT device connections publishing telemetry, measuring what is durable.
//
// Each of C connections logs in as a device (one token per line of the tokens file, reused
// round-robin) and publishes 200-byte JSON telemetry (the payload of ../shared/bench/mqtt/
// mqttbench.c) to v1/devices/me/telemetry until N messages are out.
//   QoS 1: a message counts when its PUBACK arrives, which Clisonix sends only after the WAL
//          fsync: acked msgs/s is the durable rate. W messages in flight per connection.
//   QoS 0: after the N messages every connection sends one QoS 1 "fence" message; PUBACKs
//          come in order and batches are written in order, so when every fence is acked all
//          N messages are durable. Rate = (N + C) / time to the last fence ack.
//   -I S:  idle mode: C connections, CONNECT only, held S seconds (memory per connection).
// Output: progress once a second on stderr, one JSON line on stdout.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "mqtt/codec.h"

using namespace clisonix::mqtt;
using steady = std::chrono::steady_clock;

namespace {

struct conn {
    int fd = -1;
    int index = 0;
    bool connected = false;
    bool fenced = false;
    int inflight = 0;
    uint16_t next_id = 1;
    std::string out, in;
    size_t out_off = 0;
    bool want_out = true;  // EPOLLOUT registered
};

int64_t now_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

void payload(std::string& p, int device, long seq, int size) {
    static const char* fields =
        "\"temperature\":54.21,\"vibration_rms\":1.234,\"pressure\":4.086,"
        "\"current\":30.96,\"voltage\":230.6,\"rpm\":1451,\"flow\":40.4";
    char buf[4096];
    int l =
        std::snprintf(buf, sizeof buf, "{\"t\":%lld,\"device\":\"d%05d\",\"seq\":%ld,%s,\"pad\":\"",
                      static_cast<long long>(now_ns()), device, seq, fields);
    while (l < size - 2 && l < static_cast<int>(sizeof buf) - 3)
        buf[l++] = 'x';
    buf[l++] = '"';
    buf[l++] = '}';
    p.assign(buf, static_cast<size_t>(l));
}

}  // namespace

int main(int argc, char** argv) {
    int port = 1883, conns = 1000, qos = 1, size = 200, window = 10, idle_s = 0;
    long n = 200000;
    std::string tokens_file;
    int c;
    while ((c = getopt(argc, argv, "p:c:n:q:s:w:t:I:")) != -1) {
        switch (c) {
            case 'p':
                port = std::atoi(optarg);
                break;
            case 'c':
                conns = std::atoi(optarg);
                break;
            case 'n':
                n = std::atol(optarg);
                break;
            case 'q':
                qos = std::atoi(optarg);
                break;
            case 's':
                size = std::atoi(optarg);
                break;
            case 'w':
                window = std::atoi(optarg);
                break;
            case 't':
                tokens_file = optarg;
                break;
            case 'I':
                idle_s = std::atoi(optarg);
                break;
            default:
                std::fprintf(stderr,
                             "usage: mqtt_load -t tokens.txt [-p port] [-c conns] [-n msgs] "
                             "[-q 0|1] [-s bytes] [-w window] [-I idle_seconds]\n");
                return 2;
        }
    }
    std::vector<std::string> tokens;
    {
        std::ifstream f(tokens_file);
        for (std::string line; std::getline(f, line);)
            if (!line.empty()) tokens.push_back(line);
    }
    if (tokens.empty()) {
        std::fprintf(stderr, "mqtt_load: no tokens in '%s'\n", tokens_file.c_str());
        return 2;
    }
    int ep = epoll_create1(0);
    std::vector<conn> cs(static_cast<size_t>(conns));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    for (int i = 0; i < conns; ++i) {
        auto& k = cs[static_cast<size_t>(i)];
        k.index = i;
        k.fd = socket(AF_INET, SOCK_STREAM, 0);
        int one = 1;
        setsockopt(k.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (connect(k.fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
            std::perror("connect");
            return 1;
        }
        fcntl(k.fd, F_SETFL, O_NONBLOCK);
        connect_packet cp;
        cp.client_id = "bench-" + std::to_string(i);
        cp.keep_alive = 120;
        cp.username = tokens[static_cast<size_t>(i) % tokens.size()];
        encode(cp, k.out);
        epoll_event ev{};
        ev.events = EPOLLIN | EPOLLOUT;
        ev.data.u32 = static_cast<uint32_t>(i);
        epoll_ctl(ep, EPOLL_CTL_ADD, k.fd, &ev);
    }
    long sent = 0, acked = 0, fences_acked = 0;
    int connected = 0;
    auto t_start = steady::now();
    auto t_connected = t_start;
    auto t_first = t_start;
    auto t_last_print = t_start;
    long last_acked = 0;
    std::string pl, pkt;

    auto flush_out = [&](conn& k) -> bool {
        while (k.out_off < k.out.size()) {
            ssize_t w =
                send(k.fd, k.out.data() + k.out_off, k.out.size() - k.out_off, MSG_NOSIGNAL);
            if (w < 0) {
                if (errno == EAGAIN) return true;
                std::fprintf(stderr, "mqtt_load: send: %s\n", std::strerror(errno));
                return false;
            }
            k.out_off += static_cast<size_t>(w);
        }
        k.out.clear();
        k.out_off = 0;
        return true;
    };
    auto publish = [&](conn& k, int q) {
        payload(pl, k.index, sent, size);
        publish_packet p{
            "v1/devices/me/telemetry", pl, static_cast<uint8_t>(q), false, false, 0, {}};
        if (q) {
            if (++k.next_id == 0) k.next_id = 1;
            p.packet_id = k.next_id;
            ++k.inflight;
        }
        encode(p, v311, k.out);
    };
    auto fill = [&](conn& k) {
        if (!k.connected || idle_s) return;
        if (qos == 1) {
            while (k.inflight < window && sent < n) {
                publish(k, 1);
                ++sent;
            }
        } else {
            for (int j = 0; j < 16 && sent < n && k.out.size() < 16384; ++j) {
                publish(k, 0);
                ++sent;
            }
            if (sent >= n && !k.fenced) {
                publish(k, 1);
                k.fenced = true;
            }
        }
    };

    std::vector<epoll_event> evs(1024);
    bool done = false;
    while (!done) {
        int m = epoll_wait(ep, evs.data(), static_cast<int>(evs.size()), 100);
        for (int e = 0; e < m; ++e) {
            auto& k = cs[evs[static_cast<size_t>(e)].data.u32];
            if (evs[static_cast<size_t>(e)].events & (EPOLLERR | EPOLLHUP)) {
                std::fprintf(stderr, "mqtt_load: connection %d closed by the broker\n", k.index);
                return 1;
            }
            if (evs[static_cast<size_t>(e)].events & EPOLLIN) {
                char buf[65536];
                while (true) {
                    ssize_t r = recv(k.fd, buf, sizeof buf, 0);
                    if (r == 0) {
                        std::fprintf(stderr, "mqtt_load: connection %d closed by the broker\n",
                                     k.index);
                        return 1;
                    }
                    if (r < 0) break;
                    k.in.append(buf, static_cast<size_t>(r));
                }
                size_t off = 0;
                while (true) {
                    frame f;
                    if (read_frame(reinterpret_cast<const uint8_t*>(k.in.data()) + off,
                                   k.in.size() - off, 1 << 28, f) != frame_status::complete)
                        break;
                    if (f.type() == packet_type::connack) {
                        if (static_cast<uint8_t>(k.in[off + f.header_size + 1]) != 0) {
                            std::fprintf(stderr, "mqtt_load: CONNACK refused (%d)\n",
                                         k.in[off + f.header_size + 1]);
                            return 1;
                        }
                        k.connected = true;
                        if (connected == 0) t_first = steady::now();  // publishing starts
                        if (++connected == conns) {
                            t_connected = steady::now();
                            std::fprintf(
                                stderr, "mqtt_load: %d connections up in %.2f s\n", conns,
                                std::chrono::duration<double>(t_connected - t_start).count());
                        }
                    } else if (f.type() == packet_type::puback) {
                        --k.inflight;
                        if (qos == 1)
                            ++acked;
                        else
                            ++fences_acked;
                    }
                    off += f.total();
                }
                k.in.erase(0, off);
            }
            fill(k);
            if (!flush_out(k)) return 1;
            // EPOLLOUT only while there is something to write or (QoS 0) to generate: a
            // level-triggered EPOLLOUT on an idle socket would spin on the shared CPUs.
            const bool want = !k.out.empty() || (qos == 0 && !k.fenced && k.connected && !idle_s);
            if (want != k.want_out) {
                epoll_event ev{};
                ev.events = EPOLLIN | (want ? EPOLLOUT : 0u);
                ev.data.u32 = static_cast<uint32_t>(k.index);
                epoll_ctl(ep, EPOLL_CTL_MOD, k.fd, &ev);
                k.want_out = want;
            }
        }
        if (idle_s && connected == conns) {
            std::fprintf(stderr, "mqtt_load: holding %d idle connections for %d s\n", conns,
                         idle_s);
            std::fflush(stderr);
            std::this_thread::sleep_for(std::chrono::seconds(idle_s));
            std::printf("{\"idle_connections\":%d}\n", conns);
            return 0;
        }
        const auto now = steady::now();
        if (now - t_last_print >= std::chrono::seconds(1)) {
            const double dt = std::chrono::duration<double>(now - t_last_print).count();
            std::fprintf(stderr, "mqtt_load: sent %ld acked %ld (%.0f msg/s)\n", sent,
                         qos == 1 ? acked : fences_acked,
                         static_cast<double>(qos == 1 ? acked - last_acked : 0) / dt);
            last_acked = acked;
            t_last_print = now;
        }
        if (qos == 1 && acked >= n) done = true;
        if (qos == 0 && fences_acked >= conns) done = true;
    }
    // From the first CONNACK (when publishing starts) to the last acknowledgement.
    const double secs = std::chrono::duration<double>(steady::now() - t_first).count();
    const long total = qos == 1 ? n : n + conns;
    std::printf(
        "{\"broker\":\"clisonix\",\"qos\":%d,\"connections\":%d,\"size\":%d,\"messages\":%ld,"
        "\"seconds\":%.3f,\"durable_msgs_per_s\":%.0f,\"window\":%d}\n",
        qos, conns, size, total, secs, static_cast<double>(total) / secs, window);
    return 0;
}
