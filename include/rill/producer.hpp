// rill/producer.hpp: Producer<K, V> sends typed records to a topic's partitions, routing them
// by key as Kafka's producers do.
//
//   rill::Producer<std::string, std::string> producer(*broker);
//   auto md = producer.send(topic, "user-7", "clicked");   // md->partition, md->offset
//
// Routing, in order: an explicit partition in the ProducerRecord; else the user's
// partitioner from ProducerConfig; else Kafka's default: murmur2 of the serialized key
// (so a key lands on the same partition number as with Kafka's Java client and librdkafka),
// and for records without a key, sticky (stay on one partition for a batch's worth of bytes)
// or round-robin partitioning. Sticky choices are random per producer unless
// ProducerConfig::seed fixes them (tests).
//
// A send is synchronous: when it returns, the record is in the partition log and readable,
// and it survives a crash of the process (see docs/guarantees.md for power loss).
//
// Thread-safety: thread-safe; share one producer among threads. Records sent by one thread
// with the same key keep their order.
//
// Cost: serializing the key and value (zero-copy for strings and byte spans), one murmur2 of
// the key (none when the topic has one partition), and one Log::append. No allocation for
// string-like types; no lock but the partition's append lock (keyless sticky routing takes a
// short per-producer lock). send_batch: a few allocations per call, not per record; one
// append_batch per partition it touches, and a sort only when it touches more than one.
#pragma once

#include <algorithm>
#include <cstdint>
#include <forward_list>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "rill/broker.hpp"
#include "rill/partitioner.hpp"
#include "rill/result.hpp"
#include "rill/serde.hpp"
#include "rill/storage/record.hpp"
#include "rill/topic.hpp"

namespace rill {

struct ProducerConfig {
  // Keyless records: kSticky (Kafka's default since 2.4) or kRoundRobin.
  KeylessStrategy keyless = KeylessStrategy::kSticky;
  // Sticky partitioning moves on after this many bytes (Kafka's batch.size).
  std::size_t sticky_batch_bytes = 16384;
  // Replaces the default routing when set; must return a partition in [0, partitions).
  Partitioner partitioner{};
  // Seeds the default partitioner's keyless choices (DefaultPartitioner's `seed`): the first
  // sticky partition of each topic and every later move. Unset (the default): each producer
  // seeds itself from the clock and its address, so keyless records land on different
  // partitions from run to run, as with Kafka's clients. Set: producers with the same config
  // (seed included), given the same sends in the same order, route every keyless record the
  // same way on every run, which tests want (rill::testing::TestTopic always sets one).
  // Round-robin, keyed records, an explicit partition and a user `partitioner` draw nothing random
  // and ignore it.
  std::optional<std::uint64_t> seed{};
};

// Where a record went: Kafka's RecordMetadata. `topic` views the topic's name, valid while the
// topic handle it was sent through is alive.
struct RecordMetadata {
  std::string_view topic;
  std::int32_t partition = 0;
  std::int64_t offset = 0;
  std::int64_t timestamp_ms = 0;
};

// A record to send, for batches and for the fields send()'s short forms leave out.
template <typename K, typename V>
struct ProducerRecord {
  std::optional<K> key{};  // nullopt: no key (keyless routing)
  V value{};
  std::span<const storage::Header> headers{};
  std::int64_t timestamp_ms = storage::kNoTimestamp;  // kNoTimestamp: the broker's clock
  std::optional<std::int32_t> partition{};            // set: send exactly there
};

template <typename K, typename V>
class Producer {
 public:
  explicit Producer(Broker& broker, ProducerConfig config = {})
      : broker_(&broker),
        config_(std::move(config)),
        default_(config_.keyless, config_.sticky_batch_bytes, config_.seed) {}

