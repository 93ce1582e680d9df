//! A huge length claimed inside a tiny frame must not make the decoder
//! allocate for it: a counting allocator records the largest single request.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::*;
use gossamer_wire::*;

struct Counting;

static LARGEST: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// Bytes allocated and not freed yet by this thread (tests run in
    /// parallel threads, so a global count would mix them up).
    static LIVE: Cell<isize> = const { Cell::new(0) };
}

fn count_live(delta: isize) {
    let _ = LIVE.try_with(|live| live.set(live.get() + delta));
}

fn live() -> isize {
    LIVE.with(Cell::get)
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        count_live(layout.size() as isize);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        count_live(-(layout.size() as isize));
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LARGEST.fetch_max(new_size, Ordering::Relaxed);
        count_live(new_size as isize - layout.size() as isize);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Largest allocation the decoder may make for any of these tiny frames.
/// (The test harness itself allocates a few KiB; the claims below are
/// gigabytes to exabytes.)
const ALLOWED: usize = 64 << 10;

const GOSSIP: u8 = 4;
const PUSH_PULL_REQUEST: u8 = 6;
const UPDATE_ALIVE: u8 = 0;
const UPDATE_USER: u8 = 4;
const UPDATE_QUERY: u8 = 5;
const QUERY_RESPONSE: u8 = 8;

/// Bodies that are valid up to one absurd length prefix, then end.
fn hostile_bodies() -> Vec<(&'static str, Vec<u8>)> {
    let huge = [u64::MAX >> 1, 1 << 40, u32::MAX as u64, 1 << 28];
    let mut bodies = Vec::new();
    for claim in huge {
        // Packet.updates
        bodies.push(("updates", [vec![GOSSIP], varint(claim)].concat()));
        // PushPull.members
        bodies.push(("members", [vec![PUSH_PULL_REQUEST, 0], varint(claim)].concat()));
        // PushPull.app_state after zero members
        bodies.push(("app_state", [vec![PUSH_PULL_REQUEST, 0, 0], varint(claim), vec![1, 2, 3]].concat()));
        // A node name's length
        bodies.push(("name", [vec![GOSSIP, 1, UPDATE_ALIVE], varint(claim), b"a@h".to_vec()].concat()));
        // Alive.metadata: name "a@h", V4 addr, port 1, incarnation 1, then the map length
        let alive = [vec![GOSSIP, 1, UPDATE_ALIVE], varint(3), b"a@h".to_vec(), vec![0, 127, 0, 0, 1, 1, 1]].concat();
        bodies.push(("metadata", [alive.clone(), varint(claim)].concat()));
        // A metadata value's length after a one-byte key
        bodies.push(("metadata value", [alive, varint(1), varint(1), b"k".to_vec(), varint(claim)].concat()));
        // UserBroadcast.payload: origin "a@h", key "k", version 1, then the payload length
        let user =
            [vec![GOSSIP, 1, UPDATE_USER], varint(3), b"a@h".to_vec(), varint(1), b"k".to_vec(), vec![1]].concat();
        bodies.push(("broadcast payload", [user, varint(claim), vec![1, 2]].concat()));
        // Query: origin "a@h" at 127.0.0.1:1, id 1, name "q", empty payload, then the filter's node count
        let query = [
            vec![GOSSIP, 1, UPDATE_QUERY],
            varint(3),
            b"a@h".to_vec(),
            vec![0, 127, 0, 0, 1, 1, 1],
            varint(1),
            b"q".to_vec(),
            vec![0],
        ]
        .concat();
        bodies.push(("query filter nodes", [query.clone(), varint(claim)].concat()));
        // ... and the tag count after no nodes
        bodies.push(("query filter tags", [query, vec![0], varint(claim), vec![1, b'a']].concat()));
        // QueryResponse.payload: id 1, from "a@h", then the payload length
        bodies.push(("query response", [vec![QUERY_RESPONSE, 1], varint(3), b"a@h".to_vec(), varint(claim)].concat()));
    }
    bodies
}

#[test]
fn huge_claimed_lengths_in_tiny_frames_do_not_allocate() {
    let plain = plain_codec(ClusterLabel::new("prod").unwrap());
    let sealed = encrypted_codec(ClusterLabel::new("prod").unwrap(), key(5));

    // The hand-made encoding is right: the same bodies with honest lengths decode.
    let honest = [vec![GOSSIP], varint(0)].concat();
    assert_eq!(plain.decode(&frame_around(b"prod", 0, &honest)).unwrap(), Packet::new(Message::Gossip));
    let alive = [vec![GOSSIP, 1, UPDATE_ALIVE], varint(3), b"a@h".to_vec(), vec![0, 127, 0, 0, 1, 1, 1]].concat();
    let meta = [alive, varint(1), varint(1), b"k".to_vec(), varint(2), b"vv".to_vec()].concat();
    let decoded = plain.decode(&frame_around(b"prod", 0, &meta)).unwrap();
    let Update::Alive(alive) = &decoded.updates[0] else { panic!("{decoded:?}") };
    assert_eq!(alive.metadata.get("k"), Some(&b"vv"[..]));

    let user = [vec![GOSSIP, 1, UPDATE_USER], varint(3), b"a@h".to_vec(), varint(1), b"k".to_vec(), vec![1]].concat();
    let decoded = plain.decode(&frame_around(b"prod", 0, &[user, varint(2), vec![7, 8]].concat())).unwrap();
    let Update::User(user) = &decoded.updates[0] else { panic!("{decoded:?}") };
    assert_eq!((user.key.as_str(), user.version, &user.payload[..]), ("k", 1, &[7u8, 8][..]));
    let response = [vec![QUERY_RESPONSE, 1], varint(3), b"a@h".to_vec(), varint(1), vec![9], vec![0]].concat();
    let decoded = plain.decode(&frame_around(b"prod", 0, &response)).unwrap();
    assert!(matches!(&decoded.message, Message::QueryResponse(r) if r.id == 1 && r.payload == [9]), "{decoded:?}");

    let mut scratch = Vec::with_capacity(1024);
    for (what, body) in hostile_bodies() {
        LARGEST.store(0, Ordering::Relaxed);
        let plain_result = plain.decode(&frame_around(b"prod", 0, &body));
        // The same body sealed by a real sender: decryption must not change the picture.
        let sealed_frame = seal(&sealed, &body);
        let sealed_result = sealed.decode_with_scratch(&sealed_frame, &mut scratch);
        let largest = LARGEST.load(Ordering::Relaxed);
        assert!(matches!(plain_result, Err(DecodeError::Malformed(_))), "{what}: {plain_result:?}");
        assert!(matches!(sealed_result, Err(DecodeError::Malformed(_))), "{what}: {sealed_result:?}");
        assert!(largest <= ALLOWED, "{what}: decoding a {}-byte body allocated {largest} bytes at once", body.len());
    }

    // Decompression bombs: a compressed body announcing far more than its
    // bytes could inflate to (or than the cap) is refused before allocating.
    let stream = plain_codec(ClusterLabel::new("prod").unwrap());
    for announced in [u32::MAX, DEFAULT_MAX_STREAM_FRAME as u32, 1 << 20] {
        let body = [&announced.to_le_bytes()[..], &[0x1f, 0, 1, 0, 0]].concat();
        LARGEST.store(0, Ordering::Relaxed);
        let result = stream.decode(&frame_around(b"prod", FLAG_COMPRESSED, &body));
        let largest = LARGEST.load(Ordering::Relaxed);
        assert!(matches!(result, Err(DecodeError::DecompressedTooLarge { .. })), "{announced}: {result:?}");
        assert!(largest <= ALLOWED, "announced {announced}: allocated {largest} bytes at once");
    }
}

/// Seals an arbitrary body exactly as the documented layout says (AAD: the
/// header up to the label; payload: nonce ‖ ciphertext ‖ tag), independently
/// of the crate's own sealing code, so it also checks that layout.
fn seal(codec: &FrameCodec, body: &[u8]) -> Vec<u8> {
    use chacha20poly1305::aead::AeadInPlace;
    use chacha20poly1305::{KeyInit, XChaCha20Poly1305, XNonce};
    let cipher = XChaCha20Poly1305::new(key(5).as_bytes().into());
    let label = codec.label().as_bytes();
    let mut header = Vec::new();
    header.extend_from_slice(&MAGIC);
    header.push(PROTOCOL_VERSION);
    header.push(FLAG_ENCRYPTED);
    header.push(label.len() as u8);
    header.extend_from_slice(label);
    let nonce = [9u8; NONCE_LEN];
    let mut sealed = body.to_vec();
    let tag = cipher.encrypt_in_place_detached(XNonce::from_slice(&nonce), &header, &mut sealed).unwrap();
    let payload = [&nonce[..], &sealed, &tag].concat();
    let mut frame = frame_around(label, FLAG_ENCRYPTED, &payload);
    fix_crc(&mut frame);
    frame
}

/// Decoding into a reused update list frees whatever the previous frame's
/// updates held on the heap (long names, large metadata, application
/// items), whichever of them holds it, and leaks nothing when none does.
#[test]
fn reused_update_lists_free_what_their_updates_own() {
    let codec = plain_codec(ClusterLabel::new("prod").unwrap());
    let short = |i: u32| -> NodeName { format!("n{i}@h").parse().unwrap() };
    let long = |i: u32| -> NodeName { format!("a-name-too-long-to-be-inline-{i}@10.0.0.1").parse().unwrap() };
    let addr = "127.0.0.1:7946".parse().unwrap();
    let (mut small, mut large) = (Metadata::new(), Metadata::new());
    small.insert("zone", "eu").unwrap();
    large.insert("zone", "eu-west-1a-and-then-some-more").unwrap();
    let inline = [
        Update::Alive(Alive { node: NodeId::new(short(1), addr), incarnation: 1, metadata: small.clone() }),
        Update::Suspect(Suspect { node: short(2), incarnation: 2, from: short(3) }),
        Update::Confirm(Confirm { node: short(4), incarnation: 3, from: short(5) }),
        Update::Leave(Leave { node: short(6), incarnation: 4 }),
    ];
    let owning = [
        Update::Alive(Alive { node: NodeId::new(long(1), addr), incarnation: 1, metadata: small }),
        Update::Alive(Alive { node: NodeId::new(short(1), addr), incarnation: 1, metadata: large }),
        Update::Suspect(Suspect { node: long(2), incarnation: 2, from: short(3) }),
        Update::Suspect(Suspect { node: short(2), incarnation: 2, from: long(3) }),
        Update::Confirm(Confirm { node: long(4), incarnation: 3, from: short(5) }),
        Update::Confirm(Confirm { node: short(4), incarnation: 3, from: long(5) }),
        Update::Leave(Leave { node: long(6), incarnation: 4 }),
        Update::User(UserBroadcast { origin: short(7), key: "k".parse().unwrap(), version: 1, payload: vec![1; 40] }),
    ];
    let frame = |updates: Vec<Update>| encode(&codec, &Packet { message: Message::Gossip, updates });
    let plain = frame(inline.to_vec());
    let (mut scratch, mut updates) = (Vec::new(), Vec::with_capacity(64));
    for owner in owning {
        let mixed = frame([&inline[..2], std::slice::from_ref(&owner), &inline[2..]].concat());
        let before = live();
        codec.decode_parts(&mixed, &mut scratch, &mut updates).unwrap();
        assert!(live() > before, "{owner:?} holds a heap block");
        assert_eq!(updates[2], owner);
        codec.decode_parts(&plain, &mut scratch, &mut updates).unwrap();
        assert_eq!(live(), before, "the block of {owner:?} is freed");
        codec.decode_parts(&plain, &mut scratch, &mut updates).unwrap();
        assert_eq!((live(), &updates[..]), (before, &inline[..]), "inline updates own nothing");
    }
}
