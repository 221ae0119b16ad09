//! `melkit serve` as a process: SIGTERM in the middle of a load loses no accepted request —
//! readiness turns 503 while connections are still accepted for the grace period, every request
//! sent meanwhile is answered with its tensor, then the listener closes and the process exits 0.

mod common;

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpStream};
use std::process::Stdio;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{command, golden_dir};

/// An agent that opens a connection per request (none kept idle, so that no request meets a
/// connection the server closed) and returns every status as a response.
fn agent() -> ureq::Agent {
    ureq::Agent::config_builder().http_status_as_error(false).max_idle_connections(0).build().into()
}

/// One request: its status and the tensor's shape, or the transport's error.
fn post(addr: SocketAddr, wav: &[u8]) -> Result<(u16, Vec<usize>), String> {
    let url = format!("http://{addr}/v1/mel");
    let mut r = agent()
        .post(&url)
        .header("Content-Type", "audio/wav")
        .send(wav)
        .map_err(|e| e.to_string())?;
    let status = r.status().as_u16();
    let body =
        r.body_mut().with_config().limit(1 << 30).read_to_vec().map_err(|e| e.to_string())?;
    let shape = if status == 200 {
        let a: ndarray::ArrayD<f32> =
            ndarray_npy::ReadNpyExt::read_npy(body.as_slice()).map_err(|e| e.to_string())?;
        a.shape().to_vec()
    } else {
        Vec::new()
    };
    Ok((status, shape))
}

fn ready(addr: SocketAddr) -> Option<u16> {
    agent().get(&format!("http://{addr}/readyz")).call().ok().map(|r| r.status().as_u16())
}

#[test]
fn sigterm_under_load_loses_no_accepted_request_and_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let log = std::fs::File::create(dir.path().join("stderr")).unwrap();
    let grace = "3";
    let mut child = command()
        .args(["serve", "--listen", "127.0.0.1:0", "--backend", "cpu", "--grace-s", grace])
        // Six clients on a debug build queue longer than the default target wait: this test
        // is about the drain, not about refusing a standing queue.
        .args(["--queue-target-ms", "60000"])
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut first).unwrap();
    let addr: SocketAddr =
        first.trim().strip_prefix("listening on http://").unwrap().parse().unwrap();
    assert_eq!(ready(addr), Some(200));
    let wav = std::fs::read(golden_dir().join("tones_4096_pcm16.wav")).unwrap();
    let expected = post(addr, &wav).unwrap().1;

    // Six clients send back to back; SIGTERM after 30 answers; they go on for 1 s more, well
    // inside the 3 s grace period, so that every request they send is one the server accepts.
    let answered = AtomicUsize::new(0);
    let term: OnceLock<Instant> = OnceLock::new();
    let (results, draining) = std::thread::scope(|s| {
        let clients: Vec<_> = (0..6)
            .map(|_| {
                s.spawn(|| {
                    let mut results = Vec::new();
                    while term.get().is_none_or(|t| t.elapsed() < Duration::from_secs(1)) {
                        let sent = Instant::now();
                        results.push((sent, post(addr, &wav)));
                        answered.fetch_add(1, Ordering::SeqCst);
                    }
                    results
                })
            })
            .collect();
        let started = Instant::now();
        while answered.load(Ordering::SeqCst) < 30 && started.elapsed() < Duration::from_secs(60) {
            std::thread::sleep(Duration::from_millis(5));
        }
        let pid = child.id().to_string();
        term.set(Instant::now()).unwrap();
        assert!(
            std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap().success()
        );
        // Readiness turns 503 while requests are still being served.
        let mut draining = None;
        for _ in 0..100 {
            draining = ready(addr);
            if draining == Some(503) {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let results: Vec<_> = clients.into_iter().flat_map(|c| c.join().unwrap()).collect();
        (results, draining)
    });
    assert_eq!(draining, Some(503), "readiness while draining");

    let term = *term.get().unwrap();
    let after = results.iter().filter(|(sent, _)| *sent > term).count();
    assert!(results.len() >= 30 && after > 0, "{} requests, {after} after SIGTERM", results.len());
    for (sent, result) in &results {
        let at = if *sent > term { "after" } else { "before" };
        assert_eq!(result, &Ok((200, expected.clone())), "a request sent {at} SIGTERM");
    }

    // The process drains and exits 0; then the port refuses connections.
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "still running a minute after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let stderr = std::fs::read_to_string(dir.path().join("stderr")).unwrap();
    assert!(status.success(), "{status}: {stderr}");
    assert!(
        stderr.contains("melkit serve: draining") && stderr.contains("melkit serve: drained"),
        "{stderr}"
    );
    assert!(TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err());
}

/// The Deployment's container arguments and its ConfigMap's `melkit.toml`, read from the YAML.
fn deployment() -> (Vec<String>, String) {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy/k8s/melkit-serve.yaml");
    let yaml = std::fs::read_to_string(path).unwrap();
    let block = |start: &str, item: &str| -> Vec<String> {
        let lines = yaml.lines().skip_while(|l| l.trim() != start).skip(1);
        let indent = |l: &str| l.len() - l.trim_start().len();
        let mut lines = lines.peekable();
        let first = lines.peek().map_or(0, |l| indent(l));
        lines
            .take_while(|l| indent(l) >= first && l.trim_start().starts_with(item))
            .map(|l| l.trim_start().trim_start_matches(item).trim().trim_matches('"').to_string())
            .collect()
    };
    (block("args:", "- "), block("melkit.toml: |", "").join("\n"))
}

#[test]
fn the_kubernetes_deployment_starts_and_its_probes_and_scrape_path_answer() {
    let (args, toml) = deployment();
    assert_eq!(args.first().map(String::as_str), Some("serve"), "{args:?}");
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("melkit.toml");
    std::fs::write(&config, &toml).unwrap();
    // As deployed, but on a free loopback port and with the ConfigMap's file where it is.
    let args: Vec<String> = args
        .into_iter()
        .map(|a| match a.as_str() {
            "0.0.0.0:8000" => "127.0.0.1:0".into(),
            "/etc/melkit/melkit.toml" => config.display().to_string(),
            _ => a,
        })
        .collect();
    let mut child =
        command().args(&args).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut first).unwrap();
    let addr = first.trim().strip_prefix("listening on http://");
    let addr: Option<SocketAddr> = addr.and_then(|a| a.parse().ok());
    let get = |path: &str| {
        let url = format!("http://{}{path}", addr.unwrap());
        let mut r = agent().get(&url).call().unwrap();
        (r.status().as_u16(), r.body_mut().read_to_string().unwrap())
    };
    let answers = addr.map(|_| (get("/healthz").0, get("/readyz").0, get("/metrics")));
    child.kill().unwrap();
    child.wait().unwrap();
    let (healthz, readyz, (metrics, text)) = answers.expect(&first);
    assert_eq!((healthz, readyz, metrics), (200, 200, 200));
    assert!(text.contains("melkit_verify_checked_total 0"), "{text}");
    let yaml = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../deploy/k8s/melkit-serve.yaml"
    ))
    .unwrap();
    for wired in ["path: /readyz", "path: /healthz", "prometheus.io/path: /metrics"] {
        assert!(yaml.contains(wired), "{wired} not in the Deployment");
    }
}

