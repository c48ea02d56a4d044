// The contract on a real PostgreSQL, plus connection loss and redaction.
//
// The server comes from scripts/pg-test-server (the pg_server_start CTest fixture), through
// tests/support/pg_test_db.h: each test gets its own database, so the tests run in parallel.
#include <gmock/gmock.h>

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <limits>
#include <mutex>
#include <thread>

#include "meta/contract.h"
#include "support/pg_test_db.h"

namespace clisonix::meta::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

using clisonix::testing::pg_admin;
using clisonix::testing::pg_test_database;

// A database of the shared PostgreSQL fixture (tests/support/pg_test_db.h) as a contract
// test_database.
class postgres_database final : public test_database {
public:
    static result<std::unique_ptr<test_database>> create() {
        auto db = pg_test_database::create("t");
        if (!db) return db.error();
        return std::unique_ptr<test_database>(new postgres_database(std::move(*db)));
    }

    std::string url() const override { return _db->url(); }
    std::string data_dir() const override { return "/nonexistent"; }
    const std::string& name() const { return _db->name(); }
    const std::string& server() const { return _db->server(); }

private:
    explicit postgres_database(std::unique_ptr<pg_test_database> db) : _db(std::move(db)) {}

    std::unique_ptr<pg_test_database> _db;
};

INSTANTIATE_TEST_SUITE_P(postgres, contract,
                         ::testing::Values(backend_factory{"postgres", postgres_database::create}),
                         factory_name);

class meta_postgres : public ::testing::Test {
protected:
    void SetUp() override {
        auto db = postgres_database::create();
        ASSERT_TRUE(db.ok()) << db.error().message;
        _db.reset(static_cast<postgres_database*>(db->release()));
    }
    std::unique_ptr<postgres_database> _db;
};

TEST_F(meta_postgres, unreachable_server_is_a_clear_error_without_the_password) {
    const std::string password = "s3cret-Pa55";
    // Port 1 on loopback: nothing listens there, so the connection is refused at once.
    auto s = open("postgres://clisonix:" + password + "@127.0.0.1:1/postgres", "/nonexistent");
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.error().code, "unavailable");
    EXPECT_THAT(s.error().message, HasSubstr("postgres"));
    EXPECT_THAT(s.error().message, HasSubstr("127.0.0.1"));
    EXPECT_THAT(s.error().message, Not(HasSubstr(password)));
    EXPECT_THAT(s.error().message, Not(HasSubstr("\n")));  // one line for logs

    auto bad = open("postgres://clisonix:" + password + "@127.0.0.1:notaport/postgres", "");
    ASSERT_FALSE(bad.ok());
    EXPECT_THAT(bad.error().message, Not(HasSubstr(password)));
}

TEST_F(meta_postgres, ping_fails_when_the_connection_drops_and_the_next_call_reconnects) {
    auto s = open(_db->url(), "");
    ASSERT_TRUE(s.ok()) << s.error().message;
    EXPECT_EQ((*s)->backend(), "postgres");
    auto pid = (*s)->query("SELECT pg_backend_pid()");
    ASSERT_TRUE(pid.ok()) << pid.error().message;
    const int64_t backend_pid = std::get<int64_t>(pid->data.at(0).at(0));
    // The timeout argument makes the call wait until the backend has exited.
    ASSERT_TRUE(pg_admin(_db->server(),
                         "SELECT pg_terminate_backend(" + std::to_string(backend_pid) + ", 10000)")
                    .ok());

    auto lost = (*s)->ping();
    ASSERT_FALSE(lost.ok());
    EXPECT_EQ(lost.error().code, "unavailable");
    EXPECT_THAT(lost.error().message, HasSubstr("postgres"));
    auto back = (*s)->ping();
    EXPECT_TRUE(back.ok()) << back.error().message;
    EXPECT_EQ(*(*s)->schema_version(), migrations().back().version);
}

