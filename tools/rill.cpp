// rill: the command-line tool over a rill data directory (docs/tool.md is its manual).
//
//   rill -d DIR topics | describe | create | delete | add-partitions
//   rill -d DIR produce | consume | dump | groups ... | verify | retention | compact | stats
//
// Commands that only read (topics, describe, consume without --group, dump, groups list and
// describe, verify, stats) open the directory read-only (rill::BrokerView): no lock, no
// writes, safe while the application runs. Commands that change something open it as a
// rill::Broker and fail with exit code 4 while the application holds it.
//
// Exit codes: 0 ok, 1 usage error, 2 not found (directory, topic, partition, group, segment),
// 3 corruption (damage found by verify, or met while reading), 4 directory locked by a
// running broker, 5 invalid argument or out of range (a bad offset, producing to an internal
// topic, compacting a topic whose policy does not compact), 6 I/O or other error, 7 not
// supported (a format version this build does not read).
//
// CLI11 and nlohmann-json may throw: that is fine here (tools only), never in include/.
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <iostream>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "rill/broker_view.hpp"
#include "rill/rill.hpp"
#include "rill/stats.hpp"
#include "rill/storage/log_reader.hpp"

namespace {

using json = nlohmann::ordered_json;

enum Exit : int {
  kExitOk = 0,
  kExitUsage = 1,
  kExitNotFound = 2,
  kExitCorruption = 3,
  kExitLocked = 4,
  kExitInvalid = 5,
  kExitError = 6,
  kExitUnsupported = 7,
};

// Thrown by command code, caught in main: the message goes to stderr, the code is the exit.
struct Failure {
  int code;
  std::string message;
};

int exit_code(rill::ErrorCode c) {
  switch (c) {
    case rill::ErrorCode::kNotFound:
      return kExitNotFound;
    case rill::ErrorCode::kCorruption:
      return kExitCorruption;
    case rill::ErrorCode::kLocked:
      return kExitLocked;
    case rill::ErrorCode::kInvalidArgument:
    case rill::ErrorCode::kOutOfRange:
    case rill::ErrorCode::kRecordTooLarge:
    case rill::ErrorCode::kAlreadyExists:
      return kExitInvalid;
    case rill::ErrorCode::kUnsupported:
      return kExitUnsupported;
    default:
      return kExitError;
  }
}

template <typename T>
T take(rill::Result<T> r) {
  if (!r) throw Failure{exit_code(r.error().code()), r.error().to_string()};
  return std::move(*r);
}
void take(rill::Result<void> r) {
  if (!r) throw Failure{exit_code(r.error().code()), r.error().to_string()};
}

std::atomic<bool> g_stop{false};
extern "C" void on_signal(int) { g_stop.store(true, std::memory_order_relaxed); }

struct Globals {
  std::string dir;
  bool json = false;
};

std::string iso_time(std::int64_t ms) {
  if (ms < 0) return "-";
  const std::time_t s = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&s, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(ms % 1000));
  return buf;
}

json opt_ts(std::int64_t ms) { return ms < 0 ? json(nullptr) : json(ms); }

void print_json(const json& j) {
  std::cout << j.dump(2, ' ', false, json::error_handler_t::replace) << "\n";
}

void require_dir(const std::string& dir) {
  struct stat st;
  if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    throw Failure{kExitNotFound, "data directory " + dir + " does not exist"};
  }
}

std::unique_ptr<rill::BrokerView> open_view(const Globals& g) {
  return take(rill::BrokerView::open(g.dir));
}

// A writable broker: fails with exit code 4 while an application has the directory open.
// background: false for a command whose report must say all that was done (compact: the
// background thread's own compaction could otherwise run first and leave it nothing).
std::unique_ptr<rill::Broker> open_broker(const Globals& g, bool must_exist = true,
                                          bool background = true) {
  if (must_exist) require_dir(g.dir);
  rill::BrokerOptions o;
  o.prefault_bytes = 0;  // a short-lived tool: no background prefaulting
  o.background_thread = background;
  o.log_sink = [](const rill::LogEvent& e) {
    if (e.kind == rill::LogEvent::Kind::kRebalance) return;  // the tool's own joins: noise
    std::fprintf(stderr, "rill: %s: %s\n", rill::to_string(e.kind), e.message.c_str());
  };
  auto b = rill::Broker::open(g.dir, o);
  if (!b && b.error().code() == rill::ErrorCode::kLocked) {
    throw Failure{kExitLocked,
                  b.error().to_string() + "\n(stop the application, or use a read-only command)"};
  }
  return take(std::move(b));
}

// --- topics, describe ----------------------------------------------------------------------

struct PartitionSummary {
  rill::PartitionInfo info;
  std::int64_t oldest_ms = -1;
  std::int64_t newest_ms = -1;
};

std::vector<PartitionSummary> summarize(rill::BrokerView& view, const std::string& topic) {
  const auto d = take(view.describe_topic(topic));
  std::vector<PartitionSummary> out;
  for (const auto& p : d.partitions) {
    PartitionSummary s{p};
    if (auto r = view.partition(topic, p.partition)) {
      s.oldest_ms = (*r)->oldest_timestamp_ms();
      s.newest_ms = (*r)->newest_timestamp_ms();
    }
    out.push_back(s);
  }
  return out;
}

json topic_summary_json(const std::string& name, const std::vector<PartitionSummary>& parts) {
  std::int64_t records = 0;
  std::uint64_t bytes = 0;
  std::int64_t oldest = -1;
  std::int64_t newest = -1;
  for (const auto& p : parts) {
    records += p.info.end_offset - p.info.start_offset;
    bytes += p.info.size_bytes;
    if (p.oldest_ms >= 0 && (oldest < 0 || p.oldest_ms < oldest)) oldest = p.oldest_ms;
    newest = std::max(newest, p.newest_ms);
  }
  return json{{"name", name},
              {"partitions", parts.size()},
              {"records", records},
              {"bytes", bytes},
              {"oldest_timestamp_ms", opt_ts(oldest)},
              {"newest_timestamp_ms", opt_ts(newest)}};
}

