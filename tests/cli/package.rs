//! Installing pkcs11-ossl (issue 13): the Debian package from `cargo deb` and
//! `scripts/install.sh --prefix`. Each installed provider is loaded by name only — an
//! openssl.cnf whose `[pkcs11_sect]` has no `module =` line, so OpenSSL must find `pkcs11.so`
//! in its modules directory — and signs with a SoftHSM2 key; the signature is verified with
//! the public key pkcs11-tool reads from the token.
//!
//! The package test installs system-wide, so it is `#[ignore]`d and run by scripts/test.sh
//! (`cargo test --test provider package_deb -- --ignored`, with `P11RS_DEB` naming the .deb).
//! It needs root and dpkg: elsewhere it says why it is skipped, except with `CI=true`, where
//! it fails instead.

use std::env;
use std::ffi::OsStr;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use crate::common::{Fixture, KeyType, Ran, SignatureCheck, provider_so, run_command};

/// The Debian package's name.
const PACKAGE: &str = "pkcs11-ossl";

/// An openssl.cnf that loads the provider by its name `pkcs11`, without a `module` line.
fn name_only_config(fx: &Fixture) -> String {
    let text = format!(
        "openssl_conf = openssl_init\n\n[openssl_init]\nproviders = provider_sect\n\n\
         [provider_sect]\ndefault = default_sect\npkcs11 = pkcs11_sect\n\n\
         [default_sect]\nactivate = 1\n\n[pkcs11_sect]\npkcs11-module-path = {}\n\
         pkcs11-module-token-pin = file:{}\nactivate = 1\n",
        fx.token().module().display(),
        fx.file("pin.txt")
    );
    let path = fx.write_file("name-only.cnf", text);
    // doctor checks the PIN file's mode; the fixture writes it with the umask's 0644.
    fs::set_permissions(fx.file("pin.txt"), fs::Permissions::from_mode(0o600))
        .expect("chmod pin.txt");
    path
}

/// Runs `program` with `config`, the fixture's token, and OpenSSL's modules directory set to
/// `modules` (`None`: OpenSSL's built-in one).
fn run_with(
    fx: &Fixture,
    config: &str,
    modules: Option<&Path>,
    program: &str,
    args: &[&str],
) -> Ran {
    let mut command = Command::new(program);
    command
        .args(args)
        .env("OPENSSL_CONF", config)
        .env("SOFTHSM2_CONF", fx.token().conf())
        .env(
            "PKCS11_PROVIDER_DEBUG",
            format!("file:{},level:2", fx.provider_log().display()),
        )
        .env_remove("PKCS11_PROVIDER_MODULE");
    match modules {
        Some(dir) => command.env("OPENSSL_MODULES", dir),
        None => command.env_remove("OPENSSL_MODULES"),
    };
    run_command(
        &mut command,
        Path::new(&fx.file("")),
        Some(&fx.provider_log()),
    )
}

/// OpenSSL's built-in modules directory (`openssl version -m`).
fn system_modules_dir() -> PathBuf {
    let output = Command::new("openssl")
        .args(["version", "-m"])
        .env("OPENSSL_CONF", "/dev/null")
        .output()
        .expect("run openssl version -m");
    let text = String::from_utf8_lossy(&output.stdout);
    let dir = text
        .split('"')
        .nth(1)
        .unwrap_or_else(|| panic!("cannot read MODULESDIR from {text:?}"));
    PathBuf::from(dir)
}

/// With `config` (name only): the provider is listed as active, a key signs, and the
/// signature verifies with the token's public key.
fn assert_loads_by_name_and_signs(fx: &Fixture, config: &str, modules: Option<&Path>) {
    let listed = run_with(fx, config, modules, "openssl", &["list", "-providers"]).success();
    assert!(
        listed.stdout().contains("pkcs11-ossl") && listed.stdout().contains("status: active"),
        "the provider is not loaded by name\n{}",
        listed.report()
    );
    let by_option = run_with(
        fx,
        "/dev/null",
        modules,
        "openssl",
        &["list", "-providers", "-provider", "pkcs11"],
    )
    .success();
    assert!(
        by_option.stdout().contains("pkcs11-ossl"),
        "{}",
        by_option.report()
    );
    let uri = fx.private_key_uri("key");
    let message = fx.message("message.txt");
    let signature = fx.file("message.sig");
    let signed = run_with(
        fx,
        config,
        modules,
        "openssl",
        &[
            "dgst", "-sha256", "-sign", &uri, "-out", &signature, &message,
        ],
    )
    .success();
    let public_key = fx.export_pubkey("01");
    let check = SignatureCheck::new(&public_key, &message, &signature, Some("sha256"));
    fx.assert_valid_signature(&check, &signed);
}

