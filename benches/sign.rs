//! Signing benchmark for issue 5: how close the provider gets to the token's own speed.
//!
//! Run (release build of the provider and of this bench; about 3 minutes on 2 cores):
//!
//! ```sh
//! cargo bench --bench sign
//! ```
//!
//! It builds fresh SoftHSM2 tokens in `target/tmp/bench-sign/` (RSA-2048, RSA-3072, P-256 and
//! P-384 on one token, Ed25519 on a second one because libp11 cannot enumerate the keys of a token
//! that holds an EdDSA key; all generated on the token by `pkcs11-tool`) and measures, side by
//! side in one process, for 1 and 2 threads:
//!
//! * `raw token`: `C_SignInit` + `C_Sign` through `cryptoki` on the token key object, with the raw
//!   mechanism on a hash computed per signature (`CKM_RSA_PKCS` over DigestInfo, `CKM_RSA_PKCS_PSS`,
//!   `CKM_ECDSA`, `CKM_EDDSA` on the message), one session per thread: the limit;
//! * `raw copy`: the same on a session-object copy of the key (SoftHSM2 signs faster with those;
//!   it is the limit for a provider that signs with copies, `pkcs11-module-cache-keys`);
//! * `provider`: `EVP_DigestSign` (the `openssl` crate's `Signer`) with the key loaded by `pkcs11:`
//!   URI through OSSL_STORE in a library context configured with our provider, one shared
//!   `EVP_PKEY` for all threads, as in a TLS server;
//! * `software`: the same key type generated in software, default provider;
//! * `engine`: Debian's libp11 ENGINE (`libengine-pkcs11-openssl`, `ENGINE_by_id("pkcs11")` with
//!   `MODULE_PATH` = SoftHSM2), key from `ENGINE_load_private_key` on the same token key.
//!
//! Digests: SHA-256, except P-384 (SHA-384); RSA-3072 uses PSS (MGF1-SHA-256, salt 32 bytes).
//! Every cell is measured `P11RS_BENCH_REPS` times (default 5: single runs on a shared 2-core VM
//! vary by ±25 %) for `P11RS_BENCH_SECS` seconds (default 0.5), interleaved round-robin: the
//! contenders of a row take turns in 5 slices of each repetition.
//! The table shows medians and the ratios provider/raw token, provider/raw copy, provider/engine
//! and the 2-thread/1-thread scaling, each the median of the per-repetition ratios; the CPU that
//! other processes took meanwhile is printed above it. Then: key load time (store open + load), TLS 1.3 and 1.2 full handshakes per second
//! over an in-memory transport with the token key (client and server in one thread, no session
//! resumption), and RSS after 1 000 and 10 000 provider signatures. Each signing path is checked
//! once against the token's public key (read by `pkcs11-tool`) before it is timed.
//!
//! Environment: `P11RS_BENCH_KEYS` (e.g. `P-256,Ed25519`), `P11RS_BENCH_THREADS` (e.g. `1`),
//! `P11RS_BENCH_REPS`, `P11RS_BENCH_SECS`, `P11RS_BENCH_VERBOSE` (print every repetition),
//! `P11RS_BENCH_CONFIG` (extra provider config lines, `key=value;key=value`),
//! `P11RS_PROVIDER_SO` (provider to load; default: the cdylib next to this binary).
//! Profiling: `<bench binary> --profile <raw|copy|provider|software|engine> <key> <count>` signs
//! `count` times in `profile_loop` and exits, e.g. under
//! `valgrind --tool=callgrind --toggle-collect='*profile_loop*'` or `perf record`.

// The environment, the ENGINE API and `SSL_CTX_new_ex` (not wrapped by the `openssl` crate) need
// `unsafe`.
#![allow(unsafe_code)]
// Without the libtest harness `cfg(test)` is off, so clippy's allow-*-in-tests do not apply:
// this whole crate is benchmark code.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

// The bench uses only the token-building part of the CLI tests' fixture.
#[allow(dead_code)]
#[path = "../tests/common/mod.rs"]
mod common;
#[path = "../tests/inproc/ossl.rs"]
mod ossl;

use std::cell::RefCell;
use std::collections::VecDeque;
use std::env;
use std::ffi::{CString, c_char, c_int, c_void};
use std::fmt::Write as _;
use std::io::{self, Read, Write};
use std::path::Path;
use std::rc::Rc;
use std::sync::{Barrier, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::mechanism::eddsa::{EddsaParams, EddsaSignatureScheme};
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsPssParams};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::types::AuthPin;
use foreign_types::{ForeignType, ForeignTypeRef};
use openssl::asn1::Asn1Time;
use openssl::bn::BigNum;
use openssl::ec::{EcGroup, EcKey};
use openssl::ecdsa::EcdsaSig;
use openssl::hash::{MessageDigest, hash};
use openssl::lib_ctx::{LibCtx, LibCtxRef};
use openssl::nid::Nid;
use openssl::pkey::{HasPublic, PKey, PKeyRef, Private, Public};
use openssl::rsa::{Padding, Rsa};
use openssl::sign::{RsaPssSaltlen, Signer, Verifier};
use openssl::ssl::{
    HandshakeError, MidHandshakeSslStream, Ssl, SslContext, SslContextBuilder, SslMethod,
    SslSessionCacheMode, SslStream, SslVerifyMode, SslVersion,
};
use openssl::x509::{X509, X509NameBuilder};

use common::{Fixture, KeyType, softhsm};

/// Bytes signed per operation (about a TLS 1.3 CertificateVerify input).
const MESSAGE: &[u8] = &[0x5a; 100];

/// DigestInfo prefixes (RFC 8017 §9.2 note 1) for raw `CKM_RSA_PKCS`.
const SHA256_DIGEST_INFO: &[u8] = &[
    0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05,
    0x00, 0x04, 0x20,
];

/// Turns per repetition that the contenders of one table row take (see `sign_table`).
const SLICES: u32 = 5;

/// Key loads timed per key type for the load-time median.
const LOAD_SAMPLES: usize = 20;

/// Hand-shakes that must complete within this many read/write rounds.
const MAX_HANDSHAKE_ROUNDS: usize = 50;

