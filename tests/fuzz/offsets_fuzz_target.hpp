// The fuzz target for committed-offset records: the input is a sequence of records (keys and
// values as the internal __consumer_offsets topic holds them, or anything else) appended to a
// log, which group::OffsetStore then replays, as Broker::offset_store() does on open.
//
// Invariants, against a reference decoder written from the layout documented in
// group/offset_store.hpp: when every record decodes, the store opens and holds exactly the
// latest offset, metadata and timestamp per (group, topic, partition), tombstones removing
// them; when one does not, open fails with kCorruption naming the first such record's
// offset. A store that opened takes a new commit, and a replay of the log finds it.
//
// Input layout: records, each
//    u8 flags (bit 0: no key, bit 1: null value), u16 LE key size, key, u16 LE value size, value
// (sizes are cut to what is left; a null value has no size field).
//
// Shared by offsets_fuzz.cpp (libFuzzer) and tests/fuzz_targets_replay_test.cpp.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "fuzz_util.hpp"
#include "rill/group/offset_store.hpp"
#include "rill/storage/log.hpp"

namespace rill_fuzz {

class OffsetsHarness {
 public:
  struct Rec {
    std::optional<std::string> key;
    std::optional<std::string> value;
  };

  static Bytes encode(const std::vector<Rec>& recs) {
    Bytes b;
    const auto put16 = [&](std::size_t n) {
      b.push_back(static_cast<std::uint8_t>(n & 0xFF));
      b.push_back(static_cast<std::uint8_t>((n >> 8) & 0xFF));
    };
    for (const Rec& r : recs) {
      b.push_back(static_cast<std::uint8_t>((r.key ? 0 : 1) | (r.value ? 0 : 2)));
      const std::string k = r.key.value_or("");
      put16(k.size());
      b.insert(b.end(), k.begin(), k.end());
      if (r.value) {
        put16(r.value->size());
        b.insert(b.end(), r.value->begin(), r.value->end());
      }
    }
    return b;
  }

  static std::vector<Rec> decode_input(const std::uint8_t* data, std::size_t size) {
    std::vector<Rec> out;
    std::size_t at = 0;
    const auto take16 = [&]() -> std::size_t {
      if (at + 2 > size) {
        at = size;
        return 0;
      }
      const std::size_t n = data[at] | (std::size_t{data[at + 1]} << 8);
      at += 2;
      return std::min(n, size - at);
    };
    while (at < size) {
      const std::uint8_t flags = data[at++];
      Rec r;
      const std::size_t kn = take16();
      if ((flags & 1) == 0) r.key = std::string(reinterpret_cast<const char*>(data + at), kn);
      at += kn;
      if ((flags & 2) == 0) {
        const std::size_t vn = take16();
        r.value = std::string(reinterpret_cast<const char*>(data + at), vn);
        at += vn;
      }
      out.push_back(std::move(r));
    }
    return out;
  }

  // Seeds: what real commits and group deletions append, and a few broken records.
  static std::vector<Bytes> seeds() {
    std::vector<Bytes> out;
    auto log = rill::storage::Log::open_in_memory(config());
    if (!log) return out;
    auto store = rill::group::OffsetStore::open(log->get());
    if (!store) return out;
    using TP = rill::group::TopicPartition;
    (void)(*store)->commit("g", {{TP{"orders", 0}, {5, "", 1000}}});
    (void)(*store)->commit("g",
                           {{TP{"orders", 0}, {9, "meta", 1001}}, {TP{"orders", 3}, {1, "", 2}}});
    (void)(*store)->commit("billing", {{TP{"payments", 7}, {123456789, "x", 3}}});
    (void)(*store)->delete_group("billing");
    (void)(*store)->commit(std::string(300, 'G'),
                           {{TP{std::string(249, 't'), 1023}, {-1, "", -5}}});
    std::vector<Rec> all;
    rill::storage::RecordBatch batch;
    if ((*log)->read_into(0, batch, 1000)) {
      for (const auto& r : batch) {
        Rec x;
        if (r.key()) x.key = std::string(*r.key());
        if (r.value()) x.value = std::string(*r.value());
        all.push_back(std::move(x));
      }
    }
    out.push_back(encode(all));
    for (std::size_t i = 0; i < all.size(); ++i) out.push_back(encode({all[i]}));
    std::vector<Rec> broken = all;
    broken.push_back({all[0].key, std::string("short")});
    out.push_back(encode(broken));
    out.push_back(encode({{std::nullopt, std::string(18, '\0')}}));
    out.push_back(encode({{std::string("\0\1g\0\1t", 6), std::nullopt}}));
    return out;
  }

