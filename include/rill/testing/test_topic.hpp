// rill/testing/test_topic.hpp: TestTopic<K, V>, a driver for one topic in a test: pipe typed
// records in, read what the topic holds (all of it, or what arrived since the last read) as
// typed values. What Kafka Streams' TestInputTopic and TestOutputTopic give, over the real
// Producer and Topic code paths.
//
//   rill::testing::TestBroker env;
//   auto orders = *env.create_topic<std::string, std::int64_t>("orders");
//   (void)orders.pipe("alice", 30);
//   (void)orders.pipe({.key = "bob", .value = 5, .headers = {{"source", "web"}}});
//   auto values = orders.read_values();          // {30, 5}
//   auto fresh = orders.read_new();              // both records; the next read_new(): none
//
// Order: records are read partition by partition (0, 1, ...), each in offset order. A
// one-partition topic (TestBroker's default) therefore reads in append order.
//
// Keyless records (pipe_value, pipe_values, a TestRecord without a key or partition) are
// routed as a Producer routes them, sticky (ProducerConfig's defaults: one partition until
// 16 KiB went to it, then another), but with a fixed seed (ProducerConfig::seed): the same
// pipes on a topic of the same partition count land on the same partitions on every run, so
// what a multi-partition topic reads back, and in which order, does not change between runs.
// The seed is kDefaultKeylessSeed, or TestBrokerOptions::keyless_seed for the topics of a
// TestBroker; change it to see the records spread another way. (A plain Producer, such as
// one the code under test creates, still chooses at random unless its config sets a seed.)
//
// Types: records read are copied out of the log into TestRecord<K, V>, so K and V must own
// their bytes (std::string, numbers, structs, std::vector<std::byte>), not view them
// (std::string_view, std::span): a static_assert says so.
//
// Thread-safety: thread-compatible. Piping goes through a thread-safe Producer, but the
// read_new() position is unguarded state: one thread per TestTopic, or your own lock.
//
// Cost: piping is a Producer::send. Reading decodes and copies every record read (tests only).
#pragma once

#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "rill/broker.hpp"
#include "rill/producer.hpp"
#include "rill/result.hpp"
#include "rill/serde.hpp"
#include "rill/storage/record.hpp"
#include "rill/topic.hpp"

namespace rill::testing {

// The seed of a TestTopic's keyless routing unless one is given, and TestBrokerOptions'
// default. Any fixed value makes runs repeat; this one is just the one rill picked.
inline constexpr std::uint64_t kDefaultKeylessSeed = 0;

// A header owning its bytes; nullopt value: a null header value.
using TestHeader = std::pair<std::string, std::optional<std::string>>;

// A record going into a topic or read out of one, owning everything it holds.
template <typename K, typename V>
struct TestRecord {
  std::optional<K> key{};  // nullopt: no key
  V value{};
  std::vector<TestHeader> headers{};
  // In: kNoTimestamp stamps the record with the broker's clock. Out: the record's timestamp.
  std::int64_t timestamp_ms = storage::kNoTimestamp;
  // In: -1 routes it as the producer does (murmur2 of the key; keyless: sticky, seeded, see
  // the top of this file). Out: where it is.
  std::int32_t partition = -1;
  std::int64_t offset = -1;  // out only
};

// Equal key, value, headers and timestamp: where a record landed is not part of what it is
// (as Kafka's TestRecord). Compare .partition and .offset yourself when they matter.
template <typename K, typename V>
bool operator==(const TestRecord<K, V>& a, const TestRecord<K, V>& b) {
  return a.key == b.key && a.value == b.value && a.headers == b.headers &&
         a.timestamp_ms == b.timestamp_ms;
}

template <typename K, typename V>
class TestTopic {
  static_assert(!rill::detail::IsStdView<K>::value && !rill::detail::IsStdView<V>::value,
                "TestTopic copies records out of the log: use owning key and value types "
                "(std::string, not std::string_view; std::vector<std::byte>, not std::span)");

 public:
  using key_type = K;
  using value_type = V;
  using Record = TestRecord<K, V>;

