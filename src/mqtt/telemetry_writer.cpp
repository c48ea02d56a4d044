// The telemetry writer: device telemetry merged into one write_batch per flush, written by
// the writer thread (durable on return), and the PUBACKs released afterwards (see mqtt.h).
#include <bit>

#include "mqtt/connection.h"

namespace clisonix::mqtt::detail {

uint8_t impl::add_telemetry(const std::shared_ptr<connection>& c, uint64_t seq,
                            std::string_view device, std::string_view payload) {
    ingest::json_options jo;
    jo.now_ns = now_ns();
    jo.bounds = opts.bounds;
    if (auto st = parser.parse(payload, device, jo, scratch); !st) {
        log::debug("mqtt telemetry refused", {{"device", device}, {"error", st.error().message}});
        return reason::payload_format_invalid;
    }
    // The per-device series bound, per message: a merged batch refused for one device's
    // new metric would hold back every other device's telemetry.
    if (auto st = sink.admit(scratch); !st) {
        log::info("mqtt telemetry refused", {{"device", device}, {"error", st.error().message}});
        return reason::quota_exceeded;
    }
    auto& f = *filling;
    const auto& entries = scratch.series_entries();
    std::vector<uint32_t> map(entries.size());
    for (size_t i = 0; i < entries.size(); ++i) {
        auto idx = f.batch.series(entries[i].key, entries[i].type);
        if (!idx) return reason::payload_format_invalid;  // same key, two types in one flush
        map[i] = *idx;
    }
    pending_message m;
    m.conn = c;
    m.seq = seq;
    m.begin = f.batch.point_count();
    const auto& strings = scratch.strings();
    for (const auto& p : scratch.points()) {
        const auto type = entries[p.series].type;
        const uint32_t s = map[p.series];
        if (type == storage::value_type::string)
            f.batch.add_string(s, p.ts, strings[p.raw]);
        else if (type == storage::value_type::float64)
            f.batch.add(s, p.ts, std::bit_cast<double>(p.raw));
        else if (type == storage::value_type::boolean)
            f.batch.add_bool(s, p.ts, p.raw != 0);
        else
            f.batch.add_int(s, p.ts, static_cast<int64_t>(p.raw));
    }
    m.end = f.batch.point_count();
    f.messages.push_back(std::move(m));
    schedule_flush();
    return reason::success;
}

void impl::schedule_flush() {
    if (flush_posted || flush_running || filling->messages.empty()) return;
    flush_posted = true;
    // Posted, not run now: the read completions already queued add their messages first.
    asio::post(ioc, [self = shared_from_this()] { self->flush_now(); });
}

void impl::flush_now() {
    flush_posted = false;
    if (flush_running || filling->messages.empty()) return;
    flush_running = true;
    auto next = spare ? std::move(spare) : std::make_unique<flush_job>();
    next->batch.clear();
    next->messages.clear();
    {
        std::lock_guard lock(mu);
        job = std::move(filling);
    }
    filling = std::move(next);
    cv.notify_one();
}

void impl::flush_done(std::unique_ptr<flush_job> j) {
    stats().written.inc();
    for (auto& m : j->messages)
        if (m.conn) static_cast<connection*>(m.conn.get())->resolve_ack(m.seq, m.reason);
    j->messages.clear();
    j->batch.clear();
    spare = std::move(j);
    flush_running = false;
    // Everyone who waited for room (or for acks) reads again.
    auto waiting = std::move(paused);
    paused.clear();
    for (auto& w : waiting)
        if (auto c = w.lock()) c->resume();
    schedule_flush();
}

// Sub-batch of one message, for finding the message that spoils a merged batch.
static void copy_points(const storage::write_batch& from, size_t begin, size_t end,
                        storage::write_batch& to) {
    to.clear();
    const auto& entries = from.series_entries();
    std::unordered_map<uint32_t, uint32_t> map;
    for (size_t i = begin; i < end; ++i) {
        const auto& p = from.points()[i];
        auto it = map.find(p.series);
        if (it == map.end()) {
            auto idx = to.series(entries[p.series].key, entries[p.series].type);
            if (!idx) continue;
            it = map.emplace(p.series, *idx).first;
        }
        if (entries[p.series].type == storage::value_type::string)
            to.add_string(it->second, p.ts, from.strings()[p.raw]);
        else if (entries[p.series].type == storage::value_type::float64)
            to.add(it->second, p.ts, std::bit_cast<double>(p.raw));
        else if (entries[p.series].type == storage::value_type::boolean)
            to.add_bool(it->second, p.ts, p.raw != 0);
        else
            to.add_int(it->second, p.ts, static_cast<int64_t>(p.raw));
    }
}

void impl::write_job(flush_job& j) {
    // Retries until the engine takes the batch: an overloaded or failing disk delays the
    // PUBACKs (and, through the paused reads, the devices); it never loses an acked message.
    auto submit_retrying = [this](storage::write_batch& b) -> status {
        auto delay = std::chrono::milliseconds(5);
        while (true) {
            status st;
            try {
                st = sink.submit(b);
            } catch (const std::exception& e) {  // retried like a failing disk
                st = make_error("unavailable", std::string("write failed: ") + e.what());
            }
            if (st || st.error().code == "invalid_argument") return st;
            {
                std::unique_lock lock(mu);
                // On stop, give up: unacked QoS 1 messages are resent by their clients.
                if (writer_quit) return st;
            }
            log::warn("mqtt telemetry write delayed", {{"error", st.error().message}});
            std::this_thread::sleep_for(delay);
            delay = std::min(delay * 2, std::chrono::milliseconds(1000));
        }
    };
    auto st = submit_retrying(j.batch);
    if (st) return;
    if (st.error().code != "invalid_argument") {
        for (auto& m : j.messages)
            m.conn.reset();  // stopping: no ack
        return;
    }
    // One message spoils the batch (a type conflict, a point outside the window): write
    // them one by one so that only the guilty are refused.
    storage::write_batch one;
    for (auto& m : j.messages) {
        copy_points(j.batch, m.begin, m.end, one);
        auto r = submit_retrying(one);
        if (!r) {
            if (r.error().code != "invalid_argument") {
                m.conn.reset();
                continue;
            }
            m.reason = reason::payload_format_invalid;
            stats().dropped("invalid").inc();
            log::info("mqtt telemetry refused by the engine", {{"error", r.error().message}});
        }
    }
}

void impl::writer_loop() {
    while (true) {
        std::unique_ptr<flush_job> j;
        {
            std::unique_lock lock(mu);
            cv.wait(lock, [this] { return job || writer_quit; });
            if (!job) return;
            j = std::move(job);
        }
        write_job(*j);
        asio::post(ioc, [self = shared_from_this(), jp = j.release()]() mutable {
            self->flush_done(std::unique_ptr<flush_job>(jp));
        });
    }
}
}  // namespace clisonix::mqtt::detail
