//! bindgen output for OpenSSL's provider ABI (`include/wrapper.h`): dispatch ids, function
//! pointer types, `OSSL_DISPATCH`/`OSSL_ALGORITHM`/`OSSL_ITEM`, parameter names as `&CStr`, and
//! the `OSSL_PARAM` accessors from params.h. `OSSL_PARAM`, `BIGNUM` and `OSSL_LIB_CTX` are
//! openssl-sys's own types so the two bindings interoperate.
#![allow(
    // generated code keeps C names and declares more than we use
    non_camel_case_types,
    non_upper_case_globals,
    non_snake_case,
    dead_code,
    unused_imports,
    unreachable_pub,
    missing_docs,
    unused_qualifications,
    clippy::all,
    clippy::undocumented_unsafe_blocks,
    clippy::missing_safety_doc
)]

include!(concat!(env!("OUT_DIR"), "/ossl_bindings.rs"));
