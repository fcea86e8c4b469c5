//! The `api_keys` table, in the run log's database (SQLite or PostgreSQL, the same statements for both).

use sqlx::Row;

use super::{ApiKey, KeyError, KeyHash, NewKey, check_id, check_new, generate};
use crate::http::Secret;
use crate::runlog::{Db, with_pool};

const INSERT: &str = "INSERT INTO api_keys \
    (id, key_hash, name, admin, rate_per_minute, daily_tokens, created_at_ms, revoked_at_ms) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, NULL)";
const LIST: &str = "SELECT id, name, admin, rate_per_minute, daily_tokens, created_at_ms, revoked_at_ms \
    FROM api_keys ORDER BY seq";
const FIND: &str = "SELECT id, name, admin, rate_per_minute, daily_tokens, created_at_ms, revoked_at_ms \
    FROM api_keys WHERE key_hash = $1 AND revoked_at_ms IS NULL";
const REVOKE: &str = "UPDATE api_keys SET revoked_at_ms = $1 WHERE id = $2 AND revoked_at_ms IS NULL";
const EXISTS: &str = "SELECT count(*) FROM api_keys WHERE id = $1";

/// The keys, in a database that is already migrated (`Db::open`, or the server's start-up). Cheap to
/// clone.
#[derive(Clone)]
pub struct KeyStore {
    db: Db,
}

impl KeyStore {
    pub fn new(db: Db) -> Self {
        KeyStore { db }
    }

    /// Makes a key. The key itself is returned once, here: only its hash is stored.
    pub async fn create(&self, new: NewKey) -> Result<(ApiKey, Secret), KeyError> {
        let name = check_new(&new)?;
        let (key, id) = generate()?;
        let created = ApiKey {
            id,
            name,
            admin: new.admin,
            rate_per_minute: new.rate_per_minute,
            daily_tokens: new.daily_tokens,
            created_at_ms: jiff::Timestamp::now().as_millisecond(),
            revoked_at_ms: None,
        };
        let hash = KeyHash::of(&key).hex();
        let rate = created.rate_per_minute.map(i64::from);
        // `check_new` keeps the allowance within an i64.
        let tokens = created.daily_tokens.map(|n| n as i64);
        with_pool!(self.db, pool => {
            sqlx::query(INSERT)
                .bind(&created.id)
                .bind(&hash)
                .bind(&created.name)
                .bind(created.admin)
                .bind(rate)
                .bind(tokens)
                .bind(created.created_at_ms)
                .execute(pool)
                .await?;
        });
        tracing::info!(key_id = %created.id, admin = created.admin, "API key created");
        Ok((created, Secret::new(key)))
    }

    /// Every key, revoked ones too, oldest first.
    pub async fn list(&self) -> Result<Vec<ApiKey>, KeyError> {
        with_pool!(self.db, pool => sqlx::query(LIST).fetch_all(pool).await?.iter().map(api_key).collect())
    }

    /// `true` if the key was active and is now revoked, `false` if it already was; `NotFound` if no key
    /// has this id.
    pub async fn revoke(&self, id: &str) -> Result<bool, KeyError> {
        check_id(id)?;
        let now = jiff::Timestamp::now().as_millisecond();
        let (revoked, exists) = with_pool!(self.db, pool => {
            let revoked = sqlx::query(REVOKE).bind(now).bind(id).execute(pool).await?.rows_affected() > 0;
            let exists = revoked || sqlx::query_scalar::<_, i64>(EXISTS).bind(id).fetch_one(pool).await? > 0;
            (revoked, exists)
        });
        if !exists {
            return Err(KeyError::NotFound { id: id.to_owned() });
        }
        if revoked {
            tracing::info!(key_id = %id, "API key revoked");
        }
        Ok(revoked)
    }

    /// The active key a caller presented, found by the hash of what they sent; `None` when it is unknown,
    /// revoked, or not of a key's form (then without a look-up).
    pub async fn find(&self, presented: &str) -> Result<Option<ApiKey>, KeyError> {
        match KeyHash::of_presented(presented) {
            Some(hash) => self.find_hash(&hash).await,
            None => Ok(None),
        }
    }

    pub(crate) async fn find_hash(&self, hash: &KeyHash) -> Result<Option<ApiKey>, KeyError> {
        let hash = hash.hex();
        with_pool!(self.db, pool => {
            sqlx::query(FIND).bind(&hash).fetch_optional(pool).await?.as_ref().map(api_key).transpose()
        })
    }
}

/// A row of either database as a key.
fn api_key<'r, R>(r: &'r R) -> Result<ApiKey, KeyError>
where
    R: Row,
    &'r str: sqlx::ColumnIndex<R>,
    String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    Option<i64>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    bool: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let id: String = r.try_get("id")?;
    let rate: Option<i64> = r.try_get("rate_per_minute")?;
    let tokens: Option<i64> = r.try_get("daily_tokens")?;
    let corrupt = |column| KeyError::Corrupt { id: id.clone(), column };
    let rate_per_minute = rate.map(u32::try_from).transpose().map_err(|_| corrupt("rate_per_minute"))?;
    let daily_tokens = tokens.map(u64::try_from).transpose().map_err(|_| corrupt("daily_tokens"))?;
    Ok(ApiKey {
        name: r.try_get("name")?,
        admin: r.try_get("admin")?,
        rate_per_minute,
        daily_tokens,
        created_at_ms: r.try_get("created_at_ms")?,
        revoked_at_ms: r.try_get("revoked_at_ms")?,
        id,
    })
}
