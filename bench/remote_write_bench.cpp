// Prometheus remote-write decode rate (samples/s) and allocations per request, on requests
// shaped as Prometheus sends them: one sample per series (a shard batches by time, so a
// request holds up to max_samples_per_send samples of as many series), each series with the
// labels of a node exporter's target (__name__, cpu/mode or device, instance, job).
#include <benchmark/benchmark.h>
#include <snappy.h>

#include <string>

#include "allocation_counter.h"
#include "ingest/ingest.h"
#include "ingest/remote_write.pb.h"

namespace {

using namespace clisonix;

std::string make_request(int samples) {
    prometheus::pb::WriteRequest req;
    auto label = [](prometheus::pb::TimeSeries* ts, const char* name, const std::string& value) {
        auto* l = ts->add_labels();
        l->set_name(name);
        l->set_value(value);
    };
    for (int i = 0; i < samples; ++i) {
        auto* ts = req.add_timeseries();
        label(ts, "__name__", "node_cpu_seconds_total");
        label(ts, "cpu", std::to_string(i / 8));
        label(ts, "instance", "host-" + std::to_string(i % 50) + ":9100");
        label(ts, "job", "node");
        label(ts, "mode", "mode" + std::to_string(i % 8));
        auto* s = ts->add_samples();
        s->set_timestamp(1704067200000);
        s->set_value(12345.67 + i);
    }
    std::string raw = req.SerializeAsString(), body;
    snappy::Compress(raw.data(), raw.size(), &body);
    return body;
}

void remote_write_decode(benchmark::State& state) {
    const auto samples = static_cast<int>(state.range(0));
    const std::string body = make_request(samples);
    ingest::remote_write_decoder decoder;
    storage::write_batch batch;
    ingest::limits bounds;
    if (!decoder.decode(body, bounds, batch)) state.SkipWithError("decode failed");
    uint64_t before = clisonix::bench::allocations();
    for (auto _ : state) {
        auto counts = decoder.decode(body, bounds, batch);
        benchmark::DoNotOptimize(counts);
    }
    state.counters["samples/s"] = benchmark::Counter(
        static_cast<double>(state.iterations()) * samples, benchmark::Counter::kIsRate);
    state.counters["allocs/request"] =
        static_cast<double>(clisonix::bench::allocations() - before) /
        static_cast<double>(state.iterations());
    state.counters["bytes/request"] = static_cast<double>(body.size());
}

}  // namespace

BENCHMARK(remote_write_decode)->Arg(500)->Arg(2000)->Unit(benchmark::kMicrosecond);

BENCHMARK_MAIN();
