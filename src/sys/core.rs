//! Upcalls into the OpenSSL core (provider-base(7)): reading the provider's configuration and
//! raising errors on the error stack with the provider's own library code and reason strings.
//!
//! The core's function pointers are the same for every load of the provider in a process, so
//! they are kept once in [`CORE`]. Errors need a live core handle; the handles of the provider
//! instances currently loaded are tracked, and when none is live (or the core lacks the error
//! upcalls) libcrypto's `ERR_*` functions are used instead.

use std::collections::HashMap;
use std::ffi::{CStr, CString, c_char, c_int};
use std::ptr;
use std::sync::Mutex;

use once_cell::sync::OnceCell;

use super::abi::{self, OSSL_CORE_HANDLE, OSSL_DISPATCH, OSSL_PARAM};
use crate::error::{Error, Result};

unsafe extern "C" {
    /// src/sys/err_shim.c: builds the va_list for core_vset_error.
    fn pkcs11_ossl_set_error(
        vset_error: abi::OSSL_FUNC_core_vset_error_fn,
        handle: *const OSSL_CORE_HANDLE,
        reason: u32,
        fmt: *const c_char,
        ...
    );
}

/// The core upcalls the provider uses.
struct Core {
    get_params: abi::OSSL_FUNC_core_get_params_fn,
    new_error: abi::OSSL_FUNC_core_new_error_fn,
    set_error_debug: abi::OSSL_FUNC_core_set_error_debug_fn,
    vset_error: abi::OSSL_FUNC_core_vset_error_fn,
}

static CORE: OnceCell<Core> = OnceCell::new();

/// `ERR_LIB_PROV` (openssl/err.h), the library code for errors raised without a core handle.
const ERR_LIB_PROV: c_int = 57;

/// Handles of loaded provider instances (as addresses), newest last.
static LIVE_HANDLES: Mutex<Vec<usize>> = Mutex::new(Vec::new());

/// A core handle (`const OSSL_CORE_HANDLE *`), valid while its provider instance is loaded.
#[derive(Clone, Copy, Debug)]
pub(crate) struct CoreHandle(*const OSSL_CORE_HANDLE);

// SAFETY: the core handle is an opaque token OpenSSL lets providers use from any thread.
unsafe impl Send for CoreHandle {}
// SAFETY: as above; the provider never dereferences it.
unsafe impl Sync for CoreHandle {}

/// Finds the upcall with `id` in the core's dispatch table and casts it to its type.
macro_rules! upcall {
    ($table:expr, $id:ident, $fn_ty:ident) => {{
        let mut found: abi::$fn_ty = None;
        let mut entry = $table;
        // SAFETY: `in` is a dispatch table terminated by function_id 0 (provider-base(7)).
        while let Some(e) = unsafe { entry.as_ref() } {
            if e.function_id == 0 {
                break;
            }
            if e.function_id == abi::$id {
                // SAFETY: the core stores a `$fn_ty` under `$id`; both are nullable fn pointers.
                found = unsafe {
                    ::core::mem::transmute::<Option<unsafe extern "C" fn()>, abi::$fn_ty>(
                        e.function,
                    )
                };
                break;
            }
            // SAFETY: not yet at the terminator, so the next element exists.
            entry = unsafe { entry.add(1) };
        }
        found
    }};
}

/// Records the core's upcalls and registers `handle` as live. Called by `OSSL_provider_init`.
///
/// # Safety
/// `in_` is the core dispatch table OpenSSL passed to `OSSL_provider_init` and `handle` the
/// handle passed with it.
pub(crate) unsafe fn register(
    handle: *const OSSL_CORE_HANDLE,
    in_: *const OSSL_DISPATCH,
) -> CoreHandle {
    let _ = CORE.get_or_init(|| Core {
        get_params: upcall!(in_, OSSL_FUNC_CORE_GET_PARAMS, OSSL_FUNC_core_get_params_fn),
        new_error: upcall!(in_, OSSL_FUNC_CORE_NEW_ERROR, OSSL_FUNC_core_new_error_fn),
        set_error_debug: upcall!(
            in_,
            OSSL_FUNC_CORE_SET_ERROR_DEBUG,
            OSSL_FUNC_core_set_error_debug_fn
        ),
        vset_error: upcall!(in_, OSSL_FUNC_CORE_VSET_ERROR, OSSL_FUNC_core_vset_error_fn),
    });
    if let Ok(mut live) = LIVE_HANDLES.lock() {
        live.push(handle as usize);
    }
    CoreHandle(handle)
}

/// Forgets `handle` (provider teardown).
pub(crate) fn unregister(handle: CoreHandle) {
    if let Ok(mut live) = LIVE_HANDLES.lock() {
        live.retain(|h| *h != handle.0 as usize);
    }
}

