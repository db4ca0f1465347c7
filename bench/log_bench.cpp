// bench/log_bench.cpp: rill's partition log (rill::storage::Log) against bare baselines
// measured in the same run on the same machine. Prints one table; docs/performance.md explains
// every row and records the results.
//
//   log_bench [--records N] [--value-bytes V] [--dir PATH] [--rounds R] [--batch B]
//             [--samples S] [--pace-us MIN,MAX] [--prefault-bytes P]
//
// Rows (throughput rows: the median over R rounds, each round on fresh files):
//  1  Log::append, one record per call, beside a bare append: memcpy of a 16-byte header
//     {u32 length, u32 checksum = 0, u64 offset} + the value into a posix_fallocate'd file
//     mapped MAP_SHARED, fully pre-faulted with MADV_POPULATE_WRITE before timing.
//  2  Log::append_batch, B records per call, beside the same bare append.
//  3  a full read with Log::read_into (one reused RecordBatch, 1024 records per call) with
//     verify_checksums on (3a) and off (3b), beside a bare walk of the bare file's headers.
//     Both sides touch the same bytes per record: the value's size and its first byte.
//  1k  row 1 with LogConfig::clock = CoarseClock (timestamps at the kernel tick, opt-in).
//  1c, 2c, 3c (information, no target): the same rill figures beside a bare baseline that also
//     computes (or, reading, checks) a CRC-32C of each record, as rill does for every frame.
//  1f, 2f (information): rows 1 and 2 beside the bare append into a file that is not
//     pre-faulted, so that its first write to each page faults (as in a file grown and mapped
//     as it fills, issue 8's "bare mapped file grown in 64 MiB steps").
//  3w (information): a walk of rill's own segment file that decodes only the varints leading
//     to each value and touches what rows 3a/3b touch, with no checks and no RecordView: what
//     the format itself costs a reader, against the bare read.
//  4  append-to-wake latency: a consumer asleep in Log::wait_for, a producer appending one
//     record at a time (spin-paced, so the consumer is asleep at every append), beside a bare
//     futex hand-off (atomic store + FUTEX_WAKE_PRIVATE / FUTEX_WAIT_PRIVATE). The same two
//     threads alternate the two kinds of hand-off, so both see the same background load.
//
// Records carry no key and no headers, and a value of V bytes (default 100); rill stamps them
// with its clock (timestamp kNoTimestamp). Reads are of warm data: page cache and page tables
// populated (the bare file was just written through its mapping; the rill log was just
// reopened, and recovery scanned every frame).
#include <fcntl.h>
#include <linux/futex.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
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
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "bench_util.hpp"
#include "rill/storage/log.hpp"

namespace {

using bench_util::cpu_relax;
using bench_util::filesystem_of;
using bench_util::first_line_matching;
using bench_util::median;
using bench_util::percentile;
using bench_util::read_first_line;

using SteadyClock = std::chrono::steady_clock;
using rill::storage::Log;
using rill::storage::LogConfig;
using rill::storage::Record;
using rill::storage::RecordBatch;
using rill::storage::RecordView;

volatile std::uint64_t g_sink = 0;  // results of read loops land here, so they are computed
std::string g_root;                 // our fresh directory, removed at exit

void remove_root() {
  if (g_root.empty()) return;
  std::error_code ec;
  std::filesystem::remove_all(g_root, ec);
  g_root.clear();
}

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "log_bench: %s\n", what.c_str());
  remove_root();
  std::exit(1);
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

double seconds_since(SteadyClock::time_point t0) {
  return std::chrono::duration<double>(SteadyClock::now() - t0).count();
}

long minor_faults_of_this_thread() {
  struct rusage ru;
  ::getrusage(RUSAGE_THREAD, &ru);
  return ru.ru_minflt;
}

constexpr std::size_t align8(std::size_t n) { return (n + 7) & ~std::size_t{7}; }

// --- options ---------------------------------------------------------------------------------

