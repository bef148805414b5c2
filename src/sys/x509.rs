//! What the store's search criteria compare in a certificate (provider-storemgmt(7),
//! `OSSL_STORE_SEARCH`): the subject and issuer names, the serial number and the public key
//! (`SubjectPublicKeyInfo`, for key fingerprints), read by libcrypto
//! from the DER certificate, and name comparison the way OpenSSL itself does it
//! (`X509_NAME_cmp`: canonical form, so string types and case in the DER do not matter).

use std::ffi::{c_int, c_long, c_void};
use std::ptr;

use super::libcrypto::discarding_errors;
use crate::error::{Error, Result};

/// The names, serial number and public key of a certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct CertificateFields {
    /// DER `Name` of the subject.
    pub(crate) subject: Vec<u8>,
    /// DER `Name` of the issuer.
    pub(crate) issuer: Vec<u8>,
    /// The serial number's magnitude, big-endian, without leading zero bytes.
    pub(crate) serial: Vec<u8>,
    /// DER `SubjectPublicKeyInfo` of the certificate's key.
    pub(crate) public_key_info: Vec<u8>,
}

struct X509(*mut openssl_sys::X509);

impl Drop for X509 {
    fn drop(&mut self) {
        // SAFETY: made by d2i_X509, freed once.
        unsafe { openssl_sys::X509_free(self.0) }
    }
}

struct Name(*mut openssl_sys::X509_NAME);

impl Drop for Name {
    fn drop(&mut self) {
        // SAFETY: made by d2i_X509_NAME, freed once.
        unsafe { openssl_sys::X509_NAME_free(self.0) }
    }
}

fn der_len(der: &[u8]) -> Result<c_long> {
    c_long::try_from(der.len()).map_err(|_| Error::BadParam("DER input too long".into()))
}

/// Reads the subject, issuer, serial number and public key of a DER certificate.
pub(crate) fn certificate_fields(der: &[u8]) -> Result<CertificateFields> {
    let len = der_len(der)?;
    let mut p = der.as_ptr();
    // SAFETY: p points to len readable bytes; d2i allocates a new X509 or returns NULL. A
    // certificate that does not parse is reported by the caller, not by libcrypto's queue.
    let cert = discarding_errors(|| unsafe { openssl_sys::d2i_X509(ptr::null_mut(), &mut p, len) });
    if cert.is_null() {
        return Err(Error::Unsupported(
            "certificate on the token is not valid DER".into(),
        ));
    }
    let cert = X509(cert);
    // SAFETY: cert is valid; the names are owned by it and live as long as it.
    let (subject, issuer) = unsafe {
        (
            name_der(openssl_sys::X509_get_subject_name(cert.0))?,
            name_der(openssl_sys::X509_get_issuer_name(cert.0))?,
        )
    };
    // SAFETY: cert is valid; the serial number is owned by it.
    let serial = unsafe { openssl_sys::X509_get_serialNumber(cert.0) };
    if serial.is_null() {
        return Err(Error::Openssl("X509_get_serialNumber"));
    }
    // SAFETY: serial is a valid ASN1_INTEGER; a NULL BIGNUM makes OpenSSL allocate one.
    let bn = unsafe { openssl_sys::ASN1_INTEGER_to_BN(serial, ptr::null_mut()) };
    if bn.is_null() {
        return Err(Error::Openssl("ASN1_INTEGER_to_BN"));
    }
    // SAFETY: bn was just allocated for us.
    let serial = unsafe { super::libcrypto::BigNum::from_owned(bn) }.to_be();
    Ok(CertificateFields {
        subject,
        issuer,
        serial,
        public_key_info: public_key_info(&cert)?,
    })
}

fn public_key_info(cert: &X509) -> Result<Vec<u8>> {
    // SAFETY: cert is valid; X509_get_pubkey returns a new reference or NULL (a key type
    // libcrypto does not know).
    let pkey = discarding_errors(|| unsafe { openssl_sys::X509_get_pubkey(cert.0) });
    if pkey.is_null() {
        return Ok(Vec::new());
    }
    let mut out: *mut u8 = ptr::null_mut();
    // SAFETY: pkey is valid; a NULL *out makes OpenSSL allocate the DER buffer.
    let len = unsafe { openssl_sys::i2d_PUBKEY(pkey, &mut out) };
    // SAFETY: our reference from X509_get_pubkey, released once.
    unsafe { openssl_sys::EVP_PKEY_free(pkey) };
    if len <= 0 || out.is_null() {
        return Err(Error::Openssl("i2d_PUBKEY"));
    }
    // SAFETY: OpenSSL wrote len bytes at out.
    let der = unsafe { super::slice::from_raw(out, len as usize) }.to_vec();
    // SAFETY: out was allocated by OpenSSL for us.
    unsafe { openssl_sys::OPENSSL_free(out.cast::<c_void>()) };
    Ok(der)
}

/// DER of a name owned by a certificate.
///
/// # Safety
/// `name` is NULL or a valid `X509_NAME`.
unsafe fn name_der(name: *mut openssl_sys::X509_NAME) -> Result<Vec<u8>> {
    if name.is_null() {
        return Err(Error::Openssl("X509_get_subject_name"));
    }
    let mut out: *mut u8 = ptr::null_mut();
    // SAFETY: name is valid; a NULL *out makes OpenSSL allocate the DER buffer.
    let len = unsafe { openssl_sys::i2d_X509_NAME(name, &mut out) };
    if len <= 0 || out.is_null() {
        return Err(Error::Openssl("i2d_X509_NAME"));
    }
    // SAFETY: OpenSSL wrote len bytes at out.
    let der = unsafe { super::slice::from_raw(out, len as usize) }.to_vec();
    // SAFETY: out was allocated by OpenSSL for us.
    unsafe { openssl_sys::OPENSSL_free(out.cast::<c_void>()) };
    Ok(der)
}

fn parse_name(der: &[u8]) -> Option<Name> {
    let len = der_len(der).ok()?;
    let mut p = der.as_ptr();
    // SAFETY: p points to len readable bytes; d2i allocates a new name or returns NULL (then
    // the names are compared as bytes, so libcrypto's complaint is dropped).
    let name =
        discarding_errors(|| unsafe { openssl_sys::d2i_X509_NAME(ptr::null_mut(), &mut p, len) });
    if name.is_null() {
        None
    } else {
        Some(Name(name))
    }
}

/// True when two DER names are the same name for OpenSSL (`X509_NAME_cmp`); names libcrypto
/// cannot parse are compared byte for byte.
pub(crate) fn names_equal(a: &[u8], b: &[u8]) -> bool {
    match (parse_name(a), parse_name(b)) {
        (Some(x), Some(y)) => {
            // SAFETY: both names are valid and owned here.
            let order: c_int = unsafe { openssl_sys::X509_NAME_cmp(x.0, y.0) };
            order == 0
        }
        _ => a == b,
    }
}
