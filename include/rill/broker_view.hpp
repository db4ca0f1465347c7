// rill/broker_view.hpp: a read-only view of a data directory that a Broker in another process
// (or this one) may have open and be writing to: topics, their partitions' records, committed
// offsets of consumer groups, and stats. What the `rill` tool stands on; also for a monitoring
// process or a sidecar next to an application.
//
//   auto view = rill::BrokerView::open("data");       // no lock taken, nothing written
//   auto* log = *(*view)->partition("orders", 0);     // a storage::LogReader
//   (void)(*view)->refresh();                         // new topics, records, segments
//
// Each partition is a storage::LogReader (see storage/log_reader.hpp for what a reader sees
// of a live log: a consistent prefix, never a torn record). The view re-reads topic.conf files
// in refresh_topics(): new topics, added partitions and deleted topics appear there.
// Consumer-group membership lives in the writing process; the view sees committed offsets
// only.
//
// Thread-safety: thread-compatible (one thread at a time), like the LogReaders it holds.
// Costs: open maps every segment and scans the last one of each partition; refresh() costs
// what each LogReader::refresh does; refresh_topics() lists the directory and reads each
// topic.conf.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "rill/broker.hpp"
#include "rill/group/offset_store.hpp"
#include "rill/result.hpp"
#include "rill/stats.hpp"
#include "rill/storage/log_reader.hpp"

namespace rill {

class BrokerView {
 public:
  BrokerView(const BrokerView&) = delete;
  BrokerView& operator=(const BrokerView&) = delete;

  // Opens the data directory `dir` read-only and loads its topics. Errors: kNotFound when
  // `dir` does not exist; kCorruption for a topic.conf that does not parse, or a damaged
  // segment header; kIoError.
  static Result<std::unique_ptr<BrokerView>> open(const std::string& dir) {
    std::error_code ec;
    if (!std::filesystem::is_directory(dir, ec)) {
      return fail(ErrorCode::kNotFound, "data directory " + dir + " does not exist");
    }
    std::unique_ptr<BrokerView> v(new BrokerView(dir));
    RILL_TRY(v->refresh_topics());
    return v;
  }

  // Re-lists the topics (new, deleted, grown) and reads their configs. Errors: as open().
  Result<void> refresh_topics() {
    namespace fs = std::filesystem;
    std::error_code ec;
    std::map<std::string, Topic, std::less<>> next;
    for (const auto& entry : fs::directory_iterator(dir_, ec)) {
      const std::string name = entry.path().filename().string();
      std::error_code ec2;
      if (!validate_topic_name(name) || !fs::exists(entry.path() / "topic.conf", ec2)) continue;
      const std::string path = (entry.path() / "topic.conf").string();
      auto text = detail::read_small_file(path);
      if (!text) {
        if (text.error().code() == ErrorCode::kNotFound) continue;  // deleted meanwhile
        return fail(std::move(text).error());
      }
      auto config = detail::parse_topic_config(*text, path);
      if (!config) return fail(std::move(config).error());
      auto old = topics_.find(name);
      Topic t;
      if (old != topics_.end()) t = std::move(old->second);
      t.config = std::move(*config);
      t.partitions.resize(static_cast<std::size_t>(t.config.partitions));
      next.emplace(name, std::move(t));
    }
    if (ec) return fail(ErrorCode::kIoError, "listing " + dir_ + ": " + ec.message());
    topics_ = std::move(next);
    for (auto& [name, t] : topics_) {
      for (std::size_t p = 0; p < t.partitions.size(); ++p) RILL_TRY(open_partition(name, t, p));
    }
    return {};
  }

  // Picks up new records and segments in every partition (LogReader::refresh); opens
  // partitions whose first segment did not exist yet. Errors: the first a partition reports.
  Result<void> refresh() {
    for (auto& [name, t] : topics_) {
      for (std::size_t p = 0; p < t.partitions.size(); ++p) {
        RILL_TRY(open_partition(name, t, p));
        if (t.partitions[p]) {
          auto r = t.partitions[p]->refresh();
          if (!r) return fail(std::move(r).error());
        }
      }
    }
    return {};
  }

  // Names of the topics, sorted; internal ones ("__consumer_offsets") only when asked.
  std::vector<std::string> list_topics(bool include_internal = false) const {
    std::vector<std::string> out;
    for (const auto& [name, unused] : topics_) {
      if (include_internal || !Broker::is_internal_topic(name)) out.push_back(name);
    }
    return out;
  }

  // The topic's configuration and each partition's offsets and size, as the view last saw
  // them. kNotFound if absent.
  Result<TopicDescription> describe_topic(std::string_view name) const {
    auto it = topics_.find(name);
    if (it == topics_.end()) return not_found(name);
    TopicDescription d;
    d.name = it->first;
    d.config = it->second.config;
    for (std::size_t p = 0; p < it->second.partitions.size(); ++p) {
      const auto& r = it->second.partitions[p];
      PartitionInfo info;
      info.partition = static_cast<std::int32_t>(p);
      if (r) {
        info = {info.partition, r->start_offset(), r->end_offset(), r->size_bytes(),
                r->segment_count()};
      }
      d.partitions.push_back(info);
    }
    return d;
  }

