//! Codecs of the full-state exchange: the owned push-pull message and
//! the borrowed form a node writes straight from its member table.

use super::reader::Reader;
use super::writer::{bytes_len, put_bytes, put_varint, varint_len, Writer};
use super::{BodyError, Decode, Encode};
use crate::message::{MemberState, MemberStateRef, PushPull, PushPullRef};

/// Fewest bytes a `MemberState` takes: 2-byte name, V4 address, incarnation, status, metadata.
const MIN_MEMBER_LEN: usize = 2 + 6 + 1 + 1 + 1;

impl Encode for PushPull {
    fn encoded_len(&self) -> usize {
        1 + varint_len(self.members.len() as u64)
            + self.members.iter().map(Encode::encoded_len).sum::<usize>()
            + bytes_len(&self.app_state)
            + self.user_ltime.encoded_len()
    }
    fn encode(&self, out: &mut Writer<'_>) {
        self.join.encode(out);
        put_varint(out, self.members.len() as u64);
        for member in &self.members {
            member.encode(out);
        }
        put_bytes(out, &self.app_state);
        self.user_ltime.encode(out);
    }
}

/// Field for field what `struct_codec!` writes for the owned `MemberState`.
impl Encode for MemberStateRef<'_> {
    #[inline]
    fn encoded_len(&self) -> usize {
        self.node.encoded_len()
            + self.incarnation.encoded_len()
            + self.status.encoded_len()
            + self.metadata.encoded_len()
    }
    #[inline]
    fn encode(&self, out: &mut Writer<'_>) {
        self.node.encode(out);
        self.incarnation.encode(out);
        self.status.encode(out);
        self.metadata.encode(out);
    }
}

impl<'a, I: Iterator<Item = MemberStateRef<'a>> + Clone> Encode for PushPullRef<'_, I> {
    fn encoded_len(&self) -> usize {
        // Message variant, join, members, app state, clock, then an empty update list.
        1 + 1
            + varint_len(self.count as u64)
            + self.members_len
            + bytes_len(self.app_state)
            + self.user_ltime.encoded_len()
            + 1
    }
    fn encode(&self, out: &mut Writer<'_>) {
        out.put_u8(if self.response { 7 } else { 6 });
        self.join.encode(out);
        put_varint(out, self.count as u64);
        for member in self.members.clone() {
            member.encode(out);
        }
        put_bytes(out, self.app_state);
        self.user_ltime.encode(out);
        put_varint(out, 0);
    }
}

impl Decode for PushPull {
    fn decode(r: &mut Reader<'_>) -> Result<Self, BodyError> {
        let join = r.bool()?;
        let count = r.len()?;
        let mut members = Vec::with_capacity(r.capacity(count, MIN_MEMBER_LEN));
        for _ in 0..count {
            members.push(MemberState::decode(r)?);
        }
        let app_state = r.bytes()?.to_vec();
        let user_ltime = u64::decode(r)?;
        Ok(PushPull { join, members, app_state, user_ltime })
    }
}
