//! Time as the gateway's rules see it. The rate limiters, the reuse cache's TTL, the audit
//! log's timed checkpoints, syncs and probes, and the periodic tasks all read one [`Clock`], so
//! a test drives them by advancing a [`ManualClock`] instead of sleeping and hoping.
//!
//! Not for measuring how long something took (an audit record's `latency_us`, the metrics'
//! histograms, the audit writer's linger, which is a fraction of a real `fdatasync`): that is
//! real elapsed time, read from `Instant` directly. Not for timestamps written down (`ts`,
//! `updated_at`): those are wall-clock time.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use tokio::sync::watch;

/// A point in a [`Clock`]'s time: nanoseconds since the clock's origin. Copy and ordered, so
/// deadlines are plain comparisons.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Tick(u64);

impl Tick {
    /// The clock's origin.
    pub const ZERO: Tick = Tick(0);

    /// Nanoseconds since the clock's origin.
    pub fn as_nanos(self) -> u64 {
        self.0
    }

    /// `d` later, saturating at the end of time (about 584 years after the origin).
    pub fn after(self, d: Duration) -> Tick {
        Tick(self.0.saturating_add(nanos(d)))
    }

    /// How long after `earlier` this is; zero when it is not after it.
    pub fn since(self, earlier: Tick) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// The gateway's clock: the system's monotonic clock in production, a [`ManualClock`] in tests.
/// Cheap to clone and to read (an enum, not a trait object, because the limiter and the cache
/// read it on every call).
#[derive(Clone)]
pub struct Clock(Source);

#[derive(Clone)]
enum Source {
    /// quanta reads the CPU's time-stamp counter where it is reliable (a few ns, against
    /// ~20 ns for `Instant::now`), the same clock governor uses by default.
    System {
        clock: quanta::Clock,
        origin: quanta::Instant,
    },
    Manual(Arc<ManualClock>),
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Source::System { .. } => f.write_str("Clock::System"),
            Source::Manual(m) => write!(f, "Clock::Manual({:?})", m.now()),
        }
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::system()
    }
}

impl Clock {
    /// The system's monotonic clock.
    pub fn system() -> Clock {
        let clock = quanta::Clock::new();
        Clock(Source::System {
            origin: clock.now(),
            clock,
        })
    }

    /// A clock that moves only when the returned [`ManualClock`] is advanced.
    pub fn manual() -> (Clock, Arc<ManualClock>) {
        let m = Arc::new(ManualClock::new());
        (Clock(Source::Manual(m.clone())), m)
    }

    /// Whether this is a test's manual clock (then every node of a test shares it).
    pub fn is_manual(&self) -> bool {
        matches!(self.0, Source::Manual(_))
    }

    pub fn now(&self) -> Tick {
        match &self.0 {
            Source::System { clock, origin } => Tick(nanos(clock.now().duration_since(*origin))),
            Source::Manual(m) => m.now(),
        }
    }

    /// Wall-clock time on this clock: the system's, or for a manual clock the wall-clock time
    /// at its creation plus how far it was advanced, so that a rule about ages (the change
    /// log's retention) can be tested by advancing the clock.
    pub fn wall(&self) -> SystemTime {
        match &self.0 {
            Source::System { .. } => SystemTime::now(),
            Source::Manual(m) => m.wall_origin + m.now().since(Tick::ZERO),
        }
    }

    /// Completes once this clock has reached `at` (at once if it has).
    pub async fn sleep_until(&self, at: Tick) {
        self.sleep(at.since(self.now())).await
    }

    /// Completes once this clock has advanced by `d`.
    pub async fn sleep(&self, d: Duration) {
        match &self.0 {
            Source::System { .. } => tokio::time::sleep(d).await,
            Source::Manual(m) => m.sleep_until(m.now().after(d)).await,
        }
    }

    /// For a thread that waits on `cv` for a notification or until `at` on this clock,
    /// whichever comes first. With a manual clock the wait ends when the clock is advanced, so
    /// the waiter must have registered with [`Clock::on_advance`] a callback that takes the
    /// same mutex and notifies `cv` (then no advance can fall between the check and the wait).
    pub fn wait_until<'a, T>(
        &self,
        cv: &Condvar,
        guard: MutexGuard<'a, T>,
        at: Tick,
    ) -> MutexGuard<'a, T> {
        let now = self.now();
        if now >= at {
            return guard;
        }
        match &self.0 {
            Source::System { .. } => cv
                .wait_timeout(guard, at.since(now))
                .map(|(g, _)| g)
                .unwrap_or_else(|e| e.into_inner().0),
            Source::Manual(_) => cv.wait(guard).unwrap_or_else(PoisonError::into_inner),
        }
    }

    /// Calls `f` after every advance of a manual clock (for threads waiting with
    /// [`Clock::wait_until`]); the system clock never needs it.
    pub fn on_advance(&self, f: impl Fn() + Send + Sync + 'static) {
        if let Source::Manual(m) = &self.0 {
            m.listeners
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(Arc::new(f));
        }
    }
}

