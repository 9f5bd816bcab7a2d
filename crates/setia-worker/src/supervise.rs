//! Background jobs that outlive a bug: a panic in a job (the worker, the mailer, the nightly
//! metrics, the Moota sync) is logged and counted, and the job starts again, instead of the
//! process answering webhooks with nothing behind them until someone restarts it.

use std::any::Any;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::time::Duration;

use futures_util::FutureExt;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The pause before a job that panicked starts again: long enough that a job panicking at
/// once does not spin a core, short enough that little waits.
pub const RESTART_AFTER: Duration = Duration::from_secs(5);

/// A panic's message, as far as it has one.
pub fn panic_message(payload: &(dyn Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
}

/// Runs `work`, turning a panic inside it into `Err` with the panic's message: one inbox row
/// or one merchant whose data hits a bug must not take the rest down with it.
pub async fn unless_panicked<T>(work: impl Future<Output = T>) -> Result<T, String> {
    AssertUnwindSafe(work)
        .catch_unwind()
        .await
        .map_err(|payload| panic_message(&*payload))
}

/// Spawns the job `start(stop)` and starts it again, after `pause`, each time it panics,
/// until it returns (which jobs do once `stop` turns true).
pub fn supervised<F, J>(
    name: &'static str,
    mut stop: watch::Receiver<bool>,
    pause: Duration,
    start: F,
) -> JoinHandle<()>
where
    F: Fn(watch::Receiver<bool>) -> J + Send + 'static,
    J: Future<Output = ()> + Send + 'static,
{
    tokio::spawn(async move {
        loop {
            let ended = tokio::spawn(start(stop.clone())).await;
            let Err(error) = ended else { return };
            if !error.is_panic() {
                return;
            }
            let message = panic_message(&*error.into_panic());
            metrics::counter!("setia_job_panics_total", "job" => name).increment(1);
            tracing::error!(job = name, panic = %message, "background job panicked; starting it again");
            if *stop.borrow() {
                return;
            }
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = stop.changed() => return,
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use super::*;

    #[tokio::test]
    async fn a_job_that_panics_starts_again_until_stopped() {
        let (stop, stopped) = watch::channel(false);
        let starts = Arc::new(AtomicUsize::new(0));
        let counted = starts.clone();
        let job = supervised(
            "test",
            stopped,
            Duration::from_millis(1),
            move |mut stop| {
                let n = counted.fetch_add(1, Ordering::SeqCst);
                async move {
                    if n < 2 {
                        panic!("bug number {n}");
                    }
                    let _ = stop.wait_for(|stopped| *stopped).await;
                }
            },
        );
        while starts.load(Ordering::SeqCst) < 3 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        assert!(!job.is_finished(), "the third start runs on");
        stop.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(5), job)
            .await
            .expect("stops when asked")
            .unwrap();
        assert_eq!(starts.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_job_that_returns_is_not_started_again() {
        let (_stop, stopped) = watch::channel(false);
        let starts = Arc::new(AtomicUsize::new(0));
        let counted = starts.clone();
        supervised("test", stopped, Duration::from_millis(1), move |_| {
            counted.fetch_add(1, Ordering::SeqCst);
            async {}
        })
        .await
        .unwrap();
        assert_eq!(starts.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_panic_becomes_its_message() {
        assert_eq!(unless_panicked(async { 7 }).await, Ok(7));
        let text = unless_panicked(async { panic!("at {}", 3) }).await;
        assert_eq!(text, Err::<(), _>("at 3".into()));
        let fixed: Result<(), _> = unless_panicked(async { panic!("fixed") }).await;
        assert_eq!(fixed, Err("fixed".into()));
    }
}
