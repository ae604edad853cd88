//! The staff area, `/staff/…`: Django's admin pages for users, reduced to
//! what running an authentication service needs. Find a user, see their
//! groups, permissions, flags, sessions and security log, and act:
//! activate, deactivate, sign out everywhere, grant and remove groups and
//! permissions, send a password reset link.
//!
//! Every route is staff-only and needs its own permission (the route table
//! says which, [`urls`](crate::urls)); every action is a CSRF-checked POST
//! and writes its line in the security log in the transaction of the
//! change. Only a superuser can make someone a superuser.

use actix_web::{HttpRequest, HttpResponse, web};
use actix_web_flash_messages::{FlashMessage, IncomingFlashMessages};
use askama::Template;
use serde::Deserialize;

use crate::{
    auth::{
        self, AuthContext, LazyUser, StaffUser, User,
        audit::{self, EventFilter, EventKind},
        grants::{self, ChangedBy, GrantError, Group, StoredPermission},
        models,
        permissions::{self, UserPermissions},
    },
    csrf::CsrfToken,
    db::{DbError, transaction, with_conn},
    errors::AppError,
    mail::{MailError, outbox},
    paths,
    sessions::{SessionBackend, by_user},
    views::{
        Mailing, Message, display_time, messages, password_reset::link_path, render,
        security::ActivityLine, see_other, site_header::SiteHeader, your_sessions::SessionRow,
    },
};

/// Users (and events) per page.
const PAGE_SIZE: i64 = 25;

/// How many of a user's events their page shows.
const USER_PAGE_EVENTS: i64 = 20;

/// `?q=…&page=…`.
#[derive(Debug, Deserialize)]
pub struct UsersQuery {
    #[serde(default)]
    q: String,
    page: Option<u32>,
}

/// One user in the list.
struct UserRow {
    id: i32,
    username: String,
    email: String,
    is_active: bool,
    is_staff: bool,
    is_superuser: bool,
    last_login: String,
}

impl From<User> for UserRow {
    fn from(user: User) -> Self {
        Self {
            id: user.id,
            email: user.email.unwrap_or_default(),
            is_active: user.is_active,
            is_staff: user.is_staff,
            is_superuser: user.is_superuser,
            last_login: user
                .last_login
                .as_ref()
                .map_or_else(|| "never".to_owned(), display_time),
            username: user.username,
        }
    }
}

/// Links to the previous and next page, keeping the query.
struct Pager {
    previous: Option<String>,
    next: Option<String>,
    page: u32,
}

impl Pager {
    /// `base` already ends in `?…&` or `?`.
    fn new(base: &str, page: u32, has_more: bool) -> Self {
        Self {
            previous: (page > 1).then(|| format!("{base}page={}", page - 1)),
            next: has_more.then(|| format!("{base}page={}", page + 1)),
            page,
        }
    }
}

/// The page number asked for (from 1) and the offset it starts at.
fn page_and_offset(page: Option<u32>) -> (u32, i64) {
    let page = page.unwrap_or(1).clamp(1, 100_000);
    (page, i64::from(page - 1) * PAGE_SIZE)
}

/// What the query string carries, escaped for a link.
fn query_value(value: &str) -> String {
    percent_encoding::utf8_percent_encode(value, percent_encoding::NON_ALPHANUMERIC).to_string()
}

#[derive(Template)]
#[template(path = "staff_users.html")]
struct UsersPage {
    header: SiteHeader,
    q: String,
    users: Vec<UserRow>,
    pager: Pager,
}