int cmd_topics(const Globals& g, bool all) {
  auto view = open_view(g);
  json topics = json::array();
  for (const auto& name : view->list_topics(all)) {
    topics.push_back(topic_summary_json(name, summarize(*view, name)));
  }
  if (g.json) {
    print_json(json{{"topics", topics}});
    return kExitOk;
  }
  std::printf("%-30s %10s %12s %14s  %-24s  %-24s\n", "TOPIC", "PARTITIONS", "RECORDS", "BYTES",
              "OLDEST", "NEWEST");
  for (const auto& t : topics) {
    std::printf(
        "%-30s %10d %12lld %14llu  %-24s  %-24s\n", t["name"].get<std::string>().c_str(),
        t["partitions"].get<int>(), static_cast<long long>(t["records"].get<std::int64_t>()),
        static_cast<unsigned long long>(t["bytes"].get<std::uint64_t>()),
        iso_time(t["oldest_timestamp_ms"].is_null() ? -1
                                                    : t["oldest_timestamp_ms"].get<std::int64_t>())
            .c_str(),
        iso_time(t["newest_timestamp_ms"].is_null() ? -1
                                                    : t["newest_timestamp_ms"].get<std::int64_t>())
            .c_str());
  }
  return kExitOk;
}

json config_json(const rill::TopicConfig& c) {
  return json{{"partitions", c.partitions},
              {"segment_bytes", c.segment_bytes},
              {"segment_ms", c.segment_ms},
              {"retention_bytes", c.retention_bytes},
              {"retention_ms", c.retention_ms},
              {"cleanup_policy", rill::detail::cleanup_policy_name(c.cleanup_policy)},
              {"delete_retention_ms", c.delete_retention_ms},
              {"durability", rill::detail::durability_to_string(c.durability)},
              {"max_record_bytes", c.max_record_bytes},
              {"key_serde", c.key_serde},
              {"value_serde", c.value_serde}};
}

int print_description(const Globals& g, const rill::TopicDescription& d,
                      const std::vector<PartitionSummary>& parts) {
  json j{{"name", d.name}, {"config", config_json(d.config)}, {"partitions", json::array()}};
  for (const auto& p : parts) {
    j["partitions"].push_back({{"partition", p.info.partition},
                               {"start_offset", p.info.start_offset},
                               {"end_offset", p.info.end_offset},
                               {"records", p.info.end_offset - p.info.start_offset},
                               {"segments", p.info.segments},
                               {"bytes", p.info.size_bytes},
                               {"oldest_timestamp_ms", opt_ts(p.oldest_ms)},
                               {"newest_timestamp_ms", opt_ts(p.newest_ms)}});
  }
  if (g.json) {
    print_json(j);
    return kExitOk;
  }
  std::printf("Topic: %s\n", d.name.c_str());
  for (const auto& [k, v] : j["config"].items()) {
    std::printf("  %-18s %s\n", k.c_str(),
                v.is_string() ? v.get<std::string>().c_str() : v.dump().c_str());
  }
  std::printf("%10s %14s %14s %10s %14s  %-24s  %-24s\n", "PARTITION", "START", "END", "SEGMENTS",
              "BYTES", "OLDEST", "NEWEST");
  for (const auto& p : parts) {
    std::printf("%10d %14lld %14lld %10zu %14llu  %-24s  %-24s\n", p.info.partition,
                static_cast<long long>(p.info.start_offset),
                static_cast<long long>(p.info.end_offset), p.info.segments,
                static_cast<unsigned long long>(p.info.size_bytes), iso_time(p.oldest_ms).c_str(),
                iso_time(p.newest_ms).c_str());
  }
  return kExitOk;
}

int cmd_describe(const Globals& g, const std::string& topic) {
  auto view = open_view(g);
  const auto parts = summarize(*view, topic);
  return print_description(g, take(view->describe_topic(topic)), parts);
}

// --- create, delete, add-partitions ----------------------------------------------------------

struct CreateArgs {
  std::string topic;
  std::int32_t partitions = 1;
  std::size_t segment_bytes = 64u << 20;
  std::int64_t retention_bytes = -1;
  std::int64_t retention_ms = -1;
  std::string cleanup_policy = "delete";
  std::optional<std::int64_t> delete_retention_ms;  // unset: TopicConfig's default
};

// --cleanup-policy's values, the spellings topic.conf accepts.
rill::CleanupPolicy parse_cleanup_policy(const std::string& s) {
  if (const auto p = rill::detail::parse_cleanup_policy(s)) return *p;
  throw Failure{kExitUsage,
                "--cleanup-policy wants delete, compact or compact,delete, got '" + s + "'"};
}

int describe_after_change(const Globals& g, const std::string& topic) {
  auto view = open_view(g);
  const auto parts = summarize(*view, topic);
  return print_description(g, take(view->describe_topic(topic)), parts);
}

int cmd_create(const Globals& g, const CreateArgs& a) {
  {
    auto broker = open_broker(g, false);
    rill::TopicConfig c;
    c.partitions = a.partitions;
    c.segment_bytes = a.segment_bytes;
    // The default max record size (1 MiB) cannot exceed a small segment.
    if (a.segment_bytes > rill::storage::kFileHeaderSize) {
      c.max_record_bytes = std::min(
          c.max_record_bytes, (a.segment_bytes - rill::storage::kFileHeaderSize) & ~std::size_t{7});
    }
    c.retention_bytes = a.retention_bytes;
    c.retention_ms = a.retention_ms;
    c.cleanup_policy = parse_cleanup_policy(a.cleanup_policy);
    if (a.delete_retention_ms) c.delete_retention_ms = *a.delete_retention_ms;
    take(broker->create_topic(a.topic, c));
  }
  return describe_after_change(g, a.topic);
}

int cmd_delete(const Globals& g, const std::string& topic) {
  auto broker = open_broker(g);
  take(broker->delete_topic(topic));
  if (g.json) {
    print_json(json{{"deleted", topic}});
  } else {
    std::printf("deleted topic %s\n", topic.c_str());
  }
  return kExitOk;
}

int cmd_add_partitions(const Globals& g, const std::string& topic, std::int32_t total) {
  {
    auto broker = open_broker(g);
    take(broker->add_partitions(topic, total));
  }
  return describe_after_change(g, topic);
}

// --- produce -------------------------------------------------------------------------------

struct ProduceArgs {
  std::string topic;
  std::string key_separator;
  std::vector<std::string> headers;
  std::int32_t partition = -1;  // -1: by key, round-robin without one
};

