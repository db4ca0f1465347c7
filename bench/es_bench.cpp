// bench/es_bench.cpp: event-sourcing replay speed: events per second folded into state by
// rill::es::EventStore, beside a bare loop over the same partition log (Log::read_into and a
// big-endian decode of each value, summed), measured in the same run.
//
//   es_bench [--events N] [--keys K] [--rounds R]
//
// The events: N events of 8-byte values (std::int64_t, big-endian serde) keyed "acct-<i>",
// in one partition of an in-memory broker (the same mapped-segment code as on disk, with no
// file-system effects). Rows (medians over R rounds):
//  F1   fold one key's whole history, N events all of that key: EventStore::fold with a sum
//       (decode each record into ConsumerRecord<std::string, int64_t>, apply); baseline: the
//       bare loop over the log.
//  F2   fold one key among K interleaved (N/K events of it): replay_key reads the span between
//       the key's first and last events, compares keys and decodes only its own events.
//       events/s counts the key's events; baseline: the bare loop over the whole partition,
//       filtering by key (rate counted the same way).
//  P1   replay the whole partition into a per-key std::map<std::string, int64_t>
//       (EventStore::replay), a projection's rebuild; baseline: the bare loop summing.
//  A1   (information) appends with a version check (append at the expected version, one event
//       per call, one key, the index caught up by one event each time) beside append_unchecked.
#include <sys/utsname.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "bench_util.hpp"
#include "rill/rill.hpp"

