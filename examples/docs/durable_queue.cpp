// The code of docs/guide-durable-queue.md: a durable work queue. A producer enqueues jobs; two
// workers in one consumer group share the partitions, handle each job and commit after it.
// Run it again on the same directory: the workers pick up only the new run's jobs.
//
//   durable_queue <data-dir>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include <rill/rill.hpp>

using namespace std::chrono_literals;

constexpr int kJobsPerRun = 200;

static int die(const char* what, const rill::Error& e) {
  std::fprintf(stderr, "%s: %s\n", what, e.to_string().c_str());
  return 1;
}

// A job's work: here, counting it. Must be idempotent: after a crash, the jobs after the last
// commit are delivered again.
static void handle(std::atomic<int>& done, const std::string& /*job*/) {
  done.fetch_add(1, std::memory_order_relaxed);
}

// [doc:worker]
// One worker: a consumer in the "workers" group, on its own thread (a consumer is
// single-owner). It commits after each batch it handled: at-least-once delivery.
void worker(rill::Broker& broker, std::atomic<bool>& stop, std::atomic<int>& done) {
  rill::Consumer<std::string, std::string> jobs(broker,
                                                {.group_id = "workers",
                                                 .auto_offset_reset = rill::OffsetReset::kEarliest,
                                                 .enable_auto_commit = false,
                                                 .max_poll_records = 100});
  // Commit what was handled before partitions move to another worker: a clean rebalance
  // then hands nothing out twice.
  if (!jobs.subscribe({"jobs"}, {.on_revoked = [&](const auto&) { (void)jobs.commit(); }})) return;
  while (!stop.load()) {
    auto batch = jobs.poll(100ms);  // blocks until jobs arrive; an append wakes it at once
    if (!batch) break;              // kInterrupted after wakeup(), kClosed, kCorruption
    for (const auto& job : *batch) handle(done, job.value);
    if (!batch->empty()) (void)jobs.commit();  // kFenced if the group removed this worker
  }
}  // the consumer leaves the group: its partitions go to the other workers
// [end:worker]

int main(int argc, char** argv) {
  const std::string dir = argc > 1 ? argv[1] : "rill-queue";
  // [doc:open]
  auto broker = rill::Broker::open(dir);
  if (!broker) return die("open", broker.error());  // kLocked: another process has it
  auto jobs = rill::Topic<std::string, std::string>::create_if_absent(
      **broker, "jobs",
      {.partitions = 4,
       .segment_bytes = 16u << 20,
       .retention_bytes = 256LL << 20,  // per partition; handled or not, old segments go
       .durability = rill::storage::Durability::interval(100)});  // fdatasync every 100 ms
  if (!jobs) return die("jobs topic", jobs.error());
  // [end:open]

  rill::ConsumerGroup group(**broker, "workers");
  auto before = group.lag();
  if (!before) return die("lag", before.error());
  for (const auto& l : *before) {
    if (l.lag != 0) return std::fprintf(stderr, "the last run left jobs unhandled\n"), 1;
  }

  // [doc:enqueue]
  rill::Producer<std::string, std::string> producer(**broker);  // thread-safe: share it
  for (int i = 0; i < kJobsPerRun; ++i) {
    const std::string customer = "customer-" + std::to_string(i % 10);
    // Keyed: one customer's jobs land in one partition, so they are handled in order.
    auto queued = producer.send(*jobs, customer, "resize image " + std::to_string(i));
    if (!queued) return die("enqueue", queued.error());  // nothing was appended
  }
  // [end:enqueue]

  // [doc:run_workers]
  std::atomic<bool> stop{false};
  std::atomic<int> done{0};
  std::vector<std::thread> workers;
  for (int i = 0; i < 2; ++i) workers.emplace_back([&] { worker(**broker, stop, done); });
  // [end:run_workers]
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (done.load() < kJobsPerRun && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(10ms);
  }
  stop.store(true);
  for (auto& t : workers) t.join();

  // [doc:lag]
  auto lag = rill::ConsumerGroup(**broker, "workers").lag();
  if (!lag) return die("lag", lag.error());
  for (const auto& l : *lag) {
    std::printf("%s-%d committed %lld end %lld lag %lld\n", l.partition.topic.c_str(),
                l.partition.partition, static_cast<long long>(l.committed.value_or(-1)),
                static_cast<long long>(l.end_offset), static_cast<long long>(l.lag));
  }
  // [end:lag]
  std::printf("handled %d job(s); %d expected\n", done.load(), kJobsPerRun);
  // At-least-once: a worker that stopped between handling and committing hands its last batch
  // to the next run, so a run handles every job at least once.
  if (done.load() < kJobsPerRun) return 1;
  auto after = group.lag();
  if (!after) return die("lag", after.error());
  for (const auto& l : *after) {
    if (l.lag != 0) return std::fprintf(stderr, "lag left after the workers stopped\n"), 1;
  }
  return 0;
}
