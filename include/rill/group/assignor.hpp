// rill/group/assignor.hpp: which member of a consumer group reads which partition.
//
// When a group rebalances, its coordinator gathers every member's subscription (and, for the
// sticky strategy, the partitions each member owns now) and calls one of these strategies to
// divide the partitions of the subscribed topics among the members. They are Kafka's three
// client-side strategies, with Kafka's names and the semantics of its Java client, so a group
// behaves as it would with `partition.assignment.strategy` set to the same assignor:
//
//   range               RangeAssignor: per topic, each member gets one contiguous range; members
//                       subscribed to co-partitioned topics get the same partition numbers.
//   roundrobin          RoundRobinAssignor: all partitions dealt out to the members in turn.
//   cooperative-sticky  CooperativeStickyAssignor (KIP-54 sticky, KIP-341, KIP-429): balanced,
//                       moves as few owned partitions as balance allows, and rebalances
//                       incrementally: see cooperative_first_round below.
//
// Members and topics are ordered by name (byte-wise std::string order, as Java's String
// ordering for ASCII ids): "c10" sorts before "c2". Topics that no member subscribes to, that are
// missing from `partitions_per_topic` or that have no partitions (a count <= 0) are ignored.
// Every input member appears in the result, possibly with an empty list, and each list is
// sorted by (topic, partition). Zero members give an empty Assignment.
//
// REQUIRES (all functions): member ids are unique (checked by RILL_ASSERT).
//
// Thread-safety: every function here is pure: it reads only its arguments, allocates its result
// and keeps no state, so it is safe to call from any thread; the same input always gives the same
// output, whatever the order of `members` or of their `topics` and `owned` lists.
#pragma once

#include <algorithm>
#include <compare>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <iterator>
#include <limits>
#include <map>
#include <queue>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "rill/result.hpp"  // RILL_ASSERT

namespace rill::group {

// A partition of a topic. Ordered by topic name, then partition number.
struct TopicPartition {
  std::string topic;
  std::int32_t partition = 0;

  friend bool operator==(const TopicPartition&, const TopicPartition&) = default;
  friend auto operator<=>(const TopicPartition&, const TopicPartition&) = default;
};

// "orders-3", as Kafka's TopicPartition.toString().
inline std::string to_string(const TopicPartition& tp) {
  return tp.topic + "-" + std::to_string(tp.partition);
}

// What one member asks for.
struct MemberSubscription {
  std::string member_id;
  std::vector<std::string> topics;    // subscribed topics; duplicates are ignored
  std::vector<TopicPartition> owned;  // partitions it owns now (read by the sticky assignor and
                                      // the cooperative helpers; range and round-robin ignore it)
};

// Member id -> its partitions, each list sorted by (topic, partition). Every member is present.
using Assignment = std::map<std::string, std::vector<TopicPartition>>;

enum class AssignmentStrategy {
  kRange,
  kRoundRobin,
  kCooperativeSticky,
};

// Kafka's protocol names for the strategies: "range", "roundrobin", "cooperative-sticky".
constexpr std::string_view to_string(AssignmentStrategy strategy) noexcept {
  switch (strategy) {
    case AssignmentStrategy::kRange:
      return "range";
    case AssignmentStrategy::kRoundRobin:
      return "roundrobin";
    case AssignmentStrategy::kCooperativeSticky:
      return "cooperative-sticky";
  }
  return "unknown";
}

namespace detail {

// The group as the assignors see it: members in id order, live topics (>= 1 partition) in name
// order, and who subscribes to what, all by index.
struct GroupView {
  std::vector<const MemberSubscription*> members;     // sorted by member_id
  std::vector<const std::string*> topic_names;        // points into partitions_per_topic's keys
  std::vector<std::int32_t> partition_counts;         // per topic, > 0
  std::vector<std::vector<std::size_t>> subscribers;  // per topic: member indexes, ascending
  std::vector<std::vector<std::size_t>> topics_of;    // per member: topic indexes, ascending

