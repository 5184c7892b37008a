//! The price table (issue 17): list prices per provider and model, read from
//! TOML (`config/prices.toml` is built in; `--price-table FILE` replaces
//! it), and the cost of one run in integer micro-dollars.
//!
//! Prices are USD per million tokens, which is exactly micro-dollars per
//! token; they are held as thousandths of that (nano-dollars per token), so
//! every price with up to three decimals is exact and a run's cost is one
//! integer sum, rounded once to the nearest micro-dollar.

use prompter_providers::Usage;
use serde::Deserialize;
use std::collections::HashMap;

/// The shipped default table (`config/prices.toml`).
pub const DEFAULT_PRICE_TABLE: &str = include_str!("../../../config/prices.toml");

/// One model's prices, nano-dollars per token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModelPrice {
    /// Uncached input.
    pub input: i64,
    /// Output (reasoning included).
    pub output: i64,
    /// Input read from a cache (falls back to `input`).
    pub cached_input: i64,
    /// Input written to a cache (falls back to `input`).
    pub cache_write: i64,
    /// Long-context tier: (prompt tokens above which it applies, its prices).
    pub long: Option<(u64, LongPrice)>,
}

/// Long-context tier prices, nano-dollars per token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LongPrice {
    /// Uncached input.
    pub input: i64,
    /// Output.
    pub output: i64,
    /// Cached input.
    pub cached_input: i64,
}

/// Why a price table was refused.
#[derive(Debug, thiserror::Error)]
pub enum PriceTableError {
    /// Not TOML, or not this file's shape.
    #[error("price table is not valid: {0}")]
    Parse(String),
    /// A row breaks a rule (negative, too many decimals, duplicate, …).
    #[error("price table row {row} ({provider}/{model}): {message}")]
    Row {
        /// 1-based `[[model]]` row.
        row: usize,
        /// Its provider.
        provider: String,
        /// Its model.
        model: String,
        /// What is wrong.
        message: String,
    },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileRow {
    provider: String,
    model: String,
    input_per_mtok: f64,
    output_per_mtok: f64,
    cached_input_per_mtok: Option<f64>,
    cache_write_per_mtok: Option<f64>,
    long_above_input_tokens: Option<u64>,
    input_long_per_mtok: Option<f64>,
    output_long_per_mtok: Option<f64>,
    cached_input_long_per_mtok: Option<f64>,
    // Provenance: required, so an operator's own table says where its numbers come from.
    source: String,
    #[allow(dead_code)]
    as_of: Option<String>,
    #[allow(dead_code)]
    note: Option<String>,
    #[allow(dead_code)]
    also_read: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    model: Vec<FileRow>,
    #[serde(default)]
    azure_deployments: HashMap<String, String>,
}

/// Prices by (provider, model) and the Azure deployment → model map.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PriceTable {
    prices: HashMap<(String, String), ModelPrice>,
    azure_deployments: HashMap<String, String>,
}

/// `usd_per_mtok` as nano-dollars per token; at most three decimals.
fn nanos(usd_per_mtok: f64) -> Result<i64, String> {
    if !usd_per_mtok.is_finite() || !(0.0..=1_000_000.0).contains(&usd_per_mtok) {
        return Err(format!("price {usd_per_mtok} is not between 0 and 1000000"));
    }
    let n = (usd_per_mtok * 1000.0).round();
    if (n - usd_per_mtok * 1000.0).abs() > 1e-6 {
        return Err(format!(
            "price {usd_per_mtok} has more than three decimals (USD per 1M tokens)"
        ));
    }
    Ok(n as i64)
}

/// Removes a trailing snapshot date (`-20250929`, `-2024-08-06`).
fn undated(model: &str) -> &str {
    let b = model.as_bytes();
    let digits = |s: &[u8]| s.iter().all(u8::is_ascii_digit);
    if b.len() > 9 && b[b.len() - 9] == b'-' && digits(&b[b.len() - 8..]) {
        return &model[..b.len() - 9];
    }
    if b.len() > 11
        && b[b.len() - 11] == b'-'
        && b[b.len() - 6] == b'-'
        && b[b.len() - 3] == b'-'
        && digits(&b[b.len() - 10..b.len() - 6])
        && digits(&b[b.len() - 5..b.len() - 3])
        && digits(&b[b.len() - 2..])
    {
        return &model[..b.len() - 11];
    }
    model
}

impl PriceTable {
    /// The shipped default table.
    pub fn builtin() -> PriceTable {
        PriceTable::parse(DEFAULT_PRICE_TABLE).expect("config/prices.toml is valid")
    }

