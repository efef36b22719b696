//! Delivery over TLS to a real server on 127.0.0.1 whose certificates `rcgen` makes
//! here: an untrusted, an expired and a misnamed certificate each read as what they
//! are, wait for an operator at the retry cap without burning attempts, and a private
//! CA given as a PEM file (`ca_file`) is trusted beside the system's roots.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, date_time_ymd};
use session_model::SubmissionStatus;
use session_workers::submit::{HttpTransport, SubmissionWorker};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

struct Ca {
    pem: String,
    issuer: Issuer<'static, KeyPair>,
}

fn ca() -> Ca {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, "Lab test CA");
    let key = KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    Ca {
        pem: cert.pem(),
        issuer: Issuer::new(params, key),
    }
}

/// A leaf certificate for `name` (an IP address or a host name), valid until `until`.
fn leaf(ca: &Ca, name: &str, until: (i32, u8, u8)) -> (Vec<u8>, Vec<u8>) {
    let mut params = CertificateParams::new(vec![name.to_owned()]).unwrap();
    params.not_before = date_time_ymd(2020, 1, 1);
    params.not_after = date_time_ymd(until.0, until.1, until.2);
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &ca.issuer).unwrap();
    (cert.der().to_vec(), key.serialize_der())
}

/// An HTTPS server on 127.0.0.1 answering every request 201, with `cert`.
async fn https_server(cert: (Vec<u8>, Vec<u8>)) -> String {
    use tokio_rustls::rustls;
    let config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(
            vec![rustls::pki_types::CertificateDer::from(cert.0)],
            rustls::pki_types::PrivateKeyDer::Pkcs8(cert.1.into()),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("https://{}/sessions", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(socket).await else {
                    return;
                };
                let mut request = Vec::new();
                let mut buf = [0u8; 8192];
                // Read the head and the body it announces, then answer.
                loop {
                    let n = tls.read(&mut buf).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    request.extend_from_slice(&buf[..n]);
                    if let Some(end) = request.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&request[..end]).to_ascii_lowercase();
                        let length: usize = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse().ok())
                            .unwrap_or(0);
                        if request.len() >= end + 4 + length {
                            break;
                        }
                    }
                }
                let _ = tls
                    .write_all(b"HTTP/1.1 201 Created\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                    .await;
                let _ = tls.shutdown().await;
            });
        }
    });
    url
}

async fn one_pass(
    url: &str,
    ca_pem: Option<&str>,
) -> (session_model::Session, session_workers::submit::PassReport) {
    let (_dir, store) = store_with(vec![pending("s1")]);
    let config = fast_config().max_attempts(1);
    let transport =
        HttpTransport::with_ca(url, None, Duration::from_secs(5), ca_pem.map(str::as_bytes)).unwrap();
    let clock = session_workers::ManualClock::at(NOW);
    let (tx, _rx) = tokio::sync::broadcast::channel(16);
    let worker = SubmissionWorker::new(store.clone(), transport, config, Arc::new(clock), tx).unwrap();
    let report = worker.run_pass(&CancellationToken::new()).await.unwrap();
    (load(&store, "s1"), report)
}

#[tokio::test]
async fn a_certificate_problem_says_what_it_is_and_waits_at_the_cap_without_burning_attempts() {
    let ca = ca();
    let cases = [
        (
            "untrusted",
            leaf(&ca, "127.0.0.1", (2090, 1, 1)),
            None,
            "not trusted (unknown issuer)",
        ),
        (
            "expired",
            leaf(&ca, "127.0.0.1", (2021, 1, 1)),
            Some(ca.pem.as_str()),
            "expired",
        ),
        (
            "misnamed",
            leaf(&ca, "lis.example", (2090, 1, 1)),
            Some(ca.pem.as_str()),
            "another name",
        ),
    ];
    for (what, cert, ca_pem, said) in cases {
        let url = https_server(cert).await;
        let (session, report) = one_pass(&url, ca_pem).await;
        let error = session.submission.last_error.clone().unwrap_or_default();
        assert!(
            error.starts_with("TLS: ") && error.contains(said),
            "{what}: {error}"
        );
        assert!(!error.contains("error sending request"), "{what}: {error}");
        // max_attempts is 1, yet the session is pending, not failed: the attempt did not count.
        assert_eq!(
            (session.submission.status, session.submission.attempts),
            (SubmissionStatus::Pending, 0),
            "{what}"
        );
        assert_eq!(report.retrying, 1, "{what}: {report:?}");
        // Retried at the cap (fast_config: 60 s), not at the first backoff.
        assert_eq!(session.submission.next_attempt_at, Some(NOW + 60_000), "{what}");
    }
}

#[tokio::test]
async fn a_private_ca_in_a_pem_file_is_trusted_beside_the_system_roots() {
    let ca = ca();
    let url = https_server(leaf(&ca, "127.0.0.1", (2090, 1, 1))).await;
    let (session, report) = one_pass(&url, Some(&ca.pem)).await;
    assert_eq!(report.submitted, 1, "{:?}", session.submission.last_error);
    assert_eq!(session.submission.status, SubmissionStatus::Submitted);
    // A file that is not PEM is refused when the transport is built.
    assert!(HttpTransport::with_ca(&url, None, Duration::from_secs(1), Some(b"not a certificate")).is_err());
}
