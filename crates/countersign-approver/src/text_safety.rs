//! What-you-see-is-what-you-sign, by character: text an approver reads before touching the
//! key is checked for what could make it read differently from what is signed — invisible and
//! format characters (zero-width spaces, soft hyphens, tag characters, U+061C, line and
//! paragraph separators), controls and bidirectional overrides, a mix of scripts in one field
//! (a Cyrillic "А" in a Latin payee), and text in another script that looks like plain ASCII
//! (UTS #39 skeletons). Each finding is a warning naming the field and the code points; the
//! text itself is never altered, so what is shown stays what is signed.

use serde::Serialize;
use unicode_script::UnicodeScript;
use unicode_security::MixedScript;

/// What is suspicious about one displayed field.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TextWarning {
    /// Which field ("object", "title", "change iban (after)", ...).
    pub field: String,
    /// What kind of trick it could be.
    pub kind: WarningKind,
    /// The code points concerned, `U+200B` style, at most eight.
    pub code_points: Vec<String>,
    /// One sentence for the person: what was found and what it could do.
    pub message: String,
}

/// The kinds of display tricks found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WarningKind {
    /// Characters that show as nothing, or that change how the text around them shows.
    Invisible,
    /// Control or bidirectional-override characters.
    Control,
    /// Letters of several scripts in one field.
    MixedScripts,
    /// Non-ASCII text that reads as ASCII.
    LooksLikeAscii,
}

use countersign_core::invisible::is_invisible;

fn code_point(c: char) -> String {
    format!("U+{:04X}", u32::from(c))
}

fn listed(chars: impl Iterator<Item = char>) -> Vec<String> {
    let mut seen: Vec<char> = Vec::new();
    for c in chars {
        if !seen.contains(&c) {
            seen.push(c);
        }
    }
    seen.into_iter().take(8).map(code_point).collect()
}

/// The warnings for one field's text; none for plain text.
pub fn check(field: &str, text: &str) -> Vec<TextWarning> {
    let mut warnings = Vec::new();
    let warn = |kind, code_points: Vec<String>, what: &str| TextWarning {
        field: field.to_owned(),
        kind,
        message: format!("{field} {what} ({})", code_points.join(", ")),
        code_points,
    };
    let control = listed(text.chars().filter(|c| c.is_control()));
    if !control.is_empty() {
        warnings.push(warn(
            WarningKind::Control,
            control,
            "contains control characters that can hide or move text",
        ));
    }
    let invisible = listed(text.chars().filter(|c| is_invisible(*c)));
    if !invisible.is_empty() {
        warnings.push(warn(
            WarningKind::Invisible,
            invisible,
            "contains invisible characters: what you read may not be what is signed",
        ));
    }
    if !text.is_single_script() {
        let scripts = scripts_in(text);
        let names: Vec<&str> = scripts.iter().map(|(name, _)| *name).collect();
        let odd =
            listed(text.chars().filter(|c| {
                c.is_alphabetic() && !c.is_ascii() && c.script().full_name() != "Latin"
            }));
        let mut what = format!("mixes scripts ({})", names.join(", "));
        what.push_str(": letters that look alike can differ");
        warnings.push(warn(WarningKind::MixedScripts, odd, &what));
    } else if !text.is_ascii() {
        let skeleton: String = unicode_security::skeleton(text).collect();
        let letters = text.chars().any(|c| c.is_alphabetic() && !c.is_ascii());
        if letters && skeleton.is_ascii() && skeleton.chars().any(|c| c.is_ascii_alphabetic()) {
            let odd = listed(text.chars().filter(|c| !c.is_ascii()));
            warnings.push(warn(
                WarningKind::LooksLikeAscii,
                odd,
                &format!("reads like \"{skeleton}\" but is written with look-alike characters"),
            ));
        }
    }
    warnings
}

/// The scripts of the letters in `text`, in order of appearance.
fn scripts_in(text: &str) -> Vec<(&'static str, char)> {
    let mut scripts: Vec<(&'static str, char)> = Vec::new();
    for c in text.chars().filter(|c| c.is_alphabetic()) {
        let name = c.script().full_name();
        if name != "Common" && name != "Inherited" && !scripts.iter().any(|(n, _)| *n == name) {
            scripts.push((name, c));
        }
    }
    scripts
}

/// `text` with every control and invisible character written as `\u{…}`, for a terminal:
/// an escape sequence or an invisible character in a field cannot act on the screen.
pub fn escape_for_terminal(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() || is_invisible(c) {
            out.push_str(&format!("\\u{{{:04X}}}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_in_any_one_script_is_fine() {
        for fine in [
            "vendor:4711",
            "Pay 2,500.00 EUR to vendor:4711",
            "Überweisung an Müller GmbH",
            "Оплата поставщику",
            "支払い: 東京の取引先",
            "",
        ] {
            assert!(
                check("object", fine).is_empty(),
                "{fine}: {:?}",
                check("object", fine)
            );
        }
    }

    #[test]
    fn tricks_are_named_with_their_code_points() {
        let w = check("object", "vendor:47\u{200B}11");
        assert_eq!(w.len(), 1);
        assert_eq!(w[0].kind, WarningKind::Invisible);
        assert_eq!(w[0].code_points, ["U+200B"]);
        assert!(
            w[0].message.starts_with("object contains invisible"),
            "{}",
            w[0].message
        );

        let w = check("object", "Аcme Bank");
        assert_eq!(w[0].kind, WarningKind::MixedScripts);
        assert_eq!(w[0].code_points, ["U+0410"]);
        assert!(
            w[0].message.contains("Latin") && w[0].message.contains("Cyrillic"),
            "{}",
            w[0].message
        );

        let w = check("object", "сосоа");
        assert_eq!(w[0].kind, WarningKind::LooksLikeAscii, "{w:?}");
        assert!(w[0].message.contains("\"cocoa\""), "{}", w[0].message);

        let w = check("title", "Send\u{1b}[8m a payout");
        assert_eq!(w[0].kind, WarningKind::Control);
        assert_eq!(w[0].code_points, ["U+001B"]);
    }

    #[test]
    fn terminal_output_shows_escapes_instead_of_acting_on_them() {
        assert_eq!(
            escape_for_terminal("a\u{1b}[8mb\u{200B}c"),
            "a\\u{001B}[8mb\\u{200B}c"
        );
        assert_eq!(escape_for_terminal("Müller"), "Müller");
    }
}
