//! The action catalog: which actions exist, how the approver sees them, and which transaction
//! members each one needs.

use serde::Deserialize;
use std::collections::BTreeMap;

/// The built-in sample catalog.
pub const SAMPLE: &str = include_str!("../policies/catalog.toml");

/// One catalog entry.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Action {
    /// Catalog id, e.g. `payout.bank_details.change`.
    pub id: String,
    /// Short human title.
    pub title: String,
    /// Display template for the approver.
    pub display: String,
    /// Transaction members the request must carry: `amount`, `scope`, `change`.
    #[serde(default)]
    pub requires: Vec<Member>,
}

/// A transaction member an action can require.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Member {
    /// An amount with currency.
    Amount,
    /// A scope.
    Scope,
    /// Before/after changes.
    Change,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    action: Vec<Action>,
}

/// Why a catalog was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CatalogError {
    /// Not TOML of the catalog shape.
    #[error("invalid catalog: {0}")]
    Parse(String),
    /// The same id twice.
    #[error("action {0:?} appears twice in the catalog")]
    Duplicate(String),
    /// No actions at all.
    #[error("the catalog lists no actions")]
    Empty,
    /// A title or sentence an approver would read wrongly: control or invisible characters,
    /// an unknown `{placeholder}`, empty or over 256 characters.
    #[error("action {action:?}: {field} {problem}")]
    Text {
        action: String,
        field: &'static str,
        problem: &'static str,
    },
}

/// What a catalog sentence may fill in.
const PLACEHOLDERS: [&str; 4] = ["object", "amount", "scope", "requester"];

/// Checks one title or sentence an approver will read.
fn check_text(action: &str, field: &'static str, text: &str) -> Result<(), CatalogError> {
    let refuse = |problem| CatalogError::Text {
        action: action.to_owned(),
        field,
        problem,
    };
    if text.trim().is_empty() || text.chars().count() > 256 {
        return Err(refuse("must be 1-256 characters"));
    }
    let hidden = |c: char| c.is_control() || countersign_core::invisible::is_invisible(c);
    if text.chars().any(hidden) {
        return Err(refuse("holds control or invisible characters"));
    }
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let close = after
            .find('}')
            .ok_or_else(|| refuse("has a `{` without `}`"))?;
        if !PLACEHOLDERS.contains(&&after[..close]) {
            return Err(refuse(
                "names a placeholder other than {object}, {amount}, {scope}, {requester}",
            ));
        }
        rest = &after[close + 1..];
    }
    Ok(())
}

/// The loaded catalog, by id.
#[derive(Clone, Debug)]
pub struct Catalog {
    actions: BTreeMap<String, Action>,
}

impl Catalog {
    /// Parses a catalog file.
    pub fn parse(text: &str) -> Result<Self, CatalogError> {
        let file: File = toml::from_str(text).map_err(|e| CatalogError::Parse(e.to_string()))?;
        if file.action.is_empty() {
            return Err(CatalogError::Empty);
        }
        let mut actions = BTreeMap::new();
        for action in file.action {
            let id = action.id.clone();
            check_text(&id, "title", &action.title)?;
            check_text(&id, "display", &action.display)?;
            if action.title.contains('{') {
                return Err(CatalogError::Text {
                    action: id,
                    field: "title",
                    problem: "may not hold placeholders",
                });
            }
            if actions.insert(id.clone(), action).is_some() {
                return Err(CatalogError::Duplicate(id));
            }
        }
        Ok(Catalog { actions })
    }

    /// The action with this id.
    pub fn get(&self, id: &str) -> Option<&Action> {
        self.actions.get(id)
    }

    /// All actions, by id.
    pub fn actions(&self) -> impl Iterator<Item = &Action> {
        self.actions.values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_catalog_loads() {
        let catalog = Catalog::parse(SAMPLE).unwrap();
        assert_eq!(
            catalog.get("payout.send").unwrap().requires,
            vec![Member::Amount]
        );
        assert_eq!(catalog.actions().count(), 5);
    }

    #[test]
    fn rejects_duplicates_unknown_keys_and_empty_catalogs() {
        let one = "[[action]]\nid = \"a\"\ntitle = \"A\"\ndisplay = \"A\"\n";
        assert!(matches!(
            Catalog::parse(&format!("{one}{one}")),
            Err(CatalogError::Duplicate(_))
        ));
        assert!(matches!(
            Catalog::parse(&format!("{one}colour = \"red\"\n")),
            Err(CatalogError::Parse(_))
        ));
        assert!(matches!(
            Catalog::parse("action = []"),
            Err(CatalogError::Empty)
        ));
    }

    #[test]
    fn titles_and_sentences_that_could_read_wrongly_are_refused() {
        // TOML basic strings, every character outside printable ASCII as \uXXXX.
        let toml = |text: &str| {
            let mut out = String::from("\"");
            for c in text.chars() {
                match c {
                    ' '..='~' if c != '"' && c != '\\' => out.push(c),
                    _ => out.push_str(&format!("\\u{:04X}", u32::from(c))),
                }
            }
            out.push('"');
            out
        };
        let with = |title: &str, display: &str| {
            Catalog::parse(&format!(
                "[[action]]\nid = \"a\"\ntitle = {}\ndisplay = {}\n",
                toml(title),
                toml(display)
            ))
        };
        assert!(with("Send a payout", "Pay {amount} to {object}").is_ok());
        for (title, display) in [
            ("Send\u{1b}[8m a payout", "Pay {amount}"),
            ("Send a payout", "Pay {amount}\u{200B} to {object}"),
            ("Send a payout", "Pay {amount} to {iban}"),
            ("Send a payout", "Pay {amount"),
            ("Send {object}", "Pay {amount}"),
            ("", "Pay {amount}"),
        ] {
            assert!(
                matches!(with(title, display), Err(CatalogError::Text { .. })),
                "{title:?} / {display:?}"
            );
        }
    }
}
