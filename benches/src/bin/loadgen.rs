//! The load generator of `cargo xtask loadtest`: an open-loop HTTP client for `melkit serve`
//! (requests timed from their intended start, so that a stalled server is not hidden), a
//! closed-loop one at a fixed concurrency, and the compute-only rate of the same backend
//! in-process. Each run prints one JSON object: latency percentiles, req/s, statuses.
//!
//! ```text
//! loadgen concurrency URL N SECONDS [wav]     N clients, each sending back to back
//! loadgen rate URL PHASES [wav]               Poisson arrivals; PHASES: rate x seconds, ...
//! loadgen compute BATCH SECONDS               the CPU backend alone, BATCH clips per call
//! ```

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};

/// The clip: 10 s at 4096 Hz, tones and noise.
const RATE: u32 = 4096;
const SECONDS: usize = 10;

/// Open connections at most (an open-loop request beyond waits, and its wait is counted).
const CONNECTIONS: usize = 512;

fn clip() -> Vec<f32> {
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    (0..RATE as usize * SECONDS)
        .map(|i| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let t = i as f32 / RATE as f32;
            let noise = (seed >> 40) as f32 / (1u64 << 24) as f32 - 0.5;
            0.4 * (2.0 * std::f32::consts::PI * 440.0 * t).sin()
                + 0.2 * (2.0 * std::f32::consts::PI * 1234.5 * t).sin()
                + 0.05 * noise
        })
        .collect()
}

/// The request body and its content type: raw f32, or a 16-bit WAV file.
fn body(wav: bool) -> (Bytes, &'static str) {
    let samples = clip();
    if !wav {
        let raw: Vec<u8> = samples.iter().flat_map(|v| v.to_le_bytes()).collect();
        return (Bytes::from(raw), "application/x-f32; rate=4096; channels=1");
    }
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: RATE,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut out = std::io::Cursor::new(Vec::new());
    let mut writer = hound::WavWriter::new(&mut out, spec).expect("wav");
    for v in samples {
        writer.write_sample((v * 32767.0) as i16).expect("wav");
    }
    writer.finalize().expect("wav");
    (Bytes::from(out.into_inner()), "audio/wav")
}

/// One request's outcome: phase, intended start (s from the run's start), latency, status
/// (0: a transport error).
type Outcome = (usize, f64, f64, u16);

struct Client {
    addr: String,
    path: String,
    body: Bytes,
    content_type: &'static str,
    idle: Mutex<Vec<SendRequest<Full<Bytes>>>>,
    slots: tokio::sync::Semaphore,
}

impl Client {
    fn new(url: &str, wav: bool) -> Arc<Self> {
        let rest = url.strip_prefix("http://").expect("an http:// URL");
        let (addr, path) = rest
            .split_once('/')
            .map_or((rest, "/v1/mel".to_string()), |(a, p)| (a, format!("/{p}")));
        let (body, content_type) = body(wav);
        Arc::new(Client {
            addr: addr.to_string(),
            path,
            body,
            content_type,
            idle: Mutex::new(Vec::new()),
            slots: tokio::sync::Semaphore::new(CONNECTIONS),
        })
    }

    async fn connect(&self) -> Option<SendRequest<Full<Bytes>>> {
        let stream = tokio::net::TcpStream::connect(&self.addr).await.ok()?;
        stream.set_nodelay(true).ok()?;
        let (sender, connection) = http1::handshake(TokioIo::new(stream)).await.ok()?;
        tokio::spawn(connection);
        Some(sender)
    }

    /// Sends the clip once; its status (0: a transport error).
    async fn send(&self) -> u16 {
        let Ok(_slot) = self.slots.acquire().await else { return 0 };
        let pooled = self.idle.lock().ok().and_then(|mut idle| idle.pop());
        let mut sender = match pooled {
            Some(s) if !s.is_closed() => s,
            _ => match self.connect().await {
                Some(s) => s,
                None => return 0,
            },
        };
        if sender.ready().await.is_err() {
            return 0;
        }
        let request = hyper::Request::post(&self.path)
            .header(hyper::header::HOST, &self.addr)
            .header(hyper::header::CONTENT_TYPE, self.content_type)
            .body(Full::new(self.body.clone()))
            .expect("request");
        let Ok(response) = sender.send_request(request).await else { return 0 };
        let status = response.status().as_u16();
        if response.into_body().collect().await.is_err() {
            return 0;
        }
        if let Ok(mut idle) = self.idle.lock() {
            idle.push(sender);
        }
        status
    }
}

/// Latency percentiles (ms) of `values` (s).
fn percentiles(values: &mut [f64]) -> Value {
    values.sort_by(f64::total_cmp);
    let at = |q: f64| {
        let i = ((values.len() as f64 * q).ceil() as usize).clamp(1, values.len().max(1)) - 1;
        values.get(i).map_or(Value::Null, |v| json!(v * 1e3))
    };
    json!({ "p50": at(0.50), "p90": at(0.90), "p95": at(0.95), "p99": at(0.99),
            "max": at(1.0), "count": values.len() })
}

/// The summary of one phase's outcomes over `seconds`.
fn summary(outcomes: &[Outcome], seconds: f64) -> Value {
    let mut statuses = std::collections::BTreeMap::<String, usize>::new();
    for o in outcomes {
        let key = if o.3 == 0 { "transport".to_string() } else { o.3.to_string() };
        *statuses.entry(key).or_default() += 1;
    }
    let mut ok: Vec<f64> = outcomes.iter().filter(|o| o.3 == 200).map(|o| o.2).collect();
    let mut refused: Vec<f64> = outcomes.iter().filter(|o| o.3 == 503).map(|o| o.2).collect();
    let served = ok.len();
    json!({
        "sent": outcomes.len(),
        "ok_per_s": served as f64 / seconds,
        "statuses": statuses,
        "latency_ms": percentiles(&mut ok),
        "refused_latency_ms": percentiles(&mut refused),
    })
}

