//! Codecs of the failure detector's messages (probes, acks, heartbeats)
//! and of the membership updates and states gossip carries.

use super::reader::Reader;
use super::writer::Writer;
use super::{BodyError, Decode, Encode};
use crate::message::{Ack, Alive, Confirm, Heartbeat, Leave, MemberState, MemberStatus, Nack, Ping, PingReq, Suspect};

impl Encode for MemberStatus {
    fn encoded_len(&self) -> usize {
        1
    }
    fn encode(&self, out: &mut Writer<'_>) {
        out.put_u8(*self as u8)
    }
}

impl Decode for MemberStatus {
    fn decode(r: &mut Reader<'_>) -> Result<Self, BodyError> {
        Ok(match r.u32()? {
            0 => MemberStatus::Alive,
            1 => MemberStatus::Suspect,
            2 => MemberStatus::Dead,
            3 => MemberStatus::Left,
            index => return Err(BodyError::Variant { ty: "MemberStatus", index }),
        })
    }
}

struct_codec! {
    Ping { seq, target, from }
    Ack { seq, from }
    Nack { seq, from }
    PingReq { seq, target, from }
    Heartbeat { node, incarnation, metadata_digest }
    MemberState { node, incarnation, status, metadata }
    Alive { node, incarnation, metadata }
    Suspect { node, incarnation, from }
    Confirm { node, incarnation, from }
    Leave { node, incarnation }
}
