//! `tripstream keys create|list|revoke`: the API keys callers send as `Authorization: Bearer …`, in the
//! run log's database. A key is printed once, by `create`; the database keeps only its hash.

use std::process::ExitCode;

use serde_json::{Value, json};
use tripstream_adapters::keys::{ApiKey, KEY_PREFIX, KeyError, KeyStore, NewKey};

#[derive(Debug, clap::Args)]
pub struct KeysArgs {
    /// The database `serve` uses (the run log's).
    #[arg(long, env = "DATABASE_URL", default_value = "sqlite://tripstream.db", hide_env_values = true, global = true)]
    database_url: String,
    #[command(subcommand)]
    command: KeysCommand,
}

#[derive(Debug, clap::Subcommand)]
enum KeysCommand {
    /// Make a key and print it: the only time it is shown.
    Create(CreateArgs),
    /// List the keys (never the keys themselves): id, name, scope, limits, when created and revoked.
    List(ListArgs),
    /// Revoke a key: servers stop accepting it within seconds.
    Revoke(RevokeArgs),
}

#[derive(Debug, clap::Args)]
struct CreateArgs {
    /// Whose key it is, for the list (a person, a client, a deployment).
    #[arg(long)]
    name: String,
    /// The admin scope: /api/v1/stats, /metrics, /health's details and every stream.
    #[arg(long)]
    admin: bool,
    /// Requests per minute for this key (default: the server's default for keys).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    rate: Option<u32>,
    /// LLM tokens this key may spend per UTC day (default: unlimited).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=tripstream_adapters::keys::DAILY_TOKENS_MAX))]
    daily_tokens: Option<u64>,
    /// Print JSON (with the key in `key`) instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
struct ListArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
struct RevokeArgs {
    /// The key's id (key_…), or the key itself when that is all there is (a leaked key, say).
    #[arg(value_name = "ID")]
    id: String,
}

pub async fn run(args: KeysArgs) -> ExitCode {
    super::init_logging("warn");
    let store = match super::open_db(&args.database_url).await {
        Ok(db) => KeyStore::new(db),
        Err(code) => return code,
    };
    let done = match args.command {
        KeysCommand::Create(args) => create(&store, args).await,
        KeysCommand::List(args) => list(&store, args).await,
        KeysCommand::Revoke(args) => revoke(&store, args).await,
    };
    match done {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            if e.is_bad_input() { ExitCode::from(2) } else { ExitCode::FAILURE }
        }
    }
}

async fn create(store: &KeyStore, args: CreateArgs) -> Result<ExitCode, KeyError> {
    let new =
        NewKey { name: args.name, admin: args.admin, rate_per_minute: args.rate, daily_tokens: args.daily_tokens };
    let (key, secret) = store.create(new).await?;
    if args.json {
        let mut out = row(&key);
        out["key"] = json!(secret.expose());
        println!("{}", serde_json::to_string_pretty(&out).expect("JSON values serialize"));
    } else {
        println!("Created an API key for {:?}.\n", key.name);
        println!("  id      {}", key.id);
        println!("  scope   {}", scope(&key));
        println!(
            "  rate    {}",
            key.rate_per_minute.map_or("the server's default for keys".into(), |n| format!("{n} requests per minute"))
        );
        println!("  tokens  {}", key.daily_tokens.map_or("unlimited".into(), |n| format!("{n} per UTC day")));
        println!("\n  key     {}\n", secret.expose());
    }
    eprintln!(
        "This is the only time the key is shown: only its hash is stored, so copy it now. Callers send it as \
         `Authorization: Bearer <key>`; `tripstream keys revoke {}` ends it.",
        key.id
    );
    Ok(ExitCode::SUCCESS)
}

async fn list(store: &KeyStore, args: ListArgs) -> Result<ExitCode, KeyError> {
    let keys = store.list().await?;
    if args.json {
        let rows: Vec<Value> = keys.iter().map(row).collect();
        println!("{}", serde_json::to_string_pretty(&rows).expect("JSON values serialize"));
        return Ok(ExitCode::SUCCESS);
    }
    if keys.is_empty() {
        eprintln!("No keys yet: `tripstream keys create --name NAME` makes one.");
        return Ok(ExitCode::SUCCESS);
    }
    let name_width = keys.iter().map(|k| k.name.chars().count()).max().unwrap_or(0).max(4);
    let pad = |s: &str, width: usize| format!("{s}{}", " ".repeat(width.saturating_sub(s.chars().count())));
    println!(
        "{:<30}  {}  {:<8}  {:>8}  {:>12}  {:<20}  REVOKED",
        "ID",
        pad("NAME", name_width),
        "SCOPE",
        "RATE/MIN",
        "TOKENS/DAY",
        "CREATED"
    );
    for k in &keys {
        println!(
            "{:<30}  {}  {:<8}  {:>8}  {:>12}  {:<20}  {}",
            k.id,
            pad(&k.name, name_width),
            scope(k),
            k.rate_per_minute.map_or("default".into(), |n| n.to_string()),
            k.daily_tokens.map_or("unlimited".into(), |n| n.to_string()),
            time(k.created_at_ms),
            k.revoked_at_ms.map_or("-".into(), time)
        );
    }
    Ok(ExitCode::SUCCESS)
}

async fn revoke(store: &KeyStore, args: RevokeArgs) -> Result<ExitCode, KeyError> {
    let id = if args.id.starts_with(KEY_PREFIX) {
        match store.find(&args.id).await? {
            Some(key) => key.id,
            None => {
                // Never repeat what was given: it is a key.
                eprintln!("error: no active key matches the key given (it is unknown, or already revoked)");
                return Ok(ExitCode::from(2));
            }
        }
    } else {
        args.id
    };
    if store.revoke(&id).await? {
        println!("Revoked {id}. Servers stop accepting it within seconds (they cache look-ups briefly).");
    } else {
        println!("{id} was already revoked.");
    }
    Ok(ExitCode::SUCCESS)
}

fn scope(key: &ApiKey) -> &'static str {
    if key.admin { "admin" } else { "standard" }
}

/// A key as `list --json` and `create --json` show it.
fn row(key: &ApiKey) -> Value {
    let at = |ms: i64| jiff::Timestamp::from_millisecond(ms).map(|t| t.to_string()).ok();
    json!({
        "id": key.id,
        "name": key.name,
        "scope": scope(key),
        "ratePerMinute": key.rate_per_minute,
        "dailyTokens": key.daily_tokens,
        "createdAt": at(key.created_at_ms),
        "revokedAt": key.revoked_at_ms.and_then(at),
    })
}

fn time(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map_or_else(|_| ms.to_string(), |t| t.strftime("%Y-%m-%d %H:%M:%SZ").to_string())
}
