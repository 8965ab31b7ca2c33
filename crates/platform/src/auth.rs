//! HS256 JSON Web Tokens with key ids, and the extractors that guard routes.
//!
//! Tokens carry `sub`, `iss`, `iat`, `exp` and `roles` like the original's. The header's
//! `kid` is derived from the secret (first 16 hex digits of its SHA-256), so after a
//! rotation the current secret signs and the previous ones still verify, with no key
//! names to configure. Only `HS256` is accepted; `none` and every other algorithm are
//! rejected, as are tokens without a `kid`.

use crate::config::{JwtSettings, Secret};
use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// The development secret of the original; refused outside local development. It is
/// the JWT settings' default, so it lives with them.
pub use crate::config::DEMO_SECRET;
const MIN_SECRET_BYTES: usize = 32;
const CLOCK_SKEW_SECS: i64 = 60;

/// Whether `a` and `b` are equal, in time that depends only on their lengths: a
/// credential compared this way leaks nothing through timing.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Role that may change the catalogue and manage orders.
pub const ROLE_MANAGER: &str = "MANAGER";

/// Claims of our tokens.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Claims {
    pub sub: String,
    pub iss: String,
    #[serde(default)]
    pub iat: Option<i64>,
    #[serde(default)]
    pub exp: Option<i64>,
    #[serde(default)]
    pub nbf: Option<i64>,
    #[serde(default, deserialize_with = "roles_from_array_or_string")]
    pub roles: Vec<String>,
}

fn roles_from_array_or_string<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Roles {
        Many(Vec<String>),
        One(String),
    }
    Ok(match Option::<Roles>::deserialize(d)? {
        Some(Roles::Many(v)) => v,
        Some(Roles::One(s)) => s.split_whitespace().map(str::to_owned).collect(),
        None => Vec::new(),
    })
}

/// Why a token was refused; the text becomes the `error_description`.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum TokenError {
    #[error("Malformed token")]
    Malformed,
    #[error("Unsupported algorithm")]
    Algorithm,
    #[error("Unknown signing key")]
    UnknownKey,
    #[error("Invalid signature")]
    Signature,
    #[error("Jwt expired")]
    Expired,
    #[error("Jwt has no expiry")]
    NoExpiry,
    #[error("Jwt not yet valid")]
    NotYetValid,
    #[error("Invalid issuer")]
    Issuer,
}

/// Configuration problems with the secrets.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("JWT secret must be at least {MIN_SECRET_BYTES} bytes")]
    TooShort,
    #[error("the demo JWT secret is refused outside local development: set JWT_SECRET and JWT_PREVIOUS_SECRETS to real secrets")]
    DemoSecretOutsideDevelopment,
    #[error("JWT_SECRET or JWT_PREVIOUS_SECRETS is an example placeholder (REPLACE-ME): set real secrets outside local development")]
    PlaceholderOutsideDevelopment,
}

struct Key {
    id: String,
    mac: Hmac<Sha256>,
}

impl Key {
    fn new(secret: &Secret) -> Result<Self, KeyError> {
        let bytes = secret.expose().as_bytes();
        if bytes.len() < MIN_SECRET_BYTES {
            return Err(KeyError::TooShort);
        }
        let mac = <Hmac<Sha256> as Mac>::new_from_slice(bytes).map_err(|_| KeyError::TooShort)?;
        Ok(Self {
            id: key_id(bytes),
            mac,
        })
    }

    fn mac(&self, data: &[u8]) -> Vec<u8> {
        let mut mac = self.mac.clone();
        mac.update(data);
        mac.finalize().into_bytes().to_vec()
    }
}

/// An argon2id PHC string of `password` with a random salt: how manager passwords are
/// stored, by the customer service and by `opsctl manager`.
pub fn hash_password(password: &str) -> anyhow::Result<String> {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| anyhow::anyhow!("password hashing failed: {e}"))
}

