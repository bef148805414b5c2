//! Signatures (provider-signature(7)) with token keys: RSA PKCS#1 v1.5 and PSS, ECDSA, Ed25519
//! and Ed448.
//!
//! `EVP_DigestSign*` hashes in libcrypto (the provider's cached `EVP_MD`) and then makes one
//! `C_Sign` with the raw mechanism: `CKM_RSA_PKCS` over DigestInfo‖hash (RFC 8017 §9.2),
//! `CKM_RSA_PKCS_PSS` over the hash, or `CKM_ECDSA` over the hash with the `r‖s` result turned
//! into a DER `ECDSA-Sig-Value`. Where the key's `CKA_ALLOWED_MECHANISMS` or the token's
//! mechanism list rule the raw mechanism out, the message is kept whole and one `C_Sign` with
//! the combined mechanism (`CKM_SHA256_RSA_PKCS_PSS`, ...) signs it (see `mechanism`); the
//! choice is made at the first `digest_sign_update`, when every parameter is set. EdDSA signs
//! the whole message with `CKM_EDDSA` (one-shot only, as in OpenSSL's own EdDSA).
//! `algorithm-id` gives the DER AlgorithmIdentifier X.509, CMS and TLS code needs.
//!
//! Verification (`verify_init`, `digest_verify_*`) needs no token: it runs in another provider
//! on a copy of the public key (see `sys::verify`), for programs that fetch every signature
//! from this provider (`-propquery '?provider=pkcs11'`), which OpenSSL 3.0 then uses for the
//! peer's signatures too.
//!
//! OpenSSL 3.4 added the sign-message API (`EVP_PKEY_sign_message_init` with an algorithm such as
//! `RSA-SHA256` or `ECDSA-SHA384` that fixes the digest): a context made by
//! [`SignCtx::for_messages`] signs like `EVP_DigestSign` with that digest; after
//! `sign_message_init`, a one-shot `sign` gets the message, not its hash (provider-signature(7)).

use std::sync::Arc;

use crate::asn1::{self, Curve, Digest};
use crate::error::{Error, Result};
use crate::ops::keymgmt;
use crate::ops::mechanism::{self, Permitted, Plan, Scheme};
use crate::ops::provider::ProvCtx;
use crate::sys::abi;
use crate::sys::libcrypto::{DigestCtx, PublicPkey};
use crate::sys::params::{Params, ParamsOut};
use crate::sys::slice::OutBuf;
use crate::sys::verify::Verifier;
use crate::token::object::{KeyAlgorithm, KeyObj, TokenKey};
use crate::token::op::{self, KeyOp, Mech};

/// Longest hash a signature context makes (SHA-512, `EVP_MAX_MD_SIZE`).
const MAX_HASH: usize = 64;

/// The signature algorithms registered with OpenSSL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SigAlgorithm {
    Rsa,
    Ecdsa,
    Ed25519,
    Ed448,
}

/// RSA padding (`pad-mode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Padding {
    Pkcs1,
    Pss,
    None,
}

/// PSS salt length (`saltlen`): the OpenSSL special values and explicit lengths.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SaltLength {
    Digest,
    Max,
    Auto,
    AutoDigestMax,
    Exact(usize),
}

// RSA padding numbers (openssl/rsa.h).
const RSA_PKCS1_PADDING: i32 = 1;
const RSA_NO_PADDING: i32 = 3;
const RSA_PKCS1_PSS_PADDING: i32 = 6;
// PSS salt length special values (openssl/rsa.h).
const SALTLEN_DIGEST: i32 = -1;
const SALTLEN_AUTO: i32 = -2;
const SALTLEN_MAX: i32 = -3;
const SALTLEN_AUTO_DIGEST_MAX: i32 = -4;

/// Where `digest_sign_update` puts the data.
enum Feed {
    /// Hashed in libcrypto; a raw mechanism signs the hash.
    Hash(DigestCtx),
    /// Kept whole for a combined mechanism, which hashes on the token.
    Message(Vec<u8>),
}

