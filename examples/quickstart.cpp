// rill quickstart: produce to a topic, consume it with a consumer group, commit, then reopen
// everything and resume where the group left off.
//
//   quickstart <data-dir>
//
// Run it again on the same directory: the group picks up exactly the records the new run
// produced, because its committed offsets survived the restart.
// [doc:program]
#include <chrono>
#include <cstdio>
#include <string>

// [doc:includes]
#include <rill/rill.hpp>
// [end:includes]

using namespace std::chrono_literals;
using Orders = rill::Topic<std::string, std::string>;

static int die(const char* what, const rill::Error& e) {
  std::fprintf(stderr, "%s: %s\n", what, e.to_string().c_str());
  return 1;
}

// Consumes with the "billing" group until `want` records came in (or 5 s pass); commits.
static int consume(rill::Broker& broker, int want, const std::string& expect_prefix) {
  rill::Consumer<std::string, std::string> consumer(
      broker, {.group_id = "billing",
               .auto_offset_reset = rill::OffsetReset::kEarliest,
               .enable_auto_commit = false});
  if (auto s = consumer.subscribe({"orders"}); !s) return die("subscribe", s.error());
  int got = 0;
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (got < want && std::chrono::steady_clock::now() < deadline) {
    auto records = consumer.poll(100ms);  // blocks until records arrive
    if (!records) return die("poll", records.error());
    for (const auto& r : *records) {
      std::printf("  consumed %s-%d@%lld  key=%s value=\"%s\"\n", std::string(r.topic).c_str(),
                  r.partition, static_cast<long long>(r.offset), r.key->c_str(), r.value.c_str());
      if (r.value.rfind(expect_prefix, 0) != 0) {
        std::fprintf(stderr, "unexpected record: the group should resume after its commit\n");
        return 1;
      }
      ++got;
    }
    if (auto c = consumer.commit(); !c) return die("commit", c.error());
  }
  if (got != want) {
    std::fprintf(stderr, "consumed %d records, expected %d\n", got, want);
    return 1;
  }
  return 0;  // the consumer leaves the group as it goes out of scope
}

int main(int argc, char** argv) {
  const std::string dir = argc > 1 ? argv[1] : "rill-data";
  int run = 0;
  {
    auto broker = rill::Broker::open(dir);  // creates the directory if needed
    if (!broker) return die("open", broker.error());
    auto orders = Orders::create_if_absent(**broker, "orders", {.partitions = 3});
    if (!orders) return die("topic", orders.error());
    for (std::int32_t p = 0; p < orders->partitions(); ++p)
      run += static_cast<int>(orders->log(p)->end_offset());
    run /= 6;  // each run produces 6 orders
    std::printf("run %d on %s\n", run, dir.c_str());

    rill::Producer<std::string, std::string> producer(**broker);
    const std::string prefix = "run " + std::to_string(run) + " ";
    for (int i = 0; i < 6; ++i) {
      const std::string customer = "customer-" + std::to_string(i % 4);
      auto md = producer.send(*orders, customer, prefix + "order " + std::to_string(i));
      if (!md) return die("send", md.error());
      std::printf("  produced %s-%d@%lld  key=%s\n", std::string(md->topic).c_str(), md->partition,
                  static_cast<long long>(md->offset), customer.c_str());
    }
    if (int rc = consume(**broker, 6, prefix); rc != 0) return rc;
  }  // everything closes here, as if the process had exited

  auto broker = rill::Broker::open(dir);
  if (!broker) return die("reopen", broker.error());
  rill::ConsumerGroup billing(**broker, "billing");
  auto lag = billing.lag();
  if (!lag) return die("lag", lag.error());
  std::int64_t total = 0;
  for (const auto& p : *lag) total += p.lag;
  std::printf("reopened: group \"billing\" has lag %lld (committed offsets survived)\n",
              static_cast<long long>(total));
  if (total != 0) return 1;
  std::printf("run it again: the group resumes after run %d's records\n", run);
  return 0;
}
// [end:program]
