//! The public size of a body value, computed by the body codec itself.

use crate::body::Encode;

/// Bytes `value` takes in a frame body, computed from its fields by the
/// body codec itself (no encoding pass, no serde): what budget checks
/// (`overhead() + encoded_len(..) <= mtu`) and tests need.
pub fn encoded_len<T: BodyLen + ?Sized>(value: &T) -> usize {
    value.body_len()
}

/// A value carried in a frame body ([`Packet`](crate::Packet),
/// [`Message`](crate::Message), [`Update`](crate::Update), and the messages
/// and updates inside them), whose size [`encoded_len`] reports.
/// Implemented by this crate only: the body encoding is its own.
pub trait BodyLen: sealed::Sealed {
    /// Bytes the value takes in a frame body.
    #[doc(hidden)]
    fn body_len(&self) -> usize;
}

impl<T: Encode + ?Sized> BodyLen for T {
    fn body_len(&self) -> usize {
        Encode::encoded_len(self)
    }
}

mod sealed {
    /// Keeps [`super::BodyLen`] to the types of the body codec.
    pub trait Sealed {}
    impl<T: crate::body::Encode + ?Sized> Sealed for T {}
}
