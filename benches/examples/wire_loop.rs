//! The wire benchmarks' two headline paths in a plain loop, for profilers:
//! criterion's own machinery would drown a 100 ns operation in callgrind.
//!
//! ```text
//! cargo build --release -p gossamer-benches --example wire_loop
//! valgrind --tool=callgrind --toggle-collect='*wire_loop*round*' \
//!     target/release/examples/wire_loop ping 10000
//! ```
//!
//! `ping`: encode a ping frame, decode it as the core does (`decode_parts`).
//! `compound`: write a full 1,400-byte compound from pre-encoded updates and
//! decode it the same way. Prints the wall time per round (noisy on a shared
//! machine; callgrind's instruction count per round is the repeatable figure:
//! divide the inclusive count of `round` by the rounds).

use std::hint::black_box;

use bytes::BytesMut;
use gossamer_benches::wire_fixtures::{backlog, id, pack_encoded, ping, pre_encoded};
use gossamer_wire::*;

fn main() {
    let mut args = std::env::args().skip(1);
    let what = args.next().unwrap_or_else(|| "ping".into());
    let rounds: u32 = args.next().map_or(1_000_000, |n| n.parse().expect("rounds: a number"));
    let codec = FrameCodec::new(ClusterLabel::new("prod").expect("short label"));
    let (mut out, mut scratch, mut updates) = (BytesMut::with_capacity(2048), Vec::new(), Vec::new());
    let started = std::time::Instant::now();
    match what.as_str() {
        "ping" => {
            let ping = Packet::new(ping());
            for _ in 0..rounds {
                black_box(ping_round(&codec, &ping, &mut out, &mut scratch, &mut updates));
            }
        }
        "compound" => {
            let gossip = Message::Ping(Ping { seq: 43, target: id(3).name, from: id(1) });
            let encoded = pre_encoded(&backlog());
            for _ in 0..rounds {
                black_box(compound_round(&codec, &gossip, &encoded, &mut out, &mut scratch, &mut updates));
            }
            assert_eq!(updates.len(), 34, "a full 1,400-byte packet");
        }
        other => panic!("unknown loop {other:?}: ping or compound"),
    }
    println!("{what}: {:?} per round over {rounds} rounds", started.elapsed() / rounds);
}

#[inline(never)]
fn ping_round(
    codec: &FrameCodec,
    ping: &Packet,
    out: &mut BytesMut,
    scratch: &mut Vec<u8>,
    updates: &mut Vec<Update>,
) -> Message {
    out.clear();
    codec.encode(black_box(ping), out).expect("encodes");
    codec.decode_parts(black_box(out), scratch, updates).expect("decodes")
}

#[inline(never)]
fn compound_round(
    codec: &FrameCodec,
    message: &Message,
    encoded: &[Vec<u8>],
    out: &mut BytesMut,
    scratch: &mut Vec<u8>,
    updates: &mut Vec<Update>,
) -> Message {
    out.clear();
    pack_encoded(codec, black_box(message), encoded, DEFAULT_MTU, out);
    codec.decode_parts(black_box(out), scratch, updates).expect("decodes")
}
