//! Saved plans: every completed plan, kept for its owner in the run log's database (`saved_plans`, one row
//! per version in `saved_plan_versions`), and the read-only share links to them (`plan_shares`).
//!
//! A saved plan's id (`plan_…`) and a share link's (`shr_…`) are 130 random bits: nobody can guess one. An
//! id is still never a credential for a plan: who may read it is the server's decision, by its owner
//! (`key:<key id>`, `session:<page session id>` or `anonymous`). A share id is one, by design: whoever
//! holds it reads the plan, until it is revoked.
//!
//! One generated plan (its `pln_…` id) is saved once per owner: a cache replay or a joiner of the same
//! generation finds the owner's copy instead of making another.

use std::borrow::Cow;
use std::collections::HashSet;

use serde::Serialize;
use sqlx::{QueryBuilder, Row};
use tripstream_domain::{Plan, RawPlanRequest};

use crate::keys::{is_random_id, random_crockford};
use crate::runlog::{Db, statement_chunks, with_pool};

/// What every saved plan's id starts with.
pub const PLAN_PREFIX: &str = "plan_";
/// What every share link's id starts with.
pub const SHARE_PREFIX: &str = "shr_";
/// Random characters after the prefix: 26 × 5 = 130 bits.
const ID_CHARS: usize = 26;
/// The most plans one list returns.
pub const LIST_MAX: u32 = 100;

/// The owner of plans saved for nobody in particular (an anonymous caller without a page session).
pub const ANONYMOUS: &str = "anonymous";

const SUMMARY: &str = "id, owner, title, location, start_date, end_date, latest_version, created_at_ms, updated_at_ms";

#[derive(Debug, thiserror::Error)]
pub enum PlanStoreError {
    #[error("saved plans: {0}")]
    Database(#[from] sqlx::Error),
    #[error("saved plans: the operating system's random number generator failed")]
    Random(#[source] getrandom::Error),
    #[error("saved plans: the plan {id} is stored as JSON that does not parse: {source}")]
    Corrupt {
        id: String,
        #[source]
        source: serde_json::Error,
    },
}

/// A saved plan as lists show it: what it is, never the plan itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct PlanSummary {
    pub plan_id: String,
    /// Who may read it; never sent to clients (a session id is half of a page's cookie).
    #[serde(skip)]
    pub owner: String,
    pub title: String,
    pub location: String,
    pub start_date: String,
    pub end_date: String,
    pub latest_version: u32,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

/// One version of a saved plan.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct SavedPlan {
    #[serde(flatten)]
    pub summary: PlanSummary,
    pub version: u32,
    pub version_created_at_ms: i64,
    pub request: RawPlanRequest,
    pub plan: Plan,
}

/// A version in a plan's history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct VersionInfo {
    pub version: u32,
    pub created_at_ms: i64,
}

/// A share link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Share {
    pub share_id: String,
    pub plan_id: String,
    pub created_at_ms: i64,
}

/// Whether `id` has the form of a saved plan's id (checked before any look-up).
pub fn is_plan_id(id: &str) -> bool {
    is_random_id(id, PLAN_PREFIX, ID_CHARS)
}

/// Whether `id` has the form of a share link's id.
pub fn is_share_id(id: &str) -> bool {
    is_random_id(id, SHARE_PREFIX, ID_CHARS)
}

fn new_id(prefix: &str) -> Result<String, PlanStoreError> {
    Ok(format!("{prefix}{}", random_crockford(ID_CHARS).map_err(PlanStoreError::Random)?))
}

fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

/// How long a save waits for others to share its transaction. Each transaction is a commit with its
/// write-ahead-log frames, and saving every plan in one of its own was a fifth of a stream's CPU in the
/// full-path benchmark (issue 14); the `complete` event waits this much longer, once per stream.
const SAVE_GATHER: std::time::Duration = std::time::Duration::from_millis(25);

