//! The problem details document every API error is answered with.

use serde::{Deserialize, Serialize};

/// Where problem types live; a problem's `type` is this followed by its code.
pub const PROBLEM_TYPE_BASE: &str = "https://countersign.invalid/problems/";

/// An API error as an RFC 9457 problem details document, with Countersign's stable `code`
/// beside the standard members (a client matches on `code`; `detail` is for people).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProblemDocument {
    /// `PROBLEM_TYPE_BASE` + code.
    #[serde(rename = "type", default)]
    pub kind: String,
    /// The HTTP status's reason phrase.
    #[serde(default)]
    pub title: String,
    /// The HTTP status.
    #[serde(default)]
    pub status: u16,
    /// What went wrong this time, for people.
    pub detail: String,
    /// Stable snake_case code, e.g. `policy_forbids`, `already_redeemed`.
    pub code: String,
}

impl ProblemDocument {
    /// The document for `code` at `status`.
    pub fn new(status: u16, title: &str, code: &str, detail: &str) -> Self {
        ProblemDocument {
            kind: format!("{PROBLEM_TYPE_BASE}{code}"),
            title: title.to_owned(),
            status,
            detail: detail.to_owned(),
            code: code.to_owned(),
        }
    }

    /// Reads an error response's body; `None` when it is not a problem document (a proxy's
    /// page, say), which a client reports as an unexpected answer rather than guessing a code.
    pub fn from_json(body: &[u8]) -> Option<Self> {
        serde_json::from_slice(body).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_problem_reads_back_as_written_and_anything_else_is_not_one() {
        let doc = ProblemDocument::new(409, "Conflict", "already_redeemed", "redeemed at 12:00");
        let text = serde_json::to_string(&doc).unwrap();
        assert_eq!(
            text,
            r#"{"type":"https://countersign.invalid/problems/already_redeemed","title":"Conflict","status":409,"detail":"redeemed at 12:00","code":"already_redeemed"}"#
        );
        assert_eq!(ProblemDocument::from_json(text.as_bytes()), Some(doc));
        let minimal =
            ProblemDocument::from_json(br#"{"code":"x","detail":"y","extra":1}"#).unwrap();
        assert_eq!((minimal.code.as_str(), minimal.status), ("x", 0));
        for not_one in [
            &b"<html>Bad gateway</html>"[..],
            b"{}",
            br#"{"code":1,"detail":"y"}"#,
        ] {
            assert_eq!(ProblemDocument::from_json(not_one), None);
        }
    }
}