int cmd_produce(const Globals& g, const ProduceArgs& a) {
  // Internal topics hold rill's own records (committed offsets, in group/offset_store.hpp's
  // format): a line appended there is replayed as a commit, and one that does not decode
  // fails every group's offset store with kCorruption from then on.
  if (rill::Broker::is_internal_topic(a.topic)) {
    throw Failure{kExitInvalid, "topic '" + a.topic +
                                    "' is internal (its records are rill's own): the tool does "
                                    "not produce to it"};
  }
  auto broker = open_broker(g);
  auto state = take(broker->topic_state(a.topic));
  std::vector<std::pair<std::string, std::string>> header_strings;
  for (const auto& h : a.headers) {
    const auto eq = h.find('=');
    if (eq == std::string::npos || eq == 0) {
      throw Failure{kExitUsage, "--header wants name=value, got '" + h + "'"};
    }
    header_strings.emplace_back(h.substr(0, eq), h.substr(eq + 1));
  }
  std::vector<rill::storage::Header> headers;
  for (const auto& [n, v] : header_strings) headers.push_back({n, std::string_view(v)});
  const std::int32_t partitions = state->partition_count();
  if (a.partition >= partitions) {
    throw Failure{kExitInvalid, "topic '" + a.topic + "' has " + std::to_string(partitions) +
                                    " partition(s); there is no partition " +
                                    std::to_string(a.partition)};
  }
  json produced = json::array();
  std::int64_t count = 0;
  // Unsigned: it wraps after 2^32 keyless lines instead of overflowing (undefined, and then a
  // negative partition); a wrap only restarts the cycle.
  std::uint32_t round_robin = 0;
  // What was appended before a failing line stays appended: say how much, then fail.
  auto report = [&](const std::string* error) {
    if (g.json) {
      json j{{"topic", a.topic}, {"records", count}, {"produced", produced}};
      if (error != nullptr) j["error"] = *error;
      print_json(j);
    } else {
      std::fprintf(stderr, "produced %lld record(s) to %s%s\n", static_cast<long long>(count),
                   a.topic.c_str(), error != nullptr ? " before the error below" : "");
    }
  };
  std::string line;
  while (std::getline(std::cin, line)) {
    // A line ending in CRLF (a file from Windows): the '\r' belongs to the line break.
    if (!line.empty() && line.back() == '\r') line.pop_back();
    rill::storage::Record r;
    std::string_view value = line;
    if (!a.key_separator.empty()) {
      const auto at = line.find(a.key_separator);
      if (at != std::string::npos) {
        r.key = std::string_view(line).substr(0, at);
        value = std::string_view(line).substr(at + a.key_separator.size());
      }
    }
    r.value = value;
    r.headers = headers;
    std::int32_t p = a.partition;
    if (p < 0) {
      p = r.key ? rill::partition_for_key(*r.key, partitions)
                : static_cast<std::int32_t>(round_robin++ % static_cast<std::uint32_t>(partitions));
    }
    auto info = state->partition(p)->append(r);
    if (!info) {
      const std::string error =
          "line " + std::to_string(count + 1) + ": " + info.error().to_string();
      report(&error);
      throw Failure{exit_code(info.error().code()), error};
    }
    ++count;
    if (g.json) produced.push_back({{"partition", p}, {"offset", info->offset}});
  }
  report(nullptr);
  return kExitOk;
}

// --- consume -------------------------------------------------------------------------------

struct ConsumeArgs {
  std::string topic;
  std::int32_t partition = -1;
  bool from_end = false;
  std::optional<std::int64_t> offset;
  std::optional<std::int64_t> timestamp_ms;
  std::int64_t count = -1;
  bool follow = false;
  std::string group;
  bool print_key = false;
  bool print_meta = false;
  std::string key_separator = "\t";
  std::int64_t poll_ms = 10;
};

struct Printed {
  std::int32_t partition;
  std::int64_t offset;
  std::int64_t timestamp_ms;
  std::optional<std::string_view> key;
  std::optional<std::string_view> value;
  std::vector<std::pair<std::string_view, std::optional<std::string_view>>> headers;
};

void print_record(const Globals& g, const ConsumeArgs& a, const Printed& r) {
  if (g.json) {
    json h = json::array();
    for (const auto& [n, v] : r.headers) {
      h.push_back({{"name", n}, {"value", v ? json(*v) : json(nullptr)}});
    }
    json j{{"topic", a.topic},
           {"partition", r.partition},
           {"offset", r.offset},
           {"timestamp_ms", r.timestamp_ms},
           {"key", r.key ? json(*r.key) : json(nullptr)},
           {"value", r.value ? json(*r.value) : json(nullptr)},
           {"headers", h}};
    std::cout << j.dump(-1, ' ', false, json::error_handler_t::replace) << "\n";
    return;
  }
  if (a.print_meta) {
    std::cout << a.topic << "-" << r.partition << "@" << r.offset << " " << iso_time(r.timestamp_ms)
              << " ";
  }
  if (a.print_key) std::cout << (r.key ? *r.key : std::string_view()) << a.key_separator;
  std::cout << (r.value ? *r.value : std::string_view()) << "\n";
}

int consume_as_group(const Globals& g, const ConsumeArgs& a) {
  auto broker = open_broker(g);
  rill::ConsumerConfig c;
  c.group_id = a.group;
  c.client_id = "rill-tool";
  c.enable_auto_commit = false;
  c.auto_offset_reset = a.from_end ? rill::OffsetReset::kLatest : rill::OffsetReset::kEarliest;
  rill::Consumer<std::string, std::string> consumer(*broker, c);
  take(consumer.subscribe({a.topic}));
  std::int64_t printed = 0;
  while (!g_stop.load(std::memory_order_relaxed) && (a.count < 0 || printed < a.count)) {
    auto records = take(consumer.poll(std::chrono::milliseconds(a.follow ? a.poll_ms * 10 : 500)));
    if (records.empty() && !a.follow) break;
    std::map<rill::group::TopicPartition, rill::group::OffsetAndMetadata> done;
    for (const auto& r : records) {
      if (a.count >= 0 && printed >= a.count) break;
      Printed p{r.partition, r.offset, r.timestamp_ms, std::nullopt, r.value, {}};
      if (r.key) p.key = *r.key;
      print_record(g, a, p);
      ++printed;
      done[{std::string(r.topic), r.partition}] = {r.offset + 1, {}, 0};
    }
    std::cout.flush();
    if (!done.empty()) take(consumer.commit(done));
  }
  take(consumer.close());
  return kExitOk;
}

