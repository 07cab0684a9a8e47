//! Netstring framing, as baresip's `ctrl_tcp` module speaks it in both directions:
//! `<decimal byte length>:<payload>,` — e.g. `17:{"command":"dial"},`.
//!
//! [`Decoder`] takes bytes as they come off the socket (frames may be split across reads, or several
//! may arrive in one read) and hands back whole payloads. Anything that is not a netstring — a
//! non-digit in the length, a leading zero, a length over the limit, a missing `,` — is an error: the
//! stream cannot be resynchronised after that, so the caller drops the connection.

/// baresip's own limit: at most nine length digits.
pub const MAX_DIGITS: usize = 9;

/// Why the byte stream is not a netstring stream.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NetstringError {
    #[error("netstring length contains {0:?}, which is not a digit")]
    BadLength(char),
    #[error("netstring length has a leading zero")]
    LeadingZero,
    #[error("netstring length is empty")]
    EmptyLength,
    #[error("netstring of {len} bytes is over the limit of {max}")]
    TooLong { len: usize, max: usize },
    #[error("netstring does not end with ',' (found {0:?})")]
    MissingComma(char),
}

/// Frames `payload` as a netstring.
pub fn encode(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 12);
    out.extend_from_slice(payload.len().to_string().as_bytes());
    out.push(b':');
    out.extend_from_slice(payload);
    out.push(b',');
    out
}

/// Incremental netstring decoder. See the module documentation.
#[derive(Debug)]
pub struct Decoder {
    buf: Vec<u8>,
    max_len: usize,
}

impl Decoder {
    /// A decoder that refuses payloads longer than `max_len` bytes.
    pub fn new(max_len: usize) -> Self {
        Decoder { buf: Vec::new(), max_len }
    }

    /// Adds bytes read from the stream.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next whole payload, `Ok(None)` if more bytes are needed, or an error if the stream is
    /// broken.
    pub fn next_frame(&mut self) -> Result<Option<Vec<u8>>, NetstringError> {
        let Some(len) = self.length()? else { return Ok(None) };
        let digits = len.to_string().len();
        let start = digits + 1;
        let end = start + len;
        if self.buf.len() <= end {
            return Ok(None);
        }
        if self.buf[end] != b',' {
            return Err(NetstringError::MissingComma(char::from(self.buf[end])));
        }
        let payload = self.buf[start..end].to_vec();
        self.buf.drain(..=end);
        Ok(Some(payload))
    }

    /// Parses the length prefix once its `:` has arrived.
    fn length(&self) -> Result<Option<usize>, NetstringError> {
        let mut len: usize = 0;
        for (i, &b) in self.buf.iter().enumerate() {
            match b {
                b':' if i == 0 => return Err(NetstringError::EmptyLength),
                b':' => return Ok(Some(len)),
                b'0'..=b'9' => {
                    if i == 1 && self.buf[0] == b'0' {
                        return Err(NetstringError::LeadingZero);
                    }
                    if i >= MAX_DIGITS {
                        return Err(NetstringError::TooLong { len: usize::MAX, max: self.max_len });
                    }
                    len = len * 10 + usize::from(b - b'0');
                    if len > self.max_len {
                        return Err(NetstringError::TooLong { len, max: self.max_len });
                    }
                }
                other => return Err(NetstringError::BadLength(char::from(other))),
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(d: &mut Decoder) -> Result<Vec<String>, NetstringError> {
        let mut out = Vec::new();
        while let Some(f) = d.next_frame()? {
            out.push(String::from_utf8_lossy(&f).into_owned());
        }
        Ok(out)
    }

    #[test]
    fn encodes_like_baresip() {
        assert_eq!(encode(br#"{"command":"dial"}"#), b"18:{\"command\":\"dial\"},".to_vec());
        assert_eq!(encode(b""), b"0:,".to_vec());
    }

    #[test]
    fn decodes_whole_and_several_frames_in_one_read() {
        let mut d = Decoder::new(1024);
        d.push(b"5:hello,3:abc,0:,");
        assert_eq!(frames(&mut d), Ok(vec!["hello".into(), "abc".into(), String::new()]));
    }

    #[test]
    fn decodes_frames_split_at_every_byte() {
        let wire = [encode(b"first frame"), encode("ünïcode".as_bytes())].concat();
        let mut d = Decoder::new(1024);
        let mut got = Vec::new();
        for b in &wire {
            d.push(std::slice::from_ref(b));
            got.extend(frames(&mut d).expect("valid stream"));
        }
        assert_eq!(got, ["first frame", "ünïcode"]);
    }

    #[test]
    fn partial_frame_waits_for_more() {
        let mut d = Decoder::new(1024);
        d.push(b"12");
        assert_eq!(d.next_frame(), Ok(None));
        d.push(b":hello");
        assert_eq!(d.next_frame(), Ok(None));
        d.push(b" world!");
        assert_eq!(d.next_frame(), Ok(None), "the comma has not arrived");
        d.push(b",");
        assert_eq!(d.next_frame(), Ok(Some(b"hello world!".to_vec())));
    }

    #[test]
    fn refuses_lengths_over_the_limit_before_reading_the_payload() {
        let mut d = Decoder::new(10);
        d.push(b"11:");
        assert_eq!(d.next_frame(), Err(NetstringError::TooLong { len: 11, max: 10 }));
        let mut d = Decoder::new(usize::MAX);
        d.push(b"1000000000:");
        assert!(matches!(d.next_frame(), Err(NetstringError::TooLong { .. })), "ten digits is over baresip's limit");
        let mut d = Decoder::new(10);
        d.push(b"10:0123456789,");
        assert_eq!(d.next_frame(), Ok(Some(b"0123456789".to_vec())), "exactly the limit is fine");
    }

    #[test]
    fn garbage_is_an_error() {
        for (wire, err) in [
            (&b"abc"[..], NetstringError::BadLength('a')),
            (b"{\"event\":true}", NetstringError::BadLength('{')),
            (b"05:hello,", NetstringError::LeadingZero),
            (b":hello,", NetstringError::EmptyLength),
            (b"5:hello;", NetstringError::MissingComma(';')),
            (b"3:hello,", NetstringError::MissingComma('l')),
            (b"-1:x,", NetstringError::BadLength('-')),
        ] {
            let mut d = Decoder::new(1024);
            d.push(wire);
            assert_eq!(d.next_frame(), Err(err), "{}", String::from_utf8_lossy(wire));
        }
    }
}
