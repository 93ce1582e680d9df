//! Codecs of what a frame body holds: the message and update enums, and
//! the update list behind the message, decoded in place into a reused list.

use super::reader::Reader;
use super::writer::{put_varint, varint_len, Writer};
use super::{BodyError, Decode, Encode};
use crate::identity::{NodeId, NodeName};
use crate::message::{Alive, Confirm, Leave, Message, Packet, PacketRef, Suspect, Update, UpdateBytes};
use crate::metadata::Metadata;

/// Fewest bytes an `Update` takes: a `Leave` with a 1-byte name.
const MIN_UPDATE_LEN: usize = 1 + 2 + 1;

/// Enums: the variant's index as a `u32` varint, then its fields.
macro_rules! enum_codec {
    ($ty:ident { $($index:literal => $variant:ident $(($inner:ident))?),* }) => {
        impl Encode for $ty {
            #[inline]
            fn encoded_len(&self) -> usize {
                match self {
                    $($ty::$variant $(($inner))? => 1 $(+ $inner.encoded_len())?,)*
                }
            }
            #[inline]
            fn encode(&self, out: &mut Writer<'_>) {
                match self {
                    $($ty::$variant $(($inner))? => {
                        out.put_u8($index);
                        $($inner.encode(out);)?
                    })*
                }
            }
        }
        impl Decode for $ty {
            #[inline]
            fn decode(r: &mut Reader<'_>) -> Result<Self, BodyError> {
                Ok(match r.u32()? {
                    $($index => $ty::$variant $((enum_codec!(@decode r $inner)))?,)*
                    index => return Err(BodyError::Variant { ty: stringify!($ty), index }),
                })
            }
        }
    };
    (@decode $r:ident $inner:ident) => {
        Decode::decode($r)?
    };
}

enum_codec!(Update { 0 => Alive(a), 1 => Suspect(s), 2 => Confirm(c), 3 => Leave(l), 4 => User(u), 5 => Query(q) });
enum_codec!(Message {
    0 => Ping(p),
    1 => Ack(a),
    2 => Nack(n),
    3 => PingReq(p),
    4 => Gossip,
    5 => Heartbeat(h),
    6 => PushPullRequest(p),
    7 => PushPullResponse(p),
    8 => QueryResponse(q),
    9 => PushPullDigest(d),
    10 => PushPullDelta(d)
});

#[inline]
fn updates_len<U: Encode>(updates: &[U]) -> usize {
    varint_len(updates.len() as u64) + updates.iter().map(Encode::encoded_len).sum::<usize>()
}

#[inline]
fn put_updates<U: Encode>(updates: &[U], out: &mut Writer<'_>) {
    put_varint(out, updates.len() as u64);
    for update in updates {
        update.encode(out);
    }
}

impl Encode for Packet {
    #[inline]
    fn encoded_len(&self) -> usize {
        self.message.encoded_len() + updates_len(&self.updates)
    }
    #[inline]
    fn encode(&self, out: &mut Writer<'_>) {
        self.message.encode(out);
        put_updates(&self.updates, out);
    }
}

impl Encode for PacketRef<'_> {
    #[inline]
    fn encoded_len(&self) -> usize {
        self.message.encoded_len() + updates_len(self.updates)
    }
    #[inline]
    fn encode(&self, out: &mut Writer<'_>) {
        self.message.encode(out);
        put_updates(self.updates, out);
    }
}

/// Reads a packet's update list (after its message) into `updates`, which
/// the caller has emptied; a reused list keeps its capacity.
#[inline(always)]
pub(crate) fn decode_updates(r: &mut Reader<'_>, updates: &mut Vec<Update>) -> Result<(), BodyError> {
    // Most datagrams (acks, most pings) carry none: a zero count is one byte.
    if let Some((0, rest)) = r.buf.split_first() {
        r.buf = rest;
        return Ok(());
    }
    decode_update_list(r, updates)
}

