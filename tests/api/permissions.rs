//! Permissions and groups: who holds what, read back in one query.

use porter::auth::{
    grants,
    models::{self, User},
    permissions::{self, UserPermissions},
};

use crate::helpers::{TestUser, spawn_app};

fn user<S>(app: &crate::helpers::TestApp<S>, id: i32) -> User {
    models::find_by_id(&mut app.db(), id)
        .expect("a user query")
        .expect("the user exists")
}

fn permission_id<S>(app: &crate::helpers::TestApp<S>, codename: &str) -> i32 {
    grants::find_permission(&mut app.db(), codename)
        .expect("a permission query")
        .expect("declared permissions are synced at start-up")
        .id
}

#[actix_web::test]
async fn every_declared_permission_is_in_the_table_after_start_up() {
    let app = spawn_app().await;
    let stored = grants::all_permissions(&mut app.db()).expect("permissions");
    for declared in permissions::DECLARED {
        assert!(
            stored
                .iter()
                .any(|p| p.codename == declared.codename && p.name == declared.name),
            "{} is synced",
            declared.codename
        );
    }
}

#[actix_web::test]
async fn a_permission_is_held_directly_through_a_group_or_as_superuser_and_never_when_inactive() {
    let app = spawn_app().await;
    let view = permission_id(&app, permissions::VIEW_USERS.codename);
    let revoke = permission_id(&app, permissions::REVOKE_ANY_SESSIONS.codename);
    let direct = TestUser::create(&app, "direct");
    let member = TestUser::create(&app, "member");
    let nobody = TestUser::create(&app, "nobody");
    let root = TestUser::create(&app, "root");
    {
        let mut conn = app.db();
        assert!(grants::grant_to_user(&mut conn, direct.id, view).expect("grant"));
        assert!(!grants::grant_to_user(&mut conn, direct.id, view).expect("grant again"));
        let support = grants::create_group(&mut conn, "support").expect("a group");
        grants::grant_to_group(&mut conn, support.id, revoke).expect("grant");
        grants::add_to_group(&mut conn, member.id, support.id).expect("join");
        grants::add_to_group(&mut conn, direct.id, support.id).expect("join");
        models::set_superuser(&mut conn, root.id, true).expect("promote");
    }
    let load = |id| UserPermissions::load(&mut app.db(), &user(&app, id)).expect("loads");

    let direct_perms = load(direct.id);
    assert!(direct_perms.has_perm(permissions::VIEW_USERS.codename));
    assert!(direct_perms.has_perms(&[
        permissions::VIEW_USERS.codename,
        permissions::REVOKE_ANY_SESSIONS.codename
    ]));
    assert!(direct_perms.is_member("support"));

    let member_perms = load(member.id);
    assert!(member_perms.has_perm(permissions::REVOKE_ANY_SESSIONS.codename));
    assert!(!member_perms.has_perm(permissions::VIEW_USERS.codename));
    assert!(member_perms.is_member("support"));

    let nobody_perms = load(nobody.id);
    assert!(!nobody_perms.has_perm(permissions::VIEW_USERS.codename));
    assert!(!nobody_perms.is_member("support"));

    assert!(load(root.id).has_perm(permissions::CHANGE_PERMISSIONS.codename));

    models::set_active(&mut app.db(), direct.id, false).expect("deactivate");
    assert!(!load(direct.id).has_perm(permissions::VIEW_USERS.codename));
}
