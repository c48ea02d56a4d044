// The Debian package (scripts/package, deploy/debian): built from the tree's release build, it
// is lintian clean (the tags left are overridden with a reason in
// deploy/debian/clisonix.lintian-overrides), holds exactly the expected paths, its unit passes
// `systemd-analyze verify`, and installed with `dpkg --root` into a throwaway root (maintainer
// scripts included: --force-script-chrootless runs them here with DPKG_ROOT set, which
// systemd-sysusers, systemd-tmpfiles and deb-systemd-helper honour) it creates its user and
// data directory, enables the unit, and the packaged binary serves with the packaged config,
// dashboard and readiness notice; the admin password is printed on the first start only;
// removing keeps the data and purging deletes it.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <filesystem>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "support/test_support.h"

namespace clisonix {
namespace {

namespace fs = std::filesystem;
using testing::http_request;
using testing::notify_socket;
using testing::process;
using testing::read_file;
using testing::temp_dir;
using testing::write_file;

const fs::path source_dir = CLISONIX_SOURCE_DIR;

struct outcome {
    int exit_code = -1;
    std::string out;
    std::string err;
};

outcome run(const std::vector<std::string>& argv, const std::vector<std::string>& env = {}) {
    process p(argv, env);
    auto code = p.wait(std::chrono::seconds(300));
    return {code ? *code : -1, p.out(), p.err()};
}

size_t count_of(const std::string& text, const std::string& what) {
    size_t n = 0;
    for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1))
        ++n;
    return n;
}

std::string version_of_binary() {
    auto v = run({CLISONIX_BINARY, "version"});
    std::istringstream words(v.out);
    std::string name, version;
    words >> name >> version;
    return version;
}

// scripts/package run on the release build, the .deb in `out`; its path.
fs::path build_package(const temp_dir& out) {
    auto built = run({(source_dir / "scripts" / "package").string(), "--binary", CLISONIX_BINARY,
                      "--out", out.str()});
    EXPECT_EQ(built.exit_code, 0) << built.out << built.err;
    auto arch = run({"/usr/bin/dpkg", "--print-architecture"}).out;
    arch.erase(arch.find_last_not_of('\n') + 1);
    const fs::path deb = out.path() / ("clisonix_" + version_of_binary() + "_" + arch + ".deb");
    EXPECT_NE(built.out.find("package: built " + deb.string()), std::string::npos) << built.out;
    EXPECT_TRUE(fs::is_regular_file(deb)) << deb;
    return deb;
}

// The paths `dpkg-deb -c` lists, without the leading "./" and a directory's trailing "/".
std::set<std::string> contents_of(const fs::path& deb) {
    auto listed = run({"/usr/bin/dpkg-deb", "-c", deb.string()});
    EXPECT_EQ(listed.exit_code, 0) << listed.err;
    std::set<std::string> paths;
    std::istringstream lines(listed.out);
    for (std::string line; std::getline(lines, line);) {
        std::istringstream fields(line);
        std::string mode, owner, size, date, time, path;
        fields >> mode >> owner >> size >> date >> time >> path;
        if (path.starts_with("./")) path.erase(0, 2);
        if (path.ends_with("/")) path.pop_back();
        if (!path.empty()) paths.insert(path);
    }
    return paths;
}

