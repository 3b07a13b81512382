// Apache Kafka's own Java client (kafka-clients 4.3) against weir's Kafka listener.
//
// Usage: java -cp JARS:CLASSES KafkaClients COMMAND BOOTSTRAP [ARGS]
//   codecs BOOTSTRAP                 idempotent producer (acks=all) with none, gzip, snappy, lz4,
//                                    zstd; consume from earliest, latest and offsetsForTimes
//   group BOOTSTRAP TOPIC GROUP      two members: rebalance on join and leave, commit, describe
//   static BOOTSTRAP TOPIC GROUP     two static members; one restarts without a rebalance
//   admin BOOTSTRAP                  AdminClient: create, list, describe (topics, configs,
//                                    cluster) and delete topics
//   produce BOOTSTRAP TOPIC FIRST N  produce values FIRST..FIRST+N-1
//   consume BOOTSTRAP TOPIC GROUP N  consume N records as GROUP, commit, print their values
//   produce-through-restart BOOTSTRAP TOPIC N   idempotent producer of 0..N-1 across a restart
//   check-values BOOTSTRAP TOPIC N   partition 0 holds exactly 0..N-1
// Prints "ok" (or the values) on stdout on success; exits 1 with "FAIL: ..." on stderr on any
// mismatch or timeout.

import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.clients.admin.ConsumerGroupDescription;
import org.apache.kafka.clients.admin.DescribeClusterResult;
import org.apache.kafka.clients.admin.GroupListing;
import org.apache.kafka.clients.admin.ListOffsetsResult.ListOffsetsResultInfo;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRebalanceListener;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.consumer.OffsetAndTimestamp;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.GroupState;
import org.apache.kafka.common.Node;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.TopicPartitionInfo;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.errors.TopicExistsException;
import org.apache.kafka.common.errors.UnknownTopicOrPartitionException;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

public final class KafkaClients {
    private static final Duration DEADLINE = Duration.ofSeconds(60);
    private static final long BASE_TS = 1_700_000_000_000L;

    private KafkaClients() {}

    static final class Failure extends RuntimeException {
        private static final long serialVersionUID = 1L;

        Failure(String message) {
            super(message);
        }
    }

    static void check(boolean condition, String message) {
        if (!condition) {
            throw new Failure(message);
        }
    }

    static void waitFor(BooleanSupplier condition, Runnable step, String what) {
        long deadline = System.nanoTime() + DEADLINE.toNanos();
        while (!condition.getAsBoolean()) {
            check(System.nanoTime() < deadline, "timed out waiting for " + what);
            step.run();
        }
    }

