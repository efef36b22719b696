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
pub struct HttpReply {
    /// The status code.
    pub status: u16,
    /// `Retry-After`, when present and readable (seconds or an HTTP date).
    pub retry_after: Option<Duration>,
}

/// Why no answer came.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    /// No answer within the request timeout.
    #[error("request timed out")]
    Timeout,
    /// Connection refused, reset, DNS, TLS...
    #[error("network error: {0}")]
    Network(String),
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

/// POSTs with reqwest (rustls), as CONTRACT.md describes.
#[derive(Clone)]
pub struct HttpTransport {
    client: reqwest::Client,
    endpoint: reqwest::Url,
    authorization: Option<Secret>,
}

impl std::fmt::Debug for HttpTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpTransport")
            .field("endpoint", &self.endpoint.as_str())
            .field("authorization", &self.authorization)
            .finish()
    }
}

impl HttpTransport {
    /// A transport for `endpoint` with a per-request `timeout`.
    pub fn new(
        endpoint: &str,
        authorization: Option<Secret>,
        timeout: Duration,
    ) -> Result<Self, TransportError> {
        let endpoint = reqwest::Url::parse(endpoint)
            .map_err(|e| TransportError::Invalid(format!("endpoint {endpoint:?}: {e}")))?;
        if !matches!(endpoint.scheme(), "http" | "https") {
            return Err(TransportError::Invalid(format!(
                "endpoint {endpoint}: only http and https"
            )));
        }
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| TransportError::Invalid(e.to_string()))?;
        Ok(Self {
            client,
            endpoint,
            authorization,
        })
    }
}

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

impl Transport for HttpTransport {
    fn post(&self, request: SubmissionRequest) -> ReplyFuture {
        let this = self.clone();
        Box::pin(async move {
            let body =
                serde_json::to_vec(&request.body).map_err(|e| TransportError::Invalid(e.to_string()))?;
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
                    // Without the URL's query or any header: just what failed.
                    TransportError::Network(e.without_url().to_string())
                }
            })?;
            let retry_after = response
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(parse_retry_after);
            Ok(HttpReply {
                status: response.status().as_u16(),
                retry_after,
            })
        })
    }
}

#[cfg(test)]
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
    fn bad_endpoints_are_refused() {
        assert!(HttpTransport::new("ftp://x", None, Duration::from_secs(1)).is_err());
        assert!(HttpTransport::new("not a url", None, Duration::from_secs(1)).is_err());
    }
}
