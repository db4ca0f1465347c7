// rill/consumer_group.hpp: ConsumerGroup, an administrative view of a consumer group, as
// kafka-consumer-groups.sh gives: list groups, describe one, lag per partition, reset a
// group's offsets, delete a group.
//
//   rill::ConsumerGroup billing(*broker, "billing");
//   auto lag = billing.lag();  // name the Result: `for (p : *billing.lag())` iterates a
//                              // temporary destroyed before the loop body runs
//   if (lag) for (const auto& p : *lag) std::printf("%s-%d lag %lld\n", ...);
//
// Thread-safety: thread-safe (every call goes through the broker's coordinator and store).
#pragma once

#include <algorithm>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "rill/broker.hpp"
#include "rill/group/coordinator.hpp"
#include "rill/result.hpp"

namespace rill {

struct PartitionLag {
  group::TopicPartition partition;
  std::optional<std::int64_t> committed;  // nullopt: nothing committed yet
  std::int64_t end_offset = 0;
  std::int64_t lag = 0;  // end offset minus committed (minus the start offset when nothing is)
};

// The lag of a partition whose log spans [start_offset, end_offset) for a group that committed
// `committed` there (nothing: the lag counts from the start).
inline PartitionLag partition_lag(group::TopicPartition tp, std::optional<std::int64_t> committed,
                                  std::int64_t start_offset, std::int64_t end_offset) {
  PartitionLag l;
  l.partition = std::move(tp);
  l.committed = committed;
  l.end_offset = end_offset;
  // A committed offset is never negative (OffsetStore::commit refuses them), but a store
  // written by an older version may hold one: counted from 0, not overflowing.
  const std::int64_t from = committed ? std::max<std::int64_t>(*committed, 0) : start_offset;
  l.lag = std::max<std::int64_t>(0, end_offset - from);
  return l;
}

// Where reset_offsets() moves a group's committed offsets.
struct OffsetResetSpec {
  enum class Kind { kEarliest, kLatest, kTimestamp, kOffset };
  Kind kind = Kind::kEarliest;
  std::int64_t value = 0;  // the timestamp (ms) or the offset

  static OffsetResetSpec earliest() { return {Kind::kEarliest, 0}; }
  static OffsetResetSpec latest() { return {Kind::kLatest, 0}; }
  static OffsetResetSpec to_timestamp(std::int64_t ms) { return {Kind::kTimestamp, ms}; }
  static OffsetResetSpec to_offset(std::int64_t offset) { return {Kind::kOffset, offset}; }
};

class ConsumerGroup {
 public:
  ConsumerGroup(Broker& broker, std::string group_id)
      : broker_(&broker), group_id_(std::move(group_id)) {}

  // Groups with members or committed offsets.
  static std::vector<std::string> list(const Broker& broker) { return broker.list_groups(); }

  // Members, what each owns, the generation and the state. Errors: kInvalidArgument for an
  // empty group id.
  Result<group::GroupDescription> describe() const {
    auto c = broker_->group_coordinator(group_id_);
    if (!c) return fail(std::move(c).error());
    return (*c)->describe();
  }

  // Lag of every partition of every topic the group has committed to or is subscribed to.
  Result<std::vector<PartitionLag>> lag() const {
    auto store = broker_->offset_store();
    if (!store) return fail(std::move(store).error());
    const auto offsets = (*store)->group_offsets(group_id_);
    std::set<std::string> topics;
    for (const auto& [tp, unused] : offsets) topics.insert(tp.topic);
    auto d = describe();
    if (!d) return fail(std::move(d).error());
    for (const auto& m : d->members) topics.insert(m.topics.begin(), m.topics.end());
    std::vector<PartitionLag> out;
    for (const auto& topic : topics) {
      auto st = broker_->topic_state(topic);
      if (!st) continue;  // deleted since
      for (std::int32_t p = 0; p < (*st)->partition_count(); ++p) {
        const storage::Log& log = *(*st)->partition(p);
        auto it = offsets.find({topic, p});
        out.push_back(partition_lag(
            {topic, p}, it == offsets.end() ? std::nullopt : std::optional(it->second.offset),
            log.start_offset(), log.end_offset()));
      }
    }
    return out;
  }

  // Sets the group's committed offsets for every partition of `topic`. Only for a group with
  // no active members (kInvalidArgument otherwise, as Kafka's tool refuses). Errors:
  // kNotFound for a missing topic; kOutOfRange for an offset outside a partition.
  Result<void> reset_offsets(const std::string& topic, const OffsetResetSpec& spec) {
    auto c = broker_->group_coordinator(group_id_);
    if (!c) return fail(std::move(c).error());
    auto store = broker_->offset_store();
    if (!store) return fail(std::move(store).error());
    // The offsets are computed and committed with the group locked: a member joining
    // meanwhile would start from the offsets this replaces.
    return (*c)->while_inactive("reset the offsets of", [&]() -> Result<void> {
      return reset_offsets_locked(topic, spec, **store);
    });
  }

  // Forgets the group's committed offsets. Only for a group with no active members.
  Result<void> delete_group() {
    auto c = broker_->group_coordinator(group_id_);
    if (!c) return fail(std::move(c).error());
    auto store = broker_->offset_store();
    if (!store) return fail(std::move(store).error());
    return (*c)->while_inactive("delete", [&] { return (*store)->delete_group(group_id_); });
  }

 private:
  Result<void> reset_offsets_locked(const std::string& topic, const OffsetResetSpec& spec,
                                    group::OffsetStore& store) {
    auto st = broker_->topic_state(topic);
    if (!st) return fail(std::move(st).error());
    std::map<group::TopicPartition, group::OffsetAndMetadata> offsets;
    const std::int64_t now = broker_->clock().now_ms();
    for (std::int32_t p = 0; p < (*st)->partition_count(); ++p) {
      const storage::Log& log = *(*st)->partition(p);
      std::int64_t to = 0;
      switch (spec.kind) {
        case OffsetResetSpec::Kind::kEarliest:
          to = log.start_offset();
          break;
        case OffsetResetSpec::Kind::kLatest:
          to = log.end_offset();
          break;
        case OffsetResetSpec::Kind::kTimestamp:
          to = log.offset_for_time(spec.value).value_or(log.end_offset());
          break;
        case OffsetResetSpec::Kind::kOffset:
          to = spec.value;
          if (to < log.start_offset() || to > log.end_offset()) {
            return fail(ErrorCode::kOutOfRange, topic + "-" + std::to_string(p) + ": offset " +
                                                    std::to_string(to) + " is outside [" +
                                                    std::to_string(log.start_offset()) + ", " +
                                                    std::to_string(log.end_offset()) + "]");
          }
          break;
      }
      offsets[{topic, p}] = {to, {}, now};
    }
    return store.commit(group_id_, offsets);
  }

  Broker* broker_;
  std::string group_id_;
};

}  // namespace rill