/// As [`decode_updates`], also keeping each membership update's bytes as
/// received in `kept` (cleared first) when they are exactly its canonical
/// encoding (see [`UpdateBytes::get`]).
#[inline(always)]
pub(crate) fn decode_updates_keeping(
    r: &mut Reader<'_>,
    updates: &mut Vec<Update>,
    kept: &mut UpdateBytes,
) -> Result<(), BodyError> {
    kept.clear();
    if let Some((0, rest)) = r.buf.split_first() {
        r.buf = rest;
        return Ok(());
    }
    let count = r.len()?;
    updates.reserve(r.capacity(count, MIN_UPDATE_LEN));
    // Spans are offsets into the update list; the list is copied once at
    // the end (one copy, not one per update).
    let list = r.buf;
    let mut any = false;
    for _ in 0..count {
        let start = (list.len() - r.buf.len()) as u32;
        r.noncanonical = false;
        push_update(r, updates)?;
        let keep = !r.noncanonical && updates.last().is_some_and(|update| !update.is_user());
        any |= keep;
        kept.spans.push(keep.then(|| (start, (list.len() - r.buf.len()) as u32)));
    }
    if any {
        kept.bytes.extend_from_slice(&list[..list.len() - r.buf.len()]);
    }
    Ok(())
}

#[inline]
fn decode_update_list(r: &mut Reader<'_>, updates: &mut Vec<Update>) -> Result<(), BodyError> {
    let count = r.len()?;
    if count == 0 {
        return Ok(());
    }
    updates.reserve(r.capacity(count, MIN_UPDATE_LEN));
    for _ in 0..count {
        push_update(r, updates)?;
    }
    Ok(())
}

/// Decodes one update onto the end of `updates`: byte for byte what
/// [`Update::decode`] reads, but each variant is pushed from its fields
/// where it is decoded, instead of coming back as a `Result<Update, _>`
/// that is then moved again into the list. The variants made of names and
/// numbers read through a copy of the cursor that stays in registers.
#[inline(always)]
fn push_update(r: &mut Reader<'_>, updates: &mut Vec<Update>) -> Result<(), BodyError> {
    match r.u32()? {
        0 => {
            let node = NodeId::decode(r)?;
            let incarnation = r.u64()?;
            let metadata = Metadata::decode(r)?;
            updates.push(Update::Alive(Alive { node, incarnation, metadata }));
        }
        1 => {
            let mut local = Reader { buf: r.buf, noncanonical: false };
            let node = NodeName::decode(&mut local)?;
            let incarnation = local.u64()?;
            let from = NodeName::decode(&mut local)?;
            (r.buf, r.noncanonical) = (local.buf, r.noncanonical | local.noncanonical);
            updates.push(Update::Suspect(Suspect { node, incarnation, from }));
        }
        2 => {
            let mut local = Reader { buf: r.buf, noncanonical: false };
            let node = NodeName::decode(&mut local)?;
            let incarnation = local.u64()?;
            let from = NodeName::decode(&mut local)?;
            (r.buf, r.noncanonical) = (local.buf, r.noncanonical | local.noncanonical);
            updates.push(Update::Confirm(Confirm { node, incarnation, from }));
        }
        3 => {
            let mut local = Reader { buf: r.buf, noncanonical: false };
            let node = NodeName::decode(&mut local)?;
            let incarnation = local.u64()?;
            (r.buf, r.noncanonical) = (local.buf, r.noncanonical | local.noncanonical);
            updates.push(Update::Leave(Leave { node, incarnation }));
        }
        index => updates.push(decode_user_update(r, index)?),
    }
    Ok(())
}

