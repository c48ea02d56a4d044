// The data directory is the server user's alone: it holds meta.db (password hashes, sealed
// channel secrets), the signing keys and the logs.
#include <sys/stat.h>

#include <cstdio>
#include <filesystem>
#include <system_error>

#include "meta/meta.h"

namespace clisonix::meta {

namespace {

std::string octal(mode_t mode) {
    char text[8];
    std::snprintf(text, sizeof text, "%04o", static_cast<unsigned>(mode & 07777));
    return text;
}

// Drops the group and other bits of `p` (not following a symlink); records a change.
void restrict_one(const std::filesystem::path& p, std::vector<mode_change>& changes) {
    struct stat st {};
    if (::lstat(p.c_str(), &st) != 0 || S_ISLNK(st.st_mode)) return;
    const mode_t old = st.st_mode & 07777;
    const mode_t wanted = old & ~static_cast<mode_t>(077);
    if (old == wanted) return;
    if (::chmod(p.c_str(), wanted) != 0) return;
    changes.push_back({p.string(), octal(old), octal(wanted)});
}

}  // namespace

std::vector<mode_change> restrict_data_dir(const std::string& dir) {
    std::vector<mode_change> changes;
    restrict_one(dir, changes);
    std::error_code ec;
    // Symlinks are neither followed nor changed: what they point at is not ours to chmod.
    for (auto it = std::filesystem::recursive_directory_iterator(
             dir, std::filesystem::directory_options::skip_permission_denied, ec);
         !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec))
        restrict_one(it->path(), changes);
    return changes;
}

}  // namespace clisonix::meta
