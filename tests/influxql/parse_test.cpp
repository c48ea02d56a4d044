// The InfluxQL parser: what Grafana sends is accepted; mistakes are named with InfluxDB's
// wording and position; features Clisonix does not answer are named as unsupported.
#include <gtest/gtest.h>

#include "influxql/influxql.h"

namespace clisonix::influxql {
namespace {

std::string message_of(std::string_view q) {
    auto st = check(q);
    return st ? std::string("ok") : st.error().message;
}

std::string code_of(std::string_view q) {
    auto st = check(q);
    return st ? std::string("ok") : st.error().code;
}

TEST(InfluxqlParse, AcceptsWhatGrafanaSends) {
    for (
        const char* q : {
            R"(SELECT mean("value") FROM "cpu" WHERE time > now() - 1h AND time < now() AND "device" = 'x' GROUP BY time(1m), "device" fill(none))",
            R"(SELECT mean("value") FROM "autogen"."cpu" WHERE ("host" =~ /^(a|b\-c)$/) AND time >= 1704067200000ms and time <= 1704070799999ms GROUP BY time(10s) fill(null) ORDER BY time DESC LIMIT 10 SLIMIT 2 tz('UTC'))",
            R"(SELECT max(v) AS "hi", min(v) AS lo, percentile("v", 95), median(v), spread(v), stddev(v), count(v), sum(v), first(v), last(v) FROM "db"."rp"."m" WHERE time >= '2024-01-01T00:00:00Z' GROUP BY time(1h), * fill(previous))",
            R"(SELECT "value" FROM "db".."m" WHERE "a" != 'b' OR ("c" !~ /d/ AND "e" <> 'f'))",
            "SELECT mean(v) FROM /^tele/ WHERE time > now() - 5m GROUP BY time(1m) fill(-1.5); "
            "SELECT count(v) FROM m WHERE time > 1704067200000000000 GROUP BY time(1m) "
            "fill(linear)",
            R"(SELECT mean("value"::field) FROM "cpu" WHERE ("host"::tag = 'a') AND time > now() - 1h GROUP BY time(1m), "host"::tag)",
            "SELECT count(v) FROM m WHERE time >= '2024-01-01' AND time < '2024-01-01 "
            "00:05:00.5'",
            "SHOW DATABASES",
            "SHOW RETENTION POLICIES ON \"clisonix\"",
            "SHOW MEASUREMENTS WITH MEASUREMENT =~ /press/ LIMIT 10",
            "show measurements on db where \"device\" = 'x'",
            "SHOW TAG KEYS FROM \"cpu\"",
            "SHOW TAG VALUES FROM \"cpu\" WITH KEY = \"device\" WHERE \"line\" = 'a'",
            "SHOW TAG VALUES WITH KEY IN (\"device\", \"line\")",
            "SHOW TAG VALUES FROM cpu WITH KEY =~ /dev/ LIMIT 5 OFFSET 1",
            "SHOW FIELD KEYS FROM \"cpu\"",
            "SHOW SERIES FROM cpu WHERE device = 'a'",
        })
        EXPECT_EQ(message_of(q), "ok") << q;
}

TEST(InfluxqlParse, MistakesNameTheTokenAndPosition) {
    EXPECT_EQ(message_of("SELECT mean(value) FROM"),
              "found EOF, expected identifier, regex at line 1, char 24");
    EXPECT_EQ(message_of("SELECT mean(value) FRM cpu"),
              "found FRM, expected FROM at line 1, char 20");
    EXPECT_EQ(message_of("SELECT value FROM cpu WHERE device = 'x"),
              "found 'x, expected closing ' at line 1, char 38");
    EXPECT_EQ(message_of("SELECT mean(value)\nFROM cpu\nGROUP BY time(1m) fill(sometimes)"),
              "found sometimes, expected null, none, previous, linear, number at line 3, char 24");
    EXPECT_EQ(message_of("SELECT mean(value) FROM cpu WHERE time > now() - 1x"),
              "found 1x, expected duration at line 1, char 50");
    EXPECT_EQ(message_of("SELECT mean(value) FROM cpu GROUP BY time(1m) LIMIT x"),
              "found x, expected integer at line 1, char 53");
    EXPECT_EQ(message_of("SELECT percentile(value) FROM cpu"),
              "found ), expected , at line 1, char 24");
    EXPECT_EQ(message_of("SELECT percentile(value, 101) FROM cpu"),
              "percentile() takes a number from 0 to 100 as its second argument, found 101 at line "
              "1, char 26");
    EXPECT_EQ(message_of("SELECT value FROM cpu WHERE device =~ 'x'"),
              "found 'x', expected regex at line 1, char 39");
    EXPECT_TRUE(message_of("SELECT value FROM cpu WHERE device =~ /[/")
                    .starts_with("invalid regular expression /[/: "));
    EXPECT_EQ(message_of("SELECT mean(value), value FROM cpu"),
              "mixing aggregate and non-aggregate queries is not supported");
    EXPECT_EQ(message_of("SELECT value FROM cpu GROUP BY time(1m)"),
              "GROUP BY requires at least one aggregate function");
    EXPECT_EQ(message_of("SELEC value FROM cpu"),
              "found SELEC, expected SELECT, SHOW at line 1, char 1");
    EXPECT_EQ(message_of("SHOW TAG VALUES FROM cpu"),
              "found EOF, expected WITH at line 1, char 25");
    EXPECT_EQ(message_of("SELECT value FROM cpu; SELECT"),
              "found EOF, expected field key, function at line 1, char 30");
    EXPECT_EQ(message_of(""), "found EOF, expected SELECT, SHOW at line 1, char 1");
    EXPECT_EQ(message_of("SELECT v FROM m WHERE time > '2024-13-01'"),
              "invalid time \"2024-13-01\": expected RFC 3339 such as '2024-01-01T00:00:00Z' at "
              "line 1, char 30");
    EXPECT_EQ(code_of("SELECT mean(value) FRM cpu"), "invalid_argument");
}

TEST(InfluxqlParse, UnsupportedFeaturesAreNamed) {
    EXPECT_EQ(message_of("SELECT a INTO b FROM c"),
              "unsupported InfluxQL: SELECT INTO at line 1, char 10");
    EXPECT_EQ(code_of("SELECT a INTO b FROM c"), "not_implemented");
    EXPECT_EQ(message_of("SELECT derivative(mean(value), 1s) FROM cpu"),
              "unsupported InfluxQL: the function derivative() at line 1, char 8");
    EXPECT_EQ(message_of("SELECT mean(value) * 2 FROM cpu"),
              "unsupported InfluxQL: arithmetic in SELECT (*) at line 1, char 20");
    EXPECT_EQ(message_of("SELECT * FROM cpu"),
              "unsupported InfluxQL: SELECT * (name the fields) at line 1, char 8");
    EXPECT_EQ(message_of("SELECT mean(value) FROM cpu WHERE value > 5"),
              "unsupported InfluxQL: a condition on a field value (value > 5); compare tags with "
              "strings and time with times at line 1, char 35");
    EXPECT_EQ(
        message_of("SELECT mean(value) FROM cpu WHERE time > now() - 1h GROUP BY time(1m, 15s)"),
        "unsupported InfluxQL: an offset in GROUP BY time() at line 1, char 69");
    EXPECT_EQ(message_of("SELECT mean(value) FROM (SELECT value FROM cpu)"),
              "unsupported InfluxQL: subqueries at line 1, char 25");
    EXPECT_EQ(
        message_of("SELECT value FROM cpu tz('Europe/Berlin')"),
        "unsupported InfluxQL: tz('Europe/Berlin'): times are answered in UTC at line 1, char 26");
    EXPECT_EQ(message_of("DROP MEASUREMENT cpu"),
              "unsupported InfluxQL: DROP statements (Clisonix answers SELECT and SHOW) at line 1, "
              "char 1");
    EXPECT_EQ(message_of("SELECT \"value\"::integer FROM cpu"),
              "unsupported InfluxQL: the cast ::integer at line 1, char 15");
    EXPECT_EQ(message_of("SELECT value FROM cpu WHERE \"value\"::field = 'x'"),
              "unsupported InfluxQL: a condition on the field \"value\"; WHERE compares tags and "
              "time at line 1, char 29");
    EXPECT_EQ(message_of("SHOW USERS"), "unsupported InfluxQL: SHOW USERS at line 1, char 6");
    EXPECT_EQ(message_of("SELECT value FROM a, b"),
              "unsupported InfluxQL: several measurements in FROM at line 1, char 20");
}

}  // namespace
}  // namespace clisonix::influxql
