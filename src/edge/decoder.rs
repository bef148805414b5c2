//! `extern "C"` shims and dispatch tables for the PEM-URI DECODER (provider-decoder(7)), one per
//! key type. Logic lives in `crate::ops::decoder`.

use std::ffi::{c_int, c_void};
use std::sync::Arc;

use crate::edge::dispatch::{END, dispatch};
use crate::edge::handle;
use crate::error::Error;
use crate::ops::decoder::DecoderCtx;
use crate::ops::keymgmt;
use crate::sys::abi::{self, OSSL_CORE_BIO, OSSL_DISPATCH};
use crate::sys::libcrypto::CoreBio;
use crate::sys::params::ParamBuilder;
use crate::token::object::KeyAlgorithm;

/// Largest input read when looking for a PEM-URI block or its DER body.
const READ_LIMIT: usize = 64 * 1024;

macro_rules! decoder_table {
    ($table:ident, $newctx:ident, $alg:expr) => {
        /// `OSSL_FUNC_DECODER_NEWCTX`.
        unsafe extern "C" fn $newctx(provctx: *mut c_void) -> *mut c_void {
            ffi_boundary!(stringify!($newctx), std::ptr::null_mut(), {
                // SAFETY: provctx is ours.
                let prov = unsafe { super::prov_ctx(provctx)? };
                Ok(handle::into_raw(DecoderCtx {
                    prov: Arc::clone(prov),
                    algorithm: $alg,
                }))
            })
        }

        pub(crate) static $table: &[OSSL_DISPATCH] = &[
            dispatch!(
                OSSL_FUNC_DECODER_NEWCTX,
                OSSL_FUNC_decoder_newctx_fn,
                $newctx
            ),
            dispatch!(
                OSSL_FUNC_DECODER_FREECTX,
                OSSL_FUNC_decoder_freectx_fn,
                dec_freectx
            ),
            dispatch!(
                OSSL_FUNC_DECODER_DOES_SELECTION,
                OSSL_FUNC_decoder_does_selection_fn,
                dec_does_selection
            ),
            dispatch!(
                OSSL_FUNC_DECODER_DECODE,
                OSSL_FUNC_decoder_decode_fn,
                dec_decode
            ),
            END,
        ];
    };
}

decoder_table!(RSA, dec_rsa_newctx, KeyAlgorithm::Rsa);
decoder_table!(RSA_PSS, dec_rsa_pss_newctx, KeyAlgorithm::RsaPss);
decoder_table!(EC, dec_ec_newctx, KeyAlgorithm::Ec);
decoder_table!(ED25519, dec_ed25519_newctx, KeyAlgorithm::Ed25519);
decoder_table!(ED448, dec_ed448_newctx, KeyAlgorithm::Ed448);

/// `OSSL_FUNC_DECODER_NEWCTX` of the PEM-to-DER decoder: only the provider context is needed.
unsafe extern "C" fn pem_newctx(provctx: *mut c_void) -> *mut c_void {
    ffi_boundary!("pem_newctx", std::ptr::null_mut(), {
        // SAFETY: provctx is ours.
        let prov = unsafe { super::prov_ctx(provctx)? };
        Ok(handle::into_raw(PemCtx(Arc::clone(prov))))
    })
}

/// `OSSL_FUNC_DECODER_FREECTX` of the PEM-to-DER decoder.
unsafe extern "C" fn pem_freectx(ctx: *mut c_void) {
    ffi_boundary!("pem_freectx", (), {
        // SAFETY: OpenSSL frees each decoder context once.
        drop(unsafe { handle::take::<PemCtx>(ctx) });
        Ok(())
    })
}

/// `OSSL_FUNC_DECODER_DECODE` of the PEM-to-DER decoder: takes the armour off a PEM-URI block
/// and hands its DER body to the next decoder (one of the key decoders above), like OpenSSL's
/// own PEM decoder does for the PEM types it knows. Other input is declined (1, no object).
unsafe extern "C" fn pem_decode(
    ctx: *mut c_void,
    cin: *mut OSSL_CORE_BIO,
    selection: c_int,
    data_cb: abi::OSSL_CALLBACK,
    data_cbarg: *mut c_void,
    pw_cb: abi::OSSL_PASSPHRASE_CALLBACK,
    pw_cbarg: *mut c_void,
) -> c_int {
    ffi_boundary!("pem_decode", 0, {
        // SAFETY: ctx is ours.
        let PemCtx(prov) = unsafe { handle::borrow::<PemCtx>(ctx, "decoder context")? };
        let data_cb = data_cb.ok_or(Error::NullArg("decoder callback"))?;
        if cin.is_null() {
            return Err(Error::NullArg("input BIO"));
        }
        // SAFETY: cin is the non-NULL core BIO OpenSSL passed, live during this call.
        let bio = unsafe { CoreBio::new(cin) };
        let text = bio.read_lines(prov.libctx(), READ_LIMIT, crate::pemuri::is_end_line)?;
        let want_private = selection & abi::OSSL_KEYMGMT_SELECT_PRIVATE_KEY != 0;
        let mut prompt = |info: &str| super::ask_pin(pw_cb, pw_cbarg, info);
        if text.len() >= READ_LIMIT && crate::pemuri::has_begin_line(&text) {
            // Read past the rest of the block, so the error below is the last word on this
            // input (OpenSSL's file: store drops it if the input does not end here).
            bio.skip_lines(prov.libctx(), crate::pemuri::is_end_line)?;
            return Err(Error::Uri(format!(
                "PKCS#11 PROVIDER URI PEM block longer than {} KiB",
                READ_LIMIT / 1024
            )));
        }
        let decoded = crate::ops::decoder::pem_to_der(prov, &text, want_private, Some(&mut prompt));
        let Some(der) = decoded? else {
            return Ok(1);
        };
        let mut params = ParamBuilder::new();
        params.octets(abi::OSSL_OBJECT_PARAM_DATA, &der);
        // SAFETY: OpenSSL's callback with its own argument and our terminated array, which
        // (with `der`) stays alive until the callback returns.
        Ok(unsafe { data_cb(params.finish(), data_cbarg) })
    })
}

