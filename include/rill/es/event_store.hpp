// rill/es/event_store.hpp: EventStore<K, E>, event sourcing over a topic: append a key's events
// only if nobody appended since the caller read its state (optimistic concurrency), and replay
// a partition's or a key's history, from an offset or a timestamp, folding events into state.
//
//   auto store = *rill::es::EventStore<std::string, AccountEvent>::open(broker, "accounts");
//   auto account = *store.fold("acct-7", Account{}, apply);      // state + version
//   if (!account.state.can_withdraw(50)) return refuse();
//   auto at = store.append("acct-7", Withdrawn{50}, account.version);
//   if (!at && at.error() == rill::ErrorCode::kConflict) retry();  // someone else appended
//
// Versions: a key's version is the offset of its last event in its partition, or kNoEvents
// (-1) when it has none. Offsets are the log's own, so a version is also where replay resumes.
// An append with `expected_version` checks, under the partition's append lock, that the key's
// last event is still that one, then appends all the events as one batch: either they all go
// in, contiguous, or (kConflict, or any other error) none does. What event stores give and
// Kafka does not. append_if_end() checks the partition's end offset instead: cheaper, but any
// other key's append in the partition is a conflict too.
//
// How: storage::Log::append_batch runs a precondition under its append lock with the end
// offset at that moment. The store keeps, per partition, an index of each key's first and
// last offset, caught up by reading the log from where it last stopped to that end offset
// (reads never take the append lock). So the check sees every event before the append, and
// the append goes in before any other. Appends made by others (a Producer, another EventStore
// on the same topic, a previous run of the process) are seen too: the index is built from the
// log, not from this object's own appends.
//
// Routing: a key's partition is Kafka's murmur2 of its serialized bytes (partition_for_key),
// as Producer<K, E> routes it, so producers and event stores agree. Adding partitions moves
// keys (as in Kafka): don't grow an event-sourced topic. An append routes the key once: its
// check and its events use the same partition even when the topic grows meanwhile.
//
// Retention: events deleted by retention are gone from replays and from the index (a key whose
// events were all deleted reads as kNoEvents, and an append expecting kNoEvents goes in), as
// in a store opened afterwards. Likewise for compaction, which drops a key's records only when
// its newest is a tombstone past delete_retention_ms. Event topics should keep everything (the
// default: retention_ms = retention_bytes = -1).
//
// Thread-safety: thread-safe. Copies share the indexes. Appends to one partition serialise on
// its log's append lock (and its index's mutex, taken inside it); replays take neither.
//
// Cost: an append is one Log::append_batch plus an index catch-up over the events appended
// since the last one (a read and a map update per event), under the append lock. The index
// holds every key of the partitions touched: O(keys) memory, rebuilt by reading the partition
// whole on the first call after open. The first catch-up after retention moved the partition's
// start walks every key of the index; the first after compaction rewrote a segment walks them
// too and reads one record per key whose last record is a tombstone. replay_key() scans the
// key's partition from its first to its last event, decoding only the key's own events.
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <iterator>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "rill/broker.hpp"
#include "rill/partitioner.hpp"
#include "rill/result.hpp"
#include "rill/serde.hpp"
#include "rill/storage/log.hpp"
#include "rill/topic.hpp"

namespace rill::es {

// The version of a key that has no events.
inline constexpr std::int64_t kNoEvents = -1;

// Where an append went: the events have offsets first_offset..last_offset of `partition`, and
// the key's version is now last_offset.
struct AppendResult {
  std::int32_t partition = 0;
  std::int64_t first_offset = 0;
  std::int64_t last_offset = 0;
  std::int64_t timestamp_ms = 0;
};

// State folded from a key's events: `version` is the offset of the last event applied
// (kNoEvents if none), the version to expect in the next append; `events` how many were
// applied by this fold.
template <typename S>
struct Folded {
  S state;
  std::int64_t version = kNoEvents;
  std::int64_t events = 0;
};

namespace detail {

// Each key's first and last offset in one partition, built by reading the log. Thread-safe
// through its mutex; lookups catch up first.
//
// It answers as an index built now by reading the log would: a key whose records the log no
// longer holds is forgotten. Retention deletes the oldest segments: a key whose last record is
// below the log's start offset goes. Compaction keeps every key's newest record except a
// tombstone past delete_retention_ms, which it drops with all the key's older records: a key
// whose last record is a tombstone that is gone goes. (`first` may still name a record
// compaction or retention dropped; replay_key reads from there and skips what is gone.)
class KeyIndex {
 public:
  struct Span {
    std::int64_t first = kNoEvents;
    std::int64_t last = kNoEvents;
    bool last_is_tombstone = false;  // the only newest record compaction drops
  };

