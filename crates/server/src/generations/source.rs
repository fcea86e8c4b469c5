//! Where an attached caller's events come from, with their sequence numbers: a run on this replica, or
//! the shared log of a stream another replica produces.

use std::sync::Arc;
use std::time::Duration;

use tripstream_adapters::eventlog::LogReader;
use tripstream_domain::StreamEvent;

use super::registry::Listener;

pub enum Source {
    Local(Listener),
    Shared { reader: Box<dyn LogReader>, ended: bool },
}

impl Source {
    /// A shared log quiet for this long is taken to be abandoned by its producer; the client may retry.
    const SHARED_IDLE_LIMIT: Duration = Duration::from_secs(60);

    /// The next event and its sequence number; `None` after `done`, or when the stream cannot go on.
    pub async fn next(&mut self) -> Option<(u64, Arc<StreamEvent>)> {
        match self {
            Source::Local(listener) => listener.next().await,
            Source::Shared { reader, ended } => {
                if *ended {
                    return None;
                }
                let entry = match reader.next(Self::SHARED_IDLE_LIMIT).await {
                    Ok(entry) => entry?,
                    Err(e) => {
                        tracing::warn!(error = %e, "the shared event log cannot be read; ending this connection");
                        return None;
                    }
                };
                *ended = entry.is_done();
                Some((entry.seq, entry.event))
            }
        }
    }
}
