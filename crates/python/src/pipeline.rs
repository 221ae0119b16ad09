//! `AudioPipeline`: one melkit pipeline (its own thread pool, rebuilt in a forked child) behind
//! the seeds' calls. Files and arrays come back as the seeds' result dictionaries, their tensor
//! a float32 numpy array that owns melkit's buffer (no copy); whole batches run the batch
//! pipeline. The GIL is released while melkit works.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Instant;

use numpy::ndarray::Array4;
use numpy::{IntoPyArray, PyArray1, PyArrayMethods, PyUntypedArrayMethods};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use melkit::{BackendKind, FileStats, MelTensor, OutputFormat, OutputOptions, Pipeline, Stage};

use crate::config::PipelineConfig;
use crate::errors;

/// The pipeline, and the process it was built in.
struct Owned {
    pid: u32,
    pipeline: Pipeline,
}

/// The seeds' pipeline (see the module documentation).
#[pyclass(module = "melkit", subclass)]
pub struct AudioPipeline {
    config: PipelineConfig,
    kind: BackendKind,
    owned: Mutex<Option<Owned>>,
}

/// The backend a name asks for.
fn kind(py: Python<'_>, name: &str) -> PyResult<BackendKind> {
    BackendKind::parse(name).ok_or_else(|| {
        let names = BackendKind::NAMES.join(", ");
        errors::value(py, &format!("backend `{name}` is unknown: must be one of {names}"))
    })
}

impl AudioPipeline {
    /// Runs `f` on the pipeline, built first (again in a forked child), without the GIL.
    pub(crate) fn with<T: Send>(
        &self,
        py: Python<'_>,
        f: impl FnOnce(&mut Pipeline) -> Result<T, melkit::Error> + Send,
    ) -> PyResult<T> {
        let (config, kind) = (self.config.config.clone(), self.kind);
        let result = py.detach(|| {
            let mut owned = self.owned.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let pid = std::process::id();
            if owned.as_ref().is_none_or(|o| o.pid != pid) {
                // In a forked child the parent's pool threads do not exist: its pipeline is
                // left alone (never dropped, which would wait for them), and a new one built.
                if let Some(parent) = owned.take() {
                    std::mem::forget(parent);
                }
                *owned = Some(Owned { pid, pipeline: Pipeline::new(config, kind)? });
            }
            match owned.as_mut() {
                Some(o) => f(&mut o.pipeline),
                None => unreachable!("the pipeline was just built"),
            }
        });
        result.map_err(|e| errors::error(py, e))
    }
}

/// `samples` as a 1-D float32 array, or a `TypeError` saying what it is instead.
pub fn signal_of<'py>(samples: &Bound<'py, PyAny>) -> PyResult<numpy::PyReadonlyArray1<'py, f32>> {
    let array = samples.cast::<PyArray1<f32>>().map_err(|_| {
        let (dtype, ndim) = match samples.cast::<numpy::PyUntypedArray>() {
            Ok(a) => (a.dtype().str().map(|s| s.to_string()).unwrap_or_default(), a.ndim()),
            Err(_) => (samples.get_type().name().map(|s| s.to_string()).unwrap_or_default(), 0),
        };
        PyTypeError::new_err(format!(
            "samples must be a 1-D numpy array of float32, not {dtype} with {ndim} dimensions"
        ))
    })?;
    Ok(array.readonly())
}

/// A tensor as a float32 numpy array that owns its buffer (no copy).
pub fn array<'py>(
    py: Python<'py>,
    tensor: MelTensor,
) -> PyResult<Bound<'py, numpy::PyArray4<f32>>> {
    let shape = tensor.shape();
    Ok(Array4::from_shape_vec(shape, tensor.into_data())
        .map_err(|e| errors::internal(&e.to_string()))?
        .into_pyarray(py))
}

