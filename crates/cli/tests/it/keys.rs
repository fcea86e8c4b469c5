//! `tripstream keys create|list|revoke`, run as a user runs them, against a SQLite file and against the
//! machine's PostgreSQL (`TEST_DATABASE_URL`, a fresh schema, dropped after). Every run logs at `trace`,
//! and no key may show in what it wrote to stderr.

use std::process::{Command, Output};

use sqlx::Connection;
use tripstream_adapters::keys::KeyStore;
use tripstream_adapters::runlog::Db;

use crate::{stderr, stdout};

/// How the command is told where the database is.
#[derive(Clone, Copy)]
enum Via {
    Flag,
    Env,
}

struct Keys {
    url: String,
    via: Via,
    /// Everything the commands wrote to stderr, checked for keys at the end.
    stderr: String,
}

impl Keys {
    fn run(&mut self, args: &[&str]) -> Output {
        let mut command = Command::new(env!("CARGO_BIN_EXE_tripstream"));
        command.arg("keys").args(args).env("RUST_LOG", "trace").env_remove("DATABASE_URL");
        match self.via {
            Via::Flag => command.args(["--database-url", &self.url]),
            Via::Env => command.env("DATABASE_URL", &self.url),
        };
        let out = command.output().expect("the binary runs");
        self.stderr.push_str(&stderr(&out));
        out
    }

    /// Runs a command that must succeed, and returns its stdout.
    fn ok(&mut self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(out.status.success(), "keys {args:?}: {}", stderr(&out));
        stdout(&out)
    }

    /// Runs a command that must fail with `code`, and returns the error line it printed.
    fn fails(&mut self, args: &[&str], code: i32) -> String {
        let out = self.run(args);
        assert_eq!(out.status.code(), Some(code), "keys {args:?}: {}", stderr(&out));
        let err = stderr(&out);
        err.lines().find(|l| l.starts_with("error: ")).unwrap_or_else(|| panic!("no error line in {err}")).to_owned()
    }
}

fn block_on<F: Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f)
}

