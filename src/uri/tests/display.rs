//! `Display` round trips, and `is_token_only`, `pin_source_path` and the `type` strings.

use super::*;

#[test]
fn round_trip_of_examples() {
    for input in [
        "pkcs11:",
        "pkcs11:object=my-pubkey;type=public",
        "pkcs11:token=a;manufacturer=b;model=c;serial=d;slot-description=e;\
         slot-manufacturer=f;slot-id=42;library-description=g;library-manufacturer=h;\
         library-version=2.40;object=i;type=data;id=%01\
         ?pin-source=file:///run/pin&module-name=softhsm2&module-path=/usr/lib/x.so",
        "pkcs11:token=The%20Software%20PKCS%2311%20Softtoken;id=%69%95?pin-value=p",
        "pkcs11:object=%E2%82%AC%20euro%3B%3F%2F%25",
    ] {
        assert_round_trip(&parse(input));
    }
}

#[test]
fn round_trip_of_every_byte() {
    // Every non-NUL character of the first 256 code points, in a label and a query value.
    let text: String = (1u32..256).filter_map(char::from_u32).collect();
    let uri = Pkcs11Uri {
        token: Some(text.clone()),
        object: Some(text.clone()),
        serial: some("\u{1F511} key"),
        id: Some((0u8..=255).collect()),
        slot_id: Some(u64::MAX),
        library_version: Some((0, 255)),
        object_type: Some(ObjectType::SecretKey),
        pin_source: Some(text.clone()),
        module_path: Some(text),
        pin_value: Some(Zeroizing::new("not-printed".to_owned())),
        ..Pkcs11Uri::default()
    };
    let printed = uri.to_string();
    assert!(!printed.contains("not-printed"));
    assert!(printed.is_ascii());
    assert_round_trip(&uri);
}

#[test]
fn display_escapes_what_it_must() {
    let uri = Pkcs11Uri {
        object: some("a b;c?d/e%f|g#h&i"),
        module_path: some("/a b&c;d?e|f"),
        ..Pkcs11Uri::default()
    };
    assert_eq!(
        uri.to_string(),
        "pkcs11:object=a%20b%3Bc%3Fd%2Fe%25f%7Cg%23h&i?module-path=/a%20b%26c%3Bd?e%7Cf"
    );
    assert_round_trip(&uri);
}

// ---- helpers ----

#[test]
fn is_token_only_cases() {
    assert!(parse("pkcs11:token=t;serial=1;slot-id=3?pin-value=1").is_token_only());
    assert!(!parse("pkcs11:object=o").is_token_only());
    assert!(!parse("pkcs11:id=%01").is_token_only());
    assert!(!parse("pkcs11:type=private").is_token_only());
    assert!(!parse("pkcs11:object=").is_token_only());
}

#[test]
fn pin_source_path_forms() {
    let path = |source: &str| {
        let uri = Pkcs11Uri {
            pin_source: some(source),
            ..Pkcs11Uri::default()
        };
        uri.pin_source_path().map(str::to_owned)
    };
    assert_eq!(path("file:/x"), some("/x"));
    assert_eq!(path("file:///x/y"), some("/x/y"));
    assert_eq!(path("FILE:/x"), some("/x"));
    assert_eq!(path("file://localhost/x"), some("/x"));
    assert_eq!(path("file:pin.txt"), some("pin.txt"));
    assert_eq!(path("/etc/pin"), some("/etc/pin"));
    assert_eq!(path("pin.txt"), some("pin.txt"));
    assert_eq!(path("./a:b"), some("./a:b"));
    assert_eq!(path("file://otherhost/x"), None);
    assert_eq!(path("file://"), None);
    assert_eq!(path("file:"), None);
    assert_eq!(path("https://example.com/pin"), None);
    assert_eq!(path("env:PIN"), None);
    assert_eq!(path(""), None);
    assert_eq!(Pkcs11Uri::default().pin_source_path(), None);
    let uri = parse("pkcs11:?pin-source=file:%2Fetc%2Fmy%20pin");
    assert_eq!(uri.pin_source_path(), Some("/etc/my pin"));
}

#[test]
fn object_type_strings() {
    let names: Vec<&str> = ObjectType::ALL.iter().map(|t| t.as_str()).collect();
    assert_eq!(names, ["private", "public", "cert", "secret-key", "data"]);
    for t in ObjectType::ALL {
        assert_eq!(ObjectType::from_bytes(t.as_str().as_bytes()), Some(t));
    }
    assert_eq!(ObjectType::from_bytes(b"secret_key"), None);
}

#[test]
fn non_utf8_input_outside_values_is_rejected_cleanly() {
    assert_eq!(
        parse_err(b"pkcs11:\xffobject=a").kind(),
        &ParseErrorKind::BadName
    );
    assert_eq!(
        parse_err(b"pkcs11:object=a\xff").kind(),
        &ParseErrorKind::BadCharacter
    );
}
