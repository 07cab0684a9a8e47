//! The one markdown table the benchmark prints: each figure beside what it is compared with and its
//! target, and whether the target is met.

use std::fmt::Write;

/// Whether a figure meets its target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Met,
    Missed,
    /// A figure with no target of its own, shown for context.
    Info,
    /// The thing to measure does not exist here (e.g. the desktop app is not built).
    Absent,
    /// The measurement itself went wrong: the harness or the program is broken.
    Failed,
}

impl Verdict {
    pub fn from_met(met: bool) -> Verdict {
        if met {
            Verdict::Met
        } else {
            Verdict::Missed
        }
    }

    fn label(self) -> &'static str {
        match self {
            Verdict::Met => "met",
            Verdict::Missed => "**missed**",
            Verdict::Info => "–",
            Verdict::Absent => "not measured",
            Verdict::Failed => "**FAILED**",
        }
    }
}

/// One line of the table.
#[derive(Debug, Clone)]
pub struct Row {
    pub number: &'static str,
    pub figure: String,
    pub value: String,
    pub comparison: String,
    pub target: String,
    pub verdict: Verdict,
}

impl Row {
    pub fn new(number: &'static str, figure: impl Into<String>, value: impl Into<String>) -> Row {
        Row { number, figure: figure.into(), value: value.into(), comparison: "–".into(), target: "–".into(), verdict: Verdict::Info }
    }

    pub fn compared(mut self, comparison: impl Into<String>) -> Row {
        self.comparison = comparison.into();
        self
    }

    pub fn target(mut self, target: impl Into<String>, met: bool) -> Row {
        self.target = target.into();
        self.verdict = Verdict::from_met(met);
        self
    }

    /// A figure that could not be measured here, saying why.
    pub fn absent(number: &'static str, figure: impl Into<String>, why: impl Into<String>, target: impl Into<String>) -> Row {
        Row { number, figure: figure.into(), value: why.into(), comparison: "–".into(), target: target.into(), verdict: Verdict::Absent }
    }

    /// A measurement that went wrong, with the error.
    pub fn failed(number: &'static str, figure: impl Into<String>, error: &anyhow::Error) -> Row {
        let error = format!("{error:#}").replace('\n', " ").replace('|', "/");
        Row { number, figure: figure.into(), value: format!("failed: {error}"), comparison: "–".into(), target: "–".into(), verdict: Verdict::Failed }
    }
}

/// Renders the rows as a markdown table.
pub fn render(rows: &[Row]) -> String {
    let mut out = String::from("| # | figure | CallBridge | compared with | target | |\n|---|---|---|---|---|---|\n");
    for r in rows {
        let _ = writeln!(out, "| {} | {} | {} | {} | {} | {} |", r.number, r.figure, r.value, r.comparison, r.target, r.verdict.label());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_render_with_their_verdicts() {
        let rows = [
            Row::new("1", "p50", "0.2 ms").compared("floor 0.1 ms"),
            Row::new("5", "size", "4.1 MiB").target("≤ 10 MiB", true),
            Row::absent("3", "desktop RSS", "desktop app not built", "≤ 130 MiB"),
            Row::failed("2", "event → CRM", &anyhow::anyhow!("lost 3 | of 10\nnotifications")),
        ];
        let table = render(&rows);
        assert!(table.contains("| 1 | p50 | 0.2 ms | floor 0.1 ms | – | – |"), "{table}");
        assert!(table.contains("| ≤ 10 MiB | met |"), "{table}");
        assert!(table.contains("desktop app not built | – | ≤ 130 MiB | not measured |"), "{table}");
        assert!(table.contains("failed: lost 3 / of 10 notifications"), "{table}");
        assert_eq!(table.lines().count(), 6);
    }
}