impl Feed {
    fn duplicate(&self) -> Result<Feed> {
        Ok(match self {
            Feed::Hash(ctx) => Feed::Hash(ctx.duplicate()?),
            Feed::Message(message) => Feed::Message(message.clone()),
        })
    }
}

/// One signing operation (`EVP_PKEY_CTX` / `EVP_MD_CTX` provider side).
pub(crate) struct SignCtx {
    prov: Arc<ProvCtx>,
    algorithm: SigAlgorithm,
    key: Option<Arc<KeyObj>>,
    digest: Option<Digest>,
    /// The data of a digest-sign operation; `None` outside one.
    feed: Option<Feed>,
    /// `feed` is final: the first `digest_sign_update` chose the mechanism.
    feed_chosen: bool,
    padding: Padding,
    salt: SaltLength,
    mgf1: Option<Digest>,
    /// A verification in progress (after `verify_init` or `digest_verify_init`).
    verifier: Option<Verifier>,
    /// Fork generation the operation was started in (see `check_same_process`).
    started_in: u64,
    /// The digest of a sign-message algorithm (`RSA-SHA256`: SHA-256); `None` for the plain ones.
    message_digest: Option<Digest>,
    /// Set by `sign_message_init`: `sign` gets the message itself.
    message_mode: bool,
}

impl SignCtx {
    pub(crate) fn new(prov: Arc<ProvCtx>, algorithm: SigAlgorithm) -> SignCtx {
        SignCtx {
            prov,
            algorithm,
            key: None,
            digest: None,
            feed: None,
            feed_chosen: false,
            padding: Padding::Pkcs1,
            salt: SaltLength::AutoDigestMax,
            mgf1: None,
            verifier: None,
            started_in: crate::sys::atfork::generation(),
            message_digest: None,
            message_mode: false,
        }
    }

    /// A context of a sign-message algorithm: `algorithm` (RSA or ECDSA) with `digest` fixed.
    #[cfg(ossl_v340)]
    pub(crate) fn for_messages(
        prov: Arc<ProvCtx>,
        algorithm: SigAlgorithm,
        digest: Digest,
    ) -> SignCtx {
        SignCtx {
            message_digest: Some(digest),
            ..SignCtx::new(prov, algorithm)
        }
    }

    /// `dupctx`: an independent copy, including the running hash.
    pub(crate) fn duplicate(&self) -> Result<SignCtx> {
        Ok(SignCtx {
            prov: Arc::clone(&self.prov),
            algorithm: self.algorithm,
            key: self.key.clone(),
            digest: self.digest,
            feed: self.feed.as_ref().map(Feed::duplicate).transpose()?,
            feed_chosen: self.feed_chosen,
            padding: self.padding,
            salt: self.salt,
            mgf1: self.mgf1,
            verifier: self
                .verifier
                .as_ref()
                .map(Verifier::duplicate)
                .transpose()?,
            started_in: self.started_in,
            message_digest: self.message_digest,
            message_mode: self.message_mode,
        })
    }

    /// An operation started before `fork()` cannot be finished in the child: a token's
    /// operation belongs to the session of the process that started it (latchset's test suite
    /// checks that the child fails, as it does with latchset/pkcs11-provider). Start it again
    /// in the child.
    fn check_same_process(&self) -> Result<()> {
        if self.started_in == crate::sys::atfork::generation() {
            Ok(())
        } else {
            Err(Error::Unsupported(
                "this signing operation was started before fork(); start it again in this \
                 process"
                    .into(),
            ))
        }
    }

    fn key(&self) -> Result<&Arc<KeyObj>> {
        self.key
            .as_ref()
            .ok_or_else(|| Error::BadParam("signature operation not initialised with a key".into()))
    }

