// librtcount.so, internal: what its allocator wrappers (rtcount_alloc.cpp)
// need from the counting core (rtcount.cpp). Not exported from the library.
#pragma once

namespace rtcount {

enum Kind : int { kMalloc, kCalloc, kRealloc, kMemalign, kNew, kFree, kDelete, kKinds };

// [any] Counts one allocator call of the calling thread if it is inside a
// real-time section. Never allocates.
__attribute__((visibility("hidden"))) void count(Kind k) noexcept;

}  // namespace rtcount
