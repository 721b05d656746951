//! A bounds-checked reader of the TLS ClientHello, for protocol detection:
//! it takes the first bytes a client sent (maybe cut short) and returns the
//! SNI host name and ALPN protocols. Every read checks its length first, so
//! any input, however malformed, gives an answer and never a panic.
//!
//! ```text
//! record:    0x16 | version(2) | length(2) | handshake...
//! handshake: 0x01 | length(3) | version(2) | random(32) | session_id(<1>)
//!            | cipher_suites(<2>) | compression(<1>) | extensions(<2>)
//! extension: type(2) | length(2) | data      server_name = 0, ALPN = 16
//! ```

/// What the ClientHello said, as far as the bytes went.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientHello {
    /// The SNI host name, lower-cased.
    pub server_name: Option<String>,
    /// ALPN protocols in the client's order.
    pub alpn: Vec<String>,
    /// Whether the whole hello (all its extensions) was read.
    pub complete: bool,
}

/// Why the bytes are not a ClientHello.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotClientHello;

/// TLS record type of handshake messages.
const HANDSHAKE: u8 = 0x16;
/// Handshake type of ClientHello.
const CLIENT_HELLO: u8 = 0x01;
const EXT_SERVER_NAME: u16 = 0;
const EXT_ALPN: u16 = 16;
/// DNS names are at most 253 characters.
const MAX_HOST_NAME: usize = 253;

/// Whether `bytes` can still be the start of a TLS handshake record.
pub fn looks_like_tls(bytes: &[u8]) -> bool {
    match bytes {
        [] => true,
        [t] => *t == HANDSHAKE,
        [t, major, ..] => *t == HANDSHAKE && *major == 3,
    }
}

/// Parse the ClientHello at the start of `bytes`.
///
/// A hello cut short is `Ok` with `complete: false` and whatever was found
/// before the cut; bytes that cannot be one are `Err`.
pub fn parse(bytes: &[u8]) -> Result<ClientHello, NotClientHello> {
    let mut hello = ClientHello::default();
    match read_hello(bytes, &mut hello) {
        Ok(()) => {
            hello.complete = true;
            Ok(hello)
        }
        Err(Stop::Truncated) => Ok(hello),
        Err(Stop::Invalid) => Err(NotClientHello),
    }
}

#[derive(Debug)]
enum Stop {
    /// The input ended before the structure did.
    Truncated,
    /// The structure is impossible.
    Invalid,
}

/// A cursor over a byte slice; every read is checked.
struct Reader<'a> {
    bytes: &'a [u8],
    /// The input ends before the structure these bytes belong to: running
    /// out is truncation, not a malformed hello.
    short: bool,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Stop> {
        if self.bytes.len() < n {
            return Err(if self.short {
                Stop::Truncated
            } else {
                Stop::Invalid
            });
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, Stop> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, Stop> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u24(&mut self) -> Result<usize, Stop> {
        let b = self.take(3)?;
        Ok(usize::from(b[0]) << 16 | usize::from(b[1]) << 8 | usize::from(b[2]))
    }

    /// A length-prefixed block. A block longer than what is left of the
    /// input is returned cut short (its reader then reports truncation);
    /// `limit` is how much the enclosing structure allows.
    fn block(&mut self, len: usize, limit: usize) -> Result<Reader<'a>, Stop> {
        if len > limit {
            return Err(Stop::Invalid);
        }
        if len > self.bytes.len() && !self.short {
            return Err(Stop::Invalid);
        }
        let available = len.min(self.bytes.len());
        let (head, rest) = self.bytes.split_at(available);
        self.bytes = rest;
        Ok(Reader {
            bytes: head,
            short: available < len,
        })
    }

    /// Whether nothing is left to read here.
    fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}

fn read_hello(bytes: &[u8], hello: &mut ClientHello) -> Result<(), Stop> {
    let mut record = Reader { bytes, short: true };
    if record.u8()? != HANDSHAKE {
        return Err(Stop::Invalid);
    }
    let version = record.u16()?;
    if version >> 8 != 3 {
        return Err(Stop::Invalid);
    }
    let record_len = usize::from(record.u16()?);
    if record_len == 0 || record_len > (1 << 14) + 2048 {
        return Err(Stop::Invalid);
    }
    let mut payload = record.block(record_len, usize::MAX)?;
    if payload.u8()? != CLIENT_HELLO {
        return Err(Stop::Invalid);
    }
    // A hello longer than its record continues in the next record; the
    // part in this one is all we read.
    let hello_len = payload.u24()?;
    let mut body = if hello_len > payload.bytes.len() {
        Reader {
            bytes: payload.bytes,
            short: true,
        }
    } else {
        payload.block(hello_len, usize::MAX)?
    };
    body.take(2)?; // client_version
    body.take(32)?; // random
    let session_id = usize::from(body.u8()?);
    body.block(session_id, 32)?.take(session_id)?;
    let suites = usize::from(body.u16()?);
    if suites == 0 || suites % 2 != 0 {
        return Err(Stop::Invalid);
    }
    body.take(suites)?;
    let compression = usize::from(body.u8()?);
    if compression == 0 {
        return Err(Stop::Invalid);
    }
    body.take(compression)?;
    if body.is_empty() {
        // No extensions at all (old clients). Complete only if the hello
        // really ended here.
        return if body.short {
            Err(Stop::Truncated)
        } else {
            Ok(())
        };
    }
    let extensions_len = usize::from(body.u16()?);
    let mut extensions = body.block(extensions_len, usize::MAX)?;
    let mut read = 0;
    while read < extensions_len {
        let kind = extensions.u16()?;
        let len = usize::from(extensions.u16()?);
        read += 4 + len;
        if read > extensions_len {
            return Err(Stop::Invalid);
        }
        let mut data = extensions.block(len, usize::MAX)?;
        match kind {
            EXT_SERVER_NAME => hello.server_name = server_name(&mut data)?,
            EXT_ALPN => hello.alpn = alpn(&mut data)?,
            _ => {
                data.take(len)?;
            }
        }
    }
    Ok(())
}

fn server_name(data: &mut Reader<'_>) -> Result<Option<String>, Stop> {
    let list_len = usize::from(data.u16()?);
    let mut list = data.block(list_len, usize::MAX)?;
    let mut found = None;
    let mut read = 0;
    while read < list_len {
        let name_type = list.u8()?;
        let len = usize::from(list.u16()?);
        read += 3 + len;
        let name = list.take(len)?;
        if name_type == 0 && found.is_none() {
            if name.is_empty() || len > MAX_HOST_NAME || !name.iter().all(|b| is_host_byte(*b)) {
                return Err(Stop::Invalid);
            }
            found = Some(String::from_utf8_lossy(name).to_ascii_lowercase());
        }
    }
    Ok(found)
}

fn alpn(data: &mut Reader<'_>) -> Result<Vec<String>, Stop> {
    let list_len = usize::from(data.u16()?);
    let mut list = data.block(list_len, usize::MAX)?;
    let mut protocols = Vec::new();
    let mut read = 0;
    while read < list_len {
        let len = usize::from(list.u8()?);
        read += 1 + len;
        let protocol = list.take(len)?;
        if protocol.is_empty() {
            return Err(Stop::Invalid);
        }
        protocols.push(String::from_utf8_lossy(protocol).into_owned());
    }
    Ok(protocols)
}

fn is_host_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_')
}