/// The seeds' result dictionary for one tensor.
fn results<'py>(
    py: Python<'py>,
    audio_id: &str,
    tensor: MelTensor,
    stats: &FileStats,
    seconds: f64,
) -> PyResult<Bound<'py, PyDict>> {
    let shape = tensor.shape();
    let array = array(py, tensor)?;
    let stages = PyDict::new(py);
    for stage in Stage::ALL {
        stages.set_item(stage.name(), stats.times.get(stage).as_secs_f64())?;
    }
    let segments = shape[0] * shape[1];
    let processing = PyDict::new(py);
    processing.set_item("total_time", seconds)?;
    processing
        .set_item("throughput", if seconds > 0.0 { segments as f64 / seconds } else { 0.0 })?;
    processing.set_item("segments", segments)?;
    processing.set_item("audio_seconds", stats.audio_seconds)?;
    processing.set_item("stages", stages)?;
    let out = PyDict::new(py);
    out.set_item("mel_matrix_3d", array)?;
    out.set_item("audio_id", audio_id)?;
    out.set_item("shape", shape.to_vec())?;
    out.set_item("processing_stats", processing)?;
    Ok(out)
}

#[pymethods]
impl AudioPipeline {
    /// A pipeline for `config` on `backend` (`auto`, `cpu`, `wgpu`, `cuda`, `reference`; by
    /// default what `use_gpu` says).
    #[new]
    #[pyo3(signature = (config=None, backend=None))]
    fn new(
        py: Python<'_>,
        config: Option<PipelineConfig>,
        backend: Option<&str>,
    ) -> PyResult<Self> {
        let config = match config {
            Some(c) => c,
            None => PipelineConfig { config: melkit::Config::default(), use_gpu: None },
        };
        let kind = match backend {
            Some(name) => kind(py, name)?,
            None => config.backend(),
        };
        let pipeline = AudioPipeline { config, kind, owned: Mutex::new(None) };
        // Built now, so that an unavailable backend is an error here, not at the first call.
        pipeline.with(py, |_| Ok(()))?;
        if pipeline.config.use_gpu == Some(true) && pipeline.backend_name(py)? == "cpu" {
            let warnings = py.import("warnings")?;
            warnings.call_method1(
                "warn",
                ("use_gpu=True but no GPU backend can start here: computing on the CPU",),
            )?;
        }
        Ok(pipeline)
    }

    /// The configuration.
    #[getter]
    fn config(&self) -> PipelineConfig {
        self.config.clone()
    }

