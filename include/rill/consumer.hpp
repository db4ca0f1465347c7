// rill/consumer.hpp: Consumer<K, V> reads typed records at its own positions, alone or as a
// member of a consumer group, with Kafka's consumer model.
//
//   rill::Consumer<std::string, std::string> consumer(*broker, {.group_id = "billing"});
//   consumer.subscribe({"orders"});
//   while (running) {
//     auto records = consumer.poll(std::chrono::milliseconds(100));
//     for (const auto& r : *records) handle(r.key, r.value);
//     consumer.commit();
//   }
//
// Positions: each assigned partition has a position, the offset of the next record poll()
// returns. On assignment it starts at the group's committed offset, else where
// auto_offset_reset says (earliest, latest, or an error). commit() stores the positions as
// the group's committed offsets (durably, see group/offset_store.hpp).
//
// Groups: subscribe() joins the group (config.group_id); the group's coordinator shares the
// topics' partitions among members (group/coordinator.hpp). Rebalances happen inside poll():
// the callbacks run there, on the consumer's thread: on_revoked before partitions go (commit
// there and a clean rebalance delivers nothing twice), on_assigned after new ones come, on_lost
// when the member was removed for missing its timeouts (its commits are refused then).
//
// Thread-safety: single-owner, like Kafka's consumer: one thread at a time. wakeup() is the
// exception: any thread may call it to break a blocking poll().
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "rill/broker.hpp"
#include "rill/detail/futex.hpp"
#include "rill/group/assignor.hpp"
#include "rill/group/coordinator.hpp"
#include "rill/result.hpp"
#include "rill/storage/notifier.hpp"
#include "rill/topic.hpp"

namespace rill {

using group::AssignmentStrategy;
using group::OffsetAndMetadata;
using group::TopicPartition;

// Where a partition without a committed offset starts (Kafka's auto.offset.reset).
enum class OffsetReset { kEarliest, kLatest, kNone };

struct ConsumerConfig {
  std::string group_id{};                                // group.id; empty: no group
  OffsetReset auto_offset_reset = OffsetReset::kLatest;  // auto.offset.reset
  bool enable_auto_commit = true;                        // enable.auto.commit
  std::int64_t auto_commit_interval_ms = 5000;           // auto.commit.interval.ms
  std::size_t max_poll_records = 500;                    // max.poll.records
  AssignmentStrategy assignment_strategy = AssignmentStrategy::kRange;
  std::int64_t session_timeout_ms = 45'000;     // session.timeout.ms
  std::int64_t max_poll_interval_ms = 300'000;  // max.poll.interval.ms
  std::string client_id{};
  // poll() spins on its partitions' end offsets instead of sleeping until a record arrives:
  // the lowest append-to-poll latency (no wake-up through the kernel), for the price of a CPU
  // kept busy while it waits. Group work (heartbeats, rebalances) still runs at least once a
  // second, and wakeup() still breaks the wait.
  bool busy_poll = false;
};

// Rebalance callbacks (Kafka's ConsumerRebalanceListener); any may be empty.
struct RebalanceCallbacks {
  std::function<void(const std::vector<TopicPartition>&)> on_revoked{};
  std::function<void(const std::vector<TopicPartition>&)> on_assigned{};
  std::function<void(const std::vector<TopicPartition>&)> on_lost{};
};

// What poll() returns. Zero-copy fields (string_view, span values; headers) point into the
// mapped segments, which this object keeps alive.
template <typename K, typename V>
class ConsumerRecords {
 public:
  using const_iterator = typename std::vector<ConsumerRecord<K, V>>::const_iterator;
  const_iterator begin() const noexcept { return records_.begin(); }
  const_iterator end() const noexcept { return records_.end(); }
  std::size_t size() const noexcept { return records_.size(); }
  bool empty() const noexcept { return records_.empty(); }
  const ConsumerRecord<K, V>& operator[](std::size_t i) const noexcept { return records_[i]; }

 private:
  template <typename, typename>
  friend class Consumer;
  std::vector<ConsumerRecord<K, V>> records_;
  // The segments records_ point into (storage::RecordBatch::pin), kept mapped.
  std::vector<std::shared_ptr<const void>> pins_;
};

template <typename K, typename V>
class Consumer {
 public:
  Consumer(Broker& broker, ConsumerConfig config)
      : broker_(&broker),
        config_(std::move(config)),
        last_auto_commit_ms_(broker.clock().now_ms()) {}
  Consumer(const Consumer&) = delete;
  Consumer& operator=(const Consumer&) = delete;
  ~Consumer() { (void)close(); }

