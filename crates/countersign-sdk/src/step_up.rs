//! The step-up an application asks for, as it will be shown to approvers: the API's
//! `POST /v1/requests` body, defined once with the other wire types in `countersign-core`.

pub use countersign_core::wire::application::{CreateRequest as StepUp, RequestContext as Context};
