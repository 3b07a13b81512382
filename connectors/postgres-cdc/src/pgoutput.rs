//! A decoder of `pgoutput` messages (protocol version 1): no I/O, a byte slice in, a message out.
//! Begin and Commit arrive decoded from the host; this handles what is inside a transaction.

/// One column value of a tuple.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TupleValue {
    Null,
    /// A TOASTed value the change left unchanged: pgoutput does not send it.
    UnchangedToast,
    Text(String),
    Binary(Vec<u8>),
}

/// A column of a relation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    /// Part of the replica identity (the primary key under REPLICA IDENTITY DEFAULT).
    pub key: bool,
    pub name: String,
    pub type_oid: u32,
    pub type_modifier: i32,
}

/// A relation (table) as pgoutput describes it before its first change in a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relation {
    pub id: u32,
    pub schema: String,
    pub name: String,
    /// `d` default, `n` nothing, `f` full, `i` index.
    pub replica_identity: u8,
    pub columns: Vec<Column>,
}

/// A decoded pgoutput message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Relation(Relation),
    Insert {
        relation: u32,
        new: Vec<TupleValue>,
    },
    Update {
        relation: u32,
        old: Option<Vec<TupleValue>>,
        key_only: bool,
        new: Vec<TupleValue>,
    },
    Delete {
        relation: u32,
        old: Vec<TupleValue>,
        key_only: bool,
    },
    Truncate {
        relations: Vec<u32>,
        cascade: bool,
        restart_identity: bool,
    },
    /// Type, Origin, Begin/Commit (decoded by the host) and anything newer: nothing to emit.
    Other(u8),
}

/// A message that does not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError(pub String);

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "malformed pgoutput message: {}", self.0)
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, count: usize) -> Result<&'a [u8], DecodeError> {
        if self.bytes.len() < count {
            return Err(DecodeError(format!("truncated: wanted {count} bytes, {} left", self.bytes.len())));
        }
        let (head, tail) = self.bytes.split_at(count);
        self.bytes = tail;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }
    fn i16(&mut self) -> Result<i16, DecodeError> {
        Ok(i16::from_be_bytes(self.take(2)?.try_into().expect("two bytes")))
    }
    fn i32(&mut self) -> Result<i32, DecodeError> {
        Ok(i32::from_be_bytes(self.take(4)?.try_into().expect("four bytes")))
    }
    fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.take(4)?.try_into().expect("four bytes")))
    }
    fn cstring(&mut self) -> Result<String, DecodeError> {
        let end = self.bytes.iter().position(|&b| b == 0).ok_or_else(|| DecodeError("unterminated string".into()))?;
        let text = String::from_utf8_lossy(&self.bytes[..end]).into_owned();
        self.bytes = &self.bytes[end + 1..];
        Ok(text)
    }
    fn tuple(&mut self) -> Result<Vec<TupleValue>, DecodeError> {
        let count = self.i16()?;
        let mut values = Vec::with_capacity(count.max(0) as usize);
        for _ in 0..count {
            values.push(match self.u8()? {
                b'n' => TupleValue::Null,
                b'u' => TupleValue::UnchangedToast,
                b't' => {
                    let len = self.i32()?;
                    let bytes = self.take(usize::try_from(len).map_err(|_| DecodeError("negative length".into()))?)?;
                    TupleValue::Text(String::from_utf8_lossy(bytes).into_owned())
                }
                b'b' => {
                    let len = self.i32()?;
                    let bytes = self.take(usize::try_from(len).map_err(|_| DecodeError("negative length".into()))?)?;
                    TupleValue::Binary(bytes.to_vec())
                }
                other => return Err(DecodeError(format!("unknown tuple value kind {:?}", other as char))),
            });
        }
        Ok(values)
    }
}

