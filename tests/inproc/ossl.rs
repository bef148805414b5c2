//! libcrypto glue shared by `tests/inproc.rs` and `benches/sign.rs` (which includes this file by
//! `#[path]`) for the two things the `openssl` crate does not wrap: a library context configured
//! from an `openssl.cnf` file (OSSL_LIB_CTX_load_config(3), config(5)), and private keys loaded by
//! URI through OSSL_STORE_open_ex(3) in that context (ossl_store(7)), the way an application that
//! keeps its provider configuration out of the global context loads a `pkcs11:` key. Everything
//! else (signing, verification, TLS) goes through the `openssl` crate's safe API.

use std::ffi::{CString, c_char, c_int, c_void};
use std::path::Path;
use std::ptr;

use foreign_types::{ForeignType, ForeignTypeRef};
use openssl::error::ErrorStack;
use openssl::lib_ctx::{LibCtx, LibCtxRef};
use openssl::pkey::{PKey, Private};

/// `OSSL_STORE_INFO_PKEY` from `<openssl/store.h>`.
const STORE_INFO_PKEY: c_int = 4;

/// Objects read from one store before giving up on finding a private key.
const MAX_STORE_OBJECTS: usize = 1000;

unsafe extern "C" {
    fn OSSL_LIB_CTX_load_config(ctx: *mut openssl_sys::OSSL_LIB_CTX, file: *const c_char) -> c_int;
    fn OSSL_STORE_open_ex(
        uri: *const c_char,
        libctx: *mut openssl_sys::OSSL_LIB_CTX,
        propq: *const c_char,
        ui_method: *const c_void,
        ui_data: *mut c_void,
        params: *const c_void,
        post_process: *const c_void,
        post_process_data: *mut c_void,
    ) -> *mut c_void;
    fn OSSL_STORE_load(ctx: *mut c_void) -> *mut c_void;
    fn OSSL_STORE_eof(ctx: *mut c_void) -> c_int;
    fn OSSL_STORE_error(ctx: *mut c_void) -> c_int;
    fn OSSL_STORE_close(ctx: *mut c_void) -> c_int;
    fn OSSL_STORE_INFO_get_type(info: *const c_void) -> c_int;
    fn OSSL_STORE_INFO_get1_PKEY(info: *const c_void) -> *mut openssl_sys::EVP_PKEY;
    fn OSSL_STORE_INFO_free(info: *mut c_void);
}

/// The queued OpenSSL errors of this thread as one line (empties the queue).
pub(crate) fn openssl_errors() -> String {
    let stack = ErrorStack::get();
    if stack.errors().is_empty() {
        "no OpenSSL error queued".to_owned()
    } else {
        stack.to_string()
    }
}

/// A new library context that has loaded `conf` (providers and their settings).
pub(crate) fn lib_ctx_from_config(conf: &Path) -> Result<LibCtx, String> {
    let ctx = LibCtx::new().map_err(|e| format!("OSSL_LIB_CTX_new: {e}"))?;
    let file = CString::new(conf.to_str().ok_or("config path is not UTF-8")?)
        .map_err(|_| "config path contains NUL")?;
    // SAFETY: `ctx` is a live library context and `file` a NUL-terminated path; the call only
    // reads the file and configures `ctx`.
    let loaded = unsafe { OSSL_LIB_CTX_load_config(ctx.as_ptr(), file.as_ptr()) };
    if loaded != 1 {
        return Err(format!(
            "OSSL_LIB_CTX_load_config({}): {}",
            conf.display(),
            openssl_errors()
        ));
    }
    Ok(ctx)
}

/// Opens `uri` in `ctx` (OSSL_STORE_open_ex) and returns the first private key it yields.
pub(crate) fn load_private_key(ctx: &LibCtxRef, uri: &str) -> Result<PKey<Private>, String> {
    let c_uri = CString::new(uri).map_err(|_| "URI contains NUL")?;
    // SAFETY: `c_uri` is NUL-terminated and `ctx` live; NULL propq, UI method, params and
    // post-process callback are all documented as "none" for OSSL_STORE_open_ex.
    let store = unsafe {
        OSSL_STORE_open_ex(
            c_uri.as_ptr(),
            ctx.as_ptr(),
            ptr::null(),
            ptr::null(),
            ptr::null_mut(),
            ptr::null(),
            ptr::null(),
            ptr::null_mut(),
        )
    };
    if store.is_null() {
        return Err(format!("OSSL_STORE_open_ex({uri}): {}", openssl_errors()));
    }
    let mut found = None;
    // Bounded: a store that neither ends nor errors must not hang the caller.
    for _ in 0..MAX_STORE_OBJECTS {
        // SAFETY: `store` stays open until OSSL_STORE_close below.
        if found.is_some() || unsafe { OSSL_STORE_eof(store) } != 0 {
            break;
        }
        // SAFETY: as above; the returned `info` is ours and freed once below.
        let info = unsafe { OSSL_STORE_load(store) };
        if info.is_null() {
            // SAFETY: as above.
            if unsafe { OSSL_STORE_error(store) } != 0 {
                break;
            }
            continue;
        }
        // SAFETY: `info` is non-NULL and ours; get1_PKEY returns a new reference that `PKey`
        // takes over, and `info` is freed exactly once.
        unsafe {
            if OSSL_STORE_INFO_get_type(info) == STORE_INFO_PKEY {
                let pkey = OSSL_STORE_INFO_get1_PKEY(info);
                if !pkey.is_null() {
                    found = Some(PKey::<Private>::from_ptr(pkey));
                }
            }
            OSSL_STORE_INFO_free(info);
        }
    }
    // SAFETY: `store` came from OSSL_STORE_open_ex and is closed exactly once.
    unsafe { OSSL_STORE_close(store) };
    found.ok_or_else(|| format!("no private key at {uri}: {}", openssl_errors()))
}
