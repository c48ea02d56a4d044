// The registry contract on a three-level plant, the same on every metadata backend:
//
//   site-1 ─contains─► line-1 ─contains─► machine-1a ─contains─► dev-1a
//          └contains─► line-2 ─contains─► machine-2a ─contains─► dev-2a-1, dev-2a-2
//                             └contains─► machine-2b ─contains─► dev-2b
//   line-1 ─feeds─► line-2;  dev-2b ─monitors─► machine-2a;  dev-loose (no relation)
#include <gmock/gmock.h>

#include <boost/json.hpp>

#include <array>
#include <cmath>

#include "registry_contract.h"

namespace clisonix::devices::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::vector<std::string> names(const std::vector<node>& nodes) {
    std::vector<std::string> out;
    for (const auto& n : nodes)
        out.push_back(n.name);
    return out;
}

class plant : public registry_contract {
protected:
    void SetUp() override {
        registry_contract::SetUp();
        if (HasFatalFailure()) return;
        for (auto [name, type] : {std::pair{"site-1", "site"},
                                  {"line-1", "line"},
                                  {"line-2", "line"},
                                  {"machine-1a", "machine"},
                                  {"machine-2a", "machine"},
                                  {"machine-2b", "machine"}}) {
            auto a = reg->create_asset({name, type, "", ""});
            ASSERT_TRUE(a.ok()) << a.error().message;
        }
        for (auto name : {"dev-1a", "dev-2a-1", "dev-2a-2", "dev-2b", "dev-loose"}) {
            auto d = reg->create_device({name, "sensor", "", ""}, by);
            ASSERT_TRUE(d.ok()) << d.error().message;
        }
        for (auto [from, to, type] : {std::tuple{"site-1", "line-1", "contains"},
                                      {"site-1", "line-2", "contains"},
                                      {"line-1", "machine-1a", "contains"},
                                      {"line-2", "machine-2a", "contains"},
                                      {"line-2", "machine-2b", "contains"},
                                      {"machine-1a", "dev-1a", "contains"},
                                      {"machine-2a", "dev-2a-1", "contains"},
                                      {"machine-2a", "dev-2a-2", "contains"},
                                      {"machine-2b", "dev-2b", "contains"},
                                      {"line-1", "line-2", "feeds"},
                                      {"dev-2b", "machine-2a", "monitors"}}) {
            auto r = reg->add_relation(from, to, type);
            ASSERT_TRUE(r.ok()) << from << " " << to << ": " << r.error().message;
        }
    }
};

TEST_P(plant, children_by_name_and_by_id) {
    auto c = reg->children("line-2");
    ASSERT_TRUE(c.ok()) << c.error().message;
    EXPECT_THAT(names(*c), ElementsAre("machine-2a", "machine-2b"));
    EXPECT_EQ(c->at(0).kind, "asset");
    EXPECT_EQ(c->at(0).type, "machine");

    auto line2 = reg->get_asset("line-2");
    ASSERT_TRUE(line2.ok());
    auto by_id = reg->children(std::to_string(line2->id));
    ASSERT_TRUE(by_id.ok());
    EXPECT_THAT(names(*by_id), ElementsAre("machine-2a", "machine-2b"));

    auto devs = reg->children("machine-2a");
    EXPECT_THAT(names(*devs), ElementsAre("dev-2a-1", "dev-2a-2"));
    EXPECT_EQ(devs->at(0).kind, "device");
    EXPECT_EQ(devs->at(0).type, "sensor");
    EXPECT_THAT(names(*reg->children("line-1", "feeds")), ElementsAre("line-2"));
    EXPECT_THAT(names(*reg->children("line-1", "*")), ElementsAre("line-2", "machine-1a"));
    EXPECT_TRUE(reg->children("dev-loose")->empty());
    EXPECT_EQ(reg->children("nowhere").error().code, "not_found");
}

TEST_P(plant, ancestors_nearest_first) {
    auto a = reg->ancestor_nodes("dev-2a-1");
    ASSERT_TRUE(a.ok()) << a.error().message;
    EXPECT_THAT(names(*a), ElementsAre("machine-2a", "line-2", "site-1"));
    EXPECT_EQ(a->at(0).depth, 1);
    EXPECT_EQ(a->at(2).depth, 3);
    EXPECT_THAT(*reg->ancestors("dev-1a"), ElementsAre("machine-1a", "line-1", "site-1"));
    EXPECT_THAT(*reg->ancestors("line-2"), ElementsAre("site-1"));
    EXPECT_TRUE(reg->ancestors("site-1")->empty());
    EXPECT_TRUE(reg->ancestors("dev-loose")->empty());
}

