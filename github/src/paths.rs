//! Path patterns: which files of a repository become keys, and the key each one becomes.
//! Shared by the gateway's path routes and the resync, so both name a file the same way.

use regex::Regex;

use crate::key::{GitHubKey, Repository, Target};

/// Anchored path patterns, each with exactly one capture group, tried in order.
#[derive(Clone, Debug)]
pub struct PathPatterns {
    patterns: Vec<Regex>,
}

/// A pattern that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PatternError {
    /// The pattern is not a valid regular expression.
    #[error("invalid path pattern `{pattern}`: {source}")]
    Invalid {
        /// The pattern as given.
        pattern: String,
        /// Why it does not compile.
        #[source]
        source: Box<regex::Error>,
    },
    /// The pattern has no capture group, or more than one.
    #[error("path pattern `{pattern}` has {groups} capture groups; it must have exactly one")]
    Groups {
        /// The pattern as given.
        pattern: String,
        /// How many it has.
        groups: usize,
    },
    /// No pattern was given.
    #[error("no path pattern was given")]
    None,
}

impl PathPatterns {
    /// Compiles `patterns`, anchoring each (`^(?:...)$`); refuses one that is invalid or that
    /// does not have exactly one capture group, naming it.
    pub fn new<S: AsRef<str>>(patterns: &[S]) -> Result<Self, PatternError> {
        if patterns.is_empty() {
            return Err(PatternError::None);
        }
        let compiled = patterns
            .iter()
            .map(|p| {
                let pattern = p.as_ref();
                // A `^` or `$` the pattern already has is harmless inside the anchors (and
                // stripping one could break an escaped `\$`).
                let regex =
                    Regex::new(&format!("^(?:{pattern})$")).map_err(|e| PatternError::Invalid {
                        pattern: pattern.to_owned(),
                        source: Box::new(e),
                    })?;
                match regex.captures_len() - 1 {
                    1 => Ok(regex),
                    groups => Err(PatternError::Groups {
                        pattern: pattern.to_owned(),
                        groups,
                    }),
                }
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { patterns: compiled })
    }

    /// What the first matching pattern captures of `path`: `None` when no pattern matches, or
    /// when the first one that does captures nothing (an optional group left out, or empty).
    pub fn capture<'p>(&self, path: &'p str) -> Option<&'p str> {
        let captures = self.patterns.iter().find_map(|re| re.captures(path))?;
        captures
            .get(1)
            .map(|m| m.as_str())
            .filter(|captured| !captured.is_empty())
    }

    /// The key for `path` in `repository` on `branch`, when a pattern captures some of it:
    /// `https://<host>/<owner>/<repo>/blob/<branch>/<captured>`.
    pub fn key(&self, repository: &Repository, branch: &str, path: &str) -> Option<GitHubKey> {
        self.capture(path).map(|captured| {
            repository.key(Target::Blob {
                git_ref: branch.to_owned(),
                path: captured.to_owned(),
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_should_be_anchored_and_keep_the_first_match() {
        let patterns = PathPatterns::new(&["config/(.+)\\.yaml", "^(docs)/.*$"]).unwrap();
        assert_eq!(patterns.capture("config/a/b.yaml"), Some("a/b"));
        assert_eq!(
            patterns.capture("x/config/a.yaml"),
            None,
            "anchored at the start"
        );
        assert_eq!(
            patterns.capture("config/a.yaml.bak"),
            None,
            "anchored at the end"
        );
        let ghe = Repository::new("ghe.example.com", "o/r").unwrap();
        assert_eq!(
            patterns
                .key(&ghe, "main", "docs/index.md")
                .map(|k| k.to_string())
                .as_deref(),
            Some("https://ghe.example.com/o/r/blob/main/docs")
        );
    }

    #[test]
    fn the_first_match_should_win_even_when_it_captures_nothing() {
        let patterns = PathPatterns::new(&["a/(x)?.*", "a/(.+)", "b/(.*)", "c/(.+)\\$"]).unwrap();
        assert_eq!(patterns.capture("a/xyz"), Some("x"));
        assert_eq!(patterns.capture("a/yz"), None, "the first pattern matched");
        assert_eq!(patterns.capture("b/"), None, "an empty capture is no key");
        assert_eq!(
            patterns.capture("c/price$"),
            Some("price"),
            "escaped $ kept"
        );
        assert_eq!(patterns.capture("c/price"), None);
    }

    #[test]
    fn bad_patterns_should_be_refused_by_name() {
        for (pattern, expect) in [
            ("config/.+", "0 capture groups"),
            ("(a)/(b)", "2 capture groups"),
            ("(unclosed", "invalid path pattern"),
        ] {
            let err = PathPatterns::new(&[pattern]).unwrap_err().to_string();
            assert!(err.contains(pattern) && err.contains(expect), "{err}");
        }
        assert!(PathPatterns::new::<&str>(&[]).is_err());
        assert!(PathPatterns::new(&["(?:non)-(capturing)"]).is_ok());
    }
}
