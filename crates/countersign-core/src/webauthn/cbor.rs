//! Reading one CBOR item from the front of a byte slice, for formats that concatenate CBOR
//! with other bytes (authenticatorData) or must reject trailing bytes (attestation objects).

use ciborium::Value;

/// The bytes did not start with one well-formed CBOR item.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed CBOR: {0}")]
pub struct CborError(pub String);

/// Decodes the first CBOR item of `bytes`; returns it and the bytes that follow it.
pub fn read_item(bytes: &[u8]) -> Result<(Value, &[u8]), CborError> {
    let mut rest = bytes;
    let value: Value =
        ciborium::de::from_reader(&mut rest).map_err(|e| CborError(e.to_string()))?;
    Ok((value, rest))
}

/// Decodes a byte slice that must hold exactly one CBOR item.
pub fn read_exactly_one(bytes: &[u8]) -> Result<Value, CborError> {
    let (value, rest) = read_item(bytes)?;
    if !rest.is_empty() {
        return Err(CborError(format!("{} trailing bytes", rest.len())));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stops_exactly_after_the_first_item() {
        // 0x82 0x01 0x02 = [1, 2], followed by two unrelated bytes.
        let (value, rest) = read_item(&[0x82, 0x01, 0x02, 0xff, 0x00]).unwrap();
        assert_eq!(value, Value::Array(vec![Value::from(1), Value::from(2)]));
        assert_eq!(rest, &[0xff, 0x00]);
        assert!(read_exactly_one(&[0x01, 0x02]).is_err());
        assert!(read_item(&[0x5b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]).is_err());
    }
}