/// The saved plans and their share links, in a database that is already migrated. Cheap to clone.
#[derive(Clone, Debug)]
pub struct SavedPlans {
    db: Db,
    /// Saves waiting for the next shared transaction.
    pending: std::sync::Arc<std::sync::Mutex<Pending>>,
    /// Where the task writing them runs, so that a shutdown waits for it; without one, on the runtime.
    tasks: Option<tokio_util::task::TaskTracker>,
}

#[derive(Debug, Default)]
struct Pending {
    saves: Vec<Save>,
    /// A task is gathering `saves` and will write them.
    gathering: bool,
}

/// One plan to save, and where its id goes.
#[derive(Debug)]
struct Save {
    row: SaveRow,
    done: tokio::sync::oneshot::Sender<Result<String, PlanStoreError>>,
}

#[derive(Debug)]
struct SaveRow {
    id: String,
    owner: String,
    source_plan: String,
    request: String,
    location: String,
    start: String,
    end: String,
    title: String,
    plan: String,
    now: i64,
}

impl SavedPlans {
    pub fn new(db: Db) -> Self {
        SavedPlans { db, pending: Default::default(), tasks: None }
    }

    /// The same store, writing its gathered saves on `tasks`, which a server's shutdown waits for.
    pub fn tracked_by(self, tasks: tokio_util::task::TaskTracker) -> Self {
        SavedPlans { tasks: Some(tasks), ..self }
    }

    /// Saves `plan`, generated for `request`, as version 1 of a new plan of `owner`, unless `owner` already
    /// has this generated plan (the same `plan.id`: a cache replay, a joiner, a resumed stream); either way,
    /// the id of the owner's saved plan. Saves arriving within [`SAVE_GATHER`] of each other share one
    /// transaction, written by a task of its own, so a caller that goes away loses no one else's save.
    pub async fn save(&self, owner: &str, request: &RawPlanRequest, plan: &Plan) -> Result<String, PlanStoreError> {
        // How this copy was delivered is not part of the plan (copied only for a plan from the cache).
        let plan = match plan.metadata.cached {
            false => Cow::Borrowed(plan),
            true => {
                let mut plan = plan.clone();
                plan.metadata.cached = false;
                Cow::Owned(plan)
            }
        };
        let row = SaveRow {
            id: new_id(PLAN_PREFIX)?,
            owner: owner.to_owned(),
            source_plan: plan.id.clone(),
            request: serde_json::to_string(request).unwrap_or_default(),
            location: plan.location.clone(),
            start: plan.start_date.to_string(),
            end: plan.end_date.to_string(),
            title: plan.title.clone(),
            plan: serde_json::to_string(&plan).unwrap_or_default(),
            now: now_ms(),
        };
        let (done, saved) = tokio::sync::oneshot::channel();
        let gather = {
            let mut pending = self.pending.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            pending.saves.push(Save { row, done });
            !std::mem::replace(&mut pending.gathering, true)
        };
        if gather {
            let this = self.clone();
            let write = async move {
                tokio::time::sleep(SAVE_GATHER).await;
                this.write_pending().await;
            };
            match &self.tasks {
                Some(tasks) => drop(tasks.spawn(write)),
                None => drop(tokio::spawn(write)),
            }
        }
        saved.await.unwrap_or_else(|_| Err(PlanStoreError::Database(sqlx::Error::PoolClosed)))
    }

    /// Writes the saves gathered so far in one transaction; if it fails, each on its own, so that each
    /// caller gets its own answer.
    async fn write_pending(&self) {
        let saves = {
            let mut pending = self.pending.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            pending.gathering = false;
            std::mem::take(&mut pending.saves)
        };
        let rows: Vec<&SaveRow> = saves.iter().map(|s| &s.row).collect();
        match self.insert(&rows).await {
            Ok(ids) => {
                for (save, id) in saves.into_iter().zip(ids) {
                    let _ = save.done.send(Ok(id));
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, plans = saves.len(), "saving plans together failed; saving each alone");
                for save in saves {
                    let _ = save.done.send(self.insert(&[&save.row]).await.map(|mut ids| ids.remove(0)));
                }
            }
        }
    }

