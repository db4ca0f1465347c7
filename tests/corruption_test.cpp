// Damaged files on open: truncation at every byte, flipped bits, garbage, broken indexes,
// damaged sealed segments, a roll that crashed before writing its header. Recovery may cut the
// log, but it never crashes and never returns a record whose bytes differ from what was
// appended; what it cut is reported, and the recovered log takes appends and reopens clean.
//
// Each case copies a pristine log (several small segments) into a fresh directory, damages
// it, and predicts the outcome from the bytes alone: a frame survives when its bytes
// [position, position + size) are unchanged; recovery stops at the first frame that did not.
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "catch.hpp"
#include "expected_record.hpp"
#include "rill/storage/log.hpp"
#include "test_util.hpp"

namespace {

namespace fs = std::filesystem;
using rill::ErrorCode;
using rill::storage::align_frame;
using rill::storage::FileKind;
using rill::storage::Header;
using rill::storage::kFileHeaderSize;
using rill::storage::Log;
using rill::storage::LogConfig;
using rill::storage::Record;
using rill::storage::RecordBatch;
using rill::storage::RecordView;
using rill::storage::segment_file_name;

constexpr std::size_t kSegmentBytes = 16u << 10;
constexpr std::size_t kMaxRecordBytes = 2048;
constexpr std::int64_t kBaseTimestampMs = 1'700'000'000'000;

LogConfig small_config() {
  LogConfig c;
  c.segment_bytes = kSegmentBytes;
  c.max_record_bytes = kMaxRecordBytes;
  c.index_interval_bytes = 256;
  c.prefault_bytes = 0;
  c.verify_checksums = true;
  return c;
}

using rill_test::as_record;
using rill_test::Expected;
using rill_test::matches;
using rill_test::mix;

// The record at `offset`: a pure function of (salt, offset). Timestamps mostly grow, with
// small steps back, so offset_for_time has something to get wrong.
Expected expected_record(std::uint64_t salt, std::uint64_t offset) {
  const std::uint64_t h = mix(salt ^ mix(offset));
  Expected e;
  if ((h & 7) != 0) e.key = "k" + std::to_string(offset);
  if (((h >> 3) & 15) != 0) {
    const std::size_t len = (h >> 8) % 4 == 0 ? (h >> 12) % 1500 : (h >> 12) % 300;
    std::string v(len, '\0');
    std::uint64_t s = h;
    for (std::size_t i = 0; i < len; ++i) {
      if (i % 8 == 0) s = mix(s);
      v[i] = static_cast<char>(s >> (8 * (i % 8)));
    }
    e.value = std::move(v);
  }
  if (((h >> 50) & 3) == 0) {
    e.headers.emplace_back("h", std::to_string(offset));
    if (((h >> 52) & 1) != 0) e.headers.emplace_back("empty", std::string());
    if (((h >> 53) & 1) != 0) e.headers.emplace_back("null", std::nullopt);
  }
  e.timestamp_ms = kBaseTimestampMs + 10 * static_cast<std::int64_t>(offset) +
                   static_cast<std::int64_t>((h >> 56) % 25) - 12;
  return e;
}

// Compares offsets [from, end) of `log` with the model; the first problem, or "".
std::string check_records(const Log& log, std::uint64_t salt, std::int64_t from = 0) {
  RecordBatch batch;
  std::int64_t at = from;
  const std::int64_t end = log.end_offset();
  while (at < end) {
    auto got = log.read_into(at, batch, 100);
    if (!got) return "read at " + std::to_string(at) + ": " + got.error().to_string();
    if (batch.empty()) return "empty batch at " + std::to_string(at);
    for (const RecordView& r : batch) {
      if (r.offset() != at)
        return "offset " + std::to_string(r.offset()) + " where " + std::to_string(at) + " was due";
      if (!matches(r, expected_record(salt, static_cast<std::uint64_t>(at)))) {
        return "record " + std::to_string(at) + " differs from what was appended";
      }
      ++at;
    }
  }
  return "";
}

// Reads every offset on its own, so that each read starts from an index lookup.
std::string check_each_offset(const Log& log, std::uint64_t salt) {
  RecordBatch batch;
  for (std::int64_t at = log.start_offset(); at < log.end_offset(); ++at) {
    batch = RecordBatch();
    auto got = log.read_into(at, batch, 1);
    if (!got) return "read at " + std::to_string(at) + ": " + got.error().to_string();
    if (batch.size() != 1 || batch[0].offset() != at ||
        !matches(batch[0], expected_record(salt, static_cast<std::uint64_t>(at)))) {
      return "record " + std::to_string(at) + " read on its own differs";
    }
  }
  return "";
}

// offset_for_time against a brute-force answer over the model, for a sample of timestamps.
std::string check_times(const Log& log, std::uint64_t salt) {
  const std::int64_t end = log.end_offset();
  std::vector<std::int64_t> ts(static_cast<std::size_t>(end));
  for (std::int64_t o = 0; o < end; ++o)
    ts[static_cast<std::size_t>(o)] =
        expected_record(salt, static_cast<std::uint64_t>(o)).timestamp_ms;
  std::vector<std::int64_t> queries = {kBaseTimestampMs - 100, kBaseTimestampMs + 10 * end + 100};
  for (std::int64_t o = 0; o < end; o += 3) {
    queries.push_back(ts[static_cast<std::size_t>(o)]);
    queries.push_back(ts[static_cast<std::size_t>(o)] + 1);
  }
  for (const std::int64_t q : queries) {
    std::optional<std::int64_t> want;
    for (std::int64_t o = 0; o < end; ++o) {
      if (ts[static_cast<std::size_t>(o)] >= q) {
        want = o;
        break;
      }
    }
    const auto got = log.offset_for_time(q);
    if (got != want) {
      return "offset_for_time(" + std::to_string(q) +
             ") = " + (got ? std::to_string(*got) : "none") + ", want " +
             (want ? std::to_string(*want) : "none");
    }
  }
  return "";
}

using Files = std::map<std::string, std::vector<char>>;

struct Frame {
  std::uint64_t position;
  std::uint32_t size;
  std::uint64_t end() const { return position + size; }
};

// The frames of a log file's bytes, from position 64 to the first size of 0.
std::vector<Frame> frames_in(const std::vector<char>& bytes) {
  std::vector<Frame> out;
  std::uint64_t pos = kFileHeaderSize;
  while (pos + 4 <= bytes.size()) {
    std::uint32_t size;
    std::memcpy(&size, bytes.data() + pos, 4);
    if (size == 0) break;
    out.push_back({pos, size});
    pos += align_frame(size);
  }
  return out;
}

// A pristine log of several segments, kept as bytes, and the means to lay it out again.
struct Pristine {
  std::uint64_t salt = 0;
  std::int64_t end = 0;
  std::vector<std::uint64_t> bases;
  Files files;

