// bench/compare: rill beside the bare limits of the machine and the libraries one would
// otherwise embed, on the same workloads in one run (issue 8). This header holds what every
// contender shares: the options, the records, the measuring harnesses and the report.
//
// Each contender lives in its own file, compiled only when its library was found
// (RILL_COMPARE_<NAME>), and adds its rows through a Report. Every contender writes the same
// records (an 8-byte key, a value whose first 8 bytes are the record's number or its send
// time), reads them back, touches every value byte, checks the count, and says what
// durability it gives.
#pragma once

#include <unistd.h>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "../bench_util.hpp"

namespace compare {

struct Options {
  std::uint64_t records = 200'000;     // W1, W2, W5 with --value-bytes values
  std::uint64_t records_big = 50'000;  // W1, W2 with --big-value-bytes values
  std::size_t value_bytes = 100;
  std::size_t big_value_bytes = 1024;
  std::uint64_t latency_records = 200'000;  // W3
  std::uint64_t latency_rate = 100'000;     // W3 records/s
  std::uint32_t latency_rounds = 3;         // W3: each contender's median round by p99
  std::uint64_t group_records = 1'000'000;  // W4
  double reopen_gib = 0.5;                  // W6 (10 for the figure; explicit flag)
  std::uint32_t memory_partitions = 1000;
  std::string dir;   // the run's fresh directory; contenders work in subdirectories
  std::string only;  // comma-separated contender names to run ("" = all found)
  bool wants(const char* name) const {
    if (only.empty()) return true;
    return ("," + only + ",").find("," + std::string(name) + ",") != std::string::npos;
  }
};

using Clock = std::chrono::steady_clock;

inline std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
      .count();
}

inline double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// --- records -----------------------------------------------------------------------------

constexpr std::size_t kKeyBytes = 8;

// The key of record i: its number, 8 bytes little-endian.
inline void make_key(std::uint64_t i, char (&key)[kKeyBytes]) { std::memcpy(key, &i, 8); }

// A value of `bytes` (>= 8) bytes: `stamp` in the first 8 bytes, a pattern after.
inline std::string make_value(std::size_t bytes) {
  std::string v(bytes, '\0');
  for (std::size_t j = 8; j < bytes; ++j) v[j] = static_cast<char>('a' + j % 26);
  return v;
}
inline void stamp(std::string& value, std::uint64_t stamp) { std::memcpy(value.data(), &stamp, 8); }
inline std::uint64_t stamp_of(const void* value) {
  std::uint64_t s;
  std::memcpy(&s, value, 8);
  return s;
}

// Reads every byte of a value (what a consumer that uses its records pays).
inline std::uint64_t touch(const void* p, std::size_t n) {
  const auto* b = static_cast<const unsigned char*>(p);
  std::uint64_t sum = 0;
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    std::uint64_t w;
    std::memcpy(&w, b + i, 8);
    sum += w;
  }
  for (; i < n; ++i) sum += b[i];
  return sum;
}

inline volatile std::uint64_t g_sink = 0;

// --- measurements --------------------------------------------------------------------------

struct Rate {
  double records_per_s = 0;
  double mb_per_s = 0;  // value + key bytes, 10^6
};
inline Rate rate_of(std::uint64_t records, std::size_t value_bytes, double seconds) {
  const double r = static_cast<double>(records) / seconds;
  return {r, r * static_cast<double>(value_bytes + kKeyBytes) / 1e6};
}

struct Latency {
  double p50_us = 0, p99_us = 0, p999_us = 0, max_us = 0;
};
inline Latency latency_of(std::vector<double> us) {
  std::sort(us.begin(), us.end());
  return {bench_util::percentile(us, 0.50), bench_util::percentile(us, 0.99),
          bench_util::percentile(us, 0.999), us.back()};
}

