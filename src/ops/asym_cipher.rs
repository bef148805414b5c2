//! RSA encryption and decryption (provider-asym_cipher(7)) with token keys.
//!
//! Decryption happens on the token, through the chokepoint:
//! - PKCS#1 v1.5 (`pad-mode` 1): `CKM_RSA_PKCS`; a bad ciphertext is an error, and no byte of
//!   a partial plaintext reaches the caller.
//! - TLS pre-master secrets (`RSA_PKCS1_WITH_TLS_PADDING`, what libssl's RSA key exchange
//!   asks for, with `tls-client-version` and `tls-negotiated-version`): OpenSSL's contract is
//!   implicit rejection, RFC 5246 §7.4.7.1: a bad padding or version gives a random 48-byte
//!   secret, never an error, so the handshake fails later without telling a Bleichenbacher
//!   attacker why. The token makes a raw `CKM_RSA_X_509` decryption and the padding and version
//!   are checked here in constant time; a token that refuses raw RSA for the key gets
//!   `CKM_RSA_PKCS`, and its decryption failure selects the random secret (the token's own
//!   timing is then beyond our control).
//! - OAEP (`pad-mode` 4) with SHA-1/SHA-2 for the label hash and MGF1, and a label
//!   (`oaep-label`): `CKM_RSA_PKCS_OAEP`. When the token rejects the parameters (SoftHSM2 2.6
//!   takes only SHA-1), a raw `CKM_RSA_X_509` decryption is decoded by libcrypto's constant-time
//!   OAEP check instead, if the key allows raw RSA.
//! - no padding (`pad-mode` 3): `CKM_RSA_X_509`, the whole modulus-sized block.
//!
//! Encryption needs only the public key: it runs in another provider (normally the default
//! provider) with the key's public parts, whichever provider OpenSSL picked the cipher from.

use std::sync::Arc;

use cryptoki::context::Function;
use cryptoki::error::RvError;
use cryptoki::mechanism::MechanismType;
use cryptoki::mechanism::rsa::PkcsMgfType;
use zeroize::Zeroizing;

use crate::asn1::Digest;
use crate::error::{Error, Result};
use crate::ops::keymgmt;
use crate::ops::provider::ProvCtx;
use crate::sys::abi;
use crate::sys::libcrypto::PublicPkey;
use crate::sys::params::{ParamBuilder, Params, ParamsOut};
use crate::sys::primitives;
use crate::sys::slice::OutBuf;
use crate::token::object::{KeyAlgorithm, KeyObj, PublicKey};
use crate::token::op::{self, KeyOp, Mech};

// RSA padding numbers (openssl/rsa.h).
const RSA_PKCS1_PADDING: i32 = 1;
const RSA_NO_PADDING: i32 = 3;
const RSA_PKCS1_OAEP_PADDING: i32 = 4;
const RSA_PKCS1_WITH_TLS_PADDING: i32 = 7;

/// Size of a TLS pre-master secret (`SSL_MAX_MASTER_KEY_LENGTH`).
const TLS_PREMASTER_LEN: usize = 48;
/// PKCS#1 v1.5 encryption overhead: 00 02, at least 8 padding bytes, 00 (RFC 8017 §7.2.1).
const PKCS1_OVERHEAD: usize = 11;

/// RSA padding (`pad-mode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Padding {
    Pkcs1,
    Pkcs1Tls,
    Oaep,
    None,
}

impl Padding {
    fn number(self) -> i32 {
        match self {
            Padding::Pkcs1 => RSA_PKCS1_PADDING,
            Padding::Pkcs1Tls => RSA_PKCS1_WITH_TLS_PADDING,
            Padding::Oaep => RSA_PKCS1_OAEP_PADDING,
            Padding::None => RSA_NO_PADDING,
        }
    }

    /// OpenSSL's text name (`OSSL_PKEY_RSA_PAD_MODE_*`); the TLS padding has none.
    fn name(self) -> Option<&'static str> {
        match self {
            Padding::Pkcs1 => Some("pkcs1"),
            Padding::Oaep => Some("oaep"),
            Padding::None => Some("none"),
            Padding::Pkcs1Tls => None,
        }
    }
}

