// The fuzz target for recovery and reading: arbitrary bytes become a log directory, and the
// Log must open it, read it, append to it and reopen it without crashing, without returning a
// record that is not a whole, checksummed frame, and with a report that agrees with the log.
//
// Shared by the libFuzzer binary (log_fuzz.cpp) and the deterministic replay test
// (tests/fuzz_replay_test.cpp). Header-only, no Catch2: a broken invariant comes back as a
// message from Harness::run; rill_fuzz_log_bytes() aborts on it, as libFuzzer wants.
//
// Input layout. Either the whole input is the bytes of one segment's .log file (the active
// segment, named after the base offset in its header), or it is framed:
//
//    0      4     5            13            17              21
//    +------+-----+------------+-------------+---------------+-------------+-----------+-----+
//    |"RFZ1"|flags| next_base  | index_bytes | timeidx_bytes | .index      | .timeindex| .log|
//    +------+-----+------------+-------------+---------------+-------------+-----------+-----+
//    flags bit 0: the .log is a sealed segment: an empty segment at next_base follows it
//                 (recover_sealed, index validation and the tail check then run on it)
//          bit 1: write the .index and .timeindex files (else there are none)
//          bit 2: LogConfig::verify_all_on_open
#pragma once

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "fuzz_util.hpp"
#include "rill/clock.hpp"
#include "rill/storage/log.hpp"

namespace rill_fuzz {

inline constexpr char kFramedMagic[4] = {'R', 'F', 'Z', '1'};
inline constexpr std::size_t kFramedHeader = 21;
inline constexpr std::uint8_t kSealed = 1, kWithIndexes = 2, kVerifyAll = 4;

inline rill::storage::LogConfig fuzz_config(bool verify_all) {
  rill::storage::LogConfig c;
  c.segment_bytes = 64u << 10;
  c.max_record_bytes = 4096;
  c.index_interval_bytes = 64;
  c.prefault_bytes = 0;
  c.verify_checksums = true;
  c.verify_all_on_open = verify_all;
  c.clock = std::make_shared<rill::ManualClock>(1'700'000'000'000);
  return c;
}

// Packs segment files into a framed input.
inline std::vector<std::uint8_t> frame_input(std::uint8_t flags, std::uint64_t next_base,
                                             const std::vector<std::uint8_t>& index,
                                             const std::vector<std::uint8_t>& time_index,
                                             const std::vector<std::uint8_t>& log) {
  std::vector<std::uint8_t> out(kFramedHeader);
  std::memcpy(out.data(), kFramedMagic, 4);
  out[4] = flags;
  std::memcpy(out.data() + 5, &next_base, 8);
  const auto a = static_cast<std::uint32_t>(index.size());
  const auto b = static_cast<std::uint32_t>(time_index.size());
  std::memcpy(out.data() + 13, &a, 4);
  std::memcpy(out.data() + 17, &b, 4);
  out.insert(out.end(), index.begin(), index.end());
  out.insert(out.end(), time_index.begin(), time_index.end());
  out.insert(out.end(), log.begin(), log.end());
  return out;
}

class Harness {
 public:
  // Works in `dir`, which it creates and empties as it goes; it must not be used otherwise.
  explicit Harness(std::string dir) : dir_(std::move(dir)) { ::mkdir(dir_.c_str(), 0755); }
  ~Harness() {
    clear();
    ::rmdir(dir_.c_str());
  }
  Harness(const Harness&) = delete;
  Harness& operator=(const Harness&) = delete;