/// Whether `password` matches the PHC string `hash`.
pub fn verify_password(password: &str, hash: &str) -> bool {
    use argon2::password_hash::{PasswordHash, PasswordVerifier};
    PasswordHash::new(hash)
        .map(|parsed| {
            argon2::Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

/// The key id of a secret: what a token's `kid` header names.
pub fn key_id(secret: &[u8]) -> String {
    Sha256::digest(secret)
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Signs and verifies tokens.
#[derive(Clone)]
pub struct JwtKeys {
    inner: Arc<Inner>,
}

struct Inner {
    current: Key,
    previous: Vec<Key>,
    issuer: String,
    lifetime_secs: i64,
}

impl JwtKeys {
    /// Keys from the settings; `local_development` allows the demo secret, as the
    /// current secret or a previous one.
    pub fn from_settings(
        settings: &JwtSettings,
        local_development: bool,
    ) -> Result<Self, KeyError> {
        let demo = std::iter::once(&settings.secret)
            .chain(&settings.previous_secrets)
            .any(|s| s.expose() == DEMO_SECRET);
        if demo && !local_development {
            return Err(KeyError::DemoSecretOutsideDevelopment);
        }
        let placeholder = std::iter::once(&settings.secret)
            .chain(&settings.previous_secrets)
            .any(Secret::is_placeholder);
        if placeholder && !local_development {
            return Err(KeyError::PlaceholderOutsideDevelopment);
        }
        let previous = settings
            .previous_secrets
            .iter()
            .map(Key::new)
            .collect::<Result<_, _>>()?;
        Ok(Self {
            inner: Arc::new(Inner {
                current: Key::new(&settings.secret)?,
                previous,
                issuer: settings.issuer.clone(),
                lifetime_secs: i64::from(settings.expiration_minutes) * 60,
            }),
        })
    }

    /// Token lifetime in seconds (`expiresIn` of the login response).
    pub fn lifetime_secs(&self) -> i64 {
        self.inner.lifetime_secs
    }

    /// A signed token for `subject` with `roles`.
    pub fn sign(&self, subject: &str, roles: &[&str]) -> String {
        let now = chrono::Utc::now().timestamp();
        let claims = Claims {
            sub: subject.to_owned(),
            iss: self.inner.issuer.clone(),
            iat: Some(now),
            exp: Some(now + self.inner.lifetime_secs),
            nbf: None,
            roles: roles.iter().map(|r| (*r).to_owned()).collect(),
        };
        self.sign_claims(&claims)
    }

    /// Signs arbitrary claims with the current key (tests use it to forge bad tokens).
    pub fn sign_claims(&self, claims: &Claims) -> String {
        let header =
            serde_json::json!({"alg": "HS256", "typ": "JWT", "kid": self.inner.current.id});
        let encode = |v: &serde_json::Value| {
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap_or_default())
        };
        let claims = serde_json::to_value(claims).unwrap_or_default();
        let signing_input = format!("{}.{}", encode(&header), encode(&claims));
        let signature = URL_SAFE_NO_PAD.encode(self.inner.current.mac(signing_input.as_bytes()));
        format!("{signing_input}.{signature}")
    }

    /// Checks signature, key id, algorithm, issuer and time window.
    pub fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Malformed);
        };
        #[derive(Deserialize)]
        struct Header {
            alg: String,
            kid: Option<String>,
        }
        let header: Header = URL_SAFE_NO_PAD
            .decode(header)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or(TokenError::Malformed)?;
        if header.alg != "HS256" {
            return Err(TokenError::Algorithm);
        }
        let kid = header.kid.ok_or(TokenError::UnknownKey)?;
        let key = std::iter::once(&self.inner.current)
            .chain(&self.inner.previous)
            .find(|k| k.id == kid)
            .ok_or(TokenError::UnknownKey)?;
        let signature = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| TokenError::Malformed)?;
        let mut mac = key.mac.clone();
        mac.update(&token.as_bytes()[..token.rfind('.').unwrap_or(0)]);
        mac.verify_slice(&signature)
            .map_err(|_| TokenError::Signature)?;
        let claims: Claims = URL_SAFE_NO_PAD
            .decode(payload)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or(TokenError::Malformed)?;
        let now = chrono::Utc::now().timestamp();
        // A token without `exp` would be valid for ever: refused, whoever signed it.
        let exp = claims.exp.ok_or(TokenError::NoExpiry)?;
        if now > exp + CLOCK_SKEW_SECS {
            return Err(TokenError::Expired);
        }
        if claims.nbf.is_some_and(|nbf| now + CLOCK_SKEW_SECS < nbf) {
            return Err(TokenError::NotYetValid);
        }
        if claims.iss != self.inner.issuer {
            return Err(TokenError::Issuer);
        }
        Ok(claims)
    }
}

/// The caller, when the request carried a valid bearer token.
#[derive(Debug, Clone)]
pub struct Principal(pub Claims);

impl Principal {
    pub fn has_role(&self, role: &str) -> bool {
        self.0.roles.iter().any(|r| r == role)
    }
}

