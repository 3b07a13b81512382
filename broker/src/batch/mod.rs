//! Kafka RecordBatch v2: the on-disk (and on-wire) form of every batch in the log.
//!
//! Segments hold batches exactly as Kafka's wire protocol carries them, so a Kafka-protocol
//! front end can answer a fetch by sending stored bytes without re-encoding. The layout (all
//! integers big-endian):
//!
//! ```text
//! offset  size  field
//!      0     8  baseOffset            \ "log overhead": not covered by the CRC
//!      8     4  batchLength           / (bytes after this field)
//!     12     4  partitionLeaderEpoch
//!     16     1  magic (= 2)
//!     17     4  crc (CRC32C of bytes 21..end)
//!     21     2  attributes (bits 0-2 compression, 3 timestamp type, 4 transactional, 5 control)
//!     23     4  lastOffsetDelta
//!     27     8  baseTimestamp
//!     35     8  maxTimestamp
//!     43     8  producerId
//!     51     2  producerEpoch
//!     53     4  baseSequence
//!     57     4  recordCount
//!     61     -  records: [length varint | attributes i8 | timestampDelta varlong |
//!                         offsetDelta varint | key | value | headers]
//! ```
//!
//! The CRC does not cover the base offset, so the log encodes a batch before it knows where the
//! batch will land and patches the offset in afterwards ([`EncodedBatches::assign_offsets`]),
//! keeping the encoding work outside the partition lock.
//!
//! Uncompressed batches (the only kind this log writes) are encoded and decoded here rather than
//! through `kafka_protocol::records`, for two reasons: that crate's record model keeps headers in a
//! map, so duplicate header keys (legal in Kafka, used by Kafka Connect) would collapse; and its
//! decoder allocates a map per record. The output is byte-for-byte what
//! `kafka_protocol::records::RecordBatchEncoder` produces for the same records (tested below),
//! and compressed batches (from foreign producers, or the runtime's Kafka backend) are
//! decompressed with `kafka_protocol::compression` and their records read by the same decoder,
//! after the record count is bounded. `wire` is the client side: the batches a producer sends
//! (compressed if asked) and the decoding of a fetch answer.

mod decode;
mod encode;
mod header;
pub(crate) mod ingest;
#[cfg(test)]
pub(crate) mod tests;
mod varint;
pub mod wire;

pub(crate) use self::decode::batch_records;
pub(crate) use self::encode::{BatchSpan, EncodedBatches, encode_retained};
pub use self::header::BatchError;
pub(crate) use self::header::{BATCH_HEADER_SIZE, BatchHeader, LEADER_EPOCH, check_batch};
pub use self::ingest::{CheckedBatches, ProducerBatchInfo};
