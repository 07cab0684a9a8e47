//! `callbridge`: the headless CallBridge. `serve` runs the engine and its listener; the other commands
//! talk to a running instance over its HTTP API, or work on the config file.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use std::sync::Arc;

use callbridge::config::Config;
use callbridge::settings::Settings;
use callbridge::engine::Services;
use callbridge::secrets::{Keyring, Secret};
use callbridge::security::token::{self, TokenError};
use callbridge::Engine;
use clap::{Parser, Subcommand};
use serde_json::Value;

mod cli_secret;

#[derive(Debug, Parser)]
#[command(name = "callbridge", version, about = "CallBridge: CRM URL commands in, phone calls out, call events to the CRM")]
struct Cli {
    /// The config file (default: the platform's config directory; see `callbridge config path`).
    #[arg(long, global = true, env = "CALLBRIDGE_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the bridge: the listener, the provider and the notifications, until Ctrl-C or SIGTERM.
    Serve {
        /// Listen on this port instead of the configured one.
        #[arg(long)]
        port: Option<u16>,
        /// The SQLite store file (call history, notification outbox) instead of `[store] path` or the
        /// platform's data directory.
        #[arg(long, env = "CALLBRIDGE_STORE")]
        store: Option<PathBuf>,
    },
    /// Place a call through the running bridge.
    Dial { number: String },
    /// Answer the ringing call (or the given one) on the running bridge.
    Answer { call_id: Option<String> },
    /// End the current call (or the given one) on the running bridge.
    Hangup { call_id: Option<String> },
    /// Show the running bridge's provider, its health and the current call.
    Status,
    /// List the running bridge's calls, newest first.
    Calls,
    /// Simulate things on the running bridge.
    Simulate {
        #[command(subcommand)]
        what: Simulate,
    },
    /// Work on the config file.
    Config {
        #[command(subcommand)]
        what: ConfigCommand,
    },
    /// Keep provider secrets (the TeleCMI app secret, passwords) in the OS keyring.
    Secret {
        #[command(subcommand)]
        what: cli_secret::SecretCommand,
    },
    /// The listener token that lets scripts and CRMs through (kept in the OS keyring).
    Token {
        #[command(subcommand)]
        what: TokenCommand,
    },
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Print the token (creating it if there is none yet).
    Show,
    /// Replace the token with a new one; a running bridge stops taking the old one within a second.
    Regenerate,
}