unsafe extern "C" {
    fn ENGINE_load_builtin_engines();
    fn ENGINE_by_id(id: *const c_char) -> *mut c_void;
    fn ENGINE_ctrl_cmd_string(
        engine: *mut c_void,
        cmd: *const c_char,
        arg: *const c_char,
        optional: c_int,
    ) -> c_int;
    fn ENGINE_init(engine: *mut c_void) -> c_int;
    fn ENGINE_load_private_key(
        engine: *mut c_void,
        key_id: *const c_char,
        ui_method: *mut c_void,
        callback_data: *mut c_void,
    ) -> *mut openssl_sys::EVP_PKEY;
    fn SSL_CTX_new_ex(
        libctx: *mut openssl_sys::OSSL_LIB_CTX,
        propq: *const c_char,
        method: *const openssl_sys::SSL_METHOD,
    ) -> *mut openssl_sys::SSL_CTX;
    fn OpenSSL_version(which: c_int) -> *const c_char;
}

/// The key types of the table, in row order.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Kind {
    Rsa2048,
    Rsa3072Pss,
    P256,
    P384,
    Ed25519,
}

const KINDS: [Kind; 5] = [
    Kind::Rsa2048,
    Kind::Rsa3072Pss,
    Kind::P256,
    Kind::P384,
    Kind::Ed25519,
];

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Rsa2048 => "RSA-2048",
            Kind::Rsa3072Pss => "RSA-3072-PSS",
            Kind::P256 => "P-256",
            Kind::P384 => "P-384",
            Kind::Ed25519 => "Ed25519",
        }
    }

    fn key_type(self) -> KeyType {
        match self {
            Kind::Rsa2048 => KeyType::Rsa2048,
            Kind::Rsa3072Pss => KeyType::Rsa3072,
            Kind::P256 => KeyType::EcP256,
            Kind::P384 => KeyType::EcP384,
            Kind::Ed25519 => KeyType::Ed25519,
        }
    }

    /// CKA_ID (hex) and CKA_LABEL on the token.
    fn id(self) -> &'static str {
        match self {
            Kind::Rsa2048 => "01",
            Kind::Rsa3072Pss => "02",
            Kind::P256 => "03",
            Kind::P384 => "04",
            Kind::Ed25519 => "05",
        }
    }

    fn label(self) -> String {
        format!("bench-{}", self.name().to_lowercase())
    }

    /// `None`: EdDSA signs the message itself.
    fn digest(self) -> Option<MessageDigest> {
        match self {
            Kind::Rsa2048 | Kind::Rsa3072Pss | Kind::P256 => Some(MessageDigest::sha256()),
            Kind::P384 => Some(MessageDigest::sha384()),
            Kind::Ed25519 => None,
        }
    }

    fn software_key(self) -> PKey<Private> {
        match self {
            Kind::Rsa2048 => PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap(),
            Kind::Rsa3072Pss => PKey::from_rsa(Rsa::generate(3072).unwrap()).unwrap(),
            Kind::P256 | Kind::P384 => {
                let nid = if self == Kind::P256 {
                    Nid::X9_62_PRIME256V1
                } else {
                    Nid::SECP384R1
                };
                let group = EcGroup::from_curve_name(nid).unwrap();
                PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap()
            }
            Kind::Ed25519 => PKey::generate_ed25519().unwrap(),
        }
    }
}

/// Who signs.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Contender {
    RawToken,
    RawCopy,
    Provider,
    Software,
    Engine,
}

const CONTENDERS: [Contender; 5] = [
    Contender::RawToken,
    Contender::RawCopy,
    Contender::Provider,
    Contender::Software,
    Contender::Engine,
];

impl Contender {
    fn name(self) -> &'static str {
        match self {
            Contender::RawToken => "raw token",
            Contender::RawCopy => "raw copy",
            Contender::Provider => "provider",
            Contender::Software => "software",
            Contender::Engine => "engine",
        }
    }

    fn parse(text: &str) -> Option<Contender> {
        Some(match text {
            "raw" => Contender::RawToken,
            "copy" => Contender::RawCopy,
            "provider" => Contender::Provider,
            "software" => Contender::Software,
            "engine" => Contender::Engine,
            _ => return None,
        })
    }
}

/// One key type in all its forms.
struct BenchKey {
    kind: Kind,
    uri: String,
    /// Index into `Bench::raw`.
    token: usize,
    /// The token's public key as `pkcs11-tool` read it.
    public: PKey<Public>,
    token_handle: ObjectHandle,
    copy_handle: ObjectHandle,
    provider: PKey<Private>,
    software: PKey<Private>,
    /// `Err`: why the ENGINE cannot do this key type.
    engine: Result<PKey<Private>, String>,
}

/// Everything measured. Field order is drop order: keys before the library context.
struct Bench {
    keys: Vec<BenchKey>,
    /// Raw PKCS#11 sessions per token (`BenchKey::token` indexes it).
    raw: Vec<RawSlot>,
    lib_ctx: LibCtx,
    cold_loads: Vec<(Kind, Duration)>,
}

impl Bench {
    fn key(&self, kind: Kind) -> &BenchKey {
        self.keys.iter().find(|k| k.kind == kind).unwrap()
    }

    fn sign(&self, key: &BenchKey, who: Contender, thread: usize) -> Result<Vec<u8>, String> {
        match who {
            Contender::RawToken => self.sign_raw(key, key.token_handle, thread),
            Contender::RawCopy => self.sign_raw(key, key.copy_handle, thread),
            Contender::Provider => evp_sign(key.kind, &key.provider),
            Contender::Software => evp_sign(key.kind, &key.software),
            Contender::Engine => evp_sign(key.kind, key.engine.as_ref()?),
        }
    }