  static Pristine build(std::uint64_t salt, std::size_t min_segments = 6) {
    rill_test::TempDir tmp;
    Pristine p;
    p.salt = salt;
    auto log = Log::open(tmp.path(), small_config());
    REQUIRE(log);
    std::vector<Header> hdrs;
    std::vector<std::vector<Header>> batch_hdrs(4);
    std::uint64_t o = 0;
    // Stop once the last segment holds a good dozen frames.
    while ((*log)->segment_count() < min_segments ||
           (*log)->segments().back()->end_offset() - (*log)->segments().back()->base_offset() <
               14) {
      if (o % 7 == 3) {
        std::vector<Expected> es;
        std::vector<Record> rs;
        for (std::size_t i = 0; i < 3; ++i) es.push_back(expected_record(salt, o + i));
        for (std::size_t i = 0; i < 3; ++i) rs.push_back(as_record(es[i], batch_hdrs[i]));
        REQUIRE((*log)->append_batch(rs));
        o += 3;
      } else {
        REQUIRE((*log)->append(as_record(expected_record(salt, o), hdrs)));
        ++o;
      }
    }
    p.end = (*log)->end_offset();
    for (const auto& s : (*log)->segments()) p.bases.push_back(s->base_offset());
    log->reset();
    for (const auto& e : fs::directory_iterator(tmp.path())) {
      const std::string name = e.path().filename().string();
      if (name == ".lock") continue;
      p.files[name] = rill_test::read_file(e.path().string());
    }
    return p;
  }

  std::string log_name(std::size_t seg) const { return segment_file_name(bases[seg], ".log"); }
  const std::vector<char>& log_bytes(std::size_t seg) const { return files.at(log_name(seg)); }
  std::size_t last() const { return bases.size() - 1; }

