//! Whether this replica should be sent traffic: not while it drains after SIGTERM, and not while a
//! configured store (the run log's database, the shared Redis) does not answer. What `/health/ready`
//! says; a load balancer or Kubernetes acts on it. Checks are cached for a second, so probes (or anyone
//! else) asking often cost the stores nothing more.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tripstream_adapters::eventlog::EventLog;
use tripstream_adapters::runlog::Db;

use crate::admission::Admission;

/// How long one store check may take before the store counts as down.
const CHECK_TIMEOUT: Duration = Duration::from_secs(1);
/// How long a report is reused.
const REUSE: Duration = Duration::from_secs(1);

/// The run log's database's answer, and Redis's when configured: `ok`, `migrating` or `down`.
type Stores = (&'static str, Option<&'static str>);

#[derive(Clone)]
pub struct Readiness {
    inner: Arc<Inner>,
}

struct Inner {
    /// Cancelled on SIGTERM: the replica finishes its streams and takes no new ones.
    draining: CancellationToken,
    db: Db,
    shared: Option<Arc<dyn EventLog>>,
    /// No place for a new generation: the balancer should send new streams elsewhere.
    admission: Arc<Admission>,
    /// The stores' last answers, and when.
    last: Mutex<Option<(Instant, Stores)>>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// `ready`, `draining`, `saturated` (no place for another generation), `starting` (the database's
    /// schema is not applied yet) or `unavailable`.
    pub status: &'static str,
    /// The run log's database: `ok`, `migrating` or `down`.
    pub run_log: &'static str,
    /// The shared Redis, when one is configured: `ok` or `down`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub redis: Option<&'static str>,
}

impl Report {
    pub fn is_ready(&self) -> bool {
        self.status == "ready"
    }
}

impl Readiness {
    pub fn new(
        draining: CancellationToken,
        db: Db,
        shared: Option<Arc<dyn EventLog>>,
        admission: Arc<Admission>,
    ) -> Self {
        Readiness { inner: Arc::new(Inner { draining, db, shared, admission, last: Mutex::new(None) }) }
    }

    pub fn is_draining(&self) -> bool {
        self.inner.draining.is_cancelled()
    }

    pub async fn check(&self) -> Report {
        let inner = &self.inner;
        let (run_log, redis) = self.stores().await;
        // Draining and saturation are this process's own state: always read fresh.
        let status = match (self.is_draining(), run_log, redis) {
            (true, _, _) => "draining",
            _ if inner.admission.saturated() => "saturated",
            (_, "ok", None | Some("ok")) => "ready",
            // Never reached its database yet: still starting, whether it answers now or not.
            _ if !inner.db.is_migrated() => "starting",
            _ => "unavailable",
        };
        Report { status, run_log, redis }
    }

    /// The stores' answers: the run log's database, and Redis when configured.
    async fn stores(&self) -> Stores {
        let inner = &self.inner;
        if let Some((at, stores)) = *inner.last.lock().unwrap_or_else(|p| p.into_inner())
            && at.elapsed() < REUSE
        {
            return stores;
        }
        let db = async {
            match tokio::time::timeout(CHECK_TIMEOUT, inner.db.ping()).await {
                Ok(Ok(())) if inner.db.is_migrated() => "ok",
                Ok(Ok(())) => "migrating",
                _ => "down",
            }
        };
        let redis = async {
            let log = inner.shared.as_ref()?;
            Some(match tokio::time::timeout(CHECK_TIMEOUT, log.ping()).await {
                Ok(Ok(())) => "ok",
                _ => "down",
            })
        };
        let stores = tokio::join!(db, redis);
        *inner.last.lock().unwrap_or_else(|p| p.into_inner()) = Some((Instant::now(), stores));
        stores
    }
}
