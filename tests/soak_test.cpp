// The soak: producers, consumers in two groups (members leaving and joining all along, so
// partitions move) and retention all run together for a set time, and an invariant checker
// holds them to account: every record produced is consumed exactly once per group, with the
// value it was sent with, and nothing is lost, while retention deletes old segments behind
// the consumers.
//
// Short in the default run (RILL_SOAK_SECONDS, default 3); the `stress` ctest run
// (RILL_STRESS=1) soaks for 300 s unless RILL_SOAK_SECONDS says otherwise.
//
// Retention runs by size with a limit the consumers never fall behind: producers wait while the
// slowest group is more than kMaxLag records behind, far fewer than a partition keeps.
//
// Compaction runs all along too, on a third topic (cleanup_policy compact, keyed records with
// updates and tombstones): a writer appends to it, the broker's background thread and a
// compactor thread (Broker::compact every few milliseconds) compact it, and a scanner reads it
// from the start over and over; every record read must be the one written at its offset, and
// at the end every key's newest record is there (a newest tombstone may have gone) and is the
// last record of its key (CompactedChecker).
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "catch.hpp"
#include "result_checks.hpp"
#include "rill/rill.hpp"
#include "rill/storage/log.hpp"
#include "test_util.hpp"

// Each test file lives in its own namespace: the tests are compiled a few files per
// translation unit (tests/CMakeLists.txt, RILL_TEST_UNITY).
namespace soak_test {

namespace {

using rill::TopicPartition;
using StringTopic = rill::Topic<std::string, std::string>;
using Clock = std::chrono::steady_clock;

constexpr std::int64_t kMaxLag = 400;  // records produced but not yet consumed by some group
const char* const kTopics[] = {"soak-a", "soak-b"};
constexpr std::int32_t kPartitions[] = {4, 2};
const char* const kGroups[] = {"g1", "g2"};
constexpr int kProducers = 2;
constexpr int kMembersPerGroup = 2;

const char* const kCompacted = "soak-c";
constexpr std::int32_t kCompactedPartitions = 2;
constexpr std::uint64_t kCompactedKeys = 53;

int soak_seconds() {
  if (const char* v = std::getenv("RILL_SOAK_SECONDS")) return std::atoi(v);
  const char* stress = std::getenv("RILL_STRESS");
  return stress != nullptr && *stress != '\0' && *stress != '0' ? 300 : 3;
}

// What was produced and what each group consumed: per partition, a 32-bit hash of the value
// at each offset (0: nothing there yet), so that a five-minute soak of millions of records fits
// in memory.
class Checker {
 public:
  void produced(const std::string& topic, std::int32_t p, std::int64_t offset,
                const std::string& value) {
    std::lock_guard lock(mu_);
    slot(part(topic, p).produced, offset) = hash(value);
    ++produced_count_;
  }

  // Notes a consumed record; a second delivery to the same group is counted as a duplicate.
  void consumed(int group, const std::string& topic, std::int32_t p, std::int64_t offset,
                const std::string& value) {
    std::lock_guard lock(mu_);
    std::uint32_t& seen = slot(part(topic, p).consumed[group], offset);
    if (seen != 0) {
      ++duplicates_[group];
      if (problems_.size() < 10) {
        problems_.push_back("group " + std::to_string(group) + " consumed " + topic + "-" +
                            std::to_string(p) + "@" + std::to_string(offset) + " twice");
      }
      return;
    }
    seen = hash(value);
    ++consumed_count_[group];
  }

  std::int64_t lag() const {
    std::lock_guard lock(mu_);
    return produced_count_ - std::min(consumed_count_[0], consumed_count_[1]);
  }

  std::int64_t produced_count() const {
    std::lock_guard lock(mu_);
    return produced_count_;
  }

  bool all_consumed() const {
    std::lock_guard lock(mu_);
    return consumed_count_[0] >= produced_count_ && consumed_count_[1] >= produced_count_;
  }

