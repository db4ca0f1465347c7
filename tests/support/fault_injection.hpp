// A test's handle on the file layer's fault hook (rill/detail/mmap_file.hpp): fail calls of
// one kind, from the Nth on, with an errno, as a full disk (ENOSPC) or a dying one (EIO) would.
//
//   rill_test::FaultInjector full({.op = FileOp::kGrow, .err = ENOSPC});
//   ... every posix_fallocate now fails with ENOSPC ...
//   full.heal();   // space is back
//
// One injector at a time per process (the hook is process-wide); the destructor removes it.
#pragma once

#include <atomic>
#include <cerrno>
#include <cstring>
#include <string>

#include "rill/detail/mmap_file.hpp"

namespace rill_test {

using rill::detail::FileOp;

class FaultInjector {
 public:
  struct Plan {
    FileOp op = FileOp::kGrow;
    int err = ENOSPC;
    int after = 0;                // let this many matching calls through first
    int times = -1;               // then fail this many (-1: until heal())
    std::string path_contains{};  // only calls whose path contains this ("" matches all)
  };

  explicit FaultInjector(Plan plan) {
    state().plan = std::move(plan);
    state().seen.store(0, std::memory_order_relaxed);
    state().failed.store(0, std::memory_order_relaxed);
    state().healed.store(false, std::memory_order_relaxed);
    rill::detail::set_fault_hook(&hook);  // release: publishes the plan above
  }
  ~FaultInjector() { rill::detail::set_fault_hook(nullptr); }
  FaultInjector(const FaultInjector&) = delete;
  FaultInjector& operator=(const FaultInjector&) = delete;

  // Calls fail no more (the disk has room again).
  void heal() { state().healed.store(true, std::memory_order_relaxed); }
  // Calls failed so far.
  int failures() const { return state().failed.load(std::memory_order_relaxed); }
  // Matching calls seen so far (failed or not).
  int calls() const { return state().seen.load(std::memory_order_relaxed); }

 private:
  struct State {
    Plan plan;
    std::atomic<int> seen{0};
    std::atomic<int> failed{0};
    std::atomic<bool> healed{false};
  };
  static State& state() {
    static State s;
    return s;
  }

  static int hook(FileOp op, const char* path) noexcept {
    State& s = state();
    if (op != s.plan.op) return 0;
    if (!s.plan.path_contains.empty() && std::strstr(path, s.plan.path_contains.c_str()) == nullptr)
      return 0;
    const int n = s.seen.fetch_add(1, std::memory_order_relaxed);
    if (s.healed.load(std::memory_order_relaxed) || n < s.plan.after) return 0;
    if (s.plan.times >= 0 && n >= s.plan.after + s.plan.times) return 0;
    s.failed.fetch_add(1, std::memory_order_relaxed);
    return s.plan.err;
  }
};

}  // namespace rill_test
