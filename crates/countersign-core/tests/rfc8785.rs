//! RFC 8785 (JSON Canonicalization Scheme) published examples, run through the canonicalizer
//! the protocol uses. Countersign refuses floats in signed data, so the number table exercises
//! the underlying serializer directly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use countersign_core::canonical::{to_canonical_json, CanonicalError};

/// RFC 8785 Appendix B: IEEE 754 binary64 bit patterns and their canonical text.
const NUMBERS: &[(u64, &str)] = &[
    (0x0000000000000000, "0"),
    (0x8000000000000000, "0"),
    (0x0000000000000001, "5e-324"),
    (0x8000000000000001, "-5e-324"),
    (0x7fefffffffffffff, "1.7976931348623157e+308"),
    (0xffefffffffffffff, "-1.7976931348623157e+308"),
    (0x4340000000000000, "9007199254740992"),
    (0xc340000000000000, "-9007199254740992"),
    (0x4430000000000000, "295147905179352830000"),
    (0x44b52d02c7e14af5, "9.999999999999997e+22"),
    (0x44b52d02c7e14af6, "1e+23"),
    (0x44b52d02c7e14af7, "1.0000000000000001e+23"),
    (0x444b1ae4d6e2ef4e, "999999999999999700000"),
    (0x444b1ae4d6e2ef4f, "999999999999999900000"),
    (0x444b1ae4d6e2ef50, "1e+21"),
    (0x3eb0c6f7a0b5ed8c, "9.999999999999997e-7"),
    (0x3eb0c6f7a0b5ed8d, "0.000001"),
    (0x41b3de4355555553, "333333333.3333332"),
    (0x41b3de4355555554, "333333333.33333325"),
    (0x41b3de4355555555, "333333333.3333333"),
    (0x41b3de4355555556, "333333333.3333334"),
    (0x41b3de4355555557, "333333333.33333343"),
    (0xbecbf647612f3696, "-0.0000033333333333333333"),
    (0x43143ff3c1cb0959, "1424953923781206.2"),
];

#[test]
fn appendix_b_number_serialization() {
    for &(bits, expected) in NUMBERS {
        let value = f64::from_bits(bits);
        let text = serde_json_canonicalizer::to_string(&value).unwrap();
        assert_eq!(text, expected, "{bits:016x}");
    }
    // NaN and infinities have no JSON form.
    for bits in [0x7fffffffffffffffu64, 0x7ff0000000000000] {
        assert!(serde_json_canonicalizer::to_string(&f64::from_bits(bits)).is_err());
    }
}

#[test]
fn section_3_2_2_example() {
    // §3.2.2: the input with numbers, a string with escapes, and literals.
    let input = r#"{
      "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
      "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
      "literals": [null, true, false]
    }"#;
    let expected = "{\"literals\":[null,true,false],\"numbers\":[333333333.3333333,1e+30,4.5,0.002,1e-27],\"string\":\"€$\\u000f\\nA'B\\\"\\\\\\\\\\\"/\"}";
    assert_eq!(serde_json_canonicalizer::pipe(input).unwrap(), expected);
    // The same document is refused as signed data: it holds floats.
    let value: serde_json::Value = serde_json::from_str(input).unwrap();
    assert_eq!(
        to_canonical_json(&value),
        Err(CanonicalError::Float {
            path: "/numbers/0".into()
        })
    );
}

#[test]
fn section_3_2_3_property_sorting() {
    // §3.2.3: members sorted by UTF-16 code units, not by UTF-8 bytes or code points.
    let input = r#"{
      "\u20ac": "Euro Sign",
      "\r": "Carriage Return",
      "\ufb33": "Hebrew Letter Dalet With Dagesh",
      "1": "One",
      "\ud83d\ude00": "Emoji: Grinning Face",
      "\u0080": "Control",
      "\u00f6": "Latin Small Letter O With Diaeresis"
    }"#;
    let value: serde_json::Value = serde_json::from_str(input).unwrap();
    let canonical = String::from_utf8(to_canonical_json(&value).unwrap()).unwrap();
    let order = [
        "Carriage Return",
        "One",
        "Control",
        "Latin Small Letter O With Diaeresis",
        "Euro Sign",
        "Emoji: Grinning Face",
        "Hebrew Letter Dalet With Dagesh",
    ];
    let positions: Vec<usize> = order.iter().map(|v| canonical.find(v).unwrap()).collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{canonical}");
    assert!(
        canonical.starts_with("{\"\\r\":\"Carriage Return\",\"1\":\"One\",\"\u{80}\":\"Control\"")
    );
}