  // Runs one input. Returns "" when every invariant held, else what broke.
  std::string run(const std::uint8_t* data, std::size_t size) {
    clear();
    std::uint8_t flags = 0;
    std::uint64_t next_base = 0;
    const std::uint8_t* index = nullptr;
    const std::uint8_t* time_index = nullptr;
    std::size_t index_size = 0, time_index_size = 0;
    if (size >= kFramedHeader && std::memcmp(data, kFramedMagic, 4) == 0) {
      flags = data[4];
      std::memcpy(&next_base, data + 5, 8);
      std::uint32_t a, b;
      std::memcpy(&a, data + 13, 4);
      std::memcpy(&b, data + 17, 4);
      std::size_t left = size - kFramedHeader;
      index_size = std::min<std::size_t>(a, left);
      left -= index_size;
      time_index_size = std::min<std::size_t>(b, left);
      index = data + kFramedHeader;
      time_index = index + index_size;
      data = time_index + time_index_size;
      size = left - time_index_size;
    }
    std::uint64_t base = 0;
    if (size >= 16) std::memcpy(&base, data + 8, 8);
    sealed_ = (flags & kSealed) != 0 && next_base != base;
    verify_all_ = (flags & kVerifyAll) != 0;
    if (!write(name(base, ".log"), data, size)) return "";  // out of disk space: nothing to test
    if ((flags & kWithIndexes) != 0) {
      write(name(base, ".index"), index, index_size);
      write(name(base, ".timeindex"), time_index, time_index_size);
    }
    if (sealed_) {
      const auto h = rill::storage::make_file_header(rill::storage::FileKind::kLog, next_base, 0);
      write(name(next_base, ".log"), reinterpret_cast<const std::uint8_t*>(&h), sizeof h);
    }
    const std::string problem = check();
    clear();
    return problem;
  }

 private:
  using Log = rill::storage::Log;

  std::string check() {
    std::int64_t end = 0;
    std::int64_t start = 0;
    {
      auto log = Log::open(dir_, fuzz_config(verify_all_));
      if (!log) return "open failed: " + log.error().to_string();
      const auto& rep = (*log)->recovery();
      start = (*log)->start_offset();
      end = (*log)->end_offset();
      if (start > end) return "start offset after end offset";
      // The first dropped offset, when anything was, lies within the log's range: where the
      // log now ends, when the files were consistent; earlier when a segment held offsets
      // that a later segment's name claims (then the later one's were dropped).
      if (rep.truncated_at != -1 && (rep.truncated_at < start || rep.truncated_at > end)) {
        return "truncated_at " + std::to_string(rep.truncated_at) + " but the log ends at " +
               std::to_string(end) + " (" + rep.detail + ")";
      }
      if (rep.truncated_at != -1 && rep.clean()) return "truncated_at set on a clean recovery";
      if (!rep.clean() && rep.detail.empty()) return "unclean recovery without detail";
      if (std::string p = read_all(**log, start, end); !p.empty()) return p;
      if (std::string p = check_times(**log, start, end); !p.empty()) return p;
      rill::storage::Record r;
      r.key = std::string_view("fuzz");
      r.value = std::string_view("appended after recovery");
      r.timestamp_ms = 1'800'000'000'000;
      auto a = (*log)->append(r);
      if (!a) return "append after recovery failed: " + a.error().to_string();
      if (a->offset != end) return "append after recovery got offset " + std::to_string(a->offset);
    }
    auto log = Log::open(dir_, fuzz_config(verify_all_));
    if (!log) return "reopen failed: " + log.error().to_string();
    const auto& rep = (*log)->recovery();
    if (!rep.clean()) return "reopen after recovery is not clean: " + rep.detail;
    // (verify_all_on_open rebuilds the indexes of every sealed segment it scans, each time.)
    if (rep.indexes_rebuilt != 0 && !verify_all_) return "reopen after recovery rebuilt indexes";
    if ((*log)->end_offset() != end + 1) return "reopen lost the append";
    if ((*log)->start_offset() != start) return "reopen moved the start offset";
    auto got = (*log)->read(end, 1);
    if (!got || got->size() != 1) return "the appended record does not read back";
    const auto& rec = (*got)[0];
    if (rec.key() != std::optional<std::string_view>("fuzz") ||
        rec.value() != std::optional<std::string_view>("appended after recovery") ||
        rec.timestamp_ms() != 1'800'000'000'000 || !rec.headers().empty()) {
      return "the appended record reads back different";
    }
    // Everything from the first open is still there and still readable.
    return read_all(**log, start, end);
  }

