#include "support/test_support.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/statvfs.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>
#include <thread>

extern char** environ;

namespace clisonix::testing {

namespace fs = std::filesystem;

temp_dir::temp_dir(std::string_view prefix) {
    std::random_device rd;
    for (int attempt = 0; attempt < 100; ++attempt) {
        auto candidate =
            fs::temp_directory_path() / (std::string(prefix) + "-" + std::to_string(getpid()) +
                                         "-" + std::to_string(rd() % 1000000000));
        std::error_code ec;
        if (fs::create_directory(candidate, ec)) {
            _path = candidate;
            return;
        }
    }
    throw std::runtime_error("cannot create a temp dir");
}

temp_dir::~temp_dir() {
    std::error_code ec;
    fs::remove_all(_path, ec);
}

tmpfs_dir::tmpfs_dir(uint64_t size_bytes, std::string_view prefix) : _dir(prefix) {
    std::string opts = "size=" + std::to_string(size_bytes) + ",mode=0700";
    if (::mount("tmpfs", _dir.str().c_str(), "tmpfs", MS_NOSUID | MS_NODEV, opts.c_str()) != 0) {
        _skip_reason = "cannot mount a tmpfs on " + _dir.str() + " (" + std::strerror(errno) +
                       "); the test needs root (CAP_SYS_ADMIN)";
        return;
    }
    _mounted = true;
}

tmpfs_dir::~tmpfs_dir() {
    // Lazily: a file a child process still holds open must not keep the mount alive.
    if (_mounted) ::umount2(_dir.str().c_str(), MNT_DETACH);
}

uint64_t tmpfs_dir::free_bytes() const {
    struct statvfs st {};
    if (::statvfs(_dir.str().c_str(), &st) != 0)
        throw std::runtime_error("statvfs " + _dir.str() + ": " + std::strerror(errno));
    return static_cast<uint64_t>(st.f_bavail) * st.f_frsize;
}

void tmpfs_dir::fill(const fs::path& file, uint64_t leave_free) const {
    int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) throw std::runtime_error("open " + file.string() + ": " + std::strerror(errno));
    uint64_t free = free_bytes();
    int rc =
        free > leave_free ? ::posix_fallocate(fd, 0, static_cast<off_t>(free - leave_free)) : 0;
    ::close(fd);
    if (rc != 0) throw std::runtime_error("fallocate " + file.string() + ": " + std::strerror(rc));
}

void write_file(const fs::path& p, std::string_view content) {
    std::ofstream f(p, std::ios::binary);
    f << content;
}

std::string read_file(const fs::path& p) {
    std::ifstream f(p, std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

std::vector<std::string> read_lines(const fs::path& p) {
    std::ifstream in(p);
    std::vector<std::string> out;
    for (std::string l; std::getline(in, l);)
        out.push_back(l);
    return out;
}

std::string read_logs(const fs::path& data_dir) {
    std::vector<fs::path> files;
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(data_dir / "logs", ec))
        files.push_back(entry.path());
    std::sort(files.begin(), files.end());
    std::string all;
    for (const auto& f : files)
        all += read_file(f);
    return all;
}

uint16_t free_port() {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    socklen_t len = sizeof addr;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
    ::close(fd);
    return ntohs(addr.sin_port);
}

std::string http_response::header(std::string_view name) const {
    std::string key(name);
    for (auto& c : key)
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    auto it = headers.find(key);
    return it == headers.end() ? std::string{} : it->second;
}

connection::connection(uint16_t port) {
    _fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(port);
    if (::connect(_fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        ::close(_fd);
        _fd = -1;
    }
}

connection::~connection() {
    if (_fd >= 0) ::close(_fd);
}

bool connection::send(std::string_view bytes) {
    while (!bytes.empty()) {
        ssize_t n = ::send(_fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
        if (n <= 0) return false;
        bytes.remove_prefix(static_cast<size_t>(n));
    }
    return true;
}

namespace {

// Reads more bytes into `buf`; false on EOF, error or timeout.
bool read_more(int fd, std::string& buf, std::chrono::steady_clock::time_point deadline) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return false;
    char chunk[65536];
    ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
    if (n <= 0) return false;
    buf.append(chunk, static_cast<size_t>(n));
    return true;
}

}  // namespace

http_response connection::read_response(std::chrono::milliseconds timeout) {
    http_response res;
    if (_fd < 0) return res;
    auto deadline = std::chrono::steady_clock::now() + timeout;
    size_t header_end;
    while ((header_end = _pending.find("\r\n\r\n")) == std::string::npos)
        if (!read_more(_fd, _pending, deadline)) return res;
    std::istringstream head(_pending.substr(0, header_end));
    std::string line;
    std::getline(head, line);
    if (line.size() < 12) return res;
    res.status = std::stoi(line.substr(9, 3));
    while (std::getline(head, line)) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        auto colon = line.find(':');
        if (colon == std::string::npos) continue;
        std::string name = line.substr(0, colon);
        for (auto& c : name)
            c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        std::string value = line.substr(colon + 1);
        value.erase(0, value.find_first_not_of(' '));
        res.headers[name] = value;
    }
    _pending.erase(0, header_end + 4);
    if (res.status == 100) return read_response(timeout);  // interim answer: read the real one
    auto length_header = res.header("content-length");
    if (!length_header.empty()) {
        size_t length = std::stoul(length_header);
        while (_pending.size() < length)
            if (!read_more(_fd, _pending, deadline)) break;
        res.body = _pending.substr(0, length);
        _pending.erase(0, std::min(length, _pending.size()));
    } else {
        while (read_more(_fd, _pending, deadline)) {
        }
        res.body = std::move(_pending);
        _pending.clear();
    }
    return res;
}

bool connection::closed_by_peer(std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
        pollfd p{_fd, POLLIN, 0};
        int r = ::poll(&p, 1, 20);
        if (r > 0) {
            char c;
            ssize_t n = ::recv(_fd, &c, 1, MSG_PEEK);
            if (n <= 0) return true;
            _pending.push_back(c);
            ::recv(_fd, &c, 1, 0);
        }
    }
    return false;
}

