// bench/broker_bench.cpp: rill's typed layer (Broker, Producer, Consumer, consumer groups)
// against the raw partition logs (rill::storage::Log) underneath, measured in the same run on
// the same machine. Prints one table; docs/performance.md ("Broker, producer and consumer")
// explains every row and records the results.
//
//   broker_bench [--records N] [--value-bytes V] [--dir PATH] [--rounds R] [--samples S]
//                [--pace-us MIN,MAX] [--rebalances K]
//
// Keys are std::uint64_t (the "uint64" serde: 8 bytes, big-endian), values std::string of V
// bytes (default 100). Every record gets its timestamp from the broker's clock.
//
// Rows (throughput rows: the median over R rounds; every round uses a fresh broker directory,
// and every measurement a fresh topic; ratio = the median over rounds of rill / baseline, each
// pair measured back to back in one round):
//  P1-P4  Producer<uint64_t, std::string>::send, one keyed record per call, into a topic of 1 or
//         8 partitions from 1 or 2 threads sharing one Producer, beside raw Log::append of the
//         same key and value bytes into the partition logs of another topic of the same shape,
//         routed the same way (partition_for_key: Kafka's murmur2), from as many threads.
//         Topics: TopicConfig defaults except segment_bytes = 1 GiB (one segment per partition).
//         The N records go in 4 chunks, rill and raw alternating ABBA; the notes give the
//         sending threads' CPU time per record.
//  G1-G4  a consumer group of 1, 2 or 4 Consumers (one thread each, subscribed to one
//         8-partition topic, auto-commit off, commit() after every poll that returned records,
//         max_poll_records 500 = default) reading N records produced beforehand, beside as many
//         threads reading the same partition logs with Log::read_into (500 records per call),
//         the partitions split among them as the range assignor splits them.
//  G1v    (information) G1 with Consumer<uint64_t, std::string_view>: values without a copy.
//  E1-E4  the same with one producer thread sending the N records concurrently (Producer::send
//         into a fresh topic; the baseline: raw Log::append into another fresh topic, its
//         readers woken by a storage::Notifier, the primitive Consumer::poll sleeps on).
//  L      produce-to-poll latency: one consumer thread blocked in Consumer::poll (group of 1,
//         8 partitions), a producer sending one keyed record at a time, spin-paced 20-50 us after
//         the consumer's previous receipt; latency = the consumer's steady_clock once poll()
//         returned the record minus the producer's steady_clock just before send() (carried in
//         the value). Baseline: log_bench's hand-off on a raw Log (append; wait_for +
//         read_into), alternating sample by sample with the rill hand-off on the same threads.
//  R      rebalance time: 4 members polling in their own threads own the 8 partitions; a 5th
//         calls subscribe(); the time until the group's describe() says "Stable" with all 5
//         members owning partitions. K times each for range and cooperative-sticky.
#include <sys/statfs.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <latch>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "bench_util.hpp"
#include "rill/broker.hpp"
#include "rill/consumer.hpp"
#include "rill/consumer_group.hpp"
#include "rill/partitioner.hpp"
#include "rill/producer.hpp"
#include "rill/storage/log.hpp"
#include "rill/storage/notifier.hpp"
#include "rill/topic.hpp"

namespace {

using bench_util::cpu_relax;
using bench_util::filesystem_of;
using bench_util::first_line_matching;
using bench_util::median;
using bench_util::percentile;
using bench_util::read_first_line;

using SteadyClock = std::chrono::steady_clock;
using Key = std::uint64_t;
using Value = std::string;
using TypedTopic = rill::Topic<Key, Value>;
using rill::Broker;
using rill::storage::Log;
using rill::storage::Record;
using rill::storage::RecordBatch;
using rill::storage::RecordView;

constexpr std::int32_t kGroupPartitions = 8;  // the topic of the consumer rows
const std::size_t kMaxPollRecords = rill::ConsumerConfig{}.max_poll_records;
constexpr int kSendChunks = 4;  // producer rows: rill and raw alternate in this many chunks

std::string g_root;  // our fresh directory, removed at exit

void remove_root() {
  if (g_root.empty()) return;
  std::error_code ec;
  std::filesystem::remove_all(g_root, ec);
  g_root.clear();
}

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "broker_bench: %s\n", what.c_str());
  std::fflush(stdout);
  // _exit: worker threads may still run; no destructors, but remove our files first.
  std::error_code ec;
  if (!g_root.empty()) std::filesystem::remove_all(g_root, ec);
  std::_Exit(1);
}

template <typename T>
T unwrap(rill::Result<T>&& r, const char* what) {
  if (!r) die(std::string(what) + ": " + r.error().to_string());
  return std::move(*r);
}
void unwrap(rill::Result<void>&& r, const char* what) {
  if (!r) die(std::string(what) + ": " + r.error().to_string());
}

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(SteadyClock::now().time_since_epoch())
      .count();
}

// The median over rounds of rill / baseline, each pair measured back to back in one round:
// steadier than a ratio of medians when the machine's load changes between rounds.
double median_ratio(const std::vector<double>& rill, const std::vector<double>& base) {
  std::vector<double> r;
  for (std::size_t i = 0; i < rill.size(); ++i) r.push_back(rill[i] / base[i]);
  return median(r);
}

// The key's bytes as the "uint64" serde writes them (big-endian), by hand.
inline void key_bytes(std::uint64_t k, char out[8]) {
  const std::uint64_t be = __builtin_bswap64(k);
  std::memcpy(out, &be, 8);
}

// What every reader does with a record: the value's size and first byte, the key's low byte.
inline std::uint64_t touch(std::uint64_t key, std::string_view value) {
  return value.size() + static_cast<unsigned char>(value[0]) + (key & 0xFF);
}

// --- options ---------------------------------------------------------------------------------

