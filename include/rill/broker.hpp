// rill/broker.hpp: the object that owns a data directory (or a stretch of memory): its topics,
// each topic's partitions and configuration, and the clock.
//
//   auto broker = rill::Broker::open("data");                  // or Broker::open_in_memory()
//   (*broker)->create_topic("orders", {.partitions = 8});
//   auto desc = (*broker)->describe_topic("orders");
//
// On disk, with Kafka's shape:
//   data/~lock                      flock(2)ed while a broker has the directory open; its pid
//                                   ('~' cannot appear in a topic name, so nothing collides)
//   data/orders/topic.conf          the topic's configuration (text, key=value)
//   data/orders/0/ ... data/orders/7/   one partition log each (see docs/format.md)
//
// Lifetime: a Broker must outlive the Producers, Consumers and ConsumerGroups made on it (they
// keep a pointer to it, as LevelDB's iterators do to their DB; a Consumer's destructor leaves
// its group through it). Topic handles may outlive it: its destructor closes every partition.
//
// Thread-safety: thread-safe. Topic administration (create, delete, add partitions) serialises
// on one mutex; producers and readers holding a topic handle never take it. A broker runs one
// background thread for all its partitions (storage::Background), unless
// BrokerOptions::background_thread is false: then that work, and everything else that falls
// due with time (group timeouts, retention by age), runs when run_due() is called, on the
// caller's thread. rill::testing::TestBroker (rill/testing.hpp) calls it each time it moves
// its ManualClock, so a test sees timeouts and retention fire at once and nothing races it.
#pragma once

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "rill/clock.hpp"
#include "rill/detail/mmap_file.hpp"
#include "rill/group/coordinator.hpp"
#include "rill/group/offset_store.hpp"
#include "rill/result.hpp"
#include "rill/storage/log.hpp"