  // A driver piping through its own Producer, whose keyless routing is seeded with
  // `keyless_seed` (ProducerConfig::seed): two drivers with the same seed, given the same
  // pipes, route them the same way.
  explicit TestTopic(Topic<K, V> topic, std::uint64_t keyless_seed = kDefaultKeylessSeed)
      : topic_(std::move(topic)),
        producer_(std::make_unique<Producer<K, V>>(topic_.broker(),
                                                   ProducerConfig{.seed = keyless_seed})) {}
  // The moved-to driver keeps the producer, so keyless routing continues where it was (the
  // moved-from driver must not be piped into).
  TestTopic(TestTopic&& other) noexcept = default;
  TestTopic(const TestTopic&) = delete;
  TestTopic& operator=(const TestTopic&) = delete;

  const Topic<K, V>& topic() const noexcept { return topic_; }
  const std::string& name() const noexcept { return topic_.name(); }

  // --- in ---------------------------------------------------------------------------------

  // Appends one keyed record, stamped with `timestamp_ms` (kNoTimestamp: the broker's clock).
  // Errors: as Producer::send.
  Result<RecordMetadata> pipe(const K& key, const V& value,
                              std::int64_t timestamp_ms = storage::kNoTimestamp) {
    return producer_->send(topic_, key, value, {}, timestamp_ms);
  }

  // Appends one record with every field it gives: key or none, headers, timestamp, partition.
  Result<RecordMetadata> pipe(const Record& record) {
    std::vector<storage::Header> headers;
    headers.reserve(record.headers.size());
    for (const auto& [name, value] : record.headers) {
      storage::Header h{name, std::nullopt};
      if (value) h.value = *value;
      headers.push_back(h);
    }
    ProducerRecord<K, V> r;
    r.key = record.key;
    r.value = record.value;
    r.headers = headers;
    r.timestamp_ms = record.timestamp_ms;
    if (record.partition >= 0) r.partition = record.partition;
    return producer_->send(topic_, r);
  }

  // Appends a record without a key.
  Result<RecordMetadata> pipe_value(const V& value) {
    return producer_->send(topic_, std::nullopt, value);
  }

  // Appends each record in order; stops at the first error and returns it.
  Result<void> pipe_all(std::span<const Record> records) {
    for (const Record& r : records) {
      auto sent = pipe(r);
      if (!sent) return fail(std::move(sent).error());
    }
    return {};
  }
  // (An initializer_list overload, not const std::vector&: GCC 12 crashes (an internal
  // compiler error in nothrow_spec_p) on a braced list of designated-initialized TestRecords
  // converted to a std::vector parameter.)
  Result<void> pipe_all(std::initializer_list<Record> records) {
    return pipe_all(std::span<const Record>(records.begin(), records.size()));
  }

  // Appends keyed records in order.
  Result<void> pipe_key_values(const std::vector<std::pair<K, V>>& records) {
    for (const auto& [k, v] : records) {
      auto sent = pipe(k, v);
      if (!sent) return fail(std::move(sent).error());
    }
    return {};
  }

  // Appends keyless records in order.
  Result<void> pipe_values(const std::vector<V>& values) {
    for (const V& v : values) {
      auto sent = pipe_value(v);
      if (!sent) return fail(std::move(sent).error());
    }
    return {};
  }

  // --- out --------------------------------------------------------------------------------

  // Every record the topic holds now (from each partition's start offset to its end), in
  // partition then offset order. Does not move read_new()'s position. Errors: kCorruption
  // (a record that does not decode as K and V).
  Result<std::vector<Record>> read_all() const {
    std::vector<Record> out;
    for (std::int32_t p = 0; p < topic_.partitions(); ++p) {
      RILL_TRY(read_partition(p, -1, out));
    }
    return out;
  }

  // The records appended since the previous read_new() (since the topic was empty, the first
  // time), in partition then offset order; consumes them. Records that retention deleted
  // before they were read are skipped. Errors: as read_all (the position is then unchanged).
  Result<std::vector<Record>> read_new() {
    std::vector<Record> out;
    std::vector<std::int64_t> next = positions_;
    next.resize(static_cast<std::size_t>(topic_.partitions()), 0);
    for (std::int32_t p = 0; p < topic_.partitions(); ++p) {
      auto& at = next[static_cast<std::size_t>(p)];
      auto end = read_partition(p, at, out);
      if (!end) return fail(std::move(end).error());
      at = *end;
    }
    positions_ = std::move(next);
    return out;
  }

