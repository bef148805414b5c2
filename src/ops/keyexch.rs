//! ECDH key exchange (provider-keyexch(7)) with token EC keys on P-256, P-384 and P-521.
//!
//! The shared secret is made on the token through the chokepoint (`CKM_ECDH1_DERIVE` with
//! `CKD_NULL` into an extractable session secret key whose value is read and which is then
//! destroyed) and returned to OpenSSL, as a software key exchange returns it. A shorter output
//! buffer gets the leading bytes, as OpenSSL's own ECDH gives them. With `kdf-type` `X963KDF`
//! (what CMS key agreement sets, with `kdf-digest`, `kdf-outlen` and `kdf-ukm`) the secret
//! goes through the ANSI X9.63 KDF in libcrypto, so tokens without the `CKD_SHA*_KDF`
//! functions (SoftHSM2) work too. The cofactor mode is accepted and makes no difference: the
//! NIST prime curves have cofactor 1.

use std::sync::Arc;

use zeroize::Zeroizing;

use crate::asn1::{Curve, Digest};
use crate::error::{Error, Result};
use crate::ops::provider::ProvCtx;
use crate::sys::abi;
use crate::sys::params::{Params, ParamsOut};
use crate::sys::primitives;
use crate::sys::slice::OutBuf;
use crate::token::object::{KeyObj, PublicKey};
use crate::token::op::{self, KeyOp, Mech};

/// OpenSSL's name of the X9.63 KDF (`OSSL_KDF_NAME_X963KDF`).
const X963KDF: &str = "X963KDF";

/// One ECDH derivation (`EVP_PKEY_CTX` provider side).
#[derive(Clone)]
pub(crate) struct ExchangeCtx {
    prov: Arc<ProvCtx>,
    key: Option<Arc<KeyObj>>,
    /// The peer's public point.
    peer: Option<Vec<u8>>,
    /// `ecdh-cofactor-mode`: -1 (the key's default), 0 or 1.
    cofactor_mode: i32,
    /// `kdf-type` X963KDF.
    x963: bool,
    kdf_digest: Option<Digest>,
    kdf_outlen: usize,
    ukm: Vec<u8>,
}

impl ExchangeCtx {
    pub(crate) fn new(prov: Arc<ProvCtx>) -> ExchangeCtx {
        ExchangeCtx {
            prov,
            key: None,
            peer: None,
            cofactor_mode: -1,
            x963: false,
            kdf_digest: None,
            kdf_outlen: 0,
            ukm: Vec::new(),
        }
    }

    fn key(&self) -> Result<&Arc<KeyObj>> {
        self.key
            .as_ref()
            .ok_or_else(|| Error::BadParam("key exchange not initialised with a key".into()))
    }

    fn curve(&self) -> Result<Curve> {
        match &self.key()?.public {
            PublicKey::Ec { curve, .. } if !curve.is_edwards() => Ok(*curve),
            _ => Err(Error::Unsupported(
                "ECDH needs an EC key on a NIST curve".into(),
            )),
        }
    }

    /// `init`: an EC private key on a token.
    pub(crate) fn init(&mut self, key: Arc<KeyObj>, params: Params<'_>) -> Result<()> {
        let is_prime_curve =
            matches!(&key.public, PublicKey::Ec { curve, .. } if !curve.is_edwards());
        if !is_prime_curve {
            return Err(Error::Unsupported(format!(
                "ECDH needs an EC key on a NIST curve, not a {} key",
                key.algorithm.type_name().to_string_lossy()
            )));
        }
        if !key.has_private() {
            return Err(Error::Unsupported(
                "key exchange needs a private key; the pkcs11 URI names a public key or \
                 certificate (add ;type=private)"
                    .into(),
            ));
        }
        *self = ExchangeCtx::new(Arc::clone(&self.prov));
        self.key = Some(key);
        self.set_params(params)
    }

    /// `set_peer`: the other party's public key, on the same curve.
    pub(crate) fn set_peer(&mut self, peer: &KeyObj) -> Result<()> {
        let curve = self.curve()?;
        match &peer.public {
            PublicKey::Ec {
                curve: peer_curve,
                point,
            } if *peer_curve == curve => {
                self.peer = Some(point.clone());
                Ok(())
            }
            PublicKey::Ec {
                curve: peer_curve, ..
            } => Err(Error::BadParam(format!(
                "the peer key is on {}, the token key on {}",
                peer_curve.group_name(),
                curve.group_name()
            ))),
            PublicKey::Rsa { .. } => Err(Error::BadParam("the peer key is not an EC key".into())),
        }
    }

