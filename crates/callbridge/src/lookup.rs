//! Caller lookup: the CRM is asked who is calling, so the popup can say "Ada Lovelace — Acme Corp"
//! and "Open in CRM" can open her record.
//!
//! Most phone systems send no name for outside callers. When `[lookup] url` is set, every incoming
//! call (and every outgoing one with `on_outgoing = true`) starts one HTTP request to the CRM with the
//! number, in the forms the CRM may have stored it (`number_forms`, tried in order until one matches:
//! E.164, national, bare digits, the last N digits, …). The answer is read as JSON with RFC 6901 JSON
//! pointers (`name_pointer`, `company_pointer`, `record_url_pointer`,
//! <https://www.rfc-editor.org/rfc/rfc6901>), or, when it is plain text, as the name itself. A 404, an
//! empty body, JSON `null`, `[]` or `{}`, or pointers that find nothing mean "no match".
//!
//! The whole lookup — reading the API key from the keyring and every number form — is bounded by
//! `timeout_ms`; the engine holds a call's notifications until its lookup is done, never longer.
//! Answers are cached per number (`cache_ttl_secs`, misses for `miss_ttl_secs`, at most
//! `cache_entries` numbers); failures are not cached, so the next call asks again. A failing lookup
//! is logged as a warning with what the CRM answered.
//!
//! The CRM's API key is a secret: the config names a keyring entry (`secret_entry`) and the header it
//! goes in (`secret_header`, with `secret_prefix` such as `"Bearer "`). Its value is read from the
//! keyring for each request, and never logged or shown: [`Lookup::trial`] (the settings page's Test
//! button) masks it, and text the CRM echoes back has it replaced by `***`. Redirects are not followed,
//! so the key never goes to a host the config does not name.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::call::{Call, CallEvent, CallEventKind, Direction};
use crate::config::invalid::Invalid;
use crate::config::limits;
use crate::config::notification::Method;
use crate::notify::template::{Encoding, Placeholder, Template, UrlTemplate};
use crate::number::{Country, PhoneNumber};
use crate::secrets::{Secret, SecretStore};

/// The longest name, company or record URL kept from an answer, in characters.
const MAX_FIELD_CHARS: usize = 200;
const MAX_URL_CHARS: usize = 2_000;
/// The most of an answer read; a contact is far smaller.
const MAX_BODY_BYTES: usize = 256 * 1024;
/// How much of an answer the Test button and error messages show.
const BODY_START_CHARS: usize = 500;

/// `[lookup]` in the config file. Lookups are off until `url` is set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LookupConfig {
    /// The CRM's lookup URL, e.g. `https://crm.example/api/contacts?phone=$callerid`. `$callerid` is
    /// the number in the form being tried; the other placeholders are the notifications' ones.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<UrlTemplate>,
    /// GET, or POST with `body`.
    pub method: Method,
    /// POST body; values are JSON-escaped in a JSON body, form-encoded otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<Template>,
    /// Extra request headers (`Accept = "application/json"`); values may use placeholders.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, Template>,
    /// The keyring entry holding the CRM's API key (`callbridge secret set NAME`); none: no key is sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_entry: Option<String>,
    /// The header the key goes in.
    pub secret_header: String,
    /// Text before the key in that header, such as `"Bearer "`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub secret_prefix: String,
    /// Look up the numbers this desk calls too, not only callers.
    pub on_outgoing: bool,
    /// The forms of the number to try, in order, stopping at the first match.
    pub number_forms: Vec<NumberForm>,
    /// Where the name is in a JSON answer (RFC 6901). In an array, the first element is read too.
    pub name_pointer: String,
    /// Where the company is in a JSON answer; none: not read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub company_pointer: Option<String>,
    /// Where the record's URL is in a JSON answer (absolute, or relative to `url`); none: not read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub record_url_pointer: Option<String>,
    /// The longest a lookup may take, every number form included (milliseconds).
    pub timeout_ms: u64,
    /// Numbers whose answer is kept; 0 keeps none.
    pub cache_entries: usize,
    /// How long a found contact is kept (seconds).
    pub cache_ttl_secs: u64,
    /// How long "no match" is kept (seconds).
    pub miss_ttl_secs: u64,
}

impl Default for LookupConfig {
    fn default() -> Self {
        LookupConfig {
            url: None,
            method: Method::Get,
            body: None,
            headers: BTreeMap::new(),
            secret_entry: None,
            secret_header: "Authorization".into(),
            secret_prefix: String::new(),
            on_outgoing: false,
            number_forms: vec![NumberForm::E164, NumberForm::National, NumberForm::Digits, NumberForm::Last(9)],
            name_pointer: "/name".into(),
            company_pointer: None,
            record_url_pointer: None,
            timeout_ms: 1_000,
            cache_entries: 1_000,
            cache_ttl_secs: 600,
            miss_ttl_secs: 60,
        }
    }
}

fn invalid(field: &str, message: String) -> Invalid {
    Invalid::new(format!("lookup.{field}"), message)
}

fn check_pointer(field: &str, pointer: &str) -> Result<(), Invalid> {
    if pointer.len() > 256 {
        return Err(invalid(field, format!("lookup.{field} is longer than 256 characters")));
    }
    if !pointer.is_empty() && !pointer.starts_with('/') {
        return Err(invalid(
            field,
            format!("lookup.{field} is {pointer:?}; a JSON pointer starts with / (\"/name\", \"/0/company/name\"), or is \"\" for the whole answer"),
        ));
    }
    let mut chars = pointer.chars();
    while let Some(c) = chars.next() {
        if c == '~' && !matches!(chars.next(), Some('0' | '1')) {
            return Err(invalid(field, format!("lookup.{field} is {pointer:?}; in a JSON pointer ~ must be followed by 0 (for ~) or 1 (for /)")));
        }
    }
    Ok(())
}

