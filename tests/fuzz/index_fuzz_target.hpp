// The fuzz target for index files: a real log (several sealed segments and an active one,
// made once per process through the Log API) is written out with one segment's .index and/or
// .timeindex replaced by fuzzed bytes (or deleted), then opened through the Log API. Indexes
// are an acceleration, never the truth, so whatever they hold the log must open, hold exactly
// the records it held, return each of them at its offset however it is read, answer
// offset_for_time as a scan of the records would, take an append, and reopen clean.
//
// Input layout:
//    0     1      2          4             4 + index_len
//    +-----+------+----------+-------------+------------------+
//    | seg | mode | idx_len  | .index      | .timeindex (rest)|
//    +-----+------+----------+-------------+------------------+
//    seg: which segment (modulo their number); idx_len: u16 little-endian
//    mode bit 0: replace the .index with the bytes given     bit 2: delete the .index
//         bit 1: replace the .timeindex with the bytes given bit 3: delete the .timeindex
//         bit 4: LogConfig::verify_all_on_open
//
// Shared by index_fuzz.cpp (libFuzzer) and tests/fuzz_targets_replay_test.cpp.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "fuzz_util.hpp"
#include "rill/clock.hpp"
#include "rill/storage/log.hpp"

namespace rill_fuzz {

class IndexHarness {
 public:
  static constexpr std::uint8_t kReplaceIndex = 1, kReplaceTimeIndex = 2, kDeleteIndex = 4,
                                kDeleteTimeIndex = 8, kVerifyAll = 16;

  // Works in `dir` (created; emptied as it goes). Builds the template log first.
  explicit IndexHarness(std::string dir) : dir_(std::move(dir)) {
    ::mkdir(dir_.c_str(), 0700);
    build_template();
  }
  ~IndexHarness() {
    remove_tree_contents(dir_);
    ::rmdir(dir_.c_str());
  }
  IndexHarness(const IndexHarness&) = delete;
  IndexHarness& operator=(const IndexHarness&) = delete;

  // Seed inputs: every segment's own index files, and a few simple damages of them.
  std::vector<Bytes> seeds() const {
    std::vector<Bytes> out;
    for (std::size_t s = 0; s < bases_.size(); ++s) {
      const Bytes& idx = files_.at(name(bases_[s], ".index"));
      const Bytes& tidx = files_.at(name(bases_[s], ".timeindex"));
      for (std::uint8_t mode :
           {std::uint8_t{kReplaceIndex | kReplaceTimeIndex}, std::uint8_t{kReplaceIndex},
            std::uint8_t{kReplaceTimeIndex}, std::uint8_t{kDeleteIndex | kReplaceTimeIndex},
            std::uint8_t{kReplaceIndex | kReplaceTimeIndex | kVerifyAll}}) {
        out.push_back(input(static_cast<std::uint8_t>(s), mode, idx, tidx));
      }
      Bytes cut = idx;
      cut.resize(cut.size() / 2);
      out.push_back(input(static_cast<std::uint8_t>(s), kReplaceIndex, cut, tidx));
    }
    return out;
  }

  static Bytes input(std::uint8_t seg, std::uint8_t mode, const Bytes& idx, const Bytes& tidx) {
    Bytes b = {seg, mode, static_cast<std::uint8_t>(idx.size() & 0xFF),
               static_cast<std::uint8_t>((idx.size() >> 8) & 0xFF)};
    b.insert(b.end(), idx.begin(), idx.end());
    b.insert(b.end(), tidx.begin(), tidx.end());
    return b;
  }

