// The series index and series.log.
#include "storage/series_index.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>

#include "common/glob.h"
#include "observe/observe.h"

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
// A series.log record: [u32 length][u32 crc32c][u32 id][u8 type][key bytes].
constexpr size_t record_header = 8;
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
    while (pos + record_header <= d.size()) {
        uint32_t len = io::get_u32(&d[pos]);
        uint32_t crc = io::get_u32(&d[pos + 4]);
        if (len < 6 || len > d.size() - pos - record_header) break;
        const uint8_t* p = &d[pos + record_header];
        if (io::crc32c(p, len) != crc) break;
        uint32_t id = io::get_u32(p);
        auto type = static_cast<value_type>(p[4]);
        std::string_view key(reinterpret_cast<const char*>(p + 5), len - 5);
        if (id != ix->size() || type < value_type::float64 || type > value_type::string ||
            ix->size() >= ix->_max_series)
            break;
        auto info = parse_key(key);
        if (!info) break;
        info->type = type;
        ix->add(std::move(*info));
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
    uint32_t next = size();
    for (const auto& info : parsed) {
        if (_by_key.count(std::string_view(info.key))) continue;
        size_t at_pos = buf.size();
        uint32_t len = static_cast<uint32_t>(5 + info.key.size());
        buf.resize(at_pos + record_header + len);
        uint8_t* p = &buf[at_pos];
        io::put_u32(p, len);
        io::put_u32(p + record_header, next++);
        p[record_header + 4] = static_cast<uint8_t>(info.type);
        std::copy(info.key.begin(), info.key.end(), p + record_header + 5);
        io::put_u32(p + 4, io::crc32c(p + record_header, len));
    }
    if (!buf.empty()) {
        auto s = io::write_all(_log.fd(), buf.data(), buf.size(), _path);
        if (s) s = io::sync_data(_log.fd(), _path);
        if (!s) {
            // Leave no half record behind for the next append.
            if (::ftruncate(_log.fd(), static_cast<off_t>(_log_bytes)) != 0 ||
                ::lseek(_log.fd(), static_cast<off_t>(_log_bytes), SEEK_SET) < 0)
                log::error("storage: cannot roll back the series log", {{"path", _path}});
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
