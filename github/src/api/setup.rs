//! Setting up a GitHub client from the environment: what can be wrong with it, and a GitHub
//! App's credentials as every client here reads them.

/// The environment's address or credentials cannot be used; the message says which variable
/// and why.
#[derive(Debug, thiserror::Error)]
#[error("{what}")]
pub struct SetupError {
    what: String,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl SetupError {
    /// A setup failure without an underlying error.
    pub fn new(what: impl Into<String>) -> Self {
        Self {
            what: what.into(),
            source: None,
        }
    }

    /// A setup failure caused by an error, for `map_err`.
    pub fn caused<E: Into<Box<dyn std::error::Error + Send + Sync>>>(
        what: impl Into<String>,
    ) -> impl FnOnce(E) -> Self {
        let what = what.into();
        move |source| Self {
            what,
            source: Some(source.into()),
        }
    }
}

/// What octocrab is told when the App's key does not load.
pub const NOT_AN_RSA_KEY: &str = "GITHUB_APP_PRIVATE_KEY is not an RSA private key in PEM";

/// A GitHub App's id and RSA private key (PEM).
#[derive(Clone)]
pub struct AppCredentials {
    /// `GITHUB_APP_ID`.
    pub app_id: u64,
    /// `GITHUB_APP_PRIVATE_KEY`, or the contents of `GITHUB_APP_PRIVATE_KEY_FILE`.
    pub pem: String,
}

/// The key stays out of debug output.
impl std::fmt::Debug for AppCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppCredentials")
            .field("app_id", &self.app_id)
            .field("pem", &"<redacted>")
            .finish()
    }
}

impl AppCredentials {
    /// The App the variables name: none without `GITHUB_APP_ID`; with it, the key from
    /// `GITHUB_APP_PRIVATE_KEY`, else from the file `GITHUB_APP_PRIVATE_KEY_FILE` names.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Option<Self>, SetupError> {
        let Some(app_id) = var("GITHUB_APP_ID") else {
            return Ok(None);
        };
        let app_id: u64 = app_id
            .parse()
            .map_err(SetupError::caused("GITHUB_APP_ID is not a number"))?;
        let pem = match (
            var("GITHUB_APP_PRIVATE_KEY"),
            var("GITHUB_APP_PRIVATE_KEY_FILE"),
        ) {
            (Some(pem), _) => pem,
            (None, Some(path)) => std::fs::read_to_string(&path).map_err(SetupError::caused(
                format!("failed to read GITHUB_APP_PRIVATE_KEY_FILE {path}"),
            ))?,
            (None, None) => {
                return Err(SetupError::new(
                    "GITHUB_APP_ID is set but neither GITHUB_APP_PRIVATE_KEY nor GITHUB_APP_PRIVATE_KEY_FILE is",
                ));
            }
        };
        Ok(Some(Self { app_id, pem }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            pairs
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn app_credentials_should_come_from_the_variables_or_say_what_is_missing() {
        assert!(AppCredentials::from_vars(vars(&[])).unwrap().is_none());
        let app = AppCredentials::from_vars(vars(&[
            ("GITHUB_APP_ID", "7"),
            ("GITHUB_APP_PRIVATE_KEY", "-----BEGIN RSA PRIVATE KEY-----"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(app.app_id, 7);
        assert!(!format!("{app:?}").contains("BEGIN"), "the key is redacted");
        let missing = AppCredentials::from_vars(vars(&[("GITHUB_APP_ID", "7")])).unwrap_err();
        assert!(missing.to_string().contains("GITHUB_APP_PRIVATE_KEY_FILE"));
        let bad = AppCredentials::from_vars(vars(&[("GITHUB_APP_ID", "x")])).unwrap_err();
        assert_eq!(bad.to_string(), "GITHUB_APP_ID is not a number");
        let unread = AppCredentials::from_vars(vars(&[
            ("GITHUB_APP_ID", "7"),
            ("GITHUB_APP_PRIVATE_KEY_FILE", "/nonexistent/key.pem"),
        ]))
        .unwrap_err();
        assert!(unread.to_string().contains("/nonexistent/key.pem"));
    }
}