  void lay_out(const std::string& dir) const {
    std::error_code ec;
    fs::remove_all(dir, ec);
    fs::create_directories(dir);
    for (const auto& [name, bytes] : files) rill_test::write_file(dir + "/" + name, bytes);
  }
};

// What recovery should report after the active (last) segment's log file was changed into
// `damaged`, predicted from the bytes.
struct Outcome {
  std::int64_t end = 0;
  std::uint64_t dropped_bytes = 0;
  std::int64_t truncated_at = -1;
  std::uint32_t segments_deleted = 0;
  std::uint64_t max_dropped_records = 0;
};

std::uint64_t nonzero_end(const std::vector<char>& b, std::uint64_t from, std::uint64_t to) {
  to = std::min<std::uint64_t>(to, b.size());
  while (to > from && b[to - 1] == 0) --to;
  return std::max(to, from);
}

Outcome predict_active(const Pristine& p, const std::vector<char>& damaged_file) {
  const std::vector<char>& orig = p.log_bytes(p.last());
  const std::uint64_t base = p.bases.back();
  // The file as recovery maps it: grown to the segment size with zeros.
  std::vector<char> img = damaged_file;
  if (img.size() < kSegmentBytes) img.resize(kSegmentBytes, 0);
  const std::vector<Frame> frames = frames_in(orig);
  Outcome o;
  if (!std::equal(orig.begin(), orig.begin() + kFileHeaderSize, img.begin())) {
    // An unreadable header: the segment is dropped, the previous one becomes active.
    o.end = static_cast<std::int64_t>(base);
    o.segments_deleted = 1;
    o.dropped_bytes = nonzero_end(damaged_file, 0, damaged_file.size());
    if (o.dropped_bytes > kFileHeaderSize) o.truncated_at = o.end;
    o.max_dropped_records = frames.size();
    return o;
  }
  std::size_t k = 0;
  while (k < frames.size() &&
         std::equal(orig.begin() + static_cast<std::ptrdiff_t>(frames[k].position),
                    orig.begin() + static_cast<std::ptrdiff_t>(frames[k].end()),
                    img.begin() + static_cast<std::ptrdiff_t>(frames[k].position))) {
    ++k;
  }
  const std::uint64_t cut = k < frames.size()
                                ? frames[k].position
                                : frames.back().position + align_frame(frames.back().size);
  std::uint32_t size_there = 0;
  if (cut + 4 <= img.size()) std::memcpy(&size_there, img.data() + cut, 4);
  // Whatever the cut (an unfinished frame or damage), recovery checks the whole rest of the
  // file, past the segment size too, and drops every non-zero byte there.
  const std::uint64_t garbage_end = nonzero_end(img, cut, img.size());
  o.end = static_cast<std::int64_t>(base + k);
  o.dropped_bytes = garbage_end - cut;
  if (o.dropped_bytes > 0) o.truncated_at = o.end;
  o.max_dropped_records = frames.size() - k + (size_there == 0 ? 0 : 1);
  return o;
}

// Opens `dir`, checks the report against `want` and every record against the model, then
// appends, reopens and checks that the log stayed consistent. "" or the first problem.
std::string open_and_check(const Pristine& p, const std::string& dir, const Outcome& want,
                           bool check_all = true, LogConfig config = small_config()) {
  std::string problem;
  std::int64_t end = 0;
  {
    auto log = Log::open(dir, config);
    if (!log) return "open: " + log.error().to_string();
    const auto& rep = (*log)->recovery();
    end = (*log)->end_offset();
    const auto mismatch = [&](const char* what, long long got, long long wanted) {
      return std::string(what) + " " + std::to_string(got) + ", want " + std::to_string(wanted) +
             " (recovery: " + rep.detail + ")";
    };
    if (end != want.end) return mismatch("end offset", end, want.end);
    if (rep.dropped_bytes != want.dropped_bytes) {
      return mismatch("dropped_bytes", static_cast<long long>(rep.dropped_bytes),
                      static_cast<long long>(want.dropped_bytes));
    }
    if (rep.truncated_at != want.truncated_at)
      return mismatch("truncated_at", rep.truncated_at, want.truncated_at);
    if (rep.segments_deleted != want.segments_deleted) {
      return mismatch("segments_deleted", rep.segments_deleted, want.segments_deleted);
    }
    if (rep.dropped_records > want.max_dropped_records) {
      return mismatch("dropped_records", static_cast<long long>(rep.dropped_records),
                      static_cast<long long>(want.max_dropped_records));
    }
    if (!rep.clean() && rep.detail.empty()) return "an unclean recovery without detail";
    if ((*log)->start_offset() != 0) return "start offset moved";
    problem = check_records(**log, p.salt, check_all ? 0 : std::max<std::int64_t>(0, end - 20));
    if (!problem.empty()) return problem;
    std::vector<Header> hdrs;
    for (std::int64_t i = 0; i < 2; ++i) {
      auto a = (*log)->append(
          as_record(expected_record(p.salt, static_cast<std::uint64_t>(end + i)), hdrs));
      if (!a) return "append after recovery: " + a.error().to_string();
    }
  }
  auto log = Log::open(dir, config);
  if (!log) return "reopen: " + log.error().to_string();
  const auto& rep = (*log)->recovery();
  if (!rep.clean() || rep.indexes_rebuilt != 0) return "reopen not clean: " + rep.detail;
  if ((*log)->end_offset() != end + 2) return "reopen lost the appends";
  return check_records(**log, p.salt, check_all ? 0 : std::max<std::int64_t>(0, end - 20));
}

// Recovery fsyncs the directory after every unclean open: some 8 ms on a disk, thousands of
// times here. The file surgery needs no disk, so this file's tests run in tmpfs when $TMPDIR
// leaves the choice open.
void prefer_tmpfs() {
  if (std::getenv("TMPDIR") == nullptr && ::access("/dev/shm", W_OK | X_OK) == 0) {
    ::setenv("TMPDIR", "/dev/shm", 0);
  }
}

[[maybe_unused]] const bool kInTmpfs = (prefer_tmpfs(), true);

void truncate_to(const std::string& path, std::uint64_t size) {
  REQUIRE(::truncate(path.c_str(), static_cast<off_t>(size)) == 0);
}

}  // namespace

TEST_CASE(
    "recovery cuts the active segment where it was truncated, at every byte of its last frames",
    "[log][recovery][corruption]") {
  const std::uint64_t seed = rill_test::test_seed();
  INFO("seed " << seed);
  const Pristine p = Pristine::build(mix(seed));
  const std::vector<char>& orig = p.log_bytes(p.last());
  const std::vector<Frame> frames = frames_in(orig);
  REQUIRE(frames.size() >= 10);
  rill_test::TempDir tmp;
  const std::string dir = tmp.sub("log");
  const std::string path = dir + "/" + p.log_name(p.last());

  // Every byte of the last three frames and one frame's worth past them; a sample elsewhere,
  // including inside the file header.
  std::vector<std::uint64_t> cuts;
  const std::uint64_t step = rill_test::sanitizer_build() ? 3 : 1;
  const Frame& back = frames.back();
  for (std::uint64_t at = frames[frames.size() - 3].position;
       at <= back.position + align_frame(back.size) + 64; at += step) {
    cuts.push_back(at);
  }
  std::mt19937_64 rng(seed);
  for (int i = 0; i < 64; ++i)
    cuts.push_back(kFileHeaderSize + rng() % (back.end() - kFileHeaderSize));
  for (const std::uint64_t at : {0, 1, 4, 60, 63, 64, 65, 68, 72}) cuts.push_back(at);

  for (const std::uint64_t at : cuts) {
    CAPTURE(at);
    p.lay_out(dir);
    truncate_to(path, at);
    std::vector<char> damaged(orig.begin(), orig.begin() + static_cast<std::ptrdiff_t>(at));
    const Outcome want = predict_active(p, damaged);
    CAPTURE(want.end, want.dropped_bytes);
    const std::string problem = open_and_check(p, dir, want, /*check_all=*/at % 16 == 0);
    REQUIRE(problem == "");
  }
}