  // Every record produced was consumed once by every group, with its value; nothing else was.
  void check() const {
    std::lock_guard lock(mu_);
    for (const auto& p : problems_) FAIL_CHECK(p);
    for (int g = 0; g < kGroupCount; ++g) {
      CAPTURE(g);
      std::int64_t missing = 0, wrong = 0, unknown = 0, holes = 0;
      for (const auto& [name, log] : parts_) {
        const auto& got = log.consumed[g];
        for (std::size_t o = 0; o < std::max(log.produced.size(), got.size()); ++o) {
          const std::uint32_t want = o < log.produced.size() ? log.produced[o] : 0;
          const std::uint32_t have = o < got.size() ? got[o] : 0;
          if (want == 0) ++holes;  // an offset no producer was told about
          if (want == 0 && have != 0) ++unknown;
          if (want != 0 && have == 0) ++missing;
          if (want != 0 && have != 0 && want != have) ++wrong;
        }
      }
      CHECK(holes == 0);
      CHECK(missing == 0);
      CHECK(wrong == 0);
      CHECK(unknown == 0);
      CHECK(duplicates_[g] == 0);
    }
  }

 private:
  static constexpr int kGroupCount = static_cast<int>(std::size(kGroups));
  struct Partition {
    std::vector<std::uint32_t> produced;
    std::vector<std::uint32_t> consumed[kGroupCount];
  };

  static std::uint32_t hash(const std::string& v) {  // FNV-1a, never 0
    std::uint32_t h = 2166136261u;
    for (const char c : v) h = (h ^ static_cast<unsigned char>(c)) * 16777619u;
    return h | 1;
  }
  static std::uint32_t& slot(std::vector<std::uint32_t>& v, std::int64_t offset) {
    const auto i = static_cast<std::size_t>(offset);
    if (v.size() <= i) v.resize(i + 1, 0);
    return v[i];
  }
  Partition& part(const std::string& topic, std::int32_t p) {
    return parts_[topic + "-" + std::to_string(p)];
  }

  mutable std::mutex mu_;
  std::map<std::string, Partition> parts_;
  std::int64_t produced_count_ = 0;
  std::int64_t consumed_count_[kGroupCount] = {};
  std::int64_t duplicates_[kGroupCount] = {};
  std::vector<std::string> problems_;
};

// The compacted topic's model: per partition, a hash of (key, value) at each offset written
// and the newest offset of every key.
class CompactedChecker {
 public:
  static std::uint32_t hash(std::string_view key, std::optional<std::string_view> value) {
    std::uint32_t h = 2166136261u;  // FNV-1a; never 0
    const auto add = [&h](std::string_view s) {
      for (const char c : s) h = (h ^ static_cast<unsigned char>(c)) * 16777619u;
      h = (h ^ 0xffu) * 16777619u;
    };
    add(key);
    add(value ? *value : std::string_view("<tombstone>"));
    return value ? h | 1u : (h & ~1u) | 2u;  // odd: a value; even: a tombstone
  }

  void written(std::int32_t p, std::int64_t offset, std::string_view key,
               std::optional<std::string_view> value) {
    std::lock_guard lock(mu_);
    auto& part = parts_[static_cast<std::size_t>(p)];
    if (static_cast<std::int64_t>(part.at.size()) != offset) {
      note("append to " + std::string(kCompacted) + "-" + std::to_string(p) + " got offset " +
           std::to_string(offset) + ", expected " + std::to_string(part.at.size()));
      part.at.resize(static_cast<std::size_t>(offset), 0);
    }
    part.at.push_back(hash(key, value));
    part.newest[std::string(key)] = offset;
  }

  // The hash written at `offset`, 0 if none was (yet).
  std::uint32_t at(std::int32_t p, std::int64_t offset) const {
    std::lock_guard lock(mu_);
    const auto& v = parts_[static_cast<std::size_t>(p)].at;
    return offset >= 0 && static_cast<std::size_t>(offset) < v.size()
               ? v[static_cast<std::size_t>(offset)]
               : 0;
  }

