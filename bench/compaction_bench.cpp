// bench/compaction_bench.cpp: throughput of log compaction (rill::storage::Log::compact).
//
//   compaction_bench [--records N] [--value-bytes V] [--keys K] [--segment-bytes S]
//                    [--rounds R] [--dir PATH]
//
// Each round appends N records (one per append, a key out of K, a value of V bytes, no
// headers) to a fresh log of S-byte segments, then times one Log::compact() over it: the
// first pass over every record to find each key's newest offset, then the rewrite of every
// sealed segment (build in memory, write, fdatasync, rename, fsync of the directory, index
// rebuild). Rows, medians over R rounds:
//   compaction MB/s   log bytes examined (sealed segments, before) / wall time of compact()
//   records/s         records examined / the same time
//   kept              bytes after / bytes before
// The fsyncs make the figure depend on the disk; with K << N almost every record goes.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "bench_util.hpp"
#include "rill/storage/log.hpp"

namespace {

struct Options {
  std::size_t records = 1'000'000;
  std::size_t value_bytes = 100;
  std::size_t keys = 10'000;
  std::size_t segment_bytes = 16u << 20;
  int rounds = 5;
  std::string dir;
};

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "compaction_bench: %s\n", what.c_str());
  std::exit(1);
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const auto next = [&]() -> std::string {
      if (i + 1 >= argc) die("missing value after " + a);
      return argv[++i];
    };
    if (a == "--records") {
      o.records = std::stoull(next());
    } else if (a == "--value-bytes") {
      o.value_bytes = std::stoull(next());
    } else if (a == "--keys") {
      o.keys = std::stoull(next());
    } else if (a == "--segment-bytes") {
      o.segment_bytes = std::stoull(next());
    } else if (a == "--rounds") {
      o.rounds = std::stoi(next());
    } else if (a == "--dir") {
      o.dir = next();
    } else {
      die("unknown option " + a);
    }
  }
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  using rill::storage::Log;
  using rill::storage::LogConfig;
  const Options o = parse(argc, argv);
  std::string root = o.dir;
  if (root.empty()) {
    const char* t = std::getenv("TMPDIR");
    root =
        std::string(t && *t ? t : "/tmp") + "/rill-compaction-bench-" + std::to_string(::getpid());
  }
  std::vector<double> mbps, rps, kept;
  const std::string value(o.value_bytes, 'v');
  for (int round = 0; round < o.rounds; ++round) {
    const std::string dir = root + "/r" + std::to_string(round);
    std::filesystem::remove_all(dir);
    LogConfig c;
    c.segment_bytes = o.segment_bytes;
    c.prefault_bytes = 0;
    auto log = Log::open(dir, c);
    if (!log) die(log.error().to_string());
    std::uint64_t x = 88172645463325252ull;
    for (std::size_t i = 0; i < o.records; ++i) {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      const std::string key = "key-" + std::to_string(x % o.keys);
      if (auto r = (*log)->append({.key = key, .value = value}); !r) die(r.error().to_string());
    }
    const auto t0 = std::chrono::steady_clock::now();
    auto rep = (*log)->compact();
    const auto t1 = std::chrono::steady_clock::now();
    if (!rep) die(rep.error().to_string());
    const double s = std::chrono::duration<double>(t1 - t0).count();
    mbps.push_back(static_cast<double>(rep->bytes_before) / 1e6 / s);
    rps.push_back(static_cast<double>(rep->records_before) / s);
    kept.push_back(static_cast<double>(rep->bytes_after) / static_cast<double>(rep->bytes_before));
    std::printf("round %d: %.1f MB in %u segments, %u rewritten, %.3f s, %llu -> %llu records\n",
                round, static_cast<double>(rep->bytes_before) / 1e6, rep->segments_examined,
                rep->segments_rewritten, s, static_cast<unsigned long long>(rep->records_before),
                static_cast<unsigned long long>(rep->records_after));
    log->reset();
    std::filesystem::remove_all(dir);
  }
  std::filesystem::remove_all(root);
  std::printf(
      "\ncompaction_bench: %zu records of %zu-byte values, %zu keys, %zu-byte segments, "
      "median of %d rounds\n",
      o.records, o.value_bytes, o.keys, o.segment_bytes, o.rounds);
  std::printf("| row | value |\n|---|---|\n");
  std::printf("| compaction throughput (MB/s of log compacted) | %.0f |\n",
              bench_util::median(mbps));
  std::printf("| records examined per second | %.2f M |\n", bench_util::median(rps) / 1e6);
  std::printf("| bytes kept | %.2f %% |\n", 100 * bench_util::median(kept));
  return 0;
}