  // Reads `log` from where the index stopped up to at least `end`, then looks `key` up.
  // Errors: the log's read errors (kCorruption).
  Result<Span> lookup(const storage::Log& log, std::string_view key, std::int64_t end) {
    std::lock_guard lock(mu_);
    RILL_TRY(catch_up_locked(log, end));
    auto it = keys_.find(key);
    if (it == keys_.end()) return Span{};
    return it->second;
  }

 private:
  Result<void> catch_up_locked(const storage::Log& log, std::int64_t end) {
    std::int64_t at = std::max(indexed_to_, log.start_offset());
    while (at < end) {
      auto read = log.read_into(at, batch_, 4096);
      if (!read && read.error().code() == ErrorCode::kOutOfRange && at < log.start_offset()) {
        // Retention deleted the segment being read since `at` was taken: what it held is
        // gone for every reader, so go on from the log's new start (the pruning below forgets
        // the keys whose last record went with it).
        at = log.start_offset();
        continue;
      }
      if (!read) return fail(std::move(read).error());
      // Not `empty()`: a read in a compacted gap (a segment compaction emptied, say) returns
      // no records and still moves past it. Below the end every read moves; this only guards.
      if (batch_.next_offset() <= at) break;
      for (const storage::RecordView& r : batch_) {
        const auto key = r.key();
        if (!key) continue;
        auto it = keys_.find(*key);
        if (it == keys_.end()) {
          keys_.emplace(std::string(*key), Span{r.offset(), r.offset(), r.is_tombstone()});
        } else {
          it->second.last = r.offset();
          it->second.last_is_tombstone = r.is_tombstone();
        }
      }
      at = batch_.next_offset();
    }
    indexed_to_ = at;
    // Off the append path: both passes below walk every key, and run only when the log's
    // start offset or its compacted segments moved since the last catch-up.
    const std::int64_t start = log.start_offset();
    if (start > pruned_start_) {
      std::erase_if(keys_, [start](const auto& entry) { return entry.second.last < start; });
      pruned_start_ = start;
    }
    const std::uint64_t compacted = log.compacted_segments();
    if (compacted != compacted_seen_) {
      RILL_TRY(forget_dropped_tombstones_locked(log));
      compacted_seen_ = compacted;
    }
    batch_ = storage::RecordBatch();  // do not pin a segment between calls
    return {};
  }

  // Forgets the keys whose last record, a tombstone, compaction has dropped. Reads one record
  // per key whose last record is a tombstone.
  Result<void> forget_dropped_tombstones_locked(const storage::Log& log) {
    for (auto it = keys_.begin(); it != keys_.end();) {
      const Span& s = it->second;
      if (!s.last_is_tombstone) {
        ++it;
        continue;
      }
      auto read = log.read_into(s.last, batch_, 1);
      if (!read && s.last >= log.start_offset()) return fail(std::move(read).error());
      // A read from a dropped offset returns the next record kept, or none.
      const bool kept = read && !batch_.empty() && batch_[0].offset() == s.last;
      it = kept ? std::next(it) : keys_.erase(it);
    }
    return {};
  }

  std::mutex mu_;
  std::int64_t indexed_to_ = 0;                    // guarded by mu_
  std::int64_t pruned_start_ = 0;                  // guarded by mu_: keys below it are gone
  std::uint64_t compacted_seen_ = 0;               // guarded by mu_: Log::compacted_segments()
  std::map<std::string, Span, std::less<>> keys_;  // guarded by mu_
  storage::RecordBatch batch_;                     // guarded by mu_
};

// One KeyIndex per partition, made on first use; shared by copies of a store.
class KeyIndexes {
 public:
  KeyIndex& of(std::int32_t partition) {
    std::lock_guard lock(mu_);
    auto& slot = indexes_[partition];
    if (!slot) slot = std::make_unique<KeyIndex>();
    return *slot;
  }

