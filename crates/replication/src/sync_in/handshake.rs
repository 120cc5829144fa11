//! The receiver's side of the handshake: `Hello` → `Challenge` (our proof) → `Auth` (the
//! peer's proof), with the peer checked against the configuration, its certificate and the
//! topology before anything else is read.

use super::HANDSHAKE_TIMEOUT;
use crate::Ctx;
use crate::conn::send_error;
use crate::conn::{FrameReader, FrameWriter, LinkError};
use crate::protocol::auth::{self, Side, Transcript};
use crate::protocol::batch::check_region_name;
use crate::protocol::{Challenge, ErrorCode, Frame};
use rustls::pki_types::CertificateDer;

/// Refuses a connection: logs, counts, answers with an error frame.
async fn refuse(
    ctx: &Ctx,
    writer: &mut FrameWriter,
    claimed: &str,
    code: ErrorCode,
    why: &str,
) -> LinkError {
    ctx.links.refused(claimed);
    tracing::warn!(peer = %claimed, reason = %why, "replication peer refused");
    send_error(writer, code, why).await;
    match code {
        ErrorCode::Unauthorized => LinkError::Auth(why.to_owned()),
        _ => LinkError::Closed("refused"),
    }
}

/// The receiver's handshake; returns the authenticated peer and the stream's start. Over TLS
/// the peer's certificate must name the region its `Hello` claims.
pub(super) async fn handshake(
    ctx: &Ctx,
    cert: Option<&CertificateDer<'static>>,
    reader: &mut FrameReader,
    writer: &mut FrameWriter,
) -> Result<(String, u64), (String, LinkError)> {
    let me = ctx.config.region.as_str();
    let hello = match reader.next_within(HANDSHAKE_TIMEOUT).await {
        Ok(Frame::Hello(h)) => h,
        Ok(other) => {
            let why = format!("expected Hello, got {}", other.name());
            let e = refuse(ctx, writer, "?", ErrorCode::Invalid, &why).await;
            return Err(("?".into(), e));
        }
        Err(e) => return Err(("?".into(), e)),
    };
    let from = hello.from.clone();
    if check_region_name(&from).is_err() || hello.to != me {
        let e = refuse(ctx, writer, "?", ErrorCode::NotAllowed, "wrong region").await;
        return Err((from, e));
    }
    let Some(peer) = ctx.config.peer(&from) else {
        let e = refuse(ctx, writer, &from, ErrorCode::Unauthorized, "unknown peer").await;
        return Err((from, e));
    };
    if let Some(cert) = cert
        && !crate::tls::names_region(cert, &from)
    {
        let why = "the peer's certificate does not name the region it claims";
        let e = refuse(ctx, writer, &from, ErrorCode::Unauthorized, why).await;
        return Err((from, e));
    }
    if !ctx.config.topology.accepts_from(me, &from) {
        let e = refuse(
            ctx,
            writer,
            &from,
            ErrorCode::NotAllowed,
            "the topology has no link from this region",
        )
        .await;
        return Err((from, e));
    }
    let server_nonce: [u8; 32] = rand::random();
    let t = Transcript {
        from: &from,
        to: me,
        client_nonce: &hello.nonce,
        server_nonce: &server_nonce,
    };
    let challenge = Challenge {
        region: me.to_owned(),
        nonce: server_nonce,
        proof: auth::proof(peer.secret.as_bytes(), Side::Server, &t),
    };
    if let Err(e) = writer.send(&Frame::Challenge(challenge)).await {
        return Err((from, e));
    }
    let auth_frame = match reader.next_within(HANDSHAKE_TIMEOUT).await {
        Ok(Frame::Auth(a)) => a,
        Ok(Frame::Error(e)) => {
            ctx.links.refused(&from);
            tracing::warn!(peer = %from, reason = %e.message, "replication peer refused: it rejected our proof (do the secrets match?)");
            return Err((from, LinkError::Peer(e.code, e.message)));
        }
        Ok(other) => {
            let why = format!("expected Auth, got {}", other.name());
            let e = refuse(ctx, writer, &from, ErrorCode::Invalid, &why).await;
            return Err((from, e));
        }
        Err(e) => return Err((from, e)),
    };
    if !auth::verify(peer.secret.as_bytes(), Side::Client, &t, &auth_frame.proof) {
        let e = refuse(
            ctx,
            writer,
            &from,
            ErrorCode::Unauthorized,
            "authentication failed",
        )
        .await;
        return Err((from, e));
    }
    Ok((from, auth_frame.resume_from))
}
