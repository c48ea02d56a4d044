// The meta store contract, run against every backend (see contract.h).
#include <array>
#include <bit>
#include <cmath>
#include <latch>
#include <limits>
#include <optional>
#include <thread>

#include <gmock/gmock.h>

#include "meta/contract.h"

namespace clisonix::meta::testing {
namespace {

using ::testing::HasSubstr;

// A migration that fails when run twice, so "ran exactly once" is observable.
constexpr migration create_a{1, "create_a", "CREATE TABLE a (x BIGINT)"};
constexpr migration create_b{2, "create_b", "CREATE TABLE b (y BIGINT)"};
constexpr migration values_table{
    1, "values", "CREATE TABLE v (id BIGINT, i BIGINT, d DOUBLE PRECISION, t TEXT)"};

#define ASSERT_OPENED(var, expr)                                    \
    auto var##_result = (expr);                                     \
    ASSERT_TRUE(var##_result.ok()) << var##_result.error().message; \
    auto var = std::move(*var##_result)

int64_t scalar(store& s, std::string_view sql, std::span<const value> params = {}) {
    auto r = s.query(sql, params);
    EXPECT_TRUE(r.ok()) << r.error().message;
    if (!r || r->data.size() != 1 || r->data[0].size() != 1) return -1;
    auto* v = std::get_if<int64_t>(&r->data[0][0]);
    EXPECT_NE(v, nullptr) << sql;
    return v ? *v : -1;
}

int64_t count(store& s, std::string_view table) {
    return scalar(s, "SELECT COUNT(*) FROM " + std::string(table));
}

TEST_P(contract, migrations_apply_once) {
    for (int i = 0; i < 2; ++i) {
        ASSERT_OPENED(s, open_default());
        auto v = s->schema_version();
        ASSERT_TRUE(v.ok()) << v.error().message;
        EXPECT_EQ(*v, migrations().back().version);
        EXPECT_EQ(count(*s, "schema_migrations"), static_cast<int64_t>(migrations().size()));
        EXPECT_EQ(count(*s, "settings"), 0);
    }
}

TEST_P(contract, migration_added_later_is_the_only_one_applied) {
    const migration first[] = {create_a};
    const migration both[] = {create_a, create_b};
    {
        ASSERT_OPENED(s, open_list(first));
        EXPECT_EQ(*s->schema_version(), 1);
    }
    ASSERT_OPENED(s, open_list(both));
    EXPECT_EQ(*s->schema_version(), 2);
    EXPECT_EQ(count(*s, "b"), 0);
    auto r = s->query("SELECT version, name FROM schema_migrations ORDER BY version");
    ASSERT_TRUE(r.ok()) << r.error().message;
    ASSERT_EQ(r->data.size(), 2u);
    EXPECT_EQ(r->data[1][0], value{int64_t{2}});
    EXPECT_EQ(r->data[1][1], value{std::string("create_b")});
}

TEST_P(contract, failing_migration_names_itself_and_changes_nothing) {
    const migration broken[] = {
        create_a, {2, "broken", "CREATE TABLE c (z BIGINT); INSERT INTO no_such_table VALUES (1)"}};
    auto failed = open_list(broken);
    ASSERT_FALSE(failed.ok());
    EXPECT_THAT(failed.error().message, HasSubstr("migration 2"));
    EXPECT_THAT(failed.error().message, HasSubstr("broken"));
    EXPECT_THAT(failed.error().message, HasSubstr("no_such_table"));

    const migration first[] = {create_a};
    ASSERT_OPENED(s, open_list(first));
    EXPECT_EQ(*s->schema_version(), 1);
    // The first statement of the failed migration was rolled back with it.
    EXPECT_FALSE(s->query("SELECT * FROM c").ok());
}

TEST_P(contract, concurrent_opens_migrate_once) {
    const migration list[] = {create_a, create_b, {3, "create_c", "CREATE TABLE c (z BIGINT)"}};
    std::latch start(2);
    std::array<std::optional<result<std::unique_ptr<store>>>, 2> opened;
    std::vector<std::thread> threads;
    for (auto& slot : opened) {
        threads.emplace_back([&] {
            start.arrive_and_wait();
            slot.emplace(open_list(list));
        });
    }
    for (auto& t : threads)
        t.join();
    for (auto& r : opened)
        ASSERT_TRUE(r->ok()) << r->error().message;
    auto& s = **opened[0];
    EXPECT_EQ(*s->schema_version(), 3);
    EXPECT_EQ(count(*s, "schema_migrations"), 3);
}

TEST_P(contract, values_round_trip_exactly) {
    const migration list[] = {values_table};
    ASSERT_OPENED(s, open_list(list));
    const std::string text = "it's \"quoted\" \\ ünïcødé ✓ 日本 $1 ? :x ;";
    const std::array<std::array<value, 4>, 6> cases = {{
        {int64_t{1}, std::numeric_limits<int64_t>::min(), 0.1, text},
        {int64_t{2}, std::numeric_limits<int64_t>::max(), 1e300, std::string()},
        {int64_t{3}, int64_t{0}, -0.0, std::string("$2")},
        {int64_t{4}, std::monostate{}, std::monostate{}, std::monostate{}},
        {int64_t{5}, int64_t{-1}, std::numeric_limits<double>::denorm_min(), std::string("x")},
        {int64_t{6}, int64_t{42}, -1.7976931348623157e308, std::string("\n\t")},
    }};
    for (const auto& c : cases) {
        auto n = s->execute("INSERT INTO v (id, i, d, t) VALUES ($1, $2, $3, $4)", c);
        ASSERT_TRUE(n.ok()) << n.error().message;
        EXPECT_EQ(*n, 1);
    }
    auto r = s->query("SELECT id, i, d, t FROM v ORDER BY id");
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_EQ(r->columns, (std::vector<std::string>{"id", "i", "d", "t"}));
    ASSERT_EQ(r->data.size(), cases.size());
    for (size_t row = 0; row < cases.size(); ++row) {
        for (size_t col = 0; col < 4; ++col) {
            const auto& want = cases[row][col];
            const auto& got = r->data[row][col];
            if (auto* d = std::get_if<double>(&want); d && *d != 0) {
                // Bit equality, not "nearly equal": the text path must lose no digit.
                ASSERT_TRUE(std::holds_alternative<double>(got)) << "row " << row;
                EXPECT_EQ(std::bit_cast<uint64_t>(std::get<double>(got)),
                          std::bit_cast<uint64_t>(*d))
                    << "row " << row << ": " << std::get<double>(got);
            } else if (d) {
                // SQLite writes integral values of a REAL column to disk as integers, so a
                // stored -0.0 reads back as 0.0; the sign survives binding (tested below).
                EXPECT_EQ(got, value{0.0}) << "row " << row;
            } else {
                EXPECT_EQ(got, want) << "row " << row << " col " << col;
            }
        }
    }
}

TEST_P(contract, bound_values_come_back_from_select) {
    ASSERT_OPENED(s, open_default());
    const std::array<value, 6> params = {std::numeric_limits<int64_t>::min(),
                                         0.1,
                                         -0.0,
                                         1e300,
                                         std::string("a'b $1"),
                                         std::monostate{}};
    auto r = s->query("SELECT $1 AS i, $2 AS d, $3 AS z, $4 AS e, $5 AS t, $6 AS n", params);
    ASSERT_TRUE(r.ok()) << r.error().message;
    ASSERT_EQ(r->data.size(), 1u);
    EXPECT_EQ(r->data[0], std::vector<value>(params.begin(), params.end()));
    ASSERT_TRUE(std::holds_alternative<double>(r->data[0][2]));
    EXPECT_TRUE(std::signbit(std::get<double>(r->data[0][2])));
}

TEST_P(contract, parameters_bind_by_number_not_position) {
    const migration list[] = {values_table};
    ASSERT_OPENED(s, open_list(list));
    const std::array<value, 3> params = {int64_t{10}, std::string("ten"), int64_t{1}};
    ASSERT_TRUE(s->execute("INSERT INTO v (t, id, i) VALUES ($2, $3, $1)", params).ok());
    auto r = s->query("SELECT $2 AS b, id, i, t FROM v WHERE i = $1 AND id = $1 / $1",
                      std::array<value, 2>{int64_t{10}, std::string("two")});
    ASSERT_TRUE(r.ok()) << r.error().message;
    ASSERT_EQ(r->data.size(), 1u);
    EXPECT_EQ(r->data[0], (std::vector<value>{std::string("two"), int64_t{1}, int64_t{10},
                                              std::string("ten")}));
}

TEST_P(contract, transaction_commits_when_body_succeeds) {
    ASSERT_OPENED(s, open_default());
    auto ok = s->transaction([](store& tx) -> status {
        for (int64_t i = 0; i < 3; ++i) {
            const std::array<value, 2> p = {"k" + std::to_string(i), i};
            auto n = tx.execute("INSERT INTO settings VALUES ($1, 'v', $2)", p);
            if (!n) return n.error();
        }
        return {};
    });
    ASSERT_TRUE(ok.ok()) << ok.error().message;
    EXPECT_EQ(count(*s, "settings"), 3);
}

TEST_P(contract, transaction_rolls_back_when_body_fails) {
    ASSERT_OPENED(s, open_default());
    auto failed = s->transaction([](store& tx) -> status {
        auto n = tx.execute("INSERT INTO settings VALUES ('a', 'v', 1)");
        if (!n) return n.error();
        // A nested transaction joins the outer one, so its write is rolled back too.
        auto inner = tx.transaction([](store& tx2) -> status {
            auto m = tx2.execute("INSERT INTO settings VALUES ('b', 'v', 1)");
            if (!m) return m.error();
            return {};
        });
        if (!inner) return inner;
        return make_error("test_abort", "stop here");
    });
    ASSERT_FALSE(failed.ok());
    EXPECT_EQ(failed.error().code, "test_abort");
    EXPECT_EQ(count(*s, "settings"), 0);
    // The store is usable after a rollback.
    EXPECT_TRUE(s->execute("INSERT INTO settings VALUES ('c', 'v', 1)").ok());
    EXPECT_EQ(count(*s, "settings"), 1);
}

TEST_P(contract, execute_returns_rows_affected) {
    ASSERT_OPENED(s, open_default());
    auto created = s->execute("CREATE TABLE t (x BIGINT)");
    ASSERT_TRUE(created.ok()) << created.error().message;
    EXPECT_EQ(*created, 0);
    EXPECT_EQ(*s->execute("INSERT INTO t VALUES (1), (2), (3)"), 3);
    EXPECT_EQ(*s->execute("UPDATE t SET x = x + 10 WHERE x > 1"), 2);
    EXPECT_EQ(*s->execute("UPDATE t SET x = 0 WHERE x > 100"), 0);
    EXPECT_EQ(*s->execute("DELETE FROM t"), 3);
}

TEST_P(contract, sql_error_carries_the_database_message) {
    ASSERT_OPENED(s, open_default());
    auto r = s->query("SELECT * FROM no_such_table");
    ASSERT_FALSE(r.ok());
    EXPECT_THAT(r.error().message, HasSubstr("no_such_table"));
    EXPECT_THAT(r.error().message, HasSubstr(std::string(s->backend())));

    ASSERT_TRUE(s->execute("INSERT INTO settings VALUES ('k', 'v', 1)").ok());
    auto dup = s->execute("INSERT INTO settings VALUES ('k', 'w', 2)");
    ASSERT_FALSE(dup.ok());
    EXPECT_EQ(dup.error().code, "conflict");
    EXPECT_TRUE(s->ping().ok());
}

TEST_P(contract, data_survives_reopening) {
    {
        ASSERT_OPENED(s, open_default());
        const std::array<value, 2> p = {std::string("site.name"), std::string("Plant 7")};
        ASSERT_TRUE(s->execute("INSERT INTO settings VALUES ($1, $2, 0)", p).ok());
    }
    ASSERT_OPENED(s, open_default());
    auto r = s->query("SELECT value FROM settings WHERE key = 'site.name'");
    ASSERT_TRUE(r.ok()) << r.error().message;
    ASSERT_EQ(r->data.size(), 1u);
    EXPECT_EQ(r->data[0][0], value{std::string("Plant 7")});
}

TEST_P(contract, concurrent_writers_lose_nothing) {
    ASSERT_OPENED(s, open_default());
    constexpr int threads = 4, per_thread = 50;
    std::latch start(threads);
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t) {
        pool.emplace_back([&, t] {
            start.arrive_and_wait();
            for (int i = 0; i < per_thread; ++i) {
                const std::array<value, 2> p = {std::to_string(t) + "/" + std::to_string(i),
                                                int64_t{i}};
                auto insert = [&](store& st) {
                    return st.execute("INSERT INTO settings VALUES ($1, 'v', $2)", p);
                };
                // Half through transaction(), so plain calls interleave with held locks.
                status ok;
                if (i % 2) {
                    ok = s->transaction([&](store& tx) -> status {
                        auto n = insert(tx);
                        return n ? status{} : status{n.error()};
                    });
                } else if (auto n = insert(*s); !n) {
                    ok = n.error();
                }
                EXPECT_TRUE(ok.ok()) << ok.error().message;
            }
        });
    }
    for (auto& t : pool)
        t.join();
    EXPECT_EQ(count(*s, "settings"), threads * per_thread);
}

}  // namespace
}  // namespace clisonix::meta::testing
