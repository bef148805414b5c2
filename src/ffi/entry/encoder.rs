//! `extern "C"` shims and dispatch tables for the ENCODERs (provider-encoder(7)) of token keys:
//! text, PEM-URI, and SubjectPublicKeyInfo DER/PEM. Logic lives in `crate::encoder`.

use std::ffi::{c_int, c_void};
use std::sync::Arc;

use crate::encoder::EncoderCtx;
use crate::error::Error;
use crate::ffi::dispatch::{END, dispatch};
use crate::ffi::handle;
use crate::ffi::sys::{self, OSSL_CORE_BIO, OSSL_DISPATCH, OSSL_PARAM};
use crate::keymgmt::KeyData;

pub(crate) static TEXT: [OSSL_DISPATCH; 5] = [
    dispatch!(
        OSSL_FUNC_ENCODER_NEWCTX,
        OSSL_FUNC_encoder_newctx_fn,
        enc_text_newctx
    ),
    dispatch!(
        OSSL_FUNC_ENCODER_FREECTX,
        OSSL_FUNC_encoder_freectx_fn,
        enc_freectx
    ),
    dispatch!(
        OSSL_FUNC_ENCODER_DOES_SELECTION,
        OSSL_FUNC_encoder_does_selection_fn,
        enc_text_does_selection
    ),
    dispatch!(
        OSSL_FUNC_ENCODER_ENCODE,
        OSSL_FUNC_encoder_encode_fn,
        enc_text_encode
    ),
    END,
];

pub(crate) static PEM_URI: [OSSL_DISPATCH; 5] = [
    dispatch!(
        OSSL_FUNC_ENCODER_NEWCTX,
        OSSL_FUNC_encoder_newctx_fn,
        enc_text_newctx
    ),
    dispatch!(
        OSSL_FUNC_ENCODER_FREECTX,
        OSSL_FUNC_encoder_freectx_fn,
        enc_freectx
    ),
    dispatch!(
        OSSL_FUNC_ENCODER_DOES_SELECTION,
        OSSL_FUNC_encoder_does_selection_fn,
        enc_pem_uri_does_selection
    ),
    dispatch!(
        OSSL_FUNC_ENCODER_ENCODE,
        OSSL_FUNC_encoder_encode_fn,
        enc_pem_uri_encode
    ),
    END,
];

macro_rules! public_key_table {
    ($table:ident, $encode:ident, $pem:expr) => {
        /// `OSSL_FUNC_ENCODER_ENCODE` of a SubjectPublicKeyInfo encoder.
        unsafe extern "C" fn $encode(
            ctx: *mut c_void,
            out: *mut OSSL_CORE_BIO,
            obj_raw: *const c_void,
            _obj_abstract: *const OSSL_PARAM,
            _selection: c_int,
            _cb: sys::OSSL_PASSPHRASE_CALLBACK,
            _cbarg: *mut c_void,
        ) -> c_int {
            ffi_boundary!(stringify!($encode), 0, {
                // SAFETY: ctx is ours; obj_raw is keydata of this provider's keymgmt.
                let (ctx, data) = unsafe {
                    (
                        handle::borrow::<EncoderCtx>(ctx, "encoder context")?,
                        handle::borrow::<KeyData>(obj_raw, "key")?,
                    )
                };
                if out.is_null() {
                    return Err(Error::NullArg("output BIO"));
                }
                // SAFETY: out is the non-NULL core BIO OpenSSL passed, live during this call.
                let out = unsafe { crate::ffi::ossl::CoreBio::new(out) };
                ctx.encode_public_key(data, &out, $pem)?;
                Ok(1)
            })
        }

        pub(crate) static $table: [OSSL_DISPATCH; 5] = [
            dispatch!(
                OSSL_FUNC_ENCODER_NEWCTX,
                OSSL_FUNC_encoder_newctx_fn,
                enc_text_newctx
            ),
            dispatch!(
                OSSL_FUNC_ENCODER_FREECTX,
                OSSL_FUNC_encoder_freectx_fn,
                enc_freectx
            ),
            dispatch!(
                OSSL_FUNC_ENCODER_DOES_SELECTION,
                OSSL_FUNC_encoder_does_selection_fn,
                enc_public_key_does_selection
            ),
            dispatch!(
                OSSL_FUNC_ENCODER_ENCODE,
                OSSL_FUNC_encoder_encode_fn,
                $encode
            ),
            END,
        ];
    };
}

public_key_table!(PUBLIC_KEY_DER, enc_public_key_der_encode, false);
public_key_table!(PUBLIC_KEY_PEM, enc_public_key_pem_encode, true);