    fn sign_raw(
        &self,
        key: &BenchKey,
        handle: ObjectHandle,
        thread: usize,
    ) -> Result<Vec<u8>, String> {
        let session = self.raw[key.token].sessions[thread]
            .lock()
            .map_err(|e| e.to_string())?;
        let digest = |md| hash(md, MESSAGE).map_err(|e| e.to_string());
        let result = match key.kind {
            Kind::Rsa2048 => {
                let mut input = SHA256_DIGEST_INFO.to_vec();
                input.extend_from_slice(&digest(MessageDigest::sha256())?);
                session.sign(&Mechanism::RsaPkcs, handle, &input)
            }
            Kind::Rsa3072Pss => {
                let params = PkcsPssParams {
                    hash_alg: MechanismType::SHA256,
                    mgf: PkcsMgfType::MGF1_SHA256,
                    s_len: 32.into(),
                };
                let hashed = digest(MessageDigest::sha256())?;
                session.sign(&Mechanism::RsaPkcsPss(params), handle, &hashed)
            }
            Kind::P256 | Kind::P384 => {
                let hashed = digest(key.kind.digest().unwrap())?;
                session.sign(&Mechanism::Ecdsa, handle, &hashed)
            }
            Kind::Ed25519 => {
                let mechanism = Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Pure));
                session.sign(&mechanism, handle, MESSAGE)
            }
        };
        result.map_err(|e| format!("C_Sign: {e}"))
    }

    /// Checks one signature of `who` against the right public key.
    fn check(&self, key: &BenchKey, who: Contender) -> Result<(), String> {
        let mut signature = self.sign(key, who, 0)?;
        if matches!(who, Contender::RawToken | Contender::RawCopy)
            && matches!(key.kind, Kind::P256 | Kind::P384)
        {
            // CKM_ECDSA returns r‖s; the verifier wants DER ECDSA-Sig-Value.
            let (r, s) = signature.split_at(signature.len() / 2);
            let sig = EcdsaSig::from_private_components(
                BigNum::from_slice(r).unwrap(),
                BigNum::from_slice(s).unwrap(),
            )
            .unwrap();
            signature = sig.to_der().unwrap();
        }
        let verified = if who == Contender::Software {
            evp_verify(key.kind, &key.software, &signature)
        } else {
            evp_verify(key.kind, &key.public, &signature)
        };
        match verified {
            Ok(true) => Ok(()),
            Ok(false) => Err("signature does not verify".to_owned()),
            Err(e) => Err(format!("verify: {e}")),
        }
    }
}

fn signer_for<'a>(kind: Kind, key: &'a PKeyRef<Private>) -> Result<Signer<'a>, String> {
    let mut signer = match kind.digest() {
        Some(md) => Signer::new(md, key),
        None => Signer::new_without_digest(key),
    }
    .map_err(|e| e.to_string())?;
    if kind == Kind::Rsa3072Pss {
        signer
            .set_rsa_padding(Padding::PKCS1_PSS)
            .and_then(|()| signer.set_rsa_pss_saltlen(RsaPssSaltlen::DIGEST_LENGTH))
            .and_then(|()| signer.set_rsa_mgf1_md(MessageDigest::sha256()))
            .map_err(|e| e.to_string())?;
    }
    Ok(signer)
}

/// One `EVP_DigestSignInit` + `EVP_DigestSign` on a fresh context (what a TLS server does).
fn evp_sign(kind: Kind, key: &PKeyRef<Private>) -> Result<Vec<u8>, String> {
    signer_for(kind, key)?
        .sign_oneshot_to_vec(MESSAGE)
        .map_err(|e| e.to_string())
}

fn evp_verify<T: HasPublic>(
    kind: Kind,
    key: &PKeyRef<T>,
    signature: &[u8],
) -> Result<bool, openssl::error::ErrorStack> {
    let mut verifier = match kind.digest() {
        Some(md) => Verifier::new(md, key)?,
        None => Verifier::new_without_digest(key)?,
    };
    if kind == Kind::Rsa3072Pss {
        verifier.set_rsa_padding(Padding::PKCS1_PSS)?;
        verifier.set_rsa_pss_saltlen(RsaPssSaltlen::DIGEST_LENGTH)?;
        verifier.set_rsa_mgf1_md(MessageDigest::sha256())?;
    }
    verifier.verify_oneshot(signature, MESSAGE)
}

/// Signs on `threads` threads for `duration`; returns operations per second (all threads).
fn measure(
    bench: &Bench,
    key: &BenchKey,
    who: Contender,
    threads: usize,
    duration: Duration,
) -> Result<f64, String> {
    let barrier = Barrier::new(threads);
    let per_thread: Vec<Result<f64, String>> = thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|thread| {
                let barrier = &barrier;
                scope.spawn(move || {
                    barrier.wait();
                    let started = Instant::now();
                    let deadline = started + duration;
                    let mut done = 0u64;
                    loop {
                        bench.sign(key, who, thread)?;
                        done += 1;
                        if Instant::now() >= deadline {
                            break;
                        }
                    }
                    Ok(done as f64 / started.elapsed().as_secs_f64())
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err("thread panicked".into())))
            .collect()
    });
    per_thread.into_iter().sum()
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    }
}

/// One table cell: its repetitions, or why it was not measured.
struct Cell {
    kind: Kind,
    who: Contender,
    threads: usize,
    samples: Result<Vec<f64>, String>,
}

impl Cell {
    fn median(&self) -> Option<f64> {
        let mut samples = self.samples.as_ref().ok()?.clone();
        (!samples.is_empty()).then(|| median(&mut samples))
    }

    /// (max − min) / median of the repetitions.
    fn spread(&self) -> Option<f64> {
        let samples = self.samples.as_ref().ok()?;
        let max = samples.iter().copied().fold(f64::MIN, f64::max);
        let min = samples.iter().copied().fold(f64::MAX, f64::min);
        Some((max - min) / self.median()?)
    }
}

fn env_list(name: &str) -> Option<Vec<String>> {
    env::var(name)
        .ok()
        .map(|text| text.split(',').map(|s| s.trim().to_owned()).collect())
}

fn env_number<T: std::str::FromStr>(name: &str, default: T) -> T {
    match env::var(name) {
        Ok(text) => text
            .parse()
            .unwrap_or_else(|_| panic!("{name}={text} is not a number")),
        Err(_) => default,
    }
}

