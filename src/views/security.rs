//! `GET /security`: the signed-in user's recent security activity, read
//! from the security log ([`auth::audit`](crate::auth::audit)). Django has
//! no such page; sites add one so that people notice what they did not do.

use actix_web::HttpResponse;
use askama::Template;

use crate::{
    auth::{AuthContext, CurrentUser, audit},
    db::{DbError, with_conn},
    errors::AppError,
    views::{display_time, site_header::SiteHeader},
};

/// How many events the page shows.
const RECENT_EVENTS: i64 = 20;

/// One line of the activity list.
pub struct ActivityLine {
    /// What happened, in words.
    pub what: String,
    /// When, as pages show times.
    pub at: String,
    /// From which address.
    pub ip: String,
    /// With which browser.
    pub user_agent: String,
    /// Whether a staff member did it, not the user.
    pub by_staff: bool,
}

impl From<audit::Event> for ActivityLine {
    fn from(event: audit::Event) -> Self {
        Self {
            what: event.describe().to_owned(),
            at: display_time(&event.created_at),
            by_staff: event.by_someone_else(),
            ip: event.ip,
            user_agent: event.user_agent,
        }
    }
}

#[derive(Template)]
#[template(path = "security.html")]
struct SecurityPage {
    header: SiteHeader,
    events: Vec<ActivityLine>,
}

/// `GET /security`: the user's latest events, newest first.
pub async fn activity(
    CurrentUser(user): CurrentUser,
    header: SiteHeader,
    auth: actix_web::web::Data<AuthContext>,
) -> Result<HttpResponse, AppError> {
    let user_id = user.id;
    let events = with_conn(auth.pool(), move |conn| {
        audit::recent_for_user(conn, user_id, RECENT_EVENTS).map_err(DbError::from)
    })
    .await?;
    crate::views::render(&SecurityPage {
        header,
        events: events.into_iter().map(ActivityLine::from).collect(),
    })
}
