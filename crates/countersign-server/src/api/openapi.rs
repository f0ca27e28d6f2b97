//! The OpenAPI document, generated from what the server runs: the routes and their
//! `#[utoipa::path]` annotations (in the handler modules, beside each handler) and the wire
//! types' schemas (`countersign_core::wire`, feature `openapi`). The committed copy,
//! `crates/countersign-server/openapi.json`, is checked against it by the tests; regenerate it
//! with `countersign-server openapi > crates/countersign-server/openapi.json`.

use countersign_core::wire::approver::ApprovalAnswer;
use countersign_core::wire::ProblemDocument;
use std::sync::OnceLock;
use utoipa::openapi::content::ContentBuilder;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{OpenApi as Document, Ref, RefOr};
use utoipa::{Modify, OpenApi, ToSchema};

/// The document's fixed parts; the paths come from the router.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Countersign server API",
        description = "Step-up approvals for high-risk actions. Errors are RFC 9457 problem details \
            with a stable `code`. Formats (canonical JSON, digests, challenges, tokens, device \
            signatures) are specified byte by byte in docs/protocol.md."
    ),
    servers((url = "http://localhost:8710")),
    tags(
        (name = "public", description = "No credentials"),
        (name = "application", description = "Protected applications, with an API key"),
        (name = "approver", description = "Enrolled approver devices; every call signed with the device key")
    ),
    // ApprovalAnswer: named by `AnswerResponses`, which registers no schemas of its own.
    components(schemas(ProblemDocument, ApprovalAnswer)),
    modifiers(&SecuritySchemes)
)]
pub struct ApiDoc;

/// The two ways a caller proves who it is.
struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, doc: &mut Document) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "apiKey",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "`cs_<16 hex id>_<secret>`, created with `countersign-server api-key \
                         create`; scoped to one audience",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "device",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "Authorization",
                "`Countersign-Device device_id=..., ts=..., nonce=..., sig=...`: Ed25519 by the \
                 enrolled device key over method, path, timestamp, nonce and body digest \
                 (docs/protocol.md); each nonce is accepted once",
            ))),
        );
    }
}

/// Every error the server answers is a problem document: each 4xx and 5xx response the
/// handlers list (with its codes in the description) gets that body here, once, instead of in
/// every annotation. Applied to the whole document, after the routes added their paths.
struct ProblemBodies;

impl Modify for ProblemBodies {
    fn modify(&self, doc: &mut Document) {
        let schema = Ref::from_schema_name(ProblemDocument::name());
        for item in doc.paths.paths.values_mut() {
            let operations = [
                &mut item.get,
                &mut item.post,
                &mut item.put,
                &mut item.delete,
                &mut item.patch,
            ];
            for operation in operations.into_iter().flatten() {
                for (status, response) in operation.responses.responses.iter_mut() {
                    let is_error = status.starts_with('4') || status.starts_with('5');
                    if let (true, RefOr::T(response)) = (is_error, response) {
                        response.content.insert(
                            "application/problem+json".into(),
                            RefOr::T(ContentBuilder::new().schema(Some(schema.clone())).build()),
                        );
                    }
                }
            }
        }
    }
}

// The response sets several operations share. Never constructed: each only describes, in the
// document, answers the handlers give as `Problem`s (and, for `Answer`, `ApprovalAnswer`).

/// What every call of a protected application on one request may also answer.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
pub enum RequestCallErrors {
    /// Malformed body or query (`malformed_json`, `unknown_field`, `missing_field`,
    /// `duplicate_field`, `invalid_value`, `invalid_query`, `body_too_large`)
    #[response(status = 400)]
    Malformed,
    /// Missing, unknown or revoked API key (`unauthorized`)
    #[response(status = 401)]
    Unauthorized,
    /// No such request for this application's audience (`not_found`)
    #[response(status = 404)]
    NotFound,
    /// Rate limited (`rate_limited`); see `Retry-After`
    #[response(status = 429)]
    RateLimited,
}

/// What every device-signed call may also answer.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
pub enum DeviceCallErrors {
    /// Missing or invalid `Countersign-Device` signature, stale timestamp, replayed nonce,
    /// disabled device or approver (`unauthorized`)
    #[response(status = 401)]
    Unauthorized,
    /// Rate limited (`rate_limited`)
    #[response(status = 429)]
    RateLimited,
}

