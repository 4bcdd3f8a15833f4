//! Validates a repository's YAML files, one Check Run per file; see `src/config_sync.rs`.
//!
//! ```text
//! OCTO_IDENTITY=config-sync GITHUB_TOKEN=... cargo run -p examples --example config_sync -- \
//!     https://github.com/OWNER/REPO/blob/main/configs/app.yaml
//! ```

use examples::config_sync::ConfigSync;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    github_reconciler::run(|setup| ConfigSync::new(&setup.identity)).await
}
