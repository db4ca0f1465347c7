// Fork a child, let it work, SIGKILL it at a chosen moment, and collect what it reported
// through a pipe: the loop shared by the crash tests (crash_test, crash_matrix_test).
//
// The caller must be single-threaded when it calls run_and_kill (fork), and `child` must never
// return (it _exit()s or is killed); it writes its acknowledgements to the descriptor it gets.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstddef>
#include <thread>
#include <utility>
#include <vector>

#include "catch.hpp"

namespace rill_test {

// Reads what is in the pipe (non-blocking) into `buf`; false at end of file.
inline bool drain(int fd, std::vector<char>& buf) {
  char chunk[1 << 16];
  for (;;) {
    const ssize_t n = ::read(fd, chunk, sizeof chunk);
    if (n > 0) {
      buf.insert(buf.end(), chunk, chunk + n);
      continue;
    }
    if (n == 0) return false;
    if (errno == EINTR) continue;
    return true;  // EAGAIN: nothing more for now
  }
}

// Runs `child(ack_fd)` in a child process. Unless `early_kill`, waits (up to 30 s) until
// `ready(bytes written so far)`; then lets it run for `run_for` more, kills it with SIGKILL and
// returns every byte it wrote. REQUIREs that SIGKILL is what ended it.
template <typename Child, typename Ready>
std::vector<char> run_and_kill_when(Child&& child, bool early_kill, Ready&& ready,
                                    std::chrono::microseconds run_for) {
  int fds[2];
  REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
  (void)::fcntl(fds[0], F_SETPIPE_SZ, 1 << 20);  // best effort: fewer stalls of the child
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::close(fds[0]);
    child(fds[1]);
    ::_exit(2);
  }
  ::close(fds[1]);
  REQUIRE(::fcntl(fds[0], F_SETFL, O_NONBLOCK) == 0);
  std::vector<char> buf;
  using Clock = std::chrono::steady_clock;
  const auto give_up = Clock::now() + std::chrono::seconds(30);
  bool open = true;
  while (!early_kill && open && !ready(buf) && Clock::now() < give_up) {
    open = drain(fds[0], buf);
    std::this_thread::sleep_for(std::chrono::microseconds(50));
  }
  const auto kill_at = Clock::now() + run_for;
  while (open && Clock::now() < kill_at) open = drain(fds[0], buf);
  ::kill(pid, SIGKILL);
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  REQUIRE(::fcntl(fds[0], F_SETFL, 0) == 0);
  while (drain(fds[0], buf)) {
  }
  ::close(fds[0]);
  INFO("child status " << status << " (exit code " << (WIFEXITED(status) ? WEXITSTATUS(status) : -1)
                       << ")");
  REQUIRE(WIFSIGNALED(status));  // killed, not failed
  REQUIRE(WTERMSIG(status) == SIGKILL);
  return buf;
}

// run_and_kill_when, ready once the child wrote its first `first_ack_bytes`.
template <typename Child>
std::vector<char> run_and_kill(Child&& child, bool early_kill, std::size_t first_ack_bytes,
                               std::chrono::microseconds run_for) {
  return run_and_kill_when(
      std::forward<Child>(child), early_kill,
      [first_ack_bytes](const std::vector<char>& buf) { return buf.size() >= first_ack_bytes; },
      run_for);
}

}  // namespace rill_test
