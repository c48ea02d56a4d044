// `clisonix device import` without a server: the command against a stand-in for the API.
#include <sys/stat.h>

#include <gmock/gmock.h>

#include <sstream>

#include "devices/devices.h"
#include "support/test_support.h"

namespace clisonix::devices::testing {
namespace {

using ::testing::HasSubstr;
namespace fs = std::filesystem;

// Answers as POST /api/v1/devices/import would: the rows named "bad*" fail, others succeed.
result<post_result> fake_api(const std::string& csv, std::vector<std::string>& bodies) {
    bodies.push_back(csv);
    std::istringstream in(csv);
    std::string line;
    size_t n = 0;
    std::string created, errors;
    while (std::getline(in, line)) {
        ++n;
        if (n == 1) continue;
        std::string name = line.substr(0, line.find(','));
        if (name.starts_with("bad")) {
            errors += std::string(errors.empty() ? "" : ",") + R"({"line":)" + std::to_string(n) +
                      R"(,"field":"type","message":"type: no such thing"})";
        } else {
            created += std::string(created.empty() ? "" : ",") + R"({"line":)" + std::to_string(n) +
                       R"(,"name":")" + name + R"(","token":"cxd_)" + name + "\"}";
        }
    }
    return post_result{
        200, R"({"created":[)" + created + R"(],"skipped":[],"errors":[)" + errors + "]}"};
}

TEST(device_import_command, tokens_to_a_private_file_and_errors_by_file_line) {
    clisonix::testing::temp_dir dir;
    const auto csv = dir.path() / "devices.csv";
    clisonix::testing::write_file(
        csv, "# plant north\nname,type\np-1,pump\n\nbad-1,pump\np-2,pump\nx y,pump\np-3,pump\n");
    import_command cmd{csv.string(), (dir.path() / "tokens.csv").string(), 2};
    std::vector<std::string> bodies;
    std::ostringstream out, err;
    int rc = run_import_command(
        cmd, [&](const std::string& body) { return fake_api(body, bodies); }, out, err, false);
    EXPECT_EQ(rc, 2);
    EXPECT_EQ(err.str(), csv.string() + ":5: type: no such thing\n" + csv.string() +
                             ":7: name: \"x y\" may hold only letters, digits and . _ @ - (not "
                             "first)\n");
    EXPECT_EQ(out.str(), "device import: 3 created, 0 already existed, 2 failed\n");
    ASSERT_EQ(bodies.size(), 2u);  // 4 good-looking rows in chunks of 2
    EXPECT_EQ(bodies[0], "name,type,label,description\np-1,pump,,\nbad-1,pump,,\n");
    EXPECT_EQ(clisonix::testing::read_file(cmd.tokens_out),
              "name,token\np-1,cxd_p-1\np-2,cxd_p-2\np-3,cxd_p-3\n");
    struct stat st {};
    ASSERT_EQ(::stat(cmd.tokens_out.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST(device_import_command, bad_files_exit_2_before_any_request) {
    clisonix::testing::temp_dir dir;
    std::vector<std::string> bodies;
    auto post = [&](const std::string& body) { return fake_api(body, bodies); };
    std::ostringstream out, err;
    EXPECT_EQ(
        run_import_command({(dir.path() / "missing.csv").string(), "", 500}, post, out, err, false),
        2);
    EXPECT_THAT(err.str(), HasSubstr("missing.csv: No such file or directory"));

    const auto header = dir.path() / "header.csv";
    clisonix::testing::write_file(header, "name,colour\np-1,red\n");
    err.str("");
    EXPECT_EQ(run_import_command({header.string(), "", 500}, post, out, err, false), 2);
    EXPECT_EQ(err.str(), header.string() +
                             ":1: header: unknown column \"colour\"; the columns are name, type, "
                             "label, description\n");

    const auto empty = dir.path() / "empty.csv";
    clisonix::testing::write_file(empty, "name,type\n");
    err.str("");
    EXPECT_EQ(run_import_command({empty.string(), "", 500}, post, out, err, false), 2);
    EXPECT_EQ(err.str(), "device import: " + empty.string() + ": no device rows\n");
    EXPECT_TRUE(bodies.empty());
}

TEST(device_import_command, a_server_that_refuses_is_reported) {
    clisonix::testing::temp_dir dir;
    const auto csv = dir.path() / "d.csv";
    clisonix::testing::write_file(csv, "p-1\n");
    std::ostringstream out, err;
    auto refused = [](const std::string&) -> result<post_result> {
        return post_result{
            403,
            R"({"error":{"code":"forbidden","message":"The role viewer may not manage devices"}})"};
    };
    EXPECT_EQ(run_import_command({csv.string(), "", 500}, refused, out, err, false), 2);
    EXPECT_EQ(err.str(), "device import: The role viewer may not manage devices\n");
    auto down = [](const std::string&) -> result<post_result> {
        return make_error("unavailable", "cannot connect to 127.0.0.1:1: Connection refused");
    };
    err.str("");
    EXPECT_EQ(run_import_command({csv.string(), "", 500}, down, out, err, false), 1);
}

}  // namespace
}  // namespace clisonix::devices::testing
