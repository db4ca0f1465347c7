// rill/group/offset_store.hpp: committed offsets of consumer groups, kept durably in an
// internal log, as Kafka keeps them in __consumer_offsets.
//
// Each commit appends one record: key = (group, topic, partition), value = the offset and the
// committer's metadata; deleting a group appends tombstones (null values). On open the log is
// replayed and the latest record per key wins, so a committed offset survives restarts. The
// topic's cleanup policy is compact: background compaction (storage::Log::compact) keeps it
// about as large as the number of (group, partition) keys.
//
// Record layout (all integers big-endian, as Kafka's own offset records):
//   key   = u16 group size, group, u16 topic size, topic, i32 partition
//   value = i64 offset, i64 commit timestamp (ms), u16 metadata size, metadata
//
// Thread-safety: thread-safe (one mutex around the map; commits append under it, so the
// log's order is the map's order).
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "rill/group/assignor.hpp"
#include "rill/result.hpp"
#include "rill/storage/log.hpp"

namespace rill::group {

// Kafka's OffsetAndMetadata.
struct OffsetAndMetadata {
  std::int64_t offset = 0;
  std::string metadata{};
  std::int64_t commit_timestamp_ms = 0;
};

// Committed offsets by group, then partition: what replaying __consumer_offsets gives.
using GroupOffsets =
    std::map<std::string, std::map<TopicPartition, OffsetAndMetadata>, std::less<>>;

namespace detail {

inline void put_u16(std::string& out, std::uint16_t v) {
  out += static_cast<char>(v >> 8);
  out += static_cast<char>(v & 0xFF);
}
inline void put_u64(std::string& out, std::uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8) out += static_cast<char>((v >> shift) & 0xFF);
}
inline bool get_u16(std::string_view& in, std::uint16_t& v) {
  if (in.size() < 2) return false;
  v = static_cast<std::uint16_t>((static_cast<unsigned char>(in[0]) << 8) |
                                 static_cast<unsigned char>(in[1]));
  in.remove_prefix(2);
  return true;
}
inline bool get_u64(std::string_view& in, std::uint64_t& v) {
  if (in.size() < 8) return false;
  v = 0;
  for (int i = 0; i < 8; ++i)
    v = (v << 8) | static_cast<unsigned char>(in[static_cast<std::size_t>(i)]);
  in.remove_prefix(8);
  return true;
}
inline bool get_string(std::string_view& in, std::string& out) {
  std::uint16_t n;
  if (!get_u16(in, n) || in.size() < n) return false;
  out.assign(in.substr(0, n));
  in.remove_prefix(n);
  return true;
}

inline std::string offset_key(std::string_view group, const TopicPartition& tp) {
  std::string k;
  put_u16(k, static_cast<std::uint16_t>(group.size()));
  k += group;
  put_u16(k, static_cast<std::uint16_t>(tp.topic.size()));
  k += tp.topic;
  const auto p = static_cast<std::uint32_t>(tp.partition);
  k += static_cast<char>(p >> 24);
  k += static_cast<char>((p >> 16) & 0xFF);
  k += static_cast<char>((p >> 8) & 0xFF);
  k += static_cast<char>(p & 0xFF);
  return k;
}

// Applies one record of __consumer_offsets to `offsets` (the latest record per key wins; a
// tombstone forgets the key). False when the record does not decode. Shared by OffsetStore's
// replay and read-only readers of the topic (BrokerView).
inline bool apply_offset_record(GroupOffsets& offsets, const storage::RecordView& r) {
  std::string_view key = r.key().value_or(std::string_view());
  std::string group;
  TopicPartition tp;
  std::uint64_t offset = 0;
  std::uint64_t ts = 0;
  std::string metadata;
  bool ok = r.has_key() && get_string(key, group) && get_string(key, tp.topic) && key.size() == 4;
  if (!ok) return false;
  std::uint32_t p = 0;
  for (char c : key) p = (p << 8) | static_cast<unsigned char>(c);
  tp.partition = static_cast<std::int32_t>(p);
  if (r.is_tombstone()) {
    auto g = offsets.find(group);
    if (g != offsets.end()) {
      g->second.erase(tp);
      if (g->second.empty()) offsets.erase(g);
    }
    return true;
  }
  std::string_view value = r.value().value_or(std::string_view());
  ok = get_u64(value, offset) && get_u64(value, ts) && get_string(value, metadata) && value.empty();
  if (!ok) return false;
  offsets[group][tp] = {static_cast<std::int64_t>(offset), std::move(metadata),
                        static_cast<std::int64_t>(ts)};
  return true;
}

}  // namespace detail

class OffsetStore {
 public:
  // Binds to the internal log and replays it. Errors: kCorruption when a record does not
  // decode (the message names its offset).
  static Result<std::unique_ptr<OffsetStore>> open(storage::Log* log) {
    std::unique_ptr<OffsetStore> s(new OffsetStore(log));
    RILL_TRY(s->replay());
    return s;
  }

