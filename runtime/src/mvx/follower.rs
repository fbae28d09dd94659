//! A follower variant's call monitor: each of its calls is matched against the master's next
//! event and answered from it, so that a follower never touches the host; any difference is a
//! divergence, reported to the master with the follower's own stack.

use super::event::{Answer, Down, Event, Output, Up};
use super::poll;
use super::report::{Divergence, Side, Value};
use super::FollowerEnd;
use crate::doorbell::Doorbell;
use crate::wasi::calls::{self, CallClass, CallSpec, Content};
use crate::wasi::dispatch::WasiCall;
use crate::wasi::monitor::{Before, CallMonitor, Halt};
use mvvm_contract::ModuleInfo;
use std::borrow::Cow;
use std::sync::Arc;
use tokio::sync::mpsc::{UnboundedReceiver as Receiver, UnboundedSender as Sender};

/// The follower's end of its link to the master.
pub(crate) struct FollowerMonitor {
    /// How reports name this follower.
    pub(crate) name: String,
    down: Receiver<Down>,
    up: Sender<Up>,
    /// Rung on a divergence, so that a master busy computing stops at its next site.
    master_bell: Doorbell,
    info: Arc<ModuleInfo>,
    /// A divergence found in `before`, sent once `halted` gives it the stack.
    pending: Option<Divergence>,
    /// The last event received.
    seen: u64,
    /// How the follower's run ended, once it has.
    end: Option<FollowerEnd>,
}

impl FollowerMonitor {
    pub(crate) fn new(
        name: String,
        down: Receiver<Down>,
        up: Sender<Up>,
        master_bell: Doorbell,
        info: Arc<ModuleInfo>,
    ) -> FollowerMonitor {
        FollowerMonitor {
            name,
            down,
            up,
            master_bell,
            info,
            pending: None,
            seen: 0,
            end: None,
        }
    }

    /// A follower that joins after the master's event `seq` (from a snapshot taken there).
    pub(crate) fn after_event(mut self, seq: u64) -> FollowerMonitor {
        self.seen = seq;
        self
    }

    /// How the follower's run ended: as recorded, or stopped by the master.
    pub(crate) fn end(&mut self) -> FollowerEnd {
        self.end.take().unwrap_or(FollowerEnd::Stopped)
    }

    /// Records a divergence at `seq` and halts; `halted` sends it.
    fn diverge(&mut self, seq: u64, field: &str, master: Side, follower: Side) -> Halt {
        self.pending = Some(Divergence {
            seq,
            follower: self.name.clone(),
            field: field.into(),
            master,
            follower_side: follower,
        });
        Halt
    }

    /// Sends a divergence to the master and makes sure it stops soon.
    fn send(&mut self, divergence: Divergence) {
        self.end = Some(FollowerEnd::Diverged(Box::new(divergence.clone())));
        // A master that has gone needs no report.
        let _ = self.up.send(Up::Diverged(Box::new(divergence)));
        self.master_bell.ring();
    }

    /// The master's next message; a master that stopped or went away halts the follower.
    fn next(&mut self) -> Result<Down, Halt> {
        match super::receive(&mut self.down) {
            Some(Down::Stop) | None => Err(Halt),
            Some(message) => {
                if let Down::Call(Event { seq, .. }) | Down::Exit { seq, .. } = message {
                    self.seen = seq;
                }
                Ok(message)
            }
        }
    }

    /// Matches the follower's call against the master's `event`; on a difference, halts.
    fn compare(
        &mut self,
        event: &Event,
        spec: &'static CallSpec,
        mine: &Option<Vec<Content>>,
    ) -> Result<(), Halt> {
        let call = |name: &str| Side {
            call: name.into(),
            ..Side::default()
        };
        if event.function.name() != spec.name {
            let (master, follower) = (call(event.function.name()), call(spec.name));
            return Err(self.diverge(event.seq, "call", master, follower));
        }
        let (theirs, ours): (Cow<'_, [Content]>, Cow<'_, [Content]>) = match (&event.inputs, mine) {
            (Some(t), Some(o)) if poll::carries_userdata(spec.name) => (
                poll::without_userdata(t).into(),
                poll::without_userdata(o).into(),
            ),
            (Some(t), Some(o)) => (t.as_slice().into(), o.as_slice().into()),
            (None, None) => return Ok(()),
            (t, _) => {
                let outside = |side: bool| {
                    Value::Text(
                        if side {
                            "within memory"
                        } else {
                            "outside memory"
                        }
                        .into(),
                    )
                };
                let master = Side {
                    value: outside(t.is_some()),
                    ..call(spec.name)
                };
                let follower = Side {
                    value: outside(mine.is_some()),
                    ..call(spec.name)
                };
                return Err(self.diverge(event.seq, "arguments", master, follower));
            }
        };
        let differs = theirs.iter().zip(ours.iter()).position(|(a, b)| a != b);
        let Some(k) = differs.or((theirs.len() != ours.len()).then_some(0)) else {
            return Ok(());
        };
        let field = match spec.inputs().nth(k) {
            Some((arg, what)) => format!("argument {arg} of {} ({what})", spec.name),
            None => format!("the inputs of {}", spec.name),
        };
        let value = |c: Option<&Content>| c.map_or(Value::None, Value::of);
        let master = Side {
            value: value(theirs.get(k)),
            ..call(spec.name)
        };
        let follower = Side {
            value: value(ours.get(k)),
            ..call(spec.name)
        };
        Err(self.diverge(event.seq, &field, master, follower))
    }

