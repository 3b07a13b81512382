// kafkajs (npm) against weir's Kafka listener.
//
// Usage: node kafkajs_clients.js COMMAND BOOTSTRAP [ARGS]
//   codecs BOOTSTRAP                 produce with none, gzip and snappy; consume from
//                                    earliest, latest and a timestamp
//   group BOOTSTRAP TOPIC GROUP      two members: rebalance on join and leave, commit
//   produce BOOTSTRAP TOPIC FIRST N  produce values FIRST..FIRST+N-1 (idempotent, acks=all)
//   consume BOOTSTRAP TOPIC GROUP N  consume N records as GROUP, commit, print their values
// Prints "ok" (or the values) on success; exits non-zero with a message on any mismatch or
// timeout.
//
// Codecs: kafkajs compresses with gzip by itself. Snappy, LZ4 and ZSTD need codec plugins;
// this script registers kafkajs-snappy (pure JavaScript, installed with kafkajs by
// tests/run.sh). LZ4 (kafkajs-lz4) and ZSTD (@kafkajs/zstd) plugins build native addons, so
// they are not used here: those codecs are covered by kcat, confluent-kafka and the Java client.
//
// kafkajs is found through NODE_PATH (the test points it at tests/kafka/js/cache/node_modules).

'use strict'

const { Kafka, CompressionTypes, CompressionCodecs, logLevel } = require('kafkajs')
const SnappyCodec = require('kafkajs-snappy')

CompressionCodecs[CompressionTypes.Snappy] = SnappyCodec

const DEADLINE_MS = 60000

function fail(message) {
  process.stderr.write(`FAIL: ${message}\n`)
  process.exit(1)
}

// kafkajs logs to stdout by default; the test reads stdout, so the log goes to stderr.
const stderrLog = () => ({ namespace, level, log }) => {
  const { message, ...extra } = log
  process.stderr.write(`[kafkajs ${level}] ${namespace}: ${message} ${JSON.stringify(extra)}\n`)
}

function client(bootstrap, clientId) {
  return new Kafka({
    clientId,
    brokers: [bootstrap],
    logLevel: logLevel.WARN,
    logCreator: stderrLog,
    retry: { retries: 8, initialRetryTime: 100 },
  })
}

const sleep = ms => new Promise(resolve => setTimeout(resolve, ms))

async function waitFor(condition, what) {
  const deadline = Date.now() + DEADLINE_MS
  while (!condition()) {
    if (Date.now() > deadline) fail(`timed out waiting for ${what}`)
    await sleep(50)
  }
}

async function createTopic(kafka, topic, numPartitions) {
  const admin = kafka.admin()
  await admin.connect()
  const created = await admin.createTopics({ topics: [{ topic, numPartitions }], waitForLeaders: true })
  if (!created) fail(`createTopics says ${topic} already exists`)
  await admin.disconnect()
}

// An idempotent producer with acks=all (-1): kafkajs checks sequence numbers with InitProducerId.
async function produce(kafka, topic, messages, compression = CompressionTypes.None) {
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 })
  await producer.connect()
  const results = await producer.send({ topic, acks: -1, compression, messages })
  await producer.disconnect()
  for (const result of results) {
    if (result.errorCode !== 0) fail(`produce to ${topic}: ${JSON.stringify(result)}`)
  }
  return results
}

// Consumes `count` messages of `topic` as a new group starting where `start` says.
async function consumeAll(kafka, topic, groupId, count, { fromBeginning = true, seek = null } = {}) {
  const consumer = kafka.consumer({ groupId, maxWaitTimeInMs: 200 })
  const got = []
  await consumer.connect()
  await consumer.subscribe({ topics: [topic], fromBeginning })
  await consumer.run({
    autoCommit: false,
    eachMessage: async ({ partition, message }) => {
      got.push({ partition, offset: Number(message.offset), value: message.value.toString(), timestamp: message.timestamp })
    },
  })
  if (seek !== null) consumer.seek({ topic, partition: seek.partition, offset: seek.offset })
  await waitFor(() => got.length >= count, `${count} messages of ${topic} (got ${got.length})`)
  await consumer.disconnect()
  return got
}

const CODECS = [
  ['none', CompressionTypes.None],
  ['gzip', CompressionTypes.GZIP],
  ['snappy', CompressionTypes.Snappy],
]

