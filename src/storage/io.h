// Private to the storage module: file helpers and the CRC32C shared by the WAL, the series
// log and part files. Every failure is a `status` with code "unavailable" naming the path.
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
status sync_data(int fd, const std::string& path);
// Makes a rename or a new file in `dir` durable.
status sync_dir(const std::string& dir);
status make_dirs(const std::string& dir);
result<std::vector<uint8_t>> read_all(const std::string& path);
// Writes `data` to path.tmp, fsyncs it, renames it over `path` and fsyncs the directory.
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
