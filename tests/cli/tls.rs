//! TLS with token keys (issue 4, item 2): `openssl s_server -key <pkcs11 uri>` against an
//! `openssl s_client` that runs WITHOUT the provider (`OPENSSL_CONF=/dev/null`) and trusts only
//! the server's certificate, for TLS 1.3 and 1.2 with RSA (PSS in 1.3; PSS or PKCS#1 v1.5 in 1.2),
//! ECDSA P-256/P-384 and Ed25519 (1.3); TLS 1.2 RSA key exchange (`AES128-SHA`), where the token
//! decrypts the client's pre-master secret, and ECDHE whose key shares and secrets are made on
//! the token under `-propquery '?provider=pkcs11'` (issue 12); mutual TLS with the client key on the
//! token and a server without the provider; a C program (tests/programs/early_ctx.c) that creates its `SSL_CTX`s
//! before loading the key through `OSSL_STORE`; and `s_server` refusing a public-key or missing
//! object as its key with a provider error, not a crash.
//!
//! The default-provider peer checks every signature the token makes (`CertificateVerify`, or
//! `ServerKeyExchange` in 1.2) with the certificate's public key, which is compared with the token
//! key that pkcs11-tool reads. Servers listen on `127.0.0.1:0 -naccept 1`; the port comes from the
//! server's `ACCEPT` line, read from a pipe with a timeout, and a guard kills the server on drop.

use std::fs;
use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use crate::common::version::{oneline_name, peer_signature_type};
use crate::common::{Fixture, KeyType, Ran};

/// How long a server may take to start listening, and to finish after its one connection.
const SERVER_TIMEOUT: Duration = Duration::from_secs(20);

/// A running `openssl s_server -accept 127.0.0.1:0 -naccept 1`; killed when dropped.
struct Server {
    child: Child,
    /// Kept open: `s_server` ends its session when its stdin reaches end of file.
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    stdout: Vec<String>,
    stderr_path: String,
    command: String,
    port: u16,
}

/// What a server printed, once it exited.
struct ServerLog {
    stdout: String,
    stderr: String,
    command: String,
}

impl ServerLog {
    fn report(&self) -> String {
        format!(
            "server command: {}\nserver stdout:\n{}\nserver stderr:\n{}",
            self.command, self.stdout, self.stderr
        )
    }
}

