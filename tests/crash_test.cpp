// Crash safety of the partition log: a child process appends as fast as it can and reports
// every acknowledged append through a pipe; the parent SIGKILLs it at a random moment, reopens
// the log and checks that recovery kept every acknowledged record, byte for byte.
//
// Record contents are a pure function of the offset (see expected_record), so the parent can
// check any record, acknowledged or not, without the pipe carrying the bytes.
//
// TSan: the parent forks while single-threaded (its own Log is closed and has no background
// thread); the child may start the Log's prefault thread, which is allowed after a
// single-threaded fork.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "catch.hpp"
#include "expected_record.hpp"
#include "kill_child.hpp"
#include "rill/storage/log.hpp"
#include "test_util.hpp"

// Each test file lives in its own namespace: the tests are compiled a few files per
// translation unit (tests/CMakeLists.txt, RILL_TEST_UNITY).
namespace crash_test {

namespace {

using rill::storage::Header;
using rill::storage::Log;
using rill::storage::LogConfig;
using rill::storage::Record;
using rill::storage::RecordBatch;
using rill::storage::RecordView;

constexpr std::size_t kMaxRecordBytes = 8192;
constexpr std::size_t kMaxBatch = 8;
constexpr std::int64_t kBaseTimestampMs = 1'700'000'000'000;

using rill_test::as_record;
using rill_test::Expected;
using rill_test::matches;
using rill_test::mix;

// What the record at `offset` holds: everything derives from (salt, offset).
Expected expected_record(std::uint64_t salt, std::uint64_t offset) {
  const std::uint64_t h = mix(salt ^ mix(offset));
  Expected e;
  if ((h & 7) != 0) e.key = "key-" + std::to_string(offset);
  std::size_t len;
  const std::uint64_t size_class = (h >> 3) % 100;
  if (size_class < 70) {
    len = (h >> 10) % 200;
  } else if (size_class < 95) {
    len = 200 + (h >> 10) % 1800;
  } else {
    len = 2000 + (h >> 10) % 5000;
  }
  if (((h >> 40) & 31) == 0) {
    e.value = std::nullopt;  // a tombstone
  } else {
    std::string v(len, '\0');
    std::uint64_t s = h;
    for (std::size_t i = 0; i < len; ++i) {
      if (i % 8 == 0) s = mix(s);
      v[i] = static_cast<char>(s >> (8 * (i % 8)));
    }
    e.value = std::move(v);
  }
  if (((h >> 45) & 3) == 0) {
    e.headers.emplace_back("trace", std::to_string(offset));
    if (((h >> 47) & 1) != 0) e.headers.emplace_back("null", std::nullopt);
  }
  e.timestamp_ms = kBaseTimestampMs + static_cast<std::int64_t>(offset);
  return e;
}

// One acknowledged append, as the child reports it.
struct Ack {
  std::int64_t offset;
  std::int64_t count;
};

// The child: appends forever and acknowledges each append. Never returns; never touches
// Catch2. Exit codes name what went wrong for the parent.
[[noreturn]] void child_main(const std::string& path, const LogConfig& config, std::uint64_t salt,
                             std::uint64_t seed, int ack_fd) {
  auto log = Log::open(path, config);
  if (!log) {
    std::fprintf(stderr, "crash child: open failed: %s\n", log.error().to_string().c_str());
    ::_exit(3);
  }
  std::mt19937_64 rng(seed);
  std::vector<Expected> exp;
  std::vector<std::vector<Header>> hdrs(kMaxBatch);
  std::vector<Record> recs;
  for (;;) {
    const auto next = static_cast<std::uint64_t>((*log)->end_offset());
    const std::size_t n = rng() % 4 == 0 ? 1 + rng() % kMaxBatch : 1;
    exp.clear();
    recs.clear();
    for (std::size_t i = 0; i < n; ++i) exp.push_back(expected_record(salt, next + i));
    for (std::size_t i = 0; i < n; ++i) recs.push_back(as_record(exp[i], hdrs[i]));
    auto r = n == 1 ? (*log)->append(recs[0]) : (*log)->append_batch(recs);
    if (!r) {
      std::fprintf(stderr, "crash child: append failed: %s\n", r.error().to_string().c_str());
      ::_exit(4);
    }
    if (r->offset != static_cast<std::int64_t>(next) || r->count != static_cast<std::int64_t>(n)) {
      ::_exit(5);
    }
    const Ack ack{r->offset, r->count};
    if (::write(ack_fd, &ack, sizeof ack) != static_cast<ssize_t>(sizeof ack)) ::_exit(6);
  }
}

LogConfig config_for_round(std::uint64_t r) {
  static constexpr std::size_t kSegmentBytes[] = {64u << 10, 128u << 10, 256u << 10};
  LogConfig c;
  c.segment_bytes = kSegmentBytes[r % 3];
  c.max_record_bytes = kMaxRecordBytes;
  c.index_interval_bytes = (r % 2 == 0) ? 512 : 4096;
  c.verify_checksums = true;
  c.prefault_bytes = 0;
  return c;
}

}  // namespace

TEST_CASE("every acknowledged record survives a SIGKILL", "[log][recovery][crash]") {
  const std::uint64_t seed = rill_test::test_seed();
  INFO("seed " << seed << " (replay with RILL_TEST_SEED=" << seed << ")");
  const std::uint64_t salt = mix(seed);
  std::mt19937_64 rng(seed);
  const int rounds = rill_test::sanitizer_build() ? 15 : 100;

  rill_test::TempDir tmp;
  const std::string path = tmp.sub("log");
  std::int64_t end = 0;          // every offset below is in the log (checked or acknowledged)
  std::int64_t verified_to = 0;  // records below were compared in an earlier round
  bool recovered = true;         // the parent recovered the log after the last kill
  int unfinished_frames = 0;     // rounds whose recovery dropped an unfinished frame
  int dropped_segments = 0;      // rounds whose recovery dropped an empty new segment
  int early_kills = 0;           // children killed before their first acknowledgement

  for (int round = 0; round < rounds; ++round) {
    // Every fourth round the parent leaves the crashed log alone: the next child recovers it
    // itself, and half the time is killed before it acknowledges anything, perhaps in the
    // middle of that recovery.
    const bool verify = round % 4 != 1 || round + 1 == rounds;
    const bool early_kill = !recovered && rng() % 2 == 0;
    CAPTURE(round, end, recovered, early_kill);
    LogConfig child_config = config_for_round(static_cast<std::uint64_t>(round));
    // The prefault thread in half of the rounds: kills then also land while it runs.
    if (round % 2 == 1) child_config.prefault_bytes = 256u << 10;
    const std::uint64_t child_seed = rng();
    // Let the child start; once it has acknowledged something, let it run a random while.
    const auto run_for = std::chrono::microseconds(early_kill ? rng() % 3000 : 200 + rng() % 4800);
    const std::vector<char> buf = rill_test::run_and_kill(
        [&](int fd) { child_main(path, child_config, salt, child_seed, fd); }, early_kill,
        sizeof(Ack), run_for);

    // Acknowledgements are dense and start where the log ended: at `end` after the parent's
    // recovery, else after what survived of the previous child's last, unacknowledged append.
    REQUIRE(buf.size() % sizeof(Ack) == 0);
    if (!early_kill) REQUIRE(buf.size() >= sizeof(Ack));
    if (buf.empty()) ++early_kills;
    std::int64_t acked_end = end;
    for (std::size_t i = 0; i < buf.size(); i += sizeof(Ack)) {
      Ack a;
      std::memcpy(&a, buf.data() + i, sizeof a);
      if (i == 0 && !recovered) {
        REQUIRE(a.offset >= acked_end);
        REQUIRE(a.offset <= acked_end + static_cast<std::int64_t>(kMaxBatch));
      } else {
        REQUIRE(a.offset == acked_end);
      }
      REQUIRE(a.count >= 1);
      acked_end = a.offset + a.count;
    }
    CAPTURE(acked_end);
    if (!verify) {
      end = acked_end;
      recovered = false;
      continue;
    }

    // Reopen. Recovery may find at most the one append the child was in: an unfinished frame
    // (payload written, size still 0) or a complete but unacknowledged append, and a segment
    // created by a roll that was killed before its header was written.
    LogConfig config = config_for_round(static_cast<std::uint64_t>(round) + 1);
    auto log = Log::open(path, config);
    REQUIRE(log);
    const auto& rep = (*log)->recovery();
    INFO("recovery: " << rep.detail);
    const std::int64_t new_end = (*log)->end_offset();
    CAPTURE(new_end);
    CHECK((*log)->start_offset() == 0);
    // At most one unacknowledged append per child may have survived (two children when the
    // last one acknowledged nothing).
    REQUIRE(new_end >= acked_end);
    REQUIRE(new_end <=
            acked_end + static_cast<std::int64_t>((buf.empty() && !recovered ? 2 : 1) * kMaxBatch));
    CHECK(rep.dropped_records == 0);
    CHECK(rep.segments_deleted <= 1);
    // The append the child was in is one batch of up to kMaxBatch records (format v2), and
    // all of its bytes but the size word may be written: up to kMaxBatch records' worth.
    CHECK(rep.dropped_bytes <= kMaxBatch * kMaxRecordBytes);
    if (rep.truncated_at >= 0) CHECK(rep.truncated_at == new_end);
    if (!rep.clean()) CHECK(!rep.detail.empty());
    if (rep.dropped_bytes > 0) ++unfinished_frames;
    if (rep.segments_deleted > 0) ++dropped_segments;

    // Segments tile the offsets without gaps.
    const auto segs = (*log)->segments();
    REQUIRE(!segs.empty());
    CHECK(segs.front()->base_offset() == 0);
    for (std::size_t i = 0; i + 1 < segs.size(); ++i) {
      CHECK(segs[i]->end_offset() == segs[i + 1]->base_offset());
    }
    CHECK(static_cast<std::int64_t>(segs.back()->end_offset()) == new_end);

    // Every record, acknowledged or not, holds exactly what was written. Everything is
    // compared every tenth round and at the end; the other rounds check this round's records
    // and the first record of every segment.
    const bool full = round % 10 == 9 || round + 1 == rounds;
    std::int64_t from = full ? 0 : std::max<std::int64_t>(0, verified_to - 1);
    RecordBatch batch;
    std::int64_t at = from;
    while (at < new_end) {
      auto got = (*log)->read_into(at, batch, 256);
      INFO("read at " << at << ": " << (got ? std::string("ok") : got.error().to_string()));
      REQUIRE(got);
      REQUIRE(!batch.empty());
      for (const RecordView& r : batch) {
        REQUIRE(r.offset() == at);
        if (!matches(r, expected_record(salt, static_cast<std::uint64_t>(at)))) {
          FAIL("record " << at << " differs from what was appended");
        }
        ++at;
      }
    }
    for (const auto& s : segs) {
      if (s->end_offset() == s->base_offset()) continue;
      const auto first = static_cast<std::int64_t>(s->base_offset());
      auto got = (*log)->read(first, 1);
      REQUIRE(got);
      REQUIRE(got->size() == 1);
      CHECK(matches((*got)[0], expected_record(salt, s->base_offset())));
    }
    verified_to = new_end;

    // Recovery leaves a log that recovers clean.
    log->reset();
    auto again = Log::open(path, config);
    REQUIRE(again);
    INFO("second recovery: " << (*again)->recovery().detail);
    CHECK((*again)->recovery().clean());
    CHECK((*again)->recovery().indexes_rebuilt == 0);
    CHECK((*again)->end_offset() == new_end);

    // Now and then the parent appends too, so the next child recovers a log it did not write.
    if (round % 5 == 2) {
      std::vector<Header> hdrs;
      for (int i = 0; i < 3; ++i) {
        const Expected e = expected_record(salt, static_cast<std::uint64_t>(new_end + i));
        auto a = (*again)->append(as_record(e, hdrs));
        REQUIRE(a);
        CHECK(a->offset == new_end + i);
      }
    }
    end = (*again)->end_offset();
    recovered = true;
    again->reset();  // close before the next child opens: the Log holds the directory's flock
  }
  INFO("rounds with an unfinished frame: " << unfinished_frames
                                           << ", with a dropped new segment: " << dropped_segments
                                           << ", killed early: " << early_kills);
  CHECK(end > 0);
  if (std::getenv("RILL_TEST_VERBOSE") != nullptr) {
    std::printf(
        "crash_test: %d rounds, %lld records, %d unfinished frames, %d dropped segments, "
        "%d killed before acknowledging\n",
        rounds, static_cast<long long>(end), unfinished_frames, dropped_segments, early_kills);
  }
}

}  // namespace crash_test
