"""The client side of tests/bench/kafka.sh: confluent-kafka (librdkafka) against any Kafka broker.

Usage:
  kafka_client.py produce BOOTSTRAP TOPIC PARTITIONS RECORDS SIZE
      creates TOPIC with PARTITIONS, produces RECORDS values of SIZE bytes round-robin over the
      partitions with acks=all, and prints one JSON line: bytes, seconds, MB/s (10^6 bytes),
      records/s, and the p50/p99/max delivery latency in ms (send call to delivery report).
  kafka_client.py consume BOOTSTRAP TOPIC PARTITIONS RECORDS
      reads RECORDS records from offset 0 of every partition and prints bytes, seconds, MB/s.
Exits non-zero with a message on any delivery error, short read or timeout.
"""

import json
import os
import sys
import time

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

TIMEOUT_S = 300


def fail(message):
    print(f"kafka_client.py: {message}", file=sys.stderr)
    sys.exit(1)


def create_topic(bootstrap, topic, partitions):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)]).values():
        future.result(timeout=60)
    # Wait until the metadata shows every partition with a leader.
    deadline = time.monotonic() + 60
    while True:
        metadata = admin.list_topics(topic, timeout=30).topics.get(topic)
        if metadata is not None and metadata.error is None and len(metadata.partitions) == partitions:
            return
        if time.monotonic() > deadline:
            fail(f"topic {topic} has no {partitions} partitions in the metadata: {metadata}")
        time.sleep(0.1)


def percentile(sorted_values, fraction):
    index = min(len(sorted_values) - 1, int(round(fraction * (len(sorted_values) - 1))))
    return sorted_values[index]


def produce(bootstrap, topic, partitions, records, size):
    create_topic(bootstrap, topic, partitions)
    producer = Producer({
        "bootstrap.servers": bootstrap,
        "acks": "all",
        "linger.ms": 5,
        "batch.size": 1_000_000,
        "compression.type": "none",
        # At most 32 MiB queued in the client, as the Java producer's buffer.memory.
        "queue.buffering.max.messages": 1_000_000,
        "queue.buffering.max.kbytes": 32 * 1024,
    })
    payload = os.urandom(size)
    sent_at = [0.0] * records
    latencies = []
    errors = []

    def delivered(error, message):
        if error is not None:
            errors.append(str(error))
            return
        latencies.append(time.perf_counter() - sent_at[int(message.key())])

    started = time.perf_counter()
    for index in range(records):
        while True:
            sent_at[index] = time.perf_counter()
            try:
                producer.produce(topic, value=payload, key=str(index), partition=index % partitions,
                                 on_delivery=delivered)
                break
            except BufferError:
                producer.poll(0.005)
        producer.poll(0)
    left = producer.flush(TIMEOUT_S)
    seconds = time.perf_counter() - started
    if left or errors:
        fail(f"produce: {left} undelivered, {len(errors)} errors, first {errors[:1]}")
    if len(latencies) != records:
        fail(f"produce: {len(latencies)} delivery reports for {records} records")
    latencies.sort()
    total = records * size
    print(json.dumps({
        "bytes": total,
        "seconds": seconds,
        "mb_s": total / seconds / 1e6,
        "records_s": records / seconds,
        "p50_ms": percentile(latencies, 0.50) * 1e3,
        "p99_ms": percentile(latencies, 0.99) * 1e3,
        "max_ms": latencies[-1] * 1e3,
    }))


def consume(bootstrap, topic, partitions, records):
    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": "bench-unused",
        "enable.auto.commit": False,
        "fetch.max.bytes": 52_428_800,
        "max.partition.fetch.bytes": 10_485_760,
    })
    started = time.perf_counter()
    consumer.assign([TopicPartition(topic, partition, 0) for partition in range(partitions)])
    count = 0
    total = 0
    deadline = time.monotonic() + TIMEOUT_S
    while count < records:
        if time.monotonic() > deadline:
            fail(f"consume: {count} of {records} records in {TIMEOUT_S} s")
        for message in consumer.consume(num_messages=10_000, timeout=1.0):
            if message.error():
                fail(f"consume: {message.error()}")
            count += 1
            total += len(message.value())
    seconds = time.perf_counter() - started
    consumer.close()
    if count != records:
        fail(f"consume: {count} records, expected {records}")
    print(json.dumps({"bytes": total, "seconds": seconds, "mb_s": total / seconds / 1e6}))


def main():
    command, bootstrap, topic, partitions, records, *rest = sys.argv[1:]
    if command == "produce":
        produce(bootstrap, topic, int(partitions), int(records), int(rest[0]))
    elif command == "consume":
        consume(bootstrap, topic, int(partitions), int(records))
    else:
        fail(f"unknown command {command}")


if __name__ == "__main__":
    main()
