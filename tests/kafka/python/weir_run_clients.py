"""confluent-kafka (librdkafka) against `weir run --kafka-listen` and `weir broker`.

Usage: weir_run_clients.py COMMAND BOOTSTRAP [ARGS]
  read BOOTSTRAP TOPIC N             read N records of every partition from the earliest offset
                                     (no group), print their values one per line
  produce BOOTSTRAP TOPIC PREFIX N   produce values PREFIX-0..PREFIX-(N-1), idempotent, acks=all
  groups BOOTSTRAP GROUP             print confluent-kafka's AdminClient's view of GROUP as JSON:
                                     whether ListGroups lists it, DescribeGroups' state and
                                     members, and OffsetFetch's committed offsets
  kafka-python-groups BOOTSTRAP GROUP   the same through kafka-python's KafkaAdminClient, with
                                     the protocol type
  join BOOTSTRAP GROUP TOPIC         try to join GROUP with a consumer: print the error it gets
Exits non-zero (with a message) on any error or timeout.
"""

import json
import sys
import time

from confluent_kafka import OFFSET_BEGINNING, Consumer, ConsumerGroupTopicPartitions, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

DEADLINE_S = 60


def fail(message):
    print(f"FAIL: {message}", file=sys.stderr)
    sys.exit(1)


def partitions_of(bootstrap, topic):
    """The topic's partitions; waits until the topic exists (nothing is auto-created here)."""
    admin = AdminClient({"bootstrap.servers": bootstrap, "allow.auto.create.topics": False})
    deadline = time.time() + DEADLINE_S
    while time.time() < deadline:
        metadata = admin.list_topics(topic, timeout=10)
        described = metadata.topics.get(topic)
        if described is not None and described.error is None and described.partitions:
            return sorted(described.partitions)
        time.sleep(0.2)
    fail(f"topic {topic} did not appear within {DEADLINE_S}s")


def read(bootstrap, topic, count):
    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": "weir-run-reader",
        "enable.auto.commit": False,
        "allow.auto.create.topics": False,
    })
    consumer.assign([TopicPartition(topic, partition, OFFSET_BEGINNING)
                     for partition in partitions_of(bootstrap, topic)])
    values = []
    deadline = time.time() + DEADLINE_S
    while len(values) < count and time.time() < deadline:
        message = consumer.poll(0.5)
        if message is None:
            continue
        if message.error():
            fail(f"consume {topic}: {message.error()}")
        values.append(message.value().decode())
    consumer.close()
    if len(values) < count:
        fail(f"read {len(values)} of {count} records of {topic} within {DEADLINE_S}s")
    for value in values:
        print(value)


def produce(bootstrap, topic, prefix, count):
    producer = Producer({
        "bootstrap.servers": bootstrap,
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 5,
    })
    errors = []

    def delivered(error, _message):
        if error is not None:
            errors.append(str(error))

    for index in range(count):
        producer.produce(topic, value=f"{prefix}-{index}".encode(), key=f"k{index}".encode(),
                         on_delivery=delivered)
    left = producer.flush(30)
    if left or errors:
        fail(f"produce to {topic}: {left} undelivered, errors {errors}")
    print("ok")


def groups(bootstrap, group):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    listed = admin.list_consumer_groups(request_timeout=30).result()
    if listed.errors:
        fail(f"list_consumer_groups: {listed.errors}")
    listing = [entry for entry in listed.valid if entry.group_id == group]
    described = admin.describe_consumer_groups([group], request_timeout=30)[group].result()
    offsets = admin.list_consumer_group_offsets(
        [ConsumerGroupTopicPartitions(group)], request_timeout=30)[group].result()
    print(json.dumps({
        "listed": bool(listing),
        "listed_state": listing[0].state.name if listing else None,
        "state": described.state.name,
        "protocol_type": "consumer" if described.is_simple_consumer_group is False else "simple",
        "members": [
            {
                "member_id": member.member_id,
                "client_id": member.client_id,
                "assignment": sorted(
                    f"{partition.topic}:{partition.partition}"
                    for partition in (member.assignment.topic_partitions if member.assignment else [])
                ),
            }
            for member in described.members
        ],
        "offsets": sorted(
            [partition.topic, partition.partition, partition.offset]
            for partition in offsets.topic_partitions
            if partition.error is None
        ),
    }, sort_keys=True))


def kafka_python_groups(bootstrap, group):
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=30000)
    listed = {entry["group_id"]: entry["protocol_type"] for entry in admin.list_groups()}
    described = admin.describe_groups([group])[group]
    offsets = admin.list_group_offsets(group)[group]
    admin.close()
    if described.get("error"):
        fail(f"describe_groups({group}): {described['error']}")
    print(json.dumps({
        "listed_protocol_type": listed.get(group),
        "state": described["group_state"],
        "protocol_type": described["protocol_type"],
        "members": sorted(member["client_id"] for member in described["members"]),
        "offsets": sorted([partition.topic, partition.partition, meta.offset]
                          for partition, meta in offsets.items()),
    }, sort_keys=True))


def join(bootstrap, group, topic):
    errors = []
    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": group,
        "enable.auto.commit": False,
        "error_cb": lambda error: errors.append(error.name()),
    })
    consumer.subscribe([topic])
    deadline = time.time() + DEADLINE_S
    while time.time() < deadline:
        try:
            message = consumer.poll(0.5)
        except Exception as error:  # librdkafka raises fatal group errors from poll
            errors.append(error.args[0].name() if error.args and hasattr(error.args[0], "name") else str(error))
            break
        if message is not None and message.error():
            errors.append(message.error().name())
            break
        if message is not None:
            break
        if errors:
            break
    consumer.close()
    print(errors[0] if errors else "joined")


def main():
    command, bootstrap, *args = sys.argv[1:]
    if command == "read":
        read(bootstrap, args[0], int(args[1]))
    elif command == "produce":
        produce(bootstrap, args[0], args[1], int(args[2]))
    elif command == "groups":
        groups(bootstrap, args[0])
    elif command == "kafka-python-groups":
        kafka_python_groups(bootstrap, args[0])
    elif command == "join":
        join(bootstrap, args[0], args[1])
    else:
        fail(f"unknown command {command}")


if __name__ == "__main__":
    main()
