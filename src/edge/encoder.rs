//! `extern "C"` shims and dispatch tables for the ENCODERs (provider-encoder(7)) of token keys:
//! text, PEM-URI, and SubjectPublicKeyInfo DER/PEM. Logic lives in `crate::ops::encoder`.

use std::ffi::{c_int, c_void};
use std::sync::Arc;

use crate::edge::dispatch::{END, dispatch};
use crate::edge::handle;
use crate::error::Error;
use crate::ops::encoder::EncoderCtx;
use crate::ops::keymgmt::KeyData;
use crate::sys::abi::{self, OSSL_CORE_BIO, OSSL_DISPATCH, OSSL_PARAM};

/// A dispatch table of one encoder kind: shared context functions, its own selection check
/// and its own `encode` shim.
macro_rules! encoder_table {
    ($table:ident, $does_selection:ident, $encode:ident) => {
        pub(crate) static $table: &[OSSL_DISPATCH] = &[
            dispatch!(
                OSSL_FUNC_ENCODER_NEWCTX,
                OSSL_FUNC_encoder_newctx_fn,
                enc_newctx
            ),
            dispatch!(
                OSSL_FUNC_ENCODER_FREECTX,
                OSSL_FUNC_encoder_freectx_fn,
                enc_freectx
            ),
            dispatch!(
                OSSL_FUNC_ENCODER_DOES_SELECTION,
                OSSL_FUNC_encoder_does_selection_fn,
                $does_selection
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

/// An `OSSL_FUNC_ENCODER_ENCODE` shim that checks its arguments and calls `$method` of
/// `EncoderCtx` with the key, the output BIO and the selection (and `$extra` arguments).
macro_rules! encode_shim {
    ($name:ident, $method:ident $(, $extra:expr)*) => {
        unsafe extern "C" fn $name(
            ctx: *mut c_void,
            out: *mut OSSL_CORE_BIO,
            obj_raw: *const c_void,
            _obj_abstract: *const OSSL_PARAM,
            selection: c_int,
            _cb: abi::OSSL_PASSPHRASE_CALLBACK,
            _cbarg: *mut c_void,
        ) -> c_int {
            ffi_boundary!(stringify!($name), 0, {
                // SAFETY: ctx is ours; obj_raw is keydata of this provider's keymgmt (encoders
                // are only offered for this provider's keys).
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
                let out = unsafe { crate::sys::libcrypto::CoreBio::new(out) };
                ctx.$method(data, &out, selection $(, $extra)*)?;
                Ok(1)
            })
        }
    };
}

encode_shim!(enc_text_encode, encode_text);
encode_shim!(enc_pem_uri_encode, encode_pem_uri);
encode_shim!(enc_public_key_der_encode, encode_public_key, false);
encode_shim!(enc_public_key_pem_encode, encode_public_key, true);

encoder_table!(TEXT, enc_text_does_selection, enc_text_encode);
encoder_table!(PEM_URI, enc_pem_uri_does_selection, enc_pem_uri_encode);
encoder_table!(
    PUBLIC_KEY_DER,
    enc_public_key_does_selection,
    enc_public_key_der_encode
);
encoder_table!(
    PUBLIC_KEY_PEM,
    enc_public_key_does_selection,
    enc_public_key_pem_encode
);

/// `OSSL_FUNC_ENCODER_NEWCTX` (all encoders share the context type).
unsafe extern "C" fn enc_newctx(provctx: *mut c_void) -> *mut c_void {
    ffi_boundary!("enc_newctx", std::ptr::null_mut(), {
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

/// `OSSL_FUNC_ENCODER_DOES_SELECTION` of the text encoder: any key selection.
unsafe extern "C" fn enc_text_does_selection(_provctx: *mut c_void, selection: c_int) -> c_int {
    let keys = abi::OSSL_KEYMGMT_SELECT_KEYPAIR | abi::OSSL_KEYMGMT_SELECT_ALL_PARAMETERS;
    (selection & keys != 0).into()
}

/// `OSSL_FUNC_ENCODER_DOES_SELECTION` of the PEM-URI encoder: private keys only.
unsafe extern "C" fn enc_pem_uri_does_selection(_provctx: *mut c_void, selection: c_int) -> c_int {
    (selection & abi::OSSL_KEYMGMT_SELECT_PRIVATE_KEY != 0).into()
}

/// `OSSL_FUNC_ENCODER_DOES_SELECTION` of the SubjectPublicKeyInfo encoders: a selection that
/// asks for the public key and not the private key (that one is the PEM-URI encoder's).
unsafe extern "C" fn enc_public_key_does_selection(
    _provctx: *mut c_void,
    selection: c_int,
) -> c_int {
    (selection & abi::OSSL_KEYMGMT_SELECT_PRIVATE_KEY == 0
        && selection & abi::OSSL_KEYMGMT_SELECT_PUBLIC_KEY != 0)
        .into()
}