http_response http_request(uint16_t port, std::string_view method, std::string_view target,
                           std::string_view body, const std::vector<std::string>& extra_headers) {
    connection c(port);
    if (!c.connected()) return {};
    std::string req = std::string(method) + " " + std::string(target) +
                      " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n";
    for (const auto& h : extra_headers)
        req += h + "\r\n";
    if (!body.empty() || method == "POST" || method == "PUT" || method == "PATCH")
        req += "Content-Length: " + std::to_string(body.size()) + "\r\n";
    req += "\r\n";
    req += body;
    if (!c.send(req)) return {};
    return c.read_response();
}

process::process(const std::vector<std::string>& argv, const std::vector<std::string>& env,
                 const fs::path& cwd) {
    std::vector<std::string> environment;
    for (char** e = environ; *e; ++e) {
        std::string entry(*e);
        std::string name = entry.substr(0, entry.find('='));
        bool overridden = false;
        for (const auto& mine : env)
            if (mine.substr(0, mine.find('=')) == name) overridden = true;
        if (!overridden) environment.push_back(entry);
    }
    environment.insert(environment.end(), env.begin(), env.end());
    std::string out_path = (_io.path() / "stdout").string();
    std::string err_path = (_io.path() / "stderr").string();

    _pid = ::fork();
    if (_pid == 0) {
        int out = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int err = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        ::dup2(out, 1);
        ::dup2(err, 2);
        int null = ::open("/dev/null", O_RDONLY);
        ::dup2(null, 0);
        if (!cwd.empty() && ::chdir(cwd.c_str()) != 0) ::_exit(127);
        std::vector<char*> args, envp;
        for (const auto& a : argv)
            args.push_back(const_cast<char*>(a.c_str()));
        args.push_back(nullptr);
        for (const auto& e : environment)
            envp.push_back(const_cast<char*>(e.c_str()));
        envp.push_back(nullptr);
        ::execve(args[0], args.data(), envp.data());
        ::_exit(127);
    }
}

process::~process() {
    if (running()) {
        ::kill(_pid, SIGKILL);
        wait(std::chrono::seconds(10));
    }
}

void process::signal(int sig) {
    if (_pid > 0) ::kill(_pid, sig);
}

std::optional<int> process::wait(std::chrono::milliseconds timeout) {
    if (_exit_code) return _exit_code;
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        int st = 0;
        pid_t r = ::waitpid(_pid, &st, WNOHANG);
        if (r == _pid) {
            _exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
            return _exit_code;
        }
        if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
}

bool process::running() {
    return _pid > 0 && !wait(std::chrono::milliseconds(0));
}

std::string process::out() const {
    return read_file(_io.path() / "stdout");
}
std::string process::err() const {
    return read_file(_io.path() / "stderr");
}

run_result run_clisonix(const std::vector<std::string>& args, const std::vector<std::string>& env,
                        const fs::path& cwd) {
    std::vector<std::string> argv{CLISONIX_BINARY};
    argv.insert(argv.end(), args.begin(), args.end());
    process p(argv, env, cwd);
    run_result r;
    auto code = p.wait(std::chrono::seconds(60));
    r.exit_code = code ? *code : -1;
    r.out = p.out();
    r.err = p.err();
    return r;
}

