//! Notification templates: `https://crm.example/incoming?callerid=$callerid`.
//!
//! A template is parsed once, when the configuration is loaded, so a typo in a placeholder is an error
//! at load time that names the rule rather than a silently wrong request at call time. Values are never
//! pasted raw: each is encoded for where it lands ([`Encoding`]) — percent-encoded in a URL,
//! JSON-escaped in a JSON body, form-encoded in a form body — so a `+` or a space in a caller id, or a
//! quote in a caller name, arrives at the CRM as it was.

use std::fmt;

use chrono::{DateTime, SecondsFormat, Utc};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde::{Deserialize, Serialize};

use crate::call::{Call, CallEvent};

/// The values a template can use. `$callerid` is Enreach Contact's URL call notifications' (https://help.enreach.com/desktop/1.00/web/Enreach/en-US/help/chap_settings.4.18.html); the others are CallBridge's own.
///
/// The enum and [`Placeholder::ALL`] (what the parser accepts and what the settings page is served)
/// are made from one list, so a placeholder cannot be left out of either.
macro_rules! placeholders {
    ($($variant:ident),+ $(,)?) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Placeholder {
            $($variant),+
        }

        impl Placeholder {
            pub const ALL: &'static [Placeholder] = &[$(Placeholder::$variant),+];
        }
    };
}

placeholders!(CallerId, Direction, CallId, From, To, Name, Extension, Event, Disposition, Duration, Timestamp, State, Provider, Company, RecordUrl);

impl Placeholder {
    pub fn name(self) -> &'static str {
        match self {
            Placeholder::CallerId => "callerid",
            Placeholder::Direction => "direction",
            Placeholder::CallId => "callid",
            Placeholder::From => "from",
            Placeholder::To => "to",
            Placeholder::Name => "name",
            Placeholder::Extension => "extension",
            Placeholder::Event => "event",
            Placeholder::Disposition => "disposition",
            Placeholder::Duration => "duration",
            Placeholder::Timestamp => "timestamp",
            Placeholder::State => "state",
            Placeholder::Provider => "provider",
            Placeholder::Company => "company",
            Placeholder::RecordUrl => "record_url",
        }
    }

    /// What the placeholder stands for, for the README and the settings page.
    pub fn description(self) -> &'static str {
        match self {
            Placeholder::CallerId => "the other party's number (E.164 when known), as in Enreach Contact's notifications",
            Placeholder::Direction => "in, out or internal",
            Placeholder::CallId => "CallBridge's id of the call",
            Placeholder::From => "the calling number or extension",
            Placeholder::To => "the called number or extension",
            Placeholder::Name => "the other party's name: from the phone system, else from the CRM's caller lookup",
            Placeholder::Extension => "the user's own extension, when known",
            Placeholder::Event => "incoming, outgoing, answered or ended",
            Placeholder::Disposition => "answered, missed, busy, failed or cancelled (once the call ended)",
            Placeholder::Duration => "seconds talked (0 until answered)",
            Placeholder::Timestamp => "when the event happened, RFC 3339 in UTC",
            Placeholder::State => "dialing, ringing, active or ended",
            Placeholder::Provider => "the phone system: simulator, telecmi, kazoo, baresip, …",
            Placeholder::Company => "the other party's company, from the CRM's caller lookup",
            Placeholder::RecordUrl => "the other party's record in the CRM, from the caller lookup",
        }
    }

    fn from_name(name: &str) -> Option<Placeholder> {
        Placeholder::ALL.iter().copied().find(|p| p.name() == name)
    }

    /// This placeholder's value for `event`.
    pub fn value(self, event: &CallEvent) -> String {
        let call: &Call = &event.call;
        match self {
            Placeholder::CallerId => call.remote_number.clone(),
            Placeholder::Direction => call.direction.as_str().to_owned(),
            Placeholder::CallId => call.id.to_string(),
            Placeholder::From => call.from_party().unwrap_or_default().to_owned(),
            Placeholder::To => call.to_party().unwrap_or_default().to_owned(),
            Placeholder::Name => call.remote_name.clone().unwrap_or_default(),
            Placeholder::Extension => call.local_extension.clone().unwrap_or_default(),
            Placeholder::Event => event.kind.as_str().to_owned(),
            Placeholder::Disposition => call.disposition.map(|d| d.as_str()).unwrap_or_default().to_owned(),
            Placeholder::Duration => call.talk_seconds(event.at).to_string(),
            Placeholder::Timestamp => rfc3339(event.at),
            Placeholder::State => call.state.as_str().to_owned(),
            Placeholder::Provider => call.provider.clone(),
            Placeholder::Company => call.company.clone().unwrap_or_default(),
            Placeholder::RecordUrl => call.record_url.clone().unwrap_or_default(),
        }
    }
}

