// rill/clock.hpp: where rill reads the time.
//
// Everything in rill that depends on time (record timestamps, segment roll by age, retention by
// age, later group timeouts) reads a Clock, never the system clock directly, so a test can
// drive time by hand with ManualClock and stay deterministic.
//
// Thread-safety: both clocks are thread-safe.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>

namespace rill {

// Milliseconds since the Unix epoch, Kafka's timestamp unit.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual std::int64_t now_ms() const noexcept = 0;
};

// The system's wall clock (std::chrono::system_clock).
class SystemClock final : public Clock {
 public:
  std::int64_t now_ms() const noexcept override {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }

  // One shared instance; the default clock of every rill object.
  static std::shared_ptr<Clock> instance() {
    static const std::shared_ptr<Clock> clock = std::make_shared<SystemClock>();
    return clock;
  }
};

// A clock that moves only when told to. Starts at `start_ms`.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(std::int64_t start_ms = 0) noexcept : now_ms_(start_ms) {}

  // relaxed: the clock value carries no other data; callers that hand off work along with a
  // time change synchronise through that work's own channel.
  std::int64_t now_ms() const noexcept override { return now_ms_.load(std::memory_order_relaxed); }
  void set_ms(std::int64_t ms) noexcept { now_ms_.store(ms, std::memory_order_relaxed); }
  void advance_ms(std::int64_t delta_ms) noexcept {
    now_ms_.fetch_add(delta_ms, std::memory_order_relaxed);
  }

 private:
  std::atomic<std::int64_t> now_ms_;
};

}  // namespace rill
