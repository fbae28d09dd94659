//! A divergence and the report mvvm prints for it: where the variants parted (the event's
//! sequence number, the call, the field), both values with the first differing byte marked, and
//! each variant's wasm call stack.

use crate::wasi::calls::Content;
use serde::{Deserialize, Serialize};
use std::fmt::{self, Write as _};

/// Where a follower and the master parted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Divergence {
    /// The event at which they parted (the master's count of its calls, from 1).
    pub seq: u64,
    /// Which follower, as the report names it (e.g. `follower 1 (app.aot on pulley64)`).
    pub follower: String,
    /// What differs: `call`, `exit status`, `argument 1 (bytes)`, `trap`...
    pub field: String,
    /// The master's side.
    pub master: Side,
    /// The follower's side.
    pub follower_side: Side,
}

/// One variant's side of a divergence.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Side {
    /// What it was doing: a WASI function's name, `exit`, `trap`.
    pub call: String,
    /// The value of the field that differs.
    pub value: Value,
    /// Its wasm call stack, innermost frame first (empty if it was not running wasm).
    pub stack: Vec<String>,
}

/// The value of a field.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Value {
    /// Nothing to show (the field is the call itself).
    #[default]
    None,
    /// A number, a name or a message.
    Text(String),
    /// Bytes, shown as hex and printable characters.
    Bytes(#[serde(with = "serde_bytes")] Vec<u8>),
}

impl Value {
    /// The value of an argument decoded by content.
    pub fn of(content: &Content) -> Value {
        match content {
            Content::Fd(fd) => Value::Text(format!("descriptor {fd}")),
            Content::Value(v) => Value::Text(v.to_string()),
            Content::Bytes(b) => Value::Bytes(b.clone()),
        }
    }
}

/// The index of the first byte where `a` and `b` differ (the shorter one's length if one is a
/// prefix of the other), or `None` if they are equal.
pub fn first_difference(a: &[u8], b: &[u8]) -> Option<usize> {
    match a.iter().zip(b).position(|(x, y)| x != y) {
        Some(i) => Some(i),
        None if a.len() == b.len() => None,
        None => Some(a.len().min(b.len())),
    }
}

/// How many bytes of a value a report shows around the first difference.
const PREVIEW: usize = 48;

/// `bytes` as hex and printable lines of 16, around byte `mark` (marked `[xx]`).
fn preview(out: &mut String, bytes: &[u8], mark: Option<usize>) {
    let centre = mark.unwrap_or(0).min(bytes.len());
    let start = (centre / 16).saturating_sub(1) * 16;
    let end = (start + PREVIEW).min(bytes.len());
    for line in (start..end).step_by(16) {
        let row = &bytes[line..(line + 16).min(end)];
        let _ = write!(out, "\n      {line:08x} ");
        for (k, b) in row.iter().enumerate() {
            if Some(line + k) == mark {
                let _ = write!(out, "[{b:02x}]");
            } else {
                let _ = write!(out, " {b:02x} ");
            }
        }
        let printable: String = row
            .iter()
            .map(|&b| {
                if (0x20..0x7f).contains(&b) {
                    b as char
                } else {
                    '.'
                }
            })
            .collect();
        let pad = 4 * (16 - row.len());
        let _ = write!(out, "{:pad$} |{printable}|", "");
    }
    if end < bytes.len() {
        let _ = write!(out, "\n      ... {} more bytes", bytes.len() - end);
    }
}

/// One side's value: a line, or a byte count and the preview.
fn value_lines(out: &mut String, value: &Value, mark: Option<usize>) {
    match value {
        Value::None => {}
        Value::Text(t) => {
            let _ = write!(out, ", {t}");
        }
        Value::Bytes(b) => {
            let _ = write!(out, ", {} bytes", b.len());
            if let Some(m) = mark {
                let _ = write!(out, ", first difference at byte {m}");
            }
            preview(out, b, mark);
        }
    }
}

fn stack_lines(out: &mut String, whose: &str, stack: &[String]) {
    if stack.is_empty() {
        return;
    }
    let _ = write!(out, "\n  {whose} wasm stack (innermost first):");
    for (i, frame) in stack.iter().enumerate() {
        let _ = write!(out, "\n    {i:>4}: {frame}");
    }
}

impl fmt::Display for Divergence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mark = match (&self.master.value, &self.follower_side.value) {
            (Value::Bytes(a), Value::Bytes(b)) => first_difference(a, b),
            _ => None,
        };
        let mut out = format!(
            "{} diverged from the master at event {}; nothing of that call was done\n  field:    {}\n  master:   {}",
            self.follower, self.seq, self.field, self.master.call
        );
        value_lines(&mut out, &self.master.value, mark);
        out.push_str(&format!("\n  follower: {}", self.follower_side.call));
        value_lines(&mut out, &self.follower_side.value, mark);
        stack_lines(&mut out, "master's", &self.master.stack);
        stack_lines(&mut out, "follower's", &self.follower_side.stack);
        f.write_str(&out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_difference_is_found_and_marked() {
        assert_eq!(first_difference(b"abc", b"abc"), None);
        assert_eq!(first_difference(b"abc", b"abd"), Some(2));
        assert_eq!(first_difference(b"ab", b"abc"), Some(2));
        let d = Divergence {
            seq: 10,
            follower: "follower 1".into(),
            field: "argument 1 (bytes)".into(),
            master: Side {
                call: "fd_write".into(),
                value: Value::Bytes(b"line 10\n".to_vec()),
                stack: vec!["function 3 main".into()],
            },
            follower_side: Side {
                call: "fd_write".into(),
                value: Value::Bytes(b"line 1X\n".to_vec()),
                stack: vec![],
            },
        };
        let text = d.to_string();
        assert!(text.contains("event 10"), "{text}");
        assert!(text.contains("first difference at byte 6"), "{text}");
        assert!(text.contains("[30]"), "{text}");
        assert!(text.contains("[58]"), "{text}");
        assert!(text.contains("|line 10.|"), "{text}");
        assert!(text.contains("function 3 main"), "{text}");
    }
}
