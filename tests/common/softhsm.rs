//! SoftHSM2 token set-up for the integration tests: finds the tools and `libsofthsm2.so`, creates a
//! token in a private directory (`softhsm2-util --init-token`), puts keys and certificates on it
//! (`pkcs11-tool --keypairgen` / `--write-object`, `softhsm2-util --import` for Ed448) and reads
//! public keys back with `pkcs11-tool`, never through our provider. Nothing here loads the provider:
//! every tool runs with `OPENSSL_CONF=/dev/null`, i.e. OpenSSL's built-in default provider only.
//!
//! Facts about the installed tools that shaped this file (OpenSC 0.23, SoftHSM2 2.6.1):
//! - `pkcs11-tool --keypairgen` does not know `EC:edwards448`, and `--write-object --type privkey`
//!   rejects EdDSA keys; `softhsm2-util --import` takes an Ed448 PKCS#8 file and writes both objects.
//! - `pkcs11-tool --read-object --type pubkey` writes DER for RSA/EC but PEM for Ed25519, fails with
//!   "cannot create EVP_PKEY" for P-384 keys and refuses Ed448; for those, the SubjectPublicKeyInfo is
//!   rebuilt from the `EC_POINT`/`EC_PARAMS` attributes that `pkcs11-tool --list-objects` prints.
//! - `pkcs11-tool --keypairgen --key-type EC:edwards25519` stores `CKA_EC_PARAMS` as the
//!   PrintableString "edwards25519", not the OID (RFC 8410 / PKCS#11 3.0 allow both).

use std::env;
use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::{Ran, run_command};

/// User PIN of every test token.
pub(crate) const USER_PIN: &str = "1234";
/// Security-officer PIN of every test token.
pub(crate) const SO_PIN: &str = "5678";

/// Where Debian, Ubuntu and Fedora install the SoftHSM2 module.
const SOFTHSM_CANDIDATES: &[&str] = &[
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib64/pkcs11/libsofthsm2.so",
    "/usr/lib64/softhsm/libsofthsm2.so",
    "/usr/lib/pkcs11/libsofthsm2.so",
    "/usr/local/lib/softhsm/libsofthsm2.so",
];

/// Where Debian (`opensc-pkcs11`) and Fedora (`opensc`) install OpenSC's logging PKCS#11 proxy.
const SPY_CANDIDATES: &[&str] = &[
    "/usr/lib/x86_64-linux-gnu/pkcs11-spy.so",
    "/usr/lib/x86_64-linux-gnu/pkcs11/pkcs11-spy.so",
    "/usr/lib/aarch64-linux-gnu/pkcs11-spy.so",
    "/usr/lib/aarch64-linux-gnu/pkcs11/pkcs11-spy.so",
    "/usr/lib64/pkcs11-spy.so",
    "/usr/lib64/pkcs11/pkcs11-spy.so",
    "/usr/lib/pkcs11/pkcs11-spy.so",
];

/// The command-line tools the tests drive, with the packages that provide them.
const TOOLS: &[(&str, &str)] = &[
    (
        "openssl",
        "Debian: apt-get install openssl; Fedora: dnf install openssl",
    ),
    (
        "softhsm2-util",
        "Debian: apt-get install softhsm2; Fedora: dnf install softhsm",
    ),
    (
        "pkcs11-tool",
        "Debian: apt-get install opensc; Fedora: dnf install opensc",
    ),
];

/// Panics with an install hint when a tool is missing: on CI that is a failure, never a skip.
pub(crate) fn require_tools() {
    let path = env::var_os("PATH").unwrap_or_default();
    for (tool, hint) in TOOLS {
        let found = env::split_paths(&path).any(|dir| dir.join(tool).is_file());
        assert!(found, "`{tool}` not found in PATH; install it ({hint})");
    }
}

/// `libsofthsm2.so`: env `P11RS_SOFTHSM_MODULE`, else the usual distribution paths.
pub(crate) fn softhsm_module() -> PathBuf {
    find_library(
        "P11RS_SOFTHSM_MODULE",
        SOFTHSM_CANDIDATES,
        "libsofthsm2.so not found; install it (Debian: apt-get install softhsm2; \
         Fedora: dnf install softhsm) or set P11RS_SOFTHSM_MODULE",
    )
}

