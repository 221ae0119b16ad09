//! A run's stages on the lanes they share, the bottleneck, and the what-if of each stage: the
//! wall time the run would take if that stage cost nothing.
//!
//! The pipeline overlaps its stages, so a stage's cost is not its share of the wall time. Each
//! stage runs on a lane: the worker pool (W threads: decode, resample, segment, scale, the CPU
//! backend, writing NPY/NPZ), the backend's call (one at a time), and HDF5's writer thread. A
//! lane needs its busy time divided by its width; the run cannot be shorter than its busiest
//! lane (the critical path of the overlapped stages). The what-if of a stage takes it off its
//! lanes: the run keeps the time its lanes do not explain (start-up, waiting on one long
//! file) and loses what its busiest lane shrank by.

use std::time::Duration;

use melkit::{RunReport, Stage};
use serde::{Deserialize, Serialize};

/// Where a stage runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Lane {
    /// The worker pool.
    Pool,
    /// The backend's calls, one at a time (and, for a CPU backend, the pool as well).
    Backend,
    /// The HDF5 writer thread.
    Writer,
}

/// One stage of a profiled run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StageRow {
    /// The stage's name (`compute/…` for the backend's own steps).
    pub name: String,
    /// Thread-seconds spent in it.
    pub thread_seconds: f64,
    /// Its share of all the stages' thread-seconds.
    pub share: f64,
    /// The lane it runs on.
    pub lane: Lane,
    /// Seconds of wall time it occupies its lane for (thread-seconds over the lane's width).
    pub lane_seconds: f64,
    /// Short segments per second this stage alone could sustain.
    pub segments_per_second: f64,
    /// The run's predicted wall time without this stage (none for a backend step).
    pub what_if_seconds: Option<f64>,
}

/// The stages of a run, its bottleneck and what removing each stage would gain.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Analysis {
    /// Wall time of the run.
    pub wall_seconds: f64,
    /// Worker threads.
    pub workers: usize,
    /// The stages, in pipeline order, each followed by the backend steps after `compute`.
    pub stages: Vec<StageRow>,
    /// The stage whose removal would gain the most, if it gains at least 5 %.
    pub bottleneck: Option<String>,
    /// The busiest lane's predicted time over the wall time: near 1 when the lanes explain the
    /// run, lower when it waited on something else (one long file, start-up).
    pub explained: f64,
}

/// A stage's thread-seconds and lanes, from a report.
struct Load {
    stage: Stage,
    thread: f64,
    /// Seconds on the pool (thread-seconds over W).
    pool: f64,
    /// Seconds on a serial lane of its own.
    serial: f64,
    lane: Lane,
}

fn loads(report: &RunReport) -> Vec<Load> {
    let w = report.workers.max(1) as f64;
    Stage::ALL
        .iter()
        .map(|&stage| {
            let thread = report.stages.get(stage).as_secs_f64();
            let (pool, serial, lane) = match stage {
                Stage::Compute => {
                    let wall = report.compute_wall.as_secs_f64();
                    // A device backend holds one worker while it waits for the device; a CPU
                    // backend spreads its thread-time over the pool.
                    let pool = if report.on_device { wall / w } else { thread / w };
                    (pool, wall, Lane::Backend)
                }
                Stage::Write if report.dedicated_writer => (0.0, thread, Lane::Writer),
                _ => (thread / w, 0.0, Lane::Pool),
            };
            Load { stage, thread, pool, serial, lane }
        })
        .collect()
}

/// The busiest lane's time without the stages in `without`.
fn bound(loads: &[Load], without: Option<Stage>) -> f64 {
    let kept = || loads.iter().filter(|l| Some(l.stage) != without);
    let pool: f64 = kept().map(|l| l.pool).sum();
    let backend = kept().filter(|l| l.lane == Lane::Backend).map(|l| l.serial).sum::<f64>();
    let writer = kept().filter(|l| l.lane == Lane::Writer).map(|l| l.serial).sum::<f64>();
    pool.max(backend).max(writer)
}

/// The wall time of a run that took `wall` with its busiest lane at `all`, once that lane is
/// down to `without`: the unexplained time stays; lanes busier than the wall (thread-time
/// counted generously) are scaled down to it.
fn what_if(wall: f64, all: f64, without: f64) -> f64 {
    if all <= 0.0 {
        wall
    } else if all >= wall {
        wall * without / all
    } else {
        wall - all + without
    }
}

