//! melkit's Python module `melkit._melkit`: the configuration and the pipeline as Python
//! classes, tensors handed to numpy without a copy, the GIL released while melkit works. The
//! Python package around it (`python/melkit`) adds the seeds' `AudioPipeline.save_results`,
//! the exception classes and `melkit.torch`.

mod config;
mod errors;
mod pipeline;
mod stream;

use pyo3::prelude::*;

/// The module.
#[pymodule]
fn _melkit(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", melkit::VERSION)?;
    m.add_class::<config::PipelineConfig>()?;
    m.add_class::<pipeline::AudioPipeline>()?;
    m.add_class::<stream::Streamer>()?;
    m.add_function(wrap_pyfunction!(pipeline::write_tensor, m)?)?;
    Ok(())
}