struct Options {
  std::uint64_t records = 2'000'000;
  std::size_t value_bytes = 100;
  std::string dir;  // parent of our fresh directory; $TMPDIR or /tmp by default
  int rounds = 3;
  std::size_t batch = 64;
  std::uint64_t samples = 100'000;
  int pace_min_us = 20;
  int pace_max_us = 50;
  std::size_t prefault_bytes = LogConfig{}.prefault_bytes;  // rill's default unless overridden
};

[[noreturn]] void usage(const char* bad) {
  if (bad != nullptr) std::fprintf(stderr, "log_bench: bad argument: %s\n", bad);
  std::fprintf(stderr,
               "usage: log_bench [--records N] [--value-bytes V (>= 8)] [--dir PATH]\n"
               "                 [--rounds R] [--batch B] [--samples S] [--pace-us MIN,MAX]\n"
               "                 [--prefault-bytes P (rill's LogConfig::prefault_bytes)]\n"
               "defaults: --records 2000000 --value-bytes 100 --dir $TMPDIR|/tmp --rounds 3\n"
               "          --batch 64 --samples 100000 --pace-us 20,50 --prefault-bytes 4194304\n");
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
    } else if (a == "--batch") {
      o.batch = parse_u64(v, argv[i - 1]);
    } else if (a == "--samples") {
      o.samples = parse_u64(v, argv[i - 1]);
    } else if (a == "--prefault-bytes") {
      o.prefault_bytes = parse_u64(v, argv[i - 1]);
    } else if (a == "--pace-us") {
      if (std::sscanf(v, "%d,%d", &o.pace_min_us, &o.pace_max_us) != 2) usage(argv[i - 1]);
    } else {
      usage(argv[i - 1]);
    }
  }
  if (o.records == 0 || o.value_bytes < 8 || o.value_bytes > (512u << 10) || o.rounds < 1 ||
      o.rounds > 99 || o.batch == 0 || o.samples < 100 || o.pace_min_us < 0 ||
      o.pace_max_us < o.pace_min_us) {
    usage("out of range (--value-bytes must be within [8, 512 KiB], --samples >= 100)");
  }
  return o;
}

// --- machine description ---------------------------------------------------------------------

// --- the bare baseline: a mapped file of {u32 length, u32 checksum, u64 offset} + value ------

struct BareHeader {
  std::uint32_t length;
  std::uint32_t checksum;  // always 0: the baseline computes no checksum
  std::uint64_t offset;
};
static_assert(sizeof(BareHeader) == 16);

class BareFile {
 public:
  // `prefault`: populate every page for writing before the clock starts (the baseline the
  // targets use); without it, the appender's first write to each page faults (rows 1f, 2f).
  BareFile(const std::string& path, std::size_t bytes, bool prefault = true)
      : path_(path), size_(bytes) {
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd_ < 0) die("open " + path + ": " + std::strerror(errno));
    if (const int err = ::posix_fallocate(fd_, 0, static_cast<off_t>(size_)); err != 0) {
      die("posix_fallocate " + path + ": " + std::strerror(err));
    }
    void* p = ::mmap(nullptr, size_, PROT_READ | PROT_WRITE, MAP_SHARED, fd_, 0);
    if (p == MAP_FAILED) die("mmap " + path + ": " + std::strerror(errno));
    data_ = static_cast<std::byte*>(p);
    // Pre-fault every page for writing, as rill's worker does ahead of its appender (rill
    // does it concurrently, 4 MiB ahead; the baseline does it all before the clock starts).
    if (prefault && ::madvise(data_, size_, MADV_POPULATE_WRITE) != 0) {
      const std::size_t page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
      for (std::size_t i = 0; i < size_; i += page) data_[i] = std::byte{0};
    }
  }
  BareFile(const BareFile&) = delete;
  BareFile& operator=(const BareFile&) = delete;
  ~BareFile() {
    ::munmap(data_, size_);
    ::close(fd_);
    ::unlink(path_.c_str());
  }
  std::byte* data() const { return data_; }

 private:
  std::string path_;
  std::size_t size_;
  int fd_ = -1;
  std::byte* data_ = nullptr;
};

