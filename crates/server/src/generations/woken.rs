//! A future polled only after a wake-up of its own. A generation's task is woken for every piece of the
//! model's reply (some fifty times a stream), and `tokio::select!` polls every branch each time: its
//! cancellation futures then took a mutex twice each (`CancellationToken::is_cancelled`, then the
//! `Notified` re-registering its waker), for a wake-up that was never theirs.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Wake, Waker};

use futures::task::AtomicWaker;

pin_project_lite::pin_project! {
    /// `future`, polled at first and then only when it has woken its task itself; any other poll is two
    /// atomic operations.
    pub struct Woken<F> {
        #[pin]
        future: F,
        flag: Arc<Flag>,
    }
}

struct Flag {
    woken: AtomicBool,
    task: AtomicWaker,
}

impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        self.task.wake();
    }
}

impl<F: Future> Woken<F> {
    pub fn new(future: F) -> Self {
        let flag = Arc::new(Flag { woken: AtomicBool::new(true), task: AtomicWaker::new() });
        Self { future, flag }
    }
}

impl<F: Future> Future for Woken<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        // Registered before the flag is read: a wake-up between the two wakes this task again.
        this.flag.task.register(cx.waker());
        if !this.flag.woken.swap(false, Ordering::AcqRel) {
            return Poll::Pending;
        }
        let waker = Waker::from(this.flag.clone());
        this.future.poll(&mut Context::from_waker(&waker))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use tokio_util::sync::CancellationToken;

    use super::*;

    /// Counts its polls, and is ready once `ready` is cancelled.
    struct Counted<'a> {
        polls: &'a AtomicUsize,
        ready: Pin<Box<tokio_util::sync::WaitForCancellationFutureOwned>>,
    }

    impl Future for Counted<'_> {
        type Output = ();

        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            self.polls.fetch_add(1, Ordering::SeqCst);
            self.ready.as_mut().poll(cx)
        }
    }

    #[tokio::test]
    async fn the_future_is_polled_first_and_then_only_after_its_own_wake_up() {
        let polls = AtomicUsize::new(0);
        let token = CancellationToken::new();
        let mut woken = Woken::new(Counted { polls: &polls, ready: Box::pin(token.clone().cancelled_owned()) });
        let (waker, task_woken) = counting_waker();
        let mut cx = Context::from_waker(&waker);
        for _ in 0..5 {
            assert!(Pin::new(&mut woken).poll(&mut cx).is_pending());
        }
        assert_eq!(polls.load(Ordering::SeqCst), 1, "polled once, then left alone");
        token.cancel();
        assert_eq!(task_woken.load(Ordering::SeqCst), 1, "its wake-up reaches the task");
        assert!(Pin::new(&mut woken).poll(&mut cx).is_ready());
        assert_eq!(polls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_wake_up_finds_the_waker_of_the_latest_poll() {
        let token = CancellationToken::new();
        let mut woken = std::pin::pin!(Woken::new(token.clone().cancelled_owned()));
        let (first, first_woken) = counting_waker();
        assert!(woken.as_mut().poll(&mut Context::from_waker(&first)).is_pending());
        let (second, second_woken) = counting_waker();
        assert!(woken.as_mut().poll(&mut Context::from_waker(&second)).is_pending());
        token.cancel();
        assert_eq!((first_woken.load(Ordering::SeqCst), second_woken.load(Ordering::SeqCst)), (0, 1));
    }

    struct CountingWaker(Arc<AtomicUsize>);

    impl Wake for CountingWaker {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn counting_waker() -> (Waker, Arc<AtomicUsize>) {
        let count = Arc::new(AtomicUsize::new(0));
        (Waker::from(Arc::new(CountingWaker(count.clone()))), count)
    }
}