TEST_P(plant, subtree_to_a_depth) {
    auto one = reg->subtree("site-1", 1);
    ASSERT_TRUE(one.ok()) << one.error().message;
    EXPECT_THAT(names(*one), ElementsAre("site-1", "line-1", "line-2"));
    auto two = reg->subtree("site-1", 2);
    EXPECT_THAT(names(*two), ElementsAre("site-1", "line-1", "line-2", "machine-1a", "machine-2a",
                                         "machine-2b"));
    EXPECT_EQ(two->back().depth, 2);
    auto all = reg->subtree("site-1");
    EXPECT_THAT(names(*all), ElementsAre("site-1", "line-1", "line-2", "machine-1a", "machine-2a",
                                         "machine-2b", "dev-1a", "dev-2a-1", "dev-2a-2", "dev-2b"));
    EXPECT_THAT(names(*reg->subtree("line-2", 0)), ElementsAre("line-2"));
}

TEST_P(plant, devices_under_an_asset) {
    EXPECT_THAT(*reg->devices_under("line-2"), ElementsAre("dev-2a-1", "dev-2a-2", "dev-2b"));
    EXPECT_THAT(*reg->devices_under("site-1"),
                ElementsAre("dev-1a", "dev-2a-1", "dev-2a-2", "dev-2b"));
    EXPECT_THAT(*reg->devices_under("machine-2b"), ElementsAre("dev-2b"));
    EXPECT_TRUE(reg->devices_under("line-2", 1)->empty());
    EXPECT_THAT(*reg->devices_under("line-2", 2), ElementsAre("dev-2a-1", "dev-2a-2", "dev-2b"));
    auto unknown = reg->devices_under("line-9");
    ASSERT_FALSE(unknown.ok());
    EXPECT_EQ(unknown.error().code, "not_found");
    EXPECT_EQ(unknown.error().field, "asset");
}

TEST_P(plant, shortest_path_in_either_direction) {
    auto p = reg->shortest_path("dev-1a", "dev-2b");
    ASSERT_TRUE(p.ok()) << p.error().message;
    // Through feeds (5 edges), not through the site (6).
    EXPECT_THAT(names(p->nodes),
                ElementsAre("dev-1a", "machine-1a", "line-1", "line-2", "machine-2b", "dev-2b"));
    ASSERT_EQ(p->edges.size(), 5u);
    EXPECT_EQ(p->edges[0].from.name, "machine-1a");  // walked against its direction
    EXPECT_EQ(p->edges[0].to.name, "dev-1a");
    EXPECT_EQ(p->edges[2].type, "feeds");

    auto directed = reg->shortest_path("site-1", "dev-2b", true);
    ASSERT_TRUE(directed.ok());
    EXPECT_THAT(names(directed->nodes), ElementsAre("site-1", "line-2", "machine-2b", "dev-2b"));
    auto against = reg->shortest_path("dev-2b", "site-1", true);
    ASSERT_FALSE(against.ok());
    EXPECT_EQ(against.error().code, "not_found");
    auto none = reg->shortest_path("dev-loose", "site-1");
    EXPECT_EQ(none.error().code, "not_found");
    EXPECT_EQ(reg->shortest_path("site-1", "site-1")->nodes.size(), 1u);
}

TEST_P(plant, contains_cycles_are_refused_naming_the_cycle) {
    auto before = reg->list_relations({});
    ASSERT_TRUE(before.ok());
    auto r = reg->add_relation("machine-2a", "site-1", "contains");
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, "conflict");
    EXPECT_EQ(r.error().message,
              "\"machine-2a\" contains \"site-1\" would close a contains cycle: machine-2a -> "
              "site-1 -> line-2 -> machine-2a");
    // Other relation types may loop back.
    EXPECT_TRUE(reg->add_relation("machine-2a", "site-1", "reports_to").ok());
    auto self = reg->add_relation("line-1", "line-1", "contains");
    EXPECT_EQ(self.error().code, "invalid_argument");
    auto twice = reg->add_relation("site-1", "line-1", "contains");
    EXPECT_EQ(twice.error().code, "conflict");
    EXPECT_EQ(reg->list_relations({})->size(), before->size() + 1);
}