namespace rill {

// What happens to old records (Kafka's cleanup.policy). kDelete: retention by size and time
// deletes old segments. kCompact: background compaction keeps the newest record of every key
// (storage::Log::compact); retention does not delete. kCompactDelete ("compact,delete"): both.
enum class CleanupPolicy { kDelete, kCompact, kCompactDelete };

inline bool compacts(CleanupPolicy p) noexcept { return p != CleanupPolicy::kDelete; }
inline bool deletes(CleanupPolicy p) noexcept { return p != CleanupPolicy::kCompact; }

// Partitions of one topic at most: the typed layer keeps a fixed table of this many slots per
// topic, so growing a topic never moves what concurrent producers are reading.
inline constexpr std::int32_t kMaxPartitions = 1024;

// A topic's configuration, named after Kafka's topic configs. Persisted in topic.conf.
struct TopicConfig {
  std::int32_t partitions = 1;
  std::size_t segment_bytes = 64u << 20;             // segment.bytes
  std::int64_t segment_ms = 7LL * 24 * 3600 * 1000;  // segment.ms
  std::int64_t retention_bytes = -1;                 // retention.bytes (per partition)
  // retention.ms. Kafka's default is 7 days; rill keeps everything unless told otherwise,
  // because an embedded log that silently drops week-old data is a nasty surprise.
  std::int64_t retention_ms = -1;
  CleanupPolicy cleanup_policy = CleanupPolicy::kDelete;  // cleanup.policy
  // delete.retention.ms: how long compaction keeps a key's newest tombstone after its
  // timestamp (storage::LogConfig::delete_retention_ms).
  std::int64_t delete_retention_ms = 24LL * 3600 * 1000;
  storage::Durability durability{};         // flush.messages / flush.ms
  std::size_t max_record_bytes = 1u << 20;  // max.message.bytes
  // The serde identities of the keys and values (set by Topic<K,V>; empty for raw bytes).
  std::string key_serde{};
  std::string value_serde{};
};

struct PartitionInfo {
  std::int32_t partition = 0;
  std::int64_t start_offset = 0;
  std::int64_t end_offset = 0;
  std::uint64_t size_bytes = 0;
  std::size_t segments = 0;
};

struct TopicDescription {
  std::string name;
  TopicConfig config;
  std::vector<PartitionInfo> partitions;
};

// A partition whose recovery on open was not clean (see storage::RecoveryReport).
struct PartitionRecovery {
  std::string topic;
  std::int32_t partition;
  storage::RecoveryReport report;
};

// Something the broker did or found that an operator may want in the application's log.
struct LogEvent {
  enum class Kind {
    kRecovery,      // a partition's recovery on open was not clean (see storage::RecoveryReport)
    kRetention,     // retention deleted segments of a partition
    kRebalance,     // a consumer group moved to a new generation
    kCommitFailed,  // an automatic commit failed where no caller gets the error (a rebalance)
  };
  Kind kind = Kind::kRecovery;
  std::string topic{};          // empty for kRebalance
  std::int32_t partition = -1;  // -1 for kRebalance
  std::uint64_t bytes = 0;      // kRecovery: bytes dropped; kRetention: bytes deleted
  std::string message{};        // one line for people
};

inline const char* to_string(LogEvent::Kind k) noexcept {
  switch (k) {
    case LogEvent::Kind::kRecovery:
      return "recovery";
    case LogEvent::Kind::kRetention:
      return "retention";
    case LogEvent::Kind::kRebalance:
      return "rebalance";
    case LogEvent::Kind::kCommitFailed:
      return "commit-failed";
  }
  return "?";
}

// Where LogEvents go. Called with no lock of rill's held (so it may call back into the broker),
// possibly from several threads at once (appenders, the background thread, group members):
// it must be thread-safe, and must not throw (on the background thread an exception ends the
// process). Keep it short: an appender may be the one calling it. Retention events may come
// from the broker's background thread: there, creating, deleting or growing topics (which
// open or close logs on that thread's task list) waits for the thread and deadlocks.
using LogSink = std::function<void(const LogEvent&)>;

struct BrokerOptions {
  // Where all time comes from: record timestamps, segment roll, retention, group timeouts.
  std::shared_ptr<Clock> clock{};
  // Pages to fault in ahead of each partition's appender (storage::LogConfig::prefault_bytes,
  // which says when 0 is the better choice).
  std::size_t prefault_bytes = 4u << 20;
  // Check every frame's CRC when reading (storage::LogConfig::verify_checksums).
  bool verify_checksums = true;
  // false: no background thread at all. Prefaulting, interval syncs and retention by age run
  // only in run_due() (and retention also after each roll, as always). For tests on a
  // ManualClock, where a thread acting on its own would race the test.
  bool background_thread = true;
  // Permissions of every file and directory the broker creates (topic directories,
  // topic.conf, segments, indexes, lock files), before the umask: owner-only by default.
  mode_t file_mode = detail::kDefaultFileMode;
  mode_t dir_mode = detail::kDefaultDirMode;
  // Recovery reports, retention deletions and group rebalances; empty (the default): silent.
  LogSink log_sink{};
};

// What Broker::run_due() did.
struct DueWork {
  std::size_t members_expired = 0;     // group members removed for missing their timeouts
  std::uint32_t segments_deleted = 0;  // by retention, over every partition
};

// Kafka's rule for topic names: 1 to 249 of [a-zA-Z0-9._-], and not "." or "..". Anything
// else, a path separator above all, is refused (kInvalidArgument).
inline Result<void> validate_topic_name(std::string_view name) {
  if (name.empty()) return fail(ErrorCode::kInvalidArgument, "topic name is empty");
  if (name.size() > 249) {
    return fail(ErrorCode::kInvalidArgument,
                "topic name is " + std::to_string(name.size()) + " characters; at most 249");
  }
  if (name == "." || name == "..") {
    return fail(ErrorCode::kInvalidArgument, "topic name cannot be \".\" or \"..\"");
  }
  for (const char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-';
    if (!ok) {
      std::string shown = (c >= 0x20 && c < 0x7f)
                              ? std::string("'") + c + "'"
                              : "byte " + std::to_string(static_cast<unsigned char>(c));
      return fail(ErrorCode::kInvalidArgument, "topic name \"" + std::string(name) +
                                                   "\" contains " + shown +
                                                   "; allowed: letters, digits, '.', '_', '-'");
    }
  }
  return {};
}

class Broker;

namespace detail {

inline storage::LogConfig log_config(const TopicConfig& t, const BrokerOptions& o,
                                     const std::shared_ptr<Clock>& clock,
                                     const std::shared_ptr<storage::Background>& background = {}) {
  storage::LogConfig c;
  c.segment_bytes = t.segment_bytes;
  c.segment_ms = t.segment_ms;
  c.max_record_bytes = t.max_record_bytes;
  c.retention_bytes = deletes(t.cleanup_policy) ? t.retention_bytes : -1;
  c.retention_ms = deletes(t.cleanup_policy) ? t.retention_ms : -1;
  c.compact = compacts(t.cleanup_policy);
  c.delete_retention_ms = t.delete_retention_ms;
  c.durability = t.durability;
  c.verify_checksums = o.verify_checksums;
  c.prefault_bytes = o.prefault_bytes;
  c.file_mode = o.file_mode;
  c.dir_mode = o.dir_mode;
  c.clock = clock;
  c.background = background;
  return c;
}

inline Result<void> validate_topic_config(const TopicConfig& t) {
  if (t.partitions < 1 || t.partitions > kMaxPartitions) {
    return fail(ErrorCode::kInvalidArgument, "partitions must be within [1, " +
                                                 std::to_string(kMaxPartitions) + "], got " +
                                                 std::to_string(t.partitions));
  }
  for (const auto* s : {&t.key_serde, &t.value_serde}) {
    if (s->find_first_of("\n\r=") != std::string::npos) {
      return fail(ErrorCode::kInvalidArgument, "a serde name may not contain newlines or '='");
    }
  }
  return storage::Log::validate_config(log_config(t, BrokerOptions{}, nullptr));
}

inline std::string durability_to_string(const storage::Durability& d) {
  using M = storage::Durability::Mode;
  switch (d.mode) {
    case M::kOsCache:
      return "os_cache";
    case M::kEveryRecords:
      return "every:" + std::to_string(d.every_records);
    case M::kInterval:
      return "interval:" + std::to_string(d.interval_ms);
    case M::kEveryAppend:
      return "every_append";
  }
  return "os_cache";
}

inline const char* cleanup_policy_name(CleanupPolicy p) noexcept {
  switch (p) {
    case CleanupPolicy::kCompact:
      return "compact";
    case CleanupPolicy::kCompactDelete:
      return "compact,delete";
    case CleanupPolicy::kDelete:
      break;
  }
  return "delete";
}

// A cleanup policy from its name as topic.conf (and the tool) spell it: cleanup_policy_name's
// names, and "delete,compact" for compact,delete. nullopt for anything else.
inline std::optional<CleanupPolicy> parse_cleanup_policy(std::string_view s) noexcept {
  if (s == "delete") return CleanupPolicy::kDelete;
  if (s == "compact") return CleanupPolicy::kCompact;
  if (s == "compact,delete" || s == "delete,compact") return CleanupPolicy::kCompactDelete;
  return std::nullopt;
}

// topic.conf: "# comment" lines and key=value lines; every key below must appear once, but
// delete_retention_ms (added with compaction) may be missing: it then takes its default.
inline std::string format_topic_config(const TopicConfig& t) {
  std::string out = "# rill topic configuration\nversion=1\n";
  auto line = [&](const char* k, const std::string& v) {
    out += k;
    out += '=';
    out += v;
    out += '\n';
  };
  line("partitions", std::to_string(t.partitions));
  line("segment_bytes", std::to_string(t.segment_bytes));
  line("segment_ms", std::to_string(t.segment_ms));
  line("retention_bytes", std::to_string(t.retention_bytes));
  line("retention_ms", std::to_string(t.retention_ms));
  line("cleanup_policy", cleanup_policy_name(t.cleanup_policy));
  line("delete_retention_ms", std::to_string(t.delete_retention_ms));
  line("durability", durability_to_string(t.durability));
  line("max_record_bytes", std::to_string(t.max_record_bytes));
  line("key_serde", t.key_serde);
  line("value_serde", t.value_serde);
  return out;
}

template <typename T>
bool parse_int(std::string_view s, T& out) {
  const char* end = s.data() + s.size();
  auto [p, ec] = std::from_chars(s.data(), end, out);
  return ec == std::errc() && p == end;
}

// Parses topic.conf; kCorruption naming the line for anything unexpected, then validates.
inline Result<TopicConfig> parse_topic_config(std::string_view text, const std::string& where) {
  TopicConfig t;
  std::map<std::string, std::string, std::less<>> kv;
  std::size_t line_no = 0;
  while (!text.empty()) {
    ++line_no;
    const auto nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    if (line.empty() || line[0] == '#') continue;
    const auto eq = line.find('=');
    if (eq == std::string_view::npos || eq == 0) {
      return fail(ErrorCode::kCorruption,
                  where + ":" + std::to_string(line_no) + ": expected key=value");
    }
    auto [it, inserted] =
        kv.emplace(std::string(line.substr(0, eq)), std::string(line.substr(eq + 1)));
    if (!inserted) {
      return fail(ErrorCode::kCorruption,
                  where + ":" + std::to_string(line_no) + ": duplicate key '" + it->first + "'");
    }
  }
  auto bad = [&](const std::string& key) {
    return fail(ErrorCode::kCorruption, where + ": missing or invalid '" + key + "'");
  };
  auto get = [&](const char* key) -> const std::string* {
    auto it = kv.find(key);
    return it == kv.end() ? nullptr : &it->second;
  };
  const std::string* v = get("version");
  if (v == nullptr || *v != "1") return bad("version");
  auto num = [&](const char* key, auto& field) -> bool {
    const std::string* s = get(key);
    return s != nullptr && parse_int(*s, field);
  };
  if (!num("partitions", t.partitions)) return bad("partitions");
  if (!num("segment_bytes", t.segment_bytes)) return bad("segment_bytes");
  if (!num("segment_ms", t.segment_ms)) return bad("segment_ms");
  if (!num("retention_bytes", t.retention_bytes)) return bad("retention_bytes");
  if (!num("retention_ms", t.retention_ms)) return bad("retention_ms");
  if (!num("max_record_bytes", t.max_record_bytes)) return bad("max_record_bytes");
  const std::string* policy = get("cleanup_policy");
  const std::optional<CleanupPolicy> parsed =
      policy != nullptr ? parse_cleanup_policy(*policy) : std::nullopt;
  if (!parsed) return bad("cleanup_policy");
  t.cleanup_policy = *parsed;
  const std::string* d = get("durability");
  if (d == nullptr) return bad("durability");
  if (*d == "os_cache") {
    t.durability = storage::Durability::os_cache();
  } else if (*d == "every_append") {
    t.durability = storage::Durability::every_append();
  } else if (d->rfind("every:", 0) == 0) {
    std::uint64_t n = 0;
    if (!parse_int(std::string_view(*d).substr(6), n)) return bad("durability");
    t.durability = storage::Durability::every(n);
  } else if (d->rfind("interval:", 0) == 0) {
    std::int64_t ms = 0;
    if (!parse_int(std::string_view(*d).substr(9), ms)) return bad("durability");
    t.durability = storage::Durability::interval(ms);
  } else {
    return bad("durability");
  }
  const std::string* ks = get("key_serde");
  const std::string* vs = get("value_serde");
  if (ks == nullptr) return bad("key_serde");
  if (vs == nullptr) return bad("value_serde");
  t.key_serde = *ks;
  t.value_serde = *vs;
  std::size_t keys = 11;
  if (get("delete_retention_ms") != nullptr) {
    if (!num("delete_retention_ms", t.delete_retention_ms)) return bad("delete_retention_ms");
    ++keys;
  }
  if (kv.size() != keys) {
    for (const auto& [k, unused] : kv) {
      static constexpr std::string_view known[] = {
          "version",          "partitions",   "segment_bytes",  "segment_ms",
          "retention_bytes",  "retention_ms", "cleanup_policy", "durability",
          "max_record_bytes", "key_serde",    "value_serde",    "delete_retention_ms"};
      if (std::find(std::begin(known), std::end(known), k) == std::end(known)) {
        return fail(ErrorCode::kCorruption, where + ": unknown key '" + k + "'");
      }
    }
  }
  auto valid = validate_topic_config(t);
  if (!valid) return fail(ErrorCode::kCorruption, where + ": " + valid.error().message());
  return t;
}

// Writes `bytes` to `path` so that a crash leaves either the old file or the new one: a
// temporary file, fsync, rename over, fsync of the directory. A failure before the rename
// removes the temporary file. `sync` false skips both fsyncs (undoing a failed write, when
// the disk is already failing them).
inline Result<void> write_file_atomically(const std::string& path, std::string_view bytes,
                                          mode_t mode = kDefaultFileMode, bool sync = true) {
  const std::string tmp = path + ".tmp";
  auto written = [&]() -> Result<void> {
    auto f = File::open(tmp, O_WRONLY | O_CREAT | O_TRUNC, mode);
    if (!f) return fail(std::move(f).error());
    RILL_TRY(f->pwrite_all(bytes.data(), bytes.size(), 0));
    if (sync) RILL_TRY(f->sync());
    return rename_path(tmp, path);
  }();
  if (!written) {
    ::unlink(tmp.c_str());
    return written;
  }
  if (!sync) return {};
  return sync_directory(std::filesystem::path(path).parent_path().string());
}

inline Result<std::string> read_small_file(const std::string& path) {
  auto f = File::open(path, O_RDONLY);
  if (!f) return fail(std::move(f).error());
  auto size = f->size();
  if (!size) return fail(std::move(size).error());
  if (*size > (1u << 20)) return fail(ErrorCode::kCorruption, path + ": larger than 1 MiB");
  std::string out(static_cast<std::size_t>(*size), '\0');
  std::size_t got = 0;
  while (got < out.size()) {
    const ssize_t n = ::pread(f->fd(), out.data() + got, out.size() - got, static_cast<off_t>(got));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return sys_error("pread", path, errno);
    if (n == 0) break;
    got += static_cast<std::size_t>(n);
  }
  out.resize(got);
  return out;
}

// One topic as the broker and every handle on it see it. The partition table is a fixed array
// of kMaxPartitions slots filled in order, and a count published with release: growing the
// topic never moves a slot, so handles read it without a lock.
class TopicState {
 public:
  TopicState(std::string name, TopicConfig config)
      : name_(std::move(name)),
        config_(std::move(config)),
        slots_(new std::atomic<storage::Log*>[kMaxPartitions]) {
    for (std::int32_t i = 0; i < kMaxPartitions; ++i) {
      slots_[static_cast<std::size_t>(i)].store(nullptr, std::memory_order_relaxed);
    }
  }

