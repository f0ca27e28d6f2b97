//! The person at the terminal: key progress on stderr, the PIN read without echo (or one
//! line from stdin when it is not a terminal, for scripts), yes/no questions.

use countersign_approver::signer::{KeyEvent, KeyPrompt};
use std::io::{BufRead, IsTerminal, Write};

/// Shows key events on stderr and reads the PIN.
pub struct TerminalPrompt;

impl KeyPrompt for TerminalPrompt {
    fn show(&self, event: &KeyEvent) {
        eprintln!("security key: {event}");
    }

    fn pin(&self, _event: &KeyEvent) -> Option<zeroize::Zeroizing<String>> {
        let pin = if std::io::stdin().is_terminal() {
            rpassword::prompt_password("PIN: ").ok()?
        } else {
            read_line()?
        };
        let pin = pin.trim_end_matches(['\r', '\n']).to_owned();
        (!pin.is_empty()).then(|| zeroize::Zeroizing::new(pin))
    }
}

/// One line from stdin; `None` at end of input.
pub fn read_line() -> Option<String> {
    let mut line = String::new();
    match std::io::stdin().lock().read_line(&mut line) {
        Ok(0) | Err(_) => None,
        Ok(_) => Some(line),
    }
}

/// Asks `question` on stderr; only `y` or `yes` is a yes.
pub fn confirm(question: &str) -> bool {
    eprint!("{question} [y/N] ");
    let _ = std::io::stderr().flush();
    read_line().is_some_and(|a| matches!(a.trim().to_ascii_lowercase().as_str(), "y" | "yes"))
}