TEST_F(meta_postgres, column_types_map_to_values) {
    auto s = open(_db->url(), "");
    ASSERT_TRUE(s.ok()) << s.error().message;
    auto r = (*s)->query(
        "SELECT 1::int2, 2::int4, 3::int8, true, false, 1.5::numeric, 0.25::float4, "
        "0.1::float8, 'x'::varchar, NULL::int8, 'Infinity'::float8");
    ASSERT_TRUE(r.ok()) << r.error().message;
    ASSERT_EQ(r->data.size(), 1u);
    const std::vector<value> want = {int64_t{1},
                                     int64_t{2},
                                     int64_t{3},
                                     int64_t{1},
                                     int64_t{0},
                                     1.5,
                                     0.25,
                                     0.1,
                                     std::string("x"),
                                     std::monostate{},
                                     std::numeric_limits<double>::infinity()};
    EXPECT_EQ(r->data[0], want);
}

TEST_F(meta_postgres, migration_with_a_postgres_variant_uses_it) {
    const migration list[] = {{1, "variant", "CREATE TABLE w (x INTEGER PRIMARY KEY AUTOINCREMENT)",
                               "CREATE TABLE w (x BIGSERIAL PRIMARY KEY)"}};
    auto s = open_with(_db->url(), "", list);
    ASSERT_TRUE(s.ok()) << s.error().message;
    EXPECT_EQ(*(*s)->execute("INSERT INTO w DEFAULT VALUES"), 1);
}

}  // namespace
}  // namespace clisonix::meta::testing

namespace clisonix::meta::testing {
namespace {

using namespace std::chrono_literals;

// Counts the calls of one change_feed handler and lets a test wait for the next ones.
struct call_counter {
    std::mutex mutex;
    std::condition_variable cv;
    int calls = 0;
    void operator()() {
        std::lock_guard lock(mutex);
        ++calls;
        cv.notify_all();
    }
    bool wait_for(int n, std::chrono::milliseconds timeout) {
        std::unique_lock lock(mutex);
        return cv.wait_for(lock, timeout, [&] { return calls >= n; });
    }
    int count() {
        std::lock_guard lock(mutex);
        return calls;
    }
};

// A change committed through one connection reaches the feed of another, only for the tables
// a handler names, and only at the commit; a lost feed connection reconnects and calls every
// handler, since what changed meanwhile is unknown.
TEST_F(meta_postgres, the_change_feed_hears_commits_and_calls_everyone_after_a_reconnect) {
    auto s = open(_db->url(), "/nonexistent");
    ASSERT_TRUE(s.ok()) << s.error().message;
    auto feed = open_change_feed(_db->url());
    ASSERT_TRUE(feed.ok()) << feed.error().message;
    call_counter types, keys;
    (*feed)->subscribe({"device_types"}, std::ref(types));
    (*feed)->subscribe({"api_keys"}, std::ref(keys));
    // The first connect calls both (nothing is known of what came before).
    ASSERT_TRUE(types.wait_for(1, 5s));
    ASSERT_TRUE(keys.wait_for(1, 5s));

    std::atomic<bool> inserted{false};
    auto tx = (*s)->transaction([&](store& t) -> status {
        auto r = t.execute(
            "INSERT INTO device_types (name, description, metrics, offline_timeout_ms, "
            "created_at, updated_at) VALUES ('pump', '', '{}', 0, 0, 0)");
        if (!r) return r.error();
        inserted = true;
        std::this_thread::sleep_for(300ms);
        // Not before the commit: another process would reload the old rows.
        EXPECT_EQ(types.count(), 1);
        return {};
    });
    ASSERT_TRUE(tx.ok()) << tx.error().message;
    ASSERT_TRUE(inserted);
    EXPECT_TRUE(types.wait_for(2, 2s));
    EXPECT_EQ(keys.count(), 1);

    // The feed's connection is cut by the server: it reconnects and calls everyone.
    ASSERT_TRUE(pg_admin(_db->server(),
                         "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = "
                         "'" +
                             _db->name() + "' AND query LIKE 'LISTEN%'")
                    .ok());
    EXPECT_TRUE(types.wait_for(3, 5s));
    EXPECT_TRUE(keys.wait_for(2, 5s));
}

}  // namespace
}  // namespace clisonix::meta::testing
