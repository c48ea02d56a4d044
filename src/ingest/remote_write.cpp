// Prometheus remote write 1.0: a snappy block-compressed protobuf WriteRequest turned into a
// write batch. The series of a Prometheus sample is its labels: `__name__` is the measurement,
// the other labels are tags, the field is `value` (docs/prometheus.md has the rule both ways).
//
// The message object, the uncompressed body and the key scratch are kept across requests;
// the batch is the caller's (reused the same way).
#include <snappy.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>

#include "ingest/ingest.h"
#include "ingest/keys.h"
#include "ingest/remote_write.pb.h"

namespace clisonix::ingest {

namespace {

using detail::element;
using detail::quoted;

// The bit pattern Prometheus writes as a sample's value to end a series (staleness marker):
// a NaN that is not the NaN arithmetic produces.
constexpr uint64_t stale_marker_bits = 0x7ff0000000000002ULL;

// Prometheus' label name rule: [a-zA-Z_][a-zA-Z0-9_]*.
bool valid_label_name(std::string_view name) {
    if (name.empty()) return false;
    for (size_t i = 0; i < name.size(); ++i) {
        char c = name[i];
        bool letter = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
        bool digit = c >= '0' && c <= '9';
        if (!letter && !(digit && i > 0)) return false;
    }
    return true;
}

std::string series_path(int series) {
    return "timeseries[" + std::to_string(series) + "]";
}

error at(std::string path, std::string_view what, std::string code = "invalid_argument") {
    return make_error(std::move(code), path + ": " + std::string(what), path);
}

}  // namespace

struct remote_write_decoder::state {
    prometheus::pb::WriteRequest request;
    std::string uncompressed;
    std::string key;
    std::vector<std::pair<std::string_view, std::string_view>> tags;
};

remote_write_decoder::remote_write_decoder() : _state(std::make_unique<state>()) {}
remote_write_decoder::~remote_write_decoder() = default;
remote_write_decoder::remote_write_decoder(remote_write_decoder&&) noexcept = default;
remote_write_decoder& remote_write_decoder::operator=(remote_write_decoder&&) noexcept = default;

result<remote_write_counts> remote_write_decoder::decode(std::string_view body,
                                                         const limits& bounds,
                                                         storage::write_batch& out) {
    out.clear();
    auto& s = *_state;
    auto failed = [&out](error e) -> result<remote_write_counts> {
        out.clear();
        return e;
    };

    // Snappy's length prefix is a varint that most bytes start, so a body of another format
    // often passes the first check: both failures are the same error.
    auto not_snappy = [] {
        return make_error("invalid_argument",
                          "the body is not snappy block-compressed data (corrupt, truncated or "
                          "another format; remote write sends a protobuf WriteRequest with "
                          "Content-Encoding: snappy)",
                          "body");
    };
    size_t length = 0;
    if (!snappy::GetUncompressedLength(body.data(), body.size(), &length))
        return failed(not_snappy());
    if (length > bounds.max_body_bytes)
        return failed(make_error("too_large",
                                 "the uncompressed body (" + std::to_string(length) +
                                     " bytes) is larger than the limit of " +
                                     std::to_string(bounds.max_body_bytes) +
                                     " bytes (http.body_limit)",
                                 "body"));
    s.uncompressed.resize(length);
    if (!snappy::RawUncompress(body.data(), body.size(), s.uncompressed.data()))
        return failed(not_snappy());
    s.request.Clear();
    if (!s.request.ParseFromString(s.uncompressed))
        return failed(make_error("invalid_argument",
                                 "the uncompressed body is not a protobuf prometheus.WriteRequest",
                                 "body"));

    remote_write_counts counts;
    const int series_count = s.request.timeseries_size();
    for (int i = 0; i < series_count; ++i) {
        const auto& series = s.request.timeseries(i);
        std::string_view metric;
        bool has_name = false;
        s.tags.clear();
        for (int j = 0; j < series.labels_size(); ++j) {
            const auto& label = series.labels(j);
            std::string_view name = label.name(), value = label.value();
            auto label_path = [&](std::string_view part) {
                return series_path(i) + ".labels[" + std::to_string(j) + "]." + std::string(part);
            };
            if (name == "__name__") {
                if (has_name) return failed(at(label_path("name"), "a second __name__ label"));
                if (auto problem = detail::name_problem(value))
                    return failed(at(label_path("value"), "the metric name " + *problem));
                metric = value;
                has_name = true;
                continue;
            }
            if (!valid_label_name(name))
                return failed(at(label_path("name"),
                                 "the label name " + quoted(name) +
                                     " is not a Prometheus label name ([a-zA-Z_][a-zA-Z0-9_]*)"));
            if (name.starts_with("__"))
                return failed(
                    at(label_path("name"), "the label name " + quoted(name) +
                                               " starts with \"__\", which Prometheus reserves for "
                                               "internal labels that are not stored"));
            if (auto problem = detail::name_problem(value))
                return failed(
                    at(label_path("value"), "the value of label " + quoted(name) + " " + *problem));
            // Prometheus: a label with an empty value is the same as no label.
            if (value.empty()) continue;
            s.tags.emplace_back(name, value);
        }
        if (!has_name || metric.empty())
            return failed(at(series_path(i) + ".labels",
                             "the series has no __name__ label (its metric name)"));
        if (series.samples_size() == 0) continue;

        std::sort(s.tags.begin(), s.tags.end());
        for (size_t t = 1; t < s.tags.size(); ++t)
            if (s.tags[t].first == s.tags[t - 1].first)
                return failed(at(series_path(i) + ".labels",
                                 "the label " + quoted(s.tags[t].first) + " occurs twice"));
        s.key.clear();
        detail::append_escaped(s.key, metric, element::measurement);
        for (const auto& [name, value] : s.tags) {
            s.key.push_back(',');
            detail::append_escaped(s.key, name, element::tag);
            s.key.push_back('=');
            detail::append_escaped(s.key, value, element::tag);
        }
        s.key.append(" value");

        uint32_t index = 0;
        bool added = false;
        for (int j = 0; j < series.samples_size(); ++j) {
            const auto& sample = series.samples(j);
            double v = sample.value();
            if (std::bit_cast<uint64_t>(v) == stale_marker_bits) {
                ++counts.stale_markers;
                continue;
            }
            if (!std::isfinite(v)) {
                ++counts.not_finite;
                continue;
            }
            constexpr int64_t ns_per_ms = 1'000'000;
            int64_t ts = 0;
            if (__builtin_mul_overflow(sample.timestamp(), ns_per_ms, &ts))
                return failed(at(series_path(i) + ".samples[" + std::to_string(j) + "].timestamp",
                                 "the timestamp " + std::to_string(sample.timestamp()) +
                                     " ms is outside the range Clisonix stores (years 1678 to "
                                     "2262)"));
            if (out.point_count() + 1 > bounds.max_points_per_request)
                return failed(at(series_path(i),
                                 "the request has more samples than the limit of " +
                                     std::to_string(bounds.max_points_per_request) +
                                     " (ingest.max_points_per_request)",
                                 "too_large"));
            if (!added) {
                auto id = out.series(s.key, storage::value_type::float64);
                if (!id) return failed(at(series_path(i), id.error().message, id.error().code));
                if (out.series_count() > bounds.max_series_per_request)
                    return failed(at(series_path(i),
                                     "the request has more series than the limit of " +
                                         std::to_string(bounds.max_series_per_request) +
                                         " (ingest.max_series_per_request)",
                                     "too_large"));
                index = *id;
                added = true;
            }
            out.add(index, ts, v);
            ++counts.samples;
        }
    }
    // A huge request must not pin its memory to the thread for good.
    if (s.uncompressed.capacity() > (16u << 20)) std::string().swap(s.uncompressed);
    return counts;
}

}  // namespace clisonix::ingest
