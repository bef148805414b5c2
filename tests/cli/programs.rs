//! Unmodified third-party programs with token keys (issue 4, item 4; DESIGN.md "PEM-URI key
//! files"): nginx and HAProxy serving HTTPS, a Python `ssl` server, and curl as a mutual-TLS
//! client, each given a PEM-URI key file (`-----BEGIN PKCS#11 PROVIDER URI-----`) where a private
//! key file belongs, on loopback, with a P-256 or RSA-2048 key generated on a fresh SoftHSM2 token.
//! The programs get nothing but `OPENSSL_CONF` (default + our provider), `SOFTHSM2_CONF` and the
//! provider's debug-log variable.
//!
//! Everything that judges them runs without our provider: the PEM-URI files are written by the
//! small DER/base64 encoder below, so the file format is checked independently of the provider's
//! own encoder; certificates are issued by a software CA for the public key that pkcs11-tool reads
//! from the token; the peers (curl, `openssl s_client`, `openssl s_server`) use the default
//! provider only. A peer that completed the handshake and verified the certificate has verified
//! a signature (TLS CertificateVerify / ServerKeyExchange) made with the token key, which exists
//! nowhere else; the served certificate's public key is compared with the token's.
//!
//! Negative cases: PEM-URI files naming a missing object or a public key, and garbled ones (bad
//! base64, wrong DER, wrong description) make `openssl pkey`, `openssl s_server` and nginx fail
//! with a clear message, never crash or start with some other key.
//!
//! Servers listen on a port found by binding port 0 (s_server and Python report the port they
//! got), readiness is polled with a deadline, and every server's whole process group is killed
//! when its guard drops. A missing program fails the test with an install hint, never skips it.

use std::env;
use std::fs::{self, File};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::common::pemfile::{
    PEM_URI_DESCRIPTION, PEM_URI_LABEL, TAG_SEQUENCE, base64, der_element, pem, pem_uri_der,
    pem_uri_file,
};
use crate::common::version::{libcrypto_soname, peer_signature_type, skip};
use crate::common::{Fixture, KeyType, Ran, provider_so, run_command};

/// How long a server may take to listen, or to fail.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a server gets to exit after SIGTERM before SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(3);
/// Attempts to start a server on a free port; another process may take the port in between.
const PORT_ATTEMPTS: usize = 3;

/// The programs driven here, with the packages that provide them.
const PROGRAMS: &[(&str, &str)] = &[
    (
        "nginx",
        "Debian: apt-get install nginx; Fedora: dnf install nginx",
    ),
    (
        "haproxy",
        "Debian: apt-get install haproxy; Fedora: dnf install haproxy",
    ),
    (
        "curl",
        "Debian: apt-get install curl; Fedora: dnf install curl",
    ),
    (
        "python3",
        "Debian: apt-get install python3; Fedora: dnf install python3",
    ),
];

/// A minimal HTTPS server: `python3 -c <this> CERT KEY PORT` loads the key with
/// `load_cert_chain`, listens on 127.0.0.1:PORT (0: any free port), prints the port it got and
/// answers every GET. The README shows the same script.
const PYTHON_HTTPS_SERVER: &str = r#"import http.server, ssl, sys
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(certfile=sys.argv[1], keyfile=sys.argv[2])
class Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"hello from python\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
server = http.server.HTTPServer(("127.0.0.1", int(sys.argv[3])), Hello)
server.socket = context.wrap_socket(server.socket, server_side=True)
print("listening on port", server.server_address[1], flush=True)
server.serve_forever()
"#;

// ---------------------------------------------------------------------------------------------
// Programs, environments, certificates
// ---------------------------------------------------------------------------------------------

/// The absolute path of `program`, searched in PATH and in the sbin directories a non-root PATH
/// often lacks (nginx and haproxy live in /usr/sbin); panics with an install hint if missing.
pub(crate) fn require_program(program: &str) -> PathBuf {
    let hint = PROGRAMS
        .iter()
        .find(|(name, _)| *name == program)
        .map_or("install it", |(_, hint)| hint);
    let path = env::var_os("PATH").unwrap_or_default();
    env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/local/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| panic!("`{program}` not found in PATH or /usr/sbin; {hint}"))
}

/// Whether `program` loads the libcrypto the provider under test was built against. A provider
/// must share the libcrypto of the program that loads it (its objects and the core's dispatch
/// tables are that library's); a program built against another soname (Debian's nginx,
/// HAProxy, curl and Python use libcrypto.so.3, while an OpenSSL 4.0 build of the provider
/// needs libcrypto.so.4) cannot use the provider. Such a part of a test is skipped, with the
/// reason recorded by `common::version::skip`.
fn shares_libcrypto(test: &str, program: &Path) -> bool {
    let provider = provider_so();
    let ours = libcrypto_soname(&provider);
    let theirs = libcrypto_soname(program);
    if ours == theirs {
        return true;
    }
    let name = |soname: Option<String>| soname.unwrap_or_else(|| "no libcrypto".to_owned());
    skip(
        test,
        &format!(
            "{} loads {}, the provider {} {}: a provider must use the libcrypto of the program \
             that loads it",
            program.display(),
            name(theirs),
            provider.display(),
            name(ours)
        ),
    );
    false
}

