// The example of README.md, compiled and run by ctest (examples/docs/CMakeLists.txt) so that
// the README's code cannot rot. It opens ./rill-data: ctest runs it in a scratch directory.
// [doc:example]
#include <chrono>
#include <cstdio>
#include <rill/rill.hpp>

int main() {
  auto broker = rill::Broker::open("rill-data");  // or rill::Broker::open_in_memory()
  if (!broker) return std::puts(broker.error().to_string().c_str()), 1;
  auto orders = rill::Topic<std::string, std::string>::create_if_absent(**broker, "orders",
                                                                        {.partitions = 4});
  rill::Producer<std::string, std::string> producer(**broker);
  auto sent = producer.send(*orders, "customer-7", "2 coffees");  // key -> partition (murmur2)
  if (!sent) return std::puts(sent.error().to_string().c_str()), 1;

  rill::Consumer<std::string, std::string> consumer(
      **broker, {.group_id = "billing", .auto_offset_reset = rill::OffsetReset::kEarliest});
  (void)consumer.subscribe({"orders"});
  auto records = consumer.poll(std::chrono::seconds(1));  // blocks until records arrive
  for (const auto& r : *records)
    std::printf("%s-%d@%lld %s: %s\n", std::string(r.topic).c_str(), r.partition,
                (long long)r.offset, r.key->c_str(), r.value.c_str());
  (void)consumer.commit();  // the group resumes here after a restart
}
// [end:example]
