// One Producer shared by many threads: every record lands exactly once, per-thread order is kept
// within each key's partition, keys stay on partition_for_key, readers tailing the topic see
// only whole records, and sends keep working while the topic grows. Runs under TSan in CI.
//
// Catch2's assertions are not thread-safe: worker threads only record what they saw; the main
// thread checks it after joining them.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "catch.hpp"
#include "rill/broker.hpp"
#include "rill/partitioner.hpp"
#include "rill/producer.hpp"
#include "rill/topic.hpp"
#include "test_util.hpp"

// Each test file lives in its own namespace: the tests are compiled a few files per
// translation unit (tests/CMakeLists.txt, RILL_TEST_UNITY).
namespace producer_concurrency_test {

namespace {

// A record's identity: who sent it and its place in that thread's sequence.
struct Stamp {
  std::uint32_t thread;
  std::uint32_t seq;
};

}  // namespace

}  // namespace producer_concurrency_test

template <>
struct rill::SerdeName<producer_concurrency_test::Stamp> {
  static constexpr std::string_view value = "test.Stamp";
};

namespace producer_concurrency_test {

using rill::Broker;
using rill::ErrorCode;
using rill::KeylessStrategy;
using rill::Producer;
using rill::ProducerRecord;
using rill::RecordMetadata;
using rill::Topic;
using rill::TopicConfig;
using rill_test::TempDir;

namespace {

using StampTopic = Topic<std::string, Stamp>;
using StampProducer = Producer<std::string, Stamp>;

template <typename T>
T take(rill::Result<T> r) {
  INFO((r ? std::string() : r.error().to_string()));
  REQUIRE(r.has_value());
  return std::move(*r);
}

std::unique_ptr<Broker> open_backend(bool in_memory, const TempDir& dir) {
  rill::BrokerOptions options;
  options.prefault_bytes = 0;
  if (in_memory) return take(Broker::open_in_memory(options));
  return take(Broker::open(dir.sub("data"), options));
}

// The first error a group of threads ran into, for the main thread to report.
class FirstError {
 public:
  void set(const std::string& what) {
    std::lock_guard lock(mu_);
    if (what_.empty()) what_ = what;
    failed_.store(true, std::memory_order_relaxed);
  }
  bool failed() const { return failed_.load(std::memory_order_relaxed); }
  std::string what() const {
    std::lock_guard lock(mu_);
    return what_;
  }

