// The change feed: LISTEN clisonix_meta on a PostgreSQL connection of its own.
#include <libpq-fe.h>
#include <poll.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <set>
#include <thread>

#include "meta/meta.h"
#include "meta/store_base.h"

namespace clisonix::meta {

namespace {

// SQLite: one process, whose own changes its modules already apply to their caches.
class silent_feed final : public change_feed {
public:
    void subscribe(std::vector<std::string>, handler) override {}
};

class postgres_feed final : public change_feed {
public:
    postgres_feed(std::string url, std::function<void(const std::string&)> on_event)
        : _url(std::move(url)), _on_event(std::move(on_event)) {
        _thread = std::thread([this] { run(); });
    }
    ~postgres_feed() override {
        {
            std::lock_guard lock(_mutex);
            _stopping = true;
        }
        _wake.notify_all();
        _thread.join();
        if (_conn) PQfinish(_conn);
    }

    void subscribe(std::vector<std::string> tables, handler invalidate) override {
        std::lock_guard lock(_mutex);
        _subscribers.push_back(
            {std::set<std::string>(tables.begin(), tables.end()), std::move(invalidate)});
    }

private:
    struct subscriber {
        std::set<std::string> tables;
        handler invalidate;
    };

    bool stopping() {
        std::lock_guard lock(_mutex);
        return _stopping;
    }

    void report(const std::string& event) {
        if (_on_event) _on_event(event);
    }

    // Runs the handlers of the subscribers naming any of `tables` (all of them for nullptr),
    // each once, outside the mutex so that a handler may subscribe.
    void dispatch(const std::set<std::string>* tables) {
        std::vector<handler> due;
        {
            std::lock_guard lock(_mutex);
            for (const auto& s : _subscribers) {
                bool named = tables == nullptr;
                for (const auto& t : s.tables)
                    named = named || (tables->contains(t));
                if (named) due.push_back(s.invalidate);
            }
        }
        for (const auto& h : due)
            h();
    }

    bool connect() {
        const char* keys[] = {"connect_timeout",
                              "keepalives",
                              "keepalives_idle",
                              "keepalives_interval",
                              "keepalives_count",
                              "dbname",
                              nullptr};
        // Keepalives: a peer gone silent (a partition, not a closed socket) is noticed in
        // about 10 s rather than after the kernel's two hours.
        const char* values[] = {"5", "1", "5", "2", "3", _url.c_str(), nullptr};
        _conn = PQconnectdbParams(keys, values, 1);
        if (_conn && PQstatus(_conn) == CONNECTION_OK) {
            PGresult* r = PQexec(_conn, ("LISTEN " + std::string(change_channel)).c_str());
            const bool listening = PQresultStatus(r) == PGRES_COMMAND_OK;
            PQclear(r);
            if (listening) return true;
        }
        if (_conn) PQfinish(_conn);
        _conn = nullptr;
        return false;
    }

    void run() {
        bool was_connected = false;
        while (!stopping()) {
            if (!_conn) {
                if (!connect()) {
                    if (was_connected) report("change feed: reconnecting to " + redact_url(_url));
                    was_connected = false;
                    std::unique_lock lock(_mutex);
                    _wake.wait_for(lock, std::chrono::seconds(1), [&] { return _stopping; });
                    continue;
                }
                report("change feed: listening on " + redact_url(_url));
                was_connected = true;
                // Whatever changed while nobody listened is unknown: everything is stale.
                dispatch(nullptr);
            }
            pollfd p{PQsocket(_conn), POLLIN, 0};
            // Short enough for stop() to be prompt; notices wake the poll at once.
            if (::poll(&p, 1, 200) < 0) continue;
            if (!PQconsumeInput(_conn) || PQstatus(_conn) != CONNECTION_OK) {
                report("change feed: connection lost; caches will be reloaded on reconnect");
                PQfinish(_conn);
                _conn = nullptr;
                continue;
            }
            std::set<std::string> tables;
            while (PGnotify* n = PQnotifies(_conn)) {
                tables.insert(n->extra);
                PQfreemem(n);
            }
            if (!tables.empty()) dispatch(&tables);
        }
    }

    const std::string _url;
    const std::function<void(const std::string&)> _on_event;
    PGconn* _conn = nullptr;  // the feed thread's own
    std::mutex _mutex;
    std::condition_variable _wake;
    bool _stopping = false;                // guarded by _mutex
    std::vector<subscriber> _subscribers;  // guarded by _mutex
    std::thread _thread;
};

}  // namespace

result<std::unique_ptr<change_feed>> open_change_feed(
    std::string_view url, std::function<void(const std::string& event)> on_event) {
    if (url.starts_with("postgres://") || url.starts_with("postgresql://"))
        return std::unique_ptr<change_feed>(
            std::make_unique<postgres_feed>(std::string(url), std::move(on_event)));
    return std::unique_ptr<change_feed>(std::make_unique<silent_feed>());
}

}  // namespace clisonix::meta
