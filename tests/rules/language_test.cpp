// The rule language: every form parses to what it says, and every mistake is reported at
// its exact position.
#include <gtest/gtest.h>

#include "rules/language.h"
#include "rules/rules.h"

namespace clisonix::rules::detail {
namespace {

condition parse_ok(std::string_view text, symbols& syms) {
    auto c = parse_condition(text, syms);
    EXPECT_TRUE(c.ok()) << text << ": " << (c.ok() ? "" : c.error().message);
    return c.ok() ? *c : condition{};
}

std::string parse_error(std::string_view text) {
    symbols syms;
    auto c = parse_condition(text, syms);
    if (c.ok()) return "parsed";
    EXPECT_EQ(c.error().code, "invalid_argument");
    return c.error().message;
}

double eval(const condition& c, std::vector<double> values, std::vector<double> means = {}) {
    eval_context ctx{values.data(), means.data()};
    return evaluate(c.expr, c.expr.root, ctx);
}

TEST(rules_language, threshold_with_duration) {
    symbols s;
    auto c = parse_ok("temperature > 80 for 5m", s);
    EXPECT_EQ(c.what, kind::expression);
    EXPECT_EQ(c.hold_ms, 300'000);
    EXPECT_EQ(c.hold_points, 0);
    ASSERT_EQ(s.metrics, std::vector<std::string>{"temperature"});
    EXPECT_EQ(eval(c, {80.5}), 1);
    EXPECT_EQ(eval(c, {80}), 0);
    EXPECT_EQ(c.expr.nodes[c.expr.value_node].kind, op::metric);
}

TEST(rules_language, every_comparison_and_outside) {
    struct expect {
        const char* text;
        double value;
        double result;
    };
    for (auto e :
         {expect{"t < 5", 4, 1}, expect{"t < 5", 5, 0}, expect{"t <= 5", 5, 1},
          expect{"t >= 5", 5, 1}, expect{"t >= 5", 4.9, 0}, expect{"t == 5", 5, 1},
          expect{"t != 5", 5, 0}, expect{"t != 5", 6, 1}, expect{"t outside 10..80", 9.5, 1},
          expect{"t outside 10..80", 10, 0}, expect{"t outside 10..80", 80, 0},
          expect{"t outside 10..80", 80.1, 1}, expect{"t outside -5..5", -6, 1}}) {
        symbols s;
        auto c = parse_ok(e.text, s);
        EXPECT_EQ(eval(c, {e.value}), e.result) << e.text << " with " << e.value;
    }
    symbols s;
    EXPECT_EQ(parse_ok("temperature outside 10..80 for 30s", s).hold_ms, 30'000);
}

TEST(rules_language, durations_and_points) {
    symbols s;
    EXPECT_EQ(parse_ok("t > 1 for 250ms", s).hold_ms, 250);
    EXPECT_EQ(parse_ok("t > 1 for 30 s", s).hold_ms, 30'000);
    EXPECT_EQ(parse_ok("t > 1 for 2h", s).hold_ms, 7'200'000);
    EXPECT_EQ(parse_ok("t > 1 for 1d", s).hold_ms, 86'400'000);
    EXPECT_EQ(parse_ok("t > 1 for 1.5m", s).hold_ms, 90'000);
    EXPECT_EQ(parse_ok("t > 1 for 3 points", s).hold_points, 3);
    EXPECT_EQ(parse_ok("t > 1 for 1 point", s).hold_points, 1);
    EXPECT_EQ(*parse_duration("10m"), 600'000);
    EXPECT_EQ(parse_duration("10 parsecs").error().message,
              "position 3: expected a time unit (ms, s, m, h, d) after the number");
}

TEST(rules_language, rate_of_change) {
    symbols s;
    auto c = parse_ok("temperature rises more than 2 per minute", s);
    EXPECT_EQ(c.what, kind::rate);
    EXPECT_TRUE(c.rises);
    EXPECT_EQ(c.limit, 2);
    EXPECT_EQ(c.per_ms, 60'000);
    EXPECT_EQ(c.rate_slot, 0);
    auto f = parse_ok("pressure falls more than 0.5 per second for 10s", s);
    EXPECT_FALSE(f.rises);
    EXPECT_EQ(f.per_ms, 1000);
    EXPECT_EQ(f.hold_ms, 10'000);
    EXPECT_EQ(f.rate_slot, 1);
    EXPECT_EQ(parse_ok("level rises more than 10 per hour", s).per_ms, 3'600'000);
}

TEST(rules_language, anomaly_score_over_points) {
    symbols s;
    auto c = parse_ok("anomaly(temperature) > 0.8 for 3 points", s);
    EXPECT_EQ(c.hold_points, 3);
    EXPECT_EQ(s.metrics, std::vector<std::string>{"temperature.anomaly"});
    EXPECT_EQ(eval(c, {0.9}), 1);
}

TEST(rules_language, machine_health) {
    symbols s;
    auto c = parse_ok("health() > 0.5 for 1m", s);
    EXPECT_EQ(c.hold_ms, 60'000);
    EXPECT_EQ(s.metrics, std::vector<std::string>{"health"});
    EXPECT_TRUE(s.uses_health);
    EXPECT_EQ(eval(c, {0.7}), 1);
    EXPECT_EQ(eval(c, {0.4}), 0);
    // In any expression, beside metrics.
    symbols t;
    auto both = parse_ok("health() > 0.3 and temperature > 70", t);
    EXPECT_EQ(t.metrics, (std::vector<std::string>{"health", "temperature"}));
    EXPECT_EQ(eval(both, {0.4, 75}), 1);
    EXPECT_EQ(eval(both, {0.2, 75}), 0);
    symbols u;
    parse_ok("temperature > 80", u);
    EXPECT_FALSE(u.uses_health);
    EXPECT_EQ(parse_error("health(vibration) > 0.5"), "position 7: expected ')' to close health(");
}

TEST(rules_language, no_data) {
    symbols s;
    auto any = parse_ok("no data for 10m", s);
    EXPECT_EQ(any.what, kind::no_data);
    EXPECT_EQ(any.no_data_ms, 600'000);
    EXPECT_EQ(any.no_data_metric, "");
    auto one = parse_ok("no data from temperature for 90s", s);
    EXPECT_EQ(one.no_data_metric, "temperature");
    EXPECT_EQ(one.no_data_ms, 90'000);
    EXPECT_TRUE(s.metrics.empty());
}

TEST(rules_language, expressions_over_several_metrics) {
    symbols s;
    auto c = parse_ok("abs(supply - return) > 5 and mean(flow, 5m) < 2 or not (pressure >= 1)", s);
    ASSERT_EQ(s.metrics, (std::vector<std::string>{"supply", "return", "flow", "pressure"}));
    ASSERT_EQ(s.means.size(), 1u);
    EXPECT_EQ(s.means[0].slot, 2);
    EXPECT_EQ(s.means[0].window_ms, 300'000);
    // supply, return, flow, pressure; mean(flow)
    EXPECT_EQ(eval(c, {10, 4, 0, 2}, {1}), 1);    // |6| > 5 and 1 < 2
    EXPECT_EQ(eval(c, {10, 6, 0, 2}, {1}), 0);    // |4| > 5 fails, pressure >= 1
    EXPECT_EQ(eval(c, {10, 6, 0, 0.5}, {1}), 1);  // not (pressure >= 1)
    auto arith = parse_ok("min(a, b, 3) + max(a, b) * 2 - -a / 4 == 8.5", s);
    // a=2, b=5: min=2, max=5 -> 2 + 10 + 0.5 = 12.5
    std::vector<double> v(s.metrics.size(), 0);
    v[4] = 2;  // a
    v[5] = 5;  // b
    EXPECT_EQ(eval(arith, v), 0);
    auto arith2 = parse_ok("min(a, b, 3) + max(a, b) * 2 - -a / 4 == 12.5", s);
    EXPECT_EQ(eval(arith2, v), 1);
    auto quoted = parse_ok("\"inlet temp\" > 3", s);
    EXPECT_EQ(s.metrics.back(), "inlet temp");
}

TEST(rules_language, division_by_zero_never_fires) {
    symbols s;
    auto c = parse_ok("a / b > 1", s);
    EXPECT_EQ(eval(c, {5, 0}), 0);
    auto d = parse_ok("a / b < 1", s);
    EXPECT_EQ(eval(d, {5, 0}), 0);
}

TEST(rules_language, errors_name_the_position) {
    EXPECT_EQ(parse_error("temperature > for 5m"), "position 14: expected a number after '>'");
    EXPECT_EQ(parse_error("temperature > "), "position 14: expected a number after '>'");
    EXPECT_EQ(parse_error("temperature > 80 for"),
              "position 20: expected a duration or a number of points after 'for'");
    EXPECT_EQ(parse_error("temperature > 80 for 5 parsecs"),
              "position 23: expected a time unit (ms, s, m, h, d) after the number");
    EXPECT_EQ(parse_error("temperature > 80 for 0m"),
              "position 21: the duration must be > 0 and at most 366d");
    EXPECT_EQ(parse_error("temperature = 80"), "position 12: unexpected '='; compare with '=='");
    EXPECT_EQ(parse_error("a > 1 && b > 2"), "position 6: unexpected '&'; use and, or, not");
    EXPECT_EQ(parse_error("temperature"),
              "position 0: the condition must compare something (e.g. '> 80')");
    EXPECT_EQ(parse_error("a < b < c"),
              "position 6: comparisons do not chain; join them with 'and'");
    EXPECT_EQ(parse_error("(a > 1"), "position 6: expected ')'");
    EXPECT_EQ(parse_error("a > 1 b"), "position 6: unexpected 'b' after the condition");
    EXPECT_EQ(parse_error("foo(a) > 1"),
              "position 0: unknown function 'foo'; known: abs, min, max, mean, anomaly, health, "
              "forecast");
    EXPECT_EQ(parse_error("min(a) > 1"), "position 5: min() takes two or more values");
    EXPECT_EQ(parse_error("mean(a) > 1"),
              "position 6: expected ',' and a window, as in mean(temperature, 5m)");
    EXPECT_EQ(parse_error("t outside 10 80"),
              "position 13: expected '..' between the bounds of the range");
    EXPECT_EQ(parse_error("t outside 80..10"),
              "position 14: the range's upper bound is below its lower bound");
    EXPECT_EQ(parse_error("t rises more than x per minute"),
              "position 18: expected a number after 'than'");
    EXPECT_EQ(parse_error("t rises more than 2 per fortnight"),
              "position 24: expected second, minute or hour after 'per'");
    EXPECT_EQ(parse_error("no data"), "position 7: expected 'for' and a duration");
    EXPECT_EQ(parse_error("no data from for 5m"),
              "position 13: expected a metric name after 'from'");
    EXPECT_EQ(parse_error("t > 1 for 2.5 points"),
              "position 10: the number of points must be a whole number >= 1");
    EXPECT_EQ(parse_error("t > 1e999"), "position 4: the number 1e999 is out of range");
    EXPECT_EQ(parse_error("t > \"x"), "position 4: a quoted metric name is not closed with '\"'");
    EXPECT_EQ(parse_error(""), "position 0: expected a metric, a number or '('");
    EXPECT_EQ(parse_error("t > 1 $"), "position 6: unexpected character '$'");
}

TEST(rules_language, nesting_is_bounded) {
    std::string deep(100, '(');
    deep += "a > 1";
    deep += std::string(100, ')');
    auto message = parse_error(deep);
    EXPECT_NE(message.find(": nested deeper than 64 levels"), std::string::npos) << message;
    std::string ok(10, '(');
    ok += "a > 1" + std::string(10, ')');
    EXPECT_EQ(parse_error(ok), "parsed");
}

TEST(rules_language, clear_expressions_share_slots) {
    symbols s;
    auto c = parse_ok("temperature > 80 for 5m", s);
    auto clear = parse_expression("temperature < 75", s);
    ASSERT_TRUE(clear.ok());
    EXPECT_EQ(s.metrics.size(), 1u);
    auto bad = parse_expression("temperature < 75 for 1m", s);
    ASSERT_FALSE(bad.ok());
    EXPECT_EQ(bad.error().message,
              "position 17: a clear condition takes no 'for'; use clear_after");
}

TEST(rules_language, numbers_format_shortest) {
    EXPECT_EQ(format_number(81.2), "81.2");
    EXPECT_EQ(format_number(3), "3");
    EXPECT_EQ(format_number(-0.125), "-0.125");
}

TEST(rules_json_test, documents_round_trip) {
    auto r = rule_from_json(
        R"({"name":"pump hot","scope":{"device":"pump-1"},"severity":"major",
            "condition":"temperature > 80 for 5m","clear":"temperature < 75","notify":["ops"]})");
    ASSERT_TRUE(r.ok());
    r->id = 3;
    EXPECT_EQ(rule_json(*r),
              R"({"id":3,"name":"pump hot","scope":{"device":"pump-1"},"severity":"major",)"
              R"("condition":"temperature > 80 for 5m","clear":"temperature < 75",)"
              R"("notify":["ops"],"enabled":true,"created_at":0,"updated_at":0})");
    EXPECT_EQ(rule_from_json(R"({"name":"a","scope":{"device":"x","asset":"y"}})").error().field,
              "scope");
    EXPECT_EQ(rule_from_json(R"({"name":"a","scope":{"device":"x"},"severity":"major",
        "condition":"t > 1","extra":1})")
                  .error()
                  .field,
              "extra");
    EXPECT_EQ(rule_from_json(R"({"name":"a","scope":{"device":"x"},"severity":"major",
        "condition":"t > 1","notify":["ops", 3]})")
                  .error()
                  .field,
              "notify[1]");
}

TEST(rules_language, forecast_point_in_any_comparison) {
    symbols s;
    auto c = parse_ok("forecast(temperature, 2h) > 90", s);
    EXPECT_EQ(c.what, kind::expression);
    ASSERT_EQ(s.forecasts.size(), 1u);
    EXPECT_EQ(s.forecasts[0].horizon_ms, 7'200'000);
    EXPECT_EQ(s.metrics[s.forecasts[0].slot], "temperature");
    EXPECT_TRUE(on_forecast(c, s));
    EXPECT_EQ(scheduled_interval_ms(c, s), 300'000) << "a tenth of 2 h, at most 5 min";
    EXPECT_EQ(c.expr.nodes[c.expr.value_node].kind, op::forecast);
    std::vector<double> values{70}, means, forecasts{91};
    eval_context ctx{values.data(), means.data(), forecasts.data()};
    EXPECT_EQ(evaluate(c.expr, c.expr.root, ctx), 1);
    forecasts[0] = 90;
    EXPECT_EQ(evaluate(c.expr, c.expr.root, ctx), 0);

    symbols s2;
    auto d = parse_ok("forecast(t, 30m) - t > 5 and forecast(t, 30m) outside 10..80 every 1m", s2);
    EXPECT_EQ(s2.forecasts.size(), 2u);
    EXPECT_EQ(s2.metrics, std::vector<std::string>{"t"});
    EXPECT_EQ(d.every_ms, 60'000);
    EXPECT_EQ(scheduled_interval_ms(d, s2), 60'000);
    std::vector<double> v2{70}, f2{81, 81};
    eval_context ctx2{v2.data(), means.data(), f2.data()};
    EXPECT_EQ(evaluate(d.expr, d.expr.root, ctx2), 1);

    symbols s3;
    auto e = parse_ok("forecast(t, 1m) > 5 for 3 points", s3);
    EXPECT_EQ(e.hold_points, 3);
    EXPECT_EQ(scheduled_interval_ms(e, s3), 10'000) << "a tenth of 1 min, at least 10 s";
    symbols s4;
    EXPECT_FALSE(on_forecast(parse_ok("t > 5", s4), s4));
}

TEST(rules_language, crosses_within_a_horizon) {
    symbols s;
    auto c = parse_ok("crosses(temperature, 90) within 6h", s);
    EXPECT_EQ(c.what, kind::crosses);
    EXPECT_EQ(s.metrics[c.cross_slot], "temperature");
    EXPECT_EQ(c.cross_limit, 90);
    EXPECT_EQ(c.cross_direction, direction::either);
    EXPECT_EQ(c.within_ms, 21'600'000);
    EXPECT_EQ(c.every_ms, 0);
    EXPECT_EQ(scheduled_interval_ms(c, s), 300'000);

    symbols s2;
    auto a = parse_ok("crosses(\"bearing temp\", above 90.5) within 10m every 30s", s2);
    EXPECT_EQ(s2.metrics[a.cross_slot], "bearing temp");
    EXPECT_EQ(a.cross_direction, direction::above);
    EXPECT_EQ(a.cross_limit, 90.5);
    EXPECT_EQ(a.every_ms, 30'000);
    EXPECT_EQ(scheduled_interval_ms(a, s2), 30'000);

    symbols s3;
    auto b = parse_ok("crosses(level, below -5) within 1m", s3);
    EXPECT_EQ(b.cross_direction, direction::below);
    EXPECT_EQ(b.cross_limit, -5);
    EXPECT_EQ(scheduled_interval_ms(b, s3), 10'000);
    // A metric named "crosses" is still a metric.
    symbols s4;
    EXPECT_EQ(parse_ok("crosses > 3", s4).what, kind::expression);
}

TEST(rules_language, forecast_errors_name_the_position) {
    EXPECT_EQ(parse_error("crosses(temperature) within 6h"),
              "position 19: expected ',' and a limit, as in crosses(temperature, 90)");
    EXPECT_EQ(parse_error("crosses(temperature, sideways 90) within 6h"),
              "position 21: expected a number after ','");
    EXPECT_EQ(parse_error("crosses(temperature, above) within 6h"),
              "position 26: expected a number after 'above'");
    EXPECT_EQ(parse_error("crosses(temperature, 90 within 6h"),
              "position 24: expected ')' to close crosses(");
    EXPECT_EQ(parse_error("crosses(temperature, 90)"),
              "position 24: expected 'within' and a horizon, as in crosses(temperature, 90) "
              "within 6h");
    EXPECT_EQ(parse_error("crosses(temperature, 90) within"),
              "position 31: expected a duration after 'within'");
    EXPECT_EQ(parse_error("crosses(temperature, 90) within 500ms"),
              "position 32: the horizon must be between 1s and 30d");
    EXPECT_EQ(parse_error("crosses(temperature, 90) within 31d"),
              "position 32: the horizon must be between 1s and 30d");
    EXPECT_EQ(parse_error("crosses(temperature, 90) within 6h for 5m"),
              "position 35: a crosses() rule takes no 'for': it fires when the forecast says so");
    EXPECT_EQ(parse_error("crosses(temperature, 90) within 6h every 500ms"),
              "position 41: 'every' must be between 1s and 1h");
    EXPECT_EQ(parse_error("crosses(temperature, 90) within 6h and t > 1"),
              "position 35: unexpected 'and' after the condition");
    EXPECT_EQ(parse_error("t > 1 and crosses(t, 90) within 6h"),
              "position 10: crosses() is a condition of its own, as in crosses(temperature, 90) "
              "within 6h; combine forecast(temperature, 6h) with others instead");
    EXPECT_EQ(parse_error("temperature > 90 every 1m"),
              "position 17: 'every' is for rules on the forecast (crosses(), forecast()); other "
              "rules are evaluated on every point");
    EXPECT_EQ(parse_error("forecast(temperature) > 90"),
              "position 20: expected ',' and a horizon, as in forecast(temperature, 2h)");
    EXPECT_EQ(parse_error("forecast(temperature, 2h > 90"),
              "position 25: expected ')' to close forecast(");
    EXPECT_EQ(parse_error("forecast(, 2h) > 90"),
              "position 9: expected a metric name after 'forecast('");
    EXPECT_EQ(parse_error("forecast(t, 2h)"),
              "position 0: the condition must compare something (e.g. '> 80')");
}

}  // namespace
}  // namespace clisonix::rules::detail
