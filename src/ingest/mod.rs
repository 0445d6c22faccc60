//! Live data from outside services: X API v2 (influencer list, stream rules, the filtered stream and the
//! recent-search fallback), prices (CoinGecko, DexScreener) with priority and health, each client built against the provider's documented protocol, rate-limited per
//! provider, pointed at the real service or a local fake by its base URL.

pub mod clock;
pub mod coingecko;
pub mod dexscreener;
pub mod pool_price;
pub mod price_feed;
pub mod price_provider;
pub mod reconnect;
pub mod x_api;
pub mod x_ingest;
pub mod x_rules;
pub mod x_stream;
pub mod x_users;