impl Server {
    /// Starts `command` (an `openssl` command with its environment) as
    /// `s_server -accept 127.0.0.1:0 -naccept 1 <args>` and waits for its `ACCEPT` line.
    fn start(fx: &Fixture, mut command: Command, name: &str, args: &[&str]) -> Server {
        let stderr_path = fx.file(&format!("{name}.server.stderr"));
        command
            .args(["s_server", "-accept", "127.0.0.1:0", "-naccept", "1"])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(fs::File::create(&stderr_path).expect("create server stderr file"));
        let description = format!("{command:?}");
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {description}: {e}"));
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("server stdout pipe");
        let (sender, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        let mut server = Server {
            child,
            stdin,
            lines,
            stdout: Vec::new(),
            stderr_path,
            command: description,
            port: 0,
        };
        server.port = server.wait_for_accept();
        server
    }

    /// The port from `ACCEPT 127.0.0.1:<port>`.
    fn wait_for_accept(&mut self) -> u16 {
        let deadline = Instant::now() + SERVER_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let port = line
                        .strip_prefix("ACCEPT ")
                        .and_then(|address| address.rsplit(':').next())
                        .and_then(|port| port.trim().parse().ok());
                    self.stdout.push(line);
                    if let Some(port) = port {
                        return port;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    panic!(
                        "server did not listen within {SERVER_TIMEOUT:?}\n{}",
                        self.partial_report()
                    )
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let status = self.child.wait();
                    panic!(
                        "server exited before listening ({status:?})\n{}",
                        self.partial_report()
                    )
                }
            }
        }
    }

    /// Waits (bounded) until the server has handled its one connection and exited.
    fn finish(mut self) -> ServerLog {
        self.stdin = None;
        let deadline = Instant::now() + SERVER_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => self.stdout.push(line),
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => {
                    panic!(
                        "server did not exit within {SERVER_TIMEOUT:?}\n{}",
                        self.partial_report()
                    )
                }
            }
        }
        // Standard output is closed: the process is exiting.
        let _ = self.child.wait();
        ServerLog {
            stdout: self.stdout.join("\n"),
            stderr: fs::read_to_string(&self.stderr_path).unwrap_or_default(),
            command: self.command.clone(),
        }
    }

    fn partial_report(&self) -> String {
        format!(
            "server command: {}\nserver stdout so far:\n{}\nserver stderr:\n{}",
            self.command,
            self.stdout.join("\n"),
            fs::read_to_string(&self.stderr_path).unwrap_or_default()
        )
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stdin = None;
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// `openssl` with the default provider only, for the side of a handshake that must not load it.
fn software_command() -> Command {
    let mut command = Command::new("openssl");
    command.env("OPENSSL_CONF", "/dev/null");
    command
}

/// `openssl s_client` to `port` with the default provider only, stdin closed (it quits after the
/// handshake), trusting only `ca` and failing on any verification error.
fn software_client(fx: &Fixture, port: u16, ca: &str, args: &[&str]) -> Ran {
    let connect = format!("127.0.0.1:{port}");
    let mut all = vec![
        "s_client",
        "-connect",
        &connect,
        "-CAfile",
        ca,
        "-verify_return_error",
    ];
    all.extend_from_slice(args);
    fx.software_openssl(&all)
}

/// A token key `label`/`id` of `key_type` with a self-signed certificate (made through the
/// provider and checked: the certificate's key is the token key).
fn server_fixture(name: &str, key_type: KeyType) -> (Fixture, String, String) {
    let fx = Fixture::new(name);
    fx.generate_key(key_type, "01", "server");
    let uri = fx.private_key_uri("server");
    let cert = fx.token_certificate(&uri, "01", "server.crt", "/CN=localhost", &[]);
    (fx, uri, cert)
}

/// What the client must report after the handshake.
struct Expect<'a> {
    protocol: &'a str,
    /// The kind of handshake signature (`RSA-PSS`, `RSA`, `ECDSA`, `ed25519`): what OpenSSL
    /// 3.0's s_client prints as `Peer signature type:`; 3.5 and later print the TLS scheme name
    /// (`common::version::peer_signature_type`).
    signature_type: &'a str,
    /// `Peer signing digest:`; None for EdDSA (no separate digest).
    digest: Option<&'a str>,
}

/// Serves one connection with the token key and asserts that a default-provider client
/// (`client_args` added) completes the handshake as `expect` says.
fn assert_handshake(
    fx: &Fixture,
    uri: &str,
    cert: &str,
    client_args: &[&str],
    expect: &Expect<'_>,
) {
    let version_flag = match expect.protocol {
        "TLSv1.3" => "-tls1_3",
        _ => "-tls1_2",
    };
    let name = format!("{}-{}", expect.protocol, client_args.join("_"));
    let server = Server::start(
        fx,
        fx.provider_command("openssl"),
        &name,
        &["-key", uri, "-cert", cert, version_flag],
    );
    let mut args = vec![version_flag];
    args.extend_from_slice(client_args);
    let client = software_client(fx, server.port, cert, &args);
    let log = server.finish();
    let stdout = client.stdout();
    let mut wanted = vec![
        format!("New, {}, Cipher is", expect.protocol),
        "Verify return code: 0 (ok)".to_owned(),
        format!(
            "Peer signature type: {}\n",
            peer_signature_type(expect.signature_type, expect.digest)
        ),
    ];
    if let Some(digest) = expect.digest {
        wanted.push(format!("Peer signing digest: {digest}\n"));
    }
    for line in &wanted {
        assert!(
            client.output.status.success() && stdout.contains(line.as_str()),
            "client output lacks {line:?}\n--- client ---\n{}\n--- server ---\n{}",
            client.report(),
            log.report()
        );
    }
}