 private:
  std::mutex mu_;
  std::map<std::int32_t, std::unique_ptr<KeyIndex>> indexes_;  // guarded by mu_
};

// Calls f(record); stops with f's error when f returns a failed Result<void>.
template <typename F, typename R>
Result<void> call_visitor(F& f, const R& record) {
  if constexpr (std::is_same_v<std::invoke_result_t<F&, const R&>, Result<void>>) {
    return f(record);
  } else {
    f(record);
    return {};
  }
}

// Applies one event: `s = f(std::move(s), e)` when f returns a state, else `f(s, e)`.
template <typename S, typename F, typename E>
void apply_event(S& s, F& f, const E& e) {
  if constexpr (std::is_invocable_r_v<S, F&, S&&, const E&>) {
    s = f(std::move(s), e);
  } else {
    static_assert(std::is_invocable_v<F&, S&, const E&>,
                  "fold's function must be S(S, const E&) or void(S&, const E&)");
    f(s, e);
  }
}

}  // namespace detail

template <typename K, typename E>
class EventStore {
 public:
  using key_type = K;
  using event_type = E;
  using Record = ConsumerRecord<K, E>;

  // A handle on `topic`'s events.
  explicit EventStore(Topic<K, E> topic)
      : topic_(std::move(topic)), indexes_(std::make_shared<detail::KeyIndexes>()) {}

  // Opens the event topic `name`, creating it with `config` when absent (one partition and
  // retention off unless told otherwise). Errors: as Topic<K, E>::create_if_absent.
  static Result<EventStore> open(Broker& broker, std::string_view name, TopicConfig config = {}) {
    auto t = Topic<K, E>::create_if_absent(broker, name, config);
    if (!t) return fail(std::move(t).error());
    return EventStore(std::move(*t));
  }

  const Topic<K, E>& topic() const noexcept { return topic_; }

  // The partition holding `key`'s events. Errors: kInvalidArgument when the key does not
  // serialize.
  Result<std::int32_t> partition_of(const K& key) const {
    std::string scratch;
    auto bytes = key_bytes(key, scratch);
    if (!bytes) return fail(std::move(bytes).error());
    return partition_for_key(*bytes, topic_.partitions());
  }

  // --- appending ------------------------------------------------------------------------

  // Appends `events` to `key`'s history if its version (the offset of its last event) is
  // `expected_version` (kNoEvents: the key must have none). All or nothing, atomic with the
  // check. Errors: kConflict when the version differs (nothing appended; reload and retry);
  // kInvalidArgument (a key or event that does not serialize), kRecordTooLarge, the log's
  // kNoSpace / kIoError / kClosed; kCorruption when catching up the index meets a bad record.
  Result<AppendResult> append(const K& key, std::span<const E> events,
                              std::int64_t expected_version) {
    return append_checked(
        key, events,
        [expected_version](const detail::KeyIndex::Span& s, std::int64_t) -> Result<void> {
          if (s.last == expected_version) return {};
          return fail(ErrorCode::kConflict,
                      "expected the key at version " + std::to_string(expected_version) +
                          ", its last event is at offset " + std::to_string(s.last));
        });
  }
  Result<AppendResult> append(const K& key, const E& event, std::int64_t expected_version) {
    return append(key, std::span<const E>(&event, 1), expected_version);
  }

  // Appends `events` to `key`'s history if the end offset of the key's partition is
  // `expected_end_offset` (nothing appended since the caller read up to there). Errors: as
  // append(), kConflict when the end offset differs.
  Result<AppendResult> append_if_end(const K& key, std::span<const E> events,
                                     std::int64_t expected_end_offset) {
    return append_impl(key, events,
                       [expected_end_offset](std::int32_t, const storage::Log&, std::string_view) {
                         return storage::Log::end_offset_is(expected_end_offset);
                       });
  }

