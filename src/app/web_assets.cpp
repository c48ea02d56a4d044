// Serving the dashboard build: see web_assets.h.
#include "app/web_assets.h"

#include <array>
#include <cctype>
#include <fstream>
#include <sstream>
#include <system_error>

namespace clisonix::app {

namespace {

constexpr std::string_view immutable = "public, max-age=31536000, immutable";

std::string_view content_type_of(std::string_view name) {
    static constexpr std::array<std::pair<std::string_view, std::string_view>, 14> types{{
        {".html", "text/html; charset=utf-8"},
        {".js", "text/javascript; charset=utf-8"},
        {".mjs", "text/javascript; charset=utf-8"},
        {".css", "text/css; charset=utf-8"},
        {".json", "application/json"},
        {".map", "application/json"},
        {".svg", "image/svg+xml"},
        {".png", "image/png"},
        {".ico", "image/x-icon"},
        {".webp", "image/webp"},
        {".woff2", "font/woff2"},
        {".woff", "font/woff"},
        {".txt", "text/plain; charset=utf-8"},
        {".webmanifest", "application/manifest+json"},
    }};
    for (const auto& [ext, type] : types)
        if (name.ends_with(ext)) return type;
    return "application/octet-stream";
}

// One path segment of a build file: letters, digits, '.', '-', '_', not starting with '.'.
// Anything else ("..", "%2e", "/", "\\") is not a file of ours, so it cannot escape `dir`.
bool safe_name(std::string_view name) {
    if (name.empty() || name.size() > 200 || name.front() == '.') return false;
    for (char c : name) {
        auto u = static_cast<unsigned char>(c);
        if (!std::isalnum(u) && c != '.' && c != '-' && c != '_') return false;
    }
    return true;
}

bool read_file(const std::filesystem::path& path, std::string& out) {
    std::error_code ec;
    if (!std::filesystem::is_regular_file(path, ec)) return false;
    std::ifstream in(path, std::ios::binary);
    if (!in) return false;
    std::ostringstream buf;
    buf << in.rdbuf();
    out = std::move(buf).str();
    return true;
}

// Paths the server itself owns besides /api/: never answered with the dashboard.
bool server_path(std::string_view path) {
    return path.starts_with("/api/") || path == "/api" || path == "/metrics" ||
           path == "/healthz" || path == "/readyz" || path == "/write";
}

bool sane_host(std::string_view host) {
    if (host.empty() || host.size() > 255) return false;
    for (char c : host) {
        auto u = static_cast<unsigned char>(c);
        if (!std::isalnum(u) && c != '.' && c != '-' && c != ':' && c != '[' && c != ']')
            return false;
    }
    return true;
}

http::response file_response(std::string body, std::string_view name, std::string_view cache) {
    auto res = http::response::text(200, std::move(body), std::string(content_type_of(name)));
    res.headers.emplace_back("Cache-Control", std::string(cache));
    return res;
}

}  // namespace

std::string dashboard_csp(bool tls, std::string_view host) {
    std::string connect = "connect-src 'self'";
    if (sane_host(host)) connect += " ws://" + std::string(host) + " wss://" + std::string(host);
    std::string csp =
        "default-src 'self'; base-uri 'self'; frame-ancestors 'none'; object-src 'none'; "
        "script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; " +
        connect + "; worker-src 'self'; manifest-src 'self'; form-action 'self'";
    if (tls) csp += "; upgrade-insecure-requests";
    return csp;
}

std::filesystem::path web_directory(const config::config& cfg) {
    if (const auto& dir = cfg.get_string("web.dir"); !dir.empty()) return dir;
    std::vector<std::filesystem::path> candidates;
    std::error_code ec;
    auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
    if (!ec) {
        candidates.push_back(exe.parent_path() / "web");
        candidates.push_back(exe.parent_path().parent_path() / "share" / "clisonix" / "web");
        candidates.push_back(exe.parent_path().parent_path() / "web" / "dist");
    }
#ifdef CLISONIX_WEB_SOURCE_DIR
    candidates.emplace_back(CLISONIX_WEB_SOURCE_DIR);
#endif
    for (const auto& c : candidates)
        if (std::filesystem::is_regular_file(c / "index.html", ec)) return c;
    return candidates.empty() ? std::filesystem::path("web/dist") : candidates.front();
}

http::middleware serve_web(std::filesystem::path dir) {
    return [dir = std::move(dir)](http::request& req, const http::next& call_next) {
        if (req.matched || (req.verb != http::method::get && req.verb != http::method::head) ||
            server_path(req.path))
            return call_next(req);
        std::string_view path = req.path;
        std::string body;
        if (path.starts_with("/assets/")) {
            auto name = path.substr(8);
            if (!safe_name(name) || !read_file(dir / "assets" / name, body)) return call_next(req);
            return file_response(std::move(body), name, immutable);
        }
        auto name = path.substr(1);
        bool file_like =
            name.find('/') == std::string_view::npos && name.find('.') != std::string_view::npos;
        if (file_like && name != "index.html") {
            if (!safe_name(name) || !read_file(dir / name, body)) return call_next(req);
            return file_response(std::move(body), name, "no-cache");
        }
        // Dot segments ("/..", "/.env") are never a client route.
        if (path.find("/.") != std::string_view::npos) return call_next(req);
        // Client-side routes get the page; its script reads location.pathname.
        if (!read_file(dir / "index.html", body))
            return http::response::error(
                404, "not_found",
                "The dashboard is not built in " + dir.string() +
                    ": run scripts/setup (npm ci && npm run build in web/) or set web.dir");
        auto res = file_response(std::move(body), "index.html", "no-cache");
        res.headers.emplace_back("Content-Security-Policy",
                                 dashboard_csp(req.secure, req.header("host")));
        return res;
    };
}

}  // namespace clisonix::app