/// OpenSC's `pkcs11-spy.so`: env `P11RS_PKCS11_SPY`, else the usual distribution paths.
pub(crate) fn spy_module() -> PathBuf {
    find_library(
        "P11RS_PKCS11_SPY",
        SPY_CANDIDATES,
        "pkcs11-spy.so not found; install it (Debian: apt-get install opensc-pkcs11; \
         Fedora: dnf install opensc) or set P11RS_PKCS11_SPY",
    )
}

fn find_library(env_name: &str, candidates: &[&str], hint: &str) -> PathBuf {
    if let Some(path) = env::var_os(env_name) {
        let path = PathBuf::from(path);
        assert!(
            path.is_file(),
            "{env_name}={} does not exist",
            path.display()
        );
        return path;
    }
    candidates
        .iter()
        .map(PathBuf::from)
        .find(|path| path.is_file())
        .unwrap_or_else(|| panic!("{hint}"))
}

/// The key types the provider must support (issue 3), as the token tools name them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum KeyType {
    Rsa2048,
    Rsa3072,
    EcP256,
    EcP384,
    EcP521,
    Ed25519,
    Ed448,
}

impl KeyType {
    /// `pkcs11-tool --key-type` value; `None` where pkcs11-tool cannot generate the key.
    fn pkcs11_tool_spec(self) -> Option<&'static str> {
        match self {
            Self::Rsa2048 => Some("rsa:2048"),
            Self::Rsa3072 => Some("rsa:3072"),
            Self::EcP256 => Some("EC:prime256v1"),
            Self::EcP384 => Some("EC:secp384r1"),
            Self::EcP521 => Some("EC:secp521r1"),
            Self::Ed25519 => Some("EC:edwards25519"),
            Self::Ed448 => None,
        }
    }

    /// `openssl req -newkey` / `genpkey` arguments that make the same kind of software key.
    pub(crate) fn openssl_newkey_args(self) -> &'static [&'static str] {
        match self {
            Self::Rsa2048 => &["-newkey", "rsa:2048"],
            Self::Rsa3072 => &["-newkey", "rsa:3072"],
            Self::EcP256 => &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
            Self::EcP384 => &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-384"],
            Self::EcP521 => &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-521"],
            Self::Ed25519 => &["-newkey", "ed25519"],
            Self::Ed448 => &["-newkey", "ed448"],
        }
    }

    pub(crate) fn is_rsa(self) -> bool {
        matches!(self, Self::Rsa2048 | Self::Rsa3072)
    }

    pub(crate) fn is_eddsa(self) -> bool {
        matches!(self, Self::Ed25519 | Self::Ed448)
    }

    /// A word that `openssl pkey -text` prints for this key whoever encodes it (bit size or name).
    pub(crate) fn text_marker(self) -> &'static str {
        match self {
            Self::Rsa2048 => "2048",
            Self::Rsa3072 => "3072",
            Self::EcP256 => "256",
            Self::EcP384 => "384",
            Self::EcP521 => "521",
            Self::Ed25519 => "25519",
            Self::Ed448 => "448",
        }
    }
}

/// One SoftHSM2 token in its own token directory, addressed by its label.
pub(crate) struct Token {
    dir: PathBuf,
    conf: PathBuf,
    module: PathBuf,
    label: String,
}

impl Token {
    /// Writes `<dir>/softhsm2.conf` (token directory `<dir>/tokens`) and initialises a token.
    pub(crate) fn create(dir: &Path, label: &str) -> Token {
        let tokens = dir.join("tokens");
        fs::create_dir_all(&tokens).expect("create token directory");
        let conf = dir.join("softhsm2.conf");
        let text = format!(
            "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n\
             slots.removable = false\n",
            tokens.display()
        );
        fs::write(&conf, text).expect("write softhsm2.conf");
        let token = Token {
            dir: dir.to_path_buf(),
            conf,
            module: softhsm_module(),
            label: label.to_owned(),
        };
        token
            .tool("softhsm2-util")
            .args(["--init-token", "--free", "--label", label])
            .args(["--pin", USER_PIN, "--so-pin", SO_PIN])
            .run()
            .success();
        token
    }

    pub(crate) fn label(&self) -> &str {
        &self.label
    }

    /// The `softhsm2.conf` a child process needs in `SOFTHSM2_CONF` to see this token.
    pub(crate) fn conf(&self) -> &Path {
        &self.conf
    }

    pub(crate) fn module(&self) -> &Path {
        &self.module
    }