  // Reads [start, end) in batches and checks every record's frame.
  std::string read_all(const Log& log, std::int64_t start, std::int64_t end) {
    const auto segments = log.segments();
    const std::uint64_t active_base = segments.back()->base_offset();
    rill::storage::RecordBatch batch;
    std::int64_t at = start;
    while (at < end) {
      auto got = log.read_into(at, batch, 17);
      if (!got) {
        // Frames of a sealed segment are checked at open only near its end (unless
        // verify_all_on_open): a read may find damage, and must then say so.
        const bool may_fail =
            sealed_ && !verify_all_ && static_cast<std::uint64_t>(at) < active_base;
        if (!may_fail || got.error().code() != rill::ErrorCode::kCorruption) {
          return "read at " + std::to_string(at) + " failed: " + got.error().to_string();
        }
        ++at;
        continue;
      }
      if (batch.empty()) return "empty batch at " + std::to_string(at);
      for (const auto& r : batch) {
        if (r.offset() != at)
          return "offset " + std::to_string(r.offset()) + " read at " + std::to_string(at);
        if (std::string p = check_record(segments, r); !p.empty())
          return p + " at offset " + std::to_string(at);
        ++at;
      }
    }
    return "";
  }

  // Every view the record gives (key, value, header names and values) lies inside its
  // segment's published bytes, past the file header. (The reads that produced it checked the
  // batch's CRC: the fuzzed logs are opened with verify_checksums.)
  static std::string check_record(
      const std::vector<std::shared_ptr<const rill::storage::Segment>>& segs,
      const rill::storage::RecordView& r) {
    const auto off = static_cast<std::uint64_t>(r.offset());
    const rill::storage::Segment* seg = nullptr;
    for (const auto& s : segs) {
      if (s->base_offset() <= off && off < s->end_offset()) seg = s.get();
    }
    if (seg == nullptr) return "no segment holds the record";
    const char* lo = reinterpret_cast<const char*>(seg->data()) + rill::storage::kFileHeaderSize +
                     rill::storage::kFrameHeaderSize;
    const char* hi = reinterpret_cast<const char*>(seg->data()) + seg->end_position();
    const auto inside = [&](std::string_view s) {
      return s.empty() || (s.data() >= lo && s.data() + s.size() <= hi);
    };
    if (r.key() && !inside(*r.key())) return "key outside its segment";
    if (r.value() && !inside(*r.value())) return "value outside its segment";
    if (r.stored_bytes() > static_cast<std::size_t>(hi - lo))
      return "record larger than its segment";
    std::size_t n = 0;
    for (const rill::storage::Header& h : r.headers()) {
      if (!inside(h.name) || (h.value && !inside(*h.value))) return "header outside its segment";
      if (++n > r.stored_bytes()) return "more headers than bytes";
    }
    if (n != r.headers().size()) return "header count differs from the headers iterated";
    return "";
  }

  // offset_for_time answers within the log, with a record that has the timestamp asked for.
  std::string check_times(const Log& log, std::int64_t start, std::int64_t end) {
    std::vector<std::int64_t> queries = {0, 1'700'000'000'000, INT64_MAX};
    rill::storage::RecordBatch batch;
    for (std::int64_t at = start; at < end && queries.size() < 8; at += 1 + (end - start) / 4) {
      if (log.read_into(at, batch, 1) && !batch.empty()) {
        queries.push_back(batch[0].timestamp_ms());
        queries.push_back(batch[0].timestamp_ms() + 1);
      }
    }
    for (const std::int64_t q : queries) {
      const auto got = log.offset_for_time(q);
      if (!got) continue;
      if (*got < start || *got >= end) return "offset_for_time outside the log";
      auto r = log.read(*got, 1);
      if (r && !r->empty() && (*r)[0].timestamp_ms() < q)
        return "offset_for_time found an older record";
    }
    return "";
  }

  std::string name(std::uint64_t base, const char* suffix) const {
    return dir_ + "/" + rill::storage::segment_file_name(base, suffix);
  }

  static bool write(const std::string& path, const std::uint8_t* data, std::size_t size) {
    std::FILE* f = std::fopen(path.c_str(), "wb");
    if (f == nullptr) return false;
    const bool ok = size == 0 || std::fwrite(data, 1, size, f) == size;
    return std::fclose(f) == 0 && ok;
  }

  void clear() {
    DIR* d = ::opendir(dir_.c_str());
    if (d == nullptr) return;
    std::vector<std::string> names;
    while (const dirent* e = ::readdir(d)) {
      if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0)
        names.emplace_back(e->d_name);
    }
    ::closedir(d);
    for (const auto& n : names) ::unlink((dir_ + "/" + n).c_str());
  }

  std::string dir_;
  bool sealed_ = false;
  bool verify_all_ = false;
};

