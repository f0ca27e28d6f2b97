//! Times in signed data: RFC 3339 UTC with whole seconds, `YYYY-MM-DDTHH:MM:SSZ`.
//!
//! Exactly one textual form is accepted for each instant, so a time never changes a digest by
//! being re-formatted.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Seconds since the Unix epoch, written as canonical RFC 3339 UTC.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

/// The text was not a canonical RFC 3339 UTC time with whole seconds.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a canonical RFC 3339 UTC time (YYYY-MM-DDTHH:MM:SSZ, years 2000-9999): {0:?}")]
pub struct TimestampError(pub String);

/// 2000-01-01T00:00:00Z: nothing in the protocol predates it.
const MIN_UNIX: i64 = 946_684_800;
/// 9999-12-31T23:59:59Z.
const MAX_UNIX: i64 = 253_402_300_799;

impl Timestamp {
    /// From Unix seconds; `None` outside years 2000–9999.
    pub fn from_unix(seconds: i64) -> Option<Self> {
        (MIN_UNIX..=MAX_UNIX)
            .contains(&seconds)
            .then_some(Timestamp(seconds))
    }

    /// Unix seconds.
    pub fn unix(self) -> i64 {
        self.0
    }

    /// This instant moved by `seconds`, if still in range.
    pub fn plus_seconds(self, seconds: i64) -> Option<Self> {
        self.0.checked_add(seconds).and_then(Self::from_unix)
    }

    /// Parses the canonical form, and nothing else.
    pub fn parse(text: &str) -> Result<Self, TimestampError> {
        let fail = || TimestampError(text.to_owned());
        let parsed = OffsetDateTime::parse(text, &Rfc3339).map_err(|_| fail())?;
        let seconds = parsed.unix_timestamp();
        let candidate = Timestamp::from_unix(seconds).ok_or_else(fail)?;
        if candidate.to_string() != text {
            return Err(fail());
        }
        Ok(candidate)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Ok(dt) = OffsetDateTime::from_unix_timestamp(self.0) else {
            return Err(fmt::Error);
        };
        let (y, mo, d) = (dt.year(), u8::from(dt.month()), dt.day());
        let (h, mi, s) = (dt.hour(), dt.minute(), dt.second());
        write!(f, "{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Timestamp::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_only_the_canonical_form() {
        let t = Timestamp::parse("2026-11-28T04:00:00Z").unwrap();
        assert_eq!(t.unix(), 1_795_838_400);
        assert_eq!(t.to_string(), "2026-11-28T04:00:00Z");
        for bad in [
            "2026-11-28T04:00:00+00:00",
            "2026-11-28T05:00:00+01:00",
            "2026-11-28T04:00:00.000Z",
            "2026-11-28t04:00:00z",
            "2026-11-28 04:00:00Z",
            "1999-12-31T23:59:59Z",
            "",
        ] {
            assert!(Timestamp::parse(bad).is_err(), "{bad}");
        }
    }
}
