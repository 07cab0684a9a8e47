//! `callbridge-bench`: measures the built CallBridge programs and prints one markdown table of every
//! figure of the benchmark (docs/performance.md) beside its comparison and target, with the machine described under it.
//!
//! The programs under test run as processes of their own; this process is the load (a CRM sending URL
//! commands, a CRM server receiving notifications) and reads `/proc` for memory and wake-ups.
//! `scripts/bench.sh` builds release binaries and runs it; `--quick` (or `CALLBRIDGE_BENCH_QUICK=1`)
//! runs every measurement briefly against whatever build it is given, to check the harness works.
//! The hidden `floor` command is the bare axum server figure 1 compares with.

mod bridge;
mod crm;
mod figures;
mod floor;
mod load;
mod machine;
mod process;
mod procfs;
mod stats;
mod table;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

use figures::{Plan, Programs};
use table::{Row, Verdict};

#[derive(Debug, Parser)]
#[command(name = "callbridge-bench", about = "Benchmarks and footprint of CallBridge: prints one markdown table")]
struct Cli {
    /// Run every measurement briefly (checks the harness; the figures mean nothing).
    #[arg(long, env = "CALLBRIDGE_BENCH_QUICK", value_parser = clap::builder::BoolishValueParser::new(), default_value_t = false)]
    quick: bool,
    /// The headless binary (default: `callbridge` beside this one).
    #[arg(long)]
    callbridge: Option<PathBuf>,
    /// The desktop app (default: `callbridge-desktop` beside this one, if it is there; not in quick mode).
    #[arg(long)]
    desktop: Option<PathBuf>,
    /// Shell command that opens the desktop app's settings window (default: `"$CALLBRIDGE_DESKTOP" --open settings`).
    #[arg(long, env = "CALLBRIDGE_BENCH_OPEN_SETTINGS")]
    desktop_open_settings: Option<String>,
    /// Shell command that closes it again (default: WM_DELETE_WINDOW to "CallBridge Settings").
    #[arg(long, env = "CALLBRIDGE_BENCH_CLOSE_SETTINGS")]
    desktop_close_settings: Option<String>,
    /// The Linux package (default: the newest `bundle/deb/*.deb` beside this binary, if any).
    #[arg(long)]
    deb: Option<PathBuf>,
    /// Keep the engine's SQLite store on a tmpfs (/dev/shm) for figures 1 and 2, where fsync costs
    /// nothing: shows how much of a figure is the disk's.
    #[arg(long)]
    store_on_tmpfs: bool,
    /// Only these figures (1 to 5; all by default).
    #[arg(long, value_delimiter = ',')]
    only: Vec<u8>,
    #[command(subcommand)]
    command: Option<Hidden>,
}

#[derive(Debug, Subcommand)]
enum Hidden {
    /// Serve the bare axum floor of figure 1 on 127.0.0.1:PORT.
    #[command(hide = true)]
    Floor {
        #[arg(long)]
        port: u16,
    },
    /// Closed-loop load on URL (`{i}` in it becomes 0000, 0001, …), for profiling a running server.
    #[command(hide = true)]
    Load {
        url: String,
        #[arg(long, default_value_t = 8)]
        connections: usize,
        #[arg(long, default_value_t = 10.0)]
        seconds: f64,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Hidden::Floor { port }) => floor::serve(port).map(|()| true),
        Some(Hidden::Load { ref url, connections, seconds }) => hammer(url, connections, seconds),
        None => bench(&cli),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("callbridge-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the hidden `load` command and prints what it came to.
fn hammer(url: &str, connections: usize, seconds: f64) -> Result<bool> {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let template = url.to_owned();
    let url_for = std::sync::Arc::new(move |i: usize| template.replace("{i}", &format!("{:04}", i % 10_000)));
    let mut outcome = runtime.block_on(load::closed_loop(&load::client(), connections, std::time::Duration::from_secs_f64(seconds), url_for));
    let summary = outcome.latencies.summary();
    println!("{:.0} req/s; {summary:?}; errors {:?}", outcome.throughput(), outcome.errors);
    Ok(outcome.errors.is_empty())
}

/// The directory this binary is in (`target/release`), where the programs under test are built too.
fn build_dir() -> Result<PathBuf> {
    let exe = std::env::current_exe().context("cannot tell where this binary is")?;
    Ok(exe.parent().context("this binary has no directory")?.to_owned())
}

fn newest_deb(dir: &Path) -> Option<PathBuf> {
    std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "deb"))
        .max_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok())
}