const TLS13: &str = "TLSv1.3";
const TLS12: &str = "TLSv1.2";

#[test]
fn rsa_tls13_uses_pss() {
    let (fx, uri, cert) = server_fixture("tls-rsa-13", KeyType::Rsa2048);
    let expect = Expect {
        protocol: TLS13,
        signature_type: "RSA-PSS",
        digest: Some("SHA256"),
    };
    assert_handshake(&fx, &uri, &cert, &[], &expect);
}

/// TLS 1.2 with RSA: PSS when the client offers it first (OpenSSL's default list), PKCS#1 v1.5
/// when the client offers only that.
#[test]
fn rsa_tls12_pss_and_pkcs1() {
    let (fx, uri, cert) = server_fixture("tls-rsa-12", KeyType::Rsa2048);
    let pss = Expect {
        protocol: TLS12,
        signature_type: "RSA-PSS",
        digest: Some("SHA256"),
    };
    assert_handshake(&fx, &uri, &cert, &[], &pss);
    for (sigalgs, digest) in [("RSA+SHA256", "SHA256"), ("RSA+SHA512", "SHA512")] {
        let pkcs1 = Expect {
            protocol: TLS12,
            signature_type: "RSA",
            digest: Some(digest),
        };
        assert_handshake(&fx, &uri, &cert, &["-sigalgs", sigalgs], &pkcs1);
    }
}

#[test]
fn p256_tls13_and_tls12() {
    let (fx, uri, cert) = server_fixture("tls-p256", KeyType::EcP256);
    for protocol in [TLS13, TLS12] {
        let expect = Expect {
            protocol,
            signature_type: "ECDSA",
            digest: Some("SHA256"),
        };
        assert_handshake(&fx, &uri, &cert, &[], &expect);
    }
}

#[test]
fn p384_tls13_and_tls12() {
    let (fx, uri, cert) = server_fixture("tls-p384", KeyType::EcP384);
    // TLS 1.3 ties P-384 to SHA-384 (RFC 8446 4.2.3); in 1.2 ask for it explicitly.
    let tls13 = Expect {
        protocol: TLS13,
        signature_type: "ECDSA",
        digest: Some("SHA384"),
    };
    assert_handshake(&fx, &uri, &cert, &[], &tls13);
    let tls12 = Expect {
        protocol: TLS12,
        signature_type: "ECDSA",
        digest: Some("SHA384"),
    };
    assert_handshake(&fx, &uri, &cert, &["-sigalgs", "ECDSA+SHA384"], &tls12);
}

#[test]
fn ed25519_tls13() {
    let (fx, uri, cert) = server_fixture("tls-ed25519", KeyType::Ed25519);
    let expect = Expect {
        protocol: TLS13,
        signature_type: "ed25519",
        digest: None,
    };
    assert_handshake(&fx, &uri, &cert, &[], &expect);
}

/// TLS 1.2 RSA key exchange: the client encrypts the pre-master secret to the certificate's key
/// and the server's token decrypts it (RSA_PKCS1_WITH_TLS_PADDING); the handshake completes
/// only if both sides then hold the same master secret (the Finished messages check it). The
/// provider log shows the decryption on the token. `server_args` are added to `s_server`'s.
fn assert_rsa_key_exchange(name: &str, server_args: &[&str]) -> String {
    let (fx, uri, cert) = server_fixture(name, KeyType::Rsa2048);
    let mut args = vec![
        "-key",
        &uri,
        "-cert",
        &cert,
        "-tls1_2",
        "-cipher",
        "AES128-SHA",
    ];
    args.extend_from_slice(server_args);
    let server = Server::start(&fx, fx.provider_command("openssl"), "rsa-kx", &args);
    let client = software_client(
        &fx,
        server.port,
        &cert,
        &["-tls1_2", "-cipher", "AES128-SHA"],
    );
    let log = server.finish();
    let report = format!(
        "--- client ---\n{}\n--- server ---\n{}",
        client.report(),
        log.report()
    );
    let stdout = client.stdout();
    // s_client names the cipher's own protocol on the "New," line (SSLv3 for AES128-SHA).
    for wanted in [
        "Cipher is AES128-SHA",
        "Protocol  : TLSv1.2",
        "Verify return code: 0 (ok)",
    ] {
        assert!(
            client.output.status.success() && stdout.contains(wanted),
            "client output lacks {wanted:?}\n{report}"
        );
    }
    assert!(
        log.stdout.contains("1 server accepts that finished"),
        "the server did not finish the handshake\n{report}"
    );
    let provider_log = fs::read_to_string(fx.provider_log()).unwrap_or_default();
    assert!(
        provider_log.contains("C_DecryptInit/C_Decrypt"),
        "no decryption on the token in the provider log\n{report}"
    );
    provider_log
}