/// Which operation the context was initialised for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Direction {
    Encrypt,
    Decrypt,
}

/// One RSA encryption or decryption (`EVP_PKEY_CTX` provider side).
#[derive(Clone)]
pub(crate) struct CipherCtx {
    prov: Arc<ProvCtx>,
    key: Option<Arc<KeyObj>>,
    direction: Option<Direction>,
    padding: Padding,
    /// OAEP label hash (default SHA-1, as RFC 8017 and OpenSSL).
    oaep_digest: Digest,
    /// MGF1 hash (default: the OAEP digest).
    mgf1_digest: Option<Digest>,
    label: Vec<u8>,
    /// `tls-client-version`: the version the client offered in its ClientHello.
    client_version: u32,
    /// `tls-negotiated-version`: also accepted in the pre-master secret (libssl sets it for
    /// `SSL_OP_TLS_ROLLBACK_BUG`).
    negotiated_version: u32,
}

impl CipherCtx {
    pub(crate) fn new(prov: Arc<ProvCtx>) -> CipherCtx {
        CipherCtx {
            prov,
            key: None,
            direction: None,
            padding: Padding::Pkcs1,
            oaep_digest: Digest::Sha1,
            mgf1_digest: None,
            label: Vec::new(),
            client_version: 0,
            negotiated_version: 0,
        }
    }

    fn key(&self) -> Result<&Arc<KeyObj>> {
        self.key
            .as_ref()
            .ok_or_else(|| Error::BadParam("RSA cipher operation not initialised".into()))
    }

    /// `encrypt_init`: any RSA key, public parts suffice.
    pub(crate) fn encrypt_init(&mut self, key: Arc<KeyObj>, params: Params<'_>) -> Result<()> {
        if !matches!(key.public, PublicKey::Rsa { .. }) {
            return Err(Error::Unsupported("RSA encryption needs an RSA key".into()));
        }
        self.reset(key, Direction::Encrypt);
        self.set_params(params)
    }

    /// `decrypt_init`: an RSA private key on a token.
    pub(crate) fn decrypt_init(&mut self, key: Arc<KeyObj>, params: Params<'_>) -> Result<()> {
        if key.algorithm != KeyAlgorithm::Rsa {
            return Err(Error::Unsupported(format!(
                "a {} key cannot decrypt",
                key.algorithm.type_name().to_string_lossy()
            )));
        }
        if !key.has_private() {
            return Err(Error::Unsupported(
                "decryption needs a private key; the pkcs11 URI names a public key or \
                 certificate (add ;type=private)"
                    .into(),
            ));
        }
        self.reset(key, Direction::Decrypt);
        self.set_params(params)
    }

    fn reset(&mut self, key: Arc<KeyObj>, direction: Direction) {
        self.key = Some(key);
        self.direction = Some(direction);
        self.padding = Padding::Pkcs1;
        self.oaep_digest = Digest::Sha1;
        self.mgf1_digest = None;
        self.label.clear();
        self.client_version = 0;
        self.negotiated_version = 0;
    }

    fn modulus_len(&self) -> Result<usize> {
        Ok(self.key()?.max_signature_size())
    }