  const std::string& name() const noexcept { return name_; }
  // acquire: pairs with the release in add_partition; the slots below are filled.
  std::int32_t partition_count() const noexcept { return count_.load(std::memory_order_acquire); }
  // The partition's log, or nullptr when out of range. No lock.
  storage::Log* partition(std::int32_t p) const noexcept {
    if (p < 0 || p >= partition_count()) return nullptr;
    return slots_[static_cast<std::size_t>(p)].load(std::memory_order_relaxed);
  }
  bool deleted() const noexcept { return deleted_.load(std::memory_order_acquire); }

  // The configuration; REQUIRES the broker's mutex for the fields that may change
  // (partitions); key_serde and value_serde never change after creation.
  const TopicConfig& config() const noexcept { return config_; }

 private:
  friend class rill::Broker;

  // REQUIRES: the broker's mutex.
  void add_partition(std::unique_ptr<storage::Log> log) {
    const std::int32_t n = count_.load(std::memory_order_relaxed);
    slots_[static_cast<std::size_t>(n)].store(log.get(), std::memory_order_relaxed);
    logs_.push_back(std::move(log));
    // release: pairs with the acquire in partition_count(); the slot above is visible.
    count_.store(n + 1, std::memory_order_release);
  }

  const std::string name_;
  TopicConfig config_;
  std::unique_ptr<std::atomic<storage::Log*>[]> slots_;
  std::vector<std::unique_ptr<storage::Log>> logs_;
  std::atomic<std::int32_t> count_{0};
  std::atomic<bool> deleted_{false};
};

}  // namespace detail

class Broker {
 public:
  Broker(const Broker&) = delete;
  Broker& operator=(const Broker&) = delete;
  // Closes every partition log (storage::Log::close): Topic handles that outlive the broker
  // then fail their appends with kClosed, records they read stay valid while held, and the
  // data directory, its lock released with each partition's, can be opened again at once.
  // Producers, Consumers and ConsumerGroups keep a pointer to the broker: destroy them
  // first (see the lifetime note at the top of this header).
  ~Broker() {
    const std::vector<std::shared_ptr<detail::TopicState>> topics = all_topics();
    for (const auto& t : topics) {
      for (auto& log : t->logs_) log->close();
    }
  }

