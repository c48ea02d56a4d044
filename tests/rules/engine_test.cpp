// The streaming engine on synthetic batches and a real SQLite metadata store: when alarms
// fire and clear, what they record, and that a restart picks up where it left off.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <boost/json.hpp>
#include <map>
#include <mutex>
#include <thread>

#include "rules/backend.h"
#include "rules/rules.h"
#include "support/test_support.h"

namespace clisonix::rules {

namespace {

constexpr int64_t t0 = 1'704'067'200'000;  // 2024-01-01T00:00:00Z, ms
constexpr int64_t minute = 60'000;

struct recording_sink : alarm_sink {
    std::vector<std::pair<std::vector<std::string>, std::string>> enqueued;
    int wakes = 0;
    bool failing = false;
    status enqueue(meta::store&, const std::vector<std::string>& channels,
                   std::string_view event_json) override {
        if (failing) return make_error("unavailable", "outbox down");
        enqueued.emplace_back(channels, std::string(event_json));
        return {};
    }
    void wake() override { ++wakes; }
    status validate_channels(const std::vector<std::string>& names) override {
        for (const auto& n : names)
            if (n != "ops" && n != "oncall")
                return make_error("invalid_argument", "no channel named " + n);
        return {};
    }
};

// The suite's name, so that the SQLite and PostgreSQL runs are told apart in CTest.
#ifndef RULES_ENGINE_FIXTURE
#define RULES_ENGINE_FIXTURE rules_engine
#endif

class RULES_ENGINE_FIXTURE : public ::testing::Test {
protected:
    void SetUp() override { open_engine(); }

    void open_engine() {
        _engine.reset();
        if (!_store) {
            auto s = open_test_store(_dir.str());
            ASSERT_TRUE(s.ok()) << s.error().message;
            _backend = std::move(*s);
            _store = _backend.store.get();
        }
        options o;
        o.clock = [this] { return _now.load(); };
        o.no_data_interval = std::chrono::milliseconds(0);
        // The forecast a test scripts: a plain function of the query, recorded.
        o.forecast = [this](const forecast_query& q) -> result<forecast_answer> {
            std::lock_guard lock(_mutex);
            _queries.push_back(q);
            if (!_forecast) return make_error("unavailable", "no forecast in this test");
            return _forecast(q);
        };
        _engine = std::make_unique<engine>(*_store, _hooks, &_sink, o);
        _engine->add_alarm_listener([this](const std::string& ev) {
            std::lock_guard lock(_mutex);
            auto doc = boost::json::parse(ev).as_object();
            _events.push_back(std::string(doc.at("event").as_string()));
        });
        auto started = _engine->start();
        ASSERT_TRUE(started.ok()) << started.error().message;
    }

    rule make(std::string name, std::string cond, std::string clear = {},
              std::string device = "pump-1") {
        rule r;
        r.name = std::move(name);
        r.scope = scope_kind::device;
        r.scope_value = std::move(device);
        r.severity = "major";
        r.condition = std::move(cond);
        r.clear = std::move(clear);
        return r;
    }

    int64_t add(rule r) {
        auto made = _engine->create_rule(std::move(r));
        EXPECT_TRUE(made.ok()) << made.error().message;
        return made.ok() ? made->id : 0;
    }

    void write(std::string_view device, std::string_view metric, int64_t ts_ms, double v) {
        storage::write_batch b;
        auto s = b.series("telemetry,device=" + std::string(device) + " " + std::string(metric),
                          storage::value_type::float64);
        ASSERT_TRUE(s.ok());
        b.add(*s, ts_ms * 1'000'000, v);
        _engine->observe(b);
    }

    std::vector<alarm> alarms(alarm_filter f = {}) {
        auto page = _engine->list_alarms(f);
        EXPECT_TRUE(page.ok());
        return page.ok() ? page->alarms : std::vector<alarm>{};
    }

    std::vector<std::string> events() {
        std::lock_guard lock(_mutex);
        return _events;
    }

    testing::temp_dir _dir{"clisonix-rules"};
    test_store _backend;
    meta::store* _store = nullptr;
    std::atomic<int64_t> _now{t0};
    recording_sink _sink;
    scope_hooks _hooks;
    std::unique_ptr<engine> _engine;
    std::mutex _mutex;
    std::vector<std::string> _events;
    std::function<result<forecast_answer>(const forecast_query&)> _forecast;
    std::vector<forecast_query> _queries;

