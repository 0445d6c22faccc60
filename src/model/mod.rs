//! Events, ids and exact money shared by every stage.

pub mod events;
pub mod invalid;
pub mod limits;
pub mod money;
pub mod orders;
pub mod ranges;
pub mod time;
pub mod tokens;

pub use events::{Bar, Engagement, PriceTick, PriceTickRef, ScoredMention, Tweet};
pub use invalid::Invalid;
pub use orders::{
    Distance, ExitLeg, Fill, FillStatus, OrderIntent, Protection, ScaleOut, Side, Signal, Trade,
    Trigger,
};
pub use time::Millis;
pub use tokens::TokenTable;
