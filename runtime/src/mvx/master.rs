//! The master variant's call monitor: it makes every call it runs an event for its followers,
//! and, where the policy says, holds the call until every follower has reached the same call
//! with the same content.

use super::event::{Answer, Down, Event, Function, Output, Up};
use super::report::{Divergence, Side, Value};
use super::{Overdue, Patience, Policy};
use crate::doorbell::Doorbell;
use crate::wasi::calls::{self, CallClass};
use crate::wasi::dispatch::WasiCall;
use crate::wasi::monitor::{Before, CallMonitor, Halt};
use mvvm_contract::ModuleInfo;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;
use tokio::sync::mpsc::error::TryRecvError;
use tokio::sync::mpsc::{UnboundedReceiver as Receiver, UnboundedSender as Sender};
use tokio::sync::Semaphore;

/// The master's end of its link to one follower.
pub(crate) struct Port {
    /// How reports name the follower.
    pub(crate) name: String,
    pub(crate) down: Sender<Down>,
    pub(crate) up: Receiver<Up>,
    /// Rung to stop a follower that is computing rather than calling.
    pub(crate) bell: Doorbell,
    /// Why its link failed, if it did (set by a remote follower's relay).
    pub(crate) lost: Arc<Mutex<Option<String>>>,
    /// For a remote follower that another may replace: the places of the listener it came
    /// through, one of which it holds until it is lost.
    pub(crate) place: Option<Arc<Semaphore>>,
}

/// The master's call monitor.
pub(crate) struct MasterMonitor {
    policy: Policy,
    ports: Vec<Port>,
    info: Arc<ModuleInfo>,
    /// Events sent so far (the last event's sequence number).
    seq: u64,
    /// The event of the call now running, if its followers have not been sent it yet.
    unsent: Option<Event>,
    /// The function of the call now being made, if the master is in one.
    current: Option<&'static str>,
    /// The divergence that stopped the run, once one has.
    pub(crate) divergence: Option<Box<Divergence>>,
    /// How followers that join while the master runs reach it.
    joiner: Joiner,
    /// How long it waits for a follower at one event, if not for ever.
    patience: Option<Patience>,
}

/// Where followers that join a running master ([`super::late`]) come in: their ports, admitted
/// at the master's next call, and the master's event count, which a snapshot taken between
/// calls starts from.
#[derive(Clone, Default)]
pub(crate) struct Joiner {
    arrivals: Arc<Mutex<Vec<Port>>>,
    seq: Arc<AtomicU64>,
}

impl Joiner {
    /// The master's events so far.
    pub(crate) fn seq(&self) -> u64 {
        self.seq.load(Ordering::SeqCst)
    }

    /// Adds a follower that takes part from the master's next event on.
    pub(crate) fn admit(&self, port: Port) {
        self.arrivals
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(port);
    }
}

impl MasterMonitor {
    pub(crate) fn new(
        policy: Policy,
        ports: Vec<Port>,
        info: Arc<ModuleInfo>,
        patience: Option<Patience>,
    ) -> MasterMonitor {
        MasterMonitor {
            patience,
            policy,
            ports,
            info,
            seq: 0,
            unsent: None,
            current: None,
            divergence: None,
            joiner: Joiner::default(),
        }
    }

    /// Where followers join this master while it runs.
    pub(crate) fn joiner(&self) -> Joiner {
        self.joiner.clone()
    }

    /// Takes in the followers that joined since the last call.
    fn admit(&mut self) {
        let mut arrivals = self
            .joiner
            .arrivals
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        self.ports.append(&mut arrivals);
    }

