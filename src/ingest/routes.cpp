// The HTTP write endpoints: line protocol (Clisonix, InfluxDB 1.x and 2.x spellings) and
// JSON telemetry per device. Answers as InfluxDB clients expect: 204 when stored.
#include <zlib.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <memory>

#include "common/time.h"
#include "http/http.h"
#include "ingest/ingest.h"
#include "observe/observe.h"

namespace clisonix::ingest {

status gunzip(std::string_view body, uint64_t max_bytes, std::string& out) {
    out.clear();
    z_stream zs{};
    if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK)
        return make_error("internal", "cannot start the gzip decoder");
    std::unique_ptr<z_stream, decltype(&inflateEnd)> guard(&zs, &inflateEnd);
    zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(body.data()));
    zs.avail_in = static_cast<uInt>(std::min<size_t>(body.size(), UINT32_MAX));
    auto too_large = [&] {
        return make_error("too_large", "the inflated body is larger than the limit of " +
                                           std::to_string(max_bytes) + " bytes (http.body_limit)");
    };
    for (;;) {
        // One byte beyond the limit is room enough to see that the limit is passed.
        size_t old = out.size();
        uint64_t room = max_bytes + 1 - old;
        size_t grow =
            static_cast<size_t>(std::min<uint64_t>(std::max<size_t>(old, 64 * 1024), room));
        out.resize(old + grow);
        zs.next_out = reinterpret_cast<Bytef*>(out.data() + old);
        zs.avail_out = static_cast<uInt>(grow);
        int rc = inflate(&zs, Z_NO_FLUSH);
        out.resize(old + grow - zs.avail_out);
        if (out.size() > max_bytes) return too_large();
        if (rc == Z_STREAM_END) {
            if (zs.avail_in == 0) return {};
            // Concatenated gzip members (as `cat a.gz b.gz` makes) form one body.
            if (inflateReset(&zs) != Z_OK) return make_error("internal", "gzip decoder reset");
            continue;
        }
        if (rc == Z_BUF_ERROR && zs.avail_in == 0)
            return make_error("invalid_argument", "the gzip body is truncated");
        if (rc != Z_OK && rc != Z_BUF_ERROR)
            return make_error("invalid_argument", std::string("the gzip body is corrupt: ") +
                                                      (zs.msg ? zs.msg : "not gzip data"));
    }
}

namespace {

// Each worker thread keeps its parsers, batch and inflate buffer across requests, so the
// steady state allocates nothing per request beyond what the HTTP layer does.
struct worker_state {
    line_parser lines;
    json_parser telemetry;
    remote_write_decoder prometheus;
    storage::write_batch batch;
    std::string inflated;

    // A rare huge request must not pin its memory to the thread for good.
    void trim() {
        if (batch.point_count() > 200'000) batch = storage::write_batch{};
        if (inflated.capacity() > (16u << 20)) std::string().swap(inflated);
    }
};

worker_state& local_state() {
    thread_local worker_state state;
    return state;
}

bool iequals(std::string_view a, std::string_view b) {
    return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](char x, char y) {
        return std::tolower(static_cast<unsigned char>(x)) ==
               std::tolower(static_cast<unsigned char>(y));
    });
}

http::response answer(const error& e) {
    // A series quota (too_many_requests) lifts only when series go (retention) or the limit is
    // raised: clients that honour Retry-After come back rarely. A full disk takes someone to
    // free space (the engine notices within a second). Overload passes in a second.
    using namespace std::chrono_literals;
    auto retry = e.code == errc::too_many_requests ? 3600s
                 : e.code == errc::storage_full    ? 10s
                                                   : 1s;
    return http::response::from_error(e, retry);
}

// The body as sent, or inflated when the client gzipped it.
result<std::string_view> decoded_body(const http::request& req, const limits& bounds,
                                      std::string& inflated) {
    auto encoding = req.header("content-encoding");
    if (encoding.empty() || iequals(encoding, "identity")) return std::string_view(req.body);
    if (iequals(encoding, "gzip") || iequals(encoding, "x-gzip")) {
        if (auto st = gunzip(req.body, bounds.max_body_bytes, inflated); !st) return st.error();
        return std::string_view(inflated);
    }
    return make_error("unsupported_media_type",
                      "Content-Encoding \"" + std::string(encoding) +
                          "\" is not supported: send gzip or identity",
                      "content-encoding");
}

enum class dialect { clisonix, influx1, influx2 };

http::response write_lines(http::request& req, pipeline& sink, const limits& bounds, dialect d) {
    const char* required = d == dialect::influx1 ? "db" : d == dialect::influx2 ? "bucket" : "";
    if (*required && req.query.find(required) == req.query.end())
        return answer(make_error(
            "invalid_argument", std::string("the query parameter \"") + required + "\" is required",
            required));
    line_options opts;
    opts.bounds = bounds;
    opts.now_ns = now_ns();
    if (auto text = req.query_param("precision"); !text.empty()) {
        auto unit = parse_precision(text, d == dialect::influx1);
        if (!unit)
            return answer(make_error(
                "invalid_argument",
                "precision \"" + std::string(text) + "\" is not one of " +
                    (d == dialect::influx1 ? "n, ns, u, us, ms, s, m, h" : "ns, us, ms, s"),
                "precision"));
        opts.unit = *unit;
    }
    auto& state = local_state();
    auto body = decoded_body(req, bounds, state.inflated);
    if (!body) return answer(body.error());
    status st = state.lines.parse(*body, opts, state.batch);
    if (st) st = sink.submit(state.batch);
    state.trim();
    return st ? http::response::no_content() : answer(st.error());
}