async fn concurrency(client: Arc<Client>, n: usize, seconds: f64) -> Value {
    let start = Instant::now();
    let end = start + Duration::from_secs_f64(seconds);
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move {
                let mut outcomes = Vec::new();
                while Instant::now() < end {
                    let sent = Instant::now();
                    let status = client.send().await;
                    let at = (sent - start).as_secs_f64();
                    outcomes.push((0, at, sent.elapsed().as_secs_f64(), status));
                }
                outcomes
            })
        })
        .collect();
    let mut outcomes = Vec::new();
    for t in tasks {
        outcomes.extend(t.await.unwrap_or_default());
    }
    let took = start.elapsed().as_secs_f64();
    json!({ "mode": "concurrency", "concurrency": n, "seconds": took,
            "result": summary(&outcomes, took) })
}

/// Poisson arrivals through `phases` (rate, seconds), each request timed from its intended
/// start; recovery: per phase, how long until every request is served within 10 ms. A pacing
/// thread sleeps to each intended start (the timer of the async runtime ticks by the
/// millisecond, which would add its own lateness) and hands the request to the runtime.
async fn rate(client: Arc<Client>, phases: &[(f64, f64)]) -> Value {
    let start = Instant::now();
    let (fire, mut fired) = tokio::sync::mpsc::unbounded_channel::<(usize, f64, Instant)>();
    let plan = phases.to_vec();
    let pacer = std::thread::spawn(move || {
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        let (mut at, mut phase_start) = (0.0, 0.0);
        for (phase, &(per_s, seconds)) in plan.iter().enumerate() {
            let phase_end = phase_start + seconds;
            loop {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let uniform = ((seed >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
                at += -uniform.ln() / per_s;
                if at >= phase_end {
                    at = phase_end;
                    break;
                }
                let intended = start + Duration::from_secs_f64(at);
                if let Some(wait) = intended.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
                if fire.send((phase, at, intended)).is_err() {
                    return;
                }
            }
            phase_start = phase_end;
        }
    });
    let outcomes = Arc::new(Mutex::new(Vec::<Outcome>::new()));
    let mut tasks = Vec::new();
    while let Some((phase, at, intended)) = fired.recv().await {
        let (client, outcomes) = (client.clone(), outcomes.clone());
        tasks.push(tokio::spawn(async move {
            let status = client.send().await;
            let latency = intended.elapsed().as_secs_f64();
            if let Ok(mut o) = outcomes.lock() {
                o.push((phase, at, latency, status));
            }
        }));
    }
    let _ = pacer.join();
    for t in tasks {
        let _ = t.await;
    }
    let outcomes = outcomes.lock().map(|o| o.clone()).unwrap_or_default();
    let mut report = Vec::new();
    let mut offset = 0.0;
    for (phase, &(per_s, seconds)) in phases.iter().enumerate() {
        let mine: Vec<Outcome> = outcomes.iter().copied().filter(|o| o.0 == phase).collect();
        let late = mine.iter().filter(|o| o.3 != 200 || o.2 > 0.010).map(|o| o.1 - offset);
        let recovery = late.fold(0.0_f64, f64::max);
        report.push(json!({ "rate": per_s, "seconds": seconds, "recovery_s": recovery,
                            "result": summary(&mine, seconds) }));
        offset += seconds;
    }
    json!({ "mode": "rate", "phases": report })
}

fn compute(batch: usize, seconds: f64) -> Value {
    let config = melkit::Config::default();
    let mut pipeline = melkit::Pipeline::new(config, melkit::BackendKind::Cpu).expect("pipeline");
    let clip = clip();
    let signals: Vec<&[f32]> = (0..batch).map(|_| clip.as_slice()).collect();
    // Warm: the first second of a cold process runs slower (caches, allocator, clock).
    let warm = Instant::now();
    while warm.elapsed() < Duration::from_secs(1) {
        pipeline.process_signals(&signals).expect("warm-up");
    }
    let start = Instant::now();
    let mut clips = 0;
    while start.elapsed().as_secs_f64() < seconds {
        let out = pipeline.process_signals(&signals).expect("compute");
        clips += out.len();
    }
    let took = start.elapsed().as_secs_f64();
    json!({ "mode": "compute", "batch": batch, "seconds": took, "clips_per_s": clips as f64 / took,
            "backend": pipeline.backend_name(), "workers": pipeline.workers() })
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| args.get(i).map(String::as_str).unwrap_or_default();
    let number =
        |i: usize| arg(i).parse::<f64>().unwrap_or_else(|_| panic!("not a number: {:?}", arg(i)));
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio");
    let report = match arg(0) {
        "concurrency" => {
            let client = Client::new(arg(1), arg(4) == "wav");
            runtime.block_on(concurrency(client, number(2) as usize, number(3)))
        }
        "rate" => {
            let client = Client::new(arg(1), arg(3) == "wav");
            let phases: Vec<(f64, f64)> = arg(2)
                .split(',')
                .map(|p| {
                    let (r, s) = p.split_once('x').expect("PHASES: rate x seconds, ...");
                    (r.parse().expect("rate"), s.parse().expect("seconds"))
                })
                .collect();
            runtime.block_on(rate(client, &phases))
        }
        "compute" => compute(number(1) as usize, number(2)),
        _ => {
            eprintln!(
                "usage: loadgen concurrency URL N SECONDS [wav] | rate URL PHASES [wav] | compute BATCH SECONDS"
            );
            std::process::exit(2);
        }
    };
    println!("{report}");
}
