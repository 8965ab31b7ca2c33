//! `/api/v1/categories`: public browsing, manager create, update and delete.

use super::params::PathParams;
use crate::catalog::{self, Category};
use crate::error::Result;
use crate::state::AppState;
use crate::validate::{path_id, Validator};
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use platform::auth::Manager;
use platform::http::Json;
use platform::rules::Text;
use serde::Deserialize;
use utoipa::openapi::Object;
use utoipa::ToSchema;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/categories", get(list).post(create))
        .route(
            "/api/v1/categories/{id}",
            get(read).put(update).delete(remove),
        )
}

/// Category names.
pub const NAME: Text = Text::non_blank(1, 100);
/// Category descriptions.
pub const DESCRIPTION: Text = Text::up_to(1000);

/// Body of a category create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NewCategoryRequest {
    #[schema(required = true, schema_with = name_schema)]
    pub name: Option<String>,
    #[schema(schema_with = description_schema)]
    pub description: Option<String>,
}

/// Body of a category update: absent or null fields stay as they are.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CategoryChangesRequest {
    #[schema(schema_with = name_or_null_schema)]
    pub name: Option<String>,
    #[schema(schema_with = description_schema)]
    pub description: Option<String>,
}

fn name_schema() -> Object {
    NAME.schema()
}

fn name_or_null_schema() -> Object {
    NAME.nullable_schema()
}

fn description_schema() -> Object {
    DESCRIPTION.nullable_schema()
}

const NAME_REQUIRED: &str = "Category name is required";
const NAME_LENGTH: &str = "Category name must be between 1 and 100 characters";
const DESCRIPTION_LENGTH: &str = "Category description must not exceed 1000 characters";

/// Every category, by name.
#[utoipa::path(get, path = "/api/v1/categories", tag = "categories", operation_id = "listCategories",
    responses((status = 200, description = "All categories", body = [Category])))]
pub async fn list(State(state): State<AppState>) -> Result<Json<Vec<Category>>> {
    Ok(Json(catalog::categories(&state.db).await?))
}

/// One category.
#[utoipa::path(get, path = "/api/v1/categories/{id}", tag = "categories", operation_id = "getCategory",
    params(("id" = String, Path, description = "Category id (UUID)")),
    responses((status = 200, body = Category), (status = 404, description = "Not found", body = platform::Problem, content_type = "application/problem+json")))]
pub async fn read(
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
) -> Result<Json<Category>> {
    let id = path_id(&id)?;
    Ok(Json(catalog::category(&state.db, id).await?))
}

/// Creates a category (manager).
#[utoipa::path(post, path = "/api/v1/categories", tag = "categories", operation_id = "createCategory",
    request_body = NewCategoryRequest, security(("bearer" = [])),
    responses((status = 201, body = Category), (status = 400, description = "Invalid", body = platform::Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or bad token"), (status = 403, description = "Not a manager"),
        (status = 409, description = "Name taken", body = platform::Problem, content_type = "application/problem+json")))]
pub async fn create(
    _manager: Manager,
    State(state): State<AppState>,
    Json(body): Json<NewCategoryRequest>,
) -> Result<(StatusCode, Json<Category>)> {
    let mut v = Validator::new();
    v.required_text(
        "name",
        body.name.as_deref(),
        &NAME,
        NAME_REQUIRED,
        NAME_LENGTH,
    )
    .optional_text(
        "description",
        body.description.as_deref(),
        &DESCRIPTION,
        DESCRIPTION_LENGTH,
    );
    v.finish()?;
    let name = body.name.unwrap_or_default();
    let category = catalog::create_category(&state.db, &name, body.description.as_deref()).await?;
    Ok((StatusCode::CREATED, Json(category)))
}

/// Updates a category's name and/or description (manager).
#[utoipa::path(put, path = "/api/v1/categories/{id}", tag = "categories", operation_id = "updateCategory",
    params(("id" = String, Path, description = "Category id (UUID)")),
    request_body = CategoryChangesRequest, security(("bearer" = [])),
    responses((status = 200, body = Category), (status = 400, description = "Invalid", body = platform::Problem, content_type = "application/problem+json"),
        (status = 404, description = "Not found", body = platform::Problem, content_type = "application/problem+json"), (status = 409, description = "Name taken", body = platform::Problem, content_type = "application/problem+json")))]
pub async fn update(
    _manager: Manager,
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
    Json(body): Json<CategoryChangesRequest>,
) -> Result<Json<Category>> {
    let id = path_id(&id)?;
    let mut v = Validator::new();
    v.optional_text("name", body.name.as_deref(), &NAME, NAME_LENGTH)
        .optional_text(
            "description",
            body.description.as_deref(),
            &DESCRIPTION,
            DESCRIPTION_LENGTH,
        );
    v.finish()?;
    let category = catalog::update_category(
        &state.db,
        id,
        body.name.as_deref(),
        body.description.as_deref(),
    )
    .await?;
    Ok(Json(category))
}

/// Deletes a category that no product references (manager). One still referenced is a
/// 409, as the original's published contract says (its code answered 400).
#[utoipa::path(delete, path = "/api/v1/categories/{id}", tag = "categories", operation_id = "deleteCategory",
    params(("id" = String, Path, description = "Category id (UUID)")),
    security(("bearer" = [])),
    responses((status = 204, description = "Deleted"),
        (status = 404, description = "Not found", body = platform::Problem, content_type = "application/problem+json"),
        (status = 409, description = "Products (active or discontinued) still reference it", body = platform::Problem, content_type = "application/problem+json")))]
pub async fn remove(
    _manager: Manager,
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
) -> Result<StatusCode> {
    let id = path_id(&id)?;
    catalog::delete_category(&state.db, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