    /// `sign_init`: attach the key (`None`: keep the current one, a re-initialisation) and
    /// apply parameters.
    pub(crate) fn sign_init(&mut self, key: Option<Arc<KeyObj>>, params: Params<'_>) -> Result<()> {
        let key = self.checked_key(key)?;
        if !key.has_private() {
            return Err(Error::Unsupported(
                "signing needs a private key; the pkcs11 URI names a public key or certificate \
                 (add ;type=private)"
                    .into(),
            ));
        }
        self.verifier = None;
        self.padding = if key.algorithm == KeyAlgorithm::RsaPss {
            Padding::Pss
        } else {
            Padding::Pkcs1
        };
        self.key = Some(key);
        self.started_in = crate::sys::atfork::generation();
        self.digest = None;
        self.feed = None;
        self.feed_chosen = false;
        self.message_mode = false;
        self.salt = SaltLength::AutoDigestMax;
        self.mgf1 = None;
        self.set_params(params)
    }

    /// The key to use: `key`, or the one the context has (a re-initialisation), if it is of a
    /// type this algorithm signs with.
    fn checked_key(&self, key: Option<Arc<KeyObj>>) -> Result<Arc<KeyObj>> {
        let key = match key.or_else(|| self.key.clone()) {
            Some(key) => key,
            None => return Err(Error::NullArg("key")),
        };
        let ok = matches!(
            (self.algorithm, key.algorithm),
            (SigAlgorithm::Rsa, KeyAlgorithm::Rsa | KeyAlgorithm::RsaPss)
                | (SigAlgorithm::Ecdsa, KeyAlgorithm::Ec)
                | (SigAlgorithm::Ed25519, KeyAlgorithm::Ed25519)
                | (SigAlgorithm::Ed448, KeyAlgorithm::Ed448)
        );
        if !ok {
            return Err(Error::Unsupported(format!(
                "a {} key cannot make {:?} signatures",
                key.algorithm.type_name().to_string_lossy(),
                self.algorithm
            )));
        }
        Ok(key)
    }

    /// `verify_init` (`digest: None`) and `digest_verify_init`: a verification of `key`'s
    /// signatures by another provider, on a copy of the public key.
    pub(crate) fn verify_init(
        &mut self,
        message_digest: Option<Option<&str>>,
        key: Option<Arc<KeyObj>>,
        params: Params<'_>,
    ) -> Result<()> {
        let key = self.checked_key(key)?;
        if key.token.as_ref().is_some_and(|t| !t.allows_export()) {
            return Err(Error::Unsupported(
                "verifying runs in another provider, and pkcs11-module-allow-export = 1 keeps \
                 token public keys out of other providers"
                    .into(),
            ));
        }
        log::debug!(
            "verifying a {} signature in another provider (provider!=pkcs11)",
            key.algorithm.type_name().to_string_lossy()
        );
        let all = abi::OSSL_KEYMGMT_SELECT_PUBLIC_KEY | abi::OSSL_KEYMGMT_SELECT_DOMAIN_PARAMETERS;
        let mut public = keymgmt::public_params(&key.public, all);
        let pkey = PublicPkey::from_params(
            self.prov.libctx(),
            key.algorithm.type_name(),
            public.finish(),
        )?;
        self.verifier = Some(match message_digest {
            None => Verifier::for_hash(self.prov.libctx(), &pkey, params.as_ptr())?,
            Some(digest) => {
                let digest = digest.filter(|d| !d.is_empty());
                Verifier::for_message(self.prov.libctx(), digest, &pkey, params.as_ptr())?
            }
        });
        self.key = Some(key);
        self.feed = None;
        self.feed_chosen = false;
        Ok(())
    }

    fn verifier(&mut self) -> Result<&mut Verifier> {
        self.verifier
            .as_mut()
            .ok_or_else(|| Error::BadParam("verification not initialised".into()))
    }

    /// `verify` (over a hash) and `digest_verify` (one-shot over a message): `Ok(false)` when
    /// the signature does not verify.
    pub(crate) fn verify(&mut self, signature: &[u8], data: &[u8]) -> Result<bool> {
        self.verifier()?.verify(signature, data)
    }

    /// `digest_verify_update`.
    pub(crate) fn digest_verify_update(&mut self, data: &[u8]) -> Result<()> {
        self.verifier()?.update(data)
    }

    /// `digest_verify_final`: `Ok(false)` when the signature does not verify.
    pub(crate) fn digest_verify_final(&mut self, signature: &[u8]) -> Result<bool> {
        self.verifier()?.finish(signature)
    }

