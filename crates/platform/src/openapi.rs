//! What every service's OpenAPI document shares: the problem-details schema (derived on
//! [`Problem`](crate::Problem), named `ProblemDetails`), the bearer-token scheme, the
//! answers every route can give ([`StandardResponses`]), links between operations
//! ([`link`]), the document's JSON ([`document`]) and the route that serves it.

use axum::http::header;
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Content, OpenApi, Ref, RefOr, Required, Response};
use utoipa::Modify;

/// The document `D` as pretty JSON, as the services commit it, carrying the service's
/// `version` (its `CARGO_PKG_VERSION`).
pub fn document<D: utoipa::OpenApi>(version: &str) -> String {
    let mut doc = D::openapi();
    doc.info.version = version.to_owned();
    doc.to_pretty_json().unwrap_or_default()
}

/// `GET /v3/api-docs` serving `document` (JSON), rendered once at start-up rather than
/// on every request, and the Swagger UI that reads it at `/swagger-ui.html`.
pub fn router<S: Clone + Send + Sync + 'static>(document: String) -> Router<S> {
    let document = Bytes::from(document);
    Router::new()
        .route(
            "/v3/api-docs",
            get(move || {
                let document = document.clone();
                async move { ([(header::CONTENT_TYPE, "application/json")], document) }
            }),
        )
        .merge(crate::swagger_ui::router())
}

/// Adds the `bearer` (JWT) security scheme that manager routes require.
#[derive(Debug, Clone, Copy)]
pub struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// Content type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// The answers a route can give whatever its handler does, added to every operation of
/// a document that does not already describe them:
///
/// - problem bodies are `application/problem+json` (a handler's `application/json`
///   problem response is moved there);
/// - every route: 400 (a URL holding NUL) and 503 (database unreachable or the service
///   shedding load);
/// - a route with a body: the body is required, and 400 (malformed JSON, wrong types),
///   413 (too large) and 415 (not JSON) are problem details;
/// - a route with a `security` requirement: 401 without or with a bad token, 403 without
///   the role, both with empty bodies and `WWW-Authenticate`, as the original answers;
/// - with `bad_token_anywhere`: 401 on every route, because a request that carries a
///   bearer token must carry a valid one even where none is needed.
#[derive(Debug, Clone, Copy)]
pub struct StandardResponses {
    pub bad_token_anywhere: bool,
}

fn problem_response(description: &str) -> RefOr<Response> {
    RefOr::T(
        utoipa::openapi::ResponseBuilder::new()
            .description(description)
            .content(
                PROBLEM_JSON,
                Content::new(Some(Ref::from_schema_name("ProblemDetails"))),
            )
            .build(),
    )
}

fn challenge_response(description: &str) -> RefOr<Response> {
    RefOr::T(
        utoipa::openapi::ResponseBuilder::new()
            .description(description)
            .header(
                "WWW-Authenticate",
                HeaderBuilder::new()
                    .description(Some("`Bearer`, with `error=\"invalid_token\"` or `error=\"insufficient_scope\"` and a description"))
                    .build(),
            )
            .build(),
    )
}

impl StandardResponses {
    fn apply(&self, operation: &mut Operation) {
        let responses = &mut operation.responses.responses;
        for response in responses.values_mut() {
            if let RefOr::T(response) = response {
                let is_problem = response.content.get("application/json").is_some_and(|c| {
                    matches!(&c.schema, Some(RefOr::Ref(r)) if r.ref_location.ends_with("/ProblemDetails"))
                });
                if is_problem {
                    if let Some(content) = response.content.shift_remove("application/json") {
                        response.content.insert(PROBLEM_JSON.to_owned(), content);
                    }
                }
            }
        }
        let mut add = |status: &str, response: RefOr<Response>| {
            responses.entry(status.to_owned()).or_insert(response);
        };
        add(
            "400",
            problem_response("Bad request: a URL holding NUL (%00), or an invalid value"),
        );
        add(
            "503",
            problem_response("The database is unreachable or the service is shedding load; retry later (see Retry-After)"),
        );
        if let Some(body) = operation.request_body.as_mut() {
            body.required = Some(Required::True);
            add(
                "413",
                problem_response("The body is larger than the service accepts"),
            );
            add(
                "415",
                problem_response("The body is missing a JSON content type"),
            );
        }
        let secured = operation
            .security
            .as_ref()
            .is_some_and(|requirements| !requirements.is_empty());
        if secured || self.bad_token_anywhere {
            add(
                "401",
                challenge_response("No bearer token where one is needed, or an invalid one"),
            );
        }
        if secured {
            add(
                "403",
                challenge_response("The token lacks the MANAGER role"),
            );
        }
    }
}

/// Every operation of `doc`, mutably.
fn operations(doc: &mut OpenApi) -> impl Iterator<Item = &mut Operation> {
    doc.paths.paths.values_mut().flat_map(|item| {
        [
            item.get.as_mut(),
            item.put.as_mut(),
            item.post.as_mut(),
            item.delete.as_mut(),
            item.patch.as_mut(),
        ]
        .into_iter()
        .flatten()
    })
}

impl Modify for StandardResponses {
    fn modify(&self, openapi: &mut OpenApi) {
        operations(openapi).for_each(|operation| self.apply(operation));
    }
}