// W3's harness. A producer thread calls send(i, value) for i in [0, n), paced at `rate`
// records/s (spinning to each send's due time; the value carries the send time, taken just
// before send, in its first 8 bytes). The calling thread runs receive(n, on_value), which must
// block waiting for records and call on_value(first 8 bytes) for each of the n records.
inline Latency paced_latency(
    const Options& o, std::size_t value_bytes,
    const std::function<void(std::uint64_t, std::string&)>& send,
    const std::function<void(std::uint64_t, const std::function<void(std::uint64_t)>&)>& receive) {
  const std::uint64_t n = o.latency_records;
  std::vector<double> us;
  us.reserve(n);
  // Every contender starts with no dirty pages: otherwise the writeback of what earlier
  // workloads wrote (gigabytes, for some contenders) runs on these two CPUs during this one.
  ::sync();
  std::thread producer([&] {
    std::string value = make_value(value_bytes);
    const std::int64_t period_ns = 1'000'000'000 / static_cast<std::int64_t>(o.latency_rate);
    const std::int64_t t0 = now_ns() + 20'000'000;  // give the receiver 20 ms to block first
    for (std::uint64_t i = 0; i < n; ++i) {
      const std::int64_t due = t0 + static_cast<std::int64_t>(i) * period_ns;
      while (now_ns() < due) bench_util::cpu_relax();
      stamp(value, static_cast<std::uint64_t>(now_ns()));
      send(i, value);
    }
  });
  receive(n, [&](std::uint64_t sent_ns) {
    us.push_back(static_cast<double>(now_ns() - static_cast<std::int64_t>(sent_ns)) / 1e3);
  });
  producer.join();
  if (us.size() != n) return {};
  return latency_of(std::move(us));
}

// W3 in rounds: one_round(r) for r in [0, latency_rounds), each from a fresh start (its own
// topic, stream or socket), and the round whose p99 is the median (the upper middle one for
// an even count) is the contender's figure.
// On these shared 2-CPU machines a 2-second round now and then lands on a stall of
// milliseconds that is the machine's, not the contender's (docs/performance.md, W3). A round
// that fails returns a Latency whose max_us is 0 (and says why itself); so does this.
struct LatencyRounds {
  Latency median;
  std::string note;  // every round's p99, in the order run
};
inline LatencyRounds latency_rounds(const Options& o,
                                    const std::function<Latency(std::uint32_t)>& one_round) {
  std::vector<Latency> rounds;
  std::string p99s;
  for (std::uint32_t r = 0; r < o.latency_rounds; ++r) {
    const Latency l = one_round(r);
    if (l.max_us == 0) return {};
    rounds.push_back(l);
    char buf[32];
    std::snprintf(buf, sizeof buf, "%s%.0f", r == 0 ? "" : "/", l.p99_us);
    p99s += buf;
  }
  std::sort(rounds.begin(), rounds.end(),
            [](const Latency& a, const Latency& b) { return a.p99_us < b.p99_us; });
  return {rounds[rounds.size() / 2],
          "; median of " + std::to_string(rounds.size()) + " rounds by p99 (" + p99s + " us)"};
}

// --- the report ------------------------------------------------------------------------------

// One table: a row per contender per workload. The first row added for a workload with
// `rill_ref` set is rill's figure for that workload; every row's ratio is rill / contender
// (throughput: above 1 means rill is faster; latency, p99: below 1 means rill is faster).
class Report {
 public:
  void rate(const std::string& workload, const std::string& contender, Rate r,
            const std::string& note, bool rill_ref = false) {
    Row row{workload, contender, false, r, {}, note, ""};
    if (rill_ref && refs_.count(workload) == 0) refs_[workload] = r.records_per_s;
    rows_.push_back(row);
  }
  void latency(const std::string& workload, const std::string& contender, Latency l,
               const std::string& note, bool rill_ref = false) {
    Row row{workload, contender, true, {}, l, note, ""};
    if (rill_ref && refs_.count(workload) == 0) refs_[workload] = l.p99_us;
    rows_.push_back(row);
  }
  // A row that could not be measured, and why (a count that did not match, an error).
  void failed(const std::string& workload, const std::string& contender, const std::string& why) {
    rows_.push_back(Row{workload, contender, false, {}, {}, "", why});
    std::fprintf(stderr, "compare: %s / %s: %s\n", workload.c_str(), contender.c_str(),
                 why.c_str());
  }
  // A row without a figure to compare: the measurement is in the note.
  void info(const std::string& workload, const std::string& contender, const std::string& note) {
    Row row{workload, contender, false, {}, {}, note, ""};
    row.is_info = true;
    rows_.push_back(row);
  }
  // Free text printed under the table (durability per contender, targets).
  void line(const std::string& text) { lines_.push_back(text); }

