//! What the master and its followers tell each other: the master's calls as events (content,
//! never pointers), its answers, its exit; the followers' agreement or the divergence they found.
//!
//! In one process these travel over channels; every type is serializable so that the same
//! messages can cross a network to a remote follower.

use super::report::Divergence;
use crate::wasi::calls::{self, CallSpec, Content};
use serde::{Deserialize, Serialize};

/// A WASI function by its position in [`calls::CALLS`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Function(u16);

impl Function {
    /// The function of `spec`, which must be an entry of [`calls::CALLS`].
    pub fn of(spec: &'static CallSpec) -> Function {
        let index = calls::CALLS
            .iter()
            .position(|c| c.name == spec.name)
            .unwrap_or_else(|| unreachable!("{} is an entry of the table", spec.name));
        Function(index as u16)
    }

    /// Its table entry, if the index names one (a message from elsewhere may not).
    pub fn spec(self) -> Option<&'static CallSpec> {
        calls::CALLS.get(usize::from(self.0))
    }

    /// Its name, or a placeholder for an index outside the table.
    pub fn name(self) -> &'static str {
        self.spec().map_or("(unknown function)", |s| s.name)
    }
}

/// One call the master made, by content.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Its position in the master's stream of events, from 1.
    pub seq: u64,
    /// The function.
    pub function: Function,
    /// Its inputs ([`calls::decode_inputs`]); `None` if an argument pointed outside the master's
    /// memory.
    pub inputs: Option<Vec<Content>>,
    /// What the call returned, when the master did not wait for its followers before running it;
    /// `None` asks each follower for its verdict first ([`Up`]), and a [`Down::Answer`] follows.
    pub answer: Option<Answer>,
}

/// What one call of the master returned, and wrote into its memory.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Answer {
    /// The errno it returned.
    pub errno: i32,
    /// One byte string per output argument ([`calls::capture_outputs`]).
    pub outputs: Vec<Output>,
}

/// The bytes of one output argument.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Output(#[serde(with = "serde_bytes")] pub Vec<u8>);

impl AsRef<[u8]> for Output {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

/// From the master to a follower.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Down {
    /// The master's next call.
    Call(Event),
    /// The answer to the call of event `seq`, which every follower agreed to.
    Answer {
        /// The event.
        seq: u64,
        /// What the master's call returned.
        answer: Answer,
    },
    /// The master ended with this exit status; the follower must end with the same.
    Exit {
        /// The event.
        seq: u64,
        /// The exit status.
        status: i32,
    },
    /// Stop now: the run is over (another variant diverged, or the master failed).
    Stop,
}

/// From a follower to the master.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Up {
    /// The follower made the same call (or exit) as event `seq`.
    Agree {
        /// The event.
        seq: u64,
    },
    /// The follower differs, as the report says; it has stopped.
    Diverged(Box<Divergence>),
}
