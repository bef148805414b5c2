//! The chokepoint: every PKCS#11 operation with a key runs through [`run`] (signing,
//! decryption, key derivation), and every key generation through [`generate`].
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
//! return code and the duration (never the input or output). Signatures are also counted in the
//! sign-duration metrics; decryptions, derivations and generations are logged only.
//!
//! Key generation has no key yet: its request ([`generate::KeyGenRequest`]) names the token
//! by URI, and [`generate`] applies the same policy minus the rebind (a lost session: once
//! more on a fresh one; a forgotten login: log in again, once more).

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cryptoki::error::RvError;
use cryptoki::mechanism::eddsa::{EddsaParams, EddsaSignatureScheme};
use cryptoki::mechanism::elliptic_curve::{EcKdf, Ecdh1DeriveParams};
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsOaepParams, PkcsOaepSource, PkcsPssParams};
use cryptoki::mechanism::{Mechanism, MechanismType};

use super::Tokens;
use super::generate::{self, KeyGenRequest};
use super::metrics::{self, InFlight, Series};
use super::object::{KeyAlgorithm, KeyObj, Rebind, TokenKey};
use super::offload;
use super::pool::is_session_lost;
use super::slot::SignCall;
use crate::error::{Error, Result};
use crate::sys::atfork::TokenCall;

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
    /// `CKM_RSA_PKCS_OAEP` with the hash and MGF1; the label is the request's `parameter`.
    RsaOaep {
        hash: MechanismType,
        mgf: PkcsMgfType,
    },
    /// `CKM_ECDH1_DERIVE` without a KDF (`CKD_NULL`); the peer's public point is the request's
    /// `parameter`.
    Ecdh1Derive,
    /// `CKM_SHA*_RSA_PKCS`: PKCS#1 v1.5 over the message, hashed on the token.
    RsaPkcsHashed(TokenHash),
    /// `CKM_SHA*_RSA_PKCS_PSS`: PSS over the message, hashed on the token.
    RsaPssHashed {
        hash: TokenHash,
        mgf: PkcsMgfType,
        salt_len: u64,
    },
    /// `CKM_ECDSA_SHA*`: ECDSA over the message, hashed on the token.
    EcdsaHashed(TokenHash),
}

/// A digest a combined hash-and-sign mechanism computes on the token. Only those cryptoki 0.12
/// names in all three families (it has no `CKM_SHA224_RSA_PKCS_PSS` and no SHA-3 ones).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TokenHash {
    Sha1,
    Sha256,
    Sha384,
    Sha512,
}

impl Mech {
    /// The `CKM_*` number of the mechanism.
    pub(crate) fn number(self) -> u64 {
        self.to_cryptoki(&[]).mechanism_type().into()
    }

    /// The mechanism as cryptoki passes it to the module; `data` is the request's variable-size
    /// parameter (OAEP label, ECDH peer point).
    fn to_cryptoki(self, data: &[u8]) -> Mechanism<'_> {
        match self {
            Mech::RsaOaep { hash, mgf } => {
                let label = if data.is_empty() {
                    PkcsOaepSource::empty()
                } else {
                    PkcsOaepSource::data_specified(data)
                };
                Mechanism::RsaPkcsOaep(PkcsOaepParams::new(hash, mgf, label))
            }
            Mech::Ecdh1Derive => {
                Mechanism::Ecdh1Derive(Ecdh1DeriveParams::new(EcKdf::null(), data))
            }
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
            Mech::RsaPkcsHashed(hash) => match hash {
                TokenHash::Sha1 => Mechanism::Sha1RsaPkcs,
                TokenHash::Sha256 => Mechanism::Sha256RsaPkcs,
                TokenHash::Sha384 => Mechanism::Sha384RsaPkcs,
                TokenHash::Sha512 => Mechanism::Sha512RsaPkcs,
            },
            Mech::RsaPssHashed {
                hash,
                mgf,
                salt_len,
            } => {
                let params = PkcsPssParams {
                    hash_alg: hash.digest_mechanism(),
                    mgf,
                    s_len: salt_len.into(),
                };
                match hash {
                    TokenHash::Sha1 => Mechanism::Sha1RsaPkcsPss(params),
                    TokenHash::Sha256 => Mechanism::Sha256RsaPkcsPss(params),
                    TokenHash::Sha384 => Mechanism::Sha384RsaPkcsPss(params),
                    TokenHash::Sha512 => Mechanism::Sha512RsaPkcsPss(params),
                }
            }
            Mech::EcdsaHashed(hash) => match hash {
                TokenHash::Sha1 => Mechanism::EcdsaSha1,
                TokenHash::Sha256 => Mechanism::EcdsaSha256,
                TokenHash::Sha384 => Mechanism::EcdsaSha384,
                TokenHash::Sha512 => Mechanism::EcdsaSha512,
            },
        }
    }
}

impl TokenHash {
    /// The digest mechanism (`CKM_SHA256`, ...) PSS parameters name.
    fn digest_mechanism(self) -> MechanismType {
        match self {
            TokenHash::Sha1 => MechanismType::SHA1,
            TokenHash::Sha256 => MechanismType::SHA256,
            TokenHash::Sha384 => MechanismType::SHA384,
            TokenHash::Sha512 => MechanismType::SHA512,
        }
    }

