"""confluent-kafka (librdkafka) against weir's Kafka listener.

Usage: confluent_clients.py COMMAND BOOTSTRAP [ARGS]
  codecs BOOTSTRAP                 produce with every codec, consume earliest/latest/timestamp
  group BOOTSTRAP TOPIC GROUP      two members: rebalance on join and leave, commit
  produce BOOTSTRAP TOPIC FIRST N  produce values FIRST..FIRST+N-1
  consume BOOTSTRAP TOPIC GROUP N  consume N records as GROUP, commit, print their values
  configs BOOTSTRAP                alter a topic's configs (incremental and whole), describe them
Exits non-zero (with a message) on any mismatch or timeout.
"""

import sys
import time

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, NewTopic, ResourceType

DEADLINE_S = 60


def fail(message):
    print(f"FAIL: {message}", file=sys.stderr)
    sys.exit(1)


def create_topic(bootstrap, topic, partitions):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)])
    for future in futures.values():
        future.result(timeout=30)


def produce(bootstrap, topic, values, compression="none", timestamps=None, partition=None):
    producer = Producer({
        "bootstrap.servers": bootstrap,
        "enable.idempotence": True,
        "acks": "all",
        "compression.type": compression,
        "linger.ms": 5,
    })
    errors = []

    def delivered(error, _message):
        if error is not None:
            errors.append(error)

    for index, value in enumerate(values):
        kwargs = {"value": value.encode(), "key": f"k{index}".encode(), "on_delivery": delivered}
        if timestamps is not None:
            kwargs["timestamp"] = timestamps[index]
        if partition is not None:
            kwargs["partition"] = partition
        producer.produce(topic, **kwargs)
    left = producer.flush(30)
    if left or errors:
        fail(f"produce to {topic}: {left} undelivered, errors {errors}")


def consume_assigned(bootstrap, partitions, count):
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "unused", "enable.auto.commit": False})
    consumer.assign(partitions)
    got = []
    deadline = time.monotonic() + DEADLINE_S
    while len(got) < count:
        if time.monotonic() > deadline:
            fail(f"consumed {len(got)} of {count}")
        message = consumer.poll(0.5)
        if message is None:
            continue
        if message.error():
            fail(f"consume: {message.error()}")
        got.append(message)
    consumer.close()
    return got


def codecs(bootstrap):
    for codec in ["none", "gzip", "snappy", "lz4", "zstd"]:
        topic = f"py-{codec}"
        create_topic(bootstrap, topic, 1)
        values = [f"{codec}-{index}-" + "v" * (index % 100) for index in range(500)]
        base_ts = 1_700_000_000_000
        produce(bootstrap, topic, values, codec, timestamps=[base_ts + index for index in range(len(values))])
        got = consume_assigned(bootstrap, [TopicPartition(topic, 0, 0)], len(values))
        if [message.value().decode() for message in got] != values:
            fail(f"{codec}: consumed values differ")
        if [message.offset() for message in got] != list(range(len(values))):
            fail(f"{codec}: offsets are not 0..{len(values)}")
        # From a timestamp: record 321 is the first at or after base_ts + 321.
        consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "unused"})
        found = consumer.offsets_for_times([TopicPartition(topic, 0, base_ts + 321)], timeout=30)
        consumer.close()
        if found[0].offset != 321:
            fail(f"{codec}: offset for timestamp is {found[0].offset}, not 321")
        from_ts = consume_assigned(bootstrap, [TopicPartition(topic, 0, found[0].offset)], 1)
        if from_ts[0].value().decode() != values[321]:
            fail(f"{codec}: the record at the timestamp's offset differs")
    # From the latest offset: only what is produced after.
    topic = "py-latest"
    create_topic(bootstrap, topic, 1)
    produce(bootstrap, topic, ["old-1", "old-2"])
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "latest", "auto.offset.reset": "latest"})
    consumer.assign([TopicPartition(topic, 0, -1)])  # OFFSET_END
    consumer.poll(1.0)
    produce(bootstrap, topic, ["new-1"])
    deadline = time.monotonic() + DEADLINE_S
    while True:
        if time.monotonic() > deadline:
            fail("nothing consumed from latest")
        message = consumer.poll(0.5)
        if message is None:
            continue
        if message.error():
            fail(f"consume: {message.error()}")
        if message.value() != b"new-1":
            fail(f"from latest got {message.value()!r}")
        break
    consumer.close()
    print("ok")


