// Counts heap allocations, so that a benchmark's "allocations per batch" is measured, not
// assumed. Replaces the global operator new/delete: include it in exactly one file of a
// benchmark executable.
#pragma once

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <new>

namespace clisonix::bench {
inline std::atomic<uint64_t> allocation_count{0};
// Allocations since the program started.
inline uint64_t allocations() {
    return allocation_count.load(std::memory_order_relaxed);
}
}  // namespace clisonix::bench

// g++ sees free() meet a pointer from operator new and warns once inlined; the replaced pair
// is malloc/free on both sides, so the pairing is right.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

void* operator new(size_t n) {
    clisonix::bench::allocation_count.fetch_add(1, std::memory_order_relaxed);
    if (void* p = std::malloc(n ? n : 1)) return p;
    throw std::bad_alloc();
}
void operator delete(void* p) noexcept {
    std::free(p);
}
void operator delete(void* p, size_t) noexcept {
    std::free(p);
}
