//! `POST /api/v1/auth/login`: a token for a manager or guest of the `managers` table.

use crate::error::Result;
use crate::managers;
use crate::startup::AppState;
use crate::validate::Validator;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::Router;
use platform::http::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/auth/login", post(login))
}

/// Credentials.
#[derive(Debug, Deserialize, ToSchema)]
pub struct LoginRequest {
    pub username: Option<String>,
    pub password: Option<String>,
}

/// A bearer token, or nulls and 0 when the credentials were wrong (the original's body).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LoginResponse {
    pub access_token: Option<String>,
    pub token_type: Option<String>,
    /// Seconds the token is valid.
    pub expires_in: i64,
}

/// Logs in.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginRequest,
    responses((status = 200, body = LoginResponse),
        (status = 400, description = "Missing username or password", body = crate::openapi::ProblemDetails, content_type = "application/problem+json"),
        (status = 401, body = LoginResponse, description = "Wrong credentials")))]
pub async fn login(
    State(state): State<AppState>,
    Json(body): Json<LoginRequest>,
) -> Result<(StatusCode, Json<LoginResponse>)> {
    let mut v = Validator::new();
    v.required_text(
        "username",
        body.username.as_deref(),
        (1, 100),
        "Username is required",
        "Username must be between 1 and 100 characters",
    )
    .required_text(
        "password",
        body.password.as_deref(),
        (1, 200),
        "Password is required",
        "Password must be between 1 and 200 characters",
    );
    v.finish()?;
    let username = body.username.unwrap_or_default();
    let password = body.password.unwrap_or_default();
    match managers::authenticate(&state.db, &username, &password).await? {
        Some(roles) => {
            let roles: Vec<&str> = roles.iter().map(String::as_str).collect();
            tracing::info!(username = %username, "login succeeded");
            Ok((
                StatusCode::OK,
                Json(LoginResponse {
                    access_token: Some(state.keys.sign(&username, &roles)),
                    token_type: Some("Bearer".into()),
                    expires_in: state.keys.lifetime_secs(),
                }),
            ))
        }
        None => {
            tracing::info!(username = %username, "login refused");
            Ok((
                StatusCode::UNAUTHORIZED,
                Json(LoginResponse {
                    access_token: None,
                    token_type: None,
                    expires_in: 0,
                }),
            ))
        }
    }
}
