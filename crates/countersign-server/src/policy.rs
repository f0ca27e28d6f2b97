//! Run-time policy evaluation with Cedar: forbid over permit, requirements carried as
//! annotations on permit policies. When several match, every one of their requirements
//! holds: each group's count, the strictest flags and the shortest TTLs.
//! Anything that cannot be evaluated cleanly refuses the request (fail closed).

use cedar_policy::{
    Authorizer, Context, Decision, Entities, EntityId, EntityTypeName, EntityUid, PolicyId,
    PolicySet, Request,
};
use countersign_core::amount::Amount;
use countersign_core::transaction::{GroupQuorum, RequesterKind, MAX_APPROVERS, MAX_GROUPS};
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::str::FromStr;

/// The built-in sample policies.
pub const SAMPLE: &str = include_str!("../policies/policies.cedar");

/// Why policies could not be loaded or evaluated.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// The Cedar text does not parse.
    #[error("policies do not parse: {0}")]
    Parse(String),
    /// An annotation is missing, unknown or has a bad value.
    #[error("policy {policy}: {problem}")]
    Annotation { policy: String, problem: String },
    /// The request could not be expressed as a Cedar request.
    #[error("cannot build the policy request: {0}")]
    Request(String),
    /// The amount does not fit the policy's integer range.
    #[error("amount too large to evaluate")]
    AmountRange,
}

/// What the context holds beyond the transaction itself.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RuntimeContext {
    /// Client IP of the originating session.
    pub ip: Option<IpAddr>,
    /// ISO 3166 country of the originating session.
    pub geo: Option<String>,
    /// `managed`, `unmanaged`, `compromised` or `unknown`.
    pub device_posture: Option<String>,
    /// The requester's current privileges.
    pub privileges: Vec<String>,
}

/// Everything policies are evaluated against.
#[derive(Clone, Debug)]
pub struct PolicyInput<'a> {
    /// Catalog action id.
    pub action: &'a str,
    /// Target resource.
    pub object: &'a str,
    /// Amount, if any.
    pub amount: Option<&'a Amount>,
    /// Requester id.
    pub requester_id: &'a str,
    /// Requester kind.
    pub requester_kind: RequesterKind,
    /// IP, geo, posture, privileges.
    pub context: &'a RuntimeContext,
    /// Hour of day, UTC (0–23).
    pub hour_utc: u8,
}

/// What the policy demands of one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StepUp {
    /// The requester must approve with their own key.
    pub self_step_up: bool,
    /// Distinct other approvers per group, sorted by group (the transaction's quorum).
    pub quorum: Vec<GroupQuorum>,
    /// User verification required.
    pub user_verification: bool,
    /// Seconds to collect approvals.
    pub approval_ttl_seconds: u32,
    /// Seconds the decision stays redeemable.
    pub execution_ttl_seconds: u32,
    /// Why, for the approver.
    pub reason: String,
    /// Ids of the policies that set these requirements.
    pub policies: Vec<String>,
}

/// The policy's verdict.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The action may proceed without approval.
    NotRequired {
        /// Permitting policies.
        policies: Vec<String>,
    },
    /// The action may not proceed at all.
    Forbidden {
        /// Why.
        reason: String,
        /// Forbidding policies (empty when nothing permitted the action).
        policies: Vec<String>,
    },
    /// Approval is needed.
    StepUp(StepUp),
}

/// What the application is told when a policy could not be evaluated (the detail is logged).
pub const EVALUATION_FAILED: &str = "policy evaluation failed, refusing";

/// Loaded, checked policies.
pub struct PolicyEngine {
    policies: PolicySet,
    authorizer: Authorizer,
}

const KNOWN: [&str; 10] = [
    "id",
    "reason",
    "step_up",
    "self_step_up",
    "approvers",
    "group",
    "user_verification",
    "approval_ttl",
    "execution_ttl",
    "description",
];

