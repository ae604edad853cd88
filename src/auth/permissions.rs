//! Authorization: Django's `Permission` model, `ModelBackend`'s
//! `get_all_permissions()` and `User.has_perm()`. Comes after the dance:
//! once the lazy user says *who* this is, this says what they may do.
//!
//! Permissions are declared in code, here in [`DECLARED`], and written into
//! the `permissions` table at start-up ([`sync`]), as Django's
//! `post_migrate` handler creates them. A user holds a permission directly,
//! through one of their groups, or by being a superuser (who holds every
//! permission without a row). An inactive user holds none, and loads as
//! anonymous anyway.
//!
//! A request loads the user's permissions and groups in one query, the first
//! time a page or guard asks ([`LazyUser::permissions`]), and keeps them for
//! the rest of the request: the lazy user's companion. Pages that never ask
//! run no permission query.
//!
//! [`LazyUser::permissions`]: super::LazyUser::permissions

use std::collections::BTreeSet;

use diesel::prelude::*;

use super::models::User;
use crate::{
    db::{DbConnection, transaction},
    schema::{group_permissions, groups, permissions, user_groups, user_permissions, users},
};

/// A permission as code declares it: Django's `Permission`, whose
/// `codename` names an action ("app.verb_noun") and `name` says it in words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Permission {
    /// What code asks for: `"sessions.revoke_any"`.
    pub codename: &'static str,
    /// What a person reads in the staff area.
    pub name: &'static str,
}

/// See the staff area's list of users and each user's page.
pub const VIEW_USERS: Permission = Permission {
    codename: "users.view",
    name: "Can see users in the staff area",
};
/// Activate and deactivate users.
pub const CHANGE_ACTIVE: Permission = Permission {
    codename: "users.change_active",
    name: "Can activate and deactivate users",
};
/// Grant and remove groups and permissions (granting superuser needs a
/// superuser as well).
pub const CHANGE_PERMISSIONS: Permission = Permission {
    codename: "users.change_permissions",
    name: "Can grant and remove groups and permissions",
};
/// Mail a user a password reset link.
pub const SEND_PASSWORD_RESET: Permission = Permission {
    codename: "users.send_password_reset",
    name: "Can send users a password reset link",
};
/// Turn off a user's two-factor sign-in (TOTP, recovery codes, passkeys)
/// when they have lost every factor.
pub const RESET_TWO_FACTOR: Permission = Permission {
    codename: "users.reset_two_factor",
    name: "Can reset a user's two-factor sign-in",
};
/// See anyone's sessions.
pub const VIEW_ANY_SESSIONS: Permission = Permission {
    codename: "sessions.view_any",
    name: "Can see anyone's sessions",
};
/// Sign anyone out everywhere.
pub const REVOKE_ANY_SESSIONS: Permission = Permission {
    codename: "sessions.revoke_any",
    name: "Can sign anyone out everywhere",
};
/// Read everyone's security log.
pub const VIEW_ANY_EVENTS: Permission = Permission {
    codename: "events.view_any",
    name: "Can read everyone's security log",
};

/// Every permission the code asks for: the one place they are declared. A
/// fork adds its own here; start-up writes them into the table.
pub const DECLARED: &[Permission] = &[
    VIEW_USERS,
    CHANGE_ACTIVE,
    CHANGE_PERMISSIONS,
    SEND_PASSWORD_RESET,
    RESET_TWO_FACTOR,
    VIEW_ANY_SESSIONS,
    REVOKE_ANY_SESSIONS,
    VIEW_ANY_EVENTS,
];

/// The declared permission with this codename.
pub fn declared(codename: &str) -> Option<Permission> {
    DECLARED.iter().copied().find(|p| p.codename == codename)
}

