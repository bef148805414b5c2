//! Signatures (provider-signature(7)) with token keys: RSA PKCS#1 v1.5 and PSS, ECDSA, Ed25519
//! and Ed448.
//!
//! `EVP_DigestSign*` hashes in libcrypto (the provider's cached `EVP_MD`) and then makes one
//! `C_Sign` with the raw mechanism: `CKM_RSA_PKCS` over DigestInfo‖hash (RFC 8017 §9.2),
//! `CKM_RSA_PKCS_PSS` over the hash, or `CKM_ECDSA` over the hash with the `r‖s` result turned
//! into a DER `ECDSA-Sig-Value`. EdDSA signs the whole message with `CKM_EDDSA` (one-shot only,
//! as in OpenSSL's own EdDSA). `algorithm-id` gives the DER AlgorithmIdentifier X.509, CMS and
//! TLS code needs.

use std::sync::Arc;

use cryptoki::mechanism::MechanismType;
use cryptoki::mechanism::rsa::PkcsMgfType;

use crate::asn1::{self, Curve, Digest};
use crate::error::{Error, Result};
use crate::ops::provider::ProvCtx;
use crate::sys::abi;
use crate::sys::libcrypto::DigestCtx;
use crate::sys::params::{Params, ParamsOut};
use crate::sys::slice::OutBuf;

/// Longest hash a signature context makes (SHA-512, `EVP_MAX_MD_SIZE`).
const MAX_HASH: usize = 64;
use crate::token::object::{KeyAlgorithm, KeyObj};
use crate::token::op::{self, KeyOp, Mech};

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

/// One signing operation (`EVP_PKEY_CTX` / `EVP_MD_CTX` provider side).
pub(crate) struct SignCtx {
    prov: Arc<ProvCtx>,
    algorithm: SigAlgorithm,
    key: Option<Arc<KeyObj>>,
    digest: Option<Digest>,
    hashing: Option<DigestCtx>,
    padding: Padding,
    salt: SaltLength,
    mgf1: Option<Digest>,
    /// Fork generation the operation was started in (see `check_same_process`).
    started_in: u64,
}

impl SignCtx {
    pub(crate) fn new(prov: Arc<ProvCtx>, algorithm: SigAlgorithm) -> SignCtx {
        SignCtx {
            prov,
            algorithm,
            key: None,
            digest: None,
            hashing: None,
            padding: Padding::Pkcs1,
            salt: SaltLength::AutoDigestMax,
            mgf1: None,
            started_in: crate::sys::atfork::generation(),
        }
    }

    /// `dupctx`: an independent copy, including the running hash.
    pub(crate) fn duplicate(&self) -> Result<SignCtx> {
        Ok(SignCtx {
            prov: Arc::clone(&self.prov),
            algorithm: self.algorithm,
            key: self.key.clone(),
            digest: self.digest,
            hashing: self
                .hashing
                .as_ref()
                .map(DigestCtx::duplicate)
                .transpose()?,
            padding: self.padding,
            salt: self.salt,
            mgf1: self.mgf1,
            started_in: self.started_in,
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
        if !key.has_private() {
            return Err(Error::Unsupported(
                "signing needs a private key; the pkcs11 URI names a public key or certificate \
                 (add ;type=private)"
                    .into(),
            ));
        }
        self.padding = if key.algorithm == KeyAlgorithm::RsaPss {
            Padding::Pss
        } else {
            Padding::Pkcs1
        };
        self.key = Some(key);
        self.started_in = crate::sys::atfork::generation();
        self.digest = None;
        self.hashing = None;
        self.salt = SaltLength::AutoDigestMax;
        self.mgf1 = None;
        self.set_params(params)
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
                self.hashing = Some(DigestCtx::new(&md)?);
            }
        }
        Ok(())
    }

    /// `digest_sign_update`.
    pub(crate) fn digest_sign_update(&mut self, data: &[u8]) -> Result<()> {
        self.hashing
            .as_mut()
            .ok_or_else(|| Error::Unsupported("EdDSA supports only one-shot signing".into()))?
            .update(data)
    }

    /// `digest_sign_final`: finish the hash and sign it.
    pub(crate) fn digest_sign_final(&mut self, out: OutBuf<'_>) -> Result<()> {
        if out.is_size_query() {
            out.set_size(self.key()?.max_signature_size());
            return Ok(());
        }
        // Inside an ASYNC job `sign` may pause this frame for good (a connection freed while
        // its signature is in flight): the hash waits on the stack, not in an owned buffer.
        let mut buffer = [0u8; MAX_HASH];
        let hash = {
            let owned = self
                .hashing
                .as_mut()
                .ok_or_else(|| {
                    Error::BadParam("digest_sign_final without digest_sign_init".into())
                })?
                .finish()?;
            let hash = buffer
                .get_mut(..owned.len())
                .ok_or_else(|| Error::Module("digest longer than 64 bytes".into()))?;
            hash.copy_from_slice(&owned);
            hash
        };
        self.hashing = None;
        self.sign(hash, out)
    }

