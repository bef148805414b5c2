//! General syntax and the typed attributes (`slot-id`, `library-version`, `type`, `id`).

use super::*;

#[test]
fn scheme_is_case_insensitive() {
    assert_eq!(parse("PKCS11:object=a").object, some("a"));
    assert_eq!(parse("Pkcs11:object=a").object, some("a"));
}

#[test]
fn a_repeated_scheme_prefix_is_read_as_one() {
    let uri = parse("pkcs11:pkcs11:token=web%20server");
    assert_eq!(uri.token, some("web server"));
    assert_eq!(uri, parse("pkcs11:token=web%20server"));
    assert_eq!(parse("pkcs11:PKCS11:"), Pkcs11Uri::default());
    // Only as a prefix: inside a value it is text.
    assert_eq!(parse("pkcs11:object=pkcs11:x").object, some("pkcs11:x"));
}

#[test]
fn empty_components_are_tolerated() {
    let uri = parse("pkcs11:;;token=a;;object=b;?&&pin-source=/p&");
    assert_eq!(uri.token, some("a"));
    assert_eq!(uri.object, some("b"));
    assert_eq!(uri.pin_source, some("/p"));
    assert_eq!(parse("pkcs11:?"), Pkcs11Uri::default());
    assert_eq!(parse("pkcs11:;"), Pkcs11Uri::default());
}

#[test]
fn attribute_names_are_case_sensitive() {
    // With unknown attributes ignored, an unknown name is skipped, so this names no object at
    // all. By default it is refused (unknown_attributes.rs).
    let uri = parse_ignoring_unknown("pkcs11:Object=foo;TYPE=cert");
    assert!(uri.is_token_only());
    assert_eq!(uri, Pkcs11Uri::default());
}

#[test]
fn attributes_in_the_wrong_section_are_unknown() {
    // Refused by default (unknown_attributes.rs); skipped when unknown attributes are ignored.
    let uri = parse_ignoring_unknown("pkcs11:module-name=x?object=foo");
    assert_eq!(uri, Pkcs11Uri::default());
}

#[test]
fn reserved_characters_allowed_unescaped() {
    let uri = parse("pkcs11:token=:[]@!$'()*+,=&;object=a~b.c_d-e?pin-source=:[]@!$'()*+,=/?|");
    assert_eq!(uri.token, some(":[]@!$'()*+,=&"));
    assert_eq!(uri.object, some("a~b.c_d-e"));
    assert_eq!(uri.pin_source, some(":[]@!$'()*+,=/?|"));
    // '|' is accepted raw but printed escaped, for older parsers.
    assert_eq!(
        uri.to_string(),
        "pkcs11:token=:[]@!$'()*+,=&;object=a~b.c_d-e?pin-source=:[]@!$'()*+,=/?%7C"
    );
    assert_round_trip(&uri);
}

#[test]
fn value_may_contain_equals() {
    assert_eq!(parse("pkcs11:object=a=b=").object, some("a=b="));
}

#[test]
fn empty_values_are_kept() {
    let uri = parse("pkcs11:object=;id=");
    assert_eq!(uri.object, some(""));
    assert_eq!(uri.id, Some(vec![]));
    assert_round_trip(&uri);
}

#[test]
fn unnecessary_escapes_are_decoded() {
    let uri = parse("pkcs11:object=%3a%5b%5d%40%21%24%27%28%29%2a%2b%2c%26%3d%41");
    assert_eq!(uri.object, some(":[]@!$'()*+,&=A"));
    assert_eq!(uri.to_string(), "pkcs11:object=:[]@!$'()*+,&=A");
}

#[test]
fn query_delimiter_escaped_in_query_values() {
    let uri = parse("pkcs11:?module-path=/a%26b%3Bc");
    assert_eq!(uri.module_path, some("/a&b;c"));
    assert_eq!(uri.to_string(), "pkcs11:?module-path=/a%26b%3Bc");
}

#[test]
fn pin_value_is_percent_decoded() {
    let uri = parse("pkcs11:?pin-value=a%26b%20c");
    assert_eq!(uri.pin_value.as_deref().map(String::as_str), Some("a&b c"));
}