pub(crate) fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// How a value is encoded for where it lands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// Percent-encoded: safe in a URL path or query.
    Url,
    /// Escaped as the inside of a JSON string.
    Json,
    /// `application/x-www-form-urlencoded`.
    Form,
    /// As is: only for bodies the user declared `text/plain`.
    Raw,
}

/// Everything but RFC 3986 unreserved characters is percent-encoded, so `+` stays a plus and a space
/// never turns into one.
const URL_VALUE: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

impl Encoding {
    pub fn encode(self, value: &str, out: &mut String) {
        match self {
            Encoding::Url => out.extend(utf8_percent_encode(value, URL_VALUE)),
            Encoding::Json => {
                let quoted = serde_json::Value::String(value.to_owned()).to_string();
                out.push_str(&quoted[1..quoted.len() - 1]);
            }
            Encoding::Form => out.extend(form_urlencoded::byte_serialize(value.as_bytes())),
            Encoding::Raw => out.push_str(value),
        }
    }
}

/// Why a template was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("unknown placeholder ${name}; known placeholders: {known} (write $$ for a literal $)")]
    Unknown { name: String, known: String },
    #[error("a $ at position {at} is not followed by a placeholder name (write $$ for a literal $)")]
    Dangling { at: usize },
    #[error("${{ at position {at} is not closed with }}")]
    Unclosed { at: usize },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Value(Placeholder),
}

/// A parsed template. It serializes back to the text it was parsed from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    source: String,
    parts: Vec<Part>,
}

impl Template {
    pub fn parse(source: &str) -> Result<Template, TemplateError> {
        let mut parts = Vec::new();
        let mut text = String::new();
        let mut chars = source.char_indices().peekable();
        while let Some((at, c)) = chars.next() {
            if c != '$' {
                text.push(c);
                continue;
            }
            let name = match chars.peek().map(|&(_, c)| c) {
                Some('$') => {
                    chars.next();
                    text.push('$');
                    continue;
                }
                Some('{') => {
                    chars.next();
                    let mut name = String::new();
                    loop {
                        match chars.next() {
                            Some((_, '}')) => break,
                            Some((_, c)) => name.push(c),
                            None => return Err(TemplateError::Unclosed { at }),
                        }
                    }
                    name
                }
                Some(c) if c.is_ascii_alphabetic() => {
                    let mut name = String::new();
                    while let Some(&(_, c)) = chars.peek() {
                        if !(c.is_ascii_alphanumeric() || c == '_') {
                            break;
                        }
                        name.push(c);
                        chars.next();
                    }
                    name
                }
                _ => return Err(TemplateError::Dangling { at }),
            };
            let placeholder = Placeholder::from_name(&name.to_ascii_lowercase()).ok_or_else(|| {
                TemplateError::Unknown {
                    name,
                    known: Placeholder::ALL.iter().map(|p| format!("${}", p.name())).collect::<Vec<_>>().join(", "),
                }
            })?;
            if !text.is_empty() {
                parts.push(Part::Text(std::mem::take(&mut text)));
            }
            parts.push(Part::Value(placeholder));
        }
        if !text.is_empty() {
            parts.push(Part::Text(text));
        }
        Ok(Template { source: source.to_owned(), parts })
    }

    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// The template with every placeholder replaced by its value for `event`, encoded with `encoding`.
    pub fn render(&self, event: &CallEvent, encoding: Encoding) -> String {
        self.render_with(encoding, |p| p.value(event))
    }

