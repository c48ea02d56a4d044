// The storage tests' reference for engine::aggregate(): every point, bucket by bucket, the
// sum in long double.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <utility>
#include <vector>

#include "storage/storage.h"

namespace clisonix::storage::testing_ref {

// Points [begin, end) in ascending time, as (timestamp, raw) pairs; `value_of(raw)` gives
// the number. Buckets are multiples of `step`, rounding down also before 1970.
template <class It, class ValueOf>
std::vector<std::pair<int64_t, summary>> naive_aggregate(It begin, It end, int64_t step,
                                                         ValueOf value_of) {
    std::vector<std::pair<int64_t, summary>> out;
    std::vector<long double> sums;
    for (auto it = begin; it != end; ++it) {
        int64_t bucket = it->first / step * step;
        if (it->first % step < 0) bucket -= step;
        const double v = value_of(it->second);
        if (out.empty() || out.back().first != bucket) {
            summary s;
            s.first = s.min = s.max = v;
            s.first_ts = it->first;
            out.emplace_back(bucket, s);
            sums.push_back(0);
        }
        auto& s = out.back().second;
        ++s.count;
        sums.back() += v;
        s.min = std::min(s.min, v);
        s.max = std::max(s.max, v);
        s.last = v;
        s.last_ts = it->first;
    }
    for (size_t i = 0; i < out.size(); ++i)
        out[i].second.sum = static_cast<double>(sums[i]);
    return out;
}

// Whether an aggregate's bucket equals the reference's in every field that must match exactly
// (count, first/last timestamp, min, max, first, last); the sum is compared by each test with
// its own tolerance.
inline ::testing::AssertionResult same_exact_fields(const summary& got, const summary& want) {
    auto differ = [](const char* field, auto g, auto w) {
        return ::testing::AssertionFailure() << field << ": got " << g << ", want " << w;
    };
    if (got.count != want.count) return differ("count", got.count, want.count);
    if (got.first_ts != want.first_ts) return differ("first_ts", got.first_ts, want.first_ts);
    if (got.last_ts != want.last_ts) return differ("last_ts", got.last_ts, want.last_ts);
    if (got.min != want.min) return differ("min", got.min, want.min);
    if (got.max != want.max) return differ("max", got.max, want.max);
    if (got.first != want.first) return differ("first", got.first, want.first);
    if (got.last != want.last) return differ("last", got.last, want.last);
    return ::testing::AssertionSuccess();
}

}  // namespace clisonix::storage::testing_ref