TEST_CASE("recovery cuts the active segment at the first frame with a flipped bit",
          "[log][recovery][corruption]") {
  const std::uint64_t seed = rill_test::test_seed();
  INFO("seed " << seed);
  const Pristine p = Pristine::build(mix(seed + 1));
  const std::vector<char>& orig = p.log_bytes(p.last());
  const std::vector<Frame> frames = frames_in(orig);
  rill_test::TempDir tmp;
  const std::string dir = tmp.sub("log");
  const std::string path = dir + "/" + p.log_name(p.last());

  std::mt19937_64 rng(seed);
  std::vector<std::pair<std::uint64_t, int>> flips;  // (byte, bit)
  const Frame& back = frames.back();
  for (std::uint64_t at = back.position; at < back.position + 40; ++at)
    flips.emplace_back(at, rng() % 8);
  const int samples = rill_test::sanitizer_build() ? 150 : 400;
  for (int i = 0; i < samples; ++i) {
    flips.emplace_back(
        kFileHeaderSize + rng() % (back.position + align_frame(back.size) - kFileHeaderSize),
        rng() % 8);
  }
  for (int i = 0; i < 16; ++i) flips.emplace_back(rng() % kFileHeaderSize, rng() % 8);

  int padding_flips = 0;
  for (const auto& [at, bit] : flips) {
    CAPTURE(at, bit);
    p.lay_out(dir);
    std::vector<char> damaged = orig;
    damaged[at] = static_cast<char>(damaged[at] ^ (1 << bit));
    rill_test::write_file(path, damaged);
    const Outcome want = predict_active(p, damaged);
    if (want.end == p.end) ++padding_flips;  // a flip in a frame's padding harms nothing
    const std::string problem = open_and_check(p, dir, want, /*check_all=*/false);
    REQUIRE(problem == "");
  }
  CHECK(padding_flips < static_cast<int>(flips.size()) / 2);
}

TEST_CASE("recovery drops garbage written after the last frame", "[log][recovery][corruption]") {
  const std::uint64_t seed = rill_test::test_seed();
  INFO("seed " << seed);
  const Pristine p = Pristine::build(mix(seed + 2));
  const std::vector<char>& orig = p.log_bytes(p.last());
  const std::vector<Frame> frames = frames_in(orig);
  const std::uint64_t tail = frames.back().position + align_frame(frames.back().size);
  rill_test::TempDir tmp;
  const std::string dir = tmp.sub("log");
  const std::string path = dir + "/" + p.log_name(p.last());
  std::mt19937_64 rng(seed);
  const auto garbage = [&](std::vector<char>& b, std::uint64_t at, std::size_t n) {
    if (b.size() < at + n) b.resize(at + n, 0);
    for (std::size_t i = 0; i < n; ++i) b[at + i] = static_cast<char>(1 + rng() % 255);  // never 0
  };

  SECTION("right after the last frame, where the next size field would be") {
    for (const std::size_t n : {1, 3, 4, 40, 100, 1000}) {
      CAPTURE(n);
      p.lay_out(dir);
      std::vector<char> damaged = orig;
      garbage(damaged, tail, n);
      rill_test::write_file(path, damaged);
      const Outcome want = predict_active(p, damaged);
      CHECK(want.end == p.end);
      CHECK(want.dropped_bytes == n);
      REQUIRE(open_and_check(p, dir, want) == "");
    }
  }
  SECTION("in the zero bytes a frame further on, after a zero size field") {
    for (const std::uint64_t gap : {8, 24, 100, 1000, 2000}) {
      CAPTURE(gap);
      p.lay_out(dir);
      std::vector<char> damaged = orig;
      garbage(damaged, tail + gap, 20);
      rill_test::write_file(path, damaged);
      const Outcome want = predict_active(p, damaged);
      CHECK(want.dropped_bytes == gap + 20);
      REQUIRE(open_and_check(p, dir, want) == "");
    }
  }
  SECTION("far beyond the last frame, where appends later overwrite it") {
    // Recovery looks only one maximum frame past the end (a crash leaves no more); garbage
    // further on is out of sight, and must stay harmless as appends reach it.
    const std::uint64_t at =
        std::min<std::uint64_t>(kSegmentBytes - 300, tail + 2 * kMaxRecordBytes + 200);
    REQUIRE(at > tail + align_frame(kMaxRecordBytes) + 8);
    p.lay_out(dir);
    std::vector<char> damaged = orig;
    garbage(damaged, at, 200);
    rill_test::write_file(path, damaged);
    std::int64_t end = p.end;
    std::uint64_t dropped = 0;
    const std::size_t segments = p.bases.size();
    std::size_t now_segments = segments;
    for (int reopen = 0; now_segments < segments + 2; ++reopen) {
      CAPTURE(reopen, end);
      auto log = Log::open(dir, small_config());
      REQUIRE(log);
      const auto& rep = (*log)->recovery();
      INFO(rep.detail);
      REQUIRE((*log)->end_offset() == end);
      CHECK(rep.dropped_records == 0);
      CHECK(rep.segments_deleted == 0);
      dropped += rep.dropped_bytes;
      REQUIRE(check_records(**log, p.salt, std::max<std::int64_t>(0, end - 40)) == "");
      std::vector<Header> hdrs;
      for (int i = 0; i < 3; ++i, ++end) {
        REQUIRE((*log)->append(
            as_record(expected_record(p.salt, static_cast<std::uint64_t>(end)), hdrs)));
      }
      now_segments = (*log)->segment_count();
    }
    auto log = Log::open(dir, small_config());
    REQUIRE(log);
    CHECK((*log)->recovery().clean());
    REQUIRE(check_records(**log, p.salt) == "");
    CHECK(dropped <= at + 200 - tail);  // at most the garbage and the zeros before it
  }
  SECTION("beyond the end of the file") {
    for (const std::size_t n : {7, 64, 4096}) {
      CAPTURE(n);
      p.lay_out(dir);
      std::vector<char> damaged = orig;
      REQUIRE(damaged.size() == kSegmentBytes);
      garbage(damaged, damaged.size(), n);
      rill_test::write_file(path, damaged);
      const Outcome want = predict_active(p, damaged);
      REQUIRE(open_and_check(p, dir, want) == "");
    }
  }
}