/// `GET /staff/users`: users, found by name or address, a page at a time.
pub async fn users(
    StaffUser(_): StaffUser,
    header: SiteHeader,
    query: web::Query<UsersQuery>,
    auth: web::Data<AuthContext>,
) -> Result<HttpResponse, AppError> {
    let UsersQuery { q, page } = query.into_inner();
    let q = q.trim().to_owned();
    let (page, offset) = page_and_offset(page);
    let needle = q.clone();
    let mut found = with_conn(auth.pool(), move |conn| {
        models::search(conn, &needle, offset, PAGE_SIZE + 1).map_err(DbError::from)
    })
    .await?;
    let has_more = found.len() > PAGE_SIZE as usize;
    found.truncate(PAGE_SIZE as usize);
    let base = format!("{}?q={}&", paths::STAFF_USERS, query_value(&q));
    render(&UsersPage {
        header,
        users: found.into_iter().map(UserRow::from).collect(),
        pager: Pager::new(&base, page, has_more),
        q,
    })
}

/// What the staff member may do on a user's page: which forms to show.
/// The routes check again; this only spares them buttons that would 403.
struct Abilities {
    change_active: bool,
    change_permissions: bool,
    revoke_sessions: bool,
    send_reset: bool,
    reset_two_factor: bool,
    grant_superuser: bool,
}

#[derive(Template)]
#[template(path = "staff_user.html")]
struct UserPage {
    header: SiteHeader,
    user: UserRow,
    date_joined: String,
    has_email: bool,
    groups: Vec<Group>,
    direct: Vec<StoredPermission>,
    effective: Vec<String>,
    all_groups: Vec<Group>,
    all_permissions: Vec<StoredPermission>,
    /// `None` when the staff member may not see them, or the engine
    /// cannot list them.
    sessions: Option<Vec<SessionRow>>,
    /// `None` when the staff member may not read the log.
    events: Option<Vec<ActivityLine>>,
    can: Abilities,
    csrf_token: String,
    messages: Vec<Message>,
}

/// Everything a user's page shows from the database, read on one connection.
struct UserFacts {
    user: User,
    groups: Vec<Group>,
    direct: Vec<StoredPermission>,
    held: UserPermissions,
    all_groups: Vec<Group>,
    all_permissions: Vec<StoredPermission>,
}

/// `GET /staff/users/{id}`: a user, their groups, permissions, flags,
/// sessions and recent security events, with the actions the staff member
/// may take.
#[allow(clippy::too_many_arguments)] // one extractor per thing the view uses
pub async fn user(
    StaffUser(me): StaffUser,
    header: SiteHeader,
    id: web::Path<i32>,
    lazy_user: LazyUser,
    auth: web::Data<AuthContext>,
    backend: web::Data<SessionBackend>,
    csrf: CsrfToken,
    incoming: IncomingFlashMessages,
) -> Result<HttpResponse, AppError> {
    let id = id.into_inner();
    let facts = with_conn(auth.pool(), move |conn| {
        let Some(user) = models::find_by_id(conn, id)? else {
            return Ok(None);
        };
        Ok::<_, DbError>(Some(UserFacts {
            groups: grants::groups_of(conn, id)?,
            direct: grants::direct_permissions(conn, id)?,
            held: UserPermissions::load(conn, &user)?,
            all_groups: grants::all_groups(conn)?,
            all_permissions: grants::all_permissions(conn)?,
            user,
        }))
    })
    .await?
    .ok_or(AppError::NotFound)?;
    let mine = lazy_user.permissions().await?;
    let sessions = if mine.has_perm(permissions::VIEW_ANY_SESSIONS.codename) {
        let now = time::OffsetDateTime::now_utc();
        by_user::list(&backend, id, None).await?.map(|listed| {
            listed
                .into_iter()
                .map(|session| SessionRow::new(session, now))
                .collect()
        })
    } else {
        None
    };
    let events = if mine.has_perm(permissions::VIEW_ANY_EVENTS.codename) {
        let found = with_conn(auth.pool(), move |conn| {
            audit::recent_for_user(conn, id, USER_PAGE_EVENTS).map_err(DbError::from)
        })
        .await?;
        Some(found.into_iter().map(ActivityLine::from).collect())
    } else {
        None
    };
    let UserFacts {
        user,
        groups,
        direct,
        held,
        all_groups,
        all_permissions,
    } = facts;
    let effective = if user.is_superuser {
        vec!["every permission (superuser)".to_owned()]
    } else {
        held.codenames().map(str::to_owned).collect()
    };
    render(&UserPage {
        header,
        date_joined: display_time(&user.date_joined),
        has_email: user.email.is_some(),
        user: UserRow::from(user),
        groups,
        direct,
        effective,
        all_groups,
        all_permissions,
        sessions,
        events,
        can: Abilities {
            change_active: mine.has_perm(permissions::CHANGE_ACTIVE.codename),
            change_permissions: mine.has_perm(permissions::CHANGE_PERMISSIONS.codename),
            revoke_sessions: mine.has_perm(permissions::REVOKE_ANY_SESSIONS.codename),
            send_reset: mine.has_perm(permissions::SEND_PASSWORD_RESET.codename),
            reset_two_factor: mine.has_perm(permissions::RESET_TWO_FACTOR.codename),
            grant_superuser: me.is_superuser,
        },
        csrf_token: csrf.form_value(),
        messages: messages(&incoming),
    })
}