#[derive(Debug, Subcommand)]
enum Simulate {
    /// Ring an incoming call from NUMBER; `callbridge answer` and `hangup` act on it.
    Incoming {
        number: String,
        #[arg(long)]
        name: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Print where the config file is.
    Path,
    /// Print the effective configuration (the file, or the defaults where it is silent).
    Show,
    /// Validate the config file; exits non-zero with the line of the first problem.
    Check,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    init_tracing(matches!(cli.command, Command::Serve { .. }));
    callbridge::panics::install_hook();
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("callbridge: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("callbridge: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn init_tracing(serving: bool) {
    let default = if serving { "info" } else { "warn" };
    let filter = tracing_subscriber::EnvFilter::try_from_env("CALLBRIDGE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    // Colours only for a terminal: a log file or a service's journal gets plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt().with_env_filter(filter).with_ansi(ansi).with_writer(std::io::stderr).init();
}

fn config_path(cli_path: Option<PathBuf>) -> Result<PathBuf> {
    match cli_path {
        Some(p) => Ok(p),
        None => Ok(Config::default_path()?),
    }
}

async fn run(cli: Cli) -> Result<()> {
    let path = config_path(cli.config)?;
    match cli.command {
        Command::Serve { port, store } => serve(&path, port, store).await,
        Command::Config { what } => config_command(&path, what),
        Command::Secret { what } => cli_secret::run(&path, what).await,
        Command::Token { what } => token_command(&path, what).await,
        command => client_command(&path, command).await,
    }
}

async fn serve(path: &std::path::Path, port: Option<u16>, store: Option<PathBuf>) -> Result<()> {
    let mut config = Config::load(path)?;
    if let Some(port) = port {
        config.listener.port = port;
    }
    if let Some(store) = store {
        config.store.path = Some(store);
    }
    let addr = SocketAddr::new(config.listener.bind, config.listener.port);
    let token = keyring_token(&config.security.token_entry).await;
    check_exposure(&config, addr, &token)?;
    let store_file = config.store.file()?;
    let store = callbridge::store::Store::open(&store_file, config.store.durability)?;
    let mut services = Services::with_store(&config, Arc::new(Keyring), store);
    services.config_file = Some(path.to_owned());
    let engine = Engine::start_with(config.clone(), services);
    // The engine keeps its own copy of the token (read again from the keyring when it changes).
    let _ = engine.listener_token().await;
    // Settings own the listener, so the settings page (/ui/) can save and move it while running.
    let settings = Settings::new(engine.clone(), Some(path.to_owned()), None, callbridge::listener::router);
    let actual = settings
        .start_listener()
        .await
        .with_context(|| format!("cannot listen on {addr} (is another CallBridge running? change [listener] port in {})", path.display()))?;
    let mut shown = config.listener.clone();
    shown.port = actual.port();
    let base = shown.base_url();
    println!("CallBridge is listening on {base} (provider: {})", engine.provider().name());
    println!("Try it: curl {base}/{}/020123456", config.listener.make);
    println!("Config: {}{}", path.display(), if path.exists() { "" } else { " (not created yet: using defaults)" });
    println!("Settings page: {base}/ui/");
    println!("Store: {}", store_file.display());
    match &token {
        Ok(_) => println!("Token: in the OS keyring (`callbridge token show`); scripts send it as Authorization: Bearer … or ?token=…"),
        Err(e) => println!("Token: none ({e}); programs on this machine can still send commands without it"),
    }
    if config.security.mode == callbridge::security::Mode::Open {
        tracing::warn!("{}", callbridge::security::OPEN_MODE_WARNING);
        println!("Warning: {}", callbridge::security::OPEN_MODE_WARNING);
    }

    shutdown_signal().await;
    tracing::info!("shutting down");
    settings.stop_listener().await;
    engine.shutdown().await;
    Ok(())
}

/// The listener token from the keyring, created at first run. Warns when there is none.
async fn keyring_token(entry: &str) -> Result<Secret, TokenError> {
    let entry = entry.to_owned();
    let result = tokio::task::spawn_blocking(move || token::load_or_create(&Keyring, &entry))
        .await
        .unwrap_or_else(|e| Err(TokenError::Keyring(e.to_string())));
    if let Err(e) = &result {
        tracing::warn!("{e}; programs on this machine can still send commands without a token, but none can be used");
    }
    result
}

/// Refuses to face the network without the token: a listener bound off loopback must be able to check one (docs/security.md).
fn check_exposure(config: &Config, addr: SocketAddr, token: &Result<Secret, TokenError>) -> Result<()> {
    if config.listener.bind.is_loopback() {
        return Ok(());
    }
    if let Err(e) = token {
        bail!(
            "refusing to listen on {addr}: a listener reachable from other machines must require the listener token from them, \
             and {e}. Set [listener] bind = \"127.0.0.1\" (the default), or make the OS keyring available so the token can be kept"
        );
    }
    tracing::warn!(%addr, "listening beyond this machine: other machines must send the listener token");
    Ok(())
}

async fn token_command(path: &std::path::Path, what: TokenCommand) -> Result<()> {
    let entry = Config::load(path)?.security.token_entry;
    let token = tokio::task::spawn_blocking(move || match what {
        TokenCommand::Show => token::load_or_create(&Keyring, &entry),
        TokenCommand::Regenerate => token::regenerate(&Keyring, &entry),
    })
    .await
    .context("the keyring call did not finish")??;
    println!("{}", token.expose());
    Ok(())
}

/// Ctrl-C everywhere; SIGTERM too on Unix.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

fn config_command(path: &std::path::Path, what: ConfigCommand) -> Result<()> {
    match what {
        ConfigCommand::Path => println!("{}", path.display()),
        ConfigCommand::Show => print!("{}", Config::load(path)?.to_toml()?),
        ConfigCommand::Check => {
            let config = Config::load(path)?;
            if path.exists() {
                println!("{} is valid ({} notification rules)", path.display(), config.notifications.len());
            } else {
                println!("{} does not exist; the defaults apply", path.display());
            }
        }
    }
    Ok(())
}

/// Commands that talk to the running bridge on the configured port.
async fn client_command(path: &std::path::Path, command: Command) -> Result<()> {
    let config = Config::load(path)?;
    let base = std::env::var("CALLBRIDGE_URL").unwrap_or_else(|_| config.listener.base_url());
    let mut headers = reqwest::header::HeaderMap::new();
    if !url::Url::parse(&base).ok().and_then(|u| u.host_str().map(callbridge::security::origin::is_loopback_host)).unwrap_or(true) {
        // Beyond this machine the bridge wants the token: send it when the keyring has it.
        let entry = config.security.token_entry.clone();
        if let Ok(Ok(Some(token))) = tokio::task::spawn_blocking(move || callbridge::secrets::SecretStore::get(&Keyring, &entry)).await {
            if let Ok(value) = reqwest::header::HeaderValue::from_str(&format!("Bearer {}", token.expose())) {
                headers.insert(reqwest::header::AUTHORIZATION, value);
            }
        }
    }
    let client = reqwest::Client::builder().timeout(std::time::Duration::from_secs(30)).default_headers(headers).build()?;
    let call_body = |id: Option<String>| match id {
        Some(id) => serde_json::json!({ "call_id": id }),
        None => serde_json::json!({}),
    };
    let request = match command {
        Command::Dial { number } => client.post(format!("{base}/api/v1/dial")).json(&serde_json::json!({ "number": number })),
        Command::Answer { call_id } => client.post(format!("{base}/api/v1/answer")).json(&call_body(call_id)),
        Command::Hangup { call_id } => client.post(format!("{base}/api/v1/hangup")).json(&call_body(call_id)),
        Command::Status => client.get(format!("{base}/api/v1/status")),
        Command::Calls => client.get(format!("{base}/api/v1/calls")),
        Command::Simulate { what: Simulate::Incoming { number, name } } => client
            .post(format!("{base}/api/v1/simulate/incoming"))
            .json(&serde_json::json!({ "number": number, "name": name })),
        Command::Serve { .. } | Command::Config { .. } | Command::Secret { .. } | Command::Token { .. } => {
            unreachable!("handled in run")
        }
    };
    let response = request.send().await.with_context(|| format!("CallBridge is not answering at {base}; start it with `callbridge serve`"))?;
    let status = response.status();
    let body: Value = response.json().await.context("CallBridge answered something that is not JSON")?;
    println!("{}", serde_json::to_string_pretty(&body)?);
    if !status.is_success() {
        bail!("{}", body["message"].as_str().unwrap_or("the command failed"));
    }
    Ok(())
}