  // Appends without a check (events whose order against others' does not matter).
  Result<AppendResult> append_unchecked(const K& key, std::span<const E> events) {
    return append_impl(key, events, [](std::int32_t, const storage::Log&, std::string_view) {
      return storage::Log::AppendPrecondition();
    });
  }

  // The key's version now: the offset of its last event, or kNoEvents. Errors: as append().
  Result<std::int64_t> version(const K& key) const {
    auto s = span_of(key);
    if (!s) return fail(std::move(s).error());
    return s->last;
  }

  // --- replaying ------------------------------------------------------------------------

  // Calls f(const ConsumerRecord<K, E>&) for every event of `partition` from `from_offset` (at
  // least the partition's start) to its end when called, in offset order. f may return
  // Result<void>: a failure stops the replay and is returned. Returns the offset after the last
  // event replayed (where to resume). Records passed to f view the log: copy what you keep.
  // Errors: kOutOfRange (partition, or from_offset past the end), kCorruption.
  template <typename F>
  Result<std::int64_t> replay(std::int32_t partition, std::int64_t from_offset, F&& f) const {
    const storage::Log* log = topic_.log(partition);
    if (log == nullptr) return topic_.partition_out_of_range(partition);
    const std::int64_t end = log->end_offset();
    ConsumerBatch<K, E> batch;
    std::int64_t at = std::max(from_offset, log->start_offset());
    while (at < end) {
      RILL_TRY(topic_.read_into(partition, at, batch, 4096));
      for (const Record& r : batch) {
        if (r.offset >= end) return end;
        RILL_TRY(detail::call_visitor(f, r));
      }
      at = batch.next_offset();
    }
    return std::max(at, end);
  }

  // As replay(), from the first event whose timestamp is >= `timestamp_ms`.
  template <typename F>
  Result<std::int64_t> replay_since(std::int32_t partition, std::int64_t timestamp_ms,
                                    F&& f) const {
    const storage::Log* log = topic_.log(partition);
    if (log == nullptr) return topic_.partition_out_of_range(partition);
    const auto from = log->offset_for_time(timestamp_ms);
    if (!from) return log->end_offset();
    return replay(partition, *from, std::forward<F>(f));
  }

  // Calls f for each of `key`'s events from `from_offset` on, in order: its history. Reads only
  // between the key's first and last events (known from the index) and decodes only its own.
  // Returns the key's version (kNoEvents if it has no events). Errors: as replay().
  template <typename F>
  Result<std::int64_t> replay_key(const K& key, std::int64_t from_offset, F&& f) const {
    std::string scratch;
    auto bytes = key_bytes(key, scratch);
    if (!bytes) return fail(std::move(bytes).error());
    const std::int32_t p = partition_for_key(*bytes, topic_.partitions());
    const storage::Log* log = topic_.log(p);
    auto s = indexes_->of(p).lookup(*log, *bytes, log->end_offset());
    if (!s) return fail(std::move(s).error());
    if (s->last == kNoEvents) return kNoEvents;
    storage::RecordBatch batch;
    std::int64_t at = std::max({from_offset, s->first, log->start_offset()});
    while (at <= s->last) {
      RILL_TRY(log->read_into(at, batch, 4096));
      for (const storage::RecordView& raw : batch) {
        if (raw.offset() > s->last) break;
        if (raw.key() != *bytes) continue;
        auto r = decode_record<K, E>(raw, topic_.name(), p);
        if (!r) return fail(std::move(r).error());
        RILL_TRY(detail::call_visitor(f, *r));
      }
      at = batch.next_offset();
    }
    return s->last;
  }

  // As replay_key(), from the key's first event whose timestamp is >= `timestamp_ms`.
  template <typename F>
  Result<std::int64_t> replay_key_since(const K& key, std::int64_t timestamp_ms, F&& f) const {
    auto p = partition_of(key);
    if (!p) return fail(std::move(p).error());
    const storage::Log* log = topic_.log(*p);
    const auto from = log->offset_for_time(timestamp_ms);
    return replay_key(key, from ? *from : log->end_offset(), std::forward<F>(f));
  }

