// Private to the storage module: file helpers and the CRC32C shared by the WAL, the series
// log and part files. Every failure is a `status` naming the path, with code "storage_full"
// when the file system is out of space or over a quota (ENOSPC, EDQUOT), else "unavailable".
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "common/result.h"

namespace clisonix::storage::io {

// CRC32C (Castagnoli), as iSCSI and ext4 use it; `crc` continues a previous result.
uint32_t crc32c(const void* data, size_t n, uint32_t crc = 0);

error failure(std::string_view what, const std::string& path, int err);
// ENOSPC or EDQUOT: a condition that passes once space is freed, unlike a failing disk.
bool is_out_of_space(int err);
// Bytes an unprivileged writer may still use on the file system holding `path` (statvfs).
result<uint64_t> free_bytes(const std::string& path);

// An owned file descriptor.
class file {
public:
    file() = default;
    explicit file(int fd) : _fd(fd) {}
    ~file() { reset(); }
    file(file&& o) noexcept : _fd(o._fd) { o._fd = -1; }
    file& operator=(file&& o) noexcept {
        if (this != &o) {
            reset();
            _fd = o._fd;
            o._fd = -1;
        }
        return *this;
    }
    file(const file&) = delete;
    file& operator=(const file&) = delete;
    int fd() const { return _fd; }
    bool is_open() const { return _fd >= 0; }
    void reset();

private:
    int _fd = -1;
};

result<file> open_file(const std::string& path, int flags, int mode = 0644);
status write_all(int fd, const void* data, size_t n, const std::string& path);
// Writes at `offset`, whatever the file position: an append after a failed one lands on
// the last good end even if the failed one could not be cut off.
status pwrite_all(int fd, const void* data, size_t n, uint64_t offset, const std::string& path);
status sync_data(int fd, const std::string& path);
// Makes a rename or a new file in `dir` durable.
status sync_dir(const std::string& dir);
status make_dirs(const std::string& dir);
result<std::vector<uint8_t>> read_all(const std::string& path);
// Writes `data` to path.tmp, fsyncs it, renames it over `path` and fsyncs the directory. On
// failure path.tmp is removed (on a full disk it would hold on to the space).
status write_durably(const std::string& path, std::span<const uint8_t> data);

inline void put_u32(uint8_t* p, uint32_t v) {
    for (int i = 0; i < 4; ++i)
        p[i] = static_cast<uint8_t>(v >> (8 * i));
}
inline void put_u64(uint8_t* p, uint64_t v) {
    for (int i = 0; i < 8; ++i)
        p[i] = static_cast<uint8_t>(v >> (8 * i));
}
inline uint32_t get_u32(const uint8_t* p) {
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i)
        v |= static_cast<uint32_t>(p[i]) << (8 * i);
    return v;
}
inline uint64_t get_u64(const uint8_t* p) {
    uint64_t v = 0;
    for (int i = 0; i < 8; ++i)
        v |= static_cast<uint64_t>(p[i]) << (8 * i);
    return v;
}

}  // namespace clisonix::storage::io
