//! Unmodified servers with `SSL_MODE_ASYNC` on a 20 ms token: HAProxy 2.6 with one thread, with
//! and without `ssl-mode-async`, 32 clients at once (`tests/programs/tls_clients.c`, default
//! provider only); `openssl s_server -async` with `openssl s_client` (no provider) as the peer.

use std::fs;
use std::path::Path;

use super::super::programs::{
    ServedKey, Server, assert_s_client_verifies, require_program, run, start_listening,
    without_provider,
};
use super::{AsyncFixture, Figures, SLOW_SIGN};

/// HAProxy with one thread, the certificate and the PEM-URI block in one `crt` file, a fixed
/// HTTP response; `ssl-mode-async` in `global` when `async_mode`.
fn haproxy_config(port: u16, crt: &str, async_mode: bool) -> String {
    let async_line = if async_mode {
        "    ssl-mode-async\n"
    } else {
        ""
    };
    format!(
        "global\n\
         \x20   nbthread 1\n\
         {async_line}\
         \x20   maxconn 1024\n\
         defaults\n\
         \x20   mode http\n\
         \x20   timeout connect 5s\n\
         \x20   timeout client 30s\n\
         \x20   timeout server 30s\n\
         frontend https\n\
         \x20   bind 127.0.0.1:{port} ssl crt {crt}\n\
         \x20   http-request return status 200 content-type text/plain string \"hello from haproxy\"\n"
    )
}

/// HAProxy on a 20 ms token; 32 clients (tls_clients.c, default provider only) connect at
/// once, verify the certificate and get HTTP 200. Returns the fault module's `C_Sign.peak`
/// after checking that every handshake made exactly one `C_Sign`.
fn haproxy_32_clients(name: &str, async_mode: bool) -> u64 {
    let haproxy = require_program("haproxy");
    let mut afx = AsyncFixture::new(name);
    let clients = afx.ffx.fx.compile_program("tls_clients");
    let fx = &afx.ffx.fx;
    let cert = fs::read_to_string(&afx.credential.cert).expect("read certificate");
    let key = fs::read_to_string(&afx.credential.key_file).expect("read key file");
    let crt = fx.write_file("server.pem", format!("{cert}{key}"));
    let mut vars = vec![("FAULT_DELAY_US", SLOW_SIGN)];
    if async_mode {
        // Each C_Sign waits until 2 are in progress: a peak of 2 does not depend on timing.
        vars.push(("FAULT_GATHER", "C_Sign:2:10000000"));
    }
    let counts = afx.ffx.arm(&vars);
    let fx = &afx.ffx.fx;
    let (server, port) = start_listening(fx, "haproxy", |port| {
        let conf = fx.write_file("haproxy.cfg", haproxy_config(port, &crt, async_mode));
        let mut command = fx.provider_command(&haproxy.display().to_string());
        command.args(["-db", "-f", &conf]);
        command
    });
    let ran = run(
        fx,
        without_provider(Path::new(&clients)).args([
            "-n",
            "32",
            "-g",
            &port.to_string(),
            &afx.ca.cert,
        ]),
    );
    assert!(
        ran.output.status.success() && Figures::of(&ran).get("ok") == 32,
        "not all 32 clients got a verified handshake and HTTP 200\n{}\n{}",
        ran.report(),
        server.report()
    );
    drop(server);
    assert_eq!(
        counts.of("C_Sign"),
        32,
        "one C_Sign per handshake\ncounts:\n{}",
        counts.text()
    );
    counts.of("C_Sign.peak")
}

/// HAProxy 2.6, `nbthread 1` and `ssl-mode-async`: 32 clients at once on a 20 ms token all
/// succeed, and the token signs for several of them at the same time.
#[test]
fn haproxy_ssl_mode_async_signs_concurrently() {
    let peak = haproxy_32_clients("async-haproxy", true);
    println!("HAProxy ssl-mode-async: C_Sign.peak {peak}");
    assert!(
        peak > 1,
        "C_Sign.peak {peak}: the signatures did not overlap"
    );
}

/// The same without `ssl-mode-async`: all succeed, one signature at a time.
#[test]
fn haproxy_without_async_signs_one_at_a_time() {
    let peak = haproxy_32_clients("async-haproxy-off", false);
    assert_eq!(peak, 1, "C_Sign.peak without ssl-mode-async");
}

/// `openssl s_server -async` with the token key on a 20 ms token: `openssl s_client` without
/// the provider completes TLS 1.3 and TLS 1.2 handshakes, verifies the certificate (the token's
/// public key) and sees an ECDSA signature; the provider started its asynchronous workers, so
/// the signatures were made inside s_server's ASYNC jobs.
#[test]
fn openssl_s_server_async_serves() {
    let mut afx = AsyncFixture::new("async-s-server");
    let counts = afx.ffx.arm(&[("FAULT_DELAY_US", SLOW_SIGN)]);
    let fx = &afx.ffx.fx;
    let mut command = fx.provider_command("openssl");
    command.args(["s_server", "-async", "-accept", "127.0.0.1:0", "-www"]);
    command.args(["-cert", &afx.credential.cert, "-key", &afx.ffx.uri()]);
    let mut server = Server::start(fx, "s_server", command);
    let port = server
        .wait_reported_port("ACCEPT")
        .unwrap_or_else(|| panic!("s_server -async did not start\n{}", server.report()));
    let served = ServedKey {
        port,
        ca: &afx.ca,
        credential: &afx.credential,
        body: "",
    };
    assert_s_client_verifies(fx, &served, &["-tls1_3"], "ECDSA");
    assert_s_client_verifies(
        fx,
        &served,
        &["-tls1_2", "-sigalgs", "ECDSA+SHA256"],
        "ECDSA",
    );
    drop(server);
    let log = fs::read_to_string(fx.provider_log()).unwrap_or_default();
    assert!(
        log.contains("asynchronous signing:"),
        "the provider never started its asynchronous workers: s_server -async signed \
         synchronously\nprovider log: {}",
        fx.provider_log().display()
    );
    assert_eq!(counts.of("C_Sign"), 2, "{}", counts.text());
}

/// The README's "Slow and network tokens" shows what these tests run: HAProxy's settings, the
/// s_server option, the configuration keys, and the parameter and metric names the metrics test
/// reads.
#[test]
fn readme_shows_the_tested_async_setup() {
    let readme = fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("read README.md");
    let section = readme
        .split_once("## Slow and network tokens")
        .map(|(_, rest)| rest.split("\n## ").next().unwrap_or_default())
        .expect("README.md has no section \"Slow and network tokens\"");
    let missing: Vec<&str> = [
        "nbthread 1",
        "ssl-mode-async",
        "bind :443 ssl crt",
        "openssl s_server -async",
        "SSL_MODE_ASYNC",
        "SSL_get_all_async_fds",
        "pkcs11-module-async",
        "pkcs11-module-async-workers",
        "pkcs11-module-async-queue",
        "pkcs11-module-metrics-file",
        "pkcs11-module-metrics-interval",
        "%p",
        "examples/metrics.c",
        "pkcs11-metrics",
        "pkcs11-sign-ok",
        "pkcs11-sign-error",
        "pkcs11-sign-in-flight",
        "pkcs11-sign-queued",
        "offloaded_private_key_sign_duration",
        "offloaded_private_key_sign_in_flight",
        "offloaded_private_key_sign_queued",
        "ecdsa-p256",
        "scripts/bench-async.sh",
    ]
    .into_iter()
    .filter(|needle| !section.contains(needle))
    .collect();
    assert!(missing.is_empty(), "README's section lacks: {missing:#?}");
}
