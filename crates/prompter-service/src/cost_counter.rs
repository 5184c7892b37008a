//! `prompter_cost_usd_total{provider,model}`: spend at list prices in USD,
//! exposed as a Prometheus counter.
//!
//! The `metrics` facade's counters hold integers (a deliberate choice of
//! that crate, to keep them monotonic) and a gauge would be exposed as
//! `# TYPE … gauge`, which is not what a running total is. So the totals
//! live here, as integer micro-dollars (the unit costs are stored in, so the
//! counter and the usage API agree exactly), only ever added to, and
//! [`render`] writes them in USD as a counter family that `/metrics`
//! appends to the recorder's output. Process-wide like the recorder.

use crate::metrics_catalog::COST_USD_TOTAL;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{LazyLock, Mutex};

/// Micro-dollars by (provider, model).
static TOTALS: LazyLock<Mutex<BTreeMap<(String, String), u64>>> =
    LazyLock::new(|| Mutex::new(BTreeMap::new()));

/// Adds `micros` to the (provider, model) total (the series appears at its
/// first priced run, at that run's cost).
pub fn add(provider: &str, model: &str, micros: u64) {
    let mut totals = TOTALS.lock().unwrap_or_else(|p| p.into_inner());
    let slot = totals
        .entry((provider.to_owned(), model.to_owned()))
        .or_insert(0);
    *slot = slot.saturating_add(micros);
}

/// A label value escaped for the text exposition format.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The counter family in the Prometheus text format (nothing before the
/// first priced run); `global` labels (e.g. `service`, `env`) come first on
/// every sample, as the recorder puts them.
pub fn render(global: &[(String, String)]) -> String {
    let totals = TOTALS.lock().unwrap_or_else(|p| p.into_inner());
    if totals.is_empty() {
        return String::new();
    }
    let mut out = format!(
        "# HELP {COST_USD_TOTAL} Cost of runs at the price table's list prices, USD.\n\
         # TYPE {COST_USD_TOTAL} counter\n"
    );
    for ((provider, model), micros) in totals.iter() {
        out.push_str(COST_USD_TOTAL);
        out.push('{');
        for (k, v) in global {
            let _ = write!(out, "{k}=\"{}\",", escape(v));
        }
        let _ = writeln!(
            out,
            "provider=\"{}\",model=\"{}\"}} {}",
            escape(provider),
            escape(model),
            *micros as f64 / 1e6
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_render_as_a_counter_in_usd() {
        add("test-prov", "m\"1", 2_840);
        add("test-prov", "m\"1", 1);
        let text = render(&[("service".into(), "s".into())]);
        assert!(text.contains("# TYPE prompter_cost_usd_total counter\n"));
        assert!(
            text.contains(
                "prompter_cost_usd_total{service=\"s\",provider=\"test-prov\",model=\"m\\\"1\"} 0.002841\n"
            ),
            "{text}"
        );
    }
}
