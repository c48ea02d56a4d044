// The shard of a series and the payload of one shard's message (docs/format/cluster-log.md).
#include <cstring>

#include "cluster/cluster.h"

namespace clisonix::cluster {
namespace {

constexpr char magic[4] = {'C', 'L', 'X', '1'};

uint64_t fnv1a(std::string_view bytes) {
    uint64_t h = 1469598103934665603ull;
    for (unsigned char c : bytes) {
        h ^= c;
        h *= 1099511628211ull;
    }
    return h;
}

template <typename T>
void put(std::string& out, T v) {
    char bytes[sizeof(T)];
    std::memcpy(bytes, &v, sizeof(T));  // little-endian hosts only (x86-64, arm64)
    out.append(bytes, sizeof(T));
}

struct reader {
    std::string_view in;
    bool ok = true;
    template <typename T>
    T get() {
        T v{};
        if (in.size() < sizeof(T)) {
            ok = false;
            return v;
        }
        std::memcpy(&v, in.data(), sizeof(T));
        in.remove_prefix(sizeof(T));
        return v;
    }
    std::string_view bytes(size_t n) {
        if (in.size() < n) {
            ok = false;
            return {};
        }
        auto v = in.substr(0, n);
        in.remove_prefix(n);
        return v;
    }
};

}  // namespace

uint32_t shard_of(std::string_view series_key, uint32_t shards) {
    if (shards <= 1) return 0;
    auto info = storage::parse_key(series_key);
    if (info) {
        for (const auto& [k, v] : info->tags)
            if (k == "device") return static_cast<uint32_t>(fnv1a(v) % shards);
    }
    return static_cast<uint32_t>(fnv1a(series_key) % shards);
}

void encode_shard(const storage::write_batch& batch, std::span<const uint32_t> shard_of_series,
                  uint32_t shard, std::string& out) {
    out.clear();
    const auto& series = batch.series_entries();
    // Batch-local series index -> index in this payload's series table (+1; 0 = not in it).
    std::vector<uint32_t> local(series.size(), 0);
    uint32_t count = 0;
    for (size_t i = 0; i < series.size(); ++i)
        if (shard_of_series[i] == shard) local[i] = ++count;
    if (count == 0) return;
    out.append(magic, sizeof magic);
    put<uint32_t>(out, count);
    for (size_t i = 0; i < series.size(); ++i) {
        if (!local[i]) continue;
        put<uint8_t>(out, static_cast<uint8_t>(series[i].type));
        put<uint32_t>(out, static_cast<uint32_t>(series[i].key.size()));
        out.append(series[i].key);
    }
    size_t count_at = out.size();
    put<uint32_t>(out, 0);
    uint32_t points = 0;
    for (const auto& p : batch.points()) {
        if (!local[p.series]) continue;
        put<uint32_t>(out, local[p.series] - 1);
        put<int64_t>(out, p.ts);
        if (series[p.series].type == storage::value_type::string) {
            const auto& text = batch.strings()[p.raw];
            put<uint32_t>(out, static_cast<uint32_t>(text.size()));
            out.append(text);
        } else {
            put<uint64_t>(out, p.raw);
        }
        ++points;
    }
    std::memcpy(out.data() + count_at, &points, sizeof points);
}

status decode(std::string_view payload, storage::write_batch& out) {
    out.clear();
    auto st = decode_append(payload, out);
    if (!st) out.clear();
    return st;
}

status decode_append(std::string_view payload, storage::write_batch& out) {
    auto corrupt = [&](const std::string& why) {
        return make_error("corrupt", "cluster log message: " + why);
    };
    reader r{payload};
    if (r.bytes(sizeof magic) != std::string_view(magic, sizeof magic))
        return corrupt("not a CLX1 payload");
    uint32_t series_count = r.get<uint32_t>();
    std::vector<std::pair<uint32_t, storage::value_type>> table;
    for (uint32_t i = 0; i < series_count && r.ok; ++i) {
        auto type = static_cast<storage::value_type>(r.get<uint8_t>());
        if (type < storage::value_type::float64 || type > storage::value_type::string)
            return corrupt("unknown value type " + std::to_string(static_cast<int>(type)));
        auto key = r.bytes(r.get<uint32_t>());
        if (!r.ok) break;
        auto idx = out.series(key, type);
        if (!idx) return idx.error();  // another type than an earlier message gave the key
        table.emplace_back(*idx, type);
    }
    uint32_t point_count = r.get<uint32_t>();
    for (uint32_t i = 0; i < point_count && r.ok; ++i) {
        uint32_t s = r.get<uint32_t>();
        int64_t ts = r.get<int64_t>();
        if (!r.ok) break;
        if (s >= table.size()) return corrupt("point names series " + std::to_string(s));
        if (table[s].second == storage::value_type::string) {
            auto text = r.bytes(r.get<uint32_t>());
            if (r.ok) out.add_string(table[s].first, ts, text);
        } else {
            // The raw bits as stored (a double's bits, an integer, a boolean's 0/1).
            out.add_int(table[s].first, ts, static_cast<int64_t>(r.get<uint64_t>()));
        }
    }
    if (!r.ok) return corrupt("truncated");
    if (!r.in.empty()) return corrupt("trailing bytes");
    return {};
}

}  // namespace clisonix::cluster
