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
// steady_clock::now() + timeout, saturating: a timeout of "forever" (duration::max(), of any
// unit) gives time_point::max() rather than overflowing into the past, which made a wait of
// nanoseconds::max() (or a poll of milliseconds::max()) return at once. A timeout at or below
// zero gives now.
template <typename Rep, typename Period>
std::chrono::steady_clock::time_point deadline_after(
    std::chrono::duration<Rep, Period> timeout) noexcept {
  using Clock = std::chrono::steady_clock;
  const Clock::time_point now = Clock::now();
  if (timeout <= timeout.zero()) return now;
  const Clock::duration room = Clock::time_point::max() - now;
  // Compared in the timeout's own unit, into which `room` converts down without overflow.
  if (timeout >= std::chrono::duration_cast<std::chrono::duration<Rep, Period>>(room)) {
    return Clock::time_point::max();
  }
  return now + std::chrono::duration_cast<Clock::duration>(timeout);
}

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

// Sleeps while `word` still holds `expected`, with no timeout. May return early.
inline void futex_wait(std::atomic<std::uint32_t>& word, std::uint32_t expected) noexcept {
#if defined(__linux__)
  ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAIT_PRIVATE, expected,
            nullptr, nullptr, 0);
#else
  (void)word;
  (void)expected;
  std::this_thread::yield();
#endif
}

// Wakes one thread sleeping in futex_wait on `word`.
inline void futex_wake_one(std::atomic<std::uint32_t>& word) noexcept {
#if defined(__linux__)
  ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAKE_PRIVATE, 1, nullptr,
            nullptr, 0);
#else
  (void)word;
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

inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

// A mutex in one 32-bit word: 0 free, 1 held, 2 held and someone may sleep on it (the
// three-state futex mutex of Drepper's "Futexes Are Tricky"). Uncontended, lock() and unlock()
// are one atomic instruction each, inlined: no call into libc, no recursion or robustness
// checks. A contended lock() spins briefly (critical sections guarded by it are short), then
// sleeps in the kernel. Meets Lockable, so std::lock_guard and std::unique_lock work with it.
// Not recursive; unlock() only by the holder.
class Mutex {
 public:
  Mutex() = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  void lock() noexcept {
    std::uint32_t c = 0;
    // acquire: the critical section sees everything the previous holder wrote in its own.
    if (state_.compare_exchange_strong(c, 1, std::memory_order_acquire, std::memory_order_relaxed))
        [[likely]] {
      return;
    }
    lock_contended(c);
  }

  bool try_lock() noexcept {
    std::uint32_t c = 0;
    // acquire: as in lock().
    return state_.compare_exchange_strong(c, 1, std::memory_order_acquire,
                                          std::memory_order_relaxed);
  }

  void unlock() noexcept {
    // release: the next holder's acquire sees this critical section's writes.
    if (state_.exchange(0, std::memory_order_release) == 2) [[unlikely]]
      futex_wake_one(state_);
  }

 private:
  void lock_contended(std::uint32_t c) noexcept {
    for (int spin = 0; spin < 128; ++spin) {
      cpu_relax();
      // relaxed: only a hint that the lock is free; the CAS below acquires.
      c = state_.load(std::memory_order_relaxed);
      if (c == 0 && state_.compare_exchange_weak(c, 1, std::memory_order_acquire,
                                                 std::memory_order_relaxed)) {
        return;
      }
      if (c == 2) break;  // others already sleep: queue behind them
    }
    // acquire: as in lock(). Marking the word 2 makes the holder's unlock() wake a sleeper; a
    // thread that takes the lock this way keeps it at 2, which may cost one needless wake.
    c = state_.exchange(2, std::memory_order_acquire);
    while (c != 0) {
      futex_wait(state_, 2);
      c = state_.exchange(2, std::memory_order_acquire);
    }
  }

  std::atomic<std::uint32_t> state_{0};
};

}  // namespace rill::detail
