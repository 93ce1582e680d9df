//! One frame each way over TCP: the push-pull exchange. The header is read
//! first and checked (magic, version, label, length cap) before a single
//! byte of body is buffered, so an oversized or foreign frame costs nothing.

use std::time::Duration;

use gossamer_wire::{header_len, FrameCodec, HEADER_PREFIX_LEN};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::error::StreamError;

/// Reads exactly one frame from `stream`, refusing it by its header when
/// `codec` would (the codec's `max_frame_len` is the size cap). The whole
/// read is bounded by `timeout`.
pub async fn read_frame<S: AsyncRead + Unpin>(
    stream: &mut S,
    codec: &FrameCodec,
    timeout: Duration,
) -> Result<Vec<u8>, StreamError> {
    tokio::time::timeout(timeout, read_frame_inner(stream, codec)).await.map_err(|_| StreamError::Timeout)?
}

async fn read_frame_inner<S: AsyncRead + Unpin>(stream: &mut S, codec: &FrameCodec) -> Result<Vec<u8>, StreamError> {
    let mut buf = vec![0u8; HEADER_PREFIX_LEN];
    read_exact(stream, &mut buf).await?;
    // The prefix alone is enough to refuse another protocol or version.
    if let Some(total) = codec.frame_len(&buf)? {
        return finish(stream, buf, total, codec).await;
    }
    let header = header_len(&buf).expect("the prefix is read whole");
    buf.resize(header, 0);
    read_exact(stream, &mut buf[HEADER_PREFIX_LEN..]).await?;
    match codec.frame_len(&buf)? {
        Some(total) => finish(stream, buf, total, codec).await,
        None => Err(StreamError::Closed),
    }
}

async fn finish<S: AsyncRead + Unpin>(
    stream: &mut S,
    mut buf: Vec<u8>,
    total: usize,
    codec: &FrameCodec,
) -> Result<Vec<u8>, StreamError> {
    if total > codec.max_frame_len() || total < buf.len() {
        return Err(StreamError::Refused(gossamer_wire::DecodeError::TooLarge {
            len: total as u64,
            max: codec.max_frame_len() as u32,
        }));
    }
    // Grow the buffer only as bytes actually arrive: a header claiming a
    // huge (but allowed) frame must not make this node allocate it up front.
    let remaining = (total - buf.len()) as u64;
    buf.reserve(remaining.min(64 * 1024) as usize);
    (&mut *stream).take(remaining).read_to_end(&mut buf).await?;
    if buf.len() != total {
        return Err(StreamError::Closed);
    }
    Ok(buf)
}

async fn read_exact<S: AsyncRead + Unpin>(stream: &mut S, buf: &mut [u8]) -> Result<(), StreamError> {
    match stream.read_exact(buf).await {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Err(StreamError::Closed),
        Err(e) => Err(StreamError::Io(e)),
    }
}

/// Writes one frame and flushes, bounded by `timeout`.
pub async fn write_frame<S: AsyncWrite + Unpin>(
    stream: &mut S,
    frame: &[u8],
    timeout: Duration,
) -> Result<(), StreamError> {
    let write = async {
        stream.write_all(frame).await?;
        stream.flush().await?;
        Ok::<_, std::io::Error>(())
    };
    tokio::time::timeout(timeout, write).await.map_err(|_| StreamError::Timeout)?.map_err(StreamError::Io)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;
    use gossamer_wire::{Ack, ClusterLabel, Message, Packet};

    fn codec(label: &str) -> FrameCodec {
        FrameCodec::new(ClusterLabel::new(label).unwrap())
    }

    fn frame(codec: &FrameCodec) -> Vec<u8> {
        let mut out = BytesMut::new();
        let packet = Packet::new(Message::Ack(Ack { seq: 9, from: "a@h".parse().unwrap() }));
        codec.encode(&packet, &mut out).unwrap();
        out.to_vec()
    }

    #[tokio::test]
    async fn reads_exactly_one_frame() {
        let c = codec("prod");
        let f = frame(&c);
        let (mut a, mut b) = tokio::io::duplex(1 << 16);
        write_frame(&mut a, &f, Duration::from_secs(5)).await.unwrap();
        let got = read_frame(&mut b, &c, Duration::from_secs(5)).await.unwrap();
        assert_eq!(got, f);
        assert!(c.decode(&got).is_ok());
    }

    #[tokio::test]
    async fn foreign_label_is_refused_by_its_header() {
        let f = frame(&codec("other"));
        let (mut a, mut b) = tokio::io::duplex(1 << 16);
        write_frame(&mut a, &f, Duration::from_secs(5)).await.unwrap();
        let err = read_frame(&mut b, &codec("prod"), Duration::from_secs(5)).await.unwrap_err();
        assert!(matches!(err, StreamError::Refused(gossamer_wire::DecodeError::LabelMismatch { .. })), "{err}");
    }

    #[tokio::test]
    async fn oversized_frame_is_refused_before_its_body() {
        let c = codec("prod");
        let mut f = frame(&c);
        // Claim a 1 GiB payload: the cap refuses it without reading further.
        let len_at = gossamer_wire::header_len(&f).unwrap() - 4;
        f[len_at..len_at + 4].copy_from_slice(&(1u32 << 30).to_le_bytes());
        let (mut a, mut b) = tokio::io::duplex(1 << 16);
        write_frame(&mut a, &f, Duration::from_secs(5)).await.unwrap();
        let capped = c.clone().with_max_frame_len(1 << 20).unwrap();
        let err = read_frame(&mut b, &capped, Duration::from_secs(5)).await.unwrap_err();
        assert!(matches!(err, StreamError::Refused(gossamer_wire::DecodeError::TooLarge { .. })), "{err}");
    }

    #[tokio::test]
    async fn garbage_and_early_close_are_errors() {
        let (mut a, mut b) = tokio::io::duplex(1 << 16);
        write_frame(&mut a, b"HTTP/1.1 200 OK\r\n", Duration::from_secs(5)).await.unwrap();
        let err = read_frame(&mut b, &codec("prod"), Duration::from_secs(5)).await.unwrap_err();
        assert!(matches!(err, StreamError::Refused(gossamer_wire::DecodeError::BadMagic { .. })), "{err}");

        let c = codec("prod");
        let f = frame(&c);
        let (mut a, mut b) = tokio::io::duplex(1 << 16);
        write_frame(&mut a, &f[..f.len() - 3], Duration::from_secs(5)).await.unwrap();
        drop(a);
        let err = read_frame(&mut b, &c, Duration::from_secs(5)).await.unwrap_err();
        assert!(matches!(err, StreamError::Closed), "{err}");
    }

    #[tokio::test]
    async fn silent_peer_times_out() {
        let (_a, mut b) = tokio::io::duplex(1 << 16);
        let err = read_frame(&mut b, &codec("prod"), Duration::from_millis(50)).await.unwrap_err();
        assert!(matches!(err, StreamError::Timeout), "{err}");
    }
}