    /// Like [`Self::render`] with values from `value`; used to check templates with sample values.
    pub fn render_with(&self, encoding: Encoding, mut value: impl FnMut(Placeholder) -> String) -> String {
        let mut out = String::with_capacity(self.source.len() + 32);
        for part in &self.parts {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Value(p) => encoding.encode(&value(*p), &mut out),
            }
        }
        out
    }
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl Serialize for Template {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.source)
    }
}

impl<'de> Deserialize<'de> for Template {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Template::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// A notification URL: a [`Template`] that renders to an absolute `http` or `https` URL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct UrlTemplate(Template);

impl UrlTemplate {
    pub fn parse(source: &str) -> Result<UrlTemplate, String> {
        let template = Template::parse(source.trim()).map_err(|e| e.to_string())?;
        // Check the shape with harmless sample values, so a URL that only breaks at call time is caught now.
        let sample = template.render_with(Encoding::Url, |_| "0".to_owned());
        let url = url::Url::parse(&sample).map_err(|e| format!("{source:?} is not a URL: {e}"))?;
        match url.scheme() {
            "http" | "https" => {}
            other => return Err(format!("{source:?} uses the scheme {other:?}; only http and https are supported")),
        }
        if url.host_str().unwrap_or_default().is_empty() {
            return Err(format!("{source:?} has no host"));
        }
        Ok(UrlTemplate(template))
    }

    /// The URL for `event`. A value that would make up a whole path segment on its own and is `.` or
    /// `..` is left out: URLs read such segments as "this directory" and "the parent directory", so a
    /// caller name of `..` could otherwise send the request to another path of the CRM (no encoding
    /// of the dots helps: `%2E` counts as a dot there too). Everywhere else values are sent as they are.
    pub fn render(&self, event: &CallEvent) -> String {
        self.render_with(|p| p.value(event))
    }

    /// Like [`Self::render`] with values from `value` (the caller lookup puts the number form it
    /// tries in `$callerid`).
    pub fn render_with(&self, mut value: impl FnMut(Placeholder) -> String) -> String {
        let parts = &self.0.parts;
        let mut out = String::with_capacity(self.0.source.len() + 32);
        let mut in_path = true;
        for (i, part) in parts.iter().enumerate() {
            match part {
                Part::Text(t) => {
                    out.push_str(t);
                    in_path &= !t.contains(['?', '#']);
                }
                Part::Value(p) => {
                    let value = value(*p);
                    let ends_segment = match parts.get(i + 1) {
                        None => true,
                        Some(Part::Text(next)) => next.starts_with(['/', '?', '#']),
                        Some(Part::Value(_)) => false,
                    };
                    let dot_segment = in_path && (value == "." || value == "..") && out.ends_with('/') && ends_segment;
                    if !dot_segment {
                        Encoding::Url.encode(&value, &mut out);
                    }
                }
            }
        }
        out
    }

    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

impl fmt::Display for UrlTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl<'de> Deserialize<'de> for UrlTemplate {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        UrlTemplate::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::call::{CallEventKind, Direction};

    /// Every placeholder parses by its name, in each of the forms the parser takes, and the README's
    /// table of placeholders lists it.
    #[test]
    fn every_placeholder_parses_by_its_name() {
        let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap_or_default();
        for &p in Placeholder::ALL {
            assert!(readme.contains(&format!("`${}`", p.name())), "the README's placeholder table does not list ${}", p.name());
            for text in [format!("${}", p.name()), format!("${{{}}}", p.name()), format!("${}", p.name().to_ascii_uppercase())] {
                let template = Template::parse(&text).unwrap_or_else(|e| panic!("{text}: {e}"));
                assert_eq!(template.render_with(Encoding::Raw, |q| if q == p { "v".into() } else { "?".into() }), "v", "{text}");
            }
        }
    }

