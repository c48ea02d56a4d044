// The load of bench/scoring_load/run.sh: InfluxDB line protocol over HTTP keep-alive, paced at
// a fixed rate of points per second over `devices` x `metrics` series, while /metrics is read
// every second to follow the anomaly scoring behind ingest (scored, skipped, queue depth) and
// the server's memory and CPU.
//
//   load --port P --key K --pid PID [--rate 100000] [--seconds 60] [--devices 1000]
//        [--metrics 10] [--conns 2] [--step 10]
//
// Every 100 ms each device sends one line with all its metrics (so a series gets rate /
// series points per second, each with its own timestamp), split over `conns` connections.
// Pacing is by an absolute schedule: a late tick is sent at once (never skipped), and the
// lag behind the schedule is reported, so a server that cannot keep up shows as lag and a
// lower ingest rate, not as silently lighter load. After the last tick it waits (at most
// 120 s) for the scoring queue to drain, then prints one summary line and exits 0 when every
// point was acknowledged and scored and none was skipped, else 1.
//
// Plain POSIX sockets and a minimal HTTP/1.1 reader (Content-Length bodies only, as the
// server answers), so the client costs little of the 2 cores it shares with the server.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace {

using clock_type = std::chrono::steady_clock;

struct options {
    int port = 0;
    std::string key;
    int pid = 0;
    long rate = 100'000;
    double seconds = 60;
    int devices = 1000;
    int metrics = 10;
    int conns = 2;
    double step = 10;  // seconds between progress lines when not on a terminal
};

[[noreturn]] void usage(const std::string& why) {
    std::fprintf(stderr,
                 "load: %s\nusage: load --port P --key K --pid PID [--rate N] [--seconds S] "
                 "[--devices N] [--metrics N] [--conns N] [--step S]\n",
                 why.c_str());
    std::exit(2);
}

options parse(int argc, char** argv) {
    options o;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (i + 1 >= argc) usage(a + ": needs a value");
        std::string v = argv[++i];
        char* end = nullptr;
        double n = std::strtod(v.c_str(), &end);
        bool number = end && *end == '\0' && !v.empty();
        if (a == "--key") {
            o.key = v;
            continue;
        }
        if (!number || n < 0) usage(a + " " + v + ": not a non-negative number");
        if (a == "--port")
            o.port = static_cast<int>(n);
        else if (a == "--pid")
            o.pid = static_cast<int>(n);
        else if (a == "--rate")
            o.rate = static_cast<long>(n);
        else if (a == "--seconds")
            o.seconds = n;
        else if (a == "--devices")
            o.devices = static_cast<int>(n);
        else if (a == "--metrics")
            o.metrics = static_cast<int>(n);
        else if (a == "--conns")
            o.conns = static_cast<int>(n);
        else if (a == "--step")
            o.step = n;
        else
            usage("unknown option " + a);
    }
    if (o.port <= 0 || o.key.empty()) usage("--port and --key are required");
    if (o.devices <= 0 || o.metrics <= 0 || o.conns <= 0 || o.rate <= 0 || o.seconds <= 0)
        usage("--rate, --seconds, --devices, --metrics and --conns must be positive");
    return o;
}

// One keep-alive HTTP/1.1 connection to 127.0.0.1:port.
class connection {
public:
    explicit connection(int port) : _port(port) {}
    ~connection() {
        if (_fd >= 0) ::close(_fd);
    }

