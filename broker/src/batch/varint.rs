//! Kafka's zigzag varints (protobuf-style base-128, least significant group first).

use bytes::Bytes;

/// A reader over a byte slice for the varint-heavy record format.
pub(super) struct Cursor<'a> {
    pub(super) data: &'a [u8],
    pub(super) position: usize,
}

impl Cursor<'_> {
    pub(super) fn u8(&mut self) -> Result<u8, &'static str> {
        let byte = *self.data.get(self.position).ok_or("record ends early")?;
        self.position += 1;
        Ok(byte)
    }

    pub(super) fn unsigned_varint(&mut self, max_bytes: usize) -> Result<u64, &'static str> {
        let mut value = 0u64;
        for index in 0..max_bytes {
            let byte = self.u8()?;
            value |= u64::from(byte & 0x7f) << (7 * index);
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err("varint too long")
    }

    pub(super) fn varint(&mut self) -> Result<i32, &'static str> {
        let raw = self.unsigned_varint(5)?;
        let raw = u32::try_from(raw).map_err(|_overflow| "varint overflows 32 bits")?;
        Ok(((raw >> 1) as i32) ^ -((raw & 1) as i32))
    }

    pub(super) fn varlong(&mut self) -> Result<i64, &'static str> {
        // The tenth byte may only carry the top bit of the 64.
        let start = self.position;
        let raw = self.unsigned_varint(10)?;
        if self.position - start == 10 && self.data[self.position - 1] > 1 {
            return Err("varlong overflows 64 bits");
        }
        Ok(((raw >> 1) as i64) ^ -((raw & 1) as i64))
    }

    pub(super) fn take(&mut self, len: usize) -> Result<std::ops::Range<usize>, &'static str> {
        let end = self
            .position
            .checked_add(len)
            .filter(|end| *end <= self.data.len())
            .ok_or("field length past the end of the record")?;
        let range = self.position..end;
        self.position = end;
        Ok(range)
    }

    /// A varint length (-1 for null) and that many bytes, as a zero-copy slice of `batch`.
    pub(super) fn nullable_bytes(&mut self, batch: &Bytes) -> Result<Option<Bytes>, &'static str> {
        match self.varint()? {
            -1 => Ok(None),
            len if len < -1 => Err("negative field length"),
            len => Ok(Some(batch.slice(self.take(len as usize)?))),
        }
    }
}

pub(super) fn zigzag32(value: i32) -> u64 {
    u64::from(((value << 1) ^ (value >> 31)) as u32)
}

pub(super) fn zigzag64(value: i64) -> u64 {
    ((value << 1) ^ (value >> 63)) as u64
}

pub(super) fn unsigned_varint_size(value: u64) -> usize {
    let bits = 64 - (value | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

pub(super) fn varint_size(value: i32) -> usize {
    unsigned_varint_size(zigzag32(value))
}

pub(super) fn varlong_size(value: i64) -> usize {
    unsigned_varint_size(zigzag64(value))
}

pub(super) fn put_unsigned_varint(buf: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        buf.push((value as u8) | 0x80);
        value >>= 7;
    }
    buf.push(value as u8);
}

pub(super) fn put_varint(buf: &mut Vec<u8>, value: i32) {
    put_unsigned_varint(buf, zigzag32(value));
}

pub(super) fn put_varlong(buf: &mut Vec<u8>, value: i64) {
    put_unsigned_varint(buf, zigzag64(value));
}