// Published end of the bare log: a release store per record, as a log that readers can
// follow needs (a plain mov on x86).
std::atomic<std::uint64_t> g_bare_end{0};

// Appends `n` records of `value_bytes`, returns seconds. Bytes used: n * stride. With
// `checksum`, also stores the CRC-32C of each frame's bytes after the checksum field (offset
// and value), as rill does for its frames (informational rows only).
template <bool kChecksum>
double bare_append(std::byte* base, std::uint64_t n, std::size_t value_bytes) {
  std::vector<std::byte> value(value_bytes, std::byte{'v'});
  const std::size_t stride = align8(sizeof(BareHeader) + value_bytes);
  std::byte* w = base;
  const auto t0 = SteadyClock::now();
  for (std::uint64_t i = 0; i < n; ++i) {
    value[0] = static_cast<std::byte>(i);
    BareHeader h{static_cast<std::uint32_t>(value_bytes), 0, i};
    std::memcpy(w + sizeof h, value.data(), value_bytes);
    if constexpr (kChecksum) {
      h.checksum = rill::detail::crc32c_extend(rill::crc32c(&h.offset, sizeof h.offset),
                                               w + sizeof h, value_bytes);
    }
    std::memcpy(w, &h, sizeof h);
    w += stride;
    // release: a reader that sees the new end sees the record's bytes.
    g_bare_end.store(i + 1, std::memory_order_release);
  }
  return seconds_since(t0);
}

struct ReadResult {
  double seconds;
  std::uint64_t count;
  std::uint64_t sum;
};

// Walks the records, touching each value's size and first byte; with `kChecksum` also checks
// each record's CRC-32C (informational rows only).
template <bool kChecksum>
ReadResult bare_read(const std::byte* base) {
  // acquire: pairs with the release in bare_append.
  const std::uint64_t n = g_bare_end.load(std::memory_order_acquire);
  std::uint64_t sum = 0;
  std::uint64_t count = 0;
  std::uint64_t bad = 0;
  const std::byte* q = base;
  const auto t0 = SteadyClock::now();
  for (; count < n; ++count) {
    BareHeader h;
    std::memcpy(&h, q, sizeof h);
    if constexpr (kChecksum) {
      bad += rill::crc32c(q + 8, sizeof h - 8 + h.length) != h.checksum;
    }
    sum += h.length + static_cast<unsigned char>(q[sizeof h]);
    q += align8(sizeof h + h.length);
  }
  const double s = seconds_since(t0);
  if (bad != 0) die("bare read: checksum mismatch");
  g_sink = g_sink + sum;
  return {s, count, sum};
}

// --- rill ------------------------------------------------------------------------------------

LogConfig throughput_config(const Options& o, bool verify) {
  LogConfig c;
  c.prefault_bytes = o.prefault_bytes;
  c.segment_bytes = std::size_t{1} << 30;  // 2M frames of 144 bytes fit in one segment
  c.verify_checksums = verify;
  return c;
}

struct AppendResult {
  double seconds;
  long appender_faults;  // minor faults taken by the appending thread inside the timed loop
};

AppendResult rill_append(Log& log, std::uint64_t n, std::size_t value_bytes) {
  std::string value(value_bytes, 'v');
  Record rec;
  rec.value = std::string_view(value);
  const long f0 = minor_faults_of_this_thread();
  const auto t0 = SteadyClock::now();
  for (std::uint64_t i = 0; i < n; ++i) {
    value[0] = static_cast<char>(i);
    auto r = log.append(rec);
    if (!r) die("append: " + r.error().to_string());
  }
  const double s = seconds_since(t0);
  return {s, minor_faults_of_this_thread() - f0};
}