    // Sends the request and reads the answer; the status code, or -1 on an I/O error (the
    // next call reconnects).
    int request(const std::string& head, const std::string& body, std::string* answer = nullptr) {
        if (_fd < 0 && !open()) return -1;
        std::string msg = head;
        msg += "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n";
        msg += body;
        if (!write_all(msg)) return fail();
        // Headers, then exactly Content-Length bytes of body.
        size_t header_end;
        while ((header_end = _in.find("\r\n\r\n")) == std::string::npos)
            if (!read_more()) return fail();
        int status = std::atoi(_in.c_str() + 9);
        size_t length = 0;
        std::string headers = _in.substr(0, header_end);
        for (auto& c : headers)
            c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        if (auto at = headers.find("content-length:"); at != std::string::npos)
            length = std::strtoul(headers.c_str() + at + 15, nullptr, 10);
        while (_in.size() < header_end + 4 + length)
            if (!read_more()) return fail();
        if (answer) *answer = _in.substr(header_end + 4, length);
        _in.erase(0, header_end + 4 + length);
        return status;
    }

private:
    bool open() {
        _fd = ::socket(AF_INET, SOCK_STREAM, 0);
        if (_fd < 0) return false;
        int one = 1;
        ::setsockopt(_fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(static_cast<uint16_t>(_port));
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (::connect(_fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
            ::close(_fd);
            _fd = -1;
            return false;
        }
        _in.clear();
        return true;
    }
    int fail() {
        ::close(_fd);
        _fd = -1;
        return -1;
    }
    bool write_all(const std::string& s) {
        size_t done = 0;
        while (done < s.size()) {
            ssize_t n = ::send(_fd, s.data() + done, s.size() - done, MSG_NOSIGNAL);
            if (n <= 0) return false;
            done += static_cast<size_t>(n);
        }
        return true;
    }
    bool read_more() {
        char buf[65536];
        ssize_t n = ::recv(_fd, buf, sizeof buf, 0);
        if (n <= 0) return false;
        _in.append(buf, static_cast<size_t>(n));
        return true;
    }

    int _port;
    int _fd = -1;
    std::string _in;
};

// Metric names a plant would have; beyond ten, m10, m11, ...
std::string metric_name(int i) {
    static const char* names[] = {"temperature", "vibration_rms", "current", "pressure",
                                  "flow",        "rpm",           "voltage", "power",
                                  "humidity",    "noise_db"};
    return i < 10 ? names[i] : "m" + std::to_string(i);
}

// A smooth daily-like cycle per series plus noise (a cheap hash, so every run is the same).
double value_of(int device, int metric, int64_t tick) {
    uint64_t h = static_cast<uint64_t>(device) * 0x9e3779b97f4a7c15ull ^
                 static_cast<uint64_t>(metric) * 0xbf58476d1ce4e5b9ull ^
                 static_cast<uint64_t>(tick) * 0x94d049bb133111ebull;
    h ^= h >> 31;
    h *= 0xd6e8feb86659fd93ull;
    h ^= h >> 32;
    double noise = static_cast<double>(h & 0xffff) / 65536.0 - 0.5;
    double phase = static_cast<double>((device * 7 + metric * 13) % 100) / 100.0;
    double cycle = std::sin(2 * M_PI * (static_cast<double>(tick) / 6000.0 + phase));
    return 50.0 + 10.0 * metric + 20.0 * cycle + 2.0 * noise;
}

void append_number(std::string& out, double v) {
    char buf[32];
    auto r = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::fixed, 3);
    out.append(buf, r.ptr);
}

struct server_sample {
    double scored = 0, skipped = 0, queued = 0, rss = 0;
    double health_models = 0, health_rows = 0;  // trained machine-health models, rows scored
    double cpu_seconds = 0;                     // user + system of the server process
    bool ok = false;
};

double metric_value(const std::string& text, const std::string& name) {
    std::string needle = "\n" + name + " ";
    auto at = text.find(needle);
    if (at == std::string::npos) return 0;
    return std::strtod(text.c_str() + at + needle.size(), nullptr);
}

double cpu_seconds_of(int pid) {
    if (pid <= 0) return 0;
    std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
    std::string all((std::istreambuf_iterator<char>(in)), {});
    auto close = all.rfind(')');
    if (close == std::string::npos) return 0;
    std::istringstream rest(all.substr(close + 2));
    std::string field;
    double utime = 0, stime = 0;
    for (int i = 3; i <= 15 && rest >> field; ++i) {
        if (i == 14) utime = std::strtod(field.c_str(), nullptr);
        if (i == 15) stime = std::strtod(field.c_str(), nullptr);
    }
    return (utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

server_sample read_server(connection& c, const options& o) {
    server_sample s;
    std::string body;
    int status = c.request(
        "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " + o.key + "\r\n", {},
        &body);
    if (status != 200) return s;
    body.insert(0, "\n");
    s.scored = metric_value(body, "clisonix_anomaly_points_scored_total");
    s.skipped = metric_value(body, "clisonix_anomaly_points_skipped_total");
    s.queued = metric_value(body, "clisonix_anomaly_queue_points");
    s.rss = metric_value(body, "process_resident_memory_bytes");
    s.health_models = metric_value(body, "clisonix_health_models");
    s.health_rows = metric_value(body, "clisonix_health_rows_scored_total");
    s.cpu_seconds = cpu_seconds_of(o.pid);
    s.ok = true;
    return s;
}

}  // namespace

int main(int argc, char** argv) {
    const options o = parse(argc, argv);
    const bool tty = isatty(STDOUT_FILENO);
    const int64_t series = static_cast<int64_t>(o.devices) * o.metrics;
    constexpr int ticks_per_second = 10;
    // Lines per tick: enough devices for rate / 10 points (every device when the rate says so).
    const int64_t points_per_tick = o.rate / ticks_per_second;
    const int64_t lines_per_tick = std::max<int64_t>(1, points_per_tick / o.metrics);
    const int64_t ticks = static_cast<int64_t>(o.seconds * ticks_per_second);
    const int64_t start_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                                 std::chrono::system_clock::now().time_since_epoch())
                                 .count();
    std::vector<std::string> names(static_cast<size_t>(o.metrics));
    for (int m = 0; m < o.metrics; ++m)
        names[static_cast<size_t>(m)] = metric_name(m);

    std::printf(
        "load: %lld series (%d devices x %d metrics), %ld points/s for %.0f s over %d "
        "connections\n",
        static_cast<long long>(series), o.devices, o.metrics, o.rate, o.seconds, o.conns);
    std::fflush(stdout);

    std::atomic<int64_t> acked{0}, failed{0}, max_lag_ms{0};
    std::mutex error_mutex;
    std::string first_error;
    const auto t0 = clock_type::now() + std::chrono::milliseconds(100);
    std::vector<std::thread> senders;
    for (int c = 0; c < o.conns; ++c) {
        senders.emplace_back([&, c] {
            connection conn(o.port);
            const std::string head =
                "POST /api/v1/write?precision=ms HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: "
                "Bearer " +
                o.key + "\r\nContent-Type: text/plain\r\n";
            std::string body;
            for (int64_t t = 0; t < ticks; ++t) {
                auto due = t0 + std::chrono::milliseconds(t * 1000 / ticks_per_second);
                std::this_thread::sleep_until(due);
                auto lag =
                    std::chrono::duration_cast<std::chrono::milliseconds>(clock_type::now() - due)
                        .count();
                int64_t prev = max_lag_ms.load();
                while (lag > prev && !max_lag_ms.compare_exchange_weak(prev, lag)) {
                }
                // This connection's share of the tick's lines.
                body.clear();
                int64_t points = 0;
                const int64_t ts = start_ms + t * (1000 / ticks_per_second);
                for (int64_t l = c; l < lines_per_tick; l += o.conns) {
                    int device = static_cast<int>((t * lines_per_tick + l) % o.devices);
                    char dev[32];
                    std::snprintf(dev, sizeof dev, "dev-%05d", device);
                    body += "load,device=";
                    body += dev;
                    body.push_back(' ');
                    for (int m = 0; m < o.metrics; ++m) {
                        if (m) body.push_back(',');
                        body += names[static_cast<size_t>(m)];
                        body.push_back('=');
                        append_number(body, value_of(device, m, t));
                    }
                    body.push_back(' ');
                    body += std::to_string(ts);
                    body.push_back('\n');
                    points += o.metrics;
                }
                if (body.empty()) continue;
                std::string answer;
                int status = conn.request(head, body, &answer);
                if (status / 100 == 2) {
                    acked += points;
                } else {
                    failed += points;
                    std::lock_guard lock(error_mutex);
                    if (first_error.empty())
                        first_error = "write answered " + std::to_string(status) + ": " +
                                      answer.substr(0, 300);
                }
            }
        });
    }

    // Progress: once a second on a terminal (one line, redrawn), one line per step otherwise.
    connection metrics_conn(o.port);
    const server_sample before = read_server(metrics_conn, o);
    server_sample last = before;
    double queue_max = 0;  // the deepest the scoring queue got, of the samples taken
    int64_t last_acked = 0;
    auto last_at = clock_type::now();
    auto next_step = last_at + std::chrono::duration<double>(o.step);
    const auto end = t0 + std::chrono::milliseconds(ticks * 1000 / ticks_per_second);
    auto report = [&](const char* what, bool newline) {
        auto now = clock_type::now();
        server_sample s = read_server(metrics_conn, o);
        queue_max = std::max(queue_max, s.queued);
        double dt = std::chrono::duration<double>(now - last_at).count();
        int64_t a = acked.load();
        double rate = dt > 0 ? static_cast<double>(a - last_acked) / dt : 0;
        double cpu = dt > 0 ? (s.cpu_seconds - last.cpu_seconds) / dt : 0;
        double elapsed = std::chrono::duration<double>(now - t0).count();
        std::printf(
            "%s%s t=%5.1fs acked=%lld ingest=%.0f pts/s scored=%.0f skipped=%.0f "
            "queue=%.0f rss=%.0f MiB server_cpu=%.2f cores lag_max=%lld ms%s",
            tty && !newline ? "\r" : "", what, elapsed, static_cast<long long>(a), rate,
            s.scored - before.scored, s.skipped - before.skipped, s.queued, s.rss / 1048576.0, cpu,
            static_cast<long long>(max_lag_ms.load()), newline ? "\n" : "  ");
        std::fflush(stdout);
        last = s;
        last_acked = a;
        last_at = now;
        return s;
    };
    while (clock_type::now() < end) {
        std::this_thread::sleep_for(std::chrono::seconds(1));
        if (clock_type::now() >= next_step) {
            if (tty) std::printf("\r");
            report("step", true);
            next_step += std::chrono::duration<double>(o.step);
        } else if (tty) {
            report("load", false);
        } else {
            queue_max = std::max(queue_max, read_server(metrics_conn, o).queued);
        }
    }
    for (auto& t : senders)
        t.join();
    const double send_seconds = std::chrono::duration<double>(clock_type::now() - t0).count();
    const int64_t sent = acked.load() + failed.load();

    // The scoring queue drains behind ingest; wait for it (bounded) before the verdict. It
    // is done when every acknowledged point is scored or skipped, or when nothing moved for
    // 3 s with the queue empty (scoring off, or a metrics glob that leaves points out).
    auto drain_start = clock_type::now();
    server_sample s = read_server(metrics_conn, o);
    auto moved_at = clock_type::now();
    double seen = s.scored + s.skipped;
    while (s.ok &&
           (s.queued > 0 || s.scored - before.scored + s.skipped - before.skipped <
                                static_cast<double>(acked.load())) &&
           clock_type::now() - drain_start < std::chrono::seconds(120)) {
        if (s.queued == 0 && clock_type::now() - moved_at > std::chrono::seconds(3)) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(250));
        s = read_server(metrics_conn, o);
        if (s.scored + s.skipped != seen || s.queued > 0) {
            seen = s.scored + s.skipped;
            moved_at = clock_type::now();
        }
    }
    const double drain_seconds =
        std::chrono::duration<double>(clock_type::now() - drain_start).count();
    const double scored = s.scored - before.scored, skipped = s.skipped - before.skipped;
    const double cpu = s.cpu_seconds - before.cpu_seconds;
    const double ingest_rate = static_cast<double>(acked.load()) / send_seconds;
    // Scoring off (analytics.detector=off): judged on ingest alone.
    const bool scoring_off = scored == 0 && skipped == 0 && queue_max == 0;
    const bool pass = failed.load() == 0 && skipped == 0 &&
                      (scoring_off || scored >= static_cast<double>(acked.load())) &&
                      ingest_rate >= 0.98 * static_cast<double>(o.rate);
    if (tty) std::printf("\r");
    std::printf(
        "summary: series=%lld sent=%lld acked=%lld failed=%lld ingest=%.0f pts/s "
        "scored=%.0f skipped=%.0f queue_max=%.0f drain=%.1f s rss=%.0f MiB server_cpu=%.1f s "
        "(%.2f us/point) lag_max=%lld ms%s: %s\n",
        static_cast<long long>(series), static_cast<long long>(sent),
        static_cast<long long>(acked.load()), static_cast<long long>(failed.load()), ingest_rate,
        scored, skipped, queue_max, drain_seconds, s.rss / 1048576.0, cpu,
        acked.load() ? cpu * 1e6 / static_cast<double>(acked.load()) : 0.0,
        static_cast<long long>(max_lag_ms.load()), scoring_off ? " (scoring off)" : "",
        pass ? "PASS" : "FAIL");
    std::printf("health: %.0f models, %.0f rows scored\n", s.health_models,
                s.health_rows - before.health_rows);
    if (!first_error.empty()) std::printf("first error: %s\n", first_error.c_str());
    return pass ? 0 : 1;
}
