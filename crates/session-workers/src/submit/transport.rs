//! The HTTP side of a submission: the request CONTRACT.md fixes, and its reply.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use serde::Serialize;

/// A secret header value (the `Authorization` value): never in `Debug`, logs or errors.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

/// The body the app sent: `{"sessionId", "startTime", "endTime", "messages", "deviceIP",
/// "lisIP"}`, plus `"performer"` when configured.
#[derive(Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SubmissionBody {
    /// The session id.
    pub session_id: String,
    /// Capture start, epoch ms.
    pub start_time: u64,
    /// Capture end, epoch ms.
    pub end_time: Option<u64>,
    /// The HL7 messages as text.
    pub messages: Vec<String>,
    /// The analyzer's address.
    #[serde(rename = "deviceIP")]
    pub device_ip: Option<String>,
    /// The LIS's address.
    #[serde(rename = "lisIP")]
    pub lis_ip: Option<String>,
    /// Who performed the analysis, when configured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub performer: Option<String>,
    /// Set for a session the LIS did not wholly receive (`lisClosed`, with
    /// `lisMissedBytes`): the archive must know. Left out otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interrupted: Option<serde_json::Value>,
}

impl SubmissionBody {
    /// The exact bytes sent: compact JSON, keys in the order above (`performer` left out
    /// when unset, `null` for an absent end time or address).
    pub fn to_bytes(&self) -> Vec<u8> {
        // Plain strings and numbers: serialising cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// The `Idempotency-Key` of this body: the lowercase hex SHA-256 of
    /// [`SubmissionBody::to_bytes`]. The same content gets the same key in any store,
    /// after any re-put, rollback or re-import; different content a different key. A
    /// receiver can recompute it from the body it got.
    pub fn idempotency_key(&self) -> String {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(self.to_bytes());
        digest.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// `url` with its secrets replaced by `[redacted]`: the password of its user info (the
/// user name too) and every query value. For logs, errors and `config`.
pub fn redacted_url(url: &str) -> String {
    let Ok(mut parsed) = url::Url::parse(url) else {
        // Unparsable: show nothing that might be a secret.
        return "[an unparsable URL]".into();
    };
    if parsed.username().is_empty()
        && parsed.password().is_none()
        && parsed.query().is_none()
        && parsed.fragment().is_none()
    {
        // Nothing secret: shown exactly as given.
        return url.to_owned();
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        let _ = parsed.set_username("[redacted]");
        let _ = parsed.set_password(None);
    }
    if parsed.query().is_some() {
        let keys: Vec<String> = parsed.query_pairs().map(|(k, _)| k.into_owned()).collect();
        let mut query = parsed.query_pairs_mut();
        query.clear();
        for key in keys {
            query.append_pair(&key, "[redacted]");
        }
    }
    parsed.set_fragment(None);
    parsed.to_string()
}

/// Whether `value` can be sent as a header value: visible ASCII, inner spaces and tabs,
/// no line breaks (a token file with a Windows line ending ends in CR), nothing else.
pub fn is_valid_header_value(value: &str) -> bool {
    !value.is_empty()
        && value.bytes().all(|b| b == b'\t' || (0x20..0x7f).contains(&b))
        && !value.ends_with([' ', '\t'])
}

impl std::fmt::Debug for SubmissionBody {
    // Messages are patient data: Debug names the session and counts, nothing more.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SubmissionBody")
            .field("session_id", &self.session_id)
            .field("messages", &self.messages.len())
            .finish_non_exhaustive()
    }
}

/// One POST to make.
#[derive(Debug, Clone)]
pub struct SubmissionRequest {
    /// Sent as `Idempotency-Key`: the same on every attempt for this session, ever.
    pub idempotency_key: String,
    /// The JSON body.
    pub body: SubmissionBody,
}

/// What the server answered.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct HttpReply {
    /// The status code.
    pub status: u16,
    /// `Retry-After`, when present and readable (seconds or an HTTP date).
    pub retry_after: Option<Duration>,
    /// `Location` of a redirect, secrets redacted (redirects are never followed).
    pub location: Option<String>,
    /// The server's `Date`, epoch ms: independent evidence of the time, which the
    /// worker compares with the store's clock.
    pub date: Option<u64>,
}

impl HttpReply {
    /// A reply with this status, no `Retry-After` and no `Location` (what a custom
    /// transport or a test builds).
    pub fn new(status: u16) -> Self {
        HttpReply {
            status,
            retry_after: None,
            location: None,
            date: None,
        }
    }

