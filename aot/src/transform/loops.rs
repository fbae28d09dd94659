//! What the loop policies put at each loop header of a function body.
//!
//! Under the counter-loop policy a loop without calls counts its iterations in a local and a loop
//! with calls tests the shared countdown on every iteration (see [`loop_polls`]). A loop that is
//! known to end within a few iterations gets no site at all: it is *bounded* (see
//! [`LoopPoll::Bounded`]); the code around it still polls.

use super::TransformError;
use mvvm_contract::Policy;
use wasmparser::{BlockType, FunctionBody, Operator};

/// A bounded loop runs at most this many iterations. Its body has no call and no loop, so one
/// entry costs at most this many times its size; inside a counted nest the nest's countdown is
/// charged the whole count on entry (see `contract/FORMAT.md` §2, *Countdown protocol*).
pub(crate) const BOUNDED_LOOP_MAX_TRIPS: u32 = 1024;

/// How far back from a `loop` the search for its counter's initial value looks.
const ENTRY_SCAN_LIMIT: usize = 256;

/// The poll at one loop header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum LoopPoll {
    /// No site: the policy has no loop sites.
    Off,
    /// No site: the loop has no call and no nested loop, and runs at most this many iterations
    /// (at least 1) whenever it is entered. Only under the counter-loop policy.
    Bounded(u32),
    /// A counted site: the loop has no call and counts its iterations in a local.
    Counted,
    /// An uncounted site: the loop tests the shared countdown on every iteration.
    Every,
}

impl LoopPoll {
    /// Whether the header is a site.
    pub(super) fn is_site(self) -> bool {
        matches!(self, LoopPoll::Counted | LoopPoll::Every)
    }
}

/// For each `loop` of `body`, in order: what `policy` puts at its header.
///
/// A loop that contains a call (of any kind) is [`LoopPoll::Every`] under the counter-loop
/// policy: a counter would have to survive every call in the loop (a callee-saved register taken
/// from the loop, or a stack slot written on every iteration), which costs more than one load of
/// the countdown. Under the loop policy alone every loop is [`LoopPoll::Every`].
pub(super) fn loop_polls(
    policy: &Policy,
    body: &FunctionBody<'_>,
) -> Result<Vec<LoopPoll>, TransformError> {
    let ops = body
        .get_operators_reader()?
        .into_iter()
        .collect::<Result<Vec<_>, _>>()?;
    let shape = loop_shapes(&ops);
    Ok(shape
        .iter()
        .map(|s| {
            if policy.counter_loop && !s.calls {
                match s.trips {
                    Some(n) => LoopPoll::Bounded(n),
                    None => LoopPoll::Counted,
                }
            } else if policy.loop_header || policy.counter_loop {
                LoopPoll::Every
            } else {
                LoopPoll::Off
            }
        })
        .collect())
}

/// What [`loop_polls`] needs to know about one loop.
#[derive(Default)]
struct LoopShape {
    /// It contains a call of any kind.
    calls: bool,
    /// Its iteration count, if it is bounded (see [`trip_count`]).
    trips: Option<u32>,
}

/// One open construct while scanning.
struct OpenConstruct {
    /// Ordinal of the loop, `None` for blocks and ifs.
    ordinal: Option<usize>,
    /// Index of its opening operator.
    start: usize,
    /// Branches that target it (only counted for loops).
    branches: usize,
    /// It contains a loop.
    has_loop: bool,
}