  // The lock file at the root of a data directory. Names with '~' are the broker's own:
  // topics cannot have one, and anything else starting with '~' is a leftover of an
  // interrupted create or delete, removed on open.
  static constexpr std::string_view kLockFile = "~lock";

  // Opens (creating if needed) the data directory `dir`, takes its lock and loads every topic,
  // recovering each partition (see recovery()). Errors: kLocked when another broker, in this
  // process or another, has it open (the message names the holder's pid); kCorruption for a
  // topic.conf that does not parse or validate; kIoError / kNoSpace from the file system.
  static Result<std::unique_ptr<Broker>> open(const std::string& dir, BrokerOptions options = {}) {
    RILL_TRY(detail::create_directories(dir, options.dir_mode));
    std::unique_ptr<Broker> b(new Broker(dir, std::move(options)));
    RILL_TRY(b->lock());
    RILL_TRY(b->load());
    if (b->options_.log_sink) {
      for (const auto& r : b->recovery_) {
        b->options_.log_sink(
            {LogEvent::Kind::kRecovery, r.topic, r.partition, r.report.dropped_bytes,
             r.topic + "-" + std::to_string(r.partition) + ": recovery dropped " +
                 std::to_string(r.report.dropped_bytes) + " bytes: " + r.report.detail});
      }
    }
    return b;
  }

  // A broker wholly in memory: the same code paths over anonymous mappings. Nothing is
  // persisted; no lock is taken. For tests and throw-away use.
  static Result<std::unique_ptr<Broker>> open_in_memory(BrokerOptions options = {}) {
    return std::unique_ptr<Broker>(new Broker(std::string(), std::move(options)));
  }

  // Creates a topic with `config.partitions` empty partitions. Errors: kInvalidArgument (name
  // or config), kAlreadyExists, kIoError / kNoSpace. A crash midway leaves no topic.
  Result<TopicDescription> create_topic(std::string_view name, const TopicConfig& config) {
    std::lock_guard lock(mu_);
    RILL_TRY(create_locked(name, config));
    return describe_locked(*topics_.find(name)->second);
  }

  // As create_topic, but an existing topic of that name is returned as it is (its own config,
  // whatever `config` says).
  Result<TopicDescription> create_topic_if_absent(std::string_view name,
                                                  const TopicConfig& config) {
    std::lock_guard lock(mu_);
    auto it = topics_.find(name);
    if (it == topics_.end()) {
      RILL_TRY(create_locked(name, config));
      it = topics_.find(name);
    }
    return describe_locked(*it->second);
  }