    /// `digest_sign_init`: as `sign_init`, then start hashing with `digest_name`.
    pub(crate) fn digest_sign_init(
        &mut self,
        digest_name: Option<&str>,
        key: Option<Arc<KeyObj>>,
        params: Params<'_>,
    ) -> Result<()> {
        self.sign_init(key, params)?;
        let name = digest_name.filter(|n| !n.is_empty());
        match self.algorithm {
            SigAlgorithm::Ed25519 | SigAlgorithm::Ed448 => {
                if name.is_some() {
                    return Err(Error::Unsupported(
                        "EdDSA signs the message itself: no digest may be set".into(),
                    ));
                }
            }
            SigAlgorithm::Rsa | SigAlgorithm::Ecdsa => {
                if let Some(name) = name {
                    self.set_digest(name)?;
                }
                let digest = *self.digest.get_or_insert(Digest::Sha256);
                let md = self.prov.md(digest)?;
                self.feed = Some(Feed::Hash(DigestCtx::new(&md)?));
                self.feed_chosen = false;
            }
        }
        Ok(())
    }

    /// `sign_message_init` (OpenSSL 3.4+): `digest_sign_init` with the algorithm's own digest;
    /// a digest given in `params` must be that one.
    #[cfg(ossl_v340)]
    pub(crate) fn sign_message_init(
        &mut self,
        key: Option<Arc<KeyObj>>,
        params: Params<'_>,
    ) -> Result<()> {
        let digest = self.message_digest.ok_or_else(|| {
            Error::Unsupported(format!(
                "{:?} is not a sign-message algorithm (use e.g. RSA-SHA256)",
                self.algorithm
            ))
        })?;
        self.sign_init(key, params)?;
        if self.digest.is_some_and(|set| set != digest) {
            return Err(Error::BadParam(format!(
                "this algorithm signs with {}; another digest cannot be set",
                digest.name()
            )));
        }
        self.digest = Some(digest);
        let md = self.prov.md(digest)?;
        self.feed = Some(Feed::Hash(DigestCtx::new(&md)?));
        self.feed_chosen = false;
        self.message_mode = true;
        Ok(())
    }

    /// `digest_sign_update`, and `sign_message_update`.
    pub(crate) fn digest_sign_update(&mut self, data: &[u8]) -> Result<()> {
        self.choose_feed()?;
        match self.feed.as_mut() {
            Some(Feed::Hash(ctx)) => ctx.update(data),
            Some(Feed::Message(message)) => {
                message.extend_from_slice(data);
                Ok(())
            }
            None => Err(Error::Unsupported(
                "EdDSA supports only one-shot signing".into(),
            )),
        }
    }

    /// Decides, once per digest-sign operation, whether the data is hashed here for a raw
    /// mechanism or kept whole for a combined one (the parameters are all set by now).
    fn choose_feed(&mut self) -> Result<()> {
        if self.feed_chosen || self.feed.is_none() {
            return Ok(());
        }
        let key = Arc::clone(self.key()?);
        let plan = self.plan(&key, self.scheme(&key, None)?, true)?;
        if let Plan::Hashed(mechanism) = plan {
            log::debug!("{mechanism}: the message goes to the token, which hashes it");
            self.feed = Some(Feed::Message(Vec::new()));
        }
        self.feed_chosen = true;
        Ok(())
    }