TEST(DebianPackage, IsLintianCleanAndHoldsExactlyTheExpectedFiles) {
    temp_dir out("clisonix-deb");
    const fs::path deb = build_package(out);
    ASSERT_TRUE(fs::is_regular_file(deb));

    // lintian with its info tags: nothing but what the override file explains.
    auto linted = run({"/usr/bin/lintian", "--display-info", deb.string()});
    EXPECT_EQ(linted.exit_code, 0) << linted.out << linted.err;
    EXPECT_EQ(linted.out, "");

    std::set<std::string> expected{
        "etc",
        "etc/clisonix",
        "etc/clisonix/clisonix.toml",
        "lib",
        "lib/systemd",
        "lib/systemd/system",
        "lib/systemd/system/clisonix.service",
        "usr",
        "usr/bin",
        "usr/bin/clisonix",
        "usr/lib",
        "usr/lib/sysusers.d",
        "usr/lib/sysusers.d/clisonix.conf",
        "usr/lib/tmpfiles.d",
        "usr/lib/tmpfiles.d/clisonix.conf",
        "usr/share",
        "usr/share/clisonix",
        "usr/share/clisonix/web",
        "usr/share/doc",
        "usr/share/doc/clisonix",
        "usr/share/doc/clisonix/README.md",
        "usr/share/doc/clisonix/changelog.gz",
        "usr/share/doc/clisonix/cluster.md",
        "usr/share/doc/clisonix/copyright",
        "usr/share/lintian",
        "usr/share/lintian/overrides",
        "usr/share/lintian/overrides/clisonix",
        "usr/share/man",
        "usr/share/man/man1",
        "usr/share/man/man1/clisonix.1.gz",
    };
    // The dashboard as web/dist holds it (its assets' names carry content hashes).
    const fs::path dist = source_dir / "web" / "dist";
    for (const auto& entry : fs::recursive_directory_iterator(dist))
        expected.insert("usr/share/clisonix/web/" + fs::relative(entry.path(), dist).string());
    ASSERT_TRUE(expected.contains("usr/share/clisonix/web/index.html"));
    EXPECT_EQ(contents_of(deb), expected);

    // The settings are the one conffile; dependencies are dpkg-shlibdeps' (the libraries the
    // binary links); the maintainer scripts are debhelper's plus the purge of the data.
    auto conffiles = run({"/usr/bin/dpkg-deb", "--info", deb.string(), "conffiles"});
    EXPECT_EQ(conffiles.out, "/etc/clisonix/clisonix.toml\n");
    auto depends = run({"/usr/bin/dpkg-deb", "--field", deb.string(), "Depends"}).out;
    for (const char* library : {"libc6 (>= ", "libsqlite3-0", "libssl3", "libboost-json1.81.0"})
        EXPECT_NE(depends.find(library), std::string::npos) << library << " in " << depends;
    EXPECT_EQ(depends.find("${"), std::string::npos) << depends;
    auto postinst = run({"/usr/bin/dpkg-deb", "--info", deb.string(), "postinst"}).out;
    for (const char* step : {"systemd-sysusers ${DPKG_ROOT:+--root=\"$DPKG_ROOT\"} clisonix.conf",
                             "systemd-tmpfiles ${DPKG_ROOT:+--root=\"$DPKG_ROOT\"} --create",
                             "deb-systemd-helper enable 'clisonix.service'",
                             "deb-systemd-invoke $_dh_action 'clisonix.service'"})
        EXPECT_NE(postinst.find(step), std::string::npos) << step << " in\n" << postinst;
    auto postrm = run({"/usr/bin/dpkg-deb", "--info", deb.string(), "postrm"}).out;
    EXPECT_NE(postrm.find("if [ \"$1\" = \"purge\" ]; then\n\trm -rf \"${DPKG_ROOT:-}/var/lib/"
                          "clisonix\""),
              std::string::npos)
        << postrm;

    // The unit as packaged passes `systemd-analyze verify` (no systemd runs as PID 1 here, and
    // `--root` needs a whole system's units: the unit file is checked with ExecStart pointed at
    // the packaged binary, since verify checks that the program exists).
    temp_dir tree("clisonix-deb-tree");
    ASSERT_EQ(run({"/usr/bin/dpkg-deb", "-x", deb.string(), tree.str()}).exit_code, 0);
    std::string unit = read_file(tree.path() / "lib/systemd/system/clisonix.service");
    EXPECT_EQ(unit, read_file(source_dir / "deploy/systemd/clisonix.service"));
    for (size_t at = unit.find("/usr/bin/clisonix"); at != std::string::npos;
         at = unit.find("/usr/bin/clisonix", at + 1)) {
        unit.replace(at, 17, (tree.path() / "usr/bin/clisonix").string());
        at += tree.str().size();
    }
    write_file(tree.path() / "clisonix.service", unit);
    auto verified = run({"/usr/bin/systemd-analyze", "verify", "--man=no",
                         (tree.path() / "clisonix.service").string()});
    EXPECT_EQ(verified.exit_code, 0) << verified.out << verified.err;
    EXPECT_EQ(verified.out + verified.err, "");
}

