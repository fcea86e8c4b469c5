//! How many streams one replica holds, what each costs, and how fast a burst's first events come. Not
//! a test: it prints figures.
//!
//! ```sh
//! cargo bench -p tripstream-server --bench streams                       # paced: 10,000 streams, then 200
//! cargo bench -p tripstream-server --bench streams -- --streams 2000 --pace-ms 20
//! cargo bench -p tripstream-server --bench streams -- --mode full        # 600 streams, 200 at once
//! cargo bench -p tripstream-server --bench streams -- --mode burst       # 200 opened at the same instant
//! cargo bench -p tripstream-server --bench streams -- --mode http2       # 1,000 to an HTTP/2 provider
//! cargo bench -p tripstream-server --bench streams -- --mode full --url http://127.0.0.1:8000 --pid 4242
//! ```
//!
//! Modes:
//!
//! - `paced` (the default): a paced mock LLM (OpenAI-compatible, 40 chunks, one every `--pace-ms`),
//!   weather from the bundled normals, the driver on HTTP/2. Streams are opened evenly over `--ramp-ms`
//!   (default 1 s; each lasts about 2 s, so all are open together); `--ramp-ms 0` opens them in one
//!   burst. `--streams` runs, then 200.
//! - `full`: the whole path of a real deployment: OpenWeatherMap-format weather (every place unique, so
//!   geocoded and forecast for each stream), a Gemini-format reply of 40 chunks 25 ms apart, the run log
//!   in SQLite, HTTP/1.1 clients (the original's own use HTTP/1.1), every request unique; `--streams`
//!   (600) with `--concurrency` (200) open at once; `--chunks` (40) pieces per reply. `--places bundled`
//!   plans Kyoto every time instead (bundled, so not geocoded, and its forecast fetched once).
//! - `burst`: the same path, `--streams` (200) opened at the same instant: time to first event. Each on a
//!   new connection, or with `--connections open` on a keep-alive connection the driver opened before
//!   the round (as a proxy in front keeps them), so that its own connects (about 10 ms for 200 on one
//!   core) are not in the figure. New connections are written and read on bare sockets (`--client
//!   reqwest` to use reqwest, as earlier tables did): reqwest's own work spread 200 requests over 12 ms
//!   or more, so the server was measured answering them as they trickled in, not all at once.
//! - `http2`: a Gemini-format provider on TLS with HTTP/2 only and `--stream-limit` (100) streams per
//!   connection, replies 40 chunks `--pace-ms` (100 ms) apart, `--streams` (1,000) opened at once;
//!   tripstream trusts the mock's throwaway CA through `SSL_CERT_FILE`.
//!
//! `--url` loads another implementation of the same API instead of starting tripstream (`full` and
//! `burst`): start it first with its Gemini and OpenWeatherMap base URLs pointed at the mocks' fixed
//! ports (`--gemini-port`, `--weather-port`), and give `--pid` to measure its CPU and memory.
//!
//! Three processes, as in production: the mocks, the server on a single-threaded runtime pinned to the
//! first core, and this driver, which shares the other cores with the mocks (as the targets say: the
//! server on one core, the mocks on the other; `--no-pin` lets the kernel place them). Each load runs
//! twice on one server (a fresh process, then the same one warm). Reported: errors, time to first event
//! (p50/p95/p99), stream duration, the server's CPU time, resident memory and page faults per stream,
//! and its allocations and heap in use per stream (counted in the server's role: unlike CPU time, the
//! same on any machine; unlike resident memory, blind to the `PREFAULT_MIB` the server faults in at
//! start). The server's run log is a SQLite file in a scratch directory, removed at the end.

mod load;
mod modes;
mod roles;

use std::alloc::{GlobalAlloc, Layout};
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use load::{Load, Wire, usage};
use roles::{CHUNKS, Upstreams};

/// The allocator the `tripstream` binary uses, so the figures are the binary's; in the server's role it
/// also counts.
#[global_allocator]
static GLOBAL: Counted = Counted;

/// mimalloc, counting the server's allocations (and reallocations, which may move): unlike CPU time, a
/// figure that does not change with the machine's speed or load, so builds measured on different machines
/// compare. Counts only once `COUNTING` is on (the server's role), so the other roles pay a load.
struct Counted;

static COUNTING: AtomicBool = AtomicBool::new(false);
static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);
static ALLOCATED: AtomicU64 = AtomicU64::new(0);
/// Bytes allocated and not yet freed since counting began (frees of older blocks take it below zero),
/// and its highest value since the driver last asked.
static LIVE: AtomicI64 = AtomicI64::new(0);
static PEAK: AtomicI64 = AtomicI64::new(0);

fn count(bytes: usize) {
    if COUNTING.load(Ordering::Relaxed) {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        ALLOCATED.fetch_add(bytes as u64, Ordering::Relaxed);
        let live = LIVE.fetch_add(bytes as i64, Ordering::Relaxed) + bytes as i64;
        // Written only when it rises: one more read-modify-write per allocation, not two.
        if live > PEAK.load(Ordering::Relaxed) {
            PEAK.fetch_max(live, Ordering::Relaxed);
        }
    }
}

