//! Usage and cost of runs (issue 17): the token counts and cost a run
//! stores (priced with [`crate::pricing::PriceTable`]), their metrics, and
//! the usage report read from the storage's daily rollups.

use crate::metrics_catalog as m;
use crate::{Prompter, ServiceResult};
use prompter_providers::Usage;
use prompter_storage::{RunUsage, Scope, UsageQuery, UsageRow};

fn tokens(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl Prompter {
    /// What a run stores about its provider call, counted in
    /// `prompter_tokens_total`, `prompter_cost_usd_total` and, for a model
    /// without a price, `prompter_cost_unpriced_total`.
    pub(crate) fn run_usage(&self, provider: &str, model: &str, usage: Option<&Usage>) -> RunUsage {
        let Some(u) = usage else {
            // Nothing reported: nulls, never zeros (and no cost).
            return RunUsage {
                provider: Some(provider.to_string()),
                ..RunUsage::default()
            };
        };
        let (p, md) = (provider.to_string(), model.to_string());
        for (kind, n) in [
            ("input", Some(u.input_tokens)),
            ("output", Some(u.output_tokens)),
            ("cached_input", u.cached_input_tokens),
            ("cache_write_input", u.cache_write_input_tokens),
        ] {
            if let Some(n) = n {
                metrics::counter!(m::TOKENS_TOTAL, "provider" => p.clone(), "model" => md.clone(), "kind" => kind)
                    .increment(n);
            }
        }
        let cost = self.inner.cfg.prices.cost_micros(provider, model, u);
        match cost {
            Some(c) => crate::cost_counter::add(provider, model, u64::try_from(c).unwrap_or(0)),
            None => metrics::counter!(m::COST_UNPRICED_TOTAL, "provider" => p, "model" => md)
                .increment(1),
        }
        RunUsage {
            provider: Some(provider.to_string()),
            input_tokens: Some(tokens(u.input_tokens)),
            output_tokens: Some(tokens(u.output_tokens)),
            cached_input_tokens: u.cached_input_tokens.map(tokens),
            cache_write_input_tokens: u.cache_write_input_tokens.map(tokens),
            cost_micros: cost,
        }
    }

    /// The usage report in `scope` (daily rollups; never a scan of results).
    pub async fn usage(&self, scope: &Scope, q: &UsageQuery) -> ServiceResult<Vec<UsageRow>> {
        Ok(self.inner.store.usage(scope, q).await?)
    }
}
