//! `tripstream serve` as a child process on a free port, with only the environment a test gives it.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `tripstream serve`, killed when dropped.
pub struct Serve {
    pub child: Child,
    pub base: String,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Starts the binary with `env` (and `PATH`, `HOST`, `PORT`, nothing else) and waits until `/health`
/// answers.
pub async fn serve(env: &[(&str, &str)]) -> Serve {
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_tripstream"))
        .arg("serve")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOST", "127.0.0.1")
        .env("PORT", port.to_string())
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("tripstream serve starts");
    let base = format!("http://127.0.0.1:{port}");
    let client = tripstream_adapters::http::client(Duration::from_secs(1));
    let started = Instant::now();
    while client.get(format!("{base}/health")).send().await.is_err() {
        assert!(started.elapsed() < Duration::from_secs(20), "tripstream serve never became healthy");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Serve { child, base }
}
