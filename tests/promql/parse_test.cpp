// The PromQL parser: what it accepts, and errors that say where and what.
#include <gtest/gtest.h>

#include "promql/ast.h"
#include "promql/promql.h"

namespace clisonix::promql {
namespace {

std::string error_of(std::string_view query) {
    auto r = parse(query);
    EXPECT_FALSE(r.ok()) << query;
    return r.ok() ? std::string() : r.error().message;
}

TEST(promql_parse, selectors_keep_their_matchers_range_and_offset) {
    auto r =
        parse(R"(rate(http_total{job="api", code=~"5..", path!="/x", m!~'a|b'}[5m] offset 1h))");
    ASSERT_TRUE(r.ok()) << r.error().message;
    const expr& call = **r;
    EXPECT_EQ(call.function, "rate");
    const selector& s = call.args.at(0)->sel;
    ASSERT_EQ(s.matchers.size(), 5u);
    EXPECT_EQ(s.matchers[0].name, "__name__");
    EXPECT_EQ(s.matchers[0].value, "http_total");
    EXPECT_EQ(s.matchers[2].kind, label_matcher::op::regex);
    EXPECT_TRUE(s.matchers[2].matches("503"));
    EXPECT_FALSE(s.matchers[2].matches("5030"));  // fully anchored
    EXPECT_EQ(s.range_ms, 300'000);
    EXPECT_EQ(s.offset_ms, 3'600'000);
}

TEST(promql_parse, durations_combine_units_and_steps_take_seconds) {
    EXPECT_EQ(parse_duration_ms("1h30m"), 5'400'000);
    EXPECT_EQ(parse_duration_ms("250ms"), 250);
    EXPECT_EQ(parse_duration_ms("15"), 15'000);
    EXPECT_EQ(parse_duration_ms("0.5"), 500);
    EXPECT_EQ(parse_duration_ms("5x"), std::nullopt);
    EXPECT_EQ(parse_duration_ms("30m1h"), std::nullopt);  // largest unit first
}

TEST(promql_parse, precedence_is_prometheus_own) {
    // ^ is right-associative and binds tighter than unary minus: -2^2 is -(2^2).
    auto r = parse("-2 ^ 3 ^ 2 + 1 * 4");
    ASSERT_TRUE(r.ok());
    const expr& plus = **r;
    EXPECT_EQ(plus.op, binary_op::add);
    EXPECT_EQ(plus.args[0]->node, expr::type::unary_minus);
    const expr& pow = *plus.args[0]->args[0];
    EXPECT_EQ(pow.op, binary_op::pow);
    EXPECT_EQ(pow.args[1]->op, binary_op::pow);  // 3 ^ (3 ^ 2)
    EXPECT_EQ(plus.args[1]->op, binary_op::mul);
    auto set = parse("a or b and c");
    ASSERT_TRUE(set.ok());
    EXPECT_EQ((*set)->op, binary_op::lor);
    EXPECT_EQ((*set)->args[1]->op, binary_op::land);
}

TEST(promql_parse, aggregations_take_grouping_before_or_after) {
    auto a = parse("sum by (device, site) (x)");
    auto b = parse("sum(x) without (job)");
    auto c = parse("topk(3, x)");
    ASSERT_TRUE(a.ok() && b.ok() && c.ok());
    EXPECT_EQ((*a)->grouping, (std::vector<std::string>{"device", "site"}));
    EXPECT_FALSE((*a)->without);
    EXPECT_TRUE((*b)->without);
    EXPECT_EQ((*c)->agg, aggregation::topk);
    EXPECT_EQ((*c)->args.size(), 2u);
}

TEST(promql_parse, errors_carry_line_and_column) {
    EXPECT_EQ(error_of("sum(x"),
              "1:6: parse error: unexpected end of input in aggregation, "
              "expected \",\" or \")\"");
    EXPECT_EQ(error_of("x{a=1}"),
              "1:5: parse error: unexpected number \"1\" in label matching, expected string");
    EXPECT_EQ(error_of("x +\n  * y"), "2:3: parse error: unexpected \"*\"");
    EXPECT_EQ(error_of("rate(x)"),
              "1:5: parse error: expected type range vector in call to function \"rate\", got "
              "instant vector");
    EXPECT_EQ(error_of("x[5m] + 1"),
              "1:7: parse error: binary expression must contain only scalar and instant vector "
              "types");
    EXPECT_EQ(error_of("1 > 2"),
              "1:3: parse error: comparisons between scalars must use BOOL modifier");
    EXPECT_EQ(error_of("{a=\"\"}"),
              "1:1: parse error: vector selector must contain at least one non-empty matcher");
    EXPECT_EQ(error_of(""), "1:1: parse error: no expression found in input");
    EXPECT_EQ(error_of("x{a=~\"(\"}").substr(0, 46),
              "1:6: parse error: invalid regular expression \"");
}

TEST(promql_parse, unsupported_promql_is_named) {
    std::string e = error_of("histogram_quantile(0.9, rate(x[5m]))");
    EXPECT_EQ(e.substr(0, 66),
              "unsupported PromQL: function \"histogram_quantile\" is not supported");
    EXPECT_NE(e.find("(supported: abs, avg_over_time,"), std::string::npos) << e;
    EXPECT_NE(e.find("(at 1:1)"), std::string::npos) << e;
    EXPECT_EQ(error_of("max_over_time(rate(x[5m])[1h:1m])"),
              "unsupported PromQL: subqueries are not supported (at 1:26)");
    EXPECT_EQ(error_of("x @ 1700000000"),
              "unsupported PromQL: the @ modifier is not supported (at 1:3)");
    EXPECT_EQ(error_of("a * on(x) group_left(y) b"),
              "unsupported PromQL: group_left (many-to-one matching) is not supported (at 1:11)");
    EXPECT_EQ(error_of("count_values(\"v\", x)").substr(0, 63),
              "unsupported PromQL: aggregation \"count_values\" is not supported");
    EXPECT_EQ(error_of("label_replace(x, \"a\", \"$1\", \"b\", \"(.*)\")").substr(0, 61),
              "unsupported PromQL: function \"label_replace\" is not supported");
}

}  // namespace
}  // namespace clisonix::promql