/// The shared library of Python's `ssl` module (`_ssl.__file__`), which is what links libcrypto,
/// or the interpreter itself when the module is built in.
fn python_ssl_module(python: &Path) -> PathBuf {
    let output = Command::new(python)
        .args(["-c", "import _ssl; print(_ssl.__file__)"])
        .output()
        .expect("run python3");
    let path = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    // A Python with `_ssl` built in has no such file: then the interpreter links libcrypto.
    if output.status.success() && !path.is_empty() {
        PathBuf::from(path)
    } else {
        python.to_path_buf()
    }
}

/// `program` with our provider and the fixture's token: the environment a user gives a server.
pub(crate) fn with_provider(fx: &Fixture, program: &Path) -> Command {
    // The fixture writes openssl.cnf on every provider run; this one also proves it loads.
    fx.openssl(&["list", "-providers"]).success();
    let mut command = Command::new(program);
    command
        .env("OPENSSL_CONF", fx.file("openssl.cnf"))
        .env("SOFTHSM2_CONF", fx.token().conf())
        .env(
            "PKCS11_PROVIDER_DEBUG",
            format!("file:{},level:2", fx.provider_log().display()),
        )
        .env_remove("PKCS11_PROVIDER_MODULE");
    command
}

/// `program` with OpenSSL's default provider only: the independent peer.
pub(crate) fn without_provider(program: &Path) -> Command {
    let mut command = Command::new(program);
    command
        .env("OPENSSL_CONF", "/dev/null")
        .env_remove("SOFTHSM2_CONF")
        .env_remove("PKCS11_PROVIDER_MODULE");
    command
}

pub(crate) fn run(fx: &Fixture, command: &mut Command) -> Ran {
    run_command(command, Path::new(&fx.file("")), Some(&fx.provider_log()))
}

/// Which end of a TLS connection a certificate is for.
#[derive(Clone, Copy)]
pub(crate) enum Role {
    Server,
    Client,
}

/// A software CA (default provider) that issues certificates for token keys. A proper CA
/// certificate (critical `basicConstraints` CA:TRUE, `keyUsage` keyCertSign, a subject key
/// identifier) and leaves that name it by authority key identifier: OpenSSL 3.5's X.509 checks
/// (curl: "invalid CA certificate") refuse a self-signed certificate without them as a CA.
pub(crate) struct Ca {
    pub(crate) cert: String,
    key: String,
}

impl Ca {
    pub(crate) fn new(fx: &Fixture) -> Ca {
        let cert = fx.file("ca.crt");
        let key = fx.file("ca.key");
        fx.software_openssl(&[
            "req",
            "-x509",
            "-nodes",
            "-days",
            "30",
            "-subj",
            "/CN=pkcs11-ossl test CA",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
            "-addext",
            "subjectKeyIdentifier=hash",
            "-keyout",
            &key,
            "-out",
            &cert,
        ])
        .success();
        Ca { cert, key }
    }

    /// A certificate for `public_key` (PEM) named `name`, valid for `localhost`/127.0.0.1 as
    /// a server, or as a TLS client.
    pub(crate) fn issue(&self, fx: &Fixture, public_key: &str, name: &str, role: Role) -> String {
        let (subject, extensions) = match role {
            Role::Server => (
                "/CN=localhost",
                "extendedKeyUsage = serverAuth\nsubjectAltName = DNS:localhost, IP:127.0.0.1\n",
            ),
            Role::Client => ("/CN=pkcs11-ossl client", "extendedKeyUsage = clientAuth\n"),
        };
        let extfile = fx.write_file(
            &format!("{name}.ext"),
            format!(
                "basicConstraints = critical, CA:FALSE\n\
                 keyUsage = critical, digitalSignature\n\
                 subjectKeyIdentifier = hash\n\
                 authorityKeyIdentifier = keyid:always\n{extensions}"
            ),
        );
        let cert = fx.file(&format!("{name}.crt"));
        fx.software_openssl(&[
            "x509",
            "-new",
            "-subj",
            subject,
            "-force_pubkey",
            public_key,
            "-CA",
            &self.cert,
            "-CAkey",
            &self.key,
            "-days",
            "30",
            "-extfile",
            &extfile,
            "-out",
            &cert,
        ])
        .success();
        cert
    }
}

/// A key generated on the token, its certificate and the PEM-URI file naming it.
pub(crate) struct TokenCredential {
    /// PEM-URI key file, written without the provider.
    pub(crate) key_file: String,
    /// Certificate issued by the fixture's CA for the token key.
    pub(crate) cert: String,
    /// The token's public key as pkcs11-tool reads it (PEM).
    pub(crate) public_key: String,
    pub(crate) key_type: KeyType,
}

/// Generates a `key_type` key labelled `name` on the token and issues its certificate; checks
/// that `openssl pkey` reads the PEM-URI file as the token key.
fn token_credential(
    fx: &Fixture,
    ca: &Ca,
    key_type: KeyType,
    name: &str,
    role: Role,
) -> TokenCredential {
    fx.generate_key(key_type, "01", name);
    let public_key = fx.export_pubkey("01");
    let cert = ca.issue(fx, &public_key, name, role);
    let key_file = fx.write_file(
        &format!("{name}.key.pem"),
        pem_uri_file(&fx.private_key_uri(name)),
    );
    let credential = TokenCredential {
        key_file,
        cert,
        public_key,
        key_type,
    };
    assert_key_file_is_token_key(fx, &credential);
    credential
}

