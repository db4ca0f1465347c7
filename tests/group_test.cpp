// Consumer groups, driven step by step on one thread: rebalances (eager strategies revoke
// everything, cooperative-sticky only what moves), at most one owner per partition at every
// step, liveness on the broker's clock (max_poll_interval_ms, session_timeout_ms) with fencing of
// the removed member, committed offsets across a restart, several groups on one topic, and the
// ConsumerGroup admin view (describe, lag, reset_offsets, delete_group, list). Threads at scale
// are in group_concurrency_test.cpp.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "catch.hpp"
#include "fault_injection.hpp"
#include "result_checks.hpp"
#include "rill/broker.hpp"
#include "rill/consumer.hpp"
#include "rill/consumer_group.hpp"
#include "rill/producer.hpp"
#include "rill/topic.hpp"
#include "test_util.hpp"

// Each test file lives in its own namespace: the tests are compiled a few files per
// translation unit (tests/CMakeLists.txt, RILL_TEST_UNITY).
namespace group_test {

using rill::AssignmentStrategy;
using rill::Broker;
using rill::Consumer;
using rill::ConsumerConfig;
using rill::ConsumerGroup;
using rill::ErrorCode;
using rill::ManualClock;
using rill::OffsetAndMetadata;
using rill::OffsetReset;
using rill::OffsetResetSpec;
using rill::Producer;
using rill::ProducerRecord;
using rill::RebalanceCallbacks;
using rill::Topic;
using rill::TopicConfig;
using rill::TopicPartition;
using rill_test::TempDir;

namespace {

using StringTopic = Topic<std::string, std::string>;
using StringProducer = Producer<std::string, std::string>;
using StringConsumer = Consumer<std::string, std::string>;
using Partitions = std::vector<TopicPartition>;

using rill_test::require_error;
using rill_test::require_ok;
using rill_test::take;

TopicConfig small_topic(std::int32_t partitions) {
  TopicConfig c;
  c.partitions = partitions;
  c.segment_bytes = 256 * 1024;
  c.max_record_bytes = 1024;
  return c;
}

std::unique_ptr<Broker> open_backend(bool in_memory, const TempDir& dir,
                                     std::shared_ptr<rill::Clock> clock = nullptr) {
  rill::BrokerOptions options;
  options.prefault_bytes = 0;
  options.clock = std::move(clock);
  if (in_memory) return take(Broker::open_in_memory(options));
  return take(Broker::open(dir.sub("data"), options));
}

// Sends `n` records to every partition of `topic`.
void fill(const StringTopic& topic, int n) {
  StringProducer producer(topic.broker());
  for (std::int32_t p = 0; p < topic.partitions(); ++p) {
    for (int i = 0; i < n; ++i) {
      take(producer.send(topic, {.key = "k", .value = std::to_string(i), .partition = p}));
    }
  }
}

Partitions all_of(const std::string& topic, std::int32_t n) {
  Partitions out;
  for (std::int32_t p = 0; p < n; ++p) out.push_back({topic, p});
  return out;
}

Partitions minus(const Partitions& a, const Partitions& b) {
  Partitions out;
  for (const auto& tp : a) {
    if (std::find(b.begin(), b.end(), tp) == b.end()) out.push_back(tp);
  }
  return out;
}

Partitions sorted(Partitions v) {
  std::sort(v.begin(), v.end());
  return v;
}

ConsumerConfig member_config(std::string group, AssignmentStrategy strategy) {
  ConsumerConfig c;
  c.group_id = std::move(group);
  c.auto_offset_reset = OffsetReset::kEarliest;
  c.enable_auto_commit = false;  // the members commit in on_revoked, as the issue asks
  c.assignment_strategy = strategy;
  return c;
}

// A group member and what its callbacks saw. on_revoked commits (a clean hand-over), unless
// told not to.
struct Member {
  Member(Broker& broker, ConsumerConfig config) : consumer(broker, std::move(config)) {}
  std::vector<Partitions> revoked, assigned, lost;
  std::vector<rill::Result<void>> revoke_commits;
  std::map<TopicPartition, std::vector<std::int64_t>> seen;  // offsets, in order
  bool commit_on_revoke = true;
  bool closed = false;
  // Removed by the group for missing its timeouts and not told yet (it has not polled since):
  // it still holds its partitions locally, which the ownership checks then ignore. It returns
  // no records before its next poll, and that poll first reports the loss.
  bool zombie = false;
  // Last, so destroyed first: its destructor closes it, which runs the callbacks above.
  StringConsumer consumer;

  RebalanceCallbacks callbacks() {
    RebalanceCallbacks cb;
    cb.on_revoked = [this](const Partitions& tps) {
      revoked.push_back(tps);
      if (commit_on_revoke) revoke_commits.push_back(consumer.commit());
    };
    cb.on_assigned = [this](const Partitions& tps) { assigned.push_back(tps); };
    cb.on_lost = [this](const Partitions& tps) { lost.push_back(tps); };
    return cb;
  }
  std::size_t events() const { return revoked.size() + assigned.size() + lost.size(); }
  Partitions owned() const { return consumer.assignment(); }
};

// Drives one group on one thread and checks, after every single poll, that no partition has two
// owners: in the coordinator's view (describe), in the consumers' own views, and in the records
// poll returns.
class Group {
 public:
  Group(Broker& broker, std::string id)
      : broker_(&broker), id_(std::move(id)), admin_(broker, id_) {}

  Member& join(const std::vector<std::string>& topics,
               AssignmentStrategy strategy = AssignmentStrategy::kRange,
               ConsumerConfig config = {}) {
    if (config.group_id.empty()) config = member_config(id_, strategy);
    members_.push_back(std::make_unique<Member>(*broker_, config));
    Member& m = *members_.back();
    require_ok(m.consumer.subscribe(topics, m.callbacks()));
    return m;
  }

  void poll(Member& m) {
    m.zombie = false;
    auto records = m.consumer.poll(std::chrono::milliseconds(0));
    INFO((records ? std::string() : records.error().to_string()));
    REQUIRE(records.has_value());
    const Partitions mine = m.owned();
    for (const auto& r : *records) {
      const TopicPartition tp{std::string(r.topic), r.partition};
      INFO(rill::group::to_string(tp) << " offset " << r.offset);
      CHECK(std::find(mine.begin(), mine.end(), tp) != mine.end());
      for (const auto& other : members_) {
        if (other.get() == &m || other->closed || other->zombie) continue;
        const Partitions theirs = other->owned();
        CHECK(std::find(theirs.begin(), theirs.end(), tp) == theirs.end());
      }
      m.seen[tp].push_back(r.offset);
    }
    check_owners();
  }

  // No partition is owned twice, by the coordinator's account or by the consumers'; what a
  // consumer holds, the coordinator says it owns.
  void check_owners() {
    const auto d = take(admin_.describe());
    std::map<TopicPartition, std::string> owner;
    for (const auto& md : d.members) {
      for (const auto& tp : md.assignment) {
        INFO(rill::group::to_string(tp));
        CHECK(owner.emplace(tp, md.member_id).second);
      }
    }
    std::set<TopicPartition> held;
    for (const auto& m : members_) {
      if (m->closed || m->zombie) continue;
      for (const auto& tp : m->owned()) {
        INFO(rill::group::to_string(tp));
        CHECK(held.insert(tp).second);
        auto it = owner.find(tp);
        CHECK((it != owner.end() && it->second == m->consumer.member_id()));
      }
    }
  }

  // Polls every live member (not zombies) in turn until the group is Stable and a whole round
  // changes nothing.
  void settle() {
    for (int round = 0; round < 50; ++round) {
      std::size_t before = 0;
      for (const auto& m : members_) before += m->events();
      for (const auto& m : members_) {
        if (!m->closed && !m->zombie) poll(*m);
      }
      std::size_t after = 0;
      for (const auto& m : members_) after += m->events();
      if (after == before && take(admin_.describe()).state == "Stable") return;
    }
    INFO("the group did not settle");
    REQUIRE(false);
  }

  void close(Member& m) {
    require_ok(m.consumer.close());
    m.closed = true;
    check_owners();
  }