struct Options {
  std::uint64_t records = 1'000'000;
  std::size_t value_bytes = 100;
  std::string dir;  // parent of our fresh directory; $TMPDIR or /tmp by default
  int rounds = 3;
  std::uint64_t samples = 100'000;
  int pace_min_us = 20;
  int pace_max_us = 50;
  int rebalances = 20;
};

[[noreturn]] void usage(const char* bad) {
  if (bad != nullptr) std::fprintf(stderr, "broker_bench: bad argument: %s\n", bad);
  std::fprintf(stderr,
               "usage: broker_bench [--records N] [--value-bytes V (>= 8)] [--dir PATH]\n"
               "                    [--rounds R] [--samples S] [--pace-us MIN,MAX]\n"
               "                    [--rebalances K]\n"
               "defaults: --records 1000000 --value-bytes 100 --dir $TMPDIR|/tmp --rounds 3\n"
               "          --samples 100000 --pace-us 20,50 --rebalances 20\n");
  std::exit(bad != nullptr ? 2 : 0);
}

std::uint64_t parse_u64(const char* s, const char* flag) {
  char* end = nullptr;
  errno = 0;
  const unsigned long long v = std::strtoull(s, &end, 10);
  if (errno != 0 || end == s || *end != '\0' || s[0] == '-') usage(flag);
  return v;
}

Options parse(int argc, char** argv) {
  Options o;
  if (const char* t = std::getenv("TMPDIR"); t != nullptr && *t != '\0') o.dir = t;
  if (o.dir.empty()) o.dir = "/tmp";
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "-h" || a == "--help") usage(nullptr);
    if (i + 1 >= argc) usage(argv[i]);
    const char* v = argv[++i];
    if (a == "--records") {
      o.records = parse_u64(v, argv[i - 1]);
    } else if (a == "--value-bytes") {
      o.value_bytes = parse_u64(v, argv[i - 1]);
    } else if (a == "--dir") {
      o.dir = v;
    } else if (a == "--rounds") {
      o.rounds = static_cast<int>(parse_u64(v, argv[i - 1]));
    } else if (a == "--samples") {
      o.samples = parse_u64(v, argv[i - 1]);
    } else if (a == "--rebalances") {
      o.rebalances = static_cast<int>(parse_u64(v, argv[i - 1]));
    } else if (a == "--pace-us") {
      if (std::sscanf(v, "%d,%d", &o.pace_min_us, &o.pace_max_us) != 2) usage(argv[i - 1]);
    } else {
      usage(argv[i - 1]);
    }
  }
  if (o.records < 8 || o.records > (1ull << 40) || o.value_bytes < 8 ||
      o.value_bytes > (512u << 10) || o.rounds < 1 || o.rounds > 99 || o.samples < 100 ||
      o.pace_min_us < 0 || o.pace_max_us < o.pace_min_us || o.rebalances < 1 ||
      o.rebalances > 10000) {
    usage("out of range (--records >= 8, --value-bytes within [8, 512 KiB], --samples >= 100)");
  }
  return o;
}

// --- machine description ---------------------------------------------------------------------

double load1() {
  double l = 0;
  if (std::FILE* f = std::fopen("/proc/loadavg", "r")) {
    if (std::fscanf(f, "%lf", &l) != 1) l = 0;
    std::fclose(f);
  }
  return l;
}

// --- topics ----------------------------------------------------------------------------------

rill::TopicConfig producer_topic_config(std::int32_t partitions) {
  rill::TopicConfig c;
  c.partitions = partitions;
  c.segment_bytes = std::size_t{1} << 30;  // all records of a partition in one segment
  return c;
}

rill::TopicConfig group_topic_config() {
  rill::TopicConfig c;  // every field default (64 MiB segments)
  c.partitions = kGroupPartitions;
  return c;
}

std::vector<Log*> logs_of(const TypedTopic& t) {
  std::vector<Log*> out;
  for (std::int32_t p = 0; p < t.partitions(); ++p) out.push_back(t.log(p));
  return out;
}

std::vector<std::int64_t> end_offsets(const TypedTopic& t) {
  std::vector<std::int64_t> out;
  for (std::int32_t p = 0; p < t.partitions(); ++p) out.push_back(t.log(p)->end_offset());
  return out;
}

