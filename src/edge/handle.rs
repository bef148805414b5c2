//! Ownership of Rust objects handed to OpenSSL as `void *`.
//!
//! | object | made by | freed by | shared across threads |
//! |---|---|---|---|
//! | `ProvCtx` | `OSSL_provider_init` | `teardown` | yes: borrowed as `&ProvCtx` only |
//! | `KeyObj` (keydata) | keymgmt `load`/`new` (`Box<Arc<KeyObj>>`) | keymgmt `free` | yes: `&` only |
//! | `SignCtx`, `StoreCtx` | `newctx`/`open` (`Box`) | `freectx`/`close` | no: `&mut` allowed |
//!
//! OpenSSL never drives one operation context from two threads at once, but shares one
//! `EVP_PKEY` (and so one keydata) between threads; hence `&mut` for contexts and `&` for keys.

use std::ffi::c_void;

use crate::error::{Error, Result};

/// Boxes `value` and returns the pointer OpenSSL will hold.
pub(crate) fn into_raw<T>(value: T) -> *mut c_void {
    Box::into_raw(Box::new(value)).cast()
}

/// Borrows the object behind `ptr` (made by [`into_raw`] with the same `T`).
///
/// # Safety
/// `ptr` is NULL or came from `into_raw::<T>` and has not been freed; no `&mut` to it is live.
pub(crate) unsafe fn borrow<'a, T>(ptr: *const c_void, what: &'static str) -> Result<&'a T> {
    // SAFETY: by the caller's contract a non-NULL `ptr` points to a live `T`.
    unsafe { ptr.cast::<T>().as_ref() }.ok_or(Error::NullArg(what))
}

/// Mutably borrows the object behind `ptr`.
///
/// # Safety
/// As for [`borrow`], and no other reference to the object is live (OpenSSL does not use one
/// operation context from two threads at once).
pub(crate) unsafe fn borrow_mut<'a, T>(ptr: *mut c_void, what: &'static str) -> Result<&'a mut T> {
    // SAFETY: by the caller's contract a non-NULL `ptr` points to a live, unaliased `T`.
    unsafe { ptr.cast::<T>().as_mut() }.ok_or(Error::NullArg(what))
}

/// Takes back ownership of the object behind `ptr` (its `free` function).
///
/// # Safety
/// `ptr` is NULL or came from `into_raw::<T>` and is not used again afterwards.
pub(crate) unsafe fn take<T>(ptr: *mut c_void) -> Option<Box<T>> {
    if ptr.is_null() {
        None
    } else {
        // SAFETY: non-NULL, made by Box::into_raw in `into_raw::<T>`, and never used again.
        Some(unsafe { Box::from_raw(ptr.cast::<T>()) })
    }
}