    fn event(number: &str, name: Option<&str>) -> CallEvent {
        let mut call = Call::new(Direction::In, number, "simulator");
        call.remote_name = name.map(str::to_owned);
        CallEvent { kind: CallEventKind::Incoming, at: call.started_at, call }
    }

    #[test]
    fn seed_000_url_percent_encodes_the_caller_id() {
        let t = UrlTemplate::parse("https://example.com/incoming?callerid=$callerid").expect("template");
        assert_eq!(t.render(&event("+44 20", None)), "https://example.com/incoming?callerid=%2B44%2020");
    }

    #[test]
    fn braces_allow_adjacent_text_and_dollars_escape() {
        let t = Template::parse("${callerid}x $$5 ${event}").expect("template");
        assert_eq!(t.render(&event("+1", None), Encoding::Raw), "+1x $5 incoming");
    }

    #[test]
    fn json_and_form_bodies_escape_values() {
        let e = event("+1 555", Some("O'Hara \"Jr\" & Co"));
        let json = Template::parse(r#"{"number":"$callerid","name":"$name"}"#).expect("template");
        let body = json.render(&e, Encoding::Json);
        let parsed: serde_json::Value = serde_json::from_str(&body).expect("valid JSON");
        assert_eq!(parsed["name"], "O'Hara \"Jr\" & Co");
        assert_eq!(parsed["number"], "+1 555");
        let form = Template::parse("number=$callerid&name=$name").expect("template");
        let body = form.render(&e, Encoding::Form);
        let pairs: Vec<(String, String)> = form_urlencoded::parse(body.as_bytes()).into_owned().collect();
        assert_eq!(pairs[0], ("number".into(), "+1 555".into()));
        assert_eq!(pairs[1], ("name".into(), "O'Hara \"Jr\" & Co".into()));
    }

    #[test]
    fn mistakes_are_reported_when_parsed() {
        assert!(matches!(Template::parse("?id=$caller"), Err(TemplateError::Unknown { .. })));
        assert!(matches!(Template::parse("cost $5"), Err(TemplateError::Dangling { at: 5 })));
        assert!(matches!(Template::parse("${callerid"), Err(TemplateError::Unclosed { .. })));
        assert!(UrlTemplate::parse("ftp://example.com/$callerid").is_err());
        assert!(UrlTemplate::parse("example.com/?x=$callerid").is_err());
        assert!(UrlTemplate::parse("http://localhost:8080/in?c=$callerid").is_ok());
    }

    #[test]
    fn dot_segments_cannot_move_the_request_to_another_path() {
        let t = UrlTemplate::parse("https://crm.example/calls/$name/log?n=$name").expect("template");
        assert_eq!(t.render(&event("+1", Some(".."))), "https://crm.example/calls//log?n=..");
        assert_eq!(t.render(&event("+1", Some("."))), "https://crm.example/calls//log?n=.");
        assert_eq!(t.render(&event("+1", Some("..."))), "https://crm.example/calls/.../log?n=...");
        let inside = UrlTemplate::parse("https://crm.example/calls/x$name").expect("template");
        assert_eq!(inside.render(&event("+1", Some(".."))), "https://crm.example/calls/x..");
    }

    #[test]
    fn every_placeholder_has_a_value() {
        let e = event("+15550100", Some("Ann"));
        for p in Placeholder::ALL {
            let t = Template::parse(&format!("${{{}}}", p.name())).expect("placeholder parses");
            let _ = t.render(&e, Encoding::Url);
        }
        assert_eq!(Placeholder::Duration.value(&e), "0");
        assert_eq!(Placeholder::Name.value(&e), "Ann");
    }
}
