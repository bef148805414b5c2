//! Unknown and misplaced attributes: refused by default with the attribute named, skipped with
//! `UriOptions::ignore_unknown_path_attributes`; vendor `x-*` path attributes and unknown query
//! attributes are skipped either way.

use super::*;

const KNOWN_PATH_ATTRIBUTES: &str = "token, manufacturer, model, serial, slot-description, \
     slot-manufacturer, slot-id, library-description, library-manufacturer, library-version, \
     object, type, id";

#[test]
fn misspelt_path_attribute_is_refused_and_named() {
    // Issue 15: with `objekt` skipped, this named the token's first private key.
    let e = parse_err(b"pkcs11:token=t;objekt=rsa2048;type=private");
    assert_eq!(
        e.kind(),
        &ParseErrorKind::UnknownAttribute { did_you_mean: None }
    );
    assert_eq!(e.attribute(), Some("objekt"));
    assert_eq!(e.offset(), 15);
    assert_eq!(
        e.to_string(),
        format!(
            "invalid pkcs11 URI: unknown attribute 'objekt' in the path at byte 15 \
             (attribute names are case-sensitive; known: {KNOWN_PATH_ATTRIBUTES}; \
             vendor attributes start with 'x-')"
        )
    );
    for (input, name) in [
        ("pkcs11:tokn=t", "tokn"),
        ("pkcs11:token=t;label=k", "label"),
        ("pkcs11:slot=1", "slot"),
        ("pkcs11:object=k;class=private", "class"),
        // RFC 7512's own vendor example has no `x-` prefix.
        ("pkcs11:object=k;vendor-aaa=value-a", "vendor-aaa"),
        // Only the lowercase prefix marks a vendor attribute.
        ("pkcs11:X-vendor=1", "X-vendor"),
        ("pkcs11:x_vendor=1", "x_vendor"),
    ] {
        let e = parse_err(input.as_bytes());
        assert_eq!(
            e.kind(),
            &ParseErrorKind::UnknownAttribute { did_you_mean: None },
            "{input}"
        );
        assert_eq!(e.attribute(), Some(name), "{input}");
    }
}

#[test]
fn wrong_case_names_the_attribute_meant() {
    for (input, name, meant, offset) in [
        (
            "pkcs11:token=t;Object=rsa2048;type=private",
            "Object",
            "object",
            15,
        ),
        ("pkcs11:token=t;ID=%01;type=private", "ID", "id", 15),
        ("pkcs11:TYPE=cert", "TYPE", "type", 7),
        ("pkcs11:Token=t", "Token", "token", 7),
        ("pkcs11:slot-ID=1", "slot-ID", "slot-id", 7),
    ] {
        let e = parse_err(input.as_bytes());
        assert_eq!(
            e.kind(),
            &ParseErrorKind::UnknownAttribute {
                did_you_mean: Some(meant)
            },
            "{input}"
        );
        assert_eq!(e.attribute(), Some(name), "{input}");
        assert_eq!(e.offset(), offset, "{input}");
        assert_eq!(
            e.to_string(),
            format!(
                "invalid pkcs11 URI: unknown attribute '{name}' in the path at byte {offset}: \
                 did you mean '{meant}'? attribute names are case-sensitive"
            )
        );
    }
}

#[test]
fn unknown_name_is_reported_before_its_value() {
    let e = parse_err(b"pkcs11:objekt=%zz");
    assert_eq!(
        e.kind(),
        &ParseErrorKind::UnknownAttribute { did_you_mean: None }
    );
    assert_eq!(e.attribute(), Some("objekt"));
}

#[test]
fn attributes_in_the_wrong_section_are_refused() {
    let e = parse_err(b"pkcs11:token=t;module-path=s3cr3t");
    assert_eq!(e.kind(), &ParseErrorKind::QueryAttributeInPath);
    assert_eq!(e.attribute(), Some("module-path"));
    assert_eq!(e.offset(), 15);
    assert_eq!(
        e.to_string(),
        "invalid pkcs11 URI: query attribute 'module-path' in the path at byte 15 \
         (query attributes go after '?')"
    );
    assert!(!format!("{e:?}").contains("s3cr3t"));
    for name in ["module-name", "module-path"] {
        let e = parse_err(format!("pkcs11:{name}=x;object=k").as_bytes());
        assert_eq!(e.kind(), &ParseErrorKind::QueryAttributeInPath, "{name}");
        assert_eq!(e.attribute(), Some(name));
    }

    let e = parse_err(b"pkcs11:token=t?object=rsa2048");
    assert_eq!(e.kind(), &ParseErrorKind::PathAttributeInQuery);
    assert_eq!(e.attribute(), Some("object"));
    assert_eq!(e.offset(), 15);
    assert_eq!(
        e.to_string(),
        "invalid pkcs11 URI: path attribute 'object' in the query at byte 15 \
         (path attributes go before '?')"
    );
    for name in ["id", "type", "token", "slot-id"] {
        let e = parse_err(format!("pkcs11:?{name}=1").as_bytes());
        assert_eq!(e.kind(), &ParseErrorKind::PathAttributeInQuery, "{name}");
        assert_eq!(e.attribute(), Some(name));
    }
}