  // Runs one input: "" when every invariant held, else what broke.
  std::string run(const std::uint8_t* data, std::size_t size) {
    if (bases_.empty()) return "no template log";
    remove_tree_contents(dir_);
    for (const auto& [n, bytes] : files_) {
      if (!write_bytes(dir_ + "/" + n, bytes.data(), bytes.size())) return "";
    }
    std::uint8_t mode = 0;
    if (size >= 4) {
      const std::uint64_t base = bases_[data[0] % bases_.size()];
      mode = data[1];
      std::size_t idx_len = std::min<std::size_t>(data[2] | (std::size_t{data[3]} << 8), size - 4);
      const std::uint8_t* idx = data + 4;
      const std::uint8_t* tidx = idx + idx_len;
      const std::size_t tidx_len = size - 4 - idx_len;
      const std::string oi = dir_ + "/" + name(base, ".index");
      const std::string ti = dir_ + "/" + name(base, ".timeindex");
      if ((mode & kReplaceIndex) != 0 && !write_bytes(oi, idx, idx_len)) return "";
      if ((mode & kReplaceTimeIndex) != 0 && !write_bytes(ti, tidx, tidx_len)) return "";
      if ((mode & kDeleteIndex) != 0) ::unlink(oi.c_str());
      if ((mode & kDeleteTimeIndex) != 0) ::unlink(ti.c_str());
    }
    const bool verify_all = (mode & kVerifyAll) != 0;
    std::string problem = check(verify_all);
    remove_tree_contents(dir_);
    return problem;
  }

 private:
  using Log = rill::storage::Log;
  struct Truth {
    std::string key;
    std::optional<std::string> value;
    std::int64_t timestamp_ms;
  };

  static rill::storage::LogConfig config(bool verify_all) {
    rill::storage::LogConfig c;
    c.segment_bytes = 4096;
    c.max_record_bytes = 1024;
    c.index_interval_bytes = 64;
    c.prefault_bytes = 0;
    c.verify_all_on_open = verify_all;
    c.clock = std::make_shared<rill::ManualClock>(1'700'000'000'000);
    return c;
  }

  static std::string name(std::uint64_t base, const char* suffix) {
    return rill::storage::segment_file_name(base, suffix);
  }

  void build_template() {
    const std::string t = dir_ + "/template";
    {
      auto log = Log::open(t, config(false));
      if (!log) return;
      XorShift next{7};
      const std::string bytes(300, 'v');
      for (int i = 0; i < 90; ++i) {
        Truth tr;
        tr.key = "k" + std::to_string(i);
        if (next() % 10 != 0) tr.value = bytes.substr(0, next() % 300);
        // Timestamps mostly rising, sometimes back in time: the time index keeps a running max.
        tr.timestamp_ms = 1'700'000'000'000 + i * 5 - static_cast<std::int64_t>(next() % 12);
        rill::storage::Record r;
        r.key = std::string_view(tr.key);
        if (tr.value) r.value = std::string_view(*tr.value);
        r.timestamp_ms = tr.timestamp_ms;
        if (!(*log)->append(r)) return;
        truth_.push_back(std::move(tr));
      }
      for (const auto& s : (*log)->segments()) bases_.push_back(s->base_offset());
    }
    for (const std::uint64_t b : bases_) {
      for (const char* s : {".log", ".index", ".timeindex"}) {
        Bytes bytes = read_bytes(t + "/" + name(b, s));
        files_[name(b, s)] = std::move(bytes);
      }
    }
    remove_tree_contents(t);
    ::rmdir(t.c_str());
  }

  // The first offset with a timestamp >= ts, by scanning the truth.
  std::optional<std::int64_t> first_at_or_after(std::int64_t ts) const {
    for (std::size_t i = 0; i < truth_.size(); ++i) {
      if (truth_[i].timestamp_ms >= ts) return static_cast<std::int64_t>(i);
    }
    return std::nullopt;
  }

  std::string same(const rill::storage::RecordView& r, std::int64_t at) const {
    if (r.offset() != at)
      return "record at offset " + std::to_string(r.offset()) + " read for " + std::to_string(at);
    const Truth& t = truth_[static_cast<std::size_t>(at)];
    if (r.key() != std::optional<std::string_view>(t.key) || r.timestamp_ms() != t.timestamp_ms ||
        r.value() != (t.value ? std::optional<std::string_view>(*t.value) : std::nullopt)) {
      return "record " + std::to_string(at) + " differs from what was appended";
    }
    return "";
  }

