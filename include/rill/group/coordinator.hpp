// rill/group/coordinator.hpp: the in-process coordinator of one consumer group.
//
// Members join with their subscriptions; every change of membership, subscription or partition
// count starts a new generation with a new target assignment (group/assignor.hpp). Ownership
// moves safely: a partition is handed to its new member only once its old owner has released
// it (after its on-revoked callback, where it may commit) or has been removed. So within a
// group each partition has at most one owner at any moment, and a clean rebalance delivers
// nothing twice.
//
// Eager strategies (range, round-robin) make every member release everything at each new
// generation, as Kafka's eager protocol does; cooperative-sticky releases only the partitions
// that move (KIP-429).
//
// Liveness, on the broker's clock: a member that has not polled within its max poll interval,
// or made no call at all within its session timeout, is removed when any member of the group
// next calls in (or describe() is called). Its partitions go to the others; it learns on its
// next call that it lost them, and its commits are refused (kFenced).
//
// Thread-safety: thread-safe; one mutex per group.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "rill/clock.hpp"
#include "rill/group/assignor.hpp"
#include "rill/group/offset_store.hpp"
#include "rill/result.hpp"
#include "rill/storage/notifier.hpp"

namespace rill::group {

// Partitions of a topic now, or 0 when it does not exist.
using PartitionCounter = std::function<std::int32_t(const std::string& topic)>;

struct MemberConfig {
  std::vector<std::string> topics;
  AssignmentStrategy strategy = AssignmentStrategy::kRange;
  std::int64_t session_timeout_ms = 45'000;
  std::int64_t max_poll_interval_ms = 300'000;
  storage::Notifier* bell = nullptr;  // rung when the member has something to do
  std::string client_id{};
};

// What a member must do now.
struct Heartbeat {
  bool lost = false;                   // removed from the group: everything it held is lost
  std::vector<TopicPartition> revoke;  // release these (on-revoked), then ack_revoked()
  std::int32_t generation = 0;
};

struct MemberDescription {
  std::string member_id;
  std::string client_id;
  std::vector<std::string> topics;
  std::vector<TopicPartition> assignment;  // what it owns now
  std::int64_t last_poll_ms = 0;           // wall clock (Clock::now_ms) of its last poll
};

struct GroupDescription {
  std::string group_id;
  std::string state;  // "Empty", "Stable" or "PreparingRebalance" (partitions still moving)
  std::int32_t generation = 0;
  std::string strategy;
  std::vector<MemberDescription> members;
};

class GroupCoordinator {
 public:
  GroupCoordinator(std::string group_id, std::shared_ptr<Clock> clock, PartitionCounter counter,
                   OffsetStore* store)
      : group_id_(std::move(group_id)),
        clock_(std::move(clock)),
        counter_(std::move(counter)),
        store_(store) {}

  const std::string& group_id() const noexcept { return group_id_; }

  // Called with a line of text after each rebalance (a new generation), outside the group's
  // lock, on the thread whose call caused it. Set it before the coordinator is shared.
  void set_rebalance_listener(std::function<void(const std::string&)> listener) {
    on_rebalance_ = std::move(listener);
  }

  // Adds a member; returns its id. Starts a new generation. Errors: kInvalidArgument when
  // the member's strategy differs from the group's (Kafka's INCONSISTENT_GROUP_PROTOCOL).
  Result<std::string> join(const MemberConfig& config) {
    ReportingLock lock(*this);
    expire_locked();
    if (!members_.empty() && config.strategy != strategy_) {
      return fail(ErrorCode::kInvalidArgument,
                  "group '" + group_id_ + "' uses the " + std::string(to_string(strategy_)) +
                      " strategy; a member asked for " + std::string(to_string(config.strategy)));
    }
    strategy_ = config.strategy;
    const std::string id = (config.client_id.empty() ? std::string("consumer") : config.client_id) +
                           "-" + group_id_ + "-" + std::to_string(++member_seq_);
    Member m;
    m.config = config;
    m.last_heartbeat_ms = m.last_poll_ms = clock_->elapsed_ms();
    m.last_poll_wall_ms = clock_->now_ms();
    members_.emplace(id, std::move(m));
    rebalance_locked();
    return id;
  }

