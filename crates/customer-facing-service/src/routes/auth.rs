//! `POST /api/v1/auth/login`: a token for a manager or guest of the `managers` table.

use crate::error::{Error, Result};
use crate::managers;
use crate::state::AppState;
use crate::validate::Validator;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Extension;
use axum::Router;
use platform::http::Json;
use platform::rules::Text;
use platform::Problem;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::time::Duration;
use utoipa::openapi::Object;
use utoipa::ToSchema;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/auth/login", post(login))
        // An answer may carry a token.
        .layer(axum::middleware::map_response(platform::web::no_store))
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

// Every attempt takes a token of its client and of its user name from that client
// before anything else (see `managers::LoginGuard`); a login that succeeds gives them
// back.
/// Logs in.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", operation_id = "login", request_body = LoginRequest,
    responses((status = 200, body = LoginResponse),
        (status = 400, description = "Missing username or password", body = platform::Problem, content_type = "application/problem+json"),
        (status = 401, body = LoginResponse, description = "Wrong credentials"),
        (status = 429, description = "Too many attempts for this user name from this client, or from this client; see Retry-After", body = platform::Problem, content_type = "application/problem+json"),
        (status = 503, description = "Too many logins in progress; see Retry-After", body = platform::Problem, content_type = "application/problem+json")))]
pub async fn login(
    State(state): State<AppState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    body: std::result::Result<Json<LoginRequest>, Problem>,
) -> Response {
    let client = state
        .clients
        .key(peer.map(|Extension(ConnectInfo(addr))| addr), &headers);
    // Taken before the body is looked at: a malformed attempt is still an attempt.
    match state.logins.per_client.take(&client) {
        Err(wait) => refused(None, &client, wait).into_response(),
        Ok(()) => match body {
            Err(problem) => problem.into_response(),
            Ok(Json(body)) => match attempt(&state, &client, body).await {
                Ok(answer) => answer.into_response(),
                Err(e) => e.into_response(),
            },
        },
    }
}

fn refused(username: Option<&str>, client: &str, retry_after: Duration) -> Error {
    tracing::warn!(username = ?username, client = %client, "login refused: too many attempts");
    Error::TooManyRequests {
        detail: "Too many login attempts. Please wait before trying again.".into(),
        retry_after,
    }
}

async fn attempt(
    state: &AppState,
    client: &str,
    body: LoginRequest,
) -> Result<(StatusCode, Json<LoginResponse>)> {
    let guard = &state.logins;
    let user_key = body
        .username
        .as_deref()
        .map(|username| managers::LoginGuard::user_key(client, username));
    let user_token = user_key
        .as_deref()
        .map(|key| guard.per_user_and_client.take(key));
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
    if let Some(Err(wait)) = user_token {
        return Err(refused(Some(&username), client, wait));
    }
    // A 503 here keeps the tokens: a refused attempt counts.
    let roles = managers::authenticate(&state.db, guard, &username, &password).await?;
    match roles {
        Some(roles) => {
            guard.per_client.give_back(client);
            if let Some(key) = &user_key {
                guard.per_user_and_client.give_back(key);
            }
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
            tracing::info!(username = %username, client = %client, "login refused");
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
