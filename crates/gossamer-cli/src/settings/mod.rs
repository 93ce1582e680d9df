//! The agent's configuration file (TOML) and its environment overrides.
//!
//! Every key can be overridden by a `GOSSAMER_*` variable. Overrides are
//! applied by [`apply_env`] from a map, so tests never touch the process
//! environment. Every value is checked when the agent starts, and the error
//! names the key (or the variable it came from).
//!
//! Split by job: [`schema`] is the file's shape (serde), [`env`] the
//! `GOSSAMER_*` overrides, [`resolve`] the checks that turn the file into a
//! `NodeConfig`, [`secrets`] the cluster secret's generation.

use std::path::{Path, PathBuf};

pub mod env;
pub mod resolve;
pub mod schema;
pub mod secrets;

#[cfg(test)]
pub(crate) use env::ENV_VARS;
pub use env::{apply_env, env_vars, explain};
pub use resolve::Resolved;
pub use schema::AgentSettings;
pub use secrets::new_secret_hex;

/// A configuration value that was refused.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file is not valid TOML or has unknown keys.
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What the parser said (names the key).
        message: String,
    },
    /// A discovery setting was refused (the message names the key or variable).
    #[error("invalid discovery setting: {0}")]
    Discovery(String),
    /// A value was refused; `key` is the TOML key or the variable.
    #[error("invalid `{key}`: {reason}")]
    Invalid {
        /// TOML key or environment variable.
        key: String,
        /// Why.
        reason: String,
    },
}

pub(crate) fn invalid(key: impl Into<String>, reason: impl ToString) -> SettingsError {
    SettingsError::Invalid { key: key.into(), reason: reason.to_string() }
}

/// The control file of the agent named `name` in `data_dir`.
pub fn control_file(data_dir: &Path, name: &str) -> PathBuf {
    let safe: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect();
    data_dir.join(format!("{safe}.control"))
}

#[cfg(test)]
mod tests;
