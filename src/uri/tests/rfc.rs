//! The examples of RFC 7512 §3.

use super::*;

#[test]
fn rfc_empty_uri_means_everything() {
    let uri = parse("pkcs11:");
    assert_eq!(uri, Pkcs11Uri::default());
    assert!(uri.is_token_only());
    assert_eq!(uri.to_string(), "pkcs11:");
}

#[test]
fn rfc_public_key() {
    let uri = parse("pkcs11:object=my-pubkey;type=public");
    assert_eq!(uri.object, some("my-pubkey"));
    assert_eq!(uri.object_type, Some(ObjectType::Public));
    assert!(!uri.is_token_only());
    assert_eq!(uri.to_string(), "pkcs11:object=my-pubkey;type=public");
}

#[test]
fn rfc_private_key_with_pin_source() {
    let uri = parse("pkcs11:object=my-key;type=private?pin-source=file:/etc/token");
    assert_eq!(uri.object, some("my-key"));
    assert_eq!(uri.object_type, Some(ObjectType::Private));
    assert_eq!(uri.pin_source, some("file:/etc/token"));
    assert_eq!(uri.pin_source_path(), Some("/etc/token"));
    assert_eq!(
        uri.to_string(),
        "pkcs11:object=my-key;type=private?pin-source=file:/etc/token"
    );
}

#[test]
fn rfc_full_certificate_with_pin_value() {
    let input = "pkcs11:token=The%20Software%20PKCS%2311%20Softtoken;\
                 manufacturer=Snake%20Oil,%20Inc.;model=1.0;object=my-certificate;\
                 type=cert;id=%69%95%3E%5C%F4%BE%FA?pin-value=the-pin";
    let uri = parse(input);
    assert_eq!(uri.token, some("The Software PKCS#11 Softtoken"));
    assert_eq!(uri.manufacturer, some("Snake Oil, Inc."));
    assert_eq!(uri.model, some("1.0"));
    assert_eq!(uri.object, some("my-certificate"));
    assert_eq!(uri.object_type, Some(ObjectType::Cert));
    assert_eq!(uri.id, Some(vec![0x69, 0x95, 0x3e, 0x5c, 0xf4, 0xbe, 0xfa]));
    assert_eq!(
        uri.pin_value.as_deref().map(String::as_str),
        Some("the-pin")
    );
    assert_eq!(
        uri.to_string(),
        "pkcs11:token=The%20Software%20PKCS%2311%20Softtoken;\
         manufacturer=Snake%20Oil,%20Inc.;model=1.0;object=my-certificate;\
         type=cert;id=%69%95%3E%5C%F4%BE%FA"
    );
}

#[test]
fn rfc_final_certificate_example_with_empty_serial() {
    let uri = parse(
        "pkcs11:token=The%20Software%20PKCS%2311%20Softtoken;\
         manufacturer=Snake%20Oil,%20Inc.;model=1.0;object=my-certificate;\
         type=cert;id=%69%95%3E%5C%F4%BD%EC%91;serial=?pin-source=file:/etc/token_pin",
    );
    assert_eq!(uri.serial, some(""));
    assert_eq!(
        uri.id,
        Some(vec![0x69, 0x95, 0x3e, 0x5c, 0xf4, 0xbd, 0xec, 0x91])
    );
    assert_eq!(uri.pin_source_path(), Some("/etc/token_pin"));
    assert_round_trip(&uri);
}

#[test]
fn rfc_module_name_and_path() {
    let uri = parse("pkcs11:object=my-sign-key;type=private?module-name=mypkcs11");
    assert_eq!(uri.module_name, some("mypkcs11"));
    let uri = parse("pkcs11:object=my-sign-key;type=private?module-path=/mnt/libmypkcs11.so.1");
    assert_eq!(uri.module_path, some("/mnt/libmypkcs11.so.1"));
    assert_eq!(
        uri.to_string(),
        "pkcs11:object=my-sign-key;type=private?module-path=/mnt/libmypkcs11.so.1"
    );
}

#[test]
fn rfc_token_and_pin_value() {
    let uri = parse(
        "pkcs11:token=Software%20PKCS%2311%20softtoken;\
         manufacturer=Snake%20Oil,%20Inc.?pin-value=the-pin",
    );
    assert_eq!(uri.token, some("Software PKCS#11 softtoken"));
    assert!(uri.is_token_only());
    assert_eq!(
        uri.pin_value.as_deref().map(String::as_str),
        Some("the-pin")
    );
}

#[test]
fn rfc_slot_description() {
    let uri = parse("pkcs11:slot-description=Sun%20Metaslot");
    assert_eq!(uri.slot_description, some("Sun Metaslot"));
    assert_eq!(uri.to_string(), "pkcs11:slot-description=Sun%20Metaslot");
}

#[test]
fn rfc_library_attributes() {
    let uri = parse(
        "pkcs11:library-manufacturer=Snake%20Oil,%20Inc.;\
         library-description=Soft%20Token%20Library;library-version=1.23",
    );
    assert_eq!(uri.library_manufacturer, some("Snake Oil, Inc."));
    assert_eq!(uri.library_description, some("Soft Token Library"));
    assert_eq!(uri.library_version, Some((1, 23)));
    assert_round_trip(&uri);
}

#[test]
fn rfc_percent_in_label_and_mixed_case_hex_id() {
    let uri = parse(
        "pkcs11:token=My%20token%25%20created%20by%20Joe;library-version=3;\
         id=%01%02%03%Ba%dd%Ca%fe%04%05%06",
    );
    assert_eq!(uri.token, some("My token% created by Joe"));
    assert_eq!(uri.library_version, Some((3, 0)));
    assert_eq!(uri.id, Some(vec![1, 2, 3, 0xba, 0xdd, 0xca, 0xfe, 4, 5, 6]));
    assert_eq!(
        uri.to_string(),
        "pkcs11:token=My%20token%25%20created%20by%20Joe;library-version=3.0;\
         id=%01%02%03%BA%DD%CA%FE%04%05%06"
    );
}

#[test]
fn rfc_escaped_delimiters_in_label() {
    let uri = parse(
        "pkcs11:token=A%20name%20with%20a%20substring%20%25%3B;object=my-certificate;type=cert",
    );
    assert_eq!(uri.token, some("A name with a substring %;"));
    assert_round_trip(&uri);
}

#[test]
fn rfc_utf8_label() {
    let uri = parse(
        "pkcs11:token=Name%20with%20a%20small%20A%20with%20acute:%20%C3%A1;\
         object=my-certificate;type=cert",
    );
    assert_eq!(uri.token, some("Name with a small A with acute: \u{e1}"));
    assert_round_trip(&uri);
}

#[test]
fn rfc_vendor_attributes_are_ignored() {
    // The RFC's vendor path attribute has no `x-` prefix, so the default parser refuses it
    // (unknown_attributes.rs); with unknown attributes ignored it parses as the RFC says.
    let uri = parse_ignoring_unknown(
        "pkcs11:token=my-token;object=my-certificate;type=cert;vendor-aaa=value-a\
         ?pin-source=file:/etc/token&vendor-bbb=value-b",
    );
    let expected = Pkcs11Uri {
        token: some("my-token"),
        object: some("my-certificate"),
        object_type: Some(ObjectType::Cert),
        pin_source: some("file:/etc/token"),
        ..Pkcs11Uri::default()
    };
    assert_eq!(uri, expected);
    let uri = parse("pkcs11:x-foo=1;x-foo=2;object=a?x-bar=%41&x-bar=");
    assert_eq!(uri.object, some("a"));
}
