// The Debezium side of the oracle test (tests/all/oracle.rs): runs Debezium's embedded engine
// with its PostgresConnector, once per properties file and all in this one JVM, and writes every
// event as one JSON line: {"topic", "key", "value", "key_schema", "value_schema"}, where key and
// value are Kafka Connect's JsonConverter output with schemas.enable=false and the *_schema ones
// the same events with schemas.enable=true. An engine stops after the first event of a topic that
// ends with the stop suffix; the JVM exits when every engine has stopped, or at once (status 2)
// when an engine fails.
//
// Usage: java -cp 'libs/*:.' DebeziumOracle <stop-topic-suffix> <properties> <output> [<properties> <output>]...

import io.debezium.engine.DebeziumEngine;
import io.debezium.engine.ChangeEvent;
import io.debezium.embedded.Connect;
import java.io.FileInputStream;
import java.io.FileOutputStream;
import java.io.OutputStreamWriter;
import java.io.Writer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import org.apache.kafka.connect.json.JsonConverter;
import org.apache.kafka.connect.source.SourceRecord;

public final class DebeziumOracle {
    private static JsonConverter converter(boolean schemas, boolean isKey) {
        JsonConverter converter = new JsonConverter();
        converter.configure(Map.of("schemas.enable", Boolean.toString(schemas)), isKey);
        return converter;
    }

    private static String json(JsonConverter converter, String topic, org.apache.kafka.connect.data.Schema schema, Object value) {
        byte[] bytes = converter.fromConnectData(topic, schema, value);
        return bytes == null ? "null" : new String(bytes, StandardCharsets.UTF_8);
    }

    private static String quote(String text) {
        return "\"" + text.replace("\\", "\\\\").replace("\"", "\\\"") + "\"";
    }

    public static void main(String[] args) throws Exception {
        if (args.length < 3 || args.length % 2 != 1) {
            System.err.println("usage: DebeziumOracle <stop-topic-suffix> (<properties> <output>)+");
            System.exit(64);
        }
        String stopSuffix = args[0];
        int engines = (args.length - 1) / 2;
        CountDownLatch stopped = new CountDownLatch(engines);
        ExecutorService executor = Executors.newFixedThreadPool(engines);
        List<DebeziumEngine<ChangeEvent<SourceRecord, SourceRecord>>> running = new ArrayList<>();
        for (int index = 0; index < engines; index++) {
            Properties properties = new Properties();
            try (FileInputStream in = new FileInputStream(args[1 + 2 * index])) {
                properties.load(in);
            }
            Writer out = new OutputStreamWriter(new FileOutputStream(args[2 + 2 * index]), StandardCharsets.UTF_8);
            JsonConverter keyPlain = converter(false, true);
            JsonConverter valuePlain = converter(false, false);
            JsonConverter keySchema = converter(true, true);
            JsonConverter valueSchema = converter(true, false);
            boolean[] done = {false};
            DebeziumEngine<ChangeEvent<SourceRecord, SourceRecord>> engine = DebeziumEngine.create(Connect.class)
                .using(properties)
                .notifying((records, committer) -> {
                    try {
                        for (ChangeEvent<SourceRecord, SourceRecord> event : records) {
                            SourceRecord record = event.value();
                            String topic = record.topic();
                            out.write("{\"topic\":" + quote(topic)
                                + ",\"key\":" + json(keyPlain, topic, record.keySchema(), record.key())
                                + ",\"value\":" + json(valuePlain, topic, record.valueSchema(), record.value())
                                + ",\"key_schema\":" + json(keySchema, topic, record.keySchema(), record.key())
                                + ",\"value_schema\":" + json(valueSchema, topic, record.valueSchema(), record.value())
                                + "}\n");
                            committer.markProcessed(event);
                            if (!done[0] && topic.endsWith(stopSuffix)) {
                                done[0] = true;
                                stopped.countDown();
                            }
                        }
                        out.flush();
                    } catch (java.io.IOException error) {
                        throw new java.io.UncheckedIOException(error);
                    }
                    committer.markBatchFinished();
                })
                .using((success, message, error) -> {
                    if (!success) {
                        System.err.println("engine " + properties.getProperty("name") + " failed: " + message);
                        if (error != null) {
                            error.printStackTrace();
                        }
                        System.exit(2);
                    }
                })
                .build();
            running.add(engine);
            executor.execute(engine);
        }
        stopped.await();
        for (DebeziumEngine<ChangeEvent<SourceRecord, SourceRecord>> engine : running) {
            engine.close();
        }
        executor.shutdownNow();
        System.exit(0);
    }
}
