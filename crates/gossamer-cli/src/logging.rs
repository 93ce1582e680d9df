//! Where the agent's and the demo's logs go and how they look: stderr, as
//! text (coloured only when stderr is a terminal, so log files and journald
//! get no ANSI escape codes) or as JSON lines for log shippers
//! (`log_format = "json"` / `GOSSAMER_LOG_FORMAT=json`).

use std::io::IsTerminal;

use serde::Deserialize;
use tracing_subscriber::EnvFilter;

/// How log lines are written (`log_format` in the agent file,
/// `GOSSAMER_LOG_FORMAT`): `text` (the default, for people) or `json` (one
/// object per line, for Loki, Elasticsearch and the like).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines; ANSI colours only on a terminal.
    #[default]
    Text,
    /// One JSON object per line: `timestamp`, `level`, `target`, `fields`
    /// (with `message`), and the current span.
    Json,
}

impl std::str::FromStr for LogFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "text" => Ok(Self::Text),
            "json" => Ok(Self::Json),
            other => Err(format!("unknown log format {other:?}: expected \"text\" or \"json\"")),
        }
    }
}

/// Whether text logs get ANSI colours: only when stderr is a terminal and
/// `NO_COLOR` (<https://no-color.org>) is unset or empty.
fn colour() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Installs the process's log subscriber: `filter` decides what is logged,
/// `format` how, always to stderr.
pub fn init(filter: EnvFilter, format: LogFormat) {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    // `gossamer monitor` also gets the lines the filter lets through (crate::monitor).
    match format {
        LogFormat::Text => builder.with_ansi(colour()).finish().with(crate::monitor::LogLayer).init(),
        LogFormat::Json => builder
            .json()
            .with_ansi(false)
            .with_current_span(true)
            .with_span_list(false)
            .finish()
            .with(crate::monitor::LogLayer)
            .init(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_parse_from_the_environment_and_the_file() {
        assert_eq!("json".parse::<LogFormat>(), Ok(LogFormat::Json));
        assert_eq!(" Text ".parse::<LogFormat>(), Ok(LogFormat::Text));
        assert!("logfmt".parse::<LogFormat>().unwrap_err().contains("\"text\" or \"json\""));
        #[derive(Deserialize)]
        struct File {
            log_format: LogFormat,
        }
        let file: File = toml::from_str("log_format = \"json\"").unwrap();
        assert_eq!(file.log_format, LogFormat::Json);
        assert!(toml::from_str::<File>("log_format = \"xml\"").is_err());
    }
}