/// The user page of `id`, where every action returns.
fn back_to(id: i32) -> HttpResponse {
    see_other(&format!("{}/{id}", paths::STAFF_USERS))
}

/// The user `id`, or a 404.
async fn target(auth: &AuthContext, id: i32) -> Result<User, AppError> {
    with_conn(auth.pool(), move |conn| {
        models::find_by_id(conn, id).map_err(DbError::from)
    })
    .await?
    .ok_or(AppError::NotFound)
}

/// The staff member `me`, acting from `req`'s browser.
fn changed_by(me: &User, req: &HttpRequest) -> ChangedBy {
    ChangedBy {
        actor_id: Some(me.id),
        origin: audit::Origin::of(req),
    }
}

/// `POST /staff/users/{id}/activate`: lets the user sign in again.
pub async fn activate(
    req: HttpRequest,
    StaffUser(me): StaffUser,
    id: web::Path<i32>,
    auth: web::Data<AuthContext>,
) -> Result<HttpResponse, AppError> {
    let user = target(&auth, id.into_inner()).await?;
    let by = changed_by(&me, &req);
    let user_id = user.id;
    with_conn(auth.pool(), move |conn| {
        transaction(conn, |conn| {
            models::set_active(conn, user_id, true)?;
            audit::record(conn, &by.event(EventKind::UserActivated).about(user_id))
        })
        .map_err(DbError::from)
    })
    .await?;
    FlashMessage::success(format!("{} can sign in again.", user.username)).send();
    Ok(back_to(user.id))
}

/// `POST /staff/users/{id}/deactivate`: the user can no longer sign in, and
/// every session of theirs ends.
pub async fn deactivate(
    req: HttpRequest,
    StaffUser(me): StaffUser,
    id: web::Path<i32>,
    auth: web::Data<AuthContext>,
    backend: web::Data<SessionBackend>,
) -> Result<HttpResponse, AppError> {
    let user = target(&auth, id.into_inner()).await?;
    let by = changed_by(&me, &req);
    let user_id = user.id;
    let deactivate: auth::AlsoInTransaction = Box::new(move |conn| {
        models::set_active(conn, user_id, false)?;
        audit::record(conn, &by.event(EventKind::UserDeactivated).about(user_id))
    });
    auth::end_every_session(auth.pool(), &backend, user_id, deactivate).await?;
    FlashMessage::success(format!(
        "{} is deactivated and signed out everywhere.",
        user.username
    ))
    .send();
    Ok(back_to(user.id))
}

