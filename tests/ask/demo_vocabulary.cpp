#include "ask/demo_vocabulary.h"

#include <algorithm>
#include <map>
#include <vector>

namespace clisonix::ask::testing {
namespace {

struct kind {
    std::string name;
    std::vector<std::pair<std::string, std::string>> metrics;  // name, unit
};

const std::vector<kind>& kinds() {
    static const std::vector<kind> all = {
        {"pump",
         {{"temperature", "°C"},
          {"vibration_rms", "mm/s"},
          {"current", "A"},
          {"pressure", "bar"},
          {"flow", "m³/h"},
          {"rpm", "rpm"}}},
        {"compressor",
         {{"temperature", "°C"},
          {"vibration_rms", "mm/s"},
          {"current", "A"},
          {"pressure", "bar"},
          {"rpm", "rpm"}}},
        {"conveyor",
         {{"temperature", "°C"}, {"vibration_rms", "mm/s"}, {"current", "A"}, {"rpm", "rpm"}}},
    };
    return all;
}

std::vector<std::string> synonyms(const std::string& metric) {
    if (metric == "temperature") return {"temperature", "temp", "temps", "temperatures"};
    if (metric == "vibration_rms")
        return {"vibration", "vib", "vibrations", "vibration rms", "vibes", "vibration_rms"};
    if (metric == "current")
        return {"current", "amps", "amperage", "load current", "amp", "motor current"};
    if (metric == "rpm") return {"speed", "rpm", "revolutions", "revs", "rotation speed"};
    if (metric == "pressure") return {"pressure", "press", "pressures"};
    if (metric == "flow") return {"flow", "flow rate", "throughput", "flows"};
    return {metric};
}

void finish(vocabulary& v) {
    std::map<std::string, std::string> units;
    for (const auto& k : kinds()) {
        type_word t{k.name, k.name + "s", {}};
        for (const auto& [m, u] : k.metrics) {
            t.metrics.push_back(m);
            units.emplace(m, u);
        }
        v.types.push_back(t);
    }
    for (const auto& [m, u] : units)
        v.metrics.push_back({m, u, synonyms(m)});
    std::sort(v.devices.begin(), v.devices.end(),
              [](const device_word& a, const device_word& b) { return a.name < b.name; });
    for (auto& a : v.assets)
        std::sort(a.devices.begin(), a.devices.end());
}

}  // namespace

vocabulary demo_vocabulary(std::string zone) {
    vocabulary v;
    v.time_zone = std::move(zone);
    const int machines_per_line[] = {4, 3, 3, 4, 3, 3};
    int count[3] = {0, 0, 0};
    for (int s = 0; s < 2; ++s) {
        std::string site = s == 0 ? "north-site" : "south-site";
        v.assets.push_back({site, "site", "", {}});
        for (int l = 0; l < 3; ++l) {
            int line_index = s * 3 + l;
            std::string line =
                (s == 0 ? "north" : "south") + std::string("-line-") + std::to_string(l + 1);
            asset_word a{line, "line", site, {}};
            for (int j = 0; j < machines_per_line[line_index]; ++j) {
                size_t k = static_cast<size_t>(line_index + j) % 3;
                int n = ++count[k];
                std::string name = kinds()[k].name + (n < 10 ? "-0" : "-") + std::to_string(n);
                // pump-08 is silent (offline); every other machine reports.
                v.devices.push_back({name, kinds()[k].name, name, {line, site}, name != "pump-08"});
                a.devices.push_back(name);
                for (auto& site_asset : v.assets)
                    if (site_asset.name == site) site_asset.devices.push_back(name);
            }
            v.assets.push_back(a);
        }
    }
    finish(v);
    return v;
}

vocabulary plain_lines_vocabulary(std::string zone) {
    vocabulary v;
    v.time_zone = std::move(zone);
    v.assets.push_back({"plant-a", "site", "", {}});
    auto add = [&](const std::string& name, const std::string& type, const std::string& line) {
        v.devices.push_back({name, type, name, {line, "plant-a"}, true});
        for (auto& a : v.assets)
            if (a.name == line || a.name == "plant-a") a.devices.push_back(name);
    };
    v.assets.push_back({"line-1", "line", "plant-a", {}});
    v.assets.push_back({"line-2", "line", "plant-a", {}});
    add("pump-01", "pump", "line-1");
    add("pump-02", "pump", "line-1");
    add("compressor-01", "compressor", "line-1");
    for (int i = 3; i <= 6; ++i)
        add("pump-0" + std::to_string(i), "pump", "line-2");
    finish(v);
    return v;
}

}  // namespace clisonix::ask::testing
