//! `callbridge secret set|delete|status`: provider secrets into and out of the OS keyring.
//!
//! A secret is read from the terminal without echo, or from stdin when that is not a terminal (for
//! scripts: `printf %s "$SECRET" | callbridge secret set telecmi`) — never from the command line,
//! where it would end up in the shell history and the process list. Nothing here prints a value.

use std::io::{IsTerminal, Read};
use std::path::Path;

use anyhow::{bail, Context, Result};
use callbridge::config::Config;
use callbridge::secrets::{Keyring, Secret, SecretStore};
use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum SecretCommand {
    /// Store a secret under NAME, read from the terminal (not echoed) or from stdin.
    /// NAME is the keyring entry: `telecmi` for the TeleCMI app secret, `telecmi-password` for the
    /// TeleCMI user's password (the defaults of [provider.telecmi] secret_entry and password_entry);
    /// the CRM's API key for the caller lookup goes under [lookup] secret_entry (e.g. `lookup-api-key`).
    Set { name: String },
    /// Remove the secret stored under NAME.
    Delete { name: String },
    /// Say which secrets are stored (never their values): the NAMEs given, else those the config uses.
    Status { names: Vec<String> },
}

pub async fn run(config_path: &Path, what: SecretCommand) -> Result<()> {
    match what {
        SecretCommand::Set { name } => {
            check_name(&name)?;
            let value = read_value(&name)?;
            keyring(move || Keyring.set(&name, &value).map(|()| name)).await.map(|name| {
                println!("Stored the secret {name:?} in the OS keyring.");
            })
        }
        SecretCommand::Delete { name } => {
            check_name(&name)?;
            let shown = name.clone();
            match keyring(move || Keyring.delete(&name)).await? {
                true => println!("Deleted the secret {shown:?} from the OS keyring."),
                false => println!("There was no secret {shown:?} in the OS keyring."),
            }
            Ok(())
        }
        SecretCommand::Status { names } => {
            let names = if names.is_empty() { names_in_config(config_path)? } else { names };
            for name in names {
                check_name(&name)?;
                let shown = name.clone();
                let set = keyring(move || Keyring.get(&name)).await?.is_some();
                println!("{shown}: {}", if set { "set" } else { "not set" });
            }
            Ok(())
        }
    }
}

/// Runs a blocking keyring call off the async threads.
async fn keyring<T: Send + 'static>(
    call: impl FnOnce() -> Result<T, callbridge::secrets::SecretError> + Send + 'static,
) -> Result<T> {
    Ok(tokio::task::spawn_blocking(call).await.context("the keyring call did not finish")??)
}

fn check_name(name: &str) -> Result<()> {
    if name.is_empty() || name.len() > 64 || name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        bail!("{name:?} is not a secret name: use letters, digits and '-', e.g. `telecmi`");
    }
    Ok(())
}

/// The keyring entries the config refers to: each provider's (as its registration says), then the
/// caller lookup's.
fn names_in_config(path: &Path) -> Result<Vec<String>> {
    let config = Config::load(path)?;
    let mut names = callbridge::provider::registry::secret_entries(&config.provider);
    names.extend(config.lookup.secret_entry.clone());
    Ok(names)
}

/// The secret's value: typed at a prompt that does not echo, or all of stdin minus one line ending.
fn read_value(name: &str) -> Result<Secret> {
    let value = if std::io::stdin().is_terminal() {
        rpassword::prompt_password(format!("Secret for {name:?} (not shown as you type): "))
            .context("cannot read the secret from the terminal")?
    } else {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text).context("cannot read the secret from stdin")?;
        let trimmed = text.strip_suffix('\n').unwrap_or(&text);
        trimmed.strip_suffix('\r').unwrap_or(trimmed).to_owned()
    };
    if value.trim().is_empty() {
        bail!("no secret was given: type it at the prompt, or pipe it in (printf %s \"$SECRET\" | callbridge secret set {name})");
    }
    Ok(Secret::new(value))
}