/// CPU ticks (USER_HZ) since boot: (busy on the whole machine, stolen by the hypervisor).
fn machine_ticks() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap();
    let fields: Vec<u64> = stat
        .lines()
        .next()
        .unwrap()
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal ...
    let busy = fields[0] + fields[1] + fields[2] + fields[5] + fields[6];
    (busy, fields.get(7).copied().unwrap_or(0))
}

/// CPU ticks this process used (utime + stime).
fn own_ticks() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

/// Measures how much CPU other processes and the hypervisor took while `work` ran, so that a
/// disturbed run is visible in the output.
fn with_interference_report<T>(what: &str, work: impl FnOnce() -> T) -> T {
    let started = Instant::now();
    let (busy_before, steal_before) = machine_ticks();
    let own_before = own_ticks();
    let result = work();
    let (busy_after, steal_after) = machine_ticks();
    let own = own_ticks() - own_before;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let cores = thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    let capacity = started.elapsed().as_secs_f64() * hz * cores;
    let others = (busy_after - busy_before).saturating_sub(own) as f64;
    println!(
        "during {what}: other processes used {:.0} % of the machine, hypervisor steal {:.0} %",
        100.0 * others / capacity,
        100.0 * (steal_after - steal_before) as f64 / capacity
    );
    result
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
        .unwrap()
}

/// The `openssl.cnf` of the provider's library context.
fn provider_config(softhsm: &Path, pin_file: &str) -> String {
    let mut text = format!(
        "openssl_conf = openssl_init\n\n[openssl_init]\nproviders = provider_sect\n\n\
         [provider_sect]\ndefault = default_sect\npkcs11 = pkcs11_sect\n\n\
         [default_sect]\nactivate = 1\n\n[pkcs11_sect]\nmodule = {}\n\
         pkcs11-module-path = {}\npkcs11-module-token-pin = file:{pin_file}\n\
         pkcs11-module-quirks = no-deinit\n",
        common::provider_so().display(),
        softhsm.display()
    );
    if let Ok(extra) = env::var("P11RS_BENCH_CONFIG") {
        for line in extra.split(';').filter(|l| !l.trim().is_empty()) {
            let _ = writeln!(text, "{}", line.trim());
        }
    }
    text.push_str("activate = 1\n");
    text
}

/// The libp11 ENGINE, initialised on SoftHSM2 with the user PIN.
fn engine(module: &Path) -> Result<*mut c_void, String> {
    // SAFETY: loads OpenSSL's built-in engines (including "dynamic"); no arguments.
    unsafe { ENGINE_load_builtin_engines() };
    // SAFETY: NUL-terminated id; returns a structural reference or NULL.
    let engine = unsafe { ENGINE_by_id(c"pkcs11".as_ptr()) };
    if engine.is_null() {
        return Err(format!(
            "ENGINE_by_id(pkcs11): {} (Debian: apt-get install libengine-pkcs11-openssl)",
            ossl::openssl_errors()
        ));
    }
    let module = CString::new(module.to_str().unwrap()).unwrap();
    let pin = CString::new(softhsm::USER_PIN).unwrap();
    for (cmd, arg) in [(c"MODULE_PATH", &module), (c"PIN", &pin)] {
        // SAFETY: `engine` is live; command and argument are NUL-terminated and copied by the
        // engine.
        if unsafe { ENGINE_ctrl_cmd_string(engine, cmd.as_ptr(), arg.as_ptr(), 0) } != 1 {
            return Err(format!("ENGINE {cmd:?}: {}", ossl::openssl_errors()));
        }
    }
    // SAFETY: `engine` is live; takes a functional reference that is kept for the process.
    if unsafe { ENGINE_init(engine) } != 1 {
        return Err(format!("ENGINE_init: {}", ossl::openssl_errors()));
    }
    // Loading the built-in engines queues harmless "rdrand.so not found" errors; drop them so
    // they do not show up in the next real error.
    let _ = openssl::error::ErrorStack::get();
    Ok(engine)
}

fn engine_key(engine: *mut c_void, uri: &str) -> Result<PKey<Private>, String> {
    let c_uri = CString::new(uri).unwrap();
    // SAFETY: `engine` is an initialised engine; NULL UI method and data mean "no prompt"
    // (the PIN was set with the PIN command).
    let pkey = unsafe {
        ENGINE_load_private_key(
            engine,
            c_uri.as_ptr(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
        )
    };
    if pkey.is_null() {
        return Err(format!(
            "ENGINE_load_private_key: {}",
            ossl::openssl_errors()
        ));
    }
    // SAFETY: ENGINE_load_private_key returned a new reference, which `PKey` takes over.
    Ok(unsafe { PKey::from_ptr(pkey) })
}

/// Label of the second token, which holds only the Ed25519 key: libp11 0.4.12 cannot enumerate
/// the private keys of a token that holds an EdDSA key ("Unable to enumerate private keys"), so
/// with it on the main token the ENGINE would load no key at all.
const EDDSA_TOKEN_LABEL: &str = "p11rs-ed";

fn token_label(kind: Kind) -> &'static str {
    if kind == Kind::Ed25519 {
        EDDSA_TOKEN_LABEL
    } else {
        common::TOKEN_LABEL
    }
}

/// Makes the EdDSA token and key pair; returns the public key (SubjectPublicKeyInfo, PEM).
fn make_eddsa_token(fx: &Fixture, kind: Kind) -> Vec<u8> {
    let tool = |program: &str, args: &[&str]| {
        let mut command = std::process::Command::new(program);
        command
            .args(args)
            .env("SOFTHSM2_CONF", fx.token().conf())
            .env("OPENSSL_CONF", "/dev/null");
        common::run_command(&mut command, Path::new(&fx.file("")), None).success();
    };
    let module = fx.token().module().display().to_string();
    let pin = softhsm::USER_PIN;
    tool(
        "softhsm2-util",
        &[
            "--init-token",
            "--free",
            "--label",
            EDDSA_TOKEN_LABEL,
            "--pin",
            pin,
            "--so-pin",
            softhsm::SO_PIN,
        ],
    );
    let login = [
        "--module",
        &module,
        "--token-label",
        EDDSA_TOKEN_LABEL,
        "--login",
        "--pin",
        pin,
    ];
    let label = kind.label();
    let mut keygen = login.to_vec();
    keygen.extend(["--keypairgen", "--key-type", "EC:edwards25519"]);
    keygen.extend(["--id", kind.id(), "--label", &label]);
    tool("pkcs11-tool", &keygen);
    let out = fx.file("eddsa-public.pem");
    let mut read = login.to_vec();
    read.extend([
        "--read-object",
        "--type",
        "pubkey",
        "--id",
        kind.id(),
        "-o",
        &out,
    ]);
    tool("pkcs11-tool", &read);
    std::fs::read(&out).unwrap()
}