/// `openssl pkey -in <PEM-URI file> -pubout` gives the token's public key.
fn assert_key_file_is_token_key(fx: &Fixture, credential: &TokenCredential) {
    let pubout = fx.file("key-file.pub.pem");
    let run = fx
        .openssl(&[
            "pkey",
            "-in",
            &credential.key_file,
            "-pubout",
            "-out",
            &pubout,
        ])
        .success();
    assert_eq!(
        fx.public_key_der(&pubout),
        fx.public_key_der(&credential.public_key),
        "the PEM-URI file does not load as the token key\n{}",
        run.report()
    );
}

// ---------------------------------------------------------------------------------------------
// Server processes
// ---------------------------------------------------------------------------------------------

/// A running server; dropping it kills its process group (nginx workers included).
pub(crate) struct Server {
    name: &'static str,
    child: Child,
    command: String,
    stdout: PathBuf,
    stderr: PathBuf,
    provider_log: PathBuf,
    /// The fixture directory, hidden from output before it is searched for words.
    dir: String,
}

/// How a server start ended.
pub(crate) enum Startup {
    Listening,
    Exited(ExitStatus),
}

impl Server {
    /// Starts `command` in its own process group, output to `<dir>/<name>.{stdout,stderr}`.
    pub(crate) fn start(fx: &Fixture, name: &'static str, mut command: Command) -> Server {
        let stdout = PathBuf::from(fx.file(&format!("{name}.stdout")));
        let stderr = PathBuf::from(fx.file(&format!("{name}.stderr")));
        let description = format!("{command:?}");
        command
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(File::create(&stdout).expect("create server stdout"))
            .stderr(File::create(&stderr).expect("create server stderr"));
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}\n{description}"));
        Server {
            name,
            child,
            command: description,
            stdout,
            stderr,
            provider_log: fx.provider_log(),
            dir: fx.file(""),
        }
    }

    /// Polls until `ready` holds or the server exits; panics after [`STARTUP_TIMEOUT`].
    fn wait(&mut self, mut ready: impl FnMut(&Server) -> bool) -> Startup {
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().expect("poll server") {
                return Startup::Exited(status);
            }
            if ready(self) {
                return Startup::Listening;
            }
            assert!(
                Instant::now() < deadline,
                "{} neither listens nor exits after {STARTUP_TIMEOUT:?}\n{}",
                self.name,
                self.report()
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until 127.0.0.1:`port` accepts connections.
    fn wait_listening(&mut self, port: u16) -> Startup {
        self.wait(|_| accepts(port))
    }

    /// Waits for a stdout line containing `marker` followed by the port (s_server, Python).
    pub(crate) fn wait_reported_port(&mut self, marker: &str) -> Option<u16> {
        let mut port = None;
        let startup = self.wait(|server| {
            let (stdout, stderr) = server.output();
            port = reported_port(&format!("{stdout}{stderr}"), marker);
            port.is_some()
        });
        match startup {
            Startup::Listening => port,
            Startup::Exited(_) => None,
        }
    }

    /// (stdout, stderr) so far.
    pub(crate) fn output(&self) -> (String, String) {
        let read =
            |path: &Path| String::from_utf8_lossy(&fs::read(path).unwrap_or_default()).into_owned();
        (read(&self.stdout), read(&self.stderr))
    }

    pub(crate) fn report(&self) -> String {
        let (stdout, stderr) = self.output();
        let log = fs::read_to_string(&self.provider_log).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        let tail = lines[lines.len().saturating_sub(30)..].join("\n");
        format!(
            "server {}: {}\nstdout:\n{stdout}\nstderr:\n{stderr}\nprovider log {} (tail):\n{tail}",
            self.name,
            self.command,
            self.provider_log.display()
        )
    }

    /// What is wrong with this start if the server must refuse its key: it must exit on its own
    /// with a non-zero code (no signal, no panic) and say why in terms of `words`.
    fn refusal_problem(&self, startup: Startup, words: &[&str]) -> Option<String> {
        let (stdout, stderr) = self.output();
        let problem = match startup {
            Startup::Listening => Some("started, but must refuse the key".to_owned()),
            Startup::Exited(status) => {
                // The provider's log too: see `rejects_key_file`.
                let log = fs::read_to_string(&self.provider_log).unwrap_or_default();
                let text = format!("{stderr}\n{stdout}\n{log}").replace(&self.dir, "<dir>/");
                refusal_problem(status.code(), &text, words)
            }
        };
        problem.map(|why| format!("{}: {why}\n{}", self.name, self.report()))
    }
}

/// What is wrong with a run that must fail cleanly (exit code `code`, output `text`) and explain
/// itself with one of `words` (case-insensitive).
fn refusal_problem(code: Option<i32>, text: &str, words: &[&str]) -> Option<String> {
    let text = text.to_lowercase();
    match code {
        Some(0) => Some("exit code 0, but it must fail".to_owned()),
        None => Some("killed by a signal (crash or timeout)".to_owned()),
        Some(_) if text.contains("panicked at") => Some("the provider panicked".to_owned()),
        Some(_) if !words.iter().any(|word| text.contains(&word.to_lowercase())) => {
            Some(format!("the error mentions none of {words:?}"))
        }
        Some(_) => None,
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // The child leads its own process group (process_group(0)), so its id names the group.
        let group = format!("-{}", self.child.id());
        let signal = |name: &str| {
            let _ = Command::new("kill")
                .args([name, "--", &group])
                .stderr(Stdio::null())
                .status();
        };
        signal("-TERM");
        let deadline = Instant::now() + STOP_TIMEOUT;
        while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(10));
        }
        // Workers that outlive their master, or a server that ignored SIGTERM.
        signal("-KILL");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether 127.0.0.1:`port` accepts a TCP connection now.
fn accepts(port: u16) -> bool {
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_ok()
}

/// A port that was free a moment ago (the kernel's pick for port 0).
fn free_port() -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind a free port");
    listener.local_addr().expect("local address").port()
}

