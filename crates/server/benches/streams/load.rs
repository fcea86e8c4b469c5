//! The load: streams opened against a server's stream endpoint, read to the end, timed; and what the
//! server spent on them, read from /proc when its process id is known.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;

/// How the driver talks to the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wire {
    /// HTTP/1.1, a connection per stream open (what the original's own clients use).
    Http1,
    /// HTTP/2 in the clear, 150 streams per connection, so the driver's sockets are not the limit.
    H2c,
    /// HTTP/1.1 written and read on a bare socket, a connection per stream: for a burst, where reqwest's
    /// own work for each new connection (about 60 µs of the core the driver shares with the mocks, seen
    /// in a capture of the wire) spread 200 requests over 12 ms and became most of what was measured.
    Raw,
}

pub struct Load {
    /// The server's base URL.
    pub base: String,
    pub streams: usize,
    /// Streams open at once at most: each of this many workers runs its share one after another.
    pub concurrency: usize,
    /// The workers start evenly over this; zero starts them all at the same instant.
    pub ramp: Duration,
    pub wire: Wire,
    /// The request body of stream `i`.
    pub body: Arc<dyn Fn(usize) -> String + Send + Sync>,
    /// The server's process, to measure.
    pub server: Option<u32>,
    /// Open a keep-alive connection per worker (`concurrency`) before the round starts (as a proxy in
    /// front keeps its connections to a replica), so that the round times the requests, not the
    /// connects: on one core the driver needed about 10 ms to connect 200 sockets itself.
    pub open_connections: bool,
}

pub struct Report {
    pub streams: usize,
    pub errors: usize,
    pub ttfe: Vec<Duration>,
    pub durations: Vec<Duration>,
    /// The server's CPU time over the round, when its process is known.
    pub cpu: Option<Duration>,
    /// The part of `cpu` spent in the kernel.
    pub kernel: Option<Duration>,
    /// Its resident memory at the peak over its size at the start, per stream.
    pub rss_per_stream_kib: Option<f64>,
    /// The server's allocations over the round, when it was started by the driver.
    pub allocations: Option<crate::Allocations>,
    /// The server's page faults over the round, when its process is known.
    pub faults: Option<u64>,
    /// Time the hypervisor ran something else on this machine's cores during the round.
    pub steal: Option<Duration>,
    pub wall: Duration,
}

impl Report {
    pub fn percentile(values: &[Duration], p: f64) -> Duration {
        values.get(((values.len() as f64 * p).ceil() as usize).saturating_sub(1)).copied().unwrap_or_default()
    }

    /// Errors, time to first event, duration (against the upstream's own when given), CPU and memory.
    pub fn print(&self, title: &str, upstream_alone: Option<Duration>) {
        let pct = |v: &[Duration], p| Self::percentile(v, p);
        println!("\n{title} ({:?} wall)", self.wall);
        println!("  errors                  {}", self.errors);
        println!(
            "  time to first event     p50 {:?}  p95 {:?}  p99 {:?}",
            pct(&self.ttfe, 0.5),
            pct(&self.ttfe, 0.95),
            pct(&self.ttfe, 0.99)
        );
        let d = self.durations.iter().sum::<Duration>() / self.durations.len().max(1) as u32;
        match upstream_alone {
            Some(alone) => {
                let overhead = (d.as_secs_f64() / alone.as_secs_f64() - 1.0) * 100.0;
                println!("  stream duration         mean {d:?} ({overhead:+.1} % over the upstream alone)");
            }
            None => println!(
                "  stream duration         mean {d:?}  p50 {:?}  p99 {:?}",
                pct(&self.durations, 0.5),
                pct(&self.durations, 0.99)
            ),
        }
        match (self.cpu, self.rss_per_stream_kib) {
            (Some(cpu), Some(rss)) => {
                let per_stream = |d: Duration| d.as_secs_f64() * 1000.0 / self.streams as f64;
                match self.kernel {
                    // Over loopback, a write runs the reader's TCP receive path, and wakes it, in the
                    // writer's system call: the kernel's part holds some of the driver's and mocks' work.
                    Some(kernel) => println!(
                        "  server CPU per stream   {:.3} ms ({:.3} ms of it in the kernel, which on loopback does \
                         the reader's receiving too)",
                        per_stream(cpu),
                        per_stream(kernel)
                    ),
                    None => println!("  server CPU per stream   {:.3} ms", per_stream(cpu)),
                }
                println!(
                    "  server memory / stream  {rss:.1} KiB (resident, peak over the start, which holds PREFAULT_MIB)"
                );
                if let Some(faults) = self.faults {
                    println!("  server page faults      {:.1} per stream", faults as f64 / self.streams as f64);
                }
            }
            _ => println!("  server CPU and memory   not measured (give --pid)"),
        }
        if let Some(steal) = self.steal {
            println!(
                "  host steal              {} ms on all cores (the hypervisor's other guests; a few ms make its \
                 latencies noise)",
                steal.as_millis()
            );
        }
        if let Some(a) = self.allocations {
            let n = self.streams.max(1) as f64;
            println!(
                "  server allocations      {:.0} per stream, {:.1} KiB asked for (any machine alike)",
                a.count as f64 / n,
                a.bytes as f64 / n / 1024.0
            );
            println!(
                "  server heap / stream    {:.1} KiB (in use at the peak, over the round's start)",
                a.peak as f64 / n / 1024.0
            );
        }
    }
}