AppendResult rill_append_batch(Log& log, std::uint64_t n, std::size_t value_bytes,
                               std::size_t batch) {
  std::vector<std::string> values(batch, std::string(value_bytes, 'v'));
  std::vector<Record> recs(batch);
  for (std::size_t j = 0; j < batch; ++j) recs[j].value = std::string_view(values[j]);
  const long f0 = minor_faults_of_this_thread();
  const auto t0 = SteadyClock::now();
  for (std::uint64_t i = 0; i < n;) {
    const std::size_t k = static_cast<std::size_t>(std::min<std::uint64_t>(batch, n - i));
    for (std::size_t j = 0; j < k; ++j) values[j][0] = static_cast<char>(i + j);
    auto r = log.append_batch(std::span<const Record>(recs.data(), k));
    if (!r) die("append_batch: " + r.error().to_string());
    i += k;
  }
  const double s = seconds_since(t0);
  return {s, minor_faults_of_this_thread() - f0};
}

ReadResult rill_read(const Log& log) {
  RecordBatch batch;
  std::int64_t next = log.start_offset();
  const std::int64_t end = log.end_offset();
  std::uint64_t sum = 0;
  std::uint64_t count = 0;
  const auto t0 = SteadyClock::now();
  while (next < end) {
    auto r = log.read_into(next, batch, 1024);
    if (!r) die("read_into: " + r.error().to_string());
    for (const RecordView& rv : batch) {
      const std::string_view v = *rv.value();
      sum += v.size() + static_cast<unsigned char>(v[0]);
    }
    count += batch.size();
    next = batch.next_offset();
  }
  const double s = seconds_since(t0);
  g_sink = g_sink + sum;
  return {s, count, sum};
}

// Row 3w: the least any reader of rill's format must do for what row 3 reads. Walks the
// batches of the log's one segment, read-only and mapped with MAP_POPULATE (page tables
// warm, as the bare read's are), decoding only the varints that lead to each value, touching
// the value's size and first byte as rows 3a/3b do: no checks, no CRC, no RecordView. Not
// something a library could ship (it trusts every byte); it measures the format, not the code.
ReadResult format_walk(const std::string& dir, std::uint64_t n) {
  std::string path;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    if (e.path().extension() == ".log") {
      if (!path.empty()) die("format walk: " + dir + " has more than one segment");
      path = e.path().string();
    }
  }
  if (path.empty()) die("format walk: no segment in " + dir);
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) die("open " + path + ": " + std::strerror(errno));
  const std::size_t bytes = std::filesystem::file_size(path);
  void* m = ::mmap(nullptr, bytes, PROT_READ, MAP_SHARED | MAP_POPULATE, fd, 0);
  ::close(fd);
  if (m == MAP_FAILED) die("mmap " + path + ": " + std::strerror(errno));
  const auto* base = static_cast<const std::byte*>(m);
  namespace st = rill::storage;
  std::uint64_t sum = 0;
  std::uint64_t count = 0;
  std::uint64_t pos = st::kFileHeaderSize;
  bool bad = false;
  const auto t0 = SteadyClock::now();
  while (count < n && pos + st::kFrameHeaderSize <= bytes) {
    const std::byte* f = base + pos;
    const std::uint32_t size = st::read_u32(f);
    const std::uint16_t records = st::read_u16(f + offsetof(st::FrameHeader, count));
    if (size < st::kFrameHeaderSize || size > bytes - pos) break;
    const std::byte* const end = f + size;
    const std::byte* p = f + st::kFrameHeaderSize;
    for (std::uint16_t i = 0; i < records && p != nullptr; ++i) {
      std::uint64_t len = 0, skip = 0, key = 0, value = 0;
      p = st::get_varint(p, end, &len);
      if (p == nullptr) break;
      const std::byte* const next = p + len;
      p = st::get_varint(p, end, &skip);                    // offset delta
      if (p != nullptr) p = st::get_varint(p, end, &skip);  // timestamp delta
      if (p != nullptr) p = st::get_varint(p, end, &key);
      if (p != nullptr) p = st::get_varint(p + (key == 0 ? 0 : key - 1), end, &value);
      if (p == nullptr || value == 0) break;
      sum += (value - 1) + static_cast<unsigned char>(*p);
      p = next;
    }
    bad |= p == nullptr;
    count += records;
    pos += st::align_frame(size);
  }
  const double s = seconds_since(t0);
  ::munmap(m, bytes);
  if (bad) die("format walk: a record did not decode");
  g_sink = g_sink + sum;
  return {s, count, sum};
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