    /// Parses a table (the shape of `config/prices.toml`).
    pub fn parse(text: &str) -> Result<PriceTable, PriceTableError> {
        let file: File = toml::from_str(text).map_err(|e| PriceTableError::Parse(e.to_string()))?;
        let mut prices = HashMap::new();
        for (i, r) in file.model.iter().enumerate() {
            let bad = |message: String| PriceTableError::Row {
                row: i + 1,
                provider: r.provider.clone(),
                model: r.model.clone(),
                message,
            };
            if r.source.trim().is_empty() {
                return Err(bad("`source` is empty".into()));
            }
            let input = nanos(r.input_per_mtok).map_err(bad)?;
            let opt = |p: Option<f64>, default: i64| {
                p.map(nanos).transpose().map(|v| v.unwrap_or(default))
            };
            let cached_input = opt(r.cached_input_per_mtok, input).map_err(bad)?;
            let long =
                match (
                    r.long_above_input_tokens,
                    r.input_long_per_mtok,
                    r.output_long_per_mtok,
                ) {
                    (None, None, None) if r.cached_input_long_per_mtok.is_none() => None,
                    (Some(above), Some(li), Some(lo)) => {
                        let li = nanos(li).map_err(bad)?;
                        Some((
                            above,
                            LongPrice {
                                input: li,
                                output: nanos(lo).map_err(bad)?,
                                cached_input: opt(r.cached_input_long_per_mtok, li).map_err(bad)?,
                            },
                        ))
                    }
                    _ => return Err(bad(
                        "long-context prices need long_above_input_tokens, input_long_per_mtok \
                         and output_long_per_mtok together"
                            .into(),
                    )),
                };
            let price = ModelPrice {
                input,
                output: nanos(r.output_per_mtok).map_err(bad)?,
                cached_input,
                cache_write: opt(r.cache_write_per_mtok, input).map_err(bad)?,
                long,
            };
            if prices
                .insert((r.provider.clone(), r.model.clone()), price)
                .is_some()
            {
                return Err(bad("duplicate (provider, model)".into()));
            }
        }
        Ok(PriceTable {
            prices,
            azure_deployments: file.azure_deployments,
        })
    }

    /// Adds Azure deployment → model mappings (a flag's, over the file's).
    pub fn with_azure_deployments(
        mut self,
        map: impl IntoIterator<Item = (String, String)>,
    ) -> PriceTable {
        self.azure_deployments.extend(map);
        self
    }

    /// Number of priced models.
    pub fn len(&self) -> usize {
        self.prices.len()
    }

    /// Whether no model is priced.
    pub fn is_empty(&self) -> bool {
        self.prices.is_empty()
    }

    /// The price of `model` at `provider` (Azure: `model` is the deployment
    /// and must be mapped; see the module doc of `config/prices.toml`).
    pub fn price(&self, provider: &str, model: &str) -> Option<&ModelPrice> {
        let model = if provider == "azure-openai" {
            self.azure_deployments.get(model)?.as_str()
        } else {
            model
        };
        let model = model.strip_prefix("models/").unwrap_or(model);
        let get = |m: &str| self.prices.get(&(provider.to_string(), m.to_string()));
        get(model).or_else(|| get(undated(model))).or_else(|| {
            // A dated row asked for by its alias (or another snapshot date).
            let want = undated(model);
            self.prices
                .iter()
                .filter(|((p, m), _)| p == provider && undated(m) == want)
                .min_by(|a, b| a.0 .1.cmp(&b.0 .1))
                .map(|(_, price)| price)
        })
    }

    /// Cost of one run in micro-dollars, or None when the model has no price.
    pub fn cost_micros(&self, provider: &str, model: &str, usage: &Usage) -> Option<i64> {
        Some(self.price(provider, model)?.cost_micros(usage))
    }
}

