//! Money in signed data: a canonical decimal string and an ISO 4217 currency code.
//!
//! Canonical means one spelling per value: digits only, no sign, no leading zeros, no trailing
//! zeros after the point, no exponent, and no more fraction digits than the currency has minor
//! units. `"1250.5" EUR` is canonical; `"1250.50"`, `"01250.5"` and `"1.2505e3"` are not.

use serde::{Deserialize, Serialize};

/// Longest accepted decimal string.
pub const MAX_DECIMAL_LEN: usize = 40;

/// An amount of money.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Amount {
    /// Canonical decimal string.
    pub value: String,
    /// ISO 4217 alphabetic code.
    pub currency: String,
}

/// A defect in an amount.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
#[non_exhaustive]
pub enum AmountError {
    /// The value is not a canonical decimal.
    #[error("amount {0:?} is not a canonical decimal (digits, optional point, no leading or trailing zeros, no sign or exponent)")]
    NonCanonicalDecimal(String),
    /// More fraction digits than the currency's minor unit allows.
    #[error("amount {value:?} has more than {max} fraction digits for {currency}")]
    TooPrecise {
        value: String,
        currency: String,
        max: u16,
    },
    /// Not an active ISO 4217 code with a minor unit.
    #[error("{0:?} is not an ISO 4217 currency code")]
    UnknownCurrency(String),
}

impl AmountError {
    /// Stable snake_case code of the deepest cause, used in test vectors and API errors.
    pub fn code(&self) -> &'static str {
        self.into()
    }
}

impl Amount {
    /// Builds and validates an amount.
    pub fn new(value: impl Into<String>, currency: impl Into<String>) -> Result<Self, AmountError> {
        let amount = Amount {
            value: value.into(),
            currency: currency.into(),
        };
        amount.validate()?;
        Ok(amount)
    }

    /// Digits after the point that this currency allows.
    pub fn minor_units(&self) -> Result<u16, AmountError> {
        currency_minor_units(&self.currency)
    }

    /// Checks the decimal spelling and the currency.
    pub fn validate(&self) -> Result<(), AmountError> {
        let fraction_digits = canonical_fraction_digits(&self.value)
            .ok_or_else(|| AmountError::NonCanonicalDecimal(self.value.clone()))?;
        let max = self.minor_units()?;
        if fraction_digits > usize::from(max) {
            return Err(AmountError::TooPrecise {
                value: self.value.clone(),
                currency: self.currency.clone(),
                max,
            });
        }
        Ok(())
    }
}

/// Minor units of an ISO 4217 code; only codes with a defined minor unit are money here.
pub fn currency_minor_units(code: &str) -> Result<u16, AmountError> {
    let unknown = || AmountError::UnknownCurrency(code.to_owned());
    if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(unknown());
    }
    iso_currency::Currency::from_code(code)
        .and_then(|c| c.exponent())
        .ok_or_else(unknown)
}

/// Number of fraction digits if `text` is a canonical non-negative decimal.
fn canonical_fraction_digits(text: &str) -> Option<usize> {
    if text.is_empty() || text.len() > MAX_DECIMAL_LEN {
        return None;
    }
    let (int, frac) = match text.split_once('.') {
        Some((int, frac)) => (int, Some(frac)),
        None => (text, None),
    };
    let int_ok = !int.is_empty()
        && int.bytes().all(|b| b.is_ascii_digit())
        && (int == "0" || !int.starts_with('0'));
    if !int_ok {
        return None;
    }
    match frac {
        None => Some(0),
        Some(frac) => {
            let ok = !frac.is_empty()
                && frac.bytes().all(|b| b.is_ascii_digit())
                && !frac.ends_with('0');
            ok.then_some(frac.len())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_canonical_decimals() {
        for (value, currency) in [
            ("0", "EUR"),
            ("1250.5", "EUR"),
            ("0.01", "USD"),
            ("1000", "JPY"),
            ("0.125", "BHD"),
        ] {
            Amount::new(value, currency).unwrap();
        }
    }

    #[test]
    fn rejects_each_non_canonical_spelling() {
        for value in [
            "", "01", "1.50", "1.", ".5", "+1", "-1", "1e3", "1,5", " 1", "1.2.3", "١",
        ] {
            assert_eq!(
                Amount::new(value, "EUR"),
                Err(AmountError::NonCanonicalDecimal(value.into())),
                "{value:?}"
            );
        }
        let long = "1".repeat(MAX_DECIMAL_LEN + 1);
        assert!(matches!(
            Amount::new(long, "EUR"),
            Err(AmountError::NonCanonicalDecimal(_))
        ));
    }

    #[test]
    fn rejects_excess_precision_and_unknown_currencies() {
        assert_eq!(
            Amount::new("1.5", "JPY"),
            Err(AmountError::TooPrecise {
                value: "1.5".into(),
                currency: "JPY".into(),
                max: 0
            })
        );
        for code in ["eur", "EURO", "XXX", "ABC", ""] {
            assert_eq!(
                Amount::new("1", code),
                Err(AmountError::UnknownCurrency(code.into())),
                "{code}"
            );
        }
    }
}
