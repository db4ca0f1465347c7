// rill/clock.hpp: where rill reads the time.
//
// Everything in rill that depends on time (record timestamps, segment roll by age, retention by
// age, group timeouts) reads a Clock, never the system clock directly, so a test can
// drive time by hand with ManualClock and stay deterministic.
//
// Thread-safety: both clocks are thread-safe.
#pragma once

#include <time.h>

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
  // Milliseconds from some fixed point, on a clock that never jumps: what timeouts between
  // two moments are measured on (group members' session and poll timeouts), so that a wall
  // clock stepped by NTP or a resumed VM neither expires every member at once nor keeps a dead
  // one. The system clocks read CLOCK_MONOTONIC; a clock that only moves when told to (a
  // ManualClock, a test's own) is its own elapsed time, the default.
  virtual std::int64_t elapsed_ms() const noexcept { return now_ms(); }
};

namespace detail {
inline std::int64_t monotonic_ms() noexcept {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}
}  // namespace detail

// The system's wall clock (std::chrono::system_clock).
class SystemClock final : public Clock {
 public:
  std::int64_t now_ms() const noexcept override { return read_ms(); }
  std::int64_t elapsed_ms() const noexcept override { return detail::monotonic_ms(); }

  // now_ms() without a virtual call, for callers that know their clock is this one (the log's
  // append path). On Linux, clock_gettime(CLOCK_REALTIME) directly: what system_clock::now()
  // calls, without the call into libstdc++ around it.
  static std::int64_t read_ms() noexcept {
#if defined(__linux__)
    struct timespec ts;
    if (::clock_gettime(CLOCK_REALTIME, &ts) == 0) {
      return static_cast<std::int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1'000'000;
    }
#endif
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

// The wall clock at the kernel's tick resolution: CLOCK_REALTIME_COARSE on Linux, a few
// nanoseconds to read where the precise clock costs 20-40 (here, in a VM: 7 ns against 33).
// Never ahead of the precise wall clock. Behind it by up to one kernel tick (1 to 4 ms;
// clock_getres(CLOCK_REALTIME_COARSE) says which), and by more when the kernel's tick comes late
// (a loaded VM; seen: a tick plus 1 ms). For logs that stamp millions of records a second and
// whose users accept timestamps that trail by a tick or so: a record appended right after a
// caller read system_clock may carry an earlier millisecond than the caller saw.
// Elsewhere it is SystemClock.
class CoarseClock final : public Clock {
 public:
  std::int64_t elapsed_ms() const noexcept override { return detail::monotonic_ms(); }
  std::int64_t now_ms() const noexcept override {
#if defined(CLOCK_REALTIME_COARSE)
    struct timespec ts;
    if (::clock_gettime(CLOCK_REALTIME_COARSE, &ts) == 0) {
      return static_cast<std::int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1'000'000;
    }
#endif
    return SystemClock().now_ms();
  }

  // One shared instance.
  static std::shared_ptr<Clock> instance() {
    static const std::shared_ptr<Clock> clock = std::make_shared<CoarseClock>();
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
