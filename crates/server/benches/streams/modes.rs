//! What each mode runs: which upstreams, which load, and what it prints.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tripstream_testkit::weather::OpenWeatherMap;
use tripstream_testkit::{Gemini, Protocol, Reply, TestCa, one_day_plan};

use crate::load::{self, Load, Report, Wire};
use crate::roles::CHUNKS;
use crate::{Args, Role, spawn, usage};

/// Where the server under test runs and how the driver measures it.
pub struct Setup {
    /// The server is pinned to CPU 0, the mocks and the driver to the rest.
    pub pinned: bool,
    /// Run logs (and the CA) go here; removed at the end.
    pub scratch: PathBuf,
    /// Another implementation to load instead of starting tripstream (`--url`).
    pub url: Option<String>,
    /// Its process, to measure (`--pid`).
    pub pid: Option<u32>,
}

/// The server under test: tripstream started in its role, or what `--url` names.
struct Target {
    base: String,
    pid: Option<u32>,
    /// The run log of tripstream started here (a SQLite file).
    runlog: Option<String>,
    rss_at_start: u64,
    role: Option<Role>,
}

impl Target {
    /// One round of `load`, with the server's allocations when it was started here.
    fn measure(&mut self, rt: &tokio::runtime::Runtime, load: &Load) -> Report {
        match &mut self.role {
            Some(role) => role.measure(rt, load, self.rss_at_start),
            None => rt.block_on(load::run(load, self.rss_at_start)),
        }
    }
}

impl Setup {
    /// What the two rounds are called: the server under test is fresh only when started here.
    fn rounds(&self) -> [&'static str; 2] {
        match self.url {
            Some(_) => ["first round", "second round"],
            None => ["fresh server", "second round, same server"],
        }
    }

    fn target(&self, name: &str, upstreams: &[&str], env: &[(&str, &str)]) -> Target {
        if let Some(url) = &self.url {
            let rss_at_start = self.pid.map_or(0, |pid| usage(pid).rss_kib);
            return Target { base: url.clone(), pid: self.pid, runlog: None, rss_at_start, role: None };
        }
        let runlog = self.scratch.join(format!("runlog-{name}.db"));
        let runlog = runlog.to_str().expect("a UTF-8 temporary directory");
        let cpus: &[&str] = if self.pinned { &["--cpus", "0"] } else { &[] };
        let (server, port) = spawn("server", &[upstreams, &["--runlog", runlog], cpus].concat(), env);
        let rss_at_start = usage(server.id()).rss_kib;
        Target {
            base: format!("http://127.0.0.1:{port}"),
            pid: Some(server.id()),
            runlog: Some(runlog.to_owned()),
            rss_at_start,
            role: Some(server),
        }
    }
}

/// Starts the mock upstreams on a runtime of their own, on a thread of their own (on the driver's
/// cores), and returns what `start` made.
fn upstreams<T: Send + 'static>(start: impl AsyncFnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        // The upstreams stand for services on other machines: on the driver's core, they yield to it,
        // so a burst's clients are not slowed by the mocks answering the server. Linux applies a
        // process priority set with `who = 0` to the calling thread alone.
        // SAFETY: setpriority reads its integer arguments only.
        unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, 10) };
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async move {
            let _ = tx.send(start().await);
            std::future::pending::<()>().await
        });
    });
    rx.recv().expect("the mock upstreams start")
}

/// Tomorrow in Japan, where the mock geocoder puts every place: inside the forecast's horizon.
fn tomorrow() -> String {
    let tz = jiff::tz::TimeZone::get("Asia/Tokyo").expect("the bundled time zone database");
    tz.to_datetime(jiff::Timestamp::now()).date().tomorrow().expect("a date after today").to_string()
}