    /// `digest_sign_final` (and `sign_message_final`): finish the hash and sign it, or sign
    /// the kept message.
    pub(crate) fn digest_sign_final(&mut self, out: OutBuf<'_>) -> Result<()> {
        if out.is_size_query() {
            out.set_size(self.key()?.max_signature_size());
            return Ok(());
        }
        // The `sign` below gets the hash, whichever way the operation started.
        self.message_mode = false;
        self.choose_feed()?;
        let feed = self
            .feed
            .take()
            .ok_or_else(|| Error::BadParam("digest_sign_final without digest_sign_init".into()))?;
        self.feed_chosen = false;
        match feed {
            Feed::Hash(mut ctx) => {
                // Inside an ASYNC job `sign` may pause this frame for good (a connection freed
                // while its signature is in flight): the hash waits on the stack, not in an
                // owned buffer, and the digest context is gone before.
                let mut buffer = [0u8; MAX_HASH];
                let hash = {
                    let owned = ctx.finish()?;
                    let hash = buffer
                        .get_mut(..owned.len())
                        .ok_or_else(|| Error::Module("digest longer than 64 bytes".into()))?;
                    hash.copy_from_slice(&owned);
                    hash
                };
                drop(ctx);
                self.sign(hash, out)
            }
            Feed::Message(message) => {
                let key = self.key()?;
                check_capacity(key, &out)?;
                let plan = self.plan(key, self.scheme(key, None)?, true)?;
                let Plan::Hashed(mechanism) = plan else {
                    return Err(Error::BadParam(
                        "signature parameters changed after the data was given".into(),
                    ));
                };
                // The message moves into the request, which the worker owns (see sign).
                let raw = self.sign_on_token(key, mechanism, message)?;
                out.write(&self.encode(raw)?)
            }
        }
    }

    /// `digest_sign` (one-shot); used for EdDSA.
    pub(crate) fn digest_sign(&mut self, message: &[u8], out: OutBuf<'_>) -> Result<()> {
        if out.is_size_query() {
            out.set_size(self.key()?.max_signature_size());
            return Ok(());
        }
        match self.algorithm {
            SigAlgorithm::Ed25519 | SigAlgorithm::Ed448 => {
                let key = self.key()?;
                self.plan(key, Scheme::Eddsa, true)?;
                let signature = self.sign_on_token(key, Mech::Eddsa, message.to_vec())?;
                out.write(&signature)
            }
            SigAlgorithm::Rsa | SigAlgorithm::Ecdsa => {
                self.digest_sign_update(message)?;
                self.digest_sign_final(out)
            }
        }
    }

    /// `sign`: sign `tbs`, a hash (or, without a digest set, the raw input); after
    /// `sign_message_init`, the message.
    pub(crate) fn sign(&mut self, tbs: &[u8], out: OutBuf<'_>) -> Result<()> {
        if self.message_mode {
            if !out.is_size_query() {
                self.message_mode = false;
            }
            return self.digest_sign(tbs, out);
        }
        // Borrowed, not cloned: inside an ASYNC job this frame may be paused, and a job that is
        // never resumed must not hold a reference (see token::offload).
        let key = self.key()?;
        if out.is_size_query() {
            out.set_size(key.max_signature_size());
            return Ok(());
        }
        check_capacity(key, &out)?;
        if let Some(digest) = self.digest {
            if tbs.len() != digest.size() && self.padding != Padding::None {
                return Err(Error::BadParam(format!(
                    "input of {} bytes is not a {} hash ({} bytes)",
                    tbs.len(),
                    digest.name(),
                    digest.size()
                )));
            }
        }
        let plan = self.plan(key, self.scheme(key, Some(tbs.len()))?, false)?;
        let Plan::Raw(mechanism) = plan else {
            return Err(Error::Unsupported(
                "a combined hash-and-sign mechanism cannot sign a hash".into(),
            ));
        };
        let input = match mechanism {
            Mech::RsaPkcs => match self.digest {
                Some(digest) => [digest.digest_info_prefix(), tbs].concat(),
                None => tbs.to_vec(),
            },
            Mech::RsaX509 => {
                // Raw RSA takes exactly one modulus-sized block (as OpenSSL's own RSA does);
                // tokens would silently left-pad a shorter one.
                let size = key.max_signature_size();
                if tbs.len() != size {
                    return Err(Error::BadParam(format!(
                        "RSA without padding signs exactly {size} bytes (the modulus size), \
                         not {}",
                        tbs.len()
                    )));
                }
                tbs.to_vec()
            }
            _ => tbs.to_vec(),
        };
        let raw = self.sign_on_token(key, mechanism, input)?;
        out.write(&self.encode(raw)?)
    }