    /// `encrypt`: in another provider, with the key's public parts.
    pub(crate) fn encrypt(&mut self, input: &[u8], out: OutBuf<'_>) -> Result<()> {
        if self.direction != Some(Direction::Encrypt) {
            return Err(Error::BadParam("encrypt without encrypt_init".into()));
        }
        let key = self.key()?;
        if out.is_size_query() {
            out.set_size(self.modulus_len()?);
            return Ok(());
        }
        if self.padding == Padding::Pkcs1Tls {
            return Err(Error::Unsupported(
                "the TLS padding is for decryption only".into(),
            ));
        }
        let mut public = keymgmt::public_params(&key.public, abi::OSSL_KEYMGMT_SELECT_PUBLIC_KEY);
        let pkey = PublicPkey::from_params(self.prov.libctx(), c"RSA", public.finish())?;
        let digest = std::ffi::CString::new(self.oaep_digest.name())
            .map_err(|_| Error::BadParam("digest name".into()))?;
        let mgf1 = std::ffi::CString::new(self.mgf1().name())
            .map_err(|_| Error::BadParam("digest name".into()))?;
        let mut params = ParamBuilder::new();
        params.int(abi::OSSL_ASYM_CIPHER_PARAM_PAD_MODE, self.padding.number());
        if self.padding == Padding::Oaep {
            params
                .utf8(abi::OSSL_ASYM_CIPHER_PARAM_OAEP_DIGEST, &digest)
                .utf8(abi::OSSL_ASYM_CIPHER_PARAM_MGF1_DIGEST, &mgf1);
            if !self.label.is_empty() {
                params.octets(abi::OSSL_ASYM_CIPHER_PARAM_OAEP_LABEL, &self.label);
            }
        }
        let ciphertext =
            primitives::public_encrypt(self.prov.libctx(), &pkey, params.finish(), input)?;
        out.write(&ciphertext)
    }

    /// `decrypt`: on the token (see the module comment for each padding).
    pub(crate) fn decrypt(&mut self, input: &[u8], out: OutBuf<'_>) -> Result<()> {
        if self.direction != Some(Direction::Decrypt) {
            return Err(Error::BadParam("decrypt without decrypt_init".into()));
        }
        let modulus_len = self.modulus_len()?;
        if out.is_size_query() {
            out.set_size(match self.padding {
                Padding::Pkcs1Tls => TLS_PREMASTER_LEN,
                _ => modulus_len,
            });
            return Ok(());
        }
        if input.len() > modulus_len {
            return Err(Error::BadParam(format!(
                "ciphertext of {} bytes is longer than the {modulus_len}-byte modulus",
                input.len()
            )));
        }
        let plaintext = match self.padding {
            Padding::Pkcs1 => self
                .on_token(Mech::RsaPkcs, input, Vec::new())
                .map_err(|e| e.context("RSA PKCS#1 v1.5 decryption (wrong key or data?)"))?,
            Padding::None => left_pad(
                self.on_token(Mech::RsaX509, input, Vec::new())?,
                modulus_len,
            )?,
            Padding::Oaep => self.decrypt_oaep(input, modulus_len)?,
            Padding::Pkcs1Tls => {
                if out.capacity() < TLS_PREMASTER_LEN {
                    return Err(Error::BadParam(format!(
                        "a TLS pre-master secret needs {TLS_PREMASTER_LEN} bytes, the buffer \
                         has {}",
                        out.capacity()
                    )));
                }
                self.decrypt_tls_premaster(input, modulus_len)?
            }
        };
        out.write(&plaintext)
    }

    /// One decryption on the token, through the chokepoint.
    fn on_token(
        &self,
        mechanism: Mech,
        input: &[u8],
        label: Vec<u8>,
    ) -> Result<Zeroizing<Vec<u8>>> {
        let key = Arc::clone(self.key()?);
        let op = KeyOp::decrypt(key, mechanism, input.to_vec(), label);
        op::perform(&self.prov.tokens, op).map(Zeroizing::new)
    }

    fn mgf1(&self) -> Digest {
        self.mgf1_digest.unwrap_or(self.oaep_digest)
    }

