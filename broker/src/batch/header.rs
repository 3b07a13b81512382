//! The fixed 61-byte batch header: layout, parsing, and the CRC32C check.

/// Base offset (8) + batch length (4): the part of a batch that `batchLength` does not count.
pub(crate) const LOG_OVERHEAD: usize = 12;
pub(super) const PARTITION_LEADER_EPOCH_OFFSET: usize = 12;
pub(super) const MAGIC_OFFSET: usize = 16;
pub(super) const CRC_OFFSET: usize = 17;
pub(super) const ATTRIBUTES_OFFSET: usize = 21;
pub(super) const LAST_OFFSET_DELTA_OFFSET: usize = 23;
pub(super) const BASE_TIMESTAMP_OFFSET: usize = 27;
pub(super) const MAX_TIMESTAMP_OFFSET: usize = 35;
pub(super) const PRODUCER_ID_OFFSET: usize = 43;
pub(super) const PRODUCER_EPOCH_OFFSET: usize = 51;
pub(super) const BASE_SEQUENCE_OFFSET: usize = 53;
pub(super) const RECORD_COUNT_OFFSET: usize = 57;
/// Size of the fixed batch header, up to and including `recordCount`.
pub(crate) const BATCH_HEADER_SIZE: usize = 61;

/// The only batch format the log reads and writes.
pub(crate) const MAGIC_V2: i8 = 2;
/// The partition leader epoch this single-node log stamps on every batch. Recovery checks it,
/// because those four bytes are outside the CRC.
pub(crate) const LEADER_EPOCH: i32 = 0;
pub(super) const NO_PRODUCER_ID: i64 = -1;
pub(super) const NO_PRODUCER_EPOCH: i16 = -1;
pub(super) const NO_SEQUENCE: i32 = -1;
pub(super) const COMPRESSION_MASK: i16 = 0x07;
/// Attribute bit 4: the batch belongs to a transaction.
pub(super) const TRANSACTIONAL_FLAG: i16 = 0x10;
/// Attribute bit 5: a control batch (transaction marker), not data.
const CONTROL_FLAG: i16 = 0x20;

/// The smallest possible encoded record: a one-byte length and six one-byte fields (attributes,
/// timestamp delta, offset delta, null key, null value, zero headers).
pub(super) const MIN_RECORD_SIZE: usize = 7;
/// The smallest possible encoded header: an empty key and a null value.
pub(super) const MIN_HEADER_SIZE: usize = 2;
/// Bound on the record count of a compressed batch, whose decompressed size is unknown before
/// decoding (Kafka's own decoder is no stricter). At roughly 200 bytes per decoded record this
/// caps the up-front reservation at ~200 MiB of address space.
pub(super) const MAX_COMPRESSED_RECORD_COUNT: usize = 1 << 20;

/// Why a batch could not be encoded or decoded.
#[derive(thiserror::Error, Debug)]
pub enum BatchError {
    /// Fewer bytes than the batch claims.
    #[error("batch truncated: needed {needed} bytes, {available} available")]
    Truncated {
        /// Bytes needed.
        needed: usize,
        /// Bytes present.
        available: usize,
    },
    /// A magic byte other than 2 (message sets v0/v1 are not supported).
    #[error("unsupported record batch magic {magic}")]
    UnsupportedMagic {
        /// The magic byte found.
        magic: i8,
    },
    /// A `batchLength` too small to hold the header.
    #[error("invalid batch length {length}")]
    InvalidLength {
        /// The length found.
        length: i32,
    },
    /// The stored CRC32C does not match the batch's bytes.
    #[error("CRC32C mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    CrcMismatch {
        /// The CRC in the header.
        stored: u32,
        /// The CRC of the bytes.
        computed: u32,
    },
    /// A header field out of range (negative count or offset delta, unexpected leader epoch).
    #[error("invalid batch header: {reason}")]
    InvalidHeader {
        /// Which field.
        reason: &'static str,
    },
    /// More records than the batch's bytes could hold: refused before allocating for them.
    #[error("record count {count} exceeds the bound {limit} for this batch")]
    RecordCountTooLarge {
        /// The count in the header.
        count: i32,
        /// The most records the batch could hold.
        limit: usize,
    },
    /// A record whose fields do not parse.
    #[error("malformed record {index}: {reason}")]
    MalformedRecord {
        /// Index of the record in its batch.
        index: usize,
        /// What is wrong.
        reason: &'static str,
    },
    /// A base offset other than the one that follows the previous batch.
    #[error("batch base offset {found}, expected {expected}")]
    OffsetOutOfSequence {
        /// The offset that should come next.
        expected: i64,
        /// The batch's base offset.
        found: i64,
    },
    /// A compression codec number Kafka does not define.
    #[error("unknown compression codec {codec}")]
    UnknownCompression {
        /// The codec bits.
        codec: i16,
    },
    /// A compressed batch that the kafka-protocol decoder refused.
    #[error("cannot decode compressed batch")]
    Compressed {
        /// The decoder's error.
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },
    /// A record, or a single-record batch, larger than the format's 2 GiB limit.
    #[error("record too large to encode ({size} bytes)")]
    RecordTooLarge {
        /// The size that overflowed.
        size: usize,
    },
}