  // Figures that are not rows (W6 seconds, memory), kept for the targets.
  void set_fact(const std::string& name, double value) { facts_[name] = value; }
  double fact(const std::string& name) const {
    const auto it = facts_.find(name);
    return it == facts_.end() ? 0 : it->second;
  }
  // A figure already reported, for the targets: records/s, or p50/p99 in us.
  double get(const std::string& workload, const std::string& contender, int field = 0) const {
    for (const auto& r : rows_) {
      if (r.workload != workload || r.contender != contender || !r.error.empty()) continue;
      if (!r.is_latency) return r.rate.records_per_s;
      return field == 0 ? r.lat.p50_us : field == 1 ? r.lat.p99_us : r.lat.max_us;
    }
    return 0;
  }

  void print() const {
    std::printf("%-13s %-34s %24s %24s %8s  %s\n", "workload", "contender", "records/s  MB/s",
                "p50/p99/p99.9/max us", "rill/x", "notes");
    // Workloads W1..W6 in order, then the limits and memory rows (L, M).
    std::vector<std::string> order;
    for (const auto& r : rows_) {
      if (std::find(order.begin(), order.end(), r.workload) == order.end()) {
        order.push_back(r.workload);
      }
    }
    std::sort(order.begin(), order.end(), [](const std::string& a, const std::string& b) {
      return std::pair(a[0] != 'W', a) < std::pair(b[0] != 'W', b);
    });
    std::vector<Row> sorted;
    for (const auto& w : order) {
      for (const auto& r : rows_) {
        if (r.workload == w) sorted.push_back(r);
      }
    }
    std::string last;
    for (const auto& r : sorted) {
      if (r.workload != last && !last.empty()) std::printf("\n");
      last = r.workload;
      char rate[64] = "", lat[64] = "", ratio[16] = "-";
      if (!r.error.empty()) {
        std::printf("%-13s %-34s %24s %24s %8s  FAILED: %s\n", r.workload.c_str(),
                    r.contender.c_str(), "-", "-", "-", r.error.c_str());
        continue;
      }
      const auto ref = refs_.find(r.workload);
      if (r.is_info) {
        std::printf("%-13s %-34s %24s %24s %8s  %s\n", r.workload.c_str(), r.contender.c_str(), "",
                    "", "", r.note.c_str());
        continue;
      }
      if (r.is_latency) {
        std::snprintf(lat, sizeof lat, "%.1f/%.1f/%.0f/%.0f", r.lat.p50_us, r.lat.p99_us,
                      r.lat.p999_us, r.lat.max_us);
        if (ref != refs_.end() && r.lat.p99_us > 0) {
          std::snprintf(ratio, sizeof ratio, "%.2f", ref->second / r.lat.p99_us);
        }
      } else {
        std::snprintf(rate, sizeof rate, "%8.3f M  %7.0f", r.rate.records_per_s / 1e6,
                      r.rate.mb_per_s);
        if (ref != refs_.end() && r.rate.records_per_s > 0) {
          std::snprintf(ratio, sizeof ratio, "%.2f", ref->second / r.rate.records_per_s);
        }
      }
      std::printf("%-13s %-34s %24s %24s %8s  %s\n", r.workload.c_str(), r.contender.c_str(), rate,
                  lat, ratio, r.note.c_str());
    }
    for (const auto& l : lines_) std::printf("%s\n", l.c_str());
  }

