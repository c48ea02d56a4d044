// Clisonix — Ask: lookups in the vocabulary shared by the grammar and the plan checker
// (private to src/ask).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ask/ask.h"

namespace clisonix::ask::detail {

const device_word* find_device(const vocabulary& v, std::string_view name);
const type_word* find_type(const vocabulary& v, std::string_view name);
const asset_word* find_asset(const vocabulary& v, std::string_view name);
const metric_word* find_metric(const vocabulary& v, std::string_view name);

// The one spelling of a unit: "degrees", "celsius", "deg c", "°c" -> "°C"; "amps", "a" -> "A";
// "m3/h" -> "m³/h". Empty when the words are no unit.
std::string canonical_unit(std::string_view words);

// The devices a plan's scope covers: the explicit ones, or every device of `type` (empty:
// any) under `asset` (empty: anywhere). Sorted by name; unknown names are left out.
std::vector<const device_word*> scope_devices(const vocabulary& v,
                                              const std::vector<std::string>& devices,
                                              std::string_view type, std::string_view asset);

// Whether the device sends the metric: its type lists it, or (a device whose type lists no
// metrics, or has no type) the metric is one of the vocabulary's.
bool device_has_metric(const vocabulary& v, const device_word& d, std::string_view metric);

// The word a person uses for a metric: its first synonym ("temperature", "vibration").
std::string metric_display(const metric_word& m);

// "pump" -> "pumps", "box" -> "boxes", "battery" -> "batteries".
std::string plural_of(std::string_view noun);

// The built-in synonyms of a metric name (besides the name itself).
std::vector<std::string> builtin_synonyms(std::string_view metric);

// The names plans use in JSON (plan_json.cpp): "telemetry", "p95", "asset".
std::string_view kind_name(plan_kind k);
std::string_view aggregate_name(aggregate a);
std::string_view grouping_name(grouping g);
std::optional<plan_kind> kind_named(std::string_view s);
std::optional<aggregate> aggregate_named(std::string_view s);
std::optional<grouping> grouping_named(std::string_view s);

}  // namespace clisonix::ask::detail