  // Joins the group to consume `topics`, sharing their partitions with the group's other
  // members. Replaces an earlier subscription or assignment. Errors: kInvalidArgument without
  // a group id, with a strategy the group does not use, or with a session timeout or max
  // poll interval not above 0; kNotFound for a missing topic; kInvalidArgument for a topic of
  // other types; kClosed after close().
  Result<void> subscribe(const std::vector<std::string>& topics,
                         RebalanceCallbacks callbacks = {}) {
    RILL_TRY(check_open());
    if (config_.group_id.empty()) {
      return fail(ErrorCode::kInvalidArgument, "subscribe() needs a group_id; use assign()");
    }
    if (config_.session_timeout_ms <= 0 || config_.max_poll_interval_ms <= 0) {
      return fail(ErrorCode::kInvalidArgument,
                  "session_timeout_ms and max_poll_interval_ms must be > 0 (got " +
                      std::to_string(config_.session_timeout_ms) + " and " +
                      std::to_string(config_.max_poll_interval_ms) + ")");
    }
    RILL_TRY(open_topics(topics));
    callbacks_ = std::move(callbacks);
    if (!member_id_.empty()) {
      // Kept for a rejoin after this member is removed: without it a removed member came back
      // with its first subscription (tests/group_test.cpp, "a removed member rejoins with the
      // subscription it changed to").
      subscription_ = topics;
      return coordinator_->subscribe(member_id_, topics);
    }
    drop_manual_assignment();
    auto coord = broker_->group_coordinator(config_.group_id);
    if (!coord) return fail(std::move(coord).error());
    coordinator_ = *coord;
    group::MemberConfig mc{topics,
                           config_.assignment_strategy,
                           config_.session_timeout_ms,
                           config_.max_poll_interval_ms,
                           &bell_,
                           config_.client_id};
    auto id = coordinator_->join(mc);
    if (!id) return fail(std::move(id).error());
    member_id_ = *id;
    subscription_ = topics;
    return {};
  }

  // Takes exactly these partitions, outside any group management (commits still go to the
  // group, if there is a group id). Errors: kNotFound / kOutOfRange for a missing topic or
  // partition; kInvalidArgument while subscribed; kClosed after close().
  Result<void> assign(const std::vector<TopicPartition>& partitions) {
    RILL_TRY(check_open());
    if (!member_id_.empty()) {
      return fail(ErrorCode::kInvalidArgument, "assign() while subscribed; unsubscribe() first");
    }
    std::vector<std::string> names;
    for (const auto& tp : partitions) names.push_back(tp.topic);
    RILL_TRY(open_topics(names));
    for (const auto& tp : partitions) {
      if (topics_.at(tp.topic).log(tp.partition) == nullptr) {
        return topics_.at(tp.topic).partition_out_of_range(tp.partition);
      }
    }
    drop_manual_assignment();
    for (const auto& tp : partitions) take(tp);
    return {};
  }

  // Leaves the group (after on_revoked, and a final auto-commit) or drops the assignment.
  Result<void> unsubscribe() {
    Result<void> result;
    if (!member_id_.empty()) {
      result = leave_group();
    } else {
      drop_manual_assignment();
    }
    return result;
  }

  // Returns records from the assigned partitions, at most max_poll_records, blocking up to
  // `timeout` until there are some (an append wakes it at once). Runs the group protocol
  // (rebalance callbacks) and auto-commit first. Errors: kInterrupted after wakeup();
  // kOutOfRange when a position has no committed offset and auto_offset_reset is kNone;
  // kCorruption for records that fail their checks or do not decode; kClosed after close().
  Result<ConsumerRecords<K, V>> poll(std::chrono::milliseconds timeout) {
    RILL_TRY(check_open());
    const auto deadline = detail::deadline_after(timeout);
    ConsumerRecords<K, V> out;
    for (;;) {
      const auto ticket = bell_.prepare();
      if (wakeup_.exchange(false, std::memory_order_acq_rel)) {
        return fail(ErrorCode::kInterrupted, "wakeup() was called");
      }
      refresh_deleted_topics();
      RILL_TRY(sync_group());
      RILL_TRY(maybe_auto_commit());
      bool moved = false;
      RILL_TRY(fetch(out, moved));
      if (!out.empty()) return out;
      // A position moved past a compacted gap: there may be records after it already, which
      // no append will announce.
      if (moved) continue;
      const auto left = deadline - std::chrono::steady_clock::now();
      if (left <= std::chrono::nanoseconds::zero()) return out;
      // Wake at least once a second, and three times per session timeout, to keep the
      // group's liveness checks moving: a member blocked here must call in before its session
      // ends, or another member's call removes it (a session under a second did).
      const auto wait = std::min<std::chrono::nanoseconds>(left, heartbeat_every());
      if (config_.busy_poll) {
        spin_until_ready(std::chrono::steady_clock::now() + wait);
      } else {
        bell_.wait(ticket, wait);
      }
    }
  }

