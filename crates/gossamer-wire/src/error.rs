//! Every way a frame can be refused. Decoding never panics: each of these is
//! a value the caller can log and count.

/// Why bytes were not accepted as a frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Fewer bytes than the header needs.
    #[error("frame truncated: {len} bytes, the header needs {need}")]
    Truncated {
        /// Bytes present.
        len: usize,
        /// Bytes the header needs.
        need: usize,
    },
    /// Not a gossamer frame at all.
    #[error("bad magic {found:02x?}: not a gossamer frame")]
    BadMagic {
        /// The first two bytes found.
        found: [u8; 2],
    },
    /// The peer speaks another protocol version.
    #[error("protocol version mismatch: this node speaks v{ours}, the peer sent v{theirs}")]
    VersionMismatch {
        /// Our version.
        ours: u8,
        /// The frame's version.
        theirs: u8,
    },
    /// Flag bits this version does not know (from a newer peer; a peer that
    /// predates compression reports a compressed frame this way).
    #[error("unknown frame flags {0:#04x}")]
    UnknownFlags(u8),
    /// The frame belongs to another cluster.
    #[error("cluster label mismatch: expected {expected:?}, the frame has {found:?}")]
    LabelMismatch {
        /// Our label.
        expected: String,
        /// The frame's label (lossy UTF-8).
        found: String,
    },
    /// The declared payload exceeds the configured cap.
    #[error("frame payload of {len} bytes exceeds the limit of {max}")]
    TooLarge {
        /// Declared payload length.
        len: u64,
        /// Configured cap.
        max: u32,
    },
    /// The length field disagrees with the bytes present.
    #[error("length field says {declared} payload bytes but {actual} follow")]
    LengthMismatch {
        /// Declared payload length.
        declared: usize,
        /// Bytes present after the header.
        actual: usize,
    },
    /// The CRC32C does not match: corrupted in transit.
    #[error("checksum mismatch: header says {expected:#010x}, frame hashes to {actual:#010x}")]
    Checksum {
        /// CRC in the header.
        expected: u32,
        /// CRC computed.
        actual: u32,
    },
    /// Encrypted frame, but this node has no cluster secret.
    #[error("frame is encrypted but this node has no cluster secret")]
    EncryptedButNoKey,
    /// Plain frame, but this node requires encryption.
    #[error("frame is not encrypted but this node requires encryption")]
    NotEncrypted,
    /// No key of the keyring authenticates the frame.
    #[error("no key in the keyring authenticates this frame (wrong cluster secret?)")]
    WrongKey,
    /// The body is not a valid message.
    #[error("malformed body: {0}")]
    Malformed(String),
    /// Bytes left over after the message.
    #[error("{0} trailing bytes after the message body")]
    TrailingBytes(usize),
    /// A compressed body that does not inflate (corrupt LZ4 block, or an
    /// output shorter than announced).
    #[error("compressed body does not decompress: {0}")]
    Decompress(String),
    /// A compressed body announcing more bytes than the codec accepts (its
    /// frame cap) or than LZ4 can produce from the bytes present: refused
    /// before allocating.
    #[error("compressed body announces {len} bytes, the limit is {max}")]
    DecompressedTooLarge {
        /// Announced uncompressed length.
        len: usize,
        /// The limit.
        max: usize,
    },
}

/// Why a packet could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// The encoded frame would exceed the budget or the codec's cap.
    #[error("encoded frame of {len} bytes exceeds the limit of {max}")]
    TooLarge {
        /// Encoded length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The serializer failed (should not happen for valid messages).
    #[error("serialization failed: {0}")]
    Serialize(String),
    /// Encryption failed.
    #[error("encryption failed")]
    Encrypt,
}

/// A bad codec setting.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// Label longer than 255 bytes.
    #[error("cluster label is {0} bytes, the limit is 255")]
    LabelTooLong(usize),
    /// A secret key of the wrong size.
    #[error("cluster secret must be exactly 32 bytes, got {0}")]
    KeyLength(usize),
    /// A key in text form that does not parse.
    #[error("cluster secret is not 64 hex digits")]
    KeyText,
    /// A frame cap too small to carry anything.
    #[error("max frame length {0} is below the minimum of {1}")]
    MaxFrameTooSmall(usize, usize),
}
