//! Requests from other sites: the `Host` allow-list (a DNS-rebinding page
//! cannot reach a loopback server with auth off: 421 `HOST_NOT_ALLOWED`)
//! and the `Origin` check of state-changing requests (a page on another
//! site cannot POST/PUT/DELETE: 403 `CROSS_ORIGIN`). Clients that send no
//! `Origin` (curl, SDKs) are unaffected. Applies to every route, the
//! console's and the JSON API's.

use crate::error::{ApiError, Code};
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{header, Method};
use actix_web::middleware::Next;
use actix_web::{web, Error, ResponseError};
use std::net::SocketAddr;

/// The hosts this server answers for (app data).
#[derive(Debug, Clone)]
pub struct SiteGuard {
    /// Lower-case host names without port; `None`: any host.
    hosts: Option<Vec<String>>,
}

impl SiteGuard {
    /// The bind address, `localhost`, `127.0.0.1`, `::1` and `extra`
    /// (`--allowed-hosts`). Without `extra` only a loopback bind is checked:
    /// that is where auth may be off and a DNS-rebinding page could reach the
    /// server; on any other bind (auth required) every host is accepted, as V7
    /// did, so a balancer's or proxy's host name keeps working.
    pub fn new(bind: SocketAddr, extra: &[String]) -> Self {
        let extra: Vec<String> = extra
            .iter()
            .map(|h| host_name(h.trim()))
            .filter(|h| !h.is_empty())
            .collect();
        if !bind.ip().is_loopback() && extra.is_empty() {
            return SiteGuard { hosts: None };
        }
        let mut hosts = vec![
            "localhost".to_owned(),
            "127.0.0.1".to_owned(),
            "::1".to_owned(),
        ];
        if !bind.ip().is_unspecified() {
            hosts.push(bind.ip().to_string());
        }
        hosts.extend(extra);
        SiteGuard { hosts: Some(hosts) }
    }

    /// Whether a `Host` header value names an allowed host.
    pub fn host_allowed(&self, host: &str) -> bool {
        match &self.hosts {
            None => true,
            Some(hosts) => hosts.contains(&host_name(host)),
        }
    }
}

/// The host name of a `Host` value or `host[:port]` entry: lower case,
/// without port, brackets or a trailing dot.
fn host_name(host: &str) -> String {
    let host = host.trim().to_ascii_lowercase();
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else if host.matches(':').count() == 1 {
        host.split(':').next().unwrap_or("")
    } else {
        // No port, or a bare IPv6 address.
        host.as_str()
    };
    name.trim_end_matches('.').to_owned()
}

/// `host[:port]` lower case, without a default port (`:80`, `:443`).
fn authority(a: &str) -> String {
    let a = a.trim().to_ascii_lowercase();
    for default in [":80", ":443"] {
        if let Some(bare) = a.strip_suffix(default) {
            return bare.to_owned();
        }
    }
    a
}

/// Whether `origin` (`scheme://host[:port]`) is the site `host` names.
fn same_site(origin: &str, host: &str) -> bool {
    match origin.split_once("://") {
        Some((_, rest)) => authority(rest.trim_end_matches('/')) == authority(host),
        None => false,
    }
}

fn is_safe(m: &Method) -> bool {
    matches!(*m, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// The middleware: 421 for a foreign `Host`, 403 for a state-changing
/// request from another `Origin`.
pub async fn guard(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| req.uri().authority().map(|a| a.to_string()));
    if let (Some(g), Some(h)) = (req.app_data::<web::Data<SiteGuard>>(), &host) {
        if !g.host_allowed(h) {
            let err = ApiError::new(
                Code::HostNotAllowed,
                format!("this server does not answer for the host {h:?} (--allowed-hosts)"),
            );
            return Ok(req.into_response(err.error_response()));
        }
    }
    if !is_safe(req.method()) {
        if let Some(origin) = req.headers().get(header::ORIGIN) {
            let origin = origin.to_str().unwrap_or("null");
            let own = host.as_deref().is_some_and(|h| same_site(origin, h));
            if !own {
                let err = ApiError::new(
                    Code::CrossOrigin,
                    format!(
                        "{} from the origin {origin:?} is refused: it is not this server's",
                        req.method()
                    ),
                );
                return Ok(req.into_response(err.error_response()));
            }
        }
    }
    next.call(req)
        .await
        .map(ServiceResponse::map_into_boxed_body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_matched_by_name_without_port() {
        let g = SiteGuard::new(
            "127.0.0.1:8080".parse().unwrap(),
            &["Prompter.example:443".into()],
        );
        for ok in [
            "127.0.0.1:8080",
            "localhost",
            "LOCALHOST:1",
            "[::1]:8080",
            "prompter.example",
            "prompter.example.",
        ] {
            assert!(g.host_allowed(ok), "{ok}");
        }
        for bad in [
            "evil.example",
            "evil.example:8080",
            "127.0.0.2",
            "localhost.evil.example",
        ] {
            assert!(!g.host_allowed(bad), "{bad}");
        }
        for open in ["0.0.0.0:8080", "10.1.2.3:8080", "[::]:8080"] {
            let any = SiteGuard::new(open.parse().unwrap(), &[]);
            assert!(any.host_allowed("anything.example"), "{open}");
        }
        let lo6 = SiteGuard::new("[::1]:8080".parse().unwrap(), &[]);
        assert!(lo6.host_allowed("[::1]:8080") && !lo6.host_allowed("evil.example"));
        let listed = SiteGuard::new("0.0.0.0:8080".parse().unwrap(), &["a.example".into()]);
        assert!(listed.host_allowed("a.example:8080") && !listed.host_allowed("b.example"));
    }

    #[test]
    fn origins_match_the_host_with_default_ports_folded() {
        assert!(same_site("http://127.0.0.1:8080", "127.0.0.1:8080"));
        assert!(same_site("https://p.example", "p.example:443"));
        assert!(same_site("http://p.example:80", "p.example"));
        assert!(!same_site("http://evil.example", "127.0.0.1:8080"));
        assert!(!same_site("http://127.0.0.1:9999", "127.0.0.1:8080"));
        assert!(!same_site("null", "127.0.0.1:8080"));
    }
}
