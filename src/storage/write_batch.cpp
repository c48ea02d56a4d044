// write_batch: points grouped by series, reused across requests.
#include <unordered_map>

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

namespace {
struct key_hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const noexcept {
        return std::hash<std::string_view>{}(s);
    }
};
}  // namespace

// Keys are views into _series[i].key; entries are never removed except by clear(), and the
// strings are reserved before their views are taken, so the views stay valid.
struct write_batch::index {
    std::unordered_map<std::string_view, uint32_t, key_hash, std::equal_to<>> by_key;
};

result<uint32_t> write_batch::series(std::string_view key, value_type type) {
    if (!_index) _index = std::make_shared<index>();
    auto it = _index->by_key.find(key);
    if (it != _index->by_key.end()) {
        const auto& existing = _series[it->second];
        if (existing.type != type)
            return make_error("invalid_argument", "field type conflict: " + std::string(key) +
                                                      " is " +
                                                      std::string(type_name(existing.type)) +
                                                      " earlier in the batch, " +
                                                      std::string(type_name(type)) + " here");
        return it->second;
    }
    auto n = static_cast<uint32_t>(_series.size());
    if (_series.size() == _series.capacity()) {
        // Growing moves the strings; short keys live inside std::string (SSO), so their
        // views would dangle. Rebuild the index after growing.
        _series.reserve(_series.empty() ? 64 : _series.size() * 2);
        _index->by_key.clear();
        for (uint32_t i = 0; i < _series.size(); ++i)
            _index->by_key.emplace(_series[i].key, i);
    }
    _series.push_back({std::string(key), type});
    _index->by_key.emplace(_series.back().key, n);
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
    if (_index) _index->by_key.clear();
}

}  // namespace clisonix::storage