TEST_CASE("garbage beyond the end of a nearly full active segment is dropped",
          "[log][recovery][corruption]") {
  const std::uint64_t seed = rill_test::test_seed();
  INFO("seed " << seed);
  Pristine p = Pristine::build(mix(seed + 3), 2);
  rill_test::TempDir tmp;
  const std::string dir = tmp.sub("log");
  // Fill the last segment with small records until one more maximum frame would not fit.
  p.lay_out(dir);
  {
    auto log = Log::open(dir, small_config());
    REQUIRE(log);
    std::vector<Header> hdrs;
    while ((*log)->segments().back()->end_position() + align_frame(kMaxRecordBytes) <
           kSegmentBytes) {
      const std::int64_t end = (*log)->end_offset();
      REQUIRE((*log)->append(
          as_record(expected_record(p.salt, static_cast<std::uint64_t>(end)), hdrs)));
    }
    REQUIRE((*log)->segment_count() == p.bases.size());
    p.end = (*log)->end_offset();
  }
  p.files.clear();
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().filename() != ".lock")
      p.files[e.path().filename().string()] = rill_test::read_file(e.path().string());
  }
  const std::string path = dir + "/" + p.log_name(p.last());
  // Garbage up to where recovery looks: one maximum frame past the last frame.
  const std::uint64_t tail = frames_in(p.log_bytes(p.last())).back().end();
  const std::uint64_t window_end = align_frame(tail) + align_frame(kMaxRecordBytes) + 8;
  REQUIRE(window_end > kSegmentBytes);
  std::vector<char> damaged = p.log_bytes(p.last());
  damaged.resize(window_end, static_cast<char>(0xA5));
  p.lay_out(dir);
  rill_test::write_file(path, damaged);
  const Outcome want = predict_active(p, damaged);
  CHECK(want.dropped_bytes > window_end - kSegmentBytes);
  CHECK(want.end == p.end);
  REQUIRE(open_and_check(p, dir, want) == "");
}

TEST_CASE("damaged or missing index files are rebuilt from the log", "[log][recovery][index]") {
  const std::uint64_t seed = rill_test::test_seed();
  INFO("seed " << seed);
  const Pristine p = Pristine::build(mix(seed + 4));
  rill_test::TempDir tmp;
  const std::string dir = tmp.sub("log");
  std::mt19937_64 rng(seed);

  // A valid header of the wrong kind or base, for each index kind.
  const auto header = [](FileKind kind, std::uint64_t base) {
    const auto h = rill::storage::make_file_header(kind, base, 0);
    std::vector<char> b(sizeof h);
    std::memcpy(b.data(), &h, sizeof h);
    return b;
  };
  const char* const damages[] = {
      "deleted",
      "empty",
      "shorter than a header",
      "garbage",
      "wrong kind",
      "wrong base offset",
      "bad header crc",
      "entries out of order",
      "misaligned entry",
      "entry moved to another frame",
      "entry past the log",
      "last entries cut",
  };
  const std::size_t sealed = 1;
  for (const std::size_t seg : {sealed, p.last()}) {
    for (const char* suffix : {".index", ".timeindex"}) {
      for (const char* damage : damages) {
        CAPTURE(seg, suffix, damage);
        p.lay_out(dir);
        const std::string name = segment_file_name(p.bases[seg], suffix);
        const std::string path = dir + "/" + name;
        const bool time = std::string(suffix) == ".timeindex";
        const std::size_t entry = time ? 16 : 8;
        std::vector<char> b = p.files.at(name);
        REQUIRE(b.size() >= kFileHeaderSize + 3 * entry);
        const std::string what = damage;
        if (what == "deleted") {
          fs::remove(path);
        } else {
          if (what == "empty") {
            b.clear();
          } else if (what == "shorter than a header") {
            b.resize(30);
          } else if (what == "garbage") {
            for (char& c : b) c = static_cast<char>(rng());
          } else if (what == "wrong kind") {
            const auto h =
                header(time ? FileKind::kOffsetIndex : FileKind::kTimeIndex, p.bases[seg]);
            std::copy(h.begin(), h.end(), b.begin());
          } else if (what == "wrong base offset") {
            const auto h =
                header(time ? FileKind::kTimeIndex : FileKind::kOffsetIndex, p.bases[seg] + 1);
            std::copy(h.begin(), h.end(), b.begin());
          } else if (what == "bad header crc") {
            b[20] = static_cast<char>(b[20] ^ 0x10);
          } else if (what == "entries out of order") {
            std::swap_ranges(b.begin() + kFileHeaderSize,
                             b.begin() + static_cast<std::ptrdiff_t>(kFileHeaderSize + entry),
                             b.begin() + static_cast<std::ptrdiff_t>(kFileHeaderSize + entry));
          } else if (what == "misaligned entry" || what == "entry moved to another frame" ||
                     what == "entry past the log") {
            // The second entry's position (the last u32 of an entry): a few bytes on, or the
            // next frame's position (both still between its neighbours), or beyond the end
            // of the log file.
            const std::size_t at = kFileHeaderSize + 2 * entry - 4;
            std::uint32_t pos;
            std::memcpy(&pos, b.data() + at, 4);
            if (what == "misaligned entry") {
              pos += 4;
            } else if (what == "entry moved to another frame") {
              std::uint32_t size;
              std::memcpy(&size, p.log_bytes(seg).data() + pos, 4);
              pos += static_cast<std::uint32_t>(align_frame(size));
            } else {
              pos = static_cast<std::uint32_t>(1u << 30);
            }
            std::memcpy(b.data() + at, &pos, 4);
          } else if (what == "last entries cut") {
            b.resize(kFileHeaderSize + entry + entry / 2);
          }
          rill_test::write_file(path, b);
        }
        {
          auto log = Log::open(dir, small_config());
          REQUIRE(log);
          const auto& rep = (*log)->recovery();
          INFO("recovery: " << rep.detail);
          CHECK(rep.clean());
          CHECK(rep.truncated_at == -1);
          if (seg == sealed) CHECK(rep.indexes_rebuilt == 1);
          REQUIRE((*log)->end_offset() == p.end);
          REQUIRE(check_records(**log, p.salt) == "");
          REQUIRE(check_each_offset(**log, p.salt) == "");
          REQUIRE(check_times(**log, p.salt) == "");
        }
        auto log = Log::open(dir, small_config());
        REQUIRE(log);
        INFO("second recovery: " << (*log)->recovery().detail);
        CHECK((*log)->recovery().clean());
        CHECK((*log)->recovery().indexes_rebuilt == 0);
        REQUIRE(check_records(**log, p.salt) == "");
        REQUIRE(check_times(**log, p.salt) == "");
      }
    }
  }
}

