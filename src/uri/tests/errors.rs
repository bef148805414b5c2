//! Parse errors: kind, offset, attribute and message; and that no error quotes the PIN.

use super::*;

#[test]
fn bad_percent_escapes() {
    for (input, offset) in [
        ("pkcs11:object=%", 14),
        ("pkcs11:object=%4", 14),
        ("pkcs11:object=a%G1", 15),
        ("pkcs11:object=a%4g", 15),
        ("pkcs11:object=%%41", 14),
        ("pkcs11:id=%0", 10),
        ("pkcs11:?pin-source=%zz", 19),
        ("pkcs11:x-vendor=%", 16),
    ] {
        let e = parse_err(input.as_bytes());
        assert_eq!(e.kind(), &ParseErrorKind::BadPercentEscape, "{input}");
        assert_eq!(e.offset(), offset, "{input}");
    }
    let e = parse_err(b"pkcs11:x-vendor=%");
    assert_eq!(e.attribute(), Some("x-vendor"));
}

#[test]
fn error_message_format() {
    let e = parse_err(b"pkcs11:object=abc%zz");
    assert_eq!(
        e.to_string(),
        "invalid pkcs11 URI: bad percent-escape at byte 17 in attribute 'object'"
    );
    let e = parse_err(b"pkcs11:object=a;type=cert;object=b");
    assert_eq!(
        e.to_string(),
        "invalid pkcs11 URI: attribute 'object' given twice at byte 26"
    );
}

#[test]
fn characters_that_must_be_escaped() {
    let mut bad: Vec<u8> = b" \"<>\\^`{}|#%/?".to_vec();
    bad.retain(|&b| b != b'%' && b != b'?');
    bad.extend(0x00..0x20);
    bad.push(0x7f);
    bad.extend([0x80, 0xc3, 0xe1, 0xff]);
    for b in bad {
        let mut input = b"pkcs11:object=ab".to_vec();
        input.push(b);
        input.extend_from_slice(b"cd");
        let e = parse_err(&input);
        assert_eq!(e.kind(), &ParseErrorKind::BadCharacter, "byte {b:#04x}");
        assert_eq!(e.offset(), 16, "byte {b:#04x}");
        assert_eq!(e.attribute(), Some("object"));
    }
}

#[test]
fn query_only_characters_rejected_in_path() {
    assert_eq!(kind_of("pkcs11:object=a/b"), ParseErrorKind::BadCharacter);
    assert_eq!(kind_of("pkcs11:object=a|b"), ParseErrorKind::BadCharacter);
    // ';' is the path separator, so it cannot appear raw in a query value either.
    assert_eq!(
        kind_of("pkcs11:?pin-source=/a;b"),
        ParseErrorKind::BadCharacter
    );
    assert_eq!(
        kind_of("pkcs11:?pin-source=a b"),
        ParseErrorKind::BadCharacter
    );
    // A second '?' belongs to the query, where it is allowed.
    assert_eq!(parse("pkcs11:?module-name=a?b").module_name, some("a?b"));
}

#[test]
fn decoded_nul_rejected_in_text() {
    let e = parse_err(b"pkcs11:object=ab%00cd");
    assert_eq!(e.kind(), &ParseErrorKind::NulByte);
    assert_eq!(e.offset(), 16);
    assert_eq!(e.attribute(), Some("object"));
    assert_eq!(kind_of("pkcs11:?module-path=%00"), ParseErrorKind::NulByte);
    assert_eq!(parse("pkcs11:id=%00").id, Some(vec![0]));
}

#[test]
fn decoded_non_utf8_rejected_in_text() {
    // "%C3%A1" is valid; "%C3" followed by "(" is not. The offset points at the escape.
    let e = parse_err(b"pkcs11:token=%C3%A1x%C3(");
    assert_eq!(e.kind(), &ParseErrorKind::NotUtf8);
    assert_eq!(e.offset(), 20);
    assert_eq!(e.attribute(), Some("token"));
    assert_eq!(kind_of("pkcs11:object=%FF"), ParseErrorKind::NotUtf8);
    assert_eq!(parse("pkcs11:id=%C3(").id, Some(vec![0xc3, b'(']));
}

#[test]
fn duplicates_rejected() {
    for (input, name) in [
        ("pkcs11:object=a;object=a", "object"),
        ("pkcs11:token=a;token=b", "token"),
        ("pkcs11:id=%01;id=%02", "id"),
        ("pkcs11:type=cert;type=cert", "type"),
        ("pkcs11:slot-id=1;slot-id=2", "slot-id"),
        (
            "pkcs11:library-version=1;library-version=1",
            "library-version",
        ),
        ("pkcs11:?pin-value=1&pin-value=1", "pin-value"),
        ("pkcs11:?pin-source=a&pin-source=a", "pin-source"),
        ("pkcs11:?module-path=/a&module-path=/b", "module-path"),
    ] {
        let e = parse_err(input.as_bytes());
        assert_eq!(e.kind(), &ParseErrorKind::Duplicate, "{input}");
        assert_eq!(e.attribute(), Some(name), "{input}");
        assert!(
            e.to_string()
                .contains(&format!("attribute '{name}' given twice")),
            "{e}"
        );
    }
}

