// Part files: writing, mapping, index loading.
#include "storage/part.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <chrono>
#include <cstring>

#include "storage/block.h"
#include "storage/codec.h"
#include "storage/io.h"
#include "storage/rollup.h"

namespace clisonix::storage {

namespace {

constexpr char magic[8] = {'C', 'L', 'X', 'P', 'A', 'R', 'T', '1'};
// Versions 1 (no rollups), 2 (rollups) and 3 (downsampled entries) still open; every part
// written is version 4: its blocks hold only their columns (block format version 2), the
// index entry the rest, so that a binary that cannot read such blocks refuses the part.
constexpr uint32_t format_version = 4;
// Flags in the rollup trailer (version 3 and later).
constexpr uint32_t flag_downsampled = 1;  // entries of size 0 whose points are gone
constexpr uint32_t first_version = 1;
constexpr size_t entry_bytes = 80;  // version 1
constexpr size_t footer_bytes = 32;
// Version 2: a varint index (entries of variable size) and, between the index and the
// footer, where the rollups start and their CRC32C.
constexpr size_t rollup_trailer_bytes = 16;
constexpr uint32_t max_rollup_size = 16u << 20;  // bounds what a forged index may claim

double get_f64(const uint8_t* p) {
    return std::bit_cast<double>(io::get_u64(p));
}

// Index timestamps count from the start of the part's day (wrapping arithmetic: the first
// and last days of time have starts outside int64).
int64_t day_origin(int64_t day) {
    return static_cast<int64_t>(static_cast<uint64_t>(day) * static_cast<uint64_t>(day_ns));
}
int64_t wrapping_sub(int64_t a, int64_t b) {
    return static_cast<int64_t>(static_cast<uint64_t>(a) - static_cast<uint64_t>(b));
}
int64_t wrapping_add(int64_t a, int64_t b) {
    return static_cast<int64_t>(static_cast<uint64_t>(a) + static_cast<uint64_t>(b));
}

error corrupt(const std::string& path, std::string_view why) {
    return make_error("corrupt", "corrupt part " + path + ": " + std::string(why));
}

}  // namespace

std::string day_name(int64_t day) {
    using namespace std::chrono;
    year_month_day ymd{sys_days{days{day}}};
    char buf[32];
    std::snprintf(buf, sizeof buf, "%04d-%02u-%02u", static_cast<int>(ymd.year()),
                  static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()));
    return buf;
}

std::optional<int64_t> parse_day_name(std::string_view name) {
    using namespace std::chrono;
    int y = 0;
    unsigned m = 0, d = 0;
    if (name.size() < 10) return std::nullopt;
    std::string s(name);
    char tail = 0;
    if (std::sscanf(s.c_str(), "%d-%u-%u%c", &y, &m, &d, &tail) != 3) return std::nullopt;
    year_month_day ymd{year{y}, month{m}, day{d}};
    if (!ymd.ok()) return std::nullopt;
    if (day_name(sys_days{ymd}.time_since_epoch().count()) != name) return std::nullopt;
    return sys_days{ymd}.time_since_epoch().count();
}

std::string part_name(uint64_t seq) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%020llu.part", static_cast<unsigned long long>(seq));
    return buf;
}

std::optional<uint64_t> parse_part_name(std::string_view name) {
    if (name.size() != 25 || name.substr(20) != ".part") return std::nullopt;
    uint64_t v = 0;
    for (size_t i = 0; i < 20; ++i) {
        if (name[i] < '0' || name[i] > '9') return std::nullopt;
        v = v * 10 + static_cast<uint64_t>(name[i] - '0');
    }
    return v;
}

size_t tiered_merge_start(std::span<const uint64_t> sizes, size_t min_parts) {
    if (sizes.empty()) return 0;
    size_t first = sizes.size() - 1;
    uint64_t total = sizes.back();
    while (first > 0 && sizes[first - 1] <= 2 * total)
        total += sizes[--first];
    return sizes.size() - first >= std::max<size_t>(min_parts, 2) ? first : sizes.size();
}