server_process::server_process(const std::vector<std::string>& extra_args,
                               const std::vector<std::string>& env)
    : _data_path(_data.path()), _port(free_port()) {
    start(extra_args, env);
}

server_process::server_process(on existing, const std::vector<std::string>& extra_args,
                               const std::vector<std::string>& env)
    : _data_path(existing.data_dir.path()), _port(existing.port ? existing.port : free_port()) {
    start(extra_args, env);
}

const std::string& server_process::token() {
    if (!_token.empty()) return _token;
    // A cluster node answers 503 with Retry-After until it has caught up on the telemetry
    // log: a client waits, as a real one would.
    http_response r;
    for (auto until = std::chrono::steady_clock::now() + std::chrono::seconds(30);;) {
        r = http_request(
            _port, "POST", "/api/v1/auth/login",
            std::string(R"({"username":"admin","password":")") + test_admin_password + "\"}",
            {"Content-Type: application/json"});
        if (r.status != 503 || r.header("retry-after").empty() ||
            std::chrono::steady_clock::now() > until)
            break;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    const std::string marker = "\"access_token\":\"";
    auto at = r.body.find(marker);
    if (r.status != 200 || at == std::string::npos)
        throw std::runtime_error("admin login failed: " + std::to_string(r.status) + " " + r.body);
    at += marker.size();
    _token = r.body.substr(at, r.body.find('"', at) - at);
    return _token;
}

http_response server_process::get(std::string_view target) {
    return http_request(_port, "GET", target, {}, {"Authorization: Bearer " + token()});
}

http_response server_process::post(std::string_view target, std::string_view body,
                                   std::vector<std::string> headers) {
    headers.push_back("Authorization: Bearer " + token());
    return http_request(_port, "POST", target, body, headers);
}

notify_socket::notify_socket(std::string name) : _name(std::move(name)) {
    _fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (_fd < 0 || _name.empty() || _name.size() >= sizeof addr.sun_path)
        throw std::runtime_error("notify socket " + _name + ": cannot create");
    std::memcpy(addr.sun_path, _name.data(), _name.size());
    if (_name[0] == '@') addr.sun_path[0] = '\0';
    auto length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + _name.size());
    if (::bind(_fd, reinterpret_cast<sockaddr*>(&addr), length) != 0)
        throw std::runtime_error("notify socket " + _name + ": " + std::strerror(errno));
}

notify_socket::~notify_socket() {
    ::close(_fd);
    if (!_name.empty() && _name[0] != '@') ::unlink(_name.c_str());
}

bool notify_socket::wait_for(const std::string& line, std::chrono::milliseconds timeout) {
    auto until = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < until) {
        pollfd p{_fd, POLLIN, 0};
        if (::poll(&p, 1, 100) <= 0) continue;
        char buf[4096];
        auto n = ::recv(_fd, buf, sizeof buf, 0);
        if (n <= 0) continue;
        received.emplace_back(buf, static_cast<size_t>(n));
        if (("\n" + received.back() + "\n").find("\n" + line + "\n") != std::string::npos)
            return true;
    }
    return false;
}

void server_process::start(const std::vector<std::string>& extra_args,
                           const std::vector<std::string>& env) {
    std::vector<std::string> argv{CLISONIX_BINARY, "serve", "--port", std::to_string(_port),
                                  "--data", _data_path.string(), "--set", "http.bind=127.0.0.1",
                                  // Tests run in parallel: MQTT on a free port unless a test
                                  // asks for one (a later --set wins).
                                  "--set", "mqtt.port=0", "--set", "mqtt.bind=127.0.0.1",
                                  // and no CoAP endpoint (UDP 5683) unless a test asks for one.
                                  "--set", "coap.port=0", "--set", "coap.bind=127.0.0.1"};
    argv.insert(argv.end(), extra_args.begin(), extra_args.end());
    std::vector<std::string> environment{std::string("CLISONIX_ADMIN_PASSWORD=") +
                                         test_admin_password};
    environment.insert(environment.end(), env.begin(), env.end());
    _proc = std::make_unique<process>(argv, environment, _data.path());
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (std::chrono::steady_clock::now() < deadline) {
        if (http_request(_port, "GET", "/healthz").status == 200) return;
        if (!_proc->running())
            throw std::runtime_error("clisonix serve exited early: " + _proc->err());
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    throw std::runtime_error("clisonix serve did not answer /healthz in 30 s: " + _proc->err());
}

}  // namespace clisonix::testing
