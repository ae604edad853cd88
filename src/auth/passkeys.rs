//! Passkeys (WebAuthn), with `webauthn-rs`: a credential on the user's
//! device, unlocked by its PIN or biometric, that signs in by itself (it is
//! two factors in one), serves as the second factor after a password, and
//! answers `/sudo`. Django has none built in (`django-otp-webauthn` and
//! `django-passkeys` add them).
//!
//! Each use is a *ceremony*: the server makes a challenge, the browser's
//! `navigator.credentials` has the authenticator sign it, the server checks
//! the answer. The server's half of the ceremony (webauthn-rs's state) is
//! kept in the session ([`SessionKeys::PASSKEY_CEREMONY`]) for five minutes
//! and taken out when the answer comes: each challenge is answered once.
//!
//! Signing in with a passkey is step 3 of the dance like any other:
//! [`PasskeyBackend`] is an authentication backend, so `login` stores it as
//! the session's backend and the lazy user is loaded through it. The
//! relying party is `SITE_URL`: its host is the RP id, its origin the only
//! one accepted.

use std::sync::Arc;

use actix_session::Session;
use diesel::prelude::*;
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use sha2::Sha256;
use time::PrimitiveDateTime;
use webauthn_rs::prelude::{
    DiscoverableAuthentication, Passkey, PasskeyAuthentication, PasskeyRegistration,
    PublicKeyCredential, RegisterPublicKeyCredential, RequestChallengeResponse, Url, Uuid,
    Webauthn, WebauthnBuilder,
};

use super::{AuthError, SessionKeys, backends::AuthBackend, backends::Credentials, models};
use crate::{
    db::{DbConnection, DbPool, now},
    schema::passkeys,
    settings::SecretKey,
};

/// How long a ceremony may take, in seconds.
pub const CEREMONY_TTL_SECS: i64 = 5 * 60;

/// The login form field carrying the browser's answer to a sign-in ceremony.
pub const CREDENTIAL_FIELD: &str = "passkey_credential";
/// The field carrying the server's sealed half of it, set by the view.
pub const CEREMONY_FIELD: &str = "passkey_ceremony";

