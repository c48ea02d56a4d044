// open(): picks the backend from the URL and migrates; the transaction logic both share.
#include "meta/meta.h"

#include <algorithm>
#include <cstdlib>
#include <filesystem>

#include "meta/store_base.h"

namespace clisonix::meta {

int64_t as_int(const value& v) {
    if (const auto* i = std::get_if<int64_t>(&v)) return *i;
    if (const auto* d = std::get_if<double>(&v)) return static_cast<int64_t>(*d);
    if (const auto* s = std::get_if<std::string>(&v)) return std::atoll(s->c_str());
    return 0;
}

double as_double(const value& v) {
    if (const auto* d = std::get_if<double>(&v)) return *d;
    if (const auto* i = std::get_if<int64_t>(&v)) return static_cast<double>(*i);
    if (const auto* s = std::get_if<std::string>(&v)) return std::atof(s->c_str());
    return 0;
}

std::string as_text(const value& v) {
    if (const auto* s = std::get_if<std::string>(&v)) return *s;
    if (const auto* i = std::get_if<int64_t>(&v)) return std::to_string(*i);
    return {};
}

namespace detail {

status store_base::transaction(const std::function<status(store& tx)>& body) {
    std::lock_guard lock(_mutex);
    // A body that calls transaction() again is already inside one: SQL has no nested BEGIN.
    if (_tx_depth > 0) return body(*this);

    if (auto begun = execute_script(begin_sql()); !begun) return begun;
    // COMMIT and ROLLBACK run while _tx_depth > 0, so a dropped PostgreSQL connection is
    // never silently replaced mid-transaction (a COMMIT on a new connection would "succeed").
    ++_tx_depth;
    struct depth_guard {
        int& depth;
        ~depth_guard() { --depth; }
    } guard{_tx_depth};

    status outcome = [&]() -> status {
        try {
            return body(*this);
        } catch (...) {
            (void)execute_script("ROLLBACK");
            throw;
        }
    }();
    if (!outcome) {
        (void)execute_script("ROLLBACK");
        return outcome;
    }
    if (auto committed = execute_script("COMMIT"); !committed) {
        (void)execute_script("ROLLBACK");
        return committed;
    }
    return {};
}

result<int> store_base::schema_version() {
    auto r = query("SELECT COALESCE(MAX(version), 0) FROM schema_migrations");
    if (!r) return r.error();
    return static_cast<int>(std::get<int64_t>(r->data.at(0).at(0)));
}

std::pair<size_t, size_t> url_password(std::string_view url) {
    auto scheme = url.find("://");
    if (scheme == std::string_view::npos) return {0, 0};
    size_t authority = scheme + 3;
    size_t authority_end = std::min(url.find_first_of("/?#", authority), url.size());
    // The last '@' ends the user info: a password may itself contain '@'.
    size_t at = url.rfind('@', authority_end);
    if (at == std::string_view::npos || at < authority) return {0, 0};
    size_t colon = url.find(':', authority);
    if (colon >= at) return {0, 0};
    return {colon + 1, at - colon - 1};
}

}  // namespace detail

namespace {

// Replaces the value after each "password=" that starts a parameter (URI query or libpq
// keyword/value string) up to the next separator.
void redact_password_params(std::string& s) {
    constexpr std::string_view key = "password=";
    for (size_t pos = s.find(key); pos != std::string::npos; pos = s.find(key, pos + 1)) {
        if (pos > 0 && s[pos - 1] != '?' && s[pos - 1] != '&' && s[pos - 1] != ' ') continue;
        size_t begin = pos + key.size();
        size_t end = begin;
        if (end < s.size() && s[end] == '\'') {
            end = s.find('\'', end + 1);
            end = end == std::string::npos ? s.size() : end + 1;
        } else {
            end = s.find_first_of("& #", begin);
            if (end == std::string::npos) end = s.size();
        }
        s.replace(begin, end - begin, "****");
    }
}

result<std::unique_ptr<store>> migrated(result<std::unique_ptr<detail::store_base>> opened,
                                        std::span<const migration> list) {
    if (!opened) return opened.error();
    if (auto ok = detail::apply_migrations(**opened, list); !ok) return ok.error();
    return std::unique_ptr<store>(std::move(*opened));
}

}  // namespace

std::string redact_url(std::string_view url) {
    std::string s(url);
    if (auto [begin, size] = detail::url_password(s); size > 0) s.replace(begin, size, "****");
    redact_password_params(s);
    return s;
}

result<std::unique_ptr<store>> open_with(std::string_view url, std::string_view data_dir,
                                         std::span<const migration> list) {
    if (url.empty()) {
        return migrated(detail::open_sqlite((std::filesystem::path(data_dir) / "meta.db").string()),
                        list);
    }
    if (url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        return migrated(detail::open_postgres(url), list);
    }
    std::string_view path;
    if (url.starts_with("sqlite:///")) {
        path = url.substr(std::string_view("sqlite://").size());
    } else if (url.starts_with("sqlite:") && !url.starts_with("sqlite://")) {
        path = url.substr(std::string_view("sqlite:").size());
    }
    if (!path.empty()) return migrated(detail::open_sqlite(std::string(path)), list);

    return make_error("invalid_config",
                      "meta.url \"" + redact_url(url) +
                          "\" is not understood; use \"\" (SQLite at <data_dir>/meta.db), "
                          "\"sqlite:///abs/path.db\", \"sqlite:rel/path.db\", "
                          "\"postgres://user:pass@host:5432/db\" or \"postgresql://...\"",
                      "meta.url");
}

result<std::unique_ptr<store>> open(std::string_view url, std::string_view data_dir) {
    return open_with(url, data_dir, migrations());
}

}  // namespace clisonix::meta
