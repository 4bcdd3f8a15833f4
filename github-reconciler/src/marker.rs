//! The state a status manager keeps in a Check Run: JSON, base64-encoded inside an HTML
//! comment at the end of the run's output summary. GitHub renders the summary as Markdown,
//! so the comment is invisible to people; base64 keeps `-->` out of it.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Serialize;
use serde::de::DeserializeOwned;

const OPEN: &str = "<!-- reconcilers-status:v1:";
const CLOSE: &str = " -->";

/// `state` as a marker.
pub(crate) fn encode<T: Serialize>(state: &T) -> Result<String, serde_json::Error> {
    let json = serde_json::to_vec(state)?;
    Ok(format!("{OPEN}{}{CLOSE}", STANDARD.encode(json)))
}

/// The state in `summary`'s last marker; `None` when there is none, or it does not decode
/// (a run written by hand, or by another version): that reads as "nothing observed".
pub(crate) fn decode<T: DeserializeOwned>(summary: &str) -> Option<T> {
    let start = summary.rfind(OPEN)? + OPEN.len();
    let end = start + summary[start..].find(CLOSE)?;
    let json = STANDARD.decode(summary[start..end].trim()).ok()?;
    serde_json::from_slice(&json).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_marker_should_read_back_and_a_broken_one_read_as_nothing() {
        let marker = encode(&vec!["a", "-->"]).unwrap();
        assert!(!marker[OPEN.len()..marker.len() - CLOSE.len()].contains("--"));
        let summary = format!("# Title\n\nsome text\n\n{marker}");
        assert_eq!(decode::<Vec<String>>(&summary).unwrap(), ["a", "-->"]);
        assert_eq!(decode::<Vec<String>>("no marker at all"), None);
        assert_eq!(decode::<Vec<String>>(&format!("{OPEN}%%%{CLOSE}")), None);
        let not_json = format!("{OPEN}{}{CLOSE}", STANDARD.encode("{"));
        assert_eq!(decode::<Vec<String>>(&not_json), None);
        let unclosed = &marker[..marker.len() - 2];
        assert_eq!(decode::<Vec<String>>(unclosed), None);
        assert_eq!(decode::<u32>(&summary), None, "another state type");
    }
}
