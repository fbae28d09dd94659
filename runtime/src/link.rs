//! The authenticated channel between two mvvm processes (docs/PROTOCOL.md).
//!
//! One side listens, the other dials. A handshake exchanges fresh nonces and proves to each side
//! that the other holds the same pre-shared [`Key`]; then every frame carries an HMAC-SHA256 tag
//! over its sequence number and bytes, under a key of its own direction, so that a frame that was
//! altered, replayed, reordered, reflected or sent by someone without the key is refused. The
//! bodies are bincode, as in every other mvvm format. Without a key the tags still catch
//! corruption but prove nothing, which is why only loopback addresses are then allowed.

use hmac::{Hmac, Mac};
use serde::de::DeserializeOwned;
use serde::Serialize;
use sha2::Sha256;
use std::net::SocketAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

/// The first bytes each side sends.
pub const MAGIC: [u8; 8] = *b"mvvmlink";
/// The version of the handshake, the frame layout and the messages of every purpose.
pub const VERSION: u16 = 2;
/// The largest frame body either side accepts: larger than any single WASI call's content a
/// 32-bit guest can make, small enough that a peer cannot ask for unbounded memory.
pub const MAX_FRAME: usize = 1 << 30;
/// The bytes of a nonce, a proof and a tag (HMAC-SHA256's output).
const TAG: usize = 32;
/// A hello: magic, version, purpose, nonce.
const HELLO: usize = MAGIC.len() + 2 + 1 + TAG;

type HmacSha256 = Hmac<Sha256>;

/// A pre-shared key, or none.
#[derive(Clone, Default)]
pub struct Key(Vec<u8>);

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key itself: it would end up in logs.
        write!(f, "Key({} bytes)", self.0.len())
    }
}

impl Key {
    /// The fewest bytes a key may have.
    pub const MIN: usize = 16;

    /// No key: links are limited to loopback.
    pub fn none() -> Key {
        Key(Vec::new())
    }

    /// A key from `bytes`; trailing line ends (of a key written with `echo` or an editor) are
    /// not part of it.
    pub fn from_bytes(bytes: &[u8]) -> Result<Key, LinkError> {
        let end = bytes
            .iter()
            .rposition(|b| !matches!(b, b'\n' | b'\r'))
            .map_or(0, |k| k + 1);
        if end < Key::MIN {
            return Err(LinkError::ShortKey(end));
        }
        Ok(Key(bytes[..end].to_vec()))
    }

    /// Whether this is no key at all.
    pub fn is_none(&self) -> bool {
        self.0.is_empty()
    }

    /// HMAC-SHA256 of the parts, in order, under this key.
    fn mac(&self, parts: &[&[u8]]) -> [u8; TAG] {
        mac(&self.0, parts)
    }
}

fn mac(key: &[u8], parts: &[&[u8]]) -> [u8; TAG] {
    let mut m = HmacSha256::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    for p in parts {
        m.update(p);
    }
    m.finalize().into_bytes().into()
}

/// Compares two tags in time that does not depend on where they differ.
fn same(a: &[u8; TAG], b: &[u8; TAG]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// What a connection is for; a peer that came for something else is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Purpose {
    /// A remote follower joining an `mvvm mvx` master.
    Mvx = 1,
}