async function codecs(bootstrap) {
  const kafka = client(bootstrap, 'kafkajs-codecs')
  const baseTs = 1700000000000
  for (const [name, codec] of CODECS) {
    const topic = `js-${name}`
    await createTopic(kafka, topic, 1)
    const values = Array.from({ length: 300 }, (_, index) => `${name}-${index}-` + 'v'.repeat(index % 100))
    // Several sends: several batches, so offsets are rewritten across batch boundaries too.
    for (let first = 0; first < values.length; first += 100) {
      const messages = values.slice(first, first + 100).map((value, index) => ({
        key: `k${first + index}`,
        value,
        partition: 0,
        timestamp: String(baseTs + first + index),
      }))
      const [result] = await produce(kafka, topic, messages, codec)
      if (Number(result.baseOffset) !== first) fail(`${name}: batch at ${first} got base offset ${result.baseOffset}`)
    }
    const got = await consumeAll(kafka, topic, `js-earliest-${name}`, values.length)
    if (got.length !== values.length) fail(`${name}: consumed ${got.length}, not ${values.length}`)
    got.forEach((message, index) => {
      if (message.value !== values[index]) fail(`${name}: value at ${index} is ${message.value}`)
      if (message.offset !== index) fail(`${name}: offset at ${index} is ${message.offset}`)
      if (Number(message.timestamp) !== baseTs + index) fail(`${name}: timestamp at ${index} is ${message.timestamp}`)
    })
    // From a timestamp: record 221 is the first at or after baseTs + 221.
    const admin = kafka.admin()
    await admin.connect()
    const [found] = await admin.fetchTopicOffsetsByTimestamp(topic, baseTs + 221)
    const [ends] = await admin.fetchTopicOffsets(topic)
    await admin.disconnect()
    if (found.partition !== 0 || Number(found.offset) !== 221) fail(`${name}: offset for timestamp is ${JSON.stringify(found)}`)
    if (Number(ends.low) !== 0 || Number(ends.high) !== values.length) fail(`${name}: earliest/latest ${JSON.stringify(ends)}`)
    const fromTs = await consumeAll(kafka, topic, `js-ts-${name}`, 1, { seek: { partition: 0, offset: found.offset } })
    if (fromTs[0].offset !== 221 || fromTs[0].value !== values[221]) {
      fail(`${name}: first record from the timestamp is ${JSON.stringify(fromTs[0])}`)
    }
  }
  // From the latest offset: a new group that does not start from the beginning sees only what
  // is produced after its first fetch.
  const topic = 'js-latest'
  await createTopic(kafka, topic, 1)
  await produce(kafka, topic, [{ value: 'old-1', partition: 0 }, { value: 'old-2', partition: 0 }])
  const consumer = kafka.consumer({ groupId: 'js-latest', maxWaitTimeInMs: 200 })
  let fetched = false
  consumer.on(consumer.events.FETCH, () => {
    fetched = true
  })
  const got = []
  await consumer.connect()
  await consumer.subscribe({ topics: [topic], fromBeginning: false })
  await consumer.run({ autoCommit: false, eachMessage: async ({ message }) => got.push(message.value.toString()) })
  await waitFor(() => fetched, 'the latest consumer\'s first fetch')
  await produce(kafka, topic, [{ value: 'new-1', partition: 0 }])
  await waitFor(() => got.length >= 1, 'a message from latest')
  await sleep(500)
  await consumer.disconnect()
  if (JSON.stringify(got) !== JSON.stringify(['new-1'])) fail(`from latest got ${JSON.stringify(got)}`)
  process.stdout.write('ok\n')
}

// A group member that records its assignment (from GROUP_JOIN) and what it consumed.
class Member {
  constructor(kafka, topic, groupId, name) {
    this.topic = topic
    this.name = name
    this.assigned = null
    this.next = new Map() // partition -> next offset to read
    this.values = []
    this.consumer = kafka.consumer({ groupId, sessionTimeout: 10000, heartbeatInterval: 500, rebalanceTimeout: 20000, maxWaitTimeInMs: 200 })
    this.consumer.on(this.consumer.events.GROUP_JOIN, event => {
      this.assigned = (event.payload.memberAssignment[topic] || []).slice().sort((a, b) => a - b)
    })
  }

  async start() {
    await this.consumer.connect()
    await this.consumer.subscribe({ topics: [this.topic], fromBeginning: true })
    await this.consumer.run({
      autoCommit: false,
      eachMessage: async ({ partition, message }) => {
        this.values.push(message.value.toString())
        this.next.set(partition, Number(message.offset) + 1)
      },
    })
  }

  owns(partitions) {
    return JSON.stringify(this.assigned) === JSON.stringify(partitions)
  }