    /// With the server's `Date`, epoch ms.
    pub fn date(mut self, epoch_ms: u64) -> Self {
        self.date = Some(epoch_ms);
        self
    }

    /// With a `Retry-After`.
    pub fn retry_after(mut self, after: Duration) -> Self {
        self.retry_after = Some(after);
        self
    }

    /// With a redirect's `Location`.
    pub fn location(mut self, location: impl Into<String>) -> Self {
        self.location = Some(location.into());
        self
    }
}

/// Why no answer came.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// No answer within the request timeout.
    #[error("request timed out")]
    Timeout,
    /// Connection refused, reset, DNS...
    #[error("network error: {0}")]
    Network(String),
    /// The TLS handshake failed: the endpoint's certificate is not trusted, expired or
    /// for another name. A configuration problem, not a passing one.
    #[error("TLS: {0}")]
    Tls(String),
    /// The request could not be built (a bad endpoint, an invalid header value).
    #[error("invalid request: {0}")]
    Invalid(String),
}

/// A reply on its way; owns everything it needs.
pub type ReplyFuture = Pin<Box<dyn Future<Output = Result<HttpReply, TransportError>> + Send>>;

/// Sends submission requests. [`HttpTransport`] is the real one; tests mock it for what a
/// real server cannot produce.
#[cfg_attr(test, mockall::automock)]
pub trait Transport: Send + Sync + 'static {
    /// POSTs one request.
    fn post(&self, request: SubmissionRequest) -> ReplyFuture;
}

/// POSTs with reqwest (rustls), as CONTRACT.md describes (the `http` feature).
#[cfg(feature = "http")]
#[derive(Clone)]
pub struct HttpTransport {
    client: reqwest::Client,
    endpoint: reqwest::Url,
    authorization: Option<Secret>,
}

#[cfg(feature = "http")]
impl std::fmt::Debug for HttpTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpTransport")
            .field("endpoint", &redacted_url(self.endpoint.as_str()))
            .field("authorization", &self.authorization)
            .finish()
    }
}

#[cfg(feature = "http")]
impl HttpTransport {
    /// A transport for `endpoint` with a per-request `timeout`.
    pub fn new(
        endpoint: &str,
        authorization: Option<Secret>,
        timeout: Duration,
    ) -> Result<Self, TransportError> {
        Self::with_ca(endpoint, authorization, timeout, None)
    }

    /// [`HttpTransport::new`], also trusting the certificates of `ca_pem` (a PEM
    /// bundle: a private CA) beside the system's roots.
    pub fn with_ca(
        endpoint: &str,
        authorization: Option<Secret>,
        timeout: Duration,
        ca_pem: Option<&[u8]>,
    ) -> Result<Self, TransportError> {
        let shown = redacted_url(endpoint);
        let endpoint = reqwest::Url::parse(endpoint)
            .map_err(|e| TransportError::Invalid(format!("endpoint {shown}: {e}")))?;
        if !matches!(endpoint.scheme(), "http" | "https") {
            return Err(TransportError::Invalid(format!(
                "endpoint {shown}: only http and https"
            )));
        }
        if authorization
            .as_ref()
            .is_some_and(|a| !is_valid_header_value(a.expose()))
        {
            return Err(TransportError::Invalid(
                "the authorization value is not a valid header value (printable ASCII, no line breaks); value not shown".into(),
            ));
        }
        // Redirects are never followed: a 3xx is an answer (and not a delivery), and
        // nothing, the Idempotency-Key least of all, is ever sent to another host.
        let mut builder = reqwest::Client::builder()
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none());
        if let Some(pem) = ca_pem {
            let roots = reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|e| TransportError::Invalid(format!("the CA file is not a PEM bundle: {e}")))?;
            if roots.is_empty() {
                return Err(TransportError::Invalid("the CA file holds no certificate".into()));
            }
            builder = builder.tls_certs_merge(roots);
        }
        let client = builder
            .build()
            .map_err(|e| TransportError::Invalid(e.to_string()))?;
        Ok(Self {
            client,
            endpoint,
            authorization,
        })
    }
}

