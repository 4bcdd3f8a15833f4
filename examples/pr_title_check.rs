//! Checks pull request titles against Conventional Commits; see `src/pr_title_check.rs`.
//!
//! ```text
//! OCTO_IDENTITY=pr-title GITHUB_TOKEN=... cargo run -p examples --example pr_title_check -- \
//!     https://github.com/OWNER/REPO/pull/1         # once, no queue
//! OCTO_IDENTITY=pr-title GITHUB_TOKEN=... cargo run -p examples --example pr_title_check
//!                                                  # serves on 127.0.0.1:8080, or 0.0.0.0:$PORT
//! ```

use examples::pr_title_check::PrTitleCheck;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    github_reconciler::run(|setup| PrTitleCheck::new(&setup.identity)).await
}
