// rill/partitioner.hpp: which partition of a topic a record goes to.
//
// Keyed records go where Kafka's clients put them: partition = to_positive(murmur2(key bytes))
// % partitions, as the Java producer (DefaultPartitioner before 3.3, BuiltInPartitioner since)
// and librdkafka with `partitioner=murmur2` or `murmur2_random` compute it. So a key lands on
// the same partition number in rill as in a Kafka topic with the same partition count, and
// moving to Kafka keeps per-key order and co-partitioning. (librdkafka's *default*,
// `consistent_random`, hashes with CRC32 and places keys differently.) The key bytes are the
// serialized key (rill/serde.hpp), exactly what is stored in the record.
//
// Keyless records are spread by a KeylessStrategy: kSticky (Kafka's default since 2.4,
// KIP-480: fill one partition with about a batch of bytes, then move to another) or
// kRoundRobin (Kafka's RoundRobinPartitioner: 0, 1, ..., n-1, 0, ... per topic).
//
// An application can route records itself with a `Partitioner` function (bottom of file).
//
// Thread-safety: murmur2, to_positive and partition_for_key are pure: safe from any thread.
// DefaultPartitioner is thread-safe.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "rill/result.hpp"

namespace rill {

// Kafka's murmur2 (org.apache.kafka.common.utils.Utils.murmur2; librdkafka's rd_murmur2):
// MurmurHash2 with seed 0x9747b28c, the input read as little-endian 4-byte blocks whatever the
// host's byte order or the pointer's alignment, returned as Java's signed 32-bit int.
// murmur2("21", 2) == -973932308. `data` may be null when n == 0. Lengths of 4 GiB and more
// are folded into the seed modulo 2^32, as librdkafka does (Java arrays cannot be that long).
// Cost: O(n), about one multiply-xor step per 4 bytes; no allocation.
inline std::int32_t murmur2(const void* data, std::size_t n) noexcept {
  constexpr std::uint32_t kSeed = 0x9747b28cu;
  constexpr std::uint32_t kM = 0x5bd1e995u;  // MurmurHash2's mixing constants
  constexpr int kR = 24;

  const auto* p = static_cast<const unsigned char*>(data);
  std::uint32_t h = kSeed ^ static_cast<std::uint32_t>(n);
  for (std::size_t left = n; left >= 4; left -= 4, p += 4) {
    std::uint32_t k = std::uint32_t{p[0]} | std::uint32_t{p[1]} << 8 | std::uint32_t{p[2]} << 16 |
                      std::uint32_t{p[3]} << 24;
    k *= kM;
    k ^= k >> kR;
    k *= kM;
    h *= kM;
    h ^= k;
  }
  // The last 1-3 bytes; each case also does the ones below it.
  switch (n & 3u) {
    case 3:
      h ^= std::uint32_t{p[2]} << 16;
      [[fallthrough]];
    case 2:
      h ^= std::uint32_t{p[1]} << 8;
      [[fallthrough]];
    case 1:
      h ^= std::uint32_t{p[0]};
      h *= kM;
      break;
    default:
      break;
  }
  h ^= h >> 13;
  h *= kM;
  h ^= h >> 15;
  return static_cast<std::int32_t>(h);  // modulo 2^32, as Java's int arithmetic
}

// murmur2 of a string's bytes.
inline std::int32_t murmur2(std::string_view bytes) noexcept {
  return murmur2(bytes.data(), bytes.size());
}

// Kafka's Utils.toPositive: clears the sign bit (not abs(): abs(INT32_MIN) overflows, and
// Kafka's partition numbers depend on this exact mapping).
constexpr std::int32_t to_positive(std::int32_t h) noexcept { return h & 0x7fffffff; }

// The partition of a keyed record, as Kafka's BuiltInPartitioner.partitionForKey:
// to_positive(murmur2(key_bytes)) % partitions. An empty key is a key (it hashes); a missing
// key is the keyless case of DefaultPartitioner. REQUIRES: partitions > 0 (RILL_ASSERT).
// Cost: one murmur2 over the key.
inline std::int32_t partition_for_key(std::string_view key_bytes,
                                      std::int32_t partitions) noexcept {
  RILL_ASSERT(partitions > 0, "partition_for_key needs at least one partition");
  return to_positive(murmur2(key_bytes)) % partitions;
}

// How DefaultPartitioner spreads records that have no key.
enum class KeylessStrategy {
  // Stay on one partition per topic until about `sticky_batch_bytes` went to it, then move to
  // another (Kafka's sticky partitioning, KIP-480): fewer, larger batches than spraying.
  kSticky,
  // Each topic's keyless records cycle through 0, 1, ..., partitions-1, 0, ...
  kRoundRobin,
};

// Kafka's default partitioning: keyed records by partition_for_key, keyless records by the
// KeylessStrategy, with state per topic.
//
// Sticky details: a topic's first keyless record picks a partition at random; each keyless
// record adds its `record_bytes` to a count and goes to the current partition; once the count
// since the last switch reaches sticky_batch_bytes (the record that reaches it still goes to
// the current partition), the next keyless record goes to another partition, chosen uniformly
// among the other partitions-1 (never the same one when there are two or more). Kafka's Java
// client (3.3+) also weighs partitions by broker queue sizes ("adaptive partitioning"); rill
// has no brokers, so it does not. The choices come from a small PRNG: give `seed` for a
// reproducible sequence (tests); without it the seed comes from the clock and the object's
// address.
//
// Partition counts may change between calls (a topic grew): the per-topic state is checked
// against `partitions` on every call, and a sticky or round-robin position that is out of
// range is reset, so the result is always in [0, partitions).
//
// Thread-safety: thread-safe. Keyed records take no lock and touch no state. Keyless records
// take one mutex around a map of per-topic state (a few counters per topic name ever seen;
// entries are never removed). Not copyable or movable (it owns the mutex).
//
// Cost: nothing for a topic of one partition. Otherwise, keyed: one murmur2. Keyless: one
// uncontended lock and a map lookup, O(log topics); the first record of a new topic allocates
// its entry.
class DefaultPartitioner {
 public:
  // Kafka's batch.size default.
  static constexpr std::size_t kDefaultStickyBatchBytes = 16384;

