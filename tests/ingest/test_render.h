// Renders a write_batch as one line per point, "key|type|ts|value", for exact comparisons.
#pragma once

#include <bit>
#include <charconv>
#include <string>
#include <vector>

#include "storage/storage.h"

namespace clisonix::ingest::testing {

inline std::string format_double(double v) {
    char buf[64];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
    return std::string(buf, end);
}

inline std::vector<std::string> render(const storage::write_batch& batch) {
    std::vector<std::string> out;
    for (const auto& p : batch.points()) {
        const auto& s = batch.series_entries()[p.series];
        std::string value;
        switch (s.type) {
            case storage::value_type::float64:
                value = format_double(std::bit_cast<double>(p.raw));
                break;
            case storage::value_type::int64:
                value = std::to_string(static_cast<int64_t>(p.raw));
                break;
            case storage::value_type::boolean:
                value = p.raw ? "true" : "false";
                break;
            case storage::value_type::string:
                value = "\"" + batch.strings()[p.raw] + "\"";
                break;
        }
        out.push_back(std::string(s.key) + "|" + std::string(storage::type_name(s.type)) + "|" +
                      std::to_string(p.ts) + "|" + value);
    }
    return out;
}

}  // namespace clisonix::ingest::testing