/// Reads the provider's configuration values for `keys` (its openssl.cnf section).
pub(crate) fn config_values(handle: CoreHandle, keys: &[&str]) -> Result<HashMap<String, String>> {
    let get_params = CORE
        .get()
        .and_then(|c| c.get_params)
        .ok_or_else(|| Error::Module("the OpenSSL core offers no get_params upcall".into()))?;
    let names: Vec<CString> = keys
        .iter()
        .map(|k| CString::new(*k))
        .collect::<std::result::Result<_, _>>()
        .map_err(|_| Error::Config("config key with NUL".into()))?;
    let mut values: Vec<*const c_char> = vec![ptr::null(); names.len()];
    let mut params: Vec<OSSL_PARAM> = names
        .iter()
        .zip(values.iter_mut())
        .map(|(name, slot)| OSSL_PARAM {
            key: name.as_ptr(),
            data_type: abi::OSSL_PARAM_UTF8_PTR as u32,
            data: (slot as *mut *const c_char).cast(),
            data_size: size_of::<*const c_char>(),
            return_size: usize::MAX,
        })
        .collect();
    params.push(OSSL_PARAM {
        key: ptr::null(),
        data_type: 0,
        data: ptr::null_mut(),
        data_size: 0,
        return_size: 0,
    });
    // SAFETY: params is a terminated array of UTF8_PTR requests whose data point into `values`;
    // the core stores pointers to its own config strings there.
    let ok = unsafe { get_params(handle.0, params.as_mut_ptr()) };
    if ok != 1 {
        return Err(Error::Config(
            "cannot read the provider's configuration".into(),
        ));
    }
    let mut out = HashMap::new();
    for (key, value) in keys.iter().zip(values.iter()) {
        if !value.is_null() {
            // SAFETY: the core set a pointer to a NUL-terminated config string it owns.
            let text = unsafe { CStr::from_ptr(*value) };
            out.insert(key.to_string(), text.to_string_lossy().into_owned());
        }
    }
    Ok(out)
}

/// Longest error text put on OpenSSL's error stack: OpenSSL 3.0 formats error data into a
/// 1 KiB buffer and drops the text entirely when it does not fit, which long URIs (a label of
/// many kilobytes) would cause.
const MAX_ERROR_TEXT: usize = 700;

/// `message` cut to [`MAX_ERROR_TEXT`] bytes at a character boundary, marked with "...".
fn shortened(mut message: String) -> String {
    if message.len() > MAX_ERROR_TEXT {
        let mut end = MAX_ERROR_TEXT;
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        message.truncate(end);
        message.push_str("...");
    }
    message
}

/// Raises `err` on the OpenSSL error stack, attributed to the entry point `func`, and logs it.
/// Never panics.
pub(crate) fn raise_error(err: &Error, func: &str) {
    let message = err.to_string();
    log::error!("{func}: {message}");
    let message = shortened(message);
    let reason = err.reason();
    let text = CString::new(message.replace('\0', " ")).unwrap_or_default();
    let func_c = CString::new(func.replace('\0', " ")).unwrap_or_default();
    let handle = LIVE_HANDLES
        .lock()
        .ok()
        .and_then(|live| live.last().copied());
    match (CORE.get(), handle) {
        (Some(core), Some(handle)) if core.new_error.is_some() && core.vset_error.is_some() => {
            let handle = handle as *const OSSL_CORE_HANDLE;
            // SAFETY: upcalls from the core's own table; `handle` belongs to a loaded instance;
            // the format is the literal "%s" with one NUL-terminated string argument.
            unsafe {
                if let Some(new_error) = core.new_error {
                    new_error(handle);
                }
                if let Some(set_debug) = core.set_error_debug {
                    set_debug(handle, c"pkcs11-ossl".as_ptr(), 0, func_c.as_ptr());
                }
                pkcs11_ossl_set_error(
                    core.vset_error,
                    handle,
                    reason,
                    c"%s".as_ptr(),
                    text.as_ptr(),
                );
            }
        }
        _ => {
            // SAFETY: plain libcrypto error calls; the format is "%s" with one C string argument.
            unsafe {
                openssl_sys::ERR_new();
                openssl_sys::ERR_set_debug(c"pkcs11-ossl".as_ptr(), 0, func_c.as_ptr());
                openssl_sys::ERR_set_error(
                    ERR_LIB_PROV,
                    reason as c_int,
                    c"%s".as_ptr(),
                    text.as_ptr(),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_messages_are_cut_at_a_character_boundary() {
        assert_eq!(shortened("short".to_owned()), "short");
        let long = "é".repeat(MAX_ERROR_TEXT);
        let cut = shortened(long);
        assert!(cut.len() <= MAX_ERROR_TEXT + 3);
        assert!(cut.ends_with("..."));
    }
}