  bool subscribes(std::size_t member, std::size_t topic) const {
    const auto& t = topics_of[member];
    return std::binary_search(t.begin(), t.end(), topic);
  }
  // The index of a live topic, or npos.
  std::size_t topic_index(const std::map<std::string_view, std::size_t>& index,
                          std::string_view name) const {
    const auto it = index.find(name);
    return it == index.end() ? kNpos : it->second;
  }
  static constexpr std::size_t kNpos = std::numeric_limits<std::size_t>::max();
};

// Cost: O(M log M + S log S + T) for M members, S subscription entries, T topics.
inline GroupView view_of(const std::map<std::string, std::int32_t>& partitions_per_topic,
                         const std::vector<MemberSubscription>& members,
                         std::map<std::string_view, std::size_t>* topic_index_out = nullptr) {
  GroupView g;
  g.members.reserve(members.size());
  for (const auto& m : members) g.members.push_back(&m);
  std::sort(g.members.begin(), g.members.end(),
            [](const MemberSubscription* a, const MemberSubscription* b) {
              return a->member_id < b->member_id;
            });
  for (std::size_t i = 1; i < g.members.size(); ++i) {
    RILL_ASSERT(g.members[i - 1]->member_id != g.members[i]->member_id,
                "member ids in a group must be unique");
  }

  std::map<std::string_view, std::size_t> index;
  for (const auto& [name, count] : partitions_per_topic) {
    if (count <= 0) continue;
    index.emplace(name, g.topic_names.size());
    g.topic_names.push_back(&name);
    g.partition_counts.push_back(count);
  }
  g.subscribers.resize(g.topic_names.size());
  g.topics_of.resize(g.members.size());
  for (std::size_t m = 0; m < g.members.size(); ++m) {
    auto& topics = g.topics_of[m];
    for (const auto& name : g.members[m]->topics) {
      const std::size_t t = g.topic_index(index, name);
      if (t != GroupView::kNpos) topics.push_back(t);
    }
    std::sort(topics.begin(), topics.end());
    topics.erase(std::unique(topics.begin(), topics.end()), topics.end());
    for (const std::size_t t : topics) g.subscribers[t].push_back(m);  // m ascends: sorted
  }
  if (topic_index_out != nullptr) *topic_index_out = std::move(index);
  return g;
}

// Every member present with an empty list.
inline Assignment empty_assignment(const GroupView& g) {
  Assignment out;
  for (const auto* m : g.members)
    out.emplace_hint(out.end(), m->member_id, std::vector<TopicPartition>{});
  return out;
}

inline void sort_lists(Assignment& a) {
  for (auto& [member, list] : a) std::sort(list.begin(), list.end());
}

// A member's owned list, sorted and without duplicates.
inline std::vector<TopicPartition> sorted_unique(std::vector<TopicPartition> v) {
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
  return v;
}

}  // namespace detail

// Kafka's RangeAssignor. For each topic on its own: the members subscribed to it, in id order,
// get contiguous ranges of its partitions; with n partitions and k members each gets n / k, and
// the first n % k members one more. 2 members, 3 partitions: c0 [t-0, t-1], c1 [t-2]. The first
// members of every topic are the same, so with many topics the low ids carry the extra
// partitions of each (Kafka's known imbalance).
// Cost: O(M log M + S log S + P log P) for M members, S subscription entries, P partitions
// assigned.
inline Assignment assign_range(const std::map<std::string, std::int32_t>& partitions_per_topic,
                               const std::vector<MemberSubscription>& members) {
  const detail::GroupView g = detail::view_of(partitions_per_topic, members);
  Assignment out = detail::empty_assignment(g);
  for (std::size_t t = 0; t < g.topic_names.size(); ++t) {
    const auto& subs = g.subscribers[t];
    if (subs.empty()) continue;
    const auto n = static_cast<std::size_t>(g.partition_counts[t]);
    const std::size_t k = subs.size();
    const std::size_t each = n / k;
    const std::size_t extra = n % k;
    for (std::size_t i = 0; i < k; ++i) {
      const std::size_t begin = each * i + std::min(i, extra);
      const std::size_t end = begin + each + (i < extra ? 1 : 0);
      auto& list = out[g.members[subs[i]]->member_id];
      for (std::size_t p = begin; p < end; ++p) {
        list.push_back(TopicPartition{*g.topic_names[t], static_cast<std::int32_t>(p)});
      }
    }
  }
  detail::sort_lists(out);
  return out;
}

// Kafka's RoundRobinAssignor. All partitions of the subscribed topics, sorted by (topic,
// partition), are dealt to the members in id order, circularly; the deal skips a member that
// does not subscribe to the partition's topic (it gets the next one it subscribes to). The
// circle carries on from topic to topic. With identical subscriptions counts differ by at most
// 1; with different ones they can be far apart (see the tests' unequal-subscription case).
// Cost: O(M log M + S log S + P (log P + M log S)): per partition, the members skipped.
inline Assignment assign_round_robin(
    const std::map<std::string, std::int32_t>& partitions_per_topic,
    const std::vector<MemberSubscription>& members) {
  const detail::GroupView g = detail::view_of(partitions_per_topic, members);
  Assignment out = detail::empty_assignment(g);
  const std::size_t num_members = g.members.size();
  std::size_t next = 0;  // the member the deal is at
  for (std::size_t t = 0; t < g.topic_names.size(); ++t) {
    if (g.subscribers[t].empty()) continue;  // else the skip loop below would not end
    for (std::int32_t p = 0; p < g.partition_counts[t]; ++p) {
      while (!g.subscribes(next, t)) next = (next + 1) % num_members;
      out[g.members[next]->member_id].push_back(TopicPartition{*g.topic_names[t], p});
      next = (next + 1) % num_members;
    }
  }
  detail::sort_lists(out);
  return out;
}

namespace detail {

// The state of one assign_sticky call. Members and topics are indexes into a GroupView; a
// partition is a Slot (topic index, partition), which sorts like TopicPartition.
class StickyAssignor {
 public:
  using Slot = std::pair<std::size_t, std::int32_t>;
  static constexpr std::size_t kNone = GroupView::kNpos;