/// `OSSL_FUNC_ENCODER_DOES_SELECTION` of the SubjectPublicKeyInfo encoders: a selection that
/// asks for the public key and not the private key (that one is the PEM-URI encoder's).
unsafe extern "C" fn enc_public_key_does_selection(
    _provctx: *mut c_void,
    selection: c_int,
) -> c_int {
    (selection & sys::OSSL_KEYMGMT_SELECT_PRIVATE_KEY == 0
        && selection & sys::OSSL_KEYMGMT_SELECT_PUBLIC_KEY != 0)
        .into()
}

/// `OSSL_FUNC_ENCODER_DOES_SELECTION` of the PEM-URI encoder: private keys only.
unsafe extern "C" fn enc_pem_uri_does_selection(_provctx: *mut c_void, selection: c_int) -> c_int {
    (selection & sys::OSSL_KEYMGMT_SELECT_PRIVATE_KEY != 0).into()
}

/// `OSSL_FUNC_ENCODER_ENCODE` of the PEM-URI encoder.
unsafe extern "C" fn enc_pem_uri_encode(
    ctx: *mut c_void,
    out: *mut OSSL_CORE_BIO,
    obj_raw: *const c_void,
    _obj_abstract: *const OSSL_PARAM,
    _selection: c_int,
    _cb: sys::OSSL_PASSPHRASE_CALLBACK,
    _cbarg: *mut c_void,
) -> c_int {
    ffi_boundary!("enc_pem_uri_encode", 0, {
        // SAFETY: ctx is ours; obj_raw is keydata of this provider's keymgmt (same provider).
        let (ctx, data) = unsafe {
            (
                handle::borrow::<EncoderCtx>(ctx, "encoder context")?,
                handle::borrow::<KeyData>(obj_raw, "key")?,
            )
        };
        if out.is_null() {
            return Err(Error::NullArg("output BIO"));
        }
        // SAFETY: out is the non-NULL core BIO OpenSSL passed, live during this call.
        let out = unsafe { crate::ffi::ossl::CoreBio::new(out) };
        ctx.encode_pem_uri(data, &out)?;
        Ok(1)
    })
}

/// `OSSL_FUNC_ENCODER_NEWCTX`.
unsafe extern "C" fn enc_text_newctx(provctx: *mut c_void) -> *mut c_void {
    ffi_boundary!("enc_text_newctx", std::ptr::null_mut(), {
        // SAFETY: provctx is ours.
        let prov = unsafe { super::prov_ctx(provctx)? };
        Ok(handle::into_raw(EncoderCtx {
            prov: Arc::clone(prov),
        }))
    })
}

/// `OSSL_FUNC_ENCODER_FREECTX`.
unsafe extern "C" fn enc_freectx(ctx: *mut c_void) {
    ffi_boundary!("enc_freectx", (), {
        // SAFETY: OpenSSL frees each encoder context once.
        drop(unsafe { handle::take::<EncoderCtx>(ctx) });
        Ok(())
    })
}

/// `OSSL_FUNC_ENCODER_DOES_SELECTION`: any key selection.
unsafe extern "C" fn enc_text_does_selection(_provctx: *mut c_void, selection: c_int) -> c_int {
    let keys = sys::OSSL_KEYMGMT_SELECT_KEYPAIR | sys::OSSL_KEYMGMT_SELECT_ALL_PARAMETERS;
    (selection & keys != 0).into()
}

/// `OSSL_FUNC_ENCODER_ENCODE`: the text form of a token key.
unsafe extern "C" fn enc_text_encode(
    ctx: *mut c_void,
    out: *mut OSSL_CORE_BIO,
    obj_raw: *const c_void,
    _obj_abstract: *const OSSL_PARAM,
    _selection: c_int,
    _cb: sys::OSSL_PASSPHRASE_CALLBACK,
    _cbarg: *mut c_void,
) -> c_int {
    ffi_boundary!("enc_text_encode", 0, {
        // SAFETY: ctx is ours; obj_raw is keydata of this provider's keymgmt (same provider).
        let (ctx, data) = unsafe {
            (
                handle::borrow::<EncoderCtx>(ctx, "encoder context")?,
                handle::borrow::<KeyData>(obj_raw, "key")?,
            )
        };
        if out.is_null() {
            return Err(Error::NullArg("output BIO"));
        }
        // SAFETY: out is the non-NULL core BIO OpenSSL passed, live during this call.
        let out = unsafe { crate::ffi::ossl::CoreBio::new(out) };
        ctx.encode_text(data, &out)?;
        Ok(1)
    })
}
