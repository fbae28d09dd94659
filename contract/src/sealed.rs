//! The framing every mvvm file shares (`.aot` files and checkpoint images): an 8-byte magic, a
//! format version, the body's length and the body's CRC-32, then the body. Each format documents
//! its own magic and body (`contract/FORMAT.md`, `checkpoint/FORMAT.md`).
//!
//! ```text
//! offset  size  field
//!      0     8  magic
//!      8     4  version, u32 little-endian
//!     12     8  body length in bytes, u64 little-endian
//!     20     4  CRC-32 (IEEE) of the body, u32 little-endian
//!     24     n  body
//! ```

/// Length of the header before the body.
pub const HEADER_LEN: usize = 8 + 4 + 8 + 4;

/// Why bytes are not a well-formed sealed file. Formats wrap this with the file's name and advice.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// The first eight bytes are not the expected magic.
    #[error("bad magic")]
    BadMagic,
    /// Shorter than the header says.
    #[error("truncated ({got} of {need} bytes)")]
    Truncated {
        /// Bytes present.
        got: usize,
        /// Bytes the header calls for.
        need: usize,
    },
    /// A version this build does not read.
    #[error("version {0}")]
    Version(u32),
    /// The body does not match its checksum.
    #[error("checksum mismatch")]
    Checksum,
    /// Bytes follow the body.
    #[error("{0} unexpected bytes after the body")]
    Trailing(usize),
}

/// Frames `body` with `magic` and `version`.
pub fn seal(magic: [u8; 8], version: u32, body: &[u8]) -> Vec<u8> {
    let mut out = begin(body.len());
    out.extend_from_slice(body);
    finish(magic, version, out)
}

/// A buffer to append a body to, with room for the header in front (for large bodies, which are
/// then sealed by [`finish`] without being copied).
pub fn begin(body_capacity: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + body_capacity);
    out.resize(HEADER_LEN, 0);
    out
}

/// Fills in the header of a buffer from [`begin`] whose body has been appended.
pub fn finish(magic: [u8; 8], version: u32, mut buf: Vec<u8>) -> Vec<u8> {
    let body_len = buf.len() - HEADER_LEN;
    let crc = crc32fast::hash(&buf[HEADER_LEN..]);
    buf[..8].copy_from_slice(&magic);
    buf[8..12].copy_from_slice(&version.to_le_bytes());
    buf[12..20].copy_from_slice(&(body_len as u64).to_le_bytes());
    buf[20..24].copy_from_slice(&crc.to_le_bytes());
    buf
}

/// Checks the framing of `bytes` (magic, `version`, length, checksum) and returns the body.
pub fn unseal(magic: [u8; 8], version: u32, bytes: &[u8]) -> Result<&[u8], SealError> {
    if bytes.len() < 8 || bytes[..8] != magic {
        return Err(SealError::BadMagic);
    }
    if bytes.len() < HEADER_LEN {
        return Err(SealError::Truncated {
            got: bytes.len(),
            need: HEADER_LEN,
        });
    }
    let mut w4 = [0u8; 4];
    w4.copy_from_slice(&bytes[8..12]);
    let found = u32::from_le_bytes(w4);
    if found != version {
        return Err(SealError::Version(found));
    }
    let mut w8 = [0u8; 8];
    w8.copy_from_slice(&bytes[12..20]);
    let len = u64::from_le_bytes(w8);
    w4.copy_from_slice(&bytes[20..24]);
    let crc = u32::from_le_bytes(w4);
    let need = usize::try_from(len)
        .ok()
        .and_then(|l| l.checked_add(HEADER_LEN))
        .unwrap_or(usize::MAX);
    if bytes.len() < need {
        return Err(SealError::Truncated {
            got: bytes.len(),
            need,
        });
    }
    if bytes.len() > need {
        return Err(SealError::Trailing(bytes.len() - need));
    }
    let body = &bytes[HEADER_LEN..];
    if crc32fast::hash(body) != crc {
        return Err(SealError::Checksum);
    }
    Ok(body)
}

