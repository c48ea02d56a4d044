// deploy/: the systemd units pass `systemd-analyze verify` and stay hardened, the NATS config
// is one nats-server accepts and three servers running it make the JetStream cluster a node
// writes through with the env file's credentials, and every CLISONIX_* variable the units, the
// container files and the Kubernetes manifests set is a key of the config schema with a value it
// accepts, so that a renamed key or a typo cannot ship in an example; the packaged
// clisonix.toml loads and its commented lines show the schema's defaults. (The container and
// Kubernetes files are otherwise not run here: there is no container runtime on this machine.)
#include <gtest/gtest.h>
#include <signal.h>

#include <boost/json.hpp>
#include <filesystem>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "support/test_support.h"

namespace clisonix {
namespace {

namespace fs = std::filesystem;
using testing::process;
using testing::read_file;
using testing::run_clisonix;
using testing::server_process;
using testing::temp_dir;
using testing::write_file;

const fs::path deploy_dir = fs::path(CLISONIX_SOURCE_DIR) / "deploy";
const char* const systemd_analyze = "/usr/bin/systemd-analyze";

struct outcome {
    int exit_code = -1;
    std::string output;  // stdout and stderr
};

outcome run(const std::vector<std::string>& argv, const std::vector<std::string>& env = {}) {
    process p(argv, env);
    auto code = p.wait(std::chrono::seconds(60));
    return {code ? *code : -1, p.out() + p.err()};
}

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
    for (size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size()))
        s.replace(at, from.size(), to);
    return s;
}

// The units copied to `dir`, the node's ExecStart pointed at the built binary (verify checks
// that the program exists; /usr/bin/clisonix is where an installation puts it).
std::vector<std::string> units_in(const temp_dir& dir) {
    std::vector<std::string> paths;
    for (const char* name : {"clisonix.service", "nats-server.service"}) {
        std::string text = read_file(deploy_dir / "systemd" / name);
        text = replace_all(text, "/usr/bin/clisonix", CLISONIX_BINARY);
        write_file(dir.path() / name, text);
        paths.push_back((dir.path() / name).string());
    }
    return paths;
}

TEST(DeploySystemd, UnitsPassSystemdAnalyzeVerifyWithoutAWarning) {
    temp_dir dir("clisonix-units");
    auto units = units_in(dir);
    std::vector<std::string> argv{systemd_analyze, "verify", "--man=no"};
    argv.insert(argv.end(), units.begin(), units.end());
    auto verified = run(argv);
    EXPECT_EQ(verified.exit_code, 0) << verified.output;
    // verify exits 0 on an unknown key or a key in the wrong section; it only warns.
    EXPECT_EQ(verified.output, "");

    // The check catches what it should: a misplaced key is named.
    write_file(dir.path() / "broken.service",
               read_file(units[0]) + "\n[Service]\nStartLimitIntervalSec=0\n");
    auto broken = run({systemd_analyze, "verify", "--man=no", (dir.path() / "broken.service")});
    EXPECT_NE(broken.output.find("Unknown key 'StartLimitIntervalSec' in section [Service]"),
              std::string::npos)
        << broken.output;
}

TEST(DeploySystemd, UnitsAreHardenedToAnExposureOfAtMostOneAndAHalf) {
    temp_dir dir("clisonix-units");
    for (const auto& unit : units_in(dir)) {
        // --threshold is in tenths: 20 = exposure 2.0 of systemd's 0-10 scale.
        auto assessed =
            run({systemd_analyze, "security", "--offline=true", "--threshold=20", unit});
        EXPECT_EQ(assessed.exit_code, 0) << unit << "\n" << assessed.output;
    }
    // Debian's own nats-server unit, which ours replaces, is far above it.
    write_file(dir.path() / "plain.service",
               "[Service]\nExecStart=/usr/sbin/nats-server\nUser=nats\n");
    auto plain = run({systemd_analyze, "security", "--offline=true", "--threshold=15",
                      (dir.path() / "plain.service").string()});
    EXPECT_NE(plain.exit_code, 0) << plain.output;

    // What the node's unit promises in docs: its own user, a read-only system but for its
    // data directory, no new privileges, a restart after a failure, started once ready (the
    // binary's READY=1, tests/package), settings from the packaged file and the optional env
    // file.
    const std::string node = read_file(deploy_dir / "systemd" / "clisonix.service");
    for (const char* line :
         {"\nUser=clisonix\n", "\nProtectSystem=strict\n", "\nNoNewPrivileges=yes\n",
          "\nReadWritePaths=/var/lib/clisonix\n", "\nRestart=on-failure\n", "\nType=notify\n",
          "\nNotifyAccess=main\n", "\nEnvironmentFile=-/etc/clisonix/clisonix.env\n",
          "\nExecStart=/usr/bin/clisonix serve --config /etc/clisonix/clisonix.toml\n"})
        EXPECT_NE(node.find(line), std::string::npos) << line;
}

