"""kafka-python against weir's Kafka listener: admin, produce (none, gzip), a consumer group
that commits, and describing the group.

Usage: kafka_python_clients.py BOOTSTRAP
"""

import sys

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import ConfigResource, NewTopic


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
    consumer.close()
    configs = admin.describe_configs([ConfigResource("TOPIC", "kp-topic")])
    if "86400000" not in str(configs):
        fail(f"retention.ms not in {configs}")
    admin.delete_topics(["kp-topic"])
    if "kp-topic" in admin.list_topics():
        fail("deleted topic still listed")
    print("ok")


if __name__ == "__main__":
    main()