/// The number after the last `marker` in `text` (`ACCEPT 127.0.0.1:PORT`, `listening on port N`).
fn reported_port(text: &str, marker: &str) -> Option<u16> {
    let line = text.lines().find(|line| line.contains(marker))?;
    let digits: String = line
        .rsplit(|c: char| !c.is_ascii_digit())
        .find(|part| !part.is_empty())?
        .to_owned();
    digits.parse().ok()
}

/// Starts a server on a free port (retrying when another process took it first) and waits for it
/// to listen; panics with the server's output if it exits instead.
pub(crate) fn start_listening(
    fx: &Fixture,
    name: &'static str,
    command: impl Fn(u16) -> Command,
) -> (Server, u16) {
    for _ in 0..PORT_ATTEMPTS {
        let port = free_port();
        let mut server = Server::start(fx, name, command(port));
        match server.wait_listening(port) {
            Startup::Listening => return (server, port),
            Startup::Exited(_) if server.output().1.contains("in use") => continue,
            Startup::Exited(status) => panic!("{name} exited ({status})\n{}", server.report()),
        }
    }
    panic!("{name}: no free port after {PORT_ATTEMPTS} attempts");
}

// ---------------------------------------------------------------------------------------------
// Checks made by peers without the provider
// ---------------------------------------------------------------------------------------------

/// What a TLS server on `port` must show a client that trusts only `ca`.
pub(crate) struct ServedKey<'a> {
    pub(crate) port: u16,
    pub(crate) ca: &'a Ca,
    pub(crate) credential: &'a TokenCredential,
    /// The HTTP response body the server sends.
    pub(crate) body: &'a str,
}

/// curl (no provider) gets `body` over a verified connection, and s_client (no provider) completes
/// TLS 1.3 and TLS 1.2 handshakes, verifies the certificate, which carries the token's public key,
/// and names the expected peer signature type.
fn assert_serves_with_token_key(fx: &Fixture, served: &ServedKey<'_>) {
    let url = format!("https://localhost:{}/", served.port);
    let got = run(
        fx,
        without_provider(&require_program("curl"))
            .args(["--silent", "--show-error", "--fail", "--max-time", "10"])
            .args(["--cacert", &served.ca.cert, &url]),
    )
    .success();
    assert_eq!(
        got.stdout(),
        served.body,
        "unexpected response\n{}",
        got.report()
    );

    let (tls13_signature, tls12_sigalgs, tls12_signature) = if served.credential.key_type.is_rsa() {
        // TLS 1.3 allows only PSS; in TLS 1.2 force PKCS#1 v1.5.
        ("RSA-PSS", "RSA+SHA256", "RSA")
    } else {
        ("ECDSA", "ECDSA+SHA256", "ECDSA")
    };
    // Both keys (RSA-2048, P-256) sign with SHA-256 here.
    assert_s_client_verifies(
        fx,
        served,
        &["-tls1_3"],
        &peer_signature_type(tls13_signature, Some("SHA256")),
    );
    assert_s_client_verifies(
        fx,
        served,
        &["-tls1_2", "-sigalgs", tls12_sigalgs],
        &peer_signature_type(tls12_signature, Some("SHA256")),
    );
}

pub(crate) fn assert_s_client_verifies(
    fx: &Fixture,
    served: &ServedKey<'_>,
    options: &[&str],
    signature: &str,
) {
    let connect = format!("127.0.0.1:{}", served.port);
    let mut args = vec!["s_client", "-connect", &connect, "-servername", "localhost"];
    args.extend(["-verify_hostname", "localhost", "-CAfile", &served.ca.cert]);
    args.extend(["-verify_return_error", "-showcerts"]);
    args.extend_from_slice(options);
    let shook = fx.software_openssl(&args).success();
    let stdout = shook.stdout();
    assert!(
        stdout.contains("Verify return code: 0 (ok)"),
        "the server certificate did not verify\n{}",
        shook.report()
    );
    assert!(
        stdout.contains(&format!("Peer signature type: {signature}\n")),
        "expected peer signature type {signature}\n{}",
        shook.report()
    );
    let served_cert = fx.write_file("served.crt", first_certificate(&stdout, &shook));
    let served_key = fx.file("served.pub.pem");
    fx.software_openssl(&[
        "x509",
        "-in",
        &served_cert,
        "-pubkey",
        "-noout",
        "-out",
        &served_key,
    ])
    .success();
    assert_eq!(
        fx.public_key_der(&served_key),
        fx.public_key_der(&served.credential.public_key),
        "the server's certificate does not carry the token key\n{}",
        shook.report()
    );
}