    /// The answer to the call of `event`: in the event, or (once the follower agreed) next.
    fn answer(&mut self, mut event: Event) -> Result<(Answer, Event), Halt> {
        if let Some(answer) = event.answer.take() {
            return Ok((answer, event));
        }
        let _ = self.up.send(Up::Agree { seq: event.seq });
        match self.next()? {
            Down::Answer { seq, answer } if seq == event.seq => Ok((answer, event)),
            other => {
                spdlog::error!(
                    "mvx: {}: expected the answer to event {}, got {other:?}",
                    self.name,
                    event.seq
                );
                Err(Halt)
            }
        }
    }

    /// Writes the master's `answer` into the follower's own buffers.
    fn apply(
        &mut self,
        call: WasiCall<'_>,
        spec: &'static CallSpec,
        memory: &mut [u8],
        event: &Event,
        answer: &Answer,
        mine: Option<&Vec<Content>>,
    ) -> Result<(), Halt> {
        if answer.errno != 0 {
            return Ok(());
        }
        let outputs = &answer.outputs;
        if calls::apply_outputs(spec, call.args, memory, outputs).is_err() {
            let side = |text: &str| Side {
                call: spec.name.into(),
                value: Value::Text(text.into()),
                stack: Vec::new(),
            };
            let master = side("returned more than the follower's buffers hold");
            let follower = side("buffers too small or outside memory");
            return Err(self.diverge(event.seq, "outputs", master, follower));
        }
        if poll::carries_userdata(spec.name) {
            translate_poll_userdata(call, memory, event, outputs, mine);
        }
        Ok(())
    }

    /// At the follower's end with exit `status`: the master must have ended the same way.
    pub(crate) fn finish(&mut self, status: i32) {
        let ended = Side {
            call: "exit".into(),
            value: Value::Text(format!("status {status}")),
            stack: Vec::new(),
        };
        let Ok(message) = self.next() else { return };
        match message {
            Down::Exit { seq, status: s } if s == status => {
                self.end = Some(FollowerEnd::Agreed(status));
                let _ = self.up.send(Up::Agree { seq });
            }
            Down::Exit { seq, status: s } => {
                let master = Side {
                    value: Value::Text(format!("status {s}")),
                    ..ended.clone()
                };
                let _ = self.diverge(seq, "exit status", master, ended);
                self.flush();
            }
            Down::Call(event) => {
                let master = Side {
                    call: event.function.name().into(),
                    ..Side::default()
                };
                let _ = self.diverge(event.seq, "call", master, ended);
                self.flush();
            }
            Down::Answer { .. } | Down::Stop => {}
        }
    }

    /// At a follower that failed (a trap, or the runtime's error) with `message`, and the wasm
    /// `stack` it failed in, if it was running wasm.
    pub(crate) fn failed(&mut self, message: String, stack: Vec<String>) {
        let follower = Side {
            call: "trap".into(),
            value: Value::Text(message),
            stack,
        };
        let _ = self.diverge(self.seen + 1, "trap", Side::default(), follower);
        self.flush();
    }

    /// Sends a pending divergence that has no stack to wait for.
    fn flush(&mut self) {
        if let Some(d) = self.pending.take() {
            self.send(d);
        }
    }
}

/// After the master's poll events were applied: each event's userdata becomes the follower's.
fn translate_poll_userdata(
    call: WasiCall<'_>,
    memory: &mut [u8],
    event: &Event,
    outputs: &[Output],
    mine: Option<&Vec<Content>>,
) {
    let subscriptions = |inputs: Option<&Vec<Content>>| match inputs.and_then(|i| i.first()) {
        Some(Content::Bytes(b)) => b.clone(),
        _ => Vec::new(),
    };
    let master = subscriptions(event.inputs.as_ref());
    let follower = subscriptions(mine);
    let (Some(Output(events)), Some(Ok(at))) = (
        outputs.first(),
        call.args.get(1).map(|&a| usize::try_from(a)),
    ) else {
        return;
    };
    if let Some(region) = memory.get_mut(at..at + events.len()) {
        poll::translate_userdata(region, &master, &follower);
    }
}

impl CallMonitor for FollowerMonitor {
    fn before(&mut self, call: WasiCall<'_>, memory: &mut [u8]) -> Result<Before, Halt> {
        let spec = calls::spec(call.name).ok_or(Halt)?;
        if matches!(spec.class, CallClass::Local | CallClass::Exit) {
            return Ok(Before::Execute);
        }
        let event = match self.next()? {
            Down::Call(event) => event,
            Down::Exit { seq, status } => {
                let master = Side {
                    call: "exit".into(),
                    value: Value::Text(format!("status {status}")),
                    stack: Vec::new(),
                };
                let follower = Side {
                    call: spec.name.into(),
                    ..Side::default()
                };
                return Err(self.diverge(seq, "call", master, follower));
            }
            other => {
                spdlog::error!("mvx: {}: expected an event, got {other:?}", self.name);
                return Err(Halt);
            }
        };
        let mine = calls::decode_inputs(spec, call.args, memory).ok();
        self.compare(&event, spec, &mine)?;
        let (answer, event) = self.answer(event)?;
        self.apply(call, spec, memory, &event, &answer, mine.as_ref())?;
        Ok(Before::Answered(answer.errno))
    }

    fn after(&mut self, _: WasiCall<'_>, _: &[u8], _: i32) -> Result<(), Halt> {
        Ok(())
    }

    fn halted(&mut self, stack: &wasmtime::WasmBacktrace) {
        if let Some(mut d) = self.pending.take() {
            d.follower_side.stack = crate::trap::stack(stack, &self.info);
            self.send(d);
        }
    }
}