  // Reads partition `p` of `log` whole (no Catch assertions: the scanner thread calls it):
  // every record is the one written at its offset, offsets increase. Records the writer has
  // not noted yet end the scan unless `final`. Notes what is wrong; returns key -> the offset
  // of its last record read.
  std::map<std::string, std::int64_t> scan(const rill::storage::Log& log, std::int32_t p,
                                           bool final) {
    rill::storage::RecordBatch batch;
    std::map<std::string, std::int64_t> last;
    const std::string name = std::string(kCompacted) + "-" + std::to_string(p);
    std::int64_t at = log.start_offset();
    const std::int64_t end = log.end_offset();
    std::int64_t prev = -1;
    while (at < end) {
      auto r = log.read_into(at, batch, 200);
      if (!r) {
        note("read " + name + " at " + std::to_string(at) + ": " + r.error().to_string());
        return last;
      }
      if (batch.next_offset() <= at) {
        note("read " + name + " stuck at " + std::to_string(at));
        return last;
      }
      for (const auto& rec : batch) {
        const std::string where = name + "@" + std::to_string(rec.offset());
        if (rec.offset() <= prev) {
          note(where + ": offsets do not increase");
          return last;
        }
        prev = rec.offset();
        const std::uint32_t want = this->at(p, rec.offset());
        if (want == 0 && !final) return last;  // appended, not yet noted by the writer
        if (!rec.key()) {
          note(where + ": no key");
          return last;
        }
        if (hash(*rec.key(), rec.value()) != want) {
          note(where + " differs");
          return last;
        }
        last[std::string(*rec.key())] = rec.offset();
      }
      at = batch.next_offset();
    }
    return last;
  }

  // After the writer stopped: partition `p` read whole holds every key's newest record as the
  // last of its key (only a tombstone may be gone). Returns the records left.
  std::size_t check_final(const rill::storage::Log& log, std::int32_t p) {
    const auto last = scan(log, p, true);
    std::lock_guard lock(mu_);
    {
      std::lock_guard problems_lock(problems_mu_);
      for (const auto& problem : problems_) FAIL_CHECK(problem);
    }
    const auto& part = parts_[static_cast<std::size_t>(p)];
    CHECK(static_cast<std::int64_t>(part.at.size()) == log.end_offset());
    std::size_t gone = 0;
    for (const auto& [key, newest] : part.newest) {
      CAPTURE(p, key, newest);
      const auto it = last.find(key);
      if (it == last.end()) {
        CHECK((part.at[static_cast<std::size_t>(newest)] & 1u) == 0);  // an expired tombstone
        ++gone;
      } else {
        CHECK(it->second == newest);  // no older record of a key outlives its newest
      }
    }
    CHECK(last.size() + gone == part.newest.size());
    return last.size();
  }

  std::int64_t written_count() const {
    std::lock_guard lock(mu_);
    std::int64_t n = 0;
    for (const auto& part : parts_) n += static_cast<std::int64_t>(part.at.size());
    return n;
  }

 private:
  struct Partition {
    std::vector<std::uint32_t> at;
    std::map<std::string, std::int64_t> newest;
  };
  void note(std::string problem) {
    std::lock_guard lock(problems_mu_);
    if (problems_.size() < 10) problems_.push_back(std::move(problem));
  }