  // Sends one keyed record. Errors, after which nothing was appended: kNotFound (the topic was
  // deleted), kOutOfRange (a partitioner's answer outside the topic), kInvalidArgument (a
  // serializer refused the key or value, a negative timestamp, or an internal topic such as
  // "__consumer_offsets"), kRecordTooLarge, and the partition log's kNoSpace / kIoError.
  Result<RecordMetadata> send(const Topic<K, V>& topic, const K& key, const V& value,
                              std::span<const storage::Header> headers = {},
                              std::int64_t timestamp_ms = storage::kNoTimestamp) {
    return send_one(topic, &key, value, headers, timestamp_ms, std::nullopt);
  }

  // Sends one record without a key (sticky or round-robin routing).
  Result<RecordMetadata> send(const Topic<K, V>& topic, std::nullopt_t, const V& value,
                              std::span<const storage::Header> headers = {},
                              std::int64_t timestamp_ms = storage::kNoTimestamp) {
    return send_one(topic, nullptr, value, headers, timestamp_ms, std::nullopt);
  }

  // Sends one record with every field spelled out, the partition included.
  Result<RecordMetadata> send(const Topic<K, V>& topic, const ProducerRecord<K, V>& record) {
    return send_one(topic, record.key ? &*record.key : nullptr, record.value, record.headers,
                    record.timestamp_ms, record.partition);
  }