/// An error and its causes, joined: reqwest's own text ("error sending request") says
/// nothing of the cause, which is in the sources.
#[cfg(feature = "http")]
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let said = cause.to_string();
        if !text.contains(&said) {
            text.push_str(": ");
            text.push_str(&said);
        }
        source = cause.source();
    }
    text
}

/// What a failed TLS handshake says, in an operator's words, from an error chain's
/// text (rustls names the certificate problem); `None` when it was not TLS.
fn tls_problem(chain: &str) -> Option<String> {
    let what = if chain.contains("UnknownIssuer") || chain.contains("unknown issuer") {
        "the endpoint's certificate is not trusted (unknown issuer): add its CA with ca_file"
    } else if chain.contains("Expired") || chain.contains("expired") {
        "the endpoint's certificate has expired (or the clock is wrong)"
    } else if chain.contains("NotValidYet") {
        "the endpoint's certificate is not valid yet (or the clock is wrong)"
    } else if chain.contains("NotValidForName") || chain.contains("not valid for name") {
        "the endpoint's certificate is for another name than the endpoint's host"
    } else if chain.contains("invalid peer certificate") || chain.contains("certificate") {
        "the endpoint's certificate was refused"
    } else if chain.contains("tls") || chain.contains("TLS") || chain.contains("handshake") {
        "the TLS handshake failed"
    } else {
        return None;
    };
    Some(format!("{what} ({})", chain.rsplit(": ").next().unwrap_or(chain)))
}

#[cfg(feature = "http")]
fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(
        at.duration_since(std::time::SystemTime::now())
            .unwrap_or_default(),
    )
}

#[cfg(feature = "http")]
impl Transport for HttpTransport {
    fn post(&self, request: SubmissionRequest) -> ReplyFuture {
        let this = self.clone();
        Box::pin(async move {
            let body = request.body.to_bytes();
            let mut builder = this
                .client
                .post(this.endpoint.clone())
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .header("Idempotency-Key", &request.idempotency_key)
                .body(body);
            if let Some(secret) = &this.authorization {
                let mut value = reqwest::header::HeaderValue::from_str(secret.expose()).map_err(|_| {
                    TransportError::Invalid("the authorization value is not a valid header".into())
                })?;
                value.set_sensitive(true);
                builder = builder.header(reqwest::header::AUTHORIZATION, value);
            }
            let response = builder.send().await.map_err(|e| {
                if e.is_timeout() {
                    TransportError::Timeout
                } else {
                    // Without the URL's query or any header: just what failed, and why.
                    let chain = error_chain(&e.without_url());
                    match tls_problem(&chain) {
                        Some(problem) => TransportError::Tls(problem),
                        None => TransportError::Network(chain),
                    }
                }
            })?;
            let retry_after = response
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(parse_retry_after);
            let location = response.headers().get(reqwest::header::LOCATION).map(|v| {
                // A relative Location is resolved against the endpoint, then shown
                // without its secrets.
                let raw = String::from_utf8_lossy(v.as_bytes()).into_owned();
                this.endpoint
                    .join(&raw)
                    .map_or_else(|_| redacted_url(&raw), |url| redacted_url(url.as_str()))
            });
            let date = response
                .headers()
                .get(reqwest::header::DATE)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| httpdate::parse_http_date(v).ok())
                .and_then(|at| at.duration_since(std::time::UNIX_EPOCH).ok())
                .map(|d| d.as_millis() as u64);
            Ok(HttpReply {
                status: response.status().as_u16(),
                retry_after,
                location,
                date,
            })
        })
    }
}

#[cfg(test)]
mod tls_tests {
    use super::tls_problem;

    #[test]
    fn tls_problems_are_named_in_an_operators_words() {
        let cases = [
            (
                "error sending request: client error (Connect): invalid peer certificate: UnknownIssuer",
                "not trusted",
            ),
            (
                "error sending request: client error (Connect): invalid peer certificate: Expired",
                "expired",
            ),
            (
                "error sending request: invalid peer certificate: NotValidForName: certificate is not valid for name",
                "another name",
            ),
            (
                "error sending request: invalid peer certificate: BadSignature",
                "refused",
            ),
            (
                "error sending request: received fatal alert: HandshakeFailure (TLS)",
                "handshake",
            ),
            // rustls's `NoCertificatesPresented`: an endpoint that sent no certificate
            // at all, with no "invalid peer certificate" in the chain.
            (
                "error sending request: client error (Connect): peer sent no certificates",
                "refused",
            ),
        ];
        for (chain, said) in cases {
            let problem = tls_problem(chain).unwrap_or_default();
            assert!(problem.contains(said), "{chain}: {problem}");
        }
        assert_eq!(
            tls_problem("error sending request: tcp connect error: Connection refused"),
            None
        );
    }
}