/// The first PEM certificate in `text`.
fn first_certificate(text: &str, ran: &Ran) -> String {
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    let start = text
        .find(BEGIN)
        .unwrap_or_else(|| panic!("no certificate in the output\n{}", ran.report()));
    let len = text[start..]
        .find(END)
        .unwrap_or_else(|| panic!("unterminated certificate\n{}", ran.report()));
    format!("{}\n", &text[start..start + len + END.len()])
}

// ---------------------------------------------------------------------------------------------
// The programs
// ---------------------------------------------------------------------------------------------

/// nginx's main config: a master (kept in the foreground by `-g 'daemon off;'`) with one worker,
/// everything under `dir`, `key` as `ssl_certificate_key`. nginx clears its workers' environment,
/// and a worker re-opens the token after fork, so `env SOFTHSM2_CONF;` is required (without it
/// every handshake fails); the other two are passed on for the debug log and for clarity.
fn nginx_config(dir: &str, port: u16, cert: &str, key: &str) -> String {
    format!(
        "master_process on;\n\
         worker_processes 1;\n\
         # Started as root, workers would run as nobody and could not open this test's token.\n\
         user root;\n\
         pid {dir}/nginx.pid;\n\
         error_log stderr info;\n\
         env OPENSSL_CONF;\n\
         env SOFTHSM2_CONF;\n\
         env PKCS11_PROVIDER_DEBUG;\n\
         events {{ worker_connections 64; }}\n\
         http {{\n\
         \x20   access_log off;\n\
         \x20   client_body_temp_path {dir}/body;\n\
         \x20   proxy_temp_path {dir}/proxy;\n\
         \x20   fastcgi_temp_path {dir}/fastcgi;\n\
         \x20   uwsgi_temp_path {dir}/uwsgi;\n\
         \x20   scgi_temp_path {dir}/scgi;\n\
         \x20   server {{\n\
         \x20       listen 127.0.0.1:{port} ssl;\n\
         \x20       # nginx before 1.23.4 leaves TLS 1.3 off by default.\n\
         \x20       ssl_protocols TLSv1.2 TLSv1.3;\n\
         \x20       ssl_certificate {cert};\n\
         \x20       ssl_certificate_key {key};\n\
         \x20       location / {{ return 200 \"hello from nginx\\n\"; }}\n\
         \x20   }}\n\
         }}\n"
    )
}

/// `nginx -p <dir> -c <conf> -e stderr -g 'daemon off;'` with our provider.
fn nginx_command(fx: &Fixture, port: u16, cert: &str, key: &str) -> Command {
    let dir = fx.file("nginx");
    fs::create_dir_all(&dir).expect("create nginx prefix");
    let conf = fx.write_file("nginx/nginx.conf", nginx_config(&dir, port, cert, key));
    let mut command = with_provider(fx, &require_program("nginx"));
    command.args(["-p", &dir, "-c", &conf, "-e", "stderr", "-g", "daemon off;"]);
    command
}

fn nginx_serves(name: &str, key_type: KeyType) {
    if !shares_libcrypto(name, &require_program("nginx")) {
        return;
    }
    let fx = Fixture::new(name);
    let ca = Ca::new(&fx);
    let credential = token_credential(&fx, &ca, key_type, "nginx", Role::Server);
    assert_nginx_serves(&fx, &ca, &credential);
}

/// Starts nginx with `credential` and checks it from curl and s_client.
fn assert_nginx_serves(fx: &Fixture, ca: &Ca, credential: &TokenCredential) {
    let (_server, port) = start_listening(fx, "nginx", |port| {
        nginx_command(fx, port, &credential.cert, &credential.key_file)
    });
    let served = ServedKey {
        port,
        ca,
        credential,
        body: "hello from nginx\n",
    };
    assert_serves_with_token_key(fx, &served);
}

/// The README's way to make a key file with the provider: `openssl pkey -in <uri> -out key.pem`
/// with `pkcs11-module-encode-provider-uri-to-pem = true` writes a PEM-URI file (checked by
/// `asn1parse` without the provider) that nginx serves with.
fn nginx_serves_provider_written_key_file(name: &str, key_type: KeyType) {
    let nginx = require_program("nginx");
    let mut fx = Fixture::new(name);
    let ca = Ca::new(&fx);
    let mut credential = token_credential(&fx, &ca, key_type, "nginx", Role::Server);
    fx.config_mut()
        .set("pkcs11-module-encode-provider-uri-to-pem", "true");
    let uri = fx.private_key_uri("nginx");
    let written = fx.file("written.key.pem");
    fx.openssl(&["pkey", "-in", &uri, "-out", &written])
        .success();
    let parsed = fx
        .software_openssl(&["asn1parse", "-in", &written])
        .success();
    let text = parsed.stdout();
    assert!(
        text.contains(&format!("VISIBLESTRING     :{PEM_URI_DESCRIPTION}"))
            && text.contains(&format!("UTF8STRING        :{uri}")),
        "the provider wrote no PEM-URI file naming {uri}\n{}",
        parsed.report()
    );
    credential.key_file = written;
    assert_key_file_is_token_key(&fx, &credential);
    if shares_libcrypto(&format!("{name} (nginx part)"), &nginx) {
        assert_nginx_serves(&fx, &ca, &credential);
    }
}