    fn decrypt_oaep(&self, input: &[u8], modulus_len: usize) -> Result<Zeroizing<Vec<u8>>> {
        let on_token = oaep_hash(self.oaep_digest).zip(oaep_mgf1(self.mgf1()));
        if let Some((hash, mgf)) = on_token {
            match self.on_token(Mech::RsaOaep { hash, mgf }, input, self.label.clone()) {
                Err(e) if parameters_refused(&e) => {
                    log::debug!(
                        "the token refuses OAEP with {}/MGF1-{} ({e}); decoding a raw \
                         decryption instead",
                        self.oaep_digest.name(),
                        self.mgf1().name()
                    );
                }
                // SoftHSM2 2.6 takes a label and then decrypts as if there were none: with a
                // label, a failed decryption is tried once more with the decoding done here.
                Err(e) if !self.label.is_empty() && failed_in_decrypt(&e) => {
                    log::debug!(
                        "OAEP with a label failed on the token ({e}); decoding a raw \
                         decryption instead, as some tokens ignore the label"
                    );
                }
                other => return other,
            }
        }
        let raw = self
            .on_token(Mech::RsaX509, input, Vec::new())
            .map_err(|e| {
                e.context(format!(
                    "the token cannot decrypt OAEP with {}/MGF1-{}, nor raw RSA for decoding here",
                    self.oaep_digest.name(),
                    self.mgf1().name()
                ))
            })?;
        let digest = self.prov.md(self.oaep_digest)?;
        let mgf1 = self.prov.md(self.mgf1())?;
        primitives::oaep_decode(&raw, modulus_len, &self.label, &digest, &mgf1).map_err(|_| {
            Error::BadParam("RSA OAEP decryption failed (wrong key, label, digests or data)".into())
        })
    }

    /// The TLS pre-master secret with implicit rejection (see the module comment).
    fn decrypt_tls_premaster(
        &self,
        input: &[u8],
        modulus_len: usize,
    ) -> Result<Zeroizing<Vec<u8>>> {
        if self.client_version == 0 {
            return Err(Error::BadParam(
                "RSA_PKCS1_WITH_TLS_PADDING needs tls-client-version".into(),
            ));
        }
        if modulus_len < TLS_PREMASTER_LEN + PKCS1_OVERHEAD {
            return Err(Error::BadParam("RSA key too small for TLS".into()));
        }
        // Drawn first, whatever happens next.
        let mut random = Zeroizing::new([0u8; TLS_PREMASTER_LEN]);
        primitives::random_bytes(self.prov.libctx(), random.as_mut())?;
        let versions = TlsVersions {
            client: self.client_version,
            negotiated: self.negotiated_version,
        };
        match self.on_token(Mech::RsaX509, input, Vec::new()) {
            Ok(raw) => {
                let block = left_pad(raw, modulus_len)?;
                Ok(tls_premaster_from_block(&block, versions, &random))
            }
            Err(e) if mechanism_refused(&e) => {
                log::debug!(
                    "raw RSA refused for a TLS pre-master secret ({e}); using CKM_RSA_PKCS"
                );
                match self.on_token(Mech::RsaPkcs, input, Vec::new()) {
                    Ok(message) => Ok(tls_premaster_from_message(&message, versions, &random)),
                    Err(e) if decryption_failed(&e) => Ok(Zeroizing::new(random.to_vec())),
                    Err(e) => Err(e),
                }
            }
            Err(e) => Err(e),
        }
    }

    /// `set_ctx_params`.
    pub(crate) fn set_params(&mut self, params: Params<'_>) -> Result<()> {
        if let Some(p) = params.find(abi::OSSL_ASYM_CIPHER_PARAM_PAD_MODE) {
            let mode = if p.is_utf8() {
                match p.utf8()? {
                    "pkcs1" => RSA_PKCS1_PADDING,
                    "oaep" => RSA_PKCS1_OAEP_PADDING,
                    "none" => RSA_NO_PADDING,
                    other => {
                        return Err(Error::Unsupported(format!("RSA padding mode '{other}'")));
                    }
                }
            } else {
                p.int()?
            };
            self.padding = match mode {
                RSA_PKCS1_PADDING => Padding::Pkcs1,
                RSA_PKCS1_WITH_TLS_PADDING => Padding::Pkcs1Tls,
                RSA_PKCS1_OAEP_PADDING => Padding::Oaep,
                RSA_NO_PADDING => Padding::None,
                other => {
                    return Err(Error::Unsupported(format!(
                        "RSA padding mode {other} for encryption"
                    )));
                }
            };
        }
        if let Some(p) = params.find(abi::OSSL_ASYM_CIPHER_PARAM_OAEP_DIGEST) {
            self.oaep_digest = digest_named(p.utf8()?)?;
        }
        if let Some(p) = params.find(abi::OSSL_ASYM_CIPHER_PARAM_MGF1_DIGEST) {
            self.mgf1_digest = Some(digest_named(p.utf8()?)?);
        }
        if let Some(p) = params.find(abi::OSSL_ASYM_CIPHER_PARAM_OAEP_LABEL) {
            self.label = p.octets()?.to_vec();
        }
        if let Some(p) = params.find(abi::OSSL_ASYM_CIPHER_PARAM_TLS_CLIENT_VERSION) {
            self.client_version = p.uint()?;
        }
        if let Some(p) = params.find(abi::OSSL_ASYM_CIPHER_PARAM_TLS_NEGOTIATED_VERSION) {
            self.negotiated_version = p.uint()?;
        }
        Ok(())
    }

