//! The few fields of GitHub webhook payloads the gateway reads, parsed into borrowed, typed
//! structs: everything else is skipped without being built (docs/benchmarks.md: a
//! `serde_json::Value` costs several times the parse).

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};

/// A webhook payload, any event.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Payload<'a> {
    #[serde(borrow, default)]
    pub action: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub repository: Option<Repository<'a>>,
    #[serde(borrow, default)]
    pub pull_request: Option<PullRequest<'a>>,
    #[serde(default)]
    pub issue: Option<Issue>,
    #[serde(borrow, default)]
    pub check_run: Option<CheckRun<'a>>,
    #[serde(borrow, default)]
    pub check_suite: Option<CheckSuite<'a>>,
    /// A push's ref, `refs/heads/<branch>`.
    #[serde(borrow, default, rename = "ref")]
    pub git_ref: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub before: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub after: Option<Cow<'a, str>>,
    #[serde(default)]
    pub forced: bool,
    #[serde(default)]
    pub deleted: bool,
    #[serde(borrow, default)]
    pub commits: Option<Vec<Commit<'a>>>,
}

/// A payload's `repository` (some 90 keys, three read: see [`FieldOf`]).
#[derive(Debug)]
pub(crate) struct Repository<'a> {
    pub full_name: Cow<'a, str>,
    pub html_url: Option<Cow<'a, str>>,
    pub default_branch: Option<Cow<'a, str>>,
}

/// A payload's `pull_request` (some 50 keys, three read: see [`FieldOf`]).
#[derive(Debug)]
pub(crate) struct PullRequest<'a> {
    pub number: u64,
    pub merged: Option<bool>,
    pub head: Option<Head<'a>>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct Head<'a> {
    #[serde(borrow, rename = "ref")]
    pub name: Cow<'a, str>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct Issue {
    pub number: u64,
    /// Present when the issue is a pull request.
    #[serde(default)]
    pub pull_request: Option<IgnoredAny>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct CheckRun<'a> {
    pub id: u64,
    #[serde(default)]
    pub pull_requests: Vec<PullRequestRef>,
    #[serde(borrow, default)]
    pub check_suite: Option<CheckSuite<'a>>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct CheckSuite<'a> {
    #[serde(default)]
    pub pull_requests: Vec<PullRequestRef>,
    #[serde(borrow, default)]
    pub head_branch: Option<Cow<'a, str>>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct PullRequestRef {
    pub number: u64,
}

#[derive(Debug, Deserialize)]
pub(crate) struct Commit<'a> {
    #[serde(borrow, default)]
    pub added: Vec<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub removed: Vec<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub modified: Vec<Cow<'a, str>>,
}

impl Repository<'_> {
    /// The repository keys are made in: its page's host (GitHub Enterprise's too), or
    /// github.com when the payload gives no page; `None` when the page or the name cannot be
    /// read (a key on a guessed host could name another repository).
    pub(crate) fn keyed(&self) -> Option<github::Repository> {
        match self.html_url.as_deref().filter(|url| !url.is_empty()) {
            Some(url) => github::Repository::from_url(url).ok(),
            None => github::Repository::new(github::key::GITHUB_HOST, &self.full_name).ok(),
        }
    }
}

/// Which of its names an object key is (`None` for the others), read as bytes.
///
/// Written by hand rather than derived for the two large objects: a derived struct reads each
/// key as a `str`, and serde_json checks every key's UTF-8 to do so, while as bytes it does not
/// (the skipped values are not checked either); that check was most of what entering those
/// objects cost beyond skipping them (`cargo bench -p gateway --bench delivery`).
struct FieldOf(&'static [&'static str]);

impl<'de> DeserializeSeed<'de> for FieldOf {
    type Value = Option<usize>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_bytes(self)
    }
}

impl Visitor<'_> for FieldOf {
    type Value = Option<usize>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_bytes<E: de::Error>(self, key: &[u8]) -> Result<Self::Value, E> {
        Ok(self.0.iter().position(|name| name.as_bytes() == key))
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<Self::Value, E> {
        self.visit_bytes(key.as_bytes())
    }
}