/// HAProxy serving a fixed response on `port` with `crt`; `key_next_to_cert` loads the key from
/// `<crt without extension>.key` (`ssl-load-extra-files key` + `ssl-load-extra-del-ext`).
fn haproxy_config(port: u16, crt: &str, key_next_to_cert: bool) -> String {
    let extra_files = if key_next_to_cert {
        "    ssl-load-extra-files key\n    ssl-load-extra-del-ext\n"
    } else {
        ""
    };
    format!(
        "global\n\
         {extra_files}\
         defaults\n\
         \x20   mode http\n\
         \x20   timeout connect 5s\n\
         \x20   timeout client 10s\n\
         \x20   timeout server 10s\n\
         frontend https\n\
         \x20   bind 127.0.0.1:{port} ssl crt {crt}\n\
         \x20   http-request return status 200 content-type text/plain string \"hello from haproxy\"\n"
    )
}

/// HAProxy with the certificate and the PEM-URI block in one `crt` file (P-256), or the key in
/// `server.key` next to `server.crt` (RSA).
fn haproxy_serves(name: &str, key_type: KeyType, key_next_to_cert: bool) {
    let haproxy = require_program("haproxy");
    if !shares_libcrypto(name, &haproxy) {
        return;
    }
    let fx = Fixture::new(name);
    let ca = Ca::new(&fx);
    let credential = token_credential(&fx, &ca, key_type, "haproxy", Role::Server);
    let cert = fs::read_to_string(&credential.cert).expect("read certificate");
    let key = fs::read_to_string(&credential.key_file).expect("read key file");
    let crt = if key_next_to_cert {
        fx.write_file("server.key", key);
        fx.write_file("server.crt", cert)
    } else {
        fx.write_file("server.pem", format!("{cert}{key}"))
    };
    let (_server, port) = start_listening(&fx, "haproxy", |port| {
        let conf = fx.write_file("haproxy.cfg", haproxy_config(port, &crt, key_next_to_cert));
        let mut command = with_provider(&fx, &haproxy);
        command.args(["-db", "-f", &conf]);
        command
    });
    let served = ServedKey {
        port,
        ca: &ca,
        credential: &credential,
        body: "hello from haproxy",
    };
    assert_serves_with_token_key(&fx, &served);
}

/// Python's `ssl` module: `load_cert_chain(certfile, keyfile=<PEM-URI file>)` in a small HTTPS
/// server; port 0 lets the kernel pick, the script prints the port it got.
fn python_serves(name: &str, key_type: KeyType) {
    let python = require_program("python3");
    // The `ssl` module is an extension module: its libcrypto is that of the `_ssl` library.
    if !shares_libcrypto(name, &python_ssl_module(&python)) {
        return;
    }
    let fx = Fixture::new(name);
    let ca = Ca::new(&fx);
    let credential = token_credential(&fx, &ca, key_type, "python", Role::Server);
    let mut command = with_provider(&fx, &python);
    command.args([
        "-c",
        PYTHON_HTTPS_SERVER,
        &credential.cert,
        &credential.key_file,
        "0",
    ]);
    let mut server = Server::start(&fx, "python", command);
    let port = server
        .wait_reported_port("listening on port")
        .unwrap_or_else(|| panic!("the Python server did not start\n{}", server.report()));
    let served = ServedKey {
        port,
        ca: &ca,
        credential: &credential,
        body: "hello from python\n",
    };
    assert_serves_with_token_key(&fx, &served);
}

/// curl with `--cert client.crt --key <PEM-URI file>` against `openssl s_server -Verify 1` (no
/// provider, software server key): the server requires and verifies the client certificate, and
/// its `-www` page, which curl receives, shows the certificate it verified.
fn curl_client_authenticates(name: &str, key_type: KeyType) {
    let curl = require_program("curl");
    if !shares_libcrypto(name, &curl) {
        return;
    }
    let fx = Fixture::new(name);
    let ca = Ca::new(&fx);
    let client = token_credential(&fx, &ca, key_type, "client", Role::Client);
    let server_key = fx.file("server.key");
    fx.software_openssl(&[
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-out",
        &server_key,
    ])
    .success();
    let server_public = fx.file("server.pub.pem");
    fx.software_openssl(&[
        "pkey",
        "-in",
        &server_key,
        "-pubout",
        "-out",
        &server_public,
    ])
    .success();
    let server_cert = ca.issue(&fx, &server_public, "server", Role::Server);
    let mut command = without_provider(Path::new("openssl"));
    command.args(["s_server", "-accept", "127.0.0.1:0", "-www"]);
    command.args([
        "-cert",
        &server_cert,
        "-key",
        &server_key,
        "-CAfile",
        &ca.cert,
    ]);
    command.args(["-Verify", "1", "-verify_return_error"]);
    let mut server = Server::start(&fx, "s_server", command);
    let port = server
        .wait_reported_port("ACCEPT")
        .unwrap_or_else(|| panic!("s_server did not start\n{}", server.report()));

    let expected_cert = fs::read_to_string(&client.cert).expect("read client certificate");
    let url = format!("https://localhost:{port}/");
    for versions in [
        ["--tlsv1.3", "--tls-max", "1.3"],
        ["--tlsv1.2", "--tls-max", "1.2"],
    ] {
        let got = run(
            &fx,
            with_provider(&fx, &curl)
                .args(["--silent", "--show-error", "--max-time", "10"])
                .args(versions)
                .args([
                    "--cacert",
                    &ca.cert,
                    "--cert",
                    &client.cert,
                    "--key",
                    &client.key_file,
                    &url,
                ]),
        )
        .success();
        let page = got.stdout();
        assert!(
            page.contains("Client certificate") && page.contains(expected_cert.trim()),
            "s_server did not get the client certificate\n{}\n{}",
            got.report(),
            server.report()
        );
    }
    let (stdout, stderr) = server.output();
    let log = format!("{stdout}{stderr}");
    assert!(
        log.contains("verify return:1") && !log.contains("verify error"),
        "s_server did not verify the client certificate\n{}",
        server.report()
    );
}

