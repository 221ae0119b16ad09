//! The errors of the core crate: configuration and backend failures.

/// A configuration that cannot be used, naming the key at fault.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum ConfigError {
    /// A key that does not exist.
    #[error("unknown configuration key `{key}`{}", suggestion.map(|s| format!(" (did you mean `{s}`?)")).unwrap_or_default())]
    UnknownKey {
        /// The key as given.
        key: String,
        /// The known key it most resembles.
        suggestion: Option<&'static str>,
    },
    /// A value that does not parse for its key, or is out of range.
    #[error("`{key}` = {value} is invalid: must be {allowed}")]
    Invalid {
        /// The key.
        key: &'static str,
        /// The value as given.
        value: String,
        /// What the key accepts.
        allowed: String,
    },
    /// A configuration document that does not parse.
    #[error("{format} syntax error: {reason}")]
    Syntax {
        /// "TOML" or "JSON".
        format: &'static str,
        /// The parser's message.
        reason: String,
    },
}

impl ConfigError {
    /// An unknown key, with the closest known key as a suggestion.
    pub fn unknown(key: &str) -> Self {
        ConfigError::UnknownKey {
            key: key.to_string(),
            suggestion: crate::config::suggest_key(key),
        }
    }

    /// A bad value for a key.
    pub fn invalid(key: &'static str, value: String, allowed: String) -> Self {
        ConfigError::Invalid { key, value, allowed }
    }

    /// The key this error is about, if it is about one.
    pub fn key(&self) -> Option<&str> {
        match self {
            ConfigError::UnknownKey { key, .. } => Some(key),
            ConfigError::Invalid { key, .. } => Some(key),
            ConfigError::Syntax { .. } => None,
        }
    }
}

/// A backend that cannot start or cannot compute a batch.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// The backend is not usable on this machine (no device, no driver, not compiled in).
    #[error("backend {backend} is unavailable: {reason}")]
    Unavailable {
        /// The backend's name.
        backend: &'static str,
        /// Why.
        reason: String,
    },
    /// The backend cannot take this configuration on this device (an `n_fft` beyond its
    /// workgroup or shared memory, say): the work goes to the CPU backend instead (SPEC §4).
    #[error("backend {backend} cannot take this configuration: {reason}")]
    Unsupported {
        /// The backend's name.
        backend: &'static str,
        /// Why.
        reason: String,
    },
    /// The configuration cannot run on this backend.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The output buffer does not match the batch.
    #[error("output buffer holds {got} values but the batch needs {expected}")]
    OutputSize {
        /// What the batch needs.
        expected: usize,
        /// What was given.
        got: usize,
    },
    /// A failure inside the backend (a device error, for example).
    #[error("backend {backend} failed: {reason}")]
    Failed {
        /// The backend's name.
        backend: &'static str,
        /// What went wrong.
        reason: String,
    },
}
