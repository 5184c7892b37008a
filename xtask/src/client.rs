//! The one HTTP/1.1 client of every subcommand: hyper over loopback TCP.
//!
//! The bench drives it directly (one keep-alive [`Sender`] per connection,
//! closed loop); the blocking tools (`check-dashboards`, `fuzz-api`) call
//! [`call`], which runs one request on a fresh connection on a private
//! current-thread runtime.

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::{self, SendRequest};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::TcpStream;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The sending half of one keep-alive connection.
pub type Sender = SendRequest<Full<Bytes>>;

/// Opens a connection (`TCP_NODELAY`); its driver runs on a spawned task.
pub async fn connect(addr: SocketAddr) -> Result<Sender, BoxError> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (sender, conn) = http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

/// A request: method, path, extra headers and body.
#[derive(Debug, Clone, Copy)]
pub struct Req<'a> {
    /// `GET`, `POST`, ….
    pub method: &'a Method,
    /// Path and query.
    pub path: &'a str,
    /// `Content-Type` (none when the body is empty and this is `None`).
    pub content_type: Option<&'a str>,
    /// Extra headers.
    pub headers: &'a [(&'a str, &'a str)],
}

impl<'a> Req<'a> {
    /// A request with a JSON content type and no extra headers.
    pub fn json(method: &'a Method, path: &'a str) -> Req<'a> {
        Req {
            method,
            path,
            content_type: Some("application/json"),
            headers: &[],
        }
    }
}

/// Sends one request on `sender` and reads the whole answer.
pub async fn send(
    sender: &mut Sender,
    req: Req<'_>,
    body: Bytes,
) -> Result<(u16, Bytes), BoxError> {
    let mut b = Request::builder()
        .method(req.method.clone())
        .uri(req.path)
        .header(hyper::header::HOST, "127.0.0.1");
    if let Some(ct) = req.content_type {
        b = b.header(hyper::header::CONTENT_TYPE, ct);
    }
    for (k, v) in req.headers {
        b = b.header(*k, *v);
    }
    let request = b.body(Full::new(body))?;
    sender.ready().await?;
    let res = sender.send_request(request).await?;
    let status = res.status().as_u16();
    let body = res.into_body().collect().await?.to_bytes();
    Ok((status, body))
}

/// One JSON request on a fresh connection (setup, health checks, `/metrics`).
pub async fn request(
    addr: SocketAddr,
    method: Method,
    path: &str,
    body: Bytes,
) -> Result<(u16, Bytes), BoxError> {
    let mut s = connect(addr).await?;
    send(&mut s, Req::json(&method, path), body).await
}

/// A blocking answer: status and body text.
#[derive(Debug)]
pub struct Response {
    /// HTTP status.
    pub status: u16,
    /// The body, decoded lossily as UTF-8.
    pub body: String,
}

/// Blocking: one request to `addr` (`host:port`) on a fresh connection,
/// bounded by 30 s.
pub fn call(addr: &str, req: Req<'_>, body: &[u8]) -> Result<Response, String> {
    let what = format!("{} {}", req.method, req.path);
    let sock: SocketAddr = addr
        .parse()
        .map_err(|e| format!("{what}: bad address {addr:?}: {e}"))?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("{what}: runtime: {e}"))?;
    let body = Bytes::copy_from_slice(body);
    rt.block_on(async {
        let fut = async {
            let mut s = connect(sock).await?;
            send(&mut s, req, body).await
        };
        match tokio::time::timeout(Duration::from_secs(30), fut).await {
            Ok(Ok((status, body))) => Ok(Response {
                status,
                body: String::from_utf8_lossy(&body).into_owned(),
            }),
            Ok(Err(e)) => Err(format!("{what} on {addr}: {e}")),
            Err(_) => Err(format!("{what} on {addr}: no answer within 30 s")),
        }
    })
}

/// Blocking `GET` with no extra headers.
pub fn get(addr: &str, path: &str) -> Result<Response, String> {
    call(
        addr,
        Req {
            method: &Method::GET,
            path,
            content_type: None,
            headers: &[],
        },
        &[],
    )
}