  // Runs one input: "" when every invariant held, else what broke.
  std::string run(const std::uint8_t* data, std::size_t size) {
    const std::vector<Rec> recs = decode_input(data, size);
    auto log = rill::storage::Log::open_in_memory(config());
    if (!log) return "";
    std::vector<rill::storage::Record> raw;
    for (const Rec& r : recs) {
      rill::storage::Record x;
      if (r.key) x.key = std::string_view(*r.key);
      if (r.value) x.value = std::string_view(*r.value);
      raw.push_back(x);
    }
    if (!raw.empty() && !(*log)->append_batch(raw)) return "";  // too big for the log: no test
    Model want;
    const std::int64_t bad = reference(recs, want);
    auto store = rill::group::OffsetStore::open(log->get());
    if (bad >= 0) {
      if (store) return "record " + std::to_string(bad) + " does not decode, yet the store opened";
      if (store.error().code() != rill::ErrorCode::kCorruption) {
        return "a bad record failed with " + store.error().to_string();
      }
      if (store.error().message().find("offset " + std::to_string(bad)) == std::string::npos) {
        return "the error does not name offset " + std::to_string(bad) + ": " +
               store.error().message();
      }
      return "";
    }
    if (!store) return "open failed: " + store.error().to_string();
    if (std::string p = compare(**store, want); !p.empty()) return p;
    using TP = rill::group::TopicPartition;
    const TP tp{"fuzz-topic", 3};
    auto c = (*store)->commit("fuzz-group", {{tp, {77, "after", 99}}});
    if (!c) return "commit failed: " + c.error().to_string();
    want[{"fuzz-group", tp.topic, tp.partition}] = {77, "after", 99};
    auto replayed = rill::group::OffsetStore::open(log->get());
    if (!replayed) return "replay after a commit failed: " + replayed.error().to_string();
    return compare(**replayed, want);
  }

 private:
  using Key = std::tuple<std::string, std::string, std::int32_t>;
  using Model = std::map<Key, rill::group::OffsetAndMetadata>;

  static rill::storage::LogConfig config() {
    rill::storage::LogConfig c;
    c.segment_bytes = 1u << 20;
    c.max_record_bytes = 256u << 10;
    c.prefault_bytes = 0;
    return c;
  }

  // The layout of group/offset_store.hpp, decoded independently. Returns the offset of the
  // first record that does not decode, or -1.
  static std::int64_t reference(const std::vector<Rec>& recs, Model& out) {
    for (std::size_t i = 0; i < recs.size(); ++i) {
      const Rec& r = recs[i];
      std::size_t at = 0;
      const auto u = [&](const std::string& s, std::size_t n, std::uint64_t& v) {
        if (at + n > s.size()) return false;
        v = 0;
        for (std::size_t j = 0; j < n; ++j) v = (v << 8) | static_cast<unsigned char>(s[at + j]);
        at += n;
        return true;
      };
      const auto str = [&](const std::string& s, std::string& v) {
        std::uint64_t n;
        if (!u(s, 2, n) || at + n > s.size()) return false;
        v = s.substr(at, n);
        at += n;
        return true;
      };
      std::string group, topic, metadata;
      std::uint64_t partition = 0, offset = 0, ts = 0;
      bool ok = r.key && str(*r.key, group) && str(*r.key, topic) && u(*r.key, 4, partition) &&
                at == r.key->size();
      const Key key{group, topic, static_cast<std::int32_t>(static_cast<std::uint32_t>(partition))};
      if (ok && !r.value) {
        out.erase(key);
        continue;
      }
      at = 0;
      ok = ok && r.value && u(*r.value, 8, offset) && u(*r.value, 8, ts) &&
           str(*r.value, metadata) && at == r.value->size();
      if (!ok) return static_cast<std::int64_t>(i);
      out[key] = {static_cast<std::int64_t>(offset), metadata, static_cast<std::int64_t>(ts)};
    }
    return -1;
  }

  static std::string compare(const rill::group::OffsetStore& store, const Model& want) {
    std::map<std::string, int> groups;
    for (const auto& [k, om] : want) ++groups[std::get<0>(k)];
    std::vector<std::string> names;
    for (const auto& [g, n] : groups) names.push_back(g);
    if (store.groups() != names) return "the store lists other groups than were committed";
    for (const auto& [k, om] : want) {
      const auto got = store.committed(std::get<0>(k), {std::get<1>(k), std::get<2>(k)});
      if (!got) return "a committed offset is missing";
      if (got->offset != om.offset || got->metadata != om.metadata ||
          got->commit_timestamp_ms != om.commit_timestamp_ms) {
        return "a committed offset differs from the last one committed";
      }
    }
    for (const auto& g : names) {
      if (static_cast<int>(store.group_offsets(g).size()) != groups[g]) {
        return "group " + g + " holds offsets that were deleted or never committed";
      }
    }
    return "";
  }
};

}  // namespace rill_fuzz

inline int rill_fuzz_offsets_bytes(const std::uint8_t* data, std::size_t size) {
  static rill_fuzz::OffsetsHarness harness;
  const std::string problem = harness.run(data, size);
  if (!problem.empty()) {
    std::fprintf(stderr, "rill offsets fuzz: %s\n", problem.c_str());
    std::abort();
  }
  return 0;
}
