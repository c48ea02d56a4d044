// The engine's options from the `storage.*` config keys.
#include "config/config.h"
#include "storage/storage.h"

namespace clisonix::storage {

options options_from(const config::config& cfg, const std::string& data_dir) {
    options o;
    o.dir = data_dir + "/tsdb";
    o.sync = cfg.get_string("storage.sync") == "interval" ? options::sync_mode::interval
                                                          : options::sync_mode::always;
    o.sync_interval = cfg.get_duration("storage.sync_interval");
    o.retention_ns = cfg.get_int("storage.retention") * 1'000'000;
    o.raw_retention_ns = cfg.get_int("storage.raw_retention") * 1'000'000;
    // Checked when the config was loaded, so it parses.
    config::parse_duration_list(cfg.get_string("storage.raw_retention_by_measurement"),
                                o.raw_retention_by_measurement);
    for (auto& [measurement, ms] : o.raw_retention_by_measurement)
        ms *= 1'000'000;
    o.out_of_order_window_ns = cfg.get_int("storage.out_of_order_window") * 1'000'000;
    o.max_head_bytes = static_cast<uint64_t>(cfg.get_int("storage.max_head"));
    o.max_series = static_cast<uint64_t>(cfg.get_int("storage.max_series"));
    o.min_free_bytes = static_cast<uint64_t>(cfg.get_int("storage.min_free"));
    return o;
}

}  // namespace clisonix::storage