impl governor::clock::Clock for Clock {
    type Instant = governor::nanos::Nanos;

    fn now(&self) -> Self::Instant {
        governor::nanos::Nanos::new(Clock::now(self).as_nanos())
    }
}

type Listener = Arc<dyn Fn() + Send + Sync>;

/// A clock for tests: time stands still until [`ManualClock::advance`] moves it, and then
/// every sleeper and waiter whose deadline has come is woken.
pub struct ManualClock {
    now: watch::Sender<Tick>,
    /// Tasks asleep on this clock right now, so a test can tell when the gateway has reached
    /// a wait (a paced stream, a timer) before it advances time.
    sleepers: watch::Sender<usize>,
    listeners: Mutex<Vec<Listener>>,
    /// Sleep futures created, for [`ManualClock::sleeps_started`].
    started: AtomicUsize,
    /// What [`Clock::wall`] says at [`Tick::ZERO`].
    wall_origin: SystemTime,
}

impl ManualClock {
    fn new() -> ManualClock {
        ManualClock {
            now: watch::Sender::new(Tick::ZERO),
            sleepers: watch::Sender::new(0),
            listeners: Mutex::new(Vec::new()),
            started: AtomicUsize::new(0),
            wall_origin: SystemTime::now(),
        }
    }

    pub fn now(&self) -> Tick {
        *self.now.borrow()
    }

    /// Moves time forward by `d` and wakes whoever's deadline has come.
    pub fn advance(&self, d: Duration) {
        self.now.send_modify(|t| *t = t.after(d));
        let listeners = self
            .listeners
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        for l in listeners {
            l();
        }
    }

    /// Tasks asleep on this clock now.
    pub fn sleepers(&self) -> usize {
        *self.sleepers.borrow()
    }

    /// How many sleeps were started on this clock so far.
    pub fn sleeps_started(&self) -> usize {
        self.started.load(Ordering::Relaxed)
    }

    /// Waits (in real time) until at least `n` tasks are asleep on this clock: the gateway
    /// has got as far as it can without time moving.
    pub async fn until_sleepers(&self, n: usize) {
        let mut rx = self.sleepers.subscribe();
        let _ = rx.wait_for(|s| *s >= n).await;
    }

    async fn sleep_until(&self, at: Tick) {
        if self.now() >= at {
            return;
        }
        // Subscribed before counting as a sleeper: a test that sees the count and advances
        // cannot slip its advance in before this task is listening.
        let mut rx = self.now.subscribe();
        self.started.fetch_add(1, Ordering::Relaxed);
        let _asleep = Asleep::new(&self.sleepers);
        let _ = rx.wait_for(|t| *t >= at).await;
    }
}

/// Counts one sleeper for as long as it lives (also when its future is dropped early).
struct Asleep<'a>(&'a watch::Sender<usize>);

impl<'a> Asleep<'a> {
    fn new(count: &'a watch::Sender<usize>) -> Self {
        count.send_modify(|n| *n += 1);
        Asleep(count)
    }
}

impl Drop for Asleep<'_> {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n -= 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_manual_sleep_ends_when_the_clock_is_advanced_far_enough() {
        let (clock, manual) = Clock::manual();
        let c = clock.clone();
        let sleeper = tokio::spawn(async move { c.sleep(Duration::from_secs(10)).await });
        manual.until_sleepers(1).await;
        manual.advance(Duration::from_secs(9));
        tokio::task::yield_now().await;
        assert!(!sleeper.is_finished());
        assert_eq!(manual.sleepers(), 1);
        manual.advance(Duration::from_secs(1));
        sleeper.await.unwrap();
        assert_eq!(manual.sleepers(), 0);
        assert_eq!(clock.now().since(Tick::ZERO), Duration::from_secs(10));
    }

    #[test]
    fn a_condvar_waiter_is_woken_by_an_advance() {
        let (clock, manual) = Clock::manual();
        let state = Arc::new((Mutex::new(()), Condvar::new()));
        let s = state.clone();
        clock.on_advance(move || {
            let _g = s.0.lock().unwrap();
            s.1.notify_all();
        });
        let (c, s) = (clock.clone(), state.clone());
        let at = clock.now().after(Duration::from_secs(5));
        let waiter = std::thread::spawn(move || {
            let mut g = s.0.lock().unwrap();
            while c.now() < at {
                g = c.wait_until(&s.1, g, at);
            }
        });
        manual.advance(Duration::from_secs(5));
        waiter.join().unwrap();
    }

    #[test]
    fn ticks_add_and_subtract_without_overflow() {
        let t = Tick::ZERO.after(Duration::from_millis(5));
        assert_eq!(t.since(Tick::ZERO), Duration::from_millis(5));
        assert_eq!(Tick::ZERO.since(t), Duration::ZERO);
        assert_eq!(Tick(u64::MAX).after(Duration::from_secs(1)), Tick(u64::MAX));
    }
}
