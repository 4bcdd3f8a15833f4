//! `reconcilers webhook send`: posts a payload as GitHub would (signed, with its headers): the
//! local way to replay a fixture.

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};

/// The secret `dev` verifies with, and `webhook send` signs with, when no WEBHOOK_SECRET is set.
pub(crate) const DEV_SECRET: &str = "dev";

/// Options of `reconcilers webhook`.
#[derive(Debug, Args)]
pub(crate) struct WebhookArgs {
    #[command(subcommand)]
    command: WebhookCommand,
}

#[derive(Debug, Subcommand)]
enum WebhookCommand {
    /// Signs a payload with WEBHOOK_SECRET and posts it with GitHub's headers.
    Send {
        /// The payload (JSON), as GitHub would send it.
        file: PathBuf,
        /// The X-GitHub-Event: pull_request, push, issue_comment, ...
        #[arg(long)]
        event: String,
        /// Where to post it.
        #[arg(long, default_value = "http://127.0.0.1:8080/webhook")]
        url: String,
        /// The secret to sign with (default: `dev`, what `reconcilers dev` accepts without one).
        #[arg(long, env = "WEBHOOK_SECRET", hide_env_values = true)]
        secret: Option<String>,
    },
}

/// Posts the payload as GitHub would and reports the answer.
pub(crate) async fn run(args: WebhookArgs) -> anyhow::Result<()> {
    let WebhookCommand::Send {
        file,
        event,
        url,
        secret,
    } = args.command;
    let body =
        std::fs::read(&file).with_context(|| format!("failed to read {}", file.display()))?;
    let secret = secret.unwrap_or_else(|| DEV_SECRET.to_owned());
    let delivery = format!("{:032x}", rand::random::<u128>());
    // GitHub gives a receiver 10 s; a replay waits a little longer before it gives up.
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .context("failed to set up the HTTP client")?;
    let response = client
        .post(&url)
        .header("content-type", "application/json")
        .header("user-agent", "GitHub-Hookshot/reconcilers")
        .header("x-github-event", &event)
        .header("x-github-delivery", &delivery)
        .header("x-github-hook-id", "0")
        .header(
            "x-hub-signature-256",
            gateway::signature::sign(secret.as_bytes(), &body),
        )
        .body(body)
        .send()
        .await
        .with_context(|| format!("failed to post to {url}"))?;
    let status = response.status();
    let text = response
        .text()
        .await
        .unwrap_or_else(|e| format!("(its body could not be read: {e})"));
    if !status.is_success() {
        bail!("{url} answered {status}: {}", text.trim());
    }
    println!("delivered {event} {delivery}: {status}");
    Ok(())
}
