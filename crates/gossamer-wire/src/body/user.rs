//! Codecs of the application items: user broadcasts, queries, their
//! filters and responses.

use super::reader::Reader;
use super::writer::{bytes_len, put_bytes, put_varint, varint_len, Writer};
use super::{BodyError, Decode, Encode};
use crate::identity::NodeName;
use crate::user::{Query, QueryFilter, QueryResponse, UserBroadcast, UserKey};

impl Encode for UserKey {
    fn encoded_len(&self) -> usize {
        bytes_len(self.as_str().as_bytes())
    }
    fn encode(&self, out: &mut Writer<'_>) {
        put_bytes(out, self.as_str().as_bytes())
    }
}

impl Decode for UserKey {
    fn decode(r: &mut Reader<'_>) -> Result<Self, BodyError> {
        UserKey::new(r.str()?).map_err(BodyError::UserKey)
    }
}

/// Fewest bytes a `NodeName` takes: its length and one byte.
const MIN_NAME_LEN: usize = 2;
/// Fewest bytes a filter tag takes: two empty strings.
const MIN_TAG_LEN: usize = 2;

impl Encode for QueryFilter {
    fn encoded_len(&self) -> usize {
        varint_len(self.nodes.len() as u64)
            + self.nodes.iter().map(Encode::encoded_len).sum::<usize>()
            + varint_len(self.tags.len() as u64)
            + self.tags.iter().map(|(k, v)| k.encoded_len() + v.encoded_len()).sum::<usize>()
    }
    fn encode(&self, out: &mut Writer<'_>) {
        put_varint(out, self.nodes.len() as u64);
        for node in &self.nodes {
            node.encode(out);
        }
        put_varint(out, self.tags.len() as u64);
        for (key, value) in &self.tags {
            key.encode(out);
            value.encode(out);
        }
    }
}

impl Decode for QueryFilter {
    fn decode(r: &mut Reader<'_>) -> Result<Self, BodyError> {
        let count = r.len()?;
        let mut nodes = Vec::with_capacity(r.capacity(count, MIN_NAME_LEN));
        for _ in 0..count {
            nodes.push(NodeName::decode(r)?);
        }
        let count = r.len()?;
        let mut tags = Vec::with_capacity(r.capacity(count, MIN_TAG_LEN));
        for _ in 0..count {
            tags.push((String::decode(r)?, String::decode(r)?));
        }
        Ok(QueryFilter { nodes, tags })
    }
}

struct_codec! {
    UserBroadcast { origin, key, version, payload }
    Query { origin, id, name, payload, filter, timeout_ms }
    QueryResponse { id, from, payload }
}