  // The topic's configuration and each partition's offsets and size. kNotFound if absent.
  Result<TopicDescription> describe_topic(std::string_view name) const {
    std::lock_guard lock(mu_);
    auto it = topics_.find(name);
    if (it == topics_.end()) return not_found(name);
    return describe_locked(*it->second);
  }

  // Names of all topics, sorted; internal ones ("__consumer_offsets") only when asked.
  std::vector<std::string> list_topics(bool include_internal = false) const {
    std::lock_guard lock(mu_);
    std::vector<std::string> out;
    for (const auto& [name, unused] : topics_) {
      if (include_internal || !is_internal_topic(name)) out.push_back(name);
    }
    return out;
  }

  // Topics whose names start with "__" are rill's own, as in Kafka.
  static bool is_internal_topic(std::string_view name) noexcept { return name.rfind("__", 0) == 0; }

  // The name of the internal topic holding committed offsets.
  static constexpr std::string_view kOffsetsTopic = "__consumer_offsets";

  // The committed offsets of every group (group/offset_store.hpp), loaded from the internal
  // topic on first use. Errors: creating or replaying that topic.
  Result<group::OffsetStore*> offset_store() const {
    std::lock_guard lock(groups_mu_);
    if (offsets_) return offsets_.get();
    Broker& self = const_cast<Broker&>(*this);
    TopicConfig c;
    c.partitions = 1;
    c.cleanup_policy = CleanupPolicy::kCompact;
    c.segment_bytes = 16u << 20;
    auto d = self.create_topic_if_absent(kOffsetsTopic, c);
    if (!d) return fail(std::move(d).error());
    auto state = topic_state(kOffsetsTopic);
    if (!state) return fail(std::move(state).error());
    auto store = group::OffsetStore::open((*state)->partition(0));
    if (!store) return fail(std::move(store).error());
    // Offsets of topics that no longer exist: delete_topic() forgets them, but a crash (or a
    // failed append) between deleting a topic and forgetting its offsets leaves them, and a
    // topic created later under the name would start from them.
    for (const std::string& topic : (*store)->topics()) {
      if (is_internal_topic(topic) || self.topic_state(topic)) continue;
      if (auto forgot = (*store)->delete_topic(topic); !forgot) {
        return fail(std::move(forgot).error());
      }
    }
    offsets_topic_ = std::move(*state);
    offsets_ = std::move(*store);
    return offsets_.get();
  }

  // The coordinator of a group, created on first use. kInvalidArgument for an empty id.
  Result<std::shared_ptr<group::GroupCoordinator>> group_coordinator(std::string_view group_id) {
    if (group_id.empty() || group_id.size() > 0xFFFF) {
      return fail(ErrorCode::kInvalidArgument, "a group id must be 1 to 65535 bytes");
    }
    auto store = offset_store();
    if (!store) return fail(std::move(store).error());
    std::lock_guard lock(groups_mu_);
    auto it = groups_.find(group_id);
    if (it != groups_.end()) return it->second;
    auto counter = [this](const std::string& topic) -> std::int32_t {
      auto st = topic_state(topic);
      return st && !(*st)->deleted() ? (*st)->partition_count() : 0;
    };
    auto c =
        std::make_shared<group::GroupCoordinator>(std::string(group_id), clock_, counter, *store);
    if (options_.log_sink) {
      c->set_rebalance_listener([sink = options_.log_sink](const std::string& what) {
        sink({LogEvent::Kind::kRebalance, {}, -1, 0, what});
      });
    }
    groups_.emplace(std::string(group_id), c);
    return c;
  }

  // Groups that have members now or committed offsets, sorted.
  std::vector<std::string> list_groups() const {
    std::vector<std::string> out;
    if (auto store = offset_store()) out = (*store)->groups();
    // has_members() may expire members and report a rebalance to the log sink, which may call
    // back into the broker's group functions: not under groups_mu_ (tests/group_test.cpp,
    // "a log sink may list groups when a rebalance is reported").
    std::vector<std::pair<std::string, std::shared_ptr<group::GroupCoordinator>>> groups;
    {
      std::lock_guard lock(groups_mu_);
      groups.assign(groups_.begin(), groups_.end());
    }
    for (const auto& [id, c] : groups) {
      if (c->has_members()) out.push_back(id);
    }
    std::sort(out.begin(), out.end());
    out.erase(std::unique(out.begin(), out.end()), out.end());
    return out;
  }

  // Compacts every partition of `topic` now (storage::Log::compact), one after another, and
  // returns a report per partition. Appends and reads go on meanwhile. Errors: kNotFound;
  // kInvalidArgument when the topic's cleanup policy does not compact (its readers expect
  // every record); a partition's error (the partitions before it stay compacted).
  Result<std::vector<storage::CompactionReport>> compact(std::string_view topic) {
    auto state = topic_state(topic);
    if (!state) return fail(std::move(state).error());
    if (!compacts((*state)->config().cleanup_policy)) {
      return fail(ErrorCode::kInvalidArgument,
                  "topic '" + std::string(topic) + "' has cleanup_policy=" +
                      detail::cleanup_policy_name((*state)->config().cleanup_policy) +
                      "; compaction needs compact or compact,delete");
    }
    std::vector<storage::CompactionReport> reports;
    for (std::int32_t p = 0; p < (*state)->partition_count(); ++p) {
      auto r = (*state)->partition(p)->compact();
      if (!r) return fail(std::move(r).error());
      reports.push_back(*r);
    }
    return reports;
  }