/// `POST /staff/users/{id}/sign-out-everywhere`: every session of the user
/// ends.
pub async fn sign_out_everywhere(
    req: HttpRequest,
    StaffUser(me): StaffUser,
    id: web::Path<i32>,
    auth: web::Data<AuthContext>,
    backend: web::Data<SessionBackend>,
) -> Result<HttpResponse, AppError> {
    let user = target(&auth, id.into_inner()).await?;
    let event = changed_by(&me, &req)
        .event(EventKind::SignedOutEverywhere)
        .about(user.id);
    let also: auth::AlsoInTransaction = Box::new(move |conn| audit::record(conn, &event));
    match auth::end_every_session(auth.pool(), &backend, user.id, also).await? {
        Some(ended) => FlashMessage::success(format!(
            "{} is signed out everywhere ({ended} session(s) ended).",
            user.username
        )),
        // The cookie engine keeps nothing to count: the raised generation
        // ends each session on its next request.
        None => FlashMessage::success(format!("{} is signed out everywhere.", user.username)),
    }
    .send();
    Ok(back_to(user.id))
}

/// What the group and permission forms post.
#[derive(Debug, Deserialize)]
pub struct GrantForm {
    #[serde(default)]
    group: String,
    #[serde(default)]
    permission: String,
}

/// A change of groups or permissions: which one, and its words.
#[derive(Debug, Clone, Copy)]
enum GrantChange {
    JoinGroup,
    LeaveGroup,
    GrantPermission,
    RevokePermission,
}

/// Makes `change` for the user `id`, with its line in the log.
async fn change_grants(
    req: HttpRequest,
    me: User,
    id: i32,
    form: GrantForm,
    auth: &AuthContext,
    change: GrantChange,
) -> Result<HttpResponse, AppError> {
    let user = target(auth, id).await?;
    let by = changed_by(&me, &req);
    let GrantForm { group, permission } = form;
    let (group, permission) = (group.trim().to_owned(), permission.trim().to_owned());
    let user_id = user.id;
    let what = match change {
        GrantChange::JoinGroup | GrantChange::LeaveGroup => format!("group {group}"),
        GrantChange::GrantPermission | GrantChange::RevokePermission => permission.clone(),
    };
    let outcome = with_conn(auth.pool(), move |conn| match change {
        GrantChange::JoinGroup => grants::join_group(conn, user_id, &group, &by),
        GrantChange::LeaveGroup => grants::leave_group(conn, user_id, &group, &by),
        GrantChange::GrantPermission => grants::grant_permission(conn, user_id, &permission, &by),
        GrantChange::RevokePermission => grants::revoke_permission(conn, user_id, &permission, &by),
    })
    .await;
    match outcome {
        Ok(true) => FlashMessage::success(match change {
            GrantChange::JoinGroup => format!("{} is now in {what}.", user.username),
            GrantChange::LeaveGroup => format!("{} is no longer in {what}.", user.username),
            GrantChange::GrantPermission => format!("{} now holds {what}.", user.username),
            GrantChange::RevokePermission => {
                format!("{} no longer holds {what} directly.", user.username)
            }
        }),
        Ok(false) => FlashMessage::info(format!("Nothing to change for {what}.")),
        Err(err @ (GrantError::UnknownGroup(_) | GrantError::UnknownPermission(_))) => {
            FlashMessage::error(err.to_string())
        }
        Err(err) => return Err(err.into()),
    }
    .send();
    Ok(back_to(user.id))
}

/// `POST /staff/users/{id}/groups/add`: `group`.
pub async fn join_group(
    req: HttpRequest,
    StaffUser(me): StaffUser,
    id: web::Path<i32>,
    form: web::Form<GrantForm>,
    auth: web::Data<AuthContext>,
) -> Result<HttpResponse, AppError> {
    let (id, form) = (id.into_inner(), form.into_inner());
    change_grants(req, me, id, form, &auth, GrantChange::JoinGroup).await
}

/// `POST /staff/users/{id}/groups/remove`: `group`.
pub async fn leave_group(
    req: HttpRequest,
    StaffUser(me): StaffUser,
    id: web::Path<i32>,
    form: web::Form<GrantForm>,
    auth: web::Data<AuthContext>,
) -> Result<HttpResponse, AppError> {
    let (id, form) = (id.into_inner(), form.into_inner());
    change_grants(req, me, id, form, &auth, GrantChange::LeaveGroup).await
}