    size_t queries() {
        std::lock_guard lock(_mutex);
        return _queries.size();
    }
};

TEST_F(RULES_ENGINE_FIXTURE,
       threshold_fires_once_after_the_duration_and_clears_once_with_hysteresis) {
    auto r = make("pump hot", "temperature > 80 for 5m", "temperature < 75");
    r.notify = {"ops"};
    add(r);
    // One point a minute: above 80 from minute 1; held 5 minutes at minute 6.
    std::vector<double> values = {70, 81, 82, 83, 84, 85, 86, 87, 78, 81, 77, 76, 74, 73};
    for (size_t i = 0; i < values.size(); ++i) {
        write("pump-1", "temperature", t0 + static_cast<int64_t>(i) * minute, values[i]);
        if (i == 5) {
            EXPECT_TRUE(alarms().empty()) << "not before five minutes";
        }
        if (i == 6) {
            auto a = alarms();
            ASSERT_EQ(a.size(), 1u);
            EXPECT_EQ(a[0].status, "active");
            EXPECT_EQ(a[0].first_at, t0 + 6 * minute);
            EXPECT_EQ(a[0].value, 86);
            EXPECT_EQ(a[0].message, "temperature 86 > 80 for 5m");
            EXPECT_EQ(a[0].device, "pump-1");
            EXPECT_EQ(a[0].rule_name, "pump hot");
            EXPECT_EQ(a[0].severity, "major");
        }
        if (i == 11) {
            EXPECT_EQ(alarms()[0].status, "active") << "77, 76 are inside the band";
        }
    }
    auto a = alarms();
    ASSERT_EQ(a.size(), 1u);
    EXPECT_EQ(a[0].status, "cleared");
    EXPECT_EQ(a[0].count, 1);
    EXPECT_EQ(a[0].cleared_by, "system");
    EXPECT_EQ(events(), (std::vector<std::string>{"alarm.created", "alarm.cleared"}));
    // Each change went to the sink inside its transaction, and the sink was woken after.
    ASSERT_EQ(_sink.enqueued.size(), 2u);
    EXPECT_EQ(_sink.enqueued[0].first, std::vector<std::string>{"ops"});
    auto ev = boost::json::parse(_sink.enqueued[0].second).as_object();
    EXPECT_EQ(ev.at("event"), "alarm.created");
    EXPECT_EQ(ev.at("alarm").at("rule"), "pump hot");
    EXPECT_EQ(ev.at("alarm").at("count"), 1);
    EXPECT_EQ(_sink.wakes, 2);
}

// A second engine on the same store plays another process sharing it: its rules reach this
// engine at reload_rules(), and a changed rule keeps the alarm this engine has open.
TEST_F(RULES_ENGINE_FIXTURE, reload_takes_another_engines_rules_and_keeps_open_alarms) {
    options o;
    o.clock = [this] { return _now.load(); };
    o.no_data_interval = std::chrono::milliseconds(0);
    engine other(*_store, _hooks, &_sink, o);
    ASSERT_TRUE(other.start().ok());
    auto made = other.create_rule(make("hot", "temperature > 80", "temperature < 75"));
    ASSERT_TRUE(made.ok()) << made.error().message;

    write("pump-1", "temperature", _now += minute, 90);
    EXPECT_TRUE(alarms().empty()) << "not heard of yet";
    ASSERT_TRUE(_engine->reload_rules().ok());
    write("pump-1", "temperature", _now += minute, 91);
    auto a = alarms();
    ASSERT_EQ(a.size(), 1u);
    EXPECT_EQ(a[0].severity, "major");
    EXPECT_EQ(a[0].count, 1);

    _now += minute;
    auto changed = make("hot", "temperature > 85", "temperature < 75");
    changed.severity = "critical";
    ASSERT_TRUE(other.update_rule(made->id, changed).ok());
    ASSERT_TRUE(_engine->reload_rules().ok());
    // Below the new threshold, above the clear: the open alarm neither clears nor repeats.
    write("pump-1", "temperature", _now += minute, 83);
    write("pump-1", "temperature", _now += minute, 95);
    a = alarms();
    ASSERT_EQ(a.size(), 1u);
    EXPECT_EQ(a[0].status, "active");
    EXPECT_EQ(a[0].count, 2) << "the changed rule went on with the open alarm";
    EXPECT_EQ(_engine->statistics().rules, 1u);
}

// Two engines on one store stand for two cluster nodes applying the same telemetry: each
// incident is one alarm, and each of its changes is notified once, whichever node comes
// first and however far the other lags.
TEST_F(RULES_ENGINE_FIXTURE, two_engines_on_one_store_raise_and_notify_each_incident_once) {
    options o;
    o.clock = [this] { return _now.load(); };
    o.no_data_interval = std::chrono::milliseconds(0);
    recording_sink other_sink;
    engine other(*_store, _hooks, &other_sink, o);
    ASSERT_TRUE(other.start().ok());
    std::vector<std::string> other_events;
    std::string other_status;  // the alarm's status in the other node's latest event
    other.add_alarm_listener([&](const std::string& ev) {
        auto doc = boost::json::parse(ev);
        other_events.push_back(std::string(doc.at("event").as_string()));
        other_status = doc.at("alarm").at("status").as_string();
    });
    auto hot = make("hot", "temperature > 80", "temperature < 75");
    hot.notify = {"ops"};
    add(hot);
    ASSERT_TRUE(other.reload_rules().ok());
    auto both = [&](int64_t ts, double v) {
        write("pump-1", "temperature", ts, v);
        storage::write_batch b;
        b.add(*b.series("telemetry,device=pump-1 temperature", storage::value_type::float64),
              ts * 1'000'000, v);
        other.observe(b);
    };
    auto notified = [&] {
        std::vector<std::string> out;
        for (auto* sink : {&_sink, &other_sink})
            for (const auto& [channels, ev] : sink->enqueued)
                out.push_back(
                    std::string(boost::json::parse(ev).at("event").as_string()) + " " +
                    std::to_string(
                        boost::json::parse(ev).at("alarm").at("count").to_number<int64_t>()));
        std::sort(out.begin(), out.end());
        return out;
    };

    // Side by side: created, two repeats (false, not yet clear, true again), cleared: each
    // change written and notified once, and both nodes' live listeners hear all four.
    for (double v : {90.0, 77.0, 82.0, 79.0, 83.0, 70.0})
        both(_now += minute, v);
    auto a = alarms();
    ASSERT_EQ(a.size(), 1u);
    EXPECT_EQ(a[0].count, 3);
    EXPECT_EQ(a[0].status, "cleared");
    EXPECT_EQ(notified(), (std::vector<std::string>{"alarm.cleared 3", "alarm.created 1",
                                                    "alarm.updated 2", "alarm.updated 3"}));
    EXPECT_EQ(events().size(), 4u);
    EXPECT_EQ(other_events.size(), 4u);

    // The other node lags a whole incident behind: it finds the alarm of that first point
    // made and cleared, and neither raises nor notifies it again.
    const int64_t second = _now += minute;
    write("pump-1", "temperature", second, 95);
    write("pump-1", "temperature", second + minute, 60);
    ASSERT_EQ(alarms().size(), 2u);
    auto before = notified().size();
    storage::write_batch lagging;
    auto key = lagging.series("telemetry,device=pump-1 temperature", storage::value_type::float64);
    lagging.add(*key, second * 1'000'000, 95.0);
    lagging.add(*key, (second + minute) * 1'000'000, 60.0);
    other.observe(lagging);
    EXPECT_EQ(alarms().size(), 2u) << "a replay of the same incident is not a new one";
    EXPECT_EQ(notified().size(), before);
    EXPECT_TRUE(other_sink.enqueued.size() < before) << "the lagging node notified nothing new";

    // A user clears through one node while the condition holds; the other node's next repeat
    // finds it cleared and stays quiet until the condition goes false and true again.
    _now = second + 2 * minute;
    both(_now, 99);
    ASSERT_EQ(alarms().size(), 3u);
    auto open = alarms()[0];
    ASSERT_EQ(open.status, "active");
    ASSERT_TRUE(_engine->clear(open.id, "admin").ok());
    before = notified().size();
    both(_now += minute, 98);
    EXPECT_EQ(alarms().size(), 3u);
    EXPECT_EQ(notified().size(), before) << "a repeat of a cleared alarm is no change";
    both(_now += minute, 50);
    both(_now += minute, 97);
    a = alarms();
    ASSERT_EQ(a.size(), 4u) << "false then true again: a new incident, raised once";
    EXPECT_EQ(a[0].status, "active");
    EXPECT_EQ(a[0].count, 1);

    // An acknowledgement made through one node shows in the other node's repeat event.
    ASSERT_TRUE(_engine->acknowledge(a[0].id, "shift-lead").ok());
    both(_now += minute, 77);
    both(_now += minute, 96);
    EXPECT_EQ(alarms()[0].status, "acknowledged");
    EXPECT_EQ(alarms()[0].count, 2);
    EXPECT_EQ(other_status, "acknowledged");
    both(_now += minute, 50);
    ASSERT_EQ(alarms()[0].status, "cleared");

    // A node restarted in the middle of an incident that the others raised and cleared
    // meanwhile sees only its tail: the store knows the point that cleared it, so the tail
    // raises nothing (and notifies nothing).
    const int64_t fourth = _now += minute;
    write("pump-1", "temperature", fourth, 99);
    write("pump-1", "temperature", fourth + minute, 98);
    write("pump-1", "temperature", fourth + 2 * minute, 40);
    ASSERT_EQ(alarms().size(), 5u);
    ASSERT_EQ(alarms()[0].status, "cleared");
    before = notified().size();
    recording_sink restarted_sink;
    engine restarted(*_store, _hooks, &restarted_sink, o);
    ASSERT_TRUE(restarted.start().ok());
    storage::write_batch tail;
    auto tail_key =
        tail.series("telemetry,device=pump-1 temperature", storage::value_type::float64);
    tail.add(*tail_key, (fourth + minute) * 1'000'000, 98.0);
    tail.add(*tail_key, (fourth + 2 * minute) * 1'000'000, 40.0);
    restarted.observe(tail);
    EXPECT_EQ(alarms().size(), 5u) << "the tail of a cleared incident is not a new one";
    EXPECT_TRUE(restarted_sink.enqueued.empty());
    EXPECT_EQ(notified().size(), before);
    restarted.stop();
    other.stop();
}

// A point no newer than its metric's last one changes no alarm: a cluster node replays the
// log from the last point it applied after a restart, and a write answered 503 can reach the
// log late, after newer points of its series.
TEST_F(RULES_ENGINE_FIXTURE, late_and_replayed_points_change_no_alarm) {
    auto hot = make("hot", "temperature > 80", "temperature < 75");
    hot.notify = {"ops"};
    add(hot);
    const int64_t start = _now += minute;
    write("pump-1", "temperature", start, 78);  // between the levels: neither fires nor clears
    write("pump-1", "temperature", start + minute, 90);
    write("pump-1", "temperature", start, 78);  // late: it would end the episode
    write("pump-1", "temperature", start + 2 * minute, 91);
    write("pump-1", "temperature", start + 2 * minute, 60);  // the same time again
    auto a = alarms();
    ASSERT_EQ(a.size(), 1u);
    EXPECT_EQ(a[0].count, 1);
    EXPECT_EQ(a[0].status, "active");
    EXPECT_EQ(a[0].last_at, start + minute);

    // Restarted, the engine is given the incident again from before its first point.
    open_engine();
    for (auto [ts, v] :
         {std::pair{start, 78.0}, {start + minute, 90.0}, {start + 2 * minute, 91.0}})
        write("pump-1", "temperature", ts, v);
    a = alarms();
    ASSERT_EQ(a.size(), 1u);
    EXPECT_EQ(a[0].count, 1) << "the replayed points are the same episode";

    // Newer points still repeat and clear as before.
    write("pump-1", "temperature", start + 3 * minute, 77);
    write("pump-1", "temperature", start + 4 * minute, 85);
    write("pump-1", "temperature", start + 5 * minute, 70);
    a = alarms();
    ASSERT_EQ(a.size(), 1u);
    EXPECT_EQ(a[0].count, 2);
    EXPECT_EQ(a[0].status, "cleared");
    std::vector<std::string> notified;
    for (const auto& [channels, ev] : _sink.enqueued)
        notified.emplace_back(boost::json::parse(ev).at("event").as_string());
    EXPECT_EQ(notified,
              (std::vector<std::string>{"alarm.created", "alarm.updated", "alarm.cleared"}));
}

TEST_F(RULES_ENGINE_FIXTURE, oscillation_around_the_threshold_never_fires) {
    add(make("pump hot", "temperature > 80 for 5m", "temperature < 75"));
    for (int i = 0; i < 120; ++i)
        write("pump-1", "temperature", t0 + i * 30'000, i % 2 ? 81 : 79);
    EXPECT_TRUE(alarms().empty());
    EXPECT_TRUE(events().empty());
    EXPECT_EQ(_engine->statistics().evaluations, 120u);
}

TEST_F(RULES_ENGINE_FIXTURE, repeats_count_on_the_one_open_alarm) {
    add(make("hot", "temperature > 80", "temperature < 75"));
    for (double v : {81.0, 77.0, 82.0, 79.0, 83.0, 90.0})
        write("pump-1", "temperature", _now += minute, v);
    auto a = alarms();
    ASSERT_EQ(a.size(), 1u);
    EXPECT_EQ(a[0].count, 3);
    EXPECT_EQ(a[0].value, 83);
    EXPECT_EQ(a[0].status, "active");
    EXPECT_EQ(events(),
              (std::vector<std::string>{"alarm.created", "alarm.updated", "alarm.updated"}));
    // Without a clear condition the alarm clears as soon as the condition is false.
    add(make("cold", "temperature < 10"));
    write("pump-1", "temperature", _now += minute, 5);
    write("pump-1", "temperature", _now += minute, 12);
    alarm_filter f;
    f.status = "cleared";
    ASSERT_EQ(alarms(f).size(), 2u) << "5 clears hot (below 75) and 12 clears cold";
    EXPECT_EQ(alarms(f)[0].rule_name, "cold");
}

TEST_F(RULES_ENGINE_FIXTURE, clear_after_waits_for_the_condition_to_stay_false) {
    auto r = make("hot", "temperature > 80");
    r.clear_after = "3m";
    add(r);
    write("pump-1", "temperature", t0, 81);
    write("pump-1", "temperature", t0 + minute, 70);
    write("pump-1", "temperature", t0 + 2 * minute, 70);
    write("pump-1", "temperature", t0 + 3 * minute, 70);
    EXPECT_EQ(alarms()[0].status, "active");
    write("pump-1", "temperature", t0 + 4 * minute, 70);
    EXPECT_EQ(alarms()[0].status, "cleared");
}

TEST_F(RULES_ENGINE_FIXTURE, rate_of_change) {
    add(make("heating fast", "temperature rises more than 2 per minute"));
    add(make("cooling fast", "temperature falls more than 2 per minute"));
    for (double v : {10.0, 11.0, 12.0, 15.0, 16.0, 12.0})
        write("pump-1", "temperature", _now += 30'000, v);
    // 10 -> 11 in 30 s is 2/min (not more); 12 -> 15 is 6/min; 16 -> 12 falls 8/min.
    auto a = alarms();
    ASSERT_EQ(a.size(), 2u);
    EXPECT_EQ(a[1].rule_name, "heating fast");
    EXPECT_EQ(a[1].value, 6);
    EXPECT_EQ(a[1].status, "cleared");
    EXPECT_EQ(a[1].message, "temperature rises more than 2 per minute (6 per minute)");
    EXPECT_EQ(a[0].rule_name, "cooling fast");
    EXPECT_EQ(a[0].value, -8);
    EXPECT_EQ(a[0].status, "active");
}

TEST_F(RULES_ENGINE_FIXTURE, anomaly_score_above_a_level_for_n_points) {
    add(make("odd", "anomaly(temperature) > 0.8 for 3 points"));
    for (double v : {0.9, 0.95, 0.5, 0.9, 0.85})
        write("pump-1", "temperature.anomaly", _now += 1000, v);
    EXPECT_TRUE(alarms().empty());
    write("pump-1", "temperature.anomaly", _now += 1000, 0.99);
    auto a = alarms();
    ASSERT_EQ(a.size(), 1u);
    EXPECT_EQ(a[0].value, 0.99);
    EXPECT_EQ(a[0].message, "anomaly(temperature) 0.99 > 0.8 for 3 points");
}

TEST_F(RULES_ENGINE_FIXTURE, health_alarm_names_the_top_contributors_of_its_row) {
    add(make("unhealthy", "health() > 0.5 for 2 points"));
    // Rows as the scoring thread writes them: contributions first, then the score.
    auto row = [&](double vib, double cur, double temp, double rpm, double score) {
        _now += 1000;
        write("pump-1", "health.vibration_rms", _now, vib);
        write("pump-1", "health.current", _now, cur);
        write("pump-1", "health.temperature", _now, temp);
        write("pump-1", "health.rpm", _now, rpm);
        write("pump-1", "health", _now, score);
    };
    row(0.05, 0.1, 0.0, 0.0, 0.15);
    row(0.45, 0.1, 0.0, 0.0, 0.55);  // abnormal, one point
    EXPECT_TRUE(alarms().empty());
    row(0.6, 0.2, 0.015, 0.005, 0.82);  // the second abnormal row: its own contributions are named
    auto a = alarms();
    ASSERT_EQ(a.size(), 1u);
    EXPECT_EQ(a[0].value, 0.82);
    // At most three, largest first, none under 0.01.
    EXPECT_EQ(a[0].message,
              "health() 0.82 > 0.5 for 2 points; mostly vibration_rms (0.60), current (0.20), "
              "temperature (0.01)");
}

TEST_F(RULES_ENGINE_FIXTURE, no_data_by_the_timer_with_an_injected_clock) {
    add(make("silent", "no data for 10m"));
    add(make("no temperature", "no data from temperature for 10m"));
    _now = t0 + 5 * minute;
    _engine->check_no_data();
    EXPECT_TRUE(alarms().empty());
    write("pump-1", "pressure", t0, 1);  // data, but not temperature
    _now = t0 + 10 * minute;
    _engine->check_no_data();
    auto a = alarms();
    ASSERT_EQ(a.size(), 1u);
    EXPECT_EQ(a[0].rule_name, "no temperature");
    EXPECT_EQ(a[0].message, "no data from temperature for 10m (600 s without data)");
    _now = t0 + 16 * minute;
    _engine->check_no_data();
    _engine->check_no_data();
    a = alarms();
    ASSERT_EQ(a.size(), 2u) << "one alarm per rule, not one per tick";
    EXPECT_EQ(a[0].rule_name, "silent");
    write("pump-1", "temperature", t0 + 16 * minute, 20);
    alarm_filter open;
    open.status = "open";
    EXPECT_TRUE(alarms(open).empty()) << "data clears both";
}

TEST_F(RULES_ENGINE_FIXTURE, the_timer_thread_checks_no_data_by_itself) {
    options o;
    o.clock = [this] { return _now.load(); };
    o.no_data_interval = std::chrono::milliseconds(10);
    _engine = std::make_unique<engine>(*_store, _hooks, &_sink, o);
    ASSERT_TRUE(_engine->start().ok());
    add(make("silent", "no data for 1m"));
    _now = t0 + 2 * minute;
    for (int i = 0; i < 500 && alarms().empty(); ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    ASSERT_EQ(alarms().size(), 1u);
    EXPECT_EQ(alarms()[0].first_at, t0 + 2 * minute);
    _engine->stop();
}

TEST_F(RULES_ENGINE_FIXTURE, expression_over_metrics_with_a_windowed_mean) {
    add(make("starved", "mean(flow, 5m) < 2 and pressure > 1"));
    write("pump-1", "flow", t0, 1);
    EXPECT_EQ(_engine->statistics().evaluations, 0u) << "pressure not seen yet";
    write("pump-1", "pressure", t0 + 1000, 0.5);
    write("pump-1", "flow", t0 + minute, 5);  // mean 3
    write("pump-1", "pressure", t0 + minute + 1000, 2);
    EXPECT_TRUE(alarms().empty());
    write("pump-1", "flow", t0 + 5 * minute, 1);  // window (0, 5m]: 5, 1 -> 3
    EXPECT_TRUE(alarms().empty());
    write("pump-1", "flow", t0 + 7 * minute, 0.5);  // 1, 0.5 -> 0.75
    auto a = alarms();
    ASSERT_EQ(a.size(), 1u);
    EXPECT_EQ(a[0].value, 0.75);
    EXPECT_EQ(a[0].message, "mean(flow, 5m) 0.75 < 2 and pressure > 1");
}

TEST_F(RULES_ENGINE_FIXTURE, other_devices_and_scopes) {
    _hooks.type_of = [](std::string_view d) {
        return std::string(d.starts_with("pump") ? "pump" : "fan");
    };
    _hooks.devices_under = [](std::string_view asset) {
        return asset == "line-2" ? std::vector<std::string>{"fan-7", "pump-9"}
                                 : std::vector<std::string>{};
    };
    open_engine();
    auto by_type = make("pumps hot", "temperature > 80");
    by_type.scope = scope_kind::device_type;
    by_type.scope_value = "pump";
    add(by_type);
    auto by_asset = make("line hot", "temperature > 90");
    by_asset.scope = scope_kind::asset;
    by_asset.scope_value = "line-2";
    add(by_asset);
    for (auto d : {"pump-1", "pump-9", "fan-7", "fan-8"})
        write(d, "temperature", t0, 95);
    auto a = alarms();
    ASSERT_EQ(a.size(), 4u);
    std::multiset<std::string> seen;
    for (const auto& x : a)
        seen.insert(x.rule_name + "/" + x.device);
    EXPECT_EQ(seen, (std::multiset<std::string>{"pumps hot/pump-1", "pumps hot/pump-9",
                                                "line hot/pump-9", "line hot/fan-7"}));
    alarm_filter f;
    f.asset = "line-2";
    EXPECT_EQ(_engine->list_alarms(f)->total, 3);
    f.asset = "";
    f.device = "pump-9";
    EXPECT_EQ(_engine->list_alarms(f)->total, 2);
    f = {};
    f.limit = 1;
    f.offset = 1;
    auto page = _engine->list_alarms(f);
    EXPECT_EQ(page->total, 4);
    ASSERT_EQ(page->alarms.size(), 1u);
    EXPECT_EQ(page->alarms[0].id, a[1].id);
}

TEST_F(RULES_ENGINE_FIXTURE, no_data_by_device_type_and_asset) {
    _hooks.type_of = [](std::string_view d) {
        return std::string(d.starts_with("pump") ? "pump" : "fan");
    };
    _hooks.devices_under = [](std::string_view asset) {
        return asset == "line-2" ? std::vector<std::string>{"fan-7"} : std::vector<std::string>{};
    };
    open_engine();
    auto pumps = make("pump silent", "no data for 10m");
    pumps.scope = scope_kind::device_type;
    pumps.scope_value = "pump";
    add(pumps);
    auto line = make("line silent", "no data for 10m");
    line.scope = scope_kind::asset;
    line.scope_value = "line-2";
    add(line);
    write("pump-1", "temperature", t0, 1);  // seen at t0 (engine clock)
    write("fan-8", "temperature", t0, 1);
    _now = t0 + 10 * minute;
    _engine->check_no_data();
    std::multiset<std::string> seen;
    for (const auto& a : alarms())
        seen.insert(a.rule_name + "/" + a.device);
    // fan-7 was never seen: it counts from the engine's start.
    EXPECT_EQ(seen, (std::multiset<std::string>{"pump silent/pump-1", "line silent/fan-7"}));
}

TEST_F(RULES_ENGINE_FIXTURE, no_data_by_device_type_watches_registered_devices_never_seen) {
    // pump-2 went silent 20 minutes before the server started: the registry knows it and its
    // last data, the data stream never showed it to the engine. pump-3 is registered and has
    // never sent anything: its silence counts from when the rule was saved, not from before.
    _hooks.type_of = [](std::string_view d) {
        return std::string(d.starts_with("pump") ? "pump" : "fan");
    };
    _hooks.devices_of_type = [](std::string_view type) {
        return type == "pump" ? std::vector<std::string>{"pump-1", "pump-2", "pump-3"}
                              : std::vector<std::string>{"fan-1"};
    };
    _hooks.last_seen = [](std::string_view d) -> std::optional<int64_t> {
        if (d == "pump-2") return t0 - 20 * minute;
        return std::nullopt;
    };
    open_engine();
    _now = t0 + 5 * minute;
    auto pumps = make("pump silent", "no data for 10m");
    pumps.scope = scope_kind::device_type;
    pumps.scope_value = "pump";
    add(pumps);
    write("pump-1", "temperature", _now, 1);
    // Late anomaly scores and health of pump-2's old points are not data from pump-2.
    write("pump-2", "temperature.anomaly", _now, 0.1);
    write("pump-2", "health", _now, 0.1);
    auto fired = [&] {
        std::multiset<std::string> seen;
        for (const auto& a : alarms())
            seen.insert(a.rule_name + "/" + a.device);
        return seen;
    };
    _now = t0 + 6 * minute;
    _engine->check_no_data();
    EXPECT_EQ(fired(), (std::multiset<std::string>{"pump silent/pump-2"}));
    _now = t0 + 15 * minute;
    _engine->check_no_data();
    EXPECT_EQ(fired(), (std::multiset<std::string>{"pump silent/pump-1", "pump silent/pump-2",
                                                   "pump silent/pump-3"}));
}

TEST_F(RULES_ENGINE_FIXTURE, filters_by_time_severity_and_status) {
    auto minor = make("warm", "temperature > 50");
    minor.severity = "minor";
    add(minor);
    add(make("hot", "temperature > 80"));
    write("pump-1", "temperature", t0, 60);                // warm fires at t0
    write("pump-1", "temperature", t0 + 10 * minute, 90);  // hot fires at 10m
    write("pump-1", "temperature", t0 + 20 * minute, 40);  // both clear
    write("pump-1", "temperature", t0 + 30 * minute, 55);  // warm again at 30m
    alarm_filter f;
    EXPECT_EQ(_engine->list_alarms(f)->total, 3);
    f.from = t0 + 25 * minute;  // alarms whose [first_at, last_at] reaches 25m or later
    EXPECT_EQ(_engine->list_alarms(f)->total, 1);
    f.from = t0 + 5 * minute;
    f.to = t0 + 15 * minute;
    auto page = _engine->list_alarms(f);
    ASSERT_EQ(page->total, 1);
    EXPECT_EQ(page->alarms[0].rule_name, "hot");
    f = {};
    f.severity = "minor";
    EXPECT_EQ(_engine->list_alarms(f)->total, 2);
    f.status = "active";
    EXPECT_EQ(_engine->list_alarms(f)->total, 1);
    f.status = "cleared";
    EXPECT_EQ(_engine->list_alarms(f)->total, 1);
}

TEST_F(RULES_ENGINE_FIXTURE, an_alarm_storm_commits_once_per_batch) {
    auto r = make("hot", "temperature > 80");
    r.scope = scope_kind::device_type;
    r.scope_value = "pump";
    r.notify = {"ops"};
    _hooks.type_of = [](std::string_view) { return std::string("pump"); };
    open_engine();
    add(r);
    storage::write_batch b;
    for (int d = 0; d < 300; ++d) {
        auto s = b.series("telemetry,device=p" + std::to_string(d) + " temperature",
                          storage::value_type::float64);
        b.add(*s, t0 * 1'000'000, 90);        // fires
        b.add(*s, (t0 + 1) * 1'000'000, 70);  // clears, in the same batch
        b.add(*s, (t0 + 2) * 1'000'000, 95);  // fires again: a second alarm
    }
    _engine->observe(b);
    alarm_filter f;
    f.limit = 1000;
    EXPECT_EQ(_engine->list_alarms(f)->total, 600);
    f.status = "cleared";
    EXPECT_EQ(_engine->list_alarms(f)->total, 300);
    EXPECT_EQ(_sink.enqueued.size(), 900u);
    EXPECT_EQ(_sink.wakes, 1) << "one transaction, one wake";
    EXPECT_EQ(events().size(), 900u);
    // The open alarms know their ids: clearing one by hand works.
    f.status = "active";
    auto open = _engine->list_alarms(f)->alarms;
    ASSERT_EQ(open.size(), 300u);
    write("p7", "temperature", t0 + 3, 60);
    EXPECT_EQ(_engine->list_alarms(f)->total, 299);
}

TEST_F(RULES_ENGINE_FIXTURE, a_failed_commit_changes_nothing_and_the_next_point_retries) {
    auto r = make("hot", "temperature > 80");
    r.notify = {"ops"};
    add(r);
    _sink.failing = true;
    write("pump-1", "temperature", t0, 90);
    EXPECT_TRUE(alarms().empty()) << "the alarm rolled back with its notification";
    EXPECT_TRUE(events().empty());
    _sink.failing = false;
    write("pump-1", "temperature", t0 + 1000, 91);
    auto a = alarms();
    ASSERT_EQ(a.size(), 1u);
    EXPECT_EQ(a[0].count, 1);
    EXPECT_EQ(a[0].first_at, t0 + 1000);
    EXPECT_EQ(events(), std::vector<std::string>{"alarm.created"});
}

TEST_F(RULES_ENGINE_FIXTURE, lifecycle_ack_clear_comments_and_restart) {
    auto id = add(make("hot", "temperature > 80", "temperature < 75"));
    write("pump-1", "temperature", t0, 85);
    auto a = alarms();
    ASSERT_EQ(a.size(), 1u);
    _now = t0 + 1000;
    auto acked = _engine->acknowledge(a[0].id, "alice");
    ASSERT_TRUE(acked.ok());
    EXPECT_EQ(acked->status, "acknowledged");
    EXPECT_EQ(acked->acked_by, "alice");
    EXPECT_EQ(acked->acked_at, t0 + 1000);
    EXPECT_EQ(_engine->acknowledge(a[0].id, "bob").error().code, "conflict");
    auto c = _engine->add_comment(a[0].id, "alice", "looking at it");
    ASSERT_TRUE(c.ok());
    EXPECT_EQ(_engine->get_alarm(a[0].id)->comments.size(), 1u);
    EXPECT_EQ(_engine->get_alarm(999).error().code, "not_found");

    // A restart: the open alarm is picked up, not repeated while the condition holds.
    auto before = _engine->get_alarm(a[0].id);
    open_engine();
    write("pump-1", "temperature", t0 + 2000, 86);
    auto after = _engine->get_alarm(a[0].id);
    EXPECT_EQ(alarm_json(*after), alarm_json(*before));
    write("pump-1", "temperature", t0 + 3000, 70);
    auto cleared = _engine->get_alarm(a[0].id);
    EXPECT_EQ(cleared->status, "cleared");
    EXPECT_EQ(cleared->acked_by, "alice") << "acknowledged, then cleared";

    // Cleared by hand before anyone acknowledged it: no new alarm until the condition has
    // been false again.
    write("pump-1", "temperature", t0 + 4000, 90);
    auto second = alarms()[0];
    EXPECT_NE(second.id, a[0].id);
    auto by_hand = _engine->clear(second.id, "bob");
    ASSERT_TRUE(by_hand.ok());
    EXPECT_EQ(by_hand->cleared_by, "bob");
    EXPECT_EQ(by_hand->acked_at, 0);
    EXPECT_EQ(_engine->clear(second.id, "bob").error().code, "conflict");
    EXPECT_EQ(_engine->acknowledge(second.id, "bob").error().code, "conflict");
    write("pump-1", "temperature", t0 + 5000, 91);
    EXPECT_EQ(alarms().size(), 2u);
    write("pump-1", "temperature", t0 + 6000, 60);
    write("pump-1", "temperature", t0 + 7000, 91);
    EXPECT_EQ(alarms().size(), 3u);

    // Deleting the rule clears its open alarm.
    ASSERT_TRUE(_engine->delete_rule(id).ok());
    alarm_filter open;
    open.status = "open";
    EXPECT_TRUE(alarms(open).empty());
    EXPECT_EQ(_engine->get_rule(id).error().code, "not_found");
}

TEST_F(RULES_ENGINE_FIXTURE, bad_rules_name_the_field) {
    auto bad = _engine->create_rule(make("x", "temperature > for 5m"));
    ASSERT_FALSE(bad.ok());
    EXPECT_EQ(bad.error().field, "condition");
    EXPECT_EQ(bad.error().message, "position 14: expected a number after '>'");
    auto clear = _engine->create_rule(make("x", "t > 1", "t <"));
    EXPECT_EQ(clear.error().field, "clear");
    auto r = make("x", "t > 1");
    r.notify = {"ops", "nope"};
    EXPECT_EQ(_engine->create_rule(r).error().field, "notify");
    r = make("x", "t > 1");
    r.severity = "meh";
    EXPECT_EQ(_engine->create_rule(r).error().field, "severity");
    add(make("x", "t > 1"));
    EXPECT_EQ(_engine->create_rule(make("x", "t > 2")).error().code, "conflict");
}

TEST_F(RULES_ENGINE_FIXTURE, update_keeps_the_open_alarm_and_disabled_rules_stay_quiet) {
    auto id = add(make("hot", "temperature > 80"));
    write("pump-1", "temperature", t0, 85);
    auto r = make("hot", "temperature > 82");
    auto updated = _engine->update_rule(id, r);
    ASSERT_TRUE(updated.ok());
    write("pump-1", "temperature", t0 + 1000, 85);
    ASSERT_EQ(alarms().size(), 1u);
    EXPECT_EQ(alarms()[0].count, 1);
    r.enabled = false;
    ASSERT_TRUE(_engine->update_rule(id, r).ok());
    write("pump-1", "temperature", t0 + 2000, 50);
    EXPECT_EQ(alarms()[0].status, "active") << "a disabled rule changes nothing";
}

}  // namespace
}  // namespace clisonix::rules

namespace clisonix::rules {
namespace {

constexpr int64_t hour = 60 * minute;

forecast_answer crossing_at(int64_t earliest, int64_t expected, std::optional<int64_t> latest,
                            double probability = 0.9) {
    forecast_answer a;
    a.point = 91;
    a.crosses = true;
    a.earliest_ms = earliest;
    a.expected_ms = expected;
    a.latest_ms = latest;
    a.probability = probability;
    return a;
}

}  // namespace

TEST_F(RULES_ENGINE_FIXTURE, crossing_alarm_says_when_follows_the_forecast_and_clears) {
    auto r = make("pump heating", "crosses(temperature, 90) within 6h");
    const int64_t id = add(r);
    _forecast = [](const forecast_query&) -> result<forecast_answer> {
        return crossing_at(t0 + 2 * hour + 10 * minute, t0 + 2 * hour + 32 * minute,
                           t0 + 2 * hour + 55 * minute);
    };
    write("pump-1", "temperature", t0, 80);
    EXPECT_EQ(queries(), 0u) << "points do not evaluate a rule on the forecast";
    _engine->check_forecasts();
    ASSERT_EQ(queries(), 1u);
    EXPECT_EQ(_queries[0].device, "pump-1");
    EXPECT_EQ(_queries[0].metric, "temperature");
    EXPECT_EQ(_queries[0].horizon_ms, 6 * hour);
    EXPECT_EQ(_queries[0].limit, 90.0);
    EXPECT_TRUE(_queries[0].above) << "80 is below 90: the crossing is upward";
    auto a = alarms();
    ASSERT_EQ(a.size(), 1u);
    EXPECT_EQ(a[0].rule_id, id);
    EXPECT_EQ(a[0].message,
              "temperature on pump-1 is expected to cross 90 at 02:32 UTC (between 02:10 and "
              "02:55)");
    EXPECT_EQ(a[0].value, 80);
    auto doc = boost::json::parse(alarm_json(a[0])).as_object();
    const auto& details = doc.at("details").as_object();
    EXPECT_EQ(details.at("expected_ms").as_int64(), t0 + 2 * hour + 32 * minute);
    EXPECT_EQ(details.at("earliest_ms").as_int64(), t0 + 2 * hour + 10 * minute);
    EXPECT_EQ(details.at("latest_ms").as_int64(), t0 + 2 * hour + 55 * minute);
    EXPECT_EQ(details.at("probability").as_double(), 0.9);

    // Within the rule's interval (a tenth of 6 h, at most 5 min) nothing is asked again.
    _now = t0 + 4 * minute;
    _engine->check_forecasts();
    EXPECT_EQ(queries(), 1u);

    // A later forecast moves the crossing: the same alarm says so, its count stays 1.
    _now = t0 + 5 * minute;
    _forecast = [](const forecast_query&) -> result<forecast_answer> {
        return crossing_at(t0 + 2 * hour + 40 * minute, t0 + 3 * hour, std::nullopt, 0.6);
    };
    _engine->check_forecasts();
    EXPECT_EQ(queries(), 2u);
    a = alarms();
    ASSERT_EQ(a.size(), 1u);
    EXPECT_EQ(a[0].count, 1);
    EXPECT_EQ(a[0].message,
              "temperature on pump-1 is expected to cross 90 at 03:00 UTC (not before 02:40)");
    doc = boost::json::parse(alarm_json(a[0])).as_object();
    EXPECT_EQ(doc.at("details").at("expected_ms").as_int64(), t0 + 3 * hour);
    EXPECT_TRUE(doc.at("details").at("latest_ms").is_null());

    // The same answer again changes nothing.
    _now = t0 + 10 * minute;
    _engine->check_forecasts();
    EXPECT_EQ(events(), (std::vector<std::string>{"alarm.created", "alarm.updated"}));

    // The details survive a restart.
    open_engine();
    EXPECT_EQ(alarm_json(*_engine->get_alarm(a[0].id)), alarm_json(a[0]));
    {
        std::lock_guard lock(_mutex);
        _events.clear();
    }
    write("pump-1", "temperature", t0 + 11 * minute, 82);

    // The forecast no longer says so: cleared.
    _forecast = [](const forecast_query&) -> result<forecast_answer> {
        forecast_answer none;
        none.point = 84;
        none.probability = 0.2;
        return none;
    };
    _now = t0 + 15 * minute;
    _engine->check_forecasts();
    a = alarms();
    ASSERT_EQ(a.size(), 1u);
    EXPECT_EQ(a[0].status, "cleared");
    EXPECT_EQ(a[0].cleared_by, "system");
    EXPECT_EQ(events(), (std::vector<std::string>{"alarm.cleared"})) << "after the restart";
}

TEST_F(RULES_ENGINE_FIXTURE, crossing_direction_follows_the_latest_value_unless_written) {
    add(make("either way", "crosses(temperature, 90) within 1h"));
    add(make("stays hot", "crosses(temperature, above 90) within 1h"));
    add(make("freezing", "crosses(temperature, below 5) within 1h"));
    _forecast = [](const forecast_query&) -> result<forecast_answer> { return forecast_answer{}; };
    write("pump-1", "temperature", t0, 95);
    _engine->check_forecasts();
    ASSERT_EQ(queries(), 3u);
    std::map<double, bool> above;
    for (const auto& q : _queries)
        above[*q.limit] = q.above;
    EXPECT_EQ(above.size(), 2u);
    // "either way" (95 is above 90: downward) and "stays hot" (above) share the limit 90.
    int downward = 0;
    for (const auto& q : _queries)
        if (*q.limit == 90 && !q.above) ++downward;
    EXPECT_EQ(downward, 1);
    EXPECT_FALSE(above[5]);
    EXPECT_TRUE(alarms().empty());
}

TEST_F(RULES_ENGINE_FIXTURE, rules_on_the_forecast_run_on_their_interval_not_per_point) {
    add(make("six hours", "crosses(temperature, 90) within 6h"));                 // every 5 min
    add(make("one minute", "crosses(temperature, 90) within 1m", {}, "pump-2"));  // every 10 s
    add(make("every 30s", "forecast(temperature, 6h) > 90 every 30s", {}, "pump-3"));
    _forecast = [](const forecast_query&) -> result<forecast_answer> { return forecast_answer{}; };
    const uint64_t before = _engine->statistics().evaluations;
    for (int i = 0; i < 600; ++i)
        for (const char* d : {"pump-1", "pump-2", "pump-3"})
            write(d, "temperature", t0 + i * 1000, 50);
    EXPECT_EQ(_engine->statistics().evaluations, before) << "1800 points, no evaluation";
    EXPECT_EQ(queries(), 0u);
    for (int64_t t = 0; t <= 10 * minute; t += 1000) {
        _now = t0 + t;
        _engine->check_forecasts();
    }
    std::map<std::string, int> per_device;
    for (const auto& q : _queries)
        ++per_device[q.device];
    EXPECT_EQ(per_device["pump-1"], 3);   // 0, 5, 10 min
    EXPECT_EQ(per_device["pump-2"], 61);  // every 10 s over 10 min
    EXPECT_EQ(per_device["pump-3"], 21);  // every 30 s
    EXPECT_EQ(_engine->statistics().evaluations, before + 3 + 61 + 21);
}

TEST_F(RULES_ENGINE_FIXTURE, forecast_point_in_a_comparison_with_a_clear_expression) {
    add(make("hot in two hours", "forecast(temperature, 2h) > 90",
             "forecast(temperature, 2h) < 85"));
    double point = 95;
    _forecast = [&point](const forecast_query& q) -> result<forecast_answer> {
        EXPECT_EQ(q.horizon_ms, 2 * hour);
        EXPECT_FALSE(q.limit.has_value());
        forecast_answer a;
        a.point = point;
        return a;
    };
    write("pump-1", "temperature", t0, 70);
    _engine->check_forecasts();
    auto a = alarms();
    ASSERT_EQ(a.size(), 1u);
    EXPECT_EQ(a[0].message, "forecast(temperature, 2h) 95 > 90");
    EXPECT_EQ(a[0].value, 95);
    EXPECT_EQ(alarm_json(a[0]).find("details"), std::string::npos);
    point = 88;  // below the condition, above the clear: stays open
    _now = t0 + 5 * minute;
    _engine->check_forecasts();
    EXPECT_EQ(alarms()[0].status, "active");
    point = 84;
    _now = t0 + 10 * minute;
    _engine->check_forecasts();
    EXPECT_EQ(alarms()[0].status, "cleared");
}

TEST_F(RULES_ENGINE_FIXTURE, no_forecast_leaves_the_alarm_as_it_is) {
    add(make("pump heating", "crosses(temperature, 90) within 1h"));
    _forecast = [](const forecast_query&) -> result<forecast_answer> {
        return crossing_at(t0 + 20 * minute, t0 + 30 * minute, t0 + 40 * minute);
    };
    write("pump-1", "temperature", t0, 80);
    _engine->check_forecasts();
    ASSERT_EQ(alarms().size(), 1u);
    _forecast = [](const forecast_query&) -> result<forecast_answer> {
        return make_error("invalid_argument", "a forecast needs at least 3 values", "history");
    };
    _now = t0 + 10 * minute;
    _engine->check_forecasts();
    EXPECT_EQ(queries(), 2u);
    EXPECT_EQ(alarms()[0].status, "active");
    EXPECT_EQ(events(), (std::vector<std::string>{"alarm.created"}));
}

}  // namespace clisonix::rules