    /// `get_ctx_params`.
    pub(crate) fn get_params(&self, out: &mut ParamsOut<'_>) -> Result<()> {
        if out
            .set_int(abi::OSSL_ASYM_CIPHER_PARAM_PAD_MODE, self.padding.number())
            .is_err()
        {
            if let Some(name) = self.padding.name() {
                out.set_utf8(abi::OSSL_ASYM_CIPHER_PARAM_PAD_MODE, name)?;
            }
        }
        out.set_utf8(
            abi::OSSL_ASYM_CIPHER_PARAM_OAEP_DIGEST,
            self.oaep_digest.name(),
        )?;
        out.set_utf8(abi::OSSL_ASYM_CIPHER_PARAM_MGF1_DIGEST, self.mgf1().name())?;
        // OpenSSL asks for the label as a pointer (`EVP_PKEY_CTX_get0_rsa_oaep_label`), which
        // is not handed out: a copy is given where a copy is asked for, else nothing.
        let _ = out.set_octets(abi::OSSL_ASYM_CIPHER_PARAM_OAEP_LABEL, &self.label);
        out.set_uint(
            abi::OSSL_ASYM_CIPHER_PARAM_TLS_CLIENT_VERSION,
            self.client_version,
        )?;
        out.set_uint(
            abi::OSSL_ASYM_CIPHER_PARAM_TLS_NEGOTIATED_VERSION,
            self.negotiated_version,
        )?;
        Ok(())
    }
}

/// The PKCS#11 hash of an OAEP label digest (`None`: no PKCS#11 name, decoded here).
fn oaep_hash(digest: Digest) -> Option<MechanismType> {
    Some(match digest {
        Digest::Sha1 => MechanismType::SHA1,
        Digest::Sha224 => MechanismType::SHA224,
        Digest::Sha256 => MechanismType::SHA256,
        Digest::Sha384 => MechanismType::SHA384,
        Digest::Sha512 => MechanismType::SHA512,
        _ => return None,
    })
}

/// The PKCS#11 MGF1 of `digest` (`None`: no PKCS#11 name, decoded here).
fn oaep_mgf1(digest: Digest) -> Option<PkcsMgfType> {
    Some(match digest {
        Digest::Sha1 => PkcsMgfType::MGF1_SHA1,
        Digest::Sha224 => PkcsMgfType::MGF1_SHA224,
        Digest::Sha256 => PkcsMgfType::MGF1_SHA256,
        Digest::Sha384 => PkcsMgfType::MGF1_SHA384,
        Digest::Sha512 => PkcsMgfType::MGF1_SHA512,
        _ => return None,
    })
}

fn digest_named(name: &str) -> Result<Digest> {
    Digest::from_name(name).ok_or_else(|| Error::Unsupported(format!("OAEP/MGF1 digest '{name}'")))
}

