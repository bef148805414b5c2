//! Generates the OpenSSL provider ABI bindings (`src/sys/abi.rs` includes them) and compiles the
//! one C helper that builds a `va_list` for `core_vset_error`.
//!
//! The include path and version come from openssl-sys (`DEP_OPENSSL_*`), so bindgen reads the same
//! headers the crate links against.

use std::env;
use std::path::PathBuf;

fn main() {
    println!("cargo::rerun-if-changed=include/wrapper.h");
    println!("cargo::rerun-if-changed=src/sys/err_shim.c");
    println!("cargo::rustc-check-cfg=cfg(ossl_v320, ossl_v340, ossl_v350)");
    // Never unmapped once loaded (DF_1_NODELETE): a PKCS#11 module kept initialised for the
    // process (quirk no-deinit, modules inherited over fork) and the process-wide registries
    // point into this library, and OpenSSL dlcloses providers at exit while other exit
    // handlers may still run. Unloading would orphan that state (valgrind: definitely lost).
    println!("cargo::rustc-cdylib-link-arg=-Wl,-z,nodelete");

    let include = env::var_os("DEP_OPENSSL_INCLUDE").map(PathBuf::from);
    if let Ok(version) = env::var("DEP_OPENSSL_VERSION_NUMBER") {
        let number = u64::from_str_radix(&version, 16).unwrap_or(0);
        for (cfg, min) in [
            ("ossl_v320", 0x3020_0000_u64),
            ("ossl_v340", 0x3040_0000),
            ("ossl_v350", 0x3050_0000),
        ] {
            if number >= min {
                println!("cargo::rustc-cfg={cfg}");
            }
        }
    }

    let mut builder = bindgen::Builder::default()
        .header("include/wrapper.h")
        .allowlist_item("OSSL_FUNC_.*|OSSL_OP_.*|OSSL_KEYMGMT_SELECT_.*|OSSL_OBJECT_.*")
        .allowlist_type(
            "OSSL_(DISPATCH|ALGORITHM|ITEM|CORE_HANDLE|PASSPHRASE_CALLBACK|CALLBACK|provider_init_fn)",
        )
        .allowlist_var(
            "OSSL_(PKEY|SIGNATURE|STORE|PROV|OBJECT|ALG|ENCODER|DECODER|CAPABILITY|PASSPHRASE)_PARAM_.*",
        )
        .allowlist_var("OSSL_(ASYM_CIPHER|EXCHANGE|GEN|KDF)_PARAM_.*|OSSL_KDF_NAME_.*")
        .allowlist_var("OSSL_CAPABILITY_TLS_GROUP_.*")
        .allowlist_var("OSSL_PARAM_(INTEGER|UNSIGNED_INTEGER|REAL|UTF8_STRING|OCTET_STRING|UTF8_PTR|OCTET_PTR)")
        .allowlist_var("OSSL_PARAM_UNMODIFIED|OSSL_PROV_(NAME|PARAM)_.*|OSSL_PKEY_RSA_PAD_MODE_.*")
        .allowlist_var("OSSL_PKEY_EC_.*|OSSL_DIGEST_NAME_.*|OSSL_PKEY_PARAM_.*")
        .allowlist_function("OSSL_LIB_CTX_new_child|OSSL_LIB_CTX_new_from_dispatch")
        .allowlist_function(
            "ASYNC_(get_current_job|get_wait_ctx|pause_job)|ASYNC_WAIT_CTX_(set_wait_fd|get_fd|clear_fd|get_callback)",
        )
        .allowlist_function("BIO_new_from_core_bio|BIO_free|BIO_gets|EVP_PKEY_print_public|ERR_set_mark|ERR_pop_to_mark")
        .allowlist_function("OPENSSL_atexit")
        .allowlist_function(
            "RAND_priv_bytes_ex|EVP_PKEY_CTX_new_from_pkey|EVP_PKEY_encrypt_init_ex|RSA_padding_check_PKCS1_OAEP_mgf1",
        )
        .blocklist_type("EVP_MD|evp_md_st")
        .raw_line("pub use openssl_sys::EVP_MD;")
        .allowlist_function(
            "OSSL_PARAM_(locate|locate_const|modified|set_(int|uint|size_t|utf8_string|utf8_ptr|octet_string|BN)|get_(int|int64|uint|size_t|utf8_string_ptr|octet_string_ptr))",
        )
        .allowlist_function("UI_(new|free|construct_prompt|add_input_string|process)")
        .allowlist_function(
            "EVP_PKEY_verify_init_ex|EVP_DigestVerifyInit_ex|EVP_MD_CTX_get_pkey_ctx|EVP_PKEY_CTX_(new_from_pkey|dup)",
        )
        .blocklist_type("EVP_PKEY_CTX|evp_pkey_ctx_st|EVP_MD_CTX|evp_md_ctx_st")
        .raw_line("pub use openssl_sys::{EVP_MD_CTX, EVP_PKEY_CTX};")
        .allowlist_var("UI_INPUT_FLAG_DEFAULT_PWD")
        .blocklist_type("OSSL_PARAM|ossl_param_st|OSSL_LIB_CTX|ossl_lib_ctx_st|BIGNUM|bignum_st")
        .blocklist_type("BIO|bio_st|EVP_PKEY|evp_pkey_st")
        .raw_line("pub use openssl_sys::{BIGNUM, BIO, EVP_PKEY, OSSL_LIB_CTX};")
        .raw_line("pub use openssl_sys::OSSL_PARAM;")
        .default_macro_constant_type(bindgen::MacroTypeVariation::Signed)
        .generate_cstr(true)
        .layout_tests(true)
        .formatter(bindgen::Formatter::Prettyplease)
        .parse_callbacks(Box::new(bindgen::CargoCallbacks::new()));
    if let Some(dir) = &include {
        builder = builder.clang_arg(format!("-I{}", dir.display()));
    }
    let bindings = match builder.generate() {
        Ok(b) => b,
        Err(e) => {
            eprintln!("bindgen failed on include/wrapper.h: {e} (is libclang-dev installed?)");
            std::process::exit(1);
        }
    };
    let out = PathBuf::from(env::var("OUT_DIR").unwrap_or_else(|_| ".".into()));
    if let Err(e) = bindings.write_to_file(out.join("ossl_bindings.rs")) {
        eprintln!("cannot write bindings: {e}");
        std::process::exit(1);
    }

    let mut shim = cc::Build::new();
    shim.file("src/sys/err_shim.c").warnings(true);
    if let Some(dir) = &include {
        shim.include(dir);
    }
    shim.compile("pkcs11_ossl_err_shim");
}
