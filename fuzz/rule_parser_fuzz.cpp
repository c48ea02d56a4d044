// Arbitrary text through the rule language: a condition or a clean error naming a position,
// never a crash; an accepted condition evaluates over any metric values without reading
// outside its slots.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>
#include <vector>

#include "rules/language.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace clisonix::rules::detail;
    std::string_view text(reinterpret_cast<const char*>(data), size);
    symbols syms;
    auto c = parse_condition(text, syms);
    if (!c) {
        if (c.error().message.rfind("position ", 0) != 0) std::abort();
        return 0;
    }
    auto clear = parse_expression(text, syms);
    std::vector<double> values(syms.metrics.size(), 1.5), means(syms.means.size(), -2.0);
    eval_context ctx{values.data(), means.data()};
    if (c->what == kind::expression) {
        if (c->expr.root < 0 || c->expr.value_node < 0) std::abort();
        double v = evaluate(c->expr, c->expr.root, ctx);
        if (!(v == 0 || v == 1)) std::abort();  // a condition is a truth value
        (void)evaluate(c->expr, c->expr.value_node, ctx);
    }
    if (clear) (void)evaluate(*clear, clear->root, ctx);
    return 0;
}
