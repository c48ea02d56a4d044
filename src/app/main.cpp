// clisonix — the command line: serve, config, version.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <cstdlib>
#include <iostream>

#include "app/app.h"
#include "config/config.h"

namespace {

using namespace clisonix;

// The flags that feed the config; every command that reads config takes the same ones.
struct config_flags {
    std::string file;
    std::string port;
    std::string data;
    std::vector<std::string> sets;

    void add_to(CLI::App& cmd) {
        cmd.add_option("--config", file, "TOML config file (also CLISONIX_CONFIG)");
        cmd.add_option("--port", port, "HTTP port (config http.port, default 8030)");
        cmd.add_option("--data", data, "Data directory (config data.dir, default ./data)");
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

}  // namespace

int main(int argc, char** argv) {
    CLI::App cli{"Clisonix: industrial telemetry, storage, anomaly detection and alarms"};
    cli.require_subcommand(1);

    config_flags serve_flags;
    auto* serve_cmd = cli.add_subcommand("serve", "Run the server (HTTP API, dashboard, metrics)");
    serve_flags.add_to(*serve_cmd);

    auto* config_cmd = cli.add_subcommand("config", "Inspect the configuration");
    config_cmd->require_subcommand(1);
    config_flags show_flags;
    auto* show_cmd = config_cmd->add_subcommand(
        "show", "Print the effective config and where each value is from");
    show_flags.add_to(*show_cmd);
    auto* reference_cmd = config_cmd->add_subcommand(
        "reference", "Print the config reference as a Markdown table (the README's)");

    auto* version_cmd = cli.add_subcommand("version", "Print the version and build commit");

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
    return app::exit_usage;
}
