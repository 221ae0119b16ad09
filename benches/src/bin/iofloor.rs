//! The I/O floor of `cargo xtask bench`: `melkit run`'s pipeline with the computation taken
//! out. Every input is decoded, resampled and segmented as in a real run, and its output (same
//! layout, same byte count, through the same writers, atomic as ever) is written full of zeros
//! by a backend that computes nothing; so a real run's files/s against this one's says how
//! close melkit comes to what the machine's decoding and filesystem allow.
//!
//! ```text
//! iofloor INPUT OUT FORMAT REPORT [WORKERS]    FORMAT: npy, h5, npz or stacked-h5
//! ```
//! Writes the run's report to REPORT (the same JSON as `melkit run --report`).

use std::path::PathBuf;

use melkit::{
    Backend, BackendError, Config, OutputFormat, OutputOptions, Pipeline, SegmentPlan, SignalBatch,
    StepTimings,
};

/// A backend that writes zeros: the computation taken out of a run.
struct Zeros(SegmentPlan);

impl Backend for Zeros {
    fn name(&self) -> &'static str {
        "io-floor"
    }

    fn plan(&self) -> &SegmentPlan {
        &self.0
    }

    fn compute(&mut self, _: &SignalBatch, out: &mut [f32]) -> Result<StepTimings, BackendError> {
        out.fill(0.0);
        Ok(StepTimings::default())
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (input, out, format, report_path, workers) = match args.as_slice() {
        [input, out, format, report] => (input, out, format, report, None),
        [input, out, format, report, workers] => (input, out, format, report, Some(workers)),
        _ => {
            eprintln!("usage: iofloor INPUT OUT npy|h5|npz|stacked-h5 REPORT [WORKERS]");
            std::process::exit(2);
        }
    };
    let mut config = Config::default();
    if let Some(workers) = workers {
        config.set("max_workers", workers)?;
    }
    let backend = Box::new(Zeros(SegmentPlan::new(&config)?));
    let mut pipeline = Pipeline::with_backend(config, backend)?;
    let (out, inputs) = (PathBuf::from(out), [PathBuf::from(input)]);
    let report = if format == "stacked-h5" {
        let source = melkit::discover::Inputs::new(&inputs);
        let whole = melkit::shard::Shard { index: 0, count: 1 };
        pipeline.process_stacked(&source, whole, &out, &OutputOptions::default(), &())?
    } else {
        let format = OutputFormat::parse(format).ok_or_else(|| format!("format {format}?"))?;
        let options = OutputOptions { format, ..OutputOptions::default() };
        pipeline.process_paths(&inputs, &out, &options)?
    };
    std::fs::write(report_path, report.to_json().to_string())?;
    Ok(())
}