#[test]
fn vendor_path_attributes_are_skipped() {
    let uri = parse("pkcs11:token=t;x-vendor=1;x-Other_2=%41;object=k;x-vendor=again");
    let expected = Pkcs11Uri {
        token: some("t"),
        object: some("k"),
        ..Pkcs11Uri::default()
    };
    assert_eq!(uri, expected);
    assert_round_trip(&uri);
    // Their values must still be well-formed.
    let e = parse_err(b"pkcs11:x-vendor=a b");
    assert_eq!(e.kind(), &ParseErrorKind::BadCharacter);
    assert_eq!(e.attribute(), Some("x-vendor"));
}

#[test]
fn unknown_query_attributes_are_skipped() {
    let uri = parse("pkcs11:object=k?pin-source=/p&vendor-bbb=value-b&Pin-Value=1234&x-q=1");
    let expected = Pkcs11Uri {
        object: some("k"),
        pin_source: some("/p"),
        ..Pkcs11Uri::default()
    };
    assert_eq!(uri, expected);
    let e = parse_err(b"pkcs11:?vendor-bbb=%zz");
    assert_eq!(e.kind(), &ParseErrorKind::BadPercentEscape);
    assert_eq!(e.attribute(), Some("vendor-bbb"));
}

#[test]
fn ignore_option_skips_unknown_and_misplaced_attributes() {
    assert!(!UriOptions::default().ignore_unknown_path_attributes);
    // The issue 15 URI then names no object: only the token and the type are left.
    let uri = parse_ignoring_unknown("pkcs11:token=t;objekt=rsa2048;type=private");
    let expected = Pkcs11Uri {
        token: some("t"),
        object_type: Some(ObjectType::Private),
        ..Pkcs11Uri::default()
    };
    assert_eq!(uri, expected);
    // What is printed leaves the skipped attributes out and parses with the default options.
    assert_round_trip(&uri);
    for input in [
        "pkcs11:token=t;Object=rsa2048;type=private",
        "pkcs11:token=t;ID=%01;type=private",
        "pkcs11:token=t;type=private;vendor-aaa=value-a",
        "pkcs11:token=t;type=private;module-name=x",
        "pkcs11:token=t;type=private?object=rsa2048",
        "pkcs11:token=t;type=private;x-vendor=1",
    ] {
        assert_eq!(parse_ignoring_unknown(input), expected, "{input}");
    }
    // Nothing else is relaxed: malformed values and duplicates are still refused.
    for (input, kind) in [
        ("pkcs11:objekt=%zz", ParseErrorKind::BadPercentEscape),
        ("pkcs11:objekt=a b", ParseErrorKind::BadCharacter),
        ("pkcs11:object=a;object=b", ParseErrorKind::Duplicate),
        (
            "pkcs11:Object=a;type=x",
            ParseErrorKind::UnknownType("x".to_owned()),
        ),
    ] {
        let e = Pkcs11Uri::parse_with(input.as_bytes(), IGNORE_UNKNOWN).unwrap_err();
        assert_eq!(e.kind(), &kind, "{input}");
    }
}

#[test]
fn pin_attributes_in_the_path_are_taken_as_latchset_does() {
    // They select nothing, so reading them in the path cannot widen a match; latchset's
    // provider accepts them there and its URIs use them so.
    let uri = parse("pkcs11:token=t;object=k;pin-value=1234");
    assert_eq!(uri.pin_value.as_deref().map(|p| p.as_str()), Some("1234"));
    assert_eq!(uri.object, some("k"));
    let uri = parse("pkcs11:token=t;pin-source=file:/run/pin;object=k");
    assert_eq!(uri.pin_source, some("file:/run/pin"));
    // Still one of each.
    let e = parse_err(b"pkcs11:pin-value=1;object=k?pin-value=2");
    assert_eq!(e.kind(), &ParseErrorKind::Duplicate);
}

#[test]
fn both_options_agree_without_unknown_attributes() {
    for input in [
        "pkcs11:",
        "pkcs11:object=my-pubkey;type=public",
        "pkcs11:token=a;manufacturer=b;model=c;serial=d;slot-description=e;\
         slot-manufacturer=f;slot-id=42;library-description=g;library-manufacturer=h;\
         library-version=2.40;object=i;type=data;id=%01\
         ?pin-source=file:///run/pin&module-name=softhsm2&module-path=/usr/lib/x.so",
        "pkcs11:object=k?pin-value=1234",
    ] {
        assert_eq!(parse(input), parse_ignoring_unknown(input), "{input}");
    }
}

#[test]
fn unknown_attribute_errors_are_one_line_and_never_quote_values() {
    let long = format!("pkcs11:{}=s3cr3t", "n".repeat(1000));
    for input in [
        "pkcs11:objekt=s3cr3t",
        "pkcs11:Object=s3cr3t",
        "pkcs11:module-path=s3cr3t",
        "pkcs11:?object=s3cr3t",
        &long,
    ] {
        let e = parse_err(input.as_bytes());
        let message = e.to_string();
        assert!(message.starts_with("invalid pkcs11 URI: "), "{message}");
        assert!(!message.contains('\n'), "{message}");
        assert!(!message.contains("s3cr3t"), "{message}");
        assert!(!format!("{e:?}").contains("s3cr3t"));
    }
    let e = parse_err(long.as_bytes());
    assert_eq!(e.attribute(), Some("n".repeat(MAX_QUOTED).as_str()));
}
