//! Secrets — provider app secrets, passwords, the listener token — kept in the OS keyring.
//!
//! The config file only names an entry; the value lives in the Secret Service on Linux (gnome-keyring,
//! KWallet), the Keychain on macOS and the Credential Manager on Windows, through the `keyring` crate.
//! [`Secret`] never prints its value, so a secret cannot leak into logs or error messages by accident.
//! [`MemorySecrets`] stands in where no keyring may be touched (unit tests, `--no-keyring`).
//!
//! The keyring calls block (they are D-Bus or system calls): call them from a blocking context
//! (`tokio::task::spawn_blocking`), not directly on an async task.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Mutex, PoisonError};

/// The keyring "service" all CallBridge entries are filed under.
pub const SERVICE: &str = "CallBridge";

/// A secret value. `Debug` and `Display` show `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The value itself, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("the OS keyring is not available ({0}); on Linux a Secret Service such as gnome-keyring must be running and unlocked")]
    Unavailable(String),
    #[error("the OS keyring refused access to {entry:?}: {message}")]
    Access { entry: String, message: String },
    #[error("a secret cannot be empty")]
    Empty,
}

/// Where secrets are kept.
pub trait SecretStore: Send + Sync + fmt::Debug {
    /// The secret stored under `entry`, if any.
    fn get(&self, entry: &str) -> Result<Option<Secret>, SecretError>;
    fn set(&self, entry: &str, value: &Secret) -> Result<(), SecretError>;
    /// Removes `entry`; `Ok(false)` if there was none.
    fn delete(&self, entry: &str) -> Result<bool, SecretError>;
}

/// The OS keyring.
#[derive(Debug, Default, Clone, Copy)]
pub struct Keyring;

impl Keyring {
    fn entry(entry: &str) -> Result<keyring::Entry, SecretError> {
        keyring::Entry::new(SERVICE, entry).map_err(|e| classify(entry, e))
    }
}

fn classify(entry: &str, e: keyring::Error) -> SecretError {
    match e {
        keyring::Error::PlatformFailure(inner) | keyring::Error::NoStorageAccess(inner) => {
            SecretError::Unavailable(inner.to_string())
        }
        other => SecretError::Access { entry: entry.to_owned(), message: other.to_string() },
    }
}

impl SecretStore for Keyring {
    fn get(&self, entry: &str) -> Result<Option<Secret>, SecretError> {
        match Self::entry(entry)?.get_password() {
            Ok(value) => Ok(Some(Secret(value))),
            Err(keyring::Error::NoEntry) => Ok(None),
            Err(e) => Err(classify(entry, e)),
        }
    }

    fn set(&self, entry: &str, value: &Secret) -> Result<(), SecretError> {
        if value.0.is_empty() {
            return Err(SecretError::Empty);
        }
        Self::entry(entry)?.set_password(&value.0).map_err(|e| classify(entry, e))
    }

    fn delete(&self, entry: &str) -> Result<bool, SecretError> {
        match Self::entry(entry)?.delete_credential() {
            Ok(()) => Ok(true),
            Err(keyring::Error::NoEntry) => Ok(false),
            Err(e) => Err(classify(entry, e)),
        }
    }
}

/// Secrets in memory only, gone when the process ends.
#[derive(Debug, Default)]
pub struct MemorySecrets {
    values: Mutex<HashMap<String, Secret>>,
}

impl SecretStore for MemorySecrets {
    fn get(&self, entry: &str) -> Result<Option<Secret>, SecretError> {
        Ok(self.values.lock().unwrap_or_else(PoisonError::into_inner).get(entry).cloned())
    }

    fn set(&self, entry: &str, value: &Secret) -> Result<(), SecretError> {
        if value.0.is_empty() {
            return Err(SecretError::Empty);
        }
        self.values.lock().unwrap_or_else(PoisonError::into_inner).insert(entry.to_owned(), value.clone());
        Ok(())
    }

    fn delete(&self, entry: &str) -> Result<bool, SecretError> {
        Ok(self.values.lock().unwrap_or_else(PoisonError::into_inner).remove(entry).is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print_their_value() {
        let s = Secret::new("2e0d75-d843-45-945-4171dd7a");
        assert_eq!(format!("{s:?} {s}"), "Secret(***) ***");
        assert_eq!(s.expose(), "2e0d75-d843-45-945-4171dd7a");
    }

    #[test]
    fn memory_store_round_trips() {
        let store = MemorySecrets::default();
        assert!(store.get("telecmi").expect("get").is_none());
        store.set("telecmi", &Secret::new("x")).expect("set");
        assert_eq!(store.get("telecmi").expect("get"), Some(Secret::new("x")));
        assert!(store.delete("telecmi").expect("delete"));
        assert!(!store.delete("telecmi").expect("delete again"));
        assert!(matches!(store.set("e", &Secret::new("")), Err(SecretError::Empty)));
    }
}
