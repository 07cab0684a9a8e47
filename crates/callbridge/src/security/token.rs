//! The per-install listener token: what lets scripts and CRMs through without a browser's origin.
//!
//! It is 256 bits from the OS random number generator, written as 64 hex digits, created the first
//! time CallBridge needs it and kept in the OS keyring (entry `[security] token_entry`, default
//! `listener-token`) — never in the config file, the store or the logs. Requests present it as
//! `Authorization: Bearer TOKEN` or `?token=TOKEN` and it is compared in constant time. `callbridge
//! token show` prints it and `callbridge token regenerate` replaces it; a running CallBridge reads the
//! keyring again when its copy is older than [`RECHECK_AFTER`], so the old token stops working within
//! a second.
//!
//! Without a keyring (no Secret Service on a headless Linux box) there is no token: requests that
//! present one are answered 503 with the keyring's problem, while programs on this machine still work
//! without one.

use std::sync::{Arc, PoisonError, RwLock};

use subtle::ConstantTimeEq;

use crate::secrets::{Secret, SecretError, SecretStore};

/// The keyring entry used unless the config names another.
pub const DEFAULT_ENTRY: &str = "listener-token";

/// Why there is no token to use.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TokenError {
    #[error("the listener token cannot be used: {0}")]
    Keyring(String),
    #[error("the OS random number generator failed, so no token could be created: {0}")]
    Random(String),
}

impl From<SecretError> for TokenError {
    fn from(e: SecretError) -> Self {
        TokenError::Keyring(e.to_string())
    }
}

/// A fresh token: 32 random bytes as hex.
pub fn generate() -> Result<Secret, TokenError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| TokenError::Random(e.to_string()))?;
    Ok(Secret::new(bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()))
}

/// The token in `entry`, created and stored first if there is none. Blocks on the keyring.
pub fn load_or_create(secrets: &dyn SecretStore, entry: &str) -> Result<Secret, TokenError> {
    if let Some(token) = secrets.get(entry)?.filter(|t| !t.expose().is_empty()) {
        return Ok(token);
    }
    let token = generate()?;
    secrets.set(entry, &token)?;
    tracing::info!(entry, "created the listener token and stored it in the keyring");
    Ok(token)
}

/// Replaces the token in `entry` with a fresh one. Blocks on the keyring.
pub fn regenerate(secrets: &dyn SecretStore, entry: &str) -> Result<Secret, TokenError> {
    let token = generate()?;
    secrets.set(entry, &token)?;
    tracing::info!(entry, "regenerated the listener token");
    Ok(token)
}

/// Whether `presented` is `token`, in time that does not depend on where they differ.
pub fn matches(token: &Secret, presented: &str) -> bool {
    bool::from(token.expose().as_bytes().ct_eq(presented.as_bytes()))
}

/// What checking a presented token found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum TokenCheck {
    /// No token was presented.
    #[default]
    Absent,
    Valid,
    Invalid,
    /// One was presented but there is no token to compare it with; the reason.
    Unusable(String),
}

/// How long a token read from the keyring is trusted before a request makes CallBridge read it again,
/// so that `callbridge token regenerate` in another process takes effect within this time.
pub const RECHECK_AFTER: std::time::Duration = std::time::Duration::from_secs(1);

/// The engine's view of the token: read from the keyring, and read again when the copy is older than
/// [`RECHECK_AFTER`] or a presented token does not match (it may have been regenerated elsewhere).
#[derive(Debug)]
pub struct TokenKeeper {
    secrets: Arc<dyn SecretStore>,
    entry: RwLock<String>,
    /// The token and when it was read. Held across keyring calls so concurrent requests wait for one
    /// read instead of each making one.
    cached: tokio::sync::Mutex<Option<(Secret, tokio::time::Instant)>>,
}

impl TokenKeeper {
    pub fn new(secrets: Arc<dyn SecretStore>, entry: &str) -> Self {
        TokenKeeper { secrets, entry: RwLock::new(entry.to_owned()), cached: tokio::sync::Mutex::new(None) }
    }

    /// Uses another keyring entry from now on.
    pub fn set_entry(&self, entry: &str) {
        let mut current = self.entry.write().unwrap_or_else(PoisonError::into_inner);
        if *current != entry {
            *current = entry.to_owned();
            if let Ok(mut cached) = self.cached.try_lock() {
                *cached = None;
            }
        }
    }