  mutable std::mutex mu_;
  Partition parts_[kCompactedPartitions];
  std::mutex problems_mu_;
  std::vector<std::string> problems_;
};

}  // namespace

TEST_CASE("soak: producers, groups with churn and retention lose nothing and repeat nothing",
          "[soak][group][retention]") {
  const int seconds = soak_seconds();
  rill_test::TempDir tmp;
  rill::BrokerOptions o;
  o.prefault_bytes = 64u << 10;
  auto broker = rill_test::take(rill::Broker::open(tmp.sub("data"), o));
  rill::TopicConfig tc;
  tc.segment_bytes = 16u << 10;
  tc.max_record_bytes = 1024;
  tc.retention_bytes = 64u << 10;  // per partition: some 500 records of these sizes
  std::vector<StringTopic> topics;
  for (std::size_t t = 0; t < std::size(kTopics); ++t) {
    tc.partitions = kPartitions[t];
    topics.push_back(rill_test::take(StringTopic::create(*broker, kTopics[t], tc)));
  }

  rill::TopicConfig cc;
  cc.partitions = kCompactedPartitions;
  // Small segments, for many compactions in a short run. Compaction rewrites each sealed
  // segment on its own and never merges them, so a compacted topic keeps every segment it
  // rolled, each three mappings: at 8 KiB this one rolls some 270 a second, and a 300-second
  // run passed Linux's default vm.max_map_count (65530) and failed in mmap with ENOMEM.
  // Longer runs use larger segments.
  cc.segment_bytes = seconds <= 30 ? 8u << 10 : 128u << 10;
  cc.max_record_bytes = 1024;
  cc.cleanup_policy = rill::CleanupPolicy::kCompact;
  cc.delete_retention_ms = 0;  // newest tombstones go at the next compaction
  (void)rill_test::take(StringTopic::create(*broker, kCompacted, cc));
  auto compacted = rill_test::take(broker->topic_state(kCompacted));

  Checker checker;
  CompactedChecker compacted_checker;
  std::atomic<std::int64_t> segments_rewritten{0};
  std::atomic<bool> stop_producing{false};
  std::atomic<bool> stop_consuming{false};
  std::atomic<int> errors{0};
  std::mutex error_mu;
  std::string first_error;
  const auto report = [&](const std::string& what, const rill::Error& e) {
    std::lock_guard lock(error_mu);
    if (errors.fetch_add(1) == 0) first_error = what + ": " + e.to_string();
  };

  std::vector<std::thread> threads;
  for (int id = 0; id < kProducers; ++id) {
    threads.emplace_back([&, id] {
      rill::Producer<std::string, std::string> producer(*broker);
      std::uint64_t seq = 0;
      while (!stop_producing.load(std::memory_order_relaxed)) {
        if (checker.lag() > kMaxLag) {
          std::this_thread::sleep_for(std::chrono::microseconds(200));
          continue;
        }
        const std::size_t t = seq % std::size(kTopics);
        const std::string key = "p" + std::to_string(id) + "-" + std::to_string(seq % 37);
        const std::string value =
            std::to_string(id) + ":" + std::to_string(seq) + ":" + std::string(seq % 97, 'v');
        auto md = producer.send(topics[t], key, value);
        if (!md) {
          report("send", md.error());
          return;
        }
        checker.produced(kTopics[t], md->partition, md->offset, value);
        ++seq;
        // Paced, so a five-minute soak stays within memory: tens of thousands of records a
        // second are plenty to keep groups and retention busy.
        if (seq % 4 == 0) std::this_thread::sleep_for(std::chrono::microseconds(100));
      }
    });
  }

  // The compacted topic: a writer, a compactor, a scanner.
  threads.emplace_back([&] {
    std::mt19937_64 rng(7);
    std::uint64_t seq = 0;
    while (!stop_producing.load(std::memory_order_relaxed)) {
      const auto p = static_cast<std::int32_t>(rng() % kCompactedPartitions);
      const std::string key = "c" + std::to_string(rng() % kCompactedKeys);
      const std::string value = std::to_string(seq) + ":" + std::string(rng() % 120, 'c');
      std::optional<std::string_view> v;
      if (rng() % 9 != 0) v = value;  // else a tombstone
      const auto t =
          static_cast<std::int64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                        std::chrono::system_clock::now().time_since_epoch())
                                        .count());
      auto r = compacted->partition(p)->append({.key = key, .value = v, .timestamp_ms = t});
      if (!r) {
        report("append to " + std::string(kCompacted), r.error());
        return;
      }
      compacted_checker.written(p, r->offset, key, v);
      if (++seq % 4 == 0) std::this_thread::sleep_for(std::chrono::microseconds(100));
    }
  });
  threads.emplace_back([&] {
    while (!stop_producing.load(std::memory_order_relaxed)) {
      auto c = broker->compact(kCompacted);
      if (!c) {
        report("compact", c.error());
        return;
      }
      for (const auto& r : *c)
        segments_rewritten += static_cast<std::int64_t>(r.segments_rewritten);
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  });
  threads.emplace_back([&] {
    while (!stop_producing.load(std::memory_order_relaxed)) {
      for (std::int32_t p = 0; p < kCompactedPartitions; ++p) {
        (void)compacted_checker.scan(*compacted->partition(p), p, false);
      }
    }
  });

  for (int g = 0; g < static_cast<int>(std::size(kGroups)); ++g) {
    for (int m = 0; m < kMembersPerGroup; ++m) {
      threads.emplace_back([&, g, m] {
        // Member 0 of each group leaves and rejoins every ~300 ms (a clean rebalance each time).
        std::mt19937_64 rng(static_cast<std::uint64_t>(g * 10 + m));
        while (!stop_consuming.load(std::memory_order_relaxed)) {
          rill::Consumer<std::string, std::string> consumer(
              *broker,
              {.group_id = kGroups[g],
               .auto_offset_reset = rill::OffsetReset::kEarliest,
               .enable_auto_commit = true,
               .auto_commit_interval_ms = 50,
               .assignment_strategy = g == 0 ? rill::AssignmentStrategy::kRange
                                             : rill::AssignmentStrategy::kCooperativeSticky});
          if (auto r = consumer.subscribe({kTopics[0], kTopics[1]}); !r) {
            report("subscribe", r.error());
            return;
          }
          const auto leave_at =
              Clock::now() + std::chrono::milliseconds(m == 0 ? 100 + rng() % 400 : 1'000'000'000);
          while (!stop_consuming.load(std::memory_order_relaxed) && Clock::now() < leave_at) {
            auto recs = consumer.poll(std::chrono::milliseconds(20));
            if (!recs) {
              report("poll", recs.error());
              return;
            }
            for (const auto& r : *recs) {
              checker.consumed(g, std::string(r.topic), r.partition, r.offset, r.value);
            }
          }
          if (auto r = consumer.close(); !r) {
            report("close", r.error());
            return;
          }
        }
      });
    }
  }

  // Retention has deleted segments in every partition: a slow (sanitizer) build may need
  // longer than `seconds` for that, up to a minute more.
  const auto retention_ran = [&] {
    for (const auto* name : kTopics) {
      for (const auto& p : rill_test::take(broker->describe_topic(name)).partitions) {
        if (p.start_offset == 0) return false;
      }
    }
    return true;
  };
  std::this_thread::sleep_for(std::chrono::seconds(seconds));
  const auto give_up = Clock::now() + std::chrono::seconds(60);
  while (!retention_ran() && errors.load() == 0 && Clock::now() < give_up) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  stop_producing = true;
  const auto drain_until = Clock::now() + std::chrono::seconds(60);
  while (!checker.all_consumed() && errors.load() == 0 && Clock::now() < drain_until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  stop_consuming = true;
  for (auto& t : threads) t.join();

  INFO("first error: " << first_error);
  REQUIRE(errors.load() == 0);
  INFO("produced " << checker.produced_count() << " records in " << seconds << " s");
  checker.check();
  CHECK(retention_ran());  // old segments are gone in every partition, behind the consumers

  // The compacted topic, once more compacted now that nothing is written: every key's newest
  // record is there and no older one of it; compaction did take records out.
  auto last = broker->compact(kCompacted);
  REQUIRE(last);
  std::int64_t compacted_left = 0;
  for (std::int32_t p = 0; p < kCompactedPartitions; ++p) {
    compacted_left +=
        static_cast<std::int64_t>(compacted_checker.check_final(*compacted->partition(p), p));
  }
  INFO("compacted topic: " << compacted_checker.written_count() << " written, " << compacted_left
                           << " left");
  CHECK(segments_rewritten.load() > 0);
  CHECK(compacted_left < compacted_checker.written_count());
  std::int64_t deleted = 0;
  for (const auto* name : kTopics) {
    for (const auto& p : rill_test::take(broker->describe_topic(name)).partitions) {
      deleted += p.start_offset;
    }
  }
  if (std::getenv("RILL_TEST_VERBOSE") != nullptr) {
    std::printf(
        "soak: %d s, %lld records produced, %lld deleted by retention; compacted topic: %lld "
        "written, %lld left, %lld segment rewrites\n",
        seconds, static_cast<long long>(checker.produced_count()), static_cast<long long>(deleted),
        static_cast<long long>(compacted_checker.written_count()),
        static_cast<long long>(compacted_left), static_cast<long long>(segments_rewritten.load()));
  }
}

}  // namespace soak_test
