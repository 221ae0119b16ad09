//! `cargo xtask loadtest`: `melkit serve` (CPU backend) under the load generator
//! (`melkit-benches`' `loadgen`), the server pinned to core 0 and the generator to core 1 where
//! the machine has two cores and taskset: the compute-only rate of the same backend on the
//! server's core, latency at concurrency 1 (raw f32 and WAV bodies), the throughput over a
//! concurrency sweep, Poisson arrivals at 80 % of the best throughput, a 2× overload followed by
//! a light load (recovery), and the server's peak RSS. Writes `target/bench/loadtest-<rev>.json`
//! and `.md`, and prints the table beside the goals.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use crate::cargo;

/// A command, pinned to `core` when pinning is possible.
fn pinned(core: Option<usize>, program: &Path) -> Command {
    match core {
        Some(core) => {
            let mut c = Command::new("taskset");
            c.arg("-c").arg(core.to_string()).arg(program);
            c
        }
        None => Command::new(program),
    }
}

/// Runs the generator with `args`; its JSON report.
fn loadgen(bin: &Path, core: Option<usize>, args: &[String]) -> Result<Value> {
    eprintln!("$ loadgen {}", args.join(" "));
    let out = pinned(core, bin).args(args).stderr(Stdio::inherit()).output()?;
    if !out.status.success() {
        bail!("loadgen {} failed ({})", args.join(" "), out.status);
    }
    serde_json::from_slice(&out.stdout).context("loadgen's report")
}