  // The values of read_all(), in its order.
  Result<std::vector<V>> read_values() const { return values_of(read_all()); }
  // The values of read_new(), in its order.
  Result<std::vector<V>> read_new_values() { return values_of(read_new()); }

  // (key, value) of every keyed record, in read_all()'s order; keyless records are left out.
  Result<std::vector<std::pair<K, V>>> read_key_values() const {
    auto all = read_all();
    if (!all) return fail(std::move(all).error());
    std::vector<std::pair<K, V>> out;
    for (auto& r : *all) {
      if (r.key) out.emplace_back(std::move(*r.key), std::move(r.value));
    }
    return out;
  }

  // The newest value of each key (Kafka's readKeyValuesToMap): what a compacted topic, or a
  // table built from this one, holds. With std::optional values a tombstone (nullopt) removes
  // its key.
  Result<std::map<K, V>> read_latest_by_key() const {
    auto all = read_all();
    if (!all) return fail(std::move(all).error());
    std::map<K, V> out;
    for (auto& r : *all) {
      if (!r.key) continue;
      if constexpr (serde::is_nullable_v<V>) {
        if (!r.value.has_value()) {
          out.erase(*r.key);
          continue;
        }
      }
      out.insert_or_assign(std::move(*r.key), std::move(r.value));
    }
    return out;
  }

  // Records the topic holds now, over all partitions: counted by reading them, since
  // compaction drops records but not offsets (end - start counted the dropped ones too).
  // Reading costs as much as read_all() without decoding. A partition that cannot be read
  // (damage) counts what was read before.
  std::int64_t size() const {
    std::int64_t n = 0;
    storage::RecordBatch batch;
    for (std::int32_t p = 0; p < topic_.partitions(); ++p) {
      const storage::Log* log = topic_.log(p);
      if (log == nullptr) continue;
      for (std::int64_t at = log->start_offset(); at < log->end_offset();) {
        if (!log->read_into(at, batch, 4096)) break;
        n += static_cast<std::int64_t>(batch.size());
        at = batch.next_offset();
      }
    }
    return n;
  }
  bool empty() const { return size() == 0; }

 private:
  static Result<std::vector<V>> values_of(Result<std::vector<Record>> records) {
    if (!records) return fail(std::move(records).error());
    std::vector<V> out;
    out.reserve(records->size());
    for (auto& r : *records) out.push_back(std::move(r.value));
    return out;
  }

  // Appends partition p's records from `from` (at least its start offset) to its end now to
  // `out`; returns the end.
  Result<std::int64_t> read_partition(std::int32_t p, std::int64_t from,
                                      std::vector<Record>& out) const {
    const storage::Log* log = topic_.log(p);
    if (log == nullptr) return topic_.partition_out_of_range(p);
    const std::int64_t end = log->end_offset();
    from = std::max(from, log->start_offset());
    ConsumerBatch<K, V> batch;
    for (std::int64_t at = from; at < end; at = batch.next_offset()) {
      RILL_TRY(topic_.read_into(p, at, batch, 1024));
      for (const auto& r : batch) {
        if (r.offset >= end) return end;
        Record rec;
        rec.key = r.key;
        rec.value = r.value;
        for (const storage::Header& h : r.headers) {
          rec.headers.emplace_back(
              std::string(h.name),
              h.value ? std::optional<std::string>(std::string(*h.value)) : std::nullopt);
        }
        rec.timestamp_ms = r.timestamp_ms;
        rec.partition = p;
        rec.offset = r.offset;
        out.push_back(std::move(rec));
      }
    }
    return end;
  }

  Topic<K, V> topic_;
  // Behind a pointer: a Producer does not move (its partitioner owns a mutex), and a moved
  // driver must keep the partitioner's state, or its keyless routing would start over.
  std::unique_ptr<Producer<K, V>> producer_;
  std::vector<std::int64_t> positions_;  // read_new(): next offset per partition
};

}  // namespace rill::testing