http::response write_telemetry(http::request& req, pipeline& sink, const limits& bounds,
                               std::string_view device) {
    json_options opts;
    opts.bounds = bounds;
    opts.now_ns = now_ns();
    auto& state = local_state();
    auto body = decoded_body(req, bounds, state.inflated);
    if (!body) return answer(body.error());
    status st = state.telemetry.parse(*body, device, opts, state.batch);
    if (st) st = sink.submit(state.batch);
    state.trim();
    return st ? http::response::no_content() : answer(st.error());
}

// Prometheus remote write. Statuses follow what the specification tells senders: 5xx is
// retried, 4xx dropped. So every refusal that a retry cannot change is a 4xx, and only
// overload and a full disk (which pass) are 503 with Retry-After.
struct remote_write_metrics {
    metrics::counter samples = metrics::global().get_counter(
        "clisonix_remote_write_samples_total",
        "Samples stored from Prometheus remote write (durable before the 204)");
    metrics::counter stale_markers = dropped("stale_marker");
    metrics::counter not_finite = dropped("not_finite");

    static metrics::counter dropped(const char* reason) {
        return metrics::global().get_counter(
            "clisonix_remote_write_samples_dropped_total",
            "Remote-write samples not stored: staleness markers and NaN/Inf values", {"reason"},
            {reason});
    }
};

http::response write_remote(http::request& req, pipeline& sink, const limits& bounds) {
    static remote_write_metrics counters;
    auto encoding = req.header("content-encoding");
    if (!encoding.empty() && !iequals(encoding, "snappy"))
        return answer(make_error("unsupported_media_type",
                                 "Content-Encoding \"" + std::string(encoding) +
                                     "\" is not supported: remote write sends snappy",
                                 "content-encoding"));
    auto& state = local_state();
    auto counts = state.prometheus.decode(req.body, bounds, state.batch);
    status st = counts ? status{} : status{counts.error()};
    if (st && !state.batch.empty()) st = sink.submit(state.batch);
    state.trim();
    if (!st) {
        // The series quota lifts only when an operator raises it: a 429 would make the sender
        // retry the same batch for as long as it may, holding everything behind it.
        if (st.error().code == errc::too_many_requests)
            return http::response::from_error(400, st.error());
        return answer(st.error());
    }
    counters.samples.inc(static_cast<double>(counts->samples));
    if (counts->stale_markers)
        counters.stale_markers.inc(static_cast<double>(counts->stale_markers));
    if (counts->not_finite) counters.not_finite.inc(static_cast<double>(counts->not_finite));
    return http::response::no_content();
}

}  // namespace

void add_routes(http::router& routes, pipeline& sink, const limits& bounds) {
    using http::method;
    const auto* w = http::permission::write;
    routes.add({method::post, "/api/v1/write",
                "Write points in InfluxDB line protocol (?precision=ns|us|ms|s)", w,
                [&sink, bounds](http::request& req) {
                    return write_lines(req, sink, bounds, dialect::clisonix);
                }});
    routes.add({method::post, "/write",
                "InfluxDB 1.x write (?db=..&precision=n|u|ms|s|m|h), line protocol", w,
                [&sink, bounds](http::request& req) {
                    return write_lines(req, sink, bounds, dialect::influx1);
                }});
    routes.add({method::post, "/api/v2/write",
                "InfluxDB 2.x write (?bucket=..&org=..&precision=ns|us|ms|s), line protocol", w,
                [&sink, bounds](http::request& req) {
                    return write_lines(req, sink, bounds, dialect::influx2);
                }});
    // One line each: the path Prometheus users expect under /prometheus, and InfluxDB 1.8's.
    for (const char* path : {"/prometheus/api/v1/write", "/api/v1/prom/write"})
        routes.add(
            {method::post, path,
             "Prometheus remote write 1.0 (snappy-compressed protobuf WriteRequest)", w,
             [&sink, bounds](http::request& req) { return write_remote(req, sink, bounds); }});
    // No request schema: the body may be gzip, which a schema check before decoding would
    // refuse; the parser names the JSON path of every mistake itself.
    routes.add({method::post, "/api/v1/devices/{device}/telemetry",
                "Write one device's telemetry as JSON: {\"metric\":value}, "
                "{\"ts\":ms,\"values\":{...}} or an array of these",
                w, [&sink, bounds](http::request& req) {
                    return write_telemetry(req, sink, bounds, req.path_param("device"));
                }});
}

void add_device_routes(http::router& routes, pipeline& sink, const limits& bounds,
                       device_of_request device_of) {
    using http::method;
    auto handle = [&sink, bounds, device_of](http::request& req) {
        std::string device = device_of(req);
        if (device.empty())
            return http::response::error(403, "forbidden",
                                         "This route takes a device token: the device it "
                                         "names is the one written");
        return write_telemetry(req, sink, bounds, device);
    };
    routes.add({method::post, "/api/v1/telemetry",
                "A device writes its own telemetry (JSON) with Authorization: Bearer <device "
                "token>",
                http::permission::device, handle});
    routes.add({method::post, "/api/v1/{device_token}/telemetry",
                "A device writes its own telemetry (JSON), its token in the path",
                http::permission::device, handle});
}

}  // namespace clisonix::ingest
