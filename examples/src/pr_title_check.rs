//! A pull request's title checked against Conventional Commits (`type(scope)!: subject`), the
//! result a Check Run named after the reconciler's identity on the head commit.
//!
//! GitHub requests per reconcile: two reads (the pull request, the commit's check runs) when
//! the head commit was already checked; one write more when it was not. With conditional
//! requests, an unchanged read is answered 304 and does not count against the rate limit.

use std::sync::LazyLock;

use github_reconciler::{
    Action, Conclusion, Details, Error, GitHubClient, GitHubKey, GitHubReconciler, Status,
    StatusManager, Target,
};
use regex::Regex;
use serde::{Deserialize, Serialize};

/// The types a Conventional Commits title may start with.
pub const TYPES: [&str; 11] = [
    "feat", "fix", "docs", "style", "refactor", "perf", "test", "build", "ci", "chore", "revert",
];

/// `type(scope)!: subject`: the scope and the `!` optional, the subject not empty.
static CONVENTIONAL: LazyLock<Regex> = LazyLock::new(|| {
    let types = TYPES.join("|");
    Regex::new(&format!(r"^(?:{types})(?:\([^()\s][^()]*\))?!?: \S")).expect("the pattern")
});

/// Why `title` is not a Conventional Commits title, if it is not.
pub fn check_title(title: &str) -> Result<(), String> {
    if CONVENTIONAL.is_match(title) {
        return Ok(());
    }
    let Some((head, _)) = title.split_once(':') else {
        return Err("it has no `type: ` prefix".to_owned());
    };
    let kind = head.split(['(', '!']).next().unwrap_or(head);
    if !TYPES.contains(&kind) {
        return Err(format!(
            "`{kind}` is not one of the types: {}",
            TYPES.join(", ")
        ));
    }
    Err("it is not `type(scope)!: subject` (a scope in parentheses, an optional `!`, then `: ` and the subject)".to_owned())
}

/// What the check run shows and keeps: the title checked, and what is wrong with it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TitleCheck {
    /// The title checked.
    pub title: String,
    /// Why it does not follow Conventional Commits, if it does not.
    pub problem: Option<String>,
}

impl Details for TitleCheck {
    fn title(&self) -> String {
        match self.problem {
            None => "The title follows Conventional Commits".to_owned(),
            Some(_) => "The title does not follow Conventional Commits".to_owned(),
        }
    }

    fn markdown(&self) -> String {
        let verdict = match &self.problem {
            None => "follows Conventional Commits.".to_owned(),
            Some(problem) => format!("does not follow Conventional Commits: {problem}."),
        };
        format!(
            "The title `{}` {verdict}\n\nA title reads `type(scope)!: subject`, with a type among {}.",
            self.title.replace('`', "'"),
            TYPES.map(|t| format!("`{t}`")).join(", ")
        )
    }
}

/// The reconciler: one status manager, named by the identity.
pub struct PrTitleCheck {
    status: StatusManager<TitleCheck>,
}

impl PrTitleCheck {
    /// Reports check runs named `identity`.
    pub fn new(identity: &str) -> Self {
        Self {
            status: StatusManager::new(identity),
        }
    }

    /// The same, with `status` as its status manager (tests turn its details links off).
    pub fn with_status(status: StatusManager<TitleCheck>) -> Self {
        Self { status }
    }
}

#[async_trait::async_trait]
impl GitHubReconciler for PrTitleCheck {
    async fn reconcile(&self, key: &GitHubKey, client: &GitHubClient) -> Result<Action, Error> {
        let Target::PullRequest(number) = key.target else {
            return Err(Error::no_retry(format!("{key} is not a pull request")));
        };
        // A pull request GitHub no longer has needs nothing more.
        let Some(pr) = client.pull_request(&key.owner, &key.repo, number).await? else {
            return Ok(Action::done());
        };
        let mut session = self.status.session(client, key, &pr.head.sha).await?;
        if session.is_done() {
            return Ok(Action::done());
        }
        let problem = check_title(&pr.title).err();
        let conclusion = match problem {
            None => Conclusion::Success,
            Some(_) => Conclusion::Failure,
        };
        let details = TitleCheck {
            title: pr.title,
            problem,
        };
        session
            .set(Status::completed(pr.head.sha, conclusion, details))
            .await?;
        Ok(Action::done())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_should_be_checked_against_conventional_commits() {
        for good in [
            "feat: add a thing",
            "fix(parser): handle CRLF",
            "feat(api)!: drop v1",
            "refactor!: rename",
            "chore(deps): bump serde",
            "revert: feat: add a thing",
        ] {
            assert_eq!(check_title(good), Ok(()), "{good}");
        }
        for (bad, says) in [
            ("Add a thing", "no `type: `"),
            ("feature: add", "`feature` is not one of"),
            ("feat:add", "not `type(scope)!: subject`"),
            ("feat(): add", "not `type(scope)!: subject`"),
            ("feat: ", "not `type(scope)!: subject`"),
            ("Feat: add", "`Feat` is not one of"),
        ] {
            let problem = check_title(bad).unwrap_err();
            assert!(problem.contains(says), "{bad}: {problem}");
        }
    }
}
