// Clisonix — a key file generated once: the server's own secrets (the JWT signing key, the
// key that seals channel secrets) live in the data directory, readable by this user only.
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <string_view>

#include "common/result.h"

namespace clisonix {

// Creates `path` with `line` as its content (mode 0600, O_EXCL, fsynced) and answers true;
// answers false when the file already exists, so that two processes starting at once agree
// on the winner's key (the loser reads it). An error says why (the caller names the file).
inline result<bool> create_key_file(const std::string& path, std::string_view line) {
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        if (errno == EEXIST) return false;
        return make_error("unavailable", std::strerror(errno));
    }
    const bool written = ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size());
    const bool synced = ::fsync(fd) == 0;
    ::close(fd);
    if (!written || !synced) {
        ::unlink(path.c_str());
        return make_error("unavailable", "cannot be written");
    }
    return true;
}

}  // namespace clisonix
