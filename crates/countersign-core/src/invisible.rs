//! Characters that show as nothing, or that change how the text around them shows: format
//! characters (general category Cf, zero-width spaces and joiners, soft hyphen, U+061C and the
//! bidirectional marks), line and paragraph separators, Hangul fillers, variation selectors and
//! tag characters. The server refuses them in its catalog; approvers warn about them in what
//! they display (`countersign-approver::text_safety`).

/// Whether `c` renders as nothing or alters its neighbours' rendering (beyond
/// `char::is_control`).
pub fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}' | '\u{1160}' | '\u{17B4}' | '\u{17B5}'
        | '\u{180B}'..='\u{180F}' | '\u{200B}'..='\u{200F}' | '\u{2028}'..='\u{202E}'
        | '\u{2060}'..='\u{206F}' | '\u{3164}' | '\u{FE00}'..='\u{FE0F}' | '\u{FEFF}'
        | '\u{FFA0}' | '\u{FFF9}'..='\u{FFFB}' | '\u{1BCA0}'..='\u{1BCA3}'
        | '\u{1D173}'..='\u{1D17A}' | '\u{E0000}'..='\u{E0FFF}')
}

#[cfg(test)]
mod tests {
    use super::is_invisible;

    #[test]
    fn the_usual_tricks_are_invisible_and_letters_are_not() {
        for c in [
            '\u{200B}',
            '\u{200D}',
            '\u{2060}',
            '\u{FEFF}',
            '\u{00AD}',
            '\u{061C}',
            '\u{2028}',
            '\u{E0041}',
            '\u{202E}',
        ] {
            assert!(is_invisible(c), "U+{:04X}", u32::from(c));
        }
        for c in ['a', 'Ä', 'А', '東', ' ', '-'] {
            assert!(!is_invisible(c), "{c}");
        }
    }
}