fn check_header_name(field: &str, name: &str) -> Result<(), Invalid> {
    reqwest::header::HeaderName::from_bytes(name.as_bytes())
        .map(drop)
        .map_err(|_| invalid(field, format!("lookup.{field} has the header name {name:?}, which is not a valid HTTP header name")))
}

/// A keyring entry name as `callbridge secret set` takes it.
pub fn check_entry_name(name: &str) -> Result<(), Invalid> {
    if name.is_empty() || name.len() > 64 || name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid(
            "secret_entry",
            format!("lookup.secret_entry is {name:?}; a keyring entry name is 1 to 64 characters without spaces, e.g. \"lookup-api-key\""),
        ));
    }
    Ok(())
}

impl LookupConfig {
    /// Whether lookups run at all.
    pub fn enabled(&self) -> bool {
        self.url.is_some()
    }

    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }

    /// Checks what the types cannot; the error names the setting (`lookup.timeout_ms`).
    pub fn validate(&self) -> Result<(), Invalid> {
        limits::LOOKUP_TIMEOUT.check(self.timeout_ms)?;
        limits::LOOKUP_CACHE_ENTRIES.check(self.cache_entries as u64)?;
        limits::LOOKUP_CACHE_TTL.check(self.cache_ttl_secs)?;
        limits::LOOKUP_MISS_TTL.check(self.miss_ttl_secs)?;
        if self.number_forms.is_empty() || self.number_forms.len() > 8 {
            return Err(invalid("number_forms", "lookup.number_forms needs 1 to 8 forms, e.g. [\"e164\", \"national\", \"digits\", \"last:9\"]".into()));
        }
        for (i, form) in self.number_forms.iter().enumerate() {
            if self.number_forms[..i].contains(form) {
                return Err(invalid("number_forms", format!("lookup.number_forms lists {form} twice")));
            }
        }
        if self.method == Method::Get && self.body.is_some() {
            return Err(invalid("body", "lookup.body is set but lookup.method is GET; use method = \"POST\" to send a body".into()));
        }
        check_pointer("name_pointer", &self.name_pointer)?;
        if let Some(p) = &self.company_pointer {
            check_pointer("company_pointer", p)?;
        }
        if let Some(p) = &self.record_url_pointer {
            check_pointer("record_url_pointer", p)?;
        }
        if self.headers.len() > 32 {
            return Err(invalid("headers", "lookup.headers has more than 32 headers".into()));
        }
        for name in self.headers.keys() {
            check_header_name("headers", name)?;
        }
        if let Some(entry) = &self.secret_entry {
            check_entry_name(entry)?;
            check_header_name("secret_header", &self.secret_header)?;
            if self.headers.keys().any(|h| h.eq_ignore_ascii_case(&self.secret_header)) {
                return Err(invalid(
                    "headers",
                    format!("lookup.headers sets {:?}, which lookup.secret_header fills with the key from the keyring; remove one", self.secret_header),
                ));
            }
        }
        if self.secret_prefix.len() > 64 || self.secret_prefix.chars().any(char::is_control) {
            return Err(invalid("secret_prefix", "lookup.secret_prefix must be at most 64 characters, without line breaks (e.g. \"Bearer \")".into()));
        }
        Ok(())
    }
}

/// One form of a number to look up. Written in the config as `"as-is"`, `"e164"` (`+442079460000`),
/// `"00"` (`00442079460000`), `"digits"` (`442079460000`), `"national"` (`02079460000`) or
/// `"last:N"` (the last N digits, N from 4 to 15).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NumberForm {
    AsIs,
    E164,
    International00,
    Digits,
    National,
    Last(u8),
}

impl NumberForm {
    pub fn parse(s: &str) -> Result<NumberForm, String> {
        let form = match s.trim().to_ascii_lowercase().as_str() {
            "as-is" => NumberForm::AsIs,
            "e164" => NumberForm::E164,
            "00" => NumberForm::International00,
            "digits" => NumberForm::Digits,
            "national" => NumberForm::National,
            other => {
                let n = other.strip_prefix("last:").and_then(|n| n.parse::<u8>().ok()).filter(|n| (4..=15).contains(n));
                match n {
                    Some(n) => NumberForm::Last(n),
                    None => {
                        return Err(format!(
                            "lookup.number_forms has {s:?}; the forms are \"as-is\", \"e164\", \"00\", \"digits\", \"national\" and \"last:N\" (N from 4 to 15)"
                        ))
                    }
                }
            }
        };
        Ok(form)
    }

    /// `number` in this form, or `None` when it has none (a national form of an extension).
    /// `country` reads numbers without a `+`.
    pub fn apply(self, number: &str, country: Option<Country>) -> Option<String> {
        let number = number.trim();
        let parsed = PhoneNumber::parse(number, country).ok();
        let e164 = parsed.as_ref().and_then(|p| p.e164.clone());
        let digits: String = e164.as_deref().unwrap_or(number).chars().filter(char::is_ascii_digit).collect();
        let found = match self {
            NumberForm::AsIs => Some(number.to_owned()),
            NumberForm::E164 => e164,
            NumberForm::International00 => e164.map(|e| format!("00{}", e.trim_start_matches('+'))),
            NumberForm::Digits => Some(digits),
            NumberForm::National => match e164 {
                Some(e) => national(&e),
                // Without a country code the number is national already (or an extension).
                None if !number.starts_with('+') => Some(digits),
                None => None,
            },
            NumberForm::Last(n) => {
                let skip = digits.len().saturating_sub(usize::from(n));
                Some(digits[skip..].to_owned())
            }
        };
        found.filter(|f| !f.is_empty())
    }
}

