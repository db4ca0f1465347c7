// Consumer groups under threads: members on their own threads, joining and leaving while a
// producer appends, must process every record exactly once (they commit in on_revoked and after
// each poll), never hold a partition two at a time, and read each partition in order. Then a
// stress with several producers, two groups, membership churn and wakeup() from outside, for
// TSan (CI runs files named *concurrency* under it).
//
// Catch2's assertions are not thread-safe: worker threads only count and describe what went
// wrong; the main thread checks after joining them.
#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "catch.hpp"
#include "rill/broker.hpp"
#include "rill/consumer.hpp"
#include "rill/consumer_group.hpp"
#include "rill/producer.hpp"
#include "rill/topic.hpp"
#include "test_util.hpp"

// Each test file lives in its own namespace: the tests are compiled a few files per
// translation unit (tests/CMakeLists.txt, RILL_TEST_UNITY).
namespace group_concurrency_test {

using rill::AssignmentStrategy;
using rill::Broker;
using rill::Consumer;
using rill::ConsumerConfig;
using rill::ConsumerGroup;
using rill::ErrorCode;
using rill::OffsetReset;
using rill::Producer;
using rill::ProducerRecord;
using rill::RebalanceCallbacks;
using rill::Topic;
using rill::TopicConfig;
using rill::TopicPartition;
using rill_test::TempDir;

namespace {

template <typename T>
T take(rill::Result<T> r) {
  INFO((r ? std::string() : r.error().to_string()));
  REQUIRE(r.has_value());
  return std::move(*r);
}

constexpr std::int32_t kPartitions = 8;

const char* name_of(AssignmentStrategy s) {
  switch (s) {
    case AssignmentStrategy::kRange:
      return "range";
    case AssignmentStrategy::kRoundRobin:
      return "roundrobin";
    case AssignmentStrategy::kCooperativeSticky:
      return "cooperative-sticky";
  }
  return "?";
}

// What the worker threads report: counters, and the first few problems in words.
class Problems {
 public:
  void add(std::string what) {
    count_.fetch_add(1, std::memory_order_relaxed);
    std::lock_guard lock(mu_);
    if (first_.size() < 10) first_.push_back(std::move(what));
  }
  int count() const { return count_.load(std::memory_order_relaxed); }
  std::string text() const {
    std::lock_guard lock(mu_);
    std::string out;
    for (const auto& s : first_) out += s + "\n";
    return out;
  }

 private:
  std::atomic<int> count_{0};
  mutable std::mutex mu_;
  std::vector<std::string> first_;
};

// One group's view of who holds what and how often each record was processed. Every access
// is atomic: ownership moves between threads through the coordinator's mutex, and these
// counters must not depend on it being right, since they are how it is checked.
class Ledger {
 public:
  Ledger(std::size_t per_partition, Problems& problems)
      : problems_(&problems), per_partition_(per_partition) {
    for (auto& h : holder_) h.store(-1, std::memory_order_relaxed);
    for (auto& c : counts_) {
      c = std::make_unique<std::atomic<std::uint8_t>[]>(per_partition);
      for (std::size_t i = 0; i < per_partition; ++i) c[i].store(0, std::memory_order_relaxed);
    }
  }

  void assigned(int who, const std::vector<TopicPartition>& tps) {
    for (const auto& tp : tps) {
      int expected = -1;
      if (!holder_[idx(tp)].compare_exchange_strong(expected, who, std::memory_order_acq_rel)) {
        problems_->add("consumer " + std::to_string(who) + " was assigned " +
                       rill::group::to_string(tp) + " while consumer " + std::to_string(expected) +
                       " held it");
      }
    }
  }

  void released(int who, const std::vector<TopicPartition>& tps) {
    for (const auto& tp : tps) {
      int expected = who;
      if (!holder_[idx(tp)].compare_exchange_strong(expected, -1, std::memory_order_acq_rel)) {
        problems_->add("consumer " + std::to_string(who) + " released " +
                       rill::group::to_string(tp) + " held by " + std::to_string(expected));
      }
    }
  }

