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
}