struct throwaway_root {
    temp_dir dir{"clisonix-root"};

    throwaway_root() {
        fs::create_directories(dir.path() / "var/lib/dpkg/info");
        fs::create_directories(dir.path() / "var/lib/dpkg/updates");
        fs::create_directories(dir.path() / "var/log");
        write_file(dir.path() / "var/lib/dpkg/status", "");
    }
    fs::path operator/(const std::string& p) const { return dir.path() / p; }
    // dpkg on this root, the maintainer scripts run outside it with DPKG_ROOT set; the
    // libraries the package depends on are this machine's, not the root's.
    outcome dpkg(const std::vector<std::string>& args) const {
        std::vector<std::string> argv{"/usr/bin/dpkg", "--root=" + dir.str(),
                                      "--force-script-chrootless", "--force-depends"};
        argv.insert(argv.end(), args.begin(), args.end());
        return run(argv);
    }
};

// `<root>/usr/bin/clisonix serve` with the packaged config; data in the root, a free port.
struct packaged_server {
    uint16_t port = testing::free_port();
    std::unique_ptr<process> proc;

    packaged_server(const throwaway_root& root, const notify_socket& notify) {
        proc = std::make_unique<process>(
            std::vector<std::string>{(root / "usr/bin/clisonix").string(), "serve", "--config",
                                     (root / "etc/clisonix/clisonix.toml").string(), "--data",
                                     (root / "var/lib/clisonix").string(), "--port",
                                     std::to_string(port), "--set", "http.bind=127.0.0.1", "--set",
                                     "mqtt.port=0", "--set", "mqtt.bind=127.0.0.1", "--set",
                                     "coap.port=0", "--set", "coap.bind=127.0.0.1"},
            std::vector<std::string>{notify.env()}, root.dir.path());
    }
    // SIGTERM, as systemctl stop sends; the exit code.
    int stop() {
        proc->signal(SIGTERM);
        auto code = proc->wait(std::chrono::seconds(60));
        return code ? *code : -1;
    }
};

int login_status(uint16_t port, const std::string& password) {
    boost::json::object body{{"username", "admin"}, {"password", password}};
    return http_request(port, "POST", "/api/v1/auth/login", boost::json::serialize(body)).status;
}

