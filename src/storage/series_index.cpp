// The series index and series.log.
#include "storage/series_index.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "common/glob.h"
#include "observe/observe.h"
#include "storage/codec.h"

namespace clisonix::storage {

void head_points::normalize() {
    if (sorted) return;
    std::stable_sort(points.begin(), points.end(),
                     [](const sample& a, const sample& b) { return a.ts < b.ts; });
    size_t w = 0;
    for (size_t i = 0; i < points.size(); ++i) {
        if (w > 0 && points[w - 1].ts == points[i].ts)
            points[w - 1] = points[i];  // the later write wins
        else
            points[w++] = points[i];
    }
    points.resize(w);
    if (!strings.empty()) {
        // Compact the string values to the survivors.
        std::vector<std::string> kept;
        kept.reserve(points.size());
        for (auto& p : points) {
            kept.push_back(std::move(strings[p.raw]));
            p.raw = kept.size() - 1;
        }
        strings = std::move(kept);
    }
    sorted = true;
}

namespace {
// A series.log record: [u32 length][u32 crc32c][payload] (docs/format/part.md). The payload
// is one series, [u32 id][u8 type][key bytes], or a group of the series one write created,
// [u32 group_marker][u32 first id][u32 count][u32 raw length][zstd of, per series:
// u8 type, varint bytes shared with the previous key, varint length, the rest of the key].
// Keys created together share most of their text ("telemetry,device=d00042 " and then a
// field), so a group takes about a sixth of the bytes of separate records.
constexpr size_t record_header = 8;
constexpr uint32_t group_marker = 0xFFFFFFFFu;  // no series has this id (no_series)
constexpr size_t group_header = 16;
constexpr size_t min_group = 4;  // fewer series: separate records, no compressor frame

// The series of one group record, appended to `out` as (type, key); false if malformed.
bool decode_group(std::span<const uint8_t> payload, uint32_t& first_id,
                  std::vector<std::pair<value_type, std::string>>& out) {
    if (payload.size() < group_header) return false;
    first_id = io::get_u32(&payload[4]);
    const uint32_t count = io::get_u32(&payload[8]);
    const uint32_t raw_len = io::get_u32(&payload[12]);
    if (raw_len > (64u << 20)) return false;  // groups are written below 8 MiB + one key
    std::vector<uint8_t> raw;
    if (!codec::zstd_decompress(payload.subspan(group_header), raw_len, raw)) return false;
    codec::reader r(raw);
    std::string key;
    for (uint32_t i = 0; i < count; ++i) {
        uint8_t type;
        uint64_t shared, rest;
        if (!r.u8(type) || !r.varint(shared) || !r.varint(rest) || shared > key.size() ||
            rest > r.left())
            return false;
        key.resize(shared);
        key.append(reinterpret_cast<const char*>(r.pos()), rest);
        r = codec::reader(r.pos() + rest, raw.data() + raw.size());
        out.emplace_back(static_cast<value_type>(type), key);
    }
    return r.done();
}

// Appends one framed record holding `payload` to `buf`.
void append_record(std::vector<uint8_t>& buf, std::span<const uint8_t> payload) {
    const size_t at = buf.size();
    buf.resize(at + record_header + payload.size());
    io::put_u32(&buf[at], static_cast<uint32_t>(payload.size()));
    io::put_u32(&buf[at + 4], io::crc32c(payload.data(), payload.size()));
    std::copy(payload.begin(), payload.end(),
              buf.begin() + static_cast<ptrdiff_t>(at + record_header));
}

// The records for new series `infos` (ids from `next`), appended to `buf`.
void encode_records(std::span<const series_info* const> infos, uint32_t next,
                    std::vector<uint8_t>& buf) {
    std::vector<uint8_t> payload;
    if (infos.size() < min_group) {
        for (const auto* info : infos) {
            payload.resize(5 + info->key.size());
            io::put_u32(payload.data(), next++);
            payload[4] = static_cast<uint8_t>(info->type);
            std::copy(info->key.begin(), info->key.end(), payload.begin() + 5);
            append_record(buf, payload);
        }
        return;
    }
    // Groups stay far below the reader's bound on a group's raw length.
    constexpr size_t max_raw = 8u << 20;
    std::vector<uint8_t> raw;
    std::string_view prev;
    uint32_t first = next, count = 0;
    auto flush_group = [&] {
        payload.resize(group_header);
        io::put_u32(&payload[0], group_marker);
        io::put_u32(&payload[4], first);
        io::put_u32(&payload[8], count);
        io::put_u32(&payload[12], static_cast<uint32_t>(raw.size()));
        codec::zstd_compress(raw, payload, 3);
        append_record(buf, payload);
        first += count;
        count = 0;
        raw.clear();
        prev = {};
    };
    for (const auto* info : infos) {
        std::string_view key = info->key;
        size_t shared = 0;
        while (shared < prev.size() && shared < key.size() && prev[shared] == key[shared])
            ++shared;
        codec::put_u8(raw, static_cast<uint8_t>(info->type));
        codec::put_varint(raw, shared);
        codec::put_varint(raw, key.size() - shared);
        raw.insert(raw.end(), key.begin() + static_cast<ptrdiff_t>(shared), key.end());
        prev = key;
        ++count;
        if (raw.size() >= max_raw) flush_group();
    }
    if (count > 0) flush_group();
}
}  // namespace

result<std::unique_ptr<series_index>> series_index::open(const std::string& dir,
                                                         uint64_t max_series) {
    std::unique_ptr<series_index> ix(new series_index());
    ix->_path = dir + "/series.log";
    ix->_max_series = std::min<uint64_t>(max_series, no_series);
    ix->_chunks.resize((ix->_max_series + chunk_size - 1) / chunk_size);

    auto f = io::open_file(ix->_path, O_RDWR | O_CREAT);
    if (!f) return f.error();
    auto data = io::read_all(ix->_path);
    if (!data) return data.error();
    const auto& d = *data;
    size_t pos = 0;
    std::vector<std::pair<value_type, std::string>> group;
    auto add_series = [&](uint32_t id, value_type type, std::string_view key) {
        if (id != ix->size() || type < value_type::float64 || type > value_type::string ||
            ix->size() >= ix->_max_series)
            return false;
        auto info = parse_key(key);
        if (!info) return false;
        info->type = type;
        ix->add(std::move(*info));
        return true;
    };
    while (pos + record_header <= d.size()) {
        uint32_t len = io::get_u32(&d[pos]);
        uint32_t crc = io::get_u32(&d[pos + 4]);
        if (len < 6 || len > d.size() - pos - record_header) break;
        const uint8_t* p = &d[pos + record_header];
        if (io::crc32c(p, len) != crc) break;
        const uint32_t id = io::get_u32(p);
        bool ok = true;
        if (id == group_marker) {
            group.clear();
            uint32_t first = 0;
            ok = decode_group({p, len}, first, group);
            for (size_t i = 0; ok && i < group.size(); ++i)
                ok = add_series(first + static_cast<uint32_t>(i), group[i].first, group[i].second);
        } else {
            ok = add_series(id, static_cast<value_type>(p[4]),
                            std::string_view(reinterpret_cast<const char*>(p + 5), len - 5));
        }
        if (!ok) break;
        pos += record_header + len;
    }
    if (pos != d.size()) {
        // A torn append (the process died inside create()): the series in it were never
        // used by a WAL record, because records are logged only after create() returns.
        log::warn("storage: series log has a damaged tail; truncated",
                  {{"path", ix->_path},
                   {"series", ix->size()},
                   {"bytes_dropped", static_cast<int64_t>(d.size() - pos)}});
        if (::ftruncate(f->fd(), static_cast<off_t>(pos)) != 0)
            return io::failure("truncate", ix->_path, errno);
    }
    if (::lseek(f->fd(), static_cast<off_t>(pos), SEEK_SET) < 0)
        return io::failure("seek", ix->_path, errno);
    ix->_log_bytes = pos;
    ix->_log = std::move(*f);
    return ix;
}

series_index::~series_index() = default;

series_id series_index::add(series_info info) {
    uint32_t id = size();
    auto& chunk = _chunks[id >> chunk_bits];
    if (!chunk) chunk.reset(new series_slot[chunk_size]);
    auto& slot = chunk[id & chunk_mask];
    info.id = id;
    slot.info = std::move(info);
    _by_key.emplace(slot.info.key, id);
    {
        std::unique_lock lock(_postings_mutex);
        _by_measurement[slot.info.measurement].push_back(id);
        _by_field[slot.info.field].push_back(id);
        for (const auto& [key, value] : slot.info.tags)
            _by_tag[key][value].push_back(id);
    }
    _size.store(id + 1, std::memory_order_release);
    return id;
}

namespace {

using id_span = std::span<const series_id>;

// The ids under the values of `by_value` that match `pattern`, into `out` (ascending).
// A literal pattern is one lookup; a glob visits the values from its literal prefix on.
// The lists are disjoint (a series has one value per key), so a sort makes their union.
template <class map>
id_span matching(const map& by_value, std::string_view pattern,
                 std::vector<std::vector<series_id>>& unions) {
    if (glob_is_literal(pattern)) {
        auto it = by_value.find(pattern);
        return it == by_value.end() ? id_span{} : id_span(it->second);
    }
    const std::string_view prefix = glob_literal_prefix(pattern);
    const typename map::mapped_type* only = nullptr;
    std::vector<series_id> merged;
    size_t lists = 0;
    for (auto it = by_value.lower_bound(prefix);
         it != by_value.end() && std::string_view(it->first).starts_with(prefix); ++it) {
        if (!glob_match(pattern, it->first)) continue;
        if (++lists == 1) {
            only = &it->second;
            continue;
        }
        if (lists == 2) merged.assign(only->begin(), only->end());
        merged.insert(merged.end(), it->second.begin(), it->second.end());
    }
    if (lists == 0) return {};
    if (lists == 1) return id_span(*only);
    std::sort(merged.begin(), merged.end());
    unions.push_back(std::move(merged));
    return id_span(unions.back());
}

}  // namespace

std::vector<series_id> series_index::select(const series_selector& selector) const {
    // Each constraint the index answers is a sorted id list; the answer is their intersection,
    // walked from the shortest list and looked up in the others.
    std::vector<std::vector<series_id>> unions;
    unions.reserve(2 + selector.tag_globs.size() + selector.tag_values.size());
    std::vector<id_span> lists;
    std::shared_lock lock(_postings_mutex);
    if (selector.measurement != "*")
        lists.push_back(matching(_by_measurement, selector.measurement, unions));
    if (selector.field != "*") lists.push_back(matching(_by_field, selector.field, unions));
    static const postings_by_value no_values;
    auto values_of = [&](std::string_view key) -> const postings_by_value& {
        auto it = _by_tag.find(key);
        return it == _by_tag.end() ? no_values : it->second;
    };
    for (const auto& [key, pattern] : selector.tag_globs)
        lists.push_back(matching(values_of(key), pattern, unions));
    for (const auto& [key, wanted] : selector.tag_values) {
        const auto& by_value = values_of(key);
        std::vector<series_id> merged;
        for (const auto& v : wanted)
            if (auto it = by_value.find(v); it != by_value.end())
                merged.insert(merged.end(), it->second.begin(), it->second.end());
        // Values may repeat in `wanted`.
        std::sort(merged.begin(), merged.end());
        merged.erase(std::unique(merged.begin(), merged.end()), merged.end());
        unions.push_back(std::move(merged));
        lists.push_back(id_span(unions.back()));
    }

    std::vector<series_id> out;
    if (lists.empty()) {
        out.resize(size());
        for (series_id id = 0; id < out.size(); ++id)
            out[id] = id;
        return out;
    }
    std::sort(lists.begin(), lists.end(),
              [](const id_span& a, const id_span& b) { return a.size() < b.size(); });
    out.reserve(lists.front().size());
    for (series_id id : lists.front()) {
        bool everywhere = true;
        for (size_t l = 1; l < lists.size() && everywhere; ++l)
            everywhere = std::binary_search(lists[l].begin(), lists[l].end(), id);
        if (everywhere) out.push_back(id);
    }
    return out;
}

std::optional<series_id> series_index::find(std::string_view key) const {
    std::shared_lock lock(_mutex);
    auto it = _by_key.find(key);
    if (it == _by_key.end()) return std::nullopt;
    return it->second;
}

void series_index::find(std::span<const write_batch::series_entry> entries,
                        std::vector<series_id>& ids) const {
    ids.resize(entries.size());
    std::shared_lock lock(_mutex);
    for (size_t i = 0; i < entries.size(); ++i) {
        auto it = _by_key.find(std::string_view(entries[i].key));
        ids[i] = it == _by_key.end() ? no_series : it->second;
    }
}

status series_index::create(std::span<const write_batch::series_entry> entries,
                            std::vector<series_id>& ids) {
    std::vector<series_info> parsed;
    std::vector<size_t> which;
    for (size_t i = 0; i < entries.size(); ++i) {
        if (ids[i] != no_series) continue;
        auto info = parse_key(entries[i].key);
        if (!info) return info.error();
        info->type = entries[i].type;
        parsed.push_back(std::move(*info));
        which.push_back(i);
    }
    if (parsed.empty()) return {};

    std::unique_lock lock(_mutex);
    // Another writer may have created some of them since the caller looked.
    std::vector<uint8_t> buf;
    size_t fresh = 0;
    for (size_t j = 0; j < parsed.size(); ++j) {
        auto it = _by_key.find(std::string_view(parsed[j].key));
        if (it == _by_key.end()) {
            ++fresh;
            continue;
        }
        const auto& existing = at(it->second).info;
        if (existing.type != parsed[j].type)
            return make_error("invalid_argument",
                              "field type conflict: " + existing.key + " is " +
                                  std::string(type_name(existing.type)) + ", the write has " +
                                  std::string(type_name(parsed[j].type)),
                              existing.key);
    }
    if (size() + fresh > _max_series)
        return make_error("invalid_argument", "series limit reached: " + std::to_string(size()) +
                                                  " series exist and the write adds " +
                                                  std::to_string(fresh) +
                                                  " more; the limit (storage max_series) is " +
                                                  std::to_string(_max_series));
    std::vector<const series_info*> fresh_infos;
    fresh_infos.reserve(fresh);
    for (const auto& info : parsed) {
        // Keys are unique within a write (write_batch::series), so only existing ones drop out.
        if (!_by_key.count(std::string_view(info.key))) fresh_infos.push_back(&info);
    }
    encode_records(fresh_infos, size(), buf);
    if (!buf.empty()) {
        // At the last good end, not the file position: after a failed append (a full disk)
        // the next one overwrites whatever part of it reached the file, so no half record
        // ever sits between two good ones, even when the cut below fails too.
        auto s = io::pwrite_all(_log.fd(), buf.data(), buf.size(), _log_bytes, _path);
        if (s) s = io::sync_data(_log.fd(), _path);
        if (!s) {
            // Give the space back; a tail left behind is overwritten or cut at the next open.
            if (::ftruncate(_log.fd(), static_cast<off_t>(_log_bytes)) != 0)
                log::warn("storage: cannot cut a failed append off the series log",
                          {{"path", _path}, {"error", std::string(std::strerror(errno))}});
            return s;
        }
        _log_bytes += buf.size();
    }
    for (size_t j = 0; j < parsed.size(); ++j) {
        auto it = _by_key.find(std::string_view(parsed[j].key));
        ids[which[j]] = it != _by_key.end() ? it->second : add(std::move(parsed[j]));
    }
    return {};
}

uint64_t series_index::file_bytes() const {
    std::shared_lock lock(_mutex);
    return _log_bytes;
}

}  // namespace clisonix::storage
