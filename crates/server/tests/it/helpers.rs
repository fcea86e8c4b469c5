//! `spawn_app()`: the real application on port 0, and a client with one method per endpoint.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use eventsource_stream::Eventsource;
use futures::StreamExt;
use serde_json::Value;
use tokio::sync::oneshot;
pub use tripstream_adapters::http::Secret;
use tripstream_adapters::{BundledDestinations, Catalog, Climatology};
use tripstream_domain::rules::Finding;
use tripstream_engine::{Draft, DraftSink, Engine, GenerateError, GeneratorInfo, PlanContext, PlanGenerator};
pub use tripstream_server::config::{Millis, SecretUrl, Secs};
use tripstream_server::wiring::Services;
use tripstream_server::{Application, ServerConfig};

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    /// The run log's database, where the test makes its API keys.
    pub database_url: String,
    /// The SQLite file made for this app, removed with it.
    scratch: Option<std::path::PathBuf>,
    admin_key: tokio::sync::OnceCell<String>,
    /// Sending on it starts a graceful shutdown.
    pub shutdown: Option<oneshot::Sender<()>>,
    pub server: tokio::task::JoinHandle<()>,
}

/// A response's stream id and resume token.
pub fn stream_handle(response: &reqwest::Response) -> (String, String) {
    let header = |name: &str| response.headers()[name].to_str().unwrap().to_owned();
    (header("x-stream-id"), header("x-resume-token"))
}

/// An event's data without what names the caller's own things (`streamId`, `resumeToken`, and on
/// `complete` their saved copy's `planId`): what every reader of a run receives alike.
pub fn shared_part(data: &Value) -> Value {
    let mut data = data.clone();
    if let Some(object) = data.as_object_mut() {
        object.remove("streamId");
        object.remove("resumeToken");
        object.remove("planId");
    }
    data
}

/// One parsed SSE message.
#[derive(Debug, Clone)]
pub struct Message {
    pub id: String,
    pub data: Value,
}

impl Message {
    pub fn kind(&self) -> &str {
        self.data["type"].as_str().unwrap_or("")
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(ServerConfig::for_tests(), None).await
}

/// The app, once `/health/ready` says it is ready (its database migrated).
pub async fn spawn_app_with(config: ServerConfig, services: Option<Services>) -> TestApp {
    let app = spawn_app_unready(config, services, None).await;
    let started = std::time::Instant::now();
    while app.get("/health/ready").await.status() != 200 {
        assert!(started.elapsed() < Duration::from_secs(20), "the app never became ready");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    app
}

/// The app as soon as it listens, sharing streams through `shared` when given.
pub async fn spawn_app_unready(
    config: ServerConfig,
    services: Option<Services>,
    shared: Option<Arc<dyn tripstream_adapters::eventlog::EventLog>>,
) -> TestApp {
    let mut config = config;
    // A file rather than memory, so the test can make API keys in the app's own database.
    let mut scratch = None;
    if config.store.database_url.expose() == "sqlite::memory:" {
        let path = std::env::temp_dir().join(format!("{}.db", unique("tripstream-test")));
        config.store.database_url = SecretUrl::new(format!("sqlite://{}", path.display()));
        scratch = Some(path);
    }
    let database_url = config.store.database_url.expose().to_owned();
    let services = services.unwrap_or_else(|| Services::from_settings(&config.engine).unwrap());
    let app = Application::with_shared_log(config, services, shared).await.expect("the app builds");
    let base = format!("http://{}", app.local_addr());
    let (tx, rx) = oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        app.run_until_stopped(async move {
            let _ = rx.await;
        })
        .await
        .expect("the server runs");
    });
    TestApp {
        base,
        client: tripstream_adapters::http::client(std::time::Duration::from_secs(5)),
        database_url,
        scratch,
        admin_key: tokio::sync::OnceCell::new(),
        shutdown: Some(tx),
        server,
    }
}

pub fn seoul_body() -> &'static str {
    r#"{"location": "Seoul", "startDate": "2025-11-10", "endDate": "2025-11-12", "budget": "medium"}"#
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(path) = &self.scratch {
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
            }
        }
    }
}

impl TestApp {
    pub async fn post(&self, path: &str, body: &str, content_type: &str) -> reqwest::Response {
        self.client
            .post(format!("{}{path}", self.base))
            .header("content-type", content_type)
            .body(body.to_owned())
            .send()
            .await
            .expect("the request is sent")
    }

    pub async fn generate(&self, body: &str) -> reqwest::Response {
        self.post("/api/v1/plans/generate", body, "application/json").await
    }

    pub async fn stream(&self, body: &str) -> reqwest::Response {
        self.post("/api/v1/plans/generate/stream", body, "application/json").await
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(format!("{}{path}", self.base)).send().await.expect("the request is sent")
    }