/// The fixed header of a batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct BatchHeader {
    pub(crate) base_offset: i64,
    pub(crate) batch_length: i32,
    pub(crate) partition_leader_epoch: i32,
    pub(crate) magic: i8,
    pub(crate) crc: u32,
    pub(crate) attributes: i16,
    pub(crate) last_offset_delta: i32,
    pub(crate) base_timestamp: i64,
    pub(crate) max_timestamp: i64,
    pub(crate) producer_id: i64,
    pub(crate) producer_epoch: i16,
    pub(crate) base_sequence: i32,
    pub(crate) record_count: i32,
}

fn i16_at(bytes: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([bytes[at], bytes[at + 1]])
}

fn i32_at(bytes: &[u8], at: usize) -> i32 {
    let mut raw = [0u8; 4];
    raw.copy_from_slice(&bytes[at..at + 4]);
    i32::from_be_bytes(raw)
}

fn i64_at(bytes: &[u8], at: usize) -> i64 {
    let mut raw = [0u8; 8];
    raw.copy_from_slice(&bytes[at..at + 8]);
    i64::from_be_bytes(raw)
}

impl BatchHeader {
    /// Parses and sanity-checks the header at the start of `bytes` (which may hold more than
    /// one batch). Does not check the CRC.
    pub(crate) fn parse(bytes: &[u8]) -> Result<Self, BatchError> {
        if bytes.len() < BATCH_HEADER_SIZE {
            return Err(BatchError::Truncated { needed: BATCH_HEADER_SIZE, available: bytes.len() });
        }
        let header = BatchHeader {
            base_offset: i64_at(bytes, 0),
            batch_length: i32_at(bytes, 8),
            partition_leader_epoch: i32_at(bytes, PARTITION_LEADER_EPOCH_OFFSET),
            magic: bytes[MAGIC_OFFSET] as i8,
            crc: i32_at(bytes, CRC_OFFSET) as u32,
            attributes: i16_at(bytes, ATTRIBUTES_OFFSET),
            last_offset_delta: i32_at(bytes, LAST_OFFSET_DELTA_OFFSET),
            base_timestamp: i64_at(bytes, BASE_TIMESTAMP_OFFSET),
            max_timestamp: i64_at(bytes, MAX_TIMESTAMP_OFFSET),
            producer_id: i64_at(bytes, PRODUCER_ID_OFFSET),
            producer_epoch: i16_at(bytes, PRODUCER_EPOCH_OFFSET),
            base_sequence: i32_at(bytes, BASE_SEQUENCE_OFFSET),
            record_count: i32_at(bytes, RECORD_COUNT_OFFSET),
        };
        // The magic decides how the rest reads, so it is checked first.
        if header.magic != MAGIC_V2 {
            return Err(BatchError::UnsupportedMagic { magic: header.magic });
        }
        if (header.batch_length as i64) < (BATCH_HEADER_SIZE - LOG_OVERHEAD) as i64 {
            return Err(BatchError::InvalidLength { length: header.batch_length });
        }
        if header.record_count < 0 {
            return Err(BatchError::InvalidHeader { reason: "negative record count" });
        }
        if header.last_offset_delta < 0 {
            return Err(BatchError::InvalidHeader { reason: "negative last offset delta" });
        }
        Ok(header)
    }

    /// Total size of the batch in bytes, log overhead included.
    pub(crate) fn size(&self) -> usize {
        LOG_OVERHEAD + self.batch_length as usize
    }

    /// Offset of the batch's last record.
    pub(crate) fn last_offset(&self) -> i64 {
        self.base_offset.saturating_add(self.last_offset_delta as i64)
    }

    /// The offset that follows this batch.
    pub(crate) fn next_offset(&self) -> i64 {
        self.last_offset().saturating_add(1)
    }

    pub(super) fn compression(&self) -> i16 {
        self.attributes & COMPRESSION_MASK
    }

    /// Whether this is a control batch (a transaction marker) rather than data.
    pub(crate) fn is_control(&self) -> bool {
        self.attributes & CONTROL_FLAG != 0
    }
}

/// Checks a whole batch (exactly one, nothing after it): header sanity, length, CRC32C.
pub(crate) fn check_batch(batch: &[u8]) -> Result<BatchHeader, BatchError> {
    let header = BatchHeader::parse(batch)?;
    if batch.len() != header.size() {
        return Err(BatchError::Truncated { needed: header.size(), available: batch.len() });
    }
    let computed = crc32c::crc32c(&batch[ATTRIBUTES_OFFSET..]);
    if computed != header.crc {
        return Err(BatchError::CrcMismatch { stored: header.crc, computed });
    }
    Ok(header)
}
