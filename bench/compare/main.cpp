// bench/compare: rill, the bare limits of the machine, and the libraries one would otherwise
// embed, on the same workloads in one run; one table, every row with the ratio rill / it.
// docs/performance.md ("rill beside the alternatives") says what each row measures.
//
//   compare_bench [--records N] [--records-big N] [--value-bytes V] [--big-value-bytes V]
//                 [--latency-records N] [--latency-rate R] [--latency-rounds K]
//                 [--group-records N]
//                 [--reopen-gib G] [--partitions P] [--dir PATH] [--only a,b,...]
//
// Workloads: W1 produce, W2 consume, W3 paced send-to-receive latency, W4 a consumer group of
// 1 and 2 over 8 partitions, W5 produce with a sync every 1,000 records, W6 reopen after a
// SIGKILL and after a clean close, M resident memory with P partitions open. Contenders are
// compiled in when their library was found (RILL_COMPARE_*); names for --only: limits, rill,
// zeromq, sqlite, rocksdb, lmdb, kafka, redis.
#include <sys/utsname.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>

#include "compare.hpp"

namespace compare {
void run_limits(const Options&, const std::string&, Report&);
void run_rill(const Options&, const std::string&, Report&);
#ifdef RILL_COMPARE_ZEROMQ
void run_zeromq(const Options&, const std::string&, Report&);
#endif
#ifdef RILL_COMPARE_SQLITE
void run_sqlite(const Options&, const std::string&, Report&);
#endif
#ifdef RILL_COMPARE_ROCKSDB
void run_rocksdb(const Options&, const std::string&, Report&);
#endif
#ifdef RILL_COMPARE_LMDB
void run_lmdb(const Options&, const std::string&, Report&);
#endif
#ifdef RILL_COMPARE_KAFKA
void run_kafka(const Options&, const std::string&, Report&);
#endif
#ifdef RILL_COMPARE_REDIS
void run_redis(const Options&, const std::string&, Report&);
#endif
}  // namespace compare

namespace {

using namespace compare;

[[noreturn]] void usage(const char* bad) {
  if (bad != nullptr) std::fprintf(stderr, "compare_bench: bad argument: %s\n", bad);
  std::fprintf(stderr,
               "usage: compare_bench [--records N] [--records-big N] [--value-bytes V]\n"
               "         [--big-value-bytes V] [--latency-records N] [--latency-rate R]\n"
               "         [--latency-rounds K]\n"
               "         [--group-records N] [--reopen-gib G] [--partitions P] [--dir PATH]\n"
               "         [--only limits,rill,zeromq,sqlite,rocksdb,lmdb,kafka,redis]\n");
  std::exit(bad != nullptr ? 2 : 0);
}

Options parse(int argc, char** argv) {
  Options o;
  if (const char* t = std::getenv("TMPDIR"); t != nullptr && *t != '\0') o.dir = t;
  if (o.dir.empty()) o.dir = "/tmp";
  auto num = [&](const char* v, const char* flag) {
    char* end = nullptr;
    errno = 0;
    const double d = std::strtod(v, &end);
    if (errno != 0 || end == v || *end != '\0' || d < 0) usage(flag);
    return d;
  };
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "-h" || a == "--help") usage(nullptr);
    if (i + 1 >= argc) usage(argv[i]);
    const char* v = argv[++i];
    const auto u = [&] { return static_cast<std::uint64_t>(num(v, argv[i - 1])); };
    if (a == "--records")
      o.records = u();
    else if (a == "--records-big")
      o.records_big = u();
    else if (a == "--value-bytes")
      o.value_bytes = u();
    else if (a == "--big-value-bytes")
      o.big_value_bytes = u();
    else if (a == "--latency-records")
      o.latency_records = u();
    else if (a == "--latency-rate")
      o.latency_rate = u();
    else if (a == "--latency-rounds")
      o.latency_rounds = static_cast<std::uint32_t>(u());
    else if (a == "--group-records")
      o.group_records = u();
    else if (a == "--reopen-gib")
      o.reopen_gib = num(v, argv[i - 1]);
    else if (a == "--partitions")
      o.memory_partitions = static_cast<std::uint32_t>(u());
    else if (a == "--dir")
      o.dir = v;
    else if (a == "--only")
      o.only = v;
    else
      usage(argv[i - 1]);
  }
  if (o.records < 1000 || o.records_big < 1000 || o.value_bytes < 8 || o.big_value_bytes < 8 ||
      o.latency_records < 1000 || o.latency_rate < 1 || o.latency_rounds < 1 ||
      o.latency_rounds > 15 || o.group_records < 1000 || o.memory_partitions < 1 ||
      o.memory_partitions > 1024) {
    usage(
        "out of range (records >= 1000, values >= 8 bytes, latency rounds 1..15, partitions "
        "1..1024)");
  }
  return o;
}

std::string g_root;
void remove_root() {
  std::error_code ec;
  if (!g_root.empty()) std::filesystem::remove_all(g_root, ec);
}

void run(const Options& o, const char* name, Contender fn, Report& report) {
  if (!o.wants(name)) return;
  const std::string dir = g_root + "/" + name;
  std::filesystem::create_directories(dir);
  std::fprintf(stderr, "compare: %s ...\n", name);
  const auto t0 = Clock::now();
  fn(o, dir, report);
  std::fprintf(stderr, "compare: %s took %.1f s\n", name, seconds_since(t0));
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
}

void target(Report& report, const char* what, double value, double goal, bool at_least,
            const char* unit = "") {
  const bool pass = value > 0 && (at_least ? value >= goal : value <= goal);
  char out[256];
  std::snprintf(out, sizeof out, "  %-58s %8.2f%s  %s %.2f%s  %s", what, value, unit,
                at_least ? ">=" : "<=", goal, unit,
                value <= 0 ? "n/a"
                : pass     ? "pass"
                           : "MISS");
  report.line(out);
}

}  // namespace