#[test]
fn rsa_key_exchange_tls12() {
    assert_rsa_key_exchange("tls-rsa-kx", &[]);
}

/// The same with `s_server -async`: the decryption runs on a worker thread while the handshake's
/// ASYNC job waits (the worker pool starts, and the handshake completes).
#[test]
fn rsa_key_exchange_tls12_async() {
    let provider_log = assert_rsa_key_exchange("tls-rsa-kx-async", &["-async"]);
    assert!(
        provider_log.contains("workers, queue of"),
        "no asynchronous worker pool started\n{provider_log}"
    );
}

/// ECDHE with `s_server -propquery '?provider=pkcs11'`: libssl takes the P-256/P-384 groups
/// from this provider, so each handshake's key share is an ephemeral key pair on the token
/// (session objects, destroyed after the handshake) and the shared secret is derived there.
/// The default-provider client completes TLS 1.3 and TLS 1.2 (ECDHE-ECDSA) handshakes, and no
/// key is left on the token.
#[test]
fn ecdhe_on_the_token_with_propquery() {
    let (fx, uri, cert) = server_fixture("tls-ecdhe-token", KeyType::EcP256);
    let keys_before = fx.token().list_objects("privkey", true);
    for (protocol, group) in [
        ("-tls1_3", "P-256"),
        ("-tls1_3", "P-384"),
        ("-tls1_2", "P-256"),
    ] {
        let server = Server::start(
            &fx,
            fx.provider_command("openssl"),
            &format!("ecdhe{protocol}{group}"),
            &[
                "-propquery",
                "?provider=pkcs11",
                "-key",
                &uri,
                "-cert",
                &cert,
                protocol,
                "-groups",
                group,
            ],
        );
        let client = software_client(&fx, server.port, &cert, &[protocol, "-groups", group]);
        let log = server.finish();
        let report = format!(
            "--- client ---\n{}\n--- server ---\n{}",
            client.report(),
            log.report()
        );
        let curve = if group == "P-256" {
            "prime256v1"
        } else {
            "secp384r1"
        };
        for wanted in [
            format!("Server Temp Key: ECDH, {curve}"),
            "Verify return code: 0 (ok)".to_owned(),
        ] {
            assert!(
                client.output.status.success() && client.stdout().contains(&wanted),
                "client output lacks {wanted:?}\n{report}"
            );
        }
        assert!(
            log.stdout.contains("1 server accepts that finished"),
            "the server did not finish the handshake\n{report}"
        );
    }
    let provider_log = fs::read_to_string(fx.provider_log()).unwrap_or_default();
    for wanted in [
        "C_GenerateKeyPair CKM_EC_KEY_PAIR_GEN",
        "CKM_ECDH1_DERIVE",
        "destroyed 2 session objects of an ephemeral key",
    ] {
        assert_eq!(
            provider_log.matches(wanted).count(),
            3,
            "{wanted:?} not once per handshake\n{provider_log}"
        );
    }
    assert_eq!(fx.token().list_objects("privkey", true), keys_before);
}