  // Breaks a poll() blocked in another thread (it returns kInterrupted), or the next one.
  void wakeup() noexcept {
    wakeup_.store(true, std::memory_order_release);
    bell_.notify();
  }

  // Commits the positions of all assigned partitions. Errors: kInvalidArgument without a group
  // id; kFenced when this member was removed from its group or no longer owns a partition, or,
  // for a consumer using assign(), when the group has active members.
  Result<void> commit() { return commit(current_positions()); }

  // Commits exactly these offsets (each the offset of the next record to read). Errors as
  // commit(), and: kInvalidArgument for a negative offset; kNotFound, outside the group's
  // membership, for a partition that does not exist; kClosed after close(). A refused
  // commit keeps none of its offsets.
  Result<void> commit(const std::map<TopicPartition, OffsetAndMetadata>& offsets) {
    RILL_TRY(check_open());
    if (config_.group_id.empty()) {
      return fail(ErrorCode::kInvalidArgument, "commit() needs a group_id");
    }
    std::map<TopicPartition, OffsetAndMetadata> stamped = offsets;
    const std::int64_t now = broker_->clock().now_ms();
    for (auto& [tp, om] : stamped) om.commit_timestamp_ms = now;
    if (!member_id_.empty()) return coordinator_->commit(member_id_, stamped);
    auto coord = broker_->group_coordinator(config_.group_id);
    if (!coord) return fail(std::move(coord).error());
    return (*coord)->commit_unmanaged(stamped);
  }

  // Commits now and reports through `callback` on the consumer's thread during a later
  // poll(), commit() or close(), as Kafka's commitAsync does.
  void commit_async(
      std::function<void(const std::map<TopicPartition, OffsetAndMetadata>&, const Result<void>&)>
          callback = {}) {
    auto offsets = current_positions();
    auto result = commit(offsets);
    if (callback) pending_callbacks_.push_back([=] { callback(offsets, result); });
  }

  // The group's committed offset for `tp`, or nullopt. kInvalidArgument without a group id.
  Result<std::optional<OffsetAndMetadata>> committed(const TopicPartition& tp) const {
    if (config_.group_id.empty())
      return fail(ErrorCode::kInvalidArgument, "committed() needs a group_id");
    auto store = broker_->offset_store();
    if (!store) return fail(std::move(store).error());
    return (*store)->committed(config_.group_id, tp);
  }

  // The offset of the next record poll() returns from `tp`. kInvalidArgument if not assigned.
  Result<std::int64_t> position(const TopicPartition& tp) {
    auto it = owned_.find(tp);
    if (it == owned_.end()) return not_assigned(tp);
    RILL_TRY(init_position(tp, it->second));
    return it->second.position;
  }

  // Moves the position of an assigned partition. kInvalidArgument if not assigned;
  // kOutOfRange outside [start, end] of the partition.
  Result<void> seek(const TopicPartition& tp, std::int64_t offset) {
    auto it = owned_.find(tp);
    if (it == owned_.end()) return not_assigned(tp);
    const storage::Log& log = *it->second.log;
    if (offset < log.start_offset() || offset > log.end_offset()) {
      return fail(ErrorCode::kOutOfRange, tp.topic + "-" + std::to_string(tp.partition) +
                                              ": offset " + std::to_string(offset) +
                                              " is outside [" + std::to_string(log.start_offset()) +
                                              ", " + std::to_string(log.end_offset()) + "]");
    }
    it->second.position = offset;
    return {};
  }

  Result<void> seek_to_beginning(const std::vector<TopicPartition>& tps) {
    for (const auto& tp : tps) {
      auto it = owned_.find(tp);
      if (it == owned_.end()) return not_assigned(tp);
      it->second.position = it->second.log->start_offset();
    }
    return {};
  }