int cmd_consume(const Globals& g, const ConsumeArgs& a) {
  if (!a.group.empty()) return consume_as_group(g, a);
  auto view = open_view(g);
  const auto d = take(view->describe_topic(a.topic));
  std::vector<std::int32_t> parts;
  if (a.partition >= 0) {
    take(view->partition(a.topic, a.partition));
    parts.push_back(a.partition);
  } else {
    for (const auto& p : d.partitions) parts.push_back(p.partition);
  }
  std::map<std::int32_t, std::int64_t> pos;
  auto reader = [&](std::int32_t p) -> rill::storage::LogReader* {
    auto r = view->partition(a.topic, p);
    if (!r && r.error().code() == rill::ErrorCode::kNotFound) return nullptr;  // no segment yet
    return take(std::move(r));
  };
  for (const std::int32_t p : parts) {
    auto* r = reader(p);
    std::int64_t at = r ? r->start_offset() : 0;
    if (r && a.from_end) at = r->end_offset();
    if (r && a.timestamp_ms) at = r->offset_for_time(*a.timestamp_ms).value_or(r->end_offset());
    if (a.offset) {
      at = *a.offset;
      const std::int64_t start = r ? r->start_offset() : 0;
      const std::int64_t end = r ? r->end_offset() : 0;
      if (at < start || at > end) {
        throw Failure{kExitInvalid, a.topic + "-" + std::to_string(p) + ": offset " +
                                        std::to_string(at) + " is outside [" +
                                        std::to_string(start) + ", " + std::to_string(end) + "]"};
      }
    }
    pos[p] = at;
  }
  std::int64_t printed = 0;
  while (!g_stop.load(std::memory_order_relaxed) && (a.count < 0 || printed < a.count)) {
    bool any = false;
    bool behind = false;
    for (const std::int32_t p : parts) {
      auto* r = reader(p);
      if (r == nullptr) continue;
      auto batch = r->read(pos[p], 500);
      if (!batch && batch.error().code() == rill::ErrorCode::kOutOfRange &&
          pos[p] < r->start_offset()) {
        std::fprintf(stderr, "rill: %s-%d: offsets %lld to %lld were deleted by retention\n",
                     a.topic.c_str(), p, static_cast<long long>(pos[p]),
                     static_cast<long long>(r->start_offset() - 1));
        pos[p] = r->start_offset();
        any = true;
        continue;
      }
      const auto got = take(std::move(batch));
      bool whole = true;  // every record of the batch printed
      for (const auto& rec : got) {
        if (a.count >= 0 && printed >= a.count) {
          whole = false;
          break;
        }
        Printed out{p, rec.offset(), rec.timestamp_ms(), rec.key(), rec.value(), {}};
        for (const auto h : rec.headers()) out.headers.emplace_back(h.name, h.value);
        print_record(g, a, out);
        ++printed;
        pos[p] = rec.offset() + 1;
        any = true;
      }
      // Past the batch's end, compacted gaps included: a batch with no records may still
      // move, and a position kept at its last record spun here for good.
      if (whole && got.next_offset() > pos[p]) {
        pos[p] = got.next_offset();
        any = true;
      }
      behind = behind || pos[p] < r->end_offset();
    }
    std::cout.flush();
    if (any || behind) continue;
    if (!a.follow) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(a.poll_ms));
    take(view->refresh());
  }
  return kExitOk;
}

// --- dump ----------------------------------------------------------------------------------

// What `dump` prints of each batch and record: kafka-dump-log's fields, rill's names.
struct DumpOptions {
  std::optional<std::uint64_t> only_segment;
  bool print_values = false;  // keys and values too
  bool batches_only = false;  // no record lines
};

std::string size_or_null(const std::optional<std::string_view>& v) {
  return v ? std::to_string(v->size()) : std::string("-1");
}

// One record of a dumped batch: a JSON object, or a "| offset: ..." line.
void dump_record(const Globals& g, const DumpOptions& o, const rill::storage::RecordView& r,
                 json* records) {
  if (g.json) {
    json j{{"offset", r.offset()},
           {"timestamp_ms", r.timestamp_ms()},
           {"key_size", r.key() ? json(r.key()->size()) : json(nullptr)},
           {"value_size", r.value() ? json(r.value()->size()) : json(nullptr)},
           {"headers", r.headers().size()}};
    if (o.print_values) {
      j["key"] = r.key() ? json(*r.key()) : json(nullptr);
      j["value"] = r.value() ? json(*r.value()) : json(nullptr);
    }
    records->push_back(std::move(j));
    return;
  }
  std::cout << "| offset: " << r.offset() << " timestamp: " << r.timestamp_ms()
            << " keySize: " << size_or_null(r.key()) << " valueSize: " << size_or_null(r.value())
            << " headerKeys: [";
  bool first = true;
  for (const auto h : r.headers()) {
    std::cout << (first ? "" : ",") << h.name;
    first = false;
  }
  std::cout << "]";
  if (o.print_values) {
    std::cout << " key: " << (r.key() ? *r.key() : "null")
              << " payload: " << (r.value() ? *r.value() : "null");
  }
  std::cout << "\n";
}

// One batch: a JSON object with its records, or a batch line followed by record lines.
void dump_batch(const Globals& g, const DumpOptions& o, const rill::storage::DumpedBatch& b,
                const char* damage, json* batches) {
  const auto& h = b.header;
  json records = json::array();
  if (!g.json) {
    std::cout << "baseOffset: " << h.base_offset << " lastOffset: " << b.last_offset()
              << " count: " << h.count << " position: " << b.position
              << " baseTimestamp: " << h.base_timestamp_ms
              << " maxTimestamp: " << h.max_timestamp_ms << " size: " << h.size
              << " compacted: " << (b.compacted() ? "true" : "false") << " crc: " << h.crc
              << " isvalid: " << (b.valid ? "true" : "false");
    if (!b.valid) std::cout << " reason: " << damage;
    std::cout << "\n";
  }
  if (b.valid && !o.batches_only) {
    auto it = b.records();
    for (rill::storage::RecordView r; it.next(&r);) dump_record(g, o, r, &records);
  }
  if (!g.json) return;
  json j{{"position", b.position},
         {"base_offset", h.base_offset},
         {"last_offset", b.last_offset()},
         {"count", h.count},
         {"base_timestamp_ms", h.base_timestamp_ms},
         {"max_timestamp_ms", h.max_timestamp_ms},
         {"size", h.size},
         {"compacted", b.compacted()},
         {"crc", h.crc},
         {"valid", b.valid}};
  if (!b.valid) j["reason"] = damage;
  if (!o.batches_only) j["records"] = std::move(records);
  batches->push_back(std::move(j));
}