#[test]
fn nginx_p256() {
    nginx_serves("programs-nginx-p256", KeyType::EcP256);
}

#[test]
fn nginx_rsa2048() {
    nginx_serves("programs-nginx-rsa2048", KeyType::Rsa2048);
}

#[test]
fn nginx_p256_provider_written_key_file() {
    nginx_serves_provider_written_key_file("programs-nginx-encoder", KeyType::EcP256);
}

#[test]
fn haproxy_p256_combined_crt_file() {
    haproxy_serves("programs-haproxy-p256", KeyType::EcP256, false);
}

#[test]
fn haproxy_rsa2048_key_next_to_crt() {
    haproxy_serves("programs-haproxy-rsa2048", KeyType::Rsa2048, true);
}

#[test]
fn python_p256() {
    python_serves("programs-python-p256", KeyType::EcP256);
}

#[test]
fn python_rsa2048() {
    python_serves("programs-python-rsa2048", KeyType::Rsa2048);
}

#[test]
fn curl_client_p256() {
    curl_client_authenticates("programs-curl-p256", KeyType::EcP256);
}

#[test]
fn curl_client_rsa2048() {
    curl_client_authenticates("programs-curl-rsa2048", KeyType::Rsa2048);
}

// ---------------------------------------------------------------------------------------------
// Bad PEM-URI files
// ---------------------------------------------------------------------------------------------

