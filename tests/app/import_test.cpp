// `clisonix import` and `clisonix query` against a running server, as an operator uses them.
#include <gtest/gtest.h>

#include "support/test_support.h"

namespace clisonix {
namespace {

using testing::run_clisonix;
using testing::server_process;
using testing::temp_dir;
using testing::write_file;

TEST(import_test, line_protocol_file_is_imported_and_counted) {
    server_process srv;
    temp_dir dir;
    write_file(dir.path() / "plant.lp",
               "# a comment\n"
               "telemetry,device=d1 temperature=20.5,rpm=1450i 1704067200000\n"
               "telemetry,device=d1 temperature=21.5,rpm=1460i 1704067210000\n"
               "telemetry,device=d2 temperature=30,state=\"run, fast\" 1704067200000\n");
    std::string url = "http://127.0.0.1:" + std::to_string(srv.port());
    auto r = run_clisonix({"import", (dir.path() / "plant.lp").string(), "--url", url, "--token",
                           srv.token(), "--precision", "ms"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_TRUE(r.out.starts_with("imported 6 points from " + (dir.path() / "plant.lp").string()))
        << r.out;

    auto q = run_clisonix({"query", "--url", url, "--token", srv.token(), "--device", "d1",
                           "--metric", "temperature", "--from", "1704067200000", "--to",
                           "1704067260000", "--format", "csv"});
    ASSERT_EQ(q.exit_code, 0) << q.err;
    EXPECT_EQ(q.out,
              "measurement,tags,metric,time_ms,value\n"
              "telemetry,device=d1,temperature,1704067200000,20.5\n"
              "telemetry,device=d1,temperature,1704067210000,21.5\n");
}

TEST(import_test, csv_with_a_header_becomes_points) {
    server_process srv;
    temp_dir dir;
    write_file(dir.path() / "log.csv",
               "time,device,temperature,running\n"
               "2024-01-01T00:00:00Z,pump-1,20.25,true\n"
               "2024-01-01T00:00:10Z,pump-1,20.75,false\n");
    std::string url = "http://127.0.0.1:" + std::to_string(srv.port());
    auto r = run_clisonix(
        {"import", (dir.path() / "log.csv").string(), "--url", url, "--token", srv.token()});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_TRUE(r.out.starts_with("imported 4 points")) << r.out;
    auto q = srv.get("/api/v1/query?device=pump-1&metric=running&from=0&to=4102444800000");
    EXPECT_EQ(q.body,
              "{\"series\":[{\"measurement\":\"telemetry\",\"tags\":{\"device\":"
              "\"pump-1\"},\"metric\":\"running\",\"points\":[[1704067200000,true],"
              "[1704067210000,false]]}]}");
}

TEST(import_test, a_bad_line_is_named_by_file_and_line_and_exits_2) {
    server_process srv;
    temp_dir dir;
    std::string file = (dir.path() / "bad.lp").string();
    write_file(file, "m,device=a v=1 1\nm,device=a v=2 2\nm,device=a v=two 3\n");
    auto r =
        run_clisonix({"import", file, "--url", "http://127.0.0.1:" + std::to_string(srv.port()),
                      "--token", srv.token()});
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_NE(r.err.find("import: " + file + ":3: "), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("import: 0 points before this batch were imported"), std::string::npos)
        << r.err;
}

TEST(import_test, query_errors_name_the_parameter_and_exit_2) {
    server_process srv;
    auto r = run_clisonix({"query", "--url", "http://127.0.0.1:" + std::to_string(srv.port()),
                           "--token", srv.token(), "--agg", "median"});
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_EQ(r.err,
              "query: agg: expected one of raw, min, max, mean, sum, count, first, last, stddev, "
              "p50, p90, p99; got \"median\"\n");
    auto unreachable = run_clisonix({"query", "--url", "http://127.0.0.1:1"});
    EXPECT_EQ(unreachable.exit_code, 1);
}

}  // namespace
}  // namespace clisonix