def topic_configs(admin, topic):
    resource = ConfigResource(ResourceType.TOPIC, topic)
    entries = admin.describe_configs([resource])[resource].result(timeout=30)
    return {name: entry.value for name, entry in entries.items()}


def alter_incremental(admin, topic, *changes, validate_only=False):
    """Applies (name, operation, value) changes; returns the error, or None."""
    entries = [ConfigEntry(name, value, incremental_operation=operation) for name, operation, value in changes]
    resource = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=entries)
    try:
        for future in admin.incremental_alter_configs([resource], validate_only=validate_only).values():
            future.result(timeout=30)
    except KafkaException as error:
        return error.args[0]
    return None


def configs(bootstrap):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    topic = "py-configs"
    create_topic(bootstrap, topic, 2)
    want = lambda configs, expected, what: [  # noqa: E731
        fail(f"{what}: {name} is {configs.get(name)!r}, not {value!r}")
        for name, value in expected.items()
        if configs.get(name) != value
    ]
    before = topic_configs(admin, topic)
    want(before, {"cleanup.policy": "delete", "retention.ms": "-1"}, "at creation")

    error = alter_incremental(
        admin, topic, ("retention.ms", AlterConfigOpType.SET, "3600000"),
        ("cleanup.policy", AlterConfigOpType.APPEND, "compact"),
        ("retention.bytes", AlterConfigOpType.SET, "1048576"),
    )
    if error is not None:
        fail(f"incremental alter: {error}")
    want(topic_configs(admin, topic), {"retention.ms": "3600000", "cleanup.policy": "compact",
                                        "retention.bytes": "1048576"}, "after SET and APPEND")

    # DELETE puts a setting back to its default; the others stay.
    if (error := alter_incremental(admin, topic, ("retention.bytes", AlterConfigOpType.DELETE, None))) is not None:
        fail(f"incremental delete: {error}")
    want(topic_configs(admin, topic), {"retention.bytes": "-1", "retention.ms": "3600000"}, "after DELETE")

    # validate_only changes nothing; a bad entry fails its resource whole, with INVALID_CONFIG.
    if alter_incremental(admin, topic, ("retention.ms", AlterConfigOpType.SET, "5"), validate_only=True):
        fail("validate_only was refused")
    error = alter_incremental(
        admin, topic, ("retention.ms", AlterConfigOpType.SET, "7"), ("no.such.config", AlterConfigOpType.SET, "1"),
    )
    if error is None or error.name() != "INVALID_CONFIG":
        fail(f"an unknown config gave {error!r}, not INVALID_CONFIG")
    error = alter_incremental(admin, topic, ("retention.ms", AlterConfigOpType.APPEND, "1"))
    if error is None or error.name() != "INVALID_CONFIG":
        fail(f"APPEND to a number gave {error!r}, not INVALID_CONFIG")
    want(topic_configs(admin, topic), {"retention.ms": "3600000"}, "after refused changes")
    error = alter_incremental(admin, "py-no-such-topic", ("retention.ms", AlterConfigOpType.SET, "1"))
    if error is None or error.name() != "UNKNOWN_TOPIC_OR_PART":
        fail(f"an unknown topic gave {error!r}")

    # AlterConfigs (the older request) replaces the whole set: what it leaves out is reset.
    resource = ConfigResource(ResourceType.TOPIC, topic, set_config={"segment.bytes": "2097152"})
    for future in admin.alter_configs([resource]).values():
        future.result(timeout=30)
    want(topic_configs(admin, topic), {"segment.bytes": "2097152", "retention.ms": "-1", "cleanup.policy": "delete"},
         "after AlterConfigs")

    # Broker settings are fixed at start.
    broker = ConfigResource(ResourceType.BROKER, "0", incremental_configs=[
        ConfigEntry("num.partitions", "3", incremental_operation=AlterConfigOpType.SET)])
    try:
        for future in admin.incremental_alter_configs([broker]).values():
            future.result(timeout=30)
        fail("a broker config change was accepted")
    except KafkaException:
        pass
    print("ok")