TEST(DebianPackage, InstallsIntoAThrowawayRootWhereThePackagedServerRuns) {
    if (::geteuid() != 0) GTEST_SKIP() << "dpkg --root creates the root's user and files as root";
    temp_dir out("clisonix-deb");
    const fs::path deb = build_package(out);
    ASSERT_TRUE(fs::is_regular_file(deb));
    throwaway_root root;
    auto installed = root.dpkg({"--install", deb.string()});
    ASSERT_EQ(installed.exit_code, 0) << installed.out << installed.err;

    // The maintainer scripts' work: the system user, its data directory, the enabled unit.
    const std::string passwd = read_file(root / "etc/passwd");
    EXPECT_TRUE(passwd.starts_with("clisonix:x:") ||
                passwd.find("\nclisonix:x:") != std::string::npos)
        << passwd;
    EXPECT_NE(passwd.find(":/var/lib/clisonix:/usr/sbin/nologin\n"), std::string::npos) << passwd;
    struct stat data {};
    ASSERT_EQ(::stat((root / "var/lib/clisonix").c_str(), &data), 0);
    EXPECT_EQ(data.st_mode & 07777, 0700u);
    const std::string uid = std::to_string(data.st_uid);
    EXPECT_NE(passwd.find("clisonix:x:" + uid + ":"), std::string::npos) << uid << "\n" << passwd;
    EXPECT_EQ(
        fs::read_symlink(root / "etc/systemd/system/multi-user.target.wants/clisonix.service"),
        "/lib/systemd/system/clisonix.service");

    // What the dashboard serves is the packaged files: marked here to tell them apart from
    // the source tree's web/dist, which the binary would also find.
    const fs::path index = root / "usr/share/clisonix/web/index.html";
    write_file(index, read_file(index) + "<!-- from the package -->\n");

    notify_socket notify((out.path() / "notify").string());
    std::string password;
    {
        packaged_server first(root, notify);
        // READY=1 once /readyz answers ready (the unit's Type=notify start).
        ASSERT_TRUE(notify.wait_for("READY=1", std::chrono::seconds(60)))
            << first.proc->out() << first.proc->err();
        auto ready = http_request(first.port, "GET", "/readyz");
        EXPECT_EQ(ready.status, 200);
        EXPECT_EQ(ready.body, R"({"status":"ready"})");

        auto page = http_request(first.port, "GET", "/");
        EXPECT_EQ(page.status, 200);
        EXPECT_EQ(page.body, read_file(index));
        auto openapi = http_request(first.port, "GET", "/api/v1/openapi.json");
        EXPECT_EQ(openapi.status, 200);

        // The generated password, once, on the console (the journal under systemd) with the
        // way to change it for this configuration.
        const std::string console = first.proc->out();
        const std::string created = "Created the first user: admin, password ";
        ASSERT_EQ(count_of(console, created), 1u) << console;
        auto from = console.find(created) + created.size();
        password = console.substr(from, console.find('\n', from) - from);
        EXPECT_EQ(password.size(), 24u) << console;
        EXPECT_NE(console.find("(change it as the user root with `clisonix user passwd admin "
                               "--config " +
                               (root / "etc/clisonix/clisonix.toml").string() + "`)\n"),
                  std::string::npos)
            << console;
        EXPECT_EQ(login_status(first.port, password), 200);
        EXPECT_EQ(first.stop(), 0) << first.proc->err();
        EXPECT_TRUE(notify.wait_for("STOPPING=1", std::chrono::seconds(5)));
    }
    // The JSON log under the data directory holds no password.
    const std::string logs = testing::read_logs(root / "var/lib/clisonix");
    EXPECT_NE(logs.find("created the first admin user"), std::string::npos);
    EXPECT_EQ(logs.find(password), std::string::npos);

    {
        packaged_server second(root, notify);
        ASSERT_TRUE(notify.wait_for("READY=1", std::chrono::seconds(60))) << second.proc->err();
        EXPECT_EQ(login_status(second.port, password), 200);
        EXPECT_EQ(second.stop(), 0);
        EXPECT_EQ(second.proc->out().find("Created the first user"), std::string::npos)
            << second.proc->out();
        EXPECT_EQ(second.proc->err().find(password), std::string::npos);
    }

    // Removing keeps the data and the settings; purging deletes both (and the unit's link).
    auto removed = root.dpkg({"--remove", "clisonix"});
    ASSERT_EQ(removed.exit_code, 0) << removed.out << removed.err;
    EXPECT_FALSE(fs::exists(root / "usr/bin/clisonix"));
    EXPECT_TRUE(fs::is_regular_file(root / "var/lib/clisonix/meta.db"));
    EXPECT_TRUE(fs::is_regular_file(root / "etc/clisonix/clisonix.toml"));
    auto purged = root.dpkg({"--purge", "clisonix"});
    ASSERT_EQ(purged.exit_code, 0) << purged.out << purged.err;
    EXPECT_FALSE(fs::exists(root / "var/lib/clisonix"));
    EXPECT_FALSE(fs::exists(root / "etc/clisonix"));
    EXPECT_FALSE(fs::exists(root / "etc/systemd/system/multi-user.target.wants/clisonix.service"));
}

}  // namespace
}  // namespace clisonix