  atEnd(end) {
    return this.assigned !== null && this.assigned.every(partition => this.next.get(partition) === end)
  }

  async commit() {
    const offsets = this.assigned.map(partition => ({ topic: this.topic, partition, offset: String(this.next.get(partition)) }))
    await this.consumer.commitOffsets(offsets)
  }
}

async function group(bootstrap, topic, groupId) {
  const kafka = client(bootstrap, 'kafkajs-group')
  await createTopic(kafka, topic, 4)
  for (let partition = 0; partition < 4; partition++) {
    await produce(kafka, topic, Array.from({ length: 25 }, (_, index) => ({ value: `p${partition}-${index}`, partition })))
  }
  const first = new Member(kafka, topic, groupId, 'first')
  await first.start()
  await waitFor(() => first.owns([0, 1, 2, 3]), `the first member to own all partitions (has ${first.assigned})`)
  const second = new Member(kafka, topic, groupId, 'second')
  await second.start()
  const split = () =>
    first.assigned && second.assigned && first.assigned.length === 2 && second.assigned.length === 2 &&
    first.assigned.every(partition => !second.assigned.includes(partition))
  await waitFor(split, `a rebalance to two partitions each (first ${first.assigned}, second ${second.assigned})`)
  await waitFor(() => split() && first.atEnd(25) && second.atEnd(25), 'both members to read their partitions to the end')
  await first.commit()
  await second.commit()
  // The second member leaves (LeaveGroup): the first owns everything again.
  await second.consumer.disconnect()
  await waitFor(() => first.owns([0, 1, 2, 3]), `the first member to own all partitions again (has ${first.assigned})`)
  await first.consumer.disconnect()
  const admin = kafka.admin()
  await admin.connect()
  const [committed] = await admin.fetchOffsets({ groupId, topics: [topic] })
  const description = await admin.describeGroups([groupId])
  await admin.disconnect()
  const offsets = committed.partitions.map(partition => Number(partition.offset)).sort()
  if (JSON.stringify(offsets) !== '[25,25,25,25]') fail(`committed offsets ${JSON.stringify(committed)}`)
  const [described] = description.groups
  if (described.groupId !== groupId || described.protocolType !== 'consumer' || described.members.length !== 0) {
    fail(`the group after every member left is described as ${JSON.stringify(described)}`)
  }
  const expected = []
  for (let partition = 0; partition < 4; partition++) {
    for (let index = 0; index < 25; index++) expected.push(`p${partition}-${index}`)
  }
  const seen = new Set(first.values.concat(second.values))
  const missing = expected.filter(value => !seen.has(value))
  if (missing.length > 0) fail(`records missing from the group's consumption: ${missing}`)
  process.stdout.write('ok\n')
}

async function produceRange(bootstrap, topic, firstValue, count) {
  const kafka = client(bootstrap, 'kafkajs-produce')
  const messages = Array.from({ length: count }, (_, index) => ({ value: String(firstValue + index), partition: 0 }))
  await produce(kafka, topic, messages, CompressionTypes.GZIP)
}

async function consumeGroup(bootstrap, topic, groupId, count) {
  const kafka = client(bootstrap, 'kafkajs-consume')
  const consumer = kafka.consumer({ groupId, maxWaitTimeInMs: 200 })
  const values = []
  let next = null
  await consumer.connect()
  await consumer.subscribe({ topics: [topic], fromBeginning: true })
  await consumer.run({
    autoCommit: false,
    eachMessage: async ({ partition, message }) => {
      if (partition !== 0) fail(`message from partition ${partition}`)
      values.push(message.value.toString())
      next = Number(message.offset) + 1
    },
  })
  await waitFor(() => values.length >= count, `${count} messages as ${groupId} (got ${values})`)
  await consumer.commitOffsets([{ topic, partition: 0, offset: String(next) }])
  await consumer.disconnect()
  process.stdout.write(values.join('\n') + '\n')
}

async function main() {
  const [command, bootstrap, ...args] = process.argv.slice(2)
  if (command === 'codecs') await codecs(bootstrap)
  else if (command === 'group') await group(bootstrap, args[0], args[1])
  else if (command === 'produce') await produceRange(bootstrap, args[0], Number(args[1]), Number(args[2]))
  else if (command === 'consume') await consumeGroup(bootstrap, args[0], args[1], Number(args[2]))
  else fail(`unknown command ${command}`)
}

main().catch(error => fail(error && error.stack ? error.stack : String(error)))
