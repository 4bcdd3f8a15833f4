//! `reconcilers queue`: list a queue, show a key, list and re-enqueue dead letters.

use std::time::SystemTime;

use clap::{Args, Subcommand};
use workqueue::{KeyStatus, Queue, QueueConfig};

use crate::args::StorageArgs;

/// Options of `reconcilers queue`.
#[derive(Debug, Args)]
pub(crate) struct QueueArgs {
    #[command(subcommand)]
    command: QueueCommand,
    #[command(flatten)]
    storage: StorageArgs,
}

#[derive(Debug, Subcommand)]
enum QueueCommand {
    /// Every key: in progress, queued and dead-lettered.
    List,
    /// Where one key is.
    State {
        /// The key.
        key: String,
    },
    /// The dead-lettered keys and their last errors.
    DeadLetters,
    /// Enqueues every dead-lettered key again with a fresh attempt count.
    Reenqueue,
}

/// Runs one `queue` subcommand against the storage.
pub(crate) async fn run(args: QueueArgs) -> anyhow::Result<()> {
    let url = args.storage.resolve(None)?;
    let storage = url
        .open()
        .await
        .map_err(|e| anyhow::anyhow!(e).context(format!("failed to open {url}")))?;
    let queue = Queue::new(storage, QueueConfig::default());
    match args.command {
        QueueCommand::List => {
            let snapshot = queue.snapshot().await?;
            let mut rows = Vec::new();
            for run in &snapshot.in_progress {
                let r = &run.record;
                rows.push(row(
                    &r.key,
                    "in-progress",
                    r.priority,
                    r.attempts,
                    &format!("lease until {}", time(r.lease_expires)),
                ));
            }
            for queued in &snapshot.queued {
                let q = &queued.record;
                let due = q
                    .not_before
                    .filter(|nb| nb.at > snapshot.taken_at)
                    .map_or("now".to_owned(), |nb| time(nb.at));
                rows.push(row(&q.key, "queued", q.priority, q.attempts, &due));
            }
            for dead in snapshot.dead {
                rows.push(row(
                    &dead.key,
                    "dead-letter",
                    dead.priority,
                    dead.attempts,
                    "never",
                ));
            }
            print_table(&["KEY", "STATE", "PRIORITY", "ATTEMPTS", "DUE"], rows);
        }
        QueueCommand::State { key } => match queue.state(&key).await? {
            None => anyhow::bail!("key {key:?} is not in the queue"),
            Some(state) => {
                let status = match state.status {
                    KeyStatus::Queued => "queued",
                    KeyStatus::InProgress => "in-progress",
                    KeyStatus::DeadLetter => "dead-letter",
                };
                let due = state.not_before.map_or("now".to_owned(), time);
                println!("key:       {}", state.key);
                println!("state:     {status}");
                println!("priority:  {}", state.priority);
                println!("attempts:  {}", state.attempts);
                println!("queued at: {}", time(state.queued_at));
                if state.status == KeyStatus::Queued {
                    println!("due:       {due}");
                }
            }
        },
        QueueCommand::DeadLetters => {
            let rows = queue
                .dead_letters()
                .await?
                .into_iter()
                .map(|d| {
                    vec![
                        d.key,
                        d.priority.to_string(),
                        d.attempts.to_string(),
                        time(d.failed_at),
                        d.error,
                    ]
                })
                .collect();
            print_table(
                &["KEY", "PRIORITY", "ATTEMPTS", "FAILED AT", "LAST ERROR"],
                rows,
            );
        }
        QueueCommand::Reenqueue => {
            let count = queue.reenqueue_dead_letters().await?;
            println!(
                "re-enqueued {count} dead-lettered key{}",
                if count == 1 { "" } else { "s" }
            );
        }
    }
    Ok(())
}

fn time(at: SystemTime) -> String {
    humantime::format_rfc3339_seconds(at).to_string()
}

fn row(key: &str, state: &str, priority: i64, attempts: u32, due: &str) -> Vec<String> {
    vec![
        key.to_owned(),
        state.to_owned(),
        priority.to_string(),
        attempts.to_string(),
        due.to_owned(),
    ]
}

fn print_table(header: &[&str], rows: Vec<Vec<String>>) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        println!("{}", padded.join("  ").trim_end());
    };
    line(header.to_vec());
    for row in &rows {
        line(row.iter().map(String::as_str).collect());
    }
}
