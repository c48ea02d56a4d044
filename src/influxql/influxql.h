// Clisonix — InfluxDB 1.x `/query`: the InfluxQL that Grafana's InfluxDB data source sends,
// answered from the query engine in InfluxDB 1.x's JSON.
//
// Clisonix series are InfluxDB's own model (measurement, tags, one field), so a measurement,
// tag or field here is the same name that was written through `/write`. Supported:
//
//   SELECT <f>[, <f>...] FROM "m" | "db"."rp"."m" | /regex/ [WHERE ...] [GROUP BY time(d)[,
//   tags|*]]
//          [fill(null|none|previous|linear|<number>)] [ORDER BY time [DESC]] [LIMIT n] [OFFSET n]
//          [SLIMIT n] [SOFFSET n] [tz('UTC')]
//     <f>: "field" (raw points) or mean|max|min|sum|count|last|first|median|spread|stddev(field)
//          or percentile(field, N), each with an optional AS alias
//     WHERE: time <|<=|>|>=|= now() [+|- duration], 'RFC 3339', 1704067200000ms, integer ns;
//          tag =|!=|<> 'text', tag =~|!~ /regex/; joined by AND/OR with parentheses (time
//          bounds only under AND)
//   SHOW DATABASES | RETENTION POLICIES | MEASUREMENTS [WITH MEASUREMENT =|=~ ...] |
//        TAG KEYS | TAG VALUES WITH KEY =|!=|=~|!~|IN ... | FIELD KEYS | SERIES
//        [FROM ...] [WHERE ...] [LIMIT n] [OFFSET n]
//
// GROUP BY time buckets start at multiples of the interval since the epoch (the query
// engine's step), as InfluxDB's do. Anything else is refused with "unsupported InfluxQL:
// <feature>", never answered approximately. docs/decisions/0088-influxql.md says why.
//
// Thread safety: stateless; the engine is thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/result.h"
#include "storage/storage.h"

namespace clisonix::http {
class router;
}

namespace clisonix::influxql {

// The one database `SHOW DATABASES` lists; every `db` a client names reads the same data.
inline constexpr std::string_view database_name = "clisonix";

struct options {
    int64_t now_ns = 0;        // what now() is
    std::string epoch;         // "": RFC 3339 times; ns, u, µ, ms, s, m, h: numbers in that unit
    bool pretty = false;       // indented JSON
    int64_t max_points = 0;    // query.max_points: the cap of one statement's answer; 0: none
    int64_t retention_ns = 0;  // storage.retention, for SHOW RETENTION POLICIES; 0: forever
};

// An InfluxDB 1.x answer: the HTTP status and the JSON body.
struct answer {
    int status = 200;
    std::string body;
};

// Checks the text of `q` alone. Errors: "invalid_argument" with InfluxDB's wording
// ("found X, expected Y at line L, char C"), or "not_implemented" for a feature Clisonix
// does not answer ("unsupported InfluxQL: SELECT INTO at line 1, char 20").
status check(std::string_view q);

// Runs every `;`-separated statement of `q`: {"results":[{"statement_id":0,"series":[...]}]}.
// A parse error or an unsupported feature answers 400 {"error":"error parsing query: ..."} /
// {"error":"unsupported InfluxQL: ..."} and runs nothing; an error of one statement at run
// time is that statement's {"statement_id":i,"error":"..."} in a 200 answer.
answer run(const storage::engine& engine, std::string_view q, const options& opts);

// GET and POST /query (InfluxDB 1.x: q, db, epoch, pretty, chunked, u/p), permission read.
void add_routes(http::router& routes, const storage::engine& engine, int64_t max_points,
                int64_t retention_ns);

}  // namespace clisonix::influxql