  // The reader of one partition. Errors: kNotFound (no such topic, or its partition has no
  // segment yet), kOutOfRange (no such partition).
  Result<storage::LogReader*> partition(std::string_view topic, std::int32_t p) {
    auto it = topics_.find(topic);
    if (it == topics_.end()) return not_found(topic);
    if (p < 0 || static_cast<std::size_t>(p) >= it->second.partitions.size()) {
      return fail(ErrorCode::kOutOfRange, "topic '" + std::string(topic) + "' has " +
                                              std::to_string(it->second.partitions.size()) +
                                              " partition(s); there is no partition " +
                                              std::to_string(p));
    }
    RILL_TRY(open_partition(it->first, it->second, static_cast<std::size_t>(p)));
    auto& r = it->second.partitions[static_cast<std::size_t>(p)];
    if (!r) {
      return fail(ErrorCode::kNotFound,
                  std::string(topic) + "-" + std::to_string(p) + " has no segment yet");
    }
    return r.get();
  }

  // Every group's committed offsets, from __consumer_offsets, as of now (replays what was
  // appended since the last call). Errors: kCorruption for a record that does not decode.
  Result<const group::GroupOffsets*> committed_offsets() {
    auto log = partition(Broker::kOffsetsTopic, 0);
    if (!log) {
      if (log.error().code() == ErrorCode::kNotFound) return &offsets_;  // no group yet
      return fail(std::move(log).error());
    }
    auto refreshed = (*log)->refresh();
    if (!refreshed) return fail(std::move(refreshed).error());
    offsets_next_ = std::max(offsets_next_, (*log)->start_offset());
    while (offsets_next_ < (*log)->end_offset()) {
      auto batch = (*log)->read(offsets_next_, 4096);
      if (!batch) return fail(std::move(batch).error());
      for (const auto& r : *batch) {
        if (!group::detail::apply_offset_record(offsets_, r)) {
          return fail(ErrorCode::kCorruption, "committed-offsets record at offset " +
                                                  std::to_string(r.offset()) + " does not decode");
        }
      }
      offsets_next_ = batch->next_offset();
    }
    return &offsets_;
  }

  // Lag of every partition of every topic `group_id` has committed to. Errors: as
  // committed_offsets().
  Result<std::vector<PartitionLag>> group_lag(std::string_view group_id) {
    auto all = committed_offsets();
    if (!all) return fail(std::move(all).error());
    std::vector<PartitionLag> out;
    auto g = (*all)->find(group_id);
    if (g == (*all)->end()) return out;
    std::set<std::string> topics;
    for (const auto& [tp, unused] : g->second) topics.insert(tp.topic);
    for (const auto& topic : topics) {
      auto it = topics_.find(topic);
      if (it == topics_.end()) continue;  // deleted since
      for (std::size_t p = 0; p < it->second.partitions.size(); ++p) {
        const auto& r = it->second.partitions[p];
        const group::TopicPartition tp{topic, static_cast<std::int32_t>(p)};
        auto c = g->second.find(tp);
        out.push_back(
            partition_lag(tp, c == g->second.end() ? std::nullopt : std::optional(c->second.offset),
                          r ? r->start_offset() : 0, r ? r->end_offset() : 0));
      }
    }
    return out;
  }

  // Partitions (offsets, segments, bytes) and groups (committed offsets and lag) as the view
  // sees them; call refresh() first for fresh figures. Counters and membership are the
  // writer's and read as zero here.
  Result<BrokerStats> stats() {
    BrokerStats out;
    for (const auto& name : list_topics(true)) {
      auto d = describe_topic(name);
      if (!d) return fail(std::move(d).error());
      for (const auto& p : d->partitions) {
        out.partitions.push_back(
            {name, p.partition, p.start_offset, p.end_offset, p.segments, p.size_bytes, {}});
      }
    }
    auto all = committed_offsets();
    if (!all) return fail(std::move(all).error());
    for (const auto& [id, unused] : **all) {
      auto lag = group_lag(id);
      if (!lag) return fail(std::move(lag).error());
      GroupStats g{id, "Unknown", 0, 0, std::move(*lag), 0};
      for (const auto& l : g.lag) g.total_lag += l.lag;
      out.groups.push_back(std::move(g));
    }
    return out;
  }

  const std::string& directory() const noexcept { return dir_; }

 private:
  struct Topic {
    TopicConfig config;
    std::vector<std::unique_ptr<storage::LogReader>> partitions;  // null: no segment yet
  };

  explicit BrokerView(std::string dir) : dir_(std::move(dir)) {}

  static Unexpected not_found(std::string_view name) {
    return fail(ErrorCode::kNotFound, "topic '" + std::string(name) + "' does not exist");
  }

  Result<void> open_partition(const std::string& name, Topic& t, std::size_t p) {
    if (t.partitions[p]) return {};
    auto r = storage::LogReader::open(dir_ + "/" + name + "/" + std::to_string(p));
    if (!r) {
      if (r.error().code() == ErrorCode::kNotFound) return {};  // not created yet
      return fail(std::move(r).error());
    }
    t.partitions[p] = std::move(*r);
    return {};
  }

  const std::string dir_;
  std::map<std::string, Topic, std::less<>> topics_;
  group::GroupOffsets offsets_;
  std::int64_t offsets_next_ = 0;
};

}  // namespace rill