/// Errors of the passkey machinery.
#[derive(Debug, thiserror::Error)]
pub enum PasskeyError {
    /// `SITE_URL` cannot be a relying party (an IP address, say): the site
    /// runs without passkeys.
    #[error("passkeys are not available: SITE_URL is not a domain")]
    Unavailable,
    /// webauthn-rs failed to make a challenge.
    #[error("the passkey ceremony could not start: {0}")]
    Ceremony(String),
    /// A stored credential or state does not parse.
    #[error("stored passkey data does not parse")]
    Stored(#[from] serde_json::Error),
    /// A query failed.
    #[error("a passkey query failed")]
    Query(#[from] diesel::result::Error),
    /// The session could not be written.
    #[error("the session could not be updated")]
    Session(#[from] actix_session::SessionInsertError),
}

/// A passkey as stored, with its name and dates.
#[derive(Clone, Queryable, Selectable)]
#[diesel(table_name = passkeys)]
pub struct StoredPasskey {
    /// Row id, used in the security page's URLs.
    pub id: i32,
    /// Whose passkey it is.
    pub user_id: i32,
    /// The user handle the authenticator keeps.
    pub user_handle: String,
    /// The credential id, hex.
    pub credential_id: String,
    /// webauthn-rs's `Passkey`, JSON.
    credential: String,
    /// The name the user gave it.
    pub name: String,
    /// When it was added.
    pub created_at: PrimitiveDateTime,
    /// When it last signed in or confirmed something.
    pub last_used_at: Option<PrimitiveDateTime>,
}

impl std::fmt::Debug for StoredPasskey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredPasskey")
            .field("id", &self.id)
            .field("user_id", &self.user_id)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl StoredPasskey {
    fn passkey(&self) -> Result<Passkey, PasskeyError> {
        Ok(serde_json::from_str(&self.credential)?)
    }
}

/// The user's passkeys, oldest first.
pub fn list(conn: &mut DbConnection, user_id: i32) -> QueryResult<Vec<StoredPasskey>> {
    passkeys::table
        .filter(passkeys::user_id.eq(user_id))
        .order(passkeys::id)
        .select(StoredPasskey::as_select())
        .load(conn)
}

/// Renames one of the user's passkeys; `false` when it is not theirs.
pub fn rename(conn: &mut DbConnection, user_id: i32, id: i32, name: &str) -> QueryResult<bool> {
    let renamed = diesel::update(
        passkeys::table
            .find(id)
            .filter(passkeys::user_id.eq(user_id)),
    )
    .set(passkeys::name.eq(name))
    .execute(conn)?;
    Ok(renamed == 1)
}

/// Removes one of the user's passkeys; `false` when it is not theirs.
pub fn remove(conn: &mut DbConnection, user_id: i32, id: i32) -> QueryResult<bool> {
    let removed = diesel::delete(
        passkeys::table
            .find(id)
            .filter(passkeys::user_id.eq(user_id)),
    )
    .execute(conn)?;
    Ok(removed == 1)
}

/// Removes every passkey of the user.
pub fn remove_all(conn: &mut DbConnection, user_id: i32) -> QueryResult<usize> {
    diesel::delete(passkeys::table.filter(passkeys::user_id.eq(user_id))).execute(conn)
}

/// What a ceremony is for, and the server's half of it.
#[derive(Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Ceremony {
    /// Adding a passkey to a signed-in user's account.
    Register {
        /// The user handle the new credential gets.
        user_handle: Uuid,
        /// webauthn-rs's state.
        state: PasskeyRegistration,
    },
    /// Signing in with whichever passkey the browser offers.
    SignIn {
        /// webauthn-rs's state.
        state: DiscoverableAuthentication,
    },
    /// Proving to be a known user with one of their passkeys: the second
    /// factor, or `/sudo`.
    Verify {
        /// The user who must answer.
        user_id: i32,
        /// webauthn-rs's state.
        state: PasskeyAuthentication,
    },
}

#[derive(Serialize, Deserialize)]
struct StoredCeremony {
    started_at: i64,
    ceremony: Ceremony,
}

fn unix_now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

impl Ceremony {
    /// Keeps the ceremony in the session, replacing any earlier one.
    pub fn store(self, session: &Session) -> Result<(), PasskeyError> {
        session.insert(
            SessionKeys::PASSKEY_CEREMONY,
            StoredCeremony {
                started_at: unix_now(),
                ceremony: self,
            },
        )?;
        Ok(())
    }

    /// Takes the ceremony out of the session: it answers once. `None` when
    /// there is none or it is older than five minutes.
    pub fn take(session: &Session) -> Option<Self> {
        let stored: StoredCeremony = session.remove_as(SessionKeys::PASSKEY_CEREMONY)?.ok()?;
        let age = unix_now().saturating_sub(stored.started_at);
        (0..=CEREMONY_TTL_SECS)
            .contains(&age)
            .then_some(stored.ceremony)
    }
}

/// The relying party: webauthn-rs configured from `SITE_URL`, and the key
/// that seals sign-in states handed to [`PasskeyBackend`].
#[derive(Clone)]
pub struct Passkeys {
    /// `None` when `SITE_URL` cannot be a relying party.
    webauthn: Option<Arc<Webauthn>>,
    seal_key: [u8; 32],
}

impl std::fmt::Debug for Passkeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Passkeys").finish_non_exhaustive()
    }
}

/// The result of finishing a ceremony the visitor answered wrongly: not an
/// error, a refusal.
pub type Accepted<T> = Option<T>;

impl Passkeys {
    /// The relying party for `site_url` (`https://example.com`): its host
    /// is the RP id, and only that origin is accepted. WebAuthn wants a
    /// domain: on an IP address the site runs without passkeys (and says
    /// so in the log).
    pub fn new(site_url: &str, secret_key: &SecretKey) -> Self {
        let webauthn = Url::parse(site_url).ok().and_then(|origin| {
            let rp_id = origin.domain()?.to_owned();
            WebauthnBuilder::new(&rp_id, &origin)
                .and_then(|builder| builder.rp_name("Porter").build())
                .ok()
        });
        if webauthn.is_none() {
            tracing::warn!(
                site_url,
                "passkeys are off: SITE_URL must name a domain (localhost will do)"
            );
        }
        Self {
            webauthn: webauthn.map(Arc::new),
            seal_key: secret_key.derive(b"porter.auth.passkey_ceremony"),
        }
    }

