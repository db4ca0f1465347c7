// rill's rows, through the public API a user calls: Producer::send / send_batch, Consumer
// (assign or a group), Broker::open. Keys and values are std::string_view (no copy, no
// allocation on either side). Durability: each send is in the page cache when it returns
// (survives a crash of the process); W5's topic syncs every 1,000 records (Durability::every).
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <memory>
#include <optional>

#include "compare.hpp"
#include "rill/rill.hpp"

namespace compare {
namespace {

using Key = std::string_view;
using Value = std::string_view;
using RillTopic = rill::Topic<Key, Value>;
using RillProducer = rill::Producer<Key, Value>;
using RillConsumer = rill::Consumer<Key, Value>;

bool g_in_child = false;  // set in a forked child: leave with _exit, not exit (no atexit cleanup)

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "rill: %s\n", what.c_str());
  if (g_in_child) _exit(1);
  std::exit(1);
}

std::unique_ptr<rill::Broker> open_broker(const std::string& dir,
                                          rill::BrokerOptions options = {}) {
  auto b = rill::Broker::open(dir, options);
  if (!b) die("open " + dir + ": " + b.error().to_string());
  return std::move(*b);
}

RillTopic make_topic(rill::Broker& broker, const char* name, rill::TopicConfig config) {
  auto t = RillTopic::create(broker, name, config);
  if (!t) die(std::string("create ") + name + ": " + t.error().to_string());
  return *t;
}

// Sends n keyed records one at a time; false on the first error.
bool send_each(RillProducer& producer, const RillTopic& topic, std::size_t value_bytes,
               std::uint64_t n) {
  std::string value = make_value(value_bytes);
  char key[kKeyBytes];
  for (std::uint64_t i = 0; i < n; ++i) {
    make_key(i, key);
    stamp(value, i);
    if (!producer.send(topic, Key(key, kKeyBytes), Value(value))) return false;
  }
  return true;
}

// Sends n keyed records in batches of `batch`; false on the first error.
bool send_batches(RillProducer& producer, const RillTopic& topic, std::size_t value_bytes,
                  std::uint64_t n, std::size_t batch) {
  std::vector<std::string> keys(batch, std::string(kKeyBytes, '\0'));
  std::vector<std::string> values(batch, make_value(value_bytes));
  std::vector<rill::ProducerRecord<Key, Value>> records(batch);
  for (std::uint64_t i = 0; i < n;) {
    const std::size_t k = static_cast<std::size_t>(std::min<std::uint64_t>(batch, n - i));
    for (std::size_t j = 0; j < k; ++j, ++i) {
      std::memcpy(keys[j].data(), &i, 8);
      stamp(values[j], i);
      records[j].key = Key(keys[j]);
      records[j].value = Value(values[j]);
    }
    if (!producer.send_batch(topic, std::span(records.data(), k))) return false;
  }
  return true;
}

// W2's timing: next(got, sum) reads the batch at offset `got`, adds its values' bytes to sum
// and returns how many records it read (0: no more).
template <typename Next>
void timed_read(Report& report, const std::string& contender, const char* note,
                std::size_t value_bytes, std::uint64_t n, bool rill_ref, Next&& next) {
  std::uint64_t got = 0, sum = 0;
  const auto t0 = Clock::now();
  for (std::uint64_t k = 1; got < n && k != 0; got += k) k = next(got, sum);
  const double s = seconds_since(t0);
  g_sink = sum;
  if (got != n) {
    return report.failed(w2(value_bytes), contender, "read back " + std::to_string(got));
  }
  report.rate(w2(value_bytes), contender, rate_of(n, value_bytes, s), note, rill_ref);
}