/// The server: its process and base URL.
fn serve(melkit: &Path, core: Option<usize>) -> Result<(Child, String)> {
    let mut child = pinned(core, melkit)
        .args(["serve", "--listen", "127.0.0.1:0", "--backend", "cpu", "--grace-s", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("melkit serve")?;
    let mut line = String::new();
    BufReader::new(child.stdout.take().context("stdout")?).read_line(&mut line)?;
    let url = line.trim().strip_prefix("listening on ").context("no listening line")?.to_string();
    Ok((child, format!("{url}/v1/mel")))
}

/// Peak resident memory of `pid`, in MB (Linux: VmHWM).
fn peak_rss_mb(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

fn get(v: &Value, path: &[&str]) -> f64 {
    path.iter().fold(v, |v, k| &v[*k]).as_f64().unwrap_or(f64::NAN)
}

pub fn run(root: &Path, args: &[String]) -> Result<()> {
    let quick = args.iter().any(|a| a == "--quick");
    let secs = |full: f64| if quick { (full / 3.0).max(1.0) } else { full };
    cargo(&["build", "--release", "--quiet", "--package", "melkit-cli"])?;
    cargo(&["build", "--release", "--quiet", "--package", "melkit-benches", "--bin", "loadgen"])?;
    let melkit = root.join("target/release/melkit");
    let bin = root.join("target/release/loadgen");
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let taskset = Command::new("taskset").arg("-V").output().is_ok_and(|o| o.status.success());
    let (server_core, client_core) =
        if cores >= 2 && taskset { (Some(0), Some(1)) } else { (None, None) };
    let s = |v: f64| format!("{v}");

    // The backend alone, on the server's core: one clip per call, and eight.
    let compute1 = loadgen(&bin, server_core, &["compute".into(), "1".into(), s(secs(5.0))])?;
    let compute8 = loadgen(&bin, server_core, &["compute".into(), "8".into(), s(secs(5.0))])?;

    let (mut server, url) = serve(&melkit, server_core)?;
    let result = (|| -> Result<Value> {
        let c = |n: usize, seconds: f64, wav: bool| {
            let mut a = vec!["concurrency".into(), url.clone(), n.to_string(), s(seconds)];
            if wav {
                a.push("wav".into());
            }
            loadgen(&bin, client_core, &a)
        };
        c(2, 1.0, false)?; // warm-up
        let single = c(1, secs(10.0), false)?;
        let single_wav = c(1, secs(5.0), true)?;
        let mut sweep = Vec::new();
        for n in [2, 4, 8, 16] {
            sweep.push(c(n, secs(5.0), false)?);
        }
        let best = sweep.iter().map(|r| get(r, &["result", "ok_per_s"])).fold(0.0, f64::max);
        let phases = |p: &[(f64, f64)]| {
            p.iter().map(|(r, t)| format!("{:.0}x{t}", r.max(1.0))).collect::<Vec<_>>().join(",")
        };
        let steady = loadgen(
            &bin,
            client_core,
            &["rate".into(), url.clone(), phases(&[(0.8 * best, secs(10.0))])],
        )?;
        let overload = loadgen(
            &bin,
            client_core,
            &["rate".into(), url.clone(), phases(&[(2.0 * best, secs(5.0)), (0.2 * best, 3.0)])],
        )?;
        Ok(json!({ "single": single, "single_wav": single_wav, "sweep": sweep, "best": best,
                   "steady": steady, "overload": overload }))
    })();
    let rss = peak_rss_mb(server.id());
    let _ = Command::new("kill").args(["-TERM", &server.id().to_string()]).status();
    let exit = server.wait()?;
    let mut report = result?;
    report["compute"] = json!([compute1, compute8]);
    report["peak_rss_mb"] = json!(rss);
    report["server_exit"] = json!(exit.code());
    report["pinned"] = json!(server_core.is_some());
    report["cores"] = json!(cores);

    let table = table(&report);
    let dir = root.join("target/bench");
    std::fs::create_dir_all(&dir)?;
    let rev = crate::bench::git_rev(root);
    std::fs::write(
        dir.join(format!("loadtest-{rev}.json")),
        serde_json::to_string_pretty(&report)?,
    )?;
    std::fs::write(dir.join(format!("loadtest-{rev}.md")), &table)?;
    println!("{table}");
    Ok(())
}

fn table(r: &Value) -> String {
    let ms = |v: &Value, p: &str| get(v, &["result", "latency_ms", p]);
    let compute =
        get(&r["compute"][1], &["clips_per_s"]).max(get(&r["compute"][0], &["clips_per_s"]));
    let best = get(r, &["best"]);
    let steady = &r["steady"]["phases"][0];
    let over = &r["overload"]["phases"][0];
    let after = &r["overload"]["phases"][1];
    let errors = |v: &Value| {
        let statuses = v["result"]["statuses"].as_object().cloned().unwrap_or_default();
        statuses
            .iter()
            .filter(|(k, _)| *k != "200")
            .map(|(_, n)| n.as_u64().unwrap_or(0))
            .sum::<u64>()
    };
    let mut t = String::new();
    let _ = writeln!(t, "| measure | goal | measured |\n|---|---|---|");
    let mut row = |m: &str, goal: &str, v: String| {
        let _ = writeln!(t, "| {m} | {goal} | {v} |");
    };
    row(
        "concurrency 1, raw f32: P50 / P99 (ms)",
        "≤ 1.5 / ≤ 3",
        format!("{:.2} / {:.2}", ms(&r["single"], "p50"), ms(&r["single"], "p99")),
    );
    row(
        "concurrency 1, WAV: P50 / P99 (ms)",
        "",
        format!("{:.2} / {:.2}", ms(&r["single_wav"], "p50"), ms(&r["single_wav"], "p99")),
    );
    row(
        "compute-only, same core (clips/s, batch 1 / 8)",
        "",
        format!(
            "{:.0} / {:.0}",
            get(&r["compute"][0], &["clips_per_s"]),
            get(&r["compute"][1], &["clips_per_s"])
        ),
    );
    let sweep: Vec<String> = r["sweep"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|v| {
                    let refused = errors(v) as f64 / get(v, &["result", "sent"]);
                    let (n, ok) = (&v["concurrency"], get(v, &["result", "ok_per_s"]));
                    format!("{n}: {ok:.0} ({:.0} % refused)", 100.0 * refused)
                })
                .collect()
        })
        .unwrap_or_default();
    row("throughput by concurrency, closed loop (req/s)", "", sweep.join(", "));
    row("maximum throughput (req/s)", "≥ 1000", format!("{best:.0}"));
    row("service / compute-only", "≥ 85 %", format!("{:.0} %", 100.0 * best / compute));
    row(
        "80 % Poisson: P99 (ms), errors",
        "≤ 10, 0",
        format!("{:.2}, {}", ms(steady, "p99"), errors(steady)),
    );
    row("2× overload: accepted P99 (ms)", "≤ 25", format!("{:.2}", ms(over, "p99")));
    row(
        "2× overload: 503 P99 (ms), share refused",
        "≤ 1",
        format!(
            "{:.2}, {:.0} %",
            get(over, &["result", "refused_latency_ms", "p99"]),
            100.0 * errors(over) as f64 / get(over, &["result", "sent"])
        ),
    );
    row("recovery after the overload (s)", "≤ 1", format!("{:.2}", get(after, &["recovery_s"])));
    row("peak RSS (MB)", "≤ 128", format!("{:.0}", get(r, &["peak_rss_mb"])));
    let _ = writeln!(
        t,
        "\nserver exit {}, pinned: {}, cores: {}",
        r["server_exit"], r["pinned"], r["cores"]
    );
    t
}