// ---- typed attributes ----

#[test]
fn slot_id_values() {
    assert_eq!(parse("pkcs11:slot-id=0").slot_id, Some(0));
    assert_eq!(
        parse("pkcs11:slot-id=1760174018").slot_id,
        Some(1_760_174_018)
    );
    assert_eq!(
        parse("pkcs11:slot-id=18446744073709551615").slot_id,
        Some(u64::MAX)
    );
    assert_eq!(parse("pkcs11:slot-id=%31%32").slot_id, Some(12));
    assert_eq!(parse("pkcs11:slot-id=7").to_string(), "pkcs11:slot-id=7");
}

#[test]
fn slot_id_errors() {
    let e = parse_err(b"pkcs11:slot-id=18446744073709551616");
    assert_eq!(e.kind(), &ParseErrorKind::NumberTooLarge);
    assert_eq!(e.attribute(), Some("slot-id"));
    assert_eq!(e.offset(), 15);
    for bad in ["", "-1", "+1", "1a", "0x10", "1.0", " 1"] {
        let input = format!("pkcs11:slot-id={bad}");
        let kind = kind_of(&input);
        assert!(
            matches!(
                kind,
                ParseErrorKind::BadNumber | ParseErrorKind::BadCharacter
            ),
            "{input}: {kind:?}"
        );
    }
}

#[test]
fn library_version_forms() {
    assert_eq!(
        parse("pkcs11:library-version=7").library_version,
        Some((7, 0))
    );
    assert_eq!(
        parse("pkcs11:library-version=2.40").library_version,
        Some((2, 40))
    );
    assert_eq!(
        parse("pkcs11:library-version=255.255").library_version,
        Some((255, 255))
    );
    for bad in [
        "",
        "1.",
        ".1",
        "1.2.3",
        "256",
        "1.256",
        "a.b",
        "1.-2",
        "99999999999999999999",
    ] {
        let input = format!("pkcs11:library-version={bad}");
        assert_eq!(kind_of(&input), ParseErrorKind::BadVersion, "{input}");
    }
}

#[test]
fn every_object_type() {
    for t in ObjectType::ALL {
        let uri = parse(&format!("pkcs11:type={t}"));
        assert_eq!(uri.object_type, Some(t));
        assert!(!uri.is_token_only());
        assert_round_trip(&uri);
    }
    assert_eq!(
        parse("pkcs11:type=secret-key").object_type,
        Some(ObjectType::SecretKey)
    );
    assert_eq!(
        parse("pkcs11:type=d%61ta").object_type,
        Some(ObjectType::Data)
    );
}

#[test]
fn unknown_type_is_named() {
    let e = parse_err(b"pkcs11:type=Cert");
    assert_eq!(e.kind(), &ParseErrorKind::UnknownType("Cert".to_owned()));
    assert_eq!(e.attribute(), Some("type"));
    let message = e.to_string();
    assert!(message.contains("'Cert'"), "{message}");
    assert!(message.contains("attribute 'type'"), "{message}");
    assert_eq!(
        kind_of("pkcs11:type="),
        ParseErrorKind::UnknownType(String::new())
    );
    assert_eq!(
        kind_of("pkcs11:type=%FFkey"),
        ParseErrorKind::UnknownType("\\xffkey".to_owned())
    );
    let long = format!("pkcs11:type={}", "k".repeat(1000));
    assert_eq!(
        kind_of(&long),
        ParseErrorKind::UnknownType("k".repeat(MAX_QUOTED))
    );
}

#[test]
fn binary_id() {
    let uri = parse("pkcs11:id=%00%01%7F%80%fe%FF");
    assert_eq!(uri.id, Some(vec![0x00, 0x01, 0x7f, 0x80, 0xfe, 0xff]));
    assert_eq!(uri.to_string(), "pkcs11:id=%00%01%7F%80%FE%FF");
    // Literal characters are allowed in an id too, and printed escaped.
    let uri = parse("pkcs11:id=ab%63");
    assert_eq!(uri.id, Some(b"abc".to_vec()));
    assert_eq!(uri.to_string(), "pkcs11:id=%61%62%63");
    assert!(!uri.is_token_only());
}
