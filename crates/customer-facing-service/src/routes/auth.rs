//! `POST /api/v1/auth/login`: a token for a manager or guest of the `managers` table.

use crate::error::{Error, Result};
use crate::managers;
use crate::state::AppState;
use crate::validate::Validator;
use axum::extract::{ConnectInfo, State};
use axum::http::StatusCode;
use axum::routing::post;
use axum::Extension;
use axum::Router;
use platform::http::Json;
use platform::rules::Text;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use utoipa::openapi::Object;
use utoipa::ToSchema;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/auth/login", post(login))
}

/// User names.
const USERNAME: Text = Text::non_blank(1, 100);
/// Passwords.
const PASSWORD: Text = Text::non_blank(1, 200);

/// Credentials.
#[derive(Debug, Deserialize, ToSchema)]
pub struct LoginRequest {
    #[schema(required = true, schema_with = username_schema)]
    pub username: Option<String>,
    #[schema(required = true, schema_with = password_schema)]
    pub password: Option<String>,
}

fn username_schema() -> Object {
    USERNAME.schema()
}

fn password_schema() -> Object {
    PASSWORD.schema()
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
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", operation_id = "login", request_body = LoginRequest,
    responses((status = 200, body = LoginResponse),
        (status = 400, description = "Missing username or password", body = platform::Problem, content_type = "application/problem+json"),
        (status = 401, body = LoginResponse, description = "Wrong credentials"),
        (status = 429, description = "Too many failed logins for this user name or client; see Retry-After", body = platform::Problem, content_type = "application/problem+json"),
        (status = 503, description = "Too many logins in progress; see Retry-After", body = platform::Problem, content_type = "application/problem+json")))]
pub async fn login(
    State(state): State<AppState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    Json(body): Json<LoginRequest>,
) -> Result<(StatusCode, Json<LoginResponse>)> {
    let mut v = Validator::new();
    v.required_text(
        "username",
        body.username.as_deref(),
        &USERNAME,
        "Username is required",
        "Username must be between 1 and 100 characters",
    )
    .required_text(
        "password",
        body.password.as_deref(),
        &PASSWORD,
        "Password is required",
        "Password must be between 1 and 200 characters",
    );
    v.finish()?;
    let username = body.username.unwrap_or_default();
    let password = body.password.unwrap_or_default();
    let client = peer.map(|Extension(ConnectInfo(addr))| addr.ip().to_string());
    let guard = &state.logins;
    let wait = guard.per_user.allowed(&username).err().into_iter().chain(
        client
            .as_deref()
            .and_then(|c| guard.per_client.allowed(c).err()),
    );
    if let Some(retry_after) = wait.max() {
        tracing::warn!(username = %username, client = ?client, "login refused: too many failed attempts");
        return Err(Error::TooManyRequests {
            detail: "Too many failed logins. Please wait before trying again.".into(),
            retry_after,
        });
    }
    let roles = managers::authenticate(&state.db, guard, &username, &password).await?;
    if roles.is_none() {
        guard.per_user.spend(&username);
        if let Some(client) = &client {
            guard.per_client.spend(client);
        }
    }
    match roles {
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
