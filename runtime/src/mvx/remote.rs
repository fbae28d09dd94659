//! Followers in other processes, on this host or another (docs/PROTOCOL.md): where they join a
//! master, how a follower reaches its master, and the tasks that carry the same messages the
//! in-process variants exchange over an authenticated [`Link`].
//!
//! The variants themselves stay synchronous: each side's tasks relay between the link and the
//! channels the call monitors read, so a remote follower differs from a local one only in what
//! carries its messages. A remote follower gets its arguments, environment and directory names
//! from the master, and touches nothing of its own host: its directories are empty placeholders
//! that its local calls name but no call opens.

use super::event::{Down, Up};
use super::follower::FollowerMonitor;
use super::master::Port;
use super::FollowerEnd;
use crate::config::{DirMap, RunConfig};
use crate::doorbell::Doorbell;
use crate::error::RuntimeError;
use crate::link::{self, Key, Link, LinkError, Purpose};
use crate::program::Program;
use mvvm_checkpoint::image::Image;
use mvvm_checkpoint::Snapshot;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tokio::runtime::{Handle, Runtime};
use tokio::sync::mpsc::unbounded_channel as channel;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

/// How long a peer may take over the handshake and its first message before it is dropped: a
/// connection that says nothing must not hold up the followers that come after it.
const HANDSHAKE: Duration = Duration::from_secs(10);
/// How long a follower keeps trying to reach a master that is not listening yet, so that a
/// script may start both at once.
const CONNECT: Duration = Duration::from_secs(10);
/// How long the last messages may take to leave when a run ends.
const FLUSH: Duration = Duration::from_secs(2);
/// The bytes of a snapshot's image in one frame: small enough that a frame never nears
/// [`link::MAX_FRAME`], large enough that the tags cost nothing.
const CHUNK: usize = 4 << 20;

/// What a follower tells the master it runs, after the handshake.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Join {
    /// Its program, as the follower names it (a file name).
    pub program: String,
    /// The ISA it runs on (`x86_64`, `aarch64`, `pulley64`).
    pub isa: String,
}

/// What the master tells a follower before the run: everything of the run that is not the
/// program, so that the follower's local calls answer as the master's do.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Setup {
    /// How reports name this follower.
    pub name: String,
    /// The guest's `argv`.
    pub argv: Vec<String>,
    /// The guest's environment.
    pub env: Vec<(String, String)>,
    /// The guest paths of its preopened directories, in order.
    pub preopens: Vec<String>,
    /// The export to run.
    pub entry: String,
    /// For a follower that joins a running master: where it starts. `None`: from the beginning.
    pub start: Option<Start>,
}

/// Where a follower that joins a running master starts: from the image that follows [`Setup`]
/// in frames of raw bytes, taken between the master's events `after` and `after + 1`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Start {
    /// The master's last event before the snapshot.
    pub after: u64,
    /// The image's length in bytes.
    pub image_bytes: u64,
}

impl Setup {
    /// The setup of a follower named `name` of a master run with `cfg`, from the start.
    pub(crate) fn of(cfg: &RunConfig, name: String) -> Setup {
        Setup {
            name,
            argv: cfg.argv.clone(),
            env: cfg.env.clone(),
            preopens: cfg.dirs.iter().map(|d| d.guest.clone()).collect(),
            entry: cfg.entry.clone(),
            start: None,
        }
    }
}

/// Why a remote follower could not run.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    /// The link failed or was refused.
    #[error(transparent)]
    Link(#[from] LinkError),
    /// The follower could not be set up.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
}

/// The network side of multi-variant execution: a small runtime of its own, whose one worker
/// thread carries every link's messages while the variants run on theirs.
pub struct Network {
    runtime: Runtime,
}

impl Network {
    /// Starts the network's worker thread.
    pub fn new() -> Result<Network, LinkError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("mvx-link")
            .enable_all()
            .build()?;
        Ok(Network { runtime })
    }

    /// Listens on `addr` for followers holding `key` (without a key, `addr` must be loopback).
    pub fn listen(&self, addr: &str, key: Key) -> Result<Listener, LinkError> {
        let listener = self.runtime.block_on(tokio::net::TcpListener::bind(addr))?;
        let local = listener.local_addr()?;
        link::require_key_or_loopback(&key, local)?;
        Ok(Listener {
            listener,
            key,
            local,
            runtime: self.runtime.handle().clone(),
        })
    }

    /// Joins the master listening at `addr` as a follower that runs what `join` says: connects
    /// (retrying while nothing listens there yet), proves `key`, and waits for the master's
    /// [`Setup`], which comes when every follower it waits for has joined, or, for a master
    /// that is already running, with the image of its snapshot.
    pub fn join(&self, addr: &str, key: &Key, join: &Join) -> Result<Joined, LinkError> {
        self.runtime.block_on(async {
            let stream = connect(addr).await?;
            let peer = stream.peer_addr()?;
            link::require_key_or_loopback(key, peer)?;
            let mut link = tokio::time::timeout(HANDSHAKE, Link::dial(stream, key, Purpose::Mvx))
                .await
                .map_err(|_| LinkError::Timeout(peer))??;
            link.sender.send(join).await?;
            let setup = link.receiver.receive::<Setup>().await?;
            let setup = setup.ok_or(LinkError::Closed(peer))?;
            let start = match setup.start {
                None => None,
                Some(s) => Some((s.after, receive_image(&mut link.receiver, s, peer).await?)),
            };
            Ok(Joined {
                setup,
                start,
                link,
                peer,
            })
        })
    }
}

