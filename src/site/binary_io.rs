//! Reading and writing the binary files of a site (the session snapshot and the registry
//! cache): LEB128 numbers and strings, a bounds-checked cursor over bytes, and a stream that
//! reads a file front to back through its own buffer with the checksum running per chunk.

pub(super) fn put_varint(out: &mut Vec<u8>, v: u64) {
    crate::leb128::put(out, v);
}

/// A LEB128 number from the bytes `next` gives; at most ten of them.
fn varint(mut next: impl FnMut() -> R<u8>) -> R<u64> {
    let mut v: u64 = 0;
    for shift in (0..64).step_by(7) {
        let byte = next()?;
        v |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err("a number is too long".into())
}

pub(super) fn put_str(out: &mut Vec<u8>, s: &str) {
    put_varint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

/// A cursor over a file's bytes; every read is bounds-checked.
pub(super) struct Reader<'a> {
    pub(super) b: &'a [u8],
    pub(super) pos: usize,
}

pub(super) type R<T> = Result<T, String>;

impl<'a> Reader<'a> {
    pub(super) fn take(&mut self, n: usize) -> R<&'a [u8]> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|e| *e <= self.b.len())
            .ok_or("truncated")?;
        let s = &self.b[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    pub(super) fn u8(&mut self) -> R<u8> {
        Ok(self.take(1)?[0])
    }
    pub(super) fn u32(&mut self) -> R<u32> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().map_err(|_| "truncated")?,
        ))
    }
    pub(super) fn u64(&mut self) -> R<u64> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().map_err(|_| "truncated")?,
        ))
    }
    pub(super) fn i64(&mut self) -> R<i64> {
        Ok(i64::from_le_bytes(
            self.take(8)?.try_into().map_err(|_| "truncated")?,
        ))
    }
    pub(super) fn varint(&mut self) -> R<u64> {
        varint(|| self.u8())
    }
    pub(super) fn bytes(&mut self) -> R<&'a [u8]> {
        let n = usize::try_from(self.varint()?).map_err(|_| "a length is too large")?;
        self.take(n)
    }
    pub(super) fn str(&mut self) -> R<&'a str> {
        std::str::from_utf8(self.bytes()?).map_err(|_| "a string is not UTF-8".into())
    }
}

/// A snapshot read front to back through its own buffer: the checksum runs over each
/// chunk as it is read (not over each small field), and reads past the checksummed body are
/// errors.
pub(super) struct Stream<I> {
    input: I,
    crc: crc32fast::Hasher,
    buf: Vec<u8>,
    pos: usize,
    /// Bytes of the body not yet read from `input`.
    unread: u64,
    /// Bytes of the body not yet handed out (in `buf` or unread).
    pub(super) left: u64,
    /// What a checksum mismatch says.
    corrupt: &'static str,
}

const CHUNK: usize = 4 << 20;

impl<I: std::io::Read> Stream<I> {
    /// A stream over a file whose body (everything before the checksum) is `body` bytes;
    /// `corrupt` is what a checksum mismatch says.
    pub(super) fn new(input: I, body: u64, corrupt: &'static str) -> Self {
        Self {
            input,
            crc: crc32fast::Hasher::new(),
            buf: Vec::new(),
            pos: 0,
            unread: body,
            left: body,
            corrupt,
        }
    }

    /// Reads the next chunk of the body into the buffer (after what is still unused).
    fn refill(&mut self) -> R<()> {
        self.buf.drain(..self.pos);
        self.pos = 0;
        let want = usize::try_from(self.unread.min(CHUNK as u64)).unwrap_or(CHUNK);
        let start = self.buf.len();
        self.buf.resize(start + want, 0);
        self.read_raw(start)
    }

    /// Fills `self.buf[from..]` from the input, through the checksum.
    fn read_raw(&mut self, from: usize) -> R<()> {
        self.input
            .read_exact(&mut self.buf[from..])
            .map_err(|_| "truncated".to_string())?;
        self.crc.update(&self.buf[from..]);
        self.unread -= (self.buf.len() - from) as u64;
        Ok(())
    }

    pub(super) fn fill(&mut self, out: &mut [u8]) -> R<()> {
        if out.len() as u64 > self.left {
            return Err("truncated".into());
        }
        let mut done = 0;
        while done < out.len() {
            if self.pos == self.buf.len() && out.len() - done >= CHUNK {
                // A large read (a block of sessions) goes straight to its buffer.
                let rest = &mut out[done..];
                self.input
                    .read_exact(rest)
                    .map_err(|_| "truncated".to_string())?;
                self.crc.update(rest);
                self.unread -= rest.len() as u64;
                break;
            }
            if self.pos == self.buf.len() {
                self.refill()?;
            }
            let n = (out.len() - done).min(self.buf.len() - self.pos);
            out[done..done + n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
            self.pos += n;
            done += n;
        }
        self.left -= out.len() as u64;
        Ok(())
    }

    /// The next `n` bytes.
    pub(super) fn exact(&mut self, n: usize) -> R<Vec<u8>> {
        let mut buf = vec![0u8; n];
        self.fill(&mut buf)?;
        Ok(buf)
    }

    pub(super) fn u8(&mut self) -> R<u8> {
        let mut b = [0u8; 1];
        self.fill(&mut b)?;
        Ok(b[0])
    }
    pub(super) fn u32(&mut self) -> R<u32> {
        let mut b = [0u8; 4];
        self.fill(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }
    pub(super) fn u64(&mut self) -> R<u64> {
        let mut b = [0u8; 8];
        self.fill(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }
    pub(super) fn varint(&mut self) -> R<u64> {
        varint(|| self.u8())
    }
    /// A length-prefixed byte string appended to `out`; its range there.
    pub(super) fn bytes_into(&mut self, out: &mut Vec<u8>) -> R<std::ops::Range<usize>> {
        let n = usize::try_from(self.varint()?).map_err(|_| "a length is too large")?;
        if n as u64 > self.left {
            return Err("truncated".into());
        }
        let start = out.len();
        out.resize(start + n, 0);
        self.fill(&mut out[start..])?;
        Ok(start..start + n)
    }
    pub(super) fn string(&mut self) -> R<String> {
        let mut buf = Vec::new();
        self.bytes_into(&mut buf)?;
        String::from_utf8(buf).map_err(|_| "a string is not UTF-8".into())
    }

    /// Reads the rest of the body (to check the checksum of a damaged file).
    pub(super) fn drain(&mut self) -> R<()> {
        self.left = 0;
        while self.unread > 0 {
            self.pos = self.buf.len();
            self.refill()?;
        }
        Ok(())
    }

    /// Compares the checksum of everything read with the four bytes that follow.
    pub(super) fn check_crc(&mut self) -> R<()> {
        if self.left != 0 {
            return Err("trailing bytes after the sessions".into());
        }
        let mut b = [0u8; 4];
        self.input
            .read_exact(&mut b)
            .map_err(|_| self.corrupt.to_string())?;
        if std::mem::take(&mut self.crc).finalize() == u32::from_le_bytes(b) {
            Ok(())
        } else {
            Err(self.corrupt.into())
        }
    }
}