void produce_consume(const std::string& dir, Report& report, std::size_t value_bytes,
                     std::uint64_t n) {
  auto broker = open_broker(dir + "/w1." + std::to_string(value_bytes));
  const RillTopic one = make_topic(*broker, "one", {.partitions = 1});
  const RillTopic batched = make_topic(*broker, "batched", {.partitions = 1});
  RillProducer producer(*broker);
  auto t0 = Clock::now();
  if (!send_each(producer, one, value_bytes, n))
    return report.failed(w1(value_bytes), "rill", "send failed");
  report.rate(w1(value_bytes), "rill send (1 per call)", rate_of(n, value_bytes, seconds_since(t0)),
              "Producer::send, 1 partition", true);
  t0 = Clock::now();
  if (!send_batches(producer, batched, value_bytes, n, 64))
    return report.failed(w1(value_bytes), "rill", "send_batch failed");
  report.rate(w1(value_bytes), "rill send_batch (64 per call)",
              rate_of(n, value_bytes, seconds_since(t0)), "Producer::send_batch");

  // W2: a consumer assigned the partition, from the start, touching every value byte.
  RillConsumer consumer(*broker, {.auto_offset_reset = rill::OffsetReset::kEarliest});
  if (!consumer.assign({{"one", 0}})) {
    return report.failed(w2(value_bytes), "rill", "assign failed");
  }
  timed_read(report, "rill Consumer::poll", "500 per poll (max.poll.records)", value_bytes, n, true,
             [&](std::uint64_t, std::uint64_t& sum) -> std::uint64_t {
               auto records = consumer.poll(std::chrono::milliseconds(0));
               if (!records) return 0;
               for (const auto& r : *records) sum += touch(r.value.data(), r.value.size());
               return records->size();
             });
  // The same through Topic::read_into (no consumer position, no group), 1024 per call.
  rill::ConsumerBatch<Key, Value> batch;
  timed_read(report, "rill Topic::read_into", "1024 per call", value_bytes, n, false,
             [&](std::uint64_t got, std::uint64_t& sum) -> std::uint64_t {
               if (!one.read_into(0, static_cast<std::int64_t>(got), batch, 1024)) return 0;
               for (const auto& r : batch) sum += touch(r.value.data(), r.value.size());
               return batch.size();
             });
  // The partition log underneath (rill::storage::Log, public), 1024 per call: what the
  // storage layer delivers before the typed layer decodes records.
  rill::storage::RecordBatch raw;
  timed_read(report, "rill storage::Log::read_into", "the partition log, 1024 per call",
             value_bytes, n, false, [&](std::uint64_t got, std::uint64_t& sum) -> std::uint64_t {
               if (!one.log(0)->read_into(static_cast<std::int64_t>(got), raw, 1024)) return 0;
               for (const auto& r : raw) {
                 if (const auto v = r.value()) sum += touch(v->data(), v->size());
               }
               return raw.size();
             });
}

// One W3 round on a fresh broker; a Latency with max_us 0, and `why`, when it failed.
Latency latency_round(const Options& o, const std::string& dir, bool busy, std::string& why) {
  auto broker = open_broker(dir);
  const RillTopic topic = make_topic(*broker, "lat", {.partitions = 1});
  RillProducer producer(*broker);
  RillConsumer consumer(*broker,
                        {.auto_offset_reset = rill::OffsetReset::kEarliest, .busy_poll = busy});
  if (!consumer.assign({{"lat", 0}})) {
    why = "assign failed";
    return {};
  }
  bool ok = true;
  const Latency l = paced_latency(
      o, o.value_bytes,
      [&](std::uint64_t i, std::string& value) {
        char key[kKeyBytes];
        make_key(i, key);
        ok = producer.send(topic, Key(key, kKeyBytes), Value(value)) && ok;
      },
      [&](std::uint64_t n, const std::function<void(std::uint64_t)>& on_value) {
        const auto timeout = std::chrono::milliseconds(1000);
        for (std::uint64_t got = 0; got < n;) {
          auto records = consumer.poll(timeout);
          if (!records) break;
          for (const auto& r : *records) on_value(stamp_of(r.value.data()));
          got += records->size();
        }
      });
  if (!ok || l.max_us == 0) why = "send or count failed";
  return ok ? l : Latency{};
}

void latency(const Options& o, const std::string& dir, Report& report, bool busy) {
  std::string why;
  const LatencyRounds rounds = latency_rounds(o, [&](std::uint32_t r) {
    return latency_round(o, dir + (busy ? "/w3.busy." : "/w3.") + std::to_string(r), busy, why);
  });
  if (rounds.median.max_us == 0) return report.failed(kW3, busy ? "rill busy-poll" : "rill", why);
  if (busy) {
    report.latency(kW3, "rill busy-poll (busy_poll)", rounds.median,
                   "ConsumerConfig::busy_poll: a core" + rounds.note);
  } else {
    report.latency(kW3, "rill Consumer::poll (blocking)", rounds.median,
                   "asleep in poll(1 s)" + rounds.note, true);
  }
}