/// Why a link could not be made or used.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// The network failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// A key too short to be one.
    #[error("the key has {0} bytes; use at least {min} (e.g. `head -c 32 /dev/urandom > KEY`)", min = Key::MIN)]
    ShortKey(usize),
    /// No key, and an address other than loopback.
    #[error("{0} is not a loopback address, and without a key (--key-file or MVVM_KEY) anyone who can reach it could take part; give a key, or use 127.0.0.1")]
    NotLoopback(String),
    /// The peer's first bytes are not an mvvm link's.
    #[error("the peer at {0} is not an mvvm link (wrong port, or another program)")]
    NotMvvm(SocketAddr),
    /// The peer speaks another version of the protocol.
    #[error("the peer at {peer} speaks link version {theirs}, this mvvm version {VERSION}; run the same mvvm release on both")]
    Version {
        /// The peer.
        peer: SocketAddr,
        /// Its version.
        theirs: u16,
    },
    /// The peer came for another purpose.
    #[error("the peer at {0} came for something else (e.g. a follower dialing a node daemon)")]
    Purpose(SocketAddr),
    /// The peer's proof of the key is wrong.
    #[error("the peer at {0} does not hold this key (check --key-file or MVVM_KEY on both sides)")]
    WrongKey(SocketAddr),
    /// A frame's tag is wrong.
    #[error("frame {seq} from {peer} failed its authentication: it was altered, replayed or not sent by the peer")]
    Tampered {
        /// The peer.
        peer: SocketAddr,
        /// The frame's sequence number in its direction.
        seq: u64,
    },
    /// A frame larger than [`MAX_FRAME`].
    #[error(
        "frame {seq} from {peer} claims {len} bytes, more than the {MAX_FRAME} a frame may hold"
    )]
    TooLarge {
        /// The peer.
        peer: SocketAddr,
        /// The frame's sequence number.
        seq: u64,
        /// The length it claims.
        len: u64,
    },
    /// An authentic frame that is not the message expected.
    #[error("frame {seq} from {peer} does not decode: {message}")]
    Decode {
        /// The peer.
        peer: SocketAddr,
        /// The frame's sequence number.
        seq: u64,
        /// What the decoder said.
        message: String,
    },
    /// A message that cannot be encoded (larger than a frame may be).
    #[error("a message cannot be sent: {0}")]
    Encode(String),
    /// The peer closed the link where a frame was expected.
    #[error("the peer at {0} closed the link")]
    Closed(SocketAddr),
    /// Authentic frames that break the protocol of the link's purpose (for example an image
    /// longer than announced).
    #[error("the peer at {peer} broke the protocol: {message}")]
    Protocol {
        /// The peer.
        peer: SocketAddr,
        /// What was wrong.
        message: String,
    },
    /// The handshake did not finish in time.
    #[error("the peer at {0} did not finish the handshake in time")]
    Timeout(SocketAddr),
    /// No randomness for a nonce.
    #[error("no randomness for a nonce: {0}")]
    Random(String),
}

impl LinkError {
    /// Whether the failure is one of configuration (a key, an address, a version) that the
    /// user must change, rather than of the network.
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            LinkError::ShortKey(_)
                | LinkError::NotLoopback(_)
                | LinkError::NotMvvm(_)
                | LinkError::Version { .. }
                | LinkError::Purpose(_)
                | LinkError::WrongKey(_)
        )
    }
}

/// Refuses an address that is not loopback when there is no key.
pub fn require_key_or_loopback(key: &Key, addr: SocketAddr) -> Result<(), LinkError> {
    if key.is_none() && !addr.ip().is_loopback() {
        return Err(LinkError::NotLoopback(addr.to_string()));
    }
    Ok(())
}

/// An authenticated connection, before it is split into its two directions.
pub struct Link {
    /// Frames from the peer.
    pub receiver: Receiver,
    /// Frames to the peer.
    pub sender: Sender,
}

/// The receiving half of a [`Link`].
pub struct Receiver {
    stream: BufReader<OwnedReadHalf>,
    key: [u8; TAG],
    seq: u64,
    peer: SocketAddr,
}

/// The sending half of a [`Link`].
pub struct Sender {
    stream: BufWriter<OwnedWriteHalf>,
    key: [u8; TAG],
    seq: u64,
}

/// Which end of the handshake this side is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    Dialer,
    Listener,
}

fn hello(purpose: Purpose, nonce: &[u8; TAG]) -> Vec<u8> {
    let mut h = Vec::with_capacity(HELLO);
    h.extend_from_slice(&MAGIC);
    h.extend_from_slice(&VERSION.to_le_bytes());
    h.push(purpose as u8);
    h.extend_from_slice(nonce);
    h
}

/// Checks a peer's hello; returns its nonce.
fn check_hello(
    h: &[u8; HELLO],
    purpose: Purpose,
    peer: SocketAddr,
) -> Result<[u8; TAG], LinkError> {
    if h[..MAGIC.len()] != MAGIC {
        return Err(LinkError::NotMvvm(peer));
    }
    let theirs = u16::from_le_bytes([h[8], h[9]]);
    if theirs != VERSION {
        return Err(LinkError::Version { peer, theirs });
    }
    if h[10] != purpose as u8 {
        return Err(LinkError::Purpose(peer));
    }
    let mut nonce = [0; TAG];
    nonce.copy_from_slice(&h[11..]);
    Ok(nonce)
}