  // Every offset below each partition's end seen exactly once by the group's members.
  void check_exactly_once(const StringTopic& topic) const {
    for (std::int32_t p = 0; p < topic.partitions(); ++p) {
      std::map<std::int64_t, int> count;
      for (const auto& m : members_) {
        auto it = m->seen.find({topic.name(), p});
        if (it == m->seen.end()) continue;
        for (std::int64_t o : it->second) ++count[o];
      }
      const std::int64_t end = topic.log(p)->end_offset();
      CAPTURE(p, end);
      CHECK(static_cast<std::int64_t>(count.size()) == end);
      for (const auto& [offset, n] : count) {
        CAPTURE(offset);
        CHECK(n == 1);
      }
    }
  }

  rill::group::GroupDescription describe() { return take(admin_.describe()); }
  ConsumerGroup& admin() { return admin_; }
  std::vector<std::unique_ptr<Member>>& members() { return members_; }

 private:
  Broker* broker_;
  std::string id_;
  ConsumerGroup admin_;
  std::vector<std::unique_ptr<Member>> members_;
};

const char* name_of(AssignmentStrategy s) {
  switch (s) {
    case AssignmentStrategy::kRange:
      return "range";
    case AssignmentStrategy::kRoundRobin:
      return "roundrobin";
    case AssignmentStrategy::kCooperativeSticky:
      return "cooperative-sticky";
  }
  return "?";
}

}  // namespace

// --- several groups, no group ---------------------------------------------------------------

TEST_CASE("two groups on one topic each see every record; a groupless consumer reads by seek",
          "[group]") {
  TempDir dir;
  const bool in_memory = GENERATE(false, true);
  CAPTURE(in_memory);
  auto broker = open_backend(in_memory, dir);
  auto topic = take(StringTopic::create(*broker, "t", small_topic(3)));
  fill(topic, 10);

  Group g1(*broker, "g1");
  Group g2(*broker, "g2");
  g1.join({"t"});
  g1.join({"t"});
  g2.join({"t"}, AssignmentStrategy::kCooperativeSticky);
  g1.settle();
  g2.settle();
  fill(topic, 5);  // more, while both groups are running
  g1.settle();
  g2.settle();
  g1.check_exactly_once(topic);
  g2.check_exactly_once(topic);
  CHECK(g1.describe().members.size() == 2);
  CHECK(g2.describe().members.size() == 1);
  CHECK(ConsumerGroup::list(*broker) == std::vector<std::string>{"g1", "g2"});

  StringConsumer loner(*broker, {});  // no group: assign and seek
  require_ok(loner.assign({{"t", 1}}));
  require_ok(loner.seek({"t", 1}, 12));
  auto records = take(loner.poll(std::chrono::milliseconds(0)));
  REQUIRE(records.size() == 3);
  CHECK(records[0].offset == 12);
  require_error(loner.commit(), ErrorCode::kInvalidArgument);
}

// --- rebalances -------------------------------------------------------------------------------

TEST_CASE("eager strategies revoke everything and reassign at each generation",
          "[group][rebalance][eager]") {
  TempDir dir;
  const bool in_memory = GENERATE(false, true);
  const AssignmentStrategy strategy =
      GENERATE(AssignmentStrategy::kRange, AssignmentStrategy::kRoundRobin);
  CAPTURE(in_memory, name_of(strategy));
  auto broker = open_backend(in_memory, dir);
  auto topic = take(StringTopic::create(*broker, "t", small_topic(6)));
  fill(topic, 4);
  Group g(*broker, "g");

  Member& a = g.join({"t"}, strategy);
  g.settle();
  CHECK(sorted(a.owned()) == all_of("t", 6));
  CHECK(a.assigned == std::vector<Partitions>{all_of("t", 6)});
  CHECK(a.revoked.empty());
  const auto gen1 = g.describe().generation;

  Member& b = g.join({"t"}, strategy);
  CHECK(g.describe().generation == gen1 + 1);
  CHECK(g.describe().state == "PreparingRebalance");  // a owns what b is to get
  fill(topic, 4);
  g.settle();
  // a gave up all six (after committing in on_revoked) and got its share back.
  REQUIRE(a.revoked.size() == 1);
  CHECK(sorted(a.revoked[0]) == all_of("t", 6));
  REQUIRE(a.assigned.size() == 2);
  CHECK(a.assigned[1].size() == 3);
  REQUIRE(b.assigned.size() == 1);
  CHECK(b.assigned[0].size() == 3);
  CHECK(sorted(b.assigned[0]) == sorted(b.owned()));
  for (const auto& r : a.revoke_commits) require_ok(r);

  Member& c = g.join({"t"}, strategy);
  fill(topic, 4);
  g.settle();
  REQUIRE(a.revoked.size() == 2);
  REQUIRE(b.revoked.size() == 1);
  CHECK(sorted(a.revoked[1]) == sorted(a.assigned[1]));  // everything it had
  CHECK(sorted(b.revoked[0]) == sorted(b.assigned[0]));
  for (Member* m : {&a, &b, &c}) CHECK(m->owned().size() == 2);

  const Partitions c_had = c.owned();
  g.close(c);
  REQUIRE(c.revoked.size() == 1);
  CHECK(sorted(c.revoked[0]) == sorted(c_had));
  fill(topic, 4);
  g.settle();
  REQUIRE(a.revoked.size() == 3);  // a and b revoke everything again
  REQUIRE(b.revoked.size() == 2);
  CHECK(a.owned().size() == 3);
  CHECK(b.owned().size() == 3);
  // A clean hand-over (commit in on_revoked) delivered nothing twice and lost nothing.
  g.check_exactly_once(topic);
  CHECK(g.describe().generation == gen1 + 3);
}

TEST_CASE("cooperative-sticky revokes only the partitions that move",
          "[group][rebalance][cooperative]") {
  TempDir dir;
  const bool in_memory = GENERATE(false, true);
  CAPTURE(in_memory);
  auto broker = open_backend(in_memory, dir);
  auto topic = take(StringTopic::create(*broker, "t", small_topic(6)));
  fill(topic, 4);
  Group g(*broker, "g");
  const auto coop = AssignmentStrategy::kCooperativeSticky;

  Member& a = g.join({"t"}, coop);
  g.settle();
  CHECK(sorted(a.owned()) == all_of("t", 6));

  Member& b = g.join({"t"}, coop);
  fill(topic, 4);
  g.poll(a);  // a releases the three that move, keeps the others
  REQUIRE(a.revoked.size() == 1);
  CHECK(a.revoked[0].size() == 3);
  CHECK(sorted(a.owned()) == minus(all_of("t", 6), a.revoked[0]));
  // Its commits for partitions it gave up are refused now.
  require_error(a.consumer.commit({{a.revoked[0][0], OffsetAndMetadata{0, {}, 0}}}),
                ErrorCode::kFenced);
  g.settle();
  REQUIRE(b.assigned.size() == 1);
  CHECK(sorted(b.assigned[0]) == sorted(a.revoked[0]));  // exactly what a released
  CHECK(a.revoked.size() == 1);

  Partitions a_before = a.owned(), b_before = b.owned();
  Member& c = g.join({"t"}, coop);
  fill(topic, 4);
  g.settle();
  REQUIRE(a.revoked.size() == 2);
  REQUIRE(b.revoked.size() == 1);
  CHECK(a.revoked[1] == minus(a_before, a.owned()));  // only the one that moved
  CHECK(b.revoked[0] == minus(b_before, b.owned()));
  CHECK(a.revoked[1].size() == 1);
  CHECK(b.revoked[0].size() == 1);
  REQUIRE(c.assigned.size() == 1);
  CHECK(sorted(c.assigned[0]) == sorted({a.revoked[1][0], b.revoked[0][0]}));
  for (Member* m : {&a, &b, &c}) CHECK(m->owned().size() == 2);

  a_before = a.owned();
  b_before = b.owned();
  g.close(c);
  fill(topic, 4);
  g.settle();
  CHECK(a.revoked.size() == 2);  // nothing more revoked from the stayers
  CHECK(b.revoked.size() == 1);
  CHECK(a.owned().size() == 3);
  CHECK(b.owned().size() == 3);
  const Partitions a_after = a.owned();
  for (const auto& tp : a_before)
    CHECK(std::find(a_after.begin(), a_after.end(), tp) != a_after.end());
  g.check_exactly_once(topic);
}

TEST_CASE("with auto-commit on, a rebalance commits what is revoked before it moves",
          "[group][rebalance][auto-commit]") {
  // No commit in the callbacks and an auto-commit interval that never passes: only the commit
  // poll() makes before revoking keeps the next owner from reading the records again.
  TempDir dir;
  const bool in_memory = GENERATE(false, true);
  const AssignmentStrategy strategy =
      GENERATE(AssignmentStrategy::kRange, AssignmentStrategy::kCooperativeSticky);
  CAPTURE(in_memory, name_of(strategy));
  auto clock = std::make_shared<ManualClock>(0);
  auto broker = open_backend(in_memory, dir, clock);
  auto topic = take(StringTopic::create(*broker, "t", small_topic(4)));
  ConsumerConfig cfg = member_config("g", strategy);
  cfg.enable_auto_commit = true;
  cfg.auto_commit_interval_ms = 1'000'000;
  Group g(*broker, "g");
  Member& a = g.join({"t"}, strategy, cfg);
  a.commit_on_revoke = false;
  fill(topic, 5);
  g.settle();
  Member& b = g.join({"t"}, strategy, cfg);
  b.commit_on_revoke = false;
  fill(topic, 5);
  g.settle();
  CHECK(!a.revoked.empty());
  CHECK(b.owned().size() == 2);
  g.check_exactly_once(topic);
}

TEST_CASE("a member blocked in poll takes its partitions as soon as their owner releases them",
          "[group][rebalance][blocking]") {
  TempDir dir;
  const bool in_memory = GENERATE(false, true);
  CAPTURE(in_memory);
  auto broker = open_backend(in_memory, dir);
  auto topic = take(StringTopic::create(*broker, "t", small_topic(2)));
  fill(topic, 3);
  StringConsumer a(*broker, member_config("g", AssignmentStrategy::kRange));
  require_ok(a.subscribe({"t"}));
  CHECK(take(a.poll(std::chrono::milliseconds(0))).size() == 6);
  require_ok(a.commit());
  fill(topic, 1);
  StringConsumer b(*broker, member_config("g", AssignmentStrategy::kRange));
  require_ok(b.subscribe({"t"}));
  std::size_t got = 0;
  std::chrono::steady_clock::duration took{};
  std::thread waiter([&] {
    const auto start = std::chrono::steady_clock::now();
    auto r = b.poll(std::chrono::seconds(10));
    took = std::chrono::steady_clock::now() - start;
    got = r ? r->size() : 0;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  (void)take(a.poll(std::chrono::milliseconds(0)));  // revokes (eager), keeps its half
  waiter.join();
  CHECK(got == 1);  // the record appended to its partition after a's commit
  // Woken by the release itself: poll's own once-a-second check-in would take up to a second.
  CHECK(took < std::chrono::milliseconds(900));
  CHECK(a.assignment().size() == 1);
  CHECK(b.assignment().size() == 1);
}

TEST_CASE("each partition has at most one owner while members come and go",
          "[group][rebalance][ownership]") {
  // Group::poll checks after every single poll that the coordinator, the consumers and the
  // records returned agree on one owner per partition; this drives many interleavings.
  TempDir dir;
  const AssignmentStrategy strategy =
      GENERATE(AssignmentStrategy::kRange, AssignmentStrategy::kRoundRobin,
               AssignmentStrategy::kCooperativeSticky);
  CAPTURE(name_of(strategy));
  auto broker = open_backend(true, dir);
  auto topic = take(StringTopic::create(*broker, "t", small_topic(5)));
  const auto seed = rill_test::test_seed();
  INFO("seed " << seed);
  std::mt19937_64 rng(seed);
  Group g(*broker, "g");
  g.join({"t"}, strategy);
  for (int step = 0; step < 200; ++step) {
    auto& members = g.members();
    std::vector<Member*> live;
    for (auto& m : members) {
      if (!m->closed) live.push_back(m.get());
    }
    const int action = static_cast<int>(rng() % 10);
    if (action == 0 && live.size() < 4) {
      g.join({"t"}, strategy);
    } else if (action == 1 && live.size() > 1) {
      g.close(*live[rng() % live.size()]);
    } else if (action == 2) {
      fill(topic, 1);
    } else {
      g.poll(*live[rng() % live.size()]);
    }
  }
  g.settle();
  g.check_exactly_once(topic);
}

TEST_CASE("a strategy other than the group's is refused until the group is empty",
          "[group][strategy]") {
  TempDir dir;
  const bool in_memory = GENERATE(false, true);
  CAPTURE(in_memory);
  auto broker = open_backend(in_memory, dir);
  auto topic = take(StringTopic::create(*broker, "t", small_topic(2)));
  StringConsumer a(*broker, member_config("g", AssignmentStrategy::kRange));
  require_ok(a.subscribe({"t"}));
  StringConsumer b(*broker, member_config("g", AssignmentStrategy::kCooperativeSticky));
  require_error(b.subscribe({"t"}), ErrorCode::kInvalidArgument);
  CHECK(b.member_id().empty());
  ConsumerGroup admin(*broker, "g");
  CHECK(take(admin.describe()).members.size() == 1);
  CHECK(take(admin.describe()).strategy == "range");
  require_ok(a.close());
  require_ok(b.subscribe({"t"}));
  CHECK(take(admin.describe()).strategy == "cooperative-sticky");
  CHECK(!b.member_id().empty());
}

TEST_CASE("new partitions of a subscribed topic are assigned at the next poll",
          "[group][rebalance]") {
  TempDir dir;
  const bool in_memory = GENERATE(false, true);
  CAPTURE(in_memory);
  auto broker = open_backend(in_memory, dir);
  auto topic = take(StringTopic::create(*broker, "t", small_topic(2)));
  Group g(*broker, "g");
  Member& a = g.join({"t"}, AssignmentStrategy::kCooperativeSticky);
  Member& b = g.join({"t"}, AssignmentStrategy::kCooperativeSticky);
  g.settle();
  CHECK(a.owned().size() + b.owned().size() == 2);
  take(broker->add_partitions("t", 6));
  fill(topic, 3);
  g.settle();
  CHECK(a.owned().size() == 3);
  CHECK(b.owned().size() == 3);
  g.check_exactly_once(topic);
}

// --- liveness -------------------------------------------------------------------------------

TEST_CASE("a member that stops polling loses its partitions once its timeout passes",
          "[group][liveness]") {
  TempDir dir;
  const bool in_memory = GENERATE(false, true);
  const AssignmentStrategy strategy =
      GENERATE(AssignmentStrategy::kRange, AssignmentStrategy::kCooperativeSticky);
  const bool by_session = GENERATE(false, true);  // session_timeout_ms, else max_poll_interval_ms
  CAPTURE(in_memory, name_of(strategy), by_session);
  auto clock = std::make_shared<ManualClock>(1'000'000);
  auto broker = open_backend(in_memory, dir, clock);
  auto topic = take(StringTopic::create(*broker, "t", small_topic(4)));
  const std::int64_t timeout = 10'000;
  ConsumerConfig cfg = member_config("g", strategy);
  cfg.session_timeout_ms = by_session ? timeout : 600'000;
  cfg.max_poll_interval_ms = by_session ? 600'000 : timeout;

  Group g(*broker, "g");
  Member& a = g.join({"t"}, strategy, cfg);
  Member& b = g.join({"t"}, strategy, cfg);
  g.settle();
  a.commit_on_revoke = false;  // a commits only what it is told to below
  fill(topic, 10);
  g.settle();
  const Partitions a_had = sorted(a.owned());
  REQUIRE(a_had.size() == 2);
  // a has read all of its partitions but committed only part of each.
  for (const auto& [tp, offsets] : a.seen) CHECK(offsets.size() == 10);
  require_ok(a.consumer.commit(
      {{a_had[0], OffsetAndMetadata{4, {}, 0}}, {a_had[1], OffsetAndMetadata{6, {}, 0}}}));
  require_ok(b.consumer.commit());
  const auto gen = g.describe().generation;

  // a stops polling. At exactly the timeout it is still a member ...
  clock->advance_ms(timeout);
  g.poll(b);
  CHECK(g.describe().members.size() == 2);
  CHECK(b.lost.empty());
  // ... one millisecond later the next call of another member removes it, and b takes over
  // a's partitions from a's committed offsets in that same poll.
  clock->advance_ms(1);
  a.zombie = true;
  g.poll(b);
  auto d = g.describe();
  REQUIRE(d.members.size() == 1);
  CHECK(d.members[0].member_id == b.consumer.member_id());
  CHECK(d.generation == gen + 1);
  g.poll(b);
  CHECK(sorted(b.owned()) == all_of("t", 4));
  if (strategy == AssignmentStrategy::kCooperativeSticky) {
    CHECK(b.assigned.back() == a_had);  // only what was a's
  } else {
    CHECK(sorted(b.assigned.back()) == all_of("t", 4));  // eager: everything, after a revoke
  }
  CHECK(b.seen[a_had[0]] == std::vector<std::int64_t>{4, 5, 6, 7, 8, 9});
  CHECK(b.seen[a_had[1]] == std::vector<std::int64_t>{6, 7, 8, 9});

  // a's late commits are refused and change nothing.
  require_error(a.consumer.commit(), ErrorCode::kFenced);
  require_error(a.consumer.commit({{a_had[0], OffsetAndMetadata{10, {}, 0}}}), ErrorCode::kFenced);
  CHECK(take(a.consumer.committed(a_had[0]))->offset == 4);
  CHECK(take(a.consumer.committed(a_had[1]))->offset == 6);
  require_ok(b.consumer.commit());

  // a's next poll reports the loss (not a revocation) and rejoins as a new member.
  const std::string old_id = a.consumer.member_id();
  g.poll(a);
  REQUIRE(a.lost.size() == 1);
  CHECK(sorted(a.lost[0]) == a_had);
  CHECK(a.revoked.empty());
  CHECK(a.consumer.member_id() != old_id);
  CHECK(g.describe().members.size() == 2);
  a.commit_on_revoke = true;

  // The group settles with both again; nothing more is lost or duplicated.
  fill(topic, 5);
  g.settle();
  CHECK(a.owned().size() == 2);
  CHECK(b.owned().size() == 2);
  for (std::int32_t p = 0; p < 4; ++p) {
    std::map<std::int64_t, int> count;
    for (Member* m : {&a, &b}) {
      for (std::int64_t o : m->seen[{"t", p}]) ++count[o];
    }
    CAPTURE(p);
    CHECK(count.size() == 15);  // nothing lost
    for (const auto& [offset, n] : count) {
      // Twice only in a's uncommitted range: [4, 10) of its first partition, [6, 10) of its
      // second.
      const TopicPartition tp{"t", p};
      const bool uncommitted = (tp == a_had[0] && offset >= 4 && offset < 10) ||
                               (tp == a_had[1] && offset >= 6 && offset < 10);
      CAPTURE(offset);
      CHECK(n == (uncommitted ? 2 : 1));
    }
  }
}

TEST_CASE("the admin view also removes members whose timeouts passed", "[group][liveness]") {
  TempDir dir;
  auto clock = std::make_shared<ManualClock>(0);
  auto broker = open_backend(true, dir, clock);
  auto topic = take(StringTopic::create(*broker, "t", small_topic(2)));
  ConsumerConfig cfg = member_config("g", AssignmentStrategy::kRange);
  cfg.max_poll_interval_ms = 1000;
  StringConsumer a(*broker, cfg);
  require_ok(a.subscribe({"t"}));
  (void)take(a.poll(std::chrono::milliseconds(0)));
  ConsumerGroup admin(*broker, "g");
  require_error(admin.reset_offsets("t", OffsetResetSpec::earliest()), ErrorCode::kInvalidArgument);
  clock->advance_ms(1001);
  // Nobody polled, yet the group is empty now: describe, list and the admin calls see it.
  CHECK(take(admin.describe()).members.empty());
  CHECK(take(admin.describe()).state == "Empty");
  CHECK(ConsumerGroup::list(*broker).empty());
  require_ok(admin.reset_offsets("t", OffsetResetSpec::earliest()));
}

TEST_CASE("closing a member the group removed reports on_lost and commits nothing",
          "[group][liveness][regression]") {
  // Regression: close() ran on_revoked for partitions that other members already owned (its
  // commits there failed) and then failed itself with kFenced.
  TempDir dir;
  const bool in_memory = GENERATE(false, true);
  const bool auto_commit = GENERATE(false, true);
  CAPTURE(in_memory, auto_commit);
  auto clock = std::make_shared<ManualClock>(0);
  auto broker = open_backend(in_memory, dir, clock);
  auto topic = take(StringTopic::create(*broker, "t", small_topic(2)));
  fill(topic, 3);
  ConsumerConfig cfg = member_config("g", AssignmentStrategy::kRange);
  cfg.max_poll_interval_ms = 1000;
  cfg.enable_auto_commit = auto_commit;
  Group g(*broker, "g");
  Member& a = g.join({"t"}, AssignmentStrategy::kRange, cfg);
  Member& b = g.join({"t"}, AssignmentStrategy::kRange, cfg);
  g.settle();
  const Partitions a_had = a.owned();
  REQUIRE(a_had.size() == 1);
  require_ok(a.consumer.commit({{a_had[0], OffsetAndMetadata{1, {}, 0}}}));
  clock->advance_ms(1001);
  a.zombie = true;
  g.poll(b);  // removes a
  REQUIRE(g.describe().members.size() == 1);
  g.settle();  // b owns both now
  g.close(a);
  CHECK(a.lost == std::vector<Partitions>{a_had});
  CHECK(a.revoked.empty());
  CHECK(take(b.consumer.committed(a_had[0]))->offset == 1);
  CHECK(g.describe().members.size() == 1);
}

TEST_CASE("a removed member rejoins with the subscription it changed to",
          "[group][liveness][regression]") {
  // Regression: subscribe() on a member changed the group's record of its topics but not the
  // consumer's own, so after being removed it rejoined with its first subscription.
  TempDir dir;
  auto clock = std::make_shared<ManualClock>(0);
  auto broker = open_backend(true, dir, clock);
  take(StringTopic::create(*broker, "a", small_topic(1)));
  take(StringTopic::create(*broker, "b", small_topic(1)));
  ConsumerConfig cfg = member_config("g", AssignmentStrategy::kRange);
  cfg.max_poll_interval_ms = 1000;
  Group g(*broker, "g");
  Member& x = g.join({"a"}, AssignmentStrategy::kRange, cfg);
  Member& y = g.join({"a"}, AssignmentStrategy::kRange, cfg);
  g.settle();
  require_ok(x.consumer.subscribe({"b"}, x.callbacks()));
  g.settle();
  CHECK(x.owned() == Partitions{{"b", 0}});
  clock->advance_ms(1001);
  x.zombie = true;
  g.poll(y);  // removes x
  g.poll(x);  // learns it, rejoins
  g.settle();
  REQUIRE(x.lost.size() == 1);
  CHECK(x.owned() == Partitions{{"b", 0}});
  CHECK(y.owned() == Partitions{{"a", 0}});
  for (const auto& md : g.describe().members) {
    if (md.member_id == x.consumer.member_id()) CHECK(md.topics == std::vector<std::string>{"b"});
  }
}

// --- restart ----------------------------------------------------------------------------------

TEST_CASE("after a restart each group resumes from its committed offsets", "[group][restart]") {
  TempDir dir;
  auto clock = std::make_shared<ManualClock>(77'000);
  std::vector<rill::PartitionLag> lag1, lag2;
  {
    auto broker = open_backend(false, dir, clock);
    auto topic = take(StringTopic::create(*broker, "t", small_topic(3)));
    fill(topic, 10);
    StringConsumer g1(*broker, member_config("g1", AssignmentStrategy::kRange));
    require_ok(g1.subscribe({"t"}));
    (void)take(g1.poll(std::chrono::milliseconds(0)));
    require_ok(g1.commit({{{"t", 0}, OffsetAndMetadata{3, "m0", 0}},
                          {{"t", 1}, OffsetAndMetadata{5, "", 0}},
                          {{"t", 2}, OffsetAndMetadata{1, "", 0}}}));
    require_ok(g1.commit({{{"t", 2}, OffsetAndMetadata{10, "", 0}}}));  // the latest wins
    StringConsumer g2(*broker, member_config("g2", AssignmentStrategy::kRange));
    require_ok(g2.commit({{{"t", 0}, OffsetAndMetadata{1, "", 0}}}));  // by a non-member
    lag1 = take(ConsumerGroup(*broker, "g1").lag());
    lag2 = take(ConsumerGroup(*broker, "g2").lag());
    CHECK(ConsumerGroup::list(*broker) == std::vector<std::string>{"g1", "g2"});
  }
  auto check_lag = [](const std::vector<rill::PartitionLag>& got,
                      const std::vector<std::optional<std::int64_t>>& committed) {
    REQUIRE(got.size() == committed.size());
    for (std::size_t p = 0; p < got.size(); ++p) {
      CAPTURE(p);
      CHECK(got[p].partition == TopicPartition{"t", static_cast<std::int32_t>(p)});
      CHECK(got[p].committed == committed[p]);
      CHECK(got[p].end_offset == 10);
      CHECK(got[p].lag == 10 - committed[p].value_or(0));
    }
  };
  check_lag(lag1, {3, 5, 10});
  check_lag(lag2, {1, std::nullopt, std::nullopt});

  auto broker = open_backend(false, dir, clock);
  auto topic = take(StringTopic::open(*broker, "t"));
  CHECK(ConsumerGroup::list(*broker) == std::vector<std::string>{"g1", "g2"});
  check_lag(take(ConsumerGroup(*broker, "g1").lag()), {3, 5, 10});
  check_lag(take(ConsumerGroup(*broker, "g2").lag()), {1, std::nullopt, std::nullopt});
  StringConsumer probe(*broker, member_config("g1", AssignmentStrategy::kRange));
  auto om = take(probe.committed({"t", 0}));
  REQUIRE(om.has_value());
  CHECK(om->offset == 3);
  CHECK(om->metadata == "m0");
  CHECK(om->commit_timestamp_ms == 77'000);

  Group g1(*broker, "g1");
  Group g2(*broker, "g2");
  Member& m1 = g1.join({"t"});
  Member& m2 = g2.join({"t"});
  g1.settle();
  g2.settle();
  auto offsets = [](Member& m, std::int32_t p) { return m.seen[{"t", p}]; };
  auto from = [](std::int64_t a) {
    std::vector<std::int64_t> v;
    for (std::int64_t i = a; i < 10; ++i) v.push_back(i);
    return v;
  };
  CHECK(offsets(m1, 0) == from(3));
  CHECK(offsets(m1, 1) == from(5));
  CHECK(offsets(m1, 2).empty());
  CHECK(offsets(m2, 0) == from(1));
  CHECK(offsets(m2, 1) == from(0));  // nothing committed: auto_offset_reset (earliest)
  CHECK(offsets(m2, 2) == from(0));
}

TEST_CASE("committed offsets survive a SIGKILL of the committing process",
          "[group][restart][crash]") {
  // The child commits and kills itself without closing anything; what commit() acknowledged
  // is in the mapped offsets log, which the kernel keeps. The parent forks with no broker open.
  TempDir dir;
  {
    auto broker = open_backend(false, dir);
    auto topic = take(StringTopic::create(*broker, "t", small_topic(2)));
    fill(topic, 10);
  }
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    // No Catch2 here: report through the exit status.
    rill::BrokerOptions options;
    options.prefault_bytes = 0;
    auto broker = Broker::open(dir.sub("data"), options);
    if (!broker) ::_exit(2);
    StringConsumer c(**broker, member_config("g", AssignmentStrategy::kRange));
    for (std::int64_t i = 1; i <= 7; ++i) {
      if (!c.commit({{{"t", 0}, OffsetAndMetadata{i, "m", 0}}, {{"t", 1}, {2 * i, "", 0}}})) {
        ::_exit(3);
      }
    }
    ::kill(::getpid(), SIGKILL);
    ::_exit(4);
  }
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  REQUIRE(WIFSIGNALED(status));
  REQUIRE(WTERMSIG(status) == SIGKILL);
  auto broker = open_backend(false, dir);
  StringConsumer probe(*broker, member_config("g", AssignmentStrategy::kRange));
  auto om = take(probe.committed({"t", 0}));
  REQUIRE(om.has_value());
  CHECK(om->offset == 7);
  CHECK(om->metadata == "m");
  CHECK(take(probe.committed({"t", 1}))->offset == 14);
  CHECK(ConsumerGroup::list(*broker) == std::vector<std::string>{"g"});
}

TEST_CASE("commit metadata up to 65535 bytes is kept across a restart; longer is refused",
          "[group][commit][restart]") {
  TempDir dir;
  const std::string longest(65535, 'm');
  {
    auto broker = open_backend(false, dir);
    auto topic = take(StringTopic::create(*broker, "t", small_topic(1)));
    StringConsumer c(*broker, member_config("g", AssignmentStrategy::kRange));
    require_ok(c.commit({{{"t", 0}, OffsetAndMetadata{1, longest, 0}}}));
    require_error(c.commit({{{"t", 0}, OffsetAndMetadata{2, longest + "m", 0}}}),
                  ErrorCode::kInvalidArgument);
    CHECK(take(c.committed({"t", 0}))->offset == 1);
  }
  auto broker = open_backend(false, dir);
  StringConsumer c(*broker, member_config("g", AssignmentStrategy::kRange));
  auto om = take(c.committed({"t", 0}));
  REQUIRE(om.has_value());
  CHECK(om->offset == 1);
  CHECK(om->metadata == longest);
}

// --- the admin view -------------------------------------------------------------------------

TEST_CASE("describe names members, what each owns, the generation, state and strategy",
          "[group][admin]") {
  TempDir dir;
  const bool in_memory = GENERATE(false, true);
  CAPTURE(in_memory);
  auto broker = open_backend(in_memory, dir);
  auto topic = take(StringTopic::create(*broker, "t", small_topic(4)));
  ConsumerGroup admin(*broker, "g");
  auto d = take(admin.describe());
  CHECK(d.group_id == "g");
  CHECK(d.state == "Empty");
  CHECK(d.members.empty());
  require_error(ConsumerGroup(*broker, "").describe(), ErrorCode::kInvalidArgument);

  ConsumerConfig cfg = member_config("g", AssignmentStrategy::kRoundRobin);
  cfg.client_id = "alpha";
  Group g(*broker, "g");
  Member& a = g.join({"t"}, AssignmentStrategy::kRoundRobin, cfg);
  d = take(admin.describe());
  const auto gen = d.generation;
  CHECK(d.strategy == "roundrobin");
  CHECK(d.state == "PreparingRebalance");  // joined, nothing claimed yet
  REQUIRE(d.members.size() == 1);
  CHECK(d.members[0].member_id == a.consumer.member_id());
  CHECK(d.members[0].client_id == "alpha");
  CHECK(d.members[0].member_id.rfind("alpha-", 0) == 0);
  CHECK(d.members[0].topics == std::vector<std::string>{"t"});
  CHECK(d.members[0].assignment.empty());
  g.settle();
  d = take(admin.describe());
  CHECK(d.state == "Stable");
  CHECK(d.generation == gen);
  CHECK(d.members[0].assignment == all_of("t", 4));

  Member& b = g.join({"t"}, AssignmentStrategy::kRoundRobin);
  d = take(admin.describe());
  CHECK(d.generation == gen + 1);
  CHECK(d.state == "PreparingRebalance");
  CHECK(d.members.size() == 2);
  g.settle();
  d = take(admin.describe());
  CHECK(d.state == "Stable");
  for (const auto& md : d.members) {
    const Member& m = md.member_id == a.consumer.member_id() ? a : b;
    CHECK(md.assignment == sorted(m.owned()));
    CHECK(md.assignment.size() == 2);
  }
  g.close(a);
  g.close(b);
  d = take(admin.describe());
  CHECK(d.state == "Empty");
  CHECK(d.members.empty());
  CHECK(d.generation == gen + 3);
}

TEST_CASE("lag is each partition's end offset minus the group's committed offset",
          "[group][admin][lag]") {
  TempDir dir;
  const bool in_memory = GENERATE(false, true);
  CAPTURE(in_memory);
  auto broker = open_backend(in_memory, dir);
  auto topic = take(StringTopic::create(*broker, "t", small_topic(2)));
  StringProducer producer(*broker);
  for (int i = 0; i < 10; ++i) take(producer.send(topic, {.value = "x", .partition = 0}));
  for (int i = 0; i < 5; ++i) take(producer.send(topic, {.value = "x", .partition = 1}));
  ConsumerGroup admin(*broker, "g");
  CHECK(take(admin.lag()).empty());  // neither commits nor members: no topics

  StringConsumer c(*broker, member_config("g", AssignmentStrategy::kRange));
  require_ok(c.subscribe({"t"}));
  auto lag = take(admin.lag());
  REQUIRE(lag.size() == 2);
  CHECK(lag[0].committed == std::nullopt);
  CHECK(lag[0].lag == 10);  // from the start
  CHECK(lag[1].lag == 5);

  (void)take(c.poll(std::chrono::milliseconds(0)));
  require_ok(c.commit({{{"t", 0}, OffsetAndMetadata{4, {}, 0}}}));
  take(producer.send(topic, {.value = "x", .partition = 1}));
  lag = take(admin.lag());
  REQUIRE(lag.size() == 2);
  CHECK(lag[0].partition == TopicPartition{"t", 0});
  CHECK(lag[0].committed == 4);
  CHECK(lag[0].end_offset == 10);
  CHECK(lag[0].lag == 6);
  CHECK(lag[1].committed == std::nullopt);
  CHECK(lag[1].end_offset == 6);
  CHECK(lag[1].lag == 6);
  (void)take(c.poll(std::chrono::milliseconds(0)));  // reads the record sent since
  require_ok(c.commit());
  for (const auto& l : take(admin.lag())) CHECK(l.lag == 0);
  require_ok(c.close());
  // Without members the committed topics still count.
  lag = take(admin.lag());
  CHECK(lag.size() == 2);
}

TEST_CASE("reset_offsets moves an inactive group's offsets; refused while it has members",
          "[group][admin][reset]") {
  TempDir dir;
  const bool in_memory = GENERATE(false, true);
  CAPTURE(in_memory);
  auto clock = std::make_shared<ManualClock>(1000);
  auto broker = open_backend(in_memory, dir, clock);
  TopicConfig tc = small_topic(2);
  tc.segment_bytes = 2048;
  tc.retention_bytes = 4096;
  auto topic = take(StringTopic::create(*broker, "t", tc));
  StringProducer producer(*broker);
  // p0: 100 records at 1000, 1001, ...; p1: 3 records at 1000..1002.
  for (int i = 0; i < 100; ++i) {
    take(producer.send(topic,
                       {.value = std::string(40, 'x'), .timestamp_ms = 1000 + i, .partition = 0}));
  }
  for (int i = 0; i < 3; ++i) {
    take(producer.send(topic, {.value = "y", .timestamp_ms = 1000 + i, .partition = 1}));
  }
  (void)take(topic.log(0)->enforce_retention());
  const std::int64_t start0 = topic.log(0)->start_offset();
  REQUIRE(start0 > 0);
  ConsumerGroup admin(*broker, "g");
  auto committed = [&](std::int32_t p) -> std::optional<std::int64_t> {
    for (const auto& l : take(admin.lag())) {
      if (l.partition.partition == p) return l.committed;
    }
    return std::nullopt;
  };

  {
    StringConsumer active(*broker, member_config("g", AssignmentStrategy::kRange));
    require_ok(active.subscribe({"t"}));
    (void)take(active.poll(std::chrono::milliseconds(0)));
    require_ok(active.commit({{{"t", 0}, OffsetAndMetadata{50, {}, 0}}}));
    require_error(admin.reset_offsets("t", OffsetResetSpec::earliest()),
                  ErrorCode::kInvalidArgument);
    CHECK(committed(0) == 50);  // unchanged
  }

  require_ok(admin.reset_offsets("t", OffsetResetSpec::earliest()));
  CHECK(committed(0) == start0);
  CHECK(committed(1) == 0);
  require_ok(admin.reset_offsets("t", OffsetResetSpec::latest()));
  CHECK(committed(0) == 100);
  CHECK(committed(1) == 3);
  require_ok(admin.reset_offsets("t", OffsetResetSpec::to_timestamp(1090)));
  CHECK(committed(0) == 90);
  CHECK(committed(1) == 3);  // no record that late: the end
  require_ok(admin.reset_offsets("t", OffsetResetSpec::to_timestamp(1001)));
  CHECK(committed(0) == start0);  // older records are gone: the first one left
  CHECK(committed(1) == 1);
  // 2 is below p0's start: refused, and p1 (where 2 would do) is not changed either; 99 is past
  // p1's end, and p0 is not changed.
  require_error(admin.reset_offsets("t", OffsetResetSpec::to_offset(2)), ErrorCode::kOutOfRange);
  CHECK(committed(1) == 1);
  require_error(admin.reset_offsets("t", OffsetResetSpec::to_offset(99)), ErrorCode::kOutOfRange);
  CHECK(committed(0) == start0);
  auto u = take(StringTopic::create(*broker, "u", small_topic(2)));
  fill(u, 5);
  require_ok(admin.reset_offsets("u", OffsetResetSpec::to_offset(3)));
  for (const auto& l : take(admin.lag())) {
    if (l.partition.topic == "u") CHECK(l.committed == 3);
  }
  require_error(admin.reset_offsets("missing", OffsetResetSpec::earliest()), ErrorCode::kNotFound);

  // The next member starts where the reset put the offsets.
  require_ok(admin.reset_offsets("t", OffsetResetSpec::to_timestamp(1095)));
  Group g(*broker, "g");
  Member& m = g.join({"t"});
  g.settle();
  CHECK(m.seen[{"t", 0}] == std::vector<std::int64_t>{95, 96, 97, 98, 99});
  CHECK(m.seen[{"t", 1}].empty());
  CHECK(m.seen[{"u", 0}].empty());  // not subscribed
}

TEST_CASE("delete_group forgets committed offsets, for good; refused while members are active",
          "[group][admin][delete]") {
  TempDir dir;
  const bool in_memory = GENERATE(false, true);
  CAPTURE(in_memory);
  auto broker = open_backend(in_memory, dir);
  {
    auto topic = take(StringTopic::create(*broker, "t", small_topic(2)));
    fill(topic, 5);
    StringConsumer keep(*broker, member_config("keep", AssignmentStrategy::kRange));
    require_ok(keep.commit({{{"t", 0}, OffsetAndMetadata{2, {}, 0}}}));
    StringConsumer c(*broker, member_config("g", AssignmentStrategy::kRange));
    require_ok(c.subscribe({"t"}));
    (void)take(c.poll(std::chrono::milliseconds(0)));
    require_ok(c.commit());
    ConsumerGroup admin(*broker, "g");
    require_error(admin.delete_group(), ErrorCode::kInvalidArgument);
    CHECK(take(c.committed({"t", 0}))->offset == 5);
    require_ok(c.close());
    CHECK(ConsumerGroup::list(*broker) == std::vector<std::string>{"g", "keep"});

    require_ok(admin.delete_group());
    StringConsumer probe(*broker, member_config("g", AssignmentStrategy::kRange));
    CHECK(take(probe.committed({"t", 0})) == std::nullopt);
    CHECK(take(probe.committed({"t", 1})) == std::nullopt);
    CHECK(take(admin.lag()).empty());
    CHECK(ConsumerGroup::list(*broker) == std::vector<std::string>{"keep"});
    require_ok(admin.delete_group());  // nothing left: still fine
  }
  if (!in_memory) {
    broker.reset();
    broker = open_backend(false, dir);
  }
  StringConsumer probe(*broker, member_config("g", AssignmentStrategy::kRange));
  CHECK(take(probe.committed({"t", 0})) == std::nullopt);
  CHECK(ConsumerGroup::list(*broker) == std::vector<std::string>{"keep"});
  StringConsumer kept(*broker, member_config("keep", AssignmentStrategy::kRange));
  CHECK(take(kept.committed({"t", 0}))->offset == 2);
  // A deleted group starts over: auto_offset_reset, then new commits.
  Group g(*broker, "g");
  Member& m = g.join({"t"});
  g.settle();
  CHECK(m.seen[{"t", 0}].size() == 5);
  require_ok(m.consumer.commit());
  CHECK(ConsumerGroup::list(*broker) == std::vector<std::string>{"g", "keep"});
}

// --- closed consumers, bad offsets, deleted topics ------------------------------------------

TEST_CASE("a closed consumer cannot subscribe, assign or commit again", "[group][close]") {
  // A closed consumer that subscribed again joined the group with nothing left to make it
  // leave (its destructor's close() returned at once): its share of the partitions went
  // unread until its session timed out, and the group kept a pointer into it.
  TempDir dir;
  auto broker = open_backend(true, dir);
  auto topic = take(StringTopic::create(*broker, "t", small_topic(2)));
  fill(topic, 3);
  {
    StringConsumer c(*broker, member_config("g", AssignmentStrategy::kRange));
    require_ok(c.subscribe({"t"}));
    (void)take(c.poll(std::chrono::milliseconds(0)));
    require_ok(c.close());
    require_error(c.subscribe({"t"}), ErrorCode::kClosed);
    require_error(c.assign({{"t", 0}}), ErrorCode::kClosed);
    require_error(c.commit(), ErrorCode::kClosed);
    require_error(c.commit({{{"t", 0}, OffsetAndMetadata{1, {}, 0}}}), ErrorCode::kClosed);
    require_error(c.poll(std::chrono::milliseconds(0)), ErrorCode::kClosed);
  }
  // The consumer is gone and left nothing behind: a new member takes every partition at once.
  ConsumerGroup admin(*broker, "g");
  CHECK(take(admin.describe()).members.empty());
  StringConsumer next(*broker, member_config("g", AssignmentStrategy::kRange));
  require_ok(next.subscribe({"t"}));
  (void)take(next.poll(std::chrono::milliseconds(0)));
  CHECK(next.assignment().size() == 2);
}

TEST_CASE("negative offsets and partitions that do not exist are not committed",
          "[group][commit]") {
  TempDir dir;
  const bool in_memory = GENERATE(false, true);
  CAPTURE(in_memory);
  auto broker = open_backend(in_memory, dir);
  auto topic = take(StringTopic::create(*broker, "t", small_topic(2)));
  fill(topic, 5);
  StringConsumer c(*broker, member_config("g", AssignmentStrategy::kRange));
  require_ok(c.commit({{{"t", 0}, OffsetAndMetadata{3, {}, 0}}}));
  // Outside the group's membership (no subscribe): the partition must exist.
  require_error(c.commit({{{"t", 0}, OffsetAndMetadata{-1, {}, 0}}}), ErrorCode::kInvalidArgument);
  require_error(
      c.commit({{{"t", 1}, OffsetAndMetadata{2, {}, 0}}, {{"t", 0}, OffsetAndMetadata{-5, {}, 0}}}),
      ErrorCode::kInvalidArgument);
  require_error(c.commit({{{"t", 2}, OffsetAndMetadata{1, {}, 0}}}), ErrorCode::kNotFound);
  require_error(c.commit({{{"nope", 0}, OffsetAndMetadata{1, {}, 0}}}), ErrorCode::kNotFound);
  // Nothing of a refused commit was kept.
  CHECK(take(c.committed({"t", 0}))->offset == 3);
  CHECK(take(c.committed({"t", 1})) == std::nullopt);
  // A member's commits too.
  require_ok(c.subscribe({"t"}));
  (void)take(c.poll(std::chrono::milliseconds(0)));
  require_error(c.commit({{{"t", 0}, OffsetAndMetadata{-1, {}, 0}}}), ErrorCode::kInvalidArgument);
  CHECK(take(c.committed({"t", 0}))->offset == 3);
  // The admin view's lag of a partition with a committed offset.
  ConsumerGroup admin(*broker, "g");
  for (const auto& l : take(admin.lag())) CHECK(l.lag >= 0);
}

TEST_CASE("a topic deleted and created again under a live group", "[group][delete-topic]") {
  // The member keeps its subscription by name, as Kafka's does: it moves on to the topic now
  // under the name, from the start (deleting the topic forgot the group's offsets). Before,
  // a member granted a partition its old handle did not have dereferenced a null log, and one
  // whose partitions kept their numbers read the deleted topic's closed logs forever.
  TempDir dir;
  const bool in_memory = GENERATE(false, true);
  const std::int32_t again = GENERATE(2, 4);  // partitions of the new topic
  CAPTURE(in_memory, again);
  auto broker = open_backend(in_memory, dir);
  auto old_topic = take(StringTopic::create(*broker, "t", small_topic(2)));
  fill(old_topic, 5);
  Group g(*broker, "g");
  Member& m = g.join({"t"});
  g.settle();
  require_ok(m.consumer.commit());
  CHECK(take(m.consumer.committed({"t", 0}))->offset == 5);

  require_ok(broker->delete_topic("t"));
  auto topic = take(StringTopic::create(*broker, "t", small_topic(again)));
  fill(topic, 3);
  m.seen.clear();
  for (int i = 0; i < 20; ++i) g.poll(m);
  CHECK(m.owned().size() == static_cast<std::size_t>(again));
  for (std::int32_t p = 0; p < again; ++p) {
    CAPTURE(p);
    CHECK(m.seen[{"t", p}] == std::vector<std::int64_t>{0, 1, 2});
  }
  // And it commits there.
  require_ok(m.consumer.commit());
  CHECK(take(m.consumer.committed({"t", 0}))->offset == 3);
}

// Topics "t" and "u" of one partition and `n` records each; group "g" commits `t_at` on t
// and `u_at` on u.
void commit_on_two_topics(Broker& broker, int n, std::int64_t t_at, std::int64_t u_at) {
  auto topic = take(StringTopic::create(broker, "t", small_topic(1)));
  auto other = take(StringTopic::create(broker, "u", small_topic(1)));
  fill(topic, n);
  fill(other, n);
  StringConsumer c(broker, member_config("g", AssignmentStrategy::kRange));
  require_ok(c.commit(
      {{{"t", 0}, OffsetAndMetadata{t_at, {}, 0}}, {{"u", 0}, OffsetAndMetadata{u_at, {}, 0}}}));
}

TEST_CASE("deleting a topic forgets every group's committed offsets for it",
          "[group][delete-topic]") {
  // Kafka deletes a deleted topic's offsets. Kept, they made a group start a topic created
  // again under the name at the old offsets, skipping the records below them.
  TempDir dir;
  const bool in_memory = GENERATE(false, true);
  CAPTURE(in_memory);
  auto broker = open_backend(in_memory, dir);
  commit_on_two_topics(*broker, 8, 6, 7);
  {
    StringConsumer d(*broker, member_config("h", AssignmentStrategy::kRange));
    require_ok(d.commit({{{"t", 0}, OffsetAndMetadata{4, {}, 0}}}));
  }
  require_ok(broker->delete_topic("t"));
  const auto check = [&] {
    StringConsumer probe(*broker, member_config("g", AssignmentStrategy::kRange));
    CHECK(take(probe.committed({"t", 0})) == std::nullopt);
    CHECK(take(probe.committed({"u", 0}))->offset == 7);
    StringConsumer probe_h(*broker, member_config("h", AssignmentStrategy::kRange));
    CHECK(take(probe_h.committed({"t", 0})) == std::nullopt);
    CHECK(ConsumerGroup::list(*broker) == std::vector<std::string>{"g"});
  };
  check();
  if (!in_memory) {  // the tombstones are durable
    broker.reset();
    broker = open_backend(false, dir);
    check();
  }
  auto topic = take(StringTopic::create(*broker, "t", small_topic(1)));
  fill(topic, 8);
  Group g(*broker, "g");
  Member& m = g.join({"t"});
  g.settle();
  CHECK(m.seen[{"t", 0}].size() == 8);  // from 0, not from the deleted topic's 6
}

TEST_CASE("offsets of a topic removed while the broker was closed are forgotten on open",
          "[group][delete-topic]") {
  // A crash between deleting a topic and forgetting its offsets, or a topic directory removed
  // by hand: the offsets are forgotten when the broker next loads them.
  TempDir dir;
  auto broker = open_backend(false, dir);
  commit_on_two_topics(*broker, 4, 3, 2);
  broker.reset();
  std::filesystem::remove_all(dir.sub("data") + "/t");
  broker = open_backend(false, dir);
  StringConsumer probe(*broker, member_config("g", AssignmentStrategy::kRange));
  CHECK(take(probe.committed({"t", 0})) == std::nullopt);
  CHECK(take(probe.committed({"u", 0}))->offset == 2);
}

TEST_CASE("a log sink may list groups when a rebalance is reported", "[group][log-sink]") {
  // The sink is called with no lock of rill's held. list_groups() held the broker's group
  // table lock while asking each group for members, which can expire one and report the
  // rebalance: a sink calling list_groups() then deadlocked. And a rebalance caused by
  // run_due()'s expiry was reported only at the group's next call.
  TempDir dir;
  auto clock = std::make_shared<ManualClock>(1'000'000);
  rill::BrokerOptions options;
  options.prefault_bytes = 0;
  options.clock = clock;
  options.background_thread = false;
  Broker* self = nullptr;
  std::atomic<int> rebalances{0};
  std::atomic<int> listed{0};
  options.log_sink = [&](const rill::LogEvent& e) {
    if (e.kind != rill::LogEvent::Kind::kRebalance) return;
    ++rebalances;
    if (self != nullptr) listed += static_cast<int>(self->list_groups().size());
  };
  auto broker = take(Broker::open_in_memory(options));
  self = broker.get();
  auto topic = take(StringTopic::create(*broker, "t", small_topic(2)));
  ConsumerConfig cfg = member_config("g", AssignmentStrategy::kRange);
  cfg.session_timeout_ms = 10'000;
  StringConsumer c(*broker, cfg);
  require_ok(c.subscribe({"t"}));
  (void)take(c.poll(std::chrono::milliseconds(0)));
  clock->advance_ms(20'000);
  for (const char* how : {"list_groups", "run_due"}) {
    CAPTURE(how);
    const int before = rebalances.load();
    auto done = std::async(std::launch::async, [&] {
      if (std::string(how) == "list_groups") {
        (void)broker->list_groups();
      } else {
        (void)broker->run_due();
      }
    });
    const bool finished = done.wait_for(std::chrono::seconds(20)) == std::future_status::ready;
    if (!finished) {
      // Deadlocked: fail now; the stuck thread keeps the process from exiting cleanly.
      FAIL_CHECK("deadlock in " << how);
      std::_Exit(1);
    }
    CHECK(rebalances.load() == before + 1);  // the expiry, reported at once
    // The member rejoins at its next poll; expire it again for the next round.
    (void)take(c.poll(std::chrono::milliseconds(0)));
    CHECK(c.assignment().size() == 2);
    clock->advance_ms(20'000);
  }
  CHECK(listed.load() > 0);  // the sink's own calls listed the group
}

TEST_CASE("a failed commit before a rebalance gives the partitions up and is reported",
          "[group][auto-commit][log-sink]") {
  // With auto-commit, a member commits what it gives up before the next owner takes it. When
  // that commit fails (here: the offsets topic cannot roll to a new segment), Kafka's consumer
  // logs it and gives the partitions up all the same; rill did the same silently. It now
  // says so through the log sink, and the next owner reads from the last commit that held.
  TempDir dir;
  std::vector<rill::LogEvent> events;
  std::mutex events_mu;
  rill::BrokerOptions options;
  options.prefault_bytes = 0;
  options.log_sink = [&](const rill::LogEvent& e) {
    std::lock_guard lock(events_mu);
    events.push_back(e);
  };
  auto broker = take(Broker::open(dir.sub("data"), options));
  // The offsets topic, made ahead with small segments so that commits fill one quickly.
  TopicConfig offsets_config;
  offsets_config.partitions = 1;
  offsets_config.cleanup_policy = rill::CleanupPolicy::kCompact;
  offsets_config.segment_bytes = 64 * 1024;
  offsets_config.max_record_bytes = 1024;
  (void)take(broker->create_topic(Broker::kOffsetsTopic, offsets_config));
  auto topic = take(StringTopic::create(*broker, "t", small_topic(2)));
  fill(topic, 4);
  ConsumerConfig cfg = member_config("g", AssignmentStrategy::kRange);
  cfg.enable_auto_commit = true;
  cfg.auto_commit_interval_ms = 1'000'000'000;  // only the rebalance commits
  StringConsumer a(*broker, cfg);
  require_ok(a.subscribe({"t"}));
  CHECK(take(a.poll(std::chrono::milliseconds(0))).size() == 8);
  require_ok(
      a.commit({{{"t", 0}, OffsetAndMetadata{1, {}, 0}}, {{"t", 1}, OffsetAndMetadata{1, {}, 0}}}));
  {
    // No new segment for the offsets topic from now on; commit until its segment is full.
    rill_test::FaultInjector full(
        {.op = rill_test::FileOp::kGrow, .err = ENOSPC, .path_contains = "__consumer_offsets"});
    int commits = 0;
    while (a.commit({{{"t", 0}, OffsetAndMetadata{1, {}, 0}}})) REQUIRE(++commits < 100'000);
    REQUIRE(full.failures() > 0);
    StringConsumer b(*broker, cfg);
    require_ok(b.subscribe({"t"}));
    (void)take(b.poll(std::chrono::milliseconds(0)));  // joins: a must give one partition up
    (void)take(a.poll(std::chrono::milliseconds(0)));  // ... and its commit of 4 fails
    auto got = take(b.poll(std::chrono::milliseconds(0)));
    REQUIRE(a.assignment().size() == 1);
    REQUIRE(b.assignment().size() == 1);
    // b starts where the last commit that held left the partition: offset 1, not 4.
    REQUIRE(got.size() == 3);
    CHECK(got.begin()->offset == 1);
    full.heal();
    require_ok(b.close());
  }
  std::lock_guard lock(events_mu);
  const auto failed = std::count_if(events.begin(), events.end(), [](const rill::LogEvent& e) {
    return e.kind == rill::LogEvent::Kind::kCommitFailed;
  });
  CHECK(failed == 1);
  for (const auto& e : events) {
    if (e.kind == rill::LogEvent::Kind::kCommitFailed) {
      CHECK(e.message.find("group 'g'") != std::string::npos);
      CHECK(std::string(rill::to_string(e.kind)) == "commit-failed");
    }
  }
}

TEST_CASE("a commit keeps a member's session; timeouts not above 0 are refused",
          "[group][liveness]") {
  // session_timeout_ms removes a member that makes no call at all; a commit is a call. A
  // member working through a long batch that commits as it goes kept only its poll time and
  // was removed at the session timeout.
  TempDir dir;
  auto clock = std::make_shared<ManualClock>(1'000'000);
  auto broker = open_backend(true, dir, clock);
  auto topic = take(StringTopic::create(*broker, "t", small_topic(2)));
  fill(topic, 4);
  ConsumerConfig cfg = member_config("g", AssignmentStrategy::kRange);
  cfg.session_timeout_ms = 10'000;
  cfg.max_poll_interval_ms = 600'000;
  Group g(*broker, "g");
  Member& a = g.join({"t"}, AssignmentStrategy::kRange, cfg);
  Member& b = g.join({"t"}, AssignmentStrategy::kRange, cfg);
  g.settle();
  REQUIRE(a.owned().size() == 1);
  for (int step = 0; step < 5; ++step) {  // 45 s of work in a's batch, a commit every 9 s
    clock->advance_ms(9'000);
    require_ok(a.consumer.commit());
    g.poll(b);
  }
  CHECK(g.describe().members.size() == 2);
  CHECK(b.owned().size() == 1);
  // Silent past its session: removed at the next call of another member.
  clock->advance_ms(10'001);
  a.zombie = true;
  g.poll(b);
  CHECK(g.describe().members.size() == 1);
  require_error(a.consumer.commit(), ErrorCode::kFenced);

  for (const auto& [session, interval] :
       {std::pair<std::int64_t, std::int64_t>{0, 1000}, {-5, 1000}, {1000, 0}, {1000, -1}}) {
    CAPTURE(session, interval);
    ConsumerConfig bad = member_config("h", AssignmentStrategy::kRange);
    bad.session_timeout_ms = session;
    bad.max_poll_interval_ms = interval;
    StringConsumer c(*broker, bad);
    require_error(c.subscribe({"t"}), ErrorCode::kInvalidArgument);
  }
}

TEST_CASE("a wall clock that jumps does not expire the group's members", "[group][liveness]") {
  // Liveness was judged on the wall clock: an NTP step or a resumed VM moving it forward by
  // more than session_timeout_ms removed every member but the caller at the next call, and a
  // step back kept a dead member for the step's length. Timeouts now run on
  // Clock::elapsed_ms(), which never jumps.
  class SteppedWallClock final : public rill::Clock {
   public:
    std::int64_t now_ms() const noexcept override { return 1'000'000 + step_.load(); }
    std::int64_t elapsed_ms() const noexcept override { return elapsed_.load(); }
    std::atomic<std::int64_t> step_{0};
    std::atomic<std::int64_t> elapsed_{0};
  };
  auto clock = std::make_shared<SteppedWallClock>();
  TempDir dir;
  auto broker = open_backend(true, dir, clock);
  auto topic = take(StringTopic::create(*broker, "t", small_topic(2)));
  ConsumerConfig cfg = member_config("g", AssignmentStrategy::kRange);
  cfg.session_timeout_ms = 10'000;
  cfg.max_poll_interval_ms = 30'000;
  Group g(*broker, "g");
  Member& a = g.join({"t"}, AssignmentStrategy::kRange, cfg);
  Member& b = g.join({"t"}, AssignmentStrategy::kRange, cfg);
  g.settle();
  const auto gen = g.describe().generation;
  clock->step_ += 3'600'000;  // the wall clock jumps an hour ahead
  g.poll(b);
  CHECK(g.describe().members.size() == 2);
  CHECK(g.describe().generation == gen);
  CHECK(a.lost.empty());
  // Time that does pass still counts.
  clock->elapsed_ += 10'001;
  a.zombie = true;
  g.poll(b);
  CHECK(g.describe().members.size() == 1);
}

}  // namespace group_test
