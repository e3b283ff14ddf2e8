//! Reading an HTTP answer's body no further than a limit: refused at once
//! when its Content-Length says it is too large, and cut off at the limit
//! whatever the headers said.

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};

/// Why a body was not read.
#[derive(Debug)]
pub(crate) enum BodyError {
    /// Larger than the limit.
    TooLarge,
    /// The connection failed mid-body.
    Http(String),
}

/// The whole body of `resp`, at most `limit` bytes.
pub(crate) async fn read_limited<B>(
    resp: http::Response<B>,
    limit: usize,
) -> Result<Bytes, BodyError>
where
    B: http_body::Body,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    let declared = resp
        .headers()
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(BodyError::TooLarge);
    }
    match Limited::new(resp.into_body(), limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(BodyError::TooLarge),
        Err(e) => Err(BodyError::Http(e.to_string())),
    }
}
