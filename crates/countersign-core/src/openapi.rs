//! OpenAPI schemas for the few protocol types whose JSON form is not what their Rust shape
//! would suggest (feature `openapi`). Every other wire type derives its schema beside its
//! definition, so the server's OpenAPI document is generated from the types it reads and
//! writes.

use crate::requirements::{GroupQuorum, Requirements};
use crate::wire::ProblemCode;
use crate::{Digest, Timestamp};
use std::borrow::Cow;
use utoipa::openapi::schema::{
    AdditionalProperties, ArrayBuilder, ObjectBuilder, OneOfBuilder, Schema, SchemaType, Type,
};
use utoipa::openapi::{KnownFormat, RefOr, SchemaFormat};
use utoipa::{PartialSchema, ToSchema};

/// Unpadded base64url of 32 bytes.
const DIGEST_PATTERN: &str = "^[A-Za-z0-9_-]{43}$";

/// Canonical RFC 3339 UTC with whole seconds.
const TIMESTAMP_PATTERN: &str = "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$";

impl PartialSchema for Digest {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some(DIGEST_PATTERN))
            .description(Some("A SHA-256 digest, unpadded base64url"))
            .into()
    }
}

impl ToSchema for Digest {}

impl PartialSchema for Timestamp {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
            .pattern(Some(TIMESTAMP_PATTERN))
            .description(Some(
                "RFC 3339 in UTC with whole seconds, e.g. `2026-12-03T09:30:00Z`",
            ))
            .into()
    }
}

impl ToSchema for Timestamp {}

/// The members both written forms of [`Requirements`] share.
fn requirements_form(description: &str) -> ObjectBuilder {
    ObjectBuilder::new()
        .description(Some(description))
        .additional_properties(Some(AdditionalProperties::FreeForm(false)))
        .property(
            "self_step_up",
            ObjectBuilder::new()
                .schema_type(Type::Boolean)
                .description(Some("The requester must approve with their own key")),
        )
        .required("self_step_up")
        .property(
            "user_verification",
            ObjectBuilder::new()
                .schema_type(Type::Boolean)
                .description(Some("The key must verify the user (PIN or biometrics)")),
        )
        .required("user_verification")
        .property(
            "execution_ttl_seconds",
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(Some(0))
                .description(Some("Seconds the decision stays redeemable once issued")),
        )
        .required("execution_ttl_seconds")
        .property(
            "reason",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .description(Some("Why the policy asked for a step-up")),
        )
        .required("reason")
}

impl PartialSchema for Requirements {
    fn schema() -> RefOr<Schema> {
        let one_group = requirements_form(
            "Version 1: at most one group (`approvers: 0, group: null` when only the requester steps up)",
        )
        .property(
            "approvers",
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(Some(0))
                .description(Some("Distinct approvers other than the requester")),
        )
        .required("approvers")
        .property(
            "group",
            ObjectBuilder::new()
                .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
                .description(Some("The group they come from")),
        )
        .required("group");
        let several_groups = requirements_form("Version 2: two to eight groups")
            .property(
                "quorum",
                ArrayBuilder::new()
                    .items(GroupQuorum::schema())
                    .min_items(Some(2))
                    .max_items(Some(8))
                    .description(Some("Per group, sorted by group, each group once")),
            )
            .required("quorum");
        OneOfBuilder::new()
            .description(Some(
                "What the policy demanded, written in the transaction's version (docs/protocol.md)",
            ))
            .item(one_group)
            .item(several_groups)
            .into()
    }
}

impl ToSchema for Requirements {}

impl PartialSchema for ProblemCode {
    fn schema() -> RefOr<Schema> {
        let known = ProblemCode::server_codes().collect::<Vec<_>>().join("`, `");
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some("^[a-z0-9_]+$"))
            .description(Some(format!(
                "Stable snake_case code. The server's own: `{known}`; a protocol check that \
                 refused names its own code (docs/protocol.md)"
            )))
            .into()
    }
}

impl ToSchema for ProblemCode {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("ProblemCode")
    }
}
