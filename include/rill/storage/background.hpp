// rill/storage/background.hpp: one background thread shared by many partition logs.
//
// Each log has periodic work off its append path: faulting in pages ahead of the appender,
// syncing on an interval durability policy, retention by time. A thread per log would cost a
// broker with a hundred partitions a hundred threads; a Background runs that work for every
// log attached to it on one thread. A Log without one makes its own.
//
// Thread-safety: thread-safe. detach() waits until the thread is not working on that task, so
// a task may be destroyed right after.
#pragma once

#include <algorithm>
#include <chrono>
#include <condition_variable>
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
  Background() : thread_([this] { run(); }) {}
  Background(const Background&) = delete;
  Background& operator=(const Background&) = delete;
  ~Background() {
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

  // Asks for a round soon: a short lock and a notify.
  void wake() {
    {
      std::lock_guard lock(wake_mu_);
      woken_ = true;
    }
    cv_.notify_one();
  }

 private:
  void run() {
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
  std::thread thread_;  // last: starts once everything above is constructed
};

}  // namespace rill::storage