    /// Inserts `rows` in one transaction: the id of each owner's saved plan, in order. Each table gets one
    /// statement for many rows (each statement is a round trip to the database, and to SQLite's worker
    /// thread on the server's own cores); only a plan its owner already has is looked up alone.
    async fn insert(&self, rows: &[&SaveRow]) -> Result<Vec<String>, PlanStoreError> {
        // Statements of a few sizes, each prepared once (`statement_chunks`): 11 parameters a row, well
        // under either database's limit on them.
        macro_rules! insert_all {
            ($database:ty, $pool:expr) => {{
                let mut tx = $pool.begin().await?;
                let mut inserted = HashSet::with_capacity(rows.len());
                for chunk in statement_chunks(rows) {
                    let mut plans = QueryBuilder::<$database>::new(
                        "INSERT INTO saved_plans (id, owner, source_plan, request, location, start_date, end_date, \
                         title, latest_version, created_at_ms, updated_at_ms) ",
                    );
                    plans.push_values(chunk, |mut v, row| {
                        v.push_bind(row.id.as_str())
                            .push_bind(row.owner.as_str())
                            .push_bind(row.source_plan.as_str())
                            .push_bind(row.request.as_str())
                            .push_bind(row.location.as_str())
                            .push_bind(row.start.as_str())
                            .push_bind(row.end.as_str())
                            .push_bind(row.title.as_str())
                            .push_bind(1_i32)
                            .push_bind(row.now)
                            .push_bind(row.now);
                    });
                    // An owner's copy of this generated plan, saved before or earlier in this statement, stays.
                    plans.push(" ON CONFLICT (owner, source_plan) DO NOTHING RETURNING id");
                    inserted.extend(plans.build_query_scalar::<String>().fetch_all(&mut *tx).await?);
                    let new: Vec<&&SaveRow> = chunk.iter().filter(|row| inserted.contains(&row.id)).collect();
                    for new in statement_chunks(&new) {
                        let mut versions = QueryBuilder::<$database>::new(
                            "INSERT INTO saved_plan_versions (plan_id, version, plan, created_at_ms) ",
                        );
                        versions.push_values(new, |mut v, row| {
                            v.push_bind(row.id.as_str())
                                .push_bind(1_i32)
                                .push_bind(row.plan.as_str())
                                .push_bind(row.now);
                        });
                        versions.build().execute(&mut *tx).await?;
                    }
                }
                let mut ids = Vec::with_capacity(rows.len());
                for row in rows {
                    ids.push(if inserted.contains(&row.id) {
                        row.id.clone()
                    } else {
                        sqlx::query_scalar::<_, String>(
                            "SELECT id FROM saved_plans WHERE owner = $1 AND source_plan = $2",
                        )
                        .bind(&row.owner)
                        .bind(&row.source_plan)
                        .fetch_one(&mut *tx)
                        .await?
                    });
                }
                tx.commit().await?;
                ids
            }};
        }
        Ok(match self.db.pool() {
            crate::runlog::Pool::Sqlite(pool) => insert_all!(sqlx::Sqlite, pool),
            crate::runlog::Pool::Postgres(pool) => insert_all!(sqlx::Postgres, pool),
        })
    }