TEST_P(plant, relations_by_name_or_id_and_filters) {
    auto site = reg->get_asset("site-1");
    auto dev = reg->get_device("dev-loose");
    ASSERT_TRUE(site.ok() && dev.ok());
    auto r = reg->add_relation(std::to_string(site->id), std::to_string(dev->id), "contains");
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_EQ(r->from.name, "site-1");
    EXPECT_EQ(r->to.name, "dev-loose");
    EXPECT_EQ(r->to.kind, "device");

    auto from_site = reg->list_relations({"site-1", "", "contains"});
    ASSERT_TRUE(from_site.ok());
    ASSERT_EQ(from_site->size(), 3u);
    EXPECT_EQ(from_site->at(2).to.name, "dev-loose");
    EXPECT_EQ(reg->list_relations({"", "machine-2a", ""})->size(), 2u);  // contains + monitors
    EXPECT_EQ(reg->list_relations({"nobody", "", ""}).error().field, "from");

    ASSERT_TRUE(reg->delete_relation(r->id).ok());
    EXPECT_EQ(reg->delete_relation(r->id).error().code, "not_found");
    EXPECT_EQ(reg->add_relation("site-1", "ghost", "contains").error().field, "to");
}

TEST_P(plant, deleting_a_node_deletes_its_relations) {
    ASSERT_TRUE(reg->delete_asset("machine-2a").ok());
    EXPECT_THAT(*reg->devices_under("line-2"), ElementsAre("dev-2b"));
    EXPECT_TRUE(reg->list_relations({"", "", "monitors"})->empty());
    ASSERT_TRUE(reg->delete_device("dev-2b", by).ok());
    EXPECT_TRUE(reg->devices_under("line-2")->empty());
    EXPECT_EQ(reg->get_device("dev-2b").error().code, "not_found");
}

// ---- devices, types and tokens --------------------------------------------------------

