pub mod destinations;
pub mod keys;
pub mod plan;
pub mod serve;
pub mod stats;

/// Logs to stderr; `RUST_LOG` filters (default `default_filter`), `LOG_FORMAT=json` for machines.
pub fn init_logging(default_filter: &str) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if std::env::var("LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json")) {
        builder.json().init();
    } else {
        builder.init();
    }
}