 private:
  mutable std::mutex mu_;
  std::string what_;
  std::atomic<bool> failed_{false};
};

constexpr std::uint32_t kThreads = 8;
constexpr std::int32_t kPartitions = 8;
constexpr std::uint32_t kKeys = 61;  // shared by all threads

std::string key_name(std::uint32_t k) { return "key-" + std::to_string(k); }

// The key a thread uses for its seq-th record: every thread cycles through all keys, in
// different orders.
std::uint32_t key_of(std::uint32_t thread, std::uint32_t seq) {
  return (seq * 7 + thread * 13) % kKeys;
}

std::uint32_t records_per_thread() { return rill_test::sanitizer_build() ? 2000 : 20000; }

}  // namespace

TEST_CASE("8 threads sharing one producer: every record once, in order per key, on its partition",
          "[producer][concurrency]") {
  TempDir dir;
  const bool in_memory = GENERATE(false, true);
  CAPTURE(in_memory);
  auto broker = open_backend(in_memory, dir);
  TopicConfig config;
  config.partitions = kPartitions;
  config.segment_bytes = 256 * 1024;  // a few rolls per partition under load
  config.max_record_bytes = 1024;
  auto topic = take(StampTopic::create(*broker, "shared", config));
  StampProducer producer(*broker);

  std::vector<std::string> keys;
  std::vector<std::int32_t> partition_of;
  for (std::uint32_t k = 0; k < kKeys; ++k) {
    keys.push_back(key_name(k));
    partition_of.push_back(rill::partition_for_key(keys.back(), kPartitions));
  }
  const std::uint32_t n = records_per_thread();
  const std::uint64_t total = std::uint64_t{kThreads} * n;
  FirstError errors;

  // A reader tails every partition while the producers run, checking each record it sees
  // and that offsets come densely.
  std::atomic<bool> producers_done{false};
  std::uint64_t tailed = 0;
  std::thread reader([&] {
    std::vector<std::int64_t> next(kPartitions, 0);
    rill::ConsumerBatch<std::string, Stamp> batch;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
    while (tailed < total && !errors.failed()) {
      if (std::chrono::steady_clock::now() > deadline) {
        errors.set("reader: timed out after " + std::to_string(tailed) + " records");
        return;
      }
      const bool last_round = producers_done.load(std::memory_order_acquire);
      bool progressed = false;
      for (std::int32_t p = 0; p < kPartitions; ++p) {
        auto r = topic.read_into(p, next[p], batch, 500);
        if (!r) {
          errors.set("reader: " + r.error().to_string());
          return;
        }
        for (const auto& rec : batch) {
          // One batch serves every partition: each read must give that partition's records.
          if (rec.offset != next[p] || rec.partition != p || !rec.key ||
              rec.value.thread >= kThreads ||
              *rec.key != keys[key_of(rec.value.thread, rec.value.seq)] ||
              partition_of[key_of(rec.value.thread, rec.value.seq)] != p) {
            errors.set("reader: unexpected record at " + std::to_string(p) + "/" +
                       std::to_string(rec.offset));
            return;
          }
          ++next[p];
          ++tailed;
          progressed = true;
        }
      }
      if (last_round && !progressed) break;  // everything was published before done was set
      if (!progressed) std::this_thread::yield();
    }
  });

  std::vector<std::thread> threads;
  for (std::uint32_t t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (std::uint32_t seq = 0; seq < n && !errors.failed(); ++seq) {
        const std::uint32_t k = key_of(t, seq);
        auto md = producer.send(topic, keys[k], Stamp{t, seq});
        if (!md) {
          errors.set("send: " + md.error().to_string());
          return;
        }
        if (md->partition != partition_of[k]) {
          errors.set("send: key " + keys[k] + " went to partition " +
                     std::to_string(md->partition));
          return;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  producers_done.store(true, std::memory_order_release);
  reader.join();
  INFO(errors.what());
  REQUIRE(!errors.failed());
  CHECK(tailed == total);

  // Every record exactly once; within a partition each thread's records in sequence order,
  // so each (thread, key) stream keeps its order; every key only on its partition.
  std::vector<std::vector<bool>> seen(kThreads, std::vector<bool>(n, false));
  std::uint64_t count = 0;
  std::uint64_t duplicates = 0;
  std::uint64_t misplaced = 0;
  std::uint64_t out_of_order = 0;
  std::uint64_t wrong_key = 0;
  rill::ConsumerBatch<std::string, Stamp> batch;
  for (std::int32_t p = 0; p < kPartitions; ++p) {
    std::vector<std::int64_t> last_seq(kThreads, -1);
    std::vector<std::vector<std::int64_t>> last_by_key(kThreads,
                                                       std::vector<std::int64_t>(kKeys, -1));
    std::int64_t next = 0;
    const std::int64_t end = topic.log(p)->end_offset();
    while (next < end) {
      const auto r = topic.read_into(p, next, batch, 4096);
      INFO((r ? std::string() : r.error().to_string()));
      REQUIRE(r.has_value());
      REQUIRE(!batch.empty());
      for (const auto& rec : batch) {
        REQUIRE(rec.offset == next);
        ++next;
        ++count;
        const Stamp s = rec.value;
        REQUIRE(s.thread < kThreads);
        REQUIRE(s.seq < n);
        const std::uint32_t k = key_of(s.thread, s.seq);
        if (!rec.key || *rec.key != keys[k]) ++wrong_key;
        if (partition_of[k] != p) ++misplaced;
        if (seen[s.thread][s.seq]) ++duplicates;
        seen[s.thread][s.seq] = true;
        if (static_cast<std::int64_t>(s.seq) <= last_seq[s.thread]) ++out_of_order;
        last_seq[s.thread] = s.seq;
        if (static_cast<std::int64_t>(s.seq) <= last_by_key[s.thread][k]) ++out_of_order;
        last_by_key[s.thread][k] = s.seq;
      }
    }
  }
  std::uint64_t missing = 0;
  for (const auto& per_thread : seen) {
    for (const bool b : per_thread) missing += b ? 0 : 1;
  }
  CHECK(count == total);
  CHECK(missing == 0);
  CHECK(duplicates == 0);
  CHECK(misplaced == 0);
  CHECK(out_of_order == 0);
  CHECK(wrong_key == 0);
  for (std::int32_t p = 0; p < kPartitions; ++p) {
    CHECK(topic.log(p)->end_offset() > 0);  // 61 keys reach all 8 partitions
  }
}

TEST_CASE("keyed, keyless and batched sends from many threads all land while the topic grows",
          "[producer][concurrency][partitions]") {
  TempDir dir;
  const bool in_memory = GENERATE(false, true);
  CAPTURE(in_memory);
  auto broker = open_backend(in_memory, dir);
  TopicConfig config;
  config.partitions = 2;
  config.segment_bytes = 128 * 1024;
  config.max_record_bytes = 1024;
  auto topic = take(StampTopic::create(*broker, "growing", config));
  // Sticky with small batches, so keyless routing moves often and races with growth.
  StampProducer producer(*broker, {.keyless = KeylessStrategy::kSticky, .sticky_batch_bytes = 512});
  constexpr std::int32_t kFinalPartitions = 16;

  constexpr std::uint32_t kSenders = 4;  // 0, 1: keyed send; 2: keyless send; 3: send_batch
  constexpr std::uint32_t kBatch = 16;
  const std::uint32_t n = rill_test::sanitizer_build() ? 64 * kBatch : 512 * kBatch;
  FirstError errors;
  std::vector<std::vector<RecordMetadata>> sent(kSenders);
  for (auto& s : sent) s.resize(n);

  std::atomic<bool> go{false};
  std::vector<std::thread> threads;
  for (std::uint32_t t = 0; t < kSenders; ++t) {
    threads.emplace_back([&, t] {
      while (!go.load(std::memory_order_acquire)) std::this_thread::yield();
      if (t == 3) {
        std::vector<std::string> batch_keys(kBatch);
        std::vector<ProducerRecord<std::string, Stamp>> batch(kBatch);
        for (std::uint32_t seq = 0; seq < n && !errors.failed(); seq += kBatch) {
          for (std::uint32_t i = 0; i < kBatch; ++i) {
            batch[i].value = Stamp{t, seq + i};
            if (i % 2 == 0) {
              batch[i].key = key_name(key_of(t, seq + i));
            } else {
              batch[i].key.reset();
            }
          }
          auto mds = producer.send_batch(topic, batch);
          if (!mds) {
            errors.set("send_batch: " + mds.error().to_string());
            return;
          }
          for (std::uint32_t i = 0; i < kBatch; ++i) sent[t][seq + i] = (*mds)[i];
        }
        return;
      }
      for (std::uint32_t seq = 0; seq < n && !errors.failed(); ++seq) {
        auto md = t == 2 ? producer.send(topic, std::nullopt, Stamp{t, seq})
                         : producer.send(topic, key_name(key_of(t, seq)), Stamp{t, seq});
        if (!md) {
          errors.set("send: " + md.error().to_string());
          return;
        }
        sent[t][seq] = *md;
      }
    });
  }
  go.store(true, std::memory_order_release);
  for (std::int32_t p = 3; p <= kFinalPartitions; ++p) {
    auto grown = broker->add_partitions("growing", p);
    if (!grown) errors.set("add_partitions: " + grown.error().to_string());
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  for (auto& th : threads) th.join();
  INFO(errors.what());
  REQUIRE(!errors.failed());
  REQUIRE(topic.partitions() == kFinalPartitions);

  // Each record is where its metadata says, whole; each sender's records in a partition keep
  // their order; keyed records sit on partition_for_key for some count the topic had.
  std::uint64_t total = 0;
  for (std::int32_t p = 0; p < kFinalPartitions; ++p) total += topic.log(p)->end_offset();
  CHECK(total == std::uint64_t{kSenders} * n);
  std::uint64_t mismatched = 0;
  std::uint64_t out_of_order = 0;
  std::uint64_t misrouted = 0;
  for (std::uint32_t t = 0; t < kSenders; ++t) {
    std::vector<std::int64_t> last_offset(kFinalPartitions, -1);
    for (std::uint32_t seq = 0; seq < n; ++seq) {
      const RecordMetadata& md = sent[t][seq];
      REQUIRE(md.partition >= 0);
      REQUIRE(md.partition < kFinalPartitions);
      auto batch = take(topic.read(md.partition, md.offset, 1));
      REQUIRE(batch.size() == 1);
      const auto& rec = batch[0];
      if (rec.value.thread != t || rec.value.seq != seq) ++mismatched;
      if (md.offset <= last_offset[md.partition]) ++out_of_order;
      last_offset[md.partition] = md.offset;
      if (rec.key) {
        bool some_count = false;
        for (std::int32_t c = 2; c <= kFinalPartitions; ++c) {
          some_count = some_count || rill::partition_for_key(*rec.key, c) == md.partition;
        }
        if (!some_count) ++misrouted;
      }
    }
  }
  CHECK(mismatched == 0);
  CHECK(out_of_order == 0);
  CHECK(misrouted == 0);
}

}  // namespace producer_concurrency_test