/// Decodes a bincode body (the standard configuration every format uses), borrowing from `body`,
/// with the bytes its length prefixes may claim bounded by `body`'s own size (within a factor of
/// four): a checksum proves the bytes are what was written, not that a writer was honest, and a
/// length that lies must be an error, never an allocation the input cannot back. Returns the value
/// and the number of bytes it used.
pub fn decode_body<'de, T: serde::Deserialize<'de>>(
    body: &'de [u8],
) -> Result<(T, usize), bincode::error::DecodeError> {
    use bincode::config::standard;
    use bincode::serde::borrow_decode_from_slice as decode;
    // The smallest limit 2^k, k even, above the body's size. bincode takes the limit as a
    // constant, so each is a case of its own.
    let bits = (usize::BITS - body.len().leading_zeros()).max(10);
    macro_rules! limits {
        ($($k:literal)*) => {
            match bits {
                $( b if b <= $k => decode(body, standard().with_limit::<{ 1usize << $k }>()), )*
                _ => Err(bincode::error::DecodeError::LimitExceeded),
            }
        };
    }
    limits!(10 12 14 16 18 20 22 24 26 28 30 32 34 36 38 40 42 44 46 48)
}

#[cfg(test)]
mod tests {
    use super::*;

    const M: [u8; 8] = *b"TESTMAG\0";

    #[test]
    fn round_trip_and_every_damage() {
        let sealed = seal(M, 3, b"hello body");
        assert_eq!(unseal(M, 3, &sealed), Ok(&b"hello body"[..]));
        assert_eq!(unseal(*b"OTHERMG\0", 3, &sealed), Err(SealError::BadMagic));
        assert_eq!(unseal(M, 4, &sealed), Err(SealError::Version(3)));
        assert_eq!(
            unseal(M, 3, &sealed[..sealed.len() - 1]),
            Err(SealError::Truncated {
                got: sealed.len() - 1,
                need: sealed.len()
            })
        );
        assert!(matches!(
            unseal(M, 3, &sealed[..10]),
            Err(SealError::Truncated { .. })
        ));
        let mut longer = sealed.clone();
        longer.push(0);
        assert_eq!(unseal(M, 3, &longer), Err(SealError::Trailing(1)));
        for i in HEADER_LEN..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 0x40;
            assert_eq!(unseal(M, 3, &bad), Err(SealError::Checksum), "byte {i}");
        }
    }
}

#[cfg(test)]
mod decode_tests {
    use super::decode_body;

    /// A length prefix of 2^60 (bincode's varint: 0xfd, then a u64) before a few bytes.
    fn lying(prefix: &[u8]) -> Vec<u8> {
        let mut body = prefix.to_vec();
        body.push(0xfd);
        body.extend_from_slice(&(1u64 << 60).to_le_bytes());
        body.extend_from_slice(&[b'x'; 100]);
        body
    }

    #[test]
    fn a_length_the_body_cannot_back_is_an_error() {
        assert!(decode_body::<String>(&lying(&[])).is_err());
        assert!(decode_body::<Vec<u64>>(&lying(&[])).is_err());
        assert!(decode_body::<(u8, Vec<String>)>(&lying(&[0, 1])).is_err());
        // Honest lengths decode, at every size of limit.
        for n in [0usize, 1, 1000, 5000, 70_000] {
            let s = "y".repeat(n);
            let bytes =
                bincode::serde::encode_to_vec(&s, bincode::config::standard()).expect("encode");
            let (back, used): (String, usize) = decode_body(&bytes).expect("decode");
            assert_eq!((back.len(), used), (n, bytes.len()));
        }
    }

    #[test]
    fn an_aot_file_with_a_lying_length_is_refused() {
        let mut body = vec![1, b'p'];
        body.extend(lying(&[]));
        let file = super::seal(crate::container::MAGIC, crate::container::VERSION, &body);
        let err = crate::AotFile::decode("x.aot", &file).expect_err("refused");
        assert!(err.to_string().contains("x.aot"), "{err}");
    }
}