fn freed(bytes: usize) {
    if COUNTING.load(Ordering::Relaxed) {
        LIVE.fetch_sub(bytes as i64, Ordering::Relaxed);
    }
}

// SAFETY: every call is passed on to mimalloc unchanged; counting touches no memory it hands out.
unsafe impl GlobalAlloc for Counted {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        // SAFETY: the caller's contract is mimalloc's.
        unsafe { mimalloc::MiMalloc.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        // SAFETY: as above.
        unsafe { mimalloc::MiMalloc.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        freed(layout.size());
        // SAFETY: as above.
        unsafe { mimalloc::MiMalloc.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size);
        freed(layout.size());
        // SAFETY: as above.
        unsafe { mimalloc::MiMalloc.realloc(ptr, layout, new_size) }
    }
}

/// Allocations (and bytes asked for) in the server since it started; the heap in use now and at its
/// highest since the driver last asked.
#[derive(Debug, Clone, Copy)]
pub struct Allocations {
    pub count: u64,
    pub bytes: u64,
    pub live: i64,
    pub peak: i64,
}

/// The server's role answers each line on its standard input with its allocations so far.
fn answer_allocation_counts() {
    COUNTING.store(true, Ordering::Relaxed);
    std::thread::spawn(|| {
        for line in std::io::stdin().lines() {
            if line.is_err() {
                break;
            }
            let (count, bytes) = (ALLOCATIONS.load(Ordering::Relaxed), ALLOCATED.load(Ordering::Relaxed));
            let live = LIVE.load(Ordering::Relaxed);
            let peak = PEAK.swap(live, Ordering::Relaxed);
            println!("ALLOCATIONS {count} {bytes} {live} {peak}");
        }
    });
}

/// The command line: `--name value` pairs and `--flag`s.
pub struct Args(Vec<String>);

impl Args {
    /// The value after `name`; exits with a message when it does not parse.
    pub fn get<T: FromStr>(&self, name: &str) -> Option<T> {
        let raw = self.0.iter().position(|a| a == name).and_then(|i| self.0.get(i + 1))?;
        match raw.parse() {
            Ok(value) => Some(value),
            Err(_) => {
                eprintln!("{name} {raw}: not a valid value");
                std::process::exit(2);
            }
        }
    }

