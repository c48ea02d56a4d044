// Private to the app: the commands main() dispatches to.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "auth/auth.h"
#include "config/config.h"

namespace clisonix::app {

inline constexpr std::string_view version = CLISONIX_VERSION;
inline constexpr std::string_view commit = CLISONIX_COMMIT;

// Exit codes: 0 done, 1 a runtime failure (port taken, database down), 2 a usage or
// config error (the user must change what they typed).
inline constexpr int exit_ok = 0;
inline constexpr int exit_failure = 1;
inline constexpr int exit_usage = 2;

// Runs the server until SIGTERM/SIGINT; returns the process exit code.
int serve(const config::config& cfg);

// `clisonix demo`: serve() plus a simulated plant fed through the public API (demo.cpp).
struct demo_options {
    uint64_t seed = 1;                // the plant, its signals and its fault schedule
    double speed = 1;                 // simulated seconds per second (faults come sooner)
    int64_t backfill_seconds = 3600;  // healthy history written at start
};
int demo(const config::config& cfg, const demo_options& opt);

// `clisonix user ...` on the metadata store named by the config.
int manage_users(const config::config& cfg, const auth::user_command& cmd);

struct import_options {
    std::string file;
    std::string url = "http://127.0.0.1:8030";
    std::string token;
    std::string format;  // "lp" or "csv"; empty: by the file's extension
    std::string precision = "ns";
    std::string measurement = "telemetry";    // CSV: the measurement of every row
    std::vector<std::string> tags{"device"};  // CSV: columns that are tags
    size_t batch_lines = 5000;
};
// `clisonix import`: posts the file in batches with a progress bar; exit 2 for bad data.
int import_file(const import_options& opt);

struct query_options {
    std::string url = "http://127.0.0.1:8030";
    std::string token;
    std::string format = "table";               // table, csv, json
    std::map<std::string, std::string> params;  // the query API's parameters
};
// `clisonix query`: the query API from the command line.
int run_query(const query_options& opt);

}  // namespace clisonix::app