/// The national form of an E.164 number as digits: `+442079460000` → `02079460000`.
fn national(e164: &str) -> Option<String> {
    let parsed = phonenumber::parse(None, e164).ok()?;
    let text = parsed.format().mode(phonenumber::Mode::National).to_string();
    Some(text.chars().filter(char::is_ascii_digit).collect())
}

impl fmt::Display for NumberForm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NumberForm::AsIs => f.write_str("as-is"),
            NumberForm::E164 => f.write_str("e164"),
            NumberForm::International00 => f.write_str("00"),
            NumberForm::Digits => f.write_str("digits"),
            NumberForm::National => f.write_str("national"),
            NumberForm::Last(n) => write!(f, "last:{n}"),
        }
    }
}

impl Serialize for NumberForm {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for NumberForm {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        NumberForm::parse(&String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// What the CRM knows of a caller.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Contact {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub company: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub record_url: Option<String>,
}

impl Contact {
    fn is_empty(&self) -> bool {
        self.name.is_none() && self.company.is_none() && self.record_url.is_none()
    }

    /// Fills in what `call` does not know yet: a name the phone system gave is kept. Returns whether
    /// anything changed.
    pub fn fill(&self, call: &mut Call) -> bool {
        let mut changed = false;
        for (have, found) in [
            (&mut call.remote_name, &self.name),
            (&mut call.company, &self.company),
            (&mut call.record_url, &self.record_url),
        ] {
            if have.is_none() && found.is_some() {
                have.clone_from(found);
                changed = true;
            }
        }
        changed
    }
}

/// Why a lookup found nothing to say. The text never holds the API key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LookupError {
    #[error("the OS keyring has no secret {entry:?} for [lookup] secret_entry; store it with `callbridge secret set {entry}` or on the settings page")]
    NoSecret { entry: String },
    #[error("cannot read the API key from the OS keyring: {0}")]
    Keyring(String),
    #[error("the CRM did not answer within {ms} ms ([lookup] timeout_ms)")]
    Timeout { ms: u64 },
    #[error("the CRM answered {status}{}", if body.is_empty() { String::new() } else { format!(": {body}") })]
    Status { status: u16, body: String },
    #[error("the CRM answered with a redirect ({status}) to {location:?}; redirects are not followed, set [lookup] url to the final address")]
    Redirect { status: u16, location: String },
    #[error("cannot reach the CRM: {0}")]
    Unreachable(String),
    #[error("the CRM's answer cannot be read: {0}")]
    Unreadable(String),
    #[error("the lookup request cannot be built: {0}")]
    BadRequest(String),
}

/// A request as sent, with the API key masked: what the Test button shows.
#[derive(Debug, Clone, Serialize)]
pub struct SentRequest {
    pub method: &'static str,
    pub url: String,
    pub headers: Vec<(String, String)>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
}

/// What the CRM answered, as the Test button shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Answer {
    pub status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    /// The first characters of the body.
    pub body_start: String,
}

/// One number form tried.
#[derive(Debug, Clone, Serialize)]
pub struct Attempt {
    pub form: String,
    pub number: String,
    pub request: SentRequest,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub answer: Option<Answer>,
    /// The fields this answer yielded; absent for no match.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contact: Option<Contact>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The outcome of [`Lookup::trial`].
#[derive(Debug, Clone, Serialize)]
pub struct Trial {
    /// `found`, `no_match` or `failed`.
    pub outcome: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contact: Option<Contact>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub attempts: Vec<Attempt>,
    pub elapsed_ms: u64,
}

/// A request ready to send.
struct Prepared {
    method: Method,
    url: String,
    headers: Vec<(String, String)>,
    body: Option<String>,
}

/// The body of an answer, read up to [`MAX_BODY_BYTES`].
struct Received {
    status: u16,
    content_type: Option<String>,
    location: Option<String>,
    body: String,
}

#[derive(Debug)]
struct Cached {
    contact: Option<Contact>,
    expires: Instant,
}

/// Answers by number, each until it expires, at most `cap` of them.
#[derive(Debug, Default)]
struct Cache {
    entries: HashMap<String, Cached>,
}

impl Cache {
    /// `Some(answer)` for a number asked before and not expired.
    fn get(&mut self, number: &str, now: Instant) -> Option<Option<Contact>> {
        match self.entries.get(number) {
            Some(c) if c.expires > now => Some(c.contact.clone()),
            Some(_) => {
                self.entries.remove(number);
                None
            }
            None => None,
        }
    }

