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
use super::report::{Divergence, Side, Value};
use super::FollowerEnd;
use crate::config::{DirMap, RunConfig};
use crate::doorbell::Doorbell;
use crate::error::RuntimeError;
use crate::link::{self, Key, Link, LinkError, Purpose};
use crate::program::Program;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tokio::runtime::Runtime;
use tokio::sync::mpsc::unbounded_channel as channel;
use tokio::task::JoinHandle;

/// How long a peer may take over the handshake and its first message before it is dropped: a
/// connection that says nothing must not hold up the followers that come after it.
const HANDSHAKE: Duration = Duration::from_secs(10);
/// How long a follower keeps trying to reach a master that is not listening yet, so that a
/// script may start both at once.
const CONNECT: Duration = Duration::from_secs(10);
/// How long the last messages may take to leave when a run ends.
const FLUSH: Duration = Duration::from_secs(2);

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
}

impl Setup {
    /// The setup of a follower named `name` of a master run with `cfg`.
    pub(crate) fn of(cfg: &RunConfig, name: String) -> Setup {
        Setup {
            name,
            argv: cfg.argv.clone(),
            env: cfg.env.clone(),
            preopens: cfg.dirs.iter().map(|d| d.guest.clone()).collect(),
            entry: cfg.entry.clone(),
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
        })
    }

    /// Joins the master listening at `addr` as a follower that runs what `join` says: connects
    /// (retrying while nothing listens there yet), proves `key`, and waits for the master's
    /// [`Setup`], which comes when every follower it waits for has joined.
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
            Ok(Joined { setup, link, peer })
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

/// Where remote followers join a master.
pub struct Listener {
    listener: tokio::net::TcpListener,
    key: Key,
    local: SocketAddr,
}

impl Listener {
    /// The address it listens on (with the port the system chose, for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The next follower that proves the key and says what it runs. A connection that fails the
    /// handshake (a wrong key, another program, a peer that says nothing) is refused with a
    /// warning, and the wait goes on: whoever can reach the port cannot end the run.
    pub fn accept(&self, network: &Network) -> Result<Remote, LinkError> {
        network.runtime.block_on(async {
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
                        let runtime = network.runtime.handle().clone();
                        return Ok(Remote {
                            link,
                            join,
                            peer,
                            runtime,
                        });
                    }
                    Err(e) => spdlog::warn!("mvx: refused a follower from {peer}: {e}"),
                }
            }
        })
    }
}

/// A follower that has joined, before its run starts.
pub struct Remote {
    link: Link,
    /// What it runs.
    pub join: Join,
    /// Where it is.
    pub peer: SocketAddr,
    runtime: tokio::runtime::Handle,
}

/// The tasks that carry one remote follower's messages; the last ones are awaited at the end.
pub(crate) struct Relay {
    writer: JoinHandle<()>,
    runtime: tokio::runtime::Handle,
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
    /// Sends the follower its `setup` and starts carrying messages: the master's down the link,
    /// the follower's up into the returned port. A divergence the follower reports, or a link
    /// that fails, rings `master_bell`, as a local follower's divergence would.
    pub(crate) fn start(self, setup: Setup, master_bell: Doorbell) -> (Port, Relay) {
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
                while let Some(message) = down_end.recv().await {
                    sender.send(&message).await?;
                }
                sender.close().await
            };
            if let Err(e) = sent.await {
                spdlog::warn!("mvx: {}: {e}", setup.name);
            }
        });
        self.runtime.spawn(async move {
            loop {
                let up = match receiver.receive::<Up>().await {
                    Ok(Some(up)) => up,
                    // The follower ended; a master still waiting for it finds it gone.
                    Ok(None) => return,
                    Err(e) => Up::Diverged(Box::new(link_failed(&e))),
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
        };
        let runtime = self.runtime;
        (port, Relay { writer, runtime })
    }
}

/// The report of a follower's link that failed: a frame that did not authenticate or decode,
/// or a connection that broke.
fn link_failed(e: &LinkError) -> Divergence {
    Divergence {
        seq: 0,
        follower: String::new(),
        field: "link".into(),
        master: Side::default(),
        follower_side: Side {
            call: "(link)".into(),
            value: Value::Text(e.to_string()),
            stack: Vec::new(),
        },
    }
}

/// A follower that has joined its master and received its setup.
pub struct Joined {
    /// What the master sent.
    pub setup: Setup,
    link: Link,
    peer: SocketAddr,
}

impl Joined {
    /// The master's address.
    pub fn master(&self) -> SocketAddr {
        self.peer
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
                    *failed.lock().unwrap_or_else(PoisonError::into_inner) = Some(e);
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
    let end = super::follow(program, &cfg, monitor, None);
    let flushed = network
        .runtime
        .block_on(async { tokio::time::timeout(FLUSH, writer).await });
    if let Some(e) = failure
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take()
    {
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