  StickyAssignor(const GroupView& g, const std::map<std::string_view, std::size_t>& topic_index)
      : g_(g),
        num_members_(g.members.size()),
        held_(num_members_),
        count_(num_members_, 0),
        holder_(g.topic_names.size()),
        previous_(g.topic_names.size()) {
    for (std::size_t t = 0; t < g.topic_names.size(); ++t) {
      if (g.subscribers[t].empty()) continue;
      holder_[t].assign(static_cast<std::size_t>(g.partition_counts[t]), kNone);
      previous_[t].assign(static_cast<std::size_t>(g.partition_counts[t]), kNone);
    }
    keep(topic_index);
  }

  Assignment run() {
    bool identical = num_members_ > 0;
    for (std::size_t m = 1; m < num_members_ && identical; ++m) {
      identical = g_.topics_of[m] == g_.topics_of[0];
    }
    if (identical) {
      assign_by_quota();
    } else {
      fill();
      balance();
    }
    Assignment out = empty_assignment(g_);
    for (std::size_t m = 0; m < num_members_; ++m) {
      auto& list = out[g_.members[m]->member_id];
      list.reserve(held_[m].size());
      for (const auto& [t, p] : held_[m]) list.push_back(TopicPartition{*g_.topic_names[t], p});
    }
    return out;  // held_ iterates in (topic index, partition) = (name, partition) order: sorted
  }

 private:
  using Load = std::pair<std::size_t, std::size_t>;  // (count, member): least loaded first

  std::size_t& holder(const Slot& s) {
    return holder_[s.first][static_cast<std::size_t>(s.second)];
  }
  std::size_t previous(const Slot& s) const {
    return previous_[s.first][static_cast<std::size_t>(s.second)];
  }
  // Whether `m` holds `s` without having owned it before: moving it costs no stickiness.
  bool is_free(std::size_t m, const Slot& s) const { return previous(s) != m; }

