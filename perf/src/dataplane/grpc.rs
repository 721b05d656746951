//! gRPC's length-prefixed message framing, for the `grpc-unary` workload:
//! the upstream's echo method checks and echoes a frame, and the load
//! generator's request body is one.
//!
//! ```text
//!  byte 0      bytes 1..5            bytes 5..
//!  compressed  message length (BE)   message
//! ```

/// Bytes before each gRPC message.
pub const PREFIX_LEN: usize = 5;

/// One uncompressed message, framed.
pub fn frame(message: &[u8]) -> Vec<u8> {
    let len = u32::try_from(message.len()).expect("a gRPC message is below 4 GiB");
    let mut out = Vec::with_capacity(PREFIX_LEN + message.len());
    out.push(0);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(message);
    out
}

/// Why a body is not exactly one gRPC frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameError {
    /// Fewer than the five prefix bytes.
    ShortPrefix(usize),
    /// The compressed flag is neither 0 nor 1.
    BadFlag(u8),
    /// The prefix announces more or fewer bytes than follow it.
    LengthMismatch { announced: usize, actual: usize },
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrameError::ShortPrefix(n) => write!(f, "{n} bytes, shorter than a gRPC prefix"),
            FrameError::BadFlag(b) => write!(f, "compressed flag {b}, want 0 or 1"),
            FrameError::LengthMismatch { announced, actual } => {
                write!(f, "prefix announces {announced} bytes, {actual} follow")
            }
        }
    }
}

impl std::error::Error for FrameError {}

/// The message of a body holding exactly one frame (a unary call).
pub fn unframe(body: &[u8]) -> Result<&[u8], FrameError> {
    if body.len() < PREFIX_LEN {
        return Err(FrameError::ShortPrefix(body.len()));
    }
    if body[0] > 1 {
        return Err(FrameError::BadFlag(body[0]));
    }
    let announced = u32::from_be_bytes([body[1], body[2], body[3], body[4]]) as usize;
    let message = &body[PREFIX_LEN..];
    if message.len() != announced {
        return Err(FrameError::LengthMismatch {
            announced,
            actual: message.len(),
        });
    }
    Ok(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_prefixes_flag_and_big_endian_length() {
        let framed = frame(&[7u8; 300]);
        assert_eq!(&framed[..PREFIX_LEN], &[0, 0, 0, 1, 44]);
        assert_eq!(framed.len(), 305);
        assert_eq!(unframe(&framed), Ok(&[7u8; 300][..]));
        assert_eq!(unframe(&frame(b"")), Ok(&b""[..]));
    }

    #[test]
    fn unframe_refuses_what_is_not_one_frame() {
        assert_eq!(unframe(&[0, 0, 0]), Err(FrameError::ShortPrefix(3)));
        assert_eq!(unframe(&[2, 0, 0, 0, 0]), Err(FrameError::BadFlag(2)));
        assert_eq!(
            unframe(&[0, 0, 0, 0, 3, b'a']),
            Err(FrameError::LengthMismatch {
                announced: 3,
                actual: 1
            })
        );
        let mut two = frame(b"ab");
        two.extend(frame(b"cd"));
        assert!(matches!(
            unframe(&two),
            Err(FrameError::LengthMismatch { announced: 2, .. })
        ));
    }
}
