// The limits of the machine, measured in the same run: memcpy bandwidth; appending the same
// records, each behind a 16-byte header, into a bare file mapped MAP_SHARED and grown in
// 64 MiB steps; reading them back; the same with an msync every 1,000 records; and a bare
// futex hand-off paced as W3. No checksum, no index, no concurrency control beyond one
// release store: what any log on this machine must pay at least.
#include <fcntl.h>
#include <linux/futex.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <memory>

#include "compare.hpp"

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

namespace compare {
namespace {

constexpr std::size_t kChunkBytes = 64u << 20;

struct BareHeader {
  std::uint32_t length;  // key + value bytes
  std::uint32_t key_length;
  std::uint64_t offset;
};
static_assert(sizeof(BareHeader) == 16);

// A file grown in 64 MiB chunks, each mapped on its own when the appender reaches it. Lazy:
// the appender takes the page faults. Pre-faulted: every chunk the run needs is grown, mapped
// and faulted in (MADV_POPULATE_WRITE) before the clock starts, so the loop is memcpy and a
// store. A record never straddles two chunks.
class BareLog {
 public:
  BareLog(const std::string& path, bool prefault, std::size_t bytes = 0) : prefault_(prefault) {
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd_ < 0) std::perror("bare: open"), std::exit(1);
    for (std::size_t k = 0; prefault_ && k * kChunkBytes < bytes; ++k) grow();
    next_ = 0;
    pos_ = 0;
  }
  ~BareLog() {
    for (char* c : chunks_) ::munmap(c, kChunkBytes);
    ::close(fd_);
  }
  void append(const char* key, std::string_view value) {
    const std::size_t bytes = (sizeof(BareHeader) + kKeyBytes + value.size() + 7) & ~std::size_t{7};
    if (next_ == 0 || pos_ + bytes > kChunkBytes) {
      if (next_ == chunks_.size()) grow();
      ++next_;
      pos_ = 0;
      synced_pos_ = 0;
    }
    char* p = chunks_[next_ - 1] + pos_;
    const BareHeader h{static_cast<std::uint32_t>(kKeyBytes + value.size()),
                       static_cast<std::uint32_t>(kKeyBytes), count_};
    std::memcpy(p + sizeof h, key, kKeyBytes);
    std::memcpy(p + sizeof h + kKeyBytes, value.data(), value.size());
    // release: the header, stored last, publishes the bytes before it to a reader that
    // acquires it (length 0 = end).
    std::atomic_ref<std::uint64_t>(*reinterpret_cast<std::uint64_t*>(p + 8))
        .store(h.offset, std::memory_order_relaxed);
    std::atomic_ref<std::uint64_t>(*reinterpret_cast<std::uint64_t*>(p))
        .store(std::uint64_t{h.length} | std::uint64_t{h.key_length} << 32,
               std::memory_order_release);
    pos_ += bytes;
    ++count_;
  }
  // msync of what was written since the last sync.
  void sync() {
    const std::size_t from = synced_pos_ & ~std::size_t{4095};
    if (::msync(chunks_[next_ - 1] + from, pos_ - from, MS_SYNC) != 0) std::perror("bare: msync");
    synced_pos_ = pos_;
  }
  // Calls fn(value pointer, value size) for each record; returns the count.
  template <typename Fn>
  std::uint64_t read_all(Fn&& fn) const {
    std::uint64_t n = 0;
    for (char* c : chunks_) {
      std::size_t pos = 0;
      while (pos + sizeof(BareHeader) <= kChunkBytes) {
        const std::uint64_t lk =
            std::atomic_ref<std::uint64_t>(*reinterpret_cast<std::uint64_t*>(c + pos))
                .load(std::memory_order_acquire);  // pairs with append
        if (lk == 0) break;
        const auto length = static_cast<std::uint32_t>(lk);
        const auto key_length = static_cast<std::uint32_t>(lk >> 32);
        fn(c + pos + sizeof(BareHeader) + key_length, length - key_length);
        pos += (sizeof(BareHeader) + length + 7) & ~std::size_t{7};
        ++n;
      }
    }
    return n;
  }

