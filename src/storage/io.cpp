// File helpers and CRC32C for the engine's own files (WAL, series log, parts).
#include "storage/io.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <filesystem>

#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

namespace clisonix::storage::io {

namespace {

constexpr uint32_t poly = 0x82F63B78u;  // reflected Castagnoli

struct tables {
    std::array<std::array<uint32_t, 256>, 8> t{};
    tables() {
        for (uint32_t i = 0; i < 256; ++i) {
            uint32_t c = i;
            for (int k = 0; k < 8; ++k)
                c = (c & 1) ? (c >> 1) ^ poly : c >> 1;
            t[0][i] = c;
        }
        for (uint32_t i = 0; i < 256; ++i)
            for (int s = 1; s < 8; ++s)
                t[s][i] = (t[s - 1][i] >> 8) ^ t[0][t[s - 1][i] & 0xff];
    }
};

// Slicing-by-8: the portable path, for machines without SSE4.2.
uint32_t crc_soft(const uint8_t* p, size_t n, uint32_t c) {
    static const tables tb;
    const auto& t = tb.t;
    while (n >= 8) {
        uint64_t w;
        std::memcpy(&w, p, 8);
        w ^= c;
        c = t[7][w & 0xff] ^ t[6][(w >> 8) & 0xff] ^ t[5][(w >> 16) & 0xff] ^
            t[4][(w >> 24) & 0xff] ^ t[3][(w >> 32) & 0xff] ^ t[2][(w >> 40) & 0xff] ^
            t[1][(w >> 48) & 0xff] ^ t[0][w >> 56];
        p += 8;
        n -= 8;
    }
    while (n--)
        c = (c >> 8) ^ t[0][(c ^ *p++) & 0xff];
    return c;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) uint32_t crc_hw(const uint8_t* p, size_t n, uint32_t c) {
    uint64_t c64 = c;
    while (n >= 8) {
        uint64_t w;
        std::memcpy(&w, p, 8);
        c64 = _mm_crc32_u64(c64, w);
        p += 8;
        n -= 8;
    }
    c = static_cast<uint32_t>(c64);
    while (n--)
        c = _mm_crc32_u8(c, *p++);
    return c;
}
bool have_hw() {
    static const bool yes = __builtin_cpu_supports("sse4.2");
    return yes;
}
#endif

}  // namespace

uint32_t crc32c(const void* data, size_t n, uint32_t crc) {
    auto p = static_cast<const uint8_t*>(data);
#if defined(__x86_64__)
    if (have_hw()) return ~crc_hw(p, n, ~crc);
#endif
    return ~crc_soft(p, n, ~crc);
}

bool is_out_of_space(int err) {
    return err == ENOSPC || err == EDQUOT;
}

error failure(std::string_view what, const std::string& path, int err) {
    return make_error(is_out_of_space(err) ? "storage_full" : "unavailable",
                      std::string(what) + " " + path + " failed: " + std::strerror(err));
}

result<uint64_t> free_bytes(const std::string& path) {
    struct statvfs st {};
    if (::statvfs(path.c_str(), &st) != 0) return failure("statvfs", path, errno);
    return static_cast<uint64_t>(st.f_bavail) * st.f_frsize;
}

void file::reset() {
    if (_fd >= 0) ::close(_fd);
    _fd = -1;
}

result<file> open_file(const std::string& path, int flags, int mode) {
    int fd = ::open(path.c_str(), flags | O_CLOEXEC, mode);
    if (fd < 0) return failure("open", path, errno);
    return file(fd);
}

status write_all(int fd, const void* data, size_t n, const std::string& path) {
    auto p = static_cast<const uint8_t*>(data);
    while (n > 0) {
        ssize_t w = ::write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return failure("write", path, errno);
        }
        p += w;
        n -= static_cast<size_t>(w);
    }
    return {};
}

status pwrite_all(int fd, const void* data, size_t n, uint64_t offset, const std::string& path) {
    auto p = static_cast<const uint8_t*>(data);
    while (n > 0) {
        ssize_t w = ::pwrite(fd, p, n, static_cast<off_t>(offset));
        if (w < 0) {
            if (errno == EINTR) continue;
            return failure("write", path, errno);
        }
        p += w;
        n -= static_cast<size_t>(w);
        offset += static_cast<uint64_t>(w);
    }
    return {};
}

status sync_data(int fd, const std::string& path) {
    if (::fdatasync(fd) != 0) return failure("fsync", path, errno);
    return {};
}

status sync_dir(const std::string& dir) {
    auto f = open_file(dir, O_RDONLY | O_DIRECTORY);
    if (!f) return f.error();
    if (::fsync(f->fd()) != 0) return failure("fsync", dir, errno);
    return {};
}

status make_dirs(const std::string& dir) {
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec) return failure("create directory", dir, ec.value());
    return {};
}

result<std::vector<uint8_t>> read_all(const std::string& path) {
    auto f = open_file(path, O_RDONLY);
    if (!f) return f.error();
    struct stat st {};
    if (::fstat(f->fd(), &st) != 0) return failure("stat", path, errno);
    std::vector<uint8_t> data(static_cast<size_t>(st.st_size));
    size_t done = 0;
    while (done < data.size()) {
        ssize_t r =
            ::pread(f->fd(), data.data() + done, data.size() - done, static_cast<off_t>(done));
        if (r < 0) {
            if (errno == EINTR) continue;
            return failure("read", path, errno);
        }
        if (r == 0) break;
        done += static_cast<size_t>(r);
    }
    data.resize(done);
    return data;
}

status write_durably(const std::string& path, std::span<const uint8_t> data) {
    std::string tmp = path + ".tmp";
    auto fail = [&](const error& e) {
        ::unlink(tmp.c_str());
        return e;
    };
    {
        auto f = open_file(tmp, O_WRONLY | O_CREAT | O_TRUNC);
        if (!f) return fail(f.error());
        if (auto s = write_all(f->fd(), data.data(), data.size(), tmp); !s) return fail(s.error());
        if (auto s = sync_data(f->fd(), tmp); !s) return fail(s.error());
    }
    if (::rename(tmp.c_str(), path.c_str()) != 0) return fail(failure("rename", tmp, errno));
    return sync_dir(std::filesystem::path(path).parent_path().string());
}

}  // namespace clisonix::storage::io