  // sticky_batch_bytes == 0 switches after every keyless record. `seed` set: two partitioners
  // with the same seed, strategy and batch bytes, given the same calls in the same order,
  // return the same partitions, on every run and platform (tests; a Producer passes
  // ProducerConfig::seed here). nullopt: seeded from the steady clock and the object's
  // address, so each partitioner, and each run, chooses differently.
  explicit DefaultPartitioner(KeylessStrategy strategy = KeylessStrategy::kSticky,
                              std::size_t sticky_batch_bytes = kDefaultStickyBatchBytes,
                              std::optional<std::uint64_t> seed = std::nullopt) noexcept
      : strategy_(strategy),
        sticky_batch_bytes_(sticky_batch_bytes),
        rng_(seed ? *seed : default_seed()) {}

  DefaultPartitioner(const DefaultPartitioner&) = delete;
  DefaultPartitioner& operator=(const DefaultPartitioner&) = delete;

  KeylessStrategy strategy() const noexcept { return strategy_; }
  std::size_t sticky_batch_bytes() const noexcept { return sticky_batch_bytes_; }

  // The partition, in [0, partitions), for a record of `topic` with `key_bytes` (nullopt: no
  // key) whose size is `record_bytes` (the producer's measure of the record, e.g. key + value
  // + headers; only sticky partitioning uses it). REQUIRES: partitions > 0 (RILL_ASSERT).
  std::int32_t partition(std::string_view topic, std::optional<std::string_view> key_bytes,
                         std::size_t record_bytes, std::int32_t partitions) {
    RILL_ASSERT(partitions > 0, "a topic has at least one partition");
    // Every rule answers 0 here: no hash, no lock (a keyless sticky choice starts afresh if
    // the topic grows, as it does when its partition count changes).
    if (partitions == 1) return 0;
    if (key_bytes.has_value()) return partition_for_key(*key_bytes, partitions);

    std::lock_guard<std::mutex> lock(mu_);
    auto it = topics_.find(topic);
    if (it == topics_.end()) it = topics_.emplace(std::string(topic), TopicState{}).first;
    TopicState& st = it->second;

    if (strategy_ == KeylessStrategy::kRoundRobin) {
      if (st.next_round_robin >= partitions) st.next_round_robin = 0;
      const std::int32_t p = st.next_round_robin;
      st.next_round_robin = p + 1 == partitions ? 0 : p + 1;
      return p;
    }

    if (st.sticky < 0 || st.sticky >= partitions) {  // first record, or the topic changed size
      st.sticky = random_below(partitions);
      st.sticky_bytes = 0;
    }
    const std::int32_t p = st.sticky;
    st.sticky_bytes =
        record_bytes > kMaxBytes - st.sticky_bytes ? kMaxBytes : st.sticky_bytes + record_bytes;
    if (st.sticky_bytes >= sticky_batch_bytes_) {
      if (partitions > 1) {
        const std::int32_t r = random_below(partitions - 1);  // skip p: r in the others
        st.sticky = r >= p ? r + 1 : r;
      }
      st.sticky_bytes = 0;
    }
    return p;
  }