/// A public key file as `pkcs11-tool` writes it: DER, or PEM for EdDSA.
fn parse_public_key(bytes: &[u8]) -> PKey<Public> {
    PKey::public_key_from_pem(bytes)
        .or_else(|_| PKey::public_key_from_der(bytes))
        .unwrap()
}

/// Raw PKCS#11 state of one token: the login session and one session per thread.
struct RawSlot {
    label: &'static str,
    sessions: Vec<Mutex<Session>>,
    /// Keeps the login alive (a PKCS#11 login lasts while a session is open).
    login: Mutex<Session>,
}

fn raw_slot(pkcs11: &Pkcs11, label: &'static str) -> RawSlot {
    let slot = pkcs11
        .get_slots_with_token()
        .unwrap()
        .into_iter()
        .find(|slot| pkcs11.get_token_info(*slot).unwrap().label().trim_end() == label)
        .unwrap_or_else(|| panic!("no token {label}"));
    let login = pkcs11.open_ro_session(slot).unwrap();
    login
        .login(UserType::User, Some(&AuthPin::from(softhsm::USER_PIN)))
        .unwrap();
    let sessions = (0..2)
        .map(|_| Mutex::new(pkcs11.open_ro_session(slot).unwrap()))
        .collect();
    RawSlot {
        label,
        sessions,
        login: Mutex::new(login),
    }
}

/// Builds the tokens, keys and every contender; runs while the process is single-threaded.
fn set_up() -> (Bench, Fixture) {
    let kinds = selected_kinds();
    let fx = Fixture::new("bench-sign");
    let started = Instant::now();
    let mut public_keys = Vec::new();
    for kind in KINDS {
        let pem = if token_label(kind) == common::TOKEN_LABEL {
            fx.generate_key(kind.key_type(), kind.id(), &kind.label());
            std::fs::read(fx.export_pubkey(kind.id())).unwrap()
        } else {
            make_eddsa_token(&fx, kind)
        };
        public_keys.push((kind, parse_public_key(&pem)));
    }
    println!(
        "tokens: 5 key pairs generated in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let module = fx.token().module().to_path_buf();
    let conf = fx.write_file("bench.cnf", provider_config(&module, &fx.file("pin.txt")));
    // SAFETY: called before any thread exists and before the PKCS#11 module is loaded; the
    // fixture only started child processes.
    unsafe { env::set_var("SOFTHSM2_CONF", fx.token().conf()) };

    // Raw PKCS#11, initialised first; the provider and the ENGINE find it initialised.
    let pkcs11 = Pkcs11::new(&module).unwrap();
    match pkcs11.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) => {}
        Err(cryptoki::error::Error::Pkcs11(
            cryptoki::error::RvError::CryptokiAlreadyInitialized,
            _,
        )) => {}
        Err(e) => panic!("C_Initialize: {e}"),
    }
    let raw = vec![
        raw_slot(&pkcs11, common::TOKEN_LABEL),
        raw_slot(&pkcs11, EDDSA_TOKEN_LABEL),
    ];

    let lib_ctx = ossl::lib_ctx_from_config(Path::new(&conf)).unwrap();
    let engine = engine(&module);
    let mut keys = Vec::new();
    let mut cold_loads = Vec::new();
    for kind in kinds {
        let token = raw
            .iter()
            .position(|r| r.label == token_label(kind))
            .unwrap();
        let login = raw[token].login.lock().unwrap();
        let id = u8::from_str_radix(kind.id(), 16).unwrap();
        let token_handle = *login
            .find_objects(&[
                Attribute::Class(ObjectClass::PRIVATE_KEY),
                Attribute::Token(true),
                Attribute::Id(vec![id]),
            ])
            .unwrap()
            .first()
            .expect("token key");
        // Label and id of the copy differ, so that no `pkcs11:` URI of the provider or the
        // ENGINE matches it (session objects are visible to every session of the process).
        let copy_handle = login
            .copy_object(
                token_handle,
                &[
                    Attribute::Token(false),
                    Attribute::Label(format!("raw-copy-{}", kind.id()).into_bytes()),
                    Attribute::Id(vec![0xc0 | id]),
                ],
            )
            .unwrap();
        drop(login);
        let uri = format!(
            "pkcs11:token={};object={};type=private",
            token_label(kind),
            common::percent_encode(&kind.label())
        );
        let loading = Instant::now();
        let provider = ossl::load_private_key(&lib_ctx, &uri).unwrap();
        cold_loads.push((kind, loading.elapsed()));
        let engine_key = match &engine {
            Ok(engine) => engine_key(*engine, &uri),
            Err(e) => Err(e.clone()),
        };
        let public = public_keys
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, p)| p.clone())
            .unwrap();
        keys.push(BenchKey {
            kind,
            uri,
            token,
            public,
            token_handle,
            copy_handle,
            provider,
            software: kind.software_key(),
            engine: engine_key,
        });
    }
    // The module stays initialised for the whole run: dropping the last handle would
    // C_Finalize it under the provider and the ENGINE.
    std::mem::forget(pkcs11);
    let bench = Bench {
        keys,
        raw,
        lib_ctx,
        cold_loads,
    };
    (bench, fx)
}

fn selected_kinds() -> Vec<Kind> {
    match env_list("P11RS_BENCH_KEYS") {
        None => KINDS.to_vec(),
        Some(names) => KINDS
            .into_iter()
            .filter(|k| names.iter().any(|n| n.eq_ignore_ascii_case(k.name())))
            .collect(),
    }
}

