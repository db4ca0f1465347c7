// rill/storage/notifier.hpp: a doorbell that several logs ring, so one thread can wait for an
// append to any of them (a consumer blocked on all its partitions) or for another event
// (a rebalance, a wakeup()).
//
//   const auto seen = bell.prepare();      // 1. take a ticket
//   if (nothing_to_read()) bell.wait(seen, timeout);   // 2. check, 3. sleep unless rung since
//
// Thread-safety: thread-safe. notify() may come from any thread, any number of times; a
// notification between prepare() and wait() is never lost.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

#include "rill/detail/futex.hpp"

namespace rill::storage {

class Notifier {
 public:
  // A ticket: wait() returns at once if notify() was called after this.
  std::uint32_t prepare() const noexcept {
    // acquire: pairs with the increment in notify(); what the notifier published before
    // ringing (an appended record, a new assignment) is visible to the checks that follow.
    return seq_.load(std::memory_order_acquire);
  }

  // Sleeps until notify() is called after `ticket` was taken, or `timeout` passes (or a
  // spurious wake: callers loop on their own condition).
  void wait(std::uint32_t ticket, std::chrono::nanoseconds timeout) noexcept {
    // seq_cst, with the seq_cst pair in notify(): either notify() sees a sleeper and wakes the
    // futex, or this thread's re-check below sees the new sequence number.
    sleepers_.fetch_add(1, std::memory_order_seq_cst);
    if (seq_.load(std::memory_order_seq_cst) == ticket) detail::futex_wait(seq_, ticket, timeout);
    sleepers_.fetch_sub(1, std::memory_order_relaxed);
  }

  // Rings: one atomic increment, and a futex wake only when someone sleeps. Returns whether
  // someone was asleep (or about to be) and so was woken.
  bool notify() noexcept {
    seq_.fetch_add(1, std::memory_order_seq_cst);
    if (sleepers_.load(std::memory_order_seq_cst) == 0) return false;
    detail::futex_wake_all(seq_);
    return true;
  }

 private:
  mutable std::atomic<std::uint32_t> seq_{0};
  std::atomic<std::uint32_t> sleepers_{0};
};

}  // namespace rill::storage