    fn put(&mut self, number: &str, contact: Option<Contact>, ttl: Duration, cap: usize, now: Instant) {
        if cap == 0 || ttl.is_zero() {
            return;
        }
        if self.entries.len() >= cap && !self.entries.contains_key(number) {
            self.entries.retain(|_, c| c.expires > now);
            while self.entries.len() >= cap {
                let Some(soonest) = self.entries.iter().min_by_key(|(_, c)| c.expires).map(|(k, _)| k.clone()) else { break };
                self.entries.remove(&soonest);
            }
        }
        self.entries.insert(number.to_owned(), Cached { contact, expires: now + ttl });
    }
}

#[derive(Debug)]
struct Current {
    config: LookupConfig,
    country: Option<Country>,
}

/// Runs lookups for the engine; see the module documentation. Shared by all calls.
#[derive(Debug)]
pub struct Lookup {
    current: RwLock<Arc<Current>>,
    client: Result<reqwest::Client, String>,
    cache: Mutex<Cache>,
    secrets: Arc<dyn SecretStore>,
}

impl Lookup {
    /// `country` reads national numbers (`[dialing] default_country`).
    pub fn new(config: &LookupConfig, country: Option<Country>, secrets: Arc<dyn SecretStore>) -> Lookup {
        let client = reqwest::Client::builder()
            .user_agent(concat!("CallBridge/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| e.to_string());
        Lookup {
            current: RwLock::new(Arc::new(Current { config: config.clone(), country })),
            client,
            cache: Mutex::new(Cache::default()),
            secrets,
        }
    }

    /// Takes new settings; cached answers are dropped when the lookup settings changed.
    pub fn reconfigure(&self, config: &LookupConfig, country: Option<Country>) {
        let mut current = self.current.write().unwrap_or_else(PoisonError::into_inner);
        if current.config != *config || current.country != country {
            *current = Arc::new(Current { config: config.clone(), country });
            self.cache.lock().unwrap_or_else(PoisonError::into_inner).entries.clear();
        }
    }

    fn current(&self) -> Arc<Current> {
        Arc::clone(&self.current.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// The longest a lookup takes with the current settings.
    pub fn timeout(&self) -> Duration {
        self.current().config.timeout()
    }

    /// Whether `call` is looked up: lookups are on, it has a number, and it is incoming (or outgoing
    /// with `on_outgoing`).
    pub fn wants(&self, call: &Call) -> bool {
        let current = self.current();
        let config = &current.config;
        config.enabled()
            && !call.remote_number.trim().is_empty()
            && match call.direction {
                Direction::In => true,
                Direction::Out => config.on_outgoing,
                Direction::Internal => false,
            }
    }

    /// Who `call`'s other party is, from the cache or the CRM, within the timeout. `Ok(None)`: the
    /// CRM does not know the number (or lookups are off). Failures are logged here.
    pub async fn find(&self, call: &Call) -> Result<Option<Contact>, LookupError> {
        let current = self.current();
        let config = &current.config;
        if !config.enabled() {
            return Ok(None);
        }
        let key = call.remote_number.trim().to_owned();
        if let Some(cached) = self.cache.lock().unwrap_or_else(PoisonError::into_inner).get(&key, Instant::now()) {
            tracing::debug!(call = %call.id, number = %key, found = cached.is_some(), "caller lookup answered from the cache");
            return Ok(cached);
        }
        let result = match tokio::time::timeout(config.timeout(), self.run(&current, call, None)).await {
            Ok(result) => result,
            Err(_) => Err(LookupError::Timeout { ms: config.timeout_ms }),
        };
        match &result {
            Ok(found) => {
                let ttl = Duration::from_secs(if found.is_some() { config.cache_ttl_secs } else { config.miss_ttl_secs });
                self.cache.lock().unwrap_or_else(PoisonError::into_inner).put(&key, found.clone(), ttl, config.cache_entries, Instant::now());
                match found {
                    Some(contact) => tracing::info!(call = %call.id, number = %key, name = ?contact.name, company = ?contact.company, "caller lookup found the caller"),
                    None => tracing::info!(call = %call.id, number = %key, "caller lookup: the CRM does not know the number"),
                }
            }
            Err(e) => tracing::warn!(call = %call.id, number = %key, error = %e, "caller lookup failed"),
        }
        result
    }

    /// Runs `config` once for `number`, without the cache, and reports every request and answer with
    /// the API key masked: the settings page's Test button.
    pub async fn trial(&self, config: &LookupConfig, number: &str) -> Trial {
        let started = Instant::now();
        let country = self.current().country;
        let current = Current { config: config.clone(), country };
        let mut attempts = Vec::new();
        let result = match PhoneNumber::parse(number, country) {
            Err(e) => Err(LookupError::BadRequest(format!("invalid number: {e}"))),
            Ok(_) if !config.enabled() => Err(LookupError::BadRequest("no lookup URL is set ([lookup] url)".into())),
            Ok(parsed) => {
                let call = Call::new(Direction::In, parsed.dial, "test");
                match tokio::time::timeout(config.timeout(), self.run(&current, &call, Some(&mut attempts))).await {
                    Ok(result) => result,
                    Err(_) => Err(LookupError::Timeout { ms: config.timeout_ms }),
                }
            }
        };
        if let (Err(e @ LookupError::Timeout { .. }), Some(last)) = (&result, attempts.last_mut()) {
            if last.answer.is_none() && last.error.is_none() {
                last.error = Some(e.to_string());
            }
        }
        let elapsed_ms = started.elapsed().as_millis().try_into().unwrap_or(u64::MAX);
        match result {
            Ok(Some(contact)) => Trial { outcome: "found", contact: Some(contact), error: None, attempts, elapsed_ms },
            Ok(None) => Trial { outcome: "no_match", contact: None, error: None, attempts, elapsed_ms },
            Err(e) => Trial { outcome: "failed", contact: None, error: Some(e.to_string()), attempts, elapsed_ms },
        }
    }

    /// Tries each number form in turn. `trace` collects what was sent and answered.
    async fn run(&self, current: &Current, call: &Call, mut trace: Option<&mut Vec<Attempt>>) -> Result<Option<Contact>, LookupError> {
        let config = &current.config;
        let Some(url) = &config.url else { return Ok(None) };
        let client = self.client.as_ref().map_err(|e| LookupError::BadRequest(format!("no HTTP client: {e}")))?;
        let secret = self.secret(config).await?;
        let mask = |text: &str| match &secret {
            Some(s) if !s.expose().is_empty() => text.replace(s.expose(), "***"),
            _ => text.to_owned(),
        };
        let mut tried: Vec<String> = Vec::new();
        for form in &config.number_forms {
            let Some(number) = form.apply(&call.remote_number, current.country) else { continue };
            if tried.contains(&number) {
                continue;
            }
            tried.push(number.clone());
            let prepared = prepare(config, url, call, &number, secret.as_ref());
            if let Some(trace) = trace.as_deref_mut() {
                trace.push(Attempt {
                    form: form.to_string(),
                    number: number.clone(),
                    request: masked(&prepared, config, secret.as_ref()),
                    answer: None,
                    contact: None,
                    error: None,
                });
            }
            let received = match send(client, &prepared, config.timeout_ms).await {
                Ok(received) => received,
                Err(e) => {
                    if let Some(attempt) = trace.as_deref_mut().and_then(|t| t.last_mut()) {
                        attempt.error = Some(e.to_string());
                    }
                    return Err(e);
                }
            };
            let read = read_answer(config, &received, &prepared.url).map_err(|e| match e {
                LookupError::Status { status, body } => LookupError::Status { status, body: mask(&body) },
                other => other,
            });
            if let Some(attempt) = trace.as_deref_mut().and_then(|t| t.last_mut()) {
                attempt.answer = Some(Answer {
                    status: received.status,
                    content_type: received.content_type.clone(),
                    body_start: mask(&received.body.chars().take(BODY_START_CHARS).collect::<String>()),
                });
                match &read {
                    Ok(contact) => attempt.contact.clone_from(contact),
                    Err(e) => attempt.error = Some(e.to_string()),
                }
            }
            if let Some(contact) = read? {
                return Ok(Some(contact));
            }
        }
        Ok(None)
    }

    /// The API key from the keyring, when one is configured.
    async fn secret(&self, config: &LookupConfig) -> Result<Option<Secret>, LookupError> {
        let Some(entry) = config.secret_entry.clone() else { return Ok(None) };
        let store = Arc::clone(&self.secrets);
        let name = entry.clone();
        let got = tokio::task::spawn_blocking(move || store.get(&name))
            .await
            .map_err(|e| LookupError::Keyring(e.to_string()))?
            .map_err(|e| LookupError::Keyring(e.to_string()))?;
        got.map(Some).ok_or(LookupError::NoSecret { entry })
    }
}

/// The request for `number` (in `$callerid`), with the API key in its header.
fn prepare(config: &LookupConfig, url: &UrlTemplate, call: &Call, number: &str, secret: Option<&Secret>) -> Prepared {
    let event = CallEvent { kind: CallEventKind::start_for(call.direction), at: call.started_at, call: call.clone() };
    let value = |p: Placeholder| if p == Placeholder::CallerId { number.to_owned() } else { p.value(&event) };
    let mut headers: Vec<(String, String)> = config
        .headers
        .iter()
        .map(|(name, template)| (name.clone(), template.render_with(Encoding::Raw, value).replace(['\r', '\n'], " ")))
        .collect();
    if let Some(secret) = secret {
        headers.push((config.secret_header.clone(), format!("{}{}", config.secret_prefix, secret.expose())));
    }
    let body = match (config.method, &config.body) {
        (Method::Post, Some(template)) => {
            let declared = headers.iter().find(|(n, _)| n.eq_ignore_ascii_case("content-type")).map(|(_, v)| v.to_ascii_lowercase());
            let looks_json = template.as_str().trim_start().starts_with(['{', '[']);
            let (encoding, add) = match declared {
                Some(ct) if ct.contains("json") => (Encoding::Json, None),
                Some(ct) if ct.contains("x-www-form-urlencoded") => (Encoding::Form, None),
                Some(_) => (Encoding::Raw, None),
                None if looks_json => (Encoding::Json, Some("application/json")),
                None => (Encoding::Form, Some("application/x-www-form-urlencoded")),
            };
            if let Some(ct) = add {
                headers.push(("Content-Type".into(), ct.into()));
            }
            Some(template.render_with(encoding, value))
        }
        _ => None,
    };
    if !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("accept")) {
        headers.push(("Accept".into(), "application/json, text/plain;q=0.9".into()));
    }
    Prepared { method: config.method, url: url.render_with(value), headers, body }
}

/// `prepared` as the Test button shows it: the key header's value is the prefix and `***`.
fn masked(prepared: &Prepared, config: &LookupConfig, secret: Option<&Secret>) -> SentRequest {
    let headers = prepared
        .headers
        .iter()
        .map(|(name, value)| {
            if secret.is_some() && name.eq_ignore_ascii_case(&config.secret_header) {
                (name.clone(), format!("{}***", config.secret_prefix))
            } else {
                (name.clone(), value.clone())
            }
        })
        .collect();
    SentRequest {
        method: match prepared.method {
            Method::Get => "GET",
            Method::Post => "POST",
        },
        url: prepared.url.clone(),
        headers,
        body: prepared.body.clone(),
    }
}

/// Sends `prepared`; the request's own timeout is the lookup's (the whole lookup is bounded too).
async fn send(client: &reqwest::Client, prepared: &Prepared, timeout_ms: u64) -> Result<Received, LookupError> {
    let method = match prepared.method {
        Method::Get => reqwest::Method::GET,
        Method::Post => reqwest::Method::POST,
    };
    let mut request = client.request(method, &prepared.url).timeout(Duration::from_millis(timeout_ms));
    for (name, value) in &prepared.headers {
        request = request.header(name.as_str(), value.as_str());
    }
    if let Some(body) = &prepared.body {
        request = request.body(body.clone());
    }
    let mut response = request.send().await.map_err(|e| describe(&e, timeout_ms))?;
    let status = response.status().as_u16();
    let header = |name: reqwest::header::HeaderName| {
        response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
    };
    let content_type = header(reqwest::header::CONTENT_TYPE);
    let location = header(reqwest::header::LOCATION);
    let mut bytes = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| describe(&e, timeout_ms))? {
        let room = MAX_BODY_BYTES.saturating_sub(bytes.len());
        bytes.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if bytes.len() >= MAX_BODY_BYTES {
            break;
        }
    }
    Ok(Received { status, content_type, location, body: String::from_utf8_lossy(&bytes).into_owned() })
}

/// A reqwest error in words, with its causes.
fn describe(e: &reqwest::Error, timeout_ms: u64) -> LookupError {
    if e.is_timeout() {
        return LookupError::Timeout { ms: timeout_ms };
    }
    let mut message = if e.is_connect() { "could not connect".to_owned() } else { "request failed".to_owned() };
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    if e.is_builder() {
        LookupError::BadRequest(message)
    } else {
        LookupError::Unreachable(message)
    }
}

/// What an answer says: a contact, `None` for no match, or why it cannot be used.
fn read_answer(config: &LookupConfig, received: &Received, request_url: &str) -> Result<Option<Contact>, LookupError> {
    let status = received.status;
    if status == 404 || status == 204 {
        return Ok(None);
    }
    if (300..400).contains(&status) {
        return Err(LookupError::Redirect { status, location: received.location.clone().unwrap_or_default() });
    }
    if !(200..300).contains(&status) {
        let body: String = received.body.trim().chars().take(BODY_START_CHARS).collect();
        return Err(LookupError::Status { status, body });
    }
    let text = received.body.trim();
    if text.is_empty() {
        return Ok(None);
    }
    let content_type = received.content_type.as_deref().map(str::to_ascii_lowercase);
    let plain = |text: &str| -> Option<Contact> {
        let name = text.lines().map(str::trim).find(|l| !l.is_empty()).and_then(clean_text)?;
        Some(Contact { name: Some(name), company: None, record_url: None })
    };
    match content_type.as_deref() {
        Some(ct) if ct.contains("json") => {
            let value: Value = serde_json::from_str(text)
                .map_err(|e| LookupError::Unreadable(format!("it says it is JSON, but it is not: {e}")))?;
            Ok(contact_from_json(config, &value, request_url))
        }
        Some(ct) if ct.starts_with("text/plain") => Ok(plain(text)),
        None => match serde_json::from_str::<Value>(text) {
            Ok(value @ (Value::Object(_) | Value::Array(_) | Value::Null)) => Ok(contact_from_json(config, &value, request_url)),
            _ => Ok(plain(text)),
        },
        Some(ct) => Err(LookupError::Unreadable(format!("it is {ct}, which is neither JSON nor plain text"))),
    }
}

/// The fields the pointers find; `None` when they find nothing. In an array, a pointer that finds
/// nothing in the array itself is read in its first element (a search that returns a list).
fn contact_from_json(config: &LookupConfig, root: &Value, request_url: &str) -> Option<Contact> {
    let pick = |pointer: &str| -> Option<String> {
        let found = root.pointer(pointer).or_else(|| root.as_array()?.first()?.pointer(pointer))?;
        match found {
            Value::String(s) => clean_text(s),
            Value::Number(n) => clean_text(&n.to_string()),
            _ => None,
        }
    };
    let contact = Contact {
        name: pick(&config.name_pointer),
        company: config.company_pointer.as_deref().and_then(pick),
        record_url: config.record_url_pointer.as_deref().and_then(pick).and_then(|u| record_url(&u, request_url)),
    };
    (!contact.is_empty()).then_some(contact)
}

/// A record URL the desktop may open: absolute `http`/`https`, or relative to the lookup URL.
fn record_url(value: &str, request_url: &str) -> Option<String> {
    let url = url::Url::parse(request_url).ok()?.join(value).ok()?;
    if !matches!(url.scheme(), "http" | "https") || url.as_str().len() > MAX_URL_CHARS {
        tracing::warn!(value, "caller lookup: ignoring a record URL that is not an http or https address");
        return None;
    }
    Some(url.into())
}

/// Text fit to show: control characters become spaces, at most [`MAX_FIELD_CHARS`]; `None` if blank.
fn clean_text(text: &str) -> Option<String> {
    let cleaned: String = text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    let trimmed: String = cleaned.trim().chars().take(MAX_FIELD_CHARS).collect();
    let trimmed = trimmed.trim_end().to_owned();
    (!trimmed.is_empty()).then_some(trimmed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gb() -> Option<Country> {
        "GB".parse().ok()
    }

    fn config(toml_text: &str) -> Result<LookupConfig, String> {
        #[derive(Deserialize)]
        struct File {
            lookup: LookupConfig,
        }
        let lookup = toml::from_str::<File>(toml_text).map(|f| f.lookup).map_err(|e| e.to_string())?;
        lookup.validate().map_err(|e| e.message)?;
        Ok(lookup)
    }

    fn received(status: u16, content_type: Option<&str>, body: &str) -> Received {
        Received { status, content_type: content_type.map(str::to_owned), location: None, body: body.to_owned() }
    }

    #[test]
    fn number_forms_follow_the_number_plan() {
        let n = "+442079460000";
        let form = |s: &str| NumberForm::parse(s).expect("form").apply(n, gb());
        assert_eq!(form("e164").as_deref(), Some("+442079460000"));
        assert_eq!(form("00").as_deref(), Some("00442079460000"));
        assert_eq!(form("digits").as_deref(), Some("442079460000"));
        assert_eq!(form("national").as_deref(), Some("02079460000"));
        assert_eq!(form("last:9").as_deref(), Some("079460000"));
        assert_eq!(form("as-is").as_deref(), Some("+442079460000"));
        assert_eq!(NumberForm::National.apply("+12015550123", None).as_deref(), Some("2015550123"));
        // A national number with a default country has an E.164 form; without one it has not.
        assert_eq!(NumberForm::E164.apply("020 7946 0000", gb()).as_deref(), Some("+442079460000"));
        assert_eq!(NumberForm::E164.apply("020123456", None), None);
        assert_eq!(NumberForm::National.apply("020123456", None).as_deref(), Some("020123456"));
        // An extension is shorter than the digits asked for: all of it.
        assert_eq!(NumberForm::Last(9).apply("101", gb()).as_deref(), Some("101"));
    }

    #[test]
    fn number_forms_read_and_write_their_names() {
        for name in ["as-is", "e164", "00", "digits", "national", "last:4", "last:15"] {
            assert_eq!(NumberForm::parse(name).expect(name).to_string(), name);
        }
        for bad in ["last:3", "last:16", "last:x", "E.164", ""] {
            let err = NumberForm::parse(bad).expect_err(bad);
            assert!(err.contains("lookup.number_forms"), "{err}");
        }
    }

    #[test]
    fn defaults_load_and_lookups_are_off_without_a_url() {
        let c = config("[lookup]\n").expect("defaults");
        assert_eq!(c, LookupConfig::default());
        assert!(!c.enabled());
        assert_eq!(c.timeout(), Duration::from_secs(1));
        let c = config(
            "[lookup]\nurl = \"https://crm.example/c?p=$callerid\"\nsecret_entry = \"lookup-api-key\"\nsecret_prefix = \"Bearer \"\n\
             number_forms = [\"national\", \"last:9\"]\ncompany_pointer = \"/0/company/name\"\n[lookup.headers]\nAccept = \"application/json\"\n",
        )
        .expect("full");
        assert!(c.enabled());
        assert_eq!(c.number_forms, [NumberForm::National, NumberForm::Last(9)]);
        let again: toml::Value = toml::Value::try_from(&c).expect("serializes");
        assert_eq!(again["number_forms"][1].as_str(), Some("last:9"));
    }

    #[test]
    fn bad_values_are_refused_naming_the_field() {
        let cases = [
            ("timeout_ms = 0", "lookup.timeout_ms"),
            ("timeout_ms = 60000", "lookup.timeout_ms"),
            ("cache_entries = 1000000", "lookup.cache_entries"),
            ("cache_ttl_secs = 100000", "lookup.cache_ttl_secs"),
            ("miss_ttl_secs = 100000", "lookup.miss_ttl_secs"),
            ("number_forms = []", "lookup.number_forms"),
            ("number_forms = [\"e164\", \"e164\"]", "twice"),
            ("number_forms = [\"phone\"]", "lookup.number_forms"),
            ("name_pointer = \"name\"", "lookup.name_pointer"),
            ("company_pointer = \"/a~2\"", "lookup.company_pointer"),
            ("body = \"{}\"", "lookup.body"),
            ("secret_entry = \"has space\"", "lookup.secret_entry"),
            ("secret_entry = \"k\"\nsecret_header = \"Bad Header\"", "lookup.secret_header"),
            ("secret_prefix = \"a\\nb\"", "lookup.secret_prefix"),
            ("headers = { \"Bad Header\" = \"x\" }", "lookup.headers"),
            ("secret_entry = \"k\"\nheaders = { authorization = \"x\" }", "lookup.headers"),
            ("url = \"ftp://crm.example/\"", "ftp"),
            ("colour = 1", "colour"),
        ];
        for (line, want) in cases {
            let err = config(&format!("[lookup]\n{line}\n")).expect_err(line);
            assert!(err.contains(want), "{line}: {err}");
        }
    }

    #[test]
    fn json_answers_are_read_by_pointers() {
        let mut c = LookupConfig { company_pointer: Some("/company/name".into()), record_url_pointer: Some("/url".into()), ..LookupConfig::default() };
        let body = r#"{"name":"Ada Lovelace","company":{"name":"Acme Corp"},"url":"/contacts/42"}"#;
        let got = read_answer(&c, &received(200, Some("application/json; charset=utf-8"), body), "https://crm.example/api/find?n=1")
            .expect("reads");
        assert_eq!(
            got,
            Some(Contact {
                name: Some("Ada Lovelace".into()),
                company: Some("Acme Corp".into()),
                record_url: Some("https://crm.example/contacts/42".into()),
            })
        );
        // A list: the first element.
        c.company_pointer = None;
        let list = r#"[{"name":"Ada"},{"name":"Bob"}]"#;
        let got = read_answer(&c, &received(200, Some("application/json"), list), "https://crm.example/").expect("reads");
        assert_eq!(got.and_then(|c| c.name).as_deref(), Some("Ada"));
        // A record URL that is not a web address is dropped.
        let evil = r#"{"name":"Eve","url":"javascript:alert(1)"}"#;
        let got = read_answer(&c, &received(200, None, evil), "https://crm.example/").expect("reads").expect("found");
        assert_eq!((got.name.as_deref(), got.record_url), (Some("Eve"), None));
    }

    #[test]
    fn no_match_answers() {
        let c = LookupConfig::default();
        let url = "https://crm.example/";
        for (status, ct, body) in [
            (404, Some("application/json"), r#"{"error":"not found"}"#),
            (204, None, ""),
            (200, Some("application/json"), ""),
            (200, Some("application/json"), "null"),
            (200, Some("application/json"), "[]"),
            (200, Some("application/json"), "{}"),
            (200, Some("application/json"), r#"{"other":"x"}"#),
            (200, Some("application/json"), r#"{"name":"   "}"#),
            (200, Some("text/plain"), "  \n "),
        ] {
            assert_eq!(read_answer(&c, &received(status, ct, body), url), Ok(None), "{status} {body:?}");
        }
    }

    #[test]
    fn plain_text_is_the_name_and_failures_say_what_the_crm_answered() {
        let c = LookupConfig::default();
        let url = "https://crm.example/";
        let got = read_answer(&c, &received(200, Some("text/plain; charset=utf-8"), "Ada Lovelace\n"), url).expect("reads");
        assert_eq!(got.and_then(|c| c.name).as_deref(), Some("Ada Lovelace"));
        let got = read_answer(&c, &received(200, None, "Grace\u{7}Hopper"), url).expect("reads");
        assert_eq!(got.and_then(|c| c.name).as_deref(), Some("Grace Hopper"));
        let err = read_answer(&c, &received(500, Some("text/plain"), "database down"), url).expect_err("500");
        assert_eq!(err.to_string(), "the CRM answered 500: database down");
        let err = read_answer(&c, &received(200, Some("text/html"), "<html>"), url).expect_err("html");
        assert!(err.to_string().contains("text/html"), "{err}");
        let err = read_answer(&c, &received(200, Some("application/json"), "{oops"), url).expect_err("bad JSON");
        assert!(err.to_string().contains("not"), "{err}");
        let long = "x".repeat(1_000);
        let got = read_answer(&c, &received(200, Some("text/plain"), &long), url).expect("reads").expect("name");
        assert_eq!(got.name.map(|n| n.chars().count()), Some(MAX_FIELD_CHARS));
    }

    #[test]
    fn the_cache_expires_and_stays_bounded() {
        let mut cache = Cache::default();
        let t0 = Instant::now();
        let ada = Some(Contact { name: Some("Ada".into()), ..Contact::default() });
        cache.put("+1", ada.clone(), Duration::from_secs(10), 2, t0);
        cache.put("+2", None, Duration::from_secs(1), 2, t0);
        assert_eq!(cache.get("+1", t0), Some(ada.clone()));
        assert_eq!(cache.get("+2", t0), Some(None));
        assert_eq!(cache.get("+2", t0 + Duration::from_secs(2)), None);
        cache.put("+2", None, Duration::from_secs(5), 2, t0);
        // Full: the entry that expires soonest makes room.
        cache.put("+3", None, Duration::from_secs(20), 2, t0);
        assert_eq!(cache.entries.len(), 2);
        assert_eq!(cache.get("+2", t0), None);
        assert_eq!(cache.get("+1", t0), Some(ada));
        cache.put("+4", None, Duration::from_secs(20), 0, t0);
        assert_eq!(cache.get("+4", t0), None);
    }

    #[test]
    fn a_found_contact_fills_only_what_the_call_lacks() {
        let mut call = Call::new(Direction::In, "+442079460000", "simulator");
        call.remote_name = Some("From the PBX".into());
        let contact = Contact { name: Some("Ada".into()), company: Some("Acme".into()), record_url: None };
        assert!(contact.fill(&mut call));
        assert_eq!((call.remote_name.as_deref(), call.company.as_deref()), (Some("From the PBX"), Some("Acme")));
        assert!(!contact.fill(&mut call));
    }

    #[test]
    fn requests_carry_the_number_form_and_the_key_masked_in_the_trial() {
        let c = config(
            "[lookup]\nurl = \"https://crm.example/find?phone=$callerid\"\nmethod = \"POST\"\nbody = '{\"phone\":\"$callerid\",\"name\":\"$name\"}'\n\
             secret_entry = \"k\"\nsecret_prefix = \"Bearer \"\n",
        )
        .expect("config");
        let mut call = Call::new(Direction::In, "+442079460000", "simulator");
        call.remote_name = Some("A \"quoted\" name".into());
        let secret = Secret::new("s3cret");
        let url = c.url.clone().expect("url");
        let p = prepare(&c, &url, &call, "+44 20", Some(&secret));
        assert_eq!(p.url, "https://crm.example/find?phone=%2B44%2020");
        let body: Value = serde_json::from_str(p.body.as_deref().unwrap_or_default()).expect("JSON body");
        assert_eq!((body["phone"].as_str(), body["name"].as_str()), (Some("+44 20"), Some("A \"quoted\" name")));
        assert!(p.headers.contains(&("Authorization".into(), "Bearer s3cret".into())));
        let shown = masked(&p, &c, Some(&secret));
        assert!(shown.headers.contains(&("Authorization".into(), "Bearer ***".into())));
        assert!(!serde_json::to_string(&shown).unwrap_or_default().contains("s3cret"));
    }
}