    /// Whether passkeys can be used on this site.
    pub fn available(&self) -> bool {
        self.webauthn.is_some()
    }

    fn webauthn(&self) -> Result<&Webauthn, PasskeyError> {
        self.webauthn.as_deref().ok_or(PasskeyError::Unavailable)
    }

    /// Starts adding a passkey for `user`: the options for the browser, and
    /// the ceremony to keep. The credential is asked to be discoverable, so
    /// that it can sign in without a username.
    pub fn begin_registration(
        &self,
        conn: &mut DbConnection,
        user: &models::User,
    ) -> Result<(serde_json::Value, Ceremony), PasskeyError> {
        let existing = list(conn, user.id)?;
        // One handle per user, random: it says nothing about them.
        let user_handle = existing
            .first()
            .and_then(|passkey| Uuid::parse_str(&passkey.user_handle).ok())
            .unwrap_or_else(Uuid::new_v4);
        let exclude = existing
            .iter()
            .filter_map(|passkey| hex::decode(&passkey.credential_id).ok())
            .collect::<Vec<_>>();
        let (options, state) = self
            .webauthn()?
            .start_passkey_registration(user_handle, &user.username, &user.username, Some(exclude))
            .map_err(|err| PasskeyError::Ceremony(err.to_string()))?;
        // webauthn-rs leaves discoverability to the authenticator; a
        // passkey that signs in from the login page needs it. (The option
        // only tells the browser what to make; the server checks the same.)
        let mut options = serde_json::to_value(options)?;
        if let Some(selection) = options
            .pointer_mut("/publicKey/authenticatorSelection")
            .and_then(serde_json::Value::as_object_mut)
        {
            selection.insert("residentKey".into(), "required".into());
            selection.insert("requireResidentKey".into(), true.into());
        }
        Ok((options, Ceremony::Register { user_handle, state }))
    }