/// Mutual TLS: the client's key is on the token (`s_client -key <uri> -cert client.crt` with the
/// provider); the server runs without the provider, requires a client certificate and trusts
/// only client.crt, so the handshake completes only if the token signed `CertificateVerify`.
fn mutual_tls(name: &str, key_type: KeyType, protocol: &str, signature_type: &str, digest: &str) {
    let fx = Fixture::new(name);
    fx.generate_key(key_type, "01", "client");
    let client_uri = fx.private_key_uri("client");
    let client_cert = fx.token_certificate(&client_uri, "01", "client.crt", "/CN=tls client", &[]);
    let server_key = fx.file("server.key.pem");
    let server_cert = fx.file("server.crt");
    let mut args = vec![
        "req",
        "-x509",
        "-nodes",
        "-subj",
        "/CN=localhost",
        "-days",
        "1",
    ];
    args.extend(KeyType::EcP256.openssl_newkey_args());
    args.extend(["-keyout", &server_key, "-out", &server_cert]);
    fx.software_openssl(&args).success();

    let version_flag = if protocol == TLS13 {
        "-tls1_3"
    } else {
        "-tls1_2"
    };
    let server = Server::start(
        &fx,
        software_command(),
        "mutual",
        &[
            "-key",
            &server_key,
            "-cert",
            &server_cert,
            "-Verify",
            "1",
            "-CAfile",
            &client_cert,
            "-verify_return_error",
            version_flag,
        ],
    );
    let connect = format!("127.0.0.1:{}", server.port);
    let client = fx.openssl(&[
        "s_client",
        "-connect",
        &connect,
        "-CAfile",
        &server_cert,
        "-verify_return_error",
        "-key",
        &client_uri,
        "-cert",
        &client_cert,
        version_flag,
    ]);
    let log = server.finish();
    let report = format!(
        "--- client ---\n{}\n--- server ---\n{}",
        client.report(),
        log.report()
    );
    assert!(
        client.output.status.success()
            && client
                .stdout()
                .contains(&format!("New, {protocol}, Cipher is")),
        "client handshake failed\n{report}"
    );
    // s_server prints the client's certificate once it verified it; the verify callback logs
    // each chain element on stderr, and any failure as an error.
    let peer_type = format!(
        "Peer signature type: {}\n",
        peer_signature_type(signature_type, Some(digest))
    );
    let peer_digest = format!("Peer signing digest: {digest}\n");
    let client_name = oneline_name(&[("CN", "tls client")]);
    let subject = format!("subject={client_name}");
    let verified = format!("depth=0 {client_name}\nverify return:1");
    for (text, wanted) in [
        (&log.stdout, "Client certificate"),
        (&log.stdout, subject.as_str()),
        (&log.stdout, "1 server accepts that finished"),
        (&log.stdout, peer_type.as_str()),
        (&log.stdout, peer_digest.as_str()),
        (&log.stderr, verified.as_str()),
    ] {
        assert!(
            text.contains(wanted),
            "server log lacks {wanted:?}\n{report}"
        );
    }
    assert!(
        !log.stderr.contains(":error:") && !log.stderr.contains("verify error"),
        "server reported an error\n{report}"
    );
}

#[test]
fn mutual_tls13_p384_client_key() {
    // TLS 1.3 ties P-384 to SHA-384.
    mutual_tls(
        "tls-mutual-p384-13",
        KeyType::EcP384,
        TLS13,
        "ECDSA",
        "SHA384",
    );
}

#[test]
fn mutual_tls12_p384_client_key() {
    // TLS 1.2 lets the client pick the server's first ECDSA entry, SHA-256.
    mutual_tls(
        "tls-mutual-p384-12",
        KeyType::EcP384,
        TLS12,
        "ECDSA",
        "SHA256",
    );
}

#[test]
fn mutual_tls13_rsa_client_key() {
    mutual_tls(
        "tls-mutual-rsa-13",
        KeyType::Rsa2048,
        TLS13,
        "RSA-PSS",
        "SHA256",
    );
}