/// `POST /staff/users/{id}/permissions/grant`: `permission`.
pub async fn grant_permission(
    req: HttpRequest,
    StaffUser(me): StaffUser,
    id: web::Path<i32>,
    form: web::Form<GrantForm>,
    auth: web::Data<AuthContext>,
) -> Result<HttpResponse, AppError> {
    let (id, form) = (id.into_inner(), form.into_inner());
    change_grants(req, me, id, form, &auth, GrantChange::GrantPermission).await
}

/// `POST /staff/users/{id}/permissions/revoke`: `permission`.
pub async fn revoke_permission(
    req: HttpRequest,
    StaffUser(me): StaffUser,
    id: web::Path<i32>,
    form: web::Form<GrantForm>,
    auth: web::Data<AuthContext>,
) -> Result<HttpResponse, AppError> {
    let (id, form) = (id.into_inner(), form.into_inner());
    change_grants(req, me, id, form, &auth, GrantChange::RevokePermission).await
}

/// What the flags form posts: `flag` (`staff` or `superuser`) and `value`
/// (`on` or `off`).
#[derive(Debug, Deserialize)]
pub struct FlagForm {
    #[serde(default)]
    flag: String,
    #[serde(default)]
    value: String,
}

/// `POST /staff/users/{id}/flags`: makes the user staff or superuser, or
/// not. Only a superuser may change who is a superuser.
pub async fn set_flag(
    req: HttpRequest,
    StaffUser(me): StaffUser,
    id: web::Path<i32>,
    form: web::Form<FlagForm>,
    auth: web::Data<AuthContext>,
) -> Result<HttpResponse, AppError> {
    let FlagForm { flag, value } = form.into_inner();
    let on = match value.as_str() {
        "on" => true,
        "off" => false,
        _ => return Err(AppError::BadRequest("value must be on or off".into())),
    };
    let superuser = match flag.as_str() {
        "staff" => false,
        "superuser" => true,
        _ => {
            return Err(AppError::BadRequest(
                "flag must be staff or superuser".into(),
            ));
        }
    };
    if superuser && !me.is_superuser {
        return Err(AppError::Forbidden);
    }
    let user = target(&auth, id.into_inner()).await?;
    let by = changed_by(&me, &req);
    let user_id = user.id;
    let changed = with_conn(auth.pool(), move |conn| {
        if superuser {
            grants::set_superuser(conn, user_id, on, &by)
        } else {
            grants::set_staff(conn, user_id, on, &by)
        }
    })
    .await?;
    let now = if on { "now" } else { "no longer" };
    if changed {
        FlashMessage::success(format!("{} is {now} {flag}.", user.username)).send();
    }
    Ok(back_to(user.id))
}

/// `POST /staff/users/{id}/two-factor/reset`: the user lost every factor;
/// their TOTP, recovery codes and passkeys go, and the password alone
/// signs in again. Staff make sure, out of band, that the person asking
/// owns the account; the security log keeps who did it.
pub async fn reset_two_factor(
    req: HttpRequest,
    StaffUser(me): StaffUser,
    id: web::Path<i32>,
    auth: web::Data<AuthContext>,
) -> Result<HttpResponse, AppError> {
    let user = target(&auth, id.into_inner()).await?;
    let event = changed_by(&me, &req)
        .event(EventKind::TwoFactorReset)
        .about(user.id);
    let user_id = user.id;
    with_conn(auth.pool(), move |conn| {
        transaction(conn, |conn| {
            crate::auth::two_factor::reset(conn, user_id)?;
            audit::record(conn, &event)
        })
        .map_err(DbError::from)
    })
    .await?;
    FlashMessage::success(format!(
        "{}'s two-factor sign-in is off: their password alone signs in.",
        user.username
    ))
    .send();
    Ok(back_to(user.id))
}