#[cfg(all(test, feature = "http"))]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        assert_eq!(parse_retry_after("120"), Some(Duration::from_secs(120)));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[test]
    fn secrets_stay_out_of_debug() {
        let t = HttpTransport::new(
            "http://127.0.0.1:9/x",
            Some(Secret::new("Bearer hunter2")),
            Duration::from_secs(1),
        )
        .unwrap();
        let shown = format!("{t:?}");
        assert!(
            !shown.contains("hunter2") && shown.contains("redacted"),
            "{shown}"
        );
    }

    #[test]
    fn urls_lose_their_secrets() {
        assert_eq!(
            redacted_url("http://user:hunter2@127.0.0.1:8080/api?token=abc&x=1#frag"),
            "http://%5Bredacted%5D@127.0.0.1:8080/api?token=%5Bredacted%5D&x=%5Bredacted%5D"
        );
        assert_eq!(
            redacted_url("https://lis.example/api/sessions"),
            "https://lis.example/api/sessions"
        );
        assert!(!redacted_url("not a url hunter2").contains("hunter2"));
        // A password without a user name, or a user name alone, is still a credential.
        for (url, secret) in [
            ("https://:hunter2@lis.example/api", "hunter2"),
            ("https://alice@lis.example/api", "alice"),
            ("https://lis.example/api#hunter2", "hunter2"),
        ] {
            let shown = redacted_url(url);
            assert!(
                !shown.contains(secret) && shown.starts_with("https://"),
                "{url} -> {shown}"
            );
        }
    }

    #[test]
    fn a_body_shows_its_session_and_message_count_never_a_message() {
        let body = SubmissionBody {
            session_id: "session-9".into(),
            start_time: 1,
            end_time: None,
            messages: vec!["MSH|^~\\&|PID|1||Doe^John".into(), "OBX|1".into()],
            device_ip: None,
            lis_ip: None,
            performer: None,
            interrupted: None,
        };
        let shown = format!("{body:?}");
        assert!(
            shown.contains("session-9") && shown.contains("messages: 2"),
            "{shown}"
        );
        assert!(!shown.contains("Doe") && !shown.contains("MSH"), "{shown}");
    }

    #[test]
    fn header_values_with_line_breaks_are_refused() {
        assert!(is_valid_header_value("Bearer abc.def"));
        for bad in [
            "Bearer abc\r",
            "Bearer abc\n",
            "a\r\nX-Evil: 1",
            "Bearer \u{0}",
            "Bearer é",
            "Bearer x ",
        ] {
            assert!(!is_valid_header_value(bad), "{bad:?}");
        }
        let refused = HttpTransport::new(
            "http://127.0.0.1:9/x",
            Some(Secret::new("Bearer hunter2\r")),
            Duration::from_secs(1),
        )
        .unwrap_err();
        assert!(!refused.to_string().contains("hunter2"), "{refused}");
    }

    #[test]
    fn the_key_is_a_function_of_the_body() {
        let body = SubmissionBody {
            session_id: "s-1".into(),
            start_time: 1,
            end_time: Some(2),
            messages: vec!["MSH|1".into()],
            device_ip: None,
            lis_ip: Some("10.0.0.2".into()),
            performer: None,
            interrupted: None,
        };
        use sha2::Digest;
        let expected: String = sha2::Sha256::digest(
            br#"{"sessionId":"s-1","startTime":1,"endTime":2,"messages":["MSH|1"],"deviceIP":null,"lisIP":"10.0.0.2"}"#,
        )
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
        assert_eq!(body.idempotency_key(), expected);
        let mut other = body.clone();
        other.performer = Some("lab-1".into());
        assert_ne!(other.idempotency_key(), body.idempotency_key());
    }

    #[test]
    fn bad_endpoints_are_refused() {
        assert!(HttpTransport::new("ftp://x", None, Duration::from_secs(1)).is_err());
        assert!(HttpTransport::new("not a url", None, Duration::from_secs(1)).is_err());
    }
}
