//! Everything that can stop a simulation from starting or its outputs from
//! being written. A running simulation itself never fails: faults are data.

use std::path::PathBuf;

/// Why a scenario could not be loaded, built or reported.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The scenario file is not valid TOML or does not match the schema.
    #[error("scenario is not valid: {0}")]
    Parse(#[from] toml::de::Error),
    /// The scenario parsed but a value makes no sense.
    #[error("scenario is invalid: {0}")]
    Invalid(String),
    /// The protocol configuration was refused by gossamer-core.
    #[error("protocol config refused: {0}")]
    Config(#[from] gossamer_core::ConfigError),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The JSON report could not be serialised.
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
}

impl SimError {
    pub(crate) fn invalid(msg: impl Into<String>) -> Self {
        SimError::Invalid(msg.into())
    }
}
