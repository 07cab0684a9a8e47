//! The user token TeleCMI's hangup needs: obtained with the user's login, kept in memory only, and
//! renewed a day before its 30 days run out (or at once when TeleCMI stops accepting it).

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::secrets::Secret;

/// How long TeleCMI says a user token lasts: 30 days (https://doc.telecmi.com/chub/docs/login-token).
pub const LIFETIME: Duration = Duration::from_secs(30 * 24 * 60 * 60);

/// Renew this long before the token would expire.
pub const RENEW_BEFORE: Duration = Duration::from_secs(24 * 60 * 60);

#[derive(Debug, Default)]
pub struct TokenCache {
    current: Mutex<Option<(Secret, Instant)>>,
}

impl TokenCache {
    /// The token, if there is one that will not expire within [`RENEW_BEFORE`] of `now`.
    pub fn usable(&self, now: Instant) -> Option<Secret> {
        let current = self.current.lock().unwrap_or_else(PoisonError::into_inner);
        let (token, obtained) = current.as_ref()?;
        (now.saturating_duration_since(*obtained) < LIFETIME - RENEW_BEFORE).then(|| token.clone())
    }

    pub fn store(&self, token: Secret, obtained: Instant) {
        *self.current.lock().unwrap_or_else(PoisonError::into_inner) = Some((token, obtained));
    }

    /// Forgets the token (TeleCMI refused it).
    pub fn forget(&self) {
        *self.current.lock().unwrap_or_else(PoisonError::into_inner) = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_renewed_a_day_before_it_expires() {
        let cache = TokenCache::default();
        let t0 = Instant::now();
        assert!(cache.usable(t0).is_none());
        cache.store(Secret::new("tok"), t0);
        assert_eq!(cache.usable(t0 + Duration::from_secs(3600)).map(|t| t.expose().to_owned()), Some("tok".into()));
        let almost = t0 + LIFETIME - RENEW_BEFORE - Duration::from_secs(1);
        assert!(cache.usable(almost).is_some());
        assert!(cache.usable(t0 + LIFETIME - RENEW_BEFORE).is_none(), "renewed a day before expiry");
        cache.forget();
        assert!(cache.usable(t0).is_none());
    }
}
