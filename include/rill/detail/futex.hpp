// rill/detail/futex.hpp: block on a 32-bit atomic word until it changes or a timeout passes.
//
// C++20's std::atomic<T>::wait has no timeout, and consumers need one (poll(timeout)), so on
// Linux this calls futex(2) directly; elsewhere it falls back to a short sleep loop.
//
// Thread-safety: free functions over caller-owned atomics; safe from any thread.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <thread>

#if defined(__linux__)
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#endif

namespace rill::detail {

static_assert(sizeof(std::atomic<std::uint32_t>) == sizeof(std::uint32_t),
              "futex needs a plain 32-bit word");

// Sleeps while `word` still holds `expected`, at most `timeout`. May return early (spurious
// wake, signal); callers re-check their condition in a loop.
inline void futex_wait(std::atomic<std::uint32_t>& word, std::uint32_t expected,
                       std::chrono::nanoseconds timeout) noexcept {
  if (timeout <= std::chrono::nanoseconds::zero()) return;
#if defined(__linux__)
  struct timespec ts;
  ts.tv_sec = static_cast<time_t>(timeout.count() / 1'000'000'000);
  ts.tv_nsec = static_cast<long>(timeout.count() % 1'000'000'000);
  // The kernel compares *word with `expected` atomically with queueing us, so a wake between
  // our caller's check and this call is never lost: the call returns EAGAIN at once.
  ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAIT_PRIVATE, expected, &ts,
            nullptr, 0);
#else
  (void)expected;
  std::this_thread::sleep_for(
      std::min<std::chrono::nanoseconds>(timeout, std::chrono::microseconds(50)));
#endif
}

// Wakes every thread sleeping in futex_wait on `word`.
inline void futex_wake_all(std::atomic<std::uint32_t>& word) noexcept {
#if defined(__linux__)
  ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAKE_PRIVATE, INT32_MAX,
            nullptr, nullptr, 0);
#else
  (void)word;
#endif
}

}  // namespace rill::detail
