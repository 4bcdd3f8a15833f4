//! Tokens and the scopes they are asked for.

use std::fmt;
use std::sync::Arc;

/// A GitHub token. It never prints: `Debug` shows `Token(<redacted>)` and it has no `Display`,
/// so it cannot reach a log line, an error or a metric by accident.
#[derive(Clone)]
pub struct Token(Arc<str>);

impl Token {
    /// Wraps a token.
    pub fn new(token: impl Into<Arc<str>>) -> Self {
        Self(token.into())
    }

    /// The token itself, for an `Authorization` header.
    pub(crate) fn secret(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

/// What a token is for: an owner (an org or a user) and, for a repository-scoped token, one
/// of its repositories. Octo STS takes it as its `scope`: `org` or `org/repo`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Scope {
    /// The org or user.
    pub owner: String,
    /// The repository, for a repository-scoped token.
    pub repo: Option<String>,
}

impl Scope {
    /// All of `owner`'s repositories.
    pub fn org(owner: impl Into<String>) -> Self {
        Self {
            owner: owner.into(),
            repo: None,
        }
    }

    /// One repository.
    pub fn repo(owner: impl Into<String>, repo: impl Into<String>) -> Self {
        Self {
            owner: owner.into(),
            repo: Some(repo.into()),
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.repo {
            Some(repo) => write!(f, "{}/{repo}", self.owner),
            None => f.write_str(&self.owner),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_should_never_print() {
        let token = Token::new("ghs_very_secret");
        assert_eq!(format!("{token:?}"), "Token(<redacted>)");
        assert_eq!(
            format!("{:?}", Some(token.clone())),
            "Some(Token(<redacted>))"
        );
        assert_eq!(token.secret(), "ghs_very_secret");
    }

    #[test]
    fn scopes_should_print_as_octo_sts_takes_them() {
        assert_eq!(Scope::org("o").to_string(), "o");
        assert_eq!(Scope::repo("o", "r").to_string(), "o/r");
    }
}