  // Removes a member that leaves cleanly; what it owned is released. Starts a new generation.
  void leave(const std::string& member) {
    ReportingLock lock(*this);
    auto it = members_.find(member);
    if (it == members_.end()) {
      removed_.erase(member);
      return;
    }
    release_all_locked(it->second, member);
    members_.erase(it);
    rebalance_locked();
  }

  // Changes a member's subscription. Starts a new generation.
  Result<void> subscribe(const std::string& member, std::vector<std::string> topics) {
    ReportingLock lock(*this);
    auto it = members_.find(member);
    if (it == members_.end()) return fenced(member);
    it->second.config.topics = std::move(topics);
    rebalance_locked();
    return {};
  }

  // A member checks in: `polled` from poll(), false from other calls. Removes expired members
  // first, and tells this one what to release.
  Heartbeat heartbeat(const std::string& member, bool polled) {
    ReportingLock lock(*this);
    const std::int64_t now = clock_->elapsed_ms();
    Heartbeat hb;
    // The caller is alive, so it is refreshed before anyone is judged...
    auto it = members_.find(member);
    if (it != members_.end()) {
      it->second.last_heartbeat_ms = now;
      if (polled) {
        it->second.last_poll_ms = now;
        it->second.last_poll_wall_ms = clock_->now_ms();
      }
    }
    expire_locked();
    check_partition_counts_locked();
    it = members_.find(member);
    if (it == members_.end()) {
      hb.lost = true;
      removed_.erase(member);
      return hb;
    }
    Member& m = it->second;
    hb.generation = generation_;
    const auto& target = target_[member];
    if (m.generation != generation_ && strategy_ != AssignmentStrategy::kCooperativeSticky) {
      hb.revoke.assign(m.owned.begin(), m.owned.end());  // eager: release everything
    } else {
      for (const auto& tp : m.owned) {
        if (std::find(target.begin(), target.end(), tp) == target.end()) hb.revoke.push_back(tp);
      }
    }
    m.generation = generation_;
    return hb;
  }

  // The member has released `partitions` (after its on-revoked callback).
  void ack_revoked(const std::string& member, const std::vector<TopicPartition>& partitions) {
    ReportingLock lock(*this);
    auto it = members_.find(member);
    if (it == members_.end()) return;
    for (const auto& tp : partitions) {
      if (it->second.owned.erase(tp) != 0) owner_.erase(tp);
    }
    ring_all_locked();  // others may be waiting for these partitions
  }

  // Grants the member the partitions of its target that no other member owns; returns the
  // newly granted ones (on-assigned).
  std::vector<TopicPartition> claim(const std::string& member) {
    ReportingLock lock(*this);
    std::vector<TopicPartition> granted;
    auto it = members_.find(member);
    if (it == members_.end()) return granted;
    Member& m = it->second;
    if (m.generation != generation_) return granted;  // must heartbeat (and revoke) first
    for (const auto& tp : target_[member]) {
      auto o = owner_.find(tp);
      if (o == owner_.end()) {
        owner_.emplace(tp, member);
        m.owned.insert(tp);
        granted.push_back(tp);
      }
    }
    return granted;
  }

