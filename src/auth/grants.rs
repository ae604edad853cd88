//! Who holds what: Django's `Group` model and the many-to-many fields
//! `User.groups`, `User.user_permissions` and `Group.permissions`. The
//! staff area and `porter perms` / `porter groups` change them here;
//! [`permissions`](super::permissions) reads them back, once per request.
//!
//! Granting what is already held, or removing what is not, changes nothing
//! and says so (`Ok(false)`), so that two staff members doing the same at
//! once both succeed and the log records one change.

use diesel::{
    prelude::*,
    result::{DatabaseErrorKind, Error as DieselError},
};

use crate::{
    db::DbConnection,
    schema::{group_permissions, groups, permissions, user_groups, user_permissions},
};

/// A group of users sharing permissions: Django's `Group`.
#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = groups)]
pub struct Group {
    /// Primary key.
    pub id: i32,
    /// The group's unique name.
    pub name: String,
}

/// A permission as stored: its row id, codename and name.
#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = permissions)]
pub struct StoredPermission {
    /// Primary key.
    pub id: i32,
    /// `"sessions.revoke_any"`.
    pub codename: String,
    /// In words.
    pub name: String,
}

/// Inserts a link row unless it is there; returns whether it was added.
/// The insert runs in a savepoint, so that losing a race to an identical
/// grant leaves an enclosing transaction (PostgreSQL's aborts on any
/// error) usable.
fn insert_link(
    conn: &mut DbConnection,
    insert: impl FnOnce(&mut DbConnection) -> QueryResult<usize>,
) -> QueryResult<bool> {
    match conn.transaction(insert) {
        Ok(rows) => Ok(rows > 0),
        Err(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => Ok(false),
        Err(err) => Err(err),
    }
}

/// Every permission in the table, by codename.
pub fn all_permissions(conn: &mut DbConnection) -> QueryResult<Vec<StoredPermission>> {
    permissions::table
        .order(permissions::codename)
        .select(StoredPermission::as_select())
        .load(conn)
}

/// The permission with this codename.
pub fn find_permission(
    conn: &mut DbConnection,
    codename: &str,
) -> QueryResult<Option<StoredPermission>> {
    permissions::table
        .filter(permissions::codename.eq(codename))
        .select(StoredPermission::as_select())
        .first(conn)
        .optional()
}

/// Every group, by name.
pub fn all_groups(conn: &mut DbConnection) -> QueryResult<Vec<Group>> {
    groups::table
        .order(groups::name)
        .select(Group::as_select())
        .load(conn)
}

/// The group named `name`.
pub fn find_group(conn: &mut DbConnection, name: &str) -> QueryResult<Option<Group>> {
    groups::table
        .filter(groups::name.eq(name))
        .select(Group::as_select())
        .first(conn)
        .optional()
}

/// Creates a group; a taken name is a unique violation.
pub fn create_group(conn: &mut DbConnection, name: &str) -> QueryResult<Group> {
    conn.transaction(|conn| {
        diesel::insert_into(groups::table)
            .values(groups::name.eq(name))
            .execute(conn)?;
        groups::table
            .filter(groups::name.eq(name))
            .select(Group::as_select())
            .first(conn)
    })
}

/// Gives `user_id` the permission directly.
pub fn grant_to_user(
    conn: &mut DbConnection,
    user_id: i32,
    permission_id: i32,
) -> QueryResult<bool> {
    insert_link(conn, |conn| {
        diesel::insert_into(user_permissions::table)
            .values((
                user_permissions::user_id.eq(user_id),
                user_permissions::permission_id.eq(permission_id),
            ))
            .execute(conn)
    })
}

/// Takes a directly held permission from `user_id` (those held through a
/// group stay).
pub fn revoke_from_user(
    conn: &mut DbConnection,
    user_id: i32,
    permission_id: i32,
) -> QueryResult<bool> {
    diesel::delete(user_permissions::table.find((user_id, permission_id)))
        .execute(conn)
        .map(|rows| rows > 0)
}

/// Gives every member of `group_id` the permission.
pub fn grant_to_group(
    conn: &mut DbConnection,
    group_id: i32,
    permission_id: i32,
) -> QueryResult<bool> {
    insert_link(conn, |conn| {
        diesel::insert_into(group_permissions::table)
            .values((
                group_permissions::group_id.eq(group_id),
                group_permissions::permission_id.eq(permission_id),
            ))
            .execute(conn)
    })
}

/// Takes the permission from the group.
pub fn revoke_from_group(
    conn: &mut DbConnection,
    group_id: i32,
    permission_id: i32,
) -> QueryResult<bool> {
    diesel::delete(group_permissions::table.find((group_id, permission_id)))
        .execute(conn)
        .map(|rows| rows > 0)
}

/// Puts `user_id` in the group.
pub fn add_to_group(conn: &mut DbConnection, user_id: i32, group_id: i32) -> QueryResult<bool> {
    insert_link(conn, |conn| {
        diesel::insert_into(user_groups::table)
            .values((
                user_groups::user_id.eq(user_id),
                user_groups::group_id.eq(group_id),
            ))
            .execute(conn)
    })
}

/// Takes `user_id` out of the group.
pub fn remove_from_group(
    conn: &mut DbConnection,
    user_id: i32,
    group_id: i32,
) -> QueryResult<bool> {
    diesel::delete(user_groups::table.find((user_id, group_id)))
        .execute(conn)
        .map(|rows| rows > 0)
}

/// The permissions `user_id` holds directly (not through groups).
pub fn direct_permissions(
    conn: &mut DbConnection,
    user_id: i32,
) -> QueryResult<Vec<StoredPermission>> {
    user_permissions::table
        .inner_join(permissions::table)
        .filter(user_permissions::user_id.eq(user_id))
        .order(permissions::codename)
        .select(StoredPermission::as_select())
        .load(conn)
}

/// The groups `user_id` is in.
pub fn groups_of(conn: &mut DbConnection, user_id: i32) -> QueryResult<Vec<Group>> {
    user_groups::table
        .inner_join(groups::table)
        .filter(user_groups::user_id.eq(user_id))
        .order(groups::name)
        .select(Group::as_select())
        .load(conn)
}