  // A record `who` processed; false if it is not `who`'s to process or was processed before.
  void processed(int who, std::int32_t partition, std::int64_t offset) {
    const int h = holder_[static_cast<std::size_t>(partition)].load(std::memory_order_acquire);
    if (h != who) {
      problems_->add("consumer " + std::to_string(who) + " got t-" + std::to_string(partition) +
                     " offset " + std::to_string(offset) + " while consumer " + std::to_string(h) +
                     " held it");
    }
    if (offset < 0 || static_cast<std::size_t>(offset) >= per_partition_) {
      problems_->add("offset out of range: " + std::to_string(offset));
      return;
    }
    const auto before =
        counts_[static_cast<std::size_t>(partition)][static_cast<std::size_t>(offset)].fetch_add(
            1, std::memory_order_relaxed);
    if (before != 0) {
      duplicates_.fetch_add(1, std::memory_order_relaxed);
      problems_->add("t-" + std::to_string(partition) + " offset " + std::to_string(offset) +
                     " processed again, by consumer " + std::to_string(who));
    }
    total_.fetch_add(1, std::memory_order_relaxed);
  }

  std::int64_t total() const { return total_.load(std::memory_order_relaxed); }
  std::int64_t duplicates() const { return duplicates_.load(std::memory_order_relaxed); }

  // Offsets below `end` of `partition` processed other than exactly once, and any at or above.
  std::int64_t wrong(std::int32_t partition, std::int64_t end) const {
    std::int64_t bad = 0;
    const auto& c = counts_[static_cast<std::size_t>(partition)];
    for (std::size_t i = 0; i < per_partition_; ++i) {
      const int n = c[i].load(std::memory_order_relaxed);
      if (static_cast<std::int64_t>(i) < end ? n != 1 : n != 0) ++bad;
    }
    return bad;
  }

 private:
  static std::size_t idx(const TopicPartition& tp) {
    return static_cast<std::size_t>(tp.partition);
  }

  Problems* problems_;
  std::size_t per_partition_;
  std::array<std::atomic<int>, kPartitions> holder_;
  std::array<std::unique_ptr<std::atomic<std::uint8_t>[]>, kPartitions> counts_;
  std::atomic<std::int64_t> total_{0};
  std::atomic<std::int64_t> duplicates_{0};
};

// A group member on its own thread: polls, processes, commits after every poll and in
// on_revoked, until told to stop; then closes (on_revoked, leave).
template <typename K>
class Worker {
 public:
  Worker(Broker& broker, int id, const std::string& group, AssignmentStrategy strategy,
         Ledger& ledger, Problems& problems, std::size_t max_poll_records = 500)
      : id_(id), ledger_(&ledger), problems_(&problems) {
    ConsumerConfig cfg;
    cfg.group_id = group;
    cfg.auto_offset_reset = OffsetReset::kEarliest;
    cfg.enable_auto_commit = false;
    cfg.assignment_strategy = strategy;
    cfg.max_poll_records = max_poll_records;
    cfg.client_id = "w" + std::to_string(id);
    consumer_ = std::make_unique<Consumer<K, std::int64_t>>(broker, cfg);
    RebalanceCallbacks cb;
    cb.on_revoked = [this](const std::vector<TopicPartition>& tps) {
      auto r = consumer_->commit();
      if (!r) problems_->add("commit in on_revoked: " + r.error().to_string());
      ledger_->released(id_, tps);
    };
    cb.on_assigned = [this](const std::vector<TopicPartition>& tps) {
      for (const auto& tp : tps) last_[static_cast<std::size_t>(tp.partition)] = -1;
      assignments_.fetch_add(1, std::memory_order_relaxed);
      ledger_->assigned(id_, tps);
    };
    cb.on_lost = [this](const std::vector<TopicPartition>& tps) {
      problems_->add("consumer " + std::to_string(id_) + " lost partitions (no timeouts here)");
      ledger_->released(id_, tps);
    };
    auto s = consumer_->subscribe({"t"}, cb);
    if (!s) problems_->add("subscribe: " + s.error().to_string());
  }

