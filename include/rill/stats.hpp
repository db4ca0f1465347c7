// rill/stats.hpp: a snapshot of a broker's partitions and consumer groups, for metrics.
//
//   auto s = rill::stats(*broker);          // cheap enough to call every second
//   for (const auto& p : s->partitions) export(p.topic, p.partition, p.end_offset, ...);
//
// Thread-safety: stats() is thread-safe (it takes the broker's and each group's locks briefly).
// Cost: per partition, a few atomic loads and a look at the segment table; per group, one
// describe and one pass over its committed offsets. No I/O.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "rill/broker.hpp"
#include "rill/consumer_group.hpp"
#include "rill/result.hpp"

namespace rill {

struct PartitionStats {
  std::string topic;
  std::int32_t partition = 0;
  std::int64_t start_offset = 0;
  std::int64_t end_offset = 0;
  std::size_t segments = 0;
  std::uint64_t size_bytes = 0;
  // Since the partition was opened in this process (zero in a read-only view of another
  // process's directory: those counters live in the writer).
  storage::LogCounters counters{};
};

struct GroupStats {
  std::string group_id;
  std::string state;            // "Empty", "Stable", "PreparingRebalance"
  std::int32_t generation = 0;  // 0 in a read-only view (membership lives in the writer)
  std::size_t members = 0;
  std::vector<PartitionLag> lag;
  std::int64_t total_lag = 0;
};

struct BrokerStats {
  std::vector<PartitionStats> partitions;  // every topic (internal ones included), in order
  std::vector<GroupStats> groups;
};

// The stats of a live broker. Errors: reading the committed offsets (the internal topic).
inline Result<BrokerStats> stats(Broker& broker) {
  BrokerStats out;
  for (const auto& name : broker.list_topics(true)) {
    auto st = broker.topic_state(name);
    if (!st) continue;  // deleted meanwhile
    for (std::int32_t p = 0; p < (*st)->partition_count(); ++p) {
      const storage::Log& log = *(*st)->partition(p);
      out.partitions.push_back({name, p, log.start_offset(), log.end_offset(), log.segment_count(),
                                log.size_bytes(), log.counters()});
    }
  }
  for (const auto& id : broker.list_groups()) {
    ConsumerGroup group(broker, id);
    auto d = group.describe();
    if (!d) return fail(std::move(d).error());
    auto lag = group.lag();
    if (!lag) return fail(std::move(lag).error());
    GroupStats g{id, d->state, d->generation, d->members.size(), std::move(*lag), 0};
    for (const auto& l : g.lag) g.total_lag += l.lag;
    out.groups.push_back(std::move(g));
  }
  return out;
}

}  // namespace rill
