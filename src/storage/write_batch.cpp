// write_batch: points grouped by series, reused across requests.
#include <functional>

#include "storage/storage.h"

namespace clisonix::storage {

std::string_view type_name(value_type t) {
    switch (t) {
        case value_type::float64:
            return "float";
        case value_type::int64:
            return "integer";
        case value_type::boolean:
            return "boolean";
        case value_type::string:
            return "string";
    }
    return "unknown";
}

write_batch::write_batch(const write_batch& o)
    : _series(o._series),
      _points(o._points),
      _strings(o._strings),
      _key_bytes(o._key_bytes),
      _slots(o._slots),
      _hashes(o._hashes),
      _slot_of(o._slot_of),
      _engine_ids(o._engine_ids) {
    rebase_keys(o._key_bytes.data());
}

write_batch& write_batch::operator=(const write_batch& o) {
    if (this != &o) {
        write_batch copy(o);
        *this = std::move(copy);
    }
    return *this;
}

void write_batch::rebase_keys(const char* old_base) {
    const char* base = _key_bytes.data();
    if (base == old_base) return;
    for (auto& e : _series)
        e.key = std::string_view(base + (e.key.data() - old_base), e.key.size());
}

uint32_t* write_batch::find_slot(std::string_view key, size_t hash) {
    const size_t mask = _slots.size() - 1;
    for (size_t i = hash & mask;; i = (i + 1) & mask) {
        uint32_t v = _slots[i];
        if (v == 0) return &_slots[i];
        if (_hashes[v - 1] == hash && _series[v - 1].key == key) return &_slots[i];
    }
}

void write_batch::grow_index() {
    // At most half full, so that probes stay short; the table only ever grows.
    size_t n = _slots.empty() ? 64 : _slots.size() * 2;
    _slots.assign(n, 0);
    const size_t mask = n - 1;
    for (uint32_t s = 0; s < _series.size(); ++s) {
        size_t i = _hashes[s] & mask;
        while (_slots[i] != 0)
            i = (i + 1) & mask;
        _slots[i] = s + 1;
        _slot_of[s] = static_cast<uint32_t>(i);
    }
}

result<uint32_t> write_batch::series(std::string_view key, value_type type) {
    if ((_series.size() + 1) * 2 > _slots.size()) grow_index();
    const size_t hash = std::hash<std::string_view>{}(key);
    uint32_t* slot = find_slot(key, hash);
    if (*slot != 0) {
        const auto& existing = _series[*slot - 1];
        if (existing.type != type)
            return make_error("invalid_argument", "field type conflict: " + std::string(key) +
                                                      " is " +
                                                      std::string(type_name(existing.type)) +
                                                      " earlier in the batch, " +
                                                      std::string(type_name(type)) + " here");
        return *slot - 1;
    }
    auto n = static_cast<uint32_t>(_series.size());
    const char* old_base = _key_bytes.data();
    const size_t offset = _key_bytes.size();
    _key_bytes.insert(_key_bytes.end(), key.begin(), key.end());
    rebase_keys(old_base);
    _series.push_back({std::string_view(_key_bytes.data() + offset, key.size()), type});
    _hashes.push_back(hash);
    _slot_of.push_back(static_cast<uint32_t>(slot - _slots.data()));
    *slot = n + 1;
    return n;
}

void write_batch::add_string(uint32_t series, int64_t ts_ns, std::string_view v) {
    _points.push_back({series, ts_ns, _strings.size()});
    _strings.emplace_back(v);
}

void write_batch::clear() {
    _series.clear();
    _points.clear();
    _strings.clear();
    for (uint32_t slot : _slot_of)
        _slots[slot] = 0;
    _slot_of.clear();
    _hashes.clear();
    _engine_ids.clear();
    _key_bytes.clear();
}

}  // namespace clisonix::storage