/// The PEM-to-DER decoder's context.
struct PemCtx(Arc<crate::ops::provider::ProvCtx>);

pub(crate) static PEM_TO_DER: &[OSSL_DISPATCH] = &[
    dispatch!(
        OSSL_FUNC_DECODER_NEWCTX,
        OSSL_FUNC_decoder_newctx_fn,
        pem_newctx
    ),
    dispatch!(
        OSSL_FUNC_DECODER_FREECTX,
        OSSL_FUNC_decoder_freectx_fn,
        pem_freectx
    ),
    dispatch!(
        OSSL_FUNC_DECODER_DOES_SELECTION,
        OSSL_FUNC_decoder_does_selection_fn,
        dec_does_selection
    ),
    dispatch!(
        OSSL_FUNC_DECODER_DECODE,
        OSSL_FUNC_decoder_decode_fn,
        pem_decode
    ),
    END,
];

/// `OSSL_FUNC_DECODER_FREECTX`.
unsafe extern "C" fn dec_freectx(ctx: *mut c_void) {
    ffi_boundary!("dec_freectx", (), {
        // SAFETY: OpenSSL frees each decoder context once.
        drop(unsafe { handle::take::<DecoderCtx>(ctx) });
        Ok(())
    })
}

/// `OSSL_FUNC_DECODER_DOES_SELECTION` of every PEM-URI decoder: a selection that includes the
/// private key, or none (the `file:` store). Declining public-key-only selections keeps these
/// decoders out of the chain OpenSSL 3.0 builds for every SubjectPublicKeyInfo it decodes (each
/// certificate, in each TLS handshake); a PEM-URI file names a private key.
unsafe extern "C" fn dec_does_selection(_provctx: *mut c_void, selection: c_int) -> c_int {
    (selection == 0 || selection & abi::OSSL_KEYMGMT_SELECT_PRIVATE_KEY != 0).into()
}

/// `OSSL_FUNC_DECODER_DECODE` of the key decoders (input: a PEM-URI DER body): 1 and no object
/// for input that is not ours (provider-decoder(7)).
unsafe extern "C" fn dec_decode(
    ctx: *mut c_void,
    cin: *mut OSSL_CORE_BIO,
    selection: c_int,
    data_cb: abi::OSSL_CALLBACK,
    data_cbarg: *mut c_void,
    pw_cb: abi::OSSL_PASSPHRASE_CALLBACK,
    pw_cbarg: *mut c_void,
) -> c_int {
    ffi_boundary!("dec_decode", 0, {
        // SAFETY: ctx is ours.
        let ctx = unsafe { handle::borrow::<DecoderCtx>(ctx, "decoder context")? };
        let data_cb = data_cb.ok_or(Error::NullArg("decoder callback"))?;
        if cin.is_null() {
            return Err(Error::NullArg("input BIO"));
        }
        // SAFETY: cin is the non-NULL core BIO OpenSSL passed, live during this call.
        let input = unsafe { CoreBio::new(cin) }.read_up_to(ctx.prov.libctx(), READ_LIMIT)?;
        let want_private = selection & abi::OSSL_KEYMGMT_SELECT_PRIVATE_KEY != 0;
        let mut prompt = |info: &str| super::ask_pin(pw_cb, pw_cbarg, info);
        let Some(key) = ctx.decode(&input, want_private, Some(&mut prompt))? else {
            return Ok(1);
        };
        let published = keymgmt::publish(Arc::clone(&key))?;
        let mut params = ParamBuilder::new();
        params
            .int(abi::OSSL_OBJECT_PARAM_TYPE, abi::OSSL_OBJECT_PKEY)
            .utf8(abi::OSSL_OBJECT_PARAM_DATA_TYPE, key.algorithm.type_name())
            .octets(abi::OSSL_OBJECT_PARAM_REFERENCE, published.reference());
        // SAFETY: OpenSSL's callback with its own argument and our terminated array, which
        // (with the published reference) stays alive until the callback returns.
        Ok(unsafe { data_cb(params.finish(), data_cbarg) })
    })
}