fn programs(cli: &Cli) -> Result<Programs> {
    let dir = build_dir()?;
    let exe = |name: &str| dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    let headless = cli.callbridge.clone().unwrap_or_else(|| exe("callbridge"));
    anyhow::ensure!(headless.exists(), "{} is missing: build it first (scripts/bench.sh does)", headless.display());
    // Quick mode (CI) measures the desktop app only when it is named: its measurement needs a display
    // server and a session bus, and has not been run against every CI machine yet.
    let found = Some(exe("callbridge-desktop")).filter(|p| p.exists() && !cli.quick);
    let desktop = cli.desktop.clone().or(found);
    if let Some(d) = desktop.as_ref().filter(|d| !d.exists()) {
        anyhow::bail!("{} is missing", d.display());
    }
    let release = headless.parent().and_then(Path::file_name).is_some_and(|n| n == "release");
    Ok(Programs {
        headless,
        bench: std::env::current_exe()?,
        desktop,
        open_settings: cli.desktop_open_settings.clone(),
        close_settings: cli.desktop_close_settings.clone(),
        deb: cli.deb.clone().or_else(|| newest_deb(&dir.join("bundle/deb"))),
        release,
    })
}

/// Runs the figures, prints the table; false if a measurement failed.
fn bench(cli: &Cli) -> Result<bool> {
    let mut plan = if cli.quick { Plan::quick() } else { Plan::full() };
    if cli.store_on_tmpfs {
        plan.data_under = Some(PathBuf::from("/dev/shm"));
    }
    let programs = programs(cli)?;
    let machine = machine::Machine::describe();
    // A freshly built binary's pages are dirty in the page cache until written back, and smaps counts
    // them as the process's private dirty memory: write them back first.
    for program in std::iter::once(&programs.headless).chain(programs.desktop.as_ref()) {
        std::fs::File::open(program).and_then(|f| f.sync_all()).with_context(|| format!("cannot sync {}", program.display()))?;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let wanted = |n: u8| cli.only.is_empty() || cli.only.contains(&n);
    let progress = |what: &str| eprintln!("callbridge-bench: {what}…");

    let mut rows: Vec<Row> = Vec::new();
    if wanted(1) {
        progress("figure 1, GET /make beside the bare axum floor");
        rows.extend(figures::make::rows(&runtime, &plan, &programs));
    }
    if wanted(2) {
        progress("figure 2, call event → CRM notification");
        rows.extend(figures::notify::rows(&runtime, &plan, &programs));
    }
    if wanted(3) {
        progress("figure 3, idle footprint");
        rows.extend(figures::footprint::rows(&runtime, &plan, &programs));
    }
    if wanted(4) {
        progress("figure 4, start-up");
        rows.extend(figures::startup::rows(&plan, &programs));
    }
    if wanted(3) || wanted(4) {
        progress("figures 3 and 4, the desktop app");
        rows.extend(figures::desktop::rows(&plan, &programs));
    }
    if wanted(5) {
        rows.extend(figures::size::rows(&programs));
    }
    rows.sort_by_key(|r| r.number);
    if plan.quick {
        // Brief runs of possibly debug builds say nothing about the targets.
        for r in rows.iter_mut().filter(|r| matches!(r.verdict, Verdict::Met | Verdict::Missed)) {
            r.verdict = Verdict::Info;
        }
    }

    let build = if programs.release { "release" } else { "debug" };
    println!("{}", table::render(&rows));
    println!(
        "Measured on: {}. Builds: {build} ({}).{}",
        machine.line(),
        programs.headless.display(),
        if plan.quick { " QUICK MODE: brief runs that check the harness; the figures mean nothing." } else { "" }
    );
    let failed = rows.iter().filter(|r| r.verdict == Verdict::Failed).count();
    if failed > 0 {
        eprintln!("callbridge-bench: {failed} measurement(s) failed");
    }
    Ok(failed == 0)
}
