// The access log and the request metrics, as one middleware.
#include <chrono>
#include <cmath>

#include "http/http.h"
#include "observe/observe.h"

namespace clisonix::http {

middleware observe_requests() {
    auto& registry = metrics::global();
    auto in_flight =
        registry.get_gauge("clisonix_http_requests_in_flight", "HTTP requests being handled now");
    return [&registry, in_flight](request& req, const next& call_next) mutable {
        auto started = std::chrono::steady_clock::now();
        in_flight.add(1);
        response res = call_next(req);
        in_flight.add(-1);
        double seconds =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();

        // Labels are the route template, so ids in paths never create new series.
        std::string route = req.matched ? req.matched->path : "unmatched";
        std::string verb(method_name(req.verb));
        registry
            .get_counter("clisonix_http_requests_total", "HTTP requests answered",
                         {"method", "route", "status"}, {verb, route, std::to_string(res.status)})
            .inc();
        registry
            .get_histogram("clisonix_http_request_duration_seconds",
                           "Time from a request's arrival to its answer",
                           metrics::latency_buckets(), {"method", "route"}, {verb, route})
            .observe(seconds);
        log::info("request", {{"method", verb},
                              {"route", route},
                              {"status", res.status},
                              {"duration_ms", std::round(seconds * 1e6) / 1e3},
                              {"bytes", res.body.size()},
                              {"client", req.remote_address}});
        return res;
    };
}

}  // namespace clisonix::http