    static Admin admin(String bootstrap) {
        Properties props = new Properties();
        props.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, 30000);
        props.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, 60000);
        return Admin.create(props);
    }

    static void createTopic(String bootstrap, String topic, int partitions) throws Exception {
        try (Admin admin = admin(bootstrap)) {
            admin.createTopics(List.of(new NewTopic(topic, partitions, (short) 1))).all().get(60, TimeUnit.SECONDS);
        }
    }

    static KafkaProducer<String, String> producer(String bootstrap, String compression) {
        return producer(bootstrap, compression, new Properties());
    }

    static KafkaProducer<String, String> producer(String bootstrap, String compression, Properties extra) {
        Properties props = new Properties();
        props.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.put(ProducerConfig.ACKS_CONFIG, "all");
        props.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, true);
        props.put(ProducerConfig.COMPRESSION_TYPE_CONFIG, compression);
        props.put(ProducerConfig.LINGER_MS_CONFIG, 5);
        // Small batches: several in flight at once, so the sequence checks see a pipeline.
        props.put(ProducerConfig.BATCH_SIZE_CONFIG, 4096);
        props.put(ProducerConfig.MAX_IN_FLIGHT_REQUESTS_PER_CONNECTION, 5);
        props.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, 60000);
        props.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        props.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        props.putAll(extra);
        return new KafkaProducer<>(props);
    }

    /** Produces `values` to partition 0 (timestamps BASE_TS + index when `timestamped`). */
    static List<RecordMetadata> produce(String bootstrap, String topic, List<String> values, String compression,
            boolean timestamped) throws Exception {
        List<Future<RecordMetadata>> futures = new ArrayList<>();
        try (KafkaProducer<String, String> producer = producer(bootstrap, compression)) {
            for (int index = 0; index < values.size(); index++) {
                Long timestamp = timestamped ? BASE_TS + index : null;
                futures.add(producer.send(new ProducerRecord<>(topic, 0, timestamp, "k" + index, values.get(index))));
            }
            producer.flush();
        }
        List<RecordMetadata> sent = new ArrayList<>();
        for (Future<RecordMetadata> future : futures) {
            sent.add(future.get(60, TimeUnit.SECONDS));
        }
        return sent;
    }

    static KafkaConsumer<String, String> consumer(String bootstrap, String group) {
        Properties props = new Properties();
        props.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        if (group != null) {
            props.put(ConsumerConfig.GROUP_ID_CONFIG, group);
        }
        props.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
        props.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        props.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        props.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        return new KafkaConsumer<>(props);
    }

    static List<ConsumerRecord<String, String>> pollUntil(KafkaConsumer<String, String> consumer, int count) {
        List<ConsumerRecord<String, String>> got = new ArrayList<>();
        waitFor(() -> got.size() >= count, () -> consumer.poll(Duration.ofMillis(200)).forEach(got::add),
                count + " records (got " + got.size() + ")");
        return got;
    }

    static void codecs(String bootstrap) throws Exception {
        for (String codec : List.of("none", "gzip", "snappy", "lz4", "zstd")) {
            String topic = "java-" + codec;
            createTopic(bootstrap, topic, 1);
            List<String> values = new ArrayList<>();
            for (int index = 0; index < 500; index++) {
                values.add(codec + "-" + index + "-" + "v".repeat(index % 100));
            }
            List<RecordMetadata> sent = produce(bootstrap, topic, values, codec, true);
            for (int index = 0; index < sent.size(); index++) {
                check(sent.get(index).offset() == index, codec + ": record " + index + " acknowledged at offset "
                        + sent.get(index).offset());
            }
            TopicPartition partition = new TopicPartition(topic, 0);
            try (KafkaConsumer<String, String> consumer = consumer(bootstrap, null)) {
                consumer.assign(List.of(partition));
                Map<TopicPartition, Long> beginning = consumer.beginningOffsets(List.of(partition));
                Map<TopicPartition, Long> end = consumer.endOffsets(List.of(partition));
                check(beginning.get(partition) == 0 && end.get(partition) == values.size(),
                        codec + ": beginning " + beginning + ", end " + end);
                consumer.seekToBeginning(List.of(partition));
                List<ConsumerRecord<String, String>> got = pollUntil(consumer, values.size());
                check(got.size() == values.size(), codec + ": consumed " + got.size());
                for (int index = 0; index < got.size(); index++) {
                    ConsumerRecord<String, String> record = got.get(index);
                    check(record.offset() == index, codec + ": offset " + record.offset() + " at " + index);
                    check(record.value().equals(values.get(index)), codec + ": value at " + index);
                    check(record.key().equals("k" + index), codec + ": key at " + index);
                    check(record.timestamp() == BASE_TS + index, codec + ": timestamp at " + index);
                }
                // From a timestamp: record 321 is the first at or after BASE_TS + 321.
                Map<TopicPartition, OffsetAndTimestamp> found =
                        consumer.offsetsForTimes(Map.of(partition, BASE_TS + 321));
                OffsetAndTimestamp at = found.get(partition);
                check(at != null && at.offset() == 321 && at.timestamp() == BASE_TS + 321,
                        codec + ": offsetsForTimes gave " + at);
                consumer.seek(partition, at.offset());
                ConsumerRecord<String, String> first = pollUntil(consumer, 1).get(0);
                check(first.offset() == 321 && first.value().equals(values.get(321)),
                        codec + ": the record at the timestamp's offset is " + first);
                Map<TopicPartition, OffsetAndTimestamp> none =
                        consumer.offsetsForTimes(Map.of(partition, BASE_TS + 10_000));
                check(none.get(partition) == null, codec + ": a timestamp after the last record gave " + none);
            }
            // The AdminClient's ListOffsets: earliest, latest, a timestamp and the newest record's.
            try (Admin admin = admin(bootstrap)) {
                Map<OffsetSpec, long[]> expected = Map.of(OffsetSpec.earliest(), new long[] {0, -1},
                        OffsetSpec.latest(), new long[] {values.size(), -1},
                        OffsetSpec.forTimestamp(BASE_TS + 100), new long[] {100, BASE_TS + 100},
                        OffsetSpec.maxTimestamp(), new long[] {values.size() - 1, BASE_TS + values.size() - 1});
                for (Map.Entry<OffsetSpec, long[]> spec : expected.entrySet()) {
                    ListOffsetsResultInfo info = admin.listOffsets(Map.of(partition, spec.getKey()))
                            .partitionResult(partition).get(60, TimeUnit.SECONDS);
                    check(info.offset() == spec.getValue()[0] && info.timestamp() == spec.getValue()[1],
                            codec + ": listOffsets " + spec.getKey().getClass().getSimpleName() + " gave " + info);
                }
            }
        }
        // From the latest offset: only what is produced after the position is resolved.
        String topic = "java-latest";
        createTopic(bootstrap, topic, 1);
        produce(bootstrap, topic, List.of("old-1", "old-2"), "none", false);
        TopicPartition partition = new TopicPartition(topic, 0);
        try (KafkaConsumer<String, String> consumer = consumer(bootstrap, null)) {
            consumer.assign(List.of(partition));
            consumer.seekToEnd(List.of(partition));
            long position = consumer.position(partition);
            check(position == 2, "latest position is " + position);
            produce(bootstrap, topic, List.of("new-1"), "none", false);
            ConsumerRecord<String, String> record = pollUntil(consumer, 1).get(0);
            check(record.offset() == 2 && record.value().equals("new-1"), "from latest got " + record);
        }
        System.out.println("ok");
    }

    /** A group member polled from the main thread; it records its assignment. */
    static final class Member implements ConsumerRebalanceListener {
        final String name;
        final KafkaConsumer<String, String> consumer;
        final Set<Integer> assigned = new TreeSet<>();
        final List<String> values = new ArrayList<>();

        int revocations;

        Member(String bootstrap, String topic, String group, String name) {
            this(bootstrap, topic, group, name, null);
        }

        /** A static member (KIP-345) when `instance` is not null. */
        Member(String bootstrap, String topic, String group, String name, String instance) {
            this.name = name;
            Properties props = new Properties();
            if (instance != null) {
                props.put(ConsumerConfig.GROUP_INSTANCE_ID_CONFIG, instance);
            }
            props.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
            props.put(ConsumerConfig.GROUP_ID_CONFIG, group);
            props.put(ConsumerConfig.CLIENT_ID_CONFIG, name);
            props.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
            props.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
            props.put(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG, 10000);
            props.put(ConsumerConfig.HEARTBEAT_INTERVAL_MS_CONFIG, 500);
            props.put(ConsumerConfig.MAX_POLL_INTERVAL_MS_CONFIG, 30000);
            props.put(ConsumerConfig.PARTITION_ASSIGNMENT_STRATEGY_CONFIG,
                    "org.apache.kafka.clients.consumer.RangeAssignor");
            props.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
            props.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
            consumer = new KafkaConsumer<>(props);
            consumer.subscribe(List.of(topic), this);
        }

        @Override
        public void onPartitionsRevoked(Collection<TopicPartition> partitions) {
            revocations++;
            partitions.forEach(partition -> assigned.remove(partition.partition()));
        }

        @Override
        public void onPartitionsAssigned(Collection<TopicPartition> partitions) {
            partitions.forEach(partition -> assigned.add(partition.partition()));
        }

        void poll() {
            consumer.poll(Duration.ofMillis(100)).forEach(record -> values.add(record.value()));
        }

        boolean atEnd(String topic, long end) {
            return !assigned.isEmpty()
                    && assigned.stream().allMatch(p -> consumer.position(new TopicPartition(topic, p)) == end);
        }
    }

    static void pollAll(List<Member> members) {
        members.forEach(Member::poll);
    }

    static void group(String bootstrap, String topic, String group) throws Exception {
        createTopic(bootstrap, topic, 4);
        try (KafkaProducer<String, String> producer = producer(bootstrap, "lz4")) {
            for (int partition = 0; partition < 4; partition++) {
                for (int index = 0; index < 25; index++) {
                    producer.send(new ProducerRecord<>(topic, partition, null, "p" + partition + "-" + index));
                }
            }
            producer.flush();
        }
        Set<Integer> all = Set.of(0, 1, 2, 3);
        Member first = new Member(bootstrap, topic, group, "first");
        waitFor(() -> first.assigned.equals(all), () -> pollAll(List.of(first)),
                "the first member to own all partitions: " + first.assigned);
        Member second = new Member(bootstrap, topic, group, "second");
        List<Member> members = List.of(first, second);
        BooleanSupplier split = () -> first.assigned.size() == 2 && second.assigned.size() == 2
                && !first.assigned.stream().anyMatch(second.assigned::contains);
        waitFor(split, () -> pollAll(members), "a rebalance to two partitions each");
        waitFor(() -> split.getAsBoolean() && first.atEnd(topic, 25) && second.atEnd(topic, 25),
                () -> pollAll(members), "both members to read their partitions to the end");
        first.consumer.commitSync();
        second.consumer.commitSync();
        try (Admin admin = admin(bootstrap)) {
            ConsumerGroupDescription described =
                    admin.describeConsumerGroups(List.of(group)).all().get(60, TimeUnit.SECONDS).get(group);
            check(described.members().size() == 2, "the group is described with members " + described.members());
            check(described.groupState() == GroupState.STABLE, "the group is described as " + described);
            Collection<GroupListing> groups = admin.listGroups().all().get(60, TimeUnit.SECONDS);
            check(groups.stream().anyMatch(listing -> listing.groupId().equals(group)), "listGroups gave " + groups);
        }
        // The second member leaves (LeaveGroup on close): the first owns everything again.
        second.consumer.close();
        waitFor(() -> first.assigned.equals(all), () -> pollAll(List.of(first)),
                "the first member to own all partitions again: " + first.assigned);
        Set<TopicPartition> partitions = new HashSet<>();
        for (int partition = 0; partition < 4; partition++) {
            partitions.add(new TopicPartition(topic, partition));
        }
        Map<TopicPartition, OffsetAndMetadata> committed = first.consumer.committed(partitions);
        first.consumer.close();
        for (TopicPartition partition : partitions) {
            OffsetAndMetadata offset = committed.get(partition);
            check(offset != null && offset.offset() == 25, "committed " + committed);
        }
        try (Admin admin = admin(bootstrap)) {
            Map<TopicPartition, OffsetAndMetadata> listed =
                    admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata().get(60, TimeUnit.SECONDS);
            check(listed.equals(committed), "the admin lists offsets " + listed + ", the consumer " + committed);
        }
        Set<String> values = new HashSet<>(first.values);
        values.addAll(second.values);
        for (int partition = 0; partition < 4; partition++) {
            for (int index = 0; index < 25; index++) {
                check(values.contains("p" + partition + "-" + index), "p" + partition + "-" + index + " not consumed");
            }
        }
        System.out.println("ok");
    }

    /**
     * Two static members; one restarts with the same instance id: it gets its partitions back
     * in the same generation, and the other is not rebalanced.
     */
    static void staticMembers(String bootstrap, String topic, String group) throws Exception {
        createTopic(bootstrap, topic, 4);
        Member first = new Member(bootstrap, topic, group, "first", "instance-1");
        Member second = new Member(bootstrap, topic, group, "second", "instance-2");
        List<Member> members = List.of(first, second);
        BooleanSupplier split = () -> first.assigned.size() == 2 && second.assigned.size() == 2
                && !first.assigned.stream().anyMatch(second.assigned::contains);
        waitFor(split, () -> pollAll(members), "two static members with two partitions each");
        int generation = first.consumer.groupMetadata().generationId();
        int revocations = first.revocations;
        Set<Integer> firstOwns = new TreeSet<>(first.assigned);
        Set<Integer> secondOwned = new TreeSet<>(second.assigned);
        // A static member's close sends no LeaveGroup: its place waits for it.
        second.consumer.close();
        Member restarted = new Member(bootstrap, topic, group, "second-again", "instance-2");
        waitFor(() -> !restarted.assigned.isEmpty(), () -> pollAll(List.of(first, restarted)),
                "the restarted static member's assignment");
        // Some heartbeats of the first member, which would see a rebalance if there were one.
        for (int poll = 0; poll < 15; poll++) {
            pollAll(List.of(first, restarted));
        }
        check(restarted.assigned.equals(secondOwned), "the restarted member got " + restarted.assigned
                + ", its instance had " + secondOwned);
        check(first.assigned.equals(firstOwns) && first.revocations == revocations,
                "the other member was rebalanced: it owns " + first.assigned + " after " + first.revocations
                        + " revocations (had " + firstOwns + " after " + revocations + ")");
        int restartedGeneration = restarted.consumer.groupMetadata().generationId();
        int firstGeneration = first.consumer.groupMetadata().generationId();
        check(restartedGeneration == generation && firstGeneration == generation,
                "generations " + firstGeneration + " and " + restartedGeneration + ", not " + generation);
        first.consumer.close();
        restarted.consumer.close();
        System.out.println("ok");
    }

    static void adminTopics(String bootstrap) throws Exception {
        String topic = "java-admin";
        try (Admin admin = admin(bootstrap)) {
            DescribeClusterResult cluster = admin.describeCluster();
            Collection<Node> nodes = cluster.nodes().get(60, TimeUnit.SECONDS);
            Node controller = cluster.controller().get(60, TimeUnit.SECONDS);
            String clusterId = cluster.clusterId().get(60, TimeUnit.SECONDS);
            check(nodes.size() == 1, "cluster nodes " + nodes);
            Node node = nodes.iterator().next();
            check(controller.id() == node.id(), "controller " + controller + " is not the node " + node);
            check(clusterId != null && !clusterId.isEmpty(), "cluster id " + clusterId);
            check(bootstrap.equals(node.host() + ":" + node.port()), "the node is at " + node);

            Map<String, String> configs = Map.of("retention.ms", "86400000", "cleanup.policy", "compact");
            admin.createTopics(List.of(new NewTopic(topic, 3, (short) 1).configs(configs))).all()
                    .get(60, TimeUnit.SECONDS);
            try {
                admin.createTopics(List.of(new NewTopic(topic, 3, (short) 1))).all().get(60, TimeUnit.SECONDS);
                throw new Failure("creating " + topic + " again succeeded");
            } catch (ExecutionException error) {
                check(error.getCause() instanceof TopicExistsException, "creating again failed with " + error);
            }
            Set<String> listed = admin.listTopics().names().get(60, TimeUnit.SECONDS);
            check(listed.contains(topic), "listTopics gave " + listed);

            TopicDescription description =
                    admin.describeTopics(List.of(topic)).allTopicNames().get(60, TimeUnit.SECONDS).get(topic);
            check(description.name().equals(topic) && !description.isInternal(), "described as " + description);
            check(description.partitions().size() == 3, "described with " + description.partitions());
            for (int index = 0; index < 3; index++) {
                TopicPartitionInfo info = description.partitions().get(index);
                check(info.partition() == index && info.leader() != null && info.leader().id() == node.id()
                        && info.replicas().size() == 1 && info.isr().size() == 1, "partition " + info);
            }

            ConfigResource resource = new ConfigResource(ConfigResource.Type.TOPIC, topic);
            Config config = admin.describeConfigs(List.of(resource)).all().get(60, TimeUnit.SECONDS).get(resource);
            check(config.get("retention.ms") != null && config.get("retention.ms").value().equals("86400000"),
                    "retention.ms described as " + config.get("retention.ms"));
            check(config.get("cleanup.policy") != null && config.get("cleanup.policy").value().equals("compact"),
                    "cleanup.policy described as " + config.get("cleanup.policy"));
            ConfigResource broker = new ConfigResource(ConfigResource.Type.BROKER, String.valueOf(node.id()));
            Config brokerConfig = admin.describeConfigs(List.of(broker)).all().get(60, TimeUnit.SECONDS).get(broker);
            check(brokerConfig.get("num.partitions") != null, "broker configs " + brokerConfig);

            admin.deleteTopics(List.of(topic)).all().get(60, TimeUnit.SECONDS);
            listed = admin.listTopics().names().get(60, TimeUnit.SECONDS);
            check(!listed.contains(topic), "deleted topic still listed: " + listed);
            try {
                admin.describeTopics(List.of(topic)).allTopicNames().get(60, TimeUnit.SECONDS);
                throw new Failure("the deleted topic is still described");
            } catch (ExecutionException error) {
                check(error.getCause() instanceof UnknownTopicOrPartitionException,
                        "describing the deleted topic failed with " + error);
            }
        }
        System.out.println("ok");
    }

    /**
     * One idempotent producer sends values 0..count-1 to partition 0, paced, while the test
     * restarts the broker: it prints "started" once the first records are acknowledged, and
     * "ok" when every record is acknowledged without an error.
     */
    static void produceThroughRestart(String bootstrap, String topic, int count) throws Exception {
        createTopic(bootstrap, topic, 1);
        Properties props = new Properties();
        props.put(ProducerConfig.RECONNECT_BACKOFF_MAX_MS_CONFIG, 200);
        props.put(ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, 10000);
        List<Future<RecordMetadata>> futures = new ArrayList<>();
        try (KafkaProducer<String, String> producer = producer(bootstrap, "none", props)) {
            for (int index = 0; index < count; index++) {
                futures.add(producer.send(new ProducerRecord<>(topic, 0, null, String.valueOf(index))));
                if (index == 199) {
                    futures.get(index).get(60, TimeUnit.SECONDS);
                    System.out.println("started");
                    System.out.flush();
                }
                if (index % 20 == 19) {
                    Thread.sleep(10);
                }
            }
            producer.flush();
            // The restart happened while this producer was connected (not after it finished).
            double closed = producer.metrics().entrySet().stream()
                    .filter(metric -> metric.getKey().name().equals("connection-close-total")
                            && metric.getKey().group().equals("producer-metrics"))
                    .mapToDouble(metric -> ((Number) metric.getValue().metricValue()).doubleValue()).sum();
            check(closed >= 1, "the producer's connection never closed: the broker restarted after it finished");
        }
        for (int index = 0; index < count; index++) {
            try {
                futures.get(index).get(60, TimeUnit.SECONDS);
            } catch (ExecutionException error) {
                throw new Failure("record " + index + " failed: " + error.getCause());
            }
        }
        System.out.println("ok");
    }

    /** Partition 0 of `topic` holds exactly the values 0..count-1, in order. */
    static void checkValues(String bootstrap, String topic, int count) {
        TopicPartition partition = new TopicPartition(topic, 0);
        try (KafkaConsumer<String, String> consumer = consumer(bootstrap, null)) {
            consumer.assign(List.of(partition));
            long end = consumer.endOffsets(List.of(partition)).get(partition);
            check(end == count, topic + " ends at " + end + ", not " + count);
            consumer.seekToBeginning(List.of(partition));
            List<ConsumerRecord<String, String>> got = pollUntil(consumer, count);
            for (int index = 0; index < count; index++) {
                check(got.get(index).value().equals(String.valueOf(index)),
                        "offset " + index + " holds " + got.get(index).value());
            }
        }
        System.out.println("ok");
    }

    static void consumeGroup(String bootstrap, String topic, String group, int count) {
        try (KafkaConsumer<String, String> consumer = consumer(bootstrap, group)) {
            consumer.subscribe(List.of(topic));
            List<ConsumerRecord<String, String>> got = pollUntil(consumer, count);
            check(got.size() == count, "consumed " + got.size() + " of " + count);
            consumer.commitSync();
            StringBuilder out = new StringBuilder();
            got.forEach(record -> out.append(record.value()).append('\n'));
            System.out.print(out);
        }
    }

    public static void main(String[] args) throws Exception {
        String command = args[0];
        String bootstrap = args[1];
        try {
            switch (command) {
                case "codecs" -> codecs(bootstrap);
                case "group" -> group(bootstrap, args[2], args[3]);
                case "admin" -> adminTopics(bootstrap);
                case "static" -> staticMembers(bootstrap, args[2], args[3]);
                case "produce" -> {
                    int first = Integer.parseInt(args[3]);
                    int count = Integer.parseInt(args[4]);
                    List<String> values = new ArrayList<>();
                    for (int value = first; value < first + count; value++) {
                        values.add(String.valueOf(value));
                    }
                    produce(bootstrap, args[2], values, "zstd", false);
                }
                case "produce-through-restart" -> produceThroughRestart(bootstrap, args[2], Integer.parseInt(args[3]));
                case "check-values" -> checkValues(bootstrap, args[2], Integer.parseInt(args[3]));
                case "consume" -> consumeGroup(bootstrap, args[2], args[3], Integer.parseInt(args[4]));
                default -> throw new Failure("unknown command " + command);
            }
        } catch (Failure failure) {
            System.err.println("FAIL: " + failure.getMessage());
            System.exit(1);
        }
        // The clients' threads are closed; exit now rather than wait for stragglers.
        System.exit(0);
    }
}