impl ModelPrice {
    /// Cost of `usage` in micro-dollars (nearest; halves round up).
    pub fn cost_micros(&self, usage: &Usage) -> i64 {
        let cached = usage.cached_input_tokens.unwrap_or(0);
        let written = usage.cache_write_input_tokens.unwrap_or(0);
        let uncached = usage.input_tokens.saturating_sub(cached + written);
        let (input, output, cached_input) = match self.long {
            Some((above, l)) if usage.input_tokens > above => (l.input, l.output, l.cached_input),
            _ => (self.input, self.output, self.cached_input),
        };
        let n = |tokens: u64, price: i64| i128::from(tokens) * i128::from(price);
        let nanos = n(uncached, input)
            + n(cached, cached_input)
            + n(written, self.cache_write)
            + n(usage.output_tokens, output);
        i64::try_from((nanos + 500) / 1000).unwrap_or(i64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(i: u64, o: u64, c: Option<u64>, w: Option<u64>) -> Usage {
        Usage {
            input_tokens: i,
            output_tokens: o,
            cached_input_tokens: c,
            cache_write_input_tokens: w,
        }
    }

    #[test]
    fn builtin_table_parses_and_prices_the_main_models() {
        let t = PriceTable::builtin();
        assert!(t.len() >= 20);
        for (p, m) in [
            ("openai", "gpt-4o"),
            ("openai", "gpt-4o-2024-08-06"),
            ("anthropic", "claude-sonnet-4-5"),
            ("anthropic", "claude-sonnet-4-5-20250929"),
            ("google", "gemini-2.5-flash"),
            ("google", "models/gemini-2.5-pro"),
        ] {
            assert!(t.price(p, m).is_some(), "{p}/{m}");
        }
        assert!(t.price("openai", "gpt-9").is_none());
        // Azure is priced by the underlying model only.
        assert!(t.price("azure-openai", "gpt-4o").is_none());
        let t = t.with_azure_deployments([("prod-chat".to_string(), "gpt-4o".to_string())]);
        assert_eq!(t.price("azure-openai", "prod-chat").unwrap().input, 2_500);
    }

    #[test]
    fn cost_is_exact_to_the_micro_dollar() {
        let t = PriceTable::builtin();
        // gpt-4o: $2.50 in, $1.25 cached, $10 out per 1M tokens.
        // 2048 in (1920 cached) + 12 out = 128*2.5 + 1920*1.25 + 12*10 = 320 + 2400 + 120.
        let u = usage(2048, 12, Some(1920), None);
        assert_eq!(t.cost_micros("openai", "gpt-4o", &u), Some(2_840));
        // claude-sonnet-4-5: $3 in, $0.30 read, $3.75 write, $15 out.
        // 1110 in = 10 + 1000 read + 100 written; 5 out.
        let u = usage(1110, 5, Some(1000), Some(100));
        assert_eq!(
            t.cost_micros("anthropic", "claude-sonnet-4-5-20250929", &u),
            Some(30 + 300 + 375 + 75)
        );
        // gpt-4o-mini: $0.15 in → 3 tokens = 0.45 µ$ → rounds to 0; 4 → 0.6 → 1.
        assert_eq!(
            t.cost_micros("openai", "gpt-4o-mini", &usage(3, 0, None, None)),
            Some(0)
        );
        assert_eq!(
            t.cost_micros("openai", "gpt-4o-mini", &usage(4, 0, None, None)),
            Some(1)
        );
        // Gemini 2.5 Pro long tier above 200k prompt tokens:
        // 200001 × $2.50 + 1000 × $15 = 500002.5 + 15000 µ$, half rounds up.
        let u = usage(200_001, 1_000, None, None);
        assert_eq!(t.cost_micros("google", "gemini-2.5-pro", &u), Some(515_003));
        let u = usage(200_000, 1_000, None, None);
        assert_eq!(
            t.cost_micros("google", "gemini-2.5-pro", &u),
            Some(250_000 + 10_000)
        );
        assert_eq!(t.cost_micros("openai", "nope", &u), None);
    }

    #[test]
    fn bad_tables_are_refused_with_the_row() {
        let row = |extra: &str| {
            format!("[[model]]\nprovider = \"openai\"\nmodel = \"m\"\ninput_per_mtok = 1\noutput_per_mtok = 2\nsource = \"s\"\n{extra}")
        };
        assert!(PriceTable::parse(&row("")).is_ok());
        for bad in [
            row("cached_input_per_mtok = -1"),
            row("cached_input_per_mtok = 0.0001"),
            row("input_long_per_mtok = 3"),
            row("unknown_field = 1"),
            format!("{}\n{}", row(""), row("")),
            "[[model]]\nprovider = \"x\"".to_string(),
        ] {
            assert!(PriceTable::parse(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn snapshot_dates_are_removed() {
        assert_eq!(undated("claude-sonnet-4-5-20250929"), "claude-sonnet-4-5");
        assert_eq!(undated("gpt-4o-2024-08-06"), "gpt-4o");
        assert_eq!(undated("gpt-4o"), "gpt-4o");
        assert_eq!(undated("o3"), "o3");
    }
}
