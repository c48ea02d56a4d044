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
#include <utility>
#include <variant>

namespace clisonix {

// What went wrong, in words a user can act on.
//  code:    stable machine-readable kind ("invalid_argument", "not_found", "unavailable",
//           "corrupt", "internal" ...), the same string the HTTP error envelope carries.
//  message: one sentence for a person; names the value and the reason.
//  field:   the input field at fault, when there is one (config key, JSON path, line number).
struct error {
    std::string code;
    std::string message;
    std::string field = {};
};

inline error make_error(std::string code, std::string message, std::string field = {}) {
    return error{std::move(code), std::move(message), std::move(field)};
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
