// rill/storage/background.hpp: one background thread shared by many partition logs.
//
// Each log has periodic work off its append path: faulting in pages ahead of the appender,
// syncing on an interval durability policy, retention by time. A thread per log would cost a
// broker with a hundred partitions a hundred threads; a Background runs that work for every
// log attached to it on one thread. A Log without one makes its own.
//
// Thread-safety: thread-safe. detach() waits until the thread is not working on that task, so
// a task may be destroyed right after.
//
// The thread runs at the lowest CPU priority (see run()).
//
// A manual Background (Background(Background::kManual)) starts no thread: its tasks run only
// when the owner calls run_once(), on the caller's thread. A broker for tests uses one so that
// nothing races the test (BrokerOptions::background_thread).
#pragma once

#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

namespace rill::storage {

// Work a Background runs: `tick` is called on the background thread at least every
// `period()`, and soon after Background::wake().
class BackgroundTask {
 public:
  virtual ~BackgroundTask() = default;
  virtual void tick() = 0;
  virtual std::chrono::milliseconds period() const = 0;
};

class Background {
 public:
  struct Manual {};
  static constexpr Manual kManual{};

  Background() : thread_([this] { run(); }) {}
  // No thread; run_once() runs the tasks.
  explicit Background(Manual) {}
  Background(const Background&) = delete;
  Background& operator=(const Background&) = delete;
  ~Background() {
    if (!thread_.joinable()) return;  // manual: no thread
    {
      std::lock_guard lock(wake_mu_);
      stop_ = true;
      woken_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

  void attach(BackgroundTask* task) {
    {
      std::lock_guard lock(tasks_mu_);
      tasks_.push_back(task);
    }
    wake();
  }

  // Removes `task`; returns once the thread is not inside its tick().
  void detach(BackgroundTask* task) {
    std::lock_guard lock(tasks_mu_);  // the thread holds it for the whole of each round
    tasks_.erase(std::remove(tasks_.begin(), tasks_.end(), task), tasks_.end());
  }

  // How many times wake() was called (attaches included): what the tasks asked of the thread.
  std::uint64_t wakes() const noexcept { return wakes_.load(std::memory_order_relaxed); }

  // Runs every attached task's tick() once, now, on the calling thread (for a manual
  // Background; on one with a thread it is a round in addition to the thread's).
  void run_once() {
    std::lock_guard lock(tasks_mu_);
    for (BackgroundTask* t : tasks_) t->tick();
  }

  // Asks for a round soon: a short lock and a notify (a manual Background only notes it).
  void wake() {
    wakes_.fetch_add(1, std::memory_order_relaxed);  // relaxed: a statistic
    {
      std::lock_guard lock(wake_mu_);
      woken_ = true;
    }
    cv_.notify_one();
  }

 private:
  void run() {
    // The lowest CPU priority (nice 19, this thread only; best effort). Its work is off every
    // caller's path, but a round of prefaulting takes a millisecond or more of CPU: at the
    // default priority a consumer woken while it ran could wait for it to finish its slice,
    // and on a 2-vCPU machine that made the 99th percentile of append-to-poll latency about
    // 1.1 ms instead of 55 us (compare_bench W3, medians of five runs; docs/performance.md).
    // The price: while the application keeps every CPU busy, this thread's rounds (and so an
    // interval durability policy's syncs) can come late.
    (void)::setpriority(PRIO_PROCESS, static_cast<id_t>(::syscall(SYS_gettid)), 19);
    for (;;) {
      std::chrono::milliseconds period(100);
      {
        std::lock_guard lock(tasks_mu_);
        for (BackgroundTask* t : tasks_) {
          t->tick();
          period = std::min(period, t->period());
        }
      }
      std::unique_lock lock(wake_mu_);
      cv_.wait_for(lock, period, [this] { return woken_; });
      woken_ = false;
      if (stop_) return;
    }
  }

  std::mutex tasks_mu_;  // guards tasks_; held by the thread while ticking
  std::vector<BackgroundTask*> tasks_;
  std::mutex wake_mu_;  // guards woken_, stop_
  std::condition_variable cv_;
  bool woken_ = false;
  bool stop_ = false;
  std::atomic<std::uint64_t> wakes_{0};
  std::thread thread_;  // last: starts once everything above is constructed
};

}  // namespace rill::storage