/// The application updates (and the error for an unknown variant): rare,
/// so kept out of the membership updates' loop.
#[cold]
#[inline(never)]
fn decode_user_update(r: &mut Reader<'_>, index: u32) -> Result<Update, BodyError> {
    Ok(match index {
        4 => Update::User(Decode::decode(r)?),
        5 => Update::Query(Decode::decode(r)?),
        index => return Err(BodyError::Variant { ty: "Update", index }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::body::reader::U16_BYTE;
    use crate::user::UserBroadcast;

    fn encoded(update: &Update) -> Vec<u8> {
        let mut out = Vec::new();
        update.encode_into(&mut out);
        out
    }

    /// Decodes an update list (count byte first) keeping the bytes.
    fn keep(list: &[u8]) -> (Vec<Update>, UpdateBytes) {
        let (mut updates, mut kept) = (Vec::new(), UpdateBytes::new());
        decode_updates_keeping(&mut Reader::new(list), &mut updates, &mut kept).unwrap();
        (updates, kept)
    }

    #[test]
    fn kept_update_bytes_are_exactly_the_encoding() {
        let mut metadata = Metadata::new();
        metadata.insert("a", "1").unwrap();
        metadata.insert("b", "2").unwrap();
        let node = NodeId::new("a@h".parse().unwrap(), "127.0.0.1:7946".parse().unwrap());
        let alive = Update::Alive(Alive { node, incarnation: 300, metadata });
        let leave = Update::Leave(Leave { node: "b@h".parse().unwrap(), incarnation: 7 });
        let user = Update::User(UserBroadcast {
            origin: "a@h".parse().unwrap(),
            key: "k".parse().unwrap(),
            version: 1,
            payload: vec![1, 2, 3],
        });
        let mut list = vec![3];
        for update in [&alive, &user, &leave] {
            list.extend(encoded(update));
        }
        let (updates, kept) = keep(&list);
        assert_eq!(updates, [alive.clone(), user, leave.clone()]);
        assert_eq!(kept.get(0), Some(&encoded(&alive)[..]));
        assert_eq!(kept.get(1), None, "application items are not kept");
        assert_eq!(kept.get(2), Some(&encoded(&leave)[..]));
        assert_eq!(kept.get(3), None);

        // The incarnation 7 as a three-byte varint: valid, not canonical.
        let mut long = encoded(&leave);
        long.pop();
        long.extend([U16_BYTE, 7, 0]);
        let (updates, kept) = keep(&[[1].as_slice(), &long].concat());
        assert_eq!((updates, kept.get(0)), (vec![leave], None));

        // Metadata keys out of order: the same length, other bytes.
        let mut swapped = encoded(&alive);
        let at = swapped.len() - 8;
        swapped[at..].rotate_left(4);
        let (updates, kept) = keep(&[[1].as_slice(), &swapped].concat());
        assert_eq!((updates, kept.get(0)), (vec![alive.clone()], None));

        // A repeated key (the last value wins).
        let mut parts = encoded(&alive);
        parts.truncate(parts.len() - 9); // drop count and entries
        parts.extend([3, 1, b'a', 1, b'9', 1, b'a', 1, b'1', 1, b'b', 1, b'2']);
        let (updates, kept) = keep(&[[1].as_slice(), &parts].concat());
        assert_eq!((updates, kept.get(0)), (vec![alive], None));
    }

    /// `push_update` reads exactly what `Update::decode` reads, and fails where it fails.
    #[test]
    fn pushed_updates_decode_as_updates_do() {
        let node = NodeId::new("a@h".parse().unwrap(), "127.0.0.1:7946".parse().unwrap());
        let mut metadata = Metadata::new();
        metadata.insert("zone", "eu").unwrap();
        let updates = [
            Update::Alive(Alive { node, incarnation: 300, metadata }),
            Update::Suspect(Suspect { node: "b@h".parse().unwrap(), incarnation: 1, from: "c@h".parse().unwrap() }),
            Update::Confirm(Confirm {
                node: "d@h".parse().unwrap(),
                incarnation: 70_000,
                from: "e@h".parse().unwrap(),
            }),
            Update::Leave(Leave { node: "f@h".parse().unwrap(), incarnation: u64::MAX }),
            Update::User(UserBroadcast {
                origin: "g@h".parse().unwrap(),
                key: "k".parse().unwrap(),
                version: 2,
                payload: vec![1, 2],
            }),
        ];
        for update in &updates {
            let bytes = encoded(update);
            for end in 0..=bytes.len() {
                let mut tail = bytes[..end].to_vec();
                tail.push(0xaa); // a byte after the cut, which both may read
                let (mut a, mut b) = (Reader::new(&tail), Reader::new(&tail));
                let mut pushed = Vec::new();
                let result = push_update(&mut a, &mut pushed);
                let expected = Update::decode(&mut b);
                match (result, expected) {
                    (Ok(()), Ok(decoded)) => {
                        assert_eq!((&pushed[..], a.remaining()), (&[decoded][..], b.remaining()));
                    }
                    (Err(x), Err(y)) => assert_eq!(x.to_string(), y.to_string()),
                    (x, y) => panic!("{update:?} cut at {end}: {x:?} but {y:?}"),
                }
            }
        }
        for tag in [6u8, 250] {
            let (x, y) =
                (push_update(&mut Reader::new(&[tag]), &mut Vec::new()), Update::decode(&mut Reader::new(&[tag])));
            assert_eq!(x.unwrap_err().to_string(), y.unwrap_err().to_string());
        }
    }
}
