//! Codecs of who a message is about: node names, socket addresses and
//! node ids, read on every frame.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::ascii::is_plain_ascii;
use super::reader::Reader;
use super::writer::{bytes_len, put_bytes, varint_len, Writer};
use super::{BodyError, Decode, Encode};
use crate::identity::{NodeId, NodeName, MAX_NAME_LEN};

impl Encode for NodeName {
    #[inline]
    fn encoded_len(&self) -> usize {
        bytes_len(self.as_str().as_bytes())
    }
    #[inline]
    fn encode(&self, out: &mut Writer<'_>) {
        put_bytes(out, self.as_str().as_bytes())
    }
}

impl Decode for NodeName {
    #[inline(always)]
    fn decode(r: &mut Reader<'_>) -> Result<Self, BodyError> {
        let bytes = r.bytes()?;
        if !bytes.is_empty() && bytes.len() <= MAX_NAME_LEN && is_plain_ascii(bytes) {
            // SAFETY: every byte is below 0x80, and ASCII is valid UTF-8.
            let name = unsafe { std::str::from_utf8_unchecked(bytes) };
            return Ok(NodeName::from_checked(name));
        }
        let name = std::str::from_utf8(bytes).map_err(|_| BodyError::Utf8)?;
        NodeName::new(name).map_err(BodyError::Name)
    }
}

/// serde's non-human-readable `SocketAddr`: tag 0 = V4 (4 octets, port), tag 1 = V6 (16 octets, port).
/// Flow info and scope id are not carried (they are local to the host).
impl Encode for SocketAddr {
    #[inline]
    fn encoded_len(&self) -> usize {
        let ip = match self.ip() {
            IpAddr::V4(_) => 4,
            IpAddr::V6(_) => 16,
        };
        1 + ip + varint_len(self.port() as u64)
    }
    #[inline]
    fn encode(&self, out: &mut Writer<'_>) {
        match self.ip() {
            IpAddr::V4(ip) => {
                out.put_u8(0);
                out.put_slice(&ip.octets());
            }
            IpAddr::V6(ip) => {
                out.put_u8(1);
                out.put_slice(&ip.octets());
            }
        }
        self.port().encode(out)
    }
}

impl Decode for SocketAddr {
    #[inline]
    fn decode(r: &mut Reader<'_>) -> Result<Self, BodyError> {
        let ip = match r.u32()? {
            0 => IpAddr::V4(Ipv4Addr::from(r.array::<4>()?)),
            1 => IpAddr::V6(Ipv6Addr::from(r.array::<16>()?)),
            index => return Err(BodyError::Variant { ty: "SocketAddr", index }),
        };
        Ok(SocketAddr::new(ip, r.u16()?))
    }
}

impl Encode for NodeId {
    #[inline]
    fn encoded_len(&self) -> usize {
        self.name.encoded_len() + self.addr.encoded_len()
    }
    #[inline]
    fn encode(&self, out: &mut Writer<'_>) {
        self.name.encode(out);
        self.addr.encode(out);
    }
}

/// Its fields in order, as `struct_codec!` reads them, through a copy of
/// the cursor that stays in registers.
impl Decode for NodeId {
    #[inline]
    fn decode(r: &mut Reader<'_>) -> Result<Self, BodyError> {
        let mut local = Reader { buf: r.buf, noncanonical: false };
        let name = NodeName::decode(&mut local)?;
        let addr = SocketAddr::decode(&mut local)?;
        (r.buf, r.noncanonical) = (local.buf, r.noncanonical | local.noncanonical);
        Ok(NodeId { name, addr })
    }
}
