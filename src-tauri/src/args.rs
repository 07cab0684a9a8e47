//! The command line of the tray app.
//!
//! `callbridge-desktop [--config FILE] [--open settings|dial] [tel:NUMBER]`. The same arguments reach
//! the running instance when the app is launched a second time, so `--open settings` from a menu
//! entry, or a `tel:` link from the browser, act on the app that is already in the tray.

use std::path::PathBuf;

use clap::{Parser, ValueEnum};

#[derive(Debug, Clone, Parser)]
#[command(name = "callbridge-desktop", version, about = "CallBridge tray app")]
pub struct Args {
    /// The config file (default: the platform's config directory).
    #[arg(long, env = "CALLBRIDGE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Open a window on start (or in the running instance).
    #[arg(long, value_enum)]
    pub open: Option<Page>,
    /// A `tel:` or `callto:` link: the dial popup opens with its number.
    pub link: Option<String>,
    /// Run as the window host of a tray process (which starts it so, with a pipe on stdin and
    /// stdout; see `window_host`). Not for people.
    #[arg(long, hide = true)]
    pub window_host: bool,
}

/// A window that can be opened from the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Page {
    Settings,
    Dial,
}

impl Args {
    pub fn parse() -> Args {
        <Args as Parser>::parse()
    }

    /// The arguments of a second launch, as the single-instance plugin hands them over.
    pub fn from_argv(argv: &[String]) -> Option<Args> {
        Args::try_parse_from(argv).ok()
    }
}
