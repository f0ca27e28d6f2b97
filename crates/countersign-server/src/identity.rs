//! Who a request speaks for, in one canonical form, and which requesters an API key may speak
//! for.
//!
//! Requester and approver ids are printable ASCII without spaces (checked with the
//! transaction). Their canonical form is lowercase: `Alice@example.com` and
//! `alice@example.com` are one person, so ids that are not canonical are refused where they
//! enter (request creation, `approver add`) instead of being compared loosely later, and the
//! comparisons that matter (the requester as their own approver) also ignore ASCII case for
//! rows written before this rule.

/// Whether `id` is in canonical form (no ASCII uppercase letter).
pub fn is_canonical(id: &str) -> bool {
    !id.bytes().any(|b| b.is_ascii_uppercase())
}

/// Whether two ids name the same identity.
pub fn same(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
}

/// Why a requester pattern was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PatternError {
    /// Empty, too long, not printable ASCII, or not lowercase.
    #[error("requester pattern {0:?} must be 1-256 lowercase printable ASCII characters")]
    Characters(String),
    /// `*` anywhere but alone, first or last.
    #[error("requester pattern {0:?} may hold one `*`, only at its start or end")]
    Wildcard(String),
}

/// Which requesters an API key may ask step-ups for: an exact id (`alice@example.com`), ids
/// ending in a suffix (`*@example.com`), ids starting with a prefix (`agent-*`), or any (`*`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequesterPattern(String);

impl RequesterPattern {
    /// Parses and checks a pattern.
    pub fn parse(text: &str) -> Result<Self, PatternError> {
        let printable = !text.is_empty()
            && text.len() <= 256
            && text.bytes().all(|b| b.is_ascii_graphic())
            && is_canonical(text);
        if !printable {
            return Err(PatternError::Characters(text.to_owned()));
        }
        let stars = text.matches('*').count();
        let placed = text == "*" || text.starts_with('*') || text.ends_with('*');
        if stars > 1 || (stars == 1 && !placed) {
            return Err(PatternError::Wildcard(text.to_owned()));
        }
        Ok(RequesterPattern(text.to_owned()))
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether the pattern covers the canonical requester id `id`.
    pub fn matches(&self, id: &str) -> bool {
        let p = self.0.as_str();
        if p == "*" {
            return true;
        }
        if let Some(suffix) = p.strip_prefix('*') {
            return id.len() > suffix.len() && id.ends_with(suffix);
        }
        if let Some(prefix) = p.strip_suffix('*') {
            return id.len() > prefix.len() && id.starts_with(prefix);
        }
        id == p
    }
}

/// Whether any of `patterns` covers `id`. No pattern covers nothing.
pub fn allowed(patterns: &[RequesterPattern], id: &str) -> bool {
    patterns.iter().any(|p| p.matches(id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_differing_in_case_are_one_identity_and_only_lowercase_is_canonical() {
        assert!(same("Alice@Example.com", "alice@example.com"));
        assert!(!same("alice@example.com", "alice@example.org"));
        assert!(is_canonical("alice@example.com"));
        assert!(!is_canonical("Alice@example.com"));
    }

    #[test]
    fn patterns_cover_exact_ids_suffixes_prefixes_or_everything() {
        let p = |t: &str| RequesterPattern::parse(t).unwrap();
        assert!(p("*@example.com").matches("alice@example.com"));
        assert!(!p("*@example.com").matches("alice@example.com.evil.org"));
        assert!(!p("*@example.com").matches("@example.com"));
        assert!(!p("*@example.com").matches("alice@notexample.com"));
        assert!(p("agent-*").matches("agent-7"));
        assert!(!p("agent-*").matches("agent-"));
        assert!(!p("agent-*").matches("human-agent-7"));
        assert!(p("alice@example.com").matches("alice@example.com"));
        assert!(!p("alice@example.com").matches("alice@example.com2"));
        assert!(p("*").matches("anyone"));
        assert!(!allowed(&[], "anyone"));
    }

    #[test]
    fn malformed_patterns_are_refused() {
        for bad in [
            "",
            "a*b",
            "**",
            "*a*",
            "Alice@example.com",
            "a b",
            "*@EXAMPLE.com",
        ] {
            assert!(RequesterPattern::parse(bad).is_err(), "{bad:?}");
        }
    }
}