    /// Finishes adding a passkey: `Ok(None)` when the browser's answer
    /// does not check out (or the credential is already registered).
    pub fn finish_registration(
        &self,
        conn: &mut DbConnection,
        user_id: i32,
        name: &str,
        answer: &str,
        ceremony: Ceremony,
    ) -> Result<Accepted<i32>, PasskeyError> {
        let Ceremony::Register { user_handle, state } = ceremony else {
            return Ok(None);
        };
        let Ok(answer) = serde_json::from_str::<RegisterPublicKeyCredential>(answer) else {
            return Ok(None);
        };
        let passkey = match self
            .webauthn()?
            .finish_passkey_registration(&answer, &state)
        {
            Ok(passkey) => passkey,
            Err(err) => {
                tracing::info!(error = %err, "passkey registration refused");
                return Ok(None);
            }
        };
        let credential_id = hex::encode(passkey.cred_id());
        let inserted = diesel::insert_into(passkeys::table)
            .values((
                passkeys::user_id.eq(user_id),
                passkeys::user_handle.eq(user_handle.to_string()),
                passkeys::credential_id.eq(&credential_id),
                passkeys::credential.eq(serde_json::to_string(&passkey)?),
                passkeys::name.eq(name),
                passkeys::created_at.eq(now()),
            ))
            .execute(conn);
        match inserted {
            Ok(_) => Ok(find_by_credential_id(conn, &credential_id)?.map(|stored| stored.id)),
            // The same credential registered twice: refused, not a fault.
            Err(diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::UniqueViolation,
                _,
            )) => Ok(None),
            Err(err) => Err(err.into()),
        }
    }

    /// Starts a sign-in with any passkey the browser holds for this site.
    pub fn begin_sign_in(&self) -> Result<(RequestChallengeResponse, Ceremony), PasskeyError> {
        let (options, state) = self
            .webauthn()?
            .start_discoverable_authentication()
            .map_err(|err| PasskeyError::Ceremony(err.to_string()))?;
        Ok((options, Ceremony::SignIn { state }))
    }

    /// Starts a ceremony in which `user_id` must answer with one of their
    /// passkeys; `None` when they have none.
    pub fn begin_verify(
        &self,
        conn: &mut DbConnection,
        user_id: i32,
    ) -> Result<Option<(RequestChallengeResponse, Ceremony)>, PasskeyError> {
        let keys = list(conn, user_id)?
            .iter()
            .map(StoredPasskey::passkey)
            .collect::<Result<Vec<_>, _>>()?;
        if keys.is_empty() {
            return Ok(None);
        }
        let (options, state) = self
            .webauthn()?
            .start_passkey_authentication(&keys)
            .map_err(|err| PasskeyError::Ceremony(err.to_string()))?;
        Ok(Some((options, Ceremony::Verify { user_id, state })))
    }

    /// Finishes a [`Ceremony::Verify`] for `user_id`: whether they answered
    /// with one of their passkeys. Blocking.
    pub fn finish_verify(
        &self,
        conn: &mut DbConnection,
        user_id: i32,
        answer: &str,
        ceremony: Ceremony,
    ) -> Result<bool, PasskeyError> {
        let Ceremony::Verify {
            user_id: expected,
            state,
        } = ceremony
        else {
            return Ok(false);
        };
        let Ok(answer) = serde_json::from_str::<PublicKeyCredential>(answer) else {
            return Ok(false);
        };
        if expected != user_id {
            return Ok(false);
        }
        let result = match self
            .webauthn()?
            .finish_passkey_authentication(&answer, &state)
        {
            Ok(result) => result,
            Err(err) => {
                tracing::info!(error = %err, "passkey verification refused");
                return Ok(false);
            }
        };
        let Some(stored) = find_by_credential_id(conn, &hex::encode(result.cred_id()))?
            .filter(|stored| stored.user_id == user_id)
        else {
            return Ok(false);
        };
        record_use(conn, &stored, &result)
    }

    /// The sign-in ceremony sealed for [`PasskeyBackend`]: it travels in
    /// [`Credentials`], whose other fields come from the visitor, so it
    /// carries a MAC only the server can make.
    pub fn seal(&self, ceremony: &Ceremony) -> Result<String, PasskeyError> {
        let json = serde_json::to_string(ceremony)?;
        Ok(format!("{}.{json}", hex::encode(self.mac(json.as_bytes()))))
    }

    fn unseal<T: DeserializeOwned>(&self, sealed: &str) -> Option<T> {
        let (mac, json) = sealed.split_once('.')?;
        let mut check = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.seal_key).ok()?;
        check.update(json.as_bytes());
        check.verify_slice(&hex::decode(mac).ok()?).ok()?;
        serde_json::from_str(json).ok()
    }

    fn mac(&self, bytes: &[u8]) -> Vec<u8> {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.seal_key)
            .expect("HMAC takes a key of any length");
        mac.update(bytes);
        mac.finalize().into_bytes().to_vec()
    }

    /// Finishes a [`Ceremony::SignIn`]: the user whose passkey answered.
    fn finish_sign_in(
        &self,
        conn: &mut DbConnection,
        answer: &str,
        ceremony: Ceremony,
    ) -> Result<Option<i32>, PasskeyError> {
        let Ceremony::SignIn { state } = ceremony else {
            return Ok(None);
        };
        let Ok(answer) = serde_json::from_str::<PublicKeyCredential>(answer) else {
            return Ok(None);
        };
        let Ok((user_handle, credential_id)) = self
            .webauthn()?
            .identify_discoverable_authentication(&answer)
        else {
            return Ok(None);
        };
        let Some(stored) = find_by_credential_id(conn, &hex::encode(credential_id))? else {
            return Ok(None);
        };
        if stored.user_handle != user_handle.to_string() {
            return Ok(None);
        }
        let passkey = stored.passkey()?;
        let result = match self
            .webauthn()?
            .finish_discoverable_authentication_v2(&answer, state, &passkey)
        {
            Ok(result) => result,
            Err(err) => {
                tracing::info!(error = %err, "passkey sign-in refused");
                return Ok(None);
            }
        };
        Ok(record_use(conn, &stored, &result)?.then_some(stored.user_id))
    }
}

