// clisonix — the command line: serve, config, version.
#include <CLI/CLI.hpp>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <optional>
#include <string_view>
#include <vector>

#include "analytics/analytics.h"
#include "app/app.h"
#include "app/client.h"
#include "app/demo_plant.h"
#include "auth/auth.h"
#include "common/edit_distance.h"
#include "common/progress.h"
#include "config/config.h"
#include "devices/devices.h"
#include "forecast/forecast.h"

namespace {

using namespace clisonix;

// The flags that feed the config; every command that reads config takes the same ones.
struct config_flags {
    std::string file;
    std::string port;
    std::string data;
    std::vector<std::string> sets;

    void add_to(CLI::App& cmd, std::string_view default_data = "./data") {
        cmd.add_option("--config", file, "TOML config file (also CLISONIX_CONFIG)");
        cmd.add_option("--port", port, "HTTP port (config http.port, default 8030)");
        cmd.add_option(
            "--data", data,
            "Data directory (config data.dir, default " + std::string(default_data) + ")");
        cmd.add_option("--set", sets, "Set any config key: --set key=value (repeatable)")
            ->take_all();
    }

    // Loads the config from every source; exits 2 with the one-line message on error.
    config::config load_or_exit() const {
        config::sources from;
        from.environment = config::from_process_environment();
        from.file = file;
        if (from.file.empty()) {
            auto it = from.environment.find("CLISONIX_CONFIG");
            if (it != from.environment.end()) from.file = it->second;
        }
        for (const auto& s : sets) {
            auto eq = s.find('=');
            if (eq == std::string::npos || eq == 0) {
                std::cerr << "config: --set " << s << ": expected key=value\n";
                std::exit(app::exit_usage);
            }
            from.flags.push_back({s.substr(0, eq), s.substr(eq + 1), "--set"});
        }
        // The dedicated flags come last so that they win over --set, as the more specific.
        if (!port.empty()) from.flags.push_back({"http.port", port, "--port"});
        if (!data.empty()) from.flags.push_back({"data.dir", data, "--data"});
        auto cfg = config::load(from);
        if (!cfg) {
            std::cerr << cfg.error().message << "\n";
            std::exit(app::exit_usage);
        }
        return std::move(*cfg);
    }
};

// CLI11 answers a mistyped command with "A subcommand is required", which names neither the
// word nor the command meant. The nearest command by edit distance (the first declared on a
// tie) is named instead; nullopt when `word` is a command or an option.
std::optional<std::string> unknown_command_message(const CLI::App& cli, std::string_view word) {
    if (word.empty() || word.front() == '-') return std::nullopt;
    std::string nearest;
    size_t best = std::string::npos;
    for (const auto* sub : cli.get_subcommands([](const CLI::App*) { return true; })) {
        if (sub->get_name() == word) return std::nullopt;
        size_t d = edit_distance(word, sub->get_name());
        if (d < best) best = d, nearest = sub->get_name();
    }
    return "unknown command '" + std::string(word) + "'; did you mean '" + nearest +
           "'? (clisonix --help lists the commands)";
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App cli{"Clisonix: industrial telemetry, storage, anomaly detection and alarms"};
    cli.require_subcommand(1);

    config_flags serve_flags;
    auto* serve_cmd = cli.add_subcommand("serve", "Run the server (HTTP API, dashboard, metrics)");
    serve_flags.add_to(*serve_cmd);

    config_flags demo_flags;
    app::demo_options demo_opts;
    std::string demo_backfill = "1h";
    auto* demo_cmd = cli.add_subcommand(
        "demo", "Run the server with a simulated plant (data in ./demo-data unless --data)");
    demo_flags.add_to(*demo_cmd, "./demo-data");
    demo_cmd->add_option("--seed", demo_opts.seed, "Seed of the plant and its fault schedule")
        ->capture_default_str();
    demo_cmd
        ->add_option("--speed", demo_opts.speed,
                     "Simulated seconds per second: faults come sooner, rule durations shrink")
        ->capture_default_str();
    demo_cmd->add_option("--backfill", demo_backfill, "History written at start (0 = none)")
        ->capture_default_str();

    auto* config_cmd = cli.add_subcommand("config", "Inspect the configuration");
    config_cmd->require_subcommand(1);
    config_flags show_flags;
    auto* show_cmd = config_cmd->add_subcommand(
        "show", "Print the effective config and where each value is from");
    show_flags.add_to(*show_cmd);
    auto* reference_cmd = config_cmd->add_subcommand(
        "reference", "Print the config reference as a Markdown table (the README's)");

    auto* version_cmd = cli.add_subcommand("version", "Print the version and build commit");

    app::import_options import_opts;
    auto* import_cmd = cli.add_subcommand(
        "import", "Load a line-protocol or CSV file into a running server, with progress");
    import_cmd->add_option("file", import_opts.file, "Line protocol, or CSV with a header row")
        ->required();
    import_cmd->add_option("--url", import_opts.url, "Server address")->capture_default_str();
    import_cmd->add_option("--token", import_opts.token, "Access token or API key");
    import_cmd->add_option("--format", import_opts.format, "lp or csv (default: by extension)")
        ->check(CLI::IsMember({"lp", "csv"}));
    import_cmd->add_option("--precision", import_opts.precision, "Line-protocol timestamp unit")
        ->check(CLI::IsMember({"ns", "us", "ms", "s"}))
        ->capture_default_str();
    import_cmd
        ->add_option("--measurement", import_opts.measurement, "CSV: measurement of every row")
        ->capture_default_str();
    import_cmd->add_option("--tags", import_opts.tags, "CSV: columns that are tags")
        ->delimiter(',')
        ->capture_default_str();

    // `device import`: over the HTTP API, like `import`, so that a running server's device
    // registry sees the new devices at once (docs/decisions/0016).
    devices::import_command device_import;
    std::string device_url = "http://127.0.0.1:8030", device_token;
    auto* device_cmd = cli.add_subcommand("device", "Manage devices: import");
    device_cmd->require_subcommand(1);
    auto* device_import_cmd = device_cmd->add_subcommand(
        "import", "Create devices from CSV (name,type,label,description) on a running server");
    device_import_cmd->add_option("file", device_import.file, "CSV file, header row optional")
        ->required();
    device_import_cmd->add_option("--tokens-out", device_import.tokens_out,
                                  "Where the new devices' tokens go (mode 0600; default stdout)");
    device_import_cmd->add_option("--url", device_url, "Server address")->capture_default_str();
    device_import_cmd->add_option("--token", device_token, "Access token or API key");

    config_flags user_flags;
    auth::user_command user_cmd_args;
    bool password_stdin = false;
    auto* user_cmd = cli.add_subcommand("user", "Manage users: add, list, passwd, disable, enable");
    user_flags.add_to(*user_cmd);
    user_cmd->add_option("action", user_cmd_args.action, "add, list, passwd, disable or enable")
        ->required()
        ->check(CLI::IsMember({"add", "list", "passwd", "disable", "enable"}));
    user_cmd->add_option("username", user_cmd_args.username, "The user (not for list)");
    user_cmd->add_option("--role", user_cmd_args.role, "admin, operator or viewer (add)")
        ->capture_default_str();
    user_cmd->add_flag("--password-stdin", password_stdin,
                       "Read the password from standard input (else one is generated)");

    analytics::nab_options nab_opts;
    std::string nab_detector;
    auto* nab_cmd = cli.add_subcommand(
        "nab", "Score the anomaly detectors on the Numenta Anomaly Benchmark (NAB layout)");
    nab_cmd->add_option("--data", nab_opts.data_dir, "NAB data folder: <category>/<file>.csv")
        ->required();
    nab_cmd->add_option("--labels", nab_opts.labels_file, "NAB combined_windows.json")->required();
    nab_cmd->add_option("--out", nab_opts.out_dir, "Where the result CSVs go")->required();
    nab_cmd->add_option("--detector", nab_detector, "One detector (default: every detector)");
    nab_cmd->add_flag("--loco", nab_opts.loco,
                      "Also score leave-one-category-out: each category at the threshold chosen "
                      "on the others");
    nab_cmd->add_option("--skip", nab_opts.skip_rows,
                        "Start every stream this many rows into its file (windows move with it)");

    analytics::health_bench_options health_opts;
    auto* health_cmd = cli.add_subcommand(
        "health-bench",
        "Score the machine health model on files in SKAB's format (first rows = baseline)");
    health_cmd->add_option("--data", health_opts.data_dir, "Folder of SKAB-format *.csv files")
        ->required();
    health_cmd->add_option("--out", health_opts.out_dir, "Where the score CSVs go")->required();
    health_cmd
        ->add_option("--train-rows", health_opts.train_rows,
                     "Rows at the start of each file that are the baseline")
        ->capture_default_str();

    forecast::bench_options fbench_opts;
    auto* fbench_cmd = cli.add_subcommand(
        "forecast-bench",
        "Forecast every series of a file in M4's layout and score it (M4's measures)");
    fbench_cmd->add_option("--train", fbench_opts.train_file, "M4-layout CSV: id, then the history")
        ->required();
    fbench_cmd->add_option("--test", fbench_opts.test_file,
                           "M4-layout CSV: id, then the next values");
    fbench_cmd->add_option("--out", fbench_opts.out_dir, "Where point.csv, lower.csv, upper.csv go")
        ->required();
    fbench_cmd->add_option("--horizon", fbench_opts.horizon, "Steps ahead")->capture_default_str();
    fbench_cmd->add_option("--season", fbench_opts.season, "M4's period m (for MASE and Naive2)")
        ->capture_default_str();
    fbench_cmd->add_option("--method", fbench_opts.method, "auto or one single model")
        ->capture_default_str();
    fbench_cmd->add_option("--holdout", fbench_opts.holdout,
                           "Cross-validate inside TRAIN: score the last N values of each series");

    app::query_options query_opts;
    auto* query_cmd = cli.add_subcommand("query", "Query a running server (as GET /api/v1/query)");
    query_cmd->add_option("--url", query_opts.url, "Server address")->capture_default_str();
    query_cmd->add_option("--token", query_opts.token, "Access token or API key");
    query_cmd->add_option("--format", query_opts.format, "table, csv or json")
        ->check(CLI::IsMember({"table", "csv", "json"}))
        ->capture_default_str();
    std::vector<std::string> query_tags;
    for (const char* name : {"device", "metric", "measurement", "from", "to", "agg", "step",
                             "group-by", "order", "limit"}) {
        std::string param(name);
        std::replace(param.begin(), param.end(), '-', '_');
        query_cmd->add_option_function<std::string>(
            std::string("--") + name,
            [&query_opts, param](const std::string& v) { query_opts.params[param] = v; },
            "The query API's " + param + " parameter");
    }
    query_cmd->add_option("--tag", query_tags, "Tag filter key=value (repeatable)");

    app::ask_options ask_opts;
    auto* ask_cmd = cli.add_subcommand(
        "ask", "Ask a running server a question in plain language (as POST /api/v1/ask)");
    ask_cmd->add_option("question", ask_opts.question, "The question, in quotes")->required();
    ask_cmd->add_option("--url", ask_opts.url, "Server address")->capture_default_str();
    ask_cmd->add_option("--key,--token", ask_opts.key, "API key or access token");
    ask_cmd->add_option("--at", ask_opts.at, "What \"now\" means: RFC 3339 or Unix ms");
    ask_cmd->add_flag("--json", ask_opts.json, "Print the answer JSON as the server sent it");

    if (argc > 1) {
        if (auto message = unknown_command_message(cli, argv[1])) {
            std::cerr << *message << "\n";
            return app::exit_usage;
        }
    }
    try {
        cli.parse(argc, argv);
    } catch (const CLI::CallForHelp& e) {
        return cli.exit(e);
    } catch (const CLI::CallForAllHelp& e) {
        return cli.exit(e);
    } catch (const CLI::ParseError& e) {
        cli.exit(e);  // prints the message and the usage hint
        return app::exit_usage;
    }

    if (*version_cmd) {
        std::cout << "clisonix " << app::version << " (commit " << app::commit << ")\n";
        return app::exit_ok;
    }
    if (*show_cmd) {
        std::cout << show_flags.load_or_exit().show();
        return app::exit_ok;
    }
    if (*reference_cmd) {
        std::cout << config::reference_markdown();
        return app::exit_ok;
    }
    if (*serve_cmd) return app::serve(serve_flags.load_or_exit());
    if (*demo_cmd) {
        // The demo's devices stay out of a real data directory unless asked for.
        auto defaults = demo_flags.load_or_exit();
        if (demo_flags.data.empty() && defaults.source("data.dir") == "default")
            demo_flags.data = "./demo-data";
        // A request line per telemetry post would bury the demo's own messages on the terminal.
        if (defaults.source("log.level") == "default")
            demo_flags.sets.insert(demo_flags.sets.begin(), "log.level=warn");
        auto backfill = app::sim::parse_seconds(demo_backfill);
        if (!backfill) {
            std::cerr << "demo: --backfill " << demo_backfill
                      << ": expected a duration such as 0, 90s, 10m or 1h\n";
            return app::exit_usage;
        }
        demo_opts.backfill_seconds = *backfill;
        return app::demo(demo_flags.load_or_exit(), demo_opts);
    }
    if (*import_cmd) return app::import_file(import_opts);
    if (*device_import_cmd) {
        auto conn = app::client::connect(device_url, device_token);
        if (!conn) {
            std::cerr << "device import: " << conn.error().message << "\n";
            return conn.error().code == "invalid_argument" ? app::exit_usage : app::exit_failure;
        }
        auto post = [&conn](const std::string& csv) -> result<devices::post_result> {
            auto r = (*conn)->request("POST", "/api/v1/devices/import", csv, "text/csv");
            if (!r) return r.error();
            return devices::post_result{r->status, std::move(r->body)};
        };
        return devices::run_import_command(device_import, post, std::cout, std::cerr,
                                           stderr_is_terminal());
    }
    if (*user_cmd) {
        if (password_stdin) {
            std::string password;
            std::getline(std::cin, password);
            user_cmd_args.password = password;
        }
        return app::manage_users(user_flags.load_or_exit(), user_cmd_args);
    }
    if (*nab_cmd) {
        if (!nab_detector.empty()) nab_opts.detectors.push_back(nab_detector);
        auto shown = std::make_shared<progress_display>(std::cerr, "nab", stderr_is_terminal());
        nab_opts.progress = [shown](size_t done, size_t total, const std::string& step) {
            shown->update(done, total, step);
        };
        auto report = analytics::run_nab(nab_opts);
        if (!report) {
            std::cerr << "nab: " << report.error().message << "\n";
            const auto& code = report.error().code;
            return code == "invalid_argument" || code == "not_found" ? app::exit_usage
                                                                     : app::exit_failure;
        }
        std::cout << analytics::format_nab_table(*report);
        if (nab_opts.loco) std::cout << "\n" << analytics::format_nab_loco(*report);
        return app::exit_ok;
    }
    if (*health_cmd) {
        auto shown =
            std::make_shared<progress_display>(std::cerr, "health-bench", stderr_is_terminal());
        health_opts.progress = [shown](size_t done, size_t total, const std::string& file) {
            shown->update(done, total, file);
        };
        auto report = analytics::run_health_bench(health_opts);
        if (!report) {
            std::cerr << "health-bench: " << report.error().message << "\n";
            const auto& code = report.error().code;
            return code == "invalid_argument" || code == "not_found" ? app::exit_usage
                                                                     : app::exit_failure;
        }
        std::cout << analytics::format_health_bench(*report);
        return app::exit_ok;
    }
    if (*fbench_cmd) {
        auto shown =
            std::make_shared<progress_display>(std::cerr, "forecast-bench", stderr_is_terminal());
        fbench_opts.progress = [shown](size_t done, size_t total, const std::string& id) {
            shown->update(done, total, id);
        };
        auto report = forecast::run_bench(fbench_opts);
        if (!report) {
            std::cerr << "forecast-bench: " << report.error().message << "\n";
            const auto& code = report.error().code;
            return code == "invalid_argument" || code == "not_found" ? app::exit_usage
                                                                     : app::exit_failure;
        }
        std::cout << forecast::format_bench(*report);
        return app::exit_ok;
    }
    if (*query_cmd) {
        for (const auto& t : query_tags) {
            auto eq = t.find('=');
            if (eq == std::string::npos || eq == 0) {
                std::cerr << "query: --tag " << t << ": expected key=value\n";
                return app::exit_usage;
            }
            query_opts.params["tag." + t.substr(0, eq)] = t.substr(eq + 1);
        }
        return app::run_query(query_opts);
    }
    if (*ask_cmd) return app::run_ask(ask_opts);
    return app::exit_usage;
}
