//! Writes the seed corpus of the fuzz targets: a few valid frames of every
//! message kind, plain and sealed, with the label and key the targets use.
//!
//! ```text
//! cargo run -p gossamer-wire --example fuzz_seeds -- fuzz/corpus
//! ```
//!
//! The output is deterministic (seeded nonce prefix), so re-running it does
//! not churn the committed corpus.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::BytesMut;
use gossamer_wire::*;
use rand::SeedableRng;

/// Must match `FUZZ_KEY` in fuzz/fuzz_targets/decrypt_decode.rs.
const FUZZ_KEY: [u8; KEY_LEN] = [0x42; KEY_LEN];
/// Must match the label of both fuzz targets.
const FUZZ_LABEL: &str = "fuzz";

fn samples() -> Vec<(&'static str, Packet)> {
    let id = |name: &str, addr: &str| NodeId::new(name.parse().unwrap(), addr.parse().unwrap());
    let a = id("a@127.0.0.1", "127.0.0.1:7946");
    let b = id("b@::1", "[::1]:7947");
    let mut meta = Metadata::new();
    meta.insert("zone", b"eu-west-1a".to_vec()).unwrap();
    meta.insert("role", b"db".to_vec()).unwrap();
    let updates = vec![
        Update::Alive(Alive { node: b.clone(), incarnation: 3, metadata: meta.clone() }),
        Update::Suspect(Suspect { node: "c@h".parse().unwrap(), incarnation: 1, from: a.name.clone() }),
        Update::Confirm(Confirm { node: "d@h".parse().unwrap(), incarnation: 9, from: b.name.clone() }),
        Update::Leave(Leave { node: "e@h".parse().unwrap(), incarnation: 2 }),
    ];
    let user_items = vec![
        Update::User(UserBroadcast {
            origin: a.name.clone(),
            key: UserKey::new("config/flags").unwrap(),
            version: 3,
            payload: b"feature-x=on".to_vec(),
        }),
        Update::Query(Box::new(Query {
            origin: a.clone(),
            id: 77,
            name: UserKey::new("health").unwrap(),
            payload: b"?".to_vec(),
            filter: QueryFilter { nodes: vec![b.name.clone()], tags: vec![("role".into(), "db".into())] },
            timeout_ms: 2000,
        })),
    ];
    let push_pull = PushPull {
        join: true,
        members: vec![
            MemberState { node: a.clone(), incarnation: 1, status: MemberStatus::Alive, metadata: Metadata::new() },
            MemberState { node: b.clone(), incarnation: 4, status: MemberStatus::Suspect, metadata: meta },
        ],
        app_state: b"app".to_vec(),
        user_ltime: 4096,
    };
    vec![
        ("ping", Packet::new(Message::Ping(Ping { seq: 1, target: b.name.clone(), from: a.clone() }))),
        ("ack", Packet::new(Message::Ack(Ack { seq: 1, from: b.name.clone() }))),
        ("nack", Packet::new(Message::Nack(Nack { seq: 2, from: b.name.clone() }))),
        ("ping-req", Packet::new(Message::PingReq(PingReq { seq: 3, target: b.clone(), from: a.clone() }))),
        ("gossip", Packet { message: Message::Gossip, updates: updates.clone() }),
        (
            "ping-with-updates",
            Packet { message: Message::Ping(Ping { seq: 4, target: b.name.clone(), from: a.clone() }), updates },
        ),
        ("heartbeat", Packet::new(Message::Heartbeat(Heartbeat { node: a, incarnation: 7, metadata_digest: 0xdead }))),
        ("push-pull-request", Packet::new(Message::PushPullRequest(push_pull.clone()))),
        ("push-pull-response", Packet::new(Message::PushPullResponse(push_pull))),
        ("user-items", Packet { message: Message::Gossip, updates: user_items }),
        (
            "query-response",
            Packet::new(Message::QueryResponse(QueryResponse { id: 77, from: b.name, payload: b"ok".to_vec() })),
        ),
    ]
}

fn write_frames(dir: &Path, prefix: &str, codec: &FrameCodec) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    for (name, packet) in samples() {
        let mut frame = BytesMut::new();
        codec.encode(&packet, &mut frame).expect("samples encode");
        assert_eq!(codec.decode(&frame).expect("samples decode"), packet);
        if codec.compression_threshold().is_some() && frame[FLAGS_AT] & FLAG_COMPRESSED == 0 {
            continue; // compression did not pay: the same frame as the uncompressed seed
        }
        std::fs::write(dir.join(format!("{prefix}-{name}")), &frame)?;
    }
    Ok(())
}

fn main() -> std::io::Result<()> {
    let root = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "fuzz/corpus".into()));
    let label = ClusterLabel::new(FUZZ_LABEL).unwrap();
    let plain = FrameCodec::new(label.clone()).with_max_frame_len(DEFAULT_MAX_STREAM_FRAME).unwrap();
    let key = SecretKey::from_bytes(&FUZZ_KEY).unwrap();
    let ring = Keyring::new(key, &mut rand_chacha::ChaCha8Rng::seed_from_u64(1));
    let sealed = plain.clone().with_keyring(Arc::new(ring));

    write_frames(&root.join("frame_decode"), "plain", &plain)?;
    write_frames(&root.join("decrypt_decode"), "plain", &plain)?;
    write_frames(&root.join("decrypt_decode"), "sealed", &sealed)?;
    // Every body over 16 bytes compressed when that pays (FLAG_COMPRESSED).
    write_frames(&root.join("frame_decode"), "compressed", &plain.clone().with_compression(16))?;
    write_frames(&root.join("decrypt_decode"), "sealed-compressed", &sealed.with_compression(16))?;
    println!("seed corpus written under {}", root.display());
    Ok(())
}