impl PolicyEngine {
    /// Parses policies and checks every annotation now, so a typo fails at start-up, not at
    /// the first request.
    pub fn new(text: &str) -> Result<Self, PolicyError> {
        let policies = PolicySet::from_str(text).map_err(|e| PolicyError::Parse(e.to_string()))?;
        let engine = PolicyEngine {
            policies,
            authorizer: Authorizer::new(),
        };
        for policy in engine.policies.policies() {
            let id = policy.id().to_string();
            for (key, _) in policy.annotations() {
                if !KNOWN.contains(&key) {
                    return Err(PolicyError::Annotation {
                        policy: id,
                        problem: format!("unknown annotation @{key}"),
                    });
                }
            }
            if policy.effect() == cedar_policy::Effect::Permit
                && engine.requires_step_up(policy.id())?
            {
                let step_up = engine.step_up_of(policy.id())?;
                if !step_up.self_step_up && step_up.quorum.is_empty() {
                    return Err(PolicyError::Annotation {
                        policy: id,
                        problem: "asks for a step-up with neither @self_step_up nor @approvers"
                            .into(),
                    });
                }
            }
        }
        Ok(engine)
    }

    /// Evaluates the policies for one request.
    pub fn evaluate(&self, input: &PolicyInput<'_>) -> Result<Outcome, PolicyError> {
        let request = self.request(input)?;
        let response = self
            .authorizer
            .is_authorized(&request, &self.policies, &Entities::empty());
        let errors: Vec<String> = response
            .diagnostics()
            .errors()
            .map(|e| e.to_string())
            .collect();
        let matched: Vec<PolicyId> = response.diagnostics().reason().cloned().collect();
        if !errors.is_empty() {
            // Cedar's text names policies and attributes: it goes to the operator's log, the
            // application gets the verdict only.
            tracing::warn!(errors = %errors.join("; "), action = input.action, "policy evaluation failed, refusing");
            return Ok(Outcome::Forbidden {
                reason: EVALUATION_FAILED.into(),
                policies: Vec::new(),
            });
        }
        if response.decision() == Decision::Deny {
            if matched.is_empty() {
                return Ok(Outcome::Forbidden {
                    reason: "no policy permits this action".into(),
                    policies: Vec::new(),
                });
            }
            let reasons: BTreeSet<String> = matched.iter().map(|id| self.reason_of(id)).collect();
            return Ok(Outcome::Forbidden {
                reason: reasons.into_iter().collect::<Vec<_>>().join("; "),
                policies: matched.iter().map(|id| self.name_of(id)).collect(),
            });
        }
        let mut requiring = Vec::new();
        for id in &matched {
            if self.requires_step_up(id)? {
                requiring.push(self.step_up_of(id)?);
            }
        }
        if requiring.is_empty() {
            return Ok(Outcome::NotRequired {
                policies: matched.iter().map(|id| self.name_of(id)).collect(),
            });
        }
        Ok(match strictest(requiring) {
            Ok(step_up) => Outcome::StepUp(step_up),
            Err(TooMany { problem, policies }) => Outcome::Forbidden {
                reason: format!(
                    "the matching policies together ask for {problem}; no request can carry \
                     that many, so it is refused rather than asking for fewer"
                ),
                policies,
            },
        })
    }

    fn request(&self, input: &PolicyInput<'_>) -> Result<Request, PolicyError> {
        let uid = |kind: &str, id: &str| -> Result<EntityUid, PolicyError> {
            let kind =
                EntityTypeName::from_str(kind).map_err(|e| PolicyError::Request(e.to_string()))?;
            Ok(EntityUid::from_type_name_and_id(kind, EntityId::new(id)))
        };
        let (has_amount, amount_minor, currency) = match input.amount {
            Some(amount) => (true, minor_units(amount)?, amount.currency.clone()),
            None => (false, 0, String::new()),
        };
        let kind = match input.requester_kind {
            RequesterKind::Human => "human",
            RequesterKind::Service => "service",
            RequesterKind::Agent => "agent",
        };
        let mut context = serde_json::json!({
            "requester_kind": kind,
            "privileges": input.context.privileges,
            "has_amount": has_amount,
            "amount_minor": amount_minor,
            "currency": currency,
            "has_ip": input.context.ip.is_some(),
            "geo": input.context.geo.clone().unwrap_or_default(),
            "device_posture": input.context.device_posture.clone().unwrap_or_else(|| "unknown".into()),
            "hour_utc": input.hour_utc,
        });
        if let Some(ip) = input.context.ip {
            context["ip"] = serde_json::json!({"__extn": {"fn": "ip", "arg": ip.to_string()}});
        }
        let context = Context::from_json_value(context, None)
            .map_err(|e| PolicyError::Request(e.to_string()))?;
        Request::new(
            uid("Requester", input.requester_id)?,
            uid("Action", input.action)?,
            uid("Object", input.object)?,
            context,
            None,
        )
        .map_err(|e| PolicyError::Request(e.to_string()))
    }