  // Rebuilds `key`'s state: starts from `initial` and applies each of its events from
  // `from_offset` on, in order, with `apply`: either S apply(S, const E&) or
  // void apply(S&, const E&). Returns the state and its version (pass it to append()).
  // To continue from a snapshot, give its state and version + 1 (see es/snapshot_store.hpp:
  // rebuild). Errors: as replay().
  template <typename S, typename F>
  Result<Folded<S>> fold(const K& key, S initial, F&& apply, std::int64_t from_offset = 0) const {
    Folded<S> out{std::move(initial), kNoEvents, 0};
    auto last = replay_key(key, from_offset, [&](const Record& r) {
      detail::apply_event(out.state, apply, r.value);
      out.version = r.offset;
      ++out.events;
    });
    if (!last) return fail(std::move(last).error());
    // The key's version even when every event is before from_offset (a snapshot covered them).
    out.version = std::max(out.version, *last);
    return out;
  }

 private:
  static Result<std::string_view> key_bytes(const K& key, std::string& scratch) {
    auto k = serde::encode<K>(key, scratch);
    if (!k) return fail(ErrorCode::kInvalidArgument, "serializing the key: " + k.error().message());
    if (!k->has_value()) return fail(ErrorCode::kInvalidArgument, "an event's key cannot be null");
    return **k;
  }

  Result<detail::KeyIndex::Span> span_of(const K& key) const {
    std::string scratch;
    auto bytes = key_bytes(key, scratch);
    if (!bytes) return fail(std::move(bytes).error());
    const std::int32_t p = partition_for_key(*bytes, topic_.partitions());
    const storage::Log* log = topic_.log(p);
    return indexes_->of(p).lookup(*log, *bytes, log->end_offset());
  }

  // Appends with a check of the key's index span, under the append lock.
  template <typename Check>
  Result<AppendResult> append_checked(const K& key, std::span<const E> events, Check check) {
    return append_impl(key, events,
                       [&](std::int32_t p, const storage::Log& log,
                           std::string_view k) -> storage::Log::AppendPrecondition {
                         detail::KeyIndex& index = indexes_->of(p);
                         return [&index, &log, k, &check](std::int64_t end) -> Result<void> {
                           auto s = index.lookup(log, k, end);
                           if (!s) return fail(std::move(s).error());
                           return check(*s, end);
                         };
                       });
  }

  // Appends `events` to `key`'s partition with the precondition that
  // precondition_for(partition, log, key bytes) returns (empty: none). The partition is
  // computed once, here, and both the precondition and the append get it: computed twice, an
  // add_partitions between the two could check the key's version in one partition and append
  // to another.
  template <typename MakePrecondition>
  Result<AppendResult> append_impl(const K& key, std::span<const E> events,
                                   MakePrecondition precondition_for) {
    if (topic_.deleted()) {
      return fail(ErrorCode::kNotFound, "topic '" + topic_.name() + "' was deleted");
    }
    if (events.empty()) return fail(ErrorCode::kInvalidArgument, "no events to append");
    std::string key_scratch;
    auto bytes = key_bytes(key, key_scratch);
    if (!bytes) return fail(std::move(bytes).error());
    const std::int32_t p = partition_for_key(*bytes, topic_.partitions());
    storage::Log& log = *topic_.log(p);
    std::vector<std::string> scratch(events.size());
    std::vector<storage::Record> records(events.size());
    for (std::size_t i = 0; i < events.size(); ++i) {
      auto v = serde::encode<E>(events[i], scratch[i]);
      if (!v) {
        return fail(ErrorCode::kInvalidArgument,
                    "serializing event " + std::to_string(i) + ": " + v.error().message());
      }
      records[i].key = *bytes;
      records[i].value = *v;
    }
    const storage::Log::AppendPrecondition precondition = precondition_for(p, log, *bytes);
    auto at = log.append_batch(records, precondition);
    if (!at) return fail(std::move(at).error());
    return AppendResult{p, at->offset, at->offset + at->count - 1, at->timestamp_ms};
  }

  Topic<K, E> topic_;
  std::shared_ptr<detail::KeyIndexes> indexes_;
};

}  // namespace rill::es
