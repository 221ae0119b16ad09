//! `Streamer`: a signal pushed in pieces, each call returning the long segments it completes
//! as a numpy array `[k, short_segment, mel_bin, time_frame]` (k may be 0); concatenated, they
//! equal `process_array` of the whole signal.

use std::sync::Mutex;

use numpy::PyArray4;
use pyo3::prelude::*;

use crate::errors;
use crate::pipeline::{AudioPipeline, array, signal_of};

/// A stream into a pipeline (see the module documentation).
#[pyclass(module = "melkit")]
pub struct Streamer {
    pipeline: Py<AudioPipeline>,
    state: Mutex<melkit::Streamer>,
}

impl Streamer {
    /// A stream of samples at `sample_rate` Hz into `pipeline`.
    pub fn open(py: Python<'_>, pipeline: Py<AudioPipeline>, sample_rate: u32) -> PyResult<Self> {
        let state =
            pipeline.bind(py).borrow().with(py, |p| melkit::Streamer::new(p, sample_rate))?;
        Ok(Streamer { pipeline, state: Mutex::new(state) })
    }
}

#[pymethods]
impl Streamer {
    /// Feeds `samples` (1-D float32); returns the long segments they complete.
    fn push<'py>(
        &self,
        py: Python<'py>,
        samples: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyArray4<f32>>> {
        let signal = signal_of(samples)?;
        let signal =
            signal.as_slice().map_err(|e| pyo3::exceptions::PyTypeError::new_err(e.to_string()))?;
        let mut state = self.state.lock().map_err(|_| errors::internal("stream lock"))?;
        let pipeline = self.pipeline.bind(py).borrow();
        let state: &mut melkit::Streamer = &mut state;
        let tensor = pipeline.with(py, |p| state.push(p, signal))?;
        array(py, tensor)
    }

    /// Ends the stream: the long segments left, the last one zero-padded.
    fn finish<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray4<f32>>> {
        let mut state = self.state.lock().map_err(|_| errors::internal("stream lock"))?;
        let pipeline = self.pipeline.bind(py).borrow();
        let state: &mut melkit::Streamer = &mut state;
        let tensor = pipeline.with(py, |p| state.finish(p))?;
        array(py, tensor)
    }
}