/// The whole life of two keys, through the commands only.
fn the_key_commands(url: &str, via: Via) {
    let mut keys = Keys { url: url.to_owned(), via, stderr: String::new() };

    let text = keys.ok(&["create", "--name", "ci bot", "--rate", "60", "--daily-tokens", "100000"]);
    let field = |text: &str, name: &str| {
        let line = text.lines().find(|l| l.trim_start().starts_with(name)).unwrap_or_else(|| panic!("{name}: {text}"));
        line.trim_start()[name.len()..].trim().to_owned()
    };
    let (ci_id, ci_key) = (field(&text, "id "), field(&text, "key "));
    assert!(text.starts_with("Created an API key for \"ci bot\"."), "{text}");
    assert!(ci_key.starts_with("tsk_") && ci_key.len() == 36, "{text}");
    assert!(ci_id.starts_with("key_") && ci_id.len() == 30, "{text}");
    assert_eq!(field(&text, "scope "), "standard");
    assert_eq!(field(&text, "rate "), "60 requests per minute");
    assert_eq!(field(&text, "tokens "), "100000 per UTC day");
    assert!(keys.stderr.contains("This is the only time the key is shown"), "{}", keys.stderr);

    let json: serde_json::Value =
        serde_json::from_str(&keys.ok(&["create", "--name", "ops", "--admin", "--json"])).unwrap();
    let (ops_id, ops_key) = (json["id"].as_str().unwrap().to_owned(), json["key"].as_str().unwrap().to_owned());
    assert_eq!(
        (json["scope"].as_str(), json["ratePerMinute"].as_u64(), json["dailyTokens"].as_u64()),
        (Some("admin"), None, None)
    );

    // The keys printed are the keys stored.
    let store = block_on(async { KeyStore::new(Db::open(url).await.unwrap()) });
    let found = block_on(store.find(&ci_key)).unwrap().expect("the printed key works");
    assert_eq!(
        (found.id.as_str(), found.rate_per_minute, found.daily_tokens),
        (ci_id.as_str(), Some(60), Some(100_000))
    );
    assert!(block_on(store.find(&ops_key)).unwrap().is_some_and(|k| k.admin && k.id == ops_id));

    let list = keys.ok(&["list"]);
    let lines: Vec<&str> = list.lines().collect();
    assert_eq!(lines.len(), 3, "a header and two keys:\n{list}");
    assert!(lines[0].starts_with("ID") && lines[0].contains("SCOPE") && lines[0].ends_with("REVOKED"), "{list}");
    assert!(lines[1].starts_with(&ci_id) && lines[1].contains("ci bot") && lines[1].contains("standard"), "{list}");
    assert!(lines[1].contains(" 60 ") && lines[1].contains(" 100000 ") && lines[1].ends_with(" -"), "{list}");
    assert!(lines[2].starts_with(&ops_id) && lines[2].contains("admin") && lines[2].contains("unlimited"), "{list}");

    let listed: Vec<serde_json::Value> = serde_json::from_str(&keys.ok(&["list", "--json"])).unwrap();
    let fields: Vec<&str> = listed[0].as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(fields, ["id", "name", "scope", "ratePerMinute", "dailyTokens", "createdAt", "revokedAt"]);
    assert_eq!((listed[0]["id"].as_str(), listed[1]["id"].as_str()), (Some(ci_id.as_str()), Some(ops_id.as_str())));
    assert!(listed[0]["createdAt"].as_str().unwrap().parse::<jiff::Timestamp>().is_ok());

    // Revoked by id, then by the key itself; a second time says so.
    assert!(keys.ok(&["revoke", &ci_id]).starts_with(&format!("Revoked {ci_id}.")));
    assert_eq!(keys.ok(&["revoke", &ci_id]).trim(), format!("{ci_id} was already revoked."));
    assert!(keys.ok(&["revoke", &ops_key]).starts_with(&format!("Revoked {ops_id}.")));
    assert!(block_on(store.find(&ci_key)).unwrap().is_none() && block_on(store.find(&ops_key)).unwrap().is_none());
    let listed: Vec<serde_json::Value> = serde_json::from_str(&keys.ok(&["list", "--json"])).unwrap();
    assert!(listed.iter().all(|k| k["revokedAt"].as_str().is_some_and(|t| t.parse::<jiff::Timestamp>().is_ok())));

    // Bad input: exit code 2 and a clear line, never repeating a key.
    let unknown = "key_0000000000000000000000000Z";
    assert_eq!(keys.fails(&["revoke", unknown], 2), format!("error: no key has the id {unknown}"));
    assert!(keys.fails(&["revoke", "ci bot"], 2).contains("not a key id"));
    assert!(keys.fails(&["revoke", &ci_key], 2).contains("no active key matches the key given"));
    assert!(keys.fails(&["create", "--name", ""], 2).contains("a key needs a name"));
    assert!(keys.fails(&["create", "--name", "  "], 2).contains("a key needs a name"));
    assert!(keys.fails(&["create", "--name", "x", "--rate", "0"], 2).contains("--rate"));
    assert!(keys.fails(&["create", "--name", "x", "--daily-tokens=-5"], 2).contains("--daily-tokens"));
    assert_eq!(serde_json::from_str::<Vec<serde_json::Value>>(&keys.ok(&["list", "--json"])).unwrap().len(), 2);

    // Logged at trace level throughout (statements included), and never a key.
    assert!(keys.stderr.contains("api_keys"), "the statements were logged:\n{}", keys.stderr);
    for key in [&ci_key, &ops_key] {
        let random = &key[4..];
        for start in 0..=random.len() - 9 {
            assert!(!keys.stderr.contains(&random[start..start + 9]), "a piece of a key on stderr:\n{}", keys.stderr);
        }
    }
}

#[test]
fn the_key_commands_work_on_a_sqlite_file() {
    let path = std::env::temp_dir().join(format!("tripstream-cli-keys-{}.db", uuid::Uuid::now_v7().simple()));
    the_key_commands(&format!("sqlite://{}", path.display()), Via::Flag);
    // On disk, only hashes.
    let stored = String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned()
        + &String::from_utf8_lossy(&std::fs::read(format!("{}-wal", path.display())).unwrap_or_default());
    assert!(stored.contains("ci bot") && !stored.contains("tsk_"), "the names are there, the keys are not");
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}

#[test]
fn the_key_commands_work_on_postgres() {
    let base = std::env::var("TEST_DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let schema = format!("cli_keys_{}", uuid::Uuid::now_v7().simple());
    let admin = |sql: String| {
        block_on(async {
            let mut conn = sqlx::PgConnection::connect(&base).await.expect("PostgreSQL is running");
            sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut conn).await.unwrap();
        })
    };
    admin(format!("CREATE SCHEMA {schema}"));
    the_key_commands(&format!("{base}?options=-c%20search_path%3D{schema}"), Via::Env);
    admin(format!("DROP SCHEMA {schema} CASCADE"));
}

#[test]
fn a_database_that_cannot_be_reached_is_exit_code_1_and_an_unknown_kind_2() {
    let mut keys = Keys { url: "postgres://postgres@127.0.0.1:1/none".into(), via: Via::Flag, stderr: String::new() };
    assert!(keys.fails(&["list"], 1).contains("pool timed out"));
    keys.url = "mysql://root@127.0.0.1/test".into();
    assert!(keys.fails(&["list"], 2).contains("DATABASE_URL must start with sqlite: or postgres://"));
}
