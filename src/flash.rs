//! One-time messages ("You have been signed out."): Django's messages
//! framework with its `CookieStorage`, here actix-web-flash-messages'
//! signed `messages` cookie, with two adjustments:
//!
//! * a `messages` cookie that fails its signature check or does not decode
//!   is no message (and a rate-limited security event), never a `400`; the
//!   store's answer already removes the cookie when there is nothing new
//!   to say;
//! * a response with nothing to say to a browser that holds no messages
//!   sets no cookie (the crate sends a removal `Set-Cookie` with every
//!   response, work and bytes for nothing on every page);
//! * the cookie is `Secure` only when `COOKIE_SECURE` is on. The crate
//!   always marks it `Secure`, so over plain http (development,
//!   `COOKIE_SECURE=false`) browsers other than on `localhost` dropped
//!   every message; the crate has no switch, so the `Set-Cookie` it wrote
//!   is rewritten.

use actix_web::{
    HttpRequest,
    cookie::{Cookie, Key},
    dev::ResponseHead,
    http::header::{self, HeaderValue},
};
use actix_web_flash_messages::{
    FlashMessage,
    storage::{CookieMessageStore, FlashMessageStore, LoadError, StoreError},
};

use crate::{cookie_header, security_log::security_event};

/// The name of the cookie that carries flash messages.
pub const FLASH_COOKIE_NAME: &str = "messages";

/// The signed-cookie message store, as Porter configures it.
pub struct FlashCookieStore {
    inner: CookieMessageStore,
    secure: bool,
}

impl FlashCookieStore {
    /// A store signing with `key`, whose cookie is `Secure` when `secure`.
    pub fn new(key: Key, secure: bool) -> Self {
        Self {
            inner: CookieMessageStore::builder(key)
                .cookie_name(FLASH_COOKIE_NAME.to_owned())
                .build(),
            secure,
        }
    }
}

impl FlashMessageStore for FlashCookieStore {
    fn load(&self, request: &HttpRequest) -> Result<Vec<FlashMessage>, LoadError> {
        self.inner.load(request).or_else(|_| {
            security_event(
                "a flash-message cookie failed its signature check (tampered, or made with another SECRET_KEY)",
            );
            Ok(Vec::new())
        })
    }

    fn store(
        &self,
        messages: &[FlashMessage],
        request: HttpRequest,
        response: &mut ResponseHead,
    ) -> Result<(), StoreError> {
        // Sent at all, even unreadable: a bad cookie is cleared too.
        if messages.is_empty() && !cookie_header::sent(request.headers(), FLASH_COOKIE_NAME) {
            return Ok(());
        }
        self.inner.store(messages, request, response)?;
        if !self.secure {
            drop_secure_flag(response);
        }
        Ok(())
    }
}

/// Rewrites the `messages` `Set-Cookie` headers without `Secure`.
fn drop_secure_flag(response: &mut ResponseHead) {
    let headers = response.headers_mut();
    let mut values: Vec<HeaderValue> = headers.get_all(header::SET_COOKIE).cloned().collect();
    let mut changed = false;
    let prefix = format!("{FLASH_COOKIE_NAME}=");
    for value in &mut values {
        if !value.as_bytes().starts_with(prefix.as_bytes()) {
            // Another cookie (the CSRF token's): left as it is, unparsed.
            continue;
        }
        let Some(mut cookie) = value
            .to_str()
            .ok()
            .and_then(|text| Cookie::parse(text.to_owned()).ok())
        else {
            continue;
        };
        if cookie.name() != FLASH_COOKIE_NAME || cookie.secure() != Some(true) {
            continue;
        }
        cookie.set_secure(None);
        if let Ok(rewritten) = HeaderValue::from_str(&cookie.to_string()) {
            *value = rewritten;
            changed = true;
        }
    }
    if changed {
        headers.remove(header::SET_COOKIE);
        for value in values {
            headers.append(header::SET_COOKIE, value);
        }
    }
}
