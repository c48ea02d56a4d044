// Clisonix — the parsed form of InfluxQL statements (private to src/influxql).
//
// The parser (parser.cpp) builds these; the executor (execute.cpp) answers them through the
// query engine. Only what the executor supports is representable: everything else is refused
// by the parser with "unsupported InfluxQL: ...".
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <regex>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "common/result.h"

namespace clisonix::influxql {

// A point in time: now() plus `ns`, or `ns` since the epoch.
struct time_expr {
    bool relative_to_now = false;
    int64_t ns = 0;
    int64_t resolve(int64_t now) const { return relative_to_now ? now + ns : ns; }
};

struct regex {
    std::string text;                // as written between the slashes
    std::shared_ptr<std::regex> re;  // compiled once at parse
    bool search(std::string_view s) const;
};

// One comparison of a WHERE clause: `time <op> <time>` or `<tag> <op> <string|regex>`.
struct comparison {
    std::string key;
    std::string op;  // = != =~ !~ < <= > >=  (<> is read as !=)
    bool is_time = false;
    time_expr when;    // is_time
    std::string text;  // tag comparisons with = or != (and < > on tags, refused at execution)
    std::optional<regex> pattern;  // =~ and !~
    size_t pos = 0;
};

// A WHERE clause: comparisons joined by AND and OR (parentheses shape the tree).
struct condition {
    enum class kind { all, any, leaf };
    kind type = kind::leaf;
    std::vector<condition> parts;  // all/any
    comparison leaf;
};

// `FROM "measurement"`, `FROM "db"."rp"."measurement"` or `FROM /regex/`.
struct source {
    std::string measurement;
    std::optional<regex> pattern;
    bool matches(std::string_view name) const;
};

enum class function {
    raw,
    mean,
    max,
    min,
    sum,
    count,
    last,
    first,
    median,
    spread,
    stddev,
    percentile
};

struct field_expr {
    function fn = function::raw;
    std::string field;
    double percentile = 0;  // percentile(field, N)
    std::string alias;      // AS
    std::string column() const;
};

enum class fill_kind { null, none, previous, linear, number };

struct select_statement {
    std::vector<field_expr> fields;
    source from;
    std::optional<condition> where;
    int64_t interval = 0;    // GROUP BY time(...), ns; 0: none
    bool group_all = false;  // GROUP BY *
    std::vector<std::string> group_tags;
    fill_kind fill = fill_kind::null;
    bool fill_given = false;
    double fill_value = 0;
    bool descending = false;
    int64_t limit = 0, offset = 0, slimit = 0, soffset = 0;
};

enum class show_kind {
    databases,
    retention_policies,
    measurements,
    tag_keys,
    tag_values,
    field_keys,
    series
};

struct show_statement {
    show_kind kind = show_kind::databases;
    std::optional<source> from;
    std::optional<condition> where;
    // SHOW TAG VALUES WITH KEY <op> ...: op is =, !=, =~, !~ or IN.
    std::string key_op;
    std::vector<std::string> keys;
    std::optional<regex> key_pattern;
    // SHOW MEASUREMENTS WITH MEASUREMENT = name | =~ /re/.
    std::optional<source> measurement_filter;
    int64_t limit = 0, offset = 0;
};

using statement = std::variant<select_statement, show_statement>;

// Parses `;`-separated statements. Errors: "invalid_argument" with InfluxDB's wording
// ("found X, expected Y at line L, char C"), or "not_implemented" with
// "unsupported InfluxQL: <feature> at line L, char C".
result<std::vector<statement>> parse(std::string_view text);

}  // namespace clisonix::influxql
