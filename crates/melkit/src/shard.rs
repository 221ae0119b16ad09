//! Sharding a corpus over the tasks of a cluster job: which shard this process is (`--shard
//! K/N`, a Slurm array or a Kubernetes Indexed Job), and which inputs belong to it, balanced by
//! work and the same whatever order the files were listed in.

use std::fmt;
use std::path::Path;

use crate::discover::{Discovery, InputFile};
use crate::error::FileError;

/// One shard of `count`: `index` is 0-based.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    /// This shard, from 0.
    pub index: usize,
    /// Shards in all.
    pub count: usize,
}

impl Shard {
    /// Parses `K/N` with `1 <= K <= N` (1-based, as a person counts).
    ///
    /// # Errors
    /// Anything else, with what is expected.
    pub fn parse(text: &str) -> Result<Self, String> {
        let bad = || format!("--shard {text}: expected K/N with 1 <= K <= N, such as 2/8");
        let (k, n) = text.split_once('/').ok_or_else(bad)?;
        let (k, n): (usize, usize) =
            (k.trim().parse().map_err(|_| bad())?, n.trim().parse().map_err(|_| bad())?);
        if k == 0 || k > n {
            return Err(bad());
        }
        Ok(Shard { index: k - 1, count: n })
    }
}

impl Shard {
    /// The manifest of this shard's per-file run (`melkit-manifest.jsonl` for a single shard).
    pub fn manifest_name(&self) -> String {
        if self.count <= 1 {
            crate::manifest::MANIFEST.to_string()
        } else {
            format!("melkit-manifest.shard-{}-of-{}.jsonl", self.index + 1, self.count)
        }
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index + 1, self.count)
    }
}

/// Where the shard came from, for the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ShardSource {
    /// `--shard K/N`.
    Flag,
    /// `SLURM_ARRAY_TASK_ID` (less `SLURM_ARRAY_TASK_MIN`) of `SLURM_ARRAY_TASK_COUNT`.
    Slurm,
    /// `JOB_COMPLETION_INDEX` of `--shards` or `MELKIT_SHARDS`.
    Kubernetes,
}

impl fmt::Display for ShardSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ShardSource::Flag => "--shard",
            ShardSource::Slurm => "the Slurm array (SLURM_ARRAY_TASK_ID, SLURM_ARRAY_TASK_COUNT)",
            ShardSource::Kubernetes => "the Kubernetes Indexed Job (JOB_COMPLETION_INDEX)",
        })
    }
}

/// This process's shard: `--shard` when given, else the scheduler's environment (read through
/// `env`); `None` when there is no sign of one. `shards` is `--shards N`, the count a
/// Kubernetes Indexed Job does not put in the environment (`MELKIT_SHARDS` also gives it).
///
/// # Errors
/// A malformed `--shard` or environment variable, or an index without a count.
pub fn detect(
    flag: Option<&str>,
    shards: Option<usize>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<(Shard, ShardSource)>, String> {
    if let Some(text) = flag {
        return Ok(Some((Shard::parse(text)?, ShardSource::Flag)));
    }
    let number = |name: &str| -> Result<Option<usize>, String> {
        match env(name) {
            None => Ok(None),
            Some(v) => v
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| format!("{name}={v} is not a non-negative integer")),
        }
    };
    if let Some(id) = number("SLURM_ARRAY_TASK_ID")? {
        let count = number("SLURM_ARRAY_TASK_COUNT")?.ok_or(
            "SLURM_ARRAY_TASK_ID is set but SLURM_ARRAY_TASK_COUNT is not (Slurm sets both for \
             an array job)",
        )?;
        let min = number("SLURM_ARRAY_TASK_MIN")?.unwrap_or(0);
        let index = id.checked_sub(min).filter(|&i| i < count).ok_or_else(|| {
            format!(
                "SLURM_ARRAY_TASK_ID={id} is outside the array ({count} tasks from {min}): use \
                 a contiguous --array such as 0-{}",
                count.saturating_sub(1)
            )
        })?;
        return Ok(Some((Shard { index, count }, ShardSource::Slurm)));
    }
    if let Some(index) = number("JOB_COMPLETION_INDEX")? {
        let count = match shards {
            Some(n) => n,
            None => number("MELKIT_SHARDS")?.ok_or(
                "JOB_COMPLETION_INDEX is set but the number of shards is not: give --shards N \
                 (the Job's completions) or MELKIT_SHARDS",
            )?,
        };
        if index >= count {
            return Err(format!("JOB_COMPLETION_INDEX={index} is not below the {count} shards"));
        }
        return Ok(Some((Shard { index, count }, ShardSource::Kubernetes)));
    }
    Ok(None)
}

/// The work of an input: its decoded length in microseconds of audio from the header, else its
/// size in bytes (a file whose header cannot be read still lands in exactly one shard).
pub fn estimate_work(path: &Path) -> u64 {
    match melkit_io::AudioStream::open(path) {
        Ok(s) if s.sample_rate() > 0 => {
            s.frames().saturating_mul(1_000_000) / u64::from(s.sample_rate())
        }
        _ => std::fs::metadata(path).map_or(0, |m| m.len()),
    }
}