    /// The signature scheme this context makes with `key`; `tbs_len` is the length of a hash
    /// given to `sign` (PSS without a digest set takes the digest from it).
    fn scheme(&self, key: &KeyObj, tbs_len: Option<usize>) -> Result<Scheme> {
        Ok(match self.algorithm {
            SigAlgorithm::Rsa => match self.padding {
                Padding::Pkcs1 => Scheme::RsaPkcs1 {
                    digest: self.digest,
                },
                Padding::None => Scheme::RsaRaw,
                Padding::Pss => {
                    let digest = self
                        .digest
                        .or_else(|| tbs_len.and_then(Digest::from_size))
                        .ok_or_else(|| {
                            Error::BadParam(format!(
                                "{} bytes is not a hash length for PSS",
                                tbs_len.unwrap_or(0)
                            ))
                        })?;
                    Scheme::RsaPss {
                        digest,
                        mgf1: self.mgf1.unwrap_or(digest),
                        salt_len: self.salt_bytes(key, digest)?,
                    }
                }
            },
            SigAlgorithm::Ecdsa => Scheme::Ecdsa {
                digest: self.digest,
            },
            SigAlgorithm::Ed25519 | SigAlgorithm::Ed448 => Scheme::Eddsa,
        })
    }

    /// The mechanism for `scheme` that the key's `CKA_ALLOWED_MECHANISMS` and its token's
    /// mechanism list permit.
    fn plan(&self, key: &KeyObj, scheme: Scheme, message_available: bool) -> Result<Plan> {
        let token = key.token.as_ref();
        let offered = token.and_then(TokenKey::token_mechanisms);
        let permitted = Permitted {
            allowed: token.and_then(|t| t.allowed_mechanisms.as_deref()),
            offered: offered.as_deref(),
        };
        let plan = mechanism::choose(scheme, message_available, &permitted)?;
        if key.algorithm == KeyAlgorithm::RsaPss && !matches!(scheme, Scheme::RsaPss { .. }) {
            return Err(Error::Unsupported(
                "an RSA-PSS key signs only with PSS padding".into(),
            ));
        }
        Ok(plan)
    }

    /// The signature as OpenSSL wants it: ECDSA's `r‖s` becomes a DER `ECDSA-Sig-Value`.
    fn encode(&self, raw: Vec<u8>) -> Result<Vec<u8>> {
        if self.algorithm != SigAlgorithm::Ecdsa {
            return Ok(raw);
        }
        asn1::ecdsa_signature_to_der(&raw).ok_or_else(|| {
            Error::Module(format!(
                "token returned a malformed ECDSA signature ({} bytes)",
                raw.len()
            ))
        })
    }

    /// One signature on the token, through the token model's chokepoint (on a worker thread
    /// when called inside an ASYNC job).
    fn sign_on_token(&self, key: &Arc<KeyObj>, mechanism: Mech, input: Vec<u8>) -> Result<Vec<u8>> {
        self.check_same_process()?;
        op::perform(
            &self.prov.tokens,
            KeyOp::sign(Arc::clone(key), mechanism, input),
        )
    }

    /// Resolves the salt length for signing (RFC 8017 §9.1.1: at most emLen − hLen − 2).
    fn salt_bytes(&self, key: &KeyObj, digest: Digest) -> Result<usize> {
        let em_len = key.bits().saturating_sub(1).div_ceil(8);
        let max = em_len
            .checked_sub(digest.size() + 2)
            .ok_or_else(|| Error::BadParam("RSA key too small for PSS with this digest".into()))?;
        Ok(match self.salt {
            SaltLength::Digest => digest.size(),
            SaltLength::Max | SaltLength::Auto => max,
            SaltLength::AutoDigestMax => max.min(digest.size()),
            SaltLength::Exact(n) if n <= max => n,
            SaltLength::Exact(n) => {
                return Err(Error::BadParam(format!(
                    "PSS salt length {n} exceeds the maximum {max} for this key and digest"
                )));
            }
        })
    }

