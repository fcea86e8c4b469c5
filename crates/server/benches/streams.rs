//! How many streams one replica holds, and what each costs. Not a test: it prints figures.
//!
//! ```sh
//! cargo bench -p tripstream-server --bench streams                       # 10,000 streams, then 200
//! cargo bench -p tripstream-server --bench streams -- --streams 2000 --pace-ms 20
//! ```
//!
//! Streams are opened evenly over `--ramp-ms` (default 1 s; each lasts about 2 s, so all of them are open
//! together); `--ramp-ms 0` opens them all in one burst, the harshest case for time to first event.
//!
//! Three processes, as in production: a paced mock LLM (OpenAI-compatible, a chunk every `--pace-ms`), the
//! tripstream server on a single-threaded runtime, pinned to the first core, and this driver, which
//! shares the other cores with the mock (as the targets say: the server on one core, the mock on the
//! other; `--no-pin` lets the kernel place them) and opens the streams over HTTP/2 (a few connections,
//! many streams each, so the driver's file descriptors are not the limit). The server talks to the mock
//! over HTTP/1.1, one connection per stream, as it would to a provider. Each size runs twice on one
//! server (a fresh process, then the same one warm). Reported: errors, time to first event
//! (p50/p95/p99), stream duration against the mock's own pacing, the server's CPU time and resident
//! memory per stream. The server's run log is a SQLite file in a scratch directory, removed at the end.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use tripstream_server::config::{SecretUrl, Secs};

/// The allocator the `tripstream` binary uses, so the figures are the binary's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const CHUNKS: usize = 40;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let flag = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    let pace = Duration::from_millis(flag("--pace-ms").and_then(|v| v.parse().ok()).unwrap_or(50));
    if let Some(cpus) = flag("--cpus") {
        pin(&cpus);
    }
    match flag("--role").as_deref() {
        Some("mock") => mock(pace),
        Some("server") => server(&flag("--upstream").expect("--upstream"), &flag("--runlog").expect("--runlog")),
        _ => {
            let streams: usize = flag("--streams").and_then(|v| v.parse().ok()).unwrap_or(10_000);
            let ramp = Duration::from_millis(flag("--ramp-ms").and_then(|v| v.parse().ok()).unwrap_or(1000));
            drive(streams, pace, ramp, !args.iter().any(|a| a == "--no-pin"));
        }
    }
}

/// Keeps this process (and the threads it starts from now on) on the CPUs listed, `first-last`.
fn pin(cpus: &str) {
    let (first, last) = cpus.split_once('-').unwrap_or((cpus, cpus));
    let (first, last): (usize, usize) = (first.parse().expect("--cpus first-last"), last.parse().expect("--cpus"));
    // SAFETY: a zeroed cpu_set_t is the empty set; CPU_SET and sched_setaffinity only read and write it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        for cpu in first..=last {
            libc::CPU_SET(cpu, &mut set);
        }
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            eprintln!("could not pin to CPUs {cpus}: {}", std::io::Error::last_os_error());
        }
    }
}

/// Spawns this binary in another role and reads the port it prints.
fn spawn(role: &str, extra: &[&str]) -> (Child, u16) {
    let mut child = Command::new(std::env::current_exe().expect("the bench binary"))
        .args(["--role", role])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the role starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("piped")).read_line(&mut line).expect("a port line");
    let port = line.trim().strip_prefix("PORT ").and_then(|p| p.parse().ok()).expect("PORT <n>");
    (child, port)
}

/// An OpenAI-compatible server whose every reply is a valid one-day Kyoto plan, `CHUNKS` pieces, one per
/// `pace`.
fn mock(pace: Duration) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async move {
        let plan = serde_json::json!({"title": "Kyoto", "days": [{"day": 1, "theme": "Higashiyama", "activities": [
            {"time": "09:00", "durationMinutes": 90, "name": "Kiyomizu-dera", "description": "Temple.", "category": "sightseeing", "area": "Higashiyama", "costPerPerson": 500, "indoor": false},
            {"time": "12:00", "durationMinutes": 60, "name": "Lunch", "description": "Noodles.", "category": "food", "area": "Gion", "costPerPerson": 1200, "indoor": true},
            {"time": "14:00", "durationMinutes": 90, "name": "Kyoto National Museum", "description": "Art.", "category": "culture", "area": "Higashiyama", "costPerPerson": 700, "indoor": true},
            {"time": "18:00", "durationMinutes": 90, "name": "Dinner", "description": "Kaiseki.", "category": "food", "area": "Gion", "costPerPerson": 3000, "indoor": true}]}],
            "tips": ["Walk."]})
        .to_string();
        let chars: Vec<char> = plan.chars().collect();
        let pieces: Arc<Vec<String>> = Arc::new(chars.chunks(chars.len().div_ceil(CHUNKS)).map(|c| c.iter().collect()).collect());
        let app = axum::Router::new().fallback(move || {
            let pieces = pieces.clone();
            async move {
                let frames = futures::stream::iter(0..pieces.len() + 2).then(move |i| {
                    let pieces = pieces.clone();
                    async move {
                        tokio::time::sleep(pace).await;
                        let frame = match i {
                            i if i < pieces.len() => serde_json::json!({"choices": [{"index": 0, "delta": {"content": pieces[i]}, "finish_reason": null}]}).to_string(),
                            i if i == pieces.len() => serde_json::json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}], "usage": {"prompt_tokens": 10, "completion_tokens": 100}}).to_string(),
                            _ => "[DONE]".to_owned(),
                        };
                        Ok::<_, std::io::Error>(axum::body::Bytes::from(format!("data: {frame}\n\n")))
                    }
                });
                ([("content-type", "text/event-stream")], axum::body::Body::from_stream(frames))
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        println!("PORT {}", listener.local_addr().unwrap().port());
        axum::serve(listener, app).await.unwrap();
    });
}

