// JSON telemetry of one device: {"temperature":21.5}, {"ts":<ms>,"values":{...}}, or an
// array of these; measurement `telemetry`, tag `device`, one series per metric.
#include <boost/json.hpp>

#include <limits>

#include "ingest/ingest.h"
#include "ingest/keys.h"

namespace clisonix::ingest {

namespace json = boost::json;
using detail::element;
using storage::value_type;

namespace {

constexpr int64_t ns_per_ms = 1'000'000;

error at(const std::string& path, std::string_view what, std::string code = "invalid_argument") {
    std::string message = path.empty() ? std::string(what) : path + ": " + std::string(what);
    return make_error(std::move(code), std::move(message), path);
}

std::string join(const std::string& base, std::string_view key) {
    return base.empty() ? std::string(key) : base + "." + std::string(key);
}

result<int64_t> timestamp_of(const json::value& v, const std::string& path) {
    int64_t ms;
    if (v.is_int64()) {
        ms = v.get_int64();
    } else if (v.is_uint64() &&
               v.get_uint64() <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        ms = static_cast<int64_t>(v.get_uint64());
    } else {
        return at(path, "expected an integer number of milliseconds since 1970-01-01");
    }
    int64_t ns;
    if (__builtin_mul_overflow(ms, ns_per_ms, &ns)) return at(path, "out of range");
    return ns;
}

class walker {
public:
    walker(std::string_view device, const json_options& opts, std::string& key,
           storage::write_batch& out)
        : _opts(opts), _key(key), _out(out) {
        _key.assign("telemetry,device=");
        detail::append_escaped(_key, device, element::tag);
        _key.push_back(' ');
        _prefix = _key.size();
    }

    // One object: either {"ts":..,"values":{..}} or {"metric":value,...,"ts":..}.
    status object(const json::object& o, const std::string& base) {
        int64_t ts = _opts.now_ns;
        if (auto it = o.find("ts"); it != o.end()) {
            auto t = timestamp_of(it->value(), join(base, "ts"));
            if (!t) return t.error();
            ts = *t;
        }
        const json::object* metrics = &o;
        std::string values_base = base;
        if (auto it = o.find("values"); it != o.end()) {
            values_base = join(base, "values");
            metrics = it->value().if_object();
            if (!metrics) return at(values_base, "expected an object of metric values");
            for (const auto& kv : o) {
                if (kv.key() != "ts" && kv.key() != "values")
                    return at(join(base, kv.key()),
                              "unexpected key: next to \"values\" only \"ts\" is allowed");
            }
        }
        size_t added = 0;
        for (const auto& kv : *metrics) {
            if (metrics == &o && kv.key() == "ts") continue;
            if (auto st = metric(kv.key(), kv.value(), values_base, ts); !st) return st;
            ++added;
        }
        if (added == 0)
            return at(values_base.empty() ? base : values_base,
                      "expected at least one metric value");
        return {};
    }

private:
    status metric(std::string_view name, const json::value& v, const std::string& base,
                  int64_t ts) {
        if (name.empty()) return at(base.empty() ? "\"\"" : base, "empty metric name");
        // JSON text is valid UTF-8 (Boost.JSON checks), but "\u0007" escapes a control
        // character into a name: the same name rule as line protocol applies.
        if (auto why = detail::name_problem(name))
            return at(join(base, name), "metric name " + detail::quoted(name) + " " + *why);
        value_type type;
        switch (v.kind()) {
            case json::kind::double_:
            case json::kind::int64:
            case json::kind::uint64:
                type = value_type::float64;
                break;
            case json::kind::bool_:
                type = value_type::boolean;
                break;
            case json::kind::string:
                type = value_type::string;
                break;
            default:
                return at(join(base, name), "expected a number, string or boolean");
        }
        if (_out.point_count() + 1 > _opts.bounds.max_points_per_request)
            return at(join(base, name),
                      "the request has more points than the limit of " +
                          std::to_string(_opts.bounds.max_points_per_request) +
                          " (ingest.max_points_per_request)",
                      "too_large");
        _key.resize(_prefix);
        detail::append_escaped(_key, name, element::field);
        auto series = _out.series(_key, type);
        if (!series) return at(join(base, name), series.error().message, series.error().code);
        if (_out.series_count() > _opts.bounds.max_series_per_request)
            return at(join(base, name),
                      "the request has more series than the limit of " +
                          std::to_string(_opts.bounds.max_series_per_request) +
                          " (ingest.max_series_per_request)",
                      "too_large");
        switch (type) {
            case value_type::float64:
                _out.add(*series, ts, v.to_number<double>());
                break;
            case value_type::boolean:
                _out.add_bool(*series, ts, v.get_bool());
                break;
            case value_type::string:
                _out.add_string(*series, ts, v.get_string());
                break;
            case value_type::int64:
                break;
        }
        return {};
    }

    const json_options& _opts;
    std::string& _key;
    storage::write_batch& _out;
    size_t _prefix = 0;
};

}  // namespace

status json_parser::parse(std::string_view body, std::string_view device, const json_options& opts,
                          storage::write_batch& out) {
    out.clear();
    if (device.empty()) return make_error("invalid_argument", "the device name is empty", "device");
    if (auto why = detail::name_problem(device))
        return make_error("invalid_argument", "device " + detail::quoted(device) + " " + *why,
                          "device");

    // The document lives in a reused arena: a request allocates only when it outgrows it.
    if (_arena.empty()) _arena.resize(64 * 1024);
    json::monotonic_resource arena(_arena.data(), _arena.size());
    json::parser parser;
    parser.reset(json::storage_ptr(&arena));
    boost::system::error_code ec;
    size_t used = parser.write(body.data(), body.size(), ec);
    if (ec)
        return make_error("invalid_argument",
                          "invalid JSON at byte " + std::to_string(used) + ": " + ec.message());
    json::value doc = parser.release();

    walker walk(device, opts, _key, out);
    status st;
    if (const auto* o = doc.if_object()) {
        st = walk.object(*o, "");
    } else if (const auto* a = doc.if_array()) {
        for (size_t i = 0; i < a->size() && st; ++i) {
            std::string path = "[" + std::to_string(i) + "]";
            const auto* element = (*a)[i].if_object();
            st = element ? walk.object(*element, path) : at(path, "expected an object");
        }
    } else {
        st = make_error("invalid_argument", "expected an object or an array of objects");
    }
    if (!st) out.clear();
    return st;
}

}  // namespace clisonix::ingest