  void give(std::size_t m, const Slot& s) {
    holder(s) = m;
    held_[m].insert(s);
    ++count_[m];
  }
  void take(std::size_t m, const Slot& s) {
    holder(s) = kNone;
    held_[m].erase(s);
    --count_[m];
  }

  // Keep every valid owned partition. Members go in id order, so a partition claimed twice
  // stays with the smaller id.
  void keep(const std::map<std::string_view, std::size_t>& topic_index) {
    for (std::size_t m = 0; m < num_members_; ++m) {
      for (const auto& tp : sorted_unique(g_.members[m]->owned)) {
        const std::size_t t = g_.topic_index(topic_index, tp.topic);
        if (t == kNone || !g_.subscribes(m, t)) continue;
        if (tp.partition < 0 || tp.partition >= g_.partition_counts[t]) continue;
        const Slot s{t, tp.partition};
        if (holder(s) != kNone) continue;
        previous_[t][static_cast<std::size_t>(tp.partition)] = m;
        give(m, s);
      }
    }
  }

  // Identical subscriptions: the counts are known up front. With P partitions and M members,
  // P % M members hold P / M + 1 and the rest P / M; the larger quotas go to the members that
  // kept the most (ties: smaller id), which is what minimizes the owned partitions that move.
  // A member over its quota gives up its last partitions; the free ones are then dealt, in
  // order, each to the least-loaded member under its quota (ties: smaller id): for a new
  // group, exactly round-robin. Cost: O(M log M + P log P).
  void assign_by_quota() {
    std::size_t total = 0;
    for (const std::size_t t : g_.topics_of[0]) {
      total += static_cast<std::size_t>(g_.partition_counts[t]);
    }
    std::vector<std::size_t> order(num_members_);
    for (std::size_t m = 0; m < num_members_; ++m) order[m] = m;
    std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
      return count_[a] != count_[b] ? count_[a] > count_[b] : a < b;
    });
    std::vector<std::size_t> quota(num_members_, total / num_members_);
    for (std::size_t i = 0; i < total % num_members_; ++i) ++quota[order[i]];

    std::priority_queue<Load, std::vector<Load>, std::greater<>> under;
    for (std::size_t m = 0; m < num_members_; ++m) {
      while (count_[m] > quota[m]) take(m, *held_[m].rbegin());
      if (count_[m] < quota[m]) under.emplace(count_[m], m);
    }
    for (const std::size_t t : g_.topics_of[0]) {
      for (std::int32_t p = 0; p < g_.partition_counts[t]; ++p) {
        const Slot s{t, p};
        if (holder(s) != kNone) continue;
        RILL_ASSERT(!under.empty(), "the quotas add up to the partitions");
        const std::size_t m = under.top().second;
        under.pop();
        give(m, s);
        if (count_[m] < quota[m]) under.emplace(count_[m], m);
      }
    }
  }

  // Different subscriptions: the most constrained topics first, each unowned partition to its
  // least-loaded subscriber (ties: smaller id). Cost: O(T log T + P log M + S log M).
  void fill() {
    std::vector<std::size_t> topics(g_.topic_names.size());
    for (std::size_t t = 0; t < topics.size(); ++t) topics[t] = t;
    std::stable_sort(topics.begin(), topics.end(), [&](std::size_t a, std::size_t b) {
      return g_.subscribers[a].size() < g_.subscribers[b].size();
    });
    for (const std::size_t t : topics) {
      if (g_.subscribers[t].empty()) continue;
      std::priority_queue<Load, std::vector<Load>, std::greater<>> least;
      for (const std::size_t m : g_.subscribers[t]) least.emplace(count_[m], m);
      for (std::int32_t p = 0; p < g_.partition_counts[t]; ++p) {
        const Slot s{t, p};
        if (holder(s) != kNone) continue;
        const std::size_t m = least.top().second;
        least.pop();
        give(m, s);
        least.emplace(count_[m], m);
      }
    }
  }

