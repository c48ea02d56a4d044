// Alarms: raised, repeated and cleared by the evaluator or acknowledged, cleared and
// commented through the API, in the metadata store; each change is committed together with
// its notification outbox rows, and its event handed to the listeners in commit order.
#include <array>
#include <unordered_map>

#include "rules/engine_impl.h"
#include "rules/internal.h"
#include "rules/rules.h"

namespace clisonix::rules {

// ---- alarms --------------------------------------------------------------------------

std::string engine::impl::event(std::string_view name, const alarm& a, int64_t at) {
    return "{\"event\":\"" + std::string(name) + "\",\"alarm\":" + alarm_json(a) +
           ",\"at\":" + std::to_string(at) + "}";
}

// Runs `body` and the notification of `event_json` in one transaction; on commit the
// event is queued for the listeners. Under mutex.
bool engine::impl::commit(const std::function<status(meta::store&)>& body, const compiled* c,
                          const std::function<std::string()>& event_json) {
    std::string ev;
    auto st = store.transaction([&](meta::store& tx) -> status {
        if (auto s = body(tx); !s) return s;
        ev = event_json();
        if (sink && c && !c->doc.notify.empty())
            if (auto s = sink->enqueue(tx, c->doc.notify, ev); !s) return s;
        return {};
    });
    if (!st) {
        log::warn("alarm change not stored", {{"error", st.error().message}});
        return false;
    }
    if (sink && c && !c->doc.notify.empty()) sink->wake();
    alarm_events_counter.inc();
    pending.push_back(std::move(ev));
    return true;
}

void engine::impl::remember(state& st) {
    if (st.in_batch) return;
    st.in_batch = true;
    saved_states.push_back({&st, st.open, st.fired, st.armed, st.true_since, st.true_points,
                            st.false_since, st.current});
}

bool engine::impl::fire(compiled& c, state& st, int64_t ts, double value, std::string msg,
                        std::string details) {
    remember(st);
    const int64_t now = opts.clock();
    const bool repeat = st.open;
    alarm a = repeat ? st.current : alarm{};
    if (repeat) {
        ++a.count;
    } else {
        a.rule_id = c.doc.id;
        a.rule_name = c.doc.name;
        a.device = st.device;
        a.severity = c.doc.severity;
        a.status = "active";
        a.count = 1;
        a.first_at = ts;
        a.created_at = now;
    }
    a.last_at = ts;
    a.value = value;
    a.message = std::move(msg);
    a.details = std::move(details);
    a.updated_at = now;
    changes.push_back({&c, &st, repeat ? change::what::repeat : change::what::create, a,
                       repeat ? "alarm.updated" : "alarm.created", now});
    st.current = std::move(a);
    st.open = true;
    return true;
}

// An open alarm's message and details follow a newer evaluation of the same episode (a
// crossing now expected at another time): alarm.updated, the count stays.
void engine::impl::refresh(compiled& c, state& st, int64_t ts, double value, std::string msg,
                           std::string details) {
    remember(st);
    const int64_t now = opts.clock();
    alarm a = st.current;
    a.last_at = ts;
    a.value = value;
    a.message = std::move(msg);
    a.details = std::move(details);
    a.updated_at = now;
    changes.push_back({&c, &st, change::what::refresh, a, "alarm.updated", now});
    st.current = std::move(a);
}

bool engine::impl::clear_alarm(compiled& c, state& st, std::string_view who,
                               std::string_view ev_name, int64_t point_ts) {
    remember(st);
    const int64_t now = opts.clock();
    alarm a = st.current;
    a.status = "cleared";
    a.cleared_by = who;
    a.cleared_at = now;
    a.updated_at = now;
    changes.push_back({&c, &st, change::what::clear, a, ev_name, now, false, point_ts});
    st.open = false;
    st.current = std::move(a);
    return true;
}

// Every node of a cluster evaluates the same points in the same order per series, so each
// alarm change is attempted once per node; the store lets the first attempt through and
// the others find it made (docs/decisions/0073-alarms-once-in-a-cluster.md):
// - create: the open-alarm index admits one open alarm per (rule, device), and an alarm
//   already created for the same first point, or cleared by a point after this one (by a
//   node ahead of this one, or before this node restarted in the middle of the incident), is
//   not created again: a replay of the same data is not a new incident;
// - repeat: only a count the store has not reached yet, only while the alarm is open;
// - refresh: only while open and when the message or details differ;
// - clear: only while open.
// A change that finds its work done is `lost`: the caller neither notifies it nor counts it
// as written, and `a` becomes the store's alarm.
status engine::impl::apply(meta::store& tx, change& ch) {
    alarm& a = ch.a;
    ch.lost = false;
    auto adopt = [&](int64_t id) -> status {
        auto stored = detail::load_alarm(tx, id);
        if (!stored) return stored.error();
        a = std::move(*stored);
        ch.lost = true;
        return {};
    };
    switch (ch.kind) {
        case change::what::create: {
            auto r = tx.query(
                "INSERT INTO alarms (rule_id, rule_name, device, severity, status, is_open, "
                "repeat_count, first_at, last_at, last_value, message, created_at, "
                "updated_at, details) SELECT $1, $2, $3, $4, 'active', 1, 1, $5, $6, $7, $8, $9, "
                "$10, $11 WHERE NOT EXISTS (SELECT 1 FROM alarms WHERE rule_id = $1 AND "
                "device = $3 AND (is_open = 1 OR first_at = $5 OR (first_at <= $5 AND $5 < "
                "cleared_ts))) ON CONFLICT DO NOTHING RETURNING id",
                std::array<meta::value, 11>{a.rule_id, a.rule_name, a.device, a.severity,
                                            a.first_at, a.last_at, a.value, a.message, a.created_at,
                                            a.updated_at, a.details});
            if (!r) return r.error();
            if (!r->data.empty()) {
                a.id = detail::as_int(r->data[0][0]);
                return {};
            }
            auto made = tx.query(
                "SELECT id FROM alarms WHERE rule_id = $1 AND device = $2 AND "
                "(is_open = 1 OR first_at = $3 OR (first_at <= $3 AND $3 < cleared_ts)) "
                "ORDER BY is_open DESC, id DESC LIMIT 1",
                std::array<meta::value, 3>{a.rule_id, a.device, a.first_at});
            if (!made) return made.error();
            if (made->data.empty()) return make_error("internal", "no alarm id returned");
            return adopt(detail::as_int(made->data[0][0]));
        }
        case change::what::repeat:
        case change::what::refresh: {
            // Written only while open and when it changes something: a count the store has
            // not reached (repeat), another message or details (refresh). RETURNING brings an
            // acknowledgement made through another node into the event.
            const bool repeat = ch.kind == change::what::repeat;
            auto r = tx.query(
                std::string("UPDATE alarms SET repeat_count = $1, last_at = $2, last_value = $3, "
                            "message = $4, updated_at = $5, details = $6 WHERE id = $7 AND "
                            "is_open = 1 AND ") +
                    (repeat ? "repeat_count < $1" : "(message <> $4 OR details <> $6)") +
                    " RETURNING status, acked_by, acked_at",
                std::array<meta::value, 7>{a.count, a.last_at, a.value, a.message, a.updated_at,
                                           a.details, a.id});
            if (!r) return r.error();
            if (r->data.empty()) return adopt(a.id);
            a.status = detail::as_text(r->data[0][0]);
            a.acked_by = detail::as_text(r->data[0][1]);
            a.acked_at = detail::as_int(r->data[0][2]);
            return {};
        }
        case change::what::clear: {
            auto r = tx.execute(
                "UPDATE alarms SET status = 'cleared', is_open = 0, cleared_by = $1, "
                "cleared_at = $2, updated_at = $3, cleared_ts = $5 WHERE id = $4 AND is_open = 1",
                std::array<meta::value, 5>{a.cleared_by, a.cleared_at, a.updated_at, a.id,
                                           ch.point_ts});
            if (!r) return r.error();
            if (*r == 0) return adopt(a.id);
            return {};
        }
    }
    return {};
}

// Under mutex: commits the queued changes with their notifications in one transaction.
bool engine::impl::flush() {
    if (changes.empty()) return true;
    std::vector<std::string> events;
    std::unordered_map<state*, int64_t> ids;  // alarms created in this batch, per state
    bool notified = false;
    auto st = store.transaction([&](meta::store& tx) -> status {
        events.clear();
        ids.clear();
        notified = false;
        for (auto& ch : changes) {
            // An alarm created earlier in this batch has its id only now.
            if (ch.kind != change::what::create && ch.a.id == 0)
                if (auto it = ids.find(ch.st); it != ids.end()) ch.a.id = it->second;
            if (auto s = apply(tx, ch); !s) return s;
            if (ch.kind == change::what::create) ids[ch.st] = ch.a.id;
            // A lost change still reaches this node's listeners (its live clients see the
            // cluster's alarm), but only the change that was written is notified.
            events.push_back(event(ch.event_name, ch.a, ch.at));
            if (sink && !ch.lost && !ch.rule->doc.notify.empty()) {
                if (auto s = sink->enqueue(tx, ch.rule->doc.notify, events.back()); !s) return s;
                notified = true;
            }
        }
        return {};
    });
    if (!st) {
        log::warn("alarm changes not stored",
                  {{"error", st.error().message}, {"changes", changes.size()}});
        for (auto& sv : saved_states) {
            sv.st->open = sv.open;
            sv.st->fired = sv.fired;
            sv.st->armed = sv.armed;
            sv.st->true_since = sv.true_since;
            sv.st->true_points = sv.true_points;
            sv.st->false_since = sv.false_since;
            sv.st->current = std::move(sv.current);
            sv.st->in_batch = false;
        }
        saved_states.clear();
        changes.clear();
        return false;
    }
    for (auto& [state_ptr, id] : ids)
        if (state_ptr->current.id == 0) state_ptr->current.id = id;
    // The state follows the store's alarm where another node's change came first: an alarm
    // cleared there (or by a user) is closed here too, and the condition must go false
    // before it raises a new one, as after a clear through the API.
    for (auto& ch : changes) {
        if (!ch.lost || ch.kind == change::what::clear) continue;
        ch.st->current = ch.a;
        if (ch.a.status == "cleared" && ch.st->open) {
            ch.st->open = false;
            ch.st->armed = !ch.st->fired;
        }
    }
    for (auto& sv : saved_states)
        sv.st->in_batch = false;
    saved_states.clear();
    changes.clear();
    if (notified) sink->wake();
    alarm_events_counter.inc(static_cast<double>(events.size()));
    for (auto& e : events)
        pending.push_back(std::move(e));
    return true;
}

// Hands committed events to the listeners in commit order, outside the engine mutex.
void engine::impl::dispatch(std::unique_lock<std::mutex>& lock) {
    if (pending.empty()) return;
    std::vector<std::string> events;
    events.swap(pending);
    std::unique_lock order(dispatch_mutex);
    lock.unlock();
    for (const auto& e : events)
        for (const auto& l : listeners)
            l(e);
}

// The (rule, device) state that holds alarm `a` open, if any.
engine::impl::state* engine::impl::open_state(const alarm& a) {
    auto* c = rule_by_id(a.rule_id);
    if (!c) return nullptr;
    auto it = c->states.find(a.device);
    if (it == c->states.end() || !it->second.open || it->second.current.id != a.id) return nullptr;
    return &it->second;
}

// ---- engine: alarms -----------------------------------------------------------------

result<alarm> engine::get_alarm(int64_t id) {
    auto a = detail::load_alarm(_impl->store, id);
    if (!a) return a;
    auto comments = detail::load_comments(_impl->store, id);
    if (!comments) return comments.error();
    a->comments = std::move(*comments);
    return a;
}

result<alarm_page> engine::list_alarms(const alarm_filter& filter) {
    std::vector<std::string> devices;
    bool by_asset = !filter.asset.empty();
    if (by_asset && _impl->hooks.devices_under) devices = _impl->hooks.devices_under(filter.asset);
    return detail::query_alarms(_impl->store, filter, by_asset ? &devices : nullptr);
}

result<alarm> engine::acknowledge(int64_t id, std::string_view who) {
    auto& m = *_impl;
    std::unique_lock lock(m.mutex);
    auto a = detail::load_alarm(m.store, id);
    if (!a) return a;
    if (a->status == "acknowledged")
        return make_error("conflict", "alarm " + std::to_string(id) + " is already acknowledged");
    if (a->status == "cleared")
        return make_error("conflict", "alarm " + std::to_string(id) + " is cleared");
    const int64_t now = m.opts.clock();
    a->status = "acknowledged";
    a->acked_by = who;
    a->acked_at = now;
    a->updated_at = now;
    auto* c = m.rule_by_id(a->rule_id);
    bool ok = m.commit(
        [&](meta::store& tx) -> status {
            auto r = tx.execute(
                "UPDATE alarms SET status = 'acknowledged', acked_by = $1, acked_at = $2, "
                "updated_at = $3 WHERE id = $4 AND status = 'active'",
                std::array<meta::value, 4>{a->acked_by, a->acked_at, a->updated_at, a->id});
            if (!r) return r.error();
            if (*r != 1) return make_error("conflict", "the alarm changed meanwhile");
            return {};
        },
        c, [&] { return m.event("alarm.acknowledged", *a, now); });
    if (!ok) return make_error("unavailable", "the acknowledgement could not be stored");
    if (auto* st = m.open_state(*a)) st->current = *a;
    m.dispatch(lock);
    return *a;
}

result<alarm> engine::clear(int64_t id, std::string_view who) {
    auto& m = *_impl;
    std::unique_lock lock(m.mutex);
    auto a = detail::load_alarm(m.store, id);
    if (!a) return a;
    if (a->status == "cleared")
        return make_error("conflict", "alarm " + std::to_string(id) + " is already cleared");
    auto* c = m.rule_by_id(a->rule_id);
    if (auto* st = m.open_state(*a)) {
        st->current = *a;
        m.clear_alarm(*c, *st, who, "alarm.cleared");
        if (!m.flush()) return make_error("unavailable", "the clear could not be stored");
        // The condition must go false before it can raise this alarm again.
        st->armed = !st->fired;
        alarm out = st->current;
        m.dispatch(lock);
        return out;
    }
    // An alarm whose rule is gone or disabled: clear it in the store alone.
    const int64_t now = m.opts.clock();
    a->status = "cleared";
    a->cleared_by = who;
    a->cleared_at = now;
    a->updated_at = now;
    bool ok = m.commit(
        [&](meta::store& tx) -> status {
            auto r = tx.execute(
                "UPDATE alarms SET status = 'cleared', is_open = 0, cleared_by = $1, "
                "cleared_at = $2, updated_at = $3 WHERE id = $4 AND is_open = 1",
                std::array<meta::value, 4>{a->cleared_by, a->cleared_at, a->updated_at, a->id});
            if (!r) return r.error();
            return {};
        },
        c, [&] { return m.event("alarm.cleared", *a, now); });
    if (!ok) return make_error("unavailable", "the clear could not be stored");
    m.dispatch(lock);
    return *a;
}

result<comment> engine::add_comment(int64_t id, std::string_view who, std::string_view text) {
    if (text.empty() || text.size() > 4096)
        return make_error("invalid_argument", "text must have 1 to 4096 characters", "text");
    auto a = detail::load_alarm(_impl->store, id);
    if (!a) return a.error();
    return detail::insert_comment(_impl->store, id, who, text, _impl->opts.clock());
}

}  // namespace clisonix::rules
