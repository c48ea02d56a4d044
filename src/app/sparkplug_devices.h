// The broker's Sparkplug B hooks on the device registry (see docs/decisions/0083-sparkplug-b.md).
#pragma once

#include <string_view>
#include <vector>

#include "common/result.h"
#include "devices/devices.h"
#include "mqtt/mqtt.h"

namespace clisonix::app {

// NBIRTH / DBIRTH: the device of that name is created (type `sparkplug`) unless it exists;
// the units its birth announces fill the metrics of its type that have none yet; the group
// and edge node become its server attributes `sparkplug_group` and `sparkplug_edge_node`.
status sparkplug_birth(devices::registry& registry, std::string_view device, std::string_view group,
                       std::string_view edge_node,
                       const std::vector<mqtt::sparkplug_metric>& metrics);

}  // namespace clisonix::app
