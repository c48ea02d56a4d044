// The shard of a series and the payload of one shard's message (docs/format/cluster-log.md).
#include <zstd.h>

#include <cstring>
#include <memory>

#include "cluster/cluster.h"

namespace clisonix::cluster {
namespace {

constexpr char magic[4] = {'C', 'L', 'X', '1'};
// A CLX1 payload compressed with zstd: the magic, the CLX1 payload's length, the frame.
constexpr char compressed_magic[4] = {'C', 'L', 'Z', '1'};
// Smaller payloads go as they are: the frame's own bytes would eat most of the gain.
constexpr size_t compress_from = 512;
// What a reader inflates at most: a write batch is bounded far below it (an 8 MiB request
// body or a 200,000-point MQTT flush makes a few MiB of CLX1).
constexpr uint32_t max_inflated = 64u << 20;
// Level 1: the log's bytes drop by more than half at a cost the publisher hardly notices.
constexpr int zstd_level = 1;

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
    if (out.size() < compress_from) return;
    thread_local std::unique_ptr<ZSTD_CCtx, size_t (*)(ZSTD_CCtx*)> cctx{
        [] {
            ZSTD_CCtx* c = ZSTD_createCCtx();
            ZSTD_CCtx_setParameter(c, ZSTD_c_compressionLevel, zstd_level);
            // The frame's checksum: a damaged message is refused, never applied as other values.
            ZSTD_CCtx_setParameter(c, ZSTD_c_checksumFlag, 1);
            return c;
        }(),
        &ZSTD_freeCCtx};
    thread_local std::string packed;
    packed.resize(8 + ZSTD_compressBound(out.size()));
    std::memcpy(packed.data(), compressed_magic, sizeof compressed_magic);
    const auto raw = static_cast<uint32_t>(out.size());
    std::memcpy(packed.data() + 4, &raw, sizeof raw);
    size_t n =
        ZSTD_compress2(cctx.get(), packed.data() + 8, packed.size() - 8, out.data(), out.size());
    if (ZSTD_isError(n) || n + 8 >= out.size()) return;  // sent as it is
    packed.resize(n + 8);
    out.swap(packed);
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
    if (payload.starts_with(std::string_view(compressed_magic, sizeof compressed_magic))) {
        reader z{payload.substr(sizeof compressed_magic)};
        const uint32_t raw = z.get<uint32_t>();
        // The frame must say the same size before anything is allocated for it.
        if (!z.ok || raw > max_inflated ||
            ZSTD_getFrameContentSize(z.in.data(), z.in.size()) != raw)
            return corrupt("bad CLZ1 length");
        thread_local std::unique_ptr<ZSTD_DCtx, size_t (*)(ZSTD_DCtx*)> dctx{ZSTD_createDCtx(),
                                                                             &ZSTD_freeDCtx};
        thread_local std::string inflated;
        inflated.resize(raw);
        size_t n = ZSTD_decompressDCtx(dctx.get(), inflated.data(), raw, z.in.data(), z.in.size());
        if (ZSTD_isError(n) || n != raw) return corrupt("CLZ1 frame does not inflate");
        payload = inflated;
    }
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