    fn set_digest(&mut self, name: &str) -> Result<()> {
        let digest = Digest::from_name(name)
            .ok_or_else(|| Error::Unsupported(format!("digest '{name}' is not supported")))?;
        if self.feed.is_some() && self.digest != Some(digest) {
            return Err(Error::BadParam(
                "the digest cannot change after hashing started".into(),
            ));
        }
        if matches!(self.algorithm, SigAlgorithm::Ed25519 | SigAlgorithm::Ed448) {
            return Err(Error::Unsupported("EdDSA takes no digest".into()));
        }
        self.digest = Some(digest);
        Ok(())
    }

    /// `set_ctx_params` (digest, pad-mode, saltlen, mgf1-digest); while verifying, passed on
    /// to the verifying provider.
    pub(crate) fn set_params(&mut self, params: Params<'_>) -> Result<()> {
        if let Some(verifier) = self.verifier.as_mut() {
            return verifier.set_params(params.as_ptr());
        }
        if let Some(p) = params.find(abi::OSSL_SIGNATURE_PARAM_DIGEST) {
            self.set_digest(p.utf8()?)?;
        }
        let rsa = self.algorithm == SigAlgorithm::Rsa;
        if let Some(p) = params.find(abi::OSSL_SIGNATURE_PARAM_PAD_MODE) {
            if !rsa {
                return Err(Error::Unsupported("pad-mode applies to RSA only".into()));
            }
            let mode = if p.is_utf8() {
                match p.utf8()? {
                    "pkcs1" => RSA_PKCS1_PADDING,
                    "pss" => RSA_PKCS1_PSS_PADDING,
                    "none" => RSA_NO_PADDING,
                    other => {
                        return Err(Error::Unsupported(format!("RSA padding mode '{other}'")));
                    }
                }
            } else {
                p.int()?
            };
            let padding = match mode {
                RSA_PKCS1_PADDING => Padding::Pkcs1,
                RSA_PKCS1_PSS_PADDING => Padding::Pss,
                RSA_NO_PADDING => Padding::None,
                other => return Err(Error::Unsupported(format!("RSA padding mode {other}"))),
            };
            // Another padding for an RSA-PSS key is refused when signing (see `plan`), where
            // the error can name the mechanisms the key allows; so do OpenSSL's scripts expect.
            self.padding = padding;
        }
        if let Some(p) = params.find(abi::OSSL_SIGNATURE_PARAM_PSS_SALTLEN) {
            if !rsa {
                return Err(Error::Unsupported("saltlen applies to RSA-PSS only".into()));
            }
            let value = if p.is_utf8() {
                match p.utf8()? {
                    "digest" => SALTLEN_DIGEST,
                    "max" => SALTLEN_MAX,
                    "auto" => SALTLEN_AUTO,
                    "auto-digestmax" => SALTLEN_AUTO_DIGEST_MAX,
                    text => text.parse::<i32>().map_err(|_| {
                        Error::BadParam(format!("PSS salt length '{text}' is not a number"))
                    })?,
                }
            } else {
                p.int()?
            };
            self.salt = match value {
                SALTLEN_DIGEST => SaltLength::Digest,
                SALTLEN_AUTO => SaltLength::Auto,
                SALTLEN_MAX => SaltLength::Max,
                SALTLEN_AUTO_DIGEST_MAX => SaltLength::AutoDigestMax,
                n if n >= 0 => SaltLength::Exact(n as usize),
                n => return Err(Error::BadParam(format!("PSS salt length {n}"))),
            };
        }
        if let Some(p) = params.find(abi::OSSL_SIGNATURE_PARAM_MGF1_DIGEST) {
            if !rsa {
                return Err(Error::Unsupported(
                    "mgf1-digest applies to RSA-PSS only".into(),
                ));
            }
            let name = p.utf8()?;
            self.mgf1 = Some(
                Digest::from_name(name)
                    .ok_or_else(|| Error::Unsupported(format!("MGF1 digest '{name}'")))?,
            );
        }
        Ok(())
    }

