// rill/topic.hpp: Topic<K, V>, a typed handle on a topic of a Broker.
//
//   auto orders = rill::Topic<std::string, Order>::create(broker, "orders", {.partitions = 8});
//   auto same = rill::Topic<std::string, Order>::open(broker, "orders");   // types checked
//   auto wrong = rill::Topic<std::int64_t, Order>::open(broker, "orders"); // kInvalidArgument
//
// A topic records the serde identities of its key and value types (serde_name<K>(),
// serde_name<V>()) when Topic<K,V> creates it; opening it with other types is refused rather
// than decoding garbage. A topic created untyped (Broker::create_topic with empty serde names)
// can be opened with any types.
//
// Thread-safety: a Topic is a cheap handle (a shared pointer); copies may be used from any
// thread. Reads never take a lock.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "rill/broker.hpp"
#include "rill/result.hpp"
#include "rill/serde.hpp"
#include "rill/storage/log.hpp"

namespace rill {

// A record read from a topic, decoded. Kafka's ConsumerRecord. Zero-copy types (string_view,
// span) and the headers point into the mapped segment: valid while the batch that returned
// the record lives.
template <typename K, typename V>
struct ConsumerRecord {
  std::string_view topic;
  std::int32_t partition = 0;
  std::int64_t offset = 0;
  std::int64_t timestamp_ms = 0;
  std::optional<K> key;  // nullopt: the record has no key
  V value;               // a tombstone decodes only into std::optional<...> values
  storage::HeaderRange headers;
};

// Decoded records of one partition, and the segment they come from, kept mapped.
template <typename K, typename V>
class ConsumerBatch {
 public:
  using const_iterator = typename std::vector<ConsumerRecord<K, V>>::const_iterator;
  const_iterator begin() const noexcept { return records_.begin(); }
  const_iterator end() const noexcept { return records_.end(); }
  std::size_t size() const noexcept { return records_.size(); }
  bool empty() const noexcept { return records_.empty(); }
  const ConsumerRecord<K, V>& operator[](std::size_t i) const noexcept { return records_[i]; }
  // The offset to read next in this partition.
  std::int64_t next_offset() const noexcept { return raw_.next_offset(); }

 private:
  template <typename, typename>
  friend class Topic;
  storage::RecordBatch raw_;
  std::vector<ConsumerRecord<K, V>> records_;
  // The topic and partition raw_ was last filled from. storage::Log::read_into resumes from
  // the segment a batch holds whenever the offset continues where the batch ended, without
  // checking that the segment is its own: a batch reused for another partition or topic
  // returned that other log's records (tests/producer_concurrency_test.cpp, topic_test.cpp
  // "a batch reused across partitions ..."). Holding the state also keeps it alive, so no other
  // topic can take its address while this batch remembers it.
  std::shared_ptr<const detail::TopicState> state_;
  std::int32_t partition_ = -1;
};

namespace detail {
// The error of a record whose key or value does not decode; kept out of line, off the path of
// records that do.
[[gnu::cold, gnu::noinline]] inline Unexpected record_decode_error(const storage::RecordView& raw,
                                                                   std::string_view topic,
                                                                   std::int32_t partition,
                                                                   const char* what,
                                                                   const Error& e) {
  return fail(ErrorCode::kCorruption, std::string(topic) + "-" + std::to_string(partition) +
                                          " offset " + std::to_string(raw.offset()) + ": " + what +
                                          ": " + e.message());
}
}  // namespace detail

// Decodes a raw record into a typed one. Errors: kCorruption when the bytes do not decode as
// K or V (the message names the offset).
template <typename K, typename V>
Result<ConsumerRecord<K, V>> decode_record(const storage::RecordView& raw, std::string_view topic,
                                           std::int32_t partition) {
  std::optional<K> key;
  if (raw.has_key()) {
    auto k = serde::decode<K>(raw.key());
    if (!k) [[unlikely]] {
      return detail::record_decode_error(raw, topic, partition, "key", k.error());
    }
    key.emplace(std::move(*k));
  }
  auto v = serde::decode<V>(raw.value());
  if (!v) [[unlikely]] {
    return detail::record_decode_error(raw, topic, partition, "value", v.error());
  }
  return ConsumerRecord<K, V>{topic,          partition,     raw.offset(), raw.timestamp_ms(),
                              std::move(key), std::move(*v), raw.headers()};
}

// decode_record, appending to `out` (unchanged on error). Inlined into the loops that decode
// every record they read (Consumer::fetch, Topic::read_into), where the call itself cost about
// 25 instructions per record. The record is built where it lands: decode_record's
// Result<ConsumerRecord> cost a copy and a destructor per record, and a record built on the
// stack and copied into the vector was read back in 16-byte pieces just after it was written
// in 8-byte ones, which stalls the CPU's store forwarding (perf: most of poll's time).
template <typename K, typename V>
[[gnu::always_inline]] inline Result<void> decode_record_into(
    const storage::RecordView& raw, std::string_view topic, std::int32_t partition,
    std::vector<ConsumerRecord<K, V>>& out) {
  using Record = ConsumerRecord<K, V>;
  if constexpr (std::is_default_constructible_v<Record>) {
    Record& rec = out.emplace_back();
    rec.topic = topic;
    rec.partition = partition;
    rec.offset = raw.offset();
    rec.timestamp_ms = raw.timestamp_ms();
    if (raw.has_key()) {
      auto k = serde::decode<K>(raw.key());
      if (!k) [[unlikely]] {
        out.pop_back();
        return detail::record_decode_error(raw, topic, partition, "key", k.error());
      }
      rec.key.emplace(std::move(*k));
    }
    auto v = serde::decode<V>(raw.value());
    if (!v) [[unlikely]] {
      out.pop_back();
      return detail::record_decode_error(raw, topic, partition, "value", v.error());
    }
    rec.value = std::move(*v);
    rec.headers = raw.headers();
  } else {  // a V without a default constructor: built whole, then moved in
    auto rec = decode_record<K, V>(raw, topic, partition);
    if (!rec) [[unlikely]]
      return fail(std::move(rec).error());
    out.push_back(std::move(*rec));
  }
  return {};
}

template <typename K, typename V>
class Topic {
 public:
  using key_type = K;
  using value_type = V;

