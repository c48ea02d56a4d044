// The write endpoints in-process, for the route tests: router + server + pipeline + the
// storage engine in a temp dir, spoken to over real sockets; what was written is read back
// through engine::scan.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <charconv>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "http/http.h"
#include "ingest/ingest.h"
#include "support/test_support.h"

namespace clisonix::ingest {

using clisonix::testing::free_port;
using clisonix::testing::http_request;
using clisonix::testing::http_response;
using clisonix::testing::temp_dir;

constexpr int64_t t0 = 1'704'067'200'000'000'000;  // 2024-01-01T00:00:00Z

class ingest_routes : public ::testing::Test {
protected:
    void SetUp() override { start({}); }

    // `custom`: other request limits than the small ones the tests pass on purpose.
    void start(storage::options engine_opts, std::optional<limits> custom = {}) {
        engine_opts.dir = (dir.path() / "tsdb").string();
        auto opened = storage::engine::open(engine_opts);
        ASSERT_TRUE(opened.ok()) << opened.error().message;
        engine = std::move(*opened);
        sink = std::make_unique<pipeline>(*engine);
        sink->add_listener([this](const storage::write_batch& b) {
            ++batches_heard;
            points_heard += b.point_count();
        });
        bounds.max_line_bytes = 1024;
        bounds.max_body_bytes = 64 * 1024;
        if (custom) bounds = *custom;
        add_routes(routes, *sink, bounds);
        http::server_options opts;
        opts.bind = "127.0.0.1";
        opts.port = port = free_port();
        opts.threads = 2;
        opts.body_limit = std::max<uint64_t>(256 * 1024, bounds.max_body_bytes);
        server = std::make_unique<http::server>(opts, routes, std::vector<http::middleware>{});
        ASSERT_TRUE(server->listen().ok());
        runner = std::thread([this] { server->run(false); });
    }

    void TearDown() override {
        if (server) server->stop();
        if (runner.joinable()) runner.join();
    }

    http_response post(std::string_view target, std::string_view body,
                       const std::vector<std::string>& headers = {}) {
        return http_request(port, "POST", target, body, headers);
    }

    // "ts=value" for every point of the series, or "absent".
    std::vector<std::string> read_back(std::string_view key) {
        auto info = engine->series_by_key(key);
        if (!info) return {"absent"};
        std::vector<storage::sample> samples;
        std::vector<std::string> strings;
        auto st = engine->scan(info->id, std::numeric_limits<int64_t>::min(),
                               std::numeric_limits<int64_t>::max(), samples, &strings);
        EXPECT_TRUE(st.ok());
        std::vector<std::string> out;
        for (const auto& s : samples) {
            std::string v;
            switch (info->type) {
                case storage::value_type::float64: {
                    char buf[64];
                    auto r = std::to_chars(buf, buf + sizeof buf, std::bit_cast<double>(s.raw));
                    v.assign(buf, r.ptr);
                    break;
                }
                case storage::value_type::int64:
                    v = std::to_string(static_cast<int64_t>(s.raw)) + "i";
                    break;
                case storage::value_type::boolean:
                    v = s.raw ? "true" : "false";
                    break;
                case storage::value_type::string:
                    v = "\"" + strings.at(s.raw) + "\"";
                    break;
            }
            out.push_back(std::to_string(s.ts) + "=" + v);
        }
        return out;
    }

    temp_dir dir{"clisonix-ingest"};
    std::unique_ptr<storage::engine> engine;
    std::unique_ptr<pipeline> sink;
    limits bounds;
    http::router routes;
    uint16_t port = 0;
    std::unique_ptr<http::server> server;
    std::thread runner;
    std::atomic<int> batches_heard{0};
    std::atomic<size_t> points_heard{0};
};

using strings = std::vector<std::string>;

class ingest_routes_overloaded : public ingest_routes {
protected:
    void SetUp() override {
        storage::options opts;
        opts.max_head_bytes = 64;  // any write of a few points exceeds it
        start(opts);
    }
};

}  // namespace clisonix::ingest