TEST_P(registry_contract, a_created_device_gets_a_working_token_and_a_default_profile) {
    auto d = reg->create_device({"pump-1", "pump", "Pump 1", "north bay"}, by);
    ASSERT_TRUE(d.ok()) << d.error().message;
    EXPECT_GT(d->info.id, 0);
    EXPECT_EQ(d->info.type, "pump");
    auto who = auth->authenticate_device(d->token);
    ASSERT_TRUE(who.ok()) << who.error().message;
    EXPECT_EQ(who->device, "pump-1");

    auto t = reg->get_type("pump");
    ASSERT_TRUE(t.ok()) << t.error().message;
    EXPECT_EQ(t->offline_timeout_ms, 600'000);
    EXPECT_TRUE(t->metrics.empty());
    EXPECT_EQ(*reg->type_of("pump-1"), "pump");

    auto got = reg->get_device(std::to_string(d->info.id));
    ASSERT_TRUE(got.ok());
    EXPECT_EQ(got->name, "pump-1");
    EXPECT_EQ(got->label, "Pump 1");
    EXPECT_EQ(got->description, "north bay");
    EXPECT_FALSE(got->online);
    EXPECT_FALSE(got->last_seen.has_value());
}

TEST_P(registry_contract, names_are_unique_across_devices_and_assets_and_checked) {
    ASSERT_TRUE(reg->create_device({"x-1", "default", "", ""}, by).ok());
    auto dup = reg->create_device({"x-1", "default", "", ""}, by);
    EXPECT_EQ(dup.error().code, "conflict");
    EXPECT_EQ(dup.error().field, "name");
    auto asset_dup = reg->create_asset({"x-1", "line", "", ""});
    EXPECT_EQ(asset_dup.error().code, "conflict");
    EXPECT_EQ(asset_dup.error().message, "A device or asset named \"x-1\" already exists");

    auto spaces = reg->create_device({"bad name", "default", "", ""}, by);
    EXPECT_EQ(spaces.error().code, "invalid_argument");
    EXPECT_EQ(spaces.error().field, "name");
    EXPECT_EQ(reg->create_device({"12345", "default", "", ""}, by).error().field, "name");
    EXPECT_EQ(reg->create_device({"ok-2", "bad type", "", ""}, by).error().field, "type");
    EXPECT_EQ(reg->create_asset({"a-1", "", "", ""}).error().field, "type");
    EXPECT_EQ(reg->list_devices()->size(), 1u);
}

TEST_P(registry_contract, device_types_crud_with_metrics) {
    device_type t;
    t.name = "thermo";
    t.description = "Thermometer";
    t.metrics["temperature"] = {"C", -20.0, 80.0};
    t.metrics["humidity"] = {"%", std::nullopt, 100.0};
    t.offline_timeout_ms = 30'000;
    auto made = reg->create_type(t);
    ASSERT_TRUE(made.ok()) << made.error().message;
    auto again = reg->create_type(t);
    ASSERT_FALSE(again.ok());
    EXPECT_EQ(again.error().code, "conflict");

    auto got = reg->get_type("thermo");
    ASSERT_TRUE(got.ok());
    EXPECT_EQ(got->metrics.at("temperature").unit, "C");
    EXPECT_EQ(*got->metrics.at("temperature").min, -20.0);
    EXPECT_FALSE(got->metrics.at("humidity").min.has_value());
    EXPECT_EQ(got->offline_timeout_ms, 30'000);

    type_update u;
    u.offline_timeout_ms = 5'000;
    auto changed = reg->update_type(std::to_string(made->id), u);
    ASSERT_TRUE(changed.ok());
    EXPECT_EQ(changed->offline_timeout_ms, 5'000);
    EXPECT_EQ(changed->metrics.size(), 2u);

    ASSERT_TRUE(reg->create_device({"th-1", "thermo", "", ""}, by).ok());
    auto in_use = reg->delete_type("thermo");
    ASSERT_FALSE(in_use.ok());
    EXPECT_EQ(in_use.error().code, "conflict");
    ASSERT_TRUE(reg->delete_device("th-1", by).ok());
    EXPECT_TRUE(reg->delete_type("thermo").ok());
    EXPECT_EQ(reg->get_type("thermo").error().code, "not_found");

    device_type bad;
    bad.name = "bad";
    bad.metrics["t"] = {"", 5.0, 1.0};
    auto refused = reg->create_type(bad);
    ASSERT_FALSE(refused.ok());
    EXPECT_EQ(refused.error().code, "invalid_argument");
}

TEST_P(registry_contract, deleting_a_device_revokes_its_token) {
    auto d = reg->create_device({"gone-1", "default", "", ""}, by);
    ASSERT_TRUE(d.ok());
    ASSERT_TRUE(reg->delete_device("gone-1", by).ok());
    EXPECT_FALSE(auth->authenticate_device(d->token).ok());
    // The name is free again, with a new token.
    auto again = reg->create_device({"gone-1", "default", "", ""}, by);
    ASSERT_TRUE(again.ok()) << again.error().message;
    EXPECT_NE(again->token, d->token);
}

TEST_P(registry_contract, attributes_in_three_scopes) {
    ASSERT_TRUE(reg->create_device({"att-1", "default", "", ""}, by).ok());
    std::vector<std::pair<std::string, std::string>> pushed;
    reg->on_shared_attributes(
        [&pushed](const std::string& d, const std::string& json) { pushed.emplace_back(d, json); });
    ASSERT_TRUE(reg->set_attributes("att-1", "server", R"({"serial":"A-17","rev":3})").ok());
    ASSERT_TRUE(reg->set_attributes("att-1", "shared", R"({"interval":10})").ok());
    ASSERT_TRUE(reg->set_client_attributes("att-1", R"({"fw":"1.2.0"})").ok());
    ASSERT_TRUE(reg->set_attributes("att-1", "shared", R"({"interval":20,"mode":"eco"})").ok());
    ASSERT_EQ(pushed.size(), 2u);
    EXPECT_EQ(pushed[1].first, "att-1");
    EXPECT_EQ(pushed[1].second, R"({"interval":20,"mode":"eco"})");

    EXPECT_EQ(*reg->attributes("att-1", ""),
              R"({"client":{"fw":"1.2.0"},"server":{"rev":3,"serial":"A-17"},)"
              R"("shared":{"interval":20,"mode":"eco"}})");
    EXPECT_EQ(*reg->attributes("att-1", "shared"), R"({"shared":{"interval":20,"mode":"eco"}})");
    EXPECT_EQ(*reg->attribute_response("att-1", R"({"clientKeys":"fw,none","sharedKeys":"mode"})"),
              R"({"client":{"fw":"1.2.0"},"shared":{"mode":"eco"}})");
    EXPECT_EQ(*reg->attribute_response("att-1", "{}"),
              R"({"client":{"fw":"1.2.0"},"shared":{"interval":20,"mode":"eco"}})");

    ASSERT_TRUE(reg->delete_attributes("att-1", "shared", {"mode"}).ok());
    EXPECT_EQ(*reg->attributes("att-1", "shared"), R"({"shared":{"interval":20}})");
    EXPECT_EQ(reg->attributes("att-1", "global").error().field, "scope");
    EXPECT_EQ(reg->set_attributes("att-1", "server", "[1]").error().code, "invalid_argument");
    EXPECT_EQ(reg->set_attributes("nobody", "server", R"({"a":1})").error().code, "not_found");
}

TEST_P(registry_contract, online_from_last_seen_and_flushed_to_the_store) {
    device_type t;
    t.name = "fast";
    t.offline_timeout_ms = 60'000;
    ASSERT_TRUE(reg->create_type(t).ok());
    ASSERT_TRUE(reg->create_device({"on-1", "fast", "", ""}, by).ok());
    ASSERT_TRUE(reg->create_device({"on-2", "fast", "", ""}, by).ok());
    const int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
    reg->seen("on-1", now - 1'000);
    reg->seen("on-2", now - 120'000);  // older than the type's timeout
    reg->seen("unknown", now);         // ignored
    EXPECT_TRUE(reg->get_device("on-1")->online);
    EXPECT_EQ(*reg->get_device("on-1")->last_seen, now - 1'000);
    EXPECT_FALSE(reg->get_device("on-2")->online);
    reg->set_connected("on-2", true);
    EXPECT_TRUE(reg->get_device("on-2")->online);
    EXPECT_TRUE(reg->get_device("on-2")->connected);

    ASSERT_TRUE(reg->flush().ok());
    auto r = store->query("SELECT last_seen FROM devices WHERE name = 'on-1'");
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(std::get<int64_t>(r->data.at(0).at(0)), now - 1'000);
    // A new registry (a restart) starts from the stored times.
    reg.reset();
    reg = make_registry();
    EXPECT_EQ(*reg->get_device("on-1")->last_seen, now - 1'000);
    EXPECT_TRUE(reg->get_device("on-1")->online);
}

// A second registry on the same store plays another process sharing it: what it creates or
// changes reaches this registry's mirror at reload(), which keeps what only this one knows.
TEST_P(registry_contract, reload_sees_another_registrys_changes_and_keeps_unflushed_times) {
    auto other = make_registry();
    ASSERT_TRUE(reg->create_device({"kept-1", "sensor", "", ""}, by).ok());
    const int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
    reg->seen("kept-1", now);  // not flushed yet

    device_type t;
    t.name = "thermo";
    t.metrics["temperature"] = {"C", 0.0, 100.0};
    ASSERT_TRUE(other->create_type(t).ok());
    ASSERT_TRUE(other->create_device({"th-9", "thermo", "", ""}, by).ok());
    auto flagged = [&] {
        storage::write_batch b;
        auto temp = *b.series("telemetry,device=th-9 temperature", storage::value_type::float64);
        b.add(temp, 1000, 150.0);
        reg->enrich(b);
        return b.series_count() == 2;
    };
    EXPECT_FALSE(flagged());  // this mirror has not heard of th-9 yet
    const uint64_t before = reg->generation();

    ASSERT_TRUE(reg->reload().ok());
    EXPECT_TRUE(flagged());
    EXPECT_NE(reg->generation(), before);
    EXPECT_EQ(*reg->type_of("th-9"), "thermo");
    EXPECT_EQ(*reg->get_device("kept-1")->last_seen, now);
    EXPECT_TRUE(reg->get_device("kept-1")->online);

    // A device deleted elsewhere leaves the mirror.
    ASSERT_TRUE(other->delete_device("th-9", by).ok());
    ASSERT_TRUE(reg->reload().ok());
    EXPECT_FALSE(flagged());
}

TEST_P(registry_contract, out_of_range_points_are_flagged_beside_them) {
    device_type t;
    t.name = "thermo";
    t.metrics["temperature"] = {"C", 0.0, 100.0};
    ASSERT_TRUE(reg->create_type(t).ok());
    ASSERT_TRUE(reg->create_device({"th-1", "thermo", "", ""}, by).ok());

    storage::write_batch b;
    auto temp = *b.series("telemetry,device=th-1 temperature", storage::value_type::float64);
    auto hum = *b.series("telemetry,device=th-1 humidity", storage::value_type::float64);
    auto other = *b.series("telemetry,device=stranger temperature", storage::value_type::float64);
    auto count = *b.series("telemetry,device=th-1 temperature_i", storage::value_type::int64);
    b.add(temp, 1000, 50.0);
    b.add(temp, 2000, 120.5);
    b.add(temp, 3000, -0.5);
    b.add(hum, 2000, 500.0);    // no range for humidity
    b.add(other, 2000, 500.0);  // not a registered device
    b.add_int(count, 2000, 7);
    reg->enrich(b);
    ASSERT_EQ(b.series_count(), 5u);
    EXPECT_EQ(b.series_entries()[4].key, "telemetry,device=th-1 temperature.out_of_range");
    ASSERT_EQ(b.point_count(), 8u);
    EXPECT_EQ(b.points()[6].series, 4u);
    EXPECT_EQ(b.points()[6].ts, 2000);
    EXPECT_EQ(storage::as_double(storage::value_type::float64, b.points()[6].raw), 1.0);
    EXPECT_EQ(b.points()[7].ts, 3000);

    // A changed range applies to the next batch (the cache is dropped).
    type_update u;
    u.metrics = std::map<std::string, metric_spec>{{"temperature", {"C", 0.0, 200.0}}};
    ASSERT_TRUE(reg->update_type("thermo", u).ok());
    b.clear();
    temp = *b.series("telemetry,device=th-1 temperature", storage::value_type::float64);
    b.add(temp, 4000, 120.5);
    reg->enrich(b);
    EXPECT_EQ(b.point_count(), 1u);

    // observe() marks the batch's devices seen.
    EXPECT_FALSE(reg->get_device("th-1")->last_seen.has_value());
    reg->observe(b);
    EXPECT_TRUE(reg->get_device("th-1")->online);
}

TEST_P(registry_contract, import_keeps_good_rows_reports_bad_ones_and_skips_existing) {
    ASSERT_TRUE(reg->create_device({"imp-0", "default", "", ""}, by).ok());
    std::vector<import_row> rows;
    std::vector<import_error> errors;
    parse_device_csv(
        "name,type,label,description\nimp-1,meter,Meter 1,\"hall, east\"\nbad name,meter,,\n"
        "imp-2,,,\nimp-0,default,,\nimp-1,meter,,\n",
        rows, errors);
    ASSERT_EQ(errors.size(), 2u);
    EXPECT_EQ(errors[0].line, 3u);
    EXPECT_EQ(errors[0].field, "name");
    EXPECT_EQ(errors[1].line, 6u);
    EXPECT_EQ(errors[1].message, "name: imp-1 is already on line 2");
    ASSERT_EQ(rows.size(), 3u);
    EXPECT_EQ(rows[0].device.description, "hall, east");
    EXPECT_EQ(rows[1].device.type, "default");

    auto report = reg->import_devices(rows, by);
    ASSERT_EQ(report.created.size(), 2u);
    EXPECT_EQ(report.created[0].first, 2u);
    EXPECT_EQ(report.created[0].second.info.name, "imp-1");
    EXPECT_TRUE(auth->authenticate_device(report.created[1].second.token).ok());
    ASSERT_EQ(report.skipped.size(), 1u);
    EXPECT_EQ(report.skipped[0].second, "imp-0");
    EXPECT_TRUE(report.errors.empty());
    EXPECT_EQ(reg->list_devices()->size(), 3u);
    EXPECT_EQ(reg->list_devices("meter")->size(), 1u);

    // A row that fails in the store (an asset has the name) spoils the one-transaction fast
    // path; the rows then go one by one and only that one fails.
    ASSERT_TRUE(reg->create_asset({"hall-1", "area", "", ""}).ok());
    std::vector<import_row> more{{2, {"imp-5", "meter", "", ""}},
                                 {3, {"hall-1", "meter", "", ""}},
                                 {4, {"imp-6", "meter", "", ""}}};
    auto second = reg->import_devices(more, by);
    ASSERT_EQ(second.created.size(), 2u);
    EXPECT_EQ(second.created[1].second.info.name, "imp-6");
    ASSERT_EQ(second.errors.size(), 1u);
    EXPECT_EQ(second.errors[0].line, 3u);
    EXPECT_EQ(second.errors[0].field, "name");
    EXPECT_EQ(second.errors[0].message, "A device or asset named \"hall-1\" already exists");
    EXPECT_EQ(*reg->type_of("imp-6"), "meter");
}

INSTANTIATE_TEST_SUITE_P(devices, registry_contract, ::testing::Values(this_backend()),
                         backend_name);
INSTANTIATE_TEST_SUITE_P(devices, plant, ::testing::Values(this_backend()), backend_name);

}  // namespace

}  // namespace clisonix::devices::testing
