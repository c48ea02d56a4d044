// Test helpers: temp dirs, free ports, a minimal HTTP/1.1 client, and real processes.
//
// Integration tests start the real `clisonix` binary (and real peers such as Prometheus)
// as child processes on loopback ports chosen at run time, and talk to them over sockets.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace clisonix::testing {

// A fresh directory under the system temp dir, removed with everything in it on destruction.
class temp_dir {
public:
    explicit temp_dir(std::string_view prefix = "clisonix-test");
    ~temp_dir();
    temp_dir(const temp_dir&) = delete;
    temp_dir& operator=(const temp_dir&) = delete;
    const std::filesystem::path& path() const { return _path; }
    std::string str() const { return _path.string(); }

private:
    std::filesystem::path _path;
};

// A small tmpfs mounted on a fresh temp dir: a file system a test can fill up. Unmounted and
// removed on destruction. Mounting needs root (CAP_SYS_ADMIN), as the tests have here and in
// CI; when it is refused, mounted() is false and skip_reason() says why (for GTEST_SKIP).
class tmpfs_dir {
public:
    explicit tmpfs_dir(uint64_t size_bytes, std::string_view prefix = "clisonix-tmpfs");
    ~tmpfs_dir();
    tmpfs_dir(const tmpfs_dir&) = delete;
    tmpfs_dir& operator=(const tmpfs_dir&) = delete;
    bool mounted() const { return _mounted; }
    const std::string& skip_reason() const { return _skip_reason; }
    const temp_dir& dir() const { return _dir; }  // the mount point
    const std::filesystem::path& path() const { return _dir.path(); }
    // Bytes free on the file system (statvfs).
    uint64_t free_bytes() const;
    // Creates `file` (fallocate) so large that about `leave_free` bytes stay free.
    void fill(const std::filesystem::path& file, uint64_t leave_free = 0) const;

private:
    temp_dir _dir;
    bool _mounted = false;
    std::string _skip_reason;
};

void write_file(const std::filesystem::path& p, std::string_view content);
std::string read_file(const std::filesystem::path& p);
// The file's lines, without their line ends.
std::vector<std::string> read_lines(const std::filesystem::path& p);
// Every JSON log file under <data_dir>/logs, concatenated in name order.
std::string read_logs(const std::filesystem::path& data_dir);

// A TCP port on 127.0.0.1 that was free a moment ago.
uint16_t free_port();

// A unix datagram socket standing in for systemd's $NOTIFY_SOCKET (sd_notify(3)): `name` is a
// path, or "@name" in the abstract namespace. env() is the variable to give the server.
class notify_socket {
public:
    explicit notify_socket(std::string name);
    ~notify_socket();
    notify_socket(const notify_socket&) = delete;
    notify_socket& operator=(const notify_socket&) = delete;
    std::string env() const { return "NOTIFY_SOCKET=" + _name; }
    // Reads datagrams until one holds `line` as one of its lines (true), or `timeout` passes;
    // every datagram read is kept in received.
    bool wait_for(const std::string& line, std::chrono::milliseconds timeout);
    std::vector<std::string> received;

private:
    std::string _name;
    int _fd = -1;
};

struct http_response {
    int status = 0;                              // 0: no answer (connection failed or closed)
    std::map<std::string, std::string> headers;  // names in lower case
    std::string body;
    std::string header(std::string_view name) const;
};

// One request on a new connection; `extra_headers` are raw "Name: value" lines.
http_response http_request(uint16_t port, std::string_view method, std::string_view target,
                           std::string_view body = {},
                           const std::vector<std::string>& extra_headers = {});

// A raw connection, for requests that a well-behaved client would not send.
class connection {
public:
    explicit connection(uint16_t port);
    ~connection();
    connection(const connection&) = delete;
    connection& operator=(const connection&) = delete;
    bool connected() const { return _fd >= 0; }
    bool send(std::string_view bytes);
    // Reads one response (Content-Length framed) or until the peer closes or `timeout` passes.
    http_response read_response(std::chrono::milliseconds timeout = std::chrono::seconds(10));
    // True when the peer has closed the connection (reads EOF) within `timeout`.
    bool closed_by_peer(std::chrono::milliseconds timeout);

private:
    int _fd = -1;
    std::string _pending;
};

// A child process with stdout and stderr captured to files.
class process {
public:
    // `env` entries ("NAME=value") are added to (or override) this process's environment.
    process(const std::vector<std::string>& argv, const std::vector<std::string>& env = {},
            const std::filesystem::path& cwd = {});
    ~process();  // kills the child if it still runs
    process(const process&) = delete;
    process& operator=(const process&) = delete;

    int pid() const { return _pid; }
    void signal(int sig);
    // The exit code (128 + signal when killed), or nullopt if it still runs after `timeout`.
    std::optional<int> wait(std::chrono::milliseconds timeout = std::chrono::seconds(30));
    bool running();
    std::string out() const;
    std::string err() const;

private:
    int _pid = -1;
    std::optional<int> _exit_code;
    temp_dir _io{"clisonix-proc"};
};

struct run_result {
    int exit_code = -1;
    std::string out;
    std::string err;
};

// Runs the clisonix binary with `args` to completion.
run_result run_clisonix(const std::vector<std::string>& args,
                        const std::vector<std::string>& env = {},
                        const std::filesystem::path& cwd = {});

// The password of the first admin of every server_process (CLISONIX_ADMIN_PASSWORD).
inline constexpr const char* test_admin_password = "test-admin-password-1";

// `clisonix serve` on a free port with a temp data dir, ready (healthz answered) on return.
// get() and post() carry an admin access token; use http_request() to go without one.
class server_process {
public:
    explicit server_process(const std::vector<std::string>& extra_args = {},
                            const std::vector<std::string>& env = {});
    // On an existing data dir, to restart a server on the data of an earlier one:
    //   server_process again(server_process::on{data}, {});
    // `port` 0 is a free one; the earlier server's port keeps a peer that pushes to it (a
    // Prometheus remote-writing) pointed at the restarted one.
    struct on {
        const temp_dir& data_dir;
        uint16_t port = 0;
    };
    server_process(on existing, const std::vector<std::string>& extra_args,
                   const std::vector<std::string>& env = {});
    uint16_t port() const { return _port; }
    const std::filesystem::path& data_path() const { return _data_path; }
    const temp_dir& data() const { return _data; }
    process& proc() { return *_proc; }
    http_response get(std::string_view target);
    http_response post(std::string_view target, std::string_view body,
                       std::vector<std::string> headers = {});
    // An access token of the admin user (logged in on first use).
    const std::string& token();

private:
    void start(const std::vector<std::string>& extra_args, const std::vector<std::string>& env);
    temp_dir _data{"clisonix-data"};
    std::filesystem::path _data_path;
    uint16_t _port;
    std::unique_ptr<process> _proc;
    std::string _token;
};

}  // namespace clisonix::testing