  // Runs on the worker's thread. `check` sees each record's value.
  template <typename Check>
  void run(Check check) {
    while (!stop_.load(std::memory_order_acquire)) {
      auto r = consumer_->poll(std::chrono::milliseconds(20));
      if (!r) {
        if (r.error().code() != ErrorCode::kInterrupted) {
          problems_->add("poll: " + r.error().to_string());
        }
        continue;
      }
      for (const auto& rec : *r) {
        auto& last = last_[static_cast<std::size_t>(rec.partition)];
        if (rec.offset <= last) {
          problems_->add("t-" + std::to_string(rec.partition) + " offset " +
                         std::to_string(rec.offset) + " after " + std::to_string(last));
        }
        last = rec.offset;
        if (!check(rec)) {
          problems_->add("t-" + std::to_string(rec.partition) + " offset " +
                         std::to_string(rec.offset) + " has the wrong value");
        }
        ledger_->processed(id_, rec.partition, rec.offset);
      }
      processed_.fetch_add(static_cast<std::int64_t>(r->size()), std::memory_order_relaxed);
      if (!r->empty()) {
        auto c = consumer_->commit();
        if (!c) problems_->add("commit: " + c.error().to_string());
      }
    }
    auto c = consumer_->close();
    if (!c) problems_->add("close: " + c.error().to_string());
  }

  void stop() { stop_.store(true, std::memory_order_release); }
  std::int64_t processed() const { return processed_.load(std::memory_order_relaxed); }
  int assignments() const { return assignments_.load(std::memory_order_relaxed); }
  // Any thread; the consumer lives as long as this Worker.
  void wakeup() { consumer_->wakeup(); }

