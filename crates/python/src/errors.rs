//! melkit's errors as the Python exceptions of `melkit.errors`: `ConfigError` (also a
//! `ValueError`) naming the key, `AudioError` naming the file and the reason,
//! `BackendUnavailableError`, `MelkitError` for the rest, and `FileNotFoundError` for a missing
//! input.

use pyo3::exceptions::{PyFileNotFoundError, PyRuntimeError};
use pyo3::prelude::*;

/// The exception class `name` of `melkit.errors`, raised with `args`.
fn raise(py: Python<'_>, name: &str, args: String) -> PyErr {
    let class = py.import("melkit.errors").and_then(|m| m.getattr(name));
    match class.and_then(|c| c.call1((args,))) {
        Ok(instance) => PyErr::from_value(instance),
        Err(e) => e,
    }
}

/// A configuration error: `ConfigError(message, key)`.
pub fn config(py: Python<'_>, e: &melkit::ConfigError) -> PyErr {
    let key = e.key().map(str::to_string);
    match py.import("melkit.errors").and_then(|m| m.getattr("ConfigError")) {
        Ok(class) => match class.call1((e.to_string(), key)) {
            Ok(instance) => PyErr::from_value(instance),
            Err(err) => err,
        },
        Err(err) => err,
    }
}

/// Any melkit error, as the exception a Python user expects.
pub fn error(py: Python<'_>, e: melkit::Error) -> PyErr {
    match e {
        melkit::Error::Config(c) | melkit::Error::Backend(melkit::BackendError::Config(c)) => {
            config(py, &c)
        }
        melkit::Error::Backend(b @ melkit::BackendError::Unavailable { .. }) => {
            raise(py, "BackendUnavailableError", b.to_string())
        }
        melkit::Error::File(f) => file(py, &f),
        other => raise(py, "MelkitError", other.to_string()),
    }
}

/// A file's error: `FileNotFoundError` for a missing one, else `AudioError(path, reason)`.
pub fn file(py: Python<'_>, f: &melkit::FileError) -> PyErr {
    if !f.path.exists() {
        return PyFileNotFoundError::new_err((2, "No such file or directory", f.path.clone()));
    }
    let class = py.import("melkit.errors").and_then(|m| m.getattr("AudioError"));
    match class.and_then(|c| c.call1((f.path.clone(), f.to_string()))) {
        Ok(instance) => PyErr::from_value(instance),
        Err(e) => e,
    }
}

/// A bad argument: `ValueError`.
pub fn value(_py: Python<'_>, message: &str) -> PyErr {
    pyo3::exceptions::PyValueError::new_err(message.to_string())
}

/// An internal failure that should not happen (a poisoned lock).
pub fn internal(what: &str) -> PyErr {
    PyRuntimeError::new_err(format!("melkit internal error: {what}"))
}