  // Creates the topic, recording K's and V's serde names in its config (any names already in
  // `config` are replaced). Errors as Broker::create_topic.
  static Result<Topic> create(Broker& broker, std::string_view name, TopicConfig config) {
    stamp(config);
    auto d = broker.create_topic(name, config);
    if (!d) return fail(std::move(d).error());
    return open(broker, name);
  }

  // Opens the topic, creating it with `config` if it does not exist. An existing topic's types
  // must match (kInvalidArgument otherwise).
  static Result<Topic> create_if_absent(Broker& broker, std::string_view name, TopicConfig config) {
    stamp(config);
    auto d = broker.create_topic_if_absent(name, config);
    if (!d) return fail(std::move(d).error());
    return open(broker, name);
  }

  // Opens an existing topic. Errors: kNotFound; kInvalidArgument when it was created with
  // other key or value types (the message names both).
  static Result<Topic> open(Broker& broker, std::string_view name) {
    auto state = broker.topic_state(name);
    if (!state) return fail(std::move(state).error());
    const TopicConfig& c = (*state)->config();
    const std::string k = serde::serde_name<K>();
    const std::string v = serde::serde_name<V>();
    const bool typed = !c.key_serde.empty() || !c.value_serde.empty();
    if (typed && (c.key_serde != k || c.value_serde != v)) {
      return fail(ErrorCode::kInvalidArgument,
                  "topic '" + std::string(name) + "' holds keys of type " + c.key_serde +
                      " and values of type " + c.value_serde + "; opened as " + k + " and " + v);
    }
    return Topic(&broker, std::move(*state));
  }

  const std::string& name() const noexcept { return state_->name(); }
  std::int32_t partitions() const noexcept { return state_->partition_count(); }
  Broker& broker() const noexcept { return *broker_; }
  bool deleted() const noexcept { return state_->deleted(); }

  // The partition's log, for untyped access; nullptr when out of range.
  storage::Log* log(std::int32_t partition) const noexcept { return state_->partition(partition); }

  // Reads and decodes up to `max_records` records of `partition` from `offset`. Errors:
  // kOutOfRange (partition or offset), kCorruption (bytes that fail their CRC or do not decode).
  Result<ConsumerBatch<K, V>> read(std::int32_t partition, std::int64_t offset,
                                   std::size_t max_records) const {
    ConsumerBatch<K, V> batch;
    RILL_TRY(read_into(partition, offset, batch, max_records));
    return batch;
  }

  // As read(), reusing `out`'s storage.
  Result<void> read_into(std::int32_t partition, std::int64_t offset, ConsumerBatch<K, V>& out,
                         std::size_t max_records) const {
    out.records_.clear();
    storage::Log* log = state_->partition(partition);
    if (log == nullptr) return partition_out_of_range(partition);
    if (out.state_ != state_ || out.partition_ != partition) {
      // Another log's batch: start afresh rather than resume in that log's segment (see
      // ConsumerBatch::state_).
      out.raw_ = storage::RecordBatch();
      out.state_ = state_;
      out.partition_ = partition;
    }
    RILL_TRY(log->read_into(offset, out.raw_, max_records));
    out.records_.reserve(out.raw_.size());
    for (const auto& raw : out.raw_) {
      auto r = decode_record_into<K, V>(raw, state_->name(), partition, out.records_);
      if (!r) return r;
    }
    return {};
  }

  Unexpected partition_out_of_range(std::int32_t partition) const {
    return fail(ErrorCode::kOutOfRange,
                "topic '" + name() + "' has " + std::to_string(partitions()) +
                    " partitions; there is no partition " + std::to_string(partition));
  }

  const std::shared_ptr<detail::TopicState>& state() const noexcept { return state_; }

 private:
  Topic(Broker* broker, std::shared_ptr<detail::TopicState> state)
      : broker_(broker), state_(std::move(state)) {}

  static void stamp(TopicConfig& config) {
    config.key_serde = serde::serde_name<K>();
    config.value_serde = serde::serde_name<V>();
  }

  Broker* broker_;
  std::shared_ptr<detail::TopicState> state_;
};

}  // namespace rill