    /// A new API key in the app's database.
    pub async fn key(&self, name: &str, admin: bool) -> String {
        let store = tripstream_adapters::keys::KeyStore::new(
            tripstream_adapters::runlog::Db::open(&self.database_url).await.expect("the test's database opens"),
        );
        let new = tripstream_adapters::keys::NewKey { name: name.into(), admin, ..Default::default() };
        store.create(new).await.expect("a key is made").1.expose().to_owned()
    }

    /// `GET` as an admin: `/health`'s details, stats, metrics.
    pub async fn admin_get(&self, path: &str) -> reqwest::Response {
        let key = self.admin_key.get_or_init(|| self.key("test admin", true)).await;
        self.client.get(format!("{}{path}", self.base)).bearer_auth(key).send().await.expect("the request is sent")
    }

    /// `GET /api/v1/plans/streams/{id}/events` after `last` with the stream's resume token.
    pub async fn resume(&self, stream_id: &str, last: Option<&str>, token: &str) -> reqwest::Response {
        let mut request = self
            .client
            .get(format!("{}/api/v1/plans/streams/{stream_id}/events", self.base))
            .header("x-resume-token", token);
        if let Some(last) = last {
            request = request.header("last-event-id", last);
        }
        request.send().await.expect("the request is sent")
    }

    /// `POST /api/v1/plans/streams/{id}/cancel` with the stream's resume token.
    pub async fn cancel(&self, stream_id: &str, token: &str) -> reqwest::Response {
        let url = format!("{}/api/v1/plans/streams/{stream_id}/cancel", self.base);
        self.client.post(url).header("x-resume-token", token).send().await.expect("the request is sent")
    }
}

pub async fn messages(response: reqwest::Response) -> Vec<Message> {
    let mut stream = response.bytes_stream().eventsource();
    let mut out = Vec::new();
    while let Some(event) = tokio::time::timeout(Duration::from_secs(30), stream.next()).await.expect("no stall") {
        let event = event.expect("well-formed SSE");
        out.push(Message { id: event.id, data: serde_json::from_str(&event.data).expect("data is JSON") });
    }
    out
}

/// A generator that writes one line and then waits forever, noting when it is dropped (cancelled).
pub struct Endless {
    pub dropped: Arc<AtomicBool>,
}

struct SetOnDrop(Arc<AtomicBool>);

impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

#[async_trait]
impl PlanGenerator for Endless {
    fn info(&self) -> GeneratorInfo {
        GeneratorInfo { provider: "endless".into(), model: "m".into(), prompt_version: "v".into() }
    }

    async fn generate_draft(&self, _: &PlanContext, sink: &mut dyn DraftSink) -> Result<Draft, GenerateError> {
        let _guard = SetOnDrop(self.dropped.clone());
        sink.text("Day 1 —");
        std::future::pending().await
    }

    async fn refine_plan(
        &self,
        _: &PlanContext,
        _: &Draft,
        _: &[Finding],
        _: &mut dyn DraftSink,
    ) -> Result<Draft, GenerateError> {
        std::future::pending().await
    }
}

pub fn endless_services(config: &ServerConfig) -> (Services, Arc<AtomicBool>) {
    let dropped = Arc::new(AtomicBool::new(false));
    (services_with(Arc::new(Endless { dropped: dropped.clone() }), config), dropped)
}

/// The default wiring around `generator`.
pub fn services_with(generator: Arc<dyn PlanGenerator>, config: &ServerConfig) -> Services {
    let provider = generator.info().provider;
    Services {
        engine: Engine::new(generator, Arc::new(Climatology), config.engine.engine_config()),
        destinations: Arc::new(BundledDestinations::new(Catalog::bundled())),
        weather: "climatology".into(),
        generators: vec![provider],
    }
}

/// The offline planner, counting the drafts it is asked for: how many generations really ran.
pub struct Counting {
    inner: Arc<dyn PlanGenerator>,
    pub drafts: Arc<std::sync::atomic::AtomicUsize>,
}

#[async_trait]
impl PlanGenerator for Counting {
    fn info(&self) -> GeneratorInfo {
        self.inner.info()
    }

    async fn generate_draft(&self, ctx: &PlanContext, sink: &mut dyn DraftSink) -> Result<Draft, GenerateError> {
        self.drafts.fetch_add(1, Ordering::SeqCst);
        self.inner.generate_draft(ctx, sink).await
    }

    async fn refine_plan(
        &self,
        ctx: &PlanContext,
        current: &Draft,
        findings: &[Finding],
        sink: &mut dyn DraftSink,
    ) -> Result<Draft, GenerateError> {
        self.inner.refine_plan(ctx, current, findings, sink).await
    }

    async fn regenerate_day(
        &self,
        ctx: &PlanContext,
        day: &tripstream_engine::DayRequest<'_>,
        sink: &mut dyn DraftSink,
    ) -> Result<Draft, GenerateError> {
        self.inner.regenerate_day(ctx, day, sink).await
    }
}