fn print_header(bench: &Bench) {
    // SAFETY: OpenSSL_version returns a static string for OPENSSL_VERSION (0).
    let version = unsafe { std::ffi::CStr::from_ptr(OpenSSL_version(0)) };
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|l| l.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_default();
    println!(
        "cpu: {cpu}, {} cores; {}; provider {}",
        thread::available_parallelism().map_or(0, |n| n.get()),
        version.to_string_lossy(),
        common::provider_so().display()
    );
    if let Ok(extra) = env::var("P11RS_BENCH_CONFIG") {
        println!("provider config additions: {extra}");
    }
    for key in &bench.keys {
        if let Err(e) = &key.engine {
            println!("engine: {} not available: {e}", key.kind.name());
        }
    }
}

/// The main table: every cell measured `reps` times, round-robin.
fn sign_table(bench: &Bench, reps: usize, duration: Duration) -> Vec<Cell> {
    let threads: Vec<usize> = env_list("P11RS_BENCH_THREADS")
        .map(|l| l.iter().map(|t| t.parse().unwrap()).collect())
        .unwrap_or_else(|| vec![1, 2]);
    let mut cells = Vec::new();
    for key in &bench.keys {
        for &n in &threads {
            for who in CONTENDERS {
                let samples = bench
                    .check(key, who)
                    .map(|()| Vec::new())
                    .map_err(|e| format!("{} {}: {e}", who.name(), key.kind.name()));
                cells.push(Cell {
                    kind: key.kind,
                    who,
                    threads: n,
                    samples,
                });
            }
        }
    }
    let started = Instant::now();
    let slice = duration / SLICES;
    for rep in 0..reps {
        // One row (key type and thread count) at a time; its contenders take turns in short
        // slices, so that the machine's slow drifts hit all of them alike.
        for row in cells.chunk_by_mut(|a, b| a.kind == b.kind && a.threads == b.threads) {
            let mut sums = vec![0.0; row.len()];
            for _ in 0..SLICES {
                for (cell, sum) in row.iter_mut().zip(&mut sums) {
                    if cell.samples.is_err() {
                        continue;
                    }
                    let key = bench.key(cell.kind);
                    match measure(bench, key, cell.who, cell.threads, slice) {
                        Ok(rate) => *sum += rate / f64::from(SLICES),
                        Err(e) => cell.samples = Err(format!("rep {rep}: {e}")),
                    }
                }
            }
            for (cell, sum) in row.iter_mut().zip(sums) {
                if let Ok(samples) = &mut cell.samples {
                    samples.push(sum);
                }
            }
        }
        eprintln!(
            "  repetition {}/{reps} done ({:.0} s)",
            rep + 1,
            started.elapsed().as_secs_f64()
        );
    }
    cells
}

/// The median over repetitions of `a[i] / b[i]`: pairing the samples of one repetition cancels
/// the machine's slow drifts that the two cells shared.
fn paired_ratio(a: Option<&Cell>, b: Option<&Cell>) -> Option<f64> {
    let (Ok(a), Ok(b)) = (&a?.samples, &b?.samples) else {
        return None;
    };
    let mut ratios: Vec<f64> = a
        .iter()
        .zip(b)
        .filter(|(_, b)| **b > 0.0)
        .map(|(a, b)| a / b)
        .collect();
    (!ratios.is_empty()).then(|| median(&mut ratios))
}

fn print_table(cells: &[Cell]) {
    let cell = |kind, who, threads| {
        cells
            .iter()
            .find(|c| c.kind == kind && c.who == who && c.threads == threads)
    };
    let rate = |c: Option<&Cell>| {
        c.and_then(Cell::median)
            .map_or_else(|| "n/a".to_owned(), |v| format!("{v:.0}"))
    };
    let ratio = |a, b| paired_ratio(a, b).map_or_else(|| "-".to_owned(), |r| format!("{r:.2}"));
    println!(
        "\nsignatures/s: median of repetitions; ratios: median of the per-repetition ratios; \
         x2 = 2-thread/1-thread scaling"
    );
    println!(
        "{:<13} {:>3} {:>9} {:>9} {:>9} {:>9} {:>9} {:>8} {:>9} {:>8} {:>6} {:>6} {:>6}",
        "key",
        "thr",
        "raw token",
        "raw copy",
        "provider",
        "software",
        "engine",
        "prov/raw",
        "prov/copy",
        "prov/eng",
        "x2 raw",
        "x2 prv",
        "x2 eng"
    );
    let mut kinds: Vec<Kind> = cells.iter().map(|c| c.kind).collect();
    kinds.dedup();
    let mut threads: Vec<usize> = cells.iter().map(|c| c.threads).collect();
    threads.sort_unstable();
    threads.dedup();
    for kind in kinds {
        for &n in &threads {
            let [raw, copy, prov, soft, eng] = CONTENDERS.map(|who| cell(kind, who, n));
            let scaling = |who| {
                if n == 1 {
                    String::new()
                } else {
                    ratio(cell(kind, who, n), cell(kind, who, 1))
                }
            };
            println!(
                "{:<13} {:>3} {:>9} {:>9} {:>9} {:>9} {:>9} {:>8} {:>9} {:>8} {:>6} {:>6} {:>6}",
                kind.name(),
                n,
                rate(raw),
                rate(copy),
                rate(prov),
                rate(soft),
                rate(eng),
                ratio(prov, raw),
                ratio(prov, copy),
                ratio(prov, eng),
                scaling(Contender::RawToken),
                scaling(Contender::Provider),
                scaling(Contender::Engine),
            );
        }
    }
    let noisiest = cells
        .iter()
        .filter_map(|c| Some((c.spread()?, c)))
        .max_by(|a, b| a.0.total_cmp(&b.0));
    if env::var_os("P11RS_BENCH_VERBOSE").is_some() {
        for cell in cells {
            if let Ok(samples) = &cell.samples {
                let list: Vec<String> = samples.iter().map(|v| format!("{v:.0}")).collect();
                println!(
                    "  {:<12} {:<9} {} thr: {}",
                    cell.kind.name(),
                    cell.who.name(),
                    cell.threads,
                    list.join(" ")
                );
            }
        }
    }
    if let Some((spread, cell)) = noisiest {
        println!(
            "largest spread between repetitions: {:.0} % ({} {} {} thread(s))",
            spread * 100.0,
            cell.who.name(),
            cell.kind.name(),
            cell.threads
        );
    }
    for cell in cells {
        if let Err(e) = &cell.samples {
            if !(cell.who == Contender::Engine && cell.threads > 1) {
                println!("not measured: {e}");
            }
        }
    }
}