TEST_CASE("index files without a log file are deleted; other files are left alone",
          "[log][recovery][index]") {
  const Pristine p = Pristine::build(mix(rill_test::test_seed() + 5), 2);
  rill_test::TempDir tmp;
  const std::string dir = tmp.sub("log");
  p.lay_out(dir);
  const std::string orphan = dir + "/" + segment_file_name(999999, ".index");
  const std::string orphan_time = dir + "/" + segment_file_name(999999, ".timeindex");
  rill_test::write_file(orphan, p.files.at(segment_file_name(0, ".index")));
  rill_test::write_file(orphan_time, p.files.at(segment_file_name(0, ".timeindex")));
  // Names that look almost like segments: 20 digits beyond 2^64 - 1, letters, short names.
  const std::vector<std::string> strangers = {"99999999999999999999.log",
                                              "18446744073709551616.log",
                                              "0000000000000000000x.log", "42.log", "notes.txt"};
  for (const auto& s : strangers) rill_test::write_file(dir + "/" + s, {'x'});
  auto log = Log::open(dir, small_config());
  REQUIRE(log);
  INFO((*log)->recovery().detail);
  CHECK((*log)->end_offset() == p.end);
  CHECK(!fs::exists(orphan));
  CHECK(!fs::exists(orphan_time));
  for (const auto& s : strangers) CHECK(fs::exists(dir + "/" + s));
  CHECK(check_records(**log, p.salt) == "");
}

TEST_CASE("damage to a sealed segment's tail cuts the log there", "[log][recovery][corruption]") {
  const std::uint64_t seed = rill_test::test_seed();
  INFO("seed " << seed);
  const Pristine p = Pristine::build(mix(seed + 6));
  REQUIRE(p.bases.size() >= 4);
  rill_test::TempDir tmp;
  const std::string dir = tmp.sub("log");
  const std::size_t seg = 1;
  const std::string path = dir + "/" + p.log_name(seg);
  const std::vector<char>& orig = p.log_bytes(seg);
  const std::vector<Frame> frames = frames_in(orig);
  const std::uint64_t later = p.bases.size() - seg - 1;  // segments after the damaged one
  const auto base = static_cast<std::int64_t>(p.bases[seg]);
  const auto seg_end = static_cast<std::int64_t>(p.bases[seg + 1]);
  REQUIRE(seg_end - base == static_cast<std::int64_t>(frames.size()));
  const Frame& back = frames.back();

  struct Case {
    std::string name;
    std::vector<char> bytes;
    std::int64_t end;
    std::uint32_t deleted;
  };
  std::vector<Case> cases;
  {
    std::vector<char> b(orig.begin(),
                        orig.begin() + static_cast<std::ptrdiff_t>(back.position + back.size / 2));
    cases.push_back(
        {"truncated inside its last frame", b, seg_end - 1, static_cast<std::uint32_t>(later)});
  }
  {
    std::vector<char> b(orig.begin(), orig.begin() + static_cast<std::ptrdiff_t>(
                                                         frames[frames.size() - 2].position));
    cases.push_back(
        {"truncated at a frame boundary", b, seg_end - 2, static_cast<std::uint32_t>(later)});
  }
  {
    std::vector<char> b = orig;
    b[back.position + back.size - 1] = static_cast<char>(b[back.position + back.size - 1] ^ 4);
    cases.push_back(
        {"a flipped bit in its last frame", b, seg_end - 1, static_cast<std::uint32_t>(later)});
  }
  {
    std::vector<char> b = orig;
    b[back.position + 1] = static_cast<char>(b[back.position + 1] ^ 0x40);
    cases.push_back({"a flipped bit in its last frame's size", b, seg_end - 1,
                     static_cast<std::uint32_t>(later)});
  }
  {
    std::vector<char> b = orig;
    b.resize(b.size() + 50, static_cast<char>(0x77));
    cases.push_back(
        {"garbage after its last frame", b, seg_end, static_cast<std::uint32_t>(later)});
  }
  {
    std::vector<char> b(orig.begin(), orig.begin() + 40);
    cases.push_back(
        {"truncated inside its header", b, base, static_cast<std::uint32_t>(later + 1)});
  }
  {
    std::vector<char> b = orig;
    std::fill(b.begin(), b.begin() + kFileHeaderSize, 0);
    cases.push_back({"its header zeroed", b, base, static_cast<std::uint32_t>(later + 1)});
  }
  for (const Case& c : cases) {
    CAPTURE(c.name);
    p.lay_out(dir);
    rill_test::write_file(path, c.bytes);
    auto log = Log::open(dir, small_config());
    REQUIRE(log);
    const auto& rep = (*log)->recovery();
    INFO("recovery: " << rep.detail);
    CHECK((*log)->end_offset() == c.end);
    CHECK(rep.segments_deleted == c.deleted);
    CHECK(rep.truncated_at == c.end);
    CHECK(rep.dropped_bytes > 0);
    CHECK(rep.dropped_records >= static_cast<std::uint64_t>(p.end - seg_end));
    CHECK(rep.dropped_records <= static_cast<std::uint64_t>(p.end - c.end));
    CHECK((*log)->segment_count() == (c.end == base ? seg : seg + 1));
    for (std::size_t j = seg + 1; j < p.bases.size(); ++j) {
      CHECK(!fs::exists(dir + "/" + p.log_name(j)));
      CHECK(!fs::exists(dir + "/" + segment_file_name(p.bases[j], ".index")));
    }
    REQUIRE(check_records(**log, p.salt) == "");
    REQUIRE(check_times(**log, p.salt) == "");
    std::vector<Header> hdrs;
    const std::int64_t end = (*log)->end_offset();
    for (std::int64_t i = 0; i < 40; ++i) {
      REQUIRE((*log)->append(
          as_record(expected_record(p.salt, static_cast<std::uint64_t>(end + i)), hdrs)));
    }
    log->reset();
    auto again = Log::open(dir, small_config());
    REQUIRE(again);
    INFO("second recovery: " << (*again)->recovery().detail);
    CHECK((*again)->recovery().clean());
    CHECK((*again)->end_offset() == end + 40);
    REQUIRE(check_records(**again, p.salt) == "");
  }
}