/// A raw RSA result as the modulus-sized block (tokens may drop leading zero bytes).
fn left_pad(raw: Zeroizing<Vec<u8>>, modulus_len: usize) -> Result<Zeroizing<Vec<u8>>> {
    if raw.len() == modulus_len {
        return Ok(raw);
    }
    let start = modulus_len
        .checked_sub(raw.len())
        .ok_or_else(|| Error::Module("the token returned more than a modulus".into()))?;
    let mut block = Zeroizing::new(vec![0u8; modulus_len]);
    block[start..].copy_from_slice(&raw);
    Ok(block)
}

/// `C_Decrypt` itself failed (the mechanism was accepted).
fn failed_in_decrypt(e: &Error) -> bool {
    matches!(
        e.root(),
        Error::Token {
            func: Function::Decrypt,
            ..
        }
    )
}

/// The token refused the mechanism parameters at `C_DecryptInit` (not the data).
fn parameters_refused(e: &Error) -> bool {
    matches!(
        e.root(),
        Error::Token {
            func: Function::DecryptInit,
            rv: RvError::MechanismParamInvalid | RvError::ArgumentsBad | RvError::MechanismInvalid
        }
    )
}

/// The token (or the key's policy) refused the mechanism at `C_DecryptInit`.
fn mechanism_refused(e: &Error) -> bool {
    matches!(
        e.root(),
        Error::Token {
            func: Function::DecryptInit,
            rv: RvError::MechanismInvalid
                | RvError::MechanismParamInvalid
                | RvError::KeyFunctionNotPermitted
                | RvError::KeyTypeInconsistent
        }
    )
}

/// The token could not decrypt this ciphertext (bad padding or data), as opposed to a failure
/// of the token or session.
fn decryption_failed(e: &Error) -> bool {
    matches!(
        e.root(),
        Error::Token {
            func: Function::Decrypt,
            rv: RvError::EncryptedDataInvalid
                | RvError::EncryptedDataLenRange
                | RvError::DataInvalid
                | RvError::DataLenRange
        }
    )
}

/// The versions a TLS pre-master secret may start with.
#[derive(Clone, Copy)]
struct TlsVersions {
    client: u32,
    /// 0: none.
    negotiated: u32,
}

/// 0xff when `a == b`, else 0, without a branch on the values.
fn ct_eq(a: u8, b: u8) -> u8 {
    let diff = u16::from(a ^ b);
    // diff - 1 underflows (high byte 0xff) exactly when diff is 0.
    std::hint::black_box((diff.wrapping_sub(1) >> 8) as u8)
}

/// The two version bytes match `version` (0xff) or not (0).
fn ct_version(bytes: [u8; 2], version: u32) -> u8 {
    let [_, _, major, minor] = version.to_be_bytes();
    ct_eq(bytes[0], major) & ct_eq(bytes[1], minor)
}

/// `mask` 0xff: `a`; 0: `b`.
fn ct_select(mask: u8, a: u8, b: u8) -> u8 {
    (a & mask) | (b & !mask)
}

/// The pre-master secret in a raw RSA result `block` (modulus-sized): `00 02 PS 00 M` with
/// at least 8 non-zero padding bytes and a 48-byte `M` starting with an allowed version
/// (RFC 5246 §7.4.7.1), else `random`. Every byte is looked at whatever it holds, and the
/// choice is made byte by byte with masks.
fn tls_premaster_from_block(
    block: &[u8],
    versions: TlsVersions,
    random: &[u8; TLS_PREMASTER_LEN],
) -> Zeroizing<Vec<u8>> {
    let message_at = block.len() - TLS_PREMASTER_LEN;
    let mut good = ct_eq(block[0], 0) & ct_eq(block[1], 2);
    for byte in &block[2..message_at - 1] {
        good &= !ct_eq(*byte, 0);
    }
    good &= ct_eq(block[message_at - 1], 0);
    good &= version_mask(&block[message_at..], versions);
    select_premaster(good, &block[message_at..], random)
}

/// As [`tls_premaster_from_block`] for a message the token already took the padding off.
fn tls_premaster_from_message(
    message: &[u8],
    versions: TlsVersions,
    random: &[u8; TLS_PREMASTER_LEN],
) -> Zeroizing<Vec<u8>> {
    if message.len() != TLS_PREMASTER_LEN {
        return Zeroizing::new(random.to_vec());
    }
    let good = version_mask(message, versions);
    select_premaster(good, message, random)
}