long futex(std::atomic<std::uint32_t>& word, int op, std::uint32_t val) {
  return ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), op, val, nullptr, nullptr,
                   0);
}

// One producer and one consumer thread; hand-offs alternate between the bare futex (even
// sequence numbers) and rill (odd), so both see the same threads, CPUs and background load.
// Latencies in microseconds; the first `warmup` hand-offs of each kind are dropped.
void latency(const std::string& dir, const Options& o, std::uint64_t warmup,
             std::vector<double>& bare_out, std::vector<double>& rill_out) {
  LogConfig config;
  config.prefault_bytes = o.prefault_bytes;
  auto log = unwrap(Log::open(dir, config), "Log::open");
  const std::uint64_t total = 2 * (o.samples + warmup);
  alignas(64) std::atomic<std::uint32_t> seq{0};  // the bare futex word
  alignas(64) std::atomic<std::int64_t> bare_send_ns{0};
  alignas(64) std::atomic<std::uint64_t> done{0};  // hand-offs the consumer has finished
  std::atomic<bool> ready{false};
  std::vector<double> lat(total);
  std::thread consumer([&] {
    RecordBatch batch;
    ready.store(true, std::memory_order_release);
    for (std::uint64_t i = 0; i < total; ++i) {
      std::int64_t sent = 0;
      std::int64_t woke = 0;
      if (i % 2 == 0) {
        const auto want = static_cast<std::uint32_t>(i / 2 + 1);
        for (;;) {
          // acquire: pairs with the producer's release store; bare_send_ns is visible.
          const std::uint32_t v = seq.load(std::memory_order_acquire);
          if (v == want) break;
          futex(seq, FUTEX_WAIT_PRIVATE, v);
        }
        woke = now_ns();
        sent = bare_send_ns.load(std::memory_order_relaxed);
      } else {
        const auto at = static_cast<std::int64_t>(i / 2);
        unwrap(log->wait_for(at, std::chrono::seconds(10)), "wait_for");
        woke = now_ns();
        unwrap(log->read_into(at, batch, 1), "read_into");
        std::memcpy(&sent, batch[0].value()->data(), sizeof sent);
      }
      lat[i] = static_cast<double>(woke - sent) / 1000.0;
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
    if (i % 2 == 0) {
      bare_send_ns.store(now_ns(), std::memory_order_relaxed);
      // release: publishes bare_send_ns to the consumer's acquire load.
      seq.store(static_cast<std::uint32_t>(i / 2 + 1), std::memory_order_release);
      futex(seq, FUTEX_WAKE_PRIVATE, 1);
    } else {
      const std::int64_t sent = now_ns();
      std::memcpy(value.data(), &sent, sizeof sent);
      auto r = log->append(rec);
      if (!r) die("append: " + r.error().to_string());
    }
  }
  consumer.join();
  log.reset();
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  for (std::uint64_t i = 2 * warmup; i < total; ++i)
    (i % 2 == 0 ? bare_out : rill_out).push_back(lat[i]);
}

// --- the table -------------------------------------------------------------------------------

std::string rate(double records_per_s, double value_bytes) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%6.2f M/s %5.0f MB/s", records_per_s / 1e6,
                records_per_s * value_bytes / 1e6);
  return buf;
}

std::string micros(double us) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%8.1f us", us);
  return buf;
}

