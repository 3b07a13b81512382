"""kafka-python against weir's Kafka listener: admin, produce (none, gzip), a consumer group
that commits, describing the group, deleting it (refused while it has a member), and growing a
topic's partitions.

Usage: kafka_python_clients.py BOOTSTRAP
"""

import sys
import time

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import ConfigResource, NewTopic
from kafka.errors import InvalidPartitionsError, NonEmptyGroupError


def fail(message):
    print(f"FAIL: {message}", file=sys.stderr)
    sys.exit(1)


def main():
    bootstrap = sys.argv[1]
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=30000)
    admin.create_topics([NewTopic("kp-topic", num_partitions=3, replication_factor=1,
                                  topic_configs={"retention.ms": "86400000"})])
    if "kp-topic" not in admin.list_topics():
        fail("created topic not listed")
    for compression in [None, "gzip"]:
        producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", compression_type=compression)
        for index in range(60):
            producer.send("kp-topic", key=f"key-{index}".encode(), value=f"{compression}-{index}".encode())
        producer.flush(30)
        producer.close()
    consumer = KafkaConsumer("kp-topic", bootstrap_servers=bootstrap, group_id="kp-group",
                             auto_offset_reset="earliest", enable_auto_commit=False,
                             consumer_timeout_ms=20000)
    values = set()
    for message in consumer:
        values.add(message.value.decode())
        if len(values) == 120:
            break
    if len(values) != 120:
        fail(f"consumed {len(values)} of 120")
    consumer.commit()
    committed = sum(consumer.committed(TopicPartition("kp-topic", partition)) or 0 for partition in range(3))
    if committed != 120:
        fail(f"committed offsets add up to {committed}, not 120")
    groups = [group["group_id"] for group in admin.list_groups()]
    if "kp-group" not in groups:
        fail(f"kp-group not in {groups}")
    described = admin.describe_groups(["kp-group"])["kp-group"]
    if described["group_state"] != "Stable" or len(described["members"]) != 1:
        fail(f"group described as {described}")
    refused = admin.delete_groups(["kp-group"])
    if refused != {"kp-group": NonEmptyGroupError.__name__}:
        fail(f"deleting a group with a member answered {refused}")
    consumer.close()
    deleted = admin.delete_groups(["kp-group"])
    if deleted != {"kp-group": "OK"}:
        fail(f"deleting the empty group answered {deleted}")
    groups = [group["group_id"] for group in admin.list_groups()]
    if "kp-group" in groups:
        fail(f"deleted kp-group still listed: {groups}")
    remaining = admin.list_group_offsets("kp-group")
    if remaining != {"kp-group": {}}:
        fail(f"deleted kp-group still has committed offsets: {remaining}")

    # Growing a topic: the new partitions take records; shrinking is refused.
    admin.create_partitions({"kp-topic": 5})
    partitions = admin.describe_topics(["kp-topic"])[0]["partitions"]
    if sorted(partition["partition_index"] for partition in partitions) != [0, 1, 2, 3, 4]:
        fail(f"after growing to 5: {partitions}")
    try:
        admin.create_partitions({"kp-topic": 4})
        fail("shrinking kp-topic was accepted")
    except InvalidPartitionsError:
        pass
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    producer.send("kp-topic", value=b"in-new-partition", partition=4).get(timeout=30)
    producer.close()
    reader = KafkaConsumer(bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    reader.assign([TopicPartition("kp-topic", 4)])
    read = []
    deadline = time.monotonic() + 20
    while len(read) < 1 and time.monotonic() < deadline:
        for records in reader.poll(timeout_ms=500).values():
            read.extend(record.value for record in records)
    if read != [b"in-new-partition"]:
        fail(f"partition 4 holds {read}, not the one record produced to it")
    reader.close()

    configs = admin.describe_configs([ConfigResource("TOPIC", "kp-topic")])
    if "86400000" not in str(configs):
        fail(f"retention.ms not in {configs}")
    admin.delete_topics(["kp-topic"])
    if "kp-topic" in admin.list_topics():
        fail("deleted topic still listed")
    print("ok")


if __name__ == "__main__":
    main()
