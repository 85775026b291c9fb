//! Device certificates without a broker: names and keys under the CA, CA round trips and
//! mistakes, PEM line width, and the files written.

use super::*;

fn common_name(cert_pem: &str) -> String {
    let der = CertificateDer::from_pem_slice(cert_pem.as_bytes()).unwrap();
    let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
    cert.subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .unwrap()
        .to_owned()
}

#[test]
fn devices_get_their_own_name_and_key_under_the_ca() {
    let ca = DeviceCa::generate("mqload device CA").unwrap();
    let first = ca.issue(&device_common_name(0)).unwrap();
    let second = ca.issue(&device_common_name(1)).unwrap();
    assert_eq!(common_name(&first.cert_pem), "device-0");
    assert_eq!(common_name(&second.cert_pem), "device-1");
    assert_ne!(first.key_pem, second.key_pem);
    let der = CertificateDer::from_pem_slice(first.cert_pem.as_bytes()).unwrap();
    let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
    assert_eq!(cert.issuer().to_string(), "CN=mqload device CA");
    assert!(!cert.is_ca());
}

#[test]
fn a_ca_round_trips_through_its_pem() {
    let made = DeviceCa::generate("round trip CA").unwrap();
    let key = made.made_key_pem().unwrap();
    let loaded = DeviceCa::from_pem(made.certificate_pem().as_bytes(), key.as_bytes()).unwrap();
    assert_eq!(loaded.made_key_pem(), None);
    let device = loaded.issue("device-7").unwrap();
    let der = CertificateDer::from_pem_slice(device.cert_pem.as_bytes()).unwrap();
    let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
    assert_eq!(cert.issuer().to_string(), "CN=round trip CA");
}

#[test]
fn ca_mistakes_are_named() {
    let ca = DeviceCa::generate("one").unwrap();
    let other = DeviceCa::generate("two").unwrap();
    let cert = ca.certificate_pem().as_bytes();
    let key = ca.made_key_pem().unwrap().as_bytes();
    let other_key = other.made_key_pem().unwrap().as_bytes();
    let device = ca.issue("device-0").unwrap();
    let err = |cert: &[u8], key: &[u8]| DeviceCa::from_pem(cert, key).err();
    assert_eq!(err(b"nothing", key), Some(DevicePkiError::NoCaCertificate));
    assert_eq!(err(cert, b"nothing"), Some(DevicePkiError::CaKeyNotPkcs8));
    assert_eq!(err(cert, other_key), Some(DevicePkiError::CaKeyMismatch));
    assert_eq!(
        err(device.cert_pem.as_bytes(), device.key_pem.as_bytes()),
        Some(DevicePkiError::NotACa)
    );
    assert_eq!(
        ca.issue_for_key(
            "d",
            b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"
        )
        .err(),
        Some(DevicePkiError::BadDeviceKey)
    );
}

#[test]
fn pem_lines_are_64_wide() {
    let text = pem("CERTIFICATE", &[0xab; 100]);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "-----BEGIN CERTIFICATE-----");
    assert_eq!(lines[1].len(), 64);
    assert_eq!(lines.last(), Some(&"-----END CERTIFICATE-----"));
    let der = CertificateDer::from_pem_slice(text.as_bytes()).unwrap();
    assert_eq!(der.as_ref(), &[0xab; 100][..]);
}

#[test]
fn write_devices_writes_every_file_with_private_keys() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let ca = DeviceCa::generate("written CA").unwrap();
    write_devices(dir.path(), 3, &ca).unwrap();
    for index in 0..3 {
        let (cert, key) = device_file_names(index);
        let cert_text = fs::read_to_string(dir.path().join(cert)).unwrap();
        assert_eq!(common_name(&cert_text), device_common_name(index));
        let mode = fs::metadata(dir.path().join(key))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "device keys are private");
    }
    assert!(dir.path().join(CA_CERT_FILE).exists());
    assert!(dir.path().join(CA_KEY_FILE).exists());
    assert!(!dir.path().join("device-3.pem.crt").exists());
    assert_eq!(
        write_devices(dir.path(), 0, &ca),
        Err(DevicePkiError::NoDevices)
    );
}
