//! Logging setup shared by `mvvm-aot` and `mvvm`: spdlog-rs, everything to stderr (stdout belongs to
//! the guest), level from `SPDLOG_LEVEL` (`trace`, `debug`, `info`, `warn` — the default —, `error`,
//! `critical`, `off`). Each record is one line of its own, `TOOL: LEVEL: message`, like the tools'
//! error lines, so a person reads one style and a script can tell mvvm's lines from the guest's.

use spdlog::formatter::{Formatter, FormatterContext};
use spdlog::sink::{StdStream, StdStreamSink};
use spdlog::{Level, LevelFilter, Logger, Record, StringBuf};
use std::fmt::Write as _;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Whether the guest left a line open on stderr (its last write there did not end in a newline).
/// mvvm's own lines then start with a newline, so that they never land inside the guest's line.
/// The runtime sets it as the guest writes; the logger and the tools' own lines read and clear it.
#[derive(Clone, Debug, Default)]
pub struct OpenLine(Arc<AtomicBool>);

impl OpenLine {
    /// Records whether the guest's last stderr write left its line open.
    pub fn set(&self, open: bool) {
        self.0.store(open, Ordering::Relaxed);
    }

    /// The newline that closes the guest's open line, if it left one (and now it has not).
    pub fn close(&self) -> &'static str {
        if self.0.swap(false, Ordering::Relaxed) {
            "\n"
        } else {
            ""
        }
    }

    /// Prints one line of the tool's own on stderr, on a line of its own.
    pub fn eprintln(&self, line: std::fmt::Arguments<'_>) {
        eprintln!("{}{line}", self.close());
    }
}

/// Formats a record as `TOOL: LEVEL: message`.
#[derive(Clone)]
struct ToolFormatter {
    tool: &'static str,
    open_line: OpenLine,
}

impl Formatter for ToolFormatter {
    fn format(
        &self,
        record: &Record,
        dest: &mut StringBuf,
        _ctx: &mut FormatterContext,
    ) -> spdlog::Result<()> {
        let level = match record.level() {
            Level::Critical => "critical",
            Level::Error => "error",
            Level::Warn => "warning",
            Level::Info => "info",
            Level::Debug => "debug",
            Level::Trace => "trace",
        };
        let newline = self.open_line.close();
        writeln!(
            dest,
            "{newline}{}: {level}: {}",
            self.tool,
            record.payload()
        )
        .map_err(spdlog::Error::FormatRecord)
    }
}

/// The more verbose of two levels (spdlog numbers them from the most severe, 0).
fn more_verbose(a: Level, b: Level) -> Level {
    if a as u16 >= b as u16 {
        a
    } else {
        b
    }
}

/// Installs the default logger for the tool named `tool`. `verbose` counts `-v` flags: 1 shows
/// info, 2 debug, 3 or more trace; `SPDLOG_LEVEL` may ask for more, and the more verbose of the
/// two wins (so `-v` cannot be silenced by the environment by accident). An unknown
/// `SPDLOG_LEVEL` value is reported and ignored. Returns the stderr line state the log lines
/// respect; hand it to the runs whose guests write to this process's stderr.
pub fn init(tool: &'static str, verbose: u8) -> OpenLine {
    let open_line = OpenLine::default();
    let from_flags = match verbose {
        0 => Level::Warn,
        1 => Level::Info,
        2 => Level::Debug,
        _ => Level::Trace,
    };
    let (filter, bad) = match std::env::var("SPDLOG_LEVEL") {
        Ok(v) if v.eq_ignore_ascii_case("off") && verbose == 0 => (LevelFilter::Off, None),
        Ok(v) if v.eq_ignore_ascii_case("off") => (LevelFilter::MoreSevereEqual(from_flags), None),
        Ok(v) => match Level::from_str(&v) {
            Ok(l) => (
                LevelFilter::MoreSevereEqual(more_verbose(l, from_flags)),
                None,
            ),
            Err(_) => (LevelFilter::MoreSevereEqual(from_flags), Some(v)),
        },
        Err(_) => (LevelFilter::MoreSevereEqual(from_flags), None),
    };
    let sink = StdStreamSink::builder()
        .std_stream(StdStream::Stderr)
        .formatter(ToolFormatter {
            tool,
            open_line: open_line.clone(),
        })
        .build();
    if let Ok(sink) = sink {
        if let Ok(logger) = Logger::builder()
            .sink(Arc::new(sink))
            .level_filter(filter)
            .build()
        {
            spdlog::set_default_logger(Arc::new(logger));
        }
    }
    if let Some(v) = bad {
        spdlog::warn!("SPDLOG_LEVEL={v:?} is not a level (trace, debug, info, warn, error, critical, off); using warn");
    }
    open_line
}