fn loop_shapes(ops: &[Operator<'_>]) -> Vec<LoopShape> {
    let mut shapes: Vec<LoopShape> = Vec::new();
    let mut open: Vec<OpenConstruct> = Vec::new();
    for (i, op) in ops.iter().enumerate() {
        let targets = |depth: u32, open: &mut Vec<OpenConstruct>| {
            if let Some(k) = open.len().checked_sub(1 + depth as usize) {
                open[k].branches += 1;
            }
        };
        match op {
            Operator::Loop { .. } => {
                for o in open.iter_mut() {
                    o.has_loop = true;
                }
                open.push(OpenConstruct {
                    ordinal: Some(shapes.len()),
                    start: i,
                    branches: 0,
                    has_loop: false,
                });
                shapes.push(LoopShape::default());
            }
            Operator::Block { .. }
            | Operator::If { .. }
            | Operator::Try { .. }
            | Operator::TryTable { .. } => open.push(OpenConstruct {
                ordinal: None,
                start: i,
                branches: 0,
                has_loop: false,
            }),
            Operator::End | Operator::Delegate { .. } => {
                if let Some(o) = open.pop() {
                    if let Some(k) = o.ordinal {
                        if !shapes[k].calls && !o.has_loop && o.branches == 1 {
                            shapes[k].trips = trip_count(ops, o.start, i);
                        }
                    }
                }
            }
            Operator::Br { relative_depth } | Operator::BrIf { relative_depth } => {
                targets(*relative_depth, &mut open)
            }
            Operator::BrTable { targets: t } => {
                for d in t.targets().flatten() {
                    targets(d, &mut open);
                }
                targets(t.default(), &mut open);
            }
            Operator::Call { .. }
            | Operator::CallIndirect { .. }
            | Operator::ReturnCall { .. }
            | Operator::ReturnCallIndirect { .. }
            | Operator::CallRef { .. }
            | Operator::ReturnCallRef { .. } => {
                for k in open.iter().filter_map(|o| o.ordinal) {
                    shapes[k].calls = true;
                }
            }
            _ => {}
        }
    }
    shapes
}

/// The iteration count of the loop `ops[start..=end]` (`loop` … `end`), if it is bounded: a loop
/// without parameters that exactly one branch targets, the last operator of its body, of the form
///
/// ```text
/// local.get $i  i32.const s  i32.add|i32.sub  local.tee $i  [i32.const c  <i32 compare>]  br_if 0
/// ```
///
/// (or `local.set $i local.get $i` for the `local.tee`; without the compare, the loop goes on while
/// `$i` is not zero), where nothing else in the loop writes `$i` and the straight-line code right
/// before the `loop` sets `$i` to a constant. Every iteration that goes on runs that tail once, so
/// running the recurrence from the constant gives the count; a count above
/// [`BOUNDED_LOOP_MAX_TRIPS`] is not bounded. An iteration can only end the loop earlier (a branch
/// out, a trap), never add one.
fn trip_count(ops: &[Operator<'_>], start: usize, end: usize) -> Option<u32> {
    match &ops[start] {
        Operator::Loop {
            blockty: BlockType::Empty | BlockType::Type(_),
        } => {}
        _ => return None,
    }
    let body = &ops[start + 1..end];
    let (last, rest) = body.split_last()?;
    if !matches!(last, Operator::BrIf { relative_depth: 0 }) {
        return None;
    }
    let (rest, cmp) = match rest {
        [r @ .., Operator::I32Const { value }, cmp] => match compare(cmp) {
            Some(f) => (r, Some((f, *value))),
            None => (rest, None),
        },
        _ => (rest, None),
    };
    let (i, rest) = match rest {
        [r @ .., Operator::LocalTee { local_index }] => (*local_index, r),
        [r @ .., Operator::LocalSet { local_index: a }, Operator::LocalGet { local_index: b }]
            if a == b =>
        {
            (*a, r)
        }
        _ => return None,
    };
    let step = match rest {
        [.., Operator::LocalGet { local_index }, Operator::I32Const { value }, Operator::I32Add]
            if *local_index == i =>
        {
            *value
        }
        [.., Operator::LocalGet { local_index }, Operator::I32Const { value }, Operator::I32Sub]
            if *local_index == i =>
        {
            value.wrapping_neg()
        }
        _ => return None,
    };
    let writes = body
        .iter()
        .filter(|op| {
            matches!(op, Operator::LocalSet { local_index } | Operator::LocalTee { local_index }
                if *local_index == i)
        })
        .count();
    if writes != 1 {
        return None;
    }
    let mut v = entry_constant(ops, start, i)?;
    for n in 1..=BOUNDED_LOOP_MAX_TRIPS {
        v = v.wrapping_add(step);
        let goes_on = match cmp {
            Some((f, c)) => f(v, c),
            None => v != 0,
        };
        if !goes_on {
            return Some(n);
        }
    }
    None
}

/// The `i32` compare `op` as a function of its two operands.
fn compare(op: &Operator<'_>) -> Option<fn(i32, i32) -> bool> {
    Some(match op {
        Operator::I32Eq => |a, b| a == b,
        Operator::I32Ne => |a, b| a != b,
        Operator::I32LtS => |a, b| a < b,
        Operator::I32LtU => |a, b| (a as u32) < (b as u32),
        Operator::I32GtS => |a, b| a > b,
        Operator::I32GtU => |a, b| (a as u32) > (b as u32),
        Operator::I32LeS => |a, b| a <= b,
        Operator::I32LeU => |a, b| (a as u32) <= (b as u32),
        Operator::I32GeS => |a, b| a >= b,
        Operator::I32GeU => |a, b| (a as u32) >= (b as u32),
        _ => return None,
    })
}

/// The constant that local `i` holds when the `loop` at `ops[at]` is entered, if the
/// straight-line code right before it (no control operator in between) sets it with
/// `i32.const c; local.set|local.tee $i`.
fn entry_constant(ops: &[Operator<'_>], at: usize, i: u32) -> Option<i32> {
    let lo = at.saturating_sub(ENTRY_SCAN_LIMIT);
    for k in (lo..at).rev() {
        match &ops[k] {
            Operator::LocalSet { local_index } | Operator::LocalTee { local_index }
                if *local_index == i =>
            {
                return match ops.get(k.checked_sub(1)?)? {
                    Operator::I32Const { value } => Some(*value),
                    _ => None,
                };
            }
            op if is_control(op) => return None,
            _ => {}
        }
    }
    None
}

/// Whether `op` starts, ends or leaves a construct or the function (what ends straight-line code).
fn is_control(op: &Operator<'_>) -> bool {
    matches!(
        op,
        Operator::Block { .. }
            | Operator::Loop { .. }
            | Operator::If { .. }
            | Operator::Else
            | Operator::End
            | Operator::Br { .. }
            | Operator::BrIf { .. }
            | Operator::BrTable { .. }
            | Operator::BrOnNull { .. }
            | Operator::BrOnNonNull { .. }
            | Operator::BrOnCast { .. }
            | Operator::BrOnCastFail { .. }
            | Operator::Return
            | Operator::Unreachable
            | Operator::Try { .. }
            | Operator::TryTable { .. }
            | Operator::Catch { .. }
            | Operator::CatchAll
            | Operator::Delegate { .. }
            | Operator::Throw { .. }
            | Operator::ThrowRef
            | Operator::Rethrow { .. }
    )
}

#[cfg(test)]
mod tests {
    //! Which loops get which poll, one row per rule. Each row is the body of a function
    //! `(func (param $n i32) (local $i i32) …)` and what [`loop_polls`] gives its loops, in order,
    //! under the counter-loop policy; the last tests show the other policies.

    use super::{loop_polls, LoopPoll, BOUNDED_LOOP_MAX_TRIPS};
    use mvvm_contract::Policy;
    use LoopPoll::{Bounded, Counted, Every, Off};

    /// What `policy` puts at each loop of the function whose body is `body`.
    fn polls(policy: &Policy, body: &str) -> Vec<LoopPoll> {
        let wat = format!(
            "(module (func $f) (table 1 funcref) (type $t (func))
               (func (param $n i32) (local $i i32) {body}))"
        );
        let wasm = wat::parse_str(&wat).unwrap_or_else(|e| panic!("{e}\n{wat}"));
        let bodies: Vec<_> = wasmparser::Parser::new(0)
            .parse_all(&wasm)
            .filter_map(|p| match p {
                Ok(wasmparser::Payload::CodeSectionEntry(b)) => Some(b),
                _ => None,
            })
            .collect();
        let last = bodies.last().expect("the module has bodies");
        loop_polls(policy, last).expect("a valid body")
    }

    /// A loop counting `$i` from `start` by `step` while `$i <cmp> limit` (`i32.lt_s` etc.).
    fn counting(start: i32, step: &str, cmp: &str, limit: i32) -> String {
        format!(
            "i32.const {start} local.set $i
             (loop $l local.get $i i32.const 1 {step} local.tee $i
                      i32.const {limit} {cmp} br_if $l)"
        )
    }

    #[test]
    fn counter_loop_policy_table() {
        let table: Vec<(&str, String, Vec<LoopPoll>)> = vec![
            (
                "a loop whose end depends on a parameter counts in a local",
                "(loop $l local.get $n i32.const 1 i32.sub local.tee $n br_if $l)".into(),
                vec![Counted],
            ),
            (
                "a loop with a direct call tests the shared countdown on every iteration",
                "(loop $l call $f local.get $n br_if $l)".into(),
                vec![Every],
            ),
            (
                "so does one with an indirect call",
                "(loop $l i32.const 0 call_indirect (type $t) local.get $n br_if $l)".into(),
                vec![Every],
            ),
            (
                "a call in an inner loop makes the outer loop call too",
                "(loop $o (loop $i call $f local.get $n br_if $i) local.get $n br_if $o)".into(),
                vec![Every, Every],
            ),
            (
                "a loop from a constant that ends within the limit is bounded: no site",
                counting(0, "i32.add", "i32.lt_s", 10),
                vec![Bounded(10)],
            ),
            (
                "the trip count follows the compare (unsigned, counting down)",
                counting(8, "i32.sub", "i32.gt_u", 3),
                vec![Bounded(5)],
            ),
            (
                "a bounded loop may loop until its counter is zero (no compare)",
                "i32.const 4 local.set $i
                 (loop $l local.get $i i32.const 1 i32.sub local.tee $i br_if $l)"
                    .into(),
                vec![Bounded(4)],
            ),
            (
                "a count above the limit is not bounded",
                counting(0, "i32.add", "i32.lt_s", BOUNDED_LOOP_MAX_TRIPS as i32 + 1),
                vec![Counted],
            ),
            (
                "exactly the limit is bounded",
                counting(0, "i32.add", "i32.lt_s", BOUNDED_LOOP_MAX_TRIPS as i32),
                vec![Bounded(BOUNDED_LOOP_MAX_TRIPS)],
            ),
            (
                "a counter that starts from a parameter is not bounded",
                "local.get $n local.set $i
                 (loop $l local.get $i i32.const 1 i32.add local.tee $i
                          i32.const 10 i32.lt_s br_if $l)"
                    .into(),
                vec![Counted],
            ),
            (
                "a second write of the counter in the body is not bounded",
                "i32.const 0 local.set $i
                 (loop $l local.get $n local.set $i
                          local.get $i i32.const 1 i32.add local.tee $i
                          i32.const 10 i32.lt_s br_if $l)"
                    .into(),
                vec![Counted],
            ),
            (
                "a second branch to the header is not bounded",
                "i32.const 0 local.set $i
                 (loop $l local.get $n br_if $l
                          local.get $i i32.const 1 i32.add local.tee $i
                          i32.const 10 i32.lt_s br_if $l)"
                    .into(),
                vec![Counted],
            ),
            (
                "control flow between the constant and the loop is not bounded",
                "i32.const 0 local.set $i (block)
                 (loop $l local.get $i i32.const 1 i32.add local.tee $i
                          i32.const 10 i32.lt_s br_if $l)"
                    .into(),
                vec![Counted],
            ),
            (
                "a loop that contains a loop is not bounded, the inner one may be",
                format!(
                    "(loop $o {} local.get $n br_if $o)",
                    counting(0, "i32.add", "i32.lt_s", 3)
                ),
                vec![Counted, Bounded(3)],
            ),
            (
                "a loop with a call in it is never bounded",
                "i32.const 0 local.set $i
                 (loop $l call $f local.get $i i32.const 1 i32.add local.tee $i
                          i32.const 10 i32.lt_s br_if $l)"
                    .into(),
                vec![Every],
            ),
        ];
        let policy = Policy::default_counter();
        for (why, body, expected) in table {
            assert_eq!(polls(&policy, &body), expected, "{why}:\n{body}");
        }
    }

    #[test]
    fn other_policies_put_the_same_poll_at_every_loop_or_none() {
        let body = format!(
            "(loop $a local.get $n br_if $a) (loop $b call $f local.get $n br_if $b) {}",
            counting(0, "i32.add", "i32.lt_s", 10)
        );
        let loop_header = Policy {
            loop_header: true,
            counter_loop: false,
            ..Policy::default_counter()
        };
        assert_eq!(polls(&loop_header, &body), vec![Every, Every, Every]);
        let entry_only = Policy {
            function_entry: true,
            counter_loop: false,
            ..Policy::default_counter()
        };
        assert_eq!(polls(&entry_only, &body), vec![Off, Off, Off]);
        assert_eq!(polls(&Policy::plain(), &body), vec![Off, Off, Off]);
        assert_eq!(
            polls(&Policy::default_counter(), &body),
            vec![Counted, Every, Bounded(10)]
        );
    }
}