#[test]
fn pin_value_and_pin_source_conflict() {
    for input in [
        "pkcs11:?pin-value=secret123&pin-source=/p",
        "pkcs11:?pin-source=/p&pin-value=secret123",
    ] {
        let e = parse_err(input.as_bytes());
        assert_eq!(e.kind(), &ParseErrorKind::PinValueAndSource);
        assert!(!e.to_string().contains("secret123"));
        assert!(!format!("{e:?}").contains("secret123"));
    }
}

#[test]
fn malformed_attribute_names() {
    let e = parse_err(b"pkcs11:object=a;type");
    assert_eq!(e.kind(), &ParseErrorKind::MissingEquals);
    assert_eq!(e.offset(), 16);
    assert_eq!(kind_of("pkcs11:?1234"), ParseErrorKind::MissingEquals);
    assert!(!parse_err(b"pkcs11:?1234").to_string().contains("1234"));
    assert_eq!(kind_of("pkcs11:=x"), ParseErrorKind::EmptyName);
    let e = parse_err(b"pkcs11:ob ject=x");
    assert_eq!(e.kind(), &ParseErrorKind::BadName);
    assert_eq!(e.offset(), 9);
    assert_eq!(kind_of("pkcs11:ob%6Aect=x"), ParseErrorKind::BadName);
}

#[test]
fn missing_scheme() {
    for input in [
        &b""[..],
        b"pkcs11",
        b"pkcs1:object=a",
        b"file:/etc/key.pem",
        b" pkcs11:",
        b"pkcs11 :",
    ] {
        let e = parse_err(input);
        assert_eq!(e.kind(), &ParseErrorKind::MissingScheme);
        assert_eq!(e.offset(), 0);
    }
    assert_eq!(
        parse_err(b"foo").to_string(),
        "invalid pkcs11 URI: does not start with 'pkcs11:'"
    );
}

#[test]
fn length_limit() {
    let head = "pkcs11:object=";
    let at_limit = format!("{head}{}", "a".repeat(MAX_URI_LEN - head.len()));
    assert_eq!(
        parse(&at_limit).object.map(|o| o.len()),
        Some(MAX_URI_LEN - head.len())
    );
    let over = format!("{at_limit}a");
    let e = parse_err(over.as_bytes());
    assert_eq!(e.kind(), &ParseErrorKind::TooLong);
    assert!(e.to_string().contains("longer than 65536 bytes"));
}

#[test]
fn every_error_message_is_one_line_and_prefixed() {
    for input in [
        &b"x"[..],
        b"pkcs11:a",
        b"pkcs11:=a",
        b"pkcs11:a b=c",
        b"pkcs11:object=%",
        b"pkcs11:object= ",
        b"pkcs11:object=%00",
        b"pkcs11:object=%80",
        b"pkcs11:slot-id=x",
        b"pkcs11:slot-id=99999999999999999999",
        b"pkcs11:library-version=x",
        b"pkcs11:type=x",
        b"pkcs11:type=a;type=b",
        b"pkcs11:?pin-value=a&pin-source=b",
    ] {
        let message = parse_err(input).to_string();
        assert!(message.starts_with("invalid pkcs11 URI: "), "{message}");
        assert!(!message.contains('\n'), "{message}");
    }
}

// ---- the PIN never leaks ----

#[test]
fn display_never_prints_pin_value() {
    let uri = parse("pkcs11:object=k?pin-value=s3cr3t-PIN");
    assert_eq!(uri.to_string(), "pkcs11:object=k");
    let uri = parse("pkcs11:?pin-value=s3cr3t-PIN");
    assert_eq!(uri.to_string(), "pkcs11:");
    let uri = parse("pkcs11:?pin-value=s3cr3t-PIN&module-name=m");
    assert_eq!(uri.to_string(), "pkcs11:?module-name=m");
}

#[test]
fn debug_redacts_pin_value() {
    let uri = parse("pkcs11:object=k?pin-value=s3cr3t-PIN");
    let debug = format!("{uri:?}");
    assert!(!debug.contains("s3cr3t"), "{debug}");
    assert!(debug.contains("pin_value: Some(<redacted>)"), "{debug}");
    assert!(debug.contains("object: Some(\"k\")"), "{debug}");
    let pretty = format!("{uri:#?}");
    assert!(!pretty.contains("s3cr3t"));
    assert!(format!("{:?}", parse("pkcs11:")).contains("pin_value: None"));
}

#[test]
fn errors_never_quote_the_pin() {
    for input in [
        &b"pkcs11:?pin-value=s3cr3t%zz"[..],
        b"pkcs11:?pin-value=s3cr3t%00",
        b"pkcs11:?pin-value=s3cr3t%ff",
        b"pkcs11:?pin-value=s3cr3t x",
        b"pkcs11:?pin-value=s3cr3t&pin-value=s3cr3t",
        b"pkcs11:?pin-value=s3cr3t&pin-source=s3cr3t",
        b"pkcs11:?s3cr3t",
        b"pkcs11:?x-pin=s3cr3t%",
    ] {
        let e = parse_err(input);
        assert!(!e.to_string().contains("s3cr3t"), "{e}");
        assert!(!format!("{e:?}").contains("s3cr3t"), "{e:?}");
    }
    let e = parse_err(b"pkcs11:?pin-value=s3cr3t%ff");
    assert_eq!(e.kind(), &ParseErrorKind::NotUtf8);
    assert_eq!(e.attribute(), Some("pin-value"));
}
