//! Logging setup shared by `mvvm-aot` and `mvvm`: spdlog-rs, everything to stderr (stdout belongs to
//! the guest), level from `SPDLOG_LEVEL` (`trace`, `debug`, `info`, `warn` — the default —, `error`,
//! `critical`, `off`). Each record is one line of its own, `TOOL: LEVEL: message`, like the tools'
//! error lines, so a person reads one style and a script can tell mvvm's lines from the guest's.

use spdlog::formatter::{Formatter, FormatterContext};
use spdlog::sink::{StdStream, StdStreamSink};
use spdlog::{Level, LevelFilter, Logger, Record, StringBuf};
use std::fmt::Write as _;
use std::str::FromStr;
use std::sync::Arc;

/// Formats a record as `TOOL: LEVEL: message`.
#[derive(Clone)]
struct ToolFormatter {
    tool: &'static str,
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
        writeln!(dest, "{}: {level}: {}", self.tool, record.payload())
            .map_err(spdlog::Error::FormatRecord)
    }
}

/// Installs the default logger for the tool named `tool`. An unknown `SPDLOG_LEVEL` value is
/// reported and ignored.
pub fn init(tool: &'static str) {
    let (filter, bad) = match std::env::var("SPDLOG_LEVEL") {
        Ok(v) if v.eq_ignore_ascii_case("off") => (LevelFilter::Off, None),
        Ok(v) => match Level::from_str(&v) {
            Ok(l) => (LevelFilter::MoreSevereEqual(l), None),
            Err(_) => (LevelFilter::MoreSevereEqual(Level::Warn), Some(v)),
        },
        Err(_) => (LevelFilter::MoreSevereEqual(Level::Warn), None),
    };
    let sink = StdStreamSink::builder()
        .std_stream(StdStream::Stderr)
        .formatter(ToolFormatter { tool })
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
}
