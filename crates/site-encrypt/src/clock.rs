//! Time as a seam: the service asks a [`Clock`] for "now" and for sleeps, so
//! tests move a [`FakeClock`] by 60 days instead of waiting.

use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::time::Duration;

use time::OffsetDateTime;
use tokio::sync::watch;

/// A boxed sleep future.
pub type Sleep = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// The service's source of time.
pub trait Clock: Send + Sync + 'static {
    /// The current time.
    fn now(&self) -> OffsetDateTime;
    /// Completes at (or after) `deadline`.
    fn sleep_until(&self, deadline: OffsetDateTime) -> Sleep;
}

/// The real clock: wall time and tokio timers.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }

    fn sleep_until(&self, deadline: OffsetDateTime) -> Sleep {
        let d = deadline - OffsetDateTime::now_utc();
        let d = Duration::try_from(d).unwrap_or(Duration::ZERO);
        Box::pin(tokio::time::sleep(d))
    }
}

/// A clock that only moves when told to. Sleepers wake as soon as the time
/// they wait for is reached by [`FakeClock::advance`] or [`FakeClock::set`].
#[derive(Debug)]
pub struct FakeClock {
    now: Mutex<OffsetDateTime>,
    tx: watch::Sender<OffsetDateTime>,
}

impl FakeClock {
    /// A fake clock starting at `start`.
    pub fn new(start: OffsetDateTime) -> Self {
        let (tx, _) = watch::channel(start);
        FakeClock {
            now: Mutex::new(start),
            tx,
        }
    }

    /// A fake clock starting at the current wall time.
    pub fn starting_now() -> Self {
        Self::new(OffsetDateTime::now_utc())
    }

    /// Moves time forward.
    pub fn advance(&self, by: Duration) {
        let mut now = self.now.lock().unwrap_or_else(|e| e.into_inner());
        *now += by;
        self.tx.send_replace(*now);
    }

    /// Sets the time.
    pub fn set(&self, to: OffsetDateTime) {
        let mut now = self.now.lock().unwrap_or_else(|e| e.into_inner());
        *now = to;
        self.tx.send_replace(to);
    }
}

impl Clock for FakeClock {
    fn now(&self) -> OffsetDateTime {
        *self.now.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn sleep_until(&self, deadline: OffsetDateTime) -> Sleep {
        let mut rx = self.tx.subscribe();
        Box::pin(async move {
            loop {
                if *rx.borrow_and_update() >= deadline {
                    return;
                }
                if rx.changed().await.is_err() {
                    // The clock is gone: nothing will ever move time again.
                    std::future::pending::<()>().await;
                }
            }
        })
    }
}