/// Writes [`DECLARED`] into the `permissions` table: missing ones are
/// added, changed names updated. Rows no longer declared stay (and can
/// still be granted and revoked), as Django leaves stale permissions to
/// the operator. Returns how many rows changed.
pub fn sync(conn: &mut DbConnection) -> QueryResult<usize> {
    transaction(conn, |conn| {
        let stored: Vec<(String, String)> = permissions::table
            .select((permissions::codename, permissions::name))
            .load(conn)?;
        let mut changed = 0;
        for permission in DECLARED {
            match stored.iter().find(|(code, _)| code == permission.codename) {
                Some((_, name)) if name == permission.name => {}
                Some(_) => {
                    changed += diesel::update(
                        permissions::table.filter(permissions::codename.eq(permission.codename)),
                    )
                    .set(permissions::name.eq(permission.name))
                    .execute(conn)?;
                }
                None => {
                    changed += diesel::insert_into(permissions::table)
                        .values((
                            permissions::codename.eq(permission.codename),
                            permissions::name.eq(permission.name),
                        ))
                        .execute(conn)?;
                }
            }
        }
        Ok(changed)
    })
}

/// What one user may do: their permissions (direct and through groups)
/// and the groups they belong to, loaded once per request.
#[derive(Debug, Clone, Default)]
pub struct UserPermissions {
    superuser: bool,
    codenames: BTreeSet<String>,
    groups: BTreeSet<String>,
}

impl UserPermissions {
    /// An anonymous visitor's: nothing.
    pub fn none() -> Self {
        Self::default()
    }

    /// Loads `user`'s permissions and groups in one query. An inactive
    /// user has none.
    pub fn load(conn: &mut DbConnection, user: &User) -> QueryResult<Self> {
        if !user.is_active {
            return Ok(Self::none());
        }
        // One row per (group, permission held through it or directly):
        // starting from the user's own row, every group they are in (none:
        // one row without), each of its permissions, and the direct grants
        // beside them. Written as joins rather than a UNION, which Diesel's
        // connection over both databases cannot express.
        let direct = user_permissions::table
            .filter(user_permissions::user_id.eq(user.id))
            .select(user_permissions::permission_id);
        let rows: Vec<(Option<String>, Option<String>)> = users::table
            .left_join(user_groups::table.on(user_groups::user_id.eq(users::id)))
            .left_join(groups::table.on(groups::id.eq(user_groups::group_id)))
            .left_join(
                group_permissions::table.on(group_permissions::group_id.eq(user_groups::group_id)),
            )
            .left_join(
                permissions::table.on(permissions::id
                    .eq(group_permissions::permission_id)
                    .or(permissions::id.eq_any(direct))),
            )
            .filter(users::id.eq(user.id))
            .select((groups::name.nullable(), permissions::codename.nullable()))
            .load(conn)?;
        let mut loaded = Self {
            superuser: user.is_superuser,
            ..Self::none()
        };
        for (group, codename) in rows {
            loaded.groups.extend(group);
            loaded.codenames.extend(codename);
        }
        Ok(loaded)
    }

    /// Django's `has_perm`: whether the user holds `codename`; a superuser
    /// holds every one.
    pub fn has_perm(&self, codename: &str) -> bool {
        self.superuser || self.codenames.contains(codename)
    }

    /// Django's `has_perms`: whether the user holds every one of them.
    pub fn has_perms(&self, codenames: &[&str]) -> bool {
        codenames.iter().all(|codename| self.has_perm(codename))
    }

    /// Whether the user belongs to the group named `group`.
    pub fn is_member(&self, group: &str) -> bool {
        self.groups.contains(group)
    }

    /// The permissions held by a row (a superuser's are not listed: they
    /// hold them all), by codename.
    pub fn codenames(&self) -> impl Iterator<Item = &str> {
        self.codenames.iter().map(String::as_str)
    }

    /// The user's groups, by name.
    pub fn groups(&self) -> impl Iterator<Item = &str> {
        self.groups.iter().map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_declared_codename_is_unique_and_dotted() {
        let codenames: BTreeSet<_> = DECLARED.iter().map(|p| p.codename).collect();
        assert_eq!(codenames.len(), DECLARED.len());
        assert!(DECLARED.iter().all(|p| p.codename.contains('.')));
    }

    #[test]
    fn a_superuser_holds_what_no_row_grants() {
        let superuser = UserPermissions {
            superuser: true,
            ..UserPermissions::none()
        };
        assert!(superuser.has_perm("anything.at_all"));
        assert!(!UserPermissions::none().has_perm(VIEW_USERS.codename));
    }
}
