//! A path reconciler in the shape of the reference's config-sync: for a key naming a file at
//! a branch (`https://github.com/OWNER/REPO/blob/BRANCH/PATH`, as the gateway's path routes
//! and the resync make them), the file at the branch's head is validated as YAML and the
//! result reported on that commit as a Check Run named `identity (path)`. A file that is gone
//! is a success with nothing to do.
//!
//! GitHub requests per reconcile: two reads (the branch's head commit, its check runs) when
//! that commit was already reported on; one read (the file) and one write more when not.

use github_reconciler::{
    Action, Annotation, Conclusion, Details, Error, GitHubClient, GitHubKey, GitHubReconciler,
    Status, StatusManager, Target,
};
use serde::{Deserialize, Serialize};

/// What was found of the file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum FileCheck {
    /// Valid YAML, of this many documents.
    Valid {
        /// The file's path.
        path: String,
        /// Its YAML documents.
        documents: usize,
    },
    /// Not YAML: where and why.
    Invalid {
        /// The file's path.
        path: String,
        /// The line (from 1).
        line: usize,
        /// The column (from 1).
        column: usize,
        /// What the parser said.
        message: String,
    },
    /// The file is not at the commit any more.
    Deleted {
        /// The file's path.
        path: String,
    },
}

/// `content` of the file `path`, checked.
pub fn check_file(path: &str, content: &[u8]) -> FileCheck {
    let invalid = |line, column, message| FileCheck::Invalid {
        path: path.to_owned(),
        line,
        column,
        message,
    };
    let Ok(text) = std::str::from_utf8(content) else {
        return invalid(1, 1, "the file is not UTF-8 text".to_owned());
    };
    match yaml_rust2::YamlLoader::load_from_str(text) {
        Ok(documents) => FileCheck::Valid {
            path: path.to_owned(),
            documents: documents.len(),
        },
        Err(e) => {
            let at = e.marker();
            invalid(at.line(), at.col() + 1, e.info().to_owned())
        }
    }
}

impl Details for FileCheck {
    fn title(&self) -> String {
        match self {
            Self::Valid { .. } => "Valid YAML".to_owned(),
            Self::Invalid { line, .. } => format!("Invalid YAML at line {line}"),
            Self::Deleted { .. } => "Deleted: nothing to sync".to_owned(),
        }
    }

    fn markdown(&self) -> String {
        match self {
            Self::Valid { path, documents } => {
                format!("`{path}` is valid YAML ({documents} document(s)).")
            }
            Self::Invalid {
                path,
                line,
                column,
                message,
            } => format!("`{path}` is not valid YAML: {message} (line {line}, column {column})."),
            Self::Deleted { path } => format!("`{path}` is gone at this commit: nothing to sync."),
        }
    }

    fn annotations(&self) -> Vec<Annotation> {
        match self {
            Self::Invalid {
                path,
                line,
                message,
                ..
            } => vec![Annotation {
                path: path.clone(),
                start_line: *line as u64,
                end_line: *line as u64,
                annotation_level: "failure",
                message: message.clone(),
            }],
            _ => Vec::new(),
        }
    }
}

/// The reconciler: one status manager, its runs named `identity (path)`.
pub struct ConfigSync {
    status: StatusManager<FileCheck>,
}

impl ConfigSync {
    /// Reports check runs named `identity (path)`.
    pub fn new(identity: &str) -> Self {
        Self {
            status: StatusManager::new(identity),
        }
    }

    /// The same, with `status` as its status manager.
    pub fn with_status(status: StatusManager<FileCheck>) -> Self {
        Self { status }
    }
}

#[async_trait::async_trait]
impl GitHubReconciler for ConfigSync {
    async fn reconcile(&self, key: &GitHubKey, client: &GitHubClient) -> Result<Action, Error> {
        let Target::Blob { git_ref, path } = &key.target else {
            return Err(Error::no_retry(format!("{key} is not a file")));
        };
        let (owner, repo) = (&key.owner, &key.repo);
        // A branch that is gone has no commit to report on.
        let Some(sha) = client.commit_sha(owner, repo, git_ref).await? else {
            return Ok(Action::done());
        };
        let mut session = self.status.session(client, key, &sha).await?;
        if session.is_done() {
            return Ok(Action::done());
        }
        let found = match client.file(owner, repo, path, &sha).await? {
            Some(content) => check_file(path, &content),
            None => FileCheck::Deleted { path: path.clone() },
        };
        let conclusion = match found {
            FileCheck::Invalid { .. } => Conclusion::Failure,
            FileCheck::Valid { .. } | FileCheck::Deleted { .. } => Conclusion::Success,
        };
        session
            .set(Status::completed(sha, conclusion, found))
            .await?;
        Ok(Action::done())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_should_be_checked_as_yaml() {
        assert_eq!(
            check_file("a.yaml", b"a: 1\n---\nb: [2]\n"),
            FileCheck::Valid {
                path: "a.yaml".into(),
                documents: 2
            }
        );
        let FileCheck::Invalid { line, message, .. } = check_file("b.yaml", b"a: 1\nb: [2\n")
        else {
            panic!("not YAML");
        };
        assert!(line >= 2, "{line}");
        assert!(!message.is_empty());
        assert!(matches!(
            check_file("c.yaml", &[0xff, 0xfe]),
            FileCheck::Invalid { .. }
        ));
    }
}