/// The real application on one thread, pointed at the mock; no cache, so every stream generates. The run
/// log is a SQLite file, as the binary's default is.
fn server(upstream: &str, runlog: &str) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async move {
        let mut config = tripstream_server::ServerConfig::for_tests();
        config.engine.llm.openai_base_url = Some(upstream.to_owned());
        config.engine.llm.llm_fallback = vec![tripstream_server::config::LlmChoice::None];
        config.store.cache_ttl_secs = Secs::new(0);
        config.store.database_url = SecretUrl::new(format!("sqlite://{runlog}"));
        let app = tripstream_server::Application::build(config).await.expect("the app builds");
        println!("PORT {}", app.local_addr().port());
        app.run_until_stopped(std::future::pending()).await.unwrap();
    });
}

/// A child process killed when the driver ends, however it ends.
struct Role(Child);

impl Drop for Role {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn drive(streams: usize, pace: Duration, ramp: Duration, pinned: bool) {
    // Installs the TLS crypto provider reqwest is built to expect.
    let _ = tripstream_adapters::http::client(Duration::from_secs(1));
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let pinned = pinned && cores > 1;
    if pinned {
        // The mock, started next, and this driver's threads share the cores the server does not have.
        pin(&format!("1-{}", cores - 1));
        println!("server pinned to CPU 0; the mock and this driver on CPUs 1-{} (--no-pin to not)", cores - 1);
    }
    let server_cpus: &[&str] = if pinned { &["--cpus", "0"] } else { &[] };
    let scratch = std::env::temp_dir().join(format!("tripstream-bench-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).expect("a scratch directory for the run logs");
    let (mock, mock_port) = spawn("mock", &["--pace-ms", &pace.as_millis().to_string()]);
    let _mock = Role(mock);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    // The upstream's own time, measured: a reply read straight from the mock (timers overshoot a little).
    let upstream_alone = rt.block_on(async {
        let client = reqwest::Client::new();
        let mut total = Duration::ZERO;
        for _ in 0..5 {
            let started = Instant::now();
            let response =
                client.post(format!("http://127.0.0.1:{mock_port}/v1/chat/completions")).send().await.unwrap();
            let _ = response.bytes().await.unwrap();
            total += started.elapsed();
        }
        total / 5
    });
    println!("mock LLM: {CHUNKS} chunks, one every {pace:?}: {upstream_alone:?} per reply, read directly");
    println!("streams opened evenly over {ramp:?} (--ramp-ms; 0 opens them all at once)");
    for n in [streams, 200] {
        // A fresh server per size, so its memory is this size's alone. The same load runs twice: a
        // fresh process pays once for the memory it grows into (the kernel zeroes every new page), a
        // long-lived replica reuses it, so the second round is what a replica in service spends.
        let upstream = format!("http://127.0.0.1:{mock_port}");
        let runlog = scratch.join(format!("runlog-{n}.db"));
        let runlog = runlog.to_str().expect("a UTF-8 temporary directory");
        let (server, port) = spawn("server", &[&["--upstream", &upstream, "--runlog", runlog], server_cpus].concat());
        let server = Role(server);
        let (_, rss_at_start) = usage(server.0.id());
        for round in ["fresh server", "second round, same server"] {
            let report = rt.block_on(run(port, n, ramp, server.0.id(), rss_at_start));
            report.print(n, round, upstream_alone);
        }
    }
    let _ = std::fs::remove_dir_all(&scratch);
}

struct Report {
    errors: usize,
    ttfe: Vec<Duration>,
    durations: Vec<Duration>,
    cpu: Duration,
    rss_per_stream_kib: f64,
    wall: Duration,
}

impl Report {
    fn print(&self, n: usize, round: &str, upstream_alone: Duration) {
        let pct = |v: &[Duration], p: f64| {
            v.get(((v.len() as f64 * p).ceil() as usize).saturating_sub(1)).copied().unwrap_or_default()
        };
        let mean = |v: &[Duration]| v.iter().sum::<Duration>() / v.len().max(1) as u32;
        println!("\n{n} concurrent streams, {round} ({:?} wall)", self.wall);
        println!("  errors                  {}", self.errors);
        println!(
            "  time to first event     p50 {:?}  p95 {:?}  p99 {:?}",
            pct(&self.ttfe, 0.5),
            pct(&self.ttfe, 0.95),
            pct(&self.ttfe, 0.99)
        );
        let d = mean(&self.durations);
        let overhead = (d.as_secs_f64() / upstream_alone.as_secs_f64() - 1.0) * 100.0;
        println!("  stream duration         mean {d:?} ({overhead:+.1} % over the upstream alone)");
        println!("  server CPU per stream   {:.3} ms", self.cpu.as_secs_f64() * 1000.0 / n as f64);
        println!("  server memory / stream  {:.1} KiB (resident, peak over the start)", self.rss_per_stream_kib);
    }
}

/// User + system CPU time and resident memory of a process, from /proc.
fn usage(pid: u32) -> (Duration, u64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or("").split_whitespace().collect();
    let ticks: u64 = fields.get(11).and_then(|v| v.parse().ok()).unwrap_or(0)
        + fields.get(12).and_then(|v| v.parse().ok()).unwrap_or(0);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rss_kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0);
    (Duration::from_millis(ticks * 10), rss_kib)
}

/// One round of `n` streams; memory is counted from the server's resident size when it started.
async fn run(port: u16, n: usize, ramp: Duration, server_pid: u32, rss_at_start: u64) -> Report {
    // HTTP/2 without TLS: up to 200 streams per connection (hyper's default), so n / 150 connections.
    let clients: Vec<reqwest::Client> = (0..n.div_ceil(150).max(1))
        .map(|_| reqwest::Client::builder().http2_prior_knowledge().build().unwrap())
        .collect();
    let (cpu_before, _) = usage(server_pid);
    let peak = Arc::new(std::sync::atomic::AtomicU64::new(rss_at_start));
    let sampler = {
        let peak = peak.clone();
        tokio::spawn(async move {
            loop {
                peak.fetch_max(usage(server_pid).1, std::sync::atomic::Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    let started = Instant::now();
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let client = clients[i % clients.len()].clone();
            // Distinct interests: no two requests coalesce, every one is a generation.
            let body = format!(
                r#"{{"location": "Kyoto", "startDate": "2025-11-10", "endDate": "2025-11-10", "budget": "medium", "interests": ["b{i}"]}}"#
            );
            let start_at = started + ramp.mul_f64(i as f64 / n as f64);
            tokio::spawn(async move {
                tokio::time::sleep_until(start_at.into()).await;
                let sent = Instant::now();
                let response = client
                    .post(format!("http://127.0.0.1:{port}/api/v1/plans/generate/stream"))
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await
                    .map_err(|e| e.to_string())?;
                let mut events = eventsource_stream::Eventsource::eventsource(response.bytes_stream());
                let mut first = None;
                let mut complete = false;
                while let Some(event) = events.next().await {
                    let event = event.map_err(|e| e.to_string())?;
                    first.get_or_insert_with(|| sent.elapsed());
                    complete |= event.data.contains("\"type\":\"complete\"");
                }
                match (first, complete) {
                    (Some(first), true) => Ok((first, sent.elapsed())),
                    _ => Err("the stream ended without complete".to_owned()),
                }
            })
        })
        .collect();
    let mut report = Report {
        errors: 0,
        ttfe: Vec::new(),
        durations: Vec::new(),
        cpu: Duration::ZERO,
        rss_per_stream_kib: 0.0,
        wall: Duration::ZERO,
    };
    for task in tasks {
        match task.await {
            Ok(Ok((first, total))) => {
                report.ttfe.push(first);
                report.durations.push(total);
            }
            Ok(Err(e)) => {
                if report.errors < 3 {
                    eprintln!("stream failed: {e}");
                }
                report.errors += 1;
            }
            Err(_) => report.errors += 1,
        }
    }
    report.wall = started.elapsed();
    sampler.abort();
    let (cpu_after, _) = usage(server_pid);
    report.cpu = cpu_after.saturating_sub(cpu_before);
    let peak = peak.load(std::sync::atomic::Ordering::Relaxed);
    report.rss_per_stream_kib = peak.saturating_sub(rss_at_start) as f64 / n as f64;
    report.ttfe.sort();
    report.durations.sort();
    report
}
