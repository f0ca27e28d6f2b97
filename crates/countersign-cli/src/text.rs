//! Human-readable output: what a person must see before touching the key.

use countersign_approver::DisplayModel;

/// The full request, one fact per line.
pub fn display(m: &DisplayModel) -> String {
    let mut out = vec![
        format!("{}  [{}]", m.headline, m.id),
        format!("  action      {} ({})", m.title, m.action),
        format!("  object      {}", m.object),
    ];
    if let Some(amount) = &m.amount {
        out.push(format!("  amount      {amount}"));
    }
    if let Some(scope) = &m.scope {
        out.push(format!("  scope       {scope}"));
    }
    for c in &m.changes {
        out.push(format!(
            "  change      {}: {} -> {}",
            c.field, c.before, c.after
        ));
    }
    out.push(format!("  requester   {}", m.requester));
    out.push(format!("  for app     {}", m.audience));
    out.push(format!("  session     {}", m.session));
    out.push(format!("  why         {}", m.reason));
    out.push(format!("  progress    {}", m.progress));
    for a in &m.approvals {
        out.push(format!("              {}", a.text));
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

/// One line per pending request.
pub fn line(m: &DisplayModel) -> String {
    format!(
        "{}  {}  (by {}, {} s left, {})",
        m.id, m.headline, m.requester, m.seconds_left, m.fingerprint
    )
}

/// The server's answer to a decision.
pub fn answer(value: &serde_json::Value) -> String {
    format!(
        "recorded: request {} is {}",
        value["id"].as_str().unwrap_or("?"),
        value["state"].as_str().unwrap_or("?")
    )
}