/// Decode one pgoutput message.
///
/// # Errors
/// When the bytes are not a well-formed protocol-1 message.
pub fn decode(bytes: &[u8]) -> Result<Message, DecodeError> {
    let mut reader = Reader { bytes };
    let tag = reader.u8()?;
    Ok(match tag {
        b'R' => {
            let id = reader.u32()?;
            let schema = reader.cstring()?;
            let name = reader.cstring()?;
            let replica_identity = reader.u8()?;
            let count = reader.i16()?;
            let mut columns = Vec::with_capacity(count.max(0) as usize);
            for _ in 0..count {
                let flags = reader.u8()?;
                let name = reader.cstring()?;
                let type_oid = reader.u32()?;
                let type_modifier = reader.i32()?;
                columns.push(Column { key: flags & 1 != 0, name, type_oid, type_modifier });
            }
            Message::Relation(Relation { id, schema, name, replica_identity, columns })
        }
        b'I' => {
            let relation = reader.u32()?;
            match reader.u8()? {
                b'N' => Message::Insert { relation, new: reader.tuple()? },
                other => return Err(DecodeError(format!("insert: expected N, got {:?}", other as char))),
            }
        }
        b'U' => {
            let relation = reader.u32()?;
            let mut old = None;
            let mut key_only = false;
            let mut marker = reader.u8()?;
            if marker == b'K' || marker == b'O' {
                key_only = marker == b'K';
                old = Some(reader.tuple()?);
                marker = reader.u8()?;
            }
            if marker != b'N' {
                return Err(DecodeError(format!("update: expected N, got {:?}", marker as char)));
            }
            Message::Update { relation, old, key_only, new: reader.tuple()? }
        }
        b'D' => {
            let relation = reader.u32()?;
            let marker = reader.u8()?;
            if marker != b'K' && marker != b'O' {
                return Err(DecodeError(format!("delete: expected K or O, got {:?}", marker as char)));
            }
            Message::Delete { relation, old: reader.tuple()?, key_only: marker == b'K' }
        }
        b'T' => {
            let count = reader.u32()?;
            let options = reader.u8()?;
            let mut relations = Vec::with_capacity(count.min(65_536) as usize);
            for _ in 0..count {
                relations.push(reader.u32()?);
            }
            Message::Truncate { relations, cascade: options & 1 != 0, restart_identity: options & 2 != 0 }
        }
        other => Message::Other(other),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(value: &str) -> Vec<u8> {
        let mut bytes = vec![b't'];
        bytes.extend_from_slice(&(value.len() as i32).to_be_bytes());
        bytes.extend_from_slice(value.as_bytes());
        bytes
    }

    #[test]
    fn decodes_relation_and_update_with_old_key_and_toast() {
        let mut relation = vec![b'R'];
        relation.extend_from_slice(&16384u32.to_be_bytes());
        relation.extend_from_slice(b"public\0items\0d");
        relation.extend_from_slice(&2i16.to_be_bytes());
        relation.extend_from_slice(&[1]);
        relation.extend_from_slice(b"id\0");
        relation.extend_from_slice(&23u32.to_be_bytes());
        relation.extend_from_slice(&(-1i32).to_be_bytes());
        relation.extend_from_slice(&[0]);
        relation.extend_from_slice(b"body\0");
        relation.extend_from_slice(&25u32.to_be_bytes());
        relation.extend_from_slice(&(-1i32).to_be_bytes());
        let Message::Relation(decoded) = decode(&relation).unwrap() else { panic!("not a relation") };
        assert_eq!(decoded.schema, "public");
        assert_eq!(decoded.columns.len(), 2);
        assert!(decoded.columns[0].key && !decoded.columns[1].key);

        let mut update = vec![b'U'];
        update.extend_from_slice(&16384u32.to_be_bytes());
        update.push(b'K');
        update.extend_from_slice(&2i16.to_be_bytes());
        update.extend(text("1"));
        update.push(b'n');
        update.push(b'N');
        update.extend_from_slice(&2i16.to_be_bytes());
        update.extend(text("2"));
        update.push(b'u');
        assert_eq!(
            decode(&update).unwrap(),
            Message::Update {
                relation: 16384,
                old: Some(vec![TupleValue::Text("1".into()), TupleValue::Null]),
                key_only: true,
                new: vec![TupleValue::Text("2".into()), TupleValue::UnchangedToast],
            }
        );
    }

    #[test]
    fn truncated_input_is_an_error_not_a_panic() {
        assert!(decode(b"I\0\0").is_err());
        assert!(decode(b"").is_err());
        let mut insert = vec![b'I'];
        insert.extend_from_slice(&1u32.to_be_bytes());
        insert.push(b'N');
        insert.extend_from_slice(&1i16.to_be_bytes());
        insert.push(b't');
        insert.extend_from_slice(&100i32.to_be_bytes());
        assert!(decode(&insert).is_err());
    }
}