  Result<void> seek_to_end(const std::vector<TopicPartition>& tps) {
    for (const auto& tp : tps) {
      auto it = owned_.find(tp);
      if (it == owned_.end()) return not_assigned(tp);
      it->second.position = it->second.log->end_offset();
    }
    return {};
  }

  // For each partition, the first offset whose timestamp is >= the given one, or nullopt when
  // there is none (Kafka's offsetsForTimes). Any partition of an existing topic may be asked.
  Result<std::map<TopicPartition, std::optional<std::int64_t>>> offsets_for_times(
      const std::map<TopicPartition, std::int64_t>& timestamps) {
    std::map<TopicPartition, std::optional<std::int64_t>> out;
    for (const auto& [tp, ts] : timestamps) {
      RILL_TRY(open_topics({tp.topic}));
      const storage::Log* log = topics_.at(tp.topic).log(tp.partition);
      if (log == nullptr) return topics_.at(tp.topic).partition_out_of_range(tp.partition);
      out[tp] = log->offset_for_time(ts);
    }
    return out;
  }

  // Stops (and restarts) fetching from assigned partitions without giving them up.
  Result<void> pause(const std::vector<TopicPartition>& tps) { return set_paused(tps, true); }
  Result<void> resume(const std::vector<TopicPartition>& tps) { return set_paused(tps, false); }
  std::set<TopicPartition> paused() const {
    std::set<TopicPartition> out;
    for (const auto& [tp, st] : owned_) {
      if (st.paused) out.insert(tp);
    }
    return out;
  }

  // The partitions assigned to this consumer now.
  std::vector<TopicPartition> assignment() const {
    std::set<TopicPartition> all(unopened_);
    for (const auto& [tp, unused] : owned_) all.insert(tp);
    return {all.begin(), all.end()};
  }

  const std::string& member_id() const noexcept { return member_id_; }

  // Leaves the group (on_revoked; a final commit when auto-commit is on) and releases
  // everything. Idempotent; later calls fail with kClosed.
  Result<void> close() {
    if (closed_) return {};
    Result<void> result;
    // A consumer with assigned partitions and a group id auto-commits on close too, as Kafka's
    // does; leave_group() covers members only (tests/consumer_test.cpp, "close commits
    // positions when auto-commit is on").
    if (member_id_.empty() && config_.enable_auto_commit && !config_.group_id.empty() &&
        !current_positions().empty()) {
      result = commit();
    }
    auto left = unsubscribe();
    if (result) result = std::move(left);
    run_pending_callbacks();
    closed_ = true;
    return result;
  }

 private:
  struct PartitionState {
    storage::Log* log = nullptr;
    const std::string* topic = nullptr;  // the name, owned by the topic's state in topics_
    std::int64_t position = -1;          // -1: not yet initialised
    bool paused = false;
    // Reused by every fetch of this partition: a read that continues where the last one ended
    // resumes in its segment (no index lookup, no segment-table lock) and allocates nothing.
    storage::RecordBatch batch;
  };

  // Busy polling: returns once an unpaused partition has a record at its position (or has no
  // position yet), wakeup() was called, or `until` passed.
  void spin_until_ready(std::chrono::steady_clock::time_point until) const {
    for (;;) {
      for (const auto& [tp, st] : owned_) {
        if (!st.paused && (st.position < 0 || st.log->end_offset() > st.position)) return;
      }
      // acquire: pairs with the release store in wakeup().
      if (wakeup_.load(std::memory_order_acquire)) return;
      if (std::chrono::steady_clock::now() >= until) return;
      detail::cpu_relax();
    }
  }

  std::chrono::nanoseconds heartbeat_every() const noexcept {
    const std::int64_t ms = std::clamp<std::int64_t>(config_.session_timeout_ms / 3, 1, 1000);
    return std::chrono::milliseconds(ms);
  }

  // close() ends the consumer for good, as Kafka's does: a closed consumer that could
  // subscribe again joined its group with no close() left to leave it (its destructor's close
  // returns at once), and the group kept a pointer to its bell past its destruction.
  Result<void> check_open() const {
    if (closed_) return fail(ErrorCode::kClosed, "consumer is closed");
    return {};
  }

  Unexpected not_assigned(const TopicPartition& tp) const {
    return fail(ErrorCode::kInvalidArgument, tp.topic + "-" + std::to_string(tp.partition) +
                                                 " is not assigned to this consumer");
  }