/// `s_server -key <uri>` whose URI does not name a usable private key must exit non-zero with a
/// provider error, before listening. (`s_server` with stdin closed and a usable key would wait
/// for a connection until the run timeout, which `clean_failure` reports as a hang.)
fn assert_server_refuses_key(fx: &Fixture, uri: &str, cert: &str, words: &[&str]) {
    let run = fx
        .openssl(&[
            "s_server",
            "-accept",
            "127.0.0.1:0",
            "-naccept",
            "1",
            "-key",
            uri,
            "-cert",
            cert,
        ])
        .clean_failure();
    assert!(
        !run.stdout().contains("ACCEPT"),
        "server listened with a key it should refuse\n{}",
        run.report()
    );
    run.assert_provider_error(words);
}

/// A public key object where `s_server` needs the private key: refused with a provider error
/// that says so (the same URI with `type=private` serves, shown first).
#[test]
fn server_refuses_public_key_uri() {
    let (fx, uri, cert) = server_fixture("tls-public-key", KeyType::EcP256);
    let expect = Expect {
        protocol: TLS13,
        signature_type: "ECDSA",
        digest: Some("SHA256"),
    };
    assert_handshake(&fx, &uri, &cert, &[], &expect);
    let public_uri = fx.uri("object=server;type=public");
    assert_server_refuses_key(
        &fx,
        &public_uri,
        &cert,
        &[
            "public key",
            "not a private",
            "no private key",
            "private key required",
        ],
    );
}

#[test]
fn server_refuses_missing_key() {
    let (fx, _uri, cert) = server_fixture("tls-missing-key", KeyType::EcP256);
    let missing = fx.private_key_uri("no-such-key");
    assert_server_refuses_key(
        &fx,
        &missing,
        &cert,
        &["no object", "no key", "not found", "no match", "matches no"],
    );
}

/// tests/programs/early_ctx.c: `SSL_CTX_new` first, then the token key through `OSSL_STORE`,
/// then a TLS 1.3 handshake over a BIO pair whose client verifies the server. Run for RSA
/// (PSS), P-256 and Ed25519 keys; a missing key makes it fail with the provider's error.
#[test]
fn ssl_ctx_created_before_key_is_loaded() {
    let fx = Fixture::new("tls-early-ctx");
    let program = fx.compile_program("early_ctx");
    let cases = [
        (KeyType::Rsa2048, "01", "rsa", "RSASSA-PSS", "SHA256"),
        (KeyType::EcP256, "02", "p256", "id-ecPublicKey", "SHA256"),
        (KeyType::Ed25519, "03", "ed25519", "ED25519", "none"),
    ];
    for (key_type, id, label, signature_type, digest) in cases {
        fx.generate_key(key_type, id, label);
        let uri = fx.private_key_uri(label);
        let cert = fx.token_certificate(&uri, id, &format!("{label}.crt"), "/CN=early", &[]);
        let run = fx.run_with_provider(&program, &[&uri, &cert]).success();
        let stdout = run.stdout();
        for wanted in [
            "protocol: TLSv1.3\n".to_owned(),
            format!("signature type: {signature_type}\n"),
            format!("signature digest: {digest}\n"),
        ] {
            assert!(
                stdout.contains(&wanted),
                "early_ctx output lacks {wanted:?}\n{}",
                run.report()
            );
        }
    }
    // Without the provider the same program cannot load the key: the handshake above needed it.
    let mut no_provider = Command::new(&program);
    no_provider
        .env("OPENSSL_CONF", "/dev/null")
        .args([fx.private_key_uri("p256"), fx.file("p256.crt")]);
    let output = no_provider.output().expect("run early_ctx");
    assert_eq!(
        output.status.code(),
        Some(1),
        "early_ctx without the provider"
    );
    let missing = fx
        .run_with_provider(
            &program,
            &[&fx.private_key_uri("no-such-key"), &fx.file("p256.crt")],
        )
        .clean_failure();
    missing.assert_provider_error(&["no object", "not found", "no match", "matches no"]);
}