    fn annotation(&self, id: &PolicyId, key: &str) -> Option<&str> {
        self.policies.annotation(id, key)
    }

    fn name_of(&self, id: &PolicyId) -> String {
        self.annotation(id, "id")
            .map_or_else(|| id.to_string(), str::to_owned)
    }

    fn reason_of(&self, id: &PolicyId) -> String {
        self.annotation(id, "reason")
            .map_or_else(|| self.name_of(id), str::to_owned)
    }

    fn requires_step_up(&self, id: &PolicyId) -> Result<bool, PolicyError> {
        match self.annotation(id, "step_up") {
            None | Some("required") => Ok(true),
            Some("none") => Ok(false),
            Some(other) => Err(self.bad(
                id,
                format!("@step_up must be \"none\" or \"required\", not {other:?}"),
            )),
        }
    }

    fn step_up_of(&self, id: &PolicyId) -> Result<StepUp, PolicyError> {
        let flag = |key: &str, default: bool| match self.annotation(id, key) {
            None => Ok(default),
            Some("true") => Ok(true),
            Some("false") => Ok(false),
            Some(other) => Err(self.bad(
                id,
                format!("@{key} must be \"true\" or \"false\", not {other:?}"),
            )),
        };
        let number = |key: &str, default: u32, range: std::ops::RangeInclusive<u32>| match self
            .annotation(id, key)
        {
            None => Ok(default),
            Some(text) => text
                .parse::<u32>()
                .ok()
                .filter(|n| range.contains(n))
                .ok_or_else(|| {
                    self.bad(
                        id,
                        format!("@{key} must be a number in {range:?}, not {text:?}"),
                    )
                }),
        };
        let approvers = number("approvers", 0, 0..=MAX_APPROVERS)?;
        let quorum = match (approvers, self.annotation(id, "group")) {
            (0, _) => Vec::new(),
            (approvers, Some(group)) => vec![GroupQuorum {
                group: group.to_owned(),
                approvers,
            }],
            (_, None) => return Err(self.bad(id, "@approvers without @group".into())),
        };
        Ok(StepUp {
            self_step_up: flag("self_step_up", false)?,
            quorum,
            user_verification: flag("user_verification", true)?,
            approval_ttl_seconds: number("approval_ttl", 600, 30..=86_400)?,
            execution_ttl_seconds: number("execution_ttl", 300, 10..=86_400)?,
            reason: self.reason_of(id),
            policies: vec![self.name_of(id)],
        })
    }

    fn bad(&self, id: &PolicyId, problem: String) -> PolicyError {
        PolicyError::Annotation {
            policy: self.name_of(id),
            problem,
        }
    }
}

/// Matching policies that together ask for more approvers or groups than a transaction may
/// carry. Dropping any of them would weaken a requirement, so the request is refused.
#[derive(Debug, PartialEq, Eq)]
struct TooMany {
    problem: String,
    policies: Vec<String>,
}

