//! Human-readable output: what a person must see before touching the key.

use countersign_approver::text_safety::escape_for_terminal;
use countersign_approver::DisplayModel;

/// The full request, one fact per line, warnings first. Every field is written through
/// [`escape_for_terminal`]: a control or invisible character shows as `\u{…}` and cannot act on
/// the terminal (an escape sequence could otherwise hide the lines below it).
pub fn display(m: &DisplayModel) -> String {
    let e = |text: &str| escape_for_terminal(text);
    let mut out: Vec<String> = m
        .warnings
        .iter()
        .map(|w| format!("WARNING: {}", e(&w.message)))
        .collect();
    if !out.is_empty() {
        out.push("         Do not approve unless you understand why; ask the requester.".into());
    }
    out.extend([
        format!("{}  [{}]", e(&m.headline), e(&m.id)),
        format!("  action      {} ({})", e(&m.title), e(&m.action)),
        format!("  object      {}", e(&m.object)),
    ]);
    if let Some(amount) = &m.amount {
        out.push(format!("  amount      {}", e(amount)));
    }
    if let Some(scope) = &m.scope {
        out.push(format!("  scope       {}", e(scope)));
    }
    for c in &m.changes {
        out.push(format!(
            "  change      {}: {} -> {}",
            e(&c.field),
            e(&c.before),
            e(&c.after)
        ));
    }
    out.push(format!("  requester   {}", e(&m.requester)));
    out.push(format!("  for app     {}", e(&m.audience)));
    out.push(format!("  session     {}", m.session));
    out.push(format!("  why         {}", e(&m.reason)));
    for (i, line) in m.progress.iter().enumerate() {
        let label = if i == 0 { "progress" } else { "" };
        out.push(format!("  {label:<11} {}", e(line)));
    }
    for a in &m.approvals {
        out.push(format!("              {}", e(&a.text)));
    }
    out.push(format!(
        "  decide by   {} ({} s left){}",
        m.approve_by,
        m.seconds_left,
        if m.user_verification {
            ", PIN or biometric required"
        } else {
            ""
        }
    ));
    out.push(format!(
        "  fingerprint {}  (the requester sees the same)",
        m.fingerprint
    ));
    out.join("\n")
}

/// One line per pending request (escaped like [`display`]; flagged when it has warnings).
pub fn line(m: &DisplayModel) -> String {
    let flag = if m.warnings.is_empty() {
        ""
    } else {
        "  WARNING: suspicious characters, see `show`"
    };
    escape_for_terminal(&format!(
        "{}  {}  (by {}, {} s left, {}){flag}",
        m.id, m.headline, m.requester, m.seconds_left, m.fingerprint
    ))
}

/// The server's answer to a decision.
pub fn answer(answered: &crate::approver::Answered) -> String {
    format!(
        "recorded: request {} is {}",
        answered.id, answered.answer.state
    )
}