/// The answers to an approval, a denial and a report: one set of checks for all three.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
pub enum AnswerResponses {
    /// Counted (or, for a report of a request no longer pending, recorded as not counted)
    #[response(status = 200)]
    Counted(ApprovalAnswer),
    /// Malformed body (`malformed_json`, `unknown_field`, `missing_field`, `invalid_value`,
    /// `invalid_base64`, `invalid_reason`, `reason_required`)
    #[response(status = 400)]
    Malformed,
    /// Not allowed: `own_request`, `not_eligible`, `unknown_credential`, `credential_revoked`,
    /// `counter_regression`, or an assertion check (`challenge_mismatch`, `origin_mismatch`,
    /// `rp_id_mismatch`, `user_not_present`, `user_not_verified`, `bad_signature`, ...)
    #[response(status = 403)]
    Forbidden,
    /// No such request (`not_found`)
    #[response(status = 404)]
    NotFound,
    /// `not_pending`, `approval_expired` or `already_decided`
    #[response(status = 409)]
    Conflict,
    /// `body_too_large`: over `limits.max_body_bytes`
    #[response(status = 413)]
    TooLarge,
}

/// The request id in a path.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct RequestId {
    /// The request's id, as its creation answered it.
    #[param(pattern = "^req_[A-Za-z0-9_-]+$")]
    #[allow(dead_code)] // Read by the handlers through axum's `Path`; here only described.
    id: String,
}

/// The document as JSON, the bytes `GET /openapi.json` serves and the committed copy holds;
/// `None` if it does not serialise (not reachable with the document's own types: its maps are
/// keyed by strings), which the endpoint answers as an internal error.
pub fn document_json() -> Option<&'static str> {
    static JSON: OnceLock<Option<String>> = OnceLock::new();
    JSON.get_or_init(|| {
        let mut doc = super::routes().into_openapi();
        ProblemBodies.modify(&mut doc);
        match doc.to_pretty_json() {
            Ok(text) => Some(text + "\n"),
            Err(e) => {
                tracing::error!(error = %e, "the OpenAPI document does not serialise");
                None
            }
        }
    })
    .as_deref()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn document() -> Value {
        serde_json::from_str(document_json().unwrap()).unwrap()
    }

    /// The committed copy is what reviewers and client generators read: it must be the
    /// document the server serves, byte for byte, schemas included.
    #[test]
    fn the_committed_document_is_the_generated_one() {
        let committed = include_str!("../../openapi.json");
        let generated = document_json().unwrap();
        if committed != generated {
            let first = committed
                .lines()
                .zip(generated.lines())
                .position(|(a, b)| a != b)
                .unwrap_or(committed.lines().count().min(generated.lines().count()));
            panic!(
                "crates/countersign-server/openapi.json is stale from line {}; regenerate it with \
                 `target/debug/countersign-server openapi > crates/countersign-server/openapi.json` (after a build)",
                first + 1
            );
        }
    }

    #[test]
    fn every_operation_is_tagged_summarised_and_answers_errors_as_problems() {
        let doc = document();
        let mut operations = 0;
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                operations += 1;
                let at = format!("{method} {path}");
                assert!(op["tags"][0].is_string(), "{at}: no tag");
                assert!(
                    op["summary"].as_str().is_some_and(|s| !s.is_empty()),
                    "{at}"
                );
                if path.contains("{id}") {
                    assert_eq!(op["parameters"][0]["name"], "id", "{at}");
                }
                for (status, response) in op["responses"].as_object().unwrap() {
                    let problem = &response["content"]["application/problem+json"]["schema"];
                    if status.starts_with('4') || status.starts_with('5') {
                        assert_eq!(
                            problem["$ref"], "#/components/schemas/ProblemDocument",
                            "{at} {status}"
                        );
                    } else {
                        assert!(problem.is_null(), "{at} {status}");
                    }
                }
            }
        }
        assert_eq!(operations, 18);
    }

    /// The schemas are the wire types' own: strict bodies refuse unknown members, and the
    /// members a client must send are required.
    #[test]
    fn request_bodies_are_strict_and_name_what_is_required() {
        let doc = document();
        let schemas = &doc["components"]["schemas"];
        for body in [
            "CreateRequest",
            "EnrollBody",
            "AssertionBody",
            "OutcomeReport",
        ] {
            assert_eq!(schemas[body]["additionalProperties"], false, "{body}");
        }
        let required = |name: &str| -> Vec<String> {
            serde_json::from_value(schemas[name]["required"].clone()).unwrap()
        };
        assert_eq!(
            required("CreateRequest"),
            [
                "idempotency_key",
                "action",
                "object",
                "requester",
                "session"
            ]
        );
        assert_eq!(
            required("AssertionBody"),
            [
                "credential_id",
                "authenticator_data",
                "client_data_json",
                "signature"
            ]
        );
        assert_eq!(schemas["RequestState"]["enum"].as_array().unwrap().len(), 8);
        assert!(schemas["ProblemCode"]["description"]
            .as_str()
            .unwrap()
            .contains("`already_redeemed`"));
        assert_eq!(
            schemas["Requirements"]["oneOf"].as_array().unwrap().len(),
            2
        );
    }
}