void row(const char* id, const char* what, const std::string& rill, const std::string& bare,
         double ratio, const char* target, const char* result, const std::string& note) {
  std::printf("%-3s %-34s %-22s %-22s %6.2f  %-7s %-5s %s\n", id, what, rill.c_str(), bare.c_str(),
              ratio, target, result, note.c_str());
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = parse(argc, argv);
  std::setvbuf(stdout, nullptr, _IOLBF, 0);

  std::string tmpl = o.dir + "/log_bench.XXXXXX";
  if (::mkdtemp(tmpl.data()) == nullptr) die("mkdtemp in " + o.dir + ": " + std::strerror(errno));
  g_root = tmpl;
  std::atexit(remove_root);

  const std::uint64_t n = o.records;
  const std::size_t vb = o.value_bytes;
  const std::size_t bare_stride = align8(sizeof(BareHeader) + vb);
  // A record's bytes in rill's format: its fields (offset and timestamp deltas of one byte
  // each, as here) behind a 40-byte batch header per append call.
  const std::string sample_value(vb, 'v');
  const rill::storage::Record sample{.value = std::string_view(sample_value)};
  const std::size_t rill_body = 2 + rill::storage::record_payload_size(sample);
  const std::size_t rill_record = rill::storage::varint_size(rill_body) + rill_body;
  const std::size_t rill_single =
      rill::storage::align_frame(rill::storage::kFrameHeaderSize + rill_record);
  const double rill_batched = static_cast<double>(rill::storage::align_frame(
                                  rill::storage::kFrameHeaderSize + o.batch * rill_record)) /
                              static_cast<double>(o.batch);
  const std::size_t page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  const std::size_t bare_bytes = (n * bare_stride + page) & ~(page - 1);

  struct utsname un;
  ::uname(&un);
  std::printf("rill log_bench\n");
  std::printf(
      "machine : %ld CPUs (nproc), %s, %s %s, clocksource %s\n", ::sysconf(_SC_NPROCESSORS_ONLN),
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
  std::printf(
      "files   : %s (%s); rill LogConfig: segment_bytes 1 GiB (latency: default), "
      "prefault_bytes %zu, other fields default\n",
      g_root.c_str(), filesystem_of(g_root).c_str(), o.prefault_bytes);
  std::printf("load    : %s at start (loadavg; other processes on the machine add noise)\n",
              read_first_line("/proc/loadavg").c_str());
  std::printf("records : N = %" PRIu64
              ", value %zu bytes, no key, no headers; rill %zu bytes per single append,"
              " %.1f per record in batches of %zu; bare frame %zu bytes (16-byte header +"
              " value, 8-aligned)\n",
              n, vb, rill_single, rill_batched, o.batch, bare_stride);
  std::printf(
      "method  : throughput rows = median of %d rounds (fresh files each round); "
      "append_batch %zu records/call; read_into 1024 records/call\n",
      o.rounds, o.batch);
  std::printf("          latency rows = %" PRIu64
              " samples per side; one producer and one "
              "consumer thread alternate bare and rill hand-offs; each send spin-paced %d-%d us "
              "after the consumer's previous wake\n",
              o.samples, o.pace_min_us, o.pace_max_us);
  std::fflush(stdout);

  std::vector<double> bare_app, bare_rd, bare_app_crc, bare_rd_crc, bare_app_lazy, walk_rd;
  std::vector<double> rill_app, rill_app_coarse, rill_bat, rill_rd_v, rill_rd_nv;
  long faults_single = 0;
  long faults_batch = 0;
  for (int round = 1; round <= o.rounds; ++round) {
    std::fprintf(stderr, "round %d/%d: bare", round, o.rounds);
    std::uint64_t expect_sum = 0;
    {
      BareFile bare(g_root + "/bare.dat", bare_bytes);
      g_bare_end.store(0, std::memory_order_relaxed);
      bare_app.push_back(static_cast<double>(n) / bare_append<false>(bare.data(), n, vb));
      const ReadResult r = bare_read<false>(bare.data());
      if (r.count != n) die("bare read count mismatch");
      expect_sum = r.sum;
      bare_rd.push_back(static_cast<double>(n) / r.seconds);
    }
    {
      BareFile bare(g_root + "/bare.dat", bare_bytes);
      g_bare_end.store(0, std::memory_order_relaxed);
      bare_app_crc.push_back(static_cast<double>(n) / bare_append<true>(bare.data(), n, vb));
      const ReadResult r = bare_read<true>(bare.data());
      if (r.count != n || r.sum != expect_sum) die("bare read (checksums) mismatch");
      bare_rd_crc.push_back(static_cast<double>(n) / r.seconds);
    }
    {
      BareFile bare(g_root + "/bare.dat", bare_bytes, false);
      g_bare_end.store(0, std::memory_order_relaxed);
      bare_app_lazy.push_back(static_cast<double>(n) / bare_append<false>(bare.data(), n, vb));
    }
    std::fprintf(stderr, ", append");
    const std::string dir_a = g_root + "/single";
    {
      auto log = unwrap(Log::open(dir_a, throughput_config(o, true)), "Log::open");
      const AppendResult a = rill_append(*log, n, vb);
      rill_app.push_back(static_cast<double>(n) / a.seconds);
      faults_single = std::max(faults_single, a.appender_faults);
      if (log->end_offset() != static_cast<std::int64_t>(n)) die("end_offset mismatch");
    }
    {
      LogConfig coarse = throughput_config(o, true);
      coarse.clock = rill::CoarseClock::instance();
      const std::string dir_k = g_root + "/coarse";
      auto log = unwrap(Log::open(dir_k, coarse), "Log::open");
      rill_app_coarse.push_back(static_cast<double>(n) / rill_append(*log, n, vb).seconds);
      log.reset();
      std::filesystem::remove_all(dir_k);
    }
    std::fprintf(stderr, ", read");
    for (const bool verify : {true, false}) {
      // Reopened: recovery scans every frame, so page cache and page tables are warm, as in
      // the bare read of a file just written.
      auto log = unwrap(Log::open(dir_a, throughput_config(o, verify)), "Log::open (reopen)");
      const ReadResult r = rill_read(*log);
      if (r.count != n || r.sum != expect_sum) die("rill read mismatch with the bare read");
      (verify ? rill_rd_v : rill_rd_nv).push_back(static_cast<double>(n) / r.seconds);
      if (!verify) {
        const ReadResult w = format_walk(dir_a, n);
        if (w.count != n || w.sum != expect_sum) die("format walk mismatch with the bare read");
        walk_rd.push_back(static_cast<double>(n) / w.seconds);
      }
    }
    std::filesystem::remove_all(dir_a);
    std::fprintf(stderr, ", batch\n");
    const std::string dir_b = g_root + "/batch";
    {
      auto log = unwrap(Log::open(dir_b, throughput_config(o, true)), "Log::open");
      const AppendResult a = rill_append_batch(*log, n, vb, o.batch);
      rill_bat.push_back(static_cast<double>(n) / a.seconds);
      faults_batch = std::max(faults_batch, a.appender_faults);
      if (log->end_offset() != static_cast<std::int64_t>(n)) die("end_offset mismatch");
    }
    std::filesystem::remove_all(dir_b);
  }

  std::fprintf(stderr, "latency\n");
  std::vector<double> lat_bare, lat_rill;
  latency(g_root + "/latency", o, 1000, lat_bare, lat_rill);
  std::sort(lat_bare.begin(), lat_bare.end());
  std::sort(lat_rill.begin(), lat_rill.end());

  const double b_app = median(bare_app);
  const double b_rd = median(bare_rd);
  const double b_app_crc = median(bare_app_crc);
  const double b_rd_crc = median(bare_rd_crc);
  const double b_app_lazy = median(bare_app_lazy);
  const double r_walk = median(walk_rd);
  const double r_app = median(rill_app);
  const double r_app_k = median(rill_app_coarse);
  const double r_bat = median(rill_bat);
  const double r_rdv = median(rill_rd_v);
  const double r_rdn = median(rill_rd_nv);
  const double dvb = static_cast<double>(vb);
  auto verdict = [](bool ok) { return ok ? "PASS" : "MISS"; };
  char note[96];

  std::printf("\n%-3s %-34s %-22s %-22s %6s  %-7s %-5s %s\n", "row", "what", "rill", "bare",
              "ratio", "target", "", "notes");
  std::snprintf(note, sizeof note, "appender faults: %ld (max/round)", faults_single);
  row("1", "append, 1 record per call", rate(r_app, dvb), rate(b_app, dvb), r_app / b_app, ">=0.50",
      verdict(r_app / b_app >= 0.50), note);
  row("1c", "  same, vs bare + CRC-32C", rate(r_app, dvb), rate(b_app_crc, dvb), r_app / b_app_crc,
      "info", "", "bare also checksums each record");
  row("1f", "  same, vs bare with faults inline", rate(r_app, dvb), rate(b_app_lazy, dvb),
      r_app / b_app_lazy, "info", "", "bare not pre-faulted: it faults on each new page");
  row("1k", "  same, LogConfig::clock CoarseClock", rate(r_app_k, dvb), rate(b_app, dvb),
      r_app_k / b_app, ">=0.50", verdict(r_app_k / b_app >= 0.50),
      "timestamps trail by < 1 tick; opt-in");
  char what[64];
  std::snprintf(what, sizeof what, "append_batch, %zu per call", o.batch);
  std::snprintf(note, sizeof note, "appender faults: %ld (max/round)", faults_batch);
  row("2", what, rate(r_bat, dvb), rate(b_app, dvb), r_bat / b_app, ">=0.80",
      verdict(r_bat / b_app >= 0.80), note);
  row("2c", "  same, vs bare + CRC-32C", rate(r_bat, dvb), rate(b_app_crc, dvb), r_bat / b_app_crc,
      "info", "", "bare also checksums each record");
  row("2f", "  same, vs bare with faults inline", rate(r_bat, dvb), rate(b_app_lazy, dvb),
      r_bat / b_app_lazy, "info", "", "bare not pre-faulted: it faults on each new page");
  row("3a", "read_into, verify_checksums=true", rate(r_rdv, dvb), rate(b_rd, dvb), r_rdv / b_rd,
      ">=0.80", verdict(r_rdv / b_rd >= 0.80), "bare checks no checksum");
  row("3c", "  same, vs bare + CRC-32C check", rate(r_rdv, dvb), rate(b_rd_crc, dvb),
      r_rdv / b_rd_crc, "info", "", "bare also checks each record's checksum");
  row("3b", "read_into, verify_checksums=false", rate(r_rdn, dvb), rate(b_rd, dvb), r_rdn / b_rd,
      ">=0.80", verdict(r_rdn / b_rd >= 0.80), "");
  row("3w", "  bare walk of rill's own segment", rate(r_walk, dvb), rate(b_rd, dvb), r_walk / b_rd,
      "info", "", "decodes only the fields read; no checks, no views");
  const double p50r = percentile(lat_rill, 0.50), p50b = percentile(lat_bare, 0.50);
  const double p99r = percentile(lat_rill, 0.99), p99b = percentile(lat_bare, 0.99);
  const double p999r = percentile(lat_rill, 0.999), p999b = percentile(lat_bare, 0.999);
  std::snprintf(note, sizeof note, "%zu samples each", lat_rill.size());
  row("4", "append-to-wake latency p50", micros(p50r), micros(p50b), p50r / p50b, "info", "", note);
  row("4", "append-to-wake latency p99", micros(p99r), micros(p99b), p99r / p99b, "<=1.20",
      verdict(p99r / p99b <= 1.20), "");
  std::snprintf(note, sizeof note, "max: rill %.0f us, bare %.0f us", lat_rill.back(),
                lat_bare.back());
  row("4", "append-to-wake latency p99.9", micros(p999r), micros(p999b), p999r / p999b, "info", "",
      note);
  std::printf("load    : %s at end\n", read_first_line("/proc/loadavg").c_str());
  return 0;
}