/// `scripts/install.sh --prefix DIR` puts every file under DIR; with `OPENSSL_MODULES` set
/// to DIR/lib/ossl-modules, OpenSSL loads the provider by name and it signs; the installed
/// helper runs and its `doctor` passes on that configuration; the installed man pages render.
#[test]
fn install_script_with_prefix_installs_a_working_provider() {
    let fx = Fixture::new("package-install-prefix");
    fx.generate_key(KeyType::EcP256, "01", "key");
    // The script takes the two build outputs from one directory.
    let build = PathBuf::from(fx.file("build"));
    fs::create_dir_all(&build).expect("create build directory");
    fs::copy(provider_so(), build.join("libpkcs11_ossl.so")).expect("copy the provider");
    fs::copy(env!("CARGO_BIN_EXE_pkcs11-ossl"), build.join("pkcs11-ossl"))
        .expect("copy the helper");
    let prefix = PathBuf::from(fx.file("prefix"));
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/install.sh");
    let mut install = Command::new("bash");
    install
        .arg(&script)
        .arg("--prefix")
        .arg(&prefix)
        .arg("--build-dir")
        .arg(&build);
    let installed = run_command(&mut install, Path::new(&fx.file("")), None).success();
    let modules = prefix.join("lib/ossl-modules");
    for (file, mode) in [
        ("lib/ossl-modules/pkcs11.so", 0o644),
        ("bin/pkcs11-ossl", 0o755),
        ("share/man/man1/pkcs11-ossl.1", 0o644),
        ("share/man/man7/pkcs11-ossl.7", 0o644),
        ("share/doc/pkcs11-ossl/openssl.cnf.example", 0o644),
    ] {
        let path = prefix.join(file);
        let metadata = fs::metadata(&path).unwrap_or_else(|e| {
            panic!(
                "{} not installed ({e})\n{}",
                path.display(),
                installed.report()
            )
        });
        assert_eq!(
            metadata.permissions().mode() & 0o777,
            mode,
            "{}",
            path.display()
        );
        assert!(
            installed.stdout().contains(&path.display().to_string()),
            "{}",
            installed.report()
        );
    }
    let config = name_only_config(&fx);
    assert_loads_by_name_and_signs(&fx, &config, Some(&modules));
    // Without OPENSSL_MODULES the same file finds no provider, unless one is installed
    // system-wide (then this part proves nothing and is left out).
    if !system_modules_dir().join("pkcs11.so").exists() {
        let missing = run_with(&fx, &config, None, "openssl", &["list", "-providers"]);
        assert!(
            !missing.stdout().contains("pkcs11-ossl"),
            "{}",
            missing.report()
        );
    }
    let helper = prefix.join("bin/pkcs11-ossl");
    let helper = helper.to_str().expect("UTF-8 path");
    let version = run_with(&fx, &config, Some(&modules), helper, &["--version"]).success();
    assert!(
        version.stdout().starts_with("pkcs11-ossl "),
        "{}",
        version.report()
    );
    let doctor = run_with(
        &fx,
        &config,
        Some(&modules),
        helper,
        &["doctor", &fx.private_key_uri("key")],
    )
    .success();
    let expected = format!(
        "ok    provider library: {}/pkcs11.so (no module line",
        modules.display()
    );
    assert!(doctor.stdout().contains(&expected), "{}", doctor.report());
    for page in [
        "share/man/man1/pkcs11-ossl.1",
        "share/man/man7/pkcs11-ossl.7",
    ] {
        let mut man = Command::new("man");
        man.args(["-P", "cat", "-l"])
            .arg(prefix.join(page))
            .env("MANWIDTH", "80");
        let shown = run_command(&mut man, Path::new(&fx.file("")), None).success();
        assert!(shown.stdout().contains("pkcs11"), "{}", shown.report());
    }
}

/// True when this process runs as root.
fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn have(program: &str) -> bool {
    env::var_os("PATH")
        .is_some_and(|path| env::split_paths(&path).any(|d| d.join(program).is_file()))
}

fn package_installed() -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", PACKAGE])
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout) == "install ok installed")
}

/// How long `dpkg` waits for another package manager (apt-get in another shell) to let go of
/// its lock.
const DPKG_LOCK_WAIT: Duration = Duration::from_secs(300);

/// Runs `dpkg ARGS` in `dir`, again while another process holds the dpkg lock.
fn dpkg(dir: &Path, args: &[&OsStr]) -> Ran {
    let deadline = Instant::now() + DPKG_LOCK_WAIT;
    loop {
        let mut command = Command::new("dpkg");
        command.args(args);
        let ran = run_command(&mut command, dir, None);
        let locked = !ran.output.status.success() && ran.stderr().contains("lock");
        if !locked || Instant::now() > deadline {
            return ran;
        }
        thread::sleep(Duration::from_secs(2));
    }
}