/// Merges requirements so that every one of them holds: per group the largest count any
/// policy asks of it (counts from different groups add up, an approver fills one place), self
/// step-up and UV if any asks, the shortest TTLs, every reason. The result does not depend on
/// the order of `all` (Cedar reports matching policies in no fixed order).
fn strictest(all: Vec<StepUp>) -> Result<StepUp, TooMany> {
    let mut quorum: BTreeMap<String, u32> = BTreeMap::new();
    let mut merged = StepUp {
        self_step_up: false,
        quorum: Vec::new(),
        user_verification: false,
        approval_ttl_seconds: u32::MAX,
        execution_ttl_seconds: u32::MAX,
        reason: String::new(),
        policies: Vec::new(),
    };
    let mut reasons = BTreeSet::new();
    for s in all {
        merged.self_step_up |= s.self_step_up;
        merged.user_verification |= s.user_verification;
        for q in s.quorum {
            let count = quorum.entry(q.group).or_default();
            *count = (*count).max(q.approvers);
        }
        merged.approval_ttl_seconds = merged.approval_ttl_seconds.min(s.approval_ttl_seconds);
        merged.execution_ttl_seconds = merged.execution_ttl_seconds.min(s.execution_ttl_seconds);
        reasons.insert(s.reason);
        merged.policies.extend(s.policies);
    }
    merged.reason = reasons.into_iter().collect::<Vec<_>>().join("; ");
    merged.policies.sort();
    merged.quorum = quorum
        .into_iter()
        .map(|(group, approvers)| GroupQuorum { group, approvers })
        .collect();
    let total: u32 = merged.quorum.iter().map(|q| q.approvers).sum();
    let problem = if merged.quorum.len() > MAX_GROUPS {
        Some(format!(
            "approvers from {} groups (at most {MAX_GROUPS})",
            merged.quorum.len()
        ))
    } else if total > MAX_APPROVERS {
        Some(format!("{total} approvers (at most {MAX_APPROVERS})"))
    } else {
        None
    };
    match problem {
        Some(problem) => Err(TooMany {
            problem,
            policies: merged.policies,
        }),
        None => Ok(merged),
    }
}