/// Requests for tomorrow, each unique. With `unique` places, every stream's place is geocoded and
/// forecast for it alone, so nothing is cached; otherwise every stream plans Kyoto, a bundled place
/// (no geocoding) whose forecast is fetched once.
fn requests(round: usize, unique: bool) -> Arc<dyn Fn(usize) -> String + Send + Sync> {
    let date = tomorrow();
    let run = std::process::id();
    Arc::new(move |i| {
        let (location, interest) = match unique {
            true => (format!("Benchtown {run}-{round}-{i}"), String::new()),
            false => ("Kyoto".to_owned(), format!(r#", "interests": ["r{run}-{round}-{i}"]"#)),
        };
        format!(
            r#"{{"location": "{location}", "startDate": "{date}", "endDate": "{date}", "budget": "medium"{interest}}}"#
        )
    })
}

/// The reply straight from a mock, `runs` times: the upstream's own time.
async fn reply_alone(client: &reqwest::Client, url: &str, body: &'static str) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..3 {
        let started = Instant::now();
        let response = client.post(url).header("x-goog-api-key", "k").body(body).send().await.unwrap();
        assert!(response.status().is_success(), "the mock answers: {}", response.status());
        let _ = response.bytes().await.unwrap();
        total += started.elapsed();
    }
    total / 3
}

const GEMINI_BODY: &str = r#"{"contents": [{"role": "user", "parts": [{"text": "Plan a day."}]}]}"#;

/// The full path: OpenWeatherMap-format weather (geocoding and forecast), a Gemini-format reply of 40
/// chunks `--pace-ms` apart, the run log in SQLite, HTTP/1.1 clients, every request unique; `--streams`
/// at `--concurrency` at once. `burst` opens them all at the same instant instead, and reports the
/// time to first event above all. `--places bundled` plans Kyoto every time instead of a new place.
pub fn full(args: &Args, setup: &Setup, rt: &tokio::runtime::Runtime, burst: bool) {
    let pace = Duration::from_millis(args.get("--pace-ms").unwrap_or(25));
    let chunks: usize = args.get("--chunks").unwrap_or(CHUNKS);
    let streams: usize = args.get("--streams").unwrap_or(if burst { 200 } else { 600 });
    let concurrency: usize = if burst { streams } else { args.get("--concurrency").unwrap_or(200) };
    let ramp = Duration::from_millis(args.get("--ramp-ms").unwrap_or(if burst { 0 } else { 1000 }));
    let gemini_at = ([127, 0, 0, 1], args.get("--gemini-port").unwrap_or(0)).into();
    let weather_at = ([127, 0, 0, 1], args.get("--weather-port").unwrap_or(0)).into();
    let (gemini, weather) = upstreams(async move || {
        let reply = Reply::new(&one_day_plan(), chunks, pace);
        let gemini = Gemini::start_on(gemini_at, Protocol::Http1, reply).await.expect("the Gemini mock starts");
        (gemini, OpenWeatherMap::start_on(weather_at).await.expect("the OpenWeatherMap mock starts"))
    });
    println!("mock Gemini at {} (GEMINI_BASE_URL), mock OpenWeatherMap at {}", gemini.base_url(), weather.base_url());
    let alone = rt.block_on(async {
        let url = format!("{}/v1beta/models/m:streamGenerateContent?alt=sse", gemini.base_url());
        reply_alone(&reqwest::Client::new(), &url, GEMINI_BODY).await
    });
    println!("mock Gemini: {chunks} chunks, one every {pace:?}: {alone:?} per reply, read directly");
    let name = if burst { "burst" } else { "full" };
    let unique = match args.get::<String>("--places").as_deref() {
        None | Some("unique") => true,
        Some("bundled") => false,
        Some(other) => panic!("--places {other}: unique or bundled"),
    };
    let mut target = setup.target(name, &["--gemini", &gemini.base_url(), "--weather", &weather.base_url()], &[]);
    let places = if unique { "each to a new place" } else { "all to Kyoto" };
    let open_connections = match args.get::<String>("--connections").as_deref() {
        None | Some("new") => false,
        Some("open") => true,
        Some(other) => panic!("--connections {other}: new or open"),
    };
    let places = if open_connections { format!("{places}, on connections open before") } else { places.to_owned() };
    // A burst on new connections is read on bare sockets unless `--client reqwest`: reqwest's own work
    // per connection was most of what it measured (see `Wire::Raw`).
    let wire = match args.get::<String>("--client").as_deref() {
        None if burst && !open_connections => Wire::Raw,
        None | Some("reqwest") => Wire::Http1,
        Some("raw") if !open_connections => Wire::Raw,
        Some(other) => panic!("--client {other}: raw (new connections only) or reqwest"),
    };
    let client = if wire == Wire::Raw { "HTTP/1.1 on bare sockets" } else { "HTTP/1.1" };
    let shape = if burst {
        format!("{streams} streams opened at the same instant, {places}")
    } else {
        format!("{streams} streams, {concurrency} at once, started over {ramp:?}, {places}")
    };
    for (round, title) in setup.rounds().into_iter().enumerate() {
        let load = Load {
            base: target.base.clone(),
            streams,
            concurrency,
            ramp,
            wire,
            body: requests(round, unique),
            server: target.pid,
            open_connections,
        };
        let since = jiff::Timestamp::now().as_millisecond();
        let report = target.measure(rt, &load);
        report.print(&format!("{name}: {shape}, {client}, {title}"), Some(alone));
        if let Some(runlog) = &target.runlog {
            rt.block_on(server_first_events(runlog, since, streams));
        }
    }
    let calls = weather.calls();
    println!(
        "\nupstream calls: geocoding {}, forecasts {}, Gemini {} (refused: {} weather, {} Gemini)",
        calls.geocode.load(Ordering::Relaxed),
        calls.forecast.load(Ordering::Relaxed),
        gemini.arrivals().len(),
        calls.refused.load(Ordering::Relaxed),
        gemini.rejected().len()
    );
}

/// The server's own time to first event for the round that started at `since` (ms since the epoch), from
/// its run log: counted from each connection's accept, so it leaves out the driver's own delays (its
/// connects, reading the answers) and keeps the server's (the accept queue, parsing, the handler).
async fn server_first_events(runlog: &str, since: i64, streams: usize) {
    let db = tripstream_adapters::runlog::Db::connect(&format!("sqlite://{runlog}")).await.expect("the run log opens");
    // The server writes what it gathered within 100 ms of a stream's end.
    let mut firsts: Vec<Duration> = Vec::new();
    for _ in 0..20 {
        let rows = db.rows_since(since).await.expect("the run log reads");
        firsts =
            rows.iter().filter_map(|r| r.first_event_ms).map(|ms| Duration::from_millis(ms.max(0) as u64)).collect();
        if firsts.len() >= streams {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    firsts.sort_unstable();
    println!(
        "  first event, server's    p50 {:?}  p99 {:?}  (from accept, whole ms, {} streams in its run log)",
        Report::percentile(&firsts, 0.5),
        Report::percentile(&firsts, 0.99),
        firsts.len()
    );
}

/// A provider on HTTP/2 over TLS that allows `--stream-limit` streams per connection (Google's 100),
/// replies of 40 chunks `--pace-ms` apart, `--streams` opened at once; tripstream trusts the mock's CA
/// through `SSL_CERT_FILE`. Reports how many streams were at the provider at once, the connections it
/// took, and how long streams took against one reply alone.
pub fn http2(args: &Args, setup: &Setup, rt: &tokio::runtime::Runtime) {
    let pace = Duration::from_millis(args.get("--pace-ms").unwrap_or(100));
    let streams: usize = args.get("--streams").unwrap_or(1000);
    let limit: u32 = args.get("--stream-limit").unwrap_or(tripstream_testkit::DEFAULT_STREAM_LIMIT);
    let ca = TestCa::new().expect("a throwaway CA");
    let ca_file = ca.write_ca(&setup.scratch).expect("the CA written to the scratch directory");
    let tls = ca.server_config(&[b"h2"]).expect("a TLS configuration");
    let gemini = upstreams(async move || {
        let reply = Reply::new(&one_day_plan(), CHUNKS, pace);
        Gemini::start(Protocol::Http2Tls { tls, max_concurrent_streams: limit }, reply).await.expect("the mock")
    });
    let alone = rt.block_on(async {
        let ca = reqwest::Certificate::from_pem(ca.ca_pem().as_bytes()).unwrap();
        let client = reqwest::Client::builder().add_root_certificate(ca).build().unwrap();
        let url = format!("{}/v1beta/models/m:streamGenerateContent?alt=sse", gemini.base_url());
        reply_alone(&client, &url, GEMINI_BODY).await
    });
    println!(
        "mock Gemini over TLS, HTTP/2 only, {limit} streams per connection: {CHUNKS} chunks, one every {pace:?}: \
         {alone:?} per reply, read directly"
    );
    let ca_file = ca_file.to_str().expect("a UTF-8 temporary directory");
    let mut target = setup.target("http2", &["--gemini", &gemini.base_url()], &[("SSL_CERT_FILE", ca_file)]);
    for title in setup.rounds() {
        let opened = gemini.connections().handshakes.load(Ordering::Relaxed);
        gemini.take_peak();
        let load = Load {
            base: target.base.clone(),
            streams,
            concurrency: streams,
            ramp: Duration::ZERO,
            wire: Wire::H2c,
            body: Arc::new(|i| {
                format!(
                    r#"{{"location": "Kyoto", "startDate": "2025-11-10", "endDate": "2025-11-10", "budget": "medium", "interests": ["h{i}"]}}"#
                )
            }),
            server: target.pid,
            open_connections: false,
        };
        let report = target.measure(rt, &load);
        report.print(&format!("http2: {streams} streams opened at once, {title}"), None);
        let opened = gemini.connections().handshakes.load(Ordering::Relaxed) - opened;
        println!("  streams completed       {} / {streams}", streams - report.errors);
        println!("  upstream in flight      {} at the peak", gemini.take_peak());
        println!("  TLS connections opened  {opened}");
        println!(
            "  complete p50 / p99      {:?} / {:?}, against {alone:?} for one reply alone",
            Report::percentile(&report.durations, 0.5),
            Report::percentile(&report.durations, 0.99)
        );
    }
}
