//! Session tokens on the region's side (`meridian_model::session`): a request carrying a token
//! this region has not applied is refused with a retryable error naming where the session's
//! writes are, and a successful write is answered with this region's mark.

use axum::http::{HeaderMap, HeaderValue};
use meridian_model::ApiError;
use meridian_model::session::{
    REMEMBERED_HEADER, SESSION_HEADER, SessionToken, constrains, is_item_write,
};

use crate::state::AppState;

/// The token a request carries: its own header and a gateway's remembered one, merged.
fn token(headers: &HeaderMap) -> Result<SessionToken, ApiError> {
    let mut token = SessionToken::default();
    for value in headers
        .get_all(SESSION_HEADER)
        .iter()
        .chain(headers.get_all(REMEMBERED_HEADER).iter())
    {
        let text = value
            .to_str()
            .map_err(|_| ApiError::validation("The session token is not ASCII text"))?;
        let t = SessionToken::parse(text)
            .map_err(|e| ApiError::validation(format!("Invalid session token: {e}")))?;
        token.merge(&t);
    }
    Ok(token)
}

/// Test-only sabotage (cargo feature `broken-sessions`): tokens are parsed but never enforced,
/// so `meridian drill heal` must find stale reads.
const BROKEN_SESSIONS: bool = cfg!(feature = "broken-sessions");

/// Refuses an item read whose session token this region has not applied: it is the mark's
/// origin, or it has applied every write of that origin up to the mark.
pub(crate) fn check(state: &AppState, op: &str, headers: &HeaderMap) -> Result<(), ApiError> {
    if !constrains(op) {
        return Ok(());
    }
    let token = token(headers)?;
    let me = state.region();
    let Some((origin, ts)) = token.uncovered(|o, t| o == me || state.covers(o, t)) else {
        return Ok(());
    };
    if BROKEN_SESSIONS {
        return Ok(());
    }
    state.inner.metrics.session_behind.inc();
    Err(ApiError::SessionBehind {
        origin: origin.to_owned(),
        message: format!(
            "Region {me} has not yet applied this session's writes from {origin} (up to {ts}); \
             retry, or send the request to {origin}"
        ),
    })
}

/// This region's mark for the answer to a successful write: the timestamp of its latest
/// change of its own, at or above the version of every write it has answered. (Not its clock,
/// which also counts other regions' timestamps it has seen: a peer covers a mark by applying
/// this region's own changes.)
pub(crate) fn mark(state: &AppState, op: &str) -> Option<HeaderValue> {
    if !is_item_write(op) {
        return None;
    }
    let ts = state.store().own_ts();
    HeaderValue::from_str(&SessionToken::mark(state.region(), ts).to_string()).ok()
}