double thread_cpu_seconds() {
  struct timespec ts;
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

struct Timing {
  double wall = 0;  // seconds from the release until the last thread finished
  double cpu = 0;   // CPU seconds the threads used in body(), summed
};

// Runs body(t) on `threads` threads released together.
Timing run_threads(int threads, const std::function<void(int)>& body) {
  std::latch ready(threads);
  std::latch go(1);
  std::vector<std::thread> ts;
  std::vector<double> cpu(static_cast<std::size_t>(threads));
  for (int t = 0; t < threads; ++t) {
    ts.emplace_back([&, t] {
      ready.count_down();
      go.wait();
      const double c0 = thread_cpu_seconds();
      body(t);
      cpu[static_cast<std::size_t>(t)] = thread_cpu_seconds() - c0;
    });
  }
  ready.wait();
  const auto t0 = SteadyClock::now();
  go.count_down();
  for (auto& th : ts) th.join();
  Timing out;
  out.wall = std::chrono::duration<double>(SteadyClock::now() - t0).count();
  for (double c : cpu) out.cpu += c;
  return out;
}

// The first of the keys [lo, hi) that thread t of `threads` handles (share(t + 1) ends them).
std::uint64_t share(std::uint64_t lo, std::uint64_t hi, int t, int threads) {
  return lo + (hi - lo) * static_cast<std::uint64_t>(t) / static_cast<std::uint64_t>(threads);
}

// --- producer rows ---------------------------------------------------------------------------

// Sends keys [lo, hi) through one shared Producer from `threads` threads.
Timing rill_send(rill::Producer<Key, Value>& producer, const TypedTopic& topic, std::uint64_t lo,
                 std::uint64_t hi, std::size_t vb, int threads) {
  return run_threads(threads, [&](int t) {
    std::string value(vb, 'v');
    const std::uint64_t end = share(lo, hi, t + 1, threads);
    for (std::uint64_t i = share(lo, hi, t, threads); i < end; ++i) {
      value[0] = static_cast<char>(i);
      auto r = producer.send(topic, Key{i}, value);
      if (!r) die("Producer::send: " + r.error().to_string());
    }
  });
}

// The same records by hand: key bytes, partition_for_key, Log::append.
Timing raw_append(const std::vector<Log*>& logs, std::uint64_t lo, std::uint64_t hi, std::size_t vb,
                  int threads) {
  const auto partitions = static_cast<std::int32_t>(logs.size());
  return run_threads(threads, [&](int t) {
    std::string value(vb, 'v');
    char key[8];
    Record rec;
    rec.key = std::string_view(key, 8);
    rec.value = std::string_view(value);
    const std::uint64_t end = share(lo, hi, t + 1, threads);
    for (std::uint64_t i = share(lo, hi, t, threads); i < end; ++i) {
      value[0] = static_cast<char>(i);
      key_bytes(i, key);
      const std::int32_t p = rill::partition_for_key(std::string_view(key, 8), partitions);
      auto r = logs[static_cast<std::size_t>(p)]->append(rec);
      if (!r) die("Log::append: " + r.error().to_string());
    }
  });
}

// --- consumer rows ---------------------------------------------------------------------------

struct ReadTotals {
  double seconds = 0;
  std::uint64_t count = 0;
  std::uint64_t sum = 0;
  std::uint64_t batches = 0;  // non-empty polls (rill) or non-empty read rounds (baseline)
};

rill::ConsumerConfig group_config(const std::string& group,
                                  rill::AssignmentStrategy s = rill::AssignmentStrategy::kRange) {
  rill::ConsumerConfig c;
  c.group_id = group;
  c.auto_offset_reset = rill::OffsetReset::kEarliest;
  c.enable_auto_commit = false;
  c.assignment_strategy = s;
  return c;
}

// `k` consumers of group `group` on topic `topic` read until n records have arrived in all;
// `produce`, when set, runs on one more thread released with them. The clock runs from the
// release until the last record arrived.
// V: the consumer's value type (std::string, or std::string_view to decode without a copy).
template <typename V>
ReadTotals rill_group(Broker& broker, const std::string& topic, const std::string& group, int k,
                      std::uint64_t n, const std::function<void()>& produce) {
  using C = rill::Consumer<Key, V>;
  std::vector<std::unique_ptr<C>> consumers;
  for (int j = 0; j < k; ++j) consumers.push_back(std::make_unique<C>(broker, group_config(group)));
  std::atomic<std::uint64_t> consumed{0};
  std::atomic<std::uint64_t> sum{0};
  std::atomic<std::uint64_t> batches{0};
  std::atomic<std::int64_t> end_ns{0};
  std::latch joined(k);
  std::latch ready(k + (produce ? 1 : 0));
  std::latch go(1);
  std::vector<std::thread> ts;
  for (int j = 0; j < k; ++j) {
    ts.emplace_back([&, j] {
      C& c = *consumers[static_cast<std::size_t>(j)];
      unwrap(c.subscribe({topic}), "Consumer::subscribe");
      joined.count_down();
      ready.count_down();
      go.wait();
      std::uint64_t local = 0;
      while (consumed.load(std::memory_order_relaxed) < n) {
        auto recs = c.poll(std::chrono::milliseconds(100));
        if (!recs) {
          if (recs.error().code() == rill::ErrorCode::kInterrupted) break;
          die("Consumer::poll: " + recs.error().to_string());
        }
        if (recs->empty()) continue;
        batches.fetch_add(1, std::memory_order_relaxed);
        for (const auto& r : *recs) local += touch(*r.key, r.value);
        unwrap(c.commit(), "Consumer::commit");
        const std::uint64_t total = consumed.fetch_add(recs->size()) + recs->size();
        if (total >= n) {
          end_ns.store(now_ns());
          for (int o = 0; o < k; ++o) {
            if (o != j) consumers[static_cast<std::size_t>(o)]->wakeup();
          }
          break;
        }
      }
      sum.fetch_add(local);
    });
  }
  std::thread producer;
  if (produce) {
    producer = std::thread([&] {
      joined.wait();  // every member is in the group before the first record
      ready.count_down();
      go.wait();
      produce();
    });
  }
  ready.wait();
  const std::int64_t t0 = now_ns();
  go.count_down();
  for (auto& th : ts) th.join();
  if (producer.joinable()) producer.join();
  consumers.clear();  // leave the group
  ReadTotals out;
  out.seconds = static_cast<double>(end_ns.load() - t0) / 1e9;
  out.count = consumed.load();
  out.sum = sum.load();
  out.batches = batches.load();
  return out;
}

// The baseline: k threads reading the partition logs with Log::read_into, partitions split in
// contiguous ranges (as the range assignor splits them), each woken by a Notifier rung by
// appends (the primitive Consumer::poll sleeps on) when it has caught up.
ReadTotals raw_readers(const std::vector<Log*>& logs, int k, std::uint64_t n,
                       const std::function<void()>& produce) {
  const auto np = logs.size();
  std::vector<std::unique_ptr<rill::storage::Notifier>> bells;
  for (int j = 0; j < k; ++j) bells.push_back(std::make_unique<rill::storage::Notifier>());
  std::vector<std::vector<std::size_t>> owned(static_cast<std::size_t>(k));
  for (int j = 0; j < k; ++j) {
    const std::size_t lo = np * static_cast<std::size_t>(j) / static_cast<std::size_t>(k);
    const std::size_t hi = np * static_cast<std::size_t>(j + 1) / static_cast<std::size_t>(k);
    for (std::size_t p = lo; p < hi; ++p) {
      owned[static_cast<std::size_t>(j)].push_back(p);
      logs[p]->add_notifier(bells[static_cast<std::size_t>(j)].get());
    }
  }
  std::atomic<std::uint64_t> consumed{0};
  std::atomic<std::uint64_t> sum{0};
  std::atomic<std::uint64_t> batches{0};
  std::atomic<std::int64_t> end_ns{0};
  std::latch ready(k + (produce ? 1 : 0));
  std::latch go(1);
  std::vector<std::thread> ts;
  for (int j = 0; j < k; ++j) {
    ts.emplace_back([&, j] {
      const auto& mine = owned[static_cast<std::size_t>(j)];
      rill::storage::Notifier& bell = *bells[static_cast<std::size_t>(j)];
      std::vector<RecordBatch> reads(mine.size());
      std::vector<std::int64_t> pos(mine.size());
      for (std::size_t i = 0; i < mine.size(); ++i) pos[i] = logs[mine[i]]->start_offset();
      ready.count_down();
      go.wait();
      std::uint64_t local = 0;
      while (consumed.load(std::memory_order_relaxed) < n) {
        const auto ticket = bell.prepare();
        std::uint64_t got = 0;
        for (std::size_t i = 0; i < mine.size(); ++i) {
          RecordBatch& b = reads[i];
          unwrap(logs[mine[i]]->read_into(pos[i], b, kMaxPollRecords), "Log::read_into");
          for (const RecordView& rv : b) {
            std::uint64_t key;
            std::memcpy(&key, rv.key()->data(), 8);
            local += touch(__builtin_bswap64(key), *rv.value());
          }
          got += b.size();
          pos[i] = b.next_offset();
        }
        if (got == 0) {
          bell.wait(ticket, std::chrono::milliseconds(100));
          continue;
        }
        batches.fetch_add(1, std::memory_order_relaxed);
        const std::uint64_t total = consumed.fetch_add(got) + got;
        if (total >= n) {
          end_ns.store(now_ns());
          for (auto& b : bells) b->notify();
          break;
        }
      }
      sum.fetch_add(local);
    });
  }
  std::thread producer;
  if (produce) {
    producer = std::thread([&] {
      ready.count_down();
      go.wait();
      produce();
    });
  }
  ready.wait();
  const std::int64_t t0 = now_ns();
  go.count_down();
  for (auto& th : ts) th.join();
  if (producer.joinable()) producer.join();
  for (int j = 0; j < k; ++j) {
    for (std::size_t p : owned[static_cast<std::size_t>(j)]) {
      logs[p]->remove_notifier(bells[static_cast<std::size_t>(j)].get());
    }
  }
  ReadTotals out;
  out.seconds = static_cast<double>(end_ns.load() - t0) / 1e9;
  out.count = consumed.load();
  out.sum = sum.load();
  out.batches = batches.load();
  return out;
}

// --- latency ---------------------------------------------------------------------------------

// Spin-paced sender: waits until the consumer has finished the previous sample, then spins a
// pseudo-random pause in [min, max] microseconds so the consumer is asleep again.
class Pacer {
 public:
  Pacer(int min_us, int max_us)
      : min_ns_(min_us * 1000LL), span_ns_((max_us - min_us) * 1000LL + 1) {}
  void wait(const std::atomic<std::uint64_t>& done, std::uint64_t want) {
    // acquire: the consumer's ack; nothing rides on it but the pacing.
    while (done.load(std::memory_order_acquire) < want) cpu_relax();
    state_ ^= state_ << 13;
    state_ ^= state_ >> 7;
    state_ ^= state_ << 17;
    const std::int64_t until =
        now_ns() + min_ns_ +
        static_cast<std::int64_t>(state_ % static_cast<std::uint64_t>(span_ns_));
    while (now_ns() < until) cpu_relax();
  }

 private:
  std::int64_t min_ns_;
  std::int64_t span_ns_;
  std::uint64_t state_ = 0x9E3779B97F4A7C15ull;
};

// One producer (this thread) and one consumer thread; even samples go through a raw Log
// (append / wait_for + read_into), odd ones through Producer::send / Consumer::poll on an
// 8-partition topic. Latencies in microseconds; the first `warmup` of each kind are dropped.
void latency(Broker& broker, const Options& o, std::uint64_t warmup, std::vector<double>& raw_out,
             std::vector<double>& rill_out) {
  auto topic = unwrap(TypedTopic::create(broker, "latency", group_topic_config()), "create_topic");
  auto raw = unwrap(Log::open(g_root + "/latency-raw", rill::storage::LogConfig{}), "Log::open");
  rill::Producer<Key, Value> producer(broker);
  const std::uint64_t total = 2 * (o.samples + warmup);
  alignas(64) std::atomic<std::uint64_t> done{0};  // hand-offs the consumer has finished
  std::atomic<bool> ready{false};
  std::vector<double> lat(total);
  std::thread consumer([&] {
    rill::Consumer<Key, Value> c(broker, group_config("latency"));
    unwrap(c.subscribe({"latency"}), "Consumer::subscribe");
    while (c.assignment().size() != static_cast<std::size_t>(kGroupPartitions)) {
      unwrap(c.poll(std::chrono::milliseconds(10)), "Consumer::poll (join)");
    }
    RecordBatch batch;
    ready.store(true, std::memory_order_release);
    for (std::uint64_t i = 0; i < total; ++i) {
      std::int64_t sent = 0;
      std::int64_t got = 0;
      if (i % 2 == 0) {
        const auto at = static_cast<std::int64_t>(i / 2);
        unwrap(raw->wait_for(at, std::chrono::seconds(10)), "Log::wait_for");
        unwrap(raw->read_into(at, batch, 1), "Log::read_into");
        got = now_ns();
        std::memcpy(&sent, batch[0].value()->data(), sizeof sent);
      } else {
        for (;;) {
          auto recs = unwrap(c.poll(std::chrono::seconds(10)), "Consumer::poll");
          if (recs.empty()) continue;
          got = now_ns();
          if (recs.size() != 1) die("latency: poll returned more than one record");
          std::memcpy(&sent, recs[0].value.data(), sizeof sent);
          unwrap(c.commit(), "Consumer::commit");
          break;
        }
      }
      lat[i] = static_cast<double>(got - sent) / 1000.0;
      // release: the producer paces on this; nothing else rides on it.
      done.store(i + 1, std::memory_order_release);
    }
  });
  while (!ready.load(std::memory_order_acquire)) cpu_relax();
  std::this_thread::sleep_for(std::chrono::milliseconds(2));
  std::string value(o.value_bytes, 'v');
  Record rec;
  rec.value = std::string_view(value);
  Pacer pacer(o.pace_min_us, o.pace_max_us);
  for (std::uint64_t i = 0; i < total; ++i) {
    pacer.wait(done, i);
    const std::int64_t sent = now_ns();
    std::memcpy(value.data(), &sent, sizeof sent);
    if (i % 2 == 0) {
      unwrap(raw->append(rec), "Log::append");
    } else {
      unwrap(producer.send(topic, Key{i}, value), "Producer::send");
    }
  }
  consumer.join();
  for (std::uint64_t i = 2 * warmup; i < total; ++i) {
    (i % 2 == 0 ? raw_out : rill_out).push_back(lat[i]);
  }
}

// --- rebalance -------------------------------------------------------------------------------

// The group's state: "Stable" with `members` members, each owning at least one partition.
bool settled(const rill::ConsumerGroup& g, std::size_t members) {
  auto d = unwrap(g.describe(), "ConsumerGroup::describe");
  if (d.state != "Stable" || d.members.size() != members) return false;
  for (const auto& m : d.members) {
    if (m.assignment.empty()) return false;
  }
  return true;
}

// Spins (yielding) about `us` microseconds between two describe() calls.
void pause_us(int us) {
  const std::int64_t until = now_ns() + us * 1000LL;
  while (now_ns() < until) std::this_thread::yield();
}

// Milliseconds from a 5th member's subscribe() until the group is stable with 5 owners, `reps`
// times; between repetitions the 5th member closes and the group settles back to 4.
std::vector<double> rebalance(Broker& broker, rill::AssignmentStrategy strategy, int reps) {
  using C = rill::Consumer<Key, Value>;
  const std::string name =
      std::string("rebalance-") + std::string(rill::group::to_string(strategy));
  unwrap(TypedTopic::create(broker, name, group_topic_config()), "create_topic");
  const std::string group = "g-" + name;
  rill::ConsumerGroup view(broker, group);
  std::atomic<bool> stop{false};
  std::vector<std::unique_ptr<C>> members;
  for (int j = 0; j < 4; ++j)
    members.push_back(std::make_unique<C>(broker, group_config(group, strategy)));
  auto member_loop = [&](C& c, const std::atomic<bool>& until) {
    while (!until.load(std::memory_order_acquire)) {
      auto r = c.poll(std::chrono::milliseconds(100));
      if (!r && r.error().code() != rill::ErrorCode::kInterrupted) {
        die("Consumer::poll: " + r.error().to_string());
      }
    }
  };
  std::vector<std::thread> ts;
  for (int j = 0; j < 4; ++j) {
    ts.emplace_back([&, j] {
      C& c = *members[static_cast<std::size_t>(j)];
      unwrap(c.subscribe({name}), "Consumer::subscribe");
      member_loop(c, stop);
      unwrap(c.close(), "Consumer::close");
    });
  }
  const auto wait_settled = [&](std::size_t n) {
    const std::int64_t give_up = now_ns() + 30'000'000'000LL;
    while (!settled(view, n)) {
      if (now_ns() > give_up) die("rebalance: the group did not settle within 30 s");
      pause_us(20);
    }
  };
  wait_settled(4);
  std::vector<double> ms;
  for (int rep = 0; rep < reps; ++rep) {
    C fifth(broker, group_config(group, strategy));
    std::atomic<bool> stop5{false};
    std::atomic<std::int64_t> t0{0};
    std::latch ready(1);
    std::latch go(1);
    std::thread th([&] {
      ready.count_down();
      go.wait();
      t0.store(now_ns());
      unwrap(fifth.subscribe({name}), "Consumer::subscribe (5th)");
      member_loop(fifth, stop5);
      unwrap(fifth.close(), "Consumer::close (5th)");
    });
    ready.wait();
    go.count_down();
    const std::int64_t give_up = now_ns() + 30'000'000'000LL;
    for (;;) {
      if (t0.load() != 0 && settled(view, 5)) break;
      if (now_ns() > give_up) die("rebalance: the group did not settle within 30 s");
      pause_us(20);
    }
    ms.push_back(static_cast<double>(now_ns() - t0.load()) / 1e6);
    stop5.store(true, std::memory_order_release);
    fifth.wakeup();
    th.join();
    wait_settled(4);
  }
  stop.store(true, std::memory_order_release);
  for (auto& m : members) m->wakeup();
  for (auto& th : ts) th.join();
  return ms;
}

// --- the table -------------------------------------------------------------------------------

std::string rate(double records_per_s) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%7.3f M rec/s", records_per_s / 1e6);
  return buf;
}