/// A running `melkit serve` with `args`, and its address.
fn server(args: &[&str]) -> (std::process::Child, SocketAddr) {
    let mut child = command()
        .args(["serve", "--listen", "127.0.0.1:0", "--grace-s", "0"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut first).unwrap();
    let addr = first.trim().strip_prefix("listening on http://").map(str::parse);
    match addr {
        Some(Ok(addr)) => (child, addr),
        _ => {
            child.kill().unwrap();
            panic!("no address in {first:?}");
        }
    }
}

/// The server's resident memory, from its metrics.
fn resident(addr: SocketAddr) -> f64 {
    let mut r = agent().get(&format!("http://{addr}/metrics")).call().unwrap();
    let text = r.body_mut().read_to_string().unwrap();
    let line = text.lines().find(|l| l.starts_with("melkit_resident_memory_bytes "));
    line.and_then(|l| l.split(' ').nth(1)).and_then(|v| v.parse().ok()).unwrap()
}

#[test]
fn thousands_of_malformed_requests_leave_it_ready_and_its_memory_flat() {
    let (mut child, addr) = server(&["--backend", "cpu", "--body-limit-mib", "1"]);
    let url = format!("http://{addr}/v1/mel");
    let send = |i: usize| {
        let noise: Vec<u8> = (0..64 + i % 512).map(|k| (k * 31 + i * 7) as u8).collect();
        let (content_type, body) = match i % 5 {
            0 => ("audio/wav", noise),
            1 => ("audio/flac", [b"fLaC".as_slice(), &noise].concat()),
            2 => ("application/x-f32; rate=4096; channels=1", vec![0xff; 4 * (1 + i % 64)]),
            3 => ("text/plain", noise),
            _ => ("audio/wav", vec![0; (1 << 20) + 1]),
        };
        let mut r = agent().post(&url).header("Content-Type", content_type).send(&body).unwrap();
        let _ = r.body_mut().read_to_vec();
        r.status().as_u16()
    };
    // The pools and caches grow in the first hundreds; from then on nothing may.
    for i in 0..500 {
        assert!([400, 413, 415].contains(&send(i)));
    }
    let before = resident(addr);
    for i in 500..3000 {
        assert!([400, 413, 415].contains(&send(i)));
    }
    let after = resident(addr);
    assert_eq!(ready(addr), Some(200));
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(after - before < 4e6, "resident memory {before} B grew by {} B", after - before);
}
