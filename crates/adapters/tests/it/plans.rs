//! The saved plans' store on SQLite (in memory and a file) and the machine's PostgreSQL (a fresh schema per
//! test): saving once per owner and generated plan, versions, lists by owner, share links, retention.

use std::sync::Arc;

use tripstream_adapters::plans::{SavedPlans, is_plan_id, is_share_id};
use tripstream_adapters::runlog::Db;
use tripstream_adapters::{BundledDestinations, Catalog, Climatology, OfflineConfig, OfflinePlanner};
use tripstream_domain::request::{RawPlanRequest, RequestLimits};
use tripstream_domain::{Plan, PlanRequest};
use tripstream_engine::{Destinations, Engine, EngineConfig};

use crate::db::{drop_schema, postgres_schema, remove_sqlite, sqlite_file};

fn raw(location: &str, start: &str, end: &str) -> RawPlanRequest {
    RawPlanRequest {
        location: Some(location.into()),
        start_date: Some(start.into()),
        end_date: Some(end.into()),
        budget: Some("medium".into()),
        ..RawPlanRequest::default()
    }
}

/// A plan the offline planner writes for `raw`.
async fn plan(raw: &RawPlanRequest) -> Plan {
    let request = PlanRequest::parse(raw.clone(), None, RequestLimits::default()).unwrap();
    let destinations = BundledDestinations::new(Catalog::bundled());
    let destination = destinations.resolve(&request.location).await.unwrap();
    let planner = OfflinePlanner::new(Catalog::bundled(), OfflineConfig::default());
    let engine = Engine::new(Arc::new(planner), Arc::new(Climatology), EngineConfig::default());
    engine.run(&request, &destination, &mut Vec::new()).await.unwrap()
}

/// Sets a plan's last change `days` into the past, as if it had been saved then.
async fn age(db: &Db, url: &str, id: &str, days: i64) {
    let then = jiff::Timestamp::now().as_millisecond() - days * 86_400_000;
    let sql = "UPDATE saved_plans SET updated_at_ms = $1 WHERE id = $2";
    if db.kind() == "sqlite" {
        let pool = sqlx::SqlitePool::connect(url).await.unwrap();
        sqlx::query(sql).bind(then).bind(id).execute(&pool).await.unwrap();
    } else {
        let pool = sqlx::PgPool::connect(url).await.unwrap();
        sqlx::query(sql).bind(then).bind(id).execute(&pool).await.unwrap();
    }
}

