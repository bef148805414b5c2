//! A token in another process, the shape of a network HSM: SoftHSM2 behind `p11-kit server`,
//! used through p11-kit's client module (`p11-kit-client.so`), which hands out a new module
//! instance for every `C_GetInterface`/`C_GetFunctionList` call. The provider must make every
//! call through the one instance it initialised (it once signed through another and got
//! `CKR_CRYPTOKI_NOT_INITIALIZED`). scripts/matrix.sh runs the fuller token checks on the same
//! stack (`--token p11kit-remote`).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::common::{Fixture, KeyType, SignatureCheck};

/// Where Debian (`p11-kit-modules`) and Fedora (`p11-kit`) install the client module.
const CLIENT_CANDIDATES: &[&str] = &[
    "/usr/lib/x86_64-linux-gnu/pkcs11/p11-kit-client.so",
    "/usr/lib/aarch64-linux-gnu/pkcs11/p11-kit-client.so",
    "/usr/lib64/pkcs11/p11-kit-client.so",
    "/usr/lib/pkcs11/p11-kit-client.so",
];

/// `p11-kit server` serving the fixture's token on a socket in the fixture directory; killed
/// when dropped.
struct RemoteToken {
    child: Child,
    socket: PathBuf,
}

impl RemoteToken {
    fn start(fx: &Fixture) -> RemoteToken {
        let socket = PathBuf::from(fx.file("p11-kit.sock"));
        let stderr = fs::File::create(fx.file("p11-kit-server.stderr")).expect("stderr file");
        let child = Command::new("p11-kit")
            .args(["server", "--foreground", "--name"])
            .arg(&socket)
            .arg("--provider")
            .arg(fx.token().module())
            .arg(fx.uri(""))
            .env("SOFTHSM2_CONF", fx.token().conf())
            .env("OPENSSL_CONF", "/dev/null")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("start `p11-kit server` (Debian: apt-get install p11-kit p11-kit-modules)");
        let server = RemoteToken { child, socket };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !server.socket.exists() {
            assert!(
                Instant::now() < deadline,
                "p11-kit server did not create {}: {}",
                server.socket.display(),
                fs::read_to_string(fx.file("p11-kit-server.stderr")).unwrap_or_default()
            );
            thread::sleep(Duration::from_millis(20));
        }
        server
    }

    fn address(&self) -> String {
        format!("unix:path={}", self.socket.display())
    }
}

impl Drop for RemoteToken {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn client_module() -> PathBuf {
    CLIENT_CANDIDATES
        .iter()
        .map(PathBuf::from)
        .find(|path| path.is_file())
        .expect(
            "p11-kit-client.so not found; install it (Debian: apt-get install p11-kit-modules; \
             Fedora: dnf install p11-kit)",
        )
}

/// Store listing, RSA PKCS#1, RSA-PSS and ECDSA signatures through p11-kit-client.so, each
/// verified with the default provider and the public key pkcs11-tool read from the token.
#[test]
fn signs_through_p11_kit_client() {
    let mut fx = Fixture::new("remote-p11-kit");
    fx.generate_key(KeyType::Rsa2048, "01", "rsa");
    fx.generate_key(KeyType::EcP256, "02", "p256");
    // Read before the server opens the token: SoftHSM2's file store and two processes.
    let rsa_public = fx.export_pubkey("01");
    let p256_public = fx.export_pubkey("02");
    let server = RemoteToken::start(&fx);
    fx.config_mut().module_path = Some(client_module());
    // Through the client the module is p11-kit's, not SoftHSM2: no automatic quirks.
    fx.config_mut().set("pkcs11-module-quirks", "none");
    fx.set_child_env("P11_KIT_SERVER_ADDRESS", &server.address());

    let listed = fx.openssl(&["storeutl", "-keys", &fx.uri("")]).success();
    assert!(
        listed.stdout().contains("Total found: 2"),
        "expected the two private keys\n{}",
        listed.report()
    );
    for (label, public_key, extra) in [
        ("rsa", &rsa_public, &[][..]),
        ("rsa", &rsa_public, &["-sigopt", "rsa_padding_mode:pss"][..]),
        ("p256", &p256_public, &[][..]),
    ] {
        let message = fx.message("message.txt");
        let signature = fx.file("message.sig");
        let uri = fx.private_key_uri(label);
        let mut args = vec!["dgst", "-sha256", "-sign", &uri, "-out", &signature];
        args.extend_from_slice(extra);
        args.push(&message);
        let signed = fx.openssl(&args).success();
        let verify_options: &[&str] = if extra.is_empty() {
            &[]
        } else {
            &["rsa_padding_mode:pss"]
        };
        let check = SignatureCheck {
            verify_options,
            ..SignatureCheck::new(public_key, &message, &signature, Some("sha256"))
        };
        fx.assert_valid_signature(&check, &signed);
    }
    assert!(Path::new(&server.socket).exists());
}