    /// Saves `plan` as the next version of the saved plan `id`; its number, or `None` when there is no such
    /// plan.
    pub async fn add_version(&self, id: &str, plan: &Plan) -> Result<Option<u32>, PlanStoreError> {
        let now = now_ms();
        let plan_json = serde_json::to_string(plan).unwrap_or_default();
        let version = with_pool!(self.db, pool => {
            let mut tx = pool.begin().await?;
            let version = sqlx::query_scalar::<_, i32>(
                "UPDATE saved_plans SET latest_version = latest_version + 1, updated_at_ms = $1, title = $2 \
                 WHERE id = $3 RETURNING latest_version",
            )
            .bind(now)
            .bind(&plan.title)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
            if let Some(version) = version {
                sqlx::query("INSERT INTO saved_plan_versions (plan_id, version, plan, created_at_ms) VALUES ($1, $2, $3, $4)")
                    .bind(id)
                    .bind(version)
                    .bind(&plan_json)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            version
        });
        Ok(version.map(|v| v as u32))
    }

    /// The plan's latest version, whoever owns it (the caller checks [`PlanSummary::owner`]).
    pub async fn latest(&self, id: &str) -> Result<Option<SavedPlan>, PlanStoreError> {
        self.version(id, None).await
    }

    /// Version `n` of the plan (the latest with `None`); `None` when the plan or the version does not exist.
    pub async fn version(&self, id: &str, n: Option<u32>) -> Result<Option<SavedPlan>, PlanStoreError> {
        if !is_plan_id(id) {
            return Ok(None);
        }
        let sql = format!(
            "SELECT p.request, v.version, v.plan, v.created_at_ms AS version_created_at_ms, \
             p.{} FROM saved_plans p JOIN saved_plan_versions v ON v.plan_id = p.id \
             WHERE p.id = $1 AND v.version = COALESCE($2, p.latest_version)",
            SUMMARY.replace(", ", ", p.")
        );
        let n = n.map(|n| i32::try_from(n).unwrap_or(i32::MAX));
        with_pool!(self.db, pool => {
            let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id).bind(n).fetch_optional(pool).await?;
            row.as_ref().map(saved_plan).transpose()
        })
    }

    /// The plan's versions, oldest first; empty when there is no such plan.
    pub async fn versions(&self, id: &str) -> Result<Vec<VersionInfo>, PlanStoreError> {
        const SQL: &str = "SELECT version, created_at_ms FROM saved_plan_versions WHERE plan_id = $1 ORDER BY version";
        with_pool!(self.db, pool => {
            let rows = sqlx::query(SQL).bind(id).fetch_all(pool).await?;
            rows.iter()
                .map(|r| Ok(VersionInfo { version: r.try_get::<i32, _>("version")? as u32, created_at_ms: r.try_get("created_at_ms")? }))
                .collect::<Result<_, sqlx::Error>>()
                .map_err(PlanStoreError::from)
        })
    }

    /// `owner`'s plans (every owner's with `None`), the most recently changed first, at most `limit` (capped
    /// at [`LIST_MAX`]).
    pub async fn list(&self, owner: Option<&str>, limit: u32) -> Result<Vec<PlanSummary>, PlanStoreError> {
        let limit = i64::from(limit.clamp(1, LIST_MAX));
        let sql = format!(
            "SELECT {SUMMARY} FROM saved_plans WHERE owner = COALESCE($2, owner) \
             ORDER BY updated_at_ms DESC, seq DESC LIMIT $1"
        );
        with_pool!(self.db, pool => {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(limit).bind(owner).fetch_all(pool).await?;
            rows.iter().map(summary).collect::<Result<_, sqlx::Error>>().map_err(PlanStoreError::from)
        })
    }

    /// Deletes the plans whose latest version was saved before `cutoff_ms`, with their versions and share
    /// links; how many plans.
    pub async fn delete_older_than(&self, cutoff_ms: i64) -> Result<u64, PlanStoreError> {
        const OLD: &str = "SELECT id FROM saved_plans WHERE updated_at_ms < $1";
        let deleted = with_pool!(self.db, pool => {
            let mut tx = pool.begin().await?;
            for table in ["saved_plan_versions", "plan_shares"] {
                let sql = format!("DELETE FROM {table} WHERE plan_id IN ({OLD})");
                sqlx::query(sqlx::AssertSqlSafe(sql)).bind(cutoff_ms).execute(&mut *tx).await?;
            }
            let n = sqlx::query("DELETE FROM saved_plans WHERE updated_at_ms < $1")
                .bind(cutoff_ms)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            tx.commit().await?;
            n
        });
        if deleted > 0 {
            tracing::info!(plans = deleted, "saved plans past their retention deleted");
        }
        Ok(deleted)
    }

