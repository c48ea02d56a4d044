// Clisonix — configuration: one schema, five sources, clear errors.
//
// Every setting is declared once in the schema (key, type, default, range, secrecy, one
// line of doc). Values come from, highest precedence first:
//   1. flags       (`--set key=value`, and the dedicated flags such as `--port`, `--data`)
//   2. environment (`CLISONIX_HTTP_PORT` for `http.port`: upper case, '.' becomes '_')
//   3. a `.env` file (same names as the environment; `KEY=value` lines, `#` comments)
//   4. the TOML file given by `--config` (tables: `[http] port = 8030`)
//   5. the schema's defaults
// A value that does not parse, is out of range, or names a key the schema does not know is
// an error whose message is one line naming the key, the value, where it came from and what
// is allowed:  config: http.port = 70000 (from CLISONIX_HTTP_PORT): must be 1..65535
//
// Thread safety: a loaded `config` is immutable and may be read from any thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/result.h"

namespace clisonix::config {

enum class value_type {
    integer,      // whole number within [min, max]
    boolean,      // true/false (also 1/0, yes/no, on/off from text sources)
    string,       // free text
    enumeration,  // one of `choices`, e.g. "trace|debug|info|warn|error"
    duration,     // "250ms", "10s", "5m", "2h", "7d" (or a bare integer of milliseconds);
                  // held as milliseconds, min/max in milliseconds
    size,         // "512", "16KiB", "8MiB", "1GiB" (or a bare integer of bytes);
                  // held as bytes, min/max in bytes
};

struct key_spec {
    std::string_view key;            // "http.port"
    value_type type;                 //
    std::string_view default_value;  // as text, parsed like any user input
    int64_t min = 0;                 // integer/duration/size: inclusive range
    int64_t max = 0;                 //
    std::string_view choices = {};   // enumeration: "a|b|c"
    bool secret = false;             // redacted in `config show` and never logged
    std::string_view doc = {};       // one line for the README reference
    // Further rules a string must follow: why `text` breaks them, or "" when it does not.
    std::string (*check)(std::string_view text) = nullptr;
};

// A list of durations per name, `telemetry=7d,vibration=2d` (spaces around items allowed,
// an empty text is an empty list), into (name, milliseconds) pairs in the order given.
// Returns why the text is not one ("" when it is): a missing `=`, an empty or repeated
// name, or a duration that does not parse.
std::string parse_duration_list(std::string_view text,
                                std::vector<std::pair<std::string, int64_t>>& out);

// The whole schema, in the order the README lists it.
std::span<const key_spec> schema();

// The spec of `key`, or nullptr when the schema has no such key.
const key_spec* find_key(std::string_view key);

// The environment variable that sets `key`: "http.port" -> "CLISONIX_HTTP_PORT".
std::string env_name(std::string_view key);

// Where the values come from. Flags are applied in order; a later flag for the same key wins.
struct sources {
    std::string file;                                // TOML file from --config; empty: none
    std::string dotenv = ".env";                     // read when it exists; empty: none
    std::map<std::string, std::string> environment;  // usually from_process_environment()
    struct flag {
        std::string key;    // schema key
        std::string value;  // as typed
        std::string name;   // how it was given, for messages: "--port", "--set"
    };
    std::vector<flag> flags;
};

// The CLISONIX_* variables of this process's environment.
std::map<std::string, std::string> from_process_environment();

class config {
public:
    // The getters throw std::out_of_range for a key the schema lacks and std::logic_error for
    // a getter that does not fit the key's type: both are programming errors, not user input.
    // integer -> the number; duration -> milliseconds; size -> bytes.
    int64_t get_int(std::string_view key) const;
    bool get_bool(std::string_view key) const;
    // string and enumeration.
    const std::string& get_string(std::string_view key) const;
    std::chrono::milliseconds get_duration(std::string_view key) const {
        return std::chrono::milliseconds(get_int(key));
    }
    // "default", "file clisonix.toml", ".env", "CLISONIX_HTTP_PORT", "--set", "--port".
    const std::string& source(std::string_view key) const;

    // `config show`: one line per key, "key = value  # from SOURCE", values as TOML
    // literals, secrets shown as "<redacted>" (unless unset).
    std::string show() const;

    struct entry {
        std::string text;    // canonical text of the value
        int64_t number = 0;  // parsed integer/duration/size
        bool flag = false;   // parsed boolean
        std::string source;
    };
    std::map<std::string, entry, std::less<>> entries;
    // The TOML file read (sources::file), empty when none: what a hint to the user repeats
    // as `--config`.
    std::string file;
};

// Loads and validates every source. On failure, error.message is the one line above,
// error.field the key, error.code "invalid_config".
result<config> load(const sources& from);

// The README's configuration reference: a Markdown table generated from the schema.
std::string reference_markdown();

}  // namespace clisonix::config