 private:
  struct TopicState {
    std::int32_t sticky = -1;           // current sticky partition; -1 before the first record
    std::size_t sticky_bytes = 0;       // bytes sent to `sticky` since it was chosen
    std::int32_t next_round_robin = 0;  // round-robin: the next partition to return
  };

  static constexpr std::size_t kMaxBytes = static_cast<std::size_t>(-1);

  std::uint64_t default_seed() const noexcept {
    const auto now = std::chrono::steady_clock::now().time_since_epoch().count();
    return static_cast<std::uint64_t>(now) ^ reinterpret_cast<std::uintptr_t>(this);
  }

  // splitmix64: tiny, fast, and good enough to pick partitions. REQUIRES: mu_ held.
  std::uint64_t next_random() noexcept {
    std::uint64_t z = (rng_ += 0x9E3779B97F4A7C15u);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
    return z ^ (z >> 31);
  }
  // Uniform in [0, n) up to a bias below 2^-32 (n < 2^31). REQUIRES: n > 0, mu_ held.
  std::int32_t random_below(std::int32_t n) noexcept {
    return static_cast<std::int32_t>(next_random() % static_cast<std::uint64_t>(n));
  }

  const KeylessStrategy strategy_;
  const std::size_t sticky_batch_bytes_;
  std::mutex mu_;
  std::uint64_t rng_;                                      // guarded by mu_
  std::map<std::string, TopicState, std::less<>> topics_;  // guarded by mu_
};

// A user partitioner: given the topic, the serialized key (nullopt: no key) and the topic's
// partition count, return the partition. A producer configured with one calls it for every
// record that does not name a partition, instead of DefaultPartitioner. The producer checks
// the result: one outside [0, partitions) fails that send with ErrorCode::kOutOfRange and
// appends nothing. It may be called from every thread that sends through the producer at
// once, so it must be thread-safe; it should be cheap and must not block (it runs on the send
// path). To stay compatible with Kafka for keyed records, delegate to partition_for_key.
//
//   rill::Partitioner by_region = [](std::string_view, std::optional<std::string_view> key,
//                                    std::int32_t n) -> std::int32_t {
//     if (key && key->starts_with("eu-")) return 0;           // EU keys together on partition 0
//     return key ? rill::partition_for_key(*key, n) : n - 1;  // the rest as Kafka would
//   };
using Partitioner = std::function<std::int32_t(
    std::string_view topic, std::optional<std::string_view> key_bytes, std::int32_t partitions)>;

}  // namespace rill
