//! The ranges every input record is held to, one place for the file loaders, the topic decoders and the
//! bar checks.

use super::time::Millis;
use super::Invalid;
use rust_decimal::Decimal;

/// The range of prices a record may carry, in quote units: wider than any traded token (a meme coin at 10^-10
/// USD, a wrapped BTC at 10^5), narrow enough that a price times a position, a sum of volumes or a ratio of
/// two closes stays far inside what a `Decimal` holds.
pub const MIN_PRICE: Decimal = Decimal::from_parts(1, 0, 0, false, 12);
pub const MAX_PRICE: Decimal = Decimal::from_parts(3_567_587_328, 232, 0, false, 0); // 10^12
/// The largest volume of one tick or bar.
pub const MAX_VOLUME: Decimal = Decimal::from_parts(2_764_472_320, 232_830, 0, false, 0); // 10^15
/// Event times run from 1970 to 2100 (ms since the epoch): beyond, a daily series or a window count explodes.
pub const MAX_EVENT_TIME: Millis = 4_102_444_800_000;

/// A price and volume in range, or why not.
pub fn check_price_volume(price: Decimal, volume: Decimal) -> Result<(), Invalid> {
    if !(MIN_PRICE..=MAX_PRICE).contains(&price) {
        return Err(Invalid(format!(
            "price {price} is outside [{MIN_PRICE}, {MAX_PRICE}]"
        )));
    }
    if !(Decimal::ZERO..=MAX_VOLUME).contains(&volume) {
        return Err(Invalid(format!(
            "volume {volume} is outside [0, {MAX_VOLUME}]"
        )));
    }
    Ok(())
}

/// An event time from 1970 to 2100, or why not.
pub fn check_time(field: &str, t: Millis) -> Result<(), Invalid> {
    if t < 0 {
        return Err(Invalid(format!("{field} is before 1970")));
    }
    if t > MAX_EVENT_TIME {
        return Err(Invalid(format!("{field} is after 2100")));
    }
    Ok(())
}