class Member:
    """A consumer group member that records its assignment."""

    def __init__(self, bootstrap, topic, group, name):
        self.assigned = set()
        self.name = name
        self.consumer = Consumer({
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "client.id": name,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "session.timeout.ms": 6000,
            "heartbeat.interval.ms": 500,
            "partition.assignment.strategy": "range",
        })
        self.consumer.subscribe([topic], on_assign=self.on_assign, on_revoke=self.on_revoke)
        self.values = []

    def on_assign(self, _consumer, partitions):
        self.assigned = {partition.partition for partition in partitions}

    def on_revoke(self, _consumer, _partitions):
        self.assigned = set()

    def poll(self):
        message = self.consumer.poll(0.1)
        if message is not None and not message.error():
            self.values.append(message.value().decode())
        elif message is not None and message.error():
            fail(f"{self.name}: {message.error()}")


def wait_for(members, condition, what):
    deadline = time.monotonic() + DEADLINE_S
    while not condition():
        if time.monotonic() > deadline:
            fail(f"timed out waiting for {what}: " + ", ".join(f"{m.name}={sorted(m.assigned)}" for m in members))
        for member in members:
            member.poll()


def group(bootstrap, topic, group_id):
    create_topic(bootstrap, topic, 4)
    for partition in range(4):
        produce(bootstrap, topic, [f"p{partition}-{index}" for index in range(25)], partition=partition)
    first = Member(bootstrap, topic, group_id, "first")
    wait_for([first], lambda: first.assigned == {0, 1, 2, 3}, "the first member to own all partitions")
    second = Member(bootstrap, topic, group_id, "second")
    members = [first, second]
    wait_for(members, lambda: len(first.assigned) == 2 and len(second.assigned) == 2
             and first.assigned.isdisjoint(second.assigned), "a rebalance to two partitions each")
    def at_end(member):
        positions = member.consumer.position([TopicPartition(topic, p) for p in member.assigned])
        return all(position.offset == 25 for position in positions)

    wait_for(members, lambda: at_end(first) and at_end(second), "both members to read their partitions to the end")
    for member in members:
        try:
            member.consumer.commit(asynchronous=False)
        except KafkaException as error:
            fail(f"{member.name} commit: {error}")
    second.consumer.close()
    wait_for([first], lambda: first.assigned == {0, 1, 2, 3}, "the first member to own all partitions again")
    committed = first.consumer.committed([TopicPartition(topic, partition) for partition in range(4)], timeout=30)
    offsets = sorted(partition.offset for partition in committed)
    first.consumer.close()
    if offsets != [25, 25, 25, 25]:
        fail(f"committed offsets {offsets}")
    values = sorted(first.values + second.values)
    expected = sorted(f"p{partition}-{index}" for partition in range(4) for index in range(25))
    if not set(expected) <= set(values):
        fail("records missing from the group's consumption")
    print("ok")


def consume_group(bootstrap, topic, group_id, count):
    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": group_id,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
    })
    consumer.subscribe([topic])
    values = []
    deadline = time.monotonic() + DEADLINE_S
    while len(values) < count:
        if time.monotonic() > deadline:
            fail(f"consumed {len(values)} of {count}: {values}")
        message = consumer.poll(0.5)
        if message is None:
            continue
        if message.error():
            fail(f"consume: {message.error()}")
        values.append(message.value().decode())
    consumer.commit(asynchronous=False)
    consumer.close()
    print("\n".join(values))


def main():
    command, bootstrap, *args = sys.argv[1:]
    if command == "codecs":
        codecs(bootstrap)
    elif command == "group":
        group(bootstrap, args[0], args[1])
    elif command == "produce":
        first, count = int(args[1]), int(args[2])
        produce(bootstrap, args[0], [str(value) for value in range(first, first + count)])
    elif command == "consume":
        consume_group(bootstrap, args[0], args[1], int(args[2]))
    elif command == "configs":
        configs(bootstrap)
    else:
        fail(f"unknown command {command}")


if __name__ == "__main__":
    main()
