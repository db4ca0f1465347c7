// Parks another thread wherever it happens to be, for a test that needs work done in the
// middle of that thread's operation (between two loads of a read, say) without a hook in the
// library. A signal (SIGUSR1) interrupts the thread; its handler spins until the test
// releases it. Which instruction it stops at is chance: a test parks the thread many times
// and counts on some of them landing in the window it is after.
//
// A thread parked while holding one of the library's locks would hold up the test's work
// behind it for good: so the handler leaves after 20 ms whatever happens (that round then
// misses its window). Under TSan, signals are delivered at the runtime's next safe point, so
// the windows are rarely hit there; the tests still pass. One ThreadParking at a time.
#pragma once

#include <pthread.h>
#include <signal.h>
#include <time.h>

#include <atomic>
#include <cstdint>
#include <string>
#include <thread>

namespace rill_test {

namespace parking_detail {
inline std::atomic<bool> parked{false};
inline std::atomic<bool> released{false};
static_assert(std::atomic<bool>::is_always_lock_free);  // safe in a signal handler

inline std::int64_t monotonic_ns() noexcept {  // clock_gettime is async-signal-safe
  timespec t{};
  ::clock_gettime(CLOCK_MONOTONIC, &t);
  return std::int64_t{t.tv_sec} * 1'000'000'000 + t.tv_nsec;
}

extern "C" inline void park_here(int) {
  parked.store(true);
  const std::int64_t until = monotonic_ns() + 20'000'000;
  while (!released.load() && monotonic_ns() < until) {
  }
}
}  // namespace parking_detail

class ThreadParking {
 public:
  // Installs the handler; ok() says whether that worked.
  ThreadParking() {
    struct sigaction park {};
    park.sa_handler = parking_detail::park_here;
    sigemptyset(&park.sa_mask);
    ok_ = ::sigaction(SIGUSR1, &park, &old_) == 0;
  }
  ~ThreadParking() {
    release();
    if (ok_) ::sigaction(SIGUSR1, &old_, nullptr);
  }
  ThreadParking(const ThreadParking&) = delete;
  ThreadParking& operator=(const ThreadParking&) = delete;

  bool ok() const noexcept { return ok_; }

  // Interrupts `t` and waits until it is parked. Returns false when the signal could not be
  // sent, or when `gave_up` turned true first (the thread stopped, say).
  bool park(std::thread& t, const std::atomic<bool>& gave_up) {
    parking_detail::parked.store(false);
    parking_detail::released.store(false);
    if (::pthread_kill(t.native_handle(), SIGUSR1) != 0) return false;
    while (!parking_detail::parked.load()) {
      if (gave_up.load()) return false;
      std::this_thread::yield();
    }
    return true;
  }

  // Lets the parked thread go on.
  void release() noexcept { parking_detail::released.store(true); }

 private:
  bool ok_ = false;
  struct sigaction old_ {};
};

// What run_parked() saw.
struct ParkedRun {
  int rounds = 0;           // rounds run
  std::uint64_t steps = 0;  // steps the thread completed
  std::string failure;      // the first step that failed, if any
  std::string setup;        // what went wrong on the parking side, if anything
};

// Runs `step` (std::string(), empty when all is well) in a loop on a thread of its own, and
// `rounds` times: waits for one more step to complete, parks the thread wherever it is, runs
// `between` (std::string(), empty when all is well) and lets it go on. Stops at the first
// failure on either side.
template <typename Step, typename Between>
ParkedRun run_parked(int rounds, Step step, Between between) {
  ParkedRun run;
  ThreadParking parking;
  if (!parking.ok()) {
    run.setup = "sigaction failed";
    return run;
  }
  std::atomic<bool> stop{false};
  std::atomic<bool> failed{false};
  std::atomic<std::uint64_t> steps{0};
  std::thread worker([&] {
    while (!stop.load()) {
      std::string f = step();
      if (!f.empty()) {
        run.failure = std::move(f);  // read after join
        failed.store(true);
        return;
      }
      steps.fetch_add(1);
    }
  });
  for (; run.rounds < rounds && run.setup.empty(); ++run.rounds) {
    const std::uint64_t before = steps.load();
    while (steps.load() == before && !failed.load()) std::this_thread::yield();
    if (!parking.park(worker, failed)) {
      if (!failed.load()) run.setup = "could not park the thread";
      break;
    }
    run.setup = between(run.rounds);
    parking.release();
  }
  stop.store(true);
  parking.release();
  worker.join();
  run.steps = steps.load();
  return run;
}

}  // namespace rill_test
