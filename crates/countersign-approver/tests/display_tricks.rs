//! The corpus of display tricks in `tests/vectors/display/`: every trick gives the expected
//! warning naming its code points, and plain text in any one script gives none.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use countersign_approver::text_safety::{check, WarningKind};

fn kind(name: &str) -> WarningKind {
    match name {
        "invisible" => WarningKind::Invisible,
        "control" => WarningKind::Control,
        "mixed_scripts" => WarningKind::MixedScripts,
        "looks_like_ascii" => WarningKind::LooksLikeAscii,
        other => panic!("unknown kind {other}"),
    }
}

#[test]
fn every_trick_in_the_corpus_is_named_and_plain_text_passes() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/vectors/display/tricks.json"
    );
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let cases = doc["cases"].as_array().unwrap();
    assert!(cases.len() >= 15);
    for case in cases {
        let (name, field, text) = (
            case["name"].as_str().unwrap(),
            case["field"].as_str().unwrap(),
            case["text"].as_str().unwrap(),
        );
        let warnings = check(field, text);
        let expected = kind(case["kind"].as_str().unwrap());
        let found = warnings
            .iter()
            .find(|w| w.kind == expected)
            .unwrap_or_else(|| panic!("{name}: no {expected:?} warning in {warnings:?}"));
        let code_points: Vec<String> = serde_json::from_value(case["code_points"].clone()).unwrap();
        assert_eq!(found.code_points, code_points, "{name}");
        assert_eq!(found.field, field, "{name}");
        for cp in &code_points {
            assert!(
                found.message.contains(cp.as_str()),
                "{name}: {}",
                found.message
            );
        }
    }
    for text in doc["clean"].as_array().unwrap() {
        let text = text.as_str().unwrap();
        assert!(
            check("object", text).is_empty(),
            "{text}: {:?}",
            check("object", text)
        );
    }
}