    /// Counts a new event; returns its sequence number.
    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.joiner.seq.store(self.seq, Ordering::SeqCst);
        self.seq
    }

    /// Events made so far.
    pub(crate) fn events(&self) -> u64 {
        self.seq
    }

    fn broadcast(&self, message: Down) {
        let Some((last, others)) = self.ports.split_last() else {
            return;
        };
        // A follower that has gone is noticed when its verdict is awaited.
        for port in others {
            let _ = port.down.send(message.clone());
        }
        let _ = last.down.send(message);
    }

    /// Halts on a divergence any follower has reported, without waiting for one.
    fn check(&mut self) -> Result<(), Halt> {
        let mut k = 0;
        while k < self.ports.len() {
            match self.ports[k].up.try_recv() {
                Ok(Up::Diverged(d)) => return Err(self.diverged(k, d)),
                Ok(Up::Agree { .. }) | Err(TryRecvError::Empty) => k += 1,
                // Let go (the next follower now has index `k`), or the run stops.
                Err(TryRecvError::Disconnected) => self.lost(k)?,
            }
        }
        Ok(())
    }

    /// Waits until every follower agrees to event `seq`; halts on the first that does not.
    fn wait(&mut self, seq: u64) -> Result<(), Halt> {
        let deadline = self.patience.as_ref().map(|p| Instant::now() + p.limit);
        let mut k = 0;
        while k < self.ports.len() {
            let verdict = match (&self.patience, deadline) {
                (Some(p), Some(by)) => p.receive_by(&mut self.ports[k].up, by),
                _ => Ok(super::receive(&mut self.ports[k].up)),
            };
            match verdict {
                Ok(Some(Up::Agree { seq: s })) if s == seq => k += 1,
                // A verdict on an earlier event, sent before the follower knew it need not.
                Ok(Some(Up::Agree { seq: s })) if s < seq => {}
                Ok(Some(Up::Agree { .. })) => return Err(self.vanished(k)),
                Ok(Some(Up::Diverged(d))) => return Err(self.diverged(k, d)),
                Ok(None) => self.lost(k)?,
                Err(Overdue) => self.overdue(k)?,
            }
        }
        Ok(())
    }

    /// Follower `k` did not reach the master's event within the patience: lost, as one whose
    /// link closed, except that the report says so.
    fn overdue(&mut self, k: usize) -> Result<(), Halt> {
        let limit = self.patience.as_ref().map(|p| p.limit).unwrap_or_default();
        let why = format!(
            "the follower did not reach event {} within {limit:?} (--follower-timeout)",
            self.seq
        );
        if self.ports[k].place.is_some() && self.ports.len() > 1 {
            *self.ports[k]
                .lost
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = Some(why);
            return self.lost(k);
        }
        Err(self.gone(k, "follower", "(overdue)", why))
    }

    /// Follower `k` is gone without a report. One that holds a place another follower may take
    /// is let go, and its place opened, while another follower remains to compare the master
    /// with; otherwise the run stops, as on a divergence.
    fn lost(&mut self, k: usize) -> Result<(), Halt> {
        match &self.ports[k].place {
            Some(place) if self.ports.len() > 1 => {
                place.add_permits(1);
                let port = self.ports.remove(k);
                let why = port
                    .lost
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .take();
                spdlog::warn!(
                    "mvx: lost {} after event {} ({}); {} follower(s) go on, and a new one may join in its place",
                    port.name,
                    self.seq,
                    why.as_deref().unwrap_or("it closed its link without a report"),
                    self.ports.len()
                );
                Ok(())
            }
            _ => Err(self.vanished(k)),
        }
    }

    /// Records `d`, from follower `k`, naming the follower as the master does (a remote one
    /// could claim any name) and the master's side by the call it is in where the follower could
    /// not.
    fn diverged(&mut self, k: usize, mut d: Box<Divergence>) -> Halt {
        d.follower.clone_from(&self.ports[k].name);
        // A report from a follower's link, which knows no event: the master's last.
        if d.seq == 0 {
            d.seq = self.seq;
        }
        if d.master.call.is_empty() {
            d.master.call = self.current.unwrap_or("(between calls)").into();
        }
        self.divergence.get_or_insert(d);
        Halt
    }

    /// A follower whose link closed or failed without a report (its thread or process ended,
    /// or a frame from it did not authenticate or decode).
    fn vanished(&mut self, k: usize) -> Halt {
        let failed = self.ports[k]
            .lost
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        match failed {
            Some(why) => self.gone(k, "link", "(link)", why),
            None => self.gone(
                k,
                "follower",
                "(gone)",
                "the follower stopped without a report".into(),
            ),
        }
    }

    /// The divergence of follower `k`, which has no report of its own: `why`, in `field`.
    fn gone(&mut self, k: usize, field: &str, call: &str, why: String) -> Halt {
        let d = Divergence {
            seq: self.seq,
            follower: String::new(),
            field: field.into(),
            master: Side::default(),
            follower_side: Side {
                call: call.into(),
                value: Value::Text(why),
                stack: Vec::new(),
            },
        };
        self.diverged(k, Box::new(d))
    }

    /// At the master's end with exit `status`: every follower must end the same way. Returns
    /// the divergence if one did not.
    pub(crate) fn finish(&mut self, status: i32) -> Option<Box<Divergence>> {
        self.current = Some("exit");
        self.admit();
        if self.check().is_ok() {
            let seq = self.next_seq();
            self.broadcast(Down::Exit { seq, status });
            let _ = self.wait(self.seq);
        }
        self.divergence.take()
    }

    /// Stops every follower: those waiting for a message, and those computing (late ones that
    /// joined after the master's last call too).
    pub(crate) fn stop(&mut self) {
        self.admit();
        self.broadcast(Down::Stop);
        for port in &self.ports {
            port.bell.ring();
        }
    }

    /// The divergence that stopped the run: the one recorded, or one a follower has sent since
    /// (a follower rings the master's doorbell after sending its report).
    pub(crate) fn reported(&mut self) -> Option<Box<Divergence>> {
        if self.divergence.is_none() {
            let mut gone = None;
            for k in 0..self.ports.len() {
                loop {
                    match self.ports[k].up.try_recv() {
                        Ok(Up::Diverged(d)) => {
                            let _ = self.diverged(k, d);
                            return self.divergence.take();
                        }
                        Ok(Up::Agree { .. }) => {}
                        Err(TryRecvError::Empty) => break,
                        Err(TryRecvError::Disconnected) => {
                            gone = gone.or(Some(k));
                            break;
                        }
                    }
                }
            }
            // No report: a follower whose link failed rang, having nothing to send.
            if let Some(k) = gone {
                let _ = self.vanished(k);
            }
        }
        self.divergence.take()
    }
}

