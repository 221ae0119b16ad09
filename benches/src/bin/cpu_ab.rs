//! The CPU backend's lane path against its pair path on the same batch, alternated: six rounds of
//! fifteen batches of 32 default-configuration files each, printing the best wall time of each
//! path and their ratio. The best of many alternated batches is what stays comparable on a
//! shared machine, where a mean moves with the neighbours' load; threads: `RAYON_NUM_THREADS`.
//!
//! ```text
//! cargo run --release -p melkit-benches --bin cpu_ab [lanes|pairs] [db] [files=N] [KEY=VALUE ...]
//! ```
//!
//! With a path named, only that path runs (for a profiler); `db` takes dB output (the FFT in
//! f64) instead of the default power; `files=N` batches N files instead of 32 (a batch whose
//! output fits the caches); `KEY=VALUE` sets a configuration key (`hop_length=24`: a hop that
//! does not divide a quarter of `n_fft`, whose first pass loads its inputs one by one).

use melkit_backend_cpu::{CpuBackend, CpuFft};
use melkit_core::{Backend, Config};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let db = args.iter().any(|a| a == "db");
    let scale = if db { melkit_core::config::Scale::Db } else { Config::default().scale };
    let mut config = Config { scale, ..Config::default() };
    let (keys, args): (Vec<&String>, Vec<&String>) = args.iter().partition(|a| a.contains('='));
    let mut files = 32;
    for pair in keys {
        if let Some(n) = pair.strip_prefix("files=") {
            files = n.parse()?;
            continue;
        }
        let (key, value) = pair.split_once('=').unwrap_or_default();
        config.set(key, value)?;
    }
    let (plan, batch) = melkit_benches::batch(&config, files);
    let mut out = vec![0.0; batch.output_len(&plan)];
    let only = args.into_iter().find(|a| *a != "db");
    let paths: Vec<CpuFft> = match only.map(String::as_str) {
        None => vec![CpuFft::Lanes, CpuFft::Pairs],
        Some("lanes") => vec![CpuFft::Lanes],
        Some("pairs") => vec![CpuFft::Pairs],
        Some(other) => return Err(format!("unknown path {other:?}: lanes or pairs").into()),
    };
    let mut best = [f64::INFINITY; 2];
    for _ in 0..6 {
        for (fft, best) in paths.iter().zip(&mut best) {
            let mut backend = CpuBackend::with_fft(&config, *fft)?;
            for _ in 0..15 {
                let started = std::time::Instant::now();
                backend.compute(&batch, &mut out)?;
                *best = best.min(started.elapsed().as_secs_f64() * 1e3);
            }
        }
    }
    if paths.len() == 1 {
        println!("best wall ms per batch of {files} files: {:?} {:.2}", paths[0], best[0]);
        return Ok(());
    }
    println!(
        "best wall ms per batch of {files} files: lanes {:.2}, pairs {:.2}; lanes are {:.2}x pairs",
        best[0],
        best[1],
        best[1] / best[0]
    );
    Ok(())
}