// The lines of an env file that assign a variable named `prefix`... (`NAME=value`).
std::vector<std::string> env_lines(const std::string& text, const std::string& prefix) {
    std::vector<std::string> out;
    const std::regex line("^" + prefix + R"([A-Z0-9_]*=.*$)");
    for (size_t at = 0; at < text.size();) {
        size_t nl = text.find('\n', at);
        if (nl == std::string::npos) nl = text.size();
        std::string l = text.substr(at, nl - at);
        if (std::regex_match(l, line)) out.push_back(l);
        at = nl + 1;
    }
    return out;
}

// `NAME: value` and `NAME: "value"` lines of a YAML file whose names are CLISONIX_*.
std::vector<std::string> yaml_env(const std::string& text) {
    std::vector<std::string> out;
    static const std::regex line(R"re(^\s*(CLISONIX_[A-Z0-9_]+): *"?([^"]*)"?\s*$)re");
    std::smatch m;
    for (size_t at = 0; at < text.size();) {
        size_t nl = text.find('\n', at);
        if (nl == std::string::npos) nl = text.size();
        std::string l = text.substr(at, nl - at);
        if (std::regex_match(l, m, line)) out.push_back(m[1].str() + "=" + m[2].str());
        at = nl + 1;
    }
    return out;
}

// `clisonix config show` with exactly these variables (in a directory without a .env): exit
// 0 only when every name is a key of the schema (or a name the CLI reads itself) and every
// value is one the key accepts.
void expect_config_accepts(const std::vector<std::string>& env, const std::string& from) {
    ASSERT_FALSE(env.empty()) << from;
    temp_dir cwd("clisonix-cwd");
    testing::run_result shown = run_clisonix({"config", "show"}, env, cwd.path());
    EXPECT_EQ(shown.exit_code, 0) << from << ": " << shown.err;
    for (const auto& e : env) {
        const std::string name = e.substr(0, e.find('='));
        if (name == "CLISONIX_ADMIN_PASSWORD") continue;  // read at the first start, no key
        EXPECT_NE(shown.out.find("# from " + name), std::string::npos)
            << from << ": " << name << " is not what set its key";
    }
}

TEST(DeployConfig, TheNodesEnvFileLoadsThroughTheConfigSchema) {
    auto env = env_lines(read_file(deploy_dir / "systemd" / "clisonix.env"), "CLISONIX_");
    EXPECT_GE(env.size(), 15u);
    expect_config_accepts(env, "deploy/systemd/clisonix.env");

    // A misspelt name is refused, naming it (what the check above relies on).
    temp_dir cwd("clisonix-cwd");
    auto typo = run_clisonix({"config", "show"}, {"CLISONIX_CLUSTER_NODEID=n1"}, cwd.path());
    EXPECT_EQ(typo.exit_code, 2);
    EXPECT_NE(typo.err.find("CLISONIX_CLUSTER_NODEID"), std::string::npos) << typo.err;
}

// `key = value  # from SOURCE` lines of `clisonix config show`, by key.
std::map<std::string, std::string> shown_values(const std::string& shown) {
    std::map<std::string, std::string> values;
    static const std::regex line(R"(^([a-z0-9_.]+) = (.*?)  # from (.*)$)");
    std::smatch m;
    std::istringstream lines(shown);
    for (std::string l; std::getline(lines, l);)
        if (std::regex_match(l, m, line)) values[m[1].str()] = m[2].str() + " # " + m[3].str();
    return values;
}

TEST(DeployConfig, ThePackagedTomlLoadsAndItsCommentedLinesShowTheDefaults) {
    // As installed: /etc/clisonix/clisonix.toml sets the data directory and nothing else.
    const fs::path toml = deploy_dir / "systemd" / "clisonix.toml";
    temp_dir cwd("clisonix-cwd");
    auto as_shipped = run_clisonix({"config", "show", "--config", toml.string()}, {}, cwd.path());
    ASSERT_EQ(as_shipped.exit_code, 0) << as_shipped.err;
    auto values = shown_values(as_shipped.out);
    EXPECT_EQ(values["data.dir"], "\"/var/lib/clisonix\" # file " + toml.string());
    int from_file = 0;
    for (const auto& [key, value] : values)
        if (value.find("# file ") != std::string::npos) ++from_file;
    EXPECT_EQ(from_file, 1) << as_shipped.out;

    // Every commented `# key = value` line uncommented: still accepted (each key exists, each
    // value is valid), and each value is what the key has by default, so that the file cannot
    // show a default the schema no longer has.
    std::string text = read_file(toml);
    static const std::regex commented(R"((^|\n)# ([a-z_.]+ = [^\n]*))");
    const std::string uncommented = std::regex_replace(text, commented, "$1$2");
    ASSERT_NE(uncommented, text);
    write_file(cwd.path() / "all.toml", uncommented);
    auto all = run_clisonix({"config", "show", "--config", (cwd.path() / "all.toml").string()}, {},
                            cwd.path());
    ASSERT_EQ(all.exit_code, 0) << all.err;
    auto defaults = shown_values(run_clisonix({"config", "show"}, {}, cwd.path()).out);
    int compared = 0;
    for (const auto& [key, value] : shown_values(all.out)) {
        if (value.find("# file ") == std::string::npos || key == "data.dir") continue;
        ++compared;
        const std::string shown = value.substr(0, value.find(" # file "));
        EXPECT_EQ(shown + " # default", defaults[key]) << key;
    }
    // Each commented line set its key (none of them repeats one or sits in a wrong table).
    const auto commented_keys =
        std::distance(std::sregex_iterator(text.begin(), text.end(), commented), {});
    EXPECT_EQ(compared, commented_keys) << all.out;
    EXPECT_GE(compared, 10);

    // What the check relies on: a commented key the schema lacks is refused, naming it.
    write_file(cwd.path() / "typo.toml", "[http]\nprot = 8030\n");
    auto typo = run_clisonix({"config", "show", "--config", (cwd.path() / "typo.toml").string()},
                             {}, cwd.path());
    EXPECT_EQ(typo.exit_code, 2);
    EXPECT_NE(typo.err.find("http.prot"), std::string::npos) << typo.err;
}

TEST(DeployConfig, TheComposeAndKubernetesSettingsLoadThroughTheConfigSchema) {
    expect_config_accepts(yaml_env(read_file(deploy_dir / "container" / "compose.yaml")),
                          "deploy/container/compose.yaml");
    auto k8s = yaml_env(read_file(deploy_dir / "kubernetes" / "clisonix.yaml"));
    auto secret = yaml_env(read_file(deploy_dir / "kubernetes" / "secret.example.yaml"));
    k8s.insert(k8s.end(), secret.begin(), secret.end());
    k8s.push_back("CLISONIX_CLUSTER_NODE_ID=clisonix-0");  // the pod's name, set by Kubernetes
    expect_config_accepts(k8s, "deploy/kubernetes");
}

TEST(DeployConfig, EveryClisonixNameInDeployIsAConfigKey) {
    // Names anywhere in deploy/ (Dockerfile ENV, HEALTHCHECK, comments, inline YAML maps).
    auto reference = run_clisonix({"config", "reference"});
    ASSERT_EQ(reference.exit_code, 0);
    // Besides the keys: the first admin's password, the telemetry log's stream name and the
    // config file's variable (the manual page names it).
    std::set<std::string> known{"CLISONIX_ADMIN_PASSWORD", "CLISONIX_TELEMETRY", "CLISONIX_CONFIG"};
    static const std::regex name(R"(CLISONIX_[A-Z0-9_]+)");
    for (std::sregex_iterator it(reference.out.begin(), reference.out.end(), name), end; it != end;
         ++it)
        known.insert(it->str());
    int seen = 0;
    for (const auto& entry : fs::recursive_directory_iterator(deploy_dir)) {
        if (!entry.is_regular_file()) continue;
        const std::string text = read_file(entry.path());
        for (std::sregex_iterator it(text.begin(), text.end(), name), end; it != end; ++it) {
            ++seen;
            EXPECT_TRUE(known.contains(it->str()))
                << fs::relative(entry.path(), deploy_dir) << ": " << it->str();
        }
    }
    EXPECT_GT(seen, 50);
}

TEST(DeployNats, TheServersConfigIsValidWithItsServerName) {
    const std::string conf = (deploy_dir / "systemd" / "nats-server.conf").string();
    auto env = env_lines(read_file(deploy_dir / "systemd" / "nats-server.env"), "NATS_");
    ASSERT_EQ(env.size(), 1u);
    EXPECT_EQ(env[0], "NATS_SERVER_NAME=nats1");
    auto checked = run({"/usr/sbin/nats-server", "-c", conf, "-t"}, env);
    EXPECT_EQ(checked.exit_code, 0) << checked.output;
    EXPECT_NE(checked.output.find("is valid"), std::string::npos) << checked.output;
    // Without the unit's environment file the name is missing, and nats-server says so.
    auto unnamed = run({"/usr/sbin/nats-server", "-c", conf, "-t"}, {"NATS_SERVER_NAME_UNUSED=1"});
    if (std::getenv("NATS_SERVER_NAME") == nullptr) {
        EXPECT_NE(unnamed.exit_code, 0);
        EXPECT_NE(unnamed.output.find("NATS_SERVER_NAME"), std::string::npos) << unnamed.output;
    }
}

// One server of deploy/systemd/nats-server.conf on loopback: the file as shipped, with only
// the addresses, the store and the size cap replaced.
struct shipped_nats {
    temp_dir dir{"clisonix-nats"};
    uint16_t client_port = testing::free_port();
    uint16_t route_port = testing::free_port();
    uint16_t monitor_port = testing::free_port();
    std::unique_ptr<process> proc;

    void start(int index, const std::vector<shipped_nats>& all) {
        std::string conf = read_file(deploy_dir / "systemd" / "nats-server.conf");
        auto replace = [&conf](const std::string& from, const std::string& to) {
            ASSERT_NE(conf.find(from), std::string::npos) << from;
            conf = replace_all(conf, from, to);
        };
        replace("listen: 0.0.0.0:4222", "listen: 127.0.0.1:" + std::to_string(client_port));
        replace("listen: 0.0.0.0:6222", "listen: 127.0.0.1:" + std::to_string(route_port));
        replace("http: 127.0.0.1:8222", "http: 127.0.0.1:" + std::to_string(monitor_port));
        replace("store_dir: /var/lib/nats ", "store_dir: " + dir.str() + " ");
        replace("max_file_store: 200G", "max_file_store: 1G");
        for (size_t k = 0; k < all.size(); ++k)
            replace("@nats" + std::to_string(k + 1) + ".plant.example:6222",
                    "@127.0.0.1:" + std::to_string(all[k].route_port));
        write_file(dir.path() / "nats-server.conf", conf);
        proc = std::make_unique<process>(
            std::vector<std::string>{"/usr/sbin/nats-server", "-c",
                                     (dir.path() / "nats-server.conf").string()},
            std::vector<std::string>{"NATS_SERVER_NAME=nats" + std::to_string(index + 1)});
    }
};

// The value of `name` in the env file, as written there.
std::string env_value(const std::string& name) {
    for (const auto& line : env_lines(read_file(deploy_dir / "systemd" / "clisonix.env"), name))
        if (line.starts_with(name + "=")) return line.substr(name.size() + 1);
    return {};
}

TEST(DeployNats, ThreeShippedServersCarryANodeThatUsesTheEnvFilesCredentials) {
    std::vector<shipped_nats> nats(3);
    for (int i = 0; i < 3; ++i)
        nats[i].start(i, nats);
    // The node's URLs are the env file's, user and password included; only the hosts differ.
    std::string urls = env_value("CLISONIX_CLUSTER_NATS");
    ASSERT_NE(urls.find("nats://clisonix:change-me-nats-password@"), std::string::npos) << urls;
    for (int i = 0; i < 3; ++i)
        urls = replace_all(urls, "nats" + std::to_string(i + 1) + ".plant.example:4222",
                           "127.0.0.1:" + std::to_string(nats[i].client_port));
    for (auto& n : nats)
        for (int i = 0; i < 100 && !testing::connection(n.client_port).connected(); ++i)
            std::this_thread::sleep_for(std::chrono::milliseconds(50));

    server_process node({"--set", "cluster.node_id=" + env_value("CLISONIX_CLUSTER_NODE_ID"),
                         "--set", "cluster.nats=" + urls, "--set",
                         "cluster.stream_replicas=" + env_value("CLISONIX_CLUSTER_STREAM_REPLICAS"),
                         "--set", "cluster.publish_timeout=3s"});
    auto write = [&node](int64_t ms, double v) {
        return node.post(
            "/api/v1/write?precision=ms",
            "telemetry,device=press-1 v=" + std::to_string(v) + " " + std::to_string(ms));
    };
    auto first = write(1'764'892'800'000, 1.25);
    ASSERT_EQ(first.status, 204) << first.body;

    // The stream holds 3 replicas, one on each server, as the unit's comments promise.
    auto jsz = testing::http_request(nats[0].monitor_port, "GET",
                                     "/jsz?accounts=true&streams=true&config=true");
    ASSERT_EQ(jsz.status, 200);
    EXPECT_NE(jsz.body.find("\"CLISONIX_TELEMETRY\""), std::string::npos) << jsz.body;
    EXPECT_NE(jsz.body.find("\"num_replicas\": 3"), std::string::npos) << jsz.body;

    // One of the three killed: the other two are a quorum, and the write is acknowledged;
    // when the killed server led the stream, JetStream elects another leader first (seconds),
    // meanwhile a write may get 503 "nothing is lost by sending it again", and the client
    // sends it again, as a client should.
    nats[0].proc->signal(SIGKILL);
    nats[0].proc->wait();
    testing::http_response second;
    for (auto until = std::chrono::steady_clock::now() + std::chrono::seconds(20);;) {
        second = write(1'764'892'801'000, 2.5);
        if (second.status != 503 || std::chrono::steady_clock::now() > until) break;
        EXPECT_NE(second.body.find("nothing is lost by sending it again"), std::string::npos)
            << second.body;
    }
    ASSERT_EQ(second.status, 204) << second.body;
    auto read = node.get("/api/v1/query?device=press-1&metric=v&from=0&to=4102444800000");
    ASSERT_EQ(read.status, 200) << read.body;
    auto points = boost::json::parse(read.body).at("series").at(0).at("points").as_array();
    ASSERT_EQ(points.size(), 2u) << read.body;
    EXPECT_EQ(points[1].as_array()[1].to_number<double>(), 2.5);

    // Two of the three gone: no quorum, so a write is refused after cluster.publish_timeout
    // (docs/cluster.md, failures) ...
    nats[1].proc->signal(SIGKILL);
    nats[1].proc->wait();
    auto refused_write = write(1'764'892'802'000, 3.75);
    EXPECT_EQ(refused_write.status, 503) << refused_write.body;
    EXPECT_NE(refused_write.body.find("nothing is lost by sending it again"), std::string::npos)
        << refused_write.body;
    // ... and once one of them is back on its store, the same write is acknowledged again
    // without restarting the node.
    nats[0].start(0, nats);
    int status = 0;
    for (int attempt = 0; attempt < 10 && status != 204; ++attempt)
        status = write(1'764'892'802'000, 3.75).status;
    EXPECT_EQ(status, 204);
    read = node.get("/api/v1/query?device=press-1&metric=v&from=0&to=4102444800000");
    points = boost::json::parse(read.body).at("series").at(0).at("points").as_array();
    ASSERT_EQ(points.size(), 3u) << read.body;
    EXPECT_EQ(points[2].as_array()[1].to_number<double>(), 3.75);

    // A wrong password is refused by the shipped authorization block: the node gives up at
    // start, naming the stream.
    std::string wrong = replace_all(urls, "change-me-nats-password", "wrong-password");
    temp_dir data("clisonix-data");
    auto refused = run_clisonix(
        {"serve", "--port", std::to_string(testing::free_port()), "--data", data.str(), "--set",
         "http.bind=127.0.0.1", "--set", "mqtt.enabled=false", "--set", "cluster.node_id=n9",
         "--set", "cluster.nats=" + wrong, "--set", "cluster.start_timeout=2s"},
        {"CLISONIX_ADMIN_PASSWORD=" + std::string(testing::test_admin_password)});
    EXPECT_EQ(refused.exit_code, 1) << refused.err;
}

}  // namespace
}  // namespace clisonix