void part_builder::add(series_id id, value_type type, std::span<const int64_t> ts,
                       std::span<const uint64_t> raw, std::span<const std::string> strings,
                       bool rollups) {
    for (size_t b = 0; b < ts.size(); b += max_block_points) {
        size_t n = std::min<size_t>(max_block_points, ts.size() - b);
        size_t offset = _data.size();
        auto h = block::encode_columns(type, ts.subspan(b, n), raw.subspan(b, n), strings, _data);
        part::entry e{};
        e.series = id;
        e.type = type;
        e.offset = offset;
        e.size = static_cast<uint32_t>(_data.size() - offset);
        e.stats = h.stats;
        e.stats.count = h.count;
        e.stats.first_ts = h.first_ts;
        e.stats.last_ts = h.last_ts;
        size_t rollups_at = _rollups.size();
        if (rollups) rollup::build(type, ts.subspan(b, n), raw.subspan(b, n), _rollups);
        if (_rollups.size() - rollups_at > max_rollup_size) _rollups.resize(rollups_at);
        e.rollup_offset = rollups_at;
        e.rollup_size = static_cast<uint32_t>(_rollups.size() - rollups_at);
        _entries.push_back(e);
    }
}

void part_builder::add_downsampled(series_id id, value_type type, std::span<const int64_t> ts,
                                   std::span<const uint64_t> raw) {
    for (size_t b = 0; b < ts.size(); b += max_block_points) {
        size_t n = std::min<size_t>(max_block_points, ts.size() - b);
        part::entry e{};
        e.series = id;
        e.type = type;
        e.downsampled = true;
        block::summarize(type, ts.subspan(b, n), raw.subspan(b, n), e.stats);
        e.rollup_offset = _rollups.size();
        rollup::build(type, ts.subspan(b, n), raw.subspan(b, n), _rollups, true);
        if (_rollups.size() - e.rollup_offset > max_rollup_size) _rollups.resize(e.rollup_offset);
        e.rollup_size = static_cast<uint32_t>(_rollups.size() - e.rollup_offset);
        _entries.push_back(e);
    }
}

void part_builder::add_downsampled(const part::entry& from, std::span<const uint8_t> rollups) {
    part::entry e = from;
    e.offset = 0;
    e.size = 0;
    e.downsampled = true;
    e.rollup_offset = _rollups.size();
    e.rollup_size = static_cast<uint32_t>(rollups.size());
    _rollups.insert(_rollups.end(), rollups.begin(), rollups.end());
    _entries.push_back(e);
}

status part_builder::write(const std::string& path) {
    bool downsampled = std::any_of(_entries.begin(), _entries.end(),
                                   [](const part::entry& e) { return e.downsampled; });
    if (downsampled) {
        // A series' downsampled entries may come from several parts: order them by time (the
        // blocks of a series are added in order already, and a series is one or the other).
        std::stable_sort(_entries.begin(), _entries.end(), [](const auto& a, const auto& b) {
            return a.series != b.series ? a.series < b.series : a.stats.first_ts < b.stats.first_ts;
        });
        std::vector<uint8_t> ordered;
        ordered.reserve(_rollups.size());
        for (auto& e : _entries) {
            size_t at = ordered.size();
            ordered.insert(
                ordered.end(), _rollups.begin() + static_cast<ptrdiff_t>(e.rollup_offset),
                _rollups.begin() + static_cast<ptrdiff_t>(e.rollup_offset + e.rollup_size));
            e.rollup_offset = at;
        }
        _rollups.swap(ordered);
    }
    uint64_t rollups_offset = _data.size();
    _data.insert(_data.end(), _rollups.begin(), _rollups.end());
    uint64_t index_offset = _data.size();
    // Version 2 index: varints, each field against the entry before (blocks and rollups lie
    // back to back in index order, so their offsets follow from the sizes).
    series_id prev_series = 0;
    int64_t prev_first = _entries.empty() ? 0 : day_origin(day_of(_entries.front().stats.first_ts));
    int64_t prev_span = 0;
    for (const auto& e : _entries) {
        codec::put_varint(_data, e.series - prev_series);
        codec::put_u8(_data, static_cast<uint8_t>(e.type));
        codec::put_varint(_data, e.size);
        codec::put_varint(_data, e.rollup_size);
        codec::put_varint(_data, e.stats.count);
        int64_t span = wrapping_sub(e.stats.last_ts, e.stats.first_ts);
        codec::put_varint(_data, codec::zigzag(wrapping_sub(e.stats.first_ts, prev_first)));
        codec::put_varint(_data, codec::zigzag(wrapping_sub(span, prev_span)));
        if (e.type != value_type::string) block::put_summary_values(e.stats, _data);
        prev_series = e.series;
        prev_first = e.stats.first_ts;
        prev_span = span;
    }
    uint64_t index_bytes = _data.size() - index_offset;
    codec::put_u64(_data, rollups_offset);
    codec::put_u32(_data, io::crc32c(_rollups.data(), _rollups.size()));
    codec::put_u32(_data, downsampled ? flag_downsampled : 0);
    size_t f = _data.size();
    _data.insert(_data.end(), magic, magic + 8);
    codec::put_u32(_data, format_version);
    codec::put_u32(_data, static_cast<uint32_t>(_entries.size()));
    codec::put_u64(_data, index_offset);
    codec::put_u32(_data, io::crc32c(_data.data() + index_offset, index_bytes));
    codec::put_u32(_data, io::crc32c(_data.data() + f, 28));
    return io::write_durably(path, _data);
}