 private:
  int id_;
  Ledger* ledger_;
  Problems* problems_;
  std::array<std::int64_t, kPartitions> last_{};  // only the worker's thread touches it
  std::atomic<bool> stop_{false};
  std::atomic<std::int64_t> processed_{0};
  std::atomic<int> assignments_{0};
  std::unique_ptr<Consumer<K, std::int64_t>> consumer_;
};

// Waits (real time, only to let the threads progress) until `done()`, or fails after `limit`.
template <typename Done>
bool wait_until(Done done, std::chrono::seconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

}  // namespace

TEST_CASE("members joining and leaving while a producer appends process every record once",
          "[group][concurrency]") {
  const AssignmentStrategy strategy =
      GENERATE(AssignmentStrategy::kRange, AssignmentStrategy::kRoundRobin,
               AssignmentStrategy::kCooperativeSticky);
  CAPTURE(name_of(strategy));
  const std::int64_t total = rill_test::sanitizer_build() ? 100'000 : 1'000'000;
  const std::int64_t per_partition = total / kPartitions;
  CAPTURE(total);

  rill::BrokerOptions options;
  options.prefault_bytes = 0;
  auto broker = take(Broker::open_in_memory(options));
  TopicConfig tc;
  tc.partitions = kPartitions;
  tc.segment_bytes = 4u << 20;  // several segments per partition
  auto topic = take(Topic<std::int64_t, std::int64_t>::create(*broker, "t", tc));

  Problems problems;
  Ledger ledger(static_cast<std::size_t>(per_partition), problems);

  // The producer: record i goes to partition i % 8, so it is offset i / 8 there. It stays at
  // most a tenth of the records ahead of the consumers, so that it appends all through the
  // membership changes below.
  std::thread producer([&] {
    Producer<std::int64_t, std::int64_t> p(*broker);
    std::vector<ProducerRecord<std::int64_t, std::int64_t>> batch;
    for (std::int64_t i = 0; i < total;) {
      while (i - ledger.total() > total / 10 && problems.count() == 0) {
        std::this_thread::sleep_for(std::chrono::microseconds(100));
      }
      batch.clear();
      for (int j = 0; j < 64 && i < total; ++j, ++i) {
        batch.push_back({.key = std::nullopt,
                         .value = i,
                         .partition = static_cast<std::int32_t>(i % kPartitions)});
      }
      auto r = p.send_batch(topic, batch);
      if (!r) problems.add("send_batch: " + r.error().to_string());
    }
  });
  auto check = [](const rill::ConsumerRecord<std::int64_t, std::int64_t>& rec) {
    return rec.value == rec.offset * kPartitions + rec.partition && !rec.key.has_value();
  };

  std::vector<std::unique_ptr<Worker<std::int64_t>>> workers;
  std::vector<std::thread> threads;
  auto add = [&] {
    const int id = static_cast<int>(workers.size());
    workers.push_back(
        std::make_unique<Worker<std::int64_t>>(*broker, id, "g", strategy, ledger, problems));
    Worker<std::int64_t>* w = workers.back().get();
    threads.emplace_back([w, check] { w->run(check); });
  };
  auto progress = [&](std::int64_t at) {
    return wait_until([&] { return ledger.total() >= at || problems.count() > 0; },
                      std::chrono::seconds(120));
  };

  // 2 members, then 4, then 3 (one leaves), then 4 again.
  add();
  add();
  CHECK(progress(total / 5));
  add();
  add();
  CHECK(progress(2 * total / 5));
  workers[1]->stop();
  threads[1].join();
  CHECK(progress(3 * total / 5));
  add();
  const bool finished = progress(total);
  producer.join();
  // Wait for the stragglers: a duplicate would push the count past the total.
  for (auto& w : workers) w->stop();
  for (std::size_t i = 0; i < threads.size(); ++i) {
    if (i != 1) threads[i].join();
  }

  INFO(problems.text());
  CHECK(finished);
  CHECK(problems.count() == 0);
  CHECK(ledger.total() == total);
  CHECK(ledger.duplicates() == 0);
  for (std::int32_t p = 0; p < kPartitions; ++p) {
    CAPTURE(p);
    CHECK(topic.log(p)->end_offset() == per_partition);
    CHECK(ledger.wrong(p, per_partition) == 0);
  }
  // Everything committed: nothing left for the group.
  for (const auto& l : take(ConsumerGroup(*broker, "g").lag())) CHECK(l.lag == 0);
  const auto d = take(ConsumerGroup(*broker, "g").describe());
  CHECK(d.members.empty());
  CHECK(d.generation == 10);  // 6 joins and leaves on the way, 4 leaves at the end
  for (const auto& w : workers) {
    CHECK(w->processed() > 0);  // every member took part
    CHECK(w->assignments() > 0);
  }
}

TEST_CASE("stress: producers, two groups, churning members and wakeups stay exactly-once",
          "[group][concurrency][stress]") {
  const std::uint64_t seed = rill_test::test_seed();
  INFO("seed " << seed);
  const bool in_memory = GENERATE(true, false);
  CAPTURE(in_memory);
  const int kProducers = 3;
  const std::int64_t per_producer = rill_test::sanitizer_build() ? 10'000 : 60'000;
  const std::int64_t total = kProducers * per_producer;

  TempDir dir;
  rill::BrokerOptions options;
  options.prefault_bytes = 0;
  auto broker =
      take(in_memory ? Broker::open_in_memory(options) : Broker::open(dir.sub("data"), options));
  TopicConfig tc;
  tc.partitions = kPartitions;
  tc.segment_bytes = 1u << 20;
  tc.max_record_bytes = 4096;
  auto topic = take(Topic<std::string, std::int64_t>::create(*broker, "t", tc));

  Problems problems;
  // Keyed routing is uneven: size each partition's ledger for everything.
  Ledger coop(static_cast<std::size_t>(total), problems);
  Ledger range(static_cast<std::size_t>(total), problems);

  // Members must come and go while records flow: the producers hold their second half until
  // the churn thread below has run three rounds (a fast consumer could otherwise read all
  // before a third member came; seen under ASan).
  std::atomic<int> rounds{0};
  std::atomic<std::int64_t> produced{0};
  std::vector<std::thread> producers;
  for (int id = 0; id < kProducers; ++id) {
    producers.emplace_back([&, id] {
      Producer<std::string, std::int64_t> p(*broker);
      std::mt19937_64 rng(seed + static_cast<std::uint64_t>(id));
      for (std::int64_t i = 0; i < per_producer; ++i) {
        if (i == per_producer / 2) {
          (void)wait_until([&] { return rounds.load(std::memory_order_relaxed) >= 3; },
                           std::chrono::seconds(60));
        }
        produced.fetch_add(1, std::memory_order_relaxed);
        const std::int64_t value = (static_cast<std::int64_t>(id) << 32) | i;
        rill::Result<rill::RecordMetadata> r =
            rng() % 4 == 0 ? p.send(topic, std::nullopt, value)
                           : p.send(topic, "key-" + std::to_string(rng() % 1000), value);
        if (!r) problems.add("send: " + r.error().to_string());
      }
    });
  }
  auto check = [](const rill::ConsumerRecord<std::string, std::int64_t>& rec) {
    return (rec.value >> 32) < 3 && (rec.value & 0xFFFFFFFF) < (1 << 20);
  };

  // Group "coop" (cooperative-sticky): three steady members and one that keeps leaving and
  // coming back as a new consumer. Group "range": two steady members. A waker thread calls
  // wakeup() on the steady ones.
  std::vector<std::unique_ptr<Worker<std::string>>> steady;
  for (int i = 0; i < 3; ++i) {
    steady.push_back(std::make_unique<Worker<std::string>>(
        *broker, i, "coop", AssignmentStrategy::kCooperativeSticky, coop, problems, 100));
  }
  for (int i = 0; i < 2; ++i) {
    steady.push_back(std::make_unique<Worker<std::string>>(
        *broker, 10 + i, "range", AssignmentStrategy::kRange, range, problems, 100));
  }
  std::vector<std::thread> threads;
  for (auto& w : steady) {
    Worker<std::string>* p = w.get();
    threads.emplace_back([p, check] { p->run(check); });
  }
  std::atomic<bool> done{false};
  std::thread churn([&] {
    for (int round = 0; !done.load(std::memory_order_acquire); ++round) {
      Worker<std::string> w(*broker, 100 + round, "coop", AssignmentStrategy::kCooperativeSticky,
                            coop, problems, 50);
      std::thread t([&] { w.run(check); });
      // A round lasts until the group has read 2,000 more records, or everything produced so
      // far (the producers may be waiting for this round to end).
      const std::int64_t until = coop.total() + 2'000;
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
      while (coop.total() < until && coop.total() < produced.load(std::memory_order_relaxed) &&
             !done.load(std::memory_order_acquire)) {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
      w.stop();
      t.join();
      rounds.fetch_add(1, std::memory_order_relaxed);
    }
  });
  std::thread waker([&] {
    std::mt19937_64 rng(seed);
    while (!done.load(std::memory_order_acquire)) {
      steady[rng() % steady.size()]->wakeup();
      std::this_thread::sleep_for(std::chrono::microseconds(500));
    }
  });

  for (auto& t : producers) t.join();
  const bool finished = wait_until(
      [&] { return (coop.total() >= total && range.total() >= total) || problems.count() > 0; },
      std::chrono::seconds(300));
  done.store(true, std::memory_order_release);
  churn.join();
  waker.join();
  for (auto& w : steady) w->stop();
  for (auto& t : threads) t.join();

  INFO(problems.text());
  CHECK(finished);
  CHECK(problems.count() == 0);
  CHECK(coop.total() == total);
  CHECK(range.total() == total);
  std::int64_t sum = 0;
  for (std::int32_t p = 0; p < kPartitions; ++p) {
    CAPTURE(p);
    const std::int64_t end = topic.log(p)->end_offset();
    sum += end;
    CHECK(coop.wrong(p, end) == 0);
    CHECK(range.wrong(p, end) == 0);
  }
  CHECK(sum == total);
  CHECK(rounds.load() >= 3);  // members did come and go
  for (const char* g : {"coop", "range"}) {
    CAPTURE(g);
    for (const auto& l : take(ConsumerGroup(*broker, g).lag())) CHECK(l.lag == 0);
  }
}

}  // namespace group_concurrency_test
