// The fuzz target for a topic's configuration file: the input is the text of a topic.conf,
// placed in a data directory that a Broker then opens.
//
// Invariants: the file parses, or Broker::open refuses it with kCorruption (and never
// crashes); a config that parses is valid, prints back to a text that parses to the same
// config (a fixed point), and the broker opens the topic with exactly that config, takes a
// record on each partition and reopens clean. Configs too big for a scratch disk (more than 4
// partitions or 256 KiB segments) are checked by the parser and printer only.
//
// Shared by topic_conf_fuzz.cpp (libFuzzer) and tests/fuzz_targets_replay_test.cpp.
#pragma once

#include <sys/stat.h>

#include <cstdint>
#include <string>
#include <vector>

#include "fuzz_util.hpp"
#include "rill/broker.hpp"

namespace rill_fuzz {

class TopicConfHarness {
 public:
  explicit TopicConfHarness(std::string dir) : dir_(std::move(dir)) { ::mkdir(dir_.c_str(), 0700); }
  ~TopicConfHarness() {
    remove_tree_contents(dir_);
    ::rmdir(dir_.c_str());
  }
  TopicConfHarness(const TopicConfHarness&) = delete;
  TopicConfHarness& operator=(const TopicConfHarness&) = delete;

  // Seeds: configs the broker writes, and a few it must refuse.
  static std::vector<Bytes> seeds() {
    std::vector<rill::TopicConfig> configs(6);
    configs[1].partitions = 3;
    configs[1].segment_bytes = 1u << 16;
    configs[1].retention_bytes = 1u << 20;
    configs[1].retention_ms = 60'000;
    configs[2].cleanup_policy = rill::CleanupPolicy::kCompact;
    configs[2].durability = rill::storage::Durability::every(100);
    configs[3].durability = rill::storage::Durability::interval(50);
    configs[3].key_serde = "string";
    configs[3].value_serde = "i64be";
    configs[4].durability = rill::storage::Durability::every_append();
    configs[4].segment_ms = -1;
    configs[5].partitions = 2;
    configs[5].segment_bytes = 8192;
    configs[5].max_record_bytes = 4096;
    std::vector<Bytes> out;
    for (const auto& c : configs) {
      const std::string t = rill::detail::format_topic_config(c);
      out.emplace_back(t.begin(), t.end());
    }
    const std::string last = rill::detail::format_topic_config(configs[5]);
    for (const std::string& t : std::vector<std::string>{
             "version=1\npartitions=1\n", "version=2\n", "# only a comment\n", "=x\n",
             last + "partitions=2\n", last + "unknown=1\n", last.substr(0, last.size() / 2)}) {
      out.emplace_back(t.begin(), t.end());
    }
    return out;
  }

  // Runs one input: "" when every invariant held, else what broke.
  std::string run(const std::uint8_t* data, std::size_t size) {
    const std::string text(reinterpret_cast<const char*>(data), size);
    auto parsed = rill::detail::parse_topic_config(text, "topic.conf");
    if (!parsed) {
      if (parsed.error().code() != rill::ErrorCode::kCorruption) {
        return "parse failed with " + parsed.error().to_string();
      }
      if (parsed.error().message().empty()) return "parse failed without a message";
      return check_broker(text, nullptr);
    }
    if (auto v = rill::detail::validate_topic_config(*parsed); !v) {
      return "parsed an invalid config: " + v.error().to_string();
    }
    const std::string printed = rill::detail::format_topic_config(*parsed);
    auto again = rill::detail::parse_topic_config(printed, "printed");
    if (!again) return "printed config does not parse: " + again.error().to_string();
    if (rill::detail::format_topic_config(*again) != printed) {
      return "config does not print back the same:\n" + printed;
    }
    const bool small = parsed->partitions <= 4 && parsed->segment_bytes <= (256u << 10);
    return small ? check_broker(text, &printed) : "";
  }

 private:
  rill::BrokerOptions options() const {
    rill::BrokerOptions o;
    o.prefault_bytes = 0;
    return o;
  }

  // Broker::open over a directory holding topic "t" with `text` as its topic.conf.
  std::string check_broker(const std::string& text, const std::string* printed) {
    remove_tree_contents(dir_);
    const std::string topic = dir_ + "/data/t";
    ::mkdir((dir_ + "/data").c_str(), 0700);
    ::mkdir(topic.c_str(), 0700);
    if (!write_bytes(topic + "/topic.conf", reinterpret_cast<const std::uint8_t*>(text.data()),
                     text.size())) {
      return "";
    }
    std::string problem;
    {
      auto broker = rill::Broker::open(dir_ + "/data", options());
      if (printed == nullptr) {
        if (broker) {
          problem = "the broker opened a topic.conf that does not parse";
        } else if (broker.error().code() != rill::ErrorCode::kCorruption) {
          problem = "a bad topic.conf failed with " + broker.error().to_string();
        }
        remove_tree_contents(dir_);
        return problem;
      }
      if (!broker) {
        remove_tree_contents(dir_);
        return "open failed: " + broker.error().to_string();
      }
      auto d = (*broker)->describe_topic("t");
      if (!d) {
        problem = "topic missing: " + d.error().to_string();
      } else if (rill::detail::format_topic_config(d->config) != *printed) {
        problem = "the broker holds another config than the file";
      } else {
        auto st = (*broker)->topic_state("t");
        for (std::int32_t p = 0; problem.empty() && p < d->config.partitions; ++p) {
          rill::storage::Record r;
          r.value = std::string_view("v");
          auto a = (*st)->partition(p)->append(r);
          if (!a) problem = "append failed: " + a.error().to_string();
        }
      }
    }
    if (problem.empty()) {
      auto broker = rill::Broker::open(dir_ + "/data", options());
      if (!broker) {
        problem = "reopen failed: " + broker.error().to_string();
      } else if (!(*broker)->recovery().empty()) {
        problem = "reopen not clean";
      }
    }
    remove_tree_contents(dir_);
    return problem;
  }

  std::string dir_;
};

}  // namespace rill_fuzz

inline int rill_fuzz_topic_conf_bytes(const std::uint8_t* data, std::size_t size) {
  static rill_fuzz::TopicConfHarness harness(rill_fuzz::make_scratch_dir("conf-fuzz"));
  const std::string problem = harness.run(data, size);
  if (!problem.empty()) {
    std::fprintf(stderr, "rill topic.conf fuzz: %s\n", problem.c_str());
    std::abort();
  }
  return 0;
}