  Result<void> open_topics(const std::vector<std::string>& names) {
    refresh_deleted_topics();
    for (const auto& name : names) {
      if (topics_.count(name) != 0) continue;
      auto t = Topic<K, V>::open(*broker_, name);
      if (!t) return fail(std::move(t).error());
      topics_.emplace(name, std::move(*t));
    }
    return {};
  }

  // Topics deleted since this consumer opened them (Broker::delete_topic), perhaps created
  // again under the same name. Their partitions move to the topic now under the name, from
  // its committed offset or as auto_offset_reset says (deleting the topic forgot the
  // group's offsets), as Kafka's consumer, which fetches by name, moves on to a re-created
  // topic; a partition the name no longer has waits for the group's next rebalance (or,
  // assigned by hand, until the name has it again). Without this a member kept reading the
  // deleted topic's closed logs forever, and one granted a partition the old handle did not
  // have dereferenced a null log (tests/group_test.cpp, "a topic deleted and created again
  // under a live group"). Cost per poll: one atomic load per topic.
  void refresh_deleted_topics() {
    std::vector<std::string> names;
    for (const auto& [name, topic] : topics_) {
      if (topic.deleted()) names.push_back(name);
    }
    for (const auto& name : names) {
      std::vector<TopicPartition> moving;
      for (const auto& [tp, unused] : owned_) {
        if (tp.topic == name) moving.push_back(tp);
      }
      for (const auto& tp : moving) release(tp);  // before the old handle goes: it owns the log
      // Kept, not dropped: records of earlier polls view its name (ConsumerRecord::topic).
      retired_topics_.push_back(std::move(topics_.at(name)));
      topics_.erase(name);
      if (auto t = Topic<K, V>::open(*broker_, name)) topics_.emplace(name, std::move(*t));
      for (const auto& tp : moving) unopened_.insert(tp);
    }
    // Partitions granted (or assigned) whose topic or partition could not be opened: again.
    std::set<TopicPartition> retry;
    retry.swap(unopened_);
    for (const auto& tp : retry) take(tp);
  }

  // Starts consuming `tp`, or remembers it in unopened_ (for the next poll) when its topic or
  // partition cannot be opened now: a partition granted while its topic is being deleted.
  void take(const TopicPartition& tp) {
    auto t = topics_.find(tp.topic);
    if (t == topics_.end() || t->second.deleted()) {
      if (t != topics_.end()) return (void)unopened_.insert(tp);  // refresh_deleted_topics' job
      auto opened = Topic<K, V>::open(*broker_, tp.topic);
      if (!opened) return (void)unopened_.insert(tp);
      t = topics_.emplace(tp.topic, std::move(*opened)).first;
    }
    storage::Log* log = t->second.log(tp.partition);
    if (log == nullptr) return (void)unopened_.insert(tp);
    PartitionState st;
    st.log = log;
    st.topic = &t->second.name();
    st.log->add_notifier(&bell_);
    owned_[tp] = std::move(st);
  }

  void release(const TopicPartition& tp) {
    unopened_.erase(tp);
    auto it = owned_.find(tp);
    if (it == owned_.end()) return;
    it->second.log->remove_notifier(&bell_);
    owned_.erase(it);
  }

  void drop_manual_assignment() {
    while (!owned_.empty()) release(owned_.begin()->first);
    unopened_.clear();
  }

  std::map<TopicPartition, OffsetAndMetadata> current_positions() const {
    std::map<TopicPartition, OffsetAndMetadata> out;
    for (const auto& [tp, st] : owned_) {
      if (st.position >= 0) out[tp] = {st.position, {}, 0};
    }
    return out;
  }

  Result<void> init_position(const TopicPartition& tp, PartitionState& st) {
    if (st.position >= 0) return {};
    const storage::Log& log = *st.log;
    if (!config_.group_id.empty()) {
      auto store = broker_->offset_store();
      if (!store) return fail(std::move(store).error());
      if (auto c = (*store)->committed(config_.group_id, tp)) {
        if (c->offset >= log.start_offset() && c->offset <= log.end_offset()) {
          st.position = c->offset;
          return {};
        }
      }
    }
    return reset_position(tp, st);
  }

