//! Base64url without padding (RFC 4648 §5), the only binary-to-text encoding in the protocol.
//!
//! Decoding is strict: padding, the standard alphabet, whitespace and non-canonical trailing
//! bits are all rejected, so that every byte string has exactly one textual form.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

/// The input was not canonical unpadded base64url.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not canonical unpadded base64url")]
pub struct Base64Error;

/// Encodes bytes as unpadded base64url.
pub fn encode(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Decodes unpadded base64url, rejecting every non-canonical form.
pub fn decode(text: &str) -> Result<Vec<u8>, Base64Error> {
    URL_SAFE_NO_PAD.decode(text).map_err(|_| Base64Error)
}

/// Decodes unpadded base64url into exactly `N` bytes.
pub fn decode_array<const N: usize>(text: &str) -> Result<[u8; N], Base64Error> {
    decode(text)?.try_into().map_err(|_| Base64Error)
}

/// Padded standard base64 (RFC 4648 §4): not part of the protocol, but how X.509 certificates
/// travel in JOSE headers (`x5c`, RFC 7515 §4.1.6) and in FIDO metadata statements.
pub mod standard {
    use super::Base64Error;
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine;

    /// Encodes bytes as padded standard base64.
    pub fn encode(bytes: impl AsRef<[u8]>) -> String {
        STANDARD.encode(bytes)
    }

    /// Decodes padded standard base64.
    pub fn decode(text: &str) -> Result<Vec<u8>, Base64Error> {
        STANDARD.decode(text).map_err(|_| Base64Error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_standard_alphabet_is_padded_and_refuses_the_url_alphabet() {
        assert_eq!(standard::encode(b"\xfb\xff"), "+/8=");
        assert_eq!(standard::decode("+/8=").unwrap(), b"\xfb\xff");
        assert_eq!(standard::decode("-_8="), Err(Base64Error));
        assert_eq!(standard::decode("+/8"), Err(Base64Error));
    }

    #[test]
    fn round_trips_and_rejects_non_canonical_forms() {
        assert_eq!(encode(b"\xfb\xff"), "-_8");
        assert_eq!(decode("-_8").unwrap(), b"\xfb\xff");
        assert_eq!(decode("+/8"), Err(Base64Error), "standard alphabet");
        assert_eq!(decode("-_8="), Err(Base64Error), "padding");
        assert_eq!(decode("-_9"), Err(Base64Error), "non-zero trailing bits");
        assert_eq!(decode("-_ 8"), Err(Base64Error), "whitespace");
        assert_eq!(decode_array::<2>("-_8").unwrap(), [0xfb, 0xff]);
        assert_eq!(decode_array::<3>("-_8"), Err(Base64Error));
    }
}