    /// `derive`: the raw secret (or `kdf-outlen` bytes of X9.63 KDF output).
    pub(crate) fn derive(&mut self, out: OutBuf<'_>) -> Result<()> {
        let curve = self.curve()?;
        let size = curve.field_bytes();
        if out.is_size_query() {
            out.set_size(if self.x963 { self.kdf_outlen } else { size });
            return Ok(());
        }
        let peer = self
            .peer
            .clone()
            .ok_or_else(|| Error::BadParam("no peer key set for the key exchange".into()))?;
        let key = Arc::clone(self.key()?);
        let secret = Zeroizing::new(op::perform(
            &self.prov.tokens,
            KeyOp::derive(key, Mech::Ecdh1Derive, peer, size),
        )?);
        if self.x963 {
            let digest = self
                .kdf_digest
                .ok_or_else(|| Error::BadParam("kdf-type X963KDF needs kdf-digest".into()))?;
            if self.kdf_outlen == 0 {
                return Err(Error::BadParam("kdf-type X963KDF needs kdf-outlen".into()));
            }
            if out.capacity() < self.kdf_outlen {
                return Err(Error::BadParam(format!(
                    "output buffer of {} bytes is smaller than kdf-outlen {}",
                    out.capacity(),
                    self.kdf_outlen
                )));
            }
            let name = std::ffi::CString::new(digest.name())
                .map_err(|_| Error::BadParam("digest name".into()))?;
            let derived = primitives::x963_kdf(
                self.prov.libctx(),
                &name,
                &secret,
                &self.ukm,
                self.kdf_outlen,
            )?;
            return out.write(&derived);
        }
        let len = out.capacity().min(secret.len());
        out.write(&secret[..len])
    }

    /// `set_ctx_params`.
    pub(crate) fn set_params(&mut self, params: Params<'_>) -> Result<()> {
        if let Some(p) = params.find(abi::OSSL_EXCHANGE_PARAM_EC_ECDH_COFACTOR_MODE) {
            let mode = p.int()?;
            if !(-1..=1).contains(&mode) {
                return Err(Error::BadParam(format!("ECDH cofactor mode {mode}")));
            }
            self.cofactor_mode = mode;
        }
        if let Some(p) = params.find(abi::OSSL_EXCHANGE_PARAM_KDF_TYPE) {
            self.x963 = match p.utf8()? {
                "" => false,
                name if name.eq_ignore_ascii_case(X963KDF) => true,
                other => {
                    return Err(Error::Unsupported(format!(
                        "ECDH key derivation function '{other}' (only {X963KDF})"
                    )));
                }
            };
        }
        if let Some(p) = params.find(abi::OSSL_EXCHANGE_PARAM_KDF_DIGEST) {
            let name = p.utf8()?;
            self.kdf_digest = Some(
                Digest::from_name(name)
                    .ok_or_else(|| Error::Unsupported(format!("KDF digest '{name}'")))?,
            );
        }
        if let Some(p) = params.find(abi::OSSL_EXCHANGE_PARAM_KDF_OUTLEN) {
            self.kdf_outlen = p.size()?;
        }
        if let Some(p) = params.find(abi::OSSL_EXCHANGE_PARAM_KDF_UKM) {
            self.ukm = p.octets()?.to_vec();
        }
        Ok(())
    }

    /// `get_ctx_params`.
    pub(crate) fn get_params(&self, out: &mut ParamsOut<'_>) -> Result<()> {
        // Cofactor 1 on every supported curve: the key's default mode is "no cofactor".
        let mode = if self.cofactor_mode == -1 {
            0
        } else {
            self.cofactor_mode
        };
        out.set_int(abi::OSSL_EXCHANGE_PARAM_EC_ECDH_COFACTOR_MODE, mode)?;
        out.set_utf8(
            abi::OSSL_EXCHANGE_PARAM_KDF_TYPE,
            if self.x963 { X963KDF } else { "" },
        )?;
        if let Some(digest) = self.kdf_digest {
            out.set_utf8(abi::OSSL_EXCHANGE_PARAM_KDF_DIGEST, digest.name())?;
        }
        out.set_size(abi::OSSL_EXCHANGE_PARAM_KDF_OUTLEN, self.kdf_outlen)?;
        // OpenSSL asks for the UKM as a pointer (`EVP_PKEY_CTX_get0_ecdh_kdf_ukm`), which is
        // not handed out: a copy is given where a copy is asked for, else nothing.
        let _ = out.set_octets(abi::OSSL_EXCHANGE_PARAM_KDF_UKM, &self.ukm);
        Ok(())
    }
}