/// Store open + load of each key, warm (median of [`LOAD_SAMPLES`]) and the first load.
fn key_loads(bench: &Bench) {
    println!("\nkey load (OSSL_STORE_open_ex + load + close), ms:");
    println!("{:<13} {:>10} {:>12}", "key", "first", "warm median");
    for key in &bench.keys {
        let mut failures = Vec::new();
        let mut samples: Vec<f64> = (0..LOAD_SAMPLES)
            .map(|_| {
                let started = Instant::now();
                let loaded = ossl::load_private_key(&bench.lib_ctx, &key.uri);
                let elapsed = started.elapsed().as_secs_f64() * 1e3;
                if let Err(e) = loaded {
                    failures.push(e);
                }
                elapsed
            })
            .collect();
        if let Some(first) = failures.first() {
            println!(
                "  {} of {LOAD_SAMPLES} loads of {} FAILED, first: {first}",
                failures.len(),
                key.kind.name()
            );
        }
        let first = bench
            .cold_loads
            .iter()
            .find(|(k, _)| *k == key.kind)
            .map_or(0.0, |(_, d)| d.as_secs_f64() * 1e3);
        println!(
            "{:<13} {:>10.2} {:>12.2}",
            key.kind.name(),
            first,
            median(&mut samples)
        );
    }
}

/// RSS before, after 1 000 and after 10 000 provider signatures (P-256, or the first key).
fn rss_growth(bench: &Bench) {
    let key = bench
        .keys
        .iter()
        .find(|k| k.kind == Kind::P256)
        .unwrap_or(&bench.keys[0]);
    let before = rss_kib();
    for _ in 0..1000 {
        bench.sign(key, Contender::Provider, 0).unwrap();
    }
    let after_1k = rss_kib();
    for _ in 1000..10_000 {
        bench.sign(key, Contender::Provider, 0).unwrap();
    }
    let after_10k = rss_kib();
    println!(
        "\nRSS ({} provider signatures): before {before} KiB, after 1 000: {after_1k} KiB, \
         after 10 000: {after_10k} KiB; growth 1 000 -> 10 000: {} KiB",
        key.kind.name(),
        after_10k as i64 - after_1k as i64
    );
}

/// One side of an in-memory duplex transport (a BIO pair without the BIOs).
struct Pipe {
    incoming: Rc<RefCell<VecDeque<u8>>>,
    outgoing: Rc<RefCell<VecDeque<u8>>>,
}

impl Read for Pipe {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut incoming = self.incoming.borrow_mut();
        if incoming.is_empty() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = incoming.read(buf)?;
        Ok(n)
    }
}