/// The shard of every file: the largest first, each to the shard with the least work so far
/// (ties to the lower shard). Files are ordered by their path relative to their input root
/// (then by work), so every process given the same inputs, in any order, agrees.
pub fn assign(files: &[InputFile], work: &[u64], count: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..files.len()).collect();
    order.sort_by(|&a, &b| work[b].cmp(&work[a]).then_with(|| files[a].rel.cmp(&files[b].rel)));
    let mut load = vec![0u64; count.max(1)];
    let mut shard_of = vec![0; files.len()];
    for i in order {
        let (lightest, _) =
            load.iter().enumerate().min_by_key(|(s, l)| (**l, *s)).unwrap_or((0, &0));
        shard_of[i] = lightest;
        load[lightest] += work[i].max(1);
    }
    shard_of
}

/// This shard's part of what the whole run found: its files, each with its position in the
/// whole list, in that order (balanced by [`estimate_work`]; no header is read for a single
/// shard); and the failures of the search, which the first shard alone reports.
pub fn split(found: Discovery, shard: Shard) -> (Vec<(u64, InputFile)>, Vec<FileError>) {
    let shard_of = if shard.count <= 1 {
        vec![0; found.files.len()]
    } else {
        let work: Vec<u64> = found.files.iter().map(|f| estimate_work(&f.path)).collect();
        assign(&found.files, &work, shard.count)
    };
    let files = found
        .files
        .into_iter()
        .enumerate()
        .zip(shard_of)
        .filter(|(_, s)| *s == shard.index)
        .map(|((i, f), _)| (i as u64, f))
        .collect();
    let failures = if shard.index == 0 { found.failures } else { Vec::new() };
    (files, failures)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::path::PathBuf;

    use super::*;

    fn files(n: usize) -> Vec<InputFile> {
        (0..n)
            .map(|i| {
                let rel = PathBuf::from(format!("d{}/f{i:03}.wav", i % 3));
                InputFile { path: PathBuf::from("/in").join(&rel), rel }
            })
            .collect()
    }

    #[test]
    fn every_file_lands_in_one_shard_whatever_the_listing_order() {
        let f = files(50);
        let work: Vec<u64> = (0..50).map(|i| 1 + (i * 37 % 11) as u64 * 1000).collect();
        let a = assign(&f, &work, 4);
        let mut reversed: Vec<(InputFile, u64)> =
            f.iter().cloned().zip(work.iter().copied()).rev().collect();
        reversed.swap(3, 17);
        let (rf, rw): (Vec<_>, Vec<_>) = reversed.into_iter().unzip();
        let b = assign(&rf, &rw, 4);
        let by_path = |fs: &[InputFile], s: &[usize]| -> HashMap<PathBuf, usize> {
            fs.iter().map(|f| f.rel.clone()).zip(s.iter().copied()).collect()
        };
        assert_eq!(by_path(&f, &a), by_path(&rf, &b));
        assert!(a.iter().all(|&s| s < 4));
    }

    #[test]
    fn shards_are_balanced_by_work_not_by_count() {
        // One long file and nine short ones: a count split would put 5 files in each of two
        // shards, one holding the long one.
        let f = files(10);
        let mut work = vec![10u64; 10];
        work[4] = 90;
        let s = assign(&f, &work, 2);
        let load = |k| (0..10).filter(|&i| s[i] == k).map(|i| work[i]).sum::<u64>();
        assert_eq!((load(0), load(1)), (90, 90));
        assert_eq!(s.iter().filter(|&&k| k == s[4]).count(), 1);
    }

    #[test]
    fn the_shard_comes_from_the_flag_or_the_scheduler() {
        let none = |_: &str| None;
        assert_eq!(
            detect(Some("2/8"), None, &none).unwrap(),
            Some((Shard { index: 1, count: 8 }, ShardSource::Flag))
        );
        assert_eq!(
            detect(Some("0/8"), None, &none).unwrap_err(),
            "--shard 0/8: expected K/N with 1 <= K <= N, such as 2/8"
        );
        assert_eq!(detect(None, None, &none).unwrap(), None);
        let slurm = |k: &str| match k {
            "SLURM_ARRAY_TASK_ID" => Some("7".to_string()),
            "SLURM_ARRAY_TASK_COUNT" => Some("4".to_string()),
            "SLURM_ARRAY_TASK_MIN" => Some("5".to_string()),
            _ => None,
        };
        assert_eq!(
            detect(None, None, &slurm).unwrap(),
            Some((Shard { index: 2, count: 4 }, ShardSource::Slurm))
        );
        let k8s = |k: &str| (k == "JOB_COMPLETION_INDEX").then(|| "3".to_string());
        assert_eq!(
            detect(None, Some(5), &k8s).unwrap(),
            Some((Shard { index: 3, count: 5 }, ShardSource::Kubernetes))
        );
        assert!(detect(None, None, &k8s).unwrap_err().contains("give --shards N"));
        assert_eq!(
            detect(None, Some(3), &k8s).unwrap_err(),
            "JOB_COMPLETION_INDEX=3 is not below the 3 shards"
        );
    }
}