/// A fixture whose token holds a working P-256 server key "key" (so a provider that fell back to
/// "any key" would start) and a bad key file made by `contents`: `openssl pkey`, `openssl s_server`
/// and nginx must each refuse it with an error that mentions one of `words`. All three are tried
/// and every problem is reported at once.
fn rejects_key_file(name: &str, contents: impl FnOnce(&Fixture) -> String, words: &[&str]) {
    require_program("nginx");
    let fx = Fixture::new(name);
    let ca = Ca::new(&fx);
    let good = token_credential(&fx, &ca, KeyType::EcP256, "key", Role::Server);
    let bad = fx.write_file("bad.key.pem", contents(&fx));
    // Fixture paths must not supply the words.
    let hide_paths = |text: String| text.replace(&fx.file(""), "<dir>/");
    let mut problems = Vec::new();

    let loaded = fx.openssl(&["pkey", "-in", &bad, "-pubout"]);
    let code = if loaded.timed_out {
        None
    } else {
        loaded.output.status.code()
    };
    // OpenSSL 3.0's file: store (the openssl commands) decodes a key file in two passes and
    // drops the errors of the second, where a public key is found to be no private key; then
    // the reason is only in the provider's log, which is searched too.
    let provider_log = fs::read_to_string(fx.provider_log()).unwrap_or_default();
    let said = format!("{}\n{provider_log}", loaded.stderr());
    if let Some(why) = refusal_problem(code, &hide_paths(said), words) {
        problems.push(format!("openssl pkey: {why}\n{}", loaded.report()));
    }

    let mut command = with_provider(&fx, Path::new("openssl"));
    command.args(["s_server", "-accept", "127.0.0.1:0", "-www"]);
    command.args(["-cert", &good.cert, "-key", &bad]);
    let mut server = Server::start(&fx, "s_server", command);
    let startup = server.wait(|server| {
        let (stdout, stderr) = server.output();
        reported_port(&format!("{stdout}{stderr}"), "ACCEPT").is_some()
    });
    problems.extend(server.refusal_problem(startup, words));
    drop(server);

    if !shares_libcrypto(&format!("{name} (nginx part)"), &require_program("nginx")) {
        assert!(problems.is_empty(), "{}", problems.join("\n\n"));
        return;
    }
    let port = free_port();
    let mut nginx = Server::start(&fx, "nginx", nginx_command(&fx, port, &good.cert, &bad));
    let startup = nginx.wait_listening(port);
    problems.extend(nginx.refusal_problem(startup, words));
    let nginx_said = hide_paths(nginx.output().1);
    if !nginx_said.contains("cannot load certificate key") {
        problems.push(format!(
            "nginx does not say which key it could not load\n{}",
            nginx.report()
        ));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
}

/// stderr when the URI in the file matches no object.
const NO_OBJECT_WORDS: &[&str] = &["no object", "no key", "not found", "no match", "matches no"];
/// stderr for a file that is not a valid PEM-URI file (not OpenSSL's generic "unsupported", which
/// says nothing about the file).
const GARBLED_WORDS: &[&str] = &["malformed", "invalid", "garbled", "not a pem-uri"];
/// stderr for a PEM-URI file with an unknown description string.
const DESCRIPTION_WORDS: &[&str] = &["description", "malformed", "unknown"];
/// stderr when the URI names a public key where a private key is needed (not just "private key",
/// which OpenSSL's own messages contain).
const NOT_PRIVATE_WORDS: &[&str] = &[
    "private key is needed",
    "names a public key",
    "not a private key",
];

#[test]
fn bad_key_file_missing_object() {
    rejects_key_file(
        "programs-bad-missing-object",
        |fx| pem_uri_file(&fx.private_key_uri("no-such-key")),
        NO_OBJECT_WORDS,
    );
}

#[test]
fn bad_key_file_base64() {
    rejects_key_file(
        "programs-bad-base64",
        |fx| {
            let good = pem_uri_file(&fx.private_key_uri("key"));
            let mut lines: Vec<String> = good.lines().map(str::to_owned).collect();
            // '*' and '!' are outside the base64 alphabet.
            lines[1].replace_range(8..11, "*!*");
            lines.join("\n") + "\n"
        },
        GARBLED_WORDS,
    );
}

#[test]
fn bad_key_file_wrong_der() {
    rejects_key_file(
        "programs-bad-der",
        |_| {
            // A valid DER INTEGER inside the SEQUENCE instead of the two strings.
            pem(
                PEM_URI_LABEL,
                &der_element(TAG_SEQUENCE, &der_element(0x02, &[0x05])),
            )
        },
        GARBLED_WORDS,
    );
}

#[test]
fn bad_key_file_truncated_der() {
    rejects_key_file(
        "programs-bad-truncated",
        |fx| {
            let der = pem_uri_der(PEM_URI_DESCRIPTION, &fx.private_key_uri("key"));
            pem(PEM_URI_LABEL, &der[..der.len() - 5])
        },
        GARBLED_WORDS,
    );
}

#[test]
fn bad_key_file_wrong_description() {
    rejects_key_file(
        "programs-bad-desc",
        |fx| {
            let der = pem_uri_der("PKCS#11 Provider URI v9.9", &fx.private_key_uri("key"));
            pem(PEM_URI_LABEL, &der)
        },
        DESCRIPTION_WORDS,
    );
}

#[test]
fn bad_key_file_names_public_key() {
    rejects_key_file(
        "programs-bad-public-key",
        |fx| pem_uri_file(&fx.uri("object=key;type=public")),
        NOT_PRIVATE_WORDS,
    );
}

/// `openssl asn1parse` (no provider) reads our file as SEQUENCE { VISIBLESTRING, UTF8STRING }
/// with the expected values, for a short URI and one longer than 255 bytes.
#[test]
fn encoder_output_parses_as_pem_uri_structure() {
    let fx = Fixture::new("programs-encoder-asn1parse");
    let long_label = "x".repeat(300);
    for uri in [fx.private_key_uri("key"), fx.private_key_uri(&long_label)] {
        let file = fx.write_file("asn1.pem", pem_uri_file(&uri));
        let parsed = fx.software_openssl(&["asn1parse", "-in", &file]).success();
        let lines: Vec<String> = parsed.stdout().lines().map(str::to_owned).collect();
        assert_eq!(lines.len(), 3, "{}", parsed.report());
        assert!(lines[0].contains("cons: SEQUENCE"), "{}", parsed.report());
        assert!(
            lines[1].contains(&format!("VISIBLESTRING     :{PEM_URI_DESCRIPTION}")),
            "{}",
            parsed.report()
        );
        assert!(
            lines[2].contains(&format!("UTF8STRING        :{uri}")),
            "{}",
            parsed.report()
        );
    }
}

/// The README's "Use with nginx / HAProxy / curl / Python" section shows what these tests run:
/// the Python server line for line, and the nginx and HAProxy settings they depend on.
#[test]
fn readme_shows_the_tested_configurations() {
    let readme = fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("read README.md");
    let readme_lines: Vec<&str> = readme.lines().map(str::trim).collect();
    let mut missing = Vec::new();
    for script in [PYTHON_HTTPS_SERVER] {
        for line in script.lines().map(str::trim).filter(|l| !l.is_empty()) {
            if !readme_lines.contains(&line) {
                missing.push(line.to_owned());
            }
        }
    }
    for setting in [
        "env OPENSSL_CONF;",
        "env SOFTHSM2_CONF;",
        "ssl_protocols TLSv1.2 TLSv1.3;",
        "ssl_certificate_key",
        "ssl-load-extra-files key",
        "ssl-load-extra-del-ext",
        "bind :443 ssl crt",
        "curl --cert client.crt --key",
        "pkcs11-module-encode-provider-uri-to-pem = true",
    ] {
        if !readme.contains(setting) {
            missing.push(setting.to_owned());
        }
    }
    assert!(missing.is_empty(), "README.md lacks: {missing:#?}");
}

#[test]
fn base64_rfc4648_vectors() {
    let vectors = [
        ("", ""),
        ("f", "Zg=="),
        ("fo", "Zm8="),
        ("foo", "Zm9v"),
        ("foob", "Zm9vYg=="),
        ("fooba", "Zm9vYmE="),
        ("foobar", "Zm9vYmFy"),
    ];
    for (input, expected) in vectors {
        assert_eq!(base64(input.as_bytes()), expected, "base64({input:?})");
    }
}

#[test]
fn der_lengths_short_and_long_form() {
    assert_eq!(der_element(0x04, &[]), [0x04, 0x00]);
    assert_eq!(der_element(0x04, &[7; 127])[..2], [0x04, 0x7f]);
    assert_eq!(der_element(0x04, &[7; 128])[..3], [0x04, 0x81, 0x80]);
    assert_eq!(der_element(0x04, &[7; 300])[..4], [0x04, 0x82, 0x01, 0x2c]);
}
