//! Who holds what: Django's `Group` model and the many-to-many fields
//! `User.groups`, `User.user_permissions` and `Group.permissions`. The
//! staff area and `porter perms` / `porter groups` change them here;
//! [`permissions`](super::permissions) reads them back, once per request.
//!
//! Granting what is already held, or removing what is not, changes nothing
//! and says so (`Ok(false)`), so that two staff members doing the same at
//! once both succeed and the log records one change. The functions taking
//! a [`ChangedBy`] write the change and its line in the security log in
//! one transaction; both the staff area and the command line use them.

use diesel::{
    prelude::*,
    result::{DatabaseErrorKind, Error as DieselError},
};
use serde_json::json;

use super::{
    audit::{self, EventKind, NewEvent, Origin},
    models,
};
use crate::{
    db::{DbConnection, DbError, transaction},
    errors::AppError,
    schema::{group_permissions, groups, permissions, user_groups, user_permissions, users},
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
    match transaction(conn, insert) {
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
        .get_result(conn)
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
        .get_result(conn)
        .optional()
}

/// Creates a group; a taken name is a unique violation.
pub fn create_group(conn: &mut DbConnection, name: &str) -> QueryResult<Group> {
    transaction(conn, |conn| {
        diesel::insert_into(groups::table)
            .values(groups::name.eq(name))
            .execute(conn)?;
        groups::table
            .filter(groups::name.eq(name))
            .select(Group::as_select())
            .get_result(conn)
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

/// Who makes a change, and from where: a staff member on a request, or
/// the operator at the command line (no actor).
#[derive(Debug, Clone)]
pub struct ChangedBy {
    /// The staff member, if the change came through the staff area.
    pub actor_id: Option<i32>,
    /// Their client, or the command line.
    pub origin: Origin,
}

impl ChangedBy {
    /// `porter` at the command line.
    pub fn command_line() -> Self {
        Self {
            actor_id: None,
            origin: Origin::command_line(),
        }
    }

    /// The security log's line for `kind`, by this actor.
    pub fn event(&self, kind: EventKind) -> NewEvent {
        let event = NewEvent::new(kind, self.origin.clone());
        match self.actor_id {
            Some(actor) => event.actor(actor),
            None => event,
        }
    }
}

/// Why a grant could not be made.
#[derive(Debug, thiserror::Error)]
pub enum GrantError {
    /// No permission has this codename.
    #[error("no permission named {0:?} (see `porter perms list`)")]
    UnknownPermission(String),
    /// No group has this name.
    #[error("no group named {0:?}")]
    UnknownGroup(String),
    /// A group of that name exists already.
    #[error("a group named {0:?} exists already")]
    GroupExists(String),
    /// A query failed.
    #[error("a permission query failed")]
    Query(#[from] DieselError),
    /// No connection could be had.
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<GrantError> for AppError {
    /// A name that names nothing is the asker's mistake; the database's
    /// failures are ours (or an outage).
    fn from(err: GrantError) -> Self {
        match err {
            GrantError::Query(err) => DbError::from(err).into(),
            GrantError::Db(err) => err.into(),
            other => AppError::BadRequest(other.to_string()),
        }
    }
}

fn permission_named(
    conn: &mut DbConnection,
    codename: &str,
) -> Result<StoredPermission, GrantError> {
    find_permission(conn, codename)?.ok_or_else(|| GrantError::UnknownPermission(codename.into()))
}

fn group_named(conn: &mut DbConnection, name: &str) -> Result<Group, GrantError> {
    find_group(conn, name)?.ok_or_else(|| GrantError::UnknownGroup(name.into()))
}

/// Runs `change` and, if it changed anything, records `event`, in one
/// transaction; returns whether it changed anything.
fn logged(
    conn: &mut DbConnection,
    change: impl FnOnce(&mut DbConnection) -> Result<(bool, NewEvent), GrantError>,
) -> Result<bool, GrantError> {
    transaction(conn, |conn| {
        let (changed, event) = change(conn)?;
        if changed {
            audit::record(conn, &event)?;
        }
        Ok(changed)
    })
}

/// A change to one link row (user–permission, user–group or
/// group–permission): `apply` adds or removes the row, given the two ids.
type LinkChange = fn(&mut DbConnection, i32, i32) -> QueryResult<bool>;

/// Finds the permission `codename`, applies `apply` to it for `user_id`, and
/// logs `kind`: the one shape of granting and revoking a user's permission.
fn change_user_permission(
    conn: &mut DbConnection,
    user_id: i32,
    codename: &str,
    by: &ChangedBy,
    kind: EventKind,
    apply: LinkChange,
) -> Result<bool, GrantError> {
    logged(conn, |conn| {
        let permission = permission_named(conn, codename)?;
        let event = by
            .event(kind)
            .about(user_id)
            .detail(json!({ "permission": permission.codename }));
        Ok((apply(conn, user_id, permission.id)?, event))
    })
}

/// Finds the group `group`, applies `apply` to `user_id`'s membership, and
/// logs `kind`: the one shape of joining and leaving a group.
fn change_membership(
    conn: &mut DbConnection,
    user_id: i32,
    group: &str,
    by: &ChangedBy,
    kind: EventKind,
    apply: LinkChange,
) -> Result<bool, GrantError> {
    logged(conn, |conn| {
        let group = group_named(conn, group)?;
        let event = by
            .event(kind)
            .about(user_id)
            .detail(json!({ "group": group.name }));
        Ok((apply(conn, user_id, group.id)?, event))
    })
}

/// Finds `group` and the permission `codename`, applies `apply` to the pair,
/// and logs `kind`: the one shape of granting and revoking a group's
/// permission.
fn change_group_permission(
    conn: &mut DbConnection,
    group: &str,
    codename: &str,
    by: &ChangedBy,
    kind: EventKind,
    apply: LinkChange,
) -> Result<bool, GrantError> {
    logged(conn, |conn| {
        let group = group_named(conn, group)?;
        let permission = permission_named(conn, codename)?;
        let event = by
            .event(kind)
            .detail(json!({ "group": group.name, "permission": permission.codename }));
        Ok((apply(conn, group.id, permission.id)?, event))
    })
}

/// Gives `user_id` the permission `codename` directly, and logs it.
pub fn grant_permission(
    conn: &mut DbConnection,
    user_id: i32,
    codename: &str,
    by: &ChangedBy,
) -> Result<bool, GrantError> {
    let kind = EventKind::PermissionGranted;
    change_user_permission(conn, user_id, codename, by, kind, grant_to_user)
}

/// Takes the directly held permission `codename` from `user_id`, and logs it.
pub fn revoke_permission(
    conn: &mut DbConnection,
    user_id: i32,
    codename: &str,
    by: &ChangedBy,
) -> Result<bool, GrantError> {
    let kind = EventKind::PermissionRevoked;
    change_user_permission(conn, user_id, codename, by, kind, revoke_from_user)
}

/// Puts `user_id` in the group `group`, and logs it.
pub fn join_group(
    conn: &mut DbConnection,
    user_id: i32,
    group: &str,
    by: &ChangedBy,
) -> Result<bool, GrantError> {
    change_membership(
        conn,
        user_id,
        group,
        by,
        EventKind::GroupJoined,
        add_to_group,
    )
}

/// Takes `user_id` out of the group `group`, and logs it.
pub fn leave_group(
    conn: &mut DbConnection,
    user_id: i32,
    group: &str,
    by: &ChangedBy,
) -> Result<bool, GrantError> {
    change_membership(
        conn,
        user_id,
        group,
        by,
        EventKind::GroupLeft,
        remove_from_group,
    )
}

/// Creates the group `name`, and logs it.
pub fn new_group(conn: &mut DbConnection, name: &str, by: &ChangedBy) -> Result<Group, GrantError> {
    transaction(conn, |conn| {
        let group = match create_group(conn, name) {
            Err(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => {
                return Err(GrantError::GroupExists(name.into()));
            }
            other => other?,
        };
        audit::record(
            conn,
            &by.event(EventKind::GroupCreated)
                .detail(json!({ "group": group.name })),
        )?;
        Ok(group)
    })
}

/// Gives every member of `group` the permission `codename`, and logs it.
pub fn grant_group_permission(
    conn: &mut DbConnection,
    group: &str,
    codename: &str,
    by: &ChangedBy,
) -> Result<bool, GrantError> {
    let kind = EventKind::GroupPermissionGranted;
    change_group_permission(conn, group, codename, by, kind, grant_to_group)
}

/// Takes the permission `codename` from `group`, and logs it.
pub fn revoke_group_permission(
    conn: &mut DbConnection,
    group: &str,
    codename: &str,
    by: &ChangedBy,
) -> Result<bool, GrantError> {
    let kind = EventKind::GroupPermissionRevoked;
    change_group_permission(conn, group, codename, by, kind, revoke_from_group)
}

/// Makes `user_id` staff or not, and logs it.
pub fn set_staff(
    conn: &mut DbConnection,
    user_id: i32,
    is_staff: bool,
    by: &ChangedBy,
) -> Result<bool, GrantError> {
    logged(conn, |conn| {
        let kind = if is_staff {
            EventKind::StaffGranted
        } else {
            EventKind::StaffRevoked
        };
        let changed = users::table
            .find(user_id)
            .filter(users::is_staff.ne(is_staff))
            .select(users::id)
            .first::<i32>(conn)
            .optional()?
            .is_some()
            && models::set_staff(conn, user_id, is_staff)?;
        Ok((changed, by.event(kind).about(user_id)))
    })
}

/// Makes `user_id` a superuser (and staff) or not, and logs it. Only a
/// superuser may ask: the caller checks.
pub fn set_superuser(
    conn: &mut DbConnection,
    user_id: i32,
    is_superuser: bool,
    by: &ChangedBy,
) -> Result<bool, GrantError> {
    logged(conn, |conn| {
        let kind = if is_superuser {
            EventKind::SuperuserGranted
        } else {
            EventKind::SuperuserRevoked
        };
        let changed = users::table
            .find(user_id)
            .filter(users::is_superuser.ne(is_superuser))
            .select(users::id)
            .first::<i32>(conn)
            .optional()?
            .is_some()
            && models::set_superuser(conn, user_id, is_superuser)?;
        Ok((changed, by.event(kind).about(user_id)))
    })
}