  // Deletes a topic and its data, and every group's committed offsets for it (as Kafka does:
  // a topic created again under the name starts without them). Handles on it see it as
  // deleted (their sends fail with kNotFound); records they already read stay valid while
  // they hold them; consumers move on to a topic created again under the name (consumer.hpp).
  // Errors: kNotFound if absent; kInvalidArgument for an internal topic; kIoError for the
  // files, with the topic unchanged; an error appending to the offsets topic, with the topic
  // deleted (its offsets are then forgotten when the broker next loads the offsets: see
  // offset_store(), which also covers a crash between the two steps).
  Result<void> delete_topic(std::string_view name) {
    RILL_TRY(delete_topic_data(name));
    // After the topic is gone and outside mu_ (offset_store() may create its topic). Only
    // when committed offsets can exist: a broker that never had groups keeps no store.
    bool has_store;
    {
      std::lock_guard lock(mu_);
      has_store = topics_.count(kOffsetsTopic) != 0;
    }
    if (!has_store) return {};
    auto store = offset_store();
    if (!store) return fail(std::move(store).error());
    return (*store)->delete_topic(name);
  }

 private:
  Result<void> delete_topic_data(std::string_view name) {
    if (is_internal_topic(name)) {
      return fail(ErrorCode::kInvalidArgument, "topic '" + std::string(name) + "' is internal");
    }
    std::lock_guard lock(mu_);
    auto it = topics_.find(name);
    if (it == topics_.end()) return not_found(name);
    std::shared_ptr<detail::TopicState> state = it->second;
    if (!dir_.empty()) {
      // Rename first, to a name no topic can have (and short whatever the topic's name), so a
      // crash leaves either the whole topic or a directory that the next open removes.
      const std::string from = dir_ + "/" + state->name();
      const std::string to = dir_ + "/~deleted-" + std::to_string(++staging_seq_);
      std::error_code ec;
      std::filesystem::remove_all(to, ec);
      RILL_TRY(detail::rename_path(from, to));
      if (auto synced = detail::sync_directory(dir_); !synced) {
        // The delete is not known to be durable: put the topic back and report the error,
        // so that a failed delete changes nothing (best effort: this is the error path).
        (void)::rename(to.c_str(), from.c_str());
        return fail(std::move(synced).error());
      }
      state->deleted_.store(true, std::memory_order_release);
      for (auto& log : state->logs_) log->close();
      std::filesystem::remove_all(to, ec);
    } else {
      state->deleted_.store(true, std::memory_order_release);
      for (auto& log : state->logs_) log->close();
    }
    topics_.erase(it);
    return {};
  }

 public:
  // Grows a topic to `total` partitions (Kafka allows only more: keys may then map to other
  // partitions). Errors: kNotFound; kInvalidArgument when total is not more than now or
  // exceeds kMaxPartitions.
  Result<TopicDescription> add_partitions(std::string_view name, std::int32_t total) {
    std::lock_guard lock(mu_);
    auto it = topics_.find(name);
    if (it == topics_.end()) return not_found(name);
    detail::TopicState& t = *it->second;
    const std::int32_t now = t.partition_count();
    if (total <= now || total > kMaxPartitions) {
      return fail(ErrorCode::kInvalidArgument,
                  "topic '" + t.name() + "' has " + std::to_string(now) +
                      " partitions; it can grow to at most " + std::to_string(kMaxPartitions) +
                      ", not to " + std::to_string(total));
    }
    TopicConfig next = t.config_;
    next.partitions = total;
    std::vector<std::unique_ptr<storage::Log>> logs;
    for (std::int32_t p = now; p < total; ++p) {
      auto log = open_partition(t.name(), p, next);
      if (!log) return fail(std::move(log).error());
      logs.push_back(std::move(*log));
    }
    // The config is the commit point: partitions beyond it are removed on the next open.
    if (!dir_.empty()) {
      auto written = detail::write_file_atomically(
          config_path(t.name()), detail::format_topic_config(next), options_.file_mode);
      if (!written) {
        // The rename may have happened before the directory's sync failed: put the old config
        // back, so a failed add_partitions changes nothing on disk either (best effort; not
        // synced, since syncs are what failed).
        (void)detail::write_file_atomically(config_path(t.name()),
                                            detail::format_topic_config(t.config_),
                                            options_.file_mode, false);
        return fail(std::move(written).error());
      }
    }
    t.config_.partitions = total;
    for (auto& log : logs) t.add_partition(std::move(log));
    return describe_locked(t);
  }

  // Syncs every partition of every topic to stable storage (storage::Log::flush).
  Result<void> flush() {
    const std::vector<std::shared_ptr<detail::TopicState>> topics = all_topics();
    for (const auto& t : topics) {
      for (std::int32_t p = 0; p < t->partition_count(); ++p) RILL_TRY(t->partition(p)->flush());
    }
    return {};
  }

  // Runs, now and on the calling thread, what falls due with the clock: removes group members
  // whose session timeout or max poll interval has passed (ringing the other members, who
  // take over their partitions at their next poll), applies retention to every partition,
  // and, with background_thread off, runs one round of the background work. Returns what it
  // did. Errors: a retention failure (kIoError); the rest still runs.
  // Cost: one lock per group and per partition; deletes files when retention does.
  Result<DueWork> run_due() {
    DueWork done;
    std::vector<std::shared_ptr<group::GroupCoordinator>> groups;
    {
      std::lock_guard lock(groups_mu_);
      for (const auto& [id, c] : groups_) groups.push_back(c);
    }
    for (const auto& c : groups) done.members_expired += c->expire();
    const std::vector<std::shared_ptr<detail::TopicState>> topics = all_topics();
    Result<void> result;
    for (const auto& t : topics) {
      for (std::int32_t p = 0; p < t->partition_count(); ++p) {
        auto r = t->partition(p)->enforce_retention();
        if (r) {
          done.segments_deleted += r->segments_deleted;
        } else if (result) {
          result = fail(std::move(r).error());
        }
      }
    }
    if (!options_.background_thread) background_->run_once();
    if (!result) return fail(std::move(result).error());
    return done;
  }

  // Partitions whose recovery on open was not clean, for the application to log.
  const std::vector<PartitionRecovery>& recovery() const noexcept { return recovery_; }

  Clock& clock() const noexcept { return *clock_; }
  const std::shared_ptr<Clock>& clock_ptr() const noexcept { return clock_; }
  const std::string& directory() const noexcept { return dir_; }
  bool in_memory() const noexcept { return dir_.empty(); }