TEST_CASE("a flipped bit inside a sealed segment is never returned as a record",
          "[log][recovery][corruption]") {
  const std::uint64_t seed = rill_test::test_seed();
  INFO("seed " << seed);
  const Pristine p = Pristine::build(mix(seed + 7));
  rill_test::TempDir tmp;
  const std::string dir = tmp.sub("log");
  const std::size_t seg = 1;
  const std::vector<char>& orig = p.log_bytes(seg);
  const std::vector<Frame> frames = frames_in(orig);
  REQUIRE(frames.size() >= 6);
  // A frame early in the segment, where the open-time check of the sealed tail does not
  // reach, with a value of some bytes: the flip lands in the value, seen by the CRC alone
  // (a flip in a size field breaks the frame's structure, and reads skipping over it fail).
  const auto value_size = [&](std::size_t i) {
    std::uint32_t n;
    std::memcpy(&n, orig.data() + frames[i].position + 28, 4);
    return n == rill::storage::kNullSize ? 0 : n;
  };
  std::size_t k = 2;
  while (k < frames.size() / 2 && value_size(k) < 8) ++k;
  REQUIRE(value_size(k) >= 8);
  std::uint32_t key_size;
  std::memcpy(&key_size, orig.data() + frames[k].position + 24, 4);
  if (key_size == rill::storage::kNullSize) key_size = 0;
  const auto bad = static_cast<std::int64_t>(p.bases[seg] + k);
  std::vector<char> damaged = orig;
  const std::uint64_t at = frames[k].position + 40 + key_size + value_size(k) / 2;
  damaged[at] = static_cast<char>(damaged[at] ^ 0x08);
  CAPTURE(bad, at);

  SECTION("a read with verify_checksums reports kCorruption") {
    p.lay_out(dir);
    rill_test::write_file(dir + "/" + p.log_name(seg), damaged);
    auto log = Log::open(dir, small_config());
    REQUIRE(log);
    CHECK((*log)->recovery().clean());
    REQUIRE((*log)->end_offset() == p.end);
    auto got = (*log)->read(bad, 10);
    REQUIRE(!got);
    CHECK(got.error().code() == ErrorCode::kCorruption);
    // A read from before stops short of it; everything else reads back intact.
    auto before = (*log)->read(bad - 2, 10);
    REQUIRE(before);
    CHECK(before->size() == 2);
    CHECK(before->next_offset() == bad);
    RecordBatch batch;
    for (std::int64_t o = 0; o < p.end; ++o) {
      if (o == bad) continue;
      auto r = (*log)->read_into(o, batch, 1);
      INFO("offset " << o << ": " << (r ? std::string("ok") : r.error().to_string()));
      REQUIRE(r);
      REQUIRE(batch.size() == 1);
      REQUIRE(matches(batch[0], expected_record(p.salt, static_cast<std::uint64_t>(o))));
    }
  }
  SECTION("verify_all_on_open cuts the log there") {
    p.lay_out(dir);
    rill_test::write_file(dir + "/" + p.log_name(seg), damaged);
    LogConfig config = small_config();
    config.verify_all_on_open = true;
    auto log = Log::open(dir, config);
    REQUIRE(log);
    const auto& rep = (*log)->recovery();
    INFO("recovery: " << rep.detail);
    CHECK((*log)->end_offset() == bad);
    CHECK(rep.truncated_at == bad);
    CHECK(rep.segments_deleted == p.bases.size() - seg - 1);
    CHECK(rep.dropped_records >= static_cast<std::uint64_t>(p.end - bad - 1));
    CHECK(rep.dropped_records <= static_cast<std::uint64_t>(p.end - bad));
    REQUIRE(check_records(**log, p.salt) == "");
    log->reset();
    auto again = Log::open(dir, config);
    REQUIRE(again);
    CHECK((*again)->recovery().clean());
    CHECK((*again)->end_offset() == bad);
  }
}

