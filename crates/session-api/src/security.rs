//! Who may call the local API: sessions are patient data.
//!
//! - Loopback by default; a listener beyond loopback needs a token (checked at start-up).
//! - With a token, every request carries `Authorization: Bearer <token>`.
//! - Against DNS rebinding: the `Host` must be the listen address, `localhost` or
//!   `127.0.0.1` (any port of those two: the page is reached through them).
//! - Against CSRF: a mutating request whose `Origin` is present must come from the page's
//!   own origin.
//! - Every response forbids inline script and any other origin (Content-Security-Policy).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::ApiState;
use crate::handlers::error;

/// The Content-Security-Policy of every response: nothing inline, nothing from elsewhere.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
                       connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The rules a request must pass.
#[derive(Clone)]
pub struct Guard {
    /// `http_listen` as configured (`127.0.0.1:8470`) and as bound (the real port).
    hosts: Vec<String>,
    /// The bearer token, when configured.
    token: Option<String>,
}

/// The token is a secret: `Debug` says only whether there is one.
impl std::fmt::Debug for Guard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guard")
            .field("hosts", &self.hosts)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl Guard {
    /// The rules for a listener configured as `listen` and bound to `bound`.
    pub fn new(listen: &str, bound: SocketAddr, token: Option<String>) -> Self {
        let mut hosts = vec![listen.to_ascii_lowercase(), bound.to_string()];
        for name in ["localhost", "127.0.0.1"] {
            hosts.push(name.to_owned());
            hosts.push(format!("{name}:{}", bound.port()));
        }
        Guard { hosts, token }
    }

    fn host_allowed(&self, host: Option<&str>) -> bool {
        host.is_some_and(|h| self.hosts.iter().any(|allowed| allowed.eq_ignore_ascii_case(h)))
    }

    fn token_ok(&self, authorization: Option<&str>) -> bool {
        let Some(token) = &self.token else { return true };
        let Some(given) = authorization.and_then(|a| a.strip_prefix("Bearer ")) else {
            return false;
        };
        // Constant time in the token's length: no early exit on the first difference.
        given.len() == token.len()
            && given
                .bytes()
                .zip(token.bytes())
                .fold(0u8, |diff, (a, b)| diff | (a ^ b))
                == 0
    }
}

/// Whether a listen address stays on this machine.
pub fn is_loopback(listen: &str) -> bool {
    let host = listen.rsplit_once(':').map_or(listen, |(h, _)| h);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The middleware: refuses what the rules forbid, and sets the security headers.
pub(crate) async fn check(State(state): State<Arc<ApiState>>, request: Request, next: Next) -> Response {
    let refused = refusal(&state.guard, &request);
    let response = match refused {
        Some((status, message)) => error(status, message).into_response(),
        None => next.run(request).await,
    };
    hardened(response)
}

/// Why `guard` refuses `request` (a foreign Host, a missing token, a change from another
/// origin), if it does.
pub(crate) fn refusal(guard: &Guard, request: &Request) -> Option<(StatusCode, String)> {
    let headers = request.headers();
    let text = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
    let host = text(header::HOST);
    if !guard.host_allowed(host) {
        Some((StatusCode::FORBIDDEN, "this Host is not served here".to_owned()))
    } else if !guard.token_ok(text(header::AUTHORIZATION)) {
        Some((
            StatusCode::UNAUTHORIZED,
            "a valid bearer token is required".to_owned(),
        ))
    } else if request.method() != Method::GET
        && request.method() != Method::HEAD
        && text(header::ORIGIN)
            .is_some_and(|origin| Some(origin) != host.map(|h| format!("http://{h}")).as_deref())
    {
        Some((
            StatusCode::FORBIDDEN,
            "requests from another origin may not change anything".to_owned(),
        ))
    } else {
        None
    }
}

/// `response` with the headers every answer carries (the CSP, no sniffing, no referrer,
/// no caching).
pub(crate) fn hardened(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_addresses_count_as_loopback() {
        for local in ["127.0.0.1:8470", "localhost:1", "[::1]:80", "127.1.2.3:9"] {
            assert!(is_loopback(local), "{local}");
        }
        for remote in ["0.0.0.0:8470", "192.168.1.5:80", "lab-pc:8470", "[::]:80"] {
            assert!(!is_loopback(remote), "{remote}");
        }
    }

    #[test]
    fn hosts_and_tokens() {
        let guard = Guard::new(
            "127.0.0.1:0",
            "127.0.0.1:4321".parse().unwrap(),
            Some("s3cret".into()),
        );
        assert!(guard.host_allowed(Some("127.0.0.1:4321")));
        assert!(guard.host_allowed(Some("localhost:4321")));
        assert!(!guard.host_allowed(Some("evil.example:4321")));
        assert!(!guard.host_allowed(None));
        assert!(guard.token_ok(Some("Bearer s3cret")));
        // The same length, one byte or two swapped bytes off: only a whole match counts.
        for bad in [
            None,
            Some("Bearer s3cre"),
            Some("s3cret"),
            Some("Bearer s3cret "),
            Some("Bearer s3creX"),
            Some("Bearer 3scret"),
        ] {
            assert!(!guard.token_ok(bad), "{bad:?}");
        }
    }
}
