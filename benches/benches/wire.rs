//! Wire format costs: encode and decode of a ping, an ack and a full
//! 1400-byte compound packet, plaintext and sealed.
//!
//! Targets (2-core machine): ping encode+decode ≤ 50 ns; full compound
//! packet encode+decode ≤ 1 µs plaintext. `cargo bench -p gossamer-benches --bench wire`

use std::hint::black_box;
use std::sync::Arc;

use bytes::BytesMut;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use gossamer_benches::wire_fixtures::{backlog, id, pack_encoded, ping, pre_encoded};
use gossamer_wire::*;
use rand::SeedableRng;

fn codecs() -> [(&'static str, FrameCodec); 2] {
    let label = ClusterLabel::new("prod").unwrap();
    let key = SecretKey::from_bytes(&[7; KEY_LEN]).unwrap();
    let ring = Keyring::new(key, &mut rand_chacha::ChaCha8Rng::seed_from_u64(2));
    let plain = FrameCodec::new(label);
    let sealed = plain.clone().with_keyring(Arc::new(ring));
    [("plain", plain), ("sealed", sealed)]
}

/// Packs `message` plus as many backlog updates as fit in `budget`.
fn pack(codec: &FrameCodec, message: &Message, updates: &[Update], budget: usize, out: &mut BytesMut) -> usize {
    let mut builder = codec.compound(message, budget).unwrap();
    for update in updates {
        if !builder.push(update) {
            break;
        }
    }
    builder.finish(out).unwrap().bytes
}

fn bench_wire(c: &mut Criterion) {
    let ping = ping();
    let ack = Message::Ack(Ack { seq: 42, from: id(2).name });
    let gossip = Message::Ping(Ping { seq: 43, target: id(3).name, from: id(1) });
    let updates = backlog();

    for (mode, codec) in codecs() {
        let mut group = c.benchmark_group(format!("wire/{mode}"));
        let mut buf = BytesMut::with_capacity(2048);
        let mut scratch = Vec::with_capacity(2048);

        for (name, message) in [("ping", &ping), ("ack", &ack)] {
            let packet = Packet::new(message.clone());
            buf.clear();
            codec.encode(&packet, &mut buf).unwrap();
            let frame = buf.split().freeze();
            group.throughput(Throughput::Bytes(frame.len() as u64));
            group.bench_function(BenchmarkId::new("encode", name), |b| {
                b.iter(|| {
                    buf.clear();
                    codec.encode(black_box(&packet), &mut buf).unwrap()
                })
            });
            group.bench_function(BenchmarkId::new("decode", name), |b| {
                b.iter(|| codec.decode_with_scratch(black_box(&frame), &mut scratch).unwrap())
            });
            group.bench_function(BenchmarkId::new("encode+decode", name), |b| {
                b.iter(|| {
                    buf.clear();
                    codec.encode(black_box(&packet), &mut buf).unwrap();
                    codec.decode_with_scratch(&buf, &mut scratch).unwrap()
                })
            });
            // The core's receive path: the message by value, updates into a reused list.
            let mut update_list = Vec::new();
            group.bench_function(BenchmarkId::new("encode+decode_parts", name), |b| {
                b.iter(|| {
                    buf.clear();
                    codec.encode(black_box(&packet), &mut buf).unwrap();
                    codec.decode_parts(&buf, &mut scratch, &mut update_list).unwrap()
                })
            });
        }

        buf.clear();
        let len = pack(&codec, &gossip, &updates, DEFAULT_MTU, &mut buf);
        let frame = buf.split().freeze();
        let decoded = codec.decode(&frame).unwrap();
        assert!(len <= DEFAULT_MTU && len + 60 > DEFAULT_MTU, "a full packet: {len} bytes");
        eprintln!("wire/{mode}: full compound packet = {len} bytes, {} updates", decoded.updates.len());
        group.throughput(Throughput::Bytes(len as u64));
        group.bench_function(BenchmarkId::new("encode", "compound-1400"), |b| {
            b.iter(|| {
                buf.clear();
                pack(&codec, black_box(&gossip), black_box(&updates), DEFAULT_MTU, &mut buf)
            })
        });
        group.bench_function(BenchmarkId::new("decode", "compound-1400"), |b| {
            b.iter(|| codec.decode_with_scratch(black_box(&frame), &mut scratch).unwrap())
        });
        group.bench_function(BenchmarkId::new("encode+decode", "compound-1400"), |b| {
            b.iter(|| {
                buf.clear();
                pack(&codec, black_box(&gossip), black_box(&updates), DEFAULT_MTU, &mut buf);
                codec.decode_with_scratch(&buf, &mut scratch).unwrap()
            })
        });
        let encoded = pre_encoded(&updates);
        let mut again = BytesMut::new();
        pack_encoded(&codec, &gossip, &encoded, DEFAULT_MTU, &mut again);
        assert_eq!(again.len(), len, "the same packet from pre-encoded updates");
        group.bench_function(BenchmarkId::new("encode_pre_encoded", "compound-1400"), |b| {
            b.iter(|| {
                buf.clear();
                pack_encoded(&codec, black_box(&gossip), black_box(&encoded), DEFAULT_MTU, &mut buf)
            })
        });
        // A receive loop that keeps one Packet: its update list is not reallocated per frame.
        let mut received = Packet::new(Message::Gossip);
        group.bench_function(BenchmarkId::new("decode_into", "compound-1400"), |b| {
            b.iter(|| codec.decode_into(black_box(&frame), &mut scratch, &mut received).unwrap())
        });
        group.bench_function(BenchmarkId::new("encode+decode_into", "compound-1400"), |b| {
            b.iter(|| {
                buf.clear();
                pack(&codec, black_box(&gossip), black_box(&updates), DEFAULT_MTU, &mut buf);
                codec.decode_into(&buf, &mut scratch, &mut received).unwrap()
            })
        });
        // The core's path: pre-encoded updates out, one reused update list in.
        let mut update_list = Vec::new();
        group.bench_function(BenchmarkId::new("encode_pre_encoded+decode_parts", "compound-1400"), |b| {
            b.iter(|| {
                buf.clear();
                pack_encoded(&codec, black_box(&gossip), black_box(&encoded), DEFAULT_MTU, &mut buf);
                codec.decode_parts(&buf, &mut scratch, &mut update_list).unwrap()
            })
        });
        group.finish();
    }
}

criterion_group!(benches, bench_wire);
criterion_main!(benches);