/// `POST /staff/users/{id}/password-reset`: mails the user a password reset
/// link, when they have an address.
pub async fn send_password_reset(
    req: HttpRequest,
    StaffUser(me): StaffUser,
    id: web::Path<i32>,
    auth: web::Data<AuthContext>,
    Mailing {
        tokens,
        outbox,
        letters,
    }: Mailing,
) -> Result<HttpResponse, AppError> {
    let user = target(&auth, id.into_inner()).await?;
    let Some(to) = user.email.clone() else {
        FlashMessage::error(format!("{} has no e-mail address.", user.username)).send();
        return Ok(back_to(user.id));
    };
    let event = changed_by(&me, &req)
        .event(EventKind::PasswordResetSent)
        .about(user.id);
    let (tokens, letters, for_mail) = (tokens.into_inner(), letters.into_inner(), user.clone());
    with_conn(auth.pool(), move |conn| {
        transaction(conn, |conn| {
            let mail = letters.password_reset(
                &to,
                &for_mail.username,
                &link_path(&for_mail, &tokens.reset_token(&for_mail)),
                tokens.reset_ttl(),
            )?;
            outbox::enqueue(conn, &mail)?;
            audit::record(conn, &event)?;
            Ok::<_, MailError>(())
        })
    })
    .await?;
    outbox.wake();
    FlashMessage::success(format!(
        "A password reset link is on its way to {}.",
        user.username
    ))
    .send();
    Ok(back_to(user.id))
}

/// `?user=…&kind=…&page=…`.
#[derive(Debug, Deserialize)]
pub struct EventsQuery {
    #[serde(default)]
    user: String,
    #[serde(default)]
    kind: String,
    page: Option<u32>,
}

/// One line of the staff's log.
struct EventRow {
    line: ActivityLine,
    kind: String,
    user_id: Option<i32>,
    actor_id: Option<i32>,
    detail: String,
}

#[derive(Template)]
#[template(path = "staff_events.html")]
struct EventsPage {
    header: SiteHeader,
    user: String,
    kind: String,
    kinds: &'static [EventKind],
    events: Vec<EventRow>,
    unknown_user: bool,
    pager: Pager,
}

/// `GET /staff/events`: everyone's security log, filtered by user and kind.
pub async fn events(
    StaffUser(_): StaffUser,
    header: SiteHeader,
    query: web::Query<EventsQuery>,
    auth: web::Data<AuthContext>,
) -> Result<HttpResponse, AppError> {
    let EventsQuery { user, kind, page } = query.into_inner();
    let (user, kind) = (user.trim().to_owned(), kind.trim().to_owned());
    let (page, offset) = page_and_offset(page);
    let digest = auth.username_digest(&user);
    let (named, wanted_kind) = (user.clone(), EventKind::parse(&kind));
    let found = with_conn(auth.pool(), move |conn| {
        let who = if named.is_empty() {
            None
        } else {
            match models::find_by_username(conn, &named)? {
                Some(found) => Some(found.id),
                None => return Ok(None),
            }
        };
        let filter = EventFilter {
            user: who.map(|id| (id, digest)),
            kind: wanted_kind,
        };
        audit::search(conn, &filter, offset, PAGE_SIZE + 1)
            .map(Some)
            .map_err(DbError::from)
    })
    .await?;
    let unknown_user = found.is_none();
    let mut found = found.unwrap_or_default();
    let has_more = found.len() > PAGE_SIZE as usize;
    found.truncate(PAGE_SIZE as usize);
    let base = format!(
        "{}?user={}&kind={}&",
        paths::STAFF_EVENTS,
        query_value(&user),
        query_value(&kind)
    );
    render(&EventsPage {
        header,
        events: found
            .into_iter()
            .map(|event| EventRow {
                kind: event.kind.clone(),
                user_id: event.user_id,
                actor_id: event.actor_id,
                detail: event.detail.clone(),
                line: ActivityLine::from(event),
            })
            .collect(),
        kinds: EventKind::ALL,
        user,
        kind,
        unknown_user,
        pager: Pager::new(&base, page, has_more),
    })
}