/// What /proc says of a process.
pub struct Usage {
    /// User + system CPU time.
    pub cpu: Duration,
    /// System CPU time alone.
    pub kernel: Duration,
    pub rss_kib: u64,
    /// Minor page faults: first touches of memory the kernel must then map (and zero).
    pub faults: u64,
}

/// A process's CPU time, resident memory and page faults so far, from /proc.
pub fn usage(pid: u32) -> Usage {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The fields after the command's name, from the third (`state`) on: see proc_pid_stat(5).
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or("").split_whitespace().collect();
    let field = |n: usize| fields.get(n - 3).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    let tick = |n: u64| Duration::from_millis(n * 10);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rss_kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0);
    Usage { cpu: tick(field(14) + field(15)), kernel: tick(field(15)), rss_kib, faults: field(10) }
}

/// The time this machine's cores were taken by the hypervisor for others so far (`steal` in /proc/stat,
/// over all cores), when the kernel reports it.
fn steal() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let ticks: u64 = stat.lines().next()?.strip_prefix("cpu ")?.split_whitespace().nth(7)?.parse().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

/// Runs one round of `load`; memory is counted from `rss_at_start`, the server's size when it started.
pub async fn run(load: &Load, rss_at_start: u64) -> Report {
    let clients: Vec<reqwest::Client> = match load.wire {
        Wire::Http1 | Wire::Raw => vec![reqwest::Client::builder().http1_only().build().unwrap()],
        Wire::H2c => (0..load.concurrency.div_ceil(150).max(1))
            .map(|_| reqwest::Client::builder().http2_prior_knowledge().build().unwrap())
            .collect(),
    };
    if load.open_connections {
        let health = format!("{}/health", load.base.trim_end_matches('/'));
        let opened = (0..load.concurrency.min(load.streams)).map(|i| {
            let (client, health) = (clients[i % clients.len()].clone(), health.clone());
            async move { client.get(health).send().await.and_then(|r| r.error_for_status()).map(drop) }
        });
        for opened in futures::future::join_all(opened).await {
            opened.expect("the server answers /health on every connection");
        }
    }
    let before = load.server.map(usage);
    let steal_before = steal();
    let peak = Arc::new(AtomicU64::new(rss_at_start));
    let sampler = load.server.map(|pid| {
        let peak = peak.clone();
        tokio::spawn(async move {
            loop {
                peak.fetch_max(usage(pid).rss_kib, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    });
    let started = Instant::now();
    let url = format!("{}/api/v1/plans/generate/stream", load.base.trim_end_matches('/'));
    let workers: Vec<_> = (0..load.concurrency.min(load.streams))
        .map(|w| {
            let client = clients[w % clients.len()].clone();
            let (url, body, streams, step) = (url.clone(), load.body.clone(), load.streams, load.concurrency);
            let start_at = started + load.ramp.mul_f64(w as f64 / load.concurrency as f64);
            let wire = load.wire;
            tokio::spawn(async move {
                tokio::time::sleep_until(start_at.into()).await;
                let mut results = Vec::new();
                for i in (w..streams).step_by(step) {
                    results.push(match wire {
                        Wire::Raw => raw_stream(&url, body(i)).await,
                        Wire::Http1 | Wire::H2c => stream(&client, &url, body(i)).await,
                    });
                }
                results
            })
        })
        .collect();
    let mut report = Report {
        streams: load.streams,
        errors: 0,
        ttfe: Vec::new(),
        durations: Vec::new(),
        cpu: None,
        kernel: None,
        rss_per_stream_kib: None,
        allocations: None,
        faults: None,
        steal: None,
        wall: Duration::ZERO,
    };
    for worker in workers {
        for result in worker.await.unwrap_or_default() {
            match result {
                Ok((first, total)) => {
                    report.ttfe.push(first);
                    report.durations.push(total);
                }
                Err(e) => {
                    if report.errors < 3 {
                        eprintln!("stream failed: {e}");
                    }
                    report.errors += 1;
                }
            }
        }
    }
    report.wall = started.elapsed();
    report.steal = steal().zip(steal_before).map(|(after, before)| after.saturating_sub(before));
    if let (Some(pid), Some(before), Some(sampler)) = (load.server, before, sampler) {
        sampler.abort();
        let after = usage(pid);
        report.cpu = Some(after.cpu.saturating_sub(before.cpu));
        report.kernel = Some(after.kernel.saturating_sub(before.kernel));
        report.faults = Some(after.faults.saturating_sub(before.faults));
        let peak = peak.load(Ordering::Relaxed);
        report.rss_per_stream_kib = Some(peak.saturating_sub(rss_at_start) as f64 / load.streams as f64);
    }
    report.ttfe.sort();
    report.durations.sort();
    report
}

/// One stream on a bare socket, as [`stream`]: the request written at once with `connection: close`, the
/// answer read to its end. Its first event is the first block of the body with a `data:` line ended by a
/// blank line; the answer is de-chunked before its `complete` event is looked for.
async fn raw_stream(url: &str, body: String) -> Result<(Duration, Duration), String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let sent = Instant::now();
    let url = reqwest::Url::parse(url).map_err(|e| e.to_string())?;
    let (host, port) = (url.host_str().unwrap_or("127.0.0.1"), url.port_or_known_default().unwrap_or(80));
    let mut socket = tokio::net::TcpStream::connect((host, port)).await.map_err(|e| e.to_string())?;
    socket.set_nodelay(true).map_err(|e| e.to_string())?;
    let request = format!(
        "POST {} HTTP/1.1\r\nhost: {host}:{port}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
         connection: close\r\n\r\n{body}",
        url.path(),
        body.len()
    );
    socket.write_all(request.as_bytes()).await.map_err(|e| e.to_string())?;
    let mut answer = Vec::with_capacity(16 * 1024);
    let mut first = None;
    while socket.read_buf(&mut answer).await.map_err(|e| e.to_string())? > 0 {
        if first.is_none() {
            let body = find(&answer, b"\r\n\r\n").map_or(&[][..], |head| &answer[head..]);
            if find(body, b"data:").is_some_and(|data| find(&body[data..], b"\n\n").is_some()) {
                first = Some(sent.elapsed());
            }
        }
    }
    let head_end = find(&answer, b"\r\n\r\n").ok_or("the answer has no head")?;
    let head = String::from_utf8_lossy(&answer[..head_end]).to_ascii_lowercase();
    if !head.starts_with("http/1.1 200") {
        return Err(format!("{}", String::from_utf8_lossy(&answer)));
    }
    let body = &answer[head_end + 4..];
    let body = if head.contains("transfer-encoding: chunked") { dechunk(body)? } else { body.to_vec() };
    let complete = String::from_utf8_lossy(&body).split("\n\n").any(|event| {
        event
            .lines()
            .filter_map(|l| l.strip_prefix("data:"))
            .any(|data| serde_json::from_str::<serde_json::Value>(data.trim()).is_ok_and(|v| v["type"] == "complete"))
    });
    match (first, complete) {
        (Some(first), true) => Ok((first, sent.elapsed())),
        _ => Err("the stream ended without complete".to_owned()),
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// A chunked HTTP/1.1 body's bytes.
fn dechunk(mut chunked: &[u8]) -> Result<Vec<u8>, String> {
    let mut body = Vec::with_capacity(chunked.len());
    loop {
        let line = find(chunked, b"\r\n").ok_or("a chunk without its size")?;
        let size = std::str::from_utf8(&chunked[..line]).ok().and_then(|s| usize::from_str_radix(s.trim(), 16).ok());
        let size = size.ok_or("a chunk size that is not hex")?;
        if size == 0 {
            return Ok(body);
        }
        let data = chunked.get(line + 2..line + 2 + size).ok_or("a chunk cut short")?;
        body.extend_from_slice(data);
        chunked = chunked.get(line + 4 + size..).ok_or("a chunk cut short")?;
    }
}

/// One stream: (time to its first event, time to its end), or why it failed.
async fn stream(client: &reqwest::Client, url: &str, body: String) -> Result<(Duration, Duration), String> {
    let sent = Instant::now();
    let response = client
        .post(url)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status();
    if !status.is_success() {
        return Err(format!("HTTP {status}: {}", response.text().await.unwrap_or_default()));
    }
    let mut events = eventsource_stream::Eventsource::eventsource(response.bytes_stream());
    let mut first = None;
    let mut complete = false;
    while let Some(event) = events.next().await {
        let event = event.map_err(|e| e.to_string())?;
        first.get_or_insert_with(|| sent.elapsed());
        // Parsed, not matched: another implementation may space its JSON differently.
        complete |= event.data.contains("complete")
            && serde_json::from_str::<serde_json::Value>(&event.data).is_ok_and(|v| v["type"] == "complete");
    }
    match (first, complete) {
        (Some(first), true) => Ok((first, sent.elapsed())),
        _ => Err("the stream ended without complete".to_owned()),
    }
}
