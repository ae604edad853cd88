//! Step 2 of the dance, the lazy user: Django's `AuthenticationMiddleware`
//! and `SimpleLazyObject(lambda: get_user(request))`.
//!
//! The middleware costs nothing: it notes which user id the session claims
//! (actix-identity's job) and hangs a [`LazyUser`] on the request. Only when
//! a handler or guard asks for the user is the database touched, once; the
//! answer is cached for the rest of the request. Its companion, the user's
//! permissions ([`LazyUser::permissions`]), is loaded and kept the same way.
//!
//! One shortcut, which reads nothing a request would not read anyway: a
//! route that is not public will load its user before its view runs
//! ([`login_required_by_default`]), so on the database session engines
//! [`UserPrefetch`] reads that user on the session's own trip to the
//! blocking pool ([`prefetch`](crate::sessions::prefetch)), and the lazy
//! user's first load takes it from there. One trip instead of two.
//!
//! [`login_required_by_default`]: super::guards::login_required_by_default

use std::{any::Any, rc::Rc, time::Instant};

use actix_identity::IdentityExt;
use actix_session::{Session, SessionExt};
use actix_web::{
    Error, FromRequest, HttpMessage, HttpRequest,
    body::MessageBody,
    dev::{Payload, ServiceRequest, ServiceResponse},
    middleware::Next,
    web,
};
use futures_util::future::{Ready, ready};
use tokio::sync::Mutex;

use super::{
    AuthContext, AuthError, User,
    guards::PublicRoutes,
    permissions::UserPermissions,
    session_user::{
        SessionClaim, UserLookup, get_user, stamp_login_time, update_session_auth_hash,
    },
};
use crate::{
    db::{run_blocking, with_conn},
    errors::AppError,
    metrics::RequestMetrics,
    sessions::{
        SessionState,
        prefetch::{self, SessionPrefetch},
    },
};

/// The request's user, loaded on first use.
#[derive(Clone)]
pub struct LazyUser(Rc<LazyUserInner>);

struct LazyUserInner {
    auth: web::Data<AuthContext>,
    session: Session,
    claimed_id: Option<String>,
    /// `None` until loaded; then `Some(None)` for anonymous visitors.
    user: Mutex<Option<Option<User>>>,
    /// The user's permissions and groups, once asked for.
    permissions: Mutex<Option<Rc<UserPermissions>>>,
}

impl LazyUser {
    /// The lazy user of `req`, if the middleware is installed.
    pub fn of(req: &HttpRequest) -> Option<Self> {
        req.extensions().get::<Self>().cloned()
    }

    /// The signed-in user, or `None` for an anonymous visitor. The first
    /// call loads the user; later calls return the cached answer.
    pub async fn get(&self) -> Result<Option<User>, AuthError> {
        let mut cached = self.0.user.lock().await;
        if let Some(user) = cached.as_ref() {
            return Ok(user.clone());
        }
        let user = self.load().await?;
        *cached = Some(user.clone());
        Ok(user)
    }

    /// Whether the user has been loaded on this request.
    pub async fn is_loaded(&self) -> bool {
        self.0.user.lock().await.is_some()
    }

    /// Replaces the cached user: `login` and `logout` change who the request
    /// is for.
    pub async fn set(&self, user: Option<User>) {
        *self.0.user.lock().await = Some(user);
        *self.0.permissions.lock().await = None;
    }

    /// What the request's user may do: their permissions and groups,
    /// loaded in one query the first time any page or guard asks, then
    /// kept for the rest of the request. An anonymous visitor's cost no
    /// query.
    pub async fn permissions(&self) -> Result<Rc<UserPermissions>, AuthError> {
        let mut cached = self.0.permissions.lock().await;
        if let Some(permissions) = cached.as_ref() {
            return Ok(Rc::clone(permissions));
        }
        let loaded = match self.get().await? {
            None => UserPermissions::none(),
            Some(user) => {
                with_conn(self.0.auth.pool(), move |conn| {
                    UserPermissions::load(conn, &user).map_err(AuthError::from)
                })
                .await?
            }
        };
        let loaded = Rc::new(loaded);
        *cached = Some(Rc::clone(&loaded));
        Ok(loaded)
    }