    fn has(&self, name: &str) -> bool {
        self.0.iter().any(|a| a == name)
    }
}

fn main() {
    let args = Args(std::env::args().collect());
    // Every role, as `tripstream serve` does: the driver and the mocks zeroing 2 MiB pages while a burst
    // opens would add their own delay to the server's figures.
    tripstream_server::tune_memory();
    if let Some(cpus) = args.get::<String>("--cpus") {
        pin(&cpus);
    }
    let pace = Duration::from_millis(args.get("--pace-ms").unwrap_or(50));
    let runlog = || args.get::<String>("--runlog").expect("--runlog");
    match args.get::<String>("--role").as_deref() {
        Some("mock") => return roles::openai_mock(pace),
        Some("server") => {
            let upstreams = match (args.get("--openai"), args.get("--gemini")) {
                (Some(openai), _) => Upstreams::OpenAi(openai),
                (None, Some(gemini)) => Upstreams::Gemini(gemini, args.get("--weather")),
                _ => panic!("--openai or --gemini"),
            };
            answer_allocation_counts();
            return roles::server(upstreams, &runlog());
        }
        _ => {}
    }
    // Installs the TLS crypto provider reqwest is built to expect.
    let _ = tripstream_adapters::http::client(Duration::from_secs(1));
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let url: Option<String> = args.get("--url");
    let pinned = !args.has("--no-pin") && cores > 1 && url.is_none();
    if pinned {
        // The mocks, started next, and this driver's threads share the cores the server does not have.
        pin(&format!("1-{}", cores - 1));
        println!("server pinned to CPU 0; the mocks and this driver on CPUs 1-{} (--no-pin to not)", cores - 1);
    }
    if let Some(line) = idle_polling() {
        println!("{line}");
    }
    let scratch = std::env::temp_dir().join(format!("tripstream-bench-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).expect("a scratch directory for the run logs");
    let setup = modes::Setup { pinned, scratch: scratch.clone(), url, pid: args.get("--pid") };
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    match args.get::<String>("--mode").as_deref().unwrap_or("paced") {
        "paced" if setup.url.is_none() => paced(&args, pace, &setup, &rt),
        "full" => modes::full(&args, &setup, &rt, false),
        "burst" => modes::full(&args, &setup, &rt, true),
        "http2" if setup.url.is_none() => modes::http2(&args, &setup, &rt),
        "paced" | "http2" => eprintln!("--url works with --mode full and --mode burst"),
        other => eprintln!("--mode {other}: one of paced, full, burst, http2"),
    }
    let _ = std::fs::remove_dir_all(&scratch);
}

/// The paced mode: `--streams` concurrent streams, then 200, each on a fresh server, each twice.
fn paced(args: &Args, pace: Duration, setup: &modes::Setup, rt: &tokio::runtime::Runtime) {
    let streams: usize = args.get("--streams").unwrap_or(10_000);
    let ramp = Duration::from_millis(args.get("--ramp-ms").unwrap_or(1000));
    let (_mock, mock_port) = spawn("mock", &["--pace-ms", &pace.as_millis().to_string()], &[]);
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
    let server_cpus: &[&str] = if setup.pinned { &["--cpus", "0"] } else { &[] };
    for n in [streams, 200] {
        // A fresh server per size, so its memory is this size's alone. The same load runs twice: a
        // fresh process pays once for the memory it grows into (the kernel zeroes every new page), a
        // long-lived replica reuses it, so the second round is what a replica in service spends.
        let upstream = format!("http://127.0.0.1:{mock_port}");
        let runlog = setup.scratch.join(format!("runlog-{n}.db"));
        let runlog = runlog.to_str().expect("a UTF-8 temporary directory");
        let args = [&["--openai", &upstream, "--runlog", runlog], server_cpus].concat();
        let (mut server, port) = spawn("server", &args, &[]);
        let rss_at_start = usage(server.id()).rss_kib;
        let load = Load {
            base: format!("http://127.0.0.1:{port}"),
            streams: n,
            concurrency: n,
            ramp,
            wire: Wire::H2c,
            // Distinct interests: no two requests coalesce, every one is a generation.
            body: Arc::new(|i| {
                format!(
                    r#"{{"location": "Kyoto", "startDate": "2025-11-10", "endDate": "2025-11-10", "budget": "medium", "interests": ["b{i}"]}}"#
                )
            }),
            server: Some(server.id()),
            open_connections: false,
        };
        for round in ["fresh server", "second round, same server"] {
            let report = server.measure(rt, &load, rss_at_start);
            report.print(&format!("{n} concurrent streams, {round}"), Some(upstream_alone));
        }
    }
}

/// How an idle core of this (virtual) machine waits, when the guest kernel says: with halt polling off
/// (`guest_halt_poll_ns` 0), an idle core halts at once, and every write that wakes a reader on it (the
/// server's events to this driver, its requests to the mocks) pays the hypervisor's wake-up inside the
/// server's own system call. On this project's machines that is a fifth of a burst's server time (perf,
/// `sock_def_readable`); with 200 µs of polling a Kyoto burst's p99 halved. A figure measured with one
/// setting does not compare with one measured with another.
fn idle_polling() -> Option<String> {
    let read = |p: &str| std::fs::read_to_string(p).ok().map(|s| s.trim().to_owned());
    let driver = read("/sys/devices/system/cpu/cpuidle/current_driver")?;
    let polling = match read("/sys/module/haltpoll/parameters/guest_halt_poll_ns") {
        Some(ns) if ns == "0" => {
            "halt polling off: waking an idle core is a hypervisor exit, paid by the writer".to_owned()
        }
        Some(ns) => format!("halt polling for up to {ns} ns before halting"),
        None => "no guest halt polling".to_owned(),
    };
    Some(format!("idle cores: cpuidle driver {driver}, {polling}"))
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

/// Spawns this binary in another role, with `env` added to its environment, and reads the port it prints.
fn spawn(role: &str, extra: &[&str], env: &[(&str, &str)]) -> (Role, u16) {
    let mut child = Command::new(std::env::current_exe().expect("the bench binary"))
        .args(["--role", role])
        .args(extra)
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the role starts");
    let mut stdout = BufReader::new(child.stdout.take().expect("piped"));
    let mut line = String::new();
    stdout.read_line(&mut line).expect("a port line");
    let port = line.trim().strip_prefix("PORT ").and_then(|p| p.parse().ok()).expect("PORT <n>");
    (Role { stdin: child.stdin.take().expect("piped"), stdout, child }, port)
}

/// A child process killed when the driver ends, however it ends.
pub struct Role {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Role {
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// The server's allocations so far.
    fn allocations(&mut self) -> Option<Allocations> {
        writeln!(self.stdin).ok()?;
        let mut line = String::new();
        self.stdout.read_line(&mut line).ok()?;
        let mut numbers = line.trim().strip_prefix("ALLOCATIONS ")?.split(' ');
        let mut next = || numbers.next()?.parse::<i64>().ok();
        Some(Allocations { count: next()? as u64, bytes: next()? as u64, live: next()?, peak: next()? })
    }

    /// One round of `load` against this server, with the allocations it made.
    pub fn measure(&mut self, rt: &tokio::runtime::Runtime, load: &Load, rss_at_start: u64) -> load::Report {
        let before = self.allocations();
        let mut report = rt.block_on(load::run(load, rss_at_start));
        report.allocations = before.zip(self.allocations()).map(|(before, after)| Allocations {
            count: after.count - before.count,
            bytes: after.bytes - before.bytes,
            live: after.live - before.live,
            // The round's highest heap over what it started with.
            peak: after.peak - before.live,
        });
        report
    }
}

impl Drop for Role {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