/// Connects to `addr`, trying again for up to [`CONNECT`] while the connection is refused.
async fn connect(addr: &str) -> Result<tokio::net::TcpStream, LinkError> {
    let started = Instant::now();
    loop {
        match tokio::net::TcpStream::connect(addr).await {
            Err(e)
                if e.kind() == std::io::ErrorKind::ConnectionRefused
                    && started.elapsed() < CONNECT =>
            {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            result => return Ok(result?),
        }
    }
}

/// Reads the image `start` announces, in the frames that follow [`Setup`], and decodes it. The
/// buffer grows only as authentic bytes arrive, so an announced length that lies costs nothing.
async fn receive_image(
    receiver: &mut link::Receiver,
    start: Start,
    peer: SocketAddr,
) -> Result<Snapshot, LinkError> {
    let broke = |message: String| LinkError::Protocol { peer, message };
    let mut bytes = Vec::new();
    while (bytes.len() as u64) < start.image_bytes {
        let chunk = receiver.receive::<serde_bytes::ByteBuf>().await?;
        let chunk = chunk.ok_or(LinkError::Closed(peer))?;
        if chunk.is_empty() || (bytes.len() + chunk.len()) as u64 > start.image_bytes {
            return Err(broke(format!(
                "the snapshot's image does not fit the {} bytes announced",
                start.image_bytes
            )));
        }
        bytes.extend_from_slice(&chunk);
    }
    let image = Image::decode("the master's snapshot", &bytes).map_err(|e| broke(e.to_string()))?;
    Ok(image.snapshot)
}

/// Where remote followers join a master.
pub struct Listener {
    listener: tokio::net::TcpListener,
    key: Key,
    local: SocketAddr,
    runtime: Handle,
}

impl Listener {
    /// The address it listens on (with the port the system chose, for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The next follower that proves the key and says what it runs. A connection that fails the
    /// handshake (a wrong key, another program, a peer that says nothing) is refused with a
    /// warning, and the wait goes on: whoever can reach the port cannot end the run.
    pub fn accept(&self) -> Result<Remote, LinkError> {
        self.runtime.block_on(self.next())
    }

    async fn next(&self) -> Result<Remote, LinkError> {
        loop {
            let (stream, peer) = self.listener.accept().await?;
            let joined = tokio::time::timeout(HANDSHAKE, async {
                let mut link = Link::accept(stream, &self.key, Purpose::Mvx).await?;
                let join = link.receiver.receive::<Join>().await?;
                Ok::<_, LinkError>((link, join.ok_or(LinkError::Closed(peer))?))
            })
            .await
            .unwrap_or(Err(LinkError::Timeout(peer)));
            match joined {
                Ok((link, join)) => {
                    return Ok(Remote {
                        link,
                        join,
                        peer,
                        runtime: self.runtime.clone(),
                    })
                }
                Err(e) => spdlog::warn!("mvx: refused a follower from {peer}: {e}"),
            }
        }
    }

    /// Accepts followers in the background while the master runs, at most `places` at a time:
    /// each one that joins waits in the returned queue, and `arrived` is called. A follower's
    /// place opens again when the master lets it go ([`Port::place`]).
    pub(crate) fn serve(self, places: usize, arrived: impl Fn() + Send + 'static) -> Arrivals {
        let queue = Arc::new(Mutex::new(Vec::new()));
        let places = Arc::new(Semaphore::new(places));
        let (waiting, open) = (queue.clone(), places.clone());
        let runtime = self.runtime.clone();
        let task = runtime.spawn(async move {
            while let Ok(place) = open.clone().acquire_owned().await {
                match self.next().await {
                    Ok(remote) => {
                        // Given back by the master, with `add_permits`, if it loses the follower.
                        place.forget();
                        lock(&waiting).push(remote);
                        arrived();
                    }
                    Err(e) => {
                        spdlog::warn!("mvx: {}: no more followers can join: {e}", self.local);
                        return;
                    }
                }
            }
        });
        Arrivals {
            queue,
            places,
            task,
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The followers that have joined a running master and wait for its next site; accepting ends
/// when this is dropped.
pub(crate) struct Arrivals {
    queue: Arc<Mutex<Vec<Remote>>>,
    places: Arc<Semaphore>,
    task: JoinHandle<()>,
}

impl Arrivals {
    /// The followers that have joined since the last take.
    pub(crate) fn take(&self) -> Vec<Remote> {
        std::mem::take(&mut *lock(&self.queue))
    }

    /// The places the followers hold, for the ports of those that start.
    pub(crate) fn places(&self) -> Arc<Semaphore> {
        self.places.clone()
    }
}

impl Drop for Arrivals {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A follower that has joined, before its run starts.
pub struct Remote {
    link: Link,
    /// What it runs.
    pub join: Join,
    /// Where it is.
    pub peer: SocketAddr,
    runtime: Handle,
}

/// The tasks that carry one remote follower's messages; the last ones are awaited at the end.
pub(crate) struct Relay {
    writer: JoinHandle<()>,
    runtime: Handle,
}

impl Relay {
    /// Waits, at most [`FLUSH`], until the last messages have left.
    pub(crate) fn flush(self) {
        let writer = self.writer;
        let _ = self
            .runtime
            .block_on(async { tokio::time::timeout(FLUSH, writer).await });
    }
}

impl Remote {
    /// How reports name this follower, the `number`th of its master.
    pub(crate) fn name(&self, number: usize) -> String {
        format!(
            "follower {number} ({} on {} at {})",
            self.join.program, self.join.isa, self.peer
        )
    }

    /// Sends the follower its `setup` (and the `image` its `start` announces) and starts
    /// carrying messages: the master's down the link, the follower's up into the returned port.
    /// A divergence the follower reports rings `master_bell`, as a local follower's would; so
    /// does a link that fails, unless the follower holds a `place` that another may take.
    pub(crate) fn start(
        self,
        setup: Setup,
        image: Option<Arc<Vec<u8>>>,
        master_bell: Doorbell,
        place: Option<Arc<Semaphore>>,
    ) -> (Port, Relay) {
        let (down, mut down_end) = channel::<Down>();
        let (up_end, up) = channel::<Up>();
        let Link {
            mut receiver,
            mut sender,
        } = self.link;
        let name = setup.name.clone();
        let writer = self.runtime.spawn(async move {
            let sent = async {
                sender.send(&setup).await?;
                for chunk in image.iter().flat_map(|i| i.chunks(CHUNK)) {
                    sender.send(&serde_bytes::Bytes::new(chunk)).await?;
                }
                while let Some(message) = down_end.recv().await {
                    sender.send(&message).await?;
                }
                sender.close().await
            };
            if let Err(e) = sent.await {
                spdlog::warn!("mvx: {}: {e}", setup.name);
            }
        });
        let lost = Arc::new(Mutex::new(None));
        let (why, replaceable) = (lost.clone(), place.is_some());
        self.runtime.spawn(async move {
            loop {
                let up = match receiver.receive::<Up>().await {
                    Ok(Some(up)) => up,
                    // The follower ended; a master still waiting for it finds it gone.
                    Ok(None) => return,
                    Err(e) => {
                        *lock(&why) = Some(e.to_string());
                        // Gone before the bell, so that the stopped master finds it gone.
                        drop(up_end);
                        if !replaceable {
                            master_bell.ring();
                        }
                        return;
                    }
                };
                let stops = matches!(up, Up::Diverged(_));
                if up_end.send(up).is_err() || stops {
                    master_bell.ring();
                    return;
                }
            }
        });
        let port = Port {
            name,
            down,
            up,
            // A remote follower is stopped by the `Stop` message its relay receives.
            bell: Doorbell::new(),
            lost,
            place,
        };
        let runtime = self.runtime;
        (port, Relay { writer, runtime })
    }
}

/// A follower that has joined its master and received its setup.
pub struct Joined {
    /// What the master sent.
    pub setup: Setup,
    /// For a follower of a running master: the master's event it starts after, and the
    /// snapshot it starts from.
    start: Option<(u64, Snapshot)>,
    link: Link,
    peer: SocketAddr,
}

impl Joined {
    /// The master's address.
    pub fn master(&self) -> SocketAddr {
        self.peer
    }

    /// For a follower of a running master, the master's event it starts after.
    pub fn starts_after(&self) -> Option<u64> {
        self.start.as_ref().map(|(after, _)| *after)
    }
}

/// Runs `program` as the remote follower `joined` describes, until the master's exit, a
/// divergence, or the master stopping it. A link that fails during the run is the error.
pub fn follow_remote(
    network: &Network,
    program: &Program,
    joined: Joined,
) -> Result<FollowerEnd, RemoteError> {
    let placeholder =
        tempfile::tempdir().map_err(|e| RuntimeError::Io("a placeholder directory".into(), e))?;
    let cfg = remote_config(&joined.setup, placeholder.path());
    let (down_end, down) = channel::<Down>();
    let (up, mut up_end) = channel::<Up>();
    let Link {
        mut receiver,
        mut sender,
    } = joined.link;
    let failure = Arc::new(Mutex::new(None));
    let (bell, failed) = (cfg.doorbell.clone(), failure.clone());
    network.runtime.spawn(async move {
        loop {
            match receiver.receive::<Down>().await {
                Ok(Some(message)) => {
                    let stops = matches!(message, Down::Stop);
                    if down_end.send(message).is_err() || stops {
                        break;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    *lock(&failed) = Some(e);
                    break;
                }
            }
        }
        // Stopped, or the master gone: a follower computing stops at its next site.
        bell.ring();
    });
    let writer = network.runtime.spawn(async move {
        while let Some(message) = up_end.recv().await {
            sender.send(&message).await?;
        }
        sender.close().await
    });
    let monitor = FollowerMonitor::new(
        joined.setup.name.clone(),
        down,
        up,
        Doorbell::new(),
        program.info.clone(),
    );
    let end = match &joined.start {
        None => super::follow(program, &cfg, monitor, None),
        Some((after, snap)) => {
            super::follow(program, &cfg, monitor.after_event(*after), Some(snap))
        }
    };
    let flushed = network
        .runtime
        .block_on(async { tokio::time::timeout(FLUSH, writer).await });
    if let Some(e) = lock(&failure).take() {
        return Err(e.into());
    }
    if let Ok(Ok(Err(e))) = flushed {
        return Err(e.into());
    }
    Ok(end)
}

/// A remote follower's configuration: the master's arguments, environment and entry, its
/// directories' names over an empty `placeholder`, and (as every follower) no output of its own.
fn remote_config(setup: &Setup, placeholder: &std::path::Path) -> RunConfig {
    let dirs = setup
        .preopens
        .iter()
        .map(|guest| DirMap {
            host: placeholder.to_path_buf(),
            guest: guest.clone(),
        })
        .collect();
    let master = RunConfig {
        argv: setup.argv.clone(),
        env: setup.env.clone(),
        dirs,
        entry: setup.entry.clone(),
        ..RunConfig::default()
    };
    super::follower_config(&master, Doorbell::new())
}

#[cfg(test)]
mod tests {
    use super::*;
    use mvvm_checkpoint::Counters;

    /// A follower joining a master that announces `announced` bytes of image and sends `image`.
    fn join_with(image: Vec<u8>, announced: u64) -> Result<Option<u64>, LinkError> {
        let network = Network::new().expect("a network");
        let listener = network.listen("127.0.0.1:0", Key::none()).expect("listen");
        let addr = listener.local_addr().to_string();
        let master = std::thread::spawn(move || {
            let remote = listener.accept().expect("a follower");
            let mut setup = Setup::of(&RunConfig::default(), "follower 1".into());
            setup.start = Some(Start {
                after: 7,
                image_bytes: announced,
            });
            let (port, relay) = remote.start(setup, Some(Arc::new(image)), Doorbell::new(), None);
            drop(port);
            relay.flush();
        });
        let join = Join {
            program: "p.aot".into(),
            isa: "x86_64".into(),
        };
        let joined = network.join(&addr, &Key::none(), &join);
        master.join().expect("the master's thread");
        joined.map(|j| j.starts_after())
    }

    fn image() -> Vec<u8> {
        let snapshot = Snapshot {
            module_hash: [5; 32],
            entry: "_start".into(),
            frames: Vec::new(),
            memories: Vec::new(),
            globals: Vec::new(),
            tables: Vec::new(),
            wasi: None,
            counters: Counters::default(),
        };
        let image = Image {
            producer: "test".into(),
            taken_on: "x86_64".into(),
            snapshot,
        };
        image.encode(None).expect("encode")
    }

    #[test]
    fn a_late_follower_takes_the_image_announced_and_refuses_one_that_lies() {
        let good = image();
        let len = good.len() as u64;
        assert_eq!(join_with(good.clone(), len).expect("joined"), Some(7));
        let long = join_with(good.clone(), len - 1).expect_err("longer than announced");
        assert!(
            long.to_string()
                .contains(&format!("does not fit the {} bytes announced", len - 1)),
            "{long}"
        );
        let short = join_with(good[..good.len() - 1].to_vec(), len).expect_err("cut short");
        assert!(matches!(short, LinkError::Closed(_)), "{short}");
        let garbage = join_with(vec![0x55; 64], 64).expect_err("not an image");
        assert!(
            garbage.to_string().contains("not an mvvm checkpoint image"),
            "{garbage}"
        );
    }
}
