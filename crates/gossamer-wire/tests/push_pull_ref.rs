//! `FrameCodec::encode_push_pull` (members borrowed from the sender's
//! table) writes the same frame as encoding the owned `PushPull` packet,
//! plain, compressed or sealed, and enforces the same size cap.

mod common;

use bytes::BytesMut;
use common::*;
use gossamer_wire::*;
use proptest::prelude::*;

fn borrowed(members: &[MemberState]) -> impl Iterator<Item = MemberStateRef<'_>> + Clone {
    members.iter().map(|m| MemberStateRef {
        node: &m.node,
        incarnation: m.incarnation,
        status: m.status,
        metadata: &m.metadata,
    })
}

fn message(response: bool, state: PushPull) -> Message {
    if response {
        Message::PushPullResponse(state)
    } else {
        Message::PushPullRequest(state)
    }
}

proptest! {
    #[test]
    fn borrowed_members_encode_as_the_owned_packet(state in push_pull(), response in any::<bool>(), label in label()) {
        for codec in [plain_codec(label.clone()), plain_codec(label.clone()).with_compression(64)] {
            let codec = codec.with_max_frame_len(DEFAULT_MAX_STREAM_FRAME).unwrap();
            let mut frame = BytesMut::new();
            let written = codec
                .encode_push_pull(response, state.join, borrowed(&state.members), &state.app_state, state.user_ltime, &mut frame)
                .unwrap();
            prop_assert_eq!(written, frame.len());
            let expected = encode(&codec, &Packet::new(message(response, state.clone())));
            prop_assert_eq!(&frame[..], &expected[..]);
        }
        // Sealed frames differ by their random nonce: compare what they carry.
        let sealed = encrypted_codec(label, key(7)).with_max_frame_len(DEFAULT_MAX_STREAM_FRAME).unwrap();
        let mut frame = BytesMut::new();
        sealed
            .encode_push_pull(response, state.join, borrowed(&state.members), &state.app_state, state.user_ltime, &mut frame)
            .unwrap();
        prop_assert_eq!(sealed.decode(&frame).unwrap(), Packet::new(message(response, state)));
    }
}

#[test]
fn a_state_over_the_frame_cap_is_refused_and_nothing_is_written() {
    let members: Vec<MemberState> = (0..2_000)
        .map(|i| MemberState {
            node: NodeId::new(format!("node-{i}").parse().unwrap(), ([127, 0, 0, 1], 7000).into()),
            incarnation: 1,
            status: MemberStatus::Alive,
            metadata: Metadata::new(),
        })
        .collect();
    let codec = plain_codec(ClusterLabel::new("prod").unwrap()).with_max_frame_len(4_096).unwrap();
    let mut out = BytesMut::from(&b"kept"[..]);
    let error = codec.encode_push_pull(false, false, borrowed(&members), &[], 0, &mut out).unwrap_err();
    assert!(matches!(error, EncodeError::TooLarge { max: 4_096, .. }), "{error}");
    assert_eq!(&out[..], b"kept", "what the buffer held is left as it was");
}