    /// `get_ctx_params` (algorithm-id, digest, pad-mode, saltlen, mgf1-digest); while
    /// verifying, answered by the verifying provider.
    pub(crate) fn get_params(&self, out: &mut ParamsOut<'_>) -> Result<()> {
        if let Some(verifier) = self.verifier.as_ref() {
            return verifier.get_params(out.as_mut_ptr());
        }
        if out.wants(abi::OSSL_SIGNATURE_PARAM_ALGORITHM_ID) {
            let id = self.algorithm_id()?;
            out.set_octets(abi::OSSL_SIGNATURE_PARAM_ALGORITHM_ID, &id)?;
        }
        if let Some(digest) = self.digest {
            out.set_utf8(abi::OSSL_SIGNATURE_PARAM_DIGEST, digest.name())?;
            out.set_size(abi::OSSL_SIGNATURE_PARAM_DIGEST_SIZE, digest.size())?;
        }
        if self.algorithm == SigAlgorithm::Rsa {
            let (number, name) = match self.padding {
                Padding::Pkcs1 => (RSA_PKCS1_PADDING, "pkcs1"),
                Padding::Pss => (RSA_PKCS1_PSS_PADDING, "pss"),
                Padding::None => (RSA_NO_PADDING, "none"),
            };
            if out
                .set_int(abi::OSSL_SIGNATURE_PARAM_PAD_MODE, number)
                .is_err()
            {
                out.set_utf8(abi::OSSL_SIGNATURE_PARAM_PAD_MODE, name)?;
            }
            let (number, name) = match self.salt {
                SaltLength::Digest => (SALTLEN_DIGEST, "digest".to_string()),
                SaltLength::Max => (SALTLEN_MAX, "max".to_string()),
                SaltLength::Auto => (SALTLEN_AUTO, "auto".to_string()),
                SaltLength::AutoDigestMax => {
                    (SALTLEN_AUTO_DIGEST_MAX, "auto-digestmax".to_string())
                }
                SaltLength::Exact(n) => (i32::try_from(n).unwrap_or(i32::MAX), n.to_string()),
            };
            if out
                .set_int(abi::OSSL_SIGNATURE_PARAM_PSS_SALTLEN, number)
                .is_err()
            {
                out.set_utf8(abi::OSSL_SIGNATURE_PARAM_PSS_SALTLEN, &name)?;
            }
            if let Some(mgf1) = self.mgf1.or(self.digest) {
                out.set_utf8(abi::OSSL_SIGNATURE_PARAM_MGF1_DIGEST, mgf1.name())?;
            }
        }
        Ok(())
    }

    /// DER AlgorithmIdentifier of the signatures this context makes.
    fn algorithm_id(&self) -> Result<Vec<u8>> {
        let key = self.key()?;
        let digest = self.digest.unwrap_or(Digest::Sha256);
        let id = match (self.algorithm, ()) {
            (SigAlgorithm::Rsa, _) => match self.padding {
                Padding::Pkcs1 => asn1::rsa_pkcs1_algorithm_id(digest),
                Padding::Pss => {
                    let salt = self.salt_bytes(key, digest)?;
                    asn1::rsa_pss_algorithm_id(digest, self.mgf1.unwrap_or(digest), salt)
                }
                Padding::None => None,
            },
            (SigAlgorithm::Ecdsa, _) => asn1::ecdsa_algorithm_id(digest),
            (SigAlgorithm::Ed25519, _) => asn1::eddsa_algorithm_id(Curve::Ed25519),
            (SigAlgorithm::Ed448, _) => asn1::eddsa_algorithm_id(Curve::Ed448),
        };
        id.ok_or_else(|| {
            Error::Unsupported(format!(
                "no algorithm identifier for {:?} with {} ({:?} padding)",
                self.algorithm,
                digest.name(),
                self.padding
            ))
        })
    }
}

/// Refuses an output buffer smaller than the key's largest signature.
fn check_capacity(key: &KeyObj, out: &OutBuf<'_>) -> Result<()> {
    if out.capacity() < key.max_signature_size() {
        return Err(Error::BadParam(format!(
            "signature buffer of {} bytes is smaller than the {} bytes needed",
            out.capacity(),
            key.max_signature_size()
        )));
    }
    Ok(())
}
