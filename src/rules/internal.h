// Private to rules: the SQL of rules, alarms and comments, and JSON helpers.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/json_text.h"
#include "rules/rules.h"

namespace clisonix::rules::detail {

using meta::as_double;
using meta::as_int;
using meta::as_text;

using clisonix::append_json_string;

result<std::vector<rule>> load_rules(meta::store& store);
result<int64_t> insert_rule(meta::store& store, const rule& r);
status update_rule(meta::store& store, const rule& r);
status delete_rule(meta::store& store, int64_t id);

result<std::vector<alarm>> load_open_alarms(meta::store& store);
result<alarm> load_alarm(meta::store& store, int64_t id);
result<std::vector<comment>> load_comments(meta::store& store, int64_t alarm_id);
result<comment> insert_comment(meta::store& store, int64_t alarm_id, std::string_view author,
                               std::string_view text, int64_t at);
// `devices`: when set, only alarms of these devices (an asset's subtree).
result<alarm_page> query_alarms(meta::store& store, const alarm_filter& f,
                                const std::vector<std::string>* devices);

}  // namespace clisonix::rules::detail
