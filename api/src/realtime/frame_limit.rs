//! Refuses an oversized WebSocket frame as soon as its header is read. The frame parser under
//! actix-ws checks a frame's length only once the whole frame is buffered, so a header that
//! declares 2^40 bytes would make the server buffer whatever the client streams after it. This
//! walks the client's bytes on their way in, reading only the frame headers, and fails the
//! stream at the first header that declares more than the limit.

use std::pin::Pin;
use std::task::{Context, Poll};

use actix_web::dev::Payload;
use actix_web::error::PayloadError;
use bytes::Bytes;
use futures_util::Stream;

/// Where the walk through the client's bytes stands.
#[derive(Debug)]
enum Position {
    /// Inside a frame header: the bytes of it read so far.
    Header { bytes: [u8; 14], have: usize },
    /// Inside a frame's payload: the bytes of it still to come.
    Payload { left: u64 },
}

const HEADER_START: Position = Position::Header { bytes: [0; 14], have: 0 };

/// Follows the frames of a client-to-server byte stream by their headers alone.
#[derive(Debug)]
pub struct FrameLimit {
    max: u64,
    position: Position,
}

impl FrameLimit {
    pub fn new(max: usize) -> FrameLimit {
        FrameLimit { max: max as u64, position: HEADER_START }
    }

    /// Takes the next bytes of the stream; `Err` with the declared length when a frame header
    /// declares more than the limit.
    pub fn feed(&mut self, mut chunk: &[u8]) -> Result<(), u64> {
        while !chunk.is_empty() {
            match &mut self.position {
                Position::Payload { left } => {
                    let skipped = (*left).min(chunk.len() as u64);
                    *left -= skipped;
                    chunk = &chunk[skipped as usize..];
                    if *left == 0 {
                        self.position = HEADER_START;
                    }
                }
                Position::Header { bytes, have } => {
                    let wanted = header_len(&bytes[..*have]) - *have;
                    let taken = wanted.min(chunk.len());
                    bytes[*have..*have + taken].copy_from_slice(&chunk[..taken]);
                    *have += taken;
                    chunk = &chunk[taken..];
                    if *have < header_len(&bytes[..*have]) {
                        continue;
                    }
                    let length = payload_len(&bytes[..*have]);
                    if length > self.max {
                        return Err(length);
                    }
                    self.position = if length == 0 { HEADER_START } else { Position::Payload { left: length } };
                }
            }
        }
        Ok(())
    }
}

/// The length of a frame header whose first bytes are `known` (RFC 6455 §5.2: two bytes, then
/// 2 or 8 of extended length, then the 4-byte mask key clients must send).
fn header_len(known: &[u8]) -> usize {
    let Some(second) = known.get(1) else { return 2 };
    let extended = match second & 0x7f {
        126 => 2,
        127 => 8,
        _ => 0,
    };
    let mask = if second & 0x80 != 0 { 4 } else { 0 };
    2 + extended + mask
}

/// The payload length a complete header declares.
fn payload_len(header: &[u8]) -> u64 {
    match header[1] & 0x7f {
        126 => u64::from(u16::from_be_bytes([header[2], header[3]])),
        127 => u64::from_be_bytes(header[2..10].try_into().unwrap_or_default()),
        short => u64::from(short),
    }
}

/// The request body of an upgrade, failed with [`PayloadError::Overflow`] at the first frame
/// header that declares more than the limit (nothing after it is read).
pub struct LimitedPayload {
    inner: Payload,
    limit: FrameLimit,
    refused: bool,
}

impl LimitedPayload {
    pub fn new(inner: Payload, max_frame_bytes: usize) -> LimitedPayload {
        LimitedPayload { inner, limit: FrameLimit::new(max_frame_bytes), refused: false }
    }

    /// Whether `error`, as the WebSocket stream reports it, is this guard's refusal.
    pub fn refused(error: &std::io::Error) -> bool {
        error.get_ref().and_then(|inner| inner.downcast_ref::<PayloadError>()).is_some_and(|e| matches!(e, PayloadError::Overflow))
    }
}

impl Stream for LimitedPayload {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.refused {
            return Poll::Ready(None);
        }
        match Pin::new(&mut this.inner).poll_next(cx) {
            Poll::Ready(Some(Ok(bytes))) if this.limit.feed(&bytes).is_err() => {
                this.refused = true;
                Poll::Ready(Some(Err(PayloadError::Overflow)))
            }
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: usize = 64 * 1024;

    /// A masked client frame header declaring `length` bytes.
    fn header(length: u64) -> Vec<u8> {
        let mut bytes = vec![0x81];
        match length {
            0..=125 => bytes.push(0x80 | length as u8),
            126..=0xffff => {
                bytes.push(0x80 | 126);
                bytes.extend((length as u16).to_be_bytes());
            }
            _ => {
                bytes.push(0x80 | 127);
                bytes.extend(length.to_be_bytes());
            }
        }
        bytes.extend([1, 2, 3, 4]);
        bytes
    }

    fn frame(length: usize) -> Vec<u8> {
        let mut bytes = header(length as u64);
        bytes.extend(std::iter::repeat_n(b'x', length));
        bytes
    }

    #[test]
    fn frames_within_the_limit_pass_however_the_bytes_are_split() {
        let stream: Vec<u8> = [frame(5), frame(0), frame(300), frame(MAX), frame(125), frame(126)].concat();
        for chunk_size in [1, 2, 3, 7, 14, 1000, stream.len()] {
            let mut limit = FrameLimit::new(MAX);
            for chunk in stream.chunks(chunk_size) {
                assert_eq!(limit.feed(chunk), Ok(()), "chunks of {chunk_size}");
            }
            assert!(matches!(limit.position, Position::Header { have: 0, .. }), "ends between frames");
        }
    }

    #[test]
    fn a_header_declaring_more_than_the_limit_is_refused_before_its_payload() {
        for declared in [MAX as u64 + 1, 1 << 40, u64::MAX >> 1] {
            let mut limit = FrameLimit::new(MAX);
            let mut stream = frame(10);
            stream.extend(header(declared));
            // One byte at a time: the refusal comes with the header's last byte.
            let header_end = stream.len();
            for (at, byte) in stream.iter().enumerate() {
                let fed = limit.feed(&[*byte]);
                if at + 1 < header_end {
                    assert_eq!(fed, Ok(()));
                } else {
                    assert_eq!(fed, Err(declared));
                }
            }
        }
    }
}