  // Different subscriptions: while some member holds at least 2 more than a member that could
  // take one of its partitions (it is "over"), relieve the most loaded over member that can be
  // relieved in the first of these ways:
  //   1. downhill along a chain of free partitions (a -> b -> c moves one of a's to b and one of
  //      b's to c; b's count is unchanged) to the least-loaded member reachable, if it has at
  //      most count - 2: the sum of squared counts falls;
  //   2. sideways along such a chain to a member with count - 1 that subscribes to fewer
  //      partitions (load goes where there are fewer options, and the taker that made the
  //      member over can be served by a free partition later): squares stay, the sum of
  //      count * subscribed partitions falls;
  //   3. by moving one of its partitions, owned if it must, to its least-loaded taker: the sum
  //      of squares falls.
  // So the loop ends, and it ends when nobody is over: Kafka's balance. Owned partitions move
  // only in way 3.
  void balance() {
    if (num_members_ == 0) return;
    const std::size_t num_topics = g_.topic_names.size();
    total_ = 0;
    reach_.assign(num_members_, 0);
    free_holders_.assign(num_topics, {});
    lightest_.assign(num_topics, {});
    for (std::size_t m = 0; m < num_members_; ++m) {
      total_ += count_[m];
      for (const std::size_t t : g_.topics_of[m]) {
        reach_[m] += static_cast<std::size_t>(g_.partition_counts[t]);
        lightest_[t].emplace(count_[m], m);
      }
      for (const Slot& s : held_[m]) {
        if (is_free(m, s)) ++free_holders_[s.first][m];
      }
    }
    for (std::size_t m = 0; m < num_members_; ++m) heaviest_.emplace(total_ - count_[m], m);
    seen_.assign(num_members_, 0);
    target_.assign(num_members_, kNone);
    next_.assign(num_members_, kNone);
    topic_seen_.assign(num_topics, 0);

    std::vector<std::size_t> over;
    std::vector<std::size_t> sources;
    for (;;) {
      // The over members, most loaded first. Cost: O(M (topics held)).
      over.clear();
      const std::size_t least = total_ - heaviest_.rbegin()->first;
      for (const auto& [key, m] : heaviest_) {
        if (count_[m] < least + 2) break;  // nobody has 2 fewer than this member
        if (lightest_taker(m, count_[m] - 2) != kNone) over.push_back(m);
      }
      if (over.empty()) return;

      // 1. Downhill: every member is a source, least loaded first.
      sources.resize(num_members_);
      for (std::size_t m = 0; m < num_members_; ++m) sources[m] = m;
      std::sort(sources.begin(), sources.end(), [&](std::size_t a, std::size_t b) {
        return count_[a] != count_[b] ? count_[a] < count_[b] : a < b;
      });
      sweep(sources);
      const auto downhill = std::find_if(over.begin(), over.end(), [&](std::size_t m) {
        return count_[target_[m]] + 2 <= count_[m];
      });
      if (downhill != over.end()) {
        shift_along_chain(*downhill);
        continue;
      }

      // 2. Sideways: per count c of over members, the sources are the members with c - 1,
      //    fewest subscribed partitions first.
      bool moved = false;
      for (std::size_t i = 0; i < over.size() && !moved; ++i) {
        const std::size_t m = over[i];
        if (i == 0 || count_[over[i - 1]] != count_[m]) {
          sources.clear();
          for (std::size_t s = 0; s < num_members_; ++s) {
            if (count_[s] + 1 == count_[m]) sources.push_back(s);
          }
          std::sort(sources.begin(), sources.end(), [&](std::size_t a, std::size_t b) {
            return reach_[a] != reach_[b] ? reach_[a] < reach_[b] : a < b;
          });
          sweep(sources);
        }
        if (seen_[m] == epoch_ && reach_[target_[m]] < reach_[m]) {
          shift_along_chain(m);
          moved = true;
        }
      }
      if (moved) continue;

      // 3. Any partition of the most loaded over member.
      move_one(over.front(), lightest_taker(over.front(), count_[over.front()] - 2), false);
    }
  }