fn nonce() -> Result<[u8; TAG], LinkError> {
    let mut n = [0; TAG];
    getrandom::fill(&mut n).map_err(|e| LinkError::Random(e.to_string()))?;
    Ok(n)
}

impl Link {
    /// The dialing side's handshake on a fresh connection.
    pub async fn dial(stream: TcpStream, key: &Key, purpose: Purpose) -> Result<Link, LinkError> {
        Link::handshake(stream, key, purpose, Role::Dialer).await
    }

    /// The listening side's handshake on an accepted connection.
    pub async fn accept(stream: TcpStream, key: &Key, purpose: Purpose) -> Result<Link, LinkError> {
        Link::handshake(stream, key, purpose, Role::Listener).await
    }

    /// Both sides send a hello and read the other's; the listener then proves the key, and the
    /// dialer answers with its own proof (a wrong one too, so that both sides can say why they
    /// part). Each proof covers both nonces, so none can be replayed into another handshake.
    async fn handshake(
        mut stream: TcpStream,
        key: &Key,
        purpose: Purpose,
        role: Role,
    ) -> Result<Link, LinkError> {
        let peer = stream.peer_addr()?;
        stream.set_nodelay(true)?;
        let mine = nonce()?;
        stream.write_all(&hello(purpose, &mine)).await?;
        let mut theirs = [0; HELLO];
        read_exact(&mut stream, &mut theirs, peer).await?;
        let theirs = check_hello(&theirs, purpose, peer)?;
        let (dialer, listener) = match role {
            Role::Dialer => (mine, theirs),
            Role::Listener => (theirs, mine),
        };
        let proof = |label: &[u8]| key.mac(&[label, &dialer, &listener]);
        let (my_proof, their_proof) = match role {
            Role::Dialer => (proof(b"mvvm link dialer"), proof(b"mvvm link listener")),
            Role::Listener => (proof(b"mvvm link listener"), proof(b"mvvm link dialer")),
        };
        let mut received = [0; TAG];
        if role == Role::Listener {
            stream.write_all(&my_proof).await?;
            read_exact(&mut stream, &mut received, peer).await?;
        } else {
            read_exact(&mut stream, &mut received, peer).await?;
            stream.write_all(&my_proof).await?;
        }
        if !same(&received, &their_proof) {
            return Err(LinkError::WrongKey(peer));
        }
        let down = proof(b"mvvm link listener to dialer");
        let up = proof(b"mvvm link dialer to listener");
        let (send_key, receive_key) = match role {
            Role::Dialer => (up, down),
            Role::Listener => (down, up),
        };
        let (read, write) = stream.into_split();
        Ok(Link {
            receiver: Receiver {
                stream: BufReader::new(read),
                key: receive_key,
                seq: 0,
                peer,
            },
            sender: Sender {
                stream: BufWriter::new(write),
                key: send_key,
                seq: 0,
            },
        })
    }
}

/// Fills `buf`, or says the peer closed the link.
async fn read_exact(
    stream: &mut (impl AsyncReadExt + Unpin),
    buf: &mut [u8],
    peer: SocketAddr,
) -> Result<(), LinkError> {
    match stream.read_exact(buf).await {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Err(LinkError::Closed(peer)),
        Err(e) => Err(e.into()),
    }
}

impl Sender {
    /// Sends `message` as the next frame and flushes it.
    pub async fn send<T: Serialize>(&mut self, message: &T) -> Result<(), LinkError> {
        let body = bincode::serde::encode_to_vec(message, bincode::config::standard())
            .map_err(|e| LinkError::Encode(e.to_string()))?;
        if body.len() > MAX_FRAME {
            return Err(LinkError::Encode(format!(
                "{} bytes, more than the {MAX_FRAME} a frame may hold",
                body.len()
            )));
        }
        let len = (body.len() as u32).to_le_bytes();
        let tag = mac(&self.key, &[&self.seq.to_le_bytes(), &len, &body]);
        self.seq += 1;
        self.stream.write_all(&len).await?;
        self.stream.write_all(&body).await?;
        self.stream.write_all(&tag).await?;
        self.stream.flush().await?;
        Ok(())
    }

