//! The frames the wire benchmarks time, shared by `benches/wire.rs` and the
//! `wire_loop` example that callgrind profiles, so both measure the same
//! bytes.

use bytes::BytesMut;
use gossamer_wire::*;
use rand::{Rng, SeedableRng};

/// Member `i`: `node-<i>@10.0.x.y` at port 7946 (names of 18–21 bytes,
/// stored inline like most real `basename@ip` names).
pub fn id(i: u32) -> NodeId {
    let ip = format!("10.0.{}.{}", i / 250, i % 250 + 1);
    NodeId::new(format!("node-{i}@{ip}").parse().expect("valid name"), format!("{ip}:7946").parse().expect("addr"))
}

/// The ping every wire figure uses: member 1 probes member 2.
pub fn ping() -> Message {
    Message::Ping(Ping { seq: 42, target: id(2).name, from: id(1) })
}

/// A realistic gossip backlog: mostly suspicions and confirmations, some
/// alives with a little metadata, some leaves.
pub fn backlog() -> Vec<Update> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    let mut meta = Metadata::new();
    meta.insert("zone", b"eu-west-1a".to_vec()).expect("small metadata");
    (0..200)
        .map(|i| {
            let node = id(i);
            let incarnation = rng.random_range(1..1000);
            let from = id(rng.random_range(0..1000)).name;
            match rng.random_range(0..10) {
                0..=3 => Update::Suspect(Suspect { node: node.name, incarnation, from }),
                4..=6 => Update::Confirm(Confirm { node: node.name, incarnation, from }),
                7..=8 => Update::Alive(Alive { node, incarnation, metadata: meta.clone() }),
                _ => Update::Leave(Leave { node: node.name, incarnation }),
            }
        })
        .collect()
}

/// Each update encoded once, as the core's dissemination queue keeps them.
pub fn pre_encoded(updates: &[Update]) -> Vec<Vec<u8>> {
    updates
        .iter()
        .map(|update| {
            let mut bytes = Vec::new();
            update.encode_into(&mut bytes);
            bytes
        })
        .collect()
}

/// Writes `message` plus as many pre-encoded updates as fit in `budget`
/// into `out`, through the streaming writer (the core's send path);
/// returns the frame's length.
pub fn pack_encoded(
    codec: &FrameCodec,
    message: &Message,
    encoded: &[Vec<u8>],
    budget: usize,
    out: &mut BytesMut,
) -> usize {
    let mut writer = codec.compound_into(message, budget, out).expect("the message fits");
    for update in encoded {
        if !writer.push_encoded(update) {
            break;
        }
    }
    writer.finish().expect("plaintext frames cannot fail").bytes
}
