//! N `prompter serve` instances on one database and Redis, started one
//! after the other (the first migrates), each with its own instance id and
//! log (`target/bench/server-cluster-i<N>.log`).

use super::Res;
use crate::bench::http::load::metric_sum;
use crate::bench::http::server::{Server, ServerCfg};
use crate::bench::http::Plan;
use crate::client::request;
use hyper::body::Bytes;
use hyper::Method;
use std::net::SocketAddr;

/// The running instances.
#[derive(Debug)]
pub(super) struct Fleet {
    pub(super) servers: Vec<Server>,
}

impl Fleet {
    /// Starts `n` instances of `base` (its extra arguments plus `extra`).
    pub(super) async fn start(
        plan: &Plan,
        base: &ServerCfg,
        n: usize,
        stub_latency_ms: u64,
        extra: &[String],
    ) -> Res<Fleet> {
        let mut fleet = Fleet {
            servers: Vec::with_capacity(n),
        };
        for i in 0..n {
            let mut cfg = base.clone();
            cfg.label = format!("cluster-i{i}");
            cfg.extra_args.extend(extra.iter().cloned());
            cfg.extra_args
                .extend(["--instance-id".to_owned(), format!("bench-i{i}")]);
            match Server::start(plan, &cfg, stub_latency_ms).await {
                Ok(s) => fleet.servers.push(s),
                Err(e) => {
                    fleet.stop().await;
                    return Err(e);
                }
            }
        }
        Ok(fleet)
    }

    /// Every instance's address.
    pub(super) fn addrs(&self) -> Vec<SocketAddr> {
        self.servers.iter().map(|s| s.addr).collect()
    }

    /// Sum of the instances' peak RSS, MiB.
    pub(super) fn peak_rss_mib(&self) -> Option<f64> {
        self.servers.iter().map(Server::peak_rss_mib).sum()
    }

    /// Sum of a metric over every instance's `/metrics`.
    pub(super) async fn metric(&self, name: &str) -> Res<f64> {
        let mut total = 0.0;
        for s in &self.servers {
            let (status, body) = request(s.addr, Method::GET, "/metrics", Bytes::new()).await?;
            if status != 200 {
                return Err(format!("/metrics of {}: {status}", s.addr).into());
            }
            total += metric_sum(&String::from_utf8_lossy(&body), name);
        }
        Ok(total)
    }

    /// Stops every instance (SIGTERM, graceful).
    pub(super) async fn stop(self) {
        for s in self.servers {
            s.stop().await;
        }
    }
}
