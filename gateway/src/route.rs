//! Routes (docs/architecture.md, "Routes"): exact-match filters on an event's attributes, a rule
//! that makes keys of it, a priority and the workqueue the keys go to.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use github::{PathPatterns, PatternError};

/// The default priority of event-driven work.
pub const DEFAULT_PRIORITY: i64 = 100;
/// The default extension keys are read from.
pub const DEFAULT_EXTENSION_KEY: &str = "pullrequesturl";

/// A route, a filter or a routes file that cannot be used; the message names the culprit.
#[derive(Debug, thiserror::Error)]
pub enum RouteError {
    /// A filter flag is not `KEY=VALUE`.
    #[error("filter {0:?} is not KEY=VALUE")]
    FilterPair(String),
    /// An attribute name that CloudEvents does not allow.
    #[error("{0:?} is not a CloudEvents attribute name (lower-case letters and digits)")]
    AttributeName(String),
    /// A path route's repository is not `OWNER/REPO`.
    #[error("repository {0:?} is not OWNER/REPO")]
    Repository(String),
    /// A path pattern that cannot be used.
    #[error(transparent)]
    Pattern(#[from] PatternError),
    /// A route of a file gives both key rules.
    #[error("give extension_key, or repository and path_patterns, not both")]
    BothRules,
    /// A route of a file gives half of a path rule.
    #[error("a path route needs both repository and path_patterns")]
    HalfPathRule,
    /// The text is not TOML of `[[route]]` tables.
    #[error(transparent)]
    Toml(#[from] toml::de::Error),
    /// The file declares no route.
    #[error("it declares no [[route]]")]
    NoRoutes,
    /// One route of a file is invalid.
    #[error("route {name:?}")]
    InRoute {
        /// The route's name.
        name: String,
        /// What is wrong with it.
        #[source]
        source: Box<RouteError>,
    },
    /// The routes file could not be read.
    #[error("failed to read the routes file {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The routes file is invalid.
    #[error("invalid routes file {}", path.display())]
    InFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        #[source]
        source: Box<RouteError>,
    },
}

/// One route.
#[derive(Clone, Debug)]
pub struct Route {
    /// Its name, in metrics and logs.
    pub name: String,
    /// Any one of these must match (none: every event matches).
    pub filters: Vec<Filter>,
    /// How keys are made.
    pub key: KeyRule,
    /// The keys' priority.
    pub priority: i64,
    /// The workqueue the keys go to; `None` for the gateway's default one.
    pub workqueue: Option<String>,
}

/// Attribute values that must all match exactly.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filter(pub BTreeMap<String, String>);

/// How a route turns an event into keys.
#[derive(Clone, Debug)]
pub enum KeyRule {
    /// The key is the value of this extension attribute; an event without it is skipped.
    Extension(String),
    /// Every file a push to the repository's default branch changed, matched against the
    /// patterns.
    Path {
        /// `owner/repo`.
        repository: String,
        /// The patterns.
        patterns: PathPatterns,
    },
}

impl Filter {
    /// Whether every attribute of the filter has its value in the event.
    pub fn matches(&self, attribute: impl Fn(&str) -> Option<String>) -> bool {
        self.0
            .iter()
            .all(|(name, value)| attribute(name).as_deref() == Some(value.as_str()))
    }

    /// Parses `KEY=VALUE` pairs into one filter.
    pub fn from_pairs<S: AsRef<str>>(pairs: &[S]) -> Result<Self, RouteError> {
        let mut map = BTreeMap::new();
        for pair in pairs {
            let pair = pair.as_ref();
            let Some((name, value)) = pair.split_once('=') else {
                return Err(RouteError::FilterPair(pair.to_owned()));
            };
            check_attribute_name(name)?;
            map.insert(name.to_owned(), value.to_owned());
        }
        Ok(Self(map))
    }
}

impl Route {
    /// A route named `name` keying every event on its `extension` attribute, at the default
    /// priority, into the gateway's default workqueue.
    pub fn extension(name: &str, extension: &str) -> Self {
        Self {
            name: name.to_owned(),
            filters: Vec::new(),
            key: KeyRule::Extension(extension.to_owned()),
            priority: DEFAULT_PRIORITY,
            workqueue: None,
        }
    }

