//! `tripstream serve` as a child process, as the tests that need the real binary run it.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A `tripstream serve` on a free port of 127.0.0.1, with nothing of the test's environment but `PATH`
/// and the variables given; killed when dropped.
pub struct Served {
    pub child: Child,
    pub base: String,
}

impl Served {
    /// Starts the server and waits until it answers HTTP.
    pub async fn start<'a>(env: impl IntoIterator<Item = (&'a str, String)>) -> Served {
        Self::start_logging(env, Stdio::null()).await
    }

    /// As [`Self::start`], its stderr (the logs) going to `stderr`.
    pub async fn start_logging<'a>(env: impl IntoIterator<Item = (&'a str, String)>, stderr: Stdio) -> Served {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new(env!("CARGO_BIN_EXE_tripstream"))
            .arg("serve")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOST", "127.0.0.1")
            .env("PORT", port.to_string())
            .env("DATABASE_URL", "sqlite::memory:")
            .env("RUST_LOG", "warn")
            // Tests come from one address faster than people would; the limits' own tests set theirs.
            .env("RATE_LIMIT_ANONYMOUS", "1000000")
            .env("RATE_LIMIT_BURST", "1000000")
            .envs(env)
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("tripstream serve starts");
        let base = format!("http://127.0.0.1:{port}");
        let client = tripstream_adapters::http::client(Duration::from_secs(1));
        let started = Instant::now();
        while client.get(format!("{base}/health")).send().await.is_err() {
            assert!(started.elapsed() < Duration::from_secs(20), "the server never answered");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Served { child, base }
    }

    /// Sends SIGTERM and waits (at most 15 s) for a successful exit.
    pub fn terminate(mut self) {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "{status}");
                return;
            }
            assert!(started.elapsed() < Duration::from_secs(15), "the server did not stop");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