  Result<void> reset_position(const TopicPartition& tp, PartitionState& st) {
    switch (config_.auto_offset_reset) {
      case OffsetReset::kEarliest:
        st.position = st.log->start_offset();
        return {};
      case OffsetReset::kLatest:
        st.position = st.log->end_offset();
        return {};
      case OffsetReset::kNone:
        break;
    }
    return fail(ErrorCode::kOutOfRange, tp.topic + "-" + std::to_string(tp.partition) +
                                            ": no valid committed offset and auto_offset_reset "
                                            "is none");
  }

  // Runs the group protocol: lost partitions, revocations, new grants.
  Result<void> sync_group() {
    if (member_id_.empty()) return {};
    auto hb = coordinator_->heartbeat(member_id_, true);
    if (hb.lost) {
      std::vector<TopicPartition> lost = assignment();
      for (const auto& tp : lost) release(tp);
      if (callbacks_.on_lost && !lost.empty()) callbacks_.on_lost(lost);
      // Rejoin, as Kafka's consumer does after it was kicked out.
      group::MemberConfig mc{subscription_,
                             config_.assignment_strategy,
                             config_.session_timeout_ms,
                             config_.max_poll_interval_ms,
                             &bell_,
                             config_.client_id};
      auto id = coordinator_->join(mc);
      if (!id) return fail(std::move(id).error());
      member_id_ = *id;
      hb = coordinator_->heartbeat(member_id_, true);
    }
    if (!hb.revoke.empty()) {
      if (config_.enable_auto_commit) {
        std::map<TopicPartition, OffsetAndMetadata> offsets;
        for (const auto& tp : hb.revoke) {
          auto it = owned_.find(tp);
          if (it != owned_.end() && it->second.position >= 0)
            offsets[tp] = {it->second.position, {}, 0};
        }
        // Kafka's consumer logs a failed commit here and gives the partitions up all the
        // same: their next owner may then read again what was delivered since the last
        // commit. Said through the broker's log sink rather than dropped.
        if (!offsets.empty()) {
          if (auto r = commit(offsets); !r) {
            broker_->log_event({LogEvent::Kind::kCommitFailed,
                                {},
                                -1,
                                0,
                                "group '" + config_.group_id + "': member " + member_id_ +
                                    ": the commit before giving up partitions failed (" +
                                    r.error().to_string() +
                                    "); their next owner may read some records again"});
          }
        }
      }
      if (callbacks_.on_revoked) callbacks_.on_revoked(hb.revoke);
      for (const auto& tp : hb.revoke) release(tp);
      coordinator_->ack_revoked(member_id_, hb.revoke);
    }
    auto granted = coordinator_->claim(member_id_);
    if (!granted.empty()) {
      for (const auto& tp : granted) take(tp);
      if (callbacks_.on_assigned) callbacks_.on_assigned(granted);
    }
    return {};
  }

  Result<void> leave_group() {
    Result<void> result;
    std::vector<TopicPartition> held = assignment();
    // A member the group has already removed (it missed its timeouts) has lost what it holds:
    // others own it now and its commits are refused. Say so with on_lost, as Kafka's consumer
    // does when it leaves with a lost generation, rather than run on_revoked (whose commits
    // fail) and fail close() with kFenced (tests/group_test.cpp, "closing a member the group
    // removed reports on_lost and commits nothing").
    if (coordinator_->heartbeat(member_id_, false).lost) {
      if (callbacks_.on_lost && !held.empty()) callbacks_.on_lost(held);
    } else {
      if (config_.enable_auto_commit && !held.empty()) result = commit();
      if (callbacks_.on_revoked && !held.empty()) callbacks_.on_revoked(held);
    }
    for (const auto& tp : held) release(tp);
    coordinator_->leave(member_id_);
    member_id_.clear();
    subscription_.clear();
    coordinator_.reset();
    return result;
  }

  Result<void> maybe_auto_commit() {
    run_pending_callbacks();
    if (!config_.enable_auto_commit || config_.group_id.empty() || owned_.empty()) return {};
    const std::int64_t now = broker_->clock().now_ms();
    if (now - last_auto_commit_ms_ < config_.auto_commit_interval_ms) return {};
    last_auto_commit_ms_ = now;
    auto r = commit();
    // A fenced auto-commit is not an error of poll(): the next heartbeat reports the loss.
    if (!r && r.error().code() != ErrorCode::kFenced) return r;
    return {};
  }

  void run_pending_callbacks() {
    auto pending = std::move(pending_callbacks_);
    pending_callbacks_.clear();
    for (auto& cb : pending) cb();
  }

