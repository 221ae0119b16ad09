//! `PipelineConfig`: every SPEC key and the seeds' run-control keys as keyword arguments,
//! validated in Rust (a bad one raises `melkit.ConfigError` naming it), plus the seeds'
//! `use_gpu`; `to_dict`/`from_dict`, pickling and `output_shape`.

use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyString, PyTuple};

use melkit::{BackendKind, Config, SegmentPlan};

use crate::errors;

/// The configuration of a pipeline (see the module documentation).
#[pyclass(module = "melkit", from_py_object)]
#[derive(Clone)]
pub struct PipelineConfig {
    /// The validated configuration.
    pub config: Config,
    /// `use_gpu` as given: `None` (auto, quietly), `True` (auto, with a warning when there is
    /// no GPU) or `False` (the CPU backend).
    pub use_gpu: Option<bool>,
}

/// A keyword argument's value as `Config::set` reads it.
fn text(value: &Bound<'_, PyAny>) -> PyResult<String> {
    if value.is_none() {
        return Ok("none".into());
    }
    if value.is_instance_of::<PyBool>() {
        return Ok(if value.extract::<bool>()? { "true" } else { "false" }.into());
    }
    if value.is_instance_of::<PyInt>() || value.is_instance_of::<PyFloat>() {
        return Ok(value.str()?.to_string());
    }
    if value.is_instance_of::<PyString>() {
        return value.extract();
    }
    Ok(value.str()?.to_string())
}

impl PipelineConfig {
    /// The backend this configuration asks for.
    pub fn backend(&self) -> BackendKind {
        match self.use_gpu {
            Some(false) => BackendKind::Cpu,
            _ => BackendKind::Auto,
        }
    }

    fn build(py: Python<'_>, kwargs: Option<&Bound<'_, PyDict>>) -> PyResult<Self> {
        let mut config = Config::default();
        let mut use_gpu = None;
        for (key, value) in kwargs.into_iter().flat_map(|d| d.iter()) {
            let key: String = key.extract()?;
            if key == "use_gpu" {
                use_gpu = if value.is_none() { None } else { Some(value.extract::<bool>()?) };
                continue;
            }
            config.set(&key, &text(&value)?).map_err(|e| errors::config(py, &e))?;
        }
        config.validate().map_err(|e| errors::config(py, &e))?;
        Ok(PipelineConfig { config, use_gpu })
    }
}

#[pymethods]
impl PipelineConfig {
    /// A configuration: the defaults, with the keys given changed.
    #[new]
    #[pyo3(signature = (**kwargs))]
    fn new(py: Python<'_>, kwargs: Option<&Bound<'_, PyDict>>) -> PyResult<Self> {
        Self::build(py, kwargs)
    }

    /// Every key and its value (`use_gpu` included), as `PipelineConfig(**d)` takes them.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let json = py.import("json")?;
        let dict = json.call_method1("loads", (self.config.to_json().to_string(),))?;
        let dict = dict.cast_into::<PyDict>()?;
        dict.set_item("use_gpu", self.use_gpu)?;
        Ok(dict)
    }

    /// The configuration `d` describes (as `to_dict` gives it).
    #[staticmethod]
    fn from_dict(py: Python<'_>, d: &Bound<'_, PyDict>) -> PyResult<Self> {
        Self::build(py, Some(d))
    }

    /// The value of one key.
    fn __getattr__(&self, py: Python<'_>, name: &str) -> PyResult<Py<PyAny>> {
        if name == "use_gpu" {
            return Ok(self.use_gpu.into_pyobject(py)?.into_any().unbind());
        }
        let dict = self.to_dict(py)?;
        match dict.get_item(name)? {
            Some(value) => Ok(value.unbind()),
            None => Err(pyo3::exceptions::PyAttributeError::new_err(format!(
                "PipelineConfig has no key `{name}`"
            ))),
        }
    }

    /// Pickles as its dictionary.
    fn __reduce__<'py>(
        slf: &Bound<'py, Self>,
    ) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyTuple>)> {
        let py = slf.py();
        let from_dict = slf.get_type().getattr("from_dict")?;
        let dict = slf.borrow().to_dict(py)?;
        Ok((from_dict, PyTuple::new(py, [dict])?))
    }

    fn __eq__(&self, other: &Self) -> bool {
        self.config.to_json() == other.config.to_json() && self.use_gpu == other.use_gpu
    }

    fn __repr__(&self) -> String {
        format!("PipelineConfig({})", self.config.to_json())
    }

    /// The tensor's shape for a signal of `seconds` (`sample_length` when not given; with
    /// `sample_length` set, every file has that shape).
    #[pyo3(signature = (seconds=None))]
    fn output_shape(
        &self,
        py: Python<'_>,
        seconds: Option<f64>,
    ) -> PyResult<(usize, usize, usize, usize)> {
        let plan = SegmentPlan::new(&self.config).map_err(|e| errors::config(py, &e))?;
        let rate = f64::from(self.config.sample_rate);
        let samples = match (seconds, self.config.sample_length) {
            (Some(s), _) => (s.max(0.0) * rate).round() as usize,
            (None, Some(length)) => (length * rate).round() as usize,
            (None, None) => {
                return Err(pyo3::exceptions::PyValueError::new_err(
                    "sample_length is full: give the signal's length in seconds",
                ));
            }
        };
        let [a, b, c, d] = plan.shape(plan.n_long(plan.fixed_length(samples)));
        Ok((a, b, c, d))
    }
}
