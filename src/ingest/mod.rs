//! Live data from outside services (issue 4, in progress): the parts of the X API v2 client and the price
//! feeds that are pure policy, built and tested first. The HTTP clients, the stream reader and the `ingest`
//! commands that use them are not written yet.

pub mod rate_limit;
pub mod reconnect;
pub mod x_rules;
pub mod x_stream;
pub mod x_users;
