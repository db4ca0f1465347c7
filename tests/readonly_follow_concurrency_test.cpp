// A read-only reader in one process follows a log that another process appends to, across
// segment rolls and retention deletes; and `rill consume --follow` shows new records of a live
// application within 100 ms.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "catch.hpp"
#include "result_checks.hpp"
#include "rill/broker_view.hpp"
#include "rill/rill.hpp"
#include "rill/storage/log_reader.hpp"
#include "test_util.hpp"

// Each test file lives in its own namespace: the tests are compiled a few files per
// translation unit (tests/CMakeLists.txt, RILL_TEST_UNITY).
namespace readonly_follow_concurrency_test {

using rill_test::take;

namespace {

// The value of record `i`: its offset repeated, of a length that varies, so a torn or
// misplaced record cannot pass for another.
std::string payload(std::int64_t i) {
  const std::string n = std::to_string(i) + ";";
  std::string v;
  const std::size_t len = 20 + static_cast<std::size_t>(i % 97);
  while (v.size() < len) v += n;
  v.resize(len);
  return v;
}

// A child process that appends `total` records to `dir`, with small segments and retention,
// pausing now and then so the reader sometimes catches up with it. Exits 0 on success.
[[noreturn]] void writer_child(const std::string& dir, std::int64_t total) {
  rill::storage::LogConfig c;
  c.segment_bytes = 16 << 10;
  c.max_record_bytes = 1024;
  c.retention_bytes = 64 * (16 << 10);  // ~64 segments, ~14000 records: the reader keeps up
  c.prefault_bytes = 0;
  auto log = rill::storage::Log::open(dir, c);
  if (!log) _exit(2);
  for (std::int64_t i = 0; i < total; ++i) {
    const std::string v = payload(i);
    const std::string k = "k" + std::to_string(i);
    auto at = (*log)->append({.key = std::string_view(k), .value = std::string_view(v)});
    if (!at || at->offset != i) _exit(3);
    if (i % 100 == 99) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  _exit(0);
}

}  // namespace

TEST_CASE(
    "a read-only reader in another process follows a live log: every record once, in "
    "order, intact, across rolls and retention",
    "[log_reader][follow]") {
  rill_test::TempDir dir;
  const std::string log_dir = dir.sub("p0");
  const std::int64_t total = rill_test::sanitizer_build() ? 20'000 : 100'000;
  // Create the first segment before forking, so the reader can open at once.
  {
    rill::storage::LogConfig c;
    c.segment_bytes = 16 << 10;
    c.max_record_bytes = 1024;
    c.prefault_bytes = 0;
    REQUIRE(rill::storage::Log::open(log_dir, c).has_value());
  }
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) writer_child(log_dir, total);

  rill::storage::LogReaderOptions o;
  o.list_interval_ms = 5;
  auto reader = take(rill::storage::LogReader::open(log_dir, o));
  std::int64_t next = 0;
  std::uint64_t segments_seen = 1;
  std::uint64_t deleted_seen = 0;
  bool child_done = false;
  int status = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (next < total && std::chrono::steady_clock::now() < deadline) {
    auto info = take(reader->refresh());
    segments_seen += info.new_segments;
    deleted_seen += info.deleted_segments;
    bool progressed = false;
    for (;;) {
      auto batch = take(reader->read(next, 1000));
      if (batch.empty()) break;
      for (const auto& r : batch) {
        REQUIRE(r.offset() == next);  // once, in order: offsets dense from 0
        const std::string want = payload(next);
        REQUIRE(r.value() == std::optional<std::string_view>(want));  // intact
        REQUIRE(r.key() == std::optional<std::string_view>("k" + std::to_string(next)));
        ++next;
      }
      progressed = true;
    }
    if (!child_done && ::waitpid(child, &status, WNOHANG) == child) child_done = true;
    if (!progressed) std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  if (!child_done) ::waitpid(child, &status, 0);
  REQUIRE(WIFEXITED(status));
  REQUIRE(WEXITSTATUS(status) == 0);
  CHECK(next == total);
  INFO("segments seen " << segments_seen << ", deleted under the reader " << deleted_seen);
  CHECK(segments_seen > 20);
  CHECK(deleted_seen > 10);
  CHECK(reader->start_offset() > 0);
  std::printf("follow: %lld records, %llu segments seen, %llu deleted by retention meanwhile\n",
              static_cast<long long>(next), static_cast<unsigned long long>(segments_seen),
              static_cast<unsigned long long>(deleted_seen));
}

#if defined(RILL_TOOL_PATH)

TEST_CASE("rill consume --follow shows a live application's new records within 100 ms",
          "[tool][follow]") {
  rill_test::TempDir dir;
  rill::BrokerOptions bo;
  bo.prefault_bytes = 0;
  auto broker = take(rill::Broker::open(dir.path(), bo));
  take(broker->create_topic("live", {.partitions = 1}));
  auto state = take(broker->topic_state("live"));

  // The tool, reading the directory the broker above holds, prints into a pipe we read.
  int out[2];
  REQUIRE(::pipe(out) == 0);
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    ::dup2(out[1], 1);
    ::close(out[0]);
    ::close(out[1]);
    // From the beginning, not --from-end: on a slow machine the tool may open the topic after
    // the first append, and would then wait forever for a record it skipped.
    ::execl(RILL_TOOL_PATH, "rill", "-d", dir.path().c_str(), "consume", "live", "--follow",
            static_cast<char*>(nullptr));
    _exit(127);
  }
  ::close(out[1]);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // let it open and reach the end

  FILE* in = ::fdopen(out[0], "r");
  REQUIRE(in != nullptr);
  std::vector<double> latencies_ms;
  char line[256];
  for (int i = 0; i < 20; ++i) {
    const std::string v = "record-" + std::to_string(i);
    const auto t0 = std::chrono::steady_clock::now();
    take(state->partition(0)->append({.value = std::string_view(v)}));
    REQUIRE(std::fgets(line, sizeof line, in) != nullptr);
    const auto t1 = std::chrono::steady_clock::now();
    REQUIRE(std::string(line) == v + "\n");
    latencies_ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
    std::this_thread::sleep_for(std::chrono::milliseconds(37));  // off the poll's rhythm
  }
  ::kill(child, SIGTERM);
  int status = 0;
  ::waitpid(child, &status, 0);
  std::fclose(in);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);  // SIGTERM ends --follow cleanly

  std::sort(latencies_ms.begin(), latencies_ms.end());
  const double p50 = latencies_ms[latencies_ms.size() / 2];
  const double max = latencies_ms.back();
  std::printf(
      "rill consume --follow latency, append to line read: p50 %.2f ms, max %.2f ms "
      "(20 records)\n",
      p50, max);
  CHECK(p50 < 100.0);
  CHECK(latencies_ms[latencies_ms.size() * 9 / 10] < 250.0);  // margin for a busy machine
}

#endif

}  // namespace readonly_follow_concurrency_test