impl Write for Pipe {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.outgoing.borrow_mut().extend(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn pipe_pair() -> (Pipe, Pipe) {
    let a = Rc::new(RefCell::new(VecDeque::new()));
    let b = Rc::new(RefCell::new(VecDeque::new()));
    (
        Pipe {
            incoming: Rc::clone(&a),
            outgoing: Rc::clone(&b),
        },
        Pipe {
            incoming: b,
            outgoing: a,
        },
    )
}

enum Side {
    Mid(MidHandshakeSslStream<Pipe>),
    /// Finished; the stream is dropped (nothing is sent after the handshake).
    Done,
}

fn advance(result: Result<SslStream<Pipe>, HandshakeError<Pipe>>) -> Result<Side, String> {
    match result {
        Ok(_stream) => Ok(Side::Done),
        Err(HandshakeError::WouldBlock(mid)) => Ok(Side::Mid(mid)),
        Err(HandshakeError::Failure(mid)) => Err(format!("handshake failed: {}", mid.error())),
        Err(HandshakeError::SetupFailure(e)) => Err(format!("handshake setup: {e}")),
    }
}

/// One full handshake between a fresh client and server.
fn handshake(server: &SslContext, client: &SslContext) -> Result<(), String> {
    let (client_end, server_end) = pipe_pair();
    let client_ssl = Ssl::new(client).map_err(|e| e.to_string())?;
    let server_ssl = Ssl::new(server).map_err(|e| e.to_string())?;
    let mut client_side = advance(client_ssl.connect(client_end))?;
    let mut server_side = advance(server_ssl.accept(server_end))?;
    for _ in 0..MAX_HANDSHAKE_ROUNDS {
        if let Side::Mid(mid) = server_side {
            server_side = advance(mid.handshake())?;
        }
        if let Side::Mid(mid) = client_side {
            client_side = advance(mid.handshake())?;
        }
        if matches!((&client_side, &server_side), (Side::Done, Side::Done)) {
            return Ok(());
        }
    }
    Err("handshake did not finish".to_owned())
}

/// A self-signed certificate for the token key (signed through the provider itself).
fn certificate(signing_key: &PKeyRef<Private>, public: &PKeyRef<Public>, kind: Kind) -> X509 {
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_text("CN", "bench.invalid").unwrap();
    let name = name.build();
    let mut builder = X509::builder().unwrap();
    builder.set_version(2).unwrap();
    builder
        .set_serial_number(&BigNum::from_u32(1).unwrap().to_asn1_integer().unwrap())
        .unwrap();
    builder.set_subject_name(&name).unwrap();
    builder.set_issuer_name(&name).unwrap();
    builder
        .set_not_before(&Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    builder
        .set_not_after(&Asn1Time::days_from_now(30).unwrap())
        .unwrap();
    builder.set_pubkey(public).unwrap();
    let md = kind.digest().unwrap_or_else(MessageDigest::null);
    builder
        .sign(signing_key, md)
        .unwrap_or_else(|e| panic!("certificate for {} key: {e}", kind.name()));
    builder.build()
}

fn tls_server(
    lib_ctx: &LibCtxRef,
    version: SslVersion,
    key: &PKeyRef<Private>,
    cert: &X509,
) -> SslContext {
    // SAFETY: `lib_ctx` is live for the whole run and TLS_server_method returns a static
    // method table; the new SSL_CTX is handed to `SslContextBuilder`, which owns it.
    let mut builder = unsafe {
        let ctx = SSL_CTX_new_ex(
            lib_ctx.as_ptr(),
            std::ptr::null(),
            openssl_sys::TLS_server_method(),
        );
        assert!(!ctx.is_null(), "SSL_CTX_new_ex failed");
        SslContextBuilder::from_ptr(ctx)
    };
    builder.set_min_proto_version(Some(version)).unwrap();
    builder.set_max_proto_version(Some(version)).unwrap();
    builder.set_certificate(cert).unwrap();
    builder.set_private_key(key).unwrap();
    builder.check_private_key().unwrap();
    builder.set_session_cache_mode(SslSessionCacheMode::OFF);
    builder.set_num_tickets(0).unwrap();
    builder.build()
}

fn tls_client(version: SslVersion) -> SslContext {
    let mut builder = SslContext::builder(SslMethod::tls_client()).unwrap();
    builder.set_min_proto_version(Some(version)).unwrap();
    builder.set_max_proto_version(Some(version)).unwrap();
    builder.set_verify(SslVerifyMode::NONE);
    builder.set_session_cache_mode(SslSessionCacheMode::OFF);
    builder.build()
}

/// Full TLS handshakes per second, token key vs software key of the same type, interleaved.
fn tls_table(bench: &Bench, reps: usize, duration: Duration) {
    let versions = [
        ("TLS 1.3", SslVersion::TLS1_3),
        ("TLS 1.2", SslVersion::TLS1_2),
    ];
    struct TlsCell {
        label: String,
        server: SslContext,
        client: SslContext,
        samples: Vec<f64>,
        error: Option<String>,
    }
    let mut cells = Vec::new();
    for key in bench
        .keys
        .iter()
        .filter(|k| matches!(k.kind, Kind::P256 | Kind::Rsa2048))
    {
        let token_cert = certificate(&key.provider, &key.public, key.kind);
        let software_public =
            PKey::public_key_from_der(&key.software.public_key_to_der().unwrap()).unwrap();
        let software_cert = certificate(&key.software, &software_public, key.kind);
        for (name, version) in versions {
            for (who, private, cert) in [
                ("token (provider)", &key.provider, &token_cert),
                ("software", &key.software, &software_cert),
            ] {
                cells.push(TlsCell {
                    label: format!("{name} {} {who}", key.kind.name()),
                    server: tls_server(&bench.lib_ctx, version, private, cert),
                    client: tls_client(version),
                    samples: Vec::new(),
                    error: None,
                });
            }
        }
    }
    for _ in 0..reps {
        for cell in &mut cells {
            if cell.error.is_some() {
                continue;
            }
            let started = Instant::now();
            let mut done = 0u64;
            while started.elapsed() < duration {
                if let Err(e) = handshake(&cell.server, &cell.client) {
                    cell.error = Some(e);
                    break;
                }
                done += 1;
            }
            cell.samples
                .push(done as f64 / started.elapsed().as_secs_f64());
        }
    }
    println!("\nfull TLS handshakes/s (client and server in one thread, in-memory transport):");
    for cell in &mut cells {
        match &cell.error {
            Some(e) => println!("  {:<36} failed: {e}", cell.label),
            None => println!("  {:<36} {:>8.0}", cell.label, median(&mut cell.samples)),
        }
    }
}

/// `--profile <who> <key> <count>`: only sign, for a profiler.
fn profile_mode(bench: &Bench, args: &[String]) {
    let who = Contender::parse(&args[0]).expect("contender: raw|copy|provider|software|engine");
    let kind = KINDS
        .into_iter()
        .find(|k| k.name().eq_ignore_ascii_case(&args[1]))
        .expect("key: RSA-2048|RSA-3072-PSS|P-256|P-384|Ed25519");
    let count: u64 = args[2].parse().expect("count");
    let key = bench.key(kind);
    bench.check(key, who).unwrap();
    let started = Instant::now();
    profile_loop(bench, key, who, count);
    let secs = started.elapsed().as_secs_f64();
    println!(
        "profile: {count} {} {} signatures in {secs:.2} s ({:.0}/s)",
        who.name(),
        kind.name(),
        count as f64 / secs
    );
}

/// The loop a profiler should look at (`--toggle-collect='*profile_loop*'`).
#[inline(never)]
fn profile_loop(bench: &Bench, key: &BenchKey, who: Contender, count: u64) {
    for _ in 0..count {
        bench.sign(key, who, 0).unwrap();
    }
}

fn main() {
    // `cargo bench` passes `--bench`; anything else is ours.
    let args: Vec<String> = env::args().skip(1).filter(|a| a != "--bench").collect();
    let reps = env_number("P11RS_BENCH_REPS", 5usize).max(1);
    let duration = Duration::from_secs_f64(env_number("P11RS_BENCH_SECS", 0.5f64));
    let started = Instant::now();
    let (bench, _fixture) = set_up();
    if let Some(at) = args.iter().position(|a| a == "--profile") {
        profile_mode(&bench, &args[at + 1..]);
    } else {
        print_header(&bench);
        rss_growth(&bench);
        let cells =
            with_interference_report("the signature table", || sign_table(&bench, reps, duration));
        print_table(&cells);
        key_loads(&bench);
        tls_table(&bench, reps, duration);
        println!(
            "\nRSS at the end: {} KiB; total run {:.0} s",
            rss_kib(),
            started.elapsed().as_secs_f64()
        );
    }
    let _ = io::stdout().flush();
    // Skip atexit cleanup: the ENGINE would C_Finalize SoftHSM2 under the provider, and
    // SoftHSM2 must not be finalised from an atexit handler (DESIGN.md, quirks).
    // SAFETY: ends the process; stdout was flushed above.
    unsafe { libc::_exit(0) };
}