    fn name(self) -> &'static str {
        match self {
            TokenHash::Sha1 => "SHA1",
            TokenHash::Sha256 => "SHA256",
            TokenHash::Sha384 => "SHA384",
            TokenHash::Sha512 => "SHA512",
        }
    }
}

impl fmt::Display for Mech {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Mech::RsaPkcs => f.write_str("CKM_RSA_PKCS"),
            Mech::RsaX509 => f.write_str("CKM_RSA_X_509"),
            Mech::RsaPss { .. } => f.write_str("CKM_RSA_PKCS_PSS"),
            Mech::Ecdsa => f.write_str("CKM_ECDSA"),
            Mech::Eddsa => f.write_str("CKM_EDDSA"),
            Mech::RsaPkcsHashed(hash) => write!(f, "CKM_{}_RSA_PKCS", hash.name()),
            Mech::RsaPssHashed { hash, .. } => write!(f, "CKM_{}_RSA_PKCS_PSS", hash.name()),
            Mech::EcdsaHashed(hash) => write!(f, "CKM_ECDSA_{}", hash.name()),
            Mech::RsaOaep { .. } => f.write_str("CKM_RSA_PKCS_OAEP"),
            Mech::Ecdh1Derive => f.write_str("CKM_ECDH1_DERIVE"),
        }
    }
}

/// What a request asks the token to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Operation {
    /// `C_SignInit` + `C_Sign`.
    Sign,
    /// `C_DecryptInit` + `C_Decrypt`.
    Decrypt,
    /// `C_DeriveKey` into a session secret-key object, its `CKA_VALUE` read and the object
    /// destroyed (the secret goes back to OpenSSL, as a software key exchange would return it).
    Derive,
}

/// One key operation, owned by whoever runs it.
pub(crate) struct KeyOp {
    pub(crate) key: Arc<KeyObj>,
    pub(crate) operation: Operation,
    pub(crate) mechanism: Mech,
    pub(crate) input: Vec<u8>,
    /// Size of the output the token makes (a larger one is asked for again).
    pub(crate) output_len: usize,
    /// The mechanism's variable-size parameter: the OAEP label, the ECDH peer's public point.
    pub(crate) parameter: Vec<u8>,
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
            parameter: Vec::new(),
        }
    }

    /// A decryption of `input` with `key` (`parameter`: the OAEP label, else empty); the
    /// plaintext is at most the modulus size.
    pub(crate) fn decrypt(
        key: Arc<KeyObj>,
        mechanism: Mech,
        input: Vec<u8>,
        parameter: Vec<u8>,
    ) -> KeyOp {
        let output_len = key.max_signature_size();
        KeyOp {
            key,
            operation: Operation::Decrypt,
            mechanism,
            input,
            output_len,
            parameter,
        }
    }

    /// The raw ECDH secret of `key` and the peer's public point `peer_point`, `secret_len`
    /// bytes (the curve's field size).
    pub(crate) fn derive(
        key: Arc<KeyObj>,
        mechanism: Mech,
        peer_point: Vec<u8>,
        secret_len: usize,
    ) -> KeyOp {
        KeyOp {
            key,
            operation: Operation::Derive,
            mechanism,
            input: Vec::new(),
            output_len: secret_len,
            parameter: peer_point,
        }
    }
}

/// Most asynchronous workers started when the configuration does not say.
const DEFAULT_WORKERS_CAP: usize = 16;

/// Performs `op`: inside an OpenSSL ASYNC job (and unless `pkcs11-module-async = off`) on a
/// worker thread while the job waits paused (see `offload`), else on this thread.
pub(crate) fn perform(tokens: &Arc<Tokens>, op: KeyOp) -> Result<Vec<u8>> {
    if tokens.config().async_offload {
        if let Some(job) = crate::sys::async_job::current_job() {
            let pool = tokens.worker_pool(|| default_workers(&op))?;
            let tokens = Arc::clone(tokens);
            return offload::run_in_job(&job, pool, move || run(&tokens, op));
        }
    }
    run(tokens, op)
}

/// Generates a key pair on a token as `request` says: inside an OpenSSL ASYNC job on a worker
/// thread (as [`perform`]), else on this thread.
pub(crate) fn generate(tokens: &Arc<Tokens>, request: KeyGenRequest) -> Result<Arc<KeyObj>> {
    if tokens.config().async_offload {
        if let Some(job) = crate::sys::async_job::current_job() {
            let pool = tokens.worker_pool(|| DEFAULT_WORKERS_CAP)?;
            let tokens = Arc::clone(tokens);
            return offload::run_in_job(&job, pool, move || run_generate(&tokens, &request));
        }
    }
    run_generate(tokens, &request)
}

