//! Log lines for `gossamer monitor`: a tracing layer that, while at least one monitor is connected, turns
//! each log event the agent's `log` filter lets through into one text line on a broadcast channel. With no
//! monitor connected it costs one atomic load per event.

use std::fmt::Write as _;
use std::sync::OnceLock;

use tokio::sync::broadcast;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer};

/// Log lines waiting for a slow monitor; beyond it the monitor skips lines (and says how many).
const BACKLOG: usize = 1024;

/// One log line and its level.
#[derive(Debug, Clone)]
pub struct LogLine {
    /// Its level.
    pub level: Level,
    /// `LEVEL target: message key=value ...`.
    pub text: String,
}

fn channel() -> &'static broadcast::Sender<LogLine> {
    static CHANNEL: OnceLock<broadcast::Sender<LogLine>> = OnceLock::new();
    CHANNEL.get_or_init(|| broadcast::channel(BACKLOG).0)
}

/// Log lines from now on (see [`LogLayer`]).
pub fn subscribe() -> broadcast::Receiver<LogLine> {
    channel().subscribe()
}

/// Parses `--level`: error, warn, info, debug or trace.
pub fn parse_level(text: &str) -> Result<Level, String> {
    match text.to_ascii_lowercase().as_str() {
        "error" => Ok(Level::ERROR),
        "warn" => Ok(Level::WARN),
        "info" => Ok(Level::INFO),
        "debug" => Ok(Level::DEBUG),
        "trace" => Ok(Level::TRACE),
        other => Err(format!("level {other:?}: one of error, warn, info, debug, trace")),
    }
}

/// The layer the agent's log subscriber carries (see [`crate::logging::init`]).
#[derive(Debug, Default, Clone, Copy)]
pub struct LogLayer;

struct Fields(String);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.0, " {value:?}");
        } else {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            let _ = write!(self.0, " {value}");
        } else {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }
}

impl<S: Subscriber> Layer<S> for LogLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let tx = channel();
        if tx.receiver_count() == 0 {
            return;
        }
        let meta = event.metadata();
        let mut fields = Fields(format!("{} {}:", meta.level(), meta.target()));
        event.record(&mut fields);
        let _ = tx.send(LogLine { level: *meta.level(), text: fields.0 });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_subscriber::layer::SubscriberExt;

    #[test]
    fn log_events_reach_a_subscriber_as_lines() {
        let mut rx = subscribe();
        let subscriber = tracing_subscriber::registry().with(LogLayer);
        tracing::subscriber::with_default(subscriber, || {
            tracing::warn!(peer = "10.0.0.1:7946", count = 3, "frame refused");
        });
        let line = rx.try_recv().unwrap();
        assert_eq!(line.level, Level::WARN);
        assert!(line.text.starts_with("WARN "), "{}", line.text);
        assert!(line.text.contains(": frame refused peer=\"10.0.0.1:7946\" count=3"), "{}", line.text);
        assert!(parse_level("Debug").is_ok() && parse_level("loud").is_err());
    }
}
