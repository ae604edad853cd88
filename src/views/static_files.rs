//! `/static/...`: the stylesheet and other assets, compiled into the binary
//! so that the server runs from any directory.
//!
//! Each asset is served with an `ETag` and cached for a day; a browser
//! revalidates with `If-None-Match` and gets `304 Not Modified`.

use std::sync::LazyLock;

use actix_web::{
    HttpRequest, HttpResponse,
    http::header::{self, HeaderValue},
    web,
};
use sha2::{Digest, Sha256};

use crate::errors::AppError;

struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
    etag: String,
}

impl Asset {
    fn new(name: &'static str, content_type: &'static str, body: &'static [u8]) -> Self {
        let digest = hex::encode(Sha256::digest(body));
        Self {
            name,
            content_type,
            body,
            etag: format!("\"{}\"", &digest[..16]),
        }
    }
}

/// Every file under `static/`. Add new assets here.
static ASSETS: LazyLock<Vec<Asset>> = LazyLock::new(|| {
    vec![Asset::new(
        "porter.css",
        "text/css; charset=utf-8",
        include_bytes!("../../static/porter.css"),
    )]
});

/// One day: long enough to spare requests, short enough that a deploy shows.
const CACHE_CONTROL: &str = "public, max-age=86400";

/// Serves one asset.
pub async fn asset(req: HttpRequest, name: web::Path<String>) -> Result<HttpResponse, AppError> {
    let asset = ASSETS
        .iter()
        .find(|asset| asset.name == name.as_str())
        .ok_or(AppError::NotFound)?;
    let fresh = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .is_some_and(|tag| tag.as_bytes() == asset.etag.as_bytes());
    let mut response = if fresh {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    response
        .insert_header((
            header::ETAG,
            HeaderValue::from_str(&asset.etag).map_err(anyhow::Error::from)?,
        ))
        .insert_header((header::CACHE_CONTROL, CACHE_CONTROL));
    if fresh {
        return Ok(response.finish());
    }
    Ok(response.content_type(asset.content_type).body(asset.body))
}