// Adds the segments of the (closed) log in `scratch_dir` to `out`, then deletes the log:
// each segment as an active one (plain), and each sealed one with and without its indexes.
inline void add_segments(const std::string& scratch_dir,
                         std::vector<std::vector<std::uint8_t>>& out) {
  using namespace rill::storage;
  const auto read = read_bytes;
  std::vector<std::uint64_t> bases;
  if (DIR* d = ::opendir(scratch_dir.c_str())) {
    while (const dirent* e = ::readdir(d)) {
      const std::string n = e->d_name;
      if (n.size() == 24 && n.compare(20, 4, ".log") == 0)
        bases.push_back(std::stoull(n.substr(0, 20)));
    }
    ::closedir(d);
  }
  std::sort(bases.begin(), bases.end());
  for (std::size_t i = 0; i < bases.size(); ++i) {
    const std::string stem = scratch_dir + "/" + segment_file_name(bases[i], "");
    std::vector<std::uint8_t> log = read(stem + ".log");
    while (log.size() > kFileHeaderSize && log.back() == 0) log.pop_back();  // the preallocation
    out.push_back(log);
    if (i + 1 < bases.size()) {
      const auto idx = read(stem + ".index");
      const auto tidx = read(stem + ".timeindex");
      out.push_back(frame_input(kSealed | kWithIndexes, bases[i + 1], idx, tidx, log));
      out.push_back(frame_input(kSealed | kWithIndexes | kVerifyAll, bases[i + 1], idx, tidx, log));
      out.push_back(frame_input(kSealed, bases[i + 1], {}, {}, log));
    }
  }
  for (const std::uint64_t b : bases) {
    for (const char* s : {".log", ".index", ".timeindex"}) {
      ::unlink((scratch_dir + "/" + segment_file_name(b, s)).c_str());
    }
  }
  ::unlink((scratch_dir + "/.lock").c_str());
}

// Seed inputs made from real logs of small segments (see add_segments).
inline std::vector<std::vector<std::uint8_t>> seed_inputs(const std::string& scratch_dir) {
  using namespace rill::storage;
  std::vector<std::vector<std::uint8_t>> out;
  LogConfig c = fuzz_config(false);
  c.segment_bytes = 4096;
  c.max_record_bytes = 1024;
  // Two logs: records of all shapes and sizes, and many tiny ones (more frames per byte).
  for (const int max_value : {900, 24}) {
    {
      auto log = Log::open(scratch_dir, c);
      if (!log) return out;
      XorShift next{42};
      const std::string bytes(900, 'v');
      for (int i = 0; i < 120; ++i) {
        const Header hs[] = {
            {"h", std::string_view("x")}, {"null", std::nullopt}, {"", std::string_view()}};
        Record r;
        if (next() % 4 != 0) r.key = std::string_view(bytes.data(), next() % 12);
        const int max = max_value > 100 && i % 10 != 0 ? 60 : max_value;
        if (next() % 8 != 0)
          r.value = std::string_view(bytes.data(), next() % static_cast<unsigned>(max));
        r.headers = std::span<const Header>(hs, max_value > 100 ? next() % 4 : next() % 2);
        r.timestamp_ms =
            i % 7 == 0 ? kNoTimestamp : 1'700'000'000'000 + i * 5 - static_cast<int>(next() % 9);
        if (!(*log)->append(r)) return out;
      }
    }
    add_segments(scratch_dir, out);
  }
  return out;
}

// A scratch directory for the process: in tmpfs when there is one (thousands of opens).
inline std::string scratch_root() {
  if (const char* t = std::getenv("TMPDIR"); t != nullptr && *t != '\0') return t;
  if (::access("/dev/shm", W_OK | X_OK) == 0) return "/dev/shm";
  return "/tmp";
}

}  // namespace rill_fuzz

// The fuzz entry point: aborts (with the broken invariant on stderr) so that libFuzzer keeps
// the input.
inline int rill_fuzz_log_bytes(const std::uint8_t* data, std::size_t size) {
  static rill_fuzz::Harness harness([] {
    std::string tmpl = rill_fuzz::scratch_root() + "/rill-fuzz-XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr) std::abort();
    return tmpl;
  }());
  const std::string problem = harness.run(data, size);
  if (!problem.empty()) {
    std::fprintf(stderr, "rill fuzz: %s\n", problem.c_str());
    std::abort();
  }
  return 0;
}
