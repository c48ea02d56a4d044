// Clisonix — Ask: the plant's vocabulary from the registry and the stored series.
#include <date/tz.h>

#include <algorithm>
#include <map>
#include <set>

#include "ask/ask.h"
#include "ask/time_text.h"
#include "ask/words.h"
#include "devices/devices.h"
#include "storage/storage.h"

namespace clisonix::ask {
namespace detail {

const device_word* find_device(const vocabulary& v, std::string_view name) {
    auto it = std::lower_bound(v.devices.begin(), v.devices.end(), name,
                               [](const device_word& d, std::string_view n) { return d.name < n; });
    if (it != v.devices.end() && it->name == name) return &*it;
    // A vocabulary built by hand may not be sorted.
    for (const auto& d : v.devices)
        if (d.name == name) return &d;
    return nullptr;
}

const type_word* find_type(const vocabulary& v, std::string_view name) {
    for (const auto& t : v.types)
        if (t.name == name) return &t;
    return nullptr;
}

const asset_word* find_asset(const vocabulary& v, std::string_view name) {
    for (const auto& a : v.assets)
        if (a.name == name) return &a;
    return nullptr;
}

const metric_word* find_metric(const vocabulary& v, std::string_view name) {
    for (const auto& m : v.metrics)
        if (m.name == name) return &m;
    return nullptr;
}

std::string canonical_unit(std::string_view w) {
    std::string s;
    for (char c : w)
        if (c != ' ') s += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (s == "°c" || s == "degrees" || s == "degree" || s == "celsius" || s == "degc" ||
        s == "degreesc" || s == "degreescelsius" || s == "c" || s == "deg" || s == "℃")
        return "°C";
    if (s == "°f" || s == "fahrenheit" || s == "degreesf" || s == "f") return "°F";
    if (s == "bar" || s == "bars") return "bar";
    if (s == "a" || s == "amp" || s == "amps" || s == "ampere" || s == "amperes") return "A";
    if (s == "mm/s" || s == "mmps" || s == "mm/sec") return "mm/s";
    if (s == "rpm" || s == "rpms" || s == "r/min") return "rpm";
    if (s == "m3/h" || s == "m³/h" || s == "m^3/h" || s == "cbm/h") return "m³/h";
    if (s == "%" || s == "percent") return "%";
    if (s == "kw") return "kW";
    if (s == "v" || s == "volt" || s == "volts") return "V";
    return {};
}

std::vector<const device_word*> scope_devices(const vocabulary& v,
                                              const std::vector<std::string>& devices,
                                              std::string_view type, std::string_view asset) {
    std::vector<const device_word*> out;
    if (!devices.empty()) {
        for (const auto& name : devices)
            if (const auto* d = find_device(v, name)) out.push_back(d);
    } else {
        const asset_word* a = asset.empty() ? nullptr : find_asset(v, asset);
        if (!asset.empty() && !a) return out;
        for (const auto& d : v.devices) {
            if (!type.empty() && d.type != type) continue;
            if (a && !std::binary_search(a->devices.begin(), a->devices.end(), d.name)) continue;
            out.push_back(&d);
        }
    }
    std::sort(out.begin(), out.end(),
              [](const device_word* a, const device_word* b) { return a->name < b->name; });
    out.erase(std::unique(out.begin(), out.end()), out.end());
    return out;
}

bool device_has_metric(const vocabulary& v, const device_word& d, std::string_view metric) {
    const type_word* t = find_type(v, d.type);
    if (t && !t->metrics.empty())
        return std::find(t->metrics.begin(), t->metrics.end(), metric) != t->metrics.end();
    return find_metric(v, metric) != nullptr;
}

std::string metric_display(const metric_word& m) {
    std::string name = m.synonyms.empty() ? m.name : m.synonyms.front();
    std::replace(name.begin(), name.end(), '_', ' ');
    return name;
}

std::string plural_of(std::string_view noun) {
    std::string s(noun);
    if (s.empty()) return s;
    if (s.ends_with("s") || s.ends_with("x") || s.ends_with("ch") || s.ends_with("sh"))
        return s + "es";
    if (s.size() > 1 && s.back() == 'y' &&
        std::string_view("aeiou").find(s[s.size() - 2]) == std::string_view::npos)
        return s.substr(0, s.size() - 1) + "ies";
    return s + "s";
}

std::vector<std::string> builtin_synonyms(std::string_view metric) {
    // The first of each list is how answers and suggestions name the metric.
    if (metric == "temperature") return {"temperature", "temp", "temps", "temperatures"};
    if (metric == "vibration_rms" || metric == "vibration")
        return {"vibration", "vib", "vibrations", "vibration rms", "vibes"};
    if (metric == "current")
        return {"current", "amps", "amperage", "load current", "amp", "motor current"};
    if (metric == "rpm") return {"speed", "rpm", "revolutions", "revs", "rotation speed"};
    if (metric == "pressure") return {"pressure", "press", "pressures"};
    if (metric == "flow") return {"flow", "flow rate", "throughput", "flows"};
    if (metric == "humidity") return {"humidity"};
    return {};
}

}  // namespace detail

namespace {

// A metric's words: the built-in synonyms first, then the name itself and its words
// ("vibration_rms" -> "vibration rms").
std::vector<std::string> synonyms_of(const std::string& name) {
    std::vector<std::string> words = detail::builtin_synonyms(name);
    auto add = [&](std::string w) {
        if (!w.empty() && std::find(words.begin(), words.end(), w) == words.end())
            words.push_back(std::move(w));
    };
    add(name);
    std::string spaced = name;
    std::replace(spaced.begin(), spaced.end(), '_', ' ');
    std::replace(spaced.begin(), spaced.end(), '.', ' ');
    add(spaced);
    return words;
}

}  // namespace

result<vocabulary> build_vocabulary(devices::registry& registry, const storage::engine& engine,
                                    std::string_view time_zone) {
    auto zone = detail::zone_named(time_zone);
    if (!zone) return zone.error();
    vocabulary v;
    v.time_zone = time_zone.empty() ? std::string((*zone)->name()) : std::string(time_zone);

    auto types = registry.list_types();
    if (!types) return types.error();
    auto devices = registry.list_devices();
    if (!devices) return devices.error();
    auto assets = registry.list_assets();
    if (!assets) return assets.error();
    auto relations = registry.list_relations({"", "", "contains"});
    if (!relations) return relations.error();

    std::map<std::string, std::string> unit_of;  // metric -> the first type's unit for it
    for (const auto& t : *types) {
        type_word w{t.name, detail::plural_of(t.name), {}};
        for (const auto& [metric, spec] : t.metrics) {
            w.metrics.push_back(metric);
            unit_of.emplace(metric, spec.unit);
        }
        v.types.push_back(std::move(w));
    }

    // The `contains` hierarchy: each node's children, each node's container.
    std::map<std::string, std::vector<std::string>> children;
    std::map<std::string, std::string> parent;
    for (const auto& r : *relations) {
        if (r.from.kind != "asset") continue;
        children[r.from.name].push_back(r.to.name);
        parent.emplace(r.to.name, r.from.name);  // a tree: the first container wins
    }
    std::set<std::string> device_names;
    for (const auto& d : *devices)
        device_names.insert(d.name);

    for (const auto& a : *assets) {
        asset_word w{a.name, a.type, {}, {}};
        if (auto p = parent.find(a.name); p != parent.end()) w.parent = p->second;
        // Every device in the subtree (the hierarchy has no cycles: the registry refuses them).
        std::vector<std::string> stack{a.name};
        std::set<std::string> seen{a.name};
        while (!stack.empty()) {
            std::string node = std::move(stack.back());
            stack.pop_back();
            auto c = children.find(node);
            if (c == children.end()) continue;
            for (const auto& child : c->second) {
                if (!seen.insert(child).second) continue;
                if (device_names.count(child)) w.devices.push_back(child);
                stack.push_back(child);
            }
        }
        std::sort(w.devices.begin(), w.devices.end());
        v.assets.push_back(std::move(w));
    }

    for (const auto& d : *devices) {
        device_word w{d.name, d.type, d.label, {}, d.online};
        std::set<std::string> seen;
        for (auto p = parent.find(d.name); p != parent.end() && seen.insert(p->second).second;
             p = parent.find(p->second))
            w.assets.push_back(p->second);
        v.devices.push_back(std::move(w));
    }
    std::sort(v.devices.begin(), v.devices.end(),
              [](const device_word& a, const device_word& b) { return a.name < b.name; });

    // Metrics: every type's, and every stored numeric field that is not derived by Clisonix
    // itself (anomaly scores, range flags, health), so that a device without a type is known.
    std::set<std::string> fields;
    for (const auto& [metric, unit] : unit_of)
        fields.insert(metric);
    engine.series([&](const storage::series_info& s) {
        if (s.type != storage::value_type::string && !storage::is_derived_field(s.field))
            fields.insert(s.field);
        return false;
    });
    for (const auto& f : fields) {
        auto u = unit_of.find(f);
        v.metrics.push_back({f, u == unit_of.end() ? std::string() : u->second, synonyms_of(f)});
    }
    return v;
}

}  // namespace clisonix::ask
