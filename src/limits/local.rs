//! Rates kept in this process: one GCRA limiter (governor) per client, on the gateway's
//! [`Clock`], so tests move time instead of waiting for it.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::middleware::NoOpMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};

use super::{Rate, RateBackend};
use crate::clock::Clock;

type Gcra = RateLimiter<NotKeyed, InMemoryState, Clock, NoOpMiddleware<governor::nanos::Nanos>>;

/// One client's rate in this process.
pub struct LocalRate {
    limiter: Gcra,
    clock: Clock,
}

impl LocalRate {
    pub fn new(clock: &Clock, rate_per_sec: u32, burst: u32) -> LocalRate {
        let quota = Quota::per_second(NonZeroU32::new(rate_per_sec).unwrap_or(NonZeroU32::MIN))
            .allow_burst(NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN));
        LocalRate {
            limiter: RateLimiter::direct_with_clock(quota, clock.clone()),
            clock: clock.clone(),
        }
    }
}

impl LocalRate {
    /// Takes one unit now, or says how long until there is one.
    pub fn try_acquire(&self) -> Result<(), Duration> {
        self.limiter
            .check()
            .map_err(|not_until| not_until.wait_time_from(governor::clock::Clock::now(&self.clock)))
    }
}

#[async_trait::async_trait]
impl Rate for LocalRate {
    async fn admit(&self) -> Result<(), Duration> {
        self.try_acquire()
    }
}

/// Every client's rate kept in this process: a client calling several gateways gets the rate
/// at each of them.
pub struct LocalRates {
    pub clock: Clock,
}

impl RateBackend for LocalRates {
    fn rate(&self, _client: &str, rate_per_sec: u32, burst: u32) -> Arc<dyn Rate> {
        Arc::new(LocalRate::new(&self.clock, rate_per_sec, burst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_the_rate_exactly_as_time_passes() {
        let (clock, manual) = Clock::manual();
        let l = LocalRate::new(&clock, 10, 3);
        for _ in 0..3 {
            assert!(l.try_acquire().is_ok());
        }
        // One unit every 100 ms from here on.
        assert_eq!(l.try_acquire(), Err(Duration::from_millis(100)));
        manual.advance(Duration::from_millis(60));
        assert_eq!(l.try_acquire(), Err(Duration::from_millis(40)));
        manual.advance(Duration::from_millis(40));
        assert!(l.try_acquire().is_ok());
        assert!(l.try_acquire().is_err());
        // A second's pause refills the burst and no more.
        manual.advance(Duration::from_secs(1));
        let granted = (0..20).filter(|_| l.try_acquire().is_ok()).count();
        assert_eq!(granted, 3);
    }
}
