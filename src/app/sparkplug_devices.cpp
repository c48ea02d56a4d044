// The broker's Sparkplug B hooks on the device registry (see sparkplug_devices.h).
#include "app/sparkplug_devices.h"

#include <boost/json.hpp>

namespace clisonix::app {

namespace {
constexpr std::string_view sparkplug_type = "sparkplug";
}

status sparkplug_birth(devices::registry& registry, std::string_view device, std::string_view group,
                       std::string_view edge_node,
                       const std::vector<mqtt::sparkplug_metric>& metrics) {
    const std::string origin = std::string(group) + "/" + std::string(edge_node);
    std::string type;
    if (auto existing = registry.get_device(device)) {
        type = existing->type;  // a type chosen by a person stays
    } else if (existing.error().code != errc::not_found) {
        return existing.error();
    } else {
        devices::new_device d;
        d.name = std::string(device);
        d.type = std::string(sparkplug_type);
        d.description = "Sparkplug B, edge node " + origin;
        auto created = registry.create_device(d, auth::actor{"sparkplug:" + origin, "mqtt"});
        // Another node (or a racing birth) may have created it first.
        if (!created && created.error().code != errc::conflict) return created.error();
        type = created ? created->info.type : std::string(sparkplug_type);
    }
    if (auto t = registry.get_type(type)) {
        auto merged = t->metrics;
        bool changed = false;
        for (const auto& m : metrics) {
            if (m.unit.empty()) continue;
            auto& spec = merged[m.name];
            if (!spec.unit.empty()) continue;  // a unit set through the API wins
            spec.unit = m.unit;
            changed = true;
        }
        if (changed) {
            devices::type_update change;
            change.metrics = std::move(merged);
            if (auto st = registry.update_type(type, change); !st) return st.error();
        }
    }
    boost::json::object attributes;
    attributes["sparkplug_group"] = group;
    attributes["sparkplug_edge_node"] = edge_node;
    return registry.set_attributes(device, "server", boost::json::serialize(attributes));
}

}  // namespace clisonix::app