  // Reads from the assigned partitions into `out`. `moved`: set when a position moved past a
  // compacted gap without records (poll then fetches again rather than wait for an append).
  Result<void> fetch(ConsumerRecords<K, V>& out, bool& moved) {
    if (owned_.empty()) return {};
    const std::size_t max = config_.max_poll_records;
    // One allocation for the poll's records (bounded: max_poll_records may be huge).
    out.records_.reserve(std::min<std::size_t>(max, 4096));
    const std::size_t n = owned_.size();
    auto it = owned_.begin();
    std::advance(it, next_partition_++ % n);  // fairness across polls
    for (std::size_t i = 0; i < n && out.records_.size() < max; ++i, ++it) {
      if (it == owned_.end()) it = owned_.begin();
      const TopicPartition& tp = it->first;
      PartitionState& st = it->second;
      if (st.paused) continue;
      // An error here must not drop the records already taken from other partitions this
      // poll: their positions have moved past them. Return those (the error recurs at this
      // partition's unchanged position on a later poll), as Kafka returns what it fetched
      // before raising a record's error (tests/consumer_test.cpp, "an unusable partition fails
      // poll without losing records fetched from the others").
      auto init = init_position(tp, st);
      if (!init) return out.empty() ? fail(std::move(init).error()) : Result<void>();
      storage::RecordBatch& batch = st.batch;
      auto r = st.log->read_into(st.position, batch, max - out.records_.size());
      if (!r && r.error().code() == ErrorCode::kOutOfRange) {
        // retention passed us by: as auto.offset.reset says
        auto reset = reset_position(tp, st);
        if (!reset) return out.empty() ? fail(std::move(reset).error()) : Result<void>();
        r = st.log->read_into(st.position, batch, max - out.records_.size());
      }
      if (!r) return out.empty() ? fail(std::move(r).error()) : Result<void>();
      if (batch.empty()) {
        // Compaction may have dropped every record from here to a segment's end: move past
        // the gap (next_offset() is the requested offset when there was simply nothing new).
        moved = moved || batch.next_offset() > st.position;
        st.position = batch.next_offset();
        note_if_caught_up(st);
        continue;
      }
      const std::string_view topic = *st.topic;
      for (const auto& raw : batch) {
        auto rec = decode_record_into<K, V>(raw, topic, tp.partition, out.records_);
        if (!rec) [[unlikely]] {
          // Keep the records before it (their views need the segment) and stop the partition
          // at the bad record, so it is neither skipped nor are those delivered twice
          // (tests/consumer_test.cpp, "a record that does not decode stops its partition
          // there; the others' records arrive").
          st.position = raw.offset();
          if (out.empty()) return fail(std::move(rec).error());
          out.pins_.push_back(batch.pin());
          return {};
        }
      }
      st.position = batch.next_offset();
      note_if_caught_up(st);
      out.pins_.push_back(batch.pin());
    }
    return {};
  }

  // A consumer at its partition's end waits for the next record (asleep or spinning): the
  // log's appenders then fault in their own pages rather than have the background thread do
  // it in bursts that would delay this thread (storage::LogConfig::prefault_bytes). Cost: a
  // load of the end offset, and two of flags.
  static void note_if_caught_up(const PartitionState& st) noexcept {
    if (st.position >= st.log->end_offset()) st.log->note_reader_waiting();
  }

  Result<void> set_paused(const std::vector<TopicPartition>& tps, bool paused) {
    for (const auto& tp : tps) {
      auto it = owned_.find(tp);
      if (it == owned_.end()) return not_assigned(tp);
      it->second.paused = paused;
    }
    return {};
  }

  Broker* broker_;
  ConsumerConfig config_;
  RebalanceCallbacks callbacks_;
  std::map<std::string, Topic<K, V>> topics_;
  std::map<TopicPartition, PartitionState> owned_;
  std::set<TopicPartition> unopened_;        // ours, but their topic or partition is not open yet
  std::vector<Topic<K, V>> retired_topics_;  // deleted topics' handles (refresh_deleted_topics)
  std::vector<std::string> subscription_;
  std::shared_ptr<group::GroupCoordinator> coordinator_;
  std::string member_id_;
  storage::Notifier bell_;
  std::atomic<bool> wakeup_{false};
  std::int64_t last_auto_commit_ms_;
  std::size_t next_partition_ = 0;
  std::vector<std::function<void()>> pending_callbacks_;
  bool closed_ = false;
};

}  // namespace rill
