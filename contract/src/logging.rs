//! Logging setup shared by `mvvm-aot` and `mvvm`: spdlog-rs, everything to stderr (stdout belongs to
//! the guest), level from `SPDLOG_LEVEL` (`trace`, `debug`, `info`, `warn` — the default —, `error`,
//! `critical`, `off`).

use spdlog::sink::{StdStream, StdStreamSink};
use spdlog::{Level, LevelFilter, Logger};
use std::str::FromStr;
use std::sync::Arc;

/// Installs the default logger. An unknown `SPDLOG_LEVEL` value is reported and ignored.
pub fn init() {
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