  // The least-loaded member (ties: smaller id) with at most `max_count` partitions that
  // subscribes to a topic `from` holds a partition of, or kNone. Cost: O(topics held).
  std::size_t lightest_taker(std::size_t from, std::size_t max_count) const {
    Load best{0, kNone};
    for (auto it = held_[from].begin(); it != held_[from].end(); it = next_topic(from, it)) {
      const Load& l = *lightest_[it->first].begin();
      if (l.first <= max_count && (best.second == kNone || l < best)) best = l;
    }
    return best.second;
  }
  std::set<Slot>::const_iterator next_topic(std::size_t m,
                                            std::set<Slot>::const_iterator it) const {
    return held_[m].lower_bound(Slot{it->first + 1, std::numeric_limits<std::int32_t>::min()});
  }

  // For every member x that can pass load along free partitions to one of `sources` (tried in
  // order; a source reaches itself): target_[x], the first source that x reaches, and
  // next_[x], the member x hands a free partition to on the way. Unreached members keep
  // seen_[x] != epoch_. A breadth-first search backwards from each source: y's predecessors
  // are the holders of free partitions of y's topics; a topic is crossed once per sweep.
  // Cost: O(M + S + members holding free partitions, per topic).
  void sweep(const std::vector<std::size_t>& sources) {
    ++epoch_;
    for (const std::size_t z : sources) {
      if (seen_[z] == epoch_) continue;
      seen_[z] = epoch_;
      target_[z] = z;
      next_[z] = z;
      queue_.assign(1, z);
      for (std::size_t head = 0; head < queue_.size(); ++head) {
        const std::size_t y = queue_[head];
        for (const std::size_t t : g_.topics_of[y]) {
          if (topic_seen_[t] == epoch_) continue;
          topic_seen_[t] = epoch_;
          for (const auto& [x, n] : free_holders_[t]) {
            if (seen_[x] == epoch_) continue;
            seen_[x] = epoch_;
            target_[x] = z;
            next_[x] = y;
            queue_.push_back(x);
          }
        }
      }
    }
  }

  // Moves one free partition at each step of the chain from `from` to target_[from].
  void shift_along_chain(std::size_t from) {
    for (std::size_t x = from; x != target_[from]; x = next_[x]) move_one(x, next_[x], true);
  }

  // Moves one partition from `from` to `to` (who subscribes to its topic): one going back to
  // its previous owner, else a free one, else (unless free_only) one `from` owned; among
  // equals the last in order.
  void move_one(std::size_t from, std::size_t to, bool free_only) {
    const Slot* pick = nullptr;
    int best = 3;
    for (const Slot& s : held_[from]) {
      if (!g_.subscribes(to, s.first)) continue;
      const int rank = previous(s) == to ? 0 : is_free(from, s) ? 1 : 2;
      if (free_only && rank == 2) continue;
      if (rank <= best) {
        pick = &s;
        best = rank;
      }
    }
    RILL_ASSERT(pick != nullptr, "the taker subscribes to a topic of the giver's partitions");
    const Slot s = *pick;
    if (is_free(from, s)) {
      const auto it = free_holders_[s.first].find(from);
      if (--it->second == 0) free_holders_[s.first].erase(it);
    }
    if (is_free(to, s)) ++free_holders_[s.first][to];
    take(from, s);
    give(to, s);
    reindex(from, count_[from] + 1);
    reindex(to, count_[to] - 1);
  }

  // Moves m in lightest_ and heaviest_ from its old count to count_[m].
  void reindex(std::size_t m, std::size_t old_count) {
    for (const std::size_t t : g_.topics_of[m]) {
      lightest_[t].erase(Load{old_count, m});
      lightest_[t].emplace(count_[m], m);
    }
    heaviest_.erase(Load{total_ - old_count, m});
    heaviest_.emplace(total_ - count_[m], m);
  }

  const GroupView& g_;
  const std::size_t num_members_;
  std::vector<std::set<Slot>> held_;  // per member
  std::vector<std::size_t> count_;    // per member: held_[m].size()
  // Per topic and partition: who holds it now, and who validly owned it before (kNone: nobody).
  std::vector<std::vector<std::size_t>> holder_;
  std::vector<std::vector<std::size_t>> previous_;

