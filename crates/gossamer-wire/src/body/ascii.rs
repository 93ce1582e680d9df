//! The printable-ASCII check names and metadata keys take on every
//! frame, eight bytes at a time.

/// True when every byte is printable ASCII (0x21..=0x7e): valid UTF-8
/// without whitespace or control characters, i.e. an acceptable name
/// character. Eight bytes at a time, since every frame carries names; the
/// usual names (up to 24 bytes) take two or three overlapping word loads.
#[inline(always)]
pub(crate) fn is_plain_ascii(bytes: &[u8]) -> bool {
    let n = bytes.len();
    let word = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"));
    let bad = match n {
        0..=3 => {
            // Pad with a harmless printable byte and check one word.
            let mut padded = [b'a'; 8];
            for (to, from) in padded.iter_mut().zip(bytes) {
                *to = *from;
            }
            bad_bytes(u64::from_le_bytes(padded))
        }
        4..=7 => {
            // The first and the last four bytes (overlapping) as one word.
            let head = u32::from_le_bytes(bytes[..4].try_into().expect("4 bytes"));
            let tail = u32::from_le_bytes(bytes[n - 4..].try_into().expect("4 bytes"));
            bad_bytes(head as u64 | (tail as u64) << 32)
        }
        8..=16 => bad_bytes(word(0)) | bad_bytes(word(n - 8)),
        17..=24 => bad_bytes(word(0)) | bad_bytes(word(8)) | bad_bytes(word(n - 8)),
        _ => {
            let mut chunks = bytes.chunks_exact(8);
            let mut bad = 0;
            for chunk in &mut chunks {
                bad |= bad_bytes(u64::from_le_bytes(chunk.try_into().expect("8 bytes")));
            }
            // The last eight bytes, overlapping the last whole chunk.
            bad | bad_bytes(word(n - 8))
        }
    };
    bad == 0
}

/// Nonzero unless all eight bytes of `x` are in 0x21..=0x7e (SWAR). While
/// every byte is below 0x80, adding 0x01 sets a byte's high bit exactly when
/// it is >= 0x7f and adding 0x5f exactly when it is >= 0x21, with no carry
/// between bytes; a byte >= 0x80 (whose carry could spoil its neighbours)
/// is caught by its own high bit.
#[inline(always)]
fn bad_bytes(x: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    (x | x.wrapping_add(ONES) | !x.wrapping_add(ONES * 0x5f)) & HIGH
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(bytes: &[u8]) -> bool {
        bytes.iter().all(|b| (0x21..=0x7e).contains(b))
    }

    #[test]
    fn plain_ascii_check_matches_the_naive_one() {
        // Every byte value at every position of a 17-byte name (two chunks and a remainder).
        for at in 0..17 {
            for b in 0..=255u8 {
                let mut name = *b"gossamer@10.0.0.7";
                name[at] = b;
                assert_eq!(is_plain_ascii(&name), naive(&name), "byte {b:#x} at {at}");
            }
        }
        assert!(is_plain_ascii(b""));
        for len in 1..40 {
            for at in 0..len {
                for b in [0u8, 0x20, 0x21, 0x7e, 0x7f, 0x80, 0xff] {
                    let mut name = vec![b'x'; len];
                    name[at] = b;
                    assert_eq!(is_plain_ascii(&name), naive(&name), "byte {b:#x} at {at} of {len}");
                }
            }
        }
        for len in 0..40 {
            assert!(is_plain_ascii(&vec![b'~'; len]));
            assert!(is_plain_ascii(&vec![b'!'; len]));
        }
    }
}