 private:
  struct Row {
    std::string workload, contender;
    bool is_latency;
    Rate rate;
    Latency lat;
    std::string note, error;
    bool is_info = false;
  };
  std::vector<Row> rows_;
  std::map<std::string, double> refs_;
  std::map<std::string, double> facts_;
  std::vector<std::string> lines_;
};

// Workload names, shared so that every contender's rows group with rill's.
inline std::string w1(std::size_t value_bytes) { return "W1 " + std::to_string(value_bytes) + "B"; }
inline std::string w2(std::size_t value_bytes) { return "W2 " + std::to_string(value_bytes) + "B"; }
inline const char* const kW3 = "W3 latency";
inline std::string w4(int consumers) { return "W4 group x" + std::to_string(consumers); }
inline const char* const kW5 = "W5 durable";

// The three runs of a storage contender: W1+W2 with small values, with big values, then W5.
struct StorageCase {
  std::size_t value_bytes;
  std::uint64_t records;
  bool durable;
  std::string workload() const { return durable ? kW5 : w1(value_bytes); }
};
inline std::vector<StorageCase> storage_cases(const Options& o) {
  return {{o.value_bytes, o.records, false},
          {o.big_value_bytes, o.records_big, false},
          {o.value_bytes, o.records, true}};
}

// A contender's entry point: runs what it can of W1-W5 in `dir` (created for it, removed
// after) and adds its rows.
using Contender = void (*)(const Options&, const std::string& dir, Report&);

// What the members of a W4 group share: how many records they have read together, and when
// that count first reached n. The clock stops there: a member still blocked in its poll's
// timeout after the others read the last record is idle, not working, and counting its wait
// charged a group of two up to one poll timeout that a group of one never pays.
class GroupProgress {
 public:
  GroupProgress(std::uint64_t n, Clock::time_point start) : n_(n), start_(start) {}
  std::uint64_t read() const noexcept { return read_.load(std::memory_order_relaxed); }
  bool done() const noexcept { return read() >= n_; }
  // A member read k more records.
  void add(std::uint64_t k) noexcept { note(read_.fetch_add(k, std::memory_order_relaxed) + k); }
  // The members' count is now `total` (when members count by positions, not by records read:
  // a record read twice after a rebalance counts once). Never moves the count back.
  void set(std::uint64_t total) noexcept {
    std::uint64_t now = read();
    while (now < total && !read_.compare_exchange_weak(now, total, std::memory_order_relaxed)) {
    }
    note(total);
  }
  // Seconds from the start to the first time the count reached n (to now if it never did).
  // Call after the members are joined.
  double seconds() const {
    return std::chrono::duration<double>((finished_ ? end_ : Clock::now()) - start_).count();
  }

 private:
  void note(std::uint64_t total) noexcept {
    // The first member to see n reached takes the time; join() publishes end_ to seconds().
    if (total >= n_ && !finished_.exchange(true, std::memory_order_relaxed)) end_ = Clock::now();
  }

  const std::uint64_t n_;
  const Clock::time_point start_;
  std::atomic<std::uint64_t> read_{0};
  std::atomic<bool> finished_{false};
  Clock::time_point end_{};
};

// Runs `consumers` threads of a group until together they have read `n` records; returns
// records/s up to the moment the n-th record was read (GroupProgress). Each thread runs
// body(index, progress), reports what it read, and must return once progress.done().
inline double run_group(int consumers, std::uint64_t n,
                        const std::function<void(int, GroupProgress&)>& body) {
  GroupProgress progress(n, Clock::now());
  std::vector<std::thread> threads;
  for (int c = 0; c < consumers; ++c) threads.emplace_back([&, c] { body(c, progress); });
  for (auto& t : threads) t.join();
  return static_cast<double>(n) / progress.seconds();
}

}  // namespace compare