/// Adds a link named `name` to the `status` response of the operation `from`: the
/// operation `to`, called with `parameters` (name, runtime expression such as
/// `$response.body#/id`). Schemathesis follows links in its stateful phase, so the
/// linked operations get ids that exist.
///
/// # Panics
/// When `from` has no `status` response described inline: a mistake in the document's
/// own definition, caught by the contract tests.
pub fn link(
    doc: &mut OpenApi,
    from: &str,
    status: &str,
    name: &str,
    to: &str,
    parameters: &[(&str, &str)],
) {
    let parameters: serde_json::Map<String, serde_json::Value> = parameters
        .iter()
        .map(|(name, expression)| ((*name).to_owned(), (*expression).into()))
        .collect();
    add_link(
        doc,
        from,
        status,
        name,
        serde_json::json!({"operationId": to, "parameters": parameters}),
    );
}

/// Adds a link named after the operation `to` that fills `to`'s body with `body` (whose
/// strings may be runtime expressions); schemathesis merges it into the body it
/// generates.
pub fn link_body(doc: &mut OpenApi, from: &str, status: &str, to: &str, body: serde_json::Value) {
    add_link(
        doc,
        from,
        status,
        to,
        serde_json::json!({"operationId": to, "requestBody": body}),
    );
}

fn add_link(doc: &mut OpenApi, from: &str, status: &str, name: &str, link: serde_json::Value) {
    let response = operations(doc)
        .find(|op| op.operation_id.as_deref() == Some(from))
        .and_then(|op| op.responses.responses.get_mut(status));
    let Some(RefOr::T(response)) = response else {
        panic!("operation {from} has no inline {status} response to link from");
    };
    // utoipa 5.5 writes `Link` fields in snake case (`operation_id`), which no client
    // reads; the link objects go in as JSON, under the response's own `links` key.
    let links = response
        .extensions
        .get_or_insert_with(Default::default)
        .entry("links".to_owned())
        .or_insert_with(|| serde_json::Value::Object(Default::default()));
    if let serde_json::Value::Object(links) = links {
        links.insert(name.to_owned(), link);
    }
}

/// Gives every parameter named `name` (in the path, query or a header) the schema
/// `schema`: for parameters whose rule lives in code, not in the handler's attribute.
pub fn parameter_schema(doc: &mut OpenApi, name: &str, schema: utoipa::openapi::Object) {
    for operation in operations(doc) {
        for parameter in operation.parameters.iter_mut().flatten() {
            if parameter.name == name {
                parameter.schema = Some(crate::rules::inline(schema.clone()));
            }
        }
    }
}

/// Marks the query parameters `names` of the operation `operation_id` as accepting an
/// empty value (`allowEmptyValue`), which the service reads as the parameter's absence,
/// as the original's Spring binding does.
pub fn empty_means_default(doc: &mut OpenApi, operation_id: &str, names: &[&str]) {
    let parameters = operations(doc)
        .filter(|op| op.operation_id.as_deref() == Some(operation_id))
        .flat_map(|op| op.parameters.iter_mut().flatten());
    for parameter in parameters {
        if names.contains(&parameter.name.as_str()) {
            // utoipa 5 has no field for it; the keyword goes in as written.
            parameter
                .extensions
                .get_or_insert_with(Default::default)
                .insert("allowEmptyValue".to_owned(), true.into());
        }
    }
}

/// Declares the bearer scheme `scheme` (a shared secret, not a JWT) and requires it of
/// every operation under `path_prefix`; `also_for_reads` are schemes a `GET` may use
/// instead. Each such operation documents the 401 it answers without one.
pub fn require_service_token(
    doc: &mut OpenApi,
    path_prefix: &str,
    scheme: &str,
    description: &str,
    also_for_reads: &[&str],
) {
    use utoipa::openapi::security::SecurityRequirement;
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        scheme,
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .description(Some(description))
                .build(),
        ),
    );
    let requirement = |name: &str| SecurityRequirement::new(name, Vec::<String>::new());
    for (path, item) in doc.paths.paths.iter_mut() {
        if !path.starts_with(path_prefix) {
            continue;
        }
        let reads = item.get.iter_mut().map(|op| (op, true));
        let writes = [
            item.put.as_mut(),
            item.post.as_mut(),
            item.delete.as_mut(),
            item.patch.as_mut(),
        ]
        .into_iter()
        .flatten()
        .map(|op| (op, false));
        for (operation, read) in reads.chain(writes) {
            let mut requirements = vec![requirement(scheme)];
            if read {
                requirements.extend(also_for_reads.iter().map(|name| requirement(name)));
            }
            operation.security = Some(requirements);
            operation.responses.responses.insert(
                "401".into(),
                RefOr::T(
                    utoipa::openapi::ResponseBuilder::new()
                        .description("No bearer token, or not one this route accepts")
                        .header(
                            "WWW-Authenticate",
                            HeaderBuilder::new().description(Some("`Bearer`")).build(),
                        )
                        .content(
                            PROBLEM_JSON,
                            Content::new(Some(Ref::from_schema_name("ProblemDetails"))),
                        )
                        .build(),
                ),
            );
        }
    }
}