  // Commits offsets on behalf of a member. Errors: kFenced when the member is no longer in
  // the group (removed after a timeout: its partitions belong to others now) or does not own
  // a partition it commits; the store's errors.
  Result<void> commit(const std::string& member,
                      const std::map<TopicPartition, OffsetAndMetadata>& offsets) {
    ReportingLock lock(*this);
    auto it = members_.find(member);
    if (it == members_.end()) return fenced(member);
    // A commit is a call of the member: it counts for session_timeout_ms ("no call at all"),
    // so a member that commits as it works through a long batch keeps its session (not its
    // max_poll_interval_ms, which only poll() restarts).
    it->second.last_heartbeat_ms = std::max(it->second.last_heartbeat_ms, clock_->elapsed_ms());
    for (const auto& [tp, unused] : offsets) {
      if (it->second.owned.count(tp) == 0) {
        return fail(ErrorCode::kFenced, "member " + member + " of group '" + group_id_ +
                                            "' does not own " + tp.topic + "-" +
                                            std::to_string(tp.partition) + " in generation " +
                                            std::to_string(generation_));
      }
    }
    return store_->commit(group_id_, offsets);
  }

  // Commits for a consumer outside the group's membership (assign() with the group's id). As
  // in Kafka, only while the group has no members: kFenced otherwise, so a stray standalone
  // consumer cannot overwrite the offsets of a group that is consuming.
  // kNotFound for a partition that does not exist (Kafka's UNKNOWN_TOPIC_OR_PARTITION).
  Result<void> commit_unmanaged(const std::map<TopicPartition, OffsetAndMetadata>& offsets) {
    ReportingLock lock(*this);
    expire_locked();
    if (!members_.empty()) {
      return fail(ErrorCode::kFenced, "group '" + group_id_ + "' has " +
                                          std::to_string(members_.size()) +
                                          " active member(s); a consumer outside the group "
                                          "cannot commit its offsets");
    }
    for (const auto& [tp, unused] : offsets) {
      if (tp.partition < 0 || tp.partition >= counter_(tp.topic)) {
        return fail(ErrorCode::kNotFound, "cannot commit for " + tp.topic + "-" +
                                              std::to_string(tp.partition) +
                                              ": no such topic or partition");
      }
    }
    return store_->commit(group_id_, offsets);
  }

  // Runs `fn` (a change to the group's committed offsets) only while the group has no
  // members, with the group locked throughout, so that no member joins between the check
  // and the change (and starts from offsets about to be replaced). kInvalidArgument, naming
  // `what`, when the group has members; otherwise what `fn` returns.
  Result<void> while_inactive(const char* what, const std::function<Result<void>()>& fn) {
    ReportingLock lock(*this);
    expire_locked();
    if (!members_.empty()) {
      return fail(ErrorCode::kInvalidArgument, std::string("cannot ") + what + " group '" +
                                                   group_id_ + "' while it has active members");
    }
    return fn();
  }

  // Removes the members whose session timeout or max poll interval has passed on the clock,
  // as every other call does first, and returns how many. Broker::run_due() calls it so that
  // moving a ManualClock fires group timeouts at once, not at the next call of a member. The
  // rebalance this causes is reported to the listener on return, as for every other call.
  std::size_t expire() {
    ReportingLock lock(*this);
    return expire_locked();
  }

  bool has_members() {
    ReportingLock lock(*this);
    expire_locked();
    return !members_.empty();
  }

  GroupDescription describe() {
    ReportingLock lock(*this);
    expire_locked();
    GroupDescription d;
    d.group_id = group_id_;
    d.generation = generation_;
    d.strategy = std::string(to_string(strategy_));
    bool moving = false;
    for (const auto& [id, m] : members_) {
      MemberDescription md{id,
                           m.config.client_id,
                           m.config.topics,
                           {m.owned.begin(), m.owned.end()},
                           m.last_poll_wall_ms};
      const auto& target = target_[id];
      moving = moving || md.assignment != target;
      d.members.push_back(std::move(md));
    }
    d.state = members_.empty() ? "Empty" : moving ? "PreparingRebalance" : "Stable";
    return d;
  }

 private:
  // Holds mu_; when released, reports the rebalances queued meanwhile to the listener,
  // outside the lock, so that the listener may call back into the group.
  class ReportingLock {
   public:
    explicit ReportingLock(GroupCoordinator& c) : c_(c), lock_(c.mu_) {}
    ReportingLock(const ReportingLock&) = delete;
    ReportingLock& operator=(const ReportingLock&) = delete;
    ~ReportingLock() {
      std::vector<std::string> events;
      events.swap(c_.pending_events_);
      lock_.unlock();
      for (const auto& e : events) c_.on_rebalance_(e);
    }