std::string micros(double us) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%9.1f us", us);
  return buf;
}

std::string millis(double ms) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%9.2f ms", ms);
  return buf;
}

void row(const char* id, const std::string& what, const std::string& rill, const std::string& base,
         double ratio, const char* target, const char* result, const std::string& note) {
  char r[16] = "     -";
  if (ratio > 0) std::snprintf(r, sizeof r, "%6.2f", ratio);
  std::printf("%-4s %-40s %-16s %-16s %s  %-7s %-5s %s\n", id, what.c_str(), rill.c_str(),
              base.c_str(), r, target, result, note.c_str());
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = parse(argc, argv);
  std::setvbuf(stdout, nullptr, _IOLBF, 0);

  std::string tmpl = o.dir + "/broker_bench.XXXXXX";
  if (::mkdtemp(tmpl.data()) == nullptr) die("mkdtemp in " + o.dir + ": " + std::strerror(errno));
  g_root = tmpl;
  std::atexit(remove_root);

  const std::uint64_t n = o.records;
  const std::size_t vb = o.value_bytes;
  const std::size_t frame = rill::storage::align_frame(rill::storage::kFrameHeaderSize + 8 + vb);
  const long cpus = ::sysconf(_SC_NPROCESSORS_ONLN);
  const auto wall0 = SteadyClock::now();

  struct utsname un;
  ::uname(&un);
  std::printf("rill broker_bench\n");
  std::printf(
      "machine : %ld CPUs (nproc), %s, %s %s, clocksource %s\n", cpus,
      first_line_matching("/proc/cpuinfo", "model name").c_str(), un.sysname, un.release,
      read_first_line("/sys/devices/system/clocksource/clocksource0/current_clocksource").c_str());
  std::printf("compiler: %s %s, %s\n",
#if defined(__clang__)
              "clang++",
#else
              "g++",
#endif
              __VERSION__,
#if defined(__OPTIMIZE__)
              "optimised build"
#else
              "UNOPTIMISED build: these figures mean nothing, build with -O2"
#endif
  );
  std::printf("files   : %s (%s); Broker::open per round, BrokerOptions default\n", g_root.c_str(),
              filesystem_of(g_root).c_str());
  const double l0 = load1();
  std::printf("load    : %s at start (loadavg)%s\n", read_first_line("/proc/loadavg").c_str(),
              l0 >= 0.5 * static_cast<double>(cpus)
                  ? "  ** HIGH: other processes compete for the CPUs; figures are noisy **"
                  : "");
  std::printf("records : N = %" PRIu64
              ", key std::uint64_t (8 bytes, big-endian), value "
              "std::string of %zu bytes; frame %zu bytes\n",
              n, vb, frame);
  std::printf(
      "topics  : P rows: TopicConfig default but segment_bytes 1 GiB; G/E/L/R rows: "
      "TopicConfig default, %d partitions\n",
      kGroupPartitions);
  std::printf(
      "method  : throughput rows = median of %d rounds, fresh broker dir per round, "
      "fresh topic per measurement; rill and baseline alternate which goes first\n"
      "          (P rows: the N records go in %d chunks, rill and baseline alternating ABBA)\n",
      o.rounds, kSendChunks);
  std::printf(
      "          ratio = median over rounds of rill/baseline measured back to back in "
      "the same round; P notes: CPU time of the sending threads per record\n");
  std::printf(
      "          consumers: own thread each, auto-commit off, commit() after every "
      "non-empty poll, max_poll_records %zu; baseline read_into %zu records/call\n",
      kMaxPollRecords, kMaxPollRecords);
  std::printf("          latency = %" PRIu64
              " samples per side, spin-paced %d-%d us; rebalance "
              "= %d joins per strategy\n",
              o.samples, o.pace_min_us, o.pace_max_us, o.rebalances);
  std::fflush(stdout);

  // Producer rows: {partitions, threads}.
  struct SendCase {
    std::int32_t partitions;
    int threads;
  };
  const SendCase send_cases[] = {{1, 1}, {8, 1}, {1, 2}, {8, 2}};
  std::vector<double> send_rill[4], send_raw[4];          // records/s
  std::vector<double> send_rill_cpu[4], send_raw_cpu[4];  // CPU ns per record
  const int group_sizes[] = {1, 2, 4};
  std::vector<double> grp_rill[3], grp_raw[3], e2e_rill[3], e2e_raw[3];
  std::vector<double> grp_view, grp_view_raw;  // group of 1 decoding values as string_view
  std::vector<double> e2e_rill_batch[3], e2e_raw_batch[3];  // records per non-empty poll

  for (int round = 1; round <= o.rounds; ++round) {
    const bool rill_first = round % 2 == 1;
    const std::string bdir = g_root + "/round" + std::to_string(round);
    auto broker = unwrap(Broker::open(bdir), "Broker::open");
    std::fprintf(stderr, "round %d/%d: send", round, o.rounds);
    {
      // Warm-up, untimed: the broker's background thread, code paths, allocator.
      auto t =
          unwrap(TypedTopic::create(*broker, "warmup", producer_topic_config(1)), "create_topic");
      const std::uint64_t w = std::min<std::uint64_t>(n, 50'000);
      rill::Producer<Key, Value> producer(*broker);
      (void)rill_send(producer, t, 0, w, vb, 1);
      (void)raw_append(logs_of(t), 0, w, vb, 1);
      unwrap(broker->delete_topic("warmup"), "delete_topic");
    }
    for (int c = 0; c < 4; ++c) {
      const SendCase sc = send_cases[c];
      const std::string suffix =
          std::to_string(sc.partitions) + "p" + std::to_string(sc.threads) + "t";
      // Both topics fresh; the N records go in kSendChunks chunks, rill and raw alternating
      // ABBA, so that a change of the machine's load hits both sides alike.
      auto rt = unwrap(
          TypedTopic::create(*broker, "send-" + suffix, producer_topic_config(sc.partitions)),
          "create_topic");
      auto wt =
          unwrap(TypedTopic::create(*broker, "raw-" + suffix, producer_topic_config(sc.partitions)),
                 "create_topic");
      const std::vector<Log*> wlogs = logs_of(wt);
      rill::Producer<Key, Value> producer(*broker);
      Timing rs, ws;
      for (int j = 0; j < kSendChunks; ++j) {
        const std::uint64_t lo = n * static_cast<std::uint64_t>(j) / kSendChunks;
        const std::uint64_t hi = n * static_cast<std::uint64_t>(j + 1) / kSendChunks;
        for (int side = 0; side < 2; ++side) {
          const bool rill_now = (side == 0) == (rill_first == (j % 2 == 0));
          const Timing tm = rill_now ? rill_send(producer, rt, lo, hi, vb, sc.threads)
                                     : raw_append(wlogs, lo, hi, vb, sc.threads);
          Timing& acc = rill_now ? rs : ws;
          acc.wall += tm.wall;
          acc.cpu += tm.cpu;
        }
      }
      send_rill[c].push_back(static_cast<double>(n) / rs.wall);
      send_rill_cpu[c].push_back(rs.cpu * 1e9 / static_cast<double>(n));
      send_raw[c].push_back(static_cast<double>(n) / ws.wall);
      send_raw_cpu[c].push_back(ws.cpu * 1e9 / static_cast<double>(n));
      const std::vector<std::int64_t> a = end_offsets(rt);
      const std::vector<std::int64_t> b = end_offsets(wt);
      std::fprintf(stderr, " [P%d rill %.2f raw %.2f M/s]", c + 1, send_rill[c].back() / 1e6,
                   send_raw[c].back() / 1e6);
      if (a != b) die("producer and raw append routed records differently");
      std::int64_t total = 0;
      for (auto e : a) total += e;
      if (total != static_cast<std::int64_t>(n)) die("records missing after send");
      unwrap(broker->delete_topic("send-" + suffix), "delete_topic");
      unwrap(broker->delete_topic("raw-" + suffix), "delete_topic");
    }

    std::fprintf(stderr, " (%.0f s), groups",
                 std::chrono::duration<double>(SteadyClock::now() - wall0).count());
    {
      // N records produced beforehand; every group and every raw reader set reads them all.
      auto t =
          unwrap(TypedTopic::create(*broker, "prebuilt", group_topic_config()), "create_topic");
      rill::Producer<Key, Value> producer(*broker);
      std::string value(vb, 'v');
      for (std::uint64_t i = 0; i < n; ++i) {
        value[0] = static_cast<char>(i);
        unwrap(producer.send(t, Key{i}, value), "Producer::send");
      }
      for (int g = 0; g < 3; ++g) {
        const int k = group_sizes[g];
        const std::string group = "prebuilt-" + std::to_string(k);
        ReadTotals r, w;
        if (rill_first) {
          r = rill_group<Value>(*broker, "prebuilt", group, k, n, {});
          w = raw_readers(logs_of(t), k, n, {});
        } else {
          w = raw_readers(logs_of(t), k, n, {});
          r = rill_group<Value>(*broker, "prebuilt", group, k, n, {});
        }
        if (r.count != n || w.count != n || r.sum != w.sum) {
          die("group read " + std::to_string(r.count) + " records (sum " + std::to_string(r.sum) +
              "), raw readers " + std::to_string(w.count) + " (sum " + std::to_string(w.sum) +
              "), expected " + std::to_string(n));
        }
        grp_rill[g].push_back(static_cast<double>(n) / r.seconds);
        grp_raw[g].push_back(static_cast<double>(n) / w.seconds);
      }
      {
        // Information: the same group of 1 with zero-copy values (Consumer<uint64_t,
        // std::string_view>: the serde name is "string" too), beside one more raw reader run.
        ReadTotals r, w;
        if (rill_first) {
          r = rill_group<std::string_view>(*broker, "prebuilt", "prebuilt-view", 1, n, {});
          w = raw_readers(logs_of(t), 1, n, {});
        } else {
          w = raw_readers(logs_of(t), 1, n, {});
          r = rill_group<std::string_view>(*broker, "prebuilt", "prebuilt-view", 1, n, {});
        }
        if (r.count != n || w.count != n || r.sum != w.sum)
          die("group read (string_view) mismatch");
        grp_view.push_back(static_cast<double>(n) / r.seconds);
        grp_view_raw.push_back(static_cast<double>(n) / w.seconds);
      }
      unwrap(broker->delete_topic("prebuilt"), "delete_topic");
    }

    std::fprintf(stderr, " (%.0f s), end-to-end",
                 std::chrono::duration<double>(SteadyClock::now() - wall0).count());
    for (int g = 0; g < 3; ++g) {
      const int k = group_sizes[g];
      const std::string rname = "e2e-" + std::to_string(k);
      const std::string wname = "e2e-raw-" + std::to_string(k);
      auto rt = unwrap(TypedTopic::create(*broker, rname, group_topic_config()), "create_topic");
      auto wt = unwrap(TypedTopic::create(*broker, wname, group_topic_config()), "create_topic");
      rill::Producer<Key, Value> producer(*broker);
      auto rill_produce = [&] {
        std::string value(vb, 'v');
        for (std::uint64_t i = 0; i < n; ++i) {
          value[0] = static_cast<char>(i);
          unwrap(producer.send(rt, Key{i}, value), "Producer::send");
        }
      };
      const std::vector<Log*> wlogs = logs_of(wt);
      auto raw_produce = [&] {
        std::string value(vb, 'v');
        char key[8];
        Record rec;
        rec.key = std::string_view(key, 8);
        rec.value = std::string_view(value);
        for (std::uint64_t i = 0; i < n; ++i) {
          value[0] = static_cast<char>(i);
          key_bytes(i, key);
          const std::int32_t p =
              rill::partition_for_key(std::string_view(key, 8), kGroupPartitions);
          unwrap(wlogs[static_cast<std::size_t>(p)]->append(rec), "Log::append");
        }
      };
      ReadTotals r, w;
      if (rill_first) {
        r = rill_group<Value>(*broker, rname, rname, k, n, rill_produce);
        w = raw_readers(wlogs, k, n, raw_produce);
      } else {
        w = raw_readers(wlogs, k, n, raw_produce);
        r = rill_group<Value>(*broker, rname, rname, k, n, rill_produce);
      }
      if (r.count != n || w.count != n || r.sum != w.sum) die("end-to-end: counts or sums differ");
      e2e_rill[g].push_back(static_cast<double>(n) / r.seconds);
      e2e_raw[g].push_back(static_cast<double>(n) / w.seconds);
      e2e_rill_batch[g].push_back(static_cast<double>(n) / static_cast<double>(r.batches));
      e2e_raw_batch[g].push_back(static_cast<double>(n) / static_cast<double>(w.batches));
      unwrap(broker->delete_topic(rname), "delete_topic");
      unwrap(broker->delete_topic(wname), "delete_topic");
    }
    broker.reset();
    std::filesystem::remove_all(bdir);
    std::fprintf(stderr, " (%.0f s)\n",
                 std::chrono::duration<double>(SteadyClock::now() - wall0).count());
  }

  std::vector<double> lat_raw, lat_rill, rb_range, rb_coop;
  {
    auto broker = unwrap(Broker::open(g_root + "/misc"), "Broker::open");
    std::fprintf(stderr, "latency\n");
    latency(*broker, o, 1000, lat_raw, lat_rill);
    std::sort(lat_raw.begin(), lat_raw.end());
    std::sort(lat_rill.begin(), lat_rill.end());
    std::fprintf(stderr, "rebalance (%.0f s)\n",
                 std::chrono::duration<double>(SteadyClock::now() - wall0).count());
    rb_range = rebalance(*broker, rill::AssignmentStrategy::kRange, o.rebalances);
    rb_coop = rebalance(*broker, rill::AssignmentStrategy::kCooperativeSticky, o.rebalances);
  }

  auto verdict = [](bool ok) { return ok ? "PASS" : "MISS"; };
  char what[96];
  char note[128];
  std::printf("\n%-4s %-40s %-16s %-16s %6s  %-7s %-5s %s\n", "row", "what", "rill", "baseline",
              "ratio", "target", "", "notes");
  for (int c = 0; c < 4; ++c) {
    const double r = median(send_rill[c]);
    const double b = median(send_raw[c]);
    std::snprintf(what, sizeof what, "Producer::send, %d partition%s, %d thread%s",
                  send_cases[c].partitions, send_cases[c].partitions == 1 ? "" : "s",
                  send_cases[c].threads, send_cases[c].threads == 1 ? "" : "s");
    const char* id[] = {"P1", "P2", "P3", "P4"};
    std::snprintf(note, sizeof note, "Log::append; CPU ns/rec: rill %.0f, raw %.0f",
                  median(send_rill_cpu[c]), median(send_raw_cpu[c]));
    const double q = median_ratio(send_rill[c], send_raw[c]);
    row(id[c], what, rate(r), rate(b), q, ">=0.70", verdict(q >= 0.70), note);
  }
  for (int g = 0; g < 3; ++g) {
    const double r = median(grp_rill[g]);
    const double b = median(grp_raw[g]);
    const char* id[] = {"G1", "G2", "G4"};
    std::snprintf(what, sizeof what, "group of %d, N produced beforehand", group_sizes[g]);
    row(id[g], what, rate(r), rate(b), median_ratio(grp_rill[g], grp_raw[g]), "info", "",
        "baseline: as many read_into threads");
  }
  {
    const double r = median(grp_view);
    const double b = median(grp_view_raw);
    row("G1v", "  G1 with values as std::string_view", rate(r), rate(b),
        median_ratio(grp_view, grp_view_raw), "info", "",
        "zero-copy decode: no allocation per record");
  }
  for (int g = 0; g < 3; ++g) {
    const double r = median(e2e_rill[g]);
    const double b = median(e2e_raw[g]);
    const char* id[] = {"E1", "E2", "E4"};
    std::snprintf(what, sizeof what, "group of %d + 1 producer thread", group_sizes[g]);
    std::snprintf(note, sizeof note,
                  "Log::append + read_into threads; rec/poll: rill %.0f, raw %.0f",
                  median(e2e_rill_batch[g]), median(e2e_raw_batch[g]));
    row(id[g], what, rate(r), rate(b), median_ratio(e2e_rill[g], e2e_raw[g]), "info", "", note);
  }
  const double p50r = percentile(lat_rill, 0.50), p50b = percentile(lat_raw, 0.50);
  const double p99r = percentile(lat_rill, 0.99), p99b = percentile(lat_raw, 0.99);
  const double p999r = percentile(lat_rill, 0.999), p999b = percentile(lat_raw, 0.999);
  std::snprintf(note, sizeof note, "%zu samples each; baseline: append -> wait_for",
                lat_rill.size());
  row("L", "send-to-poll latency p50", micros(p50r), micros(p50b), p50r / p50b, "info", "", note);
  row("L", "send-to-poll latency p99", micros(p99r), micros(p99b), p99r / p99b, "info", "", "");
  std::snprintf(note, sizeof note, "max: rill %.0f us, raw %.0f us", lat_rill.back(),
                lat_raw.back());
  row("L", "send-to-poll latency p99.9", micros(p999r), micros(p999b), p999r / p999b, "info", "",
      note);
  std::sort(rb_range.begin(), rb_range.end());
  std::sort(rb_coop.begin(), rb_coop.end());
  std::snprintf(note, sizeof note, "%zu joins; min %.2f ms", rb_range.size(), rb_range.front());
  row("R", "rebalance, range, 5th joins: median", millis(median(rb_range)), "-", 0, "info", "",
      note);
  row("R", "rebalance, range, 5th joins: max", millis(rb_range.back()), "-", 0, "info", "", "");
  std::snprintf(note, sizeof note, "%zu joins; min %.2f ms", rb_coop.size(), rb_coop.front());
  row("R", "rebalance, coop-sticky, 5th joins: median", millis(median(rb_coop)), "-", 0, "info", "",
      note);
  row("R", "rebalance, coop-sticky, 5th joins: max", millis(rb_coop.back()), "-", 0, "info", "",
      "");
  std::printf("load    : %s at end; run took %.0f s\n", read_first_line("/proc/loadavg").c_str(),
              std::chrono::duration<double>(SteadyClock::now() - wall0).count());
  return 0;
}
