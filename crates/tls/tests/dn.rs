//! java_subject_dn against strings printed by Java 17's X500Principal.getName() (see fixtures/make.sh).

mod common;

use common::{cert, fixture};
use roost_tls::java_subject_dn;

#[test]
fn matches_java_for_every_fixture() {
    let table = std::fs::read_to_string(fixture("dn-expected.txt")).unwrap();
    let mut n = 0;
    for line in table.lines().filter(|l| !l.is_empty()) {
        let (file, expected) = line.split_once('\t').unwrap();
        assert_eq!(java_subject_dn(&cert(file)).unwrap(), expected, "{file}");
        n += 1;
    }
    assert!(n >= 9, "table has only {n} rows");
}

#[test]
fn spot_checks() {
    assert_eq!(java_subject_dn(&cert("client.pem")).unwrap(), "CN=client");
    assert_eq!(
        java_subject_dn(&cert("dn-2.pem")).unwrap(),
        "DC=example,1.2.840.113549.1.9.1=#16076140782e6f7267,CN=alice+UID=a1,OU=Eng,O=Acme\\, Inc.,ST=CA,C=US"
    );
    assert_eq!(java_subject_dn(&cert("dn-3.pem")).unwrap(), "L=東京,O=Zürich Straße,CN=Jürgen Müller");
    assert_eq!(java_subject_dn(&cert("dn-4.pem")).unwrap(), "O=\\#hash,OU=trailing space\\ ,CN=\\ leading space");
}

#[test]
fn garbage_is_an_error() {
    let bad = roost_tls::CertificateDer::from(vec![0x30, 0x03, 0x02, 0x01]);
    assert!(java_subject_dn(&bad).is_err());
}
