//! Where the engine's events go. Anything that takes events one at a time is a sink: a `Vec` in tests, a
//! channel to an HTTP stream, a closure driving a progress bar.

use tripstream_domain::StreamEvent;

pub trait EventSink: Send {
    fn emit(&mut self, event: StreamEvent);
}

impl EventSink for Vec<StreamEvent> {
    fn emit(&mut self, event: StreamEvent) {
        self.push(event);
    }
}

/// A listener that has gone away is not the engine's failure: the send result is ignored and the run
/// is cancelled by whoever owns it.
impl EventSink for tokio::sync::mpsc::UnboundedSender<StreamEvent> {
    fn emit(&mut self, event: StreamEvent) {
        let _ = self.send(event);
    }
}

/// A sink from a closure: `sink::from_fn(|event| progress_bar.update(&event))`.
pub fn from_fn<F: FnMut(StreamEvent) + Send>(f: F) -> FnSink<F> {
    FnSink(f)
}

pub struct FnSink<F>(F);

impl<F: FnMut(StreamEvent) + Send> EventSink for FnSink<F> {
    fn emit(&mut self, event: StreamEvent) {
        (self.0)(event)
    }
}
