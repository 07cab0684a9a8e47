//! A setting that is not valid, with its path: what every section's validation returns, so that the
//! settings page can show the message under the field it names.

/// A setting that is not valid, raised where it is checked: the setting's path as the JSON API shows the
/// configuration (`listener.port`, `notification[2].url`, `provider.kazoo.api_url`), what is wrong, and
/// the text that finds its line in a TOML file (by default the path itself, looked up as a key in its
/// table).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Invalid {
    pub field: String,
    pub message: String,
    needle: Option<String>,
}

impl Invalid {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Invalid {
        let field = field.into();
        Invalid { needle: Some(field.clone()), field, message: message.into() }
    }

    /// The same error, with its line in a file found by `needle` instead of by the path.
    pub fn found_by(mut self, needle: impl Into<String>) -> Invalid {
        self.needle = Some(needle.into());
        self
    }

    /// The text a file's line is found by.
    pub fn needle(&self) -> Option<&str> {
        self.needle.as_deref()
    }

    /// The same error for a section nested under `prefix` (`lookup` makes `timeout_ms` `lookup.timeout_ms`).
    pub fn under(mut self, prefix: &str) -> Invalid {
        self.field = format!("{prefix}.{}", self.field);
        self
    }
}
