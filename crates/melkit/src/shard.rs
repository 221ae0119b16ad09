//! Sharding a corpus over the tasks of a cluster job: which shard this process is (`--shard
//! K/N`, a Slurm array or a Kubernetes Indexed Job), and which inputs belong to it, balanced by
//! work and the same whatever order the files were listed in.

use std::fmt;
use std::path::Path;

use crate::discover::{InputSource, Listed};

/// Why the shard of this process cannot be told: a malformed `--shard` or scheduler variable.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ShardError(pub String);

impl From<String> for ShardError {
    fn from(message: String) -> Self {
        ShardError(message)
    }
}

impl From<&str> for ShardError {
    fn from(message: &str) -> Self {
        ShardError(message.to_string())
    }
}

impl PartialEq<&str> for ShardError {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

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
    pub fn parse(text: &str) -> Result<Self, ShardError> {
        let bad =
            || ShardError(format!("--shard {text}: expected K/N with 1 <= K <= N, such as 2/8"));
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
) -> Result<Option<(Shard, ShardSource)>, ShardError> {
    if let Some(text) = flag {
        return Ok(Some((Shard::parse(text)?, ShardSource::Flag)));
    }
    let number = |name: &str| -> Result<Option<usize>, ShardError> {
        match env(name) {
            None => Ok(None),
            Some(v) => v
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| ShardError(format!("{name}={v} is not a non-negative integer"))),
        }
    };
    if let Some(id) = number("SLURM_ARRAY_TASK_ID")? {
        let count = number("SLURM_ARRAY_TASK_COUNT")?.ok_or(
            "SLURM_ARRAY_TASK_ID is set but SLURM_ARRAY_TASK_COUNT is not (Slurm sets both for \
             an array job)",
        )?;
        let min = number("SLURM_ARRAY_TASK_MIN")?.unwrap_or(0);
        let index = id.checked_sub(min).filter(|&i| i < count).ok_or_else(|| {
            ShardError(format!(
                "SLURM_ARRAY_TASK_ID={id} is outside the array ({count} tasks from {min}): use \
                 a contiguous --array such as 0-{}",
                count.saturating_sub(1)
            ))
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
            return Err(ShardError(format!(
                "JOB_COMPLETION_INDEX={index} is not below the {count} shards"
            )));
        }
        return Ok(Some((Shard { index, count }, ShardSource::Kubernetes)));
    }
    Ok(None)
}

/// The shard (0-based, of `count`) of the input whose path relative to its input root is `rel`:
/// a stable hash of that path without its extension (the output's own name, so that an output
/// or its temporary file tells its shard too). Every task computes it from the folder listing
/// alone, without opening any file or talking to the others; over a large corpus the shards
/// get nearly equal numbers of files.
pub fn shard_of(rel: &Path, count: usize) -> usize {
    let key = rel.with_extension("");
    let key = key.to_string_lossy();
    (crate::keys::key64(key.as_bytes()) % count.max(1) as u64) as usize
}

/// The inputs of one shard of a source: its files (each keeping its position in the whole
/// list), and the failures of the search for the first shard alone. No file is opened to
/// choose: each input's header is read by exactly one task.
pub struct Sharded<'a> {
    /// Every input of the run.
    pub source: &'a dyn InputSource,
    /// This shard.
    pub shard: Shard,
}

impl InputSource for Sharded<'_> {
    fn list(&self) -> Box<dyn Iterator<Item = Listed> + '_> {
        let shard = self.shard;
        Box::new(self.source.list().filter(move |listed| match &listed.result {
            Ok(file) => shard_of(&file.rel, shard.count) == shard.index,
            Err(_) => shard.index == 0,
        }))
    }
}

/// Whether the output (or temporary) at `output` in `out_dir` belongs to `shard`.
pub fn owns_output(shard: Shard, out_dir: &Path, output: &Path) -> bool {
    output.strip_prefix(out_dir).is_ok_and(|rel| shard_of(rel, shard.count) == shard.index)
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    #[test]
    fn shards_are_stable_and_nearly_equal_over_many_files() {
        let mut counts = [0usize; 8];
        for i in 0..80_000 {
            let rel = PathBuf::from(format!("d{:03}/clip_{i:06}.wav", i / 1000));
            let shard = shard_of(&rel, 8);
            // The output's name tells the same shard as the input's.
            assert_eq!(shard_of(&rel.with_extension("npy"), 8), shard);
            counts[shard] += 1;
        }
        for c in counts {
            assert!((9_500..=10_500).contains(&c), "{counts:?}");
        }
        assert_eq!(shard_of(Path::new("a/b.wav"), 1), 0);
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
        assert!(detect(None, None, &k8s).unwrap_err().0.contains("give --shards N"));
        assert_eq!(
            detect(None, Some(3), &k8s).unwrap_err(),
            "JOB_COMPLETION_INDEX=3 is not below the 3 shards"
        );
    }
}
