//! Steady-state memory per known member, measured with a counting global
//! allocator: a node learns 20,000 members in one push-pull, disseminates
//! the joins until its queue is empty, and must then hold at most 200 bytes
//! of heap per member.

mod counting;

use std::time::Duration;

use bytes::BytesMut;
use counting::{live_bytes, Counting};
use gossamer_core::{Config, Swim};
use gossamer_wire::*;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn id(i: usize) -> NodeId {
    let ip = format!("10.{}.{}.{}", i / 62_500, (i / 250) % 250, i % 250 + 1);
    NodeId::new(format!("node-{i}@{ip}").parse().unwrap(), format!("{ip}:7946").parse().unwrap())
}

#[test]
fn steady_state_memory_per_member_is_bounded() {
    const N: usize = 20_000;
    let codec = FrameCodec::new(ClusterLabel::new("mem").unwrap());
    let members: Vec<_> = (1..N)
        .map(|i| MemberState { node: id(i), incarnation: 1, status: MemberStatus::Alive, metadata: Metadata::new() })
        .collect();
    let mut request = BytesMut::new();
    let stream = codec.clone().with_max_frame_len(DEFAULT_MAX_STREAM_FRAME).unwrap();
    let state = PushPull { join: false, members, app_state: Vec::new(), user_ltime: 0 };
    stream.encode(&Packet::new(Message::PushPullRequest(state)), &mut request).unwrap();
    let mut ping = BytesMut::new();
    codec.encode(&Packet::new(Message::Ping(Ping { seq: 1, target: id(0).name, from: id(1) })), &mut ping).unwrap();

    let base = live_bytes();
    let mut core = Swim::new(id(0), Config::lan(), codec, ChaCha8Rng::seed_from_u64(1), Duration::ZERO).unwrap();
    let response = core.handle_push_pull_request(Duration::ZERO, id(1).addr, &request);
    assert!(response.is_some());
    drop(response);
    while core.poll_output().is_some() {}
    let peak = live_bytes() - base;
    let mut acks = 0;
    while core.metrics().queued_updates > 0 {
        core.handle_datagram(Duration::from_secs(1), id(1).addr, &ping);
        while core.poll_output().is_some() {}
        acks += 1;
    }
    let live = live_bytes() - base;
    let per_member = live as f64 / N as f64;
    eprintln!("{N} members: {live} bytes live ({per_member:.0} per member), {peak} at peak, {acks} acks to drain");
    assert_eq!(core.members().count(), N);
    assert!(per_member <= 200.0, "{per_member:.0} bytes per member");
}