    /// Generates a key pair on the token (private and public object, same id and label).
    pub(crate) fn generate_key_pair(&self, key_type: KeyType, id: &str, label: &str) {
        match key_type.pkcs11_tool_spec() {
            Some(spec) => {
                self.pkcs11_tool_login()
                    .args([
                        "--keypairgen",
                        "--key-type",
                        spec,
                        "--id",
                        id,
                        "--label",
                        label,
                    ])
                    .run()
                    .success();
            }
            None => {
                // No tool here generates Ed448 on a token; import a fresh software key instead.
                let pem = self.dir.join(format!("softkey-{id}.pem"));
                software_openssl(&self.dir)
                    .args(["genpkey", "-algorithm", "ED448", "-out"])
                    .arg(&pem)
                    .run()
                    .success();
                self.import_key_pair(&pem, id, label);
            }
        }
    }

    /// Imports a PKCS#8 PEM private key as a private + public object pair (`softhsm2-util --import`).
    pub(crate) fn import_key_pair(&self, pkcs8_pem: &Path, id: &str, label: &str) {
        self.tool("softhsm2-util")
            .arg("--import")
            .arg(pkcs8_pem)
            .args([
                "--token",
                &self.label,
                "--label",
                label,
                "--id",
                id,
                "--pin",
                USER_PIN,
            ])
            .run()
            .success();
    }

    /// Writes one object (`privkey`, `pubkey` or `cert`) from a PEM or DER file.
    pub(crate) fn write_object(&self, file: &Path, object_type: &str, id: &str, label: &str) {
        self.pkcs11_tool_login()
            .arg("--write-object")
            .arg(file)
            .args(["--type", object_type, "--id", id, "--label", label])
            .run()
            .success();
    }

    /// The public key object with CKA_ID `id` as DER or PEM SubjectPublicKeyInfo, as read by
    /// pkcs11-tool (see the file header for the cases rebuilt from the listed attributes).
    pub(crate) fn read_public_key(&self, id: &str) -> Vec<u8> {
        let out = self.dir.join(format!("token-pubkey-{id}.bin"));
        let read = self
            .pkcs11_tool()
            .args(["--read-object", "--type", "pubkey", "--id", id, "-o"])
            .arg(&out)
            .run();
        if read.output.status.success() {
            return fs::read(&out).expect("read pkcs11-tool output");
        }
        let listing = self
            .pkcs11_tool()
            .args(["--list-objects", "--type", "pubkey"])
            .run()
            .success();
        let attributes = public_key_attributes(&listing.stdout(), id).unwrap_or_else(|| {
            panic!(
                "no EC public key with id {id} on the token\n{}",
                read.report()
            )
        });
        spki_from_ec_attributes(&attributes.0, &attributes.1).unwrap_or_else(|| {
            panic!(
                "cannot rebuild the public key with id {id}\n{}",
                read.report()
            )
        })
    }

    /// `pkcs11-tool --list-objects --type <object_type>` output (`privkey`, `pubkey`, ...),
    /// logged in or not: without a login the token hides its private objects (CKA_PRIVATE).
    pub(crate) fn list_objects(&self, object_type: &str, login: bool) -> String {
        let mut command = if login {
            self.pkcs11_tool_login()
        } else {
            self.pkcs11_tool()
        };
        command
            .args(["--list-objects", "--type", object_type])
            .run()
            .success()
            .stdout()
    }

    /// `pkcs11-tool` on this token, logged in as the user.
    pub(crate) fn pkcs11_tool_login(&self) -> TokenCommand {
        let mut command = self.pkcs11_tool();
        command.args(["--login", "--pin", USER_PIN]);
        command
    }

    fn pkcs11_tool(&self) -> TokenCommand {
        let mut command = self.tool("pkcs11-tool");
        command
            .arg("--module")
            .arg(&self.module)
            .args(["--token-label", &self.label]);
        command
    }

    fn tool(&self, program: &str) -> TokenCommand {
        let mut command = Command::new(program);
        command
            .env("SOFTHSM2_CONF", &self.conf)
            .env("OPENSSL_CONF", "/dev/null");
        TokenCommand {
            command,
            dir: self.dir.clone(),
        }
    }
}

/// A token tool invocation; `run` records it for failure reports.
pub(crate) struct TokenCommand {
    command: Command,
    dir: PathBuf,
}

impl TokenCommand {
    pub(crate) fn arg(&mut self, arg: impl AsRef<OsStr>) -> &mut Self {
        self.command.arg(arg);
        self
    }

