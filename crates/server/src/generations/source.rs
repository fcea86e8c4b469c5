//! Where an attached caller's events come from, with their sequence numbers: a run on this replica, or
//! the shared log of a stream another replica produces; cut off with the caller's own `cancelled` and
//! `done` where they cancelled a run others still read.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tripstream_adapters::eventlog::LogReader;
use tripstream_domain::event::Failure;
use tripstream_domain::plan::Day;
use tripstream_domain::{ErrorCode, Language, StreamEvent, messages};

use super::registry::Listener;

pub enum Source {
    Local(Listener),
    Shared { reader: Box<dyn LogReader>, ended: bool },
}

impl Source {
    /// A shared log quiet for this long is taken to be abandoned by its producer; the client may retry.
    const SHARED_IDLE_LIMIT: Duration = Duration::from_secs(60);

    /// The next event and its sequence number; `None` after `done`, or when the stream cannot go on.
    async fn next(&mut self) -> Option<(u64, Arc<StreamEvent>)> {
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

/// Where a caller's own stream ends because they cancelled it.
pub enum Cut {
    /// Followed live: the caller may cancel while reading.
    Live(watch::Receiver<Option<u64>>),
    /// As the shared log recorded it when the caller attached.
    Fixed(Option<u64>),
}

impl Cut {
    fn at(&mut self) -> Option<u64> {
        match self {
            Cut::Live(rx) => *rx.borrow_and_update(),
            Cut::Fixed(at) => *at,
        }
    }

    async fn changed(&mut self) {
        if let Cut::Live(rx) = self
            && rx.changed().await.is_ok()
        {
            return;
        }
        std::future::pending().await
    }
}

/// One caller's events: their source, ended at their cut.
pub struct Events {
    source: Source,
    cut: Cut,
    language: Language,
    /// Past the cut: the caller's own `cancelled` and `done`.
    tail: Option<VecDeque<(u64, Arc<StreamEvent>)>>,
}

impl Events {
    pub fn new(source: Source, cut: Cut, language: Language) -> Events {
        Events { source, cut, language, tail: None }
    }

    /// The next event and its sequence number; `None` after `done`.
    pub async fn next(&mut self) -> Option<(u64, Arc<StreamEvent>)> {
        loop {
            if let Some(tail) = &mut self.tail {
                return tail.pop_front();
            }
            if let Some(at) = self.cut.at() {
                self.tail = Some(self.cancelled_at(at));
                continue;
            }
            tokio::select! {
                next = self.source.next() => {
                    let (seq, event) = next?;
                    match self.cut.at() {
                        Some(at) if seq >= at => self.tail = Some(self.cancelled_at(at)),
                        _ => return Some((seq, event)),
                    }
                }
                () = self.cut.changed() => {}
            }
        }
    }

    /// The end of a stream its caller cancelled while others still read its run: a `cancelled` error
    /// with the days drafted before the cut (when this replica holds them), then `done`.
    fn cancelled_at(&self, at: u64) -> VecDeque<(u64, Arc<StreamEvent>)> {
        let days: Vec<Day> = match &self.source {
            Source::Local(listener) => listener.days_before(at),
            Source::Shared { .. } => Vec::new(),
        };
        let error = StreamEvent::Error(Failure {
            message: messages::error(self.language, ErrorCode::Cancelled),
            error: ErrorCode::Cancelled,
            retryable: false,
            usage: None,
            partial_days: (!days.is_empty()).then_some(days),
        });
        VecDeque::from([(at, Arc::new(error)), (at + 1, Arc::new(StreamEvent::Done))])
    }
}