int main(int argc, char** argv) {
  Options o = parse(argc, argv);
  std::string tmpl = o.dir + "/compare_bench.XXXXXX";
  if (::mkdtemp(tmpl.data()) == nullptr) {
    std::fprintf(stderr, "compare_bench: mkdtemp in %s: %s\n", o.dir.c_str(), std::strerror(errno));
    return 1;
  }
  g_root = tmpl;
  std::atexit(remove_root);

  struct utsname un;
  ::uname(&un);
  std::printf("rill compare_bench\n");
  std::printf("machine : %ld CPUs (nproc), %s, Linux %s, %s on %s\n",
              ::sysconf(_SC_NPROCESSORS_ONLN),
              bench_util::first_line_matching("/proc/cpuinfo", "model name").c_str(), un.release,
              bench_util::filesystem_of(g_root).c_str(), g_root.c_str());
  std::printf("load    : %s at start\n", bench_util::read_first_line("/proc/loadavg").c_str());
  std::printf(
      "records : 8-byte key; W1/W2/W5 %llu x %zu B and %llu x %zu B values; W3 %llu at %llu/s, "
      "%u rounds; W4 %llu\n",
      static_cast<unsigned long long>(o.records), o.value_bytes,
      static_cast<unsigned long long>(o.records_big), o.big_value_bytes,
      static_cast<unsigned long long>(o.latency_records),
      static_cast<unsigned long long>(o.latency_rate), o.latency_rounds,
      static_cast<unsigned long long>(o.group_records));
  std::printf(
      "ratio   : rill / contender, one run. Throughput: >1 = rill faster. Latency (p99): <1 = rill "
      "faster.\n\n");

  const auto t0 = Clock::now();
  Report report;
  run(o, "limits", run_limits, report);
  run(o, "rill", run_rill, report);
#ifdef RILL_COMPARE_ZEROMQ
  run(o, "zeromq", run_zeromq, report);
#endif
#ifdef RILL_COMPARE_SQLITE
  run(o, "sqlite", run_sqlite, report);
#endif
#ifdef RILL_COMPARE_ROCKSDB
  run(o, "rocksdb", run_rocksdb, report);
#endif
#ifdef RILL_COMPARE_LMDB
  run(o, "lmdb", run_lmdb, report);
#endif
#ifdef RILL_COMPARE_KAFKA
  run(o, "kafka", run_kafka, report);
#endif
#ifdef RILL_COMPARE_REDIS
  run(o, "redis", run_redis, report);
#endif

  // The targets, as ratios from this run.
  const std::string v = std::to_string(o.value_bytes) + "B";
  const double one = report.get(w1(o.value_bytes), "rill send (1 per call)");
  const double batch = report.get(w1(o.value_bytes), "rill send_batch (64 per call)");
  const double bare = report.get(w1(o.value_bytes), "limit: bare mapped append");
  const double lmdb = report.get(w1(o.value_bytes), "LMDB MDB_APPEND, 1000/txn");
  const double poll = report.get(w2(o.value_bytes), "rill Consumer::poll");
  const double read_into = report.get(w2(o.value_bytes), "rill Topic::read_into");
  const double log_read = report.get(w2(o.value_bytes), "rill storage::Log::read_into");
  const double bare_read = report.get(w2(o.value_bytes), "limit: bare mapped read");
  const double p99 = report.get(kW3, "rill Consumer::poll (blocking)", 1);
  const double futex_p99 = report.get(kW3, "limit: bare futex hand-off", 1);
  const double busy_p50 = report.get(kW3, "rill busy-poll (busy_poll)", 0);
  const double g1 = report.get(w4(1), "rill Consumer group");
  const double g2 = report.get(w4(2), "rill Consumer group");
  const auto ratio = [](double a, double b) { return b > 0 ? a / b : 0.0; };
  report.line("\ntargets (" + v + " values)");
  target(report, "W1 send (1 per call) / bare append", ratio(one, bare), 0.5, true);
  target(report, "W1 send (1 per call) / LMDB", ratio(one, lmdb), 1.0, true);
  target(report, "W1 send_batch / bare append", ratio(batch, bare), 0.8, true);
  target(report, "W2 Consumer::poll / bare read", ratio(poll, bare_read), 0.8, true);
  target(report, "W2 Topic::read_into / bare read (info)", ratio(read_into, bare_read), 0.8, true);
  target(report, "W2 storage::Log::read_into / bare read (info)", ratio(log_read, bare_read), 0.8,
         true);
  target(report, "W3 blocking p99 / bare futex p99", ratio(p99, futex_p99), 1.2, false);
  target(report, "W3 busy-poll p50 (us)", busy_p50, 1.0, false, " us");
  target(report, "W4 group of 2 / group of 1", ratio(g2, g1), 1.8, true);
  char w6[128];
  std::snprintf(w6, sizeof w6, "W6 open after SIGKILL, %.2f GiB (s)", o.reopen_gib);
  target(report, w6, report.fact("W6 after SIGKILL"), 1.0, false, " s");
  std::snprintf(w6, sizeof w6, "W6 open after clean close, %.2f GiB (s)", o.reopen_gib);
  target(report, w6, report.fact("W6 after clean close"), 1.0, false, " s");
  const std::string mem =
      "M RssAnon with " + std::to_string(o.memory_partitions) + " partitions (MiB)";
  target(report, mem.c_str(), report.fact("M anon MiB"), 64, false, " MiB");
  std::printf("\n");
  report.print();
  std::printf("load    : %s at end; run took %.0f s\n",
              bench_util::read_first_line("/proc/loadavg").c_str(), seconds_since(t0));
  return 0;
}