  std::string check_log(const Log& log) const {
    const auto end = static_cast<std::int64_t>(truth_.size());
    if (log.start_offset() != 0 || log.end_offset() != end) {
      return "log holds [" + std::to_string(log.start_offset()) + ", " +
             std::to_string(log.end_offset()) + ") instead of [0, " + std::to_string(end) + ")";
    }
    for (std::int64_t at = 0; at < end; ++at) {  // each offset on its own: an index lookup each
      auto got = log.read(at, 1);
      if (!got) return "read at " + std::to_string(at) + " failed: " + got.error().to_string();
      if (got->size() != 1) return "read at " + std::to_string(at) + " returned no record";
      if (std::string p = same((*got)[0], at); !p.empty()) return p;
    }
    rill::storage::RecordBatch batch;  // and in runs
    for (std::int64_t at = 0; at < end;) {
      auto got = log.read_into(at, batch, 7);
      if (!got)
        return "batch read at " + std::to_string(at) + " failed: " + got.error().to_string();
      if (batch.empty()) return "empty batch at " + std::to_string(at);
      for (const auto& r : batch) {
        if (std::string p = same(r, at); !p.empty()) return p;
        ++at;
      }
    }
    std::vector<std::int64_t> probes = {0, INT64_MAX};
    for (const auto& t : truth_) {
      probes.push_back(t.timestamp_ms - 1);
      probes.push_back(t.timestamp_ms);
      probes.push_back(t.timestamp_ms + 1);
    }
    for (const std::int64_t ts : probes) {
      const auto got = log.offset_for_time(ts);
      const auto want = first_at_or_after(ts);
      if (got != want) {
        return "offset_for_time(" + std::to_string(ts) +
               ") = " + (got ? std::to_string(*got) : "none") + ", a scan says " +
               (want ? std::to_string(*want) : "none");
      }
    }
    return "";
  }

  std::string check(bool verify_all) {
    {
      auto log = Log::open(dir_, config(verify_all));
      if (!log) return "open failed: " + log.error().to_string();
      if (!(*log)->recovery().clean()) {
        return "damaged indexes dropped records: " + (*log)->recovery().detail;
      }
      if (std::string p = check_log(**log); !p.empty()) return p;
      rill::storage::Record r;
      r.key = std::string_view("after");
      r.value = std::string_view("the fuzzed open");
      r.timestamp_ms = 1'800'000'000'000;
      auto a = (*log)->append(r);
      if (!a) return "append failed: " + a.error().to_string();
      truth_.push_back({"after", std::string("the fuzzed open"), r.timestamp_ms});
    }
    auto log = Log::open(dir_, config(verify_all));
    std::string problem;
    if (!log) {
      problem = "reopen failed: " + log.error().to_string();
    } else if (!(*log)->recovery().clean()) {
      problem = "reopen not clean: " + (*log)->recovery().detail;
    } else if ((*log)->recovery().indexes_rebuilt != 0 && !verify_all) {
      problem = "reopen rebuilt indexes again";
    } else {
      problem = check_log(**log);
    }
    truth_.pop_back();
    return problem;
  }

  std::string dir_;
  std::map<std::string, Bytes> files_;  // the template log's files, by name
  std::vector<std::uint64_t> bases_;
  std::vector<Truth> truth_;
};

}  // namespace rill_fuzz

// The libFuzzer entry point's body: aborts (naming the broken invariant) so the input is kept.
inline int rill_fuzz_index_bytes(const std::uint8_t* data, std::size_t size) {
  static rill_fuzz::IndexHarness harness(rill_fuzz::make_scratch_dir("index-fuzz"));
  const std::string problem = harness.run(data, size);
  if (!problem.empty()) {
    std::fprintf(stderr, "rill index fuzz: %s\n", problem.c_str());
    std::abort();
  }
  return 0;
}
