// The code of docs/concepts.md: topic configuration, records with headers and timestamps,
// assign and seek, rebalance callbacks, and the administrative calls, each checked.
//
//   concepts <data-dir>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include <rill/rill.hpp>

using namespace std::chrono_literals;

static int check(bool ok, const char* what) {
  if (!ok) std::fprintf(stderr, "failed: %s\n", what);
  return ok ? 0 : 1;
}

int main(int argc, char** argv) {
  const std::string dir = argc > 1 ? argv[1] : "rill-concepts";
  auto opened = rill::Broker::open(dir);
  if (!opened) return std::fprintf(stderr, "%s\n", opened.error().to_string().c_str()), 1;
  rill::Broker& broker = **opened;

  // [doc:topic_config]
  rill::TopicConfig config{
      .partitions = 4,
      .segment_bytes = 16u << 20,                      // segment.bytes
      .retention_ms = 7LL * 24 * 3600 * 1000,          // retention.ms (default -1: keep everything)
      .cleanup_policy = rill::CleanupPolicy::kDelete,  // cleanup.policy=delete
      .durability = rill::storage::Durability::every(1000),  // flush.messages=1000
  };
  auto clicks = rill::Topic<std::string, std::string>::create_if_absent(broker, "clicks", config);
  // [end:topic_config]
  if (!clicks) return check(false, "create clicks");

  // [doc:producer_record]
  rill::Producer<std::string, std::string> producer(broker);
  const rill::storage::Header headers[] = {{"source", "web"}, {"trace-id", "4bf92f35"}};
  auto md = producer.send(*clicks, {.key = "user-7",
                                    .value = "clicked /pricing",
                                    .headers = headers,
                                    .timestamp_ms = 1'700'000'000'000,  // CreateTime
                                    .partition = 2});                   // no routing: here
  // md->topic == "clicks", md->partition == 2, md->offset, md->timestamp_ms
  // [end:producer_record]
  if (!md) return check(false, "send");
  if (int rc = check(md->partition == 2 && md->timestamp_ms == 1'700'000'000'000, "metadata"))
    return rc;
  auto stamped = producer.send(*clicks, "user-8", "clicked /docs");  // the broker's clock
  if (!stamped) return check(false, "send");

  // [doc:assign_seek]
  rill::Consumer<std::string, std::string> reader(broker, {.enable_auto_commit = false});
  const rill::TopicPartition p2{"clicks", 2};
  (void)reader.assign({p2});  // no group: this consumer reads what it is given
  (void)reader.seek(p2, 0);   // or seek_to_beginning / seek_to_end
  auto since = reader.offsets_for_times({{p2, 1'700'000'000'000}});  // offsetsForTimes
  if (since && (*since)[p2]) (void)reader.seek(p2, *(*since)[p2]);
  auto records = reader.poll(100ms);
  for (const auto& r : *records) {
    for (const auto h : r.headers)  // name and optional value, views into the segment
      std::printf("%s=%s\n", std::string(h.name).c_str(),
                  std::string(h.value.value_or("")).c_str());
  }
  // [end:assign_seek]
  if (!records) return check(false, "poll");
  if (int rc = check(!records->empty() && (*records)[0].value == "clicked /pricing", "read back"))
    return rc;

  // [doc:rebalance]
  rill::Consumer<std::string, std::string> member(
      broker, {.group_id = "analytics",
               .auto_offset_reset = rill::OffsetReset::kEarliest,
               .enable_auto_commit = false,
               .assignment_strategy = rill::AssignmentStrategy::kCooperativeSticky});
  (void)member.subscribe(
      {"clicks"},
      {.on_revoked = [&](const std::vector<rill::TopicPartition>&) { (void)member.commit(); },
       .on_assigned =
           [](const std::vector<rill::TopicPartition>& tps) {
             std::printf("assigned %zu partition(s)\n", tps.size());
           },
       .on_lost = [](const std::vector<rill::TopicPartition>&) { /* others own them now */ }});
  // [end:rebalance]
  auto got = member.poll(100ms);
  if (!got) return check(false, "member poll");
  if (int rc = check(member.assignment().size() == 4, "member owns all 4 partitions")) return rc;
  if (auto c = member.commit(); !c) return check(false, "commit");
  if (auto c = member.close(); !c) return check(false, "close");

  // [doc:admin]
  auto described = broker.describe_topic("clicks");  // config, and each partition's offsets
  for (const auto& p : described->partitions)
    std::printf("clicks-%d [%lld, %lld) %llu bytes\n", p.partition,
                static_cast<long long>(p.start_offset), static_cast<long long>(p.end_offset),
                static_cast<unsigned long long>(p.size_bytes));
  (void)broker.add_partitions("clicks", 6);  // only more, as in Kafka; keys may move
  for (const auto& name : broker.list_topics()) std::printf("topic %s\n", name.c_str());

  rill::ConsumerGroup analytics(broker, "analytics");  // kafka-consumer-groups.sh
  auto lag = analytics.lag();  // keep the Result: a range-for over *analytics.lag() dangles
  for (const auto& l : *lag)
    std::printf("%s-%d lag %lld\n", l.partition.topic.c_str(), l.partition.partition,
                static_cast<long long>(l.lag));
  (void)analytics.reset_offsets("clicks", rill::OffsetResetSpec::earliest());  // no members
  (void)analytics.delete_group();
  (void)broker.delete_topic("clicks");
  // [end:admin]
  if (int rc = check(described.has_value() && described->partitions.size() == 4, "describe"))
    return rc;
  if (int rc = check(broker.list_topics().empty(), "clicks deleted")) return rc;
  return 0;
}