  // Passes `e` to BrokerOptions::log_sink, if set. For the typed layer (a consumer's failed
  // automatic commit); call with no lock of rill's held, as the sink's contract says.
  void log_event(const LogEvent& e) const {
    if (options_.log_sink) options_.log_sink(e);
  }

  // The shared state of a topic, for the typed layer (Topic<K,V>). kNotFound if absent.
  Result<std::shared_ptr<detail::TopicState>> topic_state(std::string_view name) const {
    std::lock_guard lock(mu_);
    auto it = topics_.find(name);
    if (it == topics_.end()) return not_found(name);
    return it->second;
  }

 private:
  Broker(std::string dir, BrokerOptions options)
      : dir_(std::move(dir)), options_(std::move(options)) {
    clock_ = options_.clock ? options_.clock : SystemClock::instance();
    background_ = options_.background_thread
                      ? std::make_shared<storage::Background>()
                      : std::make_shared<storage::Background>(storage::Background::kManual);
  }

  // The topics now, taken under mu_ and used outside it.
  std::vector<std::shared_ptr<detail::TopicState>> all_topics() const {
    std::lock_guard lock(mu_);
    std::vector<std::shared_ptr<detail::TopicState>> out;
    for (const auto& [name, t] : topics_) out.push_back(t);
    return out;
  }

  static Unexpected not_found(std::string_view name) {
    return fail(ErrorCode::kNotFound, "topic '" + std::string(name) + "' does not exist");
  }

  std::string topic_dir(const std::string& name) const { return dir_ + "/" + name; }
  std::string config_path(const std::string& name) const { return topic_dir(name) + "/topic.conf"; }

  Result<std::unique_ptr<storage::Log>> open_partition(const std::string& topic, std::int32_t p,
                                                       const TopicConfig& config,
                                                       const std::string& base = {}) {
    auto cfg = detail::log_config(config, options_, clock_, background_);
    if (options_.log_sink) {
      cfg.on_retention = [sink = options_.log_sink, topic, p](const storage::RetentionReport& r) {
        sink({LogEvent::Kind::kRetention, topic, p, r.bytes_deleted,
              topic + "-" + std::to_string(p) + ": retention deleted " +
                  std::to_string(r.segments_deleted) + " segment(s), " +
                  std::to_string(r.bytes_deleted) + " bytes; log starts at offset " +
                  std::to_string(r.start_offset)});
      };
    }
    if (dir_.empty()) return storage::Log::open_in_memory(cfg);
    const std::string tdir = base.empty() ? topic_dir(topic) : base;
    RILL_TRY(detail::refuse_symlink(tdir));  // never followed out of the data directory
    RILL_TRY(detail::refuse_symlink(tdir + "/" + std::to_string(p)));
    return storage::Log::open(tdir + "/" + std::to_string(p), cfg);
  }

  // REQUIRES: mu_.
  Result<void> create_locked(std::string_view name, const TopicConfig& config) {
    RILL_TRY(validate_topic_name(name));
    RILL_TRY(detail::validate_topic_config(config));
    if (topics_.count(name) != 0) {
      return fail(ErrorCode::kAlreadyExists, "topic '" + std::string(name) + "' already exists");
    }
    const std::string n(name);
    auto state = std::make_shared<detail::TopicState>(n, config);
    if (dir_.empty()) {
      for (std::int32_t p = 0; p < config.partitions; ++p) {
        auto log = open_partition(n, p, config);
        if (!log) return fail(std::move(log).error());
        state->add_partition(std::move(*log));
      }
    } else {
      // Built under a name no topic can have, then renamed into place: a crash midway leaves
      // a "~creating-N" directory that the next open removes.
      const std::string staging = dir_ + "/~creating-" + std::to_string(++staging_seq_);
      std::error_code ec;
      std::filesystem::remove_all(staging, ec);
      auto cleanup = [&] { std::filesystem::remove_all(staging, ec); };
      if (auto made = detail::create_directories(staging, options_.dir_mode); !made) {
        cleanup();
        return fail(std::move(made).error());
      }
      auto written = detail::write_file_atomically(
          staging + "/topic.conf", detail::format_topic_config(config), options_.file_mode);
      if (!written) {
        cleanup();
        return fail(std::move(written).error());
      }
      for (std::int32_t p = 0; p < config.partitions; ++p) {
        auto made =
            detail::create_directories(staging + "/" + std::to_string(p), options_.dir_mode);
        if (!made) {
          cleanup();
          return fail(std::move(made).error());
        }
      }
      if (auto moved = detail::rename_path(staging, topic_dir(n)); !moved) {
        cleanup();
        return fail(std::move(moved).error());
      }
      auto opened = [&]() -> Result<void> {
        RILL_TRY(detail::sync_directory(dir_));
        for (std::int32_t p = 0; p < config.partitions; ++p) {
          auto log = open_partition(n, p, config);
          if (!log) return fail(std::move(log).error());
          state->add_partition(std::move(*log));
        }
        return {};
      }();
      if (!opened) {
        // A failed create leaves no topic: move it out of the way, as delete_topic does, so the
        // next open does not find a topic that create_topic said it did not make
        // (tests/disk_full_test.cpp). Best effort: this is already the error path.
        state.reset();
        const std::string trash = dir_ + "/~deleted-" + std::to_string(++staging_seq_);
        if (::rename(topic_dir(n).c_str(), trash.c_str()) == 0) {
          std::filesystem::remove_all(trash, ec);
          (void)detail::sync_directory(dir_);
        }
        return fail(std::move(opened).error());
      }
    }
    topics_.emplace(n, std::move(state));
    return {};
  }