    /// A new share link to the saved plan `plan_id` (which the caller has checked exists and is theirs).
    pub async fn share(&self, plan_id: &str) -> Result<Share, PlanStoreError> {
        let share = Share { share_id: new_id(SHARE_PREFIX)?, plan_id: plan_id.to_owned(), created_at_ms: now_ms() };
        with_pool!(self.db, pool => {
            sqlx::query("INSERT INTO plan_shares (id, plan_id, created_at_ms) VALUES ($1, $2, $3)")
                .bind(&share.share_id)
                .bind(&share.plan_id)
                .bind(share.created_at_ms)
                .execute(pool)
                .await?;
        });
        Ok(share)
    }

    /// The share link `share_id`, if it exists (not revoked, its plan not deleted).
    pub async fn find_share(&self, share_id: &str) -> Result<Option<Share>, PlanStoreError> {
        if !is_share_id(share_id) {
            return Ok(None);
        }
        const SQL: &str = "SELECT s.id, s.plan_id, s.created_at_ms FROM plan_shares s \
            JOIN saved_plans p ON p.id = s.plan_id WHERE s.id = $1";
        with_pool!(self.db, pool => {
            let row = sqlx::query(SQL).bind(share_id).fetch_optional(pool).await?;
            row.map(|r| Ok::<_, sqlx::Error>(Share {
                share_id: r.try_get("id")?,
                plan_id: r.try_get("plan_id")?,
                created_at_ms: r.try_get("created_at_ms")?,
            }))
            .transpose()
            .map_err(PlanStoreError::from)
        })
    }

    /// Revokes a share link: `true` if it existed.
    pub async fn revoke_share(&self, share_id: &str) -> Result<bool, PlanStoreError> {
        let n = with_pool!(self.db, pool => {
            sqlx::query("DELETE FROM plan_shares WHERE id = $1").bind(share_id).execute(pool).await?.rows_affected()
        });
        Ok(n > 0)
    }
}

/// A row of either database as a summary.
fn summary<'r, R>(r: &'r R) -> Result<PlanSummary, sqlx::Error>
where
    R: Row,
    &'r str: sqlx::ColumnIndex<R>,
    String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    i32: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    Ok(PlanSummary {
        plan_id: r.try_get("id")?,
        owner: r.try_get("owner")?,
        title: r.try_get("title")?,
        location: r.try_get("location")?,
        start_date: r.try_get("start_date")?,
        end_date: r.try_get("end_date")?,
        latest_version: r.try_get::<i32, _>("latest_version")? as u32,
        created_at_ms: r.try_get("created_at_ms")?,
        updated_at_ms: r.try_get("updated_at_ms")?,
    })
}

/// A row of either database as a saved plan's version.
fn saved_plan<'r, R>(r: &'r R) -> Result<SavedPlan, PlanStoreError>
where
    R: Row,
    &'r str: sqlx::ColumnIndex<R>,
    String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    i32: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let summary = summary(r)?;
    let corrupt = |source| PlanStoreError::Corrupt { id: summary.plan_id.clone(), source };
    let request = serde_json::from_str(&r.try_get::<String, _>("request")?).map_err(corrupt)?;
    let plan = serde_json::from_str(&r.try_get::<String, _>("plan")?).map_err(corrupt)?;
    Ok(SavedPlan {
        version: r.try_get::<i32, _>("version")? as u32,
        version_created_at_ms: r.try_get("version_created_at_ms")?,
        request,
        plan,
        summary,
    })
}