fn version_mask(message: &[u8], versions: TlsVersions) -> u8 {
    let first = [message[0], message[1]];
    let mut good = ct_version(first, versions.client);
    // Public: whether the caller allows a second version does not depend on the ciphertext.
    if versions.negotiated != 0 {
        good |= ct_version(first, versions.negotiated);
    }
    good
}

fn select_premaster(
    good: u8,
    message: &[u8],
    random: &[u8; TLS_PREMASTER_LEN],
) -> Zeroizing<Vec<u8>> {
    let good = std::hint::black_box(good);
    Zeroizing::new(
        message
            .iter()
            .zip(random.iter())
            .map(|(m, r)| ct_select(good, *m, *r))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const RANDOM: [u8; TLS_PREMASTER_LEN] = [0xaa; TLS_PREMASTER_LEN];
    const TLS12: TlsVersions = TlsVersions {
        client: 0x0303,
        negotiated: 0,
    };

    /// `00 02 PS 00 03 03 ...` for a 128-byte modulus.
    fn good_block() -> Vec<u8> {
        let mut block = vec![0u8, 2];
        block.extend([0x5au8; 128 - 2 - 1 - TLS_PREMASTER_LEN]);
        block.push(0);
        block.extend([3u8, 3]);
        block.extend((0..46).map(|i| i as u8));
        block
    }

    #[test]
    fn a_well_formed_block_gives_its_secret() {
        let block = good_block();
        let secret = tls_premaster_from_block(&block, TLS12, &RANDOM);
        assert_eq!(&secret[..], &block[block.len() - TLS_PREMASTER_LEN..]);
    }

    #[test]
    fn every_kind_of_bad_block_gives_the_random_secret() {
        type Spoil = Box<dyn Fn(&mut Vec<u8>)>;
        let bad: Vec<Spoil> = vec![
            Box::new(|b| b[0] = 1),
            Box::new(|b| b[1] = 1),
            Box::new(|b| b[5] = 0), // zero inside the padding
            Box::new(|b| b[128 - TLS_PREMASTER_LEN - 1] = 7), // no zero before the message
            Box::new(|b| b[128 - TLS_PREMASTER_LEN] = 2), // wrong major version
            Box::new(|b| b[128 - TLS_PREMASTER_LEN + 1] = 1), // wrong minor version
        ];
        for spoil in bad {
            let mut block = good_block();
            spoil(&mut block);
            assert_eq!(
                &tls_premaster_from_block(&block, TLS12, &RANDOM)[..],
                &RANDOM[..]
            );
        }
    }

    #[test]
    fn the_negotiated_version_is_also_accepted() {
        let mut block = good_block();
        block[128 - TLS_PREMASTER_LEN + 1] = 1; // 03 01
        let versions = TlsVersions {
            client: 0x0303,
            negotiated: 0x0301,
        };
        let secret = tls_premaster_from_block(&block, versions, &RANDOM);
        assert_eq!(&secret[..], &block[128 - TLS_PREMASTER_LEN..]);
    }

    #[test]
    fn a_message_of_the_wrong_length_gives_the_random_secret() {
        let message = vec![3u8; 47];
        assert_eq!(
            &tls_premaster_from_message(&message, TLS12, &RANDOM)[..],
            &RANDOM[..]
        );
        let mut message = vec![0u8; 48];
        message[..2].copy_from_slice(&[3, 3]);
        assert_eq!(
            &tls_premaster_from_message(&message, TLS12, &RANDOM)[..],
            &message[..]
        );
    }

    #[test]
    fn constant_time_helpers() {
        assert_eq!(ct_eq(7, 7), 0xff);
        assert_eq!(ct_eq(0, 255), 0);
        assert_eq!(ct_eq(255, 254), 0);
        assert_eq!(ct_select(0xff, 1, 2), 1);
        assert_eq!(ct_select(0, 1, 2), 2);
    }
}