/// Runs `dpkg -r` when dropped, so a failed check does not leave the package installed.
struct RemoveOnDrop {
    armed: bool,
}

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        if self.armed {
            let _ = dpkg(Path::new("/"), &[OsStr::new("-r"), OsStr::new(PACKAGE)]);
        }
    }
}

/// Whether the package test can run here; `Err` says why not. With `CI=true` a reason to
/// skip is a failure.
fn package_test_possible() -> Result<PathBuf, String> {
    if !have("dpkg") || !have("dpkg-query") {
        return Err("dpkg is not installed (not a Debian system)".into());
    }
    if !is_root() {
        return Err(
            "installing a .deb needs root (run scripts/test.sh as root, as CI does)".into(),
        );
    }
    if package_installed() && env::var("CI").as_deref() != Ok("true") {
        return Err(format!(
            "{PACKAGE} is installed on this machine; the test would replace and remove it"
        ));
    }
    let deb = env::var_os("P11RS_DEB")
        .map(PathBuf::from)
        .ok_or("P11RS_DEB does not name the .deb (scripts/test.sh builds it with cargo deb)")?;
    deb.canonicalize()
        .map_err(|e| format!("P11RS_DEB={}: {e}", deb.display()))
}

/// The .deb installs with `dpkg -i`: the provider as `pkcs11.so` in OpenSSL's modules
/// directory, the helper, both man pages and the example configuration; OpenSSL loads the
/// provider by name only and it signs with a SoftHSM2 key; the installed helper's `doctor`
/// passes; `dpkg -r` removes every file again.
#[test]
#[ignore = "installs a .deb system-wide; scripts/test.sh runs it (root, P11RS_DEB)"]
fn package_deb_installs_loads_by_name_signs_and_removes_cleanly() {
    let deb = match package_test_possible() {
        Ok(deb) => deb,
        Err(why) if env::var("CI").as_deref() == Ok("true") => {
            panic!("CI=true: the package test must run, but {why}")
        }
        Err(why) => {
            eprintln!("SKIPPED package_deb test: {why}; CI=true makes this a failure");
            return;
        }
    };
    let fx = Fixture::new("package-deb");
    fx.generate_key(KeyType::EcP256, "01", "key");
    let dir = Path::new(&fx.file("")).to_path_buf();
    let mut guard = RemoveOnDrop { armed: true };
    dpkg(&dir, &[OsStr::new("-i"), deb.as_os_str()]).success();
    assert!(
        package_installed(),
        "dpkg -i did not leave {PACKAGE} installed"
    );

    let mut list = Command::new("dpkg");
    list.args(["-L", PACKAGE]);
    let listed = run_command(&mut list, &dir, None).success();
    let files: Vec<PathBuf> = listed
        .stdout()
        .lines()
        .map(PathBuf::from)
        .filter(|path| path.is_file())
        .collect();
    let provider = system_modules_dir().join("pkcs11.so");
    for expected in [
        provider.clone(),
        PathBuf::from("/usr/bin/pkcs11-ossl"),
        PathBuf::from("/usr/share/man/man1/pkcs11-ossl.1.gz"),
        PathBuf::from("/usr/share/man/man7/pkcs11-ossl.7.gz"),
        PathBuf::from("/usr/share/doc/pkcs11-ossl/openssl.cnf.example"),
    ] {
        assert!(
            files.contains(&expected),
            "{} is not installed\n{}",
            expected.display(),
            listed.report()
        );
    }

    let config = name_only_config(&fx);
    assert_loads_by_name_and_signs(&fx, &config, None);
    let doctor = run_with(
        &fx,
        &config,
        None,
        "/usr/bin/pkcs11-ossl",
        &["doctor", &fx.private_key_uri("key")],
    )
    .success();
    let expected = format!(
        "ok    provider library: {} (no module line",
        provider.display()
    );
    assert!(doctor.stdout().contains(&expected), "{}", doctor.report());
    let mut man = Command::new("man");
    man.args(["-P", "cat", "7", "pkcs11-ossl"])
        .env("MANWIDTH", "80");
    let page = run_command(&mut man, &dir, None).success();
    assert!(
        page.stdout().contains("CONFIGURATION KEYS"),
        "{}",
        page.report()
    );

    guard.armed = false;
    dpkg(&dir, &[OsStr::new("-r"), OsStr::new(PACKAGE)]).success();
    assert!(
        !package_installed(),
        "{PACKAGE} is still installed after dpkg -r"
    );
    let left: Vec<&PathBuf> = files.iter().filter(|path| path.exists()).collect();
    assert!(left.is_empty(), "dpkg -r left files behind: {left:?}");
    let gone = run_with(
        &fx,
        "/dev/null",
        None,
        "openssl",
        &["list", "-providers", "-provider", "pkcs11"],
    );
    assert!(!gone.stdout().contains("pkcs11-ossl"), "{}", gone.report());
}
