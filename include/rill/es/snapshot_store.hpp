// rill/es/snapshot_store.hpp: SnapshotStore<K, S>, snapshots of event-sourced state kept in a
// compacted topic, and rebuild(): the newest snapshot plus the events after it.
//
//   auto snaps = *rill::es::SnapshotStore<std::string, Account>::open(broker, "accounts.snap");
//   (void)snaps.save("acct-7", account.state, account.version);   // every N events, say
//   ... after a restart ...
//   auto account = *rill::es::rebuild(store, snaps, "acct-7", Account{}, apply);
//
// A snapshot is a record keyed by the entity's key, whose value is the state (through
// Serde<S>) and whose header "rill.snapshot.version" holds, in decimal, the version the state
// was folded up to (the offset of the last event in it). The topic's cleanup policy is
// compact, so that compaction keeps only each key's newest snapshot (and until it runs the topic
// keeps them all). Loading reads the newest snapshot record of the key, which is right either
// way.
//
// Thread-safety: thread-safe; copies share the index of where each key's newest snapshot is.
//
// Cost: save is one append. load catches the index up over snapshots saved since the last
// call (a read and a map update each; the whole topic on the first call after open), then
// reads and decodes one record.
#pragma once

#include <charconv>
#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "rill/broker.hpp"
#include "rill/es/event_store.hpp"
#include "rill/partitioner.hpp"
#include "rill/result.hpp"
#include "rill/serde.hpp"
#include "rill/storage/record.hpp"
#include "rill/topic.hpp"

namespace rill::es {

// The header of a snapshot record holding the version the state was folded up to.
inline constexpr std::string_view kSnapshotVersionHeader = "rill.snapshot.version";

template <typename S>
struct Snapshot {
  S state;
  std::int64_t version = kNoEvents;  // offset of the last event folded into `state`
  std::int64_t timestamp_ms = 0;     // when it was saved
};

template <typename K, typename S>
class SnapshotStore {
  static_assert(!rill::detail::IsStdView<S>::value,
                "a snapshot's state is copied out of the log: use an owning type");

 public:
  explicit SnapshotStore(Topic<K, S> topic)
      : topic_(std::move(topic)), indexes_(std::make_shared<detail::KeyIndexes>()) {}

  // Opens the snapshot topic `name`, creating it when absent with `config` and the cleanup
  // policy compact. Errors: as Topic<K, S>::create_if_absent.
  static Result<SnapshotStore> open(Broker& broker, std::string_view name,
                                    TopicConfig config = {}) {
    config.cleanup_policy = CleanupPolicy::kCompact;
    auto t = Topic<K, S>::create_if_absent(broker, name, config);
    if (!t) return fail(std::move(t).error());
    return SnapshotStore(std::move(*t));
  }

  const Topic<K, S>& topic() const noexcept { return topic_; }

  // Saves `state` as `key`'s snapshot at `version` (the offset of the last event folded into
  // it). Errors: kInvalidArgument (a key or state that does not serialize, a version below
  // kNoEvents), kRecordTooLarge, the log's errors.
  Result<void> save(const K& key, const S& state, std::int64_t version) {
    if (version < kNoEvents) {
      return fail(ErrorCode::kInvalidArgument, "bad snapshot version " + std::to_string(version));
    }
    std::string key_scratch;
    std::string value_scratch;
    auto k = serde::encode<K>(key, key_scratch);
    if (!k || !k->has_value()) return fail(ErrorCode::kInvalidArgument, "bad snapshot key");
    auto v = serde::encode<S>(state, value_scratch);
    if (!v) {
      return fail(ErrorCode::kInvalidArgument, "serializing the state: " + v.error().message());
    }
    const std::string version_text = std::to_string(version);
    const storage::Header header{kSnapshotVersionHeader, version_text};
    storage::Record r;
    r.key = *k;
    r.value = *v;
    r.headers = std::span<const storage::Header>(&header, 1);
    const std::int32_t p = partition_for_key(**k, topic_.partitions());
    auto at = topic_.log(p)->append(r);
    if (!at) return fail(std::move(at).error());
    return {};
  }

