//! Certificates the scenarios make for TLS at the edge (Gateway `SIMPLE`
//! servers, TLS-terminating passthrough backends): a throwaway CA and leaf
//! certificates it signs for given DNS names, all with rcgen, as PEM text
//! to put into the cluster's shared files ([`crate::Cluster::put_file`]).

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose,
};

use crate::E2eError;

/// A CA for one test run.
pub struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl std::fmt::Debug for TestCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestCa").finish_non_exhaustive()
    }
}

/// A leaf certificate and its key, PEM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leaf {
    /// The certificate (`serverCertificate`).
    pub cert_pem: String,
    /// Its private key (`privateKey`).
    pub key_pem: String,
}

fn failed(what: &str) -> impl FnOnce(rcgen::Error) -> E2eError + '_ {
    move |e| E2eError::Invalid(format!("{what}: {e}"))
}

impl TestCa {
    /// A new self-signed CA named `name`.
    pub fn new(name: &str) -> Result<TestCa, E2eError> {
        let key = KeyPair::generate().map_err(failed("CA key"))?;
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(failed("CA"))?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, name);
        dn.push(DnType::OrganizationName, "mesh e2e");
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let issuer = CertifiedIssuer::self_signed(params, key).map_err(failed("CA certificate"))?;
        Ok(TestCa { issuer })
    }

    /// The CA certificate (`caCertificates`, `curl --cacert`).
    pub fn cert_pem(&self) -> String {
        self.issuer.pem()
    }

    /// A server certificate for `names` (the first is also its CN).
    pub fn issue(&self, names: &[&str]) -> Result<Leaf, E2eError> {
        let key = KeyPair::generate().map_err(failed("leaf key"))?;
        let sans: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = CertificateParams::new(sans).map_err(failed("leaf names"))?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, names.first().copied().unwrap_or("leaf"));
        params.distinguished_name = dn;
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        let cert = params
            .signed_by(&key, &self.issuer)
            .map_err(failed("leaf certificate"))?;
        Ok(Leaf {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_leaf_verifies_against_its_ca_for_its_names_only() {
        let ca = TestCa::new("e2e test CA").unwrap();
        let leaf = ca.issue(&["bookinfo.example.com"]).unwrap();
        assert!(leaf.cert_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(leaf.key_pem.contains("PRIVATE KEY"));
        let der = |pem: &str| {
            rustls::pki_types::CertificateDer::from(pem_body(pem).expect("a PEM certificate"))
        };
        let mut roots = rustls::RootCertStore::empty();
        roots.add(der(&ca.cert_pem())).unwrap();
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
            std::sync::Arc::new(roots),
            provider,
        )
        .build()
        .unwrap();
        use rustls::client::danger::ServerCertVerifier;
        let now = rustls::pki_types::UnixTime::now();
        let name = |n: &str| rustls::pki_types::ServerName::try_from(n.to_string()).unwrap();
        let leaf_der = der(&leaf.cert_pem);
        assert!(verifier
            .verify_server_cert(&leaf_der, &[], &name("bookinfo.example.com"), &[], now)
            .is_ok());
        assert!(verifier
            .verify_server_cert(&leaf_der, &[], &name("other.example.com"), &[], now)
            .is_err());
    }

    /// The DER bytes of the first PEM block.
    fn pem_body(pem: &str) -> Option<Vec<u8>> {
        use rustls::pki_types::pem::PemObject;
        rustls::pki_types::CertificateDer::from_pem_slice(pem.as_bytes())
            .ok()
            .map(|c| c.to_vec())
    }
}
