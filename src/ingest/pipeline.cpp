// The ingest pipeline: a batch becomes durable in the engine, then the listeners see it.
#include <exception>

#include "ingest/ingest.h"
#include "observe/observe.h"

namespace clisonix::ingest {

status pipeline::submit(storage::write_batch& batch) {
    if (batch.empty()) return {};
    if (auto st = admit(batch); !st) return st;
    if (_replicator) return _replicator(batch);
    return apply(batch);
}

status pipeline::apply(storage::write_batch& batch) {
    if (batch.empty()) return {};
    const size_t received = batch.point_count();
    for (const auto& e : _enrichers)
        e(batch);
    if (auto st = _engine.write(batch); !st) return st;
    // Listeners learn only of durable points: an alarm never fires on data a crash could lose.
    // A failing listener must not turn a stored write into an error the client would retry.
    for (const auto& l : _listeners) {
        try {
            l(batch);
        } catch (const std::exception& e) {
            log::error("ingest listener failed", {{"error", e.what()}});
        }
    }
    static metrics::counter points = metrics::global().get_counter(
        "clisonix_ingest_points_total", "Points written through the ingest pipeline");
    points.inc(static_cast<double>(received));
    return {};
}

}  // namespace clisonix::ingest