/// Services over a [`Counting`] offline planner that streams a line every `delay`.
pub fn counting_services(config: &ServerConfig, delay: Duration) -> (Services, Arc<std::sync::atomic::AtomicUsize>) {
    let drafts = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let planner = tripstream_adapters::OfflinePlanner::new(
        Catalog::bundled(),
        tripstream_adapters::OfflineConfig { chunk_delay: delay },
    );
    let generator = Counting { inner: Arc::new(planner), drafts: drafts.clone() };
    (services_with(Arc::new(generator), config), drafts)
}

/// A name no other test uses, for Redis key prefixes and PostgreSQL schemas.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}_{}_{}", std::process::id(), uuid::Uuid::now_v7().simple())
}

/// The stream without the plan's itinerary: every event's type, progress, step and message, and the
/// count of chunks between milestones, so the snapshot pins the contract rather than the data files.
pub fn transcript(messages: &[Message]) -> String {
    let mut out = String::new();
    let mut chunks = 0;
    for m in messages {
        let d = &m.data;
        if m.kind() == "chunk" {
            chunks += 1;
            continue;
        }
        if chunks > 0 {
            out.push_str(&format!("  ({chunks} chunks)\n"));
            chunks = 0;
        }
        let line = match m.kind() {
            "day" => format!("day {} {} day={}", d["progress"], d["step"], d["day"]["day"]),
            "done" => "done".to_owned(),
            "complete" => format!(
                "complete {} {} {} plan.days={} planId={}",
                d["progress"],
                d["step"],
                d["message"],
                d["plan"]["days"].as_array().unwrap().len(),
                // Random: only its form is pinned.
                match d["planId"].as_str() {
                    Some(id) if id.starts_with("plan_") && id.len() == 31 => "plan_…",
                    Some(_) => "malformed",
                    None => "none",
                }
            ),
            kind => format!("{kind} {} {} {}", d["progress"], d["step"], d["message"]),
        };
        out.push_str(&line);
        out.push('\n');
    }
    out
}

pub fn redis_url() -> String {
    std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// Polls until `f` holds, for at most `limit`.
pub async fn eventually<F: AsyncFnMut() -> bool>(limit: Duration, mut f: F) -> bool {
    let start = std::time::Instant::now();
    while start.elapsed() < limit {
        if f().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// A TCP proxy to PostgreSQL or Redis that can be cut (existing connections closed, new ones refused)
/// and restored; it counts the connections it refused, so a test can wait until a client tried, and
/// those it accepted.
pub struct Cuttable {
    pub port: u16,
    up: Arc<AtomicBool>,
    epoch: Arc<tokio::sync::watch::Sender<u64>>,
    refused: Arc<std::sync::atomic::AtomicUsize>,
    accepted: Arc<std::sync::atomic::AtomicUsize>,
}

impl Cuttable {
    pub async fn start(to: std::net::SocketAddr) -> Cuttable {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let up = Arc::new(AtomicBool::new(true));
        let epoch = Arc::new(tokio::sync::watch::channel(0u64).0);
        let refused = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (up2, epoch2, refused2, accepted2) = (up.clone(), epoch.clone(), refused.clone(), accepted.clone());
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if !up2.load(Ordering::SeqCst) {
                    refused2.fetch_add(1, Ordering::SeqCst);
                    continue; // dropped: refused
                }
                accepted2.fetch_add(1, Ordering::SeqCst);
                let mut cut = epoch2.subscribe();
                tokio::spawn(async move {
                    let Ok(mut server) = tokio::net::TcpStream::connect(to).await else { return };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = cut.changed() => {}
                    }
                });
            }
        });
        Cuttable { port, up, epoch, refused, accepted }
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    /// Waits until a client tried to connect while the proxy was cut.
    pub async fn refused_a_connection(&self) {
        let refused = self.refused.clone();
        let before = refused.load(Ordering::SeqCst);
        let tried = eventually(Duration::from_secs(10), async || refused.load(Ordering::SeqCst) > before).await;
        assert!(tried, "nobody tried to connect during the outage");
    }

    pub fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        self.epoch.send_modify(|e| *e += 1);
    }

    pub fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

/// Reads at most `n` messages of a response, then drops the connection.
pub async fn read_some(response: reqwest::Response, n: usize) -> Vec<Message> {
    let mut events = response.bytes_stream().eventsource();
    let mut out = Vec::new();
    while out.len() < n {
        match tokio::time::timeout(Duration::from_secs(10), events.next()).await.expect("no stall") {
            Some(Ok(e)) => out.push(Message { id: e.id, data: serde_json::from_str(&e.data).unwrap() }),
            _ => break,
        }
    }
    out
}
