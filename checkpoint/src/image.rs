//! Checkpoint images on disk: a [`Snapshot`] plus where it was taken, framed with
//! [`mvvm_contract::sealed`] (magic `MVVMIMG\0`, version, length, CRC-32). Memory is stored as runs of
//! non-zero 64 KiB pages, optionally compressed with zstd. The layout is `checkpoint/FORMAT.md`.

use crate::wasi::{Counters, WasiState};
use crate::{Frame, MemoryImage, Snapshot, TableImage, Value};
use mvvm_contract::sealed::{self, SealError};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::path::Path;

/// First eight bytes of every image.
pub const MAGIC: [u8; 8] = *b"MVVMIMG\0";
/// The image version this build writes and reads.
pub const VERSION: u32 = 2;
/// A wasm page.
pub const PAGE: usize = 65536;
/// The most pages a 32-bit memory can have.
const MAX_PAGES: u64 = 65536;

const ENCODING_PLAIN: u8 = 0;
const ENCODING_ZSTD: u8 = 1;

/// A checkpoint image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Image {
    /// The mvvm version that wrote it.
    pub producer: String,
    /// The target the program ran on when it was checkpointed (e.g. `x86_64`, `pulley64`).
    pub taken_on: String,
    /// The program's state.
    pub snapshot: Snapshot,
}

/// Why an image could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// Not an image at all.
    #[error("{0} is not an mvvm checkpoint image (bad magic); take one with `mvvm checkpoint`")]
    BadMagic(String),
    /// Another image version.
    #[error("{0} is image version {1}; this mvvm reads version {VERSION}: restore it with the mvvm that wrote it, or take a new checkpoint")]
    Version(String, u32),
    /// Damaged, truncated or undecodable.
    #[error("{0} is damaged ({1}); restore from another image or take a new checkpoint")]
    Damaged(String, String),
    /// The file could not be read or written.
    #[error("{0}: {1}")]
    Io(String, std::io::Error),
}

/// How memory is stored on disk: only runs of pages that are not all zero. Encoding borrows the
/// snapshot's memory; decoding owns what it read.
#[derive(Serialize, Deserialize)]
struct SparseMemory<'a> {
    index: u32,
    pages: u64,
    #[serde(borrow)]
    runs: Vec<PageRun<'a>>,
}

#[derive(Serialize, Deserialize)]
struct PageRun<'a> {
    first_page: u64,
    #[serde(with = "serde_bytes", borrow)]
    bytes: Cow<'a, [u8]>,
}

/// The serialized body (after the encoding byte, possibly zstd-compressed).
#[derive(Serialize, Deserialize)]
struct Body<'a> {
    producer: String,
    taken_on: String,
    module_hash: [u8; 32],
    entry: String,
    frames: Vec<Frame>,
    #[serde(borrow)]
    memories: Vec<SparseMemory<'a>>,
    globals: Vec<(u32, Value)>,
    tables: Vec<TableImage>,
    wasi: Option<WasiState>,
    counters: Counters,
}

fn sparse(m: &MemoryImage) -> SparseMemory<'_> {
    let mut runs: Vec<PageRun> = Vec::new();
    let mut open: Option<usize> = None;
    let pages = m.bytes.len() / PAGE;
    for p in 0..=pages {
        let zero = p == pages || m.bytes[p * PAGE..(p + 1) * PAGE].iter().all(|b| *b == 0);
        match (zero, open) {
            (false, None) => open = Some(p),
            (true, Some(start)) => {
                runs.push(PageRun {
                    first_page: start as u64,
                    bytes: Cow::Borrowed(&m.bytes[start * PAGE..p * PAGE]),
                });
                open = None;
            }
            _ => {}
        }
    }
    SparseMemory {
        index: m.index,
        pages: pages as u64,
        runs,
    }
}

fn dense(m: SparseMemory) -> Result<MemoryImage, String> {
    if m.pages > MAX_PAGES {
        return Err(format!("memory {} claims {} pages", m.index, m.pages));
    }
    let mut bytes = vec![0u8; m.pages as usize * PAGE];
    for r in m.runs {
        let start = usize::try_from(r.first_page)
            .ok()
            .and_then(|p| p.checked_mul(PAGE))
            .filter(|s| {
                r.bytes.len() % PAGE == 0
                    && s.checked_add(r.bytes.len())
                        .is_some_and(|e| e <= bytes.len())
            })
            .ok_or_else(|| format!("memory {} has a page run outside the memory", m.index))?;
        bytes[start..start + r.bytes.len()].copy_from_slice(&r.bytes);
    }
    Ok(MemoryImage {
        index: m.index,
        bytes,
    })
}

