// RACKD_RT marks a function that runs on an audio thread: it never allocates,
// locks, logs or blocks (futex wait/wake is the one exception). Under clang >= 20
// it is [[clang::nonblocking]], so -fsanitize=realtime checks it at run time and
// -Wfunction-effects at compile time; elsewhere it documents the contract.
// Place it after noexcept: `void process() noexcept RACKD_RT;`
// Part of the module SDK (installed as <rackd/rt.hpp>).
#pragma once

#if defined(__clang__) && (__clang_major__ >= 20)
#define RACKD_RT [[clang::nonblocking]]
#else
#define RACKD_RT
#endif