/// Everything the server does with saved plans, on one database.
async fn lifecycle(url: &str) {
    let db = Db::open(url).await.unwrap();
    let store = SavedPlans::new(db.clone());
    let seoul = raw("Seoul", "2026-05-01", "2026-05-03");
    let busan = raw("Busan", "2026-06-01", "2026-06-02");
    let (seoul_plan, busan_plan) = (plan(&seoul).await, plan(&busan).await);

    // One generated plan is saved once per owner: a second delivery to the same owner finds it.
    let a = store.save("key:key_A", &seoul, &seoul_plan).await.unwrap();
    assert!(is_plan_id(&a), "{a}");
    assert_eq!(store.save("key:key_A", &seoul, &seoul_plan).await.unwrap(), a);
    let mut replayed = seoul_plan.clone();
    replayed.metadata.cached = true;
    assert_eq!(store.save("key:key_A", &seoul, &replayed).await.unwrap(), a, "a cache replay is no copy");
    let b = store.save("key:key_B", &seoul, &replayed).await.unwrap();
    assert_ne!(a, b, "another owner gets a copy of their own");
    assert_eq!(store.latest(&b).await.unwrap().unwrap().plan, seoul_plan, "saved as generated, not as replayed");
    let c = store.save("key:key_A", &busan, &busan_plan).await.unwrap();

    let latest = store.latest(&a).await.unwrap().unwrap();
    assert_eq!((latest.version, latest.summary.latest_version), (1, 1));
    assert_eq!(latest.summary.owner, "key:key_A");
    assert_eq!(latest.plan, seoul_plan);
    assert_eq!(latest.request.location.as_deref(), Some("Seoul"));
    assert_eq!((latest.summary.start_date.as_str(), latest.summary.end_date.as_str()), ("2026-05-01", "2026-05-03"));

    // A new version, and the old one still there.
    let mut second = seoul_plan.clone();
    second.title = "Seoul, again".into();
    second.days.truncate(1);
    assert_eq!(store.add_version(&a, &second).await.unwrap(), Some(2));
    let latest = store.latest(&a).await.unwrap().unwrap();
    assert_eq!((latest.version, latest.summary.title.as_str()), (2, "Seoul, again"));
    assert_eq!(latest.plan.days.len(), 1);
    assert_eq!(store.version(&a, Some(1)).await.unwrap().unwrap().plan, seoul_plan);
    assert!(store.version(&a, Some(3)).await.unwrap().is_none());
    assert!(store.version(&a, Some(0)).await.unwrap().is_none());
    let versions: Vec<u32> = store.versions(&a).await.unwrap().iter().map(|v| v.version).collect();
    assert_eq!(versions, [1, 2]);
    assert_eq!(store.add_version("plan_00000000000000000000000000", &second).await.unwrap(), None);

    // Lists: one owner's, the most recently changed first; everyone's; bounded. (`c` is made a day old: two
    // saves in one millisecond would order by insertion.)
    age(&db, url, &c, 1).await;
    let ids =
        |list: Vec<tripstream_adapters::plans::PlanSummary>| list.into_iter().map(|p| p.plan_id).collect::<Vec<_>>();
    assert_eq!(ids(store.list(Some("key:key_A"), 50).await.unwrap()), [a.clone(), c.clone()]);
    assert_eq!(ids(store.list(Some("key:key_B"), 50).await.unwrap()), std::slice::from_ref(&b));
    assert_eq!(ids(store.list(Some("key:key_A"), 1).await.unwrap()), std::slice::from_ref(&a));
    assert!(store.list(Some("session:ses_X"), 50).await.unwrap().is_empty());
    assert_eq!(store.list(None, 50).await.unwrap().len(), 3);

    // Unknown and malformed ids are simply not there.
    for id in ["plan_00000000000000000000000000", "plan_x", "", "pln_ABC", "plan_' OR 1=1 --"] {
        assert!(store.latest(id).await.unwrap().is_none(), "{id}");
        assert!(store.versions(id).await.unwrap().is_empty(), "{id}");
    }

    // Share links: found until revoked.
    let share = store.share(&a).await.unwrap();
    assert!(is_share_id(&share.share_id), "{}", share.share_id);
    assert_eq!(store.find_share(&share.share_id).await.unwrap(), Some(share.clone()));
    let other = store.share(&a).await.unwrap();
    assert_ne!(other.share_id, share.share_id);
    assert!(store.revoke_share(&share.share_id).await.unwrap());
    assert!(!store.revoke_share(&share.share_id).await.unwrap());
    assert_eq!(store.find_share(&share.share_id).await.unwrap(), None);
    assert!(store.find_share("shr_x").await.unwrap().is_none());

    // Retention: a plan untouched for 100 days goes, with its versions and links; the rest stay.
    age(&db, url, &a, 100).await;
    age(&db, url, &b, 10).await;
    let cutoff = jiff::Timestamp::now().as_millisecond() - 90 * 86_400_000;
    assert_eq!(store.delete_older_than(cutoff).await.unwrap(), 1);
    assert!(store.latest(&a).await.unwrap().is_none());
    assert!(store.versions(&a).await.unwrap().is_empty());
    assert_eq!(store.find_share(&other.share_id).await.unwrap(), None);
    assert!(store.latest(&b).await.unwrap().is_some() && store.latest(&c).await.unwrap().is_some());
    assert_eq!(store.delete_older_than(cutoff).await.unwrap(), 0);
    // Saving the same generated plan again after it expired is a new saved plan.
    let again = store.save("key:key_A", &seoul, &seoul_plan).await.unwrap();
    assert_ne!(again, a);

    // Saves made together share a transaction and each gets its own answer: the same generated plan for
    // the same owner is one saved plan even within one transaction, and an owner's earlier copy is found.
    let owners = ["key:key_C", "key:key_D", "key:key_C", "key:key_A", "key:key_E", "key:key_D"];
    let together = futures::future::join_all(owners.iter().map(|owner| store.save(owner, &busan, &busan_plan))).await;
    let ids: Vec<String> = together.into_iter().map(Result::unwrap).collect();
    assert_eq!((ids[0] == ids[2], ids[1] == ids[5], ids[3] == c), (true, true, true), "{ids:?}");
    let distinct: std::collections::HashSet<&String> = ids.iter().collect();
    assert_eq!(distinct.len(), 4, "C, D, A's earlier copy, E: {ids:?}");
    for id in &ids {
        assert_eq!(store.latest(id).await.unwrap().unwrap().plan, busan_plan);
    }
}

#[tokio::test]
async fn saved_plans_on_sqlite() {
    let (path, url) = sqlite_file("plans");
    lifecycle(&url).await;
    remove_sqlite(&path);
}

#[tokio::test]
async fn saved_plans_on_postgres() {
    let (schema, url) = postgres_schema("plans").await;
    lifecycle(&url).await;
    drop_schema(&schema).await;
}