  // The newest snapshot of `key`, or nullopt when it has none. Errors: kCorruption (a record
  // that does not decode or lacks a valid version header), the log's read errors.
  Result<std::optional<Snapshot<S>>> load(const K& key) const {
    std::string scratch;
    auto k = serde::encode<K>(key, scratch);
    if (!k || !k->has_value()) return fail(ErrorCode::kInvalidArgument, "bad snapshot key");
    const std::int32_t p = partition_for_key(**k, topic_.partitions());
    const storage::Log* log = topic_.log(p);
    detail::KeyIndex& index = indexes_->of(p);
    auto s = index.lookup(*log, **k, log->end_offset());
    if (!s) return fail(std::move(s).error());
    Result<ConsumerBatch<K, S>> batch = ConsumerBatch<K, S>();
    for (;;) {
      // A tombstone (a null value: the Kafka way to delete a key's snapshot) means none. It
      // does not decode into S, and load() failed with kCorruption until compaction dropped
      // it; so did the load of another key whose record was gone, when the read landed on
      // that tombstone. The record is read untyped first, its offset and null value checked.
      if (s->last == kNoEvents || s->last_is_tombstone) return std::optional<Snapshot<S>>();
      storage::RecordBatch raw;
      if (auto r = log->read_into(s->last, raw, 1); !r) return fail(std::move(r).error());
      const bool there = !raw.empty() && raw[0].offset() == s->last;
      if (there && raw[0].is_tombstone()) return std::optional<Snapshot<S>>();
      if (there) {
        batch = topic_.read(p, s->last, 1);
        if (!batch) return fail(std::move(batch).error());
        if (!batch->empty() && (*batch)[0].offset == s->last) break;
      }
      // The record is gone, and the read returned the next one kept, which may be another
      // key's. Either a newer snapshot superseded it after the lookup and compaction dropped
      // it (a lookup against the new end finds that one), or it is gone for good (an expired
      // tombstone, say): then the key has none.
      auto again = index.lookup(*log, **k, log->end_offset());
      if (!again) return fail(std::move(again).error());
      if (again->last == s->last) return std::optional<Snapshot<S>>();
      s = again;
    }
    const auto& r = (*batch)[0];
    std::optional<std::int64_t> version;
    for (const storage::Header& h : r.headers) {
      if (h.name != kSnapshotVersionHeader || !h.value) continue;
      std::int64_t n = 0;
      const char* end = h.value->data() + h.value->size();
      auto [ptr, ec] = std::from_chars(h.value->data(), end, n);
      // Below INT64_MAX: rebuild() folds the events after it (version + 1).
      if (ec == std::errc() && ptr == end && n >= kNoEvents &&
          n < std::numeric_limits<std::int64_t>::max()) {
        version = n;
      }
    }
    if (!version) {
      return fail(ErrorCode::kCorruption, topic_.name() + "-" + std::to_string(p) + " offset " +
                                              std::to_string(r.offset) + ": no valid " +
                                              std::string(kSnapshotVersionHeader) + " header");
    }
    return std::optional<Snapshot<S>>(Snapshot<S>{r.value, *version, r.timestamp_ms});
  }

 private:
  Topic<K, S> topic_;
  std::shared_ptr<detail::KeyIndexes> indexes_;
};

// `key`'s state now: its newest snapshot (or `initial` when it has none), then its events after
// the snapshot's version, applied with `apply` as in EventStore::fold. The result's `events`
// counts only the events replayed after the snapshot. Errors: those of load() and fold().
template <typename K, typename E, typename S, typename F>
Result<Folded<S>> rebuild(const EventStore<K, E>& events, const SnapshotStore<K, S>& snapshots,
                          const K& key, S initial, F&& apply) {
  auto snap = snapshots.load(key);
  if (!snap) return fail(std::move(snap).error());
  if (!snap->has_value()) return events.fold(key, std::move(initial), std::forward<F>(apply));
  Snapshot<S>& s = **snap;
  auto folded = events.fold(key, std::move(s.state), std::forward<F>(apply), s.version + 1);
  if (!folded) return fail(std::move(folded).error());
  folded->version = std::max(folded->version, s.version);
  return folded;
}

}  // namespace rill::es
