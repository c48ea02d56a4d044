// The node-opcua test server (tests/opcua/server.js) as a child process.
#pragma once

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "support/test_support.h"

namespace clisonix::opcua_test {

// node from PATH (the process helper runs its argv[0] as a path).
inline std::string node_binary() {
    const char* env = std::getenv("PATH");
    const std::string path = env ? env : "/usr/bin";
    for (size_t start = 0; start <= path.size();) {
        size_t end = path.find(':', start);
        if (end == std::string::npos) end = path.size();
        auto candidate = std::filesystem::path(path.substr(start, end - start)) / "node";
        if (::access(candidate.c_str(), X_OK) == 0) return candidate.string();
        start = end + 1;
    }
    return "/usr/bin/node";
}

// server.js on `port` with its PKI in `pki_dir`, trusting the client certificates given (PEM
// paths); running, with its certificate in <pki_dir>/server.der, once "ready" is printed.
// Returns null, with the reason in `why`, when it does not start within 30 s.
inline std::unique_ptr<testing::process> start_node_server(uint16_t port,
                                                           const std::string& pki_dir,
                                                           const std::vector<std::string>& trusted,
                                                           std::string& why) {
    std::vector<std::string> argv{node_binary(),
                                  std::string(CLISONIX_SOURCE_DIR) + "/tests/opcua/server.js",
                                  std::to_string(port), pki_dir};
    argv.insert(argv.end(), trusted.begin(), trusted.end());
    auto p = std::make_unique<testing::process>(argv);
    for (int i = 0; i < 300 && p->out().find("ready") == std::string::npos; ++i) {
        if (!p->running()) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    if (p->out().find("ready") != std::string::npos) return p;
    why = "node-opcua server did not start: " + p->err();
    return nullptr;
}

}  // namespace clisonix::opcua_test