 private:
  void grow() {
    const auto k = chunks_.size();
    if (::ftruncate(fd_, static_cast<off_t>((k + 1) * kChunkBytes)) != 0) {
      std::perror("bare: ftruncate"), std::exit(1);
    }
    void* m = ::mmap(nullptr, kChunkBytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd_,
                     static_cast<off_t>(k * kChunkBytes));
    if (m == MAP_FAILED) std::perror("bare: mmap"), std::exit(1);
    // EINVAL before Linux 5.14: then the pages fault in the loop.
    if (prefault_) ::madvise(m, kChunkBytes, MADV_POPULATE_WRITE);
    chunks_.push_back(static_cast<char*>(m));
  }
  bool prefault_;
  std::size_t next_ = 0;  // chunks in use
  int fd_ = -1;
  std::vector<char*> chunks_;
  std::size_t pos_ = 0;
  std::size_t synced_pos_ = 0;
  std::uint64_t count_ = 0;
};

// Appends n records (with an msync after every `sync_every`-th when non-zero); seconds taken.
double fill(BareLog& log, std::size_t value_bytes, std::uint64_t n, std::uint64_t sync_every = 0) {
  std::string value = make_value(value_bytes);
  char key[kKeyBytes];
  const auto t0 = Clock::now();
  for (std::uint64_t i = 0; i < n; ++i) {
    make_key(i, key);
    stamp(value, i);
    log.append(key, value);
    if (sync_every != 0 && (i + 1) % sync_every == 0) log.sync();
  }
  if (sync_every != 0) log.sync();
  return seconds_since(t0);
}

void produce_consume(const std::string& dir, Report& report, std::size_t value_bytes,
                     std::uint64_t n) {
  const std::size_t frame = (sizeof(BareHeader) + kKeyBytes + value_bytes + 7) & ~std::size_t{7};
  const std::size_t bytes = n / (kChunkBytes / frame) * kChunkBytes + kChunkBytes;
  {
    BareLog lazy(dir + "/lazy." + std::to_string(value_bytes), false);
    report.rate(w1(value_bytes), "limit: bare append, faults inline",
                rate_of(n, value_bytes, fill(lazy, value_bytes, n)),
                "16-byte header + key + value; 64 MiB steps");
  }
  BareLog log(dir + "/bare." + std::to_string(value_bytes), true, bytes);
  report.rate(w1(value_bytes), "limit: bare mapped append",
              rate_of(n, value_bytes, fill(log, value_bytes, n)),
              "the same, pages faulted in before timing");
  const auto t0 = Clock::now();
  std::uint64_t sum = 0;
  const std::uint64_t got =
      log.read_all([&](const char* v, std::size_t size) { sum += touch(v, size); });
  const double s = seconds_since(t0);
  g_sink = sum;
  if (got != n)
    return report.failed(w2(value_bytes), "limit: bare mapped read",
                         "read back " + std::to_string(got));
  report.rate(w2(value_bytes), "limit: bare mapped read", rate_of(n, value_bytes, s),
              "warm: just written");
}

void durable(const Options& o, const std::string& dir, Report& report) {
  BareLog log(dir + "/bare.sync", false);
  report.rate(kW5, "limit: bare append + msync/1000",
              rate_of(o.records, o.value_bytes, fill(log, o.value_bytes, o.records, 1000)),
              "msync(MS_SYNC) of the new bytes");
}

long futex(std::atomic<std::uint32_t>* addr, int op, std::uint32_t val) {
  return ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(addr), op, val, nullptr, nullptr, 0);
}

// The bare hand-off: values in a ring of slots, a sequence number the producer stores
// (seq_cst) and the consumer sleeps on; the producer calls FUTEX_WAKE only when the consumer
// said it is going to sleep (seq_cst on both sides: Dekker's pattern, so no wake-up is lost).
Latency futex_round(const Options& o) {
  constexpr std::size_t kSlots = 4096;
  std::vector<std::uint64_t> slots(kSlots);
  std::atomic<std::uint32_t> published{0};
  std::atomic<std::uint32_t> sleeping{0};
  return paced_latency(
      o, o.value_bytes,
      [&](std::uint64_t i, std::string& value) {
        slots[i % kSlots] = stamp_of(value.data());
        published.store(static_cast<std::uint32_t>(i + 1), std::memory_order_seq_cst);
        if (sleeping.load(std::memory_order_seq_cst) != 0) futex(&published, FUTEX_WAKE_PRIVATE, 1);
      },
      [&](std::uint64_t n, const std::function<void(std::uint64_t)>& on_value) {
        std::uint32_t next = 0;
        while (next < n) {
          std::uint32_t end = published.load(std::memory_order_seq_cst);
          if (end == next) {
            sleeping.store(1, std::memory_order_seq_cst);
            end = published.load(std::memory_order_seq_cst);
            if (end == next) futex(&published, FUTEX_WAIT_PRIVATE, next);
            sleeping.store(0, std::memory_order_relaxed);
            continue;
          }
          for (; next < end; ++next) on_value(slots[next % kSlots]);
        }
      });
}

void futex_latency(const Options& o, Report& report) {
  const LatencyRounds rounds = latency_rounds(o, [&](std::uint32_t) { return futex_round(o); });
  if (rounds.median.max_us == 0)
    return report.failed(kW3, "limit: bare futex hand-off", "a round failed");
  report.latency(kW3, "limit: bare futex hand-off", rounds.median,
                 "seq store + FUTEX_WAKE when asleep" + rounds.note);
}

}  // namespace

// memcpy bandwidth (GB/s, reported as MB/s); then the bare rows of W1, W2, W3, W5.
void run_limits(const Options& o, const std::string& dir, Report& report) {
  {
    constexpr std::size_t kBytes = 64u << 20;
    std::vector<char> a(kBytes, 1), b(kBytes, 2);
    constexpr int kRounds = 8;
    const auto t0 = Clock::now();
    for (int r = 0; r < kRounds; ++r) {
      std::memcpy(r % 2 ? a.data() : b.data(), r % 2 ? b.data() : a.data(), kBytes);
      g_sink = g_sink + static_cast<unsigned char>(a[static_cast<std::size_t>(r) * 4096]);
    }
    const double s = seconds_since(t0);
    char note[96];
    std::snprintf(note, sizeof note, "%.1f GB/s copied (64 MiB buffers, warm)",
                  kRounds * static_cast<double>(kBytes) / s / 1e9);
    report.info("L memcpy", "limit: memcpy", note);
  }
  produce_consume(dir, report, o.value_bytes, o.records);
  produce_consume(dir, report, o.big_value_bytes, o.records_big);
  futex_latency(o, report);
  durable(o, dir, report);
}

}  // namespace compare
