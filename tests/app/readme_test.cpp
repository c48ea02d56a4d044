// The README's shell commands, run as written against a real `clisonix demo`, so that a
// newcomer's first commands cannot rot. A ```sh block is preceded by a marker line:
//   <!-- readme-test -->                 run here, in order, in one shell
//   <!-- readme-test: skip (reason) -->  not run (installs packages, takes minutes)
// The only changes to the text are the ports: 8030 and 1883 become free ones.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "support/test_support.h"

namespace clisonix {
namespace {

using namespace std::chrono_literals;
using testing::free_port;
using testing::process;
using testing::read_file;
using testing::temp_dir;
using testing::write_file;

struct shell_block {
    size_t line = 0;     // of the opening fence, 1-based
    std::string marker;  // the line before the fence, trimmed; empty when there is none
    std::string text;
};

std::vector<shell_block> shell_blocks(const std::string& markdown) {
    std::vector<shell_block> blocks;
    std::vector<std::string> lines;
    for (size_t at = 0; at <= markdown.size();) {
        size_t nl = markdown.find('\n', at);
        if (nl == std::string::npos) nl = markdown.size();
        lines.push_back(markdown.substr(at, nl - at));
        at = nl + 1;
    }
    for (size_t i = 0; i < lines.size(); ++i) {
        if (lines[i] != "```sh") continue;
        shell_block b;
        b.line = i + 1;
        if (i > 0 && lines[i - 1].starts_with("<!--")) b.marker = lines[i - 1];
        for (++i; i < lines.size() && lines[i] != "```"; ++i)
            b.text += lines[i] + "\n";
        blocks.push_back(std::move(b));
    }
    return blocks;
}

bool runs(const shell_block& b) {
    return b.marker.starts_with("<!-- readme-test") &&
           !b.marker.starts_with("<!-- readme-test: skip");
}

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
    for (size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size()))
        s.replace(at, from.size(), to);
    return s;
}

std::string readme() {
    return read_file(std::string(CLISONIX_SOURCE_DIR) + "/README.md");
}

TEST(readme_test, every_shell_block_is_run_or_says_why_not) {
    auto blocks = shell_blocks(readme());
    size_t run = 0;
    for (const auto& b : blocks) {
        EXPECT_TRUE(b.marker.starts_with("<!-- readme-test"))
            << "README.md:" << b.line << ": a ```sh block without <!-- readme-test --> or "
            << "<!-- readme-test: skip (reason) --> on the line before";
        if (b.marker.starts_with("<!-- readme-test: skip")) {
            EXPECT_NE(b.marker.find("skip ("), std::string::npos)
                << "README.md:" << b.line << ": a skipped block says why: " << b.marker;
        }
        run += runs(b) ? 1 : 0;
    }
    EXPECT_GE(run, 3u);  // the first commands, the token and the device: not all skipped
}

TEST(readme_test, the_first_commands_work_as_written_against_the_demo) {
    const uint16_t http_port = free_port(), mqtt_port = free_port(), coap_port = free_port();
    temp_dir home("clisonix-readme");
    // As `scripts/run` starts it (data in ./demo-data), without the hour of backfill.
    process demo({CLISONIX_BINARY, "demo", "--port", std::to_string(http_port), "--backfill", "0",
                  "--set", "mqtt.port=" + std::to_string(mqtt_port), "--set",
                  "coap.port=" + std::to_string(coap_port)},
                 {}, home.path());
    const std::string banner = "Dashboard: http://localhost:" + std::to_string(http_port) + "/";
    auto deadline = std::chrono::steady_clock::now() + 60s;
    while (demo.out().find(banner) == std::string::npos &&
           std::chrono::steady_clock::now() < deadline && demo.running())
        std::this_thread::sleep_for(200ms);
    ASSERT_NE(demo.out().find(banner), std::string::npos) << demo.out() << demo.err();

    std::string script = "set -euo pipefail\n";
    for (const auto& b : shell_blocks(readme()))
        if (runs(b)) script += b.text;
    script = replace_all(script, "localhost:8030", "localhost:" + std::to_string(http_port));
    script = replace_all(script, "-p 1883", "-p " + std::to_string(mqtt_port));
    script = replace_all(script, "127.0.0.1:5683", "127.0.0.1:" + std::to_string(coap_port));
    write_file(home.path() / "readme.sh", script);
    // curl -s answers 0 on a 401; this curl fails on any HTTP error, so that the script stops.
    std::filesystem::create_directories(home.path() / "bin");
    write_file(home.path() / "bin" / "curl",
               "#!/bin/sh\nexec /usr/bin/curl --fail-with-body \"$@\"\n");
    std::filesystem::permissions(home.path() / "bin" / "curl", std::filesystem::perms::owner_all);
    process sh({"/bin/bash", (home.path() / "readme.sh").string()},
               {"PATH=" + (home.path() / "bin").string() + ":" + std::getenv("PATH")}, home.path());
    auto code = sh.wait(60s);
    ASSERT_TRUE(code.has_value()) << "the README's commands did not finish in 60 s";
    const std::string out = sh.out();
    EXPECT_EQ(*code, 0) << script << "\nout:\n" << out << "\nerr:\n" << sh.err();
    EXPECT_NE(out.find(R"({"status":"ok"})"), std::string::npos) << out;
    EXPECT_NE(out.find(R"({"status":"ready"})"), std::string::npos) << out;
    EXPECT_NE(out.find(R"("openapi":"3.1.0")"), std::string::npos) << out;
    EXPECT_NE(out.find("# TYPE clisonix_http_requests_total counter"), std::string::npos) << out;
    // The telemetry written over HTTP (pump-1) and over MQTT (pump-7) is read back.
    EXPECT_NE(out.find("pump-1"), std::string::npos) << out;
    EXPECT_NE(out.find("pump-7"), std::string::npos) << out;
    EXPECT_NE(out.find("21.5"), std::string::npos) << out;
}

}  // namespace
}  // namespace clisonix
