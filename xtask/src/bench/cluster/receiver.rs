//! A tiny webhook receiver: HTTP/1.1 on a loopback port, answers 200 to
//! every request and counts deliveries per `X-Prompter-Event-Id`.

use super::Res;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Deliveries per event id.
pub(super) type Counts = Arc<Mutex<BTreeMap<String, u32>>>;

/// A running receiver (stopped when dropped).
#[derive(Debug)]
pub(super) struct Receiver {
    pub(super) addr: SocketAddr,
    pub(super) counts: Counts,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    /// Listens on a free loopback port.
    pub(super) async fn start() -> Res<Receiver> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let counts: Counts = Arc::default();
        let c = counts.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream, c.clone()));
            }
        });
        Ok(Receiver { addr, counts, task })
    }

    /// Deliveries so far, per event id.
    pub(super) fn snapshot(&self) -> BTreeMap<String, u32> {
        self.counts.lock().map(|m| m.clone()).unwrap_or_default()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One keep-alive connection: read a request head and its body, count,
/// answer 200, repeat.
async fn serve(mut s: TcpStream, counts: Counts) {
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    let mut chunk = [0u8; 4096];
    loop {
        let head_end = loop {
            if let Some(i) = find(&buf, b"\r\n\r\n") {
                break i + 4;
            }
            match s.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        let header = |name: &str| {
            head.lines().find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.trim()
                    .eq_ignore_ascii_case(name)
                    .then(|| v.trim().to_owned())
            })
        };
        let len: usize = header("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        while buf.len() < head_end + len {
            match s.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        let id = header("x-prompter-event-id").unwrap_or_else(|| "?".into());
        if let Ok(mut m) = counts.lock() {
            *m.entry(id).or_default() += 1;
        }
        buf.drain(..head_end + len);
        if s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
            .await
            .is_err()
        {
            return;
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}