  // Commits `offsets` for `group` (one appended record each, one batch). Errors:
  // kInvalidArgument for a negative offset (Kafka refuses them too: an offset is the next
  // record to read, never below 0), a group id, topic name or metadata over 65535 bytes; the
  // log's. Nothing is committed when any offset is refused.
  Result<void> commit(std::string_view group,
                      const std::map<TopicPartition, OffsetAndMetadata>& offsets) {
    if (group.size() > 0xFFFF) return fail(ErrorCode::kInvalidArgument, "group id too long");
    std::vector<std::string> keys;
    std::vector<std::string> values;
    for (const auto& [tp, om] : offsets) {
      if (om.metadata.size() > 0xFFFF || tp.topic.size() > 0xFFFF) {
        return fail(ErrorCode::kInvalidArgument, "commit metadata or topic name too long");
      }
      if (om.offset < 0) {
        return fail(ErrorCode::kInvalidArgument,
                    "cannot commit offset " + std::to_string(om.offset) + " for " + tp.topic + "-" +
                        std::to_string(tp.partition) + ": offsets are 0 or more");
      }
      keys.push_back(detail::offset_key(group, tp));
      std::string v;
      detail::put_u64(v, static_cast<std::uint64_t>(om.offset));
      detail::put_u64(v, static_cast<std::uint64_t>(om.commit_timestamp_ms));
      detail::put_u16(v, static_cast<std::uint16_t>(om.metadata.size()));
      v += om.metadata;
      values.push_back(std::move(v));
    }
    std::vector<storage::Record> records;
    for (std::size_t i = 0; i < keys.size(); ++i) {
      records.push_back({.key = std::string_view(keys[i]), .value = std::string_view(values[i])});
    }
    std::lock_guard lock(mu_);
    if (!records.empty()) {
      auto at = log_->append_batch(records);
      if (!at) return fail(std::move(at).error());
    }
    auto& g = offsets_[std::string(group)];
    for (const auto& [tp, om] : offsets) g[tp] = om;
    return {};
  }

  std::optional<OffsetAndMetadata> committed(std::string_view group,
                                             const TopicPartition& tp) const {
    std::lock_guard lock(mu_);
    auto g = offsets_.find(group);
    if (g == offsets_.end()) return std::nullopt;
    auto it = g->second.find(tp);
    if (it == g->second.end()) return std::nullopt;
    return it->second;
  }

  std::map<TopicPartition, OffsetAndMetadata> group_offsets(std::string_view group) const {
    std::lock_guard lock(mu_);
    auto g = offsets_.find(group);
    return g == offsets_.end() ? std::map<TopicPartition, OffsetAndMetadata>{} : g->second;
  }

  // Groups with committed offsets.
  std::vector<std::string> groups() const {
    std::lock_guard lock(mu_);
    std::vector<std::string> out;
    for (const auto& [g, offsets] : offsets_) {
      if (!offsets.empty()) out.push_back(g);
    }
    return out;
  }

  // The topics with committed offsets in any group, sorted.
  std::vector<std::string> topics() const {
    std::lock_guard lock(mu_);
    std::set<std::string> out;
    for (const auto& [g, offsets] : offsets_) {
      for (const auto& [tp, unused] : offsets) out.insert(tp.topic);
    }
    return {out.begin(), out.end()};
  }

  // Forgets a group's offsets (tombstones in the log). Errors: the log's.
  Result<void> delete_group(std::string_view group) {
    std::lock_guard lock(mu_);
    auto g = offsets_.find(group);
    if (g == offsets_.end()) return {};
    std::vector<std::pair<std::string, TopicPartition>> keys;
    for (const auto& [tp, unused] : g->second) keys.emplace_back(std::string(group), tp);
    RILL_TRY(forget_locked(keys));
    offsets_.erase(g);
    return {};
  }

  // Forgets every group's offsets for `topic` (tombstones in the log), as Kafka does when a
  // topic is deleted: a topic created again under the name starts without them, rather
  // than from offsets that counted another topic's records. Errors: the log's.
  Result<void> delete_topic(std::string_view topic) {
    std::lock_guard lock(mu_);
    std::vector<std::pair<std::string, TopicPartition>> keys;
    for (const auto& [group, offsets] : offsets_) {
      for (const auto& [tp, unused] : offsets) {
        if (tp.topic == topic) keys.emplace_back(group, tp);
      }
    }
    RILL_TRY(forget_locked(keys));
    for (const auto& [group, tp] : keys) {
      auto g = offsets_.find(group);
      g->second.erase(tp);
      if (g->second.empty()) offsets_.erase(g);
    }
    return {};
  }

 private:
  explicit OffsetStore(storage::Log* log) : log_(log) {}

  // Appends a tombstone for each (group, partition), in one batch. REQUIRES mu_ held.
  Result<void> forget_locked(const std::vector<std::pair<std::string, TopicPartition>>& which) {
    if (which.empty()) return {};
    std::vector<std::string> keys;
    for (const auto& [group, tp] : which) keys.push_back(detail::offset_key(group, tp));
    std::vector<storage::Record> records;
    for (const auto& k : keys)
      records.push_back({.key = std::string_view(k), .value = std::nullopt});
    auto at = log_->append_batch(records);
    if (!at) return fail(std::move(at).error());
    return {};
  }

  Result<void> replay() {
    storage::RecordBatch batch;
    std::int64_t next = log_->start_offset();
    while (next < log_->end_offset()) {
      RILL_TRY(log_->read_into(next, batch, 4096));
      for (const auto& r : batch) {
        if (!detail::apply_offset_record(offsets_, r)) {
          return fail(ErrorCode::kCorruption, "committed-offsets record at offset " +
                                                  std::to_string(r.offset()) + " does not decode");
        }
      }
      next = batch.next_offset();
    }
    return {};
  }

  storage::Log* log_;
  mutable std::mutex mu_;
  GroupOffsets offsets_;
};

}  // namespace rill::group