   private:
    GroupCoordinator& c_;
    std::unique_lock<std::mutex> lock_;
  };

  struct Member {
    MemberConfig config;
    std::set<TopicPartition> owned;
    std::int32_t generation = -1;
    std::int64_t last_heartbeat_ms = 0;  // Clock::elapsed_ms()
    std::int64_t last_poll_ms = 0;       // Clock::elapsed_ms()
    std::int64_t last_poll_wall_ms = 0;  // Clock::now_ms(), for describe()
  };

  Unexpected fenced(const std::string& member) const {
    return fail(ErrorCode::kFenced, "member " + member + " is no longer in group '" + group_id_ +
                                        "' (generation " + std::to_string(generation_) +
                                        "): its partitions were reassigned");
  }

  void release_all_locked(Member& m, const std::string& id) {
    for (const auto& tp : m.owned) {
      auto o = owner_.find(tp);
      if (o != owner_.end() && o->second == id) owner_.erase(o);
    }
    m.owned.clear();
  }

  std::size_t expire_locked() {
    const std::int64_t now = clock_->elapsed_ms();  // timeouts: never on a wall clock that jumps
    std::size_t removed = 0;
    for (auto it = members_.begin(); it != members_.end();) {
      const Member& m = it->second;
      const bool dead = now - m.last_heartbeat_ms > m.config.session_timeout_ms ||
                        now - m.last_poll_ms > m.config.max_poll_interval_ms;
      if (dead) {
        release_all_locked(it->second, it->first);
        removed_.insert(it->first);
        it = members_.erase(it);
        ++removed;
      } else {
        ++it;
      }
    }
    if (removed != 0) rebalance_locked();
    return removed;
  }

  void check_partition_counts_locked() {
    for (auto& [topic, count] : counts_) {
      if (counter_(topic) != count) {
        rebalance_locked();
        return;
      }
    }
  }

  void rebalance_locked() {
    ++generation_;
    if (on_rebalance_) {
      pending_events_.push_back("group '" + group_id_ + "' rebalanced: generation " +
                                std::to_string(generation_) + ", " +
                                std::to_string(members_.size()) + " member(s)");
    }
    counts_.clear();
    std::vector<MemberSubscription> subs;
    for (const auto& [id, m] : members_) {
      subs.push_back({id, m.config.topics, {m.owned.begin(), m.owned.end()}});
      for (const auto& t : m.config.topics) {
        if (counts_.count(t) == 0) counts_[t] = counter_(t);
      }
    }
    std::map<std::string, std::int32_t> partitions;
    for (const auto& [t, n] : counts_) {
      if (n > 0) partitions[t] = n;
    }
    target_ = assign(strategy_, partitions, subs);
    ring_all_locked();
  }

  void ring_all_locked() {
    for (auto& [id, m] : members_) {
      if (m.config.bell != nullptr) m.config.bell->notify();
    }
  }

  const std::string group_id_;
  std::shared_ptr<Clock> clock_;
  PartitionCounter counter_;
  OffsetStore* store_;

  std::function<void(const std::string&)> on_rebalance_;  // set before sharing, then read-only

  std::mutex mu_;
  std::vector<std::string> pending_events_;  // rebalances to report, guarded by mu_
  AssignmentStrategy strategy_ = AssignmentStrategy::kRange;
  std::int32_t generation_ = 0;
  std::uint64_t member_seq_ = 0;
  std::map<std::string, Member> members_;
  std::set<std::string> removed_;  // expired, not yet told
  Assignment target_;              // of the current generation
  std::map<TopicPartition, std::string> owner_;
  std::map<std::string, std::int32_t> counts_;  // partition counts the target was made for
};

}  // namespace rill::group
