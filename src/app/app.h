// Private to the app: the commands main() dispatches to.
#pragma once

#include <string_view>

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

}  // namespace clisonix::app