/// Refusal of a request, with the empty body and `WWW-Authenticate` header of the original.
#[derive(Debug)]
pub enum AuthRejection {
    Missing,
    Invalid(TokenError),
    Forbidden,
}

impl IntoResponse for AuthRejection {
    fn into_response(self) -> Response {
        let (status, challenge) = match self {
            Self::Missing => (StatusCode::UNAUTHORIZED, "Bearer".to_owned()),
            Self::Invalid(e) => (
                StatusCode::UNAUTHORIZED,
                format!(
                    "Bearer error=\"invalid_token\", error_description=\"{e}\", \
                     error_uri=\"https://tools.ietf.org/html/rfc6750#section-3.1\""
                ),
            ),
            Self::Forbidden => (
                StatusCode::FORBIDDEN,
                "Bearer error=\"insufficient_scope\", error_description=\"The request requires higher \
                 privileges than provided by the access token.\", \
                 error_uri=\"https://tools.ietf.org/html/rfc6750#section-3.1\""
                    .to_owned(),
            ),
        };
        let mut response = status.into_response();
        if let Ok(value) = HeaderValue::from_str(&challenge) {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, value);
        }
        response
    }
}

/// Something an app state can lend its keys from.
pub trait HasJwtKeys {
    fn jwt_keys(&self) -> &JwtKeys;
}

fn bearer(parts: &Parts) -> Option<Result<&str, AuthRejection>> {
    let value = parts.headers.get(header::AUTHORIZATION)?;
    let token = value
        .to_str()
        .ok()
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|t| !t.is_empty());
    Some(token.ok_or(AuthRejection::Invalid(TokenError::Malformed)))
}

/// A caller who presented a valid token: `Option<Principal>` on public routes, where a
/// present but bad token is still refused, as the original's bearer filter does.
impl<S: HasJwtKeys + Sync> FromRequestParts<S> for Principal {
    type Rejection = AuthRejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match bearer(parts) {
            None => Err(AuthRejection::Missing),
            Some(token) => state
                .jwt_keys()
                .verify(token?)
                .map(Principal)
                .map_err(AuthRejection::Invalid),
        }
    }
}

impl<S: HasJwtKeys + Sync> OptionalFromRequestParts<S> for Principal {
    type Rejection = AuthRejection;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        match bearer(parts) {
            None => Ok(None),
            Some(token) => state
                .jwt_keys()
                .verify(token?)
                .map(|c| Some(Principal(c)))
                .map_err(AuthRejection::Invalid),
        }
    }
}

/// A caller with the `MANAGER` role.
#[derive(Debug, Clone)]
pub struct Manager(pub Principal);

impl<S: HasJwtKeys + Sync> FromRequestParts<S> for Manager {
    type Rejection = AuthRejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let principal =
            <Principal as FromRequestParts<S>>::from_request_parts(parts, state).await?;
        if principal.has_role(ROLE_MANAGER) {
            Ok(Self(principal))
        } else {
            Err(AuthRejection::Forbidden)
        }
    }
}

