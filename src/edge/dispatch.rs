//! Typed construction of `OSSL_DISPATCH` entries and `Sync` wrappers for static C tables.
//!
//! `dispatch!(ID, fn_type, function)` only compiles when `function` has exactly the prototype
//! core_dispatch.h gives `ID` (the Rust form of a compile-time prototype check).

use crate::sys::abi;

/// Builds one `OSSL_DISPATCH` entry from a dispatch id, its bindgen function type and a function.
macro_rules! dispatch {
    ($id:ident, $fn_ty:ident, $f:path) => {{
        const F: $crate::sys::abi::$fn_ty = Some($f);
        $crate::sys::abi::OSSL_DISPATCH {
            function_id: $crate::sys::abi::$id,
            // SAFETY: both types are `Option<unsafe extern "C" fn>` of pointer size; the core
            // casts the pointer back to `$fn_ty` (the type paired with `$id`) before calling it.
            function: unsafe {
                ::core::mem::transmute::<$crate::sys::abi::$fn_ty, Option<unsafe extern "C" fn()>>(
                    F,
                )
            },
        }
    }};
}
pub(crate) use dispatch;

/// The terminating entry of a dispatch table.
pub(crate) const END: abi::OSSL_DISPATCH = abi::OSSL_DISPATCH {
    function_id: 0,
    function: None,
};

/// A static C table of structs holding raw pointers (`OSSL_ALGORITHM`, `OSSL_ITEM`,
/// `OSSL_PARAM`) so that it can live in a `static`. A slice, so entries can be gated on the
/// OpenSSL version with `#[cfg(ossl_vNNN)]` without counting them.
pub(crate) struct Table<T: 'static>(pub(crate) &'static [T]);

// SAFETY: every table built with `Table` holds pointers to 'static, immutable data (string
// literals and other static tables) and is never written after construction.
unsafe impl<T> Sync for Table<T> {}

impl<T> Table<T> {
    /// Pointer to the first element, for handing the table to OpenSSL.
    pub(crate) const fn as_ptr(&self) -> *const T {
        self.0.as_ptr()
    }
}