int cmd_dump(const Globals& g, const std::string& topic, std::int32_t partition,
             const DumpOptions& o) {
  auto view = open_view(g);
  take(view->partition(topic, partition));  // the topic and partition exist
  const std::string dir = g.dir + "/" + topic + "/" + std::to_string(partition);
  const auto bases = take(rill::storage::list_segment_bases(dir));
  if (o.only_segment && std::find(bases.begin(), bases.end(), *o.only_segment) == bases.end()) {
    throw Failure{kExitNotFound, topic + "-" + std::to_string(partition) +
                                     " has no segment with base offset " +
                                     std::to_string(*o.only_segment)};
  }
  json segments = json::array();
  bool damaged = false;
  for (const std::uint64_t base : bases) {
    if (o.only_segment && *o.only_segment != base) continue;
    json batches = json::array();
    if (!g.json) {
      std::cout << "Dumping " << dir << "/" << rill::storage::segment_file_name(base, ".log")
                << "\n";
    }
    // The walk's reason for stopping is known after it; an invalid batch comes last.
    std::optional<rill::storage::DumpedBatch> invalid;
    const auto d =
        take(rill::storage::dump_segment(dir, base, [&](const rill::storage::DumpedBatch& b) {
          if (b.valid) {
            dump_batch(g, o, b, nullptr, &batches);
          } else {
            invalid = b;
          }
        }));
    damaged = damaged || d.damage != nullptr;
    if (invalid) {
      dump_batch(g, o, *invalid, d.damage, &batches);
    } else if (d.damage && !g.json) {  // not even a header there
      std::cout << "position: " << d.end_position << " isvalid: false reason: " << d.damage << "\n";
    }
    json s{{"base_offset", d.base_offset},
           {"created_ms", d.created_ms},
           {"file_bytes", d.file_bytes},
           {"batch_count", d.batches},
           {"record_count", d.records},
           {"end_position", d.end_position},
           {"end_offset", d.end_offset},
           {"damage", d.damage ? json(d.damage) : json(nullptr)},
           {"trailing_nonzero_bytes", d.trailing_nonzero_bytes}};
    if (g.json) {
      s["batches"] = std::move(batches);
      segments.push_back(std::move(s));
    } else {
      std::cout << "segment " << base << ": " << d.batches << " batch(es), " << d.records
                << " record(s), batches end at position " << d.end_position << " of "
                << d.file_bytes << "\n";
    }
  }
  if (g.json) print_json(json{{"topic", topic}, {"partition", partition}, {"segments", segments}});
  return damaged ? kExitCorruption : kExitOk;
}

// --- groups --------------------------------------------------------------------------------

int cmd_groups_list(const Globals& g) {
  auto view = open_view(g);
  const auto* all = take(view->committed_offsets());
  json groups = json::array();
  for (const auto& [id, unused] : *all) groups.push_back(id);
  if (g.json) {
    print_json(json{{"groups", groups}});
  } else {
    for (const auto& id : groups) std::printf("%s\n", id.get<std::string>().c_str());
  }
  return kExitOk;
}

int cmd_groups_describe(const Globals& g, const std::string& group) {
  auto view = open_view(g);
  const auto* all = take(view->committed_offsets());
  if (all->find(group) == all->end()) {
    throw Failure{kExitNotFound, "group '" + group + "' has no committed offsets"};
  }
  const auto lag = take(view->group_lag(group));
  json parts = json::array();
  std::int64_t total = 0;
  for (const auto& l : lag) {
    parts.push_back({{"topic", l.partition.topic},
                     {"partition", l.partition.partition},
                     {"committed", l.committed ? json(*l.committed) : json(nullptr)},
                     {"end_offset", l.end_offset},
                     {"lag", l.lag}});
    total += l.lag;
  }
  if (g.json) {
    print_json(json{{"group", group}, {"total_lag", total}, {"partitions", parts}});
    return kExitOk;
  }
  std::printf("%-30s %10s %14s %14s %10s\n", "TOPIC", "PARTITION", "COMMITTED", "END", "LAG");
  for (const auto& l : lag) {
    std::printf("%-30s %10d %14s %14lld %10lld\n", l.partition.topic.c_str(), l.partition.partition,
                l.committed ? std::to_string(*l.committed).c_str() : "-",
                static_cast<long long>(l.end_offset), static_cast<long long>(l.lag));
  }
  std::printf("total lag: %lld\n", static_cast<long long>(total));
  return kExitOk;
}

struct ResetArgs {
  std::string group;
  std::string topic;
  bool to_earliest = false;
  bool to_latest = false;
  std::optional<std::int64_t> to_offset;
  std::optional<std::int64_t> to_timestamp;
};

int cmd_groups_reset(const Globals& g, const ResetArgs& a) {
  rill::OffsetResetSpec spec = rill::OffsetResetSpec::earliest();
  if (a.to_latest) spec = rill::OffsetResetSpec::latest();
  if (a.to_offset) spec = rill::OffsetResetSpec::to_offset(*a.to_offset);
  if (a.to_timestamp) spec = rill::OffsetResetSpec::to_timestamp(*a.to_timestamp);
  {
    auto broker = open_broker(g);
    rill::ConsumerGroup group(*broker, a.group);
    take(group.reset_offsets(a.topic, spec));
  }
  return cmd_groups_describe(g, a.group);
}

int cmd_groups_delete(const Globals& g, const std::string& group_id) {
  auto broker = open_broker(g);
  const auto groups = rill::ConsumerGroup::list(*broker);
  if (std::find(groups.begin(), groups.end(), group_id) == groups.end()) {
    throw Failure{kExitNotFound, "group '" + group_id + "' does not exist"};
  }
  rill::ConsumerGroup group(*broker, group_id);
  take(group.delete_group());
  if (g.json) {
    print_json(json{{"deleted", group_id}});
  } else {
    std::printf("deleted group %s\n", group_id.c_str());
  }
  return kExitOk;
}

