// Security headers (Helmet's set) and CORS from an allow-list.
#include <algorithm>
#include <cctype>

#include "gateway/gateway.h"

namespace clisonix::gateway {

std::vector<std::pair<std::string, std::string>> security_headers(bool tls) {
    // The dashboard is a Vite build served from this origin: scripts, styles, fonts and
    // workers come from 'self', images also as data: URLs (inlined small assets), and the
    // API and live WebSocket are same-origin ('self' covers ws:/wss: to this host). No
    // 'unsafe-inline' anywhere, so an injected <script> or style attribute does nothing.
    std::string csp =
        "default-src 'self'; base-uri 'self'; frame-ancestors 'none'; object-src 'none'; "
        "script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
        "connect-src 'self'; worker-src 'self'; manifest-src 'self'; form-action 'self'";
    // Upgrading http: subresources only makes sense when this origin speaks TLS.
    if (tls) csp += "; upgrade-insecure-requests";
    std::vector<std::pair<std::string, std::string>> headers = {
        {"Content-Security-Policy", csp},
        {"X-Content-Type-Options", "nosniff"},
        {"X-Frame-Options", "DENY"},
        {"Referrer-Policy", "no-referrer"},
        {"Cross-Origin-Opener-Policy", "same-origin"},
        {"Cross-Origin-Resource-Policy", "same-origin"},
        {"X-DNS-Prefetch-Control", "off"},
        {"X-Permitted-Cross-Domain-Policies", "none"},
    };
    // Over plain HTTP the header is ignored by browsers and would only mislead.
    if (tls)
        headers.emplace_back("Strict-Transport-Security", "max-age=31536000; includeSubDomains");
    return headers;
}

namespace {

bool has_header(const http::response& res, std::string_view name) {
    return std::any_of(res.headers.begin(), res.headers.end(), [&](const auto& h) {
        return h.first.size() == name.size() &&
               std::equal(h.first.begin(), h.first.end(), name.begin(), [](char a, char b) {
                   return std::tolower(static_cast<unsigned char>(a)) ==
                          std::tolower(static_cast<unsigned char>(b));
               });
    });
}

}  // namespace

http::middleware secure_headers(bool tls) {
    return [headers = security_headers(tls)](http::request& req, const http::next& call_next) {
        auto res = call_next(req);
        for (const auto& [name, value] : headers)
            if (!has_header(res, name)) res.headers.emplace_back(name, value);
        return res;
    };
}

http::middleware cors(std::vector<std::string> allowed_origins) {
    for (auto& origin : allowed_origins)
        for (auto& c : origin)
            c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return [allowed = std::move(allowed_origins)](http::request& req, const http::next& call_next) {
        if (allowed.empty()) return call_next(req);
        std::string origin(req.header("origin"));
        for (auto& c : origin)
            c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        bool preflight = req.verb == http::method::options && !origin.empty() &&
                         !req.header("access-control-request-method").empty();
        bool ok =
            !origin.empty() && std::find(allowed.begin(), allowed.end(), origin) != allowed.end();
        if (preflight && !ok)
            return http::response::error(403, "forbidden",
                                         "Origin " + std::string(req.header("origin")) +
                                             " may not call this API from a browser",
                                         "Origin");
        if (preflight) {
            auto res = http::response::no_content();
            res.headers = {
                {"Access-Control-Allow-Origin", std::string(req.header("origin"))},
                {"Access-Control-Allow-Methods", "GET, HEAD, POST, PUT, PATCH, DELETE"},
                {"Access-Control-Allow-Headers", "Authorization, Content-Type, X-Request-Id"},
                {"Access-Control-Max-Age", "600"},
                {"Vary", "Origin"},
            };
            return res;
        }
        auto res = call_next(req);
        // The answer depends on Origin whenever an allow-list exists: caches must not
        // hand one origin's answer to another.
        res.headers.emplace_back("Vary", "Origin");
        if (ok) {
            res.headers.emplace_back("Access-Control-Allow-Origin",
                                     std::string(req.header("origin")));
            res.headers.emplace_back("Access-Control-Expose-Headers",
                                     "RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset, "
                                     "Retry-After, X-Request-Id");
        }
        return res;
    };
}

}  // namespace clisonix::gateway