TEST_CASE("a last segment whose header was never written is dropped",
          "[log][recovery][corruption]") {
  const std::uint64_t seed = rill_test::test_seed();
  INFO("seed " << seed);
  const Pristine p = Pristine::build(mix(seed + 8));
  rill_test::TempDir tmp;
  const std::string dir = tmp.sub("log");
  const std::string path = dir + "/" + p.log_name(p.last());
  const auto base = static_cast<std::int64_t>(p.bases.back());

  SECTION("a roll killed before the header: a preallocated file of zeros") {
    p.lay_out(dir);
    rill_test::write_file(path, std::vector<char>(kSegmentBytes, 0));
    // The new segment's index files may or may not exist yet.
    fs::remove(dir + "/" + segment_file_name(p.bases.back(), ".timeindex"));
    Outcome want;
    want.end = base;
    want.segments_deleted = 1;
    REQUIRE(open_and_check(p, dir, want) == "");
  }
  SECTION("a roll killed before the preallocation: an empty file") {
    p.lay_out(dir);
    rill_test::write_file(path, {});
    Outcome want;
    want.end = base;
    want.segments_deleted = 1;
    REQUIRE(open_and_check(p, dir, want) == "");
  }
  SECTION("a zeroed header in front of frames") {
    p.lay_out(dir);
    std::vector<char> damaged = p.log_bytes(p.last());
    std::fill(damaged.begin(), damaged.begin() + kFileHeaderSize, 0);
    rill_test::write_file(path, damaged);
    const Outcome want = predict_active(p, damaged);
    CHECK(want.end == base);
    CHECK(want.truncated_at == base);
    REQUIRE(open_and_check(p, dir, want) == "");
  }
}

TEST_CASE("a sealed segment left at its preallocated size by a killed roll recovers",
          "[log][recovery][index]") {
  // A roll killed after the new segment's header but before seal() leaves the old segment's
  // file at its preallocated size, zeros after its frames. Index entries must point at
  // frames, not into those zeros: once sealed, the file is cut at its frames and a page past
  // them is gone (SIGBUS).
  const std::uint64_t seed = rill_test::test_seed();
  INFO("seed " << seed);
  const Pristine p = Pristine::build(mix(seed + 9));
  rill_test::TempDir tmp;
  const std::string dir = tmp.sub("log");
  const std::size_t seg = 1;
  p.lay_out(dir);
  std::vector<char> log_file = p.log_bytes(seg);
  const std::size_t preallocated = 64u << 10;
  log_file.resize(preallocated, 0);
  rill_test::write_file(dir + "/" + p.log_name(seg), log_file);
  const std::string index = dir + "/" + segment_file_name(p.bases[seg], ".index");
  const std::string time_index = dir + "/" + segment_file_name(p.bases[seg], ".timeindex");
  std::uint32_t rebuilt = 0;

  SECTION("its indexes intact") {}
  SECTION("its offset index deleted") {
    fs::remove(index);
    rebuilt = 1;
  }
  SECTION("its time index cut inside its header") {
    truncate_to(time_index, 10);
    rebuilt = 1;
  }
  SECTION("its time index pointing into the zeros") {
    const auto h = rill::storage::make_file_header(FileKind::kTimeIndex, p.bases[seg], 0);
    std::vector<char> ti(sizeof h);
    std::memcpy(ti.data(), &h, sizeof h);
    const auto add = [&](std::int64_t ts, std::uint32_t rel, std::uint32_t pos) {
      const rill::storage::TimeIndexEntry e{ts, rel, pos};
      const char* b = reinterpret_cast<const char*>(&e);
      ti.insert(ti.end(), b, b + sizeof e);
    };
    const std::int64_t first_ts = expected_record(p.salt, p.bases[seg]).timestamp_ms;
    add(first_ts, 0, kFileHeaderSize);
    add(first_ts, 1, preallocated - 16);
    add(kBaseTimestampMs * 2, 2, preallocated - 8);
    rill_test::write_file(time_index, ti);
    rebuilt = 1;
  }
  {
    auto log = Log::open(dir, small_config());
    REQUIRE(log);
    const auto& rep = (*log)->recovery();
    INFO("recovery: " << rep.detail);
    CHECK(rep.clean());
    CHECK(rep.indexes_rebuilt == rebuilt);
    REQUIRE((*log)->end_offset() == p.end);
    REQUIRE(check_times(**log, p.salt) == "");
    REQUIRE(check_records(**log, p.salt) == "");
    REQUIRE(check_each_offset(**log, p.salt) == "");
  }
  CHECK(rill_test::file_size(dir + "/" + p.log_name(seg)) == p.log_bytes(seg).size());
  auto log = Log::open(dir, small_config());
  REQUIRE(log);
  CHECK((*log)->recovery().clean());
  CHECK((*log)->recovery().indexes_rebuilt == 0);
}

TEST_CASE("frames after a run of zeros are dropped, not resurrected by later appends",
          "[log][recovery][corruption]") {
  // A lost page (power loss) can leave zeros in the middle of the active segment with intact
  // frames after them. Recovery cuts at the zeros; the frames after them must be dropped too,
  // or appends that happen to line up with them would bring old records back.
  rill_test::TempDir dir;
  rill::storage::LogConfig cfg;
  cfg.segment_bytes = 64 * 1024;
  cfg.max_record_bytes = 128;
  const std::string value(8, 'v');  // frame: 40 + 8 = 48 bytes
  {
    auto log = Log::open(dir.path(), cfg);
    REQUIRE(log);
    for (int i = 0; i < 20; ++i) REQUIRE((*log)->append({.value = value}));
  }
  const std::string path = dir.path() + "/00000000000000000000.log";
  std::vector<char> bytes = rill_test::read_file(path);
  std::fill(bytes.begin() + 64 + 5 * 48, bytes.begin() + 64 + 10 * 48, '\0');  // frames 5..9
  rill_test::write_file(path, bytes);
  {
    auto log = Log::open(dir.path(), cfg);
    REQUIRE(log);
    CHECK((*log)->end_offset() == 5);
    CHECK((*log)->recovery().dropped_bytes == 15 * 48);  // from the cut to the last frame
    CHECK((*log)->recovery().truncated_at == 5);
    for (int i = 5; i < 10; ++i) REQUIRE((*log)->append({.value = value}));  // same sizes
  }
  auto log = Log::open(dir.path(), cfg);
  REQUIRE(log);
  CHECK((*log)->recovery().clean());
  CHECK((*log)->end_offset() == 10);
}
