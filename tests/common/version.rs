//! What differs between the OpenSSL versions the tests run on (3.0, 3.5 and 4.0, see
//! scripts/matrix.sh): the version of the `openssl` binary under test, the words its tools print
//! where those legitimately changed, and skips with a stated reason.
//!
//! The expectations stay as strict on every version: where 3.5 prints something else, the test
//! expects exactly that other text, never "either". Versions between 3.0 and 3.5 are not tested
//! (no Debian release ships them); the changes are taken to come with 3.5.

use std::env;
use std::fs::OpenOptions;
use std::io::Write as _;
use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

/// (major, minor) of the `openssl` binary on PATH (`openssl version`, default provider only).
pub(crate) fn openssl_version() -> (u32, u32) {
    static VERSION: OnceLock<(u32, u32)> = OnceLock::new();
    *VERSION.get_or_init(|| {
        let output = Command::new("openssl")
            .arg("version")
            .env("OPENSSL_CONF", "/dev/null")
            .output()
            .expect("run `openssl version`");
        let text = String::from_utf8_lossy(&output.stdout).into_owned();
        // "OpenSSL 3.5.9 29 Sep 2026 (Library: OpenSSL 3.5.9 29 Sep 2026)"
        let number = text
            .split_whitespace()
            .nth(1)
            .unwrap_or_else(|| panic!("cannot parse `openssl version`: {text:?}"));
        let mut parts = number.split('.').map(|part| part.parse::<u32>());
        match (parts.next(), parts.next()) {
            (Some(Ok(major)), Some(Ok(minor))) => (major, minor),
            _ => panic!("cannot parse the version in `openssl version`: {text:?}"),
        }
    })
}

/// The `openssl` binary under test is `major.minor` or newer.
pub(crate) fn openssl_at_least(major: u32, minor: u32) -> bool {
    openssl_version() >= (major, minor)
}

/// What `s_client`/`s_server` print after `Peer signature type: ` for a handshake signature of
/// `kind` (`RSA-PSS`, `RSA` for PKCS#1 v1.5, `ECDSA`, `ed25519`) with `digest` (`SHA256`, ...;
/// `None` for EdDSA). OpenSSL 3.0 prints the kind; 3.5 and later print the TLS SignatureScheme
/// name (RFC 8446 4.2.3), which names the digest too, e.g. `ecdsa_secp384r1_sha384`.
pub(crate) fn peer_signature_type(kind: &str, digest: Option<&str>) -> String {
    if !openssl_at_least(3, 5) {
        return kind.to_owned();
    }
    let digest = digest.map(str::to_lowercase);
    match (kind, digest.as_deref()) {
        ("RSA-PSS", Some(digest)) => format!("rsa_pss_rsae_{digest}"),
        ("RSA", Some(digest)) => format!("rsa_pkcs1_{digest}"),
        // The TLS 1.3 names tie the curve to the digest; TLS 1.2 uses the same code points for
        // ECDSA with that digest on any curve.
        ("ECDSA", Some("sha256")) => "ecdsa_secp256r1_sha256".to_owned(),
        ("ECDSA", Some("sha384")) => "ecdsa_secp384r1_sha384".to_owned(),
        ("ECDSA", Some("sha512")) => "ecdsa_secp521r1_sha512".to_owned(),
        ("ed25519", None) => "ed25519".to_owned(),
        ("ed448", None) => "ed448".to_owned(),
        other => panic!("no TLS signature scheme for {other:?}"),
    }
}

/// A one-line distinguished name as the `openssl` tools print it (`subject=`, `depth=0 ...`)
/// for `attributes` such as `[("CN", "tls client")]`: `CN = tls client` on 3.0,
/// `CN=tls client` on 3.5 and later.
pub(crate) fn oneline_name(attributes: &[(&str, &str)]) -> String {
    let separator = if openssl_at_least(3, 5) { "=" } else { " = " };
    attributes
        .iter()
        .map(|(key, value)| format!("{key}{separator}{value}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Records that `test` did not run the part `what` because `reason`: printed (shown with
/// `--nocapture` and on failure) and appended to the file in `P11RS_SKIP_LOG` when set, which
/// scripts/matrix.sh reads to report skips instead of counting them as passes.
pub(crate) fn skip(test: &str, reason: &str) {
    let line = format!("SKIP {test}: {reason}");
    println!("{line}");
    eprintln!("{line}");
    if let Some(path) = env::var_os("P11RS_SKIP_LOG") {
        let appended = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            // One write of the whole line: appends from parallel tests do not interleave.
            .and_then(|mut file| file.write_all(format!("{line}\n").as_bytes()));
        if let Err(e) = appended {
            panic!(
                "cannot append to P11RS_SKIP_LOG={}: {e}",
                path.to_string_lossy()
            );
        }
    }
}

/// The libcrypto soname (`libcrypto.so.3`) that the ELF file `path` loads, as `ldd` resolves
/// it; `None` when it loads none.
pub(crate) fn libcrypto_soname(path: &Path) -> Option<String> {
    let output = Command::new("ldd")
        .arg(path)
        .output()
        .unwrap_or_else(|e| panic!("cannot run ldd {}: {e}", path.display()));
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .find(|name| name.starts_with("libcrypto.so"))
        .map(str::to_owned)
}
