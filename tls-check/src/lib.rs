//! Checks of bodhi-auth's TLS features that the main package cannot make: its
//! dev-dependencies pull aws-lc-rs into every test binary there, so a build with ring
//! alone, or with no TLS at all, is only seen from a package of its own. The checks are
//! the tests in `tests/`, which `.ci/run` runs once per choice: `--features ring` (the
//! default; it also checks that `cargo tree -p bodhi-auth-tls-check -i aws-lc-sys` finds
//! nothing), `--no-default-features --features native`, and `--no-default-features`.
//! This file holds what they share: a CA made at test time and a TLS front for the fake
//! IDM.

#![cfg(any(feature = "ring", feature = "native"))]

use std::net::SocketAddr;
use std::sync::Arc;

use bodhi_auth::testing::{FakeIdm, FakeServer};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

/// A CA made at test time, and a server certificate for 127.0.0.1 that it signed.
pub struct TestPki {
    pub ca: CertificateDer<'static>,
    server_chain: Vec<CertificateDer<'static>>,
    server_key: PrivateKeyDer<'static>,
}

pub fn test_pki() -> TestPki {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let server_key = KeyPair::generate().unwrap();
    let server = CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&server_key, &ca)
        .unwrap();
    TestPki {
        ca: ca.der().clone(),
        server_chain: vec![server.der().clone()],
        server_key: PrivatePkcs8KeyDer::from(server_key.serialize_der()).into(),
    }
}

/// TLS on a loopback port in front of the fake IDM's plain-HTTP port, with ring.
async fn tls_in_front_of(upstream: SocketAddr, pki: &TestPki) -> SocketAddr {
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(pki.server_chain.clone(), pki.server_key.clone_key())
    .unwrap();
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(client).await else {
                    return; // a client that refused our certificate
                };
                if let Ok(mut plain) = TcpStream::connect(upstream).await {
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
                }
            });
        }
    });
    address
}

/// The fake IDM behind TLS on a loopback port: its token URL, and the plain server
/// (keep it alive as long as the URL is used).
pub async fn https_fake_idm(idm: &FakeIdm, pki: &TestPki) -> (String, FakeServer) {
    let plain = idm.serve().await.unwrap();
    let upstream: SocketAddr = plain
        .token_url()
        .trim_start_matches("http://")
        .split('/')
        .next()
        .and_then(|authority| authority.parse().ok())
        .expect("the fake IDM listens on a loopback socket address");
    let tls = tls_in_front_of(upstream, pki).await;
    (format!("https://{tls}{}", FakeIdm::TOKEN_PATH), plain)
}
