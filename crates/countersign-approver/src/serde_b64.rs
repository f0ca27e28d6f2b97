//! Byte fields as base64url strings in the files this crate writes.

pub(crate) mod b64_bytes {
    use countersign_core::b64;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&b64::encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        b64::decode(&text).map_err(serde::de::Error::custom)
    }
}

/// Only the demo key's file has optional byte fields.
#[cfg(feature = "demo-key")]
pub(crate) mod b64_opt {
    use countersign_core::b64;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        match bytes {
            Some(b) => s.serialize_some(&b64::encode(b)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|t| b64::decode(&t).map_err(serde::de::Error::custom))
            .transpose()
    }
}