    /// Whether the event passes the route's filters.
    pub fn accepts(&self, attribute: impl Fn(&str) -> Option<String> + Copy) -> bool {
        self.filters.is_empty() || self.filters.iter().any(|f| f.matches(attribute))
    }
}

/// Attribute names are lower-case letters and digits (CloudEvents).
fn check_attribute_name(name: &str) -> Result<(), RouteError> {
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    {
        return Err(RouteError::AttributeName(name.to_owned()));
    }
    Ok(())
}

/// A routes file (TOML): `[[route]]` tables.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RoutesFile {
    #[serde(default)]
    route: Vec<RouteSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RouteSpec {
    name: Option<String>,
    workqueue: Option<String>,
    priority: Option<i64>,
    extension_key: Option<String>,
    repository: Option<String>,
    path_patterns: Option<Vec<String>>,
    #[serde(default)]
    filters: Vec<BTreeMap<String, String>>,
}

/// Reads a routes file.
///
/// ```toml
/// [[route]]
/// name = "pr-checks"                       # optional
/// workqueue = "https://wq.example.run.app" # optional: the gateway's --workqueue
/// priority = 100                           # optional
/// extension_key = "pullrequesturl"         # the default rule
/// filters = [{ type = "dev.chainguard.github.pull_request" },
///            { type = "dev.chainguard.github.check_run", action = "completed" }]
///
/// [[route]]
/// repository = "owner/repo"
/// path_patterns = ['^config/(.+)\.yaml$']
/// ```
pub fn load_routes(path: &Path) -> Result<Vec<Route>, RouteError> {
    let text = std::fs::read_to_string(path).map_err(|source| RouteError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse_routes(&text).map_err(|e| RouteError::InFile {
        path: path.to_owned(),
        source: Box::new(e),
    })
}

/// Parses the text of a routes file.
pub fn parse_routes(text: &str) -> Result<Vec<Route>, RouteError> {
    let file: RoutesFile = toml::from_str(text)?;
    if file.route.is_empty() {
        return Err(RouteError::NoRoutes);
    }
    file.route
        .into_iter()
        .enumerate()
        .map(|(i, spec)| {
            let name = spec
                .name
                .clone()
                .unwrap_or_else(|| format!("route-{}", i + 1));
            match build(spec) {
                Ok(route) => Ok(Route { name, ..route }),
                Err(e) => Err(RouteError::InRoute {
                    name,
                    source: Box::new(e),
                }),
            }
        })
        .collect()
}

fn build(spec: RouteSpec) -> Result<Route, RouteError> {
    let filters = spec
        .filters
        .into_iter()
        .map(|map| {
            map.keys().try_for_each(|k| check_attribute_name(k))?;
            Ok(Filter(map))
        })
        .collect::<Result<Vec<_>, RouteError>>()?;
    let key = match (spec.extension_key, spec.repository, spec.path_patterns) {
        (Some(_), Some(_), _) | (Some(_), _, Some(_)) => return Err(RouteError::BothRules),
        (None, Some(repository), Some(patterns)) => path_rule(&repository, &patterns)?,
        (None, Some(_), None) | (None, None, Some(_)) => return Err(RouteError::HalfPathRule),
        (extension, None, None) => {
            let name = extension.unwrap_or_else(|| DEFAULT_EXTENSION_KEY.to_owned());
            check_attribute_name(&name)?;
            KeyRule::Extension(name)
        }
    };
    Ok(Route {
        name: String::new(),
        filters,
        key,
        priority: spec.priority.unwrap_or(DEFAULT_PRIORITY),
        workqueue: spec.workqueue,
    })
}

/// A path rule for `repository` (`owner/repo`).
pub fn path_rule<S: AsRef<str>>(repository: &str, patterns: &[S]) -> Result<KeyRule, RouteError> {
    github::key::split_full_name(repository)
        .map_err(|_| RouteError::Repository(repository.to_owned()))?;
    Ok(KeyRule::Path {
        repository: repository.to_owned(),
        patterns: PathPatterns::new(patterns)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_routes_file_should_declare_extension_and_path_routes() {
        let routes = parse_routes(
            r#"
            [[route]]
            name = "prs"
            workqueue = "http://127.0.0.1:1"
            filters = [{ type = "a" }, { type = "b", action = "opened" }]

            [[route]]
            priority = 0
            repository = "o/r"
            path_patterns = ['^config/(.+)\.yaml$']
            "#,
        )
        .unwrap();
        assert_eq!(routes.len(), 2);
        assert_eq!(routes[0].name, "prs");
        assert!(matches!(&routes[0].key, KeyRule::Extension(k) if k == "pullrequesturl"));
        assert_eq!(routes[0].priority, 100);
        let attr = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, v)| (*v).to_owned())
            }
        };
        assert!(routes[0].accepts(attr(&[("type", "a")])));
        assert!(routes[0].accepts(attr(&[("type", "b"), ("action", "opened")])));
        assert!(!routes[0].accepts(attr(&[("type", "b"), ("action", "closed")])));
        assert!(matches!(&routes[1].key, KeyRule::Path { repository, .. } if repository == "o/r"));
        assert_eq!(routes[1].name, "route-2");
    }

    #[test]
    fn bad_routes_should_be_refused_with_the_reason() {
        for (text, expect) in [
            (
                "[[route]]\nrepository = 'o/r'\npath_patterns = ['no-group']",
                "no-group",
            ),
            (
                "[[route]]\nextension_key = 'x'\nrepository = 'o/r'",
                "not both",
            ),
            ("[[route]]\nrepository = 'o/r'", "needs both"),
            ("[[route]]\nfilters = [{ Type = 'x' }]", "attribute name"),
            ("[[route]]\nunknown = 1", "unknown"),
            ("", "no [[route]]"),
        ] {
            let err = workqueue::error_chain(&parse_routes(text).unwrap_err());
            assert!(err.contains(expect), "{text:?}: {err}");
        }
        assert!(Filter::from_pairs(&["type"]).is_err());
        assert!(path_rule("just-a-name", &["(x)"]).is_err());
    }

    #[test]
    fn a_bad_route_in_a_file_should_be_named_with_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("routes.toml");
        std::fs::write(&path, "[[route]]\nname = 'paths'\nrepository = 'o/r'").unwrap();
        let err = workqueue::error_chain(&load_routes(&path).unwrap_err());
        assert!(
            err.starts_with(&format!("invalid routes file {}", path.display()))
                && err.contains("route \"paths\": a path route needs both"),
            "{err}"
        );
        let missing =
            workqueue::error_chain(&load_routes(&dir.path().join("none.toml")).unwrap_err());
        assert!(
            missing.contains("failed to read the routes file"),
            "{missing}"
        );
    }
}