/// A string borrowed from the payload when it has no escapes.
struct CowStr<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for CowStr<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct CowVisitor;
        impl<'de> Visitor<'de> for CowVisitor {
            type Value = CowStr<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(CowStr(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(CowStr(Cow::Owned(v.to_owned())))
            }
        }
        deserializer.deserialize_str(CowVisitor)
    }
}

/// An optional string field: `null` reads as absent, as with the derived structs.
fn optional_str<'de, A: MapAccess<'de>>(map: &mut A) -> Result<Option<Cow<'de, str>>, A::Error> {
    Ok(map.next_value::<Option<CowStr<'de>>>()?.map(|s| s.0))
}

impl<'de: 'a, 'a> Deserialize<'de> for Repository<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct RepositoryVisitor;
        impl<'de> Visitor<'de> for RepositoryVisitor {
            type Value = Repository<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a repository object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                const NAMES: &[&str] = &["full_name", "html_url", "default_branch"];
                let (mut full_name, mut html_url, mut default_branch) = (None, None, None);
                while let Some(field) = map.next_key_seed(FieldOf(NAMES))? {
                    match field {
                        Some(0) => full_name = Some(map.next_value::<CowStr<'de>>()?.0),
                        Some(1) => html_url = optional_str(&mut map)?,
                        Some(2) => default_branch = optional_str(&mut map)?,
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(Repository {
                    full_name: full_name.ok_or_else(|| de::Error::missing_field("full_name"))?,
                    html_url,
                    default_branch,
                })
            }
        }
        deserializer.deserialize_map(RepositoryVisitor)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for PullRequest<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct PullRequestVisitor;
        impl<'de> Visitor<'de> for PullRequestVisitor {
            type Value = PullRequest<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a pull request object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                const NAMES: &[&str] = &["number", "merged", "head"];
                let (mut number, mut merged, mut head) = (None, None, None);
                while let Some(field) = map.next_key_seed(FieldOf(NAMES))? {
                    match field {
                        Some(0) => number = Some(map.next_value::<u64>()?),
                        Some(1) => merged = map.next_value::<Option<bool>>()?,
                        Some(2) => head = map.next_value::<Option<Head<'de>>>()?,
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(PullRequest {
                    number: number.ok_or_else(|| de::Error::missing_field("number"))?,
                    merged,
                    head,
                })
            }
        }
        deserializer.deserialize_map(PullRequestVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_read_objects_should_read_escaped_keys_nulls_and_escaped_values() {
        let json = r#"{"repository":{"id":1,"full\u005fname":"o/r","html_url":null,
            "owner":{"full_name":"not this"},"default_branch":"ma\u0069n"},
            "pull_request":{"numb\u0065r":7,"merged":null,"head":{"ref":"fix"},"x":[1,{"y":2}]}}"#;
        let payload: Payload<'_> = serde_json::from_str(json).unwrap();
        let repo = payload.repository.unwrap();
        assert_eq!(repo.full_name, "o/r");
        assert_eq!(repo.html_url, None);
        assert_eq!(repo.default_branch.as_deref(), Some("main"));
        let pr = payload.pull_request.unwrap();
        assert_eq!((pr.number, pr.merged), (7, None));
        assert_eq!(pr.head.unwrap().name, "fix");
    }

    #[test]
    fn hand_read_objects_should_refuse_missing_or_mistyped_fields() {
        for json in [
            r#"{"repository":{"html_url":"https://github.com/o/r"}}"#,
            r#"{"repository":{"full_name":7}}"#,
            r#"{"pull_request":{"merged":true}}"#,
            r#"{"pull_request":{"number":"7"}}"#,
            r#"{"pull_request":[]}"#,
        ] {
            assert!(serde_json::from_str::<Payload<'_>>(json).is_err(), "{json}");
        }
    }
}
