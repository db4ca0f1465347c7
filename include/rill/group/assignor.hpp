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
//    a member leaving moves only its own partitions.
// 3. Deterministic: independent of input order; and assign_sticky of its own output (as owned)
//    returns that output unchanged.
//
// Algorithm: keep every valid owned partition; give each unowned partition, topics with the
// fewest subscribers first, to its least-loaded subscriber; then, while some member holds at
// least 2 more than a member that could take one of its partitions, shift load off the most
// loaded such member: first along chains of partitions it and others did not own before
// (costing no stickiness), and only when no such chain helps, by moving one it owned.
// Cost: O(M log M + S log S + O log O + P log P) to keep and fill, for M members, S subscription
// entries, O owned entries, P partitions; then per balancing step at worst O(M (P log S + S)) (a
// chain search from each overloaded member). Steps are about as many as the partitions that
// change owner; each lowers (sum of count^2, sum of count * subscribed partitions)
// lexicographically, so the loop ends.
inline Assignment assign_sticky(const std::map<std::string, std::int32_t>& partitions_per_topic,
                                const std::vector<MemberSubscription>& members) {
  std::map<std::string_view, std::size_t> topic_index;
  const detail::GroupView g = detail::view_of(partitions_per_topic, members, &topic_index);
  constexpr std::size_t kNone = detail::GroupView::kNpos;
  const std::size_t num_members = g.members.size();
  const std::size_t num_topics = g.topic_names.size();

  using Slot = std::pair<std::size_t, std::int32_t>;  // (topic index, partition): sorts like TP
  std::vector<std::set<Slot>> held(num_members);
  std::vector<std::size_t> count(num_members, 0);
  // Per topic and partition: who holds it now, and who validly owned it before (kNone: nobody).
  std::vector<std::vector<std::size_t>> holder(num_topics);
  std::vector<std::vector<std::size_t>> previous(num_topics);
  for (std::size_t t = 0; t < num_topics; ++t) {
    if (g.subscribers[t].empty()) continue;
    holder[t].assign(static_cast<std::size_t>(g.partition_counts[t]), kNone);
    previous[t].assign(static_cast<std::size_t>(g.partition_counts[t]), kNone);
  }
  const auto give = [&](std::size_t member, std::size_t t, std::int32_t p) {
    holder[t][static_cast<std::size_t>(p)] = member;
    held[member].emplace(t, p);
    ++count[member];
  };

  // 1. Keep: members in id order, so a partition claimed twice stays with the smaller id.
  for (std::size_t m = 0; m < num_members; ++m) {
    for (const auto& tp : detail::sorted_unique(g.members[m]->owned)) {
      const std::size_t t = g.topic_index(topic_index, tp.topic);
      if (t == kNone || !g.subscribes(m, t)) continue;
      if (tp.partition < 0 || tp.partition >= g.partition_counts[t]) continue;
      const auto p = static_cast<std::size_t>(tp.partition);
      if (holder[t][p] != kNone) continue;
      previous[t][p] = m;
      give(m, t, tp.partition);
    }
  }

  // 2. Fill: the most constrained topics first, each partition to its least-loaded subscriber
  //    (ties: smaller id). With identical subscriptions this is water-filling, which never
  //    pushes a member past what balance allows.
  std::vector<std::size_t> topic_order(num_topics);
  for (std::size_t t = 0; t < num_topics; ++t) topic_order[t] = t;
  std::stable_sort(topic_order.begin(), topic_order.end(), [&](std::size_t a, std::size_t b) {
    return g.subscribers[a].size() < g.subscribers[b].size();
  });
  using Load = std::pair<std::size_t, std::size_t>;  // (count, member): least first
  for (const std::size_t t : topic_order) {
    if (g.subscribers[t].empty()) continue;
    std::priority_queue<Load, std::vector<Load>, std::greater<>> least;
    for (const std::size_t m : g.subscribers[t]) least.emplace(count[m], m);
    for (std::int32_t p = 0; p < g.partition_counts[t]; ++p) {
      if (holder[t][static_cast<std::size_t>(p)] != kNone) continue;
      const std::size_t m = least.top().second;
      least.pop();
      give(m, t, p);
      least.emplace(count[m], m);
    }
  }

  // 3. Balance. A partition is "free" at a member that did not own it before: moving it on
  //    costs no stickiness. Each step takes one partition from a member with c partitions and
  //    gives one to a member with at most c - 2, so the sum of squared counts strictly falls and
  //    the loop ends; it ends exactly when no member could take a partition from one holding 2
  //    or more than it. Steps that move only free partitions, along a chain of members if need
  //    be (a -> b -> c: b's count is unchanged), come before any step that moves an owned one.
  const auto is_free = [&](std::size_t m, const Slot& s) {
    return previous[s.first][static_cast<std::size_t>(s.second)] != m;
  };
  // The partition `from` should hand to `to`: one going back to its previous owner, else a
  // free one, else (unless free_only) one `from` owned; among equals the last in order.
  const auto pick = [&](std::size_t from, std::size_t to, bool free_only, Slot* out) {
    int best = 3;
    for (const Slot& s : held[from]) {
      if (!g.subscribes(to, s.first)) continue;
      const std::size_t prev = previous[s.first][static_cast<std::size_t>(s.second)];
      const int rank = prev == to ? 0 : prev != from ? 1 : 2;
      if (free_only && rank == 2) continue;
      if (rank <= best) {
        *out = s;
        best = rank;
      }
    }
    return best < 3;
  };
  const auto move_one = [&](std::size_t from, std::size_t to, bool free_only) {
    Slot s;
    const bool found = pick(from, to, free_only, &s);
    RILL_ASSERT(found, "the taker subscribes to one of the giver's (free) partitions' topics");
    held[from].erase(s);
    --count[from];
    give(to, s.first, s.second);
  };
  // Calls visit(taker) for each member subscribed to a topic of one of m's (free) partitions,
  // topic by topic, in id order within a topic (a member may come up more than once).
  const auto for_each_taker = [&](std::size_t m, bool free_only, const auto& visit) {
    for (auto it = held[m].begin(); it != held[m].end();) {
      const std::size_t t = it->first;
      const auto next = held[m].lower_bound(Slot{t + 1, std::numeric_limits<std::int32_t>::min()});
      bool any = !free_only;
      for (auto j = it; !any && j != next; ++j) any = is_free(m, *j);
      if (any) {
        for (const std::size_t taker : g.subscribers[t]) {
          if (taker != m) visit(taker);
        }
      }
      it = next;
    }
  };
  // How many partitions a member could hold: those of all topics it subscribes to.
  std::vector<std::size_t> reach(num_members, 0);
  for (std::size_t m = 0; m < num_members; ++m) {
    for (const std::size_t t : g.topics_of[m]) {
      reach[m] += static_cast<std::size_t>(g.partition_counts[t]);
    }
  }
  // Moves one partition's worth of load from `from` along a chain of free partitions:
  //  - downhill: to the least-loaded member reachable with at most count[from] - 2 (ties: the
  //    shortest chain); the sum of squared counts falls;
  //  - sideways (only when `from` has a taker with 2 fewer, and no downhill chain exists): to a
  //    member with count[from] - 1 and a smaller reach. Counts keep their sum of squares, load
  //    moves towards members with fewer options, and `from`'s taker no longer needs one of its
  //    owned partitions. Sum of count * reach falls, so these steps cannot cycle.
  std::vector<std::size_t> parent(num_members);
  std::vector<std::size_t> queue;
  const auto shift_free = [&](std::size_t from, bool sideways) {
    if (sideways) {
      bool has_taker = false;
      for_each_taker(from, false, [&](std::size_t m) { has_taker |= count[m] + 2 <= count[from]; });
      if (!has_taker) return false;
    }
    std::fill(parent.begin(), parent.end(), kNone);
    parent[from] = from;
    queue.assign(1, from);
    std::size_t to = kNone;
    for (std::size_t head = 0; head < queue.size(); ++head) {
      for_each_taker(queue[head], true, [&](std::size_t m) {
        if (parent[m] != kNone) return;
        parent[m] = queue[head];
        queue.push_back(m);
        if (sideways ? count[m] + 1 == count[from] && reach[m] < reach[from] &&
                           (to == kNone || reach[m] < reach[to])
                     : count[m] + 2 <= count[from] && (to == kNone || count[m] < count[to])) {
          to = m;
        }
      });
    }
    if (to == kNone) return false;
    std::vector<std::size_t> chain{to};  // to, ..., from
    while (chain.back() != from) chain.push_back(parent[chain.back()]);
    for (std::size_t i = chain.size() - 1; i > 0; --i) move_one(chain[i], chain[i - 1], true);
    return true;
  };
  // Moves one partition, owned or not, from `from` to its least-loaded possible taker.
  const auto shift_any = [&](std::size_t from) {
    std::size_t to = kNone;
    for_each_taker(from, false, [&](std::size_t m) {
      if (count[m] + 2 > count[from]) return;
      if (to == kNone || count[m] < count[to] || (count[m] == count[to] && m < to)) to = m;
    });
    if (to == kNone) return false;
    move_one(from, to, false);
    return true;
  };

  std::vector<std::size_t> by_load(num_members);
  for (std::size_t m = 0; m < num_members; ++m) by_load[m] = m;
  for (bool moved = true; moved;) {
    std::sort(by_load.begin(), by_load.end(), [&](std::size_t a, std::size_t b) {
      return count[a] != count[b] ? count[a] > count[b] : a < b;
    });
    const std::size_t least_count = num_members == 0 ? 0 : count[by_load.back()];
    moved = false;
    for (const int pass : {0, 1, 2}) {  // downhill free, sideways free, then owned
      for (const std::size_t from : by_load) {
        if (count[from] < least_count + 2) break;  // nobody has 2 fewer than this member
        moved = pass == 2 ? shift_any(from) : shift_free(from, pass == 1);
        if (moved) break;
      }
      if (moved) break;
    }
  }

  Assignment out = detail::empty_assignment(g);
  for (std::size_t m = 0; m < num_members; ++m) {
    auto& list = out[g.members[m]->member_id];
    list.reserve(held[m].size());
    for (const auto& [t, p] : held[m]) list.push_back(TopicPartition{*g.topic_names[t], p});
  }
  return out;  // held[] iterates in (topic index, partition) order = (name, partition): sorted
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