/// The amount in the currency's minor units, as Cedar's 64-bit integer.
fn minor_units(amount: &Amount) -> Result<i64, PolicyError> {
    let exponent = usize::from(amount.minor_units().map_err(|_| PolicyError::AmountRange)?);
    let (int, frac) = amount.value.split_once('.').unwrap_or((&amount.value, ""));
    let digits = format!("{int}{frac:0<exponent$}");
    digits.parse::<i64>().map_err(|_| PolicyError::AmountRange)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input<'a>(
        action: &'a str,
        amount: Option<&'a Amount>,
        kind: RequesterKind,
        context: &'a RuntimeContext,
    ) -> PolicyInput<'a> {
        PolicyInput {
            action,
            object: "vendor:4711",
            amount,
            requester_id: "alice@example.com",
            requester_kind: kind,
            context,
            hour_utc: 12,
        }
    }

    /// The quorum as (group, count) pairs.
    fn quorum(s: &StepUp) -> Vec<(&str, u32)> {
        s.quorum
            .iter()
            .map(|q| (q.group.as_str(), q.approvers))
            .collect()
    }

    #[test]
    fn sample_policies_give_each_outcome() {
        let engine = PolicyEngine::new(SAMPLE).unwrap();
        let ctx = RuntimeContext::default();
        let small = Amount::new("999.99", "EUR").unwrap();
        let large = Amount::new("1000", "EUR").unwrap();
        let huge = Amount::new("250000", "EUR").unwrap();
        let human = RequesterKind::Human;

        assert!(matches!(
            engine
                .evaluate(&input("payout.send", Some(&small), human, &ctx))
                .unwrap(),
            Outcome::NotRequired { .. }
        ));
        let Outcome::StepUp(s) = engine
            .evaluate(&input("payout.send", Some(&large), human, &ctx))
            .unwrap()
        else {
            panic!()
        };
        assert_eq!(
            (s.self_step_up, quorum(&s), s.execution_ttl_seconds),
            (true, vec![], 600)
        );
        // Two permits match: the strictest of each requirement wins.
        let Outcome::StepUp(s) = engine
            .evaluate(&input("payout.send", Some(&huge), human, &ctx))
            .unwrap()
        else {
            panic!()
        };
        assert_eq!(
            (s.self_step_up, quorum(&s)),
            (true, vec![("finance-approvers", 1), ("security-admins", 1)]),
            "250,000: the finance approver and a security administrator"
        );
        assert_eq!(
            (
                s.user_verification,
                s.approval_ttl_seconds,
                s.execution_ttl_seconds
            ),
            (true, 900, 300)
        );
        assert_eq!(
            s.policies,
            vec!["payout-large", "payout-treasury", "payout-very-large"]
        );
        let twenty_five_k = Amount::new("25000", "EUR").unwrap();
        let Outcome::StepUp(s) = engine
            .evaluate(&input("payout.send", Some(&twenty_five_k), human, &ctx))
            .unwrap()
        else {
            panic!()
        };
        assert_eq!(quorum(&s), vec![("finance-approvers", 1)]);

        let Outcome::StepUp(s) = engine
            .evaluate(&input("payout.bank_details.change", None, human, &ctx))
            .unwrap()
        else {
            panic!()
        };
        assert_eq!(
            (s.self_step_up, quorum(&s)),
            (true, vec![("finance-approvers", 1)])
        );
        let Outcome::StepUp(s) = engine
            .evaluate(&input("account.recovery.update", None, human, &ctx))
            .unwrap()
        else {
            panic!()
        };
        assert_eq!(
            (s.self_step_up, quorum(&s), s.execution_ttl_seconds),
            (true, vec![], 120)
        );
        let Outcome::StepUp(s) = engine
            .evaluate(&input("iam.privilege.grant", None, human, &ctx))
            .unwrap()
        else {
            panic!()
        };
        assert_eq!(
            (s.self_step_up, quorum(&s)),
            (false, vec![("security-admins", 2)])
        );
        let Outcome::StepUp(s) = engine
            .evaluate(&input(
                "agent.tool.invoke",
                None,
                RequesterKind::Agent,
                &ctx,
            ))
            .unwrap()
        else {
            panic!()
        };
        assert_eq!(
            (s.self_step_up, quorum(&s)),
            (false, vec![("agent-owners", 1)])
        );

        // Forbidden: no permit (a human using the agent action, an unknown action), or a forbid.
        assert!(
            matches!(engine.evaluate(&input("agent.tool.invoke", None, human, &ctx)).unwrap(), Outcome::Forbidden { ref policies, .. } if policies.is_empty())
        );
        assert!(matches!(
            engine
                .evaluate(&input("db.drop", None, human, &ctx))
                .unwrap(),
            Outcome::Forbidden { .. }
        ));
        let Outcome::Forbidden { policies, .. } = engine
            .evaluate(&input(
                "iam.privilege.grant",
                None,
                RequesterKind::Agent,
                &ctx,
            ))
            .unwrap()
        else {
            panic!()
        };
        assert_eq!(policies, vec!["no-agent-privilege-grants"]);
        let compromised = RuntimeContext {
            device_posture: Some("compromised".into()),
            ..RuntimeContext::default()
        };
        let Outcome::Forbidden { reason, .. } = engine
            .evaluate(&input("payout.send", Some(&small), human, &compromised))
            .unwrap()
        else {
            panic!()
        };
        assert!(reason.contains("compromised"), "{reason}");
    }

    #[test]
    fn context_reaches_policies_and_errors_fail_closed() {
        let text = r#"
            @id("office") @step_up("none")
            permit(principal, action == Action::"a", resource) when { context.ip.isInRange(ip("10.0.0.0/8")) && context.geo == "DE" && context.privileges.contains("payments") };
        "#;
        let engine = PolicyEngine::new(text).unwrap();
        let inside = RuntimeContext {
            ip: Some("10.1.2.3".parse().unwrap()),
            geo: Some("DE".into()),
            device_posture: None,
            privileges: vec!["payments".into()],
        };
        let i = |c| PolicyInput {
            action: "a",
            object: "o",
            amount: None,
            requester_id: "r",
            requester_kind: RequesterKind::Human,
            context: c,
            hour_utc: 0,
        };
        assert!(matches!(
            engine.evaluate(&i(&inside)).unwrap(),
            Outcome::NotRequired { .. }
        ));
        let outside = RuntimeContext {
            ip: Some("192.0.2.1".parse().unwrap()),
            ..inside.clone()
        };
        assert!(matches!(
            engine.evaluate(&i(&outside)).unwrap(),
            Outcome::Forbidden { .. }
        ));
        // No IP: the policy cannot be evaluated, and the request is refused rather than let through.
        let Outcome::Forbidden { reason, .. } =
            engine.evaluate(&i(&RuntimeContext::default())).unwrap()
        else {
            panic!()
        };
        assert!(reason.contains("evaluation failed"), "{reason}");
    }

    #[test]
    fn bad_annotations_fail_at_load() {
        for text in [
            r#"@approvers("two") @group("g") permit(principal, action, resource);"#,
            r#"@approvers("1") permit(principal, action, resource);"#,
            r#"@self_step_up("false") permit(principal, action, resource);"#,
            r#"@step_up("maybe") permit(principal, action, resource);"#,
            r#"@aprovers("1") permit(principal, action, resource);"#,
            r#"permit(principal, action, resource"#,
        ] {
            assert!(PolicyEngine::new(text).is_err(), "{text}");
        }
    }

    #[test]
    fn minor_units_follow_the_currency() {
        assert_eq!(
            minor_units(&Amount::new("12.5", "EUR").unwrap()).unwrap(),
            1250
        );
        assert_eq!(
            minor_units(&Amount::new("1000", "JPY").unwrap()).unwrap(),
            1000
        );
        assert_eq!(
            minor_units(&Amount::new("0.125", "BHD").unwrap()).unwrap(),
            125
        );
        assert!(minor_units(&Amount::new("99999999999999999999", "EUR").unwrap()).is_err());
    }

    fn step_up_for(text: &str) -> Outcome {
        let amount = Amount::new("50", "EUR").unwrap();
        PolicyEngine::new(text)
            .unwrap()
            .evaluate(&input(
                "payout.send",
                Some(&amount),
                RequesterKind::Human,
                &RuntimeContext::default(),
            ))
            .unwrap()
    }

    /// Two matching policies asking for approvers from different groups: both groups' counts
    /// hold, the same way in every process (issue 12, item 2: one of them used to be dropped,
    /// chosen by the order of a hash set inside Cedar's diagnostics); from one group, the
    /// larger count holds; flags and TTLs take the strictest.
    #[test]
    fn requirements_from_several_policies_all_hold() {
        let two_groups = r#"
@id("finance") @reason("finance") @approvers("1") @group("finance") @execution_ttl("60")
permit(principal, action == Action::"payout.send", resource);
@id("security") @reason("security") @approvers("2") @group("security-admins") @self_step_up("true") @user_verification("false")
permit(principal, action == Action::"payout.send", resource);
@id("finance-more") @reason("finance") @approvers("1") @group("finance") @approval_ttl("120") @user_verification("false")
permit(principal, action == Action::"payout.send", resource);
"#;
        let first = step_up_for(two_groups);
        let Outcome::StepUp(s) = &first else {
            panic!("{first:?}")
        };
        assert_eq!(quorum(s), [("finance", 1), ("security-admins", 2)]);
        assert_eq!(
            (
                s.self_step_up,
                s.user_verification,
                s.approval_ttl_seconds,
                s.execution_ttl_seconds
            ),
            (true, true, 120, 60),
            "self step-up and UV because one policy asks, the shortest TTLs"
        );
        assert_eq!(s.policies, ["finance", "finance-more", "security"]);
        assert_eq!(s.reason, "finance; security");
        for _ in 0..20 {
            assert_eq!(step_up_for(two_groups), first, "the same in every process");
        }

        let one_group = r#"
@id("one") @reason("one") @approvers("1") @group("finance")
permit(principal, action == Action::"payout.send", resource);
@id("two") @reason("two") @approvers("2") @group("finance")
permit(principal, action == Action::"payout.send", resource);
"#;
        let Outcome::StepUp(s) = step_up_for(one_group) else {
            panic!()
        };
        assert_eq!(
            quorum(&s),
            [("finance", 2)],
            "the larger count, not the sum"
        );
    }

    /// Policies that together ask for more than a transaction can carry are refused whole,
    /// naming every policy, rather than silently asking for less.
    #[test]
    fn requirements_beyond_a_transaction_s_limits_refuse_the_request() {
        let many: String = (0..9)
            .map(|i| {
                format!(
                    "@id(\"p{i}\") @approvers(\"1\") @group(\"g{i}\")\npermit(principal, action == Action::\"payout.send\", resource);\n"
                )
            })
            .collect();
        match step_up_for(&many) {
            Outcome::Forbidden { reason, policies } => {
                assert!(reason.contains("9 groups (at most 8)"), "{reason}");
                assert_eq!(policies.len(), 9);
            }
            other => panic!("{other:?}"),
        }
        let heavy = r#"
@id("a") @approvers("9") @group("a")
permit(principal, action == Action::"payout.send", resource);
@id("b") @approvers("8") @group("b")
permit(principal, action == Action::"payout.send", resource);
"#;
        match step_up_for(heavy) {
            Outcome::Forbidden { reason, policies } => {
                assert!(reason.contains("17 approvers (at most 16)"), "{reason}");
                assert_eq!(policies, ["a", "b"]);
            }
            other => panic!("{other:?}"),
        }
    }
}
