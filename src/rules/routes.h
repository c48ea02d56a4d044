// Clisonix — the rules and alarms API (the engine is in rules.h, which knows no HTTP).
#pragma once

#include <functional>
#include <string_view>

#include "http/http.h"
#include "rules/rules.h"

namespace clisonix::rules {

// Told of every change made through the API, after it succeeded, for the audit log:
// action "rule.create", "rule.update", "rule.delete", "alarm.ack", "alarm.clear",
// "alarm.comment"; target the rule's name or the alarm's id.
using audit_fn =
    std::function<void(const http::request& req, std::string_view action, std::string_view target)>;

// /api/v1/rules (GET read; POST, PUT, DELETE admin) and /api/v1/alarms (GET read; ack,
// clear and comments with http::permission::alarms).
void add_routes(http::router& routes, engine& e, audit_fn audit = {});

}  // namespace clisonix::rules