/// Middleware for public routes: a request that carries a bearer token must carry a
/// valid one (401 otherwise), as in the original.
pub async fn reject_invalid_bearer<S: HasJwtKeys + Sync>(
    axum::extract::State(state): axum::extract::State<S>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let (mut parts, body) = request.into_parts();
    match <Principal as OptionalFromRequestParts<S>>::from_request_parts(&mut parts, &state).await {
        Ok(principal) => {
            if let Some(principal) = principal {
                parts.extensions.insert(principal);
            }
            next.run(axum::extract::Request::from_parts(parts, body))
                .await
        }
        Err(rejection) => rejection.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(secret: &str, previous: &[&str]) -> JwtSettings {
        JwtSettings {
            secret: Secret::new(secret),
            previous_secrets: previous.iter().map(|s| Secret::new(*s)).collect(),
            issuer: "ecommerce-platform-dev".into(),
            expiration_minutes: 15,
        }
    }

    fn keys(secret: &str) -> JwtKeys {
        JwtKeys::from_settings(&settings(secret, &[]), false).unwrap()
    }

    const A: &str = "a-secret-that-is-at-least-32-bytes-long";
    const B: &str = "b-secret-that-is-at-least-32-bytes-long";

    #[test]
    fn a_signed_token_verifies_with_its_roles() {
        let k = keys(A);
        let claims = k.verify(&k.sign("manager", &["MANAGER"])).unwrap();
        assert_eq!(claims.sub, "manager");
        assert_eq!(claims.roles, vec!["MANAGER"]);
    }

    #[test]
    fn after_rotation_old_tokens_still_verify_and_new_ones_use_the_new_key() {
        let old = keys(A).sign("m", &["MANAGER"]);
        let rotated = JwtKeys::from_settings(&settings(B, &[A]), false).unwrap();
        assert!(rotated.verify(&old).is_ok());
        let new = rotated.sign("m", &["MANAGER"]);
        assert_eq!(keys(A).verify(&new), Err(TokenError::UnknownKey));
    }

    #[test]
    fn forged_tokens_are_rejected() {
        let k = keys(A);
        let enc = |v: serde_json::Value| URL_SAFE_NO_PAD.encode(serde_json::to_vec(&v).unwrap());
        let claims =
            enc(serde_json::json!({"sub":"m","iss":"ecommerce-platform-dev","roles":["MANAGER"]}));
        let none = format!(
            "{}.{}.",
            enc(serde_json::json!({"alg":"none","kid":key_id(A.as_bytes())})),
            claims
        );
        assert_eq!(k.verify(&none), Err(TokenError::Algorithm));
        let no_kid = format!("{}.{}.sig", enc(serde_json::json!({"alg":"HS256"})), claims);
        assert_eq!(k.verify(&no_kid), Err(TokenError::UnknownKey));
        assert_eq!(
            k.verify(&keys(B).sign("m", &[])),
            Err(TokenError::UnknownKey)
        );
        let token = k.sign("guest", &["GUEST"]);
        let mut pieces: Vec<&str> = token.split('.').collect();
        pieces[1] = &claims;
        assert_eq!(k.verify(&pieces.join(".")), Err(TokenError::Signature));
        assert_eq!(k.verify("not-a-token"), Err(TokenError::Malformed));
    }

    #[test]
    fn expired_and_foreign_issuer_tokens_are_rejected() {
        let k = keys(A);
        let now = chrono::Utc::now().timestamp();
        let mut claims = Claims {
            sub: "m".into(),
            iss: "ecommerce-platform-dev".into(),
            iat: Some(now - 7200),
            exp: Some(now - 3600),
            nbf: None,
            roles: vec![],
        };
        assert_eq!(k.verify(&k.sign_claims(&claims)), Err(TokenError::Expired));
        claims.exp = Some(now + 60);
        claims.iss = "someone-else".into();
        assert_eq!(k.verify(&k.sign_claims(&claims)), Err(TokenError::Issuer));
    }

    #[test]
    fn a_hashed_password_verifies_and_a_wrong_one_does_not() {
        let hash = hash_password("manager123").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password("manager123", &hash));
        assert!(!verify_password("manager124", &hash));
        assert!(!verify_password("manager123", "not a hash"));
    }

    #[test]
    fn a_token_without_expiry_is_rejected_even_when_signed_with_our_key() {
        let k = keys(A);
        let claims = Claims {
            sub: "m".into(),
            iss: "ecommerce-platform-dev".into(),
            iat: None,
            exp: None,
            nbf: None,
            roles: vec!["MANAGER".into()],
        };
        assert_eq!(k.verify(&k.sign_claims(&claims)), Err(TokenError::NoExpiry));
    }

    #[test]
    fn the_demo_secret_is_refused_outside_local_development_even_as_a_previous_secret() {
        assert!(matches!(
            JwtKeys::from_settings(&settings(DEMO_SECRET, &[]), false),
            Err(KeyError::DemoSecretOutsideDevelopment)
        ));
        assert!(matches!(
            JwtKeys::from_settings(&settings(A, &[DEMO_SECRET]), false),
            Err(KeyError::DemoSecretOutsideDevelopment)
        ));
        assert!(JwtKeys::from_settings(&settings(DEMO_SECRET, &[]), true).is_ok());
    }

    #[test]
    fn an_example_placeholder_is_refused_outside_local_development() {
        let placeholder = "REPLACE-ME-with-at-least-32-random-bytes-0123456789";
        assert!(matches!(
            JwtKeys::from_settings(&settings(placeholder, &[]), false),
            Err(KeyError::PlaceholderOutsideDevelopment)
        ));
        assert!(matches!(
            JwtKeys::from_settings(&settings(A, &[placeholder]), false),
            Err(KeyError::PlaceholderOutsideDevelopment)
        ));
    }

    #[test]
    fn short_secrets_are_refused() {
        assert!(matches!(
            JwtKeys::from_settings(&settings("short", &[]), false),
            Err(KeyError::TooShort)
        ));
    }
}