namespace {

// Version 1: fixed 80-byte entries.
bool read_entry_v1(const uint8_t* ix, part::entry& e) {
    e.series = io::get_u32(ix);
    e.type = static_cast<value_type>(ix[4]);
    e.offset = io::get_u64(ix + 8);
    e.size = io::get_u32(ix + 16);
    e.stats.count = io::get_u32(ix + 20);
    e.stats.first_ts = static_cast<int64_t>(io::get_u64(ix + 24));
    e.stats.last_ts = static_cast<int64_t>(io::get_u64(ix + 32));
    e.stats.sum = get_f64(ix + 40);
    e.stats.min = get_f64(ix + 48);
    e.stats.max = get_f64(ix + 56);
    e.stats.first = get_f64(ix + 64);
    e.stats.last = get_f64(ix + 72);
    return true;
}

}  // namespace

result<std::shared_ptr<part>> part::open(const std::string& path, uint64_t seq, int64_t day) {
    auto f = io::open_file(path, O_RDONLY);
    if (!f) return f.error();
    struct stat st {};
    if (::fstat(f->fd(), &st) != 0) return io::failure("stat", path, errno);
    size_t size = static_cast<size_t>(st.st_size);
    if (size < footer_bytes) return corrupt(path, "shorter than its footer");
    void* m = ::mmap(nullptr, size, PROT_READ, MAP_SHARED, f->fd(), 0);
    if (m == MAP_FAILED) return io::failure("mmap", path, errno);
    std::shared_ptr<part> pt(new part());
    pt->_path = path;
    pt->_seq = seq;
    pt->_day = day;
    pt->_map = static_cast<const uint8_t*>(m);
    pt->_size = size;

    const uint8_t* foot = pt->_map + size - footer_bytes;
    if (std::memcmp(foot, magic, 8) != 0) return corrupt(path, "bad magic");
    if (io::crc32c(foot, 28) != io::get_u32(foot + 28)) return corrupt(path, "footer checksum");
    uint32_t version = io::get_u32(foot + 8);
    if (version < first_version || version > format_version)
        return corrupt(path, "unknown format version");
    size_t trailer = version >= 2 ? rollup_trailer_bytes : 0;
    if (size < footer_bytes + trailer) return corrupt(path, "shorter than its footer");
    uint64_t count = io::get_u32(foot + 12);
    uint64_t index_offset = io::get_u64(foot + 16);
    if (index_offset > size - footer_bytes - trailer) return corrupt(path, "index out of bounds");
    uint64_t index_bytes = size - footer_bytes - trailer - index_offset;
    if (version == 1 && index_bytes != count * entry_bytes)
        return corrupt(path, "index out of bounds");
    const uint8_t* ix = pt->_map + index_offset;
    if (io::crc32c(ix, index_bytes) != io::get_u32(foot + 24))
        return corrupt(path, "index checksum");
    // Blocks end where the rollups start; version 1 has none.
    uint64_t rollups_offset = index_offset;
    uint32_t flags = 0;
    if (version >= 2) {
        const uint8_t* rt = ix + index_bytes;
        rollups_offset = io::get_u64(rt);
        if (version >= 3) flags = io::get_u32(rt + 12);
        if (flags & ~flag_downsampled) return corrupt(path, "unknown flags");
        if (rollups_offset > index_offset) return corrupt(path, "rollups out of bounds");
        if (io::crc32c(pt->_map + rollups_offset, index_offset - rollups_offset) !=
            io::get_u32(rt + 8))
            return corrupt(path, "rollups checksum");
    }
    uint64_t next_block = 0, next_rollup = rollups_offset;
    codec::reader rd(ix, ix + index_bytes);
    series_id prev_series = 0;
    int64_t prev_first = day_origin(day), prev_span = 0;
    pt->_entries.reserve(std::min<uint64_t>(count, index_bytes));
    for (uint64_t i = 0; i < count; ++i) {
        entry e{};
        if (version == 1) {
            read_entry_v1(ix + i * entry_bytes, e);
        } else {
            uint64_t series_delta, size_v, rollup_v, count_v, first_z, span_z;
            uint8_t type;
            if (!rd.varint(series_delta) || !rd.u8(type) || !rd.varint(size_v) ||
                !rd.varint(rollup_v) || !rd.varint(count_v) || !rd.varint(first_z) ||
                !rd.varint(span_z) || series_delta > UINT32_MAX - prev_series ||
                size_v > UINT32_MAX || rollup_v > UINT32_MAX || count_v > UINT32_MAX)
                return corrupt(path, "bad index entry");
            e.series = prev_series + static_cast<series_id>(series_delta);
            e.type = static_cast<value_type>(type);
            e.size = static_cast<uint32_t>(size_v);
            e.rollup_size = static_cast<uint32_t>(rollup_v);
            e.offset = next_block;
            e.stats.count = count_v;
            int64_t span = wrapping_add(prev_span, codec::unzigzag(span_z));
            e.stats.first_ts = wrapping_add(prev_first, codec::unzigzag(first_z));
            e.stats.last_ts = wrapping_add(e.stats.first_ts, span);
            if (span < 0) return corrupt(path, "bad index entry");
            if (e.type >= value_type::float64 && e.type < value_type::string) {
                size_t n = block::get_summary_values({rd.pos(), rd.left()}, e.stats);
                if (n == 0) return corrupt(path, "bad summary in the index");
                rd = codec::reader(rd.pos() + n, rd.pos() + rd.left());
            }
            prev_series = e.series;
            prev_first = e.stats.first_ts;
            prev_span = span;
            next_block += e.size;
            e.rollup_offset = next_rollup;
            // Only a flagged part has entries without a block; strings have no rows to keep.
            e.downsampled = e.size == 0 && (flags & flag_downsampled);
            if (e.size == 0 && (!e.downsampled || e.type == value_type::string))
                return corrupt(path, "bad index entry");
            if (e.rollup_size > index_offset - next_rollup)
                return corrupt(path, "rollups out of bounds");
            next_rollup += e.rollup_size;
        }
        if (e.type < value_type::float64 || e.type > value_type::string)
            return corrupt(path, "bad value type in the index");
        if (e.offset > rollups_offset || e.size > rollups_offset - e.offset || e.stats.count == 0 ||
            e.stats.first_ts > e.stats.last_ts || day_of(e.stats.first_ts) != day ||
            day_of(e.stats.last_ts) != day)
            return corrupt(path, "bad index entry");
        if (!pt->_entries.empty()) {
            // Downsampled entries of a series may overlap (rows of points written into the
            // day after it was downsampled): only their starts are in order.
            const auto& prev = pt->_entries.back();
            bool both_downsampled = prev.downsampled && e.downsampled;
            if (prev.series > e.series ||
                (prev.series == e.series && !both_downsampled &&
                 prev.stats.last_ts >= e.stats.first_ts) ||
                (prev.series == e.series && prev.stats.first_ts > e.stats.first_ts))
                return corrupt(path, "index not in order");
        }
        if (e.downsampled)
            pt->_has_downsampled = true;
        else
            pt->_points += e.stats.count;
        pt->_entries.push_back(e);
    }
    if (version >= 2 && (!rd.done() || next_rollup != index_offset))
        return corrupt(path, "index entries do not fill the index");
    return pt;
}

part::~part() {
    if (_map) ::munmap(const_cast<uint8_t*>(_map), _size);
}

std::span<const part::entry> part::entries(series_id id) const {
    auto lo = std::lower_bound(_entries.begin(), _entries.end(), id,
                               [](const entry& e, series_id v) { return e.series < v; });
    auto hi = lo;
    while (hi != _entries.end() && hi->series == id)
        ++hi;
    return {lo, hi};
}

}  // namespace clisonix::storage
