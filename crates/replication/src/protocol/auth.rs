//! Mutual challenge–response on the link's shared secret.
//!
//! ```text
//! sender → receiver   Hello     { from, to, nonce_c }
//! receiver → sender   Challenge { region, nonce_s, proof_s = HMAC(secret, transcript("server")) }
//! sender → receiver   Auth      { proof_c = HMAC(secret, transcript("client")), resume_from }
//! receiver → sender   Welcome   { window }            (or Error{Unauthorized}, then close)
//!
//! transcript(role) := "meridian-repl/1" ‖ lp(role) ‖ lp(from) ‖ lp(to) ‖ nonce_c ‖ nonce_s
//! lp(x)            := u16be(len x) ‖ x
//! ```
//!
//! Both proofs cover both nonces, so neither side can replay an old exchange, and the sender
//! checks the receiver's proof before shipping anything: an impostor that does not know the
//! secret can neither inject changes nor swallow them (an ack from an impostor would move the
//! sender's checkpoint past changes the real peer never got). Proofs are compared in constant
//! time (`subtle`). The secret itself never crosses the wire.

use super::frame::NONCE_BYTES;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// Which side computes a proof.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// The connecting sender (sync-out).
    Client,
    /// The accepting receiver (sync-in).
    Server,
}

impl Side {
    fn label(self) -> &'static [u8] {
        match self {
            Side::Client => b"client",
            Side::Server => b"server",
        }
    }
}

/// The nonces and names of one handshake.
#[derive(Clone, Debug)]
pub struct Transcript<'a> {
    /// The sending region.
    pub from: &'a str,
    /// The receiving region.
    pub to: &'a str,
    /// The sender's nonce.
    pub client_nonce: &'a [u8; NONCE_BYTES],
    /// The receiver's nonce.
    pub server_nonce: &'a [u8; NONCE_BYTES],
}

fn put_lp(mac: &mut Hmac<Sha256>, b: &[u8]) {
    let len = u16::try_from(b.len()).unwrap_or(u16::MAX);
    mac.update(&len.to_be_bytes());
    mac.update(b.get(..usize::from(len)).unwrap_or(b));
}

/// `HMAC-SHA256(secret, transcript(side))`.
pub fn proof(secret: &[u8], side: Side, t: &Transcript<'_>) -> [u8; NONCE_BYTES] {
    // HMAC accepts keys of any length; `new_from_slice` cannot fail for it.
    let mut mac = match <Hmac<Sha256> as Mac>::new_from_slice(secret) {
        Ok(m) => m,
        Err(_) => return [0; NONCE_BYTES],
    };
    mac.update(b"meridian-repl/1");
    put_lp(&mut mac, side.label());
    put_lp(&mut mac, t.from.as_bytes());
    put_lp(&mut mac, t.to.as_bytes());
    mac.update(t.client_nonce);
    mac.update(t.server_nonce);
    mac.finalize().into_bytes().into()
}

/// Whether `got` is the proof `side` must send for this transcript (constant time).
pub fn verify(secret: &[u8], side: Side, t: &Transcript<'_>, got: &[u8; NONCE_BYTES]) -> bool {
    let want = proof(secret, side, t);
    bool::from(want.ct_eq(got))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t<'a>(c: &'a [u8; 32], s: &'a [u8; 32]) -> Transcript<'a> {
        Transcript {
            from: "us-east",
            to: "eu-west",
            client_nonce: c,
            server_nonce: s,
        }
    }

    #[test]
    fn proofs_verify_only_with_the_same_secret_side_and_nonces() {
        let (c, s) = ([1u8; 32], [2u8; 32]);
        let p = proof(b"secret", Side::Client, &t(&c, &s));
        assert!(verify(b"secret", Side::Client, &t(&c, &s), &p));
        assert!(!verify(b"other", Side::Client, &t(&c, &s), &p));
        // a server proof is not a client proof (no reflection)
        assert!(!verify(b"secret", Side::Server, &t(&c, &s), &p));
        // fresh nonces: an old proof does not replay
        let s2 = [3u8; 32];
        assert!(!verify(b"secret", Side::Client, &t(&c, &s2), &p));
    }

    #[test]
    fn names_are_length_prefixed() {
        let (c, s) = ([1u8; 32], [2u8; 32]);
        let a = Transcript {
            from: "ab",
            to: "c",
            client_nonce: &c,
            server_nonce: &s,
        };
        let b = Transcript {
            from: "a",
            to: "bc",
            client_nonce: &c,
            server_nonce: &s,
        };
        assert_ne!(proof(b"k", Side::Client, &a), proof(b"k", Side::Client, &b));
    }
}