fn find_by_credential_id(
    conn: &mut DbConnection,
    credential_id: &str,
) -> QueryResult<Option<StoredPasskey>> {
    passkeys::table
        .filter(passkeys::credential_id.eq(credential_id))
        .select(StoredPasskey::as_select())
        .get_result(conn)
        .optional()
}

/// The credential (JSON) stored for passkey `id`, if it is still there.
fn stored_credential(conn: &mut DbConnection, id: i32) -> QueryResult<Option<String>> {
    passkeys::table
        .find(id)
        .select(passkeys::credential)
        .get_result(conn)
        .optional()
}

/// Stores the counter the authenticator reported, and the time of use;
/// `false` when the use must be refused after all: the passkey was removed
/// meanwhile, or other sign-ins with it kept writing.
///
/// Two sign-ins with one passkey can check their answers against the same
/// stored credential at once. Each write therefore replaces only the
/// credential it read, and one that lost the race reads the winner's and
/// applies its own result to that: the stored counter only ever rises (a
/// lower one would let a cloned authenticator's answers pass).
fn record_use(
    conn: &mut DbConnection,
    stored: &StoredPasskey,
    result: &webauthn_rs::prelude::AuthenticationResult,
) -> Result<bool, PasskeyError> {
    let mut read = stored.credential.clone();
    // Each failed try means another sign-in with this passkey wrote in
    // between; a handful of them at once is already unusual.
    for _ in 0..8 {
        let mut passkey: Passkey = serde_json::from_str(&read)?;
        passkey.update_credential(result);
        let written = diesel::update(
            passkeys::table
                .find(stored.id)
                .filter(passkeys::credential.eq(&read)),
        )
        .set((
            passkeys::credential.eq(serde_json::to_string(&passkey)?),
            passkeys::last_used_at.eq(now()),
        ))
        .execute(conn)?;
        if written == 1 {
            return Ok(true);
        }
        let Some(current) = stored_credential(conn, stored.id)? else {
            return Ok(false);
        };
        read = current;
    }
    tracing::warn!(
        passkey = stored.id,
        "passkey use refused: other sign-ins with it kept writing"
    );
    Ok(false)
}

/// Signing in with a passkey, as an authentication backend: it reads the
/// browser's answer ([`CREDENTIAL_FIELD`]) and the sealed ceremony
/// ([`CEREMONY_FIELD`]) and ignores credentials without them.
#[derive(Debug, Clone)]
pub struct PasskeyBackend {
    passkeys: Passkeys,
}

impl PasskeyBackend {
    /// The name stored in sessions this backend signs in.
    pub const NAME: &'static str = "passkey";

    /// A backend checking answers with `passkeys`.
    pub fn new(passkeys: Passkeys) -> Self {
        Self { passkeys }
    }
}

impl AuthBackend for PasskeyBackend {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn authenticate(
        &self,
        pool: &DbPool,
        credentials: &Credentials,
    ) -> Result<Option<models::User>, AuthError> {
        let (Some(answer), Some(sealed)) = (
            credentials.get(CREDENTIAL_FIELD),
            credentials.get(CEREMONY_FIELD),
        ) else {
            return Ok(None);
        };
        // A ceremony the server did not seal (sent in the form) is refused.
        let Some(ceremony) = self.passkeys.unseal::<Ceremony>(sealed) else {
            return Ok(None);
        };
        let conn = &mut *pool.get()?;
        let user_id = match self.passkeys.finish_sign_in(conn, answer, ceremony) {
            Ok(user_id) => user_id,
            Err(PasskeyError::Query(err)) => return Err(err.into()),
            Err(err) => {
                tracing::warn!(error = %err, "passkey sign-in failed");
                None
            }
        };
        let Some(user_id) = user_id else {
            return Ok(None);
        };
        Ok(models::find_by_id(conn, user_id)?.filter(|user| user.is_active))
    }

    fn get_user(&self, pool: &DbPool, user_id: i32) -> Result<Option<models::User>, AuthError> {
        let user = models::find_by_id(&mut *pool.get()?, user_id)?;
        Ok(user.filter(|user| user.is_active))
    }
}

