//! The chokepoint: every PKCS#11 operation with a key runs through [`run`].
//!
//! A request ([`KeyOp`]) is owned — key reference, mechanism with its parameters, input and the
//! size of the output — so it can be handed to another thread as it is. `run` finds the key's
//! slot and handle valid in this process, takes a pooled session, makes the token call, and
//! applies the recovery policy once for every operation:
//!
//! - a session the token lost (`CKR_SESSION_HANDLE_INVALID`, `CKR_SESSION_CLOSED`,
//!   `CKR_DEVICE_REMOVED`): drop it and the slot's idle sessions, retry once on a fresh one;
//! - a login the token forgot (`CKR_USER_NOT_LOGGED_IN`): log in again without prompting, retry
//!   once;
//! - a key handle the token no longer knows (`CKR_KEY_HANDLE_INVALID`,
//!   `CKR_OBJECT_HANDLE_INVALID`): first the token object instead of its session copy, then a
//!   fresh search.
//!
//! Each kind of recovery is tried at most once, so a token that keeps failing gets an error, not
//! a loop. At debug level every call is logged with the PKCS#11 function, the mechanism, the
//! return code and the duration (never the input or output).

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cryptoki::error::RvError;
use cryptoki::mechanism::eddsa::{EddsaParams, EddsaSignatureScheme};
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsPssParams};
use cryptoki::mechanism::{Mechanism, MechanismType};

use super::Tokens;
use super::object::{KeyObj, Rebind, TokenKey};
use super::pool::is_session_lost;
use super::slot::SignCall;
use crate::error::{Error, Result};

/// A mechanism with its parameters, owned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mech {
    /// `CKM_RSA_PKCS` (PKCS#1 v1.5 over a DigestInfo the caller built).
    RsaPkcs,
    /// `CKM_RSA_X_509` (raw RSA, one modulus-sized block).
    RsaX509,
    /// `CKM_RSA_PKCS_PSS` over a hash.
    RsaPss {
        hash: MechanismType,
        mgf: PkcsMgfType,
        salt_len: u64,
    },
    /// `CKM_ECDSA` over a hash.
    Ecdsa,
    /// `CKM_EDDSA`, pure (over the message).
    Eddsa,
}

impl Mech {
    /// The mechanism as cryptoki passes it to the module.
    fn to_cryptoki(self) -> Mechanism<'static> {
        match self {
            Mech::RsaPkcs => Mechanism::RsaPkcs,
            Mech::RsaX509 => Mechanism::RsaX509,
            Mech::RsaPss {
                hash,
                mgf,
                salt_len,
            } => Mechanism::RsaPkcsPss(PkcsPssParams {
                hash_alg: hash,
                mgf,
                s_len: salt_len.into(),
            }),
            Mech::Ecdsa => Mechanism::Ecdsa,
            Mech::Eddsa => Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Pure)),
        }
    }
}

impl fmt::Display for Mech {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mech::RsaPkcs => "CKM_RSA_PKCS",
            Mech::RsaX509 => "CKM_RSA_X_509",
            Mech::RsaPss { .. } => "CKM_RSA_PKCS_PSS",
            Mech::Ecdsa => "CKM_ECDSA",
            Mech::Eddsa => "CKM_EDDSA",
        })
    }
}

/// What a request asks the token to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Operation {
    /// `C_SignInit` + `C_Sign`.
    Sign,
}

/// One key operation, owned by whoever runs it.
pub(crate) struct KeyOp {
    pub(crate) key: Arc<KeyObj>,
    pub(crate) operation: Operation,
    pub(crate) mechanism: Mech,
    pub(crate) input: Vec<u8>,
    /// Size of the output the token makes (a larger one is asked for again).
    pub(crate) output_len: usize,
}

impl KeyOp {
    /// A signature of `input` with `key`.
    pub(crate) fn sign(key: Arc<KeyObj>, mechanism: Mech, input: Vec<u8>) -> KeyOp {
        let output_len = key.raw_signature_size();
        KeyOp {
            key,
            operation: Operation::Sign,
            mechanism,
            input,
            output_len,
        }
    }
}

/// Runs `op` on the key's token with the recovery policy above.
pub(crate) fn run(tokens: &Tokens, op: KeyOp) -> Result<Vec<u8>> {
    let started = log::log_enabled!(log::Level::Debug).then(Instant::now);
    let result = run_with_recovery(tokens, &op);
    if let Some(started) = started {
        log_call(&op, &result, started.elapsed());
    }
    result
}

fn run_with_recovery(tokens: &Tokens, op: &KeyOp) -> Result<Vec<u8>> {
    let token = signing_key(&op.key)?;
    let mechanism = op.mechanism.to_cryptoki();
    let mut rebind = Rebind::No;
    let (mut new_session, mut logged_in_again) = (false, false);
    loop {
        let (slot, handle) = token.bound(tokens, rebind)?;
        let session = slot.session()?;
        let call = SignCall {
            session: session.get()?,
            key: handle,
            always_authenticate: token.always_authenticate,
            mechanism: &mechanism,
            input: &op.input,
            output_len: op.output_len,
        };
        let err = match op.operation {
            Operation::Sign => match slot.sign(&call) {
                Ok(output) => return Ok(output),
                Err(e) => e,
            },
        };
        match err.token_rv() {
            Some(rv) if is_session_lost(rv) && !new_session => {
                new_session = true;
                session.discard();
                // The token was reset or removed: its other sessions are as dead as this.
                slot.close_idle_sessions();
            }
            Some(RvError::UserNotLoggedIn) if !logged_in_again => {
                logged_in_again = true;
                drop(session);
                slot.relogin()?;
            }
            Some(RvError::KeyHandleInvalid | RvError::ObjectHandleInvalid)
                if rebind != Rebind::FindAgain =>
            {
                rebind = match rebind {
                    Rebind::No if token.is_copy(handle) => Rebind::TokenObject,
                    _ => Rebind::FindAgain,
                };
            }
            _ => return Err(err),
        }
    }
}

/// The token reference of a key that can make private-key operations.
fn signing_key(key: &KeyObj) -> Result<&TokenKey> {
    let token = key
        .token
        .as_ref()
        .ok_or_else(|| Error::Unsupported("this key is not on a PKCS#11 token".into()))?;
    if !token.has_private() {
        return Err(Error::Unsupported(
            "a PKCS#11 public key object cannot sign".into(),
        ));
    }
    Ok(token)
}

fn log_call(op: &KeyOp, result: &Result<Vec<u8>>, took: Duration) {
    let functions = match op.operation {
        Operation::Sign => "C_SignInit/C_Sign",
    };
    let token = op.key.token.as_ref().map_or("", |t| t.token_label());
    match result {
        Ok(output) => log::debug!(
            "{functions} {} on token '{token}': CKR_OK, {} bytes in {} µs",
            op.mechanism,
            output.len(),
            took.as_micros()
        ),
        Err(e) => log::debug!(
            "{functions} {} on token '{token}': {e} after {} µs",
            op.mechanism,
            took.as_micros()
        ),
    }
}