    /// Ends the sending direction (the peer reads the end of the link after the last frame).
    pub async fn close(mut self) -> Result<(), LinkError> {
        self.stream.flush().await?;
        self.stream.shutdown().await?;
        Ok(())
    }
}

impl Receiver {
    /// The peer's address.
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// The next frame's message; `None` if the peer ended the link cleanly between frames.
    pub async fn receive<T: DeserializeOwned>(&mut self) -> Result<Option<T>, LinkError> {
        let (peer, seq) = (self.peer, self.seq);
        let mut len = [0; 4];
        match self.stream.read_exact(&mut len).await {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) => return Err(e.into()),
        }
        let claimed = u32::from_le_bytes(len) as usize;
        if claimed > MAX_FRAME {
            let len = claimed as u64;
            return Err(LinkError::TooLarge { peer, seq, len });
        }
        // Grown as the bytes arrive: a length that lies costs no more than the bytes sent.
        let mut body = Vec::new();
        let read = (&mut self.stream)
            .take(claimed as u64)
            .read_to_end(&mut body)
            .await?;
        if read < claimed {
            return Err(LinkError::Closed(peer));
        }
        let mut tag = [0; TAG];
        read_exact(&mut self.stream, &mut tag, peer).await?;
        if !same(&tag, &mac(&self.key, &[&seq.to_le_bytes(), &len, &body])) {
            return Err(LinkError::Tampered { peer, seq });
        }
        self.seq += 1;
        let decoded = mvvm_contract::sealed::decode_body::<T>(&body);
        match decoded {
            Ok((message, used)) if used == body.len() => Ok(Some(message)),
            Ok((_, used)) => Err(LinkError::Decode {
                peer,
                seq,
                message: format!("{} bytes after the message", body.len() - used),
            }),
            Err(e) => Err(LinkError::Decode {
                peer,
                seq,
                message: e.to_string(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A dialer and a listener linked over loopback with keys `a` and `b`.
    async fn pair(a: &Key, b: &Key) -> (Result<Link, LinkError>, Result<Link, LinkError>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let b = b.clone();
        let accepted = tokio::spawn(async move {
            let (stream, _) = listener.accept().await.expect("accept");
            Link::accept(stream, &b, Purpose::Mvx).await
        });
        let stream = TcpStream::connect(addr).await.expect("connect");
        let dialed = Link::dial(stream, a, Purpose::Mvx).await;
        (dialed, accepted.await.expect("the accepting task"))
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime")
    }

    fn key(seed: u8) -> Key {
        Key::from_bytes(&[seed; 32]).expect("a key")
    }

    #[test]
    fn frames_pass_both_ways_under_one_key() {
        runtime().block_on(async {
            let (d, l) = pair(&key(1), &key(1)).await;
            let (mut d, mut l) = (d.expect("dialer"), l.expect("listener"));
            d.sender
                .send(&(7u64, "up".to_string()))
                .await
                .expect("send");
            l.sender.send(&vec![1u8, 2, 3]).await.expect("send");
            let up: Option<(u64, String)> = l.receiver.receive().await.expect("receive");
            assert_eq!(up, Some((7, "up".into())));
            let down: Option<Vec<u8>> = d.receiver.receive().await.expect("receive");
            assert_eq!(down, Some(vec![1, 2, 3]));
            d.sender.close().await.expect("close");
            assert_eq!(l.receiver.receive::<u8>().await.expect("end"), None);
        });
    }

    #[test]
    fn different_keys_are_refused_on_both_sides() {
        runtime().block_on(async {
            for (a, b) in [
                (key(1), key(2)),
                (Key::none(), key(2)),
                (key(1), Key::none()),
            ] {
                let (d, l) = pair(&a, &b).await;
                assert!(matches!(d, Err(LinkError::WrongKey(_))), "{:?}", d.err());
                assert!(matches!(l, Err(LinkError::WrongKey(_))), "{:?}", l.err());
            }
            let (d, l) = pair(&Key::none(), &Key::none()).await;
            assert!(d.is_ok() && l.is_ok());
        });
    }

    #[test]
    fn an_altered_a_replayed_and_a_reflected_frame_are_refused() {
        runtime().block_on(async {
            // Altered: one byte of the body flipped after the tag was made.
            let (d, l) = pair(&key(1), &key(1)).await;
            let (mut d, mut l) = (d.expect("dialer"), l.expect("listener"));
            let body =
                bincode::serde::encode_to_vec(5u32, bincode::config::standard()).expect("encode");
            let len = (body.len() as u32).to_le_bytes();
            let tag = mac(&d.sender.key, &[&0u64.to_le_bytes(), &len, &body]);
            let mut altered = body.clone();
            altered[0] ^= 1;
            for part in [&len[..], &altered, &tag] {
                d.sender.stream.write_all(part).await.expect("write");
            }
            d.sender.stream.flush().await.expect("flush");
            let e = l.receiver.receive::<u32>().await.expect_err("altered");
            assert!(matches!(e, LinkError::Tampered { seq: 0, .. }), "{e}");

            // Replayed: frame 0 sent again where frame 1 is due.
            let (d, l) = pair(&key(1), &key(1)).await;
            let (mut d, mut l) = (d.expect("dialer"), l.expect("listener"));
            d.sender.send(&5u32).await.expect("send");
            d.sender.seq = 0;
            d.sender.send(&5u32).await.expect("send again");
            assert_eq!(l.receiver.receive::<u32>().await.expect("first"), Some(5));
            let e = l.receiver.receive::<u32>().await.expect_err("replayed");
            assert!(matches!(e, LinkError::Tampered { seq: 1, .. }), "{e}");

            // Reflected: a frame tagged for the other direction.
            let (d, l) = pair(&key(1), &key(1)).await;
            let (mut d, mut l) = (d.expect("dialer"), l.expect("listener"));
            d.sender.key = l.sender.key;
            d.sender.send(&5u32).await.expect("send");
            let e = l.receiver.receive::<u32>().await.expect_err("reflected");
            assert!(matches!(e, LinkError::Tampered { .. }), "{e}");
        });
    }

    #[test]
    fn keys_are_long_enough_and_without_one_only_loopback_is_allowed() {
        assert!(matches!(
            Key::from_bytes(b"short\n"),
            Err(LinkError::ShortKey(5))
        ));
        let k = Key::from_bytes(b"0123456789abcdef\r\n").expect("16 bytes and a line end");
        assert_eq!(k.0, b"0123456789abcdef");
        let local: SocketAddr = "127.0.0.1:1".parse().expect("addr");
        let remote: SocketAddr = "192.0.2.1:1".parse().expect("addr");
        assert!(require_key_or_loopback(&Key::none(), local).is_ok());
        assert!(require_key_or_loopback(&k, remote).is_ok());
        let e = require_key_or_loopback(&Key::none(), remote).expect_err("refused");
        assert!(
            e.to_string()
                .contains("192.0.2.1:1 is not a loopback address"),
            "{e}"
        );
        assert!(format!("{k:?}").contains("16 bytes") && !format!("{k:?}").contains("0123"));
    }

    #[test]
    fn a_peer_of_another_version_or_purpose_or_program_is_named_as_such() {
        let peer: SocketAddr = "127.0.0.1:1".parse().expect("addr");
        let mut h = [0u8; HELLO];
        h.copy_from_slice(&hello(Purpose::Mvx, &[9; TAG]));
        assert_eq!(check_hello(&h, Purpose::Mvx, peer).expect("good"), [9; TAG]);
        let mut v = h;
        v[8] = 1;
        assert!(matches!(
            check_hello(&v, Purpose::Mvx, peer),
            Err(LinkError::Version { theirs: 1, .. })
        ));
        let mut p = h;
        p[10] = 0;
        assert!(matches!(
            check_hello(&p, Purpose::Mvx, peer),
            Err(LinkError::Purpose(_))
        ));
        let mut m = h;
        m[0] = b'G';
        assert!(matches!(
            check_hello(&m, Purpose::Mvx, peer),
            Err(LinkError::NotMvvm(_))
        ));
    }
}