namespace {

using Store = rill::es::EventStore<std::string, std::int64_t>;

template <typename T>
T must(rill::Result<T> r, const char* what) {
  if (!r) {
    std::fprintf(stderr, "%s: %s\n", what, r.error().to_string().c_str());
    std::exit(1);
  }
  return std::move(*r);
}

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

std::string key_of(std::int64_t i) { return "acct-" + std::to_string(i); }

// The bare loop: every record of the log, keys compared to `only` when set, values decoded.
std::int64_t bare_sum(const rill::storage::Log& log, const std::string* only, std::int64_t* n) {
  rill::storage::RecordBatch batch;
  std::int64_t sum = 0;
  *n = 0;
  for (std::int64_t at = 0; at < log.end_offset(); at = batch.next_offset()) {
    if (!log.read_into(at, batch, 4096)) std::exit(1);
    for (const auto& r : batch) {
      if (only != nullptr && r.key() != std::string_view(*only)) continue;
      std::uint64_t be;
      std::memcpy(&be, r.value()->data(), 8);
      sum += static_cast<std::int64_t>(__builtin_bswap64(be));
      ++*n;
    }
  }
  return sum;
}

struct Row {
  const char* name;
  std::vector<double> rill_rate;  // events/s
  std::vector<double> base_rate;
};

void print(const Row& r, const char* what) {
  const double a = bench_util::median(r.rill_rate);
  const double b = r.base_rate.empty() ? 0 : bench_util::median(r.base_rate);
  if (b > 0) {
    std::printf("%-4s %-58s %8.2f M/s  bare %8.2f M/s  ratio %.2f\n", r.name, what, a / 1e6,
                b / 1e6, a / b);
  } else {
    std::printf("%-4s %-58s %8.2f M/s\n", r.name, what, a / 1e6);
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::int64_t n = 1'000'000;
  std::int64_t keys = 100;
  int rounds = 5;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--events") == 0) n = std::atoll(argv[i + 1]);
    if (std::strcmp(argv[i], "--keys") == 0) keys = std::atoll(argv[i + 1]);
    if (std::strcmp(argv[i], "--rounds") == 0) rounds = std::atoi(argv[i + 1]);
  }
  struct utsname un;
  ::uname(&un);
  std::printf("es_bench: %lld events of 8 bytes, %lld keys for F2/P1, %d rounds (medians)\n",
              static_cast<long long>(n), static_cast<long long>(keys), rounds);
  std::printf("machine : %s, %s %s\n",
              bench_util::first_line_matching("/proc/cpuinfo", "model name").c_str(), un.sysname,
              un.release);

  rill::BrokerOptions options;
  options.prefault_bytes = 0;
  auto broker = must(rill::Broker::open_in_memory(options), "broker");
  rill::TopicConfig config;
  config.segment_bytes = 1u << 30;  // one segment

  // One key, N events; and K keys interleaved, N events.
  auto one = must(Store::open(*broker, "one", config), "topic");
  auto many = must(Store::open(*broker, "many", config), "topic");
  {
    std::vector<std::int64_t> chunk(1000);
    for (std::int64_t i = 0; i < n; i += 1000) {
      for (std::size_t j = 0; j < chunk.size(); ++j) chunk[j] = i + static_cast<std::int64_t>(j);
      (void)must(one.append_unchecked("acct-0", chunk), "append");
    }
    for (std::int64_t i = 0; i < n; ++i) {
      (void)must(many.append_unchecked(key_of(i % keys), std::vector<std::int64_t>{i}), "append");
    }
  }
  const rill::storage::Log& one_log = *one.topic().log(0);
  const rill::storage::Log& many_log = *many.topic().log(0);
  const std::string target = key_of(keys / 2);

  Row f1{"F1", {}, {}}, f2{"F2", {}, {}}, p1{"P1", {}, {}}, a1{"A1", {}, {}};
  auto add = [](std::int64_t s, const std::int64_t& e) { return s + e; };
  for (int round = 0; round < rounds; ++round) {
    std::int64_t count = 0;
    double t0 = now_s();
    auto folded = must(one.fold("acct-0", std::int64_t{0}, add), "fold");
    double t1 = now_s();
    const std::int64_t bare = bare_sum(one_log, nullptr, &count);
    double t2 = now_s();
    if (folded.state != bare || folded.events != n) return std::puts("F1 mismatch"), 1;
    f1.rill_rate.push_back(static_cast<double>(n) / (t1 - t0));
    f1.base_rate.push_back(static_cast<double>(count) / (t2 - t1));

    t0 = now_s();
    auto key_fold = must(many.fold(target, std::int64_t{0}, add), "fold");
    t1 = now_s();
    const std::int64_t key_bare = bare_sum(many_log, &target, &count);
    t2 = now_s();
    if (key_fold.state != key_bare || key_fold.events != count) return std::puts("F2 mismatch"), 1;
    f2.rill_rate.push_back(static_cast<double>(count) / (t1 - t0));
    f2.base_rate.push_back(static_cast<double>(count) / (t2 - t1));

    std::map<std::string, std::int64_t> table;
    t0 = now_s();
    (void)must(many.replay(0, 0,
                           [&](const rill::ConsumerRecord<std::string, std::int64_t>& r) {
                             table[*r.key] += r.value;
                           }),
               "replay");
    t1 = now_s();
    (void)bare_sum(many_log, nullptr, &count);
    t2 = now_s();
    if (static_cast<std::int64_t>(table.size()) != keys) return std::puts("P1 mismatch"), 1;
    p1.rill_rate.push_back(static_cast<double>(n) / (t1 - t0));
    p1.base_rate.push_back(static_cast<double>(count) / (t2 - t1));
  }
  {
    const std::int64_t m = std::min<std::int64_t>(n, 200'000);
    auto checked = must(Store::open(*broker, "checked", config), "topic");
    auto unchecked = must(Store::open(*broker, "unchecked", config), "topic");
    double t0 = now_s();
    for (std::int64_t i = 0; i < m; ++i) {
      (void)must(checked.append("acct-0", i, i - 1), "append");
    }
    double t1 = now_s();
    for (std::int64_t i = 0; i < m; ++i) {
      (void)must(unchecked.append_unchecked("acct-0", std::vector<std::int64_t>{i}), "append");
    }
    double t2 = now_s();
    a1.rill_rate.push_back(static_cast<double>(m) / (t1 - t0));
    a1.base_rate.push_back(static_cast<double>(m) / (t2 - t1));
  }
  std::printf("\n%-4s %-58s %12s  %13s  %s\n", "row", "what", "rill", "baseline", "");
  print(f1, "fold one key's history (all N events its own)");
  print(f2, "fold one key among K interleaved (its events/s)");
  print(p1, "replay a partition into a per-key map (projection)");
  std::printf("%-4s %-58s %8.2f M/s  unchecked %5.2f M/s  ratio %.2f\n", "A1",
              "append at the expected version, 1 event per call",
              bench_util::median(a1.rill_rate) / 1e6, bench_util::median(a1.base_rate) / 1e6,
              bench_util::median(a1.rill_rate) / bench_util::median(a1.base_rate));
  return 0;
}
