//! `/admin/faults`: the fault knobs, behind the admin token.

use crate::error::Error;
use crate::faults::{Faults, FaultsUpdate};
use crate::state::AppState;
use axum::extract::State;
use axum::http::HeaderMap;
use platform::http::Json;
use platform::FieldErrors;

/// The fault knobs now.
#[utoipa::path(get, path = "/admin/faults", tag = "admin", operation_id = "getFaults",
    responses((status = 200, body = Faults),
        (status = 401, description = "The request does not carry the admin token", body = platform::Problem, content_type = "application/problem+json")))]
pub async fn get_faults(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<Faults>, Error> {
    authorize_admin(&state, &headers)?;
    Ok(Json(state.faults.current()))
}

/// Changes the fault knobs; absent fields keep their value.
#[utoipa::path(
    put, path = "/admin/faults", tag = "admin", operation_id = "putFaults",
    request_body = FaultsUpdate,
    responses(
        (status = 200, description = "The knobs after the change", body = Faults),
        (status = 400, body = platform::Problem, content_type = "application/problem+json"),
        (status = 401, description = "The request does not carry the admin token", body = platform::Problem, content_type = "application/problem+json"),
        (status = 415, description = "Body is not application/json", body = platform::Problem, content_type = "application/problem+json"),
    )
)]
pub async fn put_faults(
    State(state): State<AppState>,
    headers: HeaderMap,
    Json(update): Json<FaultsUpdate>,
) -> Result<Json<Faults>, Error> {
    authorize_admin(&state, &headers)?;
    let next = update
        .apply(&state.faults.current())
        .map_err(|(field, message)| Error::Validation(FieldErrors::from([(field, message)])))?;
    state.faults.set(next);
    tracing::warn!(faults = ?next, "fault knobs changed");
    Ok(Json(next))
}

/// Lets an admin request through when it carries the admin token.
fn authorize_admin(state: &AppState, headers: &HeaderMap) -> Result<(), Error> {
    let given = super::bearer(headers);
    let expected = &state.credentials.admin_token;
    if platform::auth::constant_time_eq(given.as_bytes(), expected.expose().as_bytes()) {
        Ok(())
    } else {
        tracing::warn!("admin request refused: missing or wrong admin token");
        Err(Error::Unauthorized)
    }
}