    /// The backend computing (`cpu`, `wgpu`, `cuda`, …).
    #[getter]
    fn backend_name(&self, py: Python<'_>) -> PyResult<&'static str> {
        self.with(py, |p| Ok(p.backend_name()))
    }

    /// Computes the tensor of one audio file (a `str` or `os.PathLike`).
    fn process_audio_file<'py>(
        &self,
        py: Python<'py>,
        path: PathBuf,
    ) -> PyResult<Bound<'py, PyDict>> {
        let started = Instant::now();
        let (tensor, stats) = self.with(py, |p| p.process_file(&path))?;
        let id = path.file_stem().map_or_else(String::new, |s| s.to_string_lossy().into_owned());
        results(py, &id, tensor, &stats, started.elapsed().as_secs_f64())
    }

    /// Computes the tensor of a mono signal: a 1-D float32 array at `sample_rate` Hz.
    #[pyo3(signature = (samples, sample_rate, audio_id="array"))]
    fn process_array<'py>(
        &self,
        py: Python<'py>,
        samples: &Bound<'py, PyAny>,
        sample_rate: u32,
        audio_id: &str,
    ) -> PyResult<Bound<'py, PyDict>> {
        let signal = signal_of(samples)?;
        let signal = signal.as_slice().map_err(|e| PyTypeError::new_err(e.to_string()))?;
        let started = Instant::now();
        let tensor = self.with(py, |p| p.process_signal(signal, sample_rate))?;
        let stats = FileStats {
            audio_seconds: signal.len() as f64 / f64::from(sample_rate.max(1)),
            ..FileStats::default()
        };
        results(py, audio_id, tensor, &stats, started.elapsed().as_secs_f64())
    }

    /// A stream of samples at `sample_rate` Hz: `push(samples)` returns the long segments
    /// they complete, `finish()` the rest.
    fn streamer(slf: Bound<'_, Self>, sample_rate: u32) -> PyResult<crate::stream::Streamer> {
        crate::stream::Streamer::open(slf.py(), slf.unbind(), sample_rate)
    }

    /// Runs the batch pipeline over `paths` (files or folders) into `output_dir` in `format`
    /// (`npy` or `npz`), calling `progress(done, total)` as files finish; returns the run's
    /// report as a dictionary.
    #[pyo3(signature = (paths, output_dir, format="npy", progress=None))]
    fn process_files<'py>(
        &self,
        py: Python<'py>,
        paths: Vec<PathBuf>,
        output_dir: PathBuf,
        format: &str,
        progress: Option<Py<PyAny>>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let format = OutputFormat::parse(format).filter(|f| f.available()).ok_or_else(|| {
            errors::value(py, &format!("format `{format}` is not one of npy, npz"))
        })?;
        let options = OutputOptions { format, ..OutputOptions::default() };
        let callback = Callback { progress, total: Default::default(), done: Default::default() };
        let report =
            self.with(py, |p| p.process_paths_with(&paths, &output_dir, &options, &callback))?;
        let json = py.import("json")?;
        let dict = json.call_method1("loads", (report.to_json().to_string(),))?;
        Ok(dict.cast_into::<PyDict>()?)
    }
}

/// Progress reported to a Python callable, with the GIL taken for each call.
struct Callback {
    progress: Option<Py<PyAny>>,
    total: std::sync::atomic::AtomicUsize,
    done: std::sync::atomic::AtomicUsize,
}

impl melkit::Progress for Callback {
    fn start(&self, files: usize) {
        self.total.store(files, std::sync::atomic::Ordering::SeqCst);
    }

    fn file_done(&self, _outcome: &melkit::FileOutcome) {
        let done = self.done.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        let total = self.total.load(std::sync::atomic::Ordering::SeqCst);
        if let Some(progress) = &self.progress {
            Python::attach(|py| {
                if let Err(e) = progress.call1(py, (done, total)) {
                    e.print(py);
                }
            });
        }
    }
}

/// Writes `array` (4-D float32, C order) to `path` as `npy` or `npz`, with melkit's metadata.
#[pyfunction]
#[pyo3(signature = (path, array, format, source="", config_json="{}", sample_rate=0))]
pub fn write_tensor(
    py: Python<'_>,
    path: PathBuf,
    array: &Bound<'_, PyAny>,
    format: &str,
    source: &str,
    config_json: &str,
    sample_rate: u32,
) -> PyResult<()> {
    let array = array
        .cast::<numpy::PyArray4<f32>>()
        .map_err(|_| PyTypeError::new_err("the tensor must be a 4-D float32 array"))?
        .readonly();
    let shape: [usize; 4] = array.shape().try_into().map_err(|_| errors::internal("shape"))?;
    let data = array.as_slice().map_err(|e| PyTypeError::new_err(e.to_string()))?;
    let format = OutputFormat::parse(format)
        .filter(|f| matches!(f, OutputFormat::Npy | OutputFormat::Npz))
        .ok_or_else(|| errors::value(py, &format!("format `{format}` is not one of npy, npz")))?;
    let tensor = melkit_io::OutputTensor {
        data,
        shape,
        meta: melkit_io::TensorMeta {
            source,
            config_json,
            sample_rate,
            melkit_version: melkit::VERSION,
        },
        compression: melkit::Compression::None,
        dtype: melkit_io::Dtype::F32,
        sync: false,
    };
    py.detach(|| melkit_io::write_tensor(&path, format, &tensor))
        .map_err(|e| errors::error(py, melkit::Error::Output(e)))
}