// W4: 8 partitions filled first, then 1 or 2 consumers of one group read them all. Done when
// the group's positions add up to n (a record read twice after a rebalance is counted once).
void groups(const Options& o, const std::string& dir, Report& report) {
  auto broker = open_broker(dir + "/w4");
  const RillTopic topic = make_topic(*broker, "g", {.partitions = 8});
  RillProducer producer(*broker);
  if (!send_batches(producer, topic, o.value_bytes, o.group_records, 64)) {
    return report.failed(w4(1), "rill", "send_batch failed");
  }
  {
    // The broker's first group creates its offsets topic (files, syncs: 10-20 ms here), once
    // per data directory. Done before timing, so that the group of one does not pay it and
    // the group of two not.
    RillConsumer warm(*broker, {.group_id = "warm-up"});
    if (!warm.subscribe({"g"}) || !warm.poll(std::chrono::milliseconds(0))) {
      return report.failed(w4(1), "rill", "warm-up group failed");
    }
  }
  for (int consumers : {1, 2}) {
    // One cache line per partition's end: members of a group write different partitions.
    struct alignas(64) End {
      std::atomic<std::int64_t> v{0};
    };
    End end[8];
    std::atomic<std::uint64_t> delivered{0};
    const std::string group = "g" + std::to_string(consumers);
    const double rate = run_group(consumers, o.group_records, [&](int, GroupProgress& progress) {
      RillConsumer c(*broker,
                     {.group_id = group, .auto_offset_reset = rill::OffsetReset::kEarliest});
      if (!c.subscribe({"g"})) return;
      std::uint64_t sum = 0;
      while (!progress.done()) {
        auto records = c.poll(std::chrono::milliseconds(10));
        if (!records) break;
        // The poll's highest offset per partition, published once per poll: a shared
        // atomic written per record would make the members contend on its cache line
        // (the bench's own cost, not the group's).
        std::int64_t high[8];
        std::fill(std::begin(high), std::end(high), -1);
        for (const auto& r : *records) {
          sum += touch(r.value.data(), r.value.size());
          high[r.partition] = std::max(high[r.partition], r.offset + 1);
        }
        for (int p = 0; p < 8; ++p) {
          if (high[p] < 0) continue;
          // relaxed: a progress count; run_group's join orders the final values.
          std::int64_t e = end[p].v.load(std::memory_order_relaxed);
          while (e < high[p] &&
                 !end[p].v.compare_exchange_weak(e, high[p], std::memory_order_relaxed)) {
          }
        }
        // relaxed: a statistic read after the threads are joined.
        delivered.fetch_add(records->size(), std::memory_order_relaxed);
        std::int64_t total = 0;
        for (auto& x : end) total += x.v.load(std::memory_order_relaxed);
        progress.set(static_cast<std::uint64_t>(total));
      }
      g_sink = sum;
    });
    const std::uint64_t dup = delivered.load() - o.group_records;
    report.rate(
        w4(consumers), "rill Consumer group",
        rate_of(o.group_records, o.value_bytes, static_cast<double>(o.group_records) / rate),
        std::to_string(consumers) + " members, 8 partitions; " + std::to_string(dup) +
            " delivered twice",
        true);
  }
}

void durable(const Options& o, const std::string& dir, Report& report) {
  auto broker = open_broker(dir + "/w5");
  const RillTopic topic = make_topic(
      *broker, "d", {.partitions = 1, .durability = rill::storage::Durability::every(1000)});
  RillProducer producer(*broker);
  const auto t0 = Clock::now();
  if (!send_each(producer, topic, o.value_bytes, o.records))
    return report.failed(kW5, "rill", "send failed");
  report.rate(kW5, "rill send, Durability::every(1000)",
              rate_of(o.records, o.value_bytes, seconds_since(t0)), "synced every 1,000 records",
              true);
}

// Runs fn in a child process (no threads of ours are alive when we fork) and returns the line
// it wrote, or "" if it died before writing one.
std::string in_child(const std::function<std::string()>& fn) {
  int fds[2];
  if (::pipe(fds) != 0) return "";
  std::fflush(stdout);
  std::fflush(stderr);
  const pid_t pid = ::fork();
  if (pid == 0) {
    g_in_child = true;
    ::close(fds[0]);
    const std::string out = fn();
    if (::write(fds[1], out.data(), out.size()) < 0) _exit(1);
    _exit(0);
  }
  ::close(fds[1]);
  std::string out;
  char buf[512];
  for (ssize_t k; (k = ::read(fds[0], buf, sizeof buf)) > 0;)
    out.append(buf, static_cast<std::size_t>(k));
  ::close(fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  return out;
}

// W6: 8 partitions holding reopen_gib GiB written by a child that is then SIGKILLed; open
// after the kill (recovery), close, open again (after a clean close). Warm page cache.
void reopen(const Options& o, const std::string& dir, Report& report) {
  const std::string d = dir + "/w6";
  constexpr std::size_t kValueBytes = 4000;
  const auto records =
      static_cast<std::uint64_t>(o.reopen_gib * (1ull << 30) / (kValueBytes + 48 + kKeyBytes));
  const std::string written = in_child([&] {
    auto broker = open_broker(d);
    const RillTopic topic = make_topic(*broker, "big", {.partitions = 8});
    RillProducer producer(*broker);
    if (!send_batches(producer, topic, kValueBytes, records, 64)) return std::string();
    std::string done = "ok";
    if (::write(STDOUT_FILENO, "", 0) < 0) done = "";
    ::raise(SIGKILL);  // no close, no flush: what a crash leaves
    return done;
  });
  const std::string label = "W6 reopen";
  char size[96];
  std::snprintf(size, sizeof size, "%.2f GiB, 8 partitions, %llu records", o.reopen_gib,
                static_cast<unsigned long long>(records));
  for (const char* when : {"after SIGKILL", "after clean close"}) {
    const auto t0 = Clock::now();
    auto b = rill::Broker::open(d);
    if (!b) return report.failed(label, "rill", b.error().to_string());
    auto t = RillTopic::open(**b, "big");
    const double s = seconds_since(t0);
    std::int64_t total = 0;
    for (std::int32_t p = 0; t && p < 8; ++p) total += t->log(p)->end_offset();
    if (!t || static_cast<std::uint64_t>(total) != records) {
      return report.failed(label, "rill",
                           "reopened " + std::to_string(total) + " of " + std::to_string(records));
    }
    char note[256];
    std::snprintf(note, sizeof note,
                  "%.3f s (target < 1 s for 10 GiB); %s; all records back; warm page cache", s,
                  size);
    report.info(label, std::string("rill Broker::open ") + when, note);
    report.set_fact(std::string("W6 ") + when, s);
  }
  std::error_code ec;
  std::filesystem::remove_all(d, ec);
}

std::uint64_t status_kib(const char* field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field, 0) == 0)
      return std::strtoull(line.c_str() + std::strlen(field) + 1, nullptr, 10);
  }
  return 0;
}

