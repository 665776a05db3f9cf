//! Retry, polling and timeout policy, in one place.

use std::time::Duration;

/// How often a `badNonce` answer is retried with the fresh nonce it carries.
/// Ten, not five: Pebble's tests reject 30 % of nonces, and 0.3^11 keeps a
/// 20-certification run from failing by chance.
pub const DEFAULT_BAD_NONCE_RETRIES: u32 = 10;
/// Limit for one HTTP request.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Limit for polling one order or authorization to a final state.
pub const DEFAULT_POLL_TIMEOUT: Duration = Duration::from_secs(90);
/// First polling delay. Small because in-process challenge servers tell the
/// workflow the moment the CA fetched the token.
pub const DEFAULT_POLL_INITIAL: Duration = Duration::from_millis(2);
/// Largest polling delay of the exponential backoff.
pub const DEFAULT_POLL_MAX: Duration = Duration::from_secs(2);
/// Largest `Retry-After` honoured while polling inside one certification;
/// longer values are cut to this (a CA asking for an hour mid-certification
/// is treated as "a while"). Errors report the CA's value up to
/// [`crate::MAX_ERROR_RETRY_AFTER`], for schedulers to honour.
pub const DEFAULT_MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// Retry, polling and timeout policy of the client.
///
/// ```
/// use std::time::Duration;
/// let p = site_encrypt_client::RetryPolicy::default().poll_timeout(Duration::from_secs(5));
/// assert_eq!(p.poll_timeout, Duration::from_secs(5));
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RetryPolicy {
    /// See [`DEFAULT_BAD_NONCE_RETRIES`].
    pub bad_nonce_retries: u32,
    /// See [`DEFAULT_REQUEST_TIMEOUT`].
    pub request_timeout: Duration,
    /// See [`DEFAULT_POLL_TIMEOUT`].
    pub poll_timeout: Duration,
    /// See [`DEFAULT_POLL_INITIAL`].
    pub poll_initial: Duration,
    /// See [`DEFAULT_POLL_MAX`].
    pub poll_max: Duration,
    /// See [`DEFAULT_MAX_RETRY_AFTER`].
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            bad_nonce_retries: DEFAULT_BAD_NONCE_RETRIES,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            poll_timeout: DEFAULT_POLL_TIMEOUT,
            poll_initial: DEFAULT_POLL_INITIAL,
            poll_max: DEFAULT_POLL_MAX,
            max_retry_after: DEFAULT_MAX_RETRY_AFTER,
        }
    }
}

impl RetryPolicy {
    /// Sets the badNonce retry count.
    pub fn bad_nonce_retries(mut self, n: u32) -> Self {
        self.bad_nonce_retries = n;
        self
    }
    /// Sets the per-request limit.
    pub fn request_timeout(mut self, d: Duration) -> Self {
        self.request_timeout = d;
        self
    }
    /// Sets the polling limit.
    pub fn poll_timeout(mut self, d: Duration) -> Self {
        self.poll_timeout = d;
        self
    }
    /// Sets the polling backoff bounds.
    pub fn poll_backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.poll_initial = initial;
        self.poll_max = max;
        self
    }
    /// Sets the largest honoured `Retry-After`.
    pub fn max_retry_after(mut self, d: Duration) -> Self {
        self.max_retry_after = d;
        self
    }

    /// The next polling delay after `current`: doubled, capped.
    pub fn next_delay(&self, current: Duration) -> Duration {
        (current * 2).min(self.poll_max)
    }
}