// --- verify, retention, compact, stats -----------------------------------------------------

// A progress bar on stderr, only when stderr is a terminal.
class Progress {
 public:
  Progress(std::uint64_t total, bool enabled) : total_(total), on_(enabled && ::isatty(2) == 1) {}
  void update(std::uint64_t done, const std::string& what) {
    if (!on_ || total_ == 0) return;
    const int width = 30;
    const int filled = static_cast<int>(std::min<std::uint64_t>(done, total_) * width / total_);
    std::fprintf(stderr, "\r[%s%s] %3d%% %-40.40s",
                 std::string(static_cast<std::size_t>(filled), '#').c_str(),
                 std::string(static_cast<std::size_t>(width - filled), ' ').c_str(),
                 static_cast<int>(std::min<std::uint64_t>(done, total_) * 100 / total_),
                 what.c_str());
  }
  ~Progress() {
    if (on_ && total_ != 0) std::fprintf(stderr, "\r%80s\r", "");
  }

 private:
  std::uint64_t total_;
  bool on_;
};

std::vector<std::string> topics_or_all(rill::BrokerView& view,
                                       const std::vector<std::string>& topics) {
  if (!topics.empty()) {
    for (const auto& t : topics) take(view.describe_topic(t));  // each exists
    return topics;
  }
  return view.list_topics(true);
}

int cmd_verify(const Globals& g, const std::vector<std::string>& only) {
  auto view = open_view(g);
  const auto topics = topics_or_all(*view, only);
  std::vector<std::pair<std::string, std::string>> dirs;  // name, directory
  std::uint64_t total = 0;
  for (const auto& t : topics) {
    const auto d = take(view->describe_topic(t));
    for (const auto& p : d.partitions) {
      const std::string dir = g.dir + "/" + t + "/" + std::to_string(p.partition);
      dirs.emplace_back(t + "-" + std::to_string(p.partition), dir);
      if (auto bases = rill::storage::list_segment_bases(dir)) {
        for (const auto b : *bases) {
          struct stat st;
          const std::string f = dir + "/" + rill::storage::segment_file_name(b, ".log");
          if (::stat(f.c_str(), &st) == 0) total += static_cast<std::uint64_t>(st.st_size);
        }
      }
    }
  }
  Progress bar(total, !g.json);
  std::uint64_t done = 0;
  std::uint64_t problems = 0;
  std::uint64_t records = 0;
  json parts = json::array();
  for (const auto& [name, dir] : dirs) {
    const std::uint64_t before = done;
    // verify_log checks a segment that looks damaged again before reporting it: the writer
    // may be swapping in a compacted copy, rolling or deleting it right now.
    auto check = rill::storage::verify_log(
        dir, [&, n = name](std::uint64_t bytes) { bar.update(before + bytes, n); });
    json j{{"partition", name}};
    if (!check) {
      if (check.error().code() != rill::ErrorCode::kNotFound) {
        ++problems;
        j["problems"] = json::array({check.error().to_string()});
      }
      parts.push_back(j);
      continue;
    }
    done += check->bytes;
    records += check->records;
    problems += check->problems.size();
    j["segments"] = check->segments;
    j["records"] = check->records;
    j["bytes"] = check->bytes;
    j["problems"] = check->problems;
    parts.push_back(std::move(j));
  }
  if (g.json) {
    print_json(json{{"ok", problems == 0},
                    {"records", records},
                    {"problems", problems},
                    {"partitions", parts}});
  } else {
    for (const auto& p : parts) {
      if (p["problems"].empty()) {
        std::printf("%s: ok (%llu segment(s), %llu record(s))\n",
                    p["partition"].get<std::string>().c_str(),
                    static_cast<unsigned long long>(p.value("segments", 0u)),
                    static_cast<unsigned long long>(p.value("records", std::uint64_t{0})));
      }
      for (const auto& m : p["problems"]) {
        std::printf("%s: DAMAGE: %s\n", p["partition"].get<std::string>().c_str(),
                    m.get<std::string>().c_str());
      }
    }
    std::printf("verified %zu partition(s), %llu record(s): %llu problem(s)\n", dirs.size(),
                static_cast<unsigned long long>(records),
                static_cast<unsigned long long>(problems));
  }
  return problems == 0 ? kExitOk : kExitCorruption;
}

int cmd_retention(const Globals& g, const std::vector<std::string>& only) {
  auto broker = open_broker(g);
  std::vector<std::string> topics = only.empty() ? broker->list_topics(false) : only;
  json out = json::array();
  for (const auto& t : topics) {
    auto state = take(broker->topic_state(t));
    for (std::int32_t p = 0; p < state->partition_count(); ++p) {
      const auto r = take(state->partition(p)->enforce_retention());
      out.push_back({{"topic", t},
                     {"partition", p},
                     {"segments_deleted", r.segments_deleted},
                     {"bytes_deleted", r.bytes_deleted},
                     {"start_offset", r.start_offset}});
      if (!g.json) {
        std::printf("%s-%d: deleted %u segment(s), %llu bytes; starts at offset %lld\n", t.c_str(),
                    p, r.segments_deleted, static_cast<unsigned long long>(r.bytes_deleted),
                    static_cast<long long>(r.start_offset));
      }
    }
  }
  if (g.json) print_json(json{{"partitions", out}});
  return kExitOk;
}