  // balance() only.
  std::size_t total_ = 0;                 // partitions assigned
  std::vector<std::size_t> reach_;        // per member: partitions of its topics
  std::vector<std::set<Load>> lightest_;  // per topic: (count, member) of its subscribers
  std::set<Load> heaviest_;               // (total_ - count, member): most loaded first
  // Per topic: member -> how many free partitions of the topic it holds.
  std::vector<std::map<std::size_t, std::size_t>> free_holders_;
  std::vector<std::uint64_t> seen_;        // per member: epoch_ of the last sweep to reach it
  std::vector<std::size_t> target_;        // per member: see sweep()
  std::vector<std::size_t> next_;          // per member: see sweep()
  std::vector<std::uint64_t> topic_seen_;  // per topic: epoch_ of the last sweep to cross it
  std::vector<std::size_t> queue_;
  std::uint64_t epoch_ = 0;
};

}  // namespace detail

// The sticky assignment: the target of Kafka's "cooperative-sticky" strategy (the assignment
// the group converges to; cooperative_first_round gives what members get meanwhile).
//
// 1. Balanced. With identical subscriptions, member partition counts differ by at most 1. With
//    different subscriptions, as balanced as the subscriptions allow, in Kafka's sense: no member
//    holds a partition that another member subscribed to its topic could take while holding at
//    least 2 fewer partitions.
// 2. Sticky. Subject to 1, each member keeps the partitions it owns. Ignored: owned partitions
//    that no longer exist, whose topic the member no longer subscribes to, or that it lists
//    twice; a partition claimed by several members stays with the smallest member id (Kafka
//    would use the newest generation, which rill's subscriptions do not carry). With identical
//    subscriptions, the number of owned partitions that move is the minimum any balanced
//    assignment needs: a member joining 3 members with 4 partitions each takes 3, one from each;
//    a member leaving moves only its own partitions. With different subscriptions, owned
//    partitions move only when no reshuffle of unowned ones restores balance, found by a
//    heuristic search (Kafka's generalAssign is a heuristic too): best effort, not a proven
//    minimum.
// 3. Deterministic: independent of input order; and assign_sticky of its own output (as owned)
//    returns that output unchanged.
//
// Algorithm: keep every valid owned partition. Identical subscriptions: P % M members (those
// that kept the most) may hold P / M + 1 and the others P / M; members over that give up their
// last partitions, and the free ones are dealt in order to the least-loaded members under it.
// Different subscriptions: give each free partition, topics with the fewest subscribers first,
// to its least-loaded subscriber; then, while some member holds at least 2 more than a member
// that could take one of its partitions, shift load off the most loaded such member, along
// chains of partitions that their holders did not own before if possible (no stickiness lost),
// else by moving an owned one.
// Cost: identical subscriptions O(M log M + S log S + O log O + P log P) for M members, S
// subscription entries, O owned entries, P partitions. Different: the same to fill, then per
// balancing step O(M T + L (M log M + S + P)), T topics, L distinct counts among the members to
// relieve (searches for chains); steps are about as many as the partitions that change owner.
// For scale: 1000 members, 10 topics of 1000 partitions, 10% of members replaced: a few ms
// with identical subscriptions, well under a second with random different ones (-O2).
inline Assignment assign_sticky(const std::map<std::string, std::int32_t>& partitions_per_topic,
                                const std::vector<MemberSubscription>& members) {
  std::map<std::string_view, std::size_t> topic_index;
  const detail::GroupView g = detail::view_of(partitions_per_topic, members, &topic_index);
  return detail::StickyAssignor(g, topic_index).run();
}

