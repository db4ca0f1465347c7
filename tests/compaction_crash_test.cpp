// Crash safety of compaction: a child appends records and compacts the log, over and over,
// reporting acknowledged appends and the start and end of each compaction through a pipe; the
// parent SIGKILLs it at a random moment (most often inside a compaction, which is where the
// time goes), reopens the log and checks it: recovery finds a valid log and leaves no
// .cleaned file, offsets increase, every record read is what was appended at its offset,
// every acknowledged record is there or was legitimately compacted (a newer record of its key
// is there), and a second compaction works.
//
// TSan: the parent forks while single-threaded (its Log is closed and runs no background
// thread).
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "catch.hpp"
#include "compaction_model.hpp"
#include "kill_child.hpp"
#include "rill/storage/log.hpp"
#include "test_util.hpp"

// Each test file lives in its own namespace: the tests are compiled a few files per
// translation unit (tests/CMakeLists.txt, RILL_TEST_UNITY).
namespace compaction_crash_test {

namespace {

using rill::storage::Log;
using rill::storage::LogConfig;
using rill_test::KeyedRecords;

// One message of the child: an acknowledged append {offset, count}, or a compaction's
// start {-1, 0} or end {-2, segments rewritten}.
struct Note {
  std::int64_t offset;
  std::int64_t count;
};
constexpr std::int64_t kCompactionStart = -1;
constexpr std::int64_t kCompactionEnd = -2;

LogConfig config_for_round(std::uint64_t r) {
  LogConfig c;
  c.segment_bytes = (r % 2 == 0) ? (16u << 10) : (32u << 10);
  c.max_record_bytes = 1024;
  c.index_interval_bytes = (r % 3 == 0) ? 256 : 2048;
  c.prefault_bytes = 0;
  // Every other round, newest tombstones expire at once (the records' timestamps are far in
  // the past of the system clock); the others keep them.
  c.delete_retention_ms = r % 2 == 0 ? 0 : std::numeric_limits<std::int64_t>::max();
  return c;
}

[[noreturn]] void child_main(const std::string& path, const LogConfig& config,
                             const KeyedRecords& model, std::uint64_t seed, int fd) {
  auto log = Log::open(path, config);
  if (!log) {
    std::fprintf(stderr, "compaction crash child: open: %s\n", log.error().to_string().c_str());
    ::_exit(3);
  }
  std::mt19937_64 rng(seed);
  const auto send = [fd](Note n) {
    if (::write(fd, &n, sizeof n) != static_cast<ssize_t>(sizeof n)) ::_exit(6);
  };
  for (;;) {
    const std::size_t appends = 20 + rng() % 200;
    for (std::size_t i = 0; i < appends; ++i) {
      const auto next = static_cast<std::uint64_t>((*log)->end_offset());
      const std::size_t n = rng() % 4 == 0 ? 1 + rng() % 8 : 1;
      std::vector<rill_test::Expected> exp;
      std::vector<std::vector<rill::storage::Header>> hdrs(n);
      std::vector<rill::storage::Record> recs;
      for (std::size_t j = 0; j < n; ++j) exp.push_back(model.at(next + j));
      for (std::size_t j = 0; j < n; ++j) recs.push_back(rill_test::as_record(exp[j], hdrs[j]));
      auto r = (*log)->append_batch(recs);
      if (!r) {
        std::fprintf(stderr, "compaction crash child: append: %s\n", r.error().to_string().c_str());
        ::_exit(4);
      }
      if (r->offset != static_cast<std::int64_t>(next)) ::_exit(5);
      send({r->offset, r->count});
    }
    send({kCompactionStart, 0});
    auto c = (*log)->compact();
    if (!c) {
      std::fprintf(stderr, "compaction crash child: compact: %s\n", c.error().to_string().c_str());
      ::_exit(7);
    }
    send({kCompactionEnd, c->segments_rewritten});
  }
}

}  // namespace

TEST_CASE("a log stays valid when a compaction is killed at any moment",
          "[compaction][recovery][crash]") {
  const std::uint64_t seed = rill_test::test_seed();
  INFO("seed " << seed << " (replay with RILL_TEST_SEED=" << seed << ")");
  std::mt19937_64 rng(seed);
  KeyedRecords model;
  model.salt = rill_test::mix(seed);
  model.keys = 60;
  const int rounds = rill_test::sanitizer_build() ? 8 : 40;

  rill_test::TempDir tmp;
  const std::string path = tmp.sub("log");
  std::int64_t end = 0;  // the log's end after the last check
  int killed_compacting = 0;
  int compactions_done = 0;

  // Whether a kill lands inside a compaction is chance: after `rounds`, go on until a quarter
  // of the rounds run so far were killed inside one, up to four times as many rounds (under
  // ASan, 8 rounds once gave only 1 such kill).
  int round = 0;
  for (; round < rounds || (killed_compacting < round / 4 && round < 4 * rounds); ++round) {
    CAPTURE(round, end);
    const LogConfig child_config = config_for_round(static_cast<std::uint64_t>(round));
    const std::uint64_t child_seed = rng();
    // Wait for the child's first compaction to start (so rounds without one are rare), then
    // let it run a random while: compactions take most of its time.
    const auto compaction_started = [](const std::vector<char>& buf) {
      for (std::size_t i = 0; i + sizeof(Note) <= buf.size(); i += sizeof(Note)) {
        Note n;
        std::memcpy(&n, buf.data() + i, sizeof n);
        if (n.offset == kCompactionStart) return true;
      }
      return false;
    };
    const std::vector<char> buf = rill_test::run_and_kill_when(
        [&](int ack_fd) { child_main(path, child_config, model, child_seed, ack_fd); }, false,
        compaction_started, std::chrono::microseconds(rng() % 60'000));

    REQUIRE(buf.size() % sizeof(Note) == 0);
    std::int64_t acked_end = end;
    bool compacting = false;
    for (std::size_t i = 0; i < buf.size(); i += sizeof(Note)) {
      Note n;
      std::memcpy(&n, buf.data() + i, sizeof n);
      if (n.offset == kCompactionStart) {
        compacting = true;
      } else if (n.offset == kCompactionEnd) {
        compacting = false;
        ++compactions_done;
      } else {
        REQUIRE(n.offset == acked_end);
        acked_end = n.offset + n.count;
      }
    }
    if (compacting) ++killed_compacting;
    CAPTURE(acked_end, compacting);

    // Reopen: a valid log, at most the one unacknowledged append more, no leftovers.
    const LogConfig config = config_for_round(static_cast<std::uint64_t>(round));
    auto log = Log::open(path, config);
    INFO((log ? std::string() : log.error().to_string()));
    REQUIRE(log);
    const auto& rep = (*log)->recovery();
    INFO("recovery: " << rep.detail);
    const std::int64_t new_end = (*log)->end_offset();
    REQUIRE(new_end >= acked_end);
    REQUIRE(new_end <= acked_end + 8);
    CHECK((*log)->start_offset() == 0);
    CHECK(rep.dropped_records == 0);
    CHECK(rep.segments_deleted <= 1);
    CHECK(rill_test::files_with_suffix(path, ".cleaned").empty());
    const auto segs = (*log)->segments();
    for (std::size_t i = 0; i + 1 < segs.size(); ++i) {
      CHECK(segs[i]->end_offset() == segs[i + 1]->base_offset());
    }

    // Every record read is what was appended at its offset, offsets increasing; every record
    // below the end is there unless a newer record of its key is (read_offsets,
    // check_compacted). Newest tombstones may have expired in earlier rounds.
    const auto total = static_cast<std::uint64_t>(new_end);
    const auto present = rill_test::read_offsets(**log, model);
    rill_test::check_compacted(model, present, total, total, total, false, false);

    // A second compaction works and keeps exactly what it may; the log reopens clean.
    auto c = (*log)->compact();
    INFO((c ? std::string() : c.error().to_string()));
    REQUIRE(c);
    const auto after = rill_test::read_offsets(**log, model);
    rill_test::check_compacted(model, after, total, total, segs.back()->base_offset(), false,
                               false);
    log->reset();
    auto again = Log::open(path, config);
    REQUIRE(again);
    INFO("second recovery: " << (*again)->recovery().detail);
    CHECK((*again)->recovery().clean());
    CHECK((*again)->recovery().indexes_rebuilt == 0);
    CHECK(rill_test::read_offsets(**again, model) == after);
    end = (*again)->end_offset();
    again->reset();
  }
  INFO("rounds killed inside a compaction: " << killed_compacting
                                             << ", compactions finished: " << compactions_done);
  CHECK(killed_compacting >= round / 4);
  if (std::getenv("RILL_TEST_VERBOSE") != nullptr) {
    std::printf(
        "compaction_crash_test: %d rounds, %d killed inside a compaction, %d "
        "compactions finished, %lld records\n",
        round, killed_compacting, compactions_done, static_cast<long long>(end));
  }
}

}  // namespace compaction_crash_test
