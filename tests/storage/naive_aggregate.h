// The storage tests' reference for engine::aggregate(): every point, bucket by bucket, the
// sum in long double.
#pragma once

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

}  // namespace clisonix::storage::testing_ref