    pub(crate) fn args<I, S>(&mut self, args: I) -> &mut Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.command.args(args);
        self
    }

    pub(crate) fn run(&mut self) -> Ran {
        run_command(&mut self.command, &self.dir, None)
    }
}

/// `openssl` with only the built-in default provider (no config file), for reference operations.
pub(crate) fn software_openssl(dir: &Path) -> TokenCommand {
    let mut command = Command::new("openssl");
    command.env("OPENSSL_CONF", "/dev/null");
    TokenCommand {
        command,
        dir: dir.to_path_buf(),
    }
}

/// (`CKA_EC_PARAMS`, `CKA_EC_POINT`) of the public key with `id` in a `pkcs11-tool -O` listing.
/// The listing ignores `--id`, so blocks are matched on their `ID:` line.
fn public_key_attributes(listing: &str, id: &str) -> Option<(Vec<u8>, Vec<u8>)> {
    let mut blocks: Vec<Vec<&str>> = Vec::new();
    for line in listing.lines() {
        if !line.starts_with(' ') {
            blocks.push(Vec::new());
        }
        if let Some(block) = blocks.last_mut() {
            block.push(line);
        }
    }
    let value = |block: &[&str], name: &str| -> Option<String> {
        block.iter().find_map(|line| {
            let rest = line.trim_start().strip_prefix(name)?.strip_prefix(':')?;
            rest.split_whitespace().next().map(str::to_owned)
        })
    };
    blocks.iter().find_map(|block| {
        let block_id = value(block, "ID")?;
        if !block_id.eq_ignore_ascii_case(id) {
            return None;
        }
        Some((
            hex_decode(&value(block, "EC_PARAMS")?)?,
            hex_decode(&value(block, "EC_POINT")?)?,
        ))
    })
}

fn hex_decode(text: &str) -> Option<Vec<u8>> {
    if text.len() % 2 != 0 {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

const OID_EC_PUBLIC_KEY: &[u8] = &[0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
const OID_ED25519: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x70];
const OID_ED448: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x71];

/// Builds a DER SubjectPublicKeyInfo (RFC 5480 for EC, RFC 8410 for EdDSA) from PKCS#11 attributes.
fn spki_from_ec_attributes(params: &[u8], point: &[u8]) -> Option<Vec<u8>> {
    let edwards_oid = match params {
        OID_ED25519 => Some(OID_ED25519),
        OID_ED448 => Some(OID_ED448),
        // PrintableString "edwards25519" / "edwards448" (PKCS#11 3.0 curve names).
        [0x13, _, name @ ..] if name == b"edwards25519" => Some(OID_ED25519),
        [0x13, _, name @ ..] if name == b"edwards448" => Some(OID_ED448),
        _ => None,
    };
    let (algorithm, raw_point) = match edwards_oid {
        Some(oid) => {
            let key_len = if oid == OID_ED25519 { 32 } else { 57 };
            // CKA_EC_POINT is either the raw key or a DER OCTET STRING around it.
            let raw = match der_octet_string(point) {
                Some(inner) if point.len() != key_len => inner,
                _ => point,
            };
            (der(0x30, oid), raw)
        }
        None => (
            der(0x30, &[OID_EC_PUBLIC_KEY, params].concat()),
            der_octet_string(point)?,
        ),
    };
    let bit_string = der(0x03, &[&[0u8][..], raw_point].concat());
    Some(der(0x30, &[algorithm, bit_string].concat()))
}

/// The content of a DER OCTET STRING that spans all of `bytes`.
fn der_octet_string(bytes: &[u8]) -> Option<&[u8]> {
    let (&tag, rest) = bytes.split_first()?;
    if tag != 0x04 {
        return None;
    }
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = match first {
        0x00..=0x7f => (usize::from(first), rest),
        0x81 => (usize::from(*rest.first()?), rest.get(1..)?),
        0x82 => (
            usize::from(*rest.first()?) << 8 | usize::from(*rest.get(1)?),
            rest.get(2..)?,
        ),
        _ => return None,
    };
    (rest.len() == len).then_some(rest)
}

fn der(tag: u8, content: &[u8]) -> Vec<u8> {
    let len = content.len();
    let mut out = vec![tag];
    if len < 0x80 {
        out.push(len as u8);
    } else if len < 0x100 {
        out.extend([0x81, len as u8]);
    } else {
        out.extend([0x82, (len >> 8) as u8, len as u8]);
    }
    out.extend_from_slice(content);
    out
}