    fn entry(&self) -> String {
        self.entry.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// The token, created at first use.
    pub async fn token(&self) -> Result<Secret, TokenError> {
        let mut cached = self.cached.lock().await;
        if let Some((token, read)) = cached.as_ref() {
            if read.elapsed() < RECHECK_AFTER {
                return Ok(token.clone());
            }
        }
        let token = self.blocking(load_or_create).await?;
        *cached = Some((token.clone(), tokio::time::Instant::now()));
        Ok(token)
    }

    /// A new token, replacing the old one in the keyring.
    pub async fn regenerate(&self) -> Result<Secret, TokenError> {
        let mut cached = self.cached.lock().await;
        let token = self.blocking(regenerate).await?;
        *cached = Some((token.clone(), tokio::time::Instant::now()));
        Ok(token)
    }

    /// Checks a presented token.
    pub async fn check(&self, presented: &str) -> TokenCheck {
        let mut cached = self.cached.lock().await;
        if cached.as_ref().is_some_and(|(t, read)| read.elapsed() < RECHECK_AFTER && matches(t, presented)) {
            return TokenCheck::Valid;
        }
        // Not read yet, read a while ago, or regenerated since: ask the keyring.
        match self.blocking(load_or_create).await {
            Ok(token) => {
                let valid = matches(&token, presented);
                *cached = Some((token, tokio::time::Instant::now()));
                if valid {
                    TokenCheck::Valid
                } else {
                    TokenCheck::Invalid
                }
            }
            Err(e) => TokenCheck::Unusable(e.to_string()),
        }
    }

    /// Runs a keyring operation off the async threads (keyring calls block on D-Bus or the OS).
    async fn blocking(&self, op: fn(&dyn SecretStore, &str) -> Result<Secret, TokenError>) -> Result<Secret, TokenError> {
        let secrets = Arc::clone(&self.secrets);
        let entry = self.entry();
        tokio::task::spawn_blocking(move || op(secrets.as_ref(), &entry))
            .await
            .unwrap_or_else(|e| Err(TokenError::Keyring(format!("the keyring call did not finish: {e}"))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secrets::MemorySecrets;

    #[test]
    fn tokens_are_256_random_bits_in_hex() {
        let a = generate().expect("token");
        let b = generate().expect("token");
        assert_eq!(a.expose().len(), 64);
        assert!(a.expose().bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
        assert!(matches(&a, a.expose()));
        assert!(!matches(&a, b.expose()));
        assert!(!matches(&a, &a.expose()[..63]));
        assert!(!matches(&a, ""));
    }

    #[tokio::test(start_paused = true)]
    async fn the_keeper_creates_once_and_notices_a_regenerated_token() {
        let secrets: Arc<dyn SecretStore> = Arc::new(MemorySecrets::default());
        let keeper = TokenKeeper::new(Arc::clone(&secrets), DEFAULT_ENTRY);
        let first = keeper.token().await.expect("created");
        assert_eq!(keeper.token().await.expect("cached"), first);
        assert_eq!(secrets.get(DEFAULT_ENTRY).expect("stored"), Some(first.clone()));
        assert_eq!(keeper.check(first.expose()).await, TokenCheck::Valid);
        assert_eq!(keeper.check("nope").await, TokenCheck::Invalid);

        // `callbridge token regenerate` in another process writes the keyring directly.
        let second = regenerate(secrets.as_ref(), DEFAULT_ENTRY).expect("regenerate");
        // Until its copy is RECHECK_AFTER old the keeper does not know; then the old token is refused.
        assert_eq!(keeper.check(first.expose()).await, TokenCheck::Valid);
        tokio::time::advance(RECHECK_AFTER).await;
        assert_eq!(keeper.check(first.expose()).await, TokenCheck::Invalid);
        assert_eq!(keeper.check(second.expose()).await, TokenCheck::Valid);
        let third = keeper.regenerate().await.expect("regenerate here");
        assert_eq!(keeper.check(third.expose()).await, TokenCheck::Valid);
    }

    #[derive(Debug)]
    struct NoKeyring;

    impl SecretStore for NoKeyring {
        fn get(&self, _: &str) -> Result<Option<Secret>, SecretError> {
            Err(SecretError::Unavailable("no Secret Service on this bus".into()))
        }
        fn set(&self, _: &str, _: &Secret) -> Result<(), SecretError> {
            Err(SecretError::Unavailable("no Secret Service on this bus".into()))
        }
        fn delete(&self, _: &str) -> Result<bool, SecretError> {
            Err(SecretError::Unavailable("no Secret Service on this bus".into()))
        }
    }

    #[tokio::test]
    async fn without_a_keyring_the_token_is_unusable_and_says_why() {
        let keeper = TokenKeeper::new(Arc::new(NoKeyring), DEFAULT_ENTRY);
        let err = keeper.token().await.expect_err("no keyring").to_string();
        assert!(err.contains("keyring") && err.contains("no Secret Service"), "{err}");
        assert!(matches!(keeper.check("x").await, TokenCheck::Unusable(reason) if reason.contains("keyring")));
    }
}