impl Image {
    /// Encodes the image; with `zstd`, the body is compressed at that level.
    pub fn encode(&self, zstd: Option<i32>) -> Result<Vec<u8>, ImageError> {
        let s = &self.snapshot;
        let body = Body {
            producer: self.producer.clone(),
            taken_on: self.taken_on.clone(),
            module_hash: s.module_hash,
            entry: s.entry.clone(),
            frames: s.frames.clone(),
            memories: s.memories.iter().map(sparse).collect(),
            globals: s.globals.clone(),
            tables: s.tables.clone(),
            wasi: s.wasi.clone(),
            counters: s.counters.clone(),
        };
        // Memory dominates: size the buffer once, so that encoding copies each page once.
        let estimate = s.memories.iter().map(|m| m.bytes.len()).sum::<usize>() + (1 << 16);
        let encode = |out: &mut Vec<u8>| {
            bincode::serde::encode_into_std_write(&body, out, bincode::config::standard())
                .map_err(|e| ImageError::Damaged("image".into(), e.to_string()))
        };
        let out = match zstd {
            None => {
                let mut out = sealed::begin(estimate + 1);
                out.push(ENCODING_PLAIN);
                encode(&mut out)?;
                out
            }
            Some(level) => {
                let mut raw = Vec::with_capacity(estimate);
                encode(&mut raw)?;
                let packed = zstd::bulk::compress(&raw, level)
                    .map_err(|e| ImageError::Io("zstd".into(), e))?;
                let mut out = sealed::begin(packed.len() + 1);
                out.push(ENCODING_ZSTD);
                out.extend_from_slice(&packed);
                out
            }
        };
        Ok(sealed::finish(MAGIC, VERSION, out))
    }

    /// Decodes an image; `name` is used in error messages.
    pub fn decode(name: &str, bytes: &[u8]) -> Result<Image, ImageError> {
        let damaged = |why: String| ImageError::Damaged(name.into(), why);
        let stored = sealed::unseal(MAGIC, VERSION, bytes).map_err(|e| match e {
            SealError::BadMagic => ImageError::BadMagic(name.into()),
            SealError::Version(v) => ImageError::Version(name.into(), v),
            e => damaged(e.to_string()),
        })?;
        let (encoding, rest) = stored
            .split_first()
            .ok_or_else(|| damaged("empty body".into()))?;
        let unpacked;
        let raw = match *encoding {
            ENCODING_PLAIN => rest,
            ENCODING_ZSTD => {
                unpacked =
                    zstd::stream::decode_all(rest).map_err(|e| damaged(format!("zstd: {e}")))?;
                &unpacked[..]
            }
            other => return Err(damaged(format!("unknown body encoding {other}"))),
        };
        let (body, used): (Body, usize) =
            sealed::decode_body(raw).map_err(|e| damaged(e.to_string()))?;
        if used != raw.len() {
            return Err(damaged(format!(
                "{} unexpected bytes after the contents",
                raw.len() - used
            )));
        }
        let memories = body
            .memories
            .into_iter()
            .map(dense)
            .collect::<Result<_, _>>()
            .map_err(damaged)?;
        Ok(Image {
            producer: body.producer,
            taken_on: body.taken_on,
            snapshot: Snapshot {
                module_hash: body.module_hash,
                entry: body.entry,
                frames: body.frames,
                memories,
                globals: body.globals,
                tables: body.tables,
                wasi: body.wasi,
                counters: body.counters,
            },
        })
    }

    /// Reads and decodes an image file.
    pub fn read(path: &Path) -> Result<Image, ImageError> {
        let name = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|e| ImageError::Io(name.clone(), e))?;
        Image::decode(&name, &bytes)
    }

    /// Encodes and writes the image atomically: whatever `path` held stays intact until the new
    /// image is complete and synced. Returns the number of bytes written.
    pub fn write(&self, path: &Path, zstd: Option<i32>) -> Result<u64, ImageError> {
        let bytes = self.encode(zstd)?;
        mvvm_contract::file::atomic_write(path, &bytes)
            .map_err(|e| ImageError::Io(path.display().to_string(), e))?;
        Ok(bytes.len() as u64)
    }
}