  // Sends records in order: all are serialized, routed and checked first (any bad one fails
  // the call and nothing is appended); then each partition's share is appended as one batch
  // (storage::Log::append_batch: one lock, one publication). Metadata comes back in input
  // order. Only a failing disk can stop it midway: then the error is returned and the
  // partitions already appended keep their records.
  Result<std::vector<RecordMetadata>> send_batch(const Topic<K, V>& topic,
                                                 std::span<const ProducerRecord<K, V>> records) {
    RILL_TRY(check_writable(topic));
    const std::size_t n = records.size();
    std::vector<storage::Record> raw(n);
    std::vector<Routed> routed(n);
    KeptScratch kept;
    const std::int32_t partitions = topic.partitions();
    const TopicConfig& config = topic.state()->config();
    bool one_partition = true;  // the common case: no sort, no copy, one append_batch
    for (std::size_t i = 0; i < n; ++i) {
      const ProducerRecord<K, V>& r = records[i];
      RILL_TRY(encode(r.key ? &*r.key : nullptr, r.value, kept, raw[i]));
      raw[i].headers = r.headers;
      raw[i].timestamp_ms = r.timestamp_ms;
      auto size = check_record(raw[i], config);
      if (!size) return fail(std::move(size).error());
      auto p = route(topic, raw[i], partitions, r.partition);
      if (!p) return fail(std::move(p).error());
      routed[i] = {*size, *p};
      one_partition = one_partition && *p == routed[0].partition;
    }
    std::vector<RecordMetadata> out(n);
    if (n == 0) return out;
    // Each partition's share goes in as one Log::append_batch, which refuses a batch larger
    // than a segment. Check every share before appending any: found only by append_batch, a
    // share too big would fail the call after the partitions sorted before it were written,
    // breaking "any bad one fails the call and nothing is appended"
    // (tests/producer_test.cpp, "send_batch appends nothing anywhere when any record is bad").
    if (one_partition) {
      storage::BatchSizeBound bound;
      for (const Routed& x : routed) bound.add_frame_size(x.frame_bytes);
      RILL_TRY(check_share(topic, config, routed[0].partition, bound));
      RILL_TRY(append_share(topic, routed[0].partition, raw, raw, 0, out));
      return out;
    }
    std::vector<std::size_t> order(n);
    for (std::size_t i = 0; i < n; ++i) order[i] = i;
    std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
      return routed[a].partition < routed[b].partition;
    });
    for (std::size_t begin = 0; begin < n;) {
      const std::int32_t p = routed[order[begin]].partition;
      storage::BatchSizeBound bound;
      for (; begin < n && routed[order[begin]].partition == p; ++begin)
        bound.add_frame_size(routed[order[begin]].frame_bytes);
      RILL_TRY(check_share(topic, config, p, bound));
    }
    std::vector<storage::Record> share;
    share.reserve(n);
    for (std::size_t begin = 0; begin < n;) {
      std::size_t end = begin;
      const std::int32_t p = routed[order[begin]].partition;
      share.clear();
      while (end < n && routed[order[end]].partition == p) share.push_back(raw[order[end++]]);
      RILL_TRY(append_share(topic, p, share, raw, begin, out, order.data()));
      begin = end;
    }
    return out;
  }

  // Syncs what was sent to stable storage: every partition of the broker (Broker::flush).
  // Sends are synchronous, so unlike Kafka's flush() there is nothing to wait for otherwise.
  Result<void> flush() { return broker_->flush(); }

 private:
  // A record of send_batch: its frame's size and its partition.
  struct Routed {
    std::size_t frame_bytes = 0;
    std::int32_t partition = 0;
  };

  // The bytes serdes wrote into their scratch strings (numbers, user encodings), kept alive
  // for the records that view them. Zero-copy serdes (strings, byte buffers) never write
  // there: then nothing is allocated, where a scratch string per key and value was before.
  class KeptScratch {
   public:
    // A scratch string for the next serialization.
    std::string& next() noexcept { return probe_; }
    // The serialization into next() returned `bytes`: when they lie in the probe, moves it
    // where it stays put and returns the view re-pointed there (a short string's bytes live
    // inside the object, so a move changes their address).
    std::string_view keep(std::string_view bytes) {
      const char* lo = probe_.data();
      if (bytes.data() < lo || bytes.data() > lo + probe_.size()) {
        probe_.clear();
        return bytes;
      }
      const auto at = static_cast<std::size_t>(bytes.data() - lo);
      const std::string& held = kept_.emplace_front(std::move(probe_));
      probe_ = std::string();
      return std::string_view(held.data() + at, bytes.size());
    }

   private:
    std::string probe_;
    std::forward_list<std::string> kept_;  // stable addresses; allocates only when used
  };

  static Result<void> check_share(const Topic<K, V>& topic, const TopicConfig& config,
                                  std::int32_t p, const storage::BatchSizeBound& bound) {
    const std::size_t total = bound.bytes();
    if (total > config.segment_bytes - storage::kFileHeaderSize) {
      return fail(ErrorCode::kRecordTooLarge, "the batch's " + std::to_string(total) +
                                                  " bytes for partition " + std::to_string(p) +
                                                  " of topic '" + topic.name() +
                                                  "' do not fit in a segment of " +
                                                  std::to_string(config.segment_bytes) + " bytes");
    }
    return {};
  }

  // Appends `share` (records of send_batch for partition p, the `from`-th onwards in sorted
  // order, `order` null when unsorted) and fills their metadata in `out`.
  static Result<void> append_share(const Topic<K, V>& topic, std::int32_t p,
                                   std::span<const storage::Record> share,
                                   std::span<const storage::Record> raw, std::size_t from,
                                   std::vector<RecordMetadata>& out,
                                   const std::size_t* order = nullptr) {
    auto at = topic.log(p)->append_batch(share);
    if (!at) return append_failed(topic, std::move(at).error());
    for (std::size_t j = 0; j < share.size(); ++j) {
      const std::size_t i = order != nullptr ? order[from + j] : from + j;
      const std::int64_t ts =
          raw[i].timestamp_ms == storage::kNoTimestamp ? at->timestamp_ms : raw[i].timestamp_ms;
      out[i] = {topic.name(), p, at->offset + static_cast<std::int64_t>(j), ts};
    }
    return {};
  }

  Result<RecordMetadata> send_one(const Topic<K, V>& topic, const K* key, const V& value,
                                  std::span<const storage::Header> headers,
                                  std::int64_t timestamp_ms,
                                  std::optional<std::int32_t> explicit_partition) {
    RILL_TRY(check_writable(topic));
    KeptScratch kept;
    storage::Record raw;
    RILL_TRY(encode(key, value, kept, raw));
    raw.headers = headers;
    raw.timestamp_ms = timestamp_ms;
    auto p = route(topic, raw, topic.partitions(), explicit_partition);
    if (!p) return fail(std::move(p).error());
    auto at = topic.log(*p)->append(raw);
    if (!at) return append_failed(topic, std::move(at).error());
    return RecordMetadata{topic.name(), *p, at->offset,
                          timestamp_ms == storage::kNoTimestamp ? at->timestamp_ms : timestamp_ms};
  }

  static Result<void> encode(const K* key, const V& value, KeptScratch& kept,
                             storage::Record& out) {
    if (key != nullptr) {
      auto k = serde::encode<K>(*key, kept.next());
      if (!k)
        return fail(ErrorCode::kInvalidArgument, "serializing the key: " + k.error().message());
      if (*k) out.key = kept.keep(**k);
    }
    auto v = serde::encode<V>(value, kept.next());
    if (!v)
      return fail(ErrorCode::kInvalidArgument, "serializing the value: " + v.error().message());
    if (*v) out.value = kept.keep(**v);
    return {};
  }

  // The record's frame size, when the topic takes it.
  static Result<std::size_t> check_record(const storage::Record& r, const TopicConfig& config) {
    const std::size_t size = storage::frame_size(r);
    if (size == 0 || size > config.max_record_bytes) {
      return fail(ErrorCode::kRecordTooLarge, "record of " + std::to_string(size) +
                                                  " bytes exceeds max_record_bytes " +
                                                  std::to_string(config.max_record_bytes));
    }
    if (r.timestamp_ms < 0 && r.timestamp_ms != storage::kNoTimestamp) {
      return fail(ErrorCode::kInvalidArgument,
                  "negative timestamp " + std::to_string(r.timestamp_ms));
    }
    return size;
  }

  Result<std::int32_t> route(const Topic<K, V>& topic, const storage::Record& r,
                             std::int32_t partitions,
                             std::optional<std::int32_t> explicit_partition) {
    std::int32_t p;
    const char* who;
    if (explicit_partition) {
      p = *explicit_partition;
      who = "the record";
    } else if (config_.partitioner) {
      p = config_.partitioner(topic.name(), r.key, partitions);
      who = "the partitioner";
    } else {
      // Record bytes only steer keyless sticky routing; a keyed record skips computing them.
      p = default_.partition(topic.name(), r.key, r.key ? 0 : storage::frame_size(r), partitions);
      who = "the default partitioner";
    }
    if (p < 0 || p >= partitions) {
      return fail(ErrorCode::kOutOfRange, std::string(who) + " chose partition " +
                                              std::to_string(p) + " of topic '" + topic.name() +
                                              "', which has " + std::to_string(partitions));
    }
    return p;
  }

  // A deleted topic (kNotFound), or one of rill's own (kInvalidArgument: "__consumer_offsets"
  // holds records only rill writes; one it cannot decode broke every consumer group of the
  // broker at the next open, as Kafka refuses produce requests to its internal topics).
  static Result<void> check_writable(const Topic<K, V>& topic) {
    if (topic.deleted()) return topic_deleted(topic);
    if (Broker::is_internal_topic(topic.name())) [[unlikely]] {
      return fail(ErrorCode::kInvalidArgument,
                  "topic '" + topic.name() + "' is internal: only rill writes to it");
    }
    return {};
  }

  static Unexpected topic_deleted(const Topic<K, V>& topic) {
    return fail(ErrorCode::kNotFound, "topic '" + topic.name() + "' was deleted");
  }

  static Unexpected append_failed(const Topic<K, V>& topic, Error e) {
    if (e.code() == ErrorCode::kClosed) return topic_deleted(topic);
    return fail(std::move(e));
  }

  Broker* broker_;
  ProducerConfig config_;
  DefaultPartitioner default_;
};

}  // namespace rill