impl CallMonitor for MasterMonitor {
    fn before(&mut self, call: WasiCall<'_>, memory: &mut [u8]) -> Result<Before, Halt> {
        self.current = Some(call.name);
        self.admit();
        self.check()?;
        let spec = calls::spec(call.name).ok_or(Halt)?;
        if matches!(spec.class, CallClass::Local | CallClass::Exit) {
            return Ok(Before::Execute);
        }
        let event = Event {
            seq: self.next_seq(),
            function: Function::of(spec),
            inputs: calls::decode_inputs(spec, call.args, memory).ok(),
            answer: None,
        };
        if self.policy.waits_for(spec.class) {
            self.broadcast(Down::Call(event));
            self.wait(self.seq)?;
        } else {
            self.unsent = Some(event);
        }
        Ok(Before::Execute)
    }

    fn after(&mut self, call: WasiCall<'_>, memory: &[u8], errno: i32) -> Result<(), Halt> {
        self.current = None;
        let Some(spec) = calls::spec(call.name) else {
            return Ok(());
        };
        if matches!(spec.class, CallClass::Local | CallClass::Exit) {
            return Ok(());
        }
        // A call that failed wrote nothing a follower needs.
        let outputs = match errno {
            0 => calls::capture_outputs(spec, call.args, memory).unwrap_or_default(),
            _ => Vec::new(),
        };
        let outputs = outputs.into_iter().map(Output).collect();
        let answer = Answer { errno, outputs };
        match self.unsent.take() {
            Some(mut event) => {
                event.answer = Some(answer);
                self.broadcast(Down::Call(event));
            }
            None => self.broadcast(Down::Answer {
                seq: self.seq,
                answer,
            }),
        }
        Ok(())
    }

    fn halted(&mut self, stack: &wasmtime::WasmBacktrace) {
        if let Some(d) = self.divergence.as_mut() {
            d.master.stack = crate::trap::stack(stack, &self.info);
        }
    }
}