/// Whether `bytes` begin like an image (to tell images from `.aot` files).
pub fn is_image(bytes: &[u8]) -> bool {
    bytes.starts_with(&MAGIC)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wasi::{FdEntry, OpenFile, Preopen};

    fn sample() -> Image {
        let mut bytes = vec![0u8; 5 * PAGE];
        bytes[7] = 1; // page 0
        bytes[2 * PAGE + 100] = 2; // page 2
        bytes[3 * PAGE] = 3; // page 3, same run as page 2
        Image {
            producer: "test".into(),
            taken_on: "x86_64".into(),
            snapshot: Snapshot {
                module_hash: [7; 32],
                entry: "_start".into(),
                frames: vec![Frame {
                    func: 4,
                    site: 9,
                    slots: vec![
                        Value::I32(-1),
                        Value::I64(1 << 40),
                        Value::F32(0x7fc0_0001),
                        Value::F64(3),
                        Value::V128(u128::MAX - 5),
                        Value::FuncRef(Some(2)),
                        Value::FuncRef(None),
                        Value::NullExternRef,
                    ],
                }],
                memories: vec![
                    MemoryImage { index: 0, bytes },
                    MemoryImage {
                        index: 1,
                        bytes: Vec::new(),
                    },
                ],
                globals: vec![(0, Value::I32(5)), (3, Value::I64(-9))],
                tables: vec![TableImage {
                    index: 0,
                    elements: vec![Value::FuncRef(Some(1)), Value::FuncRef(None)],
                }],
                wasi: Some(WasiState {
                    argv: vec!["app".into(), "two words".into()],
                    env: vec![("K".into(), "V".into())],
                    preopens: vec![Preopen {
                        guest: "/data".into(),
                        host: "/tmp/x".into(),
                    }],
                    fds: vec![
                        (0, FdEntry::Stdio(0)),
                        (3, FdEntry::Preopen(0)),
                        (
                            5,
                            FdEntry::File(OpenFile {
                                preopen: 0,
                                path: "a/b.txt".into(),
                                dirflags: 1,
                                oflags: 1,
                                fdflags: 1,
                                rights_base: 0xff,
                                rights_inheriting: 0xf,
                                offset: 123,
                                size: 456,
                                mtime_ns: 1_700_000_000_000_000_000,
                            }),
                        ),
                    ],
                    free_fds: vec![4],
                    monotonic_ns: 99,
                }),
                counters: Counters {
                    polls: 10,
                    entries: 2,
                },
            },
        }
    }

    #[test]
    fn round_trips_plain_and_zstd_and_skips_zero_pages() {
        let img = sample();
        let plain = img.encode(None).unwrap();
        let packed = img.encode(Some(3)).unwrap();
        assert_eq!(Image::decode("p", &plain).unwrap(), img);
        assert_eq!(Image::decode("z", &packed).unwrap(), img);
        // Three of five pages are non-zero: the plain image holds three pages of memory, not five.
        assert!(
            plain.len() > 3 * PAGE && plain.len() < 4 * PAGE,
            "{}",
            plain.len()
        );
        assert!(packed.len() < PAGE, "{}", packed.len());
    }

    #[test]
    fn refuses_damage_with_one_clear_error() {
        let img = sample().encode(None).unwrap();
        let err = |b: &[u8]| Image::decode("f.img", b).unwrap_err().to_string();
        assert!(err(b"MVVMAOT\0xxxxxxxxxxxxxxxxxxxxxxxxx").contains("not an mvvm checkpoint image"));
        assert!(err(&img[..img.len() / 2]).contains("damaged (truncated"));
        let mut flipped = img.clone();
        flipped[img.len() - 3] ^= 1;
        assert!(err(&flipped).contains("damaged (checksum mismatch)"));
        let mut newer = img.clone();
        newer[8] = 9;
        assert!(err(&newer).contains("image version 9"));
        // A well-sealed body that does not decode.
        let junk = sealed::seal(MAGIC, VERSION, &[ENCODING_PLAIN, 0xff, 0xff, 0xff]);
        assert!(err(&junk).contains("damaged"));
        let odd = sealed::seal(MAGIC, VERSION, &[7]);
        assert!(err(&odd).contains("unknown body encoding 7"));
    }

    /// Lengths in a body whose checksum is right are still untrusted: a huge one is damage, not
    /// an allocation that aborts the process.
    #[test]
    fn huge_length_prefixes_are_damage() {
        let err = |b: &[u8]| Image::decode("f.img", b).unwrap_err().to_string();
        // bincode's varint: 0xfd, then a u64 little-endian.
        let huge = |at: &[u8]| {
            let mut body = vec![ENCODING_PLAIN];
            body.extend_from_slice(at);
            body.push(0xfd);
            body.extend_from_slice(&(1u64 << 60).to_le_bytes());
            body.extend_from_slice(&[0; 64]);
            sealed::seal(MAGIC, VERSION, &body)
        };
        // The producer string's length.
        assert!(err(&huge(&[])).contains("damaged"));
        // The frames' count, after two short strings, the hash and the entry.
        let mut prefix = vec![1, b'p', 1, b't'];
        prefix.extend_from_slice(&[0; 32]);
        prefix.extend_from_slice(&[1, b'e']);
        assert!(err(&huge(&prefix)).contains("damaged"));
    }

    #[test]
    fn write_is_atomic_and_leaves_no_temporary_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.ckpt");
        let img = sample();
        img.write(&path, None).unwrap();
        img.write(&path, Some(1)).unwrap();
        assert_eq!(Image::read(&path).unwrap(), img);
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1);
    }
}