// Compacts the topics named, or every topic (internal ones included) whose cleanup policy
// compacts. A named topic that is missing (exit 2) or whose policy does not compact (exit 5:
// its readers expect every record) fails the command before any topic is compacted.
int cmd_compact(const Globals& g, const std::vector<std::string>& only) {
  auto broker = open_broker(g, true, false);
  std::vector<std::string> topics;
  for (const auto& t : only.empty() ? broker->list_topics(true) : only) {
    const rill::CleanupPolicy policy = take(broker->topic_state(t))->config().cleanup_policy;
    if (rill::compacts(policy)) {
      topics.push_back(t);
    } else if (!only.empty()) {
      throw Failure{kExitInvalid, "topic '" + t + "' has cleanup_policy=" +
                                      rill::detail::cleanup_policy_name(policy) +
                                      ": only compact or compact,delete topics are compacted"};
    }
  }
  json out = json::array();
  for (const auto& t : topics) {
    const auto reports = take(broker->compact(t));
    for (std::size_t p = 0; p < reports.size(); ++p) {
      const auto& r = reports[p];
      out.push_back({{"topic", t},
                     {"partition", p},
                     {"segments_examined", r.segments_examined},
                     {"segments_rewritten", r.segments_rewritten},
                     {"records_before", r.records_before},
                     {"records_after", r.records_after},
                     {"bytes_before", r.bytes_before},
                     {"bytes_after", r.bytes_after},
                     {"tombstones_dropped", r.tombstones_dropped},
                     {"keys", r.keys},
                     {"end_offset", r.end_offset}});
      if (!g.json) {
        std::printf(
            "%s-%zu: rewrote %u of %u sealed segment(s); records %llu -> %llu, bytes %llu -> "
            "%llu; %llu tombstone(s) dropped; %llu key(s) below offset %lld\n",
            t.c_str(), p, r.segments_rewritten, r.segments_examined,
            static_cast<unsigned long long>(r.records_before),
            static_cast<unsigned long long>(r.records_after),
            static_cast<unsigned long long>(r.bytes_before),
            static_cast<unsigned long long>(r.bytes_after),
            static_cast<unsigned long long>(r.tombstones_dropped),
            static_cast<unsigned long long>(r.keys), static_cast<long long>(r.end_offset));
      }
    }
  }
  if (g.json) {
    print_json(json{{"partitions", out}});
  } else if (topics.empty()) {
    std::printf("no topic's cleanup policy compacts: nothing to do\n");
  }
  return kExitOk;
}