    /// Django's `request.user.has_perm(codename)`.
    pub async fn has_perm(&self, codename: &str) -> Result<bool, AuthError> {
        Ok(self.permissions().await?.has_perm(codename))
    }

    /// Django's `request.user.has_perms(codenames)`: every one of them.
    pub async fn has_perms(&self, codenames: &[&str]) -> Result<bool, AuthError> {
        Ok(self.permissions().await?.has_perms(codenames))
    }

    /// Whether the request's user belongs to the group named `group`.
    pub async fn is_member(&self, group: &str) -> Result<bool, AuthError> {
        Ok(self.permissions().await?.is_member(group))
    }

    async fn load(&self) -> Result<Option<User>, AuthError> {
        let Some(claim) = SessionClaim::read(&self.0.session, self.0.claimed_id.as_deref()) else {
            return Ok(None);
        };
        let lacks_login_time = claim.lacks_login_time();
        let lookup = match prefetch::take::<PrefetchedUser>().filter(|found| found.claim == claim) {
            Some(prefetched) => {
                let lookup = prefetched.lookup?;
                RequestMetrics::record_user_load(prefetch::time_taken());
                lookup
            }
            None => {
                let started = Instant::now();
                let auth = self.0.auth.clone();
                let lookup = run_blocking(move || get_user(&auth, &claim)).await??;
                RequestMetrics::record_user_load(started.elapsed());
                lookup
            }
        };
        if lacks_login_time && !matches!(lookup, UserLookup::Stale) {
            // Signed in before login times were noted: its absolute
            // lifetime starts now.
            stamp_login_time(&self.0.session)?;
        }
        match lookup {
            UserLookup::Found(user) => Ok(Some(user)),
            UserLookup::Restamp(user) => {
                update_session_auth_hash(&self.0.session, &self.0.auth, &user)?;
                Ok(Some(user))
            }
            UserLookup::Stale => {
                // As Django: a session whose claim no longer holds is flushed,
                // so it cannot be used again.
                tracing::info!("session claim no longer valid; flushing the session");
                self.0.session.purge();
                Ok(None)
            }
        }
    }
}

impl FromRequest for LazyUser {
    type Error = Error;
    type Future = Ready<Result<Self, Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(Self::of(req).ok_or_else(|| {
            AppError::unexpected(
                "LazyUser requested but auth::middleware::authentication is not installed",
            )
            .into()
        }))
    }
}

/// Middleware: gives every request a [`LazyUser`]. Must run inside the
/// session and identity middleware.
pub async fn authentication(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let auth = req
        .app_data::<web::Data<AuthContext>>()
        .cloned()
        .ok_or_else(|| AppError::unexpected("AuthContext is not registered as app data"))?;
    let claimed_id = req.get_identity().ok().and_then(|id| id.id().ok());
    let lazy_user = LazyUser(Rc::new(LazyUserInner {
        auth,
        session: req.get_session(),
        claimed_id,
        user: Mutex::new(None),
        permissions: Mutex::new(None),
    }));
    req.extensions_mut().insert(lazy_user);
    next.call(req).await
}

/// Reads the user a session claims on the session's own trip to the
/// blocking pool, for requests that will certainly ask for it: those whose
/// route is not public (see the module's docs). Start-up registers it on
/// the database session engines.
pub struct UserPrefetch {
    auth: web::Data<AuthContext>,
    public: web::Data<PublicRoutes>,
}

/// What [`UserPrefetch`] read, for the lazy user's first load: used only
/// if the session still makes the same claim.
struct PrefetchedUser {
    claim: SessionClaim,
    lookup: Result<UserLookup, AuthError>,
}

impl UserPrefetch {
    /// The prefetch for an app with these routes public.
    pub fn new(auth: web::Data<AuthContext>, public: web::Data<PublicRoutes>) -> Self {
        Self { auth, public }
    }
}

impl SessionPrefetch for UserPrefetch {
    fn wanted(&self, req: &ServiceRequest) -> bool {
        !self.public.is_open(req.request())
    }

    fn load(&self, state: &SessionState) -> Option<Box<dyn Any + Send>> {
        let claim = SessionClaim::from_state(state)?;
        let lookup = get_user(&self.auth, &claim);
        Some(Box::new(PrefetchedUser { claim, lookup }))
    }
}
