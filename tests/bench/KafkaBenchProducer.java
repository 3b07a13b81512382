// The Java side of tests/bench/kafka.sh: Apache Kafka's own producer (kafka-clients 4.3).
//
// Usage: java -cp JARS:CLASSES KafkaBenchProducer BOOTSTRAP TOPIC PARTITIONS RECORDS SIZE
// Creates TOPIC with PARTITIONS (AdminClient), produces RECORDS values of SIZE bytes round-robin
// over the partitions with acks=all (not idempotent, as the librdkafka client), and prints one
// JSON line: bytes, seconds, MB/s (10^6 bytes), records/s and the p50/p99/max latency in ms from
// the send call to the acknowledgement callback. Exits 1 on any error.

import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Properties;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.ByteArraySerializer;

public final class KafkaBenchProducer {
    private KafkaBenchProducer() {}

    public static void main(String[] args) throws Exception {
        String bootstrap = args[0];
        String topic = args[1];
        int partitions = Integer.parseInt(args[2]);
        int records = Integer.parseInt(args[3]);
        int size = Integer.parseInt(args[4]);

        Properties adminProps = new Properties();
        adminProps.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        try (Admin admin = Admin.create(adminProps)) {
            admin.createTopics(List.of(new NewTopic(topic, partitions, (short) 1))).all().get(60, TimeUnit.SECONDS);
        }

        Properties props = new Properties();
        props.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.put(ProducerConfig.ACKS_CONFIG, "all");
        props.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, false);
        props.put(ProducerConfig.LINGER_MS_CONFIG, 5);
        props.put(ProducerConfig.BATCH_SIZE_CONFIG, 262144);
        props.put(ProducerConfig.BUFFER_MEMORY_CONFIG, 32L * 1024 * 1024);
        props.put(ProducerConfig.COMPRESSION_TYPE_CONFIG, "none");
        props.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        props.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());

        byte[] payload = new byte[size];
        new Random(7).nextBytes(payload);
        long[] latencies = new long[records];
        AtomicInteger acknowledged = new AtomicInteger();
        AtomicReference<Exception> failure = new AtomicReference<>();
        long started = System.nanoTime();
        try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(props)) {
            for (int index = 0; index < records; index++) {
                final int slot = index;
                final long sentAt = System.nanoTime();
                producer.send(new ProducerRecord<>(topic, index % partitions, null, payload), (metadata, error) -> {
                    if (error != null) {
                        failure.compareAndSet(null, error);
                    } else {
                        latencies[slot] = System.nanoTime() - sentAt;
                        acknowledged.incrementAndGet();
                    }
                });
            }
            producer.flush();
        }
        double seconds = (System.nanoTime() - started) / 1e9;
        if (failure.get() != null) {
            System.err.println("KafkaBenchProducer: " + failure.get());
            System.exit(1);
        }
        if (acknowledged.get() != records) {
            System.err.println("KafkaBenchProducer: " + acknowledged.get() + " of " + records + " acknowledged");
            System.exit(1);
        }
        Arrays.sort(latencies);
        long total = (long) records * size;
        System.out.println(String.format(Locale.ROOT,
                "{\"bytes\": %d, \"seconds\": %.6f, \"mb_s\": %.3f, \"records_s\": %.1f, \"p50_ms\": %.3f, "
                        + "\"p99_ms\": %.3f, \"max_ms\": %.3f}",
                total, seconds, total / seconds / 1e6, records / seconds, percentile(latencies, 0.50) / 1e6,
                percentile(latencies, 0.99) / 1e6, latencies[records - 1] / 1e6));
        System.exit(0);
    }

    static long percentile(long[] sorted, double fraction) {
        int index = (int) Math.min(sorted.length - 1, Math.round(fraction * (sorted.length - 1)));
        return sorted[index];
    }
}
