//! `tripstream healthcheck`: asks the server on this machine whether it is ready, for a container's
//! `HEALTHCHECK`, so the image needs no curl or shell. Exit 0 ready, 1 not (with the reason on stderr).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::time::Duration;

#[derive(Debug, clap::Args)]
pub struct HealthcheckArgs {
    /// The address `serve` listens on; an unspecified one (0.0.0.0, ::) is asked on 127.0.0.1.
    #[arg(long, env = "HOST", default_value = "0.0.0.0")]
    host: IpAddr,
    /// The port `serve` listens on.
    #[arg(long, short, env = "PORT", default_value_t = 8000)]
    port: u16,
    /// What to ask: `/health/ready` (serving, not draining, its stores reachable) or `/health/live`.
    #[arg(long, default_value = "/health/ready", value_parser = ["/health/ready", "/health/live"])]
    path: String,
    /// Seconds to wait for the answer.
    #[arg(long, default_value_t = 2)]
    timeout_secs: u64,
}

pub async fn run(args: HealthcheckArgs) -> ExitCode {
    let host = if args.host.is_unspecified() { IpAddr::V4(Ipv4Addr::LOCALHOST) } else { args.host };
    let url = format!("http://{}{}", SocketAddr::new(host, args.port), args.path);
    let client = tripstream_adapters::http::client(Duration::from_secs(args.timeout_secs));
    let answer = client.get(&url).timeout(Duration::from_secs(args.timeout_secs)).send().await;
    match answer {
        Ok(response) if response.status().is_success() => ExitCode::SUCCESS,
        Ok(response) => {
            let status = response.status();
            let body = response.text().await.unwrap_or_default();
            // The reason, as /health/ready gives it; a body that is not a short reason is cut.
            let reason: String = body.trim().chars().take(300).collect();
            eprintln!("{url}: {status} {reason}");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("{url}: {}", if e.is_timeout() { "no answer in time".to_owned() } else { e.to_string() });
            ExitCode::FAILURE
        }
    }
}
