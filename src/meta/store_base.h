// Private to src/meta: what the two backends share and what open() needs from them.
#pragma once

#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <utility>

#include "meta/meta.h"

namespace clisonix::meta::detail {

// A backend: one connection, guarded by `_mutex`, which a transaction holds throughout.
class store_base : public store {
public:
    status transaction(const std::function<status(store& tx)>& body) final;
    result<int> schema_version() final;

    // Runs one or more statements without parameters (migrations, BEGIN/COMMIT).
    virtual status execute_script(std::string_view sql) = 0;
    // The statement that takes the database-wide migration lock inside a transaction;
    // empty when BEGIN already takes it.
    virtual std::string_view migration_lock_sql() const = 0;

protected:
    virtual std::string_view begin_sql() const = 0;
    bool in_transaction() const { return _tx_depth > 0; }

    // Recursive so that a transaction body can call query()/execute() on the same store.
    std::recursive_mutex _mutex;

private:
    int _tx_depth = 0;
};

result<std::unique_ptr<store_base>> open_sqlite(const std::string& path);
result<std::unique_ptr<store_base>> open_postgres(std::string_view url);

// Where the password sits in a URL's user info ("postgres://u:PW@h/db"): {offset, length},
// length 0 when there is none.
std::pair<size_t, size_t> url_password(std::string_view url);

// Applies the migrations of `list` that `s` has not seen yet, each in its own transaction.
status apply_migrations(store_base& s, std::span<const migration> list);

}  // namespace clisonix::meta::detail