  TopicDescription describe_locked(const detail::TopicState& t) const {
    TopicDescription d;
    d.name = t.name();
    d.config = t.config_;
    for (std::int32_t p = 0; p < t.partition_count(); ++p) {
      const storage::Log& log = *t.partition(p);
      d.partitions.push_back(
          {p, log.start_offset(), log.end_offset(), log.size_bytes(), log.segment_count()});
    }
    return d;
  }

  Result<void> lock() {
    const std::string path = dir_ + "/" + std::string(kLockFile);
    auto f = detail::File::open(path, O_RDWR | O_CREAT, options_.file_mode);
    if (!f) return fail(std::move(f).error());
    if (::flock(f->fd(), LOCK_EX | LOCK_NB) != 0) {
      char holder[32] = {};
      const ssize_t n = ::pread(f->fd(), holder, sizeof holder - 1, 0);
      std::string who = n > 0 ? std::string(holder, static_cast<std::size_t>(n)) : "unknown";
      while (!who.empty() && (who.back() == '\n' || who.back() == '\0')) who.pop_back();
      return fail(ErrorCode::kLocked,
                  "data directory " + dir_ + " is in use by another broker (pid " + who + ")");
    }
    const std::string pid = std::to_string(::getpid()) + "\n";
    RILL_TRY(f->truncate(0));
    RILL_TRY(f->pwrite_all(pid.data(), pid.size(), 0));
    lock_file_ = std::move(*f);
    return {};
  }

  Result<void> load() {
    namespace fs = std::filesystem;
    std::error_code ec;
    std::vector<std::string> names;
    // Every filesystem call here takes an error_code: the throwing forms (range-for's
    // increment, is_directory(), exists()) let a filesystem_error out of open(), or ended a
    // -fno-exceptions process, for a directory entry that cannot be examined (EACCES).
    const auto listing_failed = [&](const std::string& what) {
      return fail(ErrorCode::kIoError, "listing " + what + ": " + ec.message());
    };
    for (fs::directory_iterator it(dir_, ec), end; !ec && it != end; it.increment(ec)) {
      const fs::directory_entry& entry = *it;
      const std::string name = entry.path().filename().string();
      if (name.front() == '~' && name != kLockFile) {
        std::error_code ignored;
        fs::remove_all(entry.path(), ignored);  // an interrupted create or delete
        continue;
      }
      if (!validate_topic_name(name).has_value()) continue;
      if (entry.is_symlink(ec)) {
        // A link named like a topic could lead out of the data directory: refuse, never follow.
        return detail::refuse_symlink(entry.path().string());
      }
      if (ec) return listing_failed(entry.path().string());
      const bool is_dir = entry.is_directory(ec);
      if (ec) return listing_failed(entry.path().string());
      if (!is_dir) continue;
      const bool has_config = fs::exists(entry.path() / "topic.conf", ec);
      if (ec) return listing_failed(entry.path().string());
      if (has_config) names.push_back(name);
    }
    if (ec) return listing_failed(dir_);
    for (const auto& name : names) {
      const std::string path = config_path(name);
      auto text = detail::read_small_file(path);
      if (!text) return fail(std::move(text).error());
      auto config = detail::parse_topic_config(*text, path);
      if (!config) return fail(std::move(config).error());
      auto state = std::make_shared<detail::TopicState>(name, *config);
      for (std::int32_t p = 0; p < config->partitions; ++p) {
        auto log = open_partition(name, p, *config);
        if (!log) return fail(std::move(log).error());
        if (!(*log)->recovery().clean()) recovery_.push_back({name, p, (*log)->recovery()});
        state->add_partition(std::move(*log));
      }
      // Partitions past the config's count: an add_partitions that crashed before its commit
      // (topic.conf) left them, and nothing was ever written to them. One that holds records
      // did not come from there (a topic.conf restored from an old backup, or edited): it is
      // not deleted, and the broker does not open (it deleted them, records and all, before).
      std::vector<std::int32_t> extra;
      for (fs::directory_iterator it(topic_dir(name), ec), end; !ec && it != end;
           it.increment(ec)) {
        std::int32_t p = 0;
        const std::string f = it->path().filename().string();
        if (detail::parse_int(f, p) && p >= config->partitions && it->is_directory(ec)) {
          extra.push_back(p);
        }
      }
      if (ec) return listing_failed(topic_dir(name));
      for (const std::int32_t p : extra) {
        const std::string pdir = topic_dir(name) + "/" + std::to_string(p);
        std::int64_t records = 0;
        {
          auto log = open_partition(name, p, *config);
          if (!log) return fail(std::move(log).error());
          records = (*log)->end_offset();
        }
        if (records != 0) {
          return fail(ErrorCode::kCorruption,
                      pdir + " holds records (offsets up to " + std::to_string(records) + ") but " +
                          config_path(name) + " says the topic has " +
                          std::to_string(config->partitions) +
                          " partitions: restore its partition count, or move the directory "
                          "away");
        }
        fs::remove_all(pdir, ec);
        if (ec) return fail(ErrorCode::kIoError, "removing " + pdir + ": " + ec.message());
      }
      topics_.emplace(name, std::move(state));
    }
    return {};
  }

  const std::string dir_;
  BrokerOptions options_;
  std::shared_ptr<Clock> clock_;
  // One thread for every partition's background work (prefaulting, interval syncs, retention);
  // a manual one (no thread, run by run_due()) when options_.background_thread is false.
  std::shared_ptr<storage::Background> background_;
  detail::File lock_file_;
  std::vector<PartitionRecovery> recovery_;
  mutable std::mutex mu_;
  std::uint64_t staging_seq_ = 0;  // guarded by mu_
  std::map<std::string, std::shared_ptr<detail::TopicState>, std::less<>> topics_;

  // Consumer groups: guarded by groups_mu_ (taken before mu_, never after).
  mutable std::mutex groups_mu_;
  mutable std::shared_ptr<detail::TopicState> offsets_topic_;
  mutable std::unique_ptr<group::OffsetStore> offsets_;
  std::map<std::string, std::shared_ptr<group::GroupCoordinator>, std::less<>> groups_;
};

}  // namespace rill