/// Runs a key generation on this thread with the recovery policy (no rebind: there is no key
/// handle yet), logging the call.
fn run_generate(tokens: &Tokens, request: &KeyGenRequest) -> Result<Arc<KeyObj>> {
    let _call = TokenCall::enter();
    let started = Instant::now();
    let slot = generate::choose_slot(tokens, request)?;
    let (mut new_session, mut logged_in_again) = (false, false);
    let result = loop {
        let err = match generate::generate_on(&slot, request) {
            Ok(key) => break Ok(key),
            Err(e) => e,
        };
        match err.token_rv() {
            Some(rv) if is_session_lost(rv) && !new_session => {
                new_session = true;
                slot.close_idle_sessions();
            }
            Some(RvError::UserNotLoggedIn) if !logged_in_again => {
                logged_in_again = true;
                slot.relogin()?;
            }
            _ => break Err(err),
        }
    };
    let took = started.elapsed();
    match &result {
        Ok(_) => log::debug!(
            "C_GenerateKeyPair {} on token '{}': CKR_OK in {} µs",
            request.mechanism_name(),
            slot.label(),
            took.as_micros()
        ),
        Err(e) => log::debug!(
            "C_GenerateKeyPair {} on token '{}': {e} after {} µs",
            request.mechanism_name(),
            slot.label(),
            took.as_micros()
        ),
    }
    result
}

/// Workers to start when the configuration does not say: the key's token's session limit, at
/// most [`DEFAULT_WORKERS_CAP`], so requests beyond it wait in the queue.
fn default_workers(op: &KeyOp) -> usize {
    op.key
        .session_limit()
        .unwrap_or(DEFAULT_WORKERS_CAP)
        .clamp(1, DEFAULT_WORKERS_CAP)
}

/// Runs `op` on the key's token, on this thread, with the recovery policy above; counts it in
/// the sign-duration metrics.
pub(crate) fn run(tokens: &Tokens, op: KeyOp) -> Result<Vec<u8>> {
    // The whole operation is one token call for fork: the key's binding lock, the metrics and
    // the log are taken inside the gate, so a child never inherits one of them held.
    let _call = TokenCall::enter();
    let counted = op.operation == Operation::Sign;
    let in_flight = counted.then(InFlight::start);
    let started = Instant::now();
    let result = run_with_recovery(tokens, &op);
    let took = started.elapsed();
    drop(in_flight);
    if counted {
        series(&op).observe(result.is_ok(), took);
    }
    if log::log_enabled!(log::Level::Debug) {
        log_call(&op, &result, took);
    }
    result
}

/// The metrics series of `op`'s algorithm, looked up once per key and mechanism family.
fn series(op: &KeyOp) -> Arc<Series> {
    let family = match op.mechanism {
        Mech::RsaPkcs | Mech::RsaPkcsHashed(_) => 0,
        Mech::RsaPss { .. } | Mech::RsaPssHashed { .. } => 1,
        Mech::RsaX509 | Mech::RsaOaep { .. } => 2,
        Mech::Ecdsa | Mech::Eddsa | Mech::EcdsaHashed(_) | Mech::Ecdh1Derive => 3,
    };
    op.key
        .metrics_series(family, || metrics::series(&algorithm_label(op)))
}

/// The metrics label of `op`'s algorithm: `rsa-pkcs1-2048`, `rsa-pss-3072`, `ecdsa-p256`,
/// `ed25519`, ...
fn algorithm_label(op: &KeyOp) -> String {
    let bits = op.key.bits();
    match (op.mechanism, op.key.algorithm) {
        (Mech::RsaPkcs | Mech::RsaPkcsHashed(_), _) => format!("rsa-pkcs1-{bits}"),
        (Mech::RsaPss { .. } | Mech::RsaPssHashed { .. }, _) => format!("rsa-pss-{bits}"),
        (Mech::RsaX509, _) => format!("rsa-raw-{bits}"),
        (Mech::Ecdsa | Mech::EcdsaHashed(_), _) => format!("ecdsa-p{bits}"),
        (Mech::Eddsa, KeyAlgorithm::Ed448) => "ed448".to_owned(),
        (Mech::Eddsa, _) => "ed25519".to_owned(),
        (Mech::RsaOaep { .. }, _) => format!("rsa-oaep-{bits}"),
        (Mech::Ecdh1Derive, _) => format!("ecdh-p{bits}"),
    }
}

fn run_with_recovery(tokens: &Tokens, op: &KeyOp) -> Result<Vec<u8>> {
    let token = signing_key(&op.key)?;
    let mechanism = op.mechanism.to_cryptoki(&op.parameter);
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
        let done = match op.operation {
            Operation::Sign => slot.sign(&call),
            Operation::Decrypt => slot.decrypt(&call),
            Operation::Derive => slot.derive_secret(&call),
        };
        let err = match done {
            Ok(output) => return Ok(output),
            Err(e) => e,
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
            "a PKCS#11 public key object cannot sign, decrypt or derive".into(),
        ));
    }
    Ok(token)
}

fn log_call(op: &KeyOp, result: &Result<Vec<u8>>, took: Duration) {
    let functions = match op.operation {
        Operation::Sign => "C_SignInit/C_Sign",
        Operation::Decrypt => "C_DecryptInit/C_Decrypt",
        Operation::Derive => "C_DeriveKey/C_GetAttributeValue/C_DestroyObject",
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