/// Analyses a run's report.
pub fn analyse(report: &RunReport) -> Analysis {
    let loads = loads(report);
    let wall = report.total_time.as_secs_f64();
    let all = bound(&loads, None);
    let total_thread: f64 = loads.iter().map(|l| l.thread).sum();
    let segments = report.segments as f64;
    let rate = |seconds: f64| if seconds > 0.0 { segments / seconds } else { f64::INFINITY };
    let share = |t: f64| if total_thread > 0.0 { t / total_thread } else { 0.0 };
    let mut stages = Vec::new();
    let mut best: Option<(f64, &'static str)> = None;
    for load in &loads {
        let what_if = what_if(wall, all, bound(&loads, Some(load.stage)));
        let lane_seconds = load.pool.max(load.serial);
        if load.thread > 0.0 && best.is_none_or(|(t, _)| what_if < t) {
            best = Some((what_if, load.stage.name()));
        }
        stages.push(StageRow {
            name: load.stage.name().into(),
            thread_seconds: load.thread,
            share: share(load.thread),
            lane: load.lane,
            lane_seconds,
            segments_per_second: rate(lane_seconds),
            what_if_seconds: Some(what_if),
        });
        if load.stage == Stage::Compute {
            stages.extend(steps(report, load, &share, &rate));
        }
    }
    let bottleneck = best.filter(|(t, _)| *t <= 0.95 * wall).map(|(_, name)| name.to_string());
    let explained = if wall > 0.0 { (all / wall).min(1.0) } else { 0.0 };
    Analysis { wall_seconds: wall, workers: report.workers, stages, bottleneck, explained }
}

/// The backend's own steps, as rows under `compute`, sharing its lane time by thread-time.
fn steps(
    report: &RunReport,
    compute: &Load,
    share: &dyn Fn(f64) -> f64,
    rate: &dyn Fn(f64) -> f64,
) -> Vec<StageRow> {
    let total = report.backend_steps.total().as_secs_f64();
    report
        .backend_steps
        .steps()
        .iter()
        .map(|(name, d): &(&str, Duration)| {
            let thread = d.as_secs_f64();
            let part = if total > 0.0 { thread / total } else { 0.0 };
            let lane_seconds = compute.pool.max(compute.serial) * part;
            StageRow {
                name: format!("compute/{name}"),
                thread_seconds: thread,
                share: share(thread),
                lane: Lane::Backend,
                lane_seconds,
                segments_per_second: rate(lane_seconds),
                what_if_seconds: None,
            }
        })
        .collect()
}

impl Analysis {
    /// The row of a stage.
    pub fn stage(&self, name: &str) -> Option<&StageRow> {
        self.stages.iter().find(|r| r.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(stages: &[(Stage, f64)], compute_wall: f64, wall: f64, workers: usize) -> RunReport {
        let mut r = RunReport { workers, segments: 100, ..RunReport::default() };
        for (s, t) in stages {
            r.stages.add(*s, Duration::from_secs_f64(*t));
        }
        r.compute_wall = Duration::from_secs_f64(compute_wall);
        r.total_time = Duration::from_secs_f64(wall);
        r
    }

    #[test]
    fn a_serial_backend_is_the_bottleneck_and_its_what_if_leaves_the_pool() {
        // The pool needs (2 + 0.4) / 2 = 1.2 s, the backend lane 4 s: the run takes 4 s.
        let r = report(&[(Stage::Decode, 2.0), (Stage::Compute, 0.4)], 4.0, 4.0, 2);
        let a = analyse(&r);
        assert_eq!(a.bottleneck.as_deref(), Some("compute"));
        let compute = a.stage("compute").unwrap().what_if_seconds.unwrap();
        assert!((compute - 1.0).abs() < 1e-9, "{compute}");
        assert_eq!(a.stage("decode").unwrap().what_if_seconds, Some(4.0));
        assert_eq!(a.explained, 1.0);
    }

    #[test]
    fn pool_stages_add_up_over_the_workers() {
        let r = report(&[(Stage::Decode, 3.0), (Stage::Resample, 1.0)], 0.0, 2.0, 2);
        let a = analyse(&r);
        assert_eq!(a.bottleneck.as_deref(), Some("decode"));
        assert!((a.stage("decode").unwrap().what_if_seconds.unwrap() - 0.5).abs() < 1e-9);
        assert!((a.stage("resample").unwrap().what_if_seconds.unwrap() - 1.5).abs() < 1e-9);
        assert!((a.stage("decode").unwrap().share - 0.75).abs() < 1e-9);
        assert_eq!(a.stage("decode").unwrap().segments_per_second, 100.0 / 1.5);
    }

    #[test]
    fn a_run_its_stages_do_not_explain_has_no_bottleneck() {
        // 0.03 s of pool work in a 3 s run: whatever waited, no stage made it wait.
        let stages: Vec<_> = Stage::ALL.iter().map(|s| (*s, 0.01)).collect();
        let a = analyse(&report(&stages, 0.01, 3.0, 2));
        assert_eq!(a.bottleneck, None);
        assert!((a.stage("decode").unwrap().what_if_seconds.unwrap() - 2.995).abs() < 1e-9);
        assert!((a.explained - 0.01).abs() < 1e-9);
    }
}
