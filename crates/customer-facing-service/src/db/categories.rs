//! The `categories` table.

use chrono::NaiveDateTime;
use platform::time::LocalTime;
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use utoipa::ToSchema;
use uuid::Uuid;

/// A category of products.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Category {
    pub id: Uuid,
    pub name: String,
    pub description: Option<String>,
    #[schema(value_type = String, example = "2025-10-06T14:03:27.51234")]
    pub created_at: LocalTime,
    #[schema(value_type = String, example = "2025-10-06T14:03:27.51234")]
    pub updated_at: LocalTime,
}

/// Every category, by name.
pub async fn list(conn: &mut PgConnection) -> sqlx::Result<Vec<Category>> {
    sqlx::query_as!(
        Category,
        r#"SELECT id, name, description,
                  created_at AS "created_at: LocalTime", updated_at AS "updated_at: LocalTime"
           FROM categories ORDER BY name"#
    )
    .fetch_all(conn)
    .await
}

/// A category by id.
pub async fn find(conn: &mut PgConnection, id: Uuid) -> sqlx::Result<Option<Category>> {
    sqlx::query_as!(
        Category,
        r#"SELECT id, name, description,
                  created_at AS "created_at: LocalTime", updated_at AS "updated_at: LocalTime"
           FROM categories WHERE id = $1"#,
        id
    )
    .fetch_optional(conn)
    .await
}

/// Whether category `id` exists.
pub async fn exists(conn: &mut PgConnection, id: Uuid) -> sqlx::Result<bool> {
    sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM categories WHERE id = $1) AS "exists!""#,
        id
    )
    .fetch_one(conn)
    .await
}

/// Inserts a category created at `at`; a taken name violates `uk_category_name`.
pub async fn insert(
    conn: &mut PgConnection,
    name: &str,
    description: Option<&str>,
    at: NaiveDateTime,
) -> sqlx::Result<Category> {
    sqlx::query_as!(
        Category,
        r#"INSERT INTO categories (id, name, description, created_at, updated_at)
           VALUES ($1, $2, $3, $4, $4)
           RETURNING id, name, description,
                     created_at AS "created_at: LocalTime", updated_at AS "updated_at: LocalTime""#,
        Uuid::new_v4(),
        name,
        description,
        at
    )
    .fetch_one(conn)
    .await
}

/// Sets the name and description given (absent ones stay); `None` when there is no
/// category `id`.
pub async fn update(
    conn: &mut PgConnection,
    id: Uuid,
    name: Option<&str>,
    description: Option<&str>,
    at: NaiveDateTime,
) -> sqlx::Result<Option<Category>> {
    sqlx::query_as!(
        Category,
        r#"UPDATE categories
           SET name = COALESCE($2, name), description = COALESCE($3, description), updated_at = $4
           WHERE id = $1
           RETURNING id, name, description,
                     created_at AS "created_at: LocalTime", updated_at AS "updated_at: LocalTime""#,
        id,
        name,
        description,
        at
    )
    .fetch_optional(conn)
    .await
}

/// Whether any product, active or discontinued, is in category `id`.
pub async fn has_products(conn: &mut PgConnection, id: Uuid) -> sqlx::Result<bool> {
    sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM products WHERE category_id = $1) AS "exists!""#,
        id
    )
    .fetch_one(conn)
    .await
}

/// Deletes category `id`; a product referencing it is a foreign-key violation.
pub async fn delete(conn: &mut PgConnection, id: Uuid) -> sqlx::Result<()> {
    sqlx::query!("DELETE FROM categories WHERE id = $1", id)
        .execute(conn)
        .await
        .map(drop)
}