    /// `digest_sign` (one-shot); used for EdDSA.
    pub(crate) fn digest_sign(&mut self, message: &[u8], out: OutBuf<'_>) -> Result<()> {
        if out.is_size_query() {
            out.set_size(self.key()?.max_signature_size());
            return Ok(());
        }
        match self.algorithm {
            SigAlgorithm::Ed25519 | SigAlgorithm::Ed448 => {
                let signature = self.sign_on_token(self.key()?, Mech::Eddsa, message.to_vec())?;
                out.write(&signature)
            }
            SigAlgorithm::Rsa | SigAlgorithm::Ecdsa => {
                self.digest_sign_update(message)?;
                self.digest_sign_final(out)
            }
        }
    }

    /// `sign`: sign `tbs`, a hash (or, without a digest set, the raw input).
    pub(crate) fn sign(&mut self, tbs: &[u8], out: OutBuf<'_>) -> Result<()> {
        // Borrowed, not cloned: inside an ASYNC job this frame may be paused, and a job that is
        // never resumed must not hold a reference (see token::offload).
        let key = self.key()?;
        if out.is_size_query() {
            out.set_size(key.max_signature_size());
            return Ok(());
        }
        if out.capacity() < key.max_signature_size() {
            return Err(Error::BadParam(format!(
                "signature buffer of {} bytes is smaller than the {} bytes needed",
                out.capacity(),
                key.max_signature_size()
            )));
        }
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
        let signature = match self.algorithm {
            SigAlgorithm::Rsa => self.sign_rsa(key, tbs)?,
            SigAlgorithm::Ecdsa => {
                let raw = self.sign_on_token(key, Mech::Ecdsa, tbs.to_vec())?;
                asn1::ecdsa_signature_to_der(&raw).ok_or_else(|| {
                    Error::Module(format!(
                        "token returned a malformed ECDSA signature ({} bytes)",
                        raw.len()
                    ))
                })?
            }
            SigAlgorithm::Ed25519 | SigAlgorithm::Ed448 => {
                self.sign_on_token(key, Mech::Eddsa, tbs.to_vec())?
            }
        };
        out.write(&signature)
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

    fn sign_rsa(&self, key: &Arc<KeyObj>, tbs: &[u8]) -> Result<Vec<u8>> {
        match self.padding {
            Padding::Pkcs1 => match self.digest {
                Some(digest) => {
                    let mut input = digest.digest_info_prefix().to_vec();
                    input.extend_from_slice(tbs);
                    self.sign_on_token(key, Mech::RsaPkcs, input)
                }
                None => self.sign_on_token(key, Mech::RsaPkcs, tbs.to_vec()),
            },
            Padding::None => {
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
                self.sign_on_token(key, Mech::RsaX509, tbs.to_vec())
            }
            Padding::Pss => {
                let digest = self
                    .digest
                    .or_else(|| Digest::from_size(tbs.len()))
                    .ok_or_else(|| {
                        Error::BadParam(format!("{} bytes is not a hash length for PSS", tbs.len()))
                    })?;
                let mgf1 = self.mgf1.unwrap_or(digest);
                let mechanism = Mech::RsaPss {
                    hash: hash_mechanism(digest)?,
                    mgf: mgf1_type(mgf1)?,
                    salt_len: self.salt_bytes(key, digest)? as u64,
                };
                self.sign_on_token(key, mechanism, tbs.to_vec())
            }
        }
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
        if self.hashing.is_some() && self.digest != Some(digest) {
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

    /// `set_ctx_params` (digest, pad-mode, saltlen, mgf1-digest).
    pub(crate) fn set_params(&mut self, params: Params<'_>) -> Result<()> {
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
            if self
                .key
                .as_ref()
                .is_some_and(|k| k.algorithm == KeyAlgorithm::RsaPss)
                && padding != Padding::Pss
            {
                return Err(Error::Unsupported(
                    "an RSA-PSS key signs only with PSS".into(),
                ));
            }
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

    /// `get_ctx_params` (algorithm-id, digest, pad-mode, saltlen, mgf1-digest).
    pub(crate) fn get_params(&self, out: &mut ParamsOut<'_>) -> Result<()> {
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

fn hash_mechanism(digest: Digest) -> Result<MechanismType> {
    Ok(match digest {
        Digest::Sha1 => MechanismType::SHA1,
        Digest::Sha224 => MechanismType::SHA224,
        Digest::Sha256 => MechanismType::SHA256,
        Digest::Sha384 => MechanismType::SHA384,
        Digest::Sha512 => MechanismType::SHA512,
        other => {
            return Err(Error::Unsupported(format!(
                "RSA-PSS with {} is not supported",
                other.name()
            )));
        }
    })
}

fn mgf1_type(digest: Digest) -> Result<PkcsMgfType> {
    Ok(match digest {
        Digest::Sha1 => PkcsMgfType::MGF1_SHA1,
        Digest::Sha224 => PkcsMgfType::MGF1_SHA224,
        Digest::Sha256 => PkcsMgfType::MGF1_SHA256,
        Digest::Sha384 => PkcsMgfType::MGF1_SHA384,
        Digest::Sha512 => PkcsMgfType::MGF1_SHA512,
        other => {
            return Err(Error::Unsupported(format!(
                "MGF1 with {} is not supported",
                other.name()
            )));
        }
    })
}