#[cfg(test)]
mod tests {
    use webauthn_authenticator_rs::{WebauthnAuthenticator, softpasskey::SoftPasskey};
    use webauthn_rs::prelude::AuthenticationResult;

    use super::*;
    use crate::auth::{hashers::PasswordHasher, user_manager};

    const SITE: &str = "https://porter.example";

    /// Alice's passkey, added as the security page adds one, and the
    /// results of two sign-ins with it, in the order the device signed
    /// them (its counter at 1, then 2).
    fn a_passkey_used_twice(
        conn: &mut DbConnection,
        passkeys: &Passkeys,
        alice: &models::User,
    ) -> (StoredPasskey, [AuthenticationResult; 2]) {
        let origin = Url::parse(SITE).expect("a URL");
        let mut device = SoftPasskey::new(true);
        let (mut options, ceremony) = passkeys
            .begin_registration(conn, alice)
            .expect("a registration");
        // The software key keeps no credentials: it cannot make a
        // discoverable one, and need not for this test.
        options["publicKey"]["authenticatorSelection"]["residentKey"] = "discouraged".into();
        options["publicKey"]["authenticatorSelection"]["requireResidentKey"] = false.into();
        let answer = device
            .do_registration(
                origin.clone(),
                serde_json::from_value(options).expect("creation options"),
            )
            .expect("the software key registers");
        let id = passkeys
            .finish_registration(
                conn,
                alice.id,
                "Laptop",
                &serde_json::to_string(&answer).expect("JSON"),
                ceremony,
            )
            .expect("a query")
            .expect("registered");
        let stored = list(conn, alice.id)
            .expect("a query")
            .into_iter()
            .find(|stored| stored.id == id)
            .expect("the passkey");
        let passkey = stored.passkey().expect("a credential");
        let webauthn = passkeys.webauthn().expect("a site");
        let mut sign_in = || {
            let (options, state) = webauthn
                .start_passkey_authentication(std::slice::from_ref(&passkey))
                .expect("a sign-in");
            let answer = device
                .do_authentication(origin.clone(), options)
                .expect("the software key signs");
            webauthn
                .finish_passkey_authentication(&answer, &state)
                .expect("checked against the stored credential")
        };
        let first = sign_in();
        let second = sign_in();
        (stored, [first, second])
    }

    fn stored_counter(conn: &mut DbConnection, id: i32) -> u64 {
        let credential = stored_credential(conn, id)
            .expect("a query")
            .expect("the passkey's row");
        let credential: serde_json::Value = serde_json::from_str(&credential).expect("JSON");
        credential
            .pointer("/cred/counter")
            .and_then(serde_json::Value::as_u64)
            .expect("a counter")
    }

    #[test]
    fn a_sign_in_that_read_the_credential_before_another_wrote_never_lowers_its_counter() {
        let dir = tempfile::tempdir().expect("a directory");
        let pool = crate::db::connect(&format!("sqlite://{}", dir.path().join("p.db").display()))
            .expect("a database");
        let conn = &mut *pool.get().expect("a connection");
        let hasher = PasswordHasher::new(argon2::Params::new(1024, 1, 1, None).expect("valid"))
            .expect("a hasher");
        let alice = user_manager::create_user(conn, &hasher, "alice", "a long passphrase", false)
            .expect("a user");
        let passkeys = Passkeys::new(SITE, &SecretKey::generate());
        // Both sign-ins read the credential (counter 0) before either
        // wrote; the later signature finishes first.
        let (read_by_both, [first, second]) = a_passkey_used_twice(conn, &passkeys, &alice);
        assert!(record_use(conn, &read_by_both, &second).expect("a query"));
        assert_eq!(stored_counter(conn, read_by_both.id), 2);
        assert!(record_use(conn, &read_by_both, &first).expect("a query"));
        assert_eq!(stored_counter(conn, read_by_both.id), 2);

        // Removed while a sign-in was being checked: the use is refused.
        assert!(remove(conn, alice.id, read_by_both.id).expect("removed"));
        assert!(!record_use(conn, &read_by_both, &first).expect("a query"));
    }
}