int cmd_stats(const Globals& g) {
  auto view = open_view(g);
  const auto s = take(view->stats());
  json parts = json::array();
  for (const auto& p : s.partitions) {
    parts.push_back({{"topic", p.topic},
                     {"partition", p.partition},
                     {"start_offset", p.start_offset},
                     {"end_offset", p.end_offset},
                     {"segments", p.segments},
                     {"bytes", p.size_bytes}});
  }
  json groups = json::array();
  for (const auto& gs : s.groups)
    groups.push_back({{"group", gs.group_id}, {"total_lag", gs.total_lag}});
  if (g.json) {
    print_json(json{{"partitions", parts}, {"groups", groups}});
    return kExitOk;
  }
  for (const auto& p : s.partitions) {
    std::printf("%s-%d start %lld end %lld segments %zu bytes %llu\n", p.topic.c_str(), p.partition,
                static_cast<long long>(p.start_offset), static_cast<long long>(p.end_offset),
                p.segments, static_cast<unsigned long long>(p.size_bytes));
  }
  for (const auto& gs : s.groups) {
    std::printf("group %s lag %lld\n", gs.group_id.c_str(), static_cast<long long>(gs.total_lag));
  }
  return kExitOk;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"rill: inspect and administer a rill data directory (see docs/tool.md)", "rill"};
  app.fallthrough();
  app.require_subcommand(1);
  Globals g;
  app.add_option("-d,--dir", g.dir, "the data directory (or $RILL_DIR)")
      ->envname("RILL_DIR")
      ->required();
  app.add_flag("--json", g.json, "output JSON for scripts instead of text");
  app.footer(
      "Exit codes: 0 ok, 1 usage, 2 not found, 3 corruption, 4 directory locked by a running "
      "broker, 5 invalid argument or out of range, 6 I/O or other error, 7 not supported (a "
      "format version).");

  std::function<int()> run;

  bool all = false;
  auto* topics =
      app.add_subcommand("topics", "list topics: partitions, records, bytes, timestamps");
  topics->add_flag("--all", all, "include internal topics (__consumer_offsets)");
  topics->callback([&] { run = [&] { return cmd_topics(g, all); }; });

  std::string topic;
  auto* describe = app.add_subcommand("describe", "a topic's config and partitions");
  describe->add_option("topic", topic, "topic name")->required();
  describe->callback([&] { run = [&] { return cmd_describe(g, topic); }; });

  CreateArgs create_args;
  auto* create = app.add_subcommand("create", "create a topic (needs the directory unlocked)");
  create->add_option("topic", create_args.topic, "topic name")->required();
  create->add_option("-p,--partitions", create_args.partitions, "partitions")
      ->capture_default_str();
  create->add_option("--segment-bytes", create_args.segment_bytes, "segment size")
      ->capture_default_str();
  create->add_option("--retention-bytes", create_args.retention_bytes, "per partition, -1: none")
      ->capture_default_str();
  create->add_option("--retention-ms", create_args.retention_ms, "-1: keep forever")
      ->capture_default_str();
  create
      ->add_option("--cleanup-policy", create_args.cleanup_policy,
                   "delete, compact, or compact,delete (both)")
      ->check(CLI::IsMember({"delete", "compact", "compact,delete", "delete,compact"}))
      ->capture_default_str();
  create
      ->add_option("--delete-retention-ms", create_args.delete_retention_ms,
                   "how long compaction keeps a key's newest tombstone (default: 1 day)")
      ->check(CLI::Range(std::int64_t{0}, std::numeric_limits<std::int64_t>::max()));
  create->callback([&] { run = [&] { return cmd_create(g, create_args); }; });

  auto* del = app.add_subcommand("delete", "delete a topic and its data");
  del->add_option("topic", topic, "topic name")->required();
  del->callback([&] { run = [&] { return cmd_delete(g, topic); }; });

  std::int32_t total = 0;
  auto* addp = app.add_subcommand("add-partitions", "grow a topic to --total partitions");
  addp->add_option("topic", topic, "topic name")->required();
  addp->add_option("--total", total, "partitions afterwards")->required();
  addp->callback([&] { run = [&] { return cmd_add_partitions(g, topic, total); }; });

  ProduceArgs produce_args;
  auto* produce = app.add_subcommand("produce", "append one record per line of standard input");
  produce->add_option("topic", produce_args.topic, "topic name")->required();
  produce->add_option("-K,--key-separator", produce_args.key_separator,
                      "split each line into key and value at the first SEP (lines without it "
                      "get no key)");
  produce->add_option("-H,--header", produce_args.headers, "name=value, for every record");
  produce
      ->add_option("-p,--partition", produce_args.partition,
                   "target partition (default, or -1: by key, murmur2; round-robin without key)")
      ->check(CLI::Range(-1, std::numeric_limits<std::int32_t>::max()));
  produce->callback([&] { run = [&] { return cmd_produce(g, produce_args); }; });

  ConsumeArgs consume_args;
  auto* consume = app.add_subcommand("consume", "print records of a topic");
  consume->add_option("topic", consume_args.topic, "topic name")->required();
  auto* consume_partition = consume
                                ->add_option("-p,--partition", consume_args.partition,
                                             "one partition (default, or -1: all)")
                                ->check(CLI::Range(-1, std::numeric_limits<std::int32_t>::max()));
  auto* from_end = consume->add_flag("--from-end", consume_args.from_end,
                                     "start at the end (default: the beginning)");
  auto* offset = consume->add_option("-o,--offset", consume_args.offset, "start at this offset");
  auto* ts = consume->add_option("--timestamp", consume_args.timestamp_ms,
                                 "start at the first record with timestamp >= MS");
  from_end->excludes(offset)->excludes(ts);
  offset->excludes(ts);
  consume->add_option("-n,--count", consume_args.count, "stop after N records (default: no limit)")
      ->check(CLI::Range(std::int64_t{0}, std::numeric_limits<std::int64_t>::max()));
  consume->add_flag("-f,--follow", consume_args.follow, "keep tailing new records");
  // A member starts where its group committed, on the partitions the group assigns it.
  consume
      ->add_option("-g,--group", consume_args.group,
                   "consume as a member of this group and commit (needs the directory "
                   "unlocked; string keys and values; not with -p, -o, --timestamp)")
      ->excludes(consume_partition)
      ->excludes(offset)
      ->excludes(ts);
  consume->add_flag("--print-key", consume_args.print_key, "print key, separator, value");
  consume->add_flag("--print-meta", consume_args.print_meta,
                    "prefix topic-partition@offset and timestamp");
  consume->add_option("--key-separator", consume_args.key_separator, "default: a tab");
  // Above 0 (0 spun a CPU), bounded so that the group poll's 10 * MS cannot overflow.
  consume
      ->add_option("--poll-ms", consume_args.poll_ms,
                   "how often --follow looks for records, 1 to 60000")
      ->check(CLI::Range(std::int64_t{1}, std::int64_t{60000}))
      ->capture_default_str();
  consume->callback([&] { run = [&] { return cmd_consume(g, consume_args); }; });

  std::int32_t partition = 0;
  DumpOptions dump_options;
  auto* dump = app.add_subcommand(
      "dump", "a partition's segments batch by batch and record by record, CRC-checked");
  dump->add_option("topic", topic, "topic name")->required();
  dump->add_option("partition", partition, "partition")
      ->required()
      ->check(CLI::Range(0, std::numeric_limits<std::int32_t>::max()));
  dump->add_option("--segment", dump_options.only_segment,
                   "only the segment with this base offset");
  dump->add_flag("--print-values", dump_options.print_values, "print keys and values too");
  dump->add_flag("--batches-only", dump_options.batches_only, "no line per record");
  dump->callback([&] { run = [&] { return cmd_dump(g, topic, partition, dump_options); }; });

  auto* groups = app.add_subcommand("groups", "consumer groups: list, describe, reset, delete");
  groups->require_subcommand(1);
  groups->add_subcommand("list", "groups with committed offsets")->callback([&] {
    run = [&] { return cmd_groups_list(g); };
  });
  std::string group;
  auto* gdesc = groups->add_subcommand("describe", "committed offset, end and lag per partition");
  gdesc->add_option("group", group, "group id")->required();
  gdesc->callback([&] { run = [&] { return cmd_groups_describe(g, group); }; });
  ResetArgs reset_args;
  auto* greset = groups->add_subcommand("reset", "move a group's committed offsets (no members)");
  greset->add_option("group", reset_args.group, "group id")->required();
  greset->add_option("-t,--topic", reset_args.topic, "topic")->required();
  auto* r1 = greset->add_flag("--to-earliest", reset_args.to_earliest);
  auto* r2 = greset->add_flag("--to-latest", reset_args.to_latest);
  auto* r3 = greset->add_option("--to-offset", reset_args.to_offset);
  auto* r4 = greset->add_option("--to-timestamp", reset_args.to_timestamp);
  r1->excludes(r2)->excludes(r3)->excludes(r4);
  r2->excludes(r3)->excludes(r4);
  r3->excludes(r4);
  greset->callback([&] {
    if (!reset_args.to_earliest && !reset_args.to_latest && !reset_args.to_offset &&
        !reset_args.to_timestamp) {
      throw CLI::ValidationError("reset",
                                 "one of --to-earliest, --to-latest, --to-offset, "
                                 "--to-timestamp is required");
    }
    run = [&] { return cmd_groups_reset(g, reset_args); };
  });
  auto* gdel = groups->add_subcommand("delete", "forget a group's committed offsets");
  gdel->add_option("group", group, "group id")->required();
  gdel->callback([&] { run = [&] { return cmd_groups_delete(g, group); }; });

  std::vector<std::string> only;
  auto* verify = app.add_subcommand("verify", "check every segment and index; exit 3 on damage");
  verify->add_option("topics", only, "topics (default: all)");
  verify->callback([&] { run = [&] { return cmd_verify(g, only); }; });

  auto* retention = app.add_subcommand("retention", "apply retention now");
  retention->add_option("topics", only, "topics (default: all)");
  retention->callback([&] { run = [&] { return cmd_retention(g, only); }; });

  auto* compact = app.add_subcommand(
      "compact",
      "compact topics now: keep each key's newest record (needs the directory unlocked)");
  compact->add_option("topics", only,
                      "topics (default: every topic whose cleanup policy compacts)");
  compact->callback([&] { run = [&] { return cmd_compact(g, only); }; });

  app.add_subcommand("stats", "offsets, segments and bytes per partition; lag per group")
      ->callback([&] { run = [&] { return cmd_stats(g); }; });

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? kExitOk : kExitUsage;
  }
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
  try {
    return run();
  } catch (const Failure& f) {
    std::fprintf(stderr, "rill: error: %s\n", f.message.c_str());
    return f.code;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "rill: error: %s\n", e.what());
    return kExitError;
  }
}
