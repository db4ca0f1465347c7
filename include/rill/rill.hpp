// rill/rill.hpp: the one header users include.
//
// rill gives an application Kafka-style pub/sub streaming inside its own process: topics of
// partitions, each an append-only log in memory-mapped segment files. Layers:
//   rill/result.hpp, rill/clock.hpp   errors as values; where time comes from
//   rill/broker.hpp                   a data directory (or memory): topics and their configs
//   rill/topic.hpp, producer.hpp,     the typed API: Topic<K,V>, Producer<K,V>, serdes,
//   serde.hpp, partitioner.hpp        Kafka's murmur2 partitioning
//   rill/consumer.hpp,                Consumer<K,V> and consumer groups: coordinators,
//   consumer_group.hpp, group/        assignors, committed offsets
//   rill/event_sourcing.hpp, es/      event stores: optimistic concurrency, replay, snapshots
//   rill/storage/                     the partition log (segments, indexes, recovery, retention)
//   rill/detail/                      no public meaning: mmap, CRC-32C, futex
// Tests include rill/testing.hpp besides (an in-memory broker on a manual clock, topic drivers).
#pragma once

#include "rill/broker.hpp"
#include "rill/clock.hpp"
#include "rill/consumer.hpp"
#include "rill/consumer_group.hpp"
#include "rill/detail/crc32c.hpp"
#include "rill/event_sourcing.hpp"
#include "rill/group/assignor.hpp"
#include "rill/group/coordinator.hpp"
#include "rill/group/offset_store.hpp"
#include "rill/partitioner.hpp"
#include "rill/producer.hpp"
#include "rill/result.hpp"
#include "rill/serde.hpp"
#include "rill/storage/background.hpp"
#include "rill/storage/log.hpp"
#include "rill/storage/log_format.hpp"
#include "rill/storage/notifier.hpp"
#include "rill/storage/record.hpp"
#include "rill/storage/segment.hpp"
#include "rill/topic.hpp"

// The library's version, as in CMake's project().
#define RILL_VERSION_MAJOR 0
#define RILL_VERSION_MINOR 1
#define RILL_VERSION_PATCH 0
