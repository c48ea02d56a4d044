// Clisonix — the error value every fallible call returns.
//
// Expected failures (bad input, a missing file, a database that does not answer, corrupt
// bytes on disk) travel as values: `result<T>` holds either a T or an `error`. Exceptions
// are kept for start-up and config, and one catch at the top of each request handler.
//
//   result<int> parse_port(std::string_view s);
//   auto port = parse_port(text);
//   if (!port) return port.error();   // an error converts to any result<U>
//   use(*port);
#pragma once

#include <cassert>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace clisonix {

// The error vocabulary: every `error.code` is one of these. The code is what a client
// branches on (it is the `code` of the HTTP error envelope), so the list is closed; the one
// place that turns a code into an HTTP status is http::status_for. A test scans src/ for
// codes outside this list. Call sites may spell a code as a literal (make_error("not_found",
// ...)); code that compares one uses the constant (e.code == errc::not_found).
namespace errc {
inline constexpr std::string_view invalid_argument = "invalid_argument";  // a bad value
inline constexpr std::string_view invalid_json = "invalid_json";          // a body that is not JSON
inline constexpr std::string_view invalid_config = "invalid_config";      // a bad config value
inline constexpr std::string_view unauthenticated = "unauthenticated";    // no credentials
inline constexpr std::string_view invalid_token = "invalid_token";  // expired, revoked, forged
inline constexpr std::string_view invalid_credentials = "invalid_credentials";  // wrong secret
inline constexpr std::string_view forbidden = "forbidden";  // known caller, not allowed
inline constexpr std::string_view not_found = "not_found";  // no such thing
inline constexpr std::string_view conflict = "conflict";    // clashes with what exists
inline constexpr std::string_view too_large = "too_large";  // over a size limit
inline constexpr std::string_view unsupported_media_type = "unsupported_media_type";
inline constexpr std::string_view too_many_requests = "too_many_requests";  // a rate limit or
                                                                            // a login lockout
inline constexpr std::string_view overloaded = "overloaded";    // shedding load; retry soon
inline constexpr std::string_view unavailable = "unavailable";  // a dependency does not answer
// The data directory's file system is full (or below its free-space reserve): writes are
// refused until space is freed; reads go on.
inline constexpr std::string_view storage_full = "storage_full";
inline constexpr std::string_view not_implemented = "not_implemented";
inline constexpr std::string_view internal = "internal";  // a bug
inline constexpr std::string_view corrupt = "corrupt";    // stored bytes fail their checks
// Protocol answers of the HTTP layer itself (no handler produces them).
inline constexpr std::string_view method_not_allowed = "method_not_allowed";
inline constexpr std::string_view upgrade_required = "upgrade_required";

inline constexpr std::string_view all[] = {
    invalid_argument,       invalid_json,      invalid_config, unauthenticated,    invalid_token,
    invalid_credentials,    forbidden,         not_found,      conflict,           too_large,
    unsupported_media_type, too_many_requests, overloaded,     unavailable,        storage_full,
    not_implemented,        internal,          corrupt,        method_not_allowed, upgrade_required,
};
}  // namespace errc

// What went wrong, in words a user can act on.
//  code:    one of errc (the same string the HTTP error envelope carries).
//  message: one sentence for a person; names the value and the reason.
//  field:   the input field at fault, when there is one (config key, JSON path, line number).
struct error {
    std::string code;
    std::string message;
    std::string field = {};
};

inline error make_error(std::string_view code, std::string message, std::string field = {}) {
    return error{std::string(code), std::move(message), std::move(field)};
}

template <typename T>
class [[nodiscard]] result {
public:
    result(T value) : _v(std::in_place_index<0>, std::move(value)) {}        // NOLINT: implicit
    result(clisonix::error e) : _v(std::in_place_index<1>, std::move(e)) {}  // NOLINT: implicit

    bool ok() const noexcept { return _v.index() == 0; }
    explicit operator bool() const noexcept { return ok(); }

    T& value() & {
        assert(ok());
        return std::get<0>(_v);
    }
    const T& value() const& {
        assert(ok());
        return std::get<0>(_v);
    }
    T&& value() && {
        assert(ok());
        return std::get<0>(std::move(_v));
    }
    T& operator*() & { return value(); }
    const T& operator*() const& { return value(); }
    T&& operator*() && { return std::move(*this).value(); }
    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }

    const clisonix::error& error() const& {
        assert(!ok());
        return std::get<1>(_v);
    }

private:
    std::variant<T, clisonix::error> _v;
};

// The result of a call that returns nothing but can fail.
template <>
class [[nodiscard]] result<void> {
public:
    result() = default;
    result(clisonix::error e) : _e(std::move(e)), _failed(true) {}  // NOLINT: implicit

    bool ok() const noexcept { return !_failed; }
    explicit operator bool() const noexcept { return ok(); }
    const clisonix::error& error() const& {
        assert(!ok());
        return _e;
    }

private:
    clisonix::error _e;
    bool _failed = false;
};

using status = result<void>;

}  // namespace clisonix