// Resident memory of a process with memory_partitions partitions open, each holding one
// record that was written and read. RssAnon is the process's own memory; RssFile counts the
// mapped pages of the segment and index files it touched.
void memory(const Options& o, const std::string& dir, Report& report) {
  const std::string line = in_child([&] {
    const std::uint64_t anon0 = status_kib("RssAnon:"), file0 = status_kib("RssFile:");
    {
      auto broker = open_broker(dir + "/mem", {.prefault_bytes = 64u << 10});
      const RillTopic topic =
          make_topic(*broker, "m",
                     {.partitions = static_cast<std::int32_t>(o.memory_partitions),
                      .segment_bytes = 1u << 20,
                      .max_record_bytes = 64u << 10});
      RillProducer producer(*broker);
      const std::string value = make_value(o.value_bytes);
      std::uint64_t read = 0;
      for (std::int32_t p = 0; p < topic.partitions(); ++p) {
        if (!producer.send(topic, {std::nullopt, Value(value), {}, rill::storage::kNoTimestamp, p}))
          return std::string();
        auto b = topic.read(p, 0, 10);
        if (b) read += b->size();
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(300));  // let prefaulting finish
      const std::uint64_t anon = status_kib("RssAnon:") - anon0,
                          file = status_kib("RssFile:") - file0;
      char out[256];
      std::snprintf(out, sizeof out, "%llu %llu %llu", static_cast<unsigned long long>(anon),
                    static_cast<unsigned long long>(file), static_cast<unsigned long long>(read));
      return std::string(out);
    }
  });
  unsigned long long anon = 0, file = 0, read = 0;
  if (std::sscanf(line.c_str(), "%llu %llu %llu", &anon, &file, &read) != 3 ||
      read != o.memory_partitions) {
    return report.failed("M memory", "rill", "child failed: " + line);
  }
  char note[256];
  std::snprintf(note, sizeof note,
                "RssAnon +%.1f MiB (%.1f KiB/partition; target < 64 MiB), RssFile +%.1f MiB "
                "(mapped pages touched)",
                static_cast<double>(anon) / 1024, static_cast<double>(anon) / o.memory_partitions,
                static_cast<double>(file) / 1024);
  report.set_fact("M anon MiB", static_cast<double>(anon) / 1024);
  report.info("M memory", "rill " + std::to_string(o.memory_partitions) + " partitions open", note);
  report.line(
      "M memory: segment_bytes 1 MiB, prefault_bytes 64 KiB (defaults 64 MiB and 4 MiB would "
      "preallocate " +
      std::to_string(o.memory_partitions * 64 / 1024) +
      " GiB of disk and fault in 4 MiB per partition)");
  std::error_code ec;
  std::filesystem::remove_all(dir + "/mem", ec);
}

}  // namespace

void run_rill(const Options& o, const std::string& dir, Report& report) {
  // First: they fork, so no thread of ours may be running, and the child of a process that
  // has not yet grown its heap measures its own allocations (not reused free memory).
  memory(o, dir, report);
  reopen(o, dir, report);
  produce_consume(dir, report, o.value_bytes, o.records);
  produce_consume(dir, report, o.big_value_bytes, o.records_big);
  latency(o, dir, report, false);
  latency(o, dir, report, true);
  groups(o, dir, report);
  durable(o, dir, report);
}

}  // namespace compare
