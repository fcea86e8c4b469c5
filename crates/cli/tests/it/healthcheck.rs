//! `tripstream healthcheck`, the image's HEALTHCHECK: exit 0 while the local server is ready, 1 with the
//! reason when it is not there.

use crate::process::Served;
use crate::{stderr, tripstream};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthcheck_is_zero_for_a_ready_server_and_one_without_it() {
    let served = Served::start([]).await;
    let port = served.base.rsplit(':').next().unwrap().to_owned();
    let ready = tripstream(&["healthcheck", "--host", "0.0.0.0", "--port", &port]);
    assert!(ready.status.success(), "{}", stderr(&ready));
    let live = tripstream(&["healthcheck", "--port", &port, "--path", "/health/live"]);
    assert!(live.status.success(), "{}", stderr(&live));

    drop(served);
    let gone = tripstream(&["healthcheck", "--port", &port]);
    assert_eq!(gone.status.code(), Some(1));
    assert!(stderr(&gone).starts_with(&format!("http://127.0.0.1:{port}/health/ready: ")), "{}", stderr(&gone));
}