// The assignment `strategy` computes. For kCooperativeSticky this is the target (assign_sticky);
// hand members cooperative_first_round(target, members) first.
inline Assignment assign(AssignmentStrategy strategy,
                         const std::map<std::string, std::int32_t>& partitions_per_topic,
                         const std::vector<MemberSubscription>& members) {
  switch (strategy) {
    case AssignmentStrategy::kRange:
      return assign_range(partitions_per_topic, members);
    case AssignmentStrategy::kRoundRobin:
      return assign_round_robin(partitions_per_topic, members);
    case AssignmentStrategy::kCooperativeSticky:
      return assign_sticky(partitions_per_topic, members);
  }
  RILL_ASSERT(false, "unknown AssignmentStrategy");
  return {};
}

// Cooperative rebalancing (KIP-429). A partition never has two owners at once: a partition
// that changes owner is first revoked by its old owner, and assigned to its new owner only in
// a follow-up rebalance. This gives the first round: `target` minus every partition that a
// member other than the target's holder still lists in `owned` (including a claim the sticky
// assignor ignored, e.g. by a member no longer subscribed to the topic). Members keep
// processing everything else without pause. Keys: those of `target`.
//
// Protocol: members revoke partitions_to_revoke(target, members) and rejoin with owned = what
// they were given in the first round. A coordinator that kept `target` now hands it out whole:
// cooperative_first_round(target, rejoined) == target. One that recomputes (as Kafka's does)
// gets a target that, with identical subscriptions, keeps every partition members own, so no
// further revocation is needed; it may place the revoked partitions differently from `target`.
// With different subscriptions the recomputed target occasionally moves an owned partition
// again, and the group settles one rebalance later.
// Cost: O(O log O + A log O) for O owned entries and A assigned partitions.
inline Assignment cooperative_first_round(const Assignment& target,
                                          const std::vector<MemberSubscription>& members) {
  const detail::GroupView g = detail::view_of({}, members);  // checks unique ids
  std::map<TopicPartition, const std::string*> owner;        // one claimant, or nullptr: several
  for (const auto* m : g.members) {
    for (const auto& tp : detail::sorted_unique(m->owned)) {
      const auto [it, inserted] = owner.emplace(tp, &m->member_id);
      if (!inserted) it->second = nullptr;
    }
  }
  Assignment out;
  for (const auto& [member, list] : target) {
    auto& first = out[member];
    for (const auto& tp : list) {
      const auto it = owner.find(tp);
      if (it == owner.end() || (it->second != nullptr && *it->second == member)) {
        first.push_back(tp);
      }
    }
  }
  return out;
}

// Per member of `members`: the partitions it owns that `target` does not give it (owned -
// target[member]; all it owns when target lacks the member), sorted, without duplicates. Every
// member appears, possibly with an empty list. In a cooperative rebalance these are what each
// member gives up before the follow-up round.
// Cost: O((O + A) log(O + A)) for O owned entries and A assigned partitions.
inline std::map<std::string, std::vector<TopicPartition>> partitions_to_revoke(
    const Assignment& target, const std::vector<MemberSubscription>& members) {
  const detail::GroupView g = detail::view_of({}, members);  // checks unique ids
  std::map<std::string, std::vector<TopicPartition>> out;
  for (const auto* m : g.members) {
    auto& revoke = out[m->member_id];
    const auto owned = detail::sorted_unique(m->owned);
    const auto it = target.find(m->member_id);
    if (it == target.end()) {
      revoke = owned;
      continue;
    }
    const auto kept = detail::sorted_unique(it->second);
    std::set_difference(owned.begin(), owned.end(), kept.begin(), kept.end(),
                        std::back_inserter(revoke));
  }
  return out;
}

}  // namespace rill::group

namespace std {
// Lets TopicPartition key unordered containers.
template <>
struct hash<rill::group::TopicPartition> {
  size_t operator()(const rill::group::TopicPartition& tp) const noexcept {
    const size_t h = hash<string>{}(tp.topic);
    // boost::hash_combine's mix: spreads partition numbers across the topic's hash.
    return h ^ (hash<int32_t>{}(tp.partition) + static_cast<size_t>(0x9e3779b97f4a7c15ull) +
                (h << 6) + (h >> 2));
  }
};
}  // namespace std
