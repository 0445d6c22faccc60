//! A token's indicators for its signal rule's conditions, updated at each bar close and read by the rule.
//! Only the indicators some condition names are computed; each is kept once however many conditions use it.

use super::indicators::{Atr, Ema, Macd, MacdValue, Rsi, Window};
use super::records::BarRec;
use crate::config::conditions::{Condition, Field, Indicator, Operand};
use rust_decimal::prelude::ToPrimitive;

enum State {
    Closes(Window),
    Ema(Ema, Option<f64>),
    Rsi(Rsi, Option<f64>),
    Atr(Atr),
    Macd(Macd, Option<MacdValue>),
    /// (typical price x volume, volume) of the last n bars.
    Vwap(Window, Window),
    Volumes(Window),
}

/// The indicators one token's conditions read, in first-use order.
pub struct IndicatorBank {
    kinds: Vec<Indicator>,
    states: Vec<State>,
    bar: Option<BarRec>,
}

impl IndicatorBank {
    pub fn new<'a>(conditions: impl IntoIterator<Item = &'a Condition>) -> Self {
        let mut kinds: Vec<Indicator> = Vec::new();
        for i in conditions.into_iter().flat_map(Condition::indicators) {
            if !kinds.contains(&i) {
                kinds.push(i);
            }
        }
        let states = kinds.iter().map(|k| state_for(*k)).collect();
        IndicatorBank {
            kinds,
            states,
            bar: None,
        }
    }

    pub fn on_bar(&mut self, bar: &BarRec) {
        let f = |d: rust_decimal::Decimal| d.to_f64().unwrap_or(f64::NAN);
        let (close, volume) = (f(bar.close), f(bar.volume));
        for s in &mut self.states {
            match s {
                State::Closes(w) => w.push(close),
                State::Ema(e, v) => *v = e.update(close),
                State::Rsi(r, v) => *v = r.update(close),
                State::Atr(a) => {
                    a.update(bar.high, bar.low, bar.close);
                }
                State::Macd(m, v) => *v = m.update(close),
                State::Vwap(pv, vol) => {
                    let typical = (f(bar.high) + f(bar.low) + close) / 3.0;
                    pv.push(typical * volume);
                    vol.push(volume);
                }
                State::Volumes(w) => w.push(volume),
            }
        }
        self.bar = Some(bar.clone());
    }

    /// The value of `i` at the last bar; None while it warms up (or for an indicator no condition names).
    pub fn value(&self, i: Indicator) -> Option<f64> {
        let at = self.kinds.iter().position(|k| *k == i)?;
        let v = match (&self.states[at], i) {
            (State::Closes(w), Indicator::Sma(_)) => w.mean_sd().map(|(m, _)| m),
            (State::Closes(w), Indicator::BbUpper(_, k)) => w.mean_sd().map(|(m, sd)| m + k * sd),
            (State::Closes(w), Indicator::BbLower(_, k)) => w.mean_sd().map(|(m, sd)| m - k * sd),
            (State::Ema(_, v), _) | (State::Rsi(_, v), _) => *v,
            (State::Atr(a), _) => a.value().and_then(|d| d.to_f64()),
            // all three from the bar the signal line has its seed, as TA-Lib aligns them
            (State::Macd(_, v), Indicator::Macd(..)) => {
                v.filter(|v| v.signal.is_some()).map(|v| v.line)
            }
            (State::Macd(_, v), Indicator::MacdSignal(..)) => v.and_then(|v| v.signal),
            (State::Macd(_, v), _) => v.and_then(|v| v.signal.map(|s| v.line - s)),
            (State::Vwap(pv, vol), _) if pv.full() => {
                let total: f64 = vol.iter().sum();
                (total > 0.0).then(|| pv.iter().sum::<f64>() / total)
            }
            (State::Volumes(w), _) => w
                .mean_sd()
                .filter(|(_, sd)| *sd > 0.0)
                .and_then(|(m, sd)| w.last().map(|v| (v - m) / sd)),
            _ => None,
        };
        v.filter(|x| x.is_finite())
    }

    fn operand(&self, o: Operand) -> Option<f64> {
        match o {
            Operand::Number(x) => Some(x),
            Operand::Indicator(i) => self.value(i),
            Operand::Field(field) => {
                let b = self.bar.as_ref()?;
                let d = match field {
                    Field::Open => b.open,
                    Field::High => b.high,
                    Field::Low => b.low,
                    Field::Close => b.close,
                    Field::Volume => b.volume,
                };
                d.to_f64()
            }
        }
    }

    /// Whether `c` holds at the last bar, with both sides' values; None while an indicator warms up.
    pub fn check(&self, c: &Condition) -> Option<(bool, f64, f64)> {
        let (a, b) = (self.operand(c.left)?, self.operand(c.right)?);
        Some((c.cmp.holds(a, b), a, b))
    }

    /// `c` as it stood, e.g. `rsi(14) < 70 (48.213 vs 70)`, for a decision's reason.
    pub fn explain(&self, c: &Condition) -> String {
        match self.check(c) {
            Some((_, a, b)) => format!("{c} ({} vs {})", significant(a), significant(b)),
            None => format!("{c} (warming up)"),
        }
    }
}

/// `x` to 7 significant digits (a token at 0.000042 is not "0.000042 vs 0.000042").
fn significant(x: f64) -> String {
    let magnitude = if x == 0.0 {
        0
    } else {
        x.abs().log10().floor() as i32
    };
    let decimals = (6 - magnitude).clamp(0, 15) as usize;
    format!("{x:.decimals$}")
}

fn state_for(i: Indicator) -> State {
    match i {
        Indicator::Sma(n) | Indicator::BbUpper(n, _) | Indicator::BbLower(n, _) => {
            State::Closes(Window::new(n))
        }
        Indicator::Ema(n) => State::Ema(Ema::new(n), None),
        Indicator::Rsi(n) => State::Rsi(Rsi::new(n), None),
        Indicator::Atr(n) => State::Atr(Atr::new(n)),
        Indicator::Macd(f, s, g)
        | Indicator::MacdSignal(f, s, g)
        | Indicator::MacdHist(f, s, g) => State::Macd(Macd::new(f, s, g), None),
        Indicator::Vwap(n) => State::Vwap(Window::new(n), Window::new(n)),
        Indicator::VolumeZ(n) => State::Volumes(Window::new(n)),
    }
}

/// Golden values: TA-Lib's (SMA, EMA, RSI, MACD, BBANDS) and pandas' rolling windows (VWAP, volume
/// z-score) on a fixed series, printed by `scripts/golden_indicators.py` (the command is in its header).
#[cfg(test)]
mod golden {
    use super::IndicatorBank;
    use crate::config::conditions::Condition;
    use crate::dataflow::records::BarRec;

    const CLOSE: [&str; 120] = [
        "103.0000", "104.3190", "105.3154", "106.0072", "106.4388", "106.6745", "106.7898",
        "106.8614", "106.9580", "107.1312", "107.4097", "107.7948", "108.2605", "108.7552",
        "109.2080", "109.5358", "109.6534", "109.4828", "108.9632", "108.0586", "106.7638",
        "105.1068", "103.1480", "100.9770", "98.7049", "96.4558", "94.3564", "92.5246", "91.0601",
        "90.0358", "89.4918", "89.4329", "89.8292", "90.6202", "91.7211", "93.0323", "94.4489",
        "95.8715", "97.2154", "98.4180", "99.4443", "100.2883", "100.9719", "101.5405", "102.0562",
        "102.5889", "103.2065", "103.9659", "104.9046", "106.0344", "107.3383", "108.7703",
        "110.2584", "111.7105", "113.0230", "114.0903", "114.8157", "115.1205", "114.9531",
        "114.2942", "113.1600", "111.6014", "109.7006", "107.5640", "105.3133", "103.0748",
        "100.9691", "99.1008", "97.5498", "96.3660", "95.5661", "95.1343", "95.0259", "95.1742",
        "95.4985", "95.9143", "96.3432", "96.7213", "97.0070", "97.1849", "97.2674", "97.2930",
        "97.3213", "97.4257", "97.6847", "98.1716", "98.9454", "100.0422", "101.4696", "103.2036",
        "105.1881", "107.3390", "109.5500", "111.7017", "113.6713", "115.3441", "116.6228",
        "117.4369", "117.7481", "117.5540", "116.8875", "115.8134", "114.4220", "112.8199",
        "111.1204", "109.4326", "107.8516", "106.4507", "105.2755", "104.3415", "103.6345",
        "103.1147", "102.7231", "102.3899", "102.0443", "101.6236", "101.0824", "100.3985",
        "99.5777", "98.6536",
    ];
    const HIGH: [&str; 120] = [
        "104.0000", "105.7397", "106.7700", "107.0778", "107.8172", "108.1540", "107.9295",
        "108.1899", "108.4527", "108.3373", "108.6817", "109.2948", "109.5288", "109.9653",
        "110.7033", "110.8609", "110.7974", "110.9635", "110.3387", "109.1335", "108.2203",
        "106.5251", "104.1524", "102.4001", "100.1577", "97.5220", "95.7377", "94.0028", "92.1956",
        "91.3676", "90.9858", "90.6349", "91.1049", "92.1202", "92.9856", "94.2464", "95.9448",
        "97.1933", "98.3636", "99.8999", "100.8169", "101.3676", "102.4302", "102.9564",
        "103.0651", "104.0144", "104.6574", "105.0277", "106.2887", "107.5113", "108.4695",
        "110.1054", "111.7517", "112.9085", "114.3024", "115.5902", "116.0765", "116.3386",
        "116.4495", "115.6126", "114.3124", "113.0845", "111.0702", "108.6477", "106.7733",
        "104.4882", "101.9824", "100.5286", "98.9988", "97.4234", "96.9530", "96.6098", "96.1528",
        "96.5126", "96.9911", "97.1082", "97.6263", "98.2211", "98.2640", "98.4070", "98.7643",
        "98.6079", "98.4779", "98.9099", "99.0513", "99.2596", "100.4071", "101.4531", "102.4873",
        "104.6336", "106.6351", "108.3920", "110.9397", "113.1758", "114.7939", "116.6857",
        "118.1146", "118.6267", "119.0348", "119.0536", "118.1407", "117.0394", "115.9194",
        "114.1314", "112.2812", "110.9179", "109.2152", "107.5431", "106.7389", "105.7499",
        "104.6566", "104.5470", "104.1681", "103.4385", "103.4368", "103.0963", "102.2007",
        "101.7433", "101.0687", "99.8393",
    ];
    const LOW: [&str; 120] = [
        "101.5000", "103.0488", "104.1073", "104.5122", "105.1120", "105.5327", "105.3097",
        "105.4844", "105.8852", "105.6756", "105.9902", "106.7926", "106.8386", "107.3015",
        "108.1396", "108.1560", "108.1746", "108.3452", "107.6330", "106.5642", "105.5598",
        "103.8329", "101.6480", "99.7106", "97.4928", "94.9602", "93.0329", "91.3785", "89.5788",
        "88.6618", "88.4147", "87.9755", "88.4121", "89.6136", "90.2968", "91.5805", "93.3849",
        "94.4888", "95.7379", "97.2847", "98.1108", "98.7946", "99.7719", "100.2629", "100.5563",
        "101.3262", "101.9904", "102.4697", "103.5845", "104.8841", "105.8558", "107.3992",
        "109.1769", "110.2514", "111.6083", "113.0792", "113.3891", "113.6706", "113.8935",
        "112.9087", "111.6838", "110.4723", "108.3638", "106.0711", "104.1174", "101.7936",
        "99.4693", "97.8419", "96.3297", "94.8693", "94.2494", "93.9798", "93.5423", "93.8061",
        "94.4126", "94.4534", "94.9310", "95.7058", "95.5781", "95.7369", "96.2122", "95.9047",
        "95.8465", "96.3009", "96.3447", "96.6794", "97.7536", "98.7573", "99.9699", "101.9485",
        "103.9641", "105.8418", "108.2368", "110.5430", "112.1866", "113.9790", "115.5326",
        "115.9743", "116.3385", "116.5341", "115.4563", "114.3674", "113.3712", "111.4288",
        "109.6470", "108.3121", "106.5084", "104.9593", "104.0877", "103.0530", "102.1350",
        "101.8634", "101.4951", "100.8923", "100.7345", "100.4607", "99.5966", "99.0365",
        "98.4831", "97.1894",
    ];
    const VOLUME: [&str; 120] = [
        "1200.0000",
        "1235.1173",
        "1224.8860",
        "1183.5402",
        "1131.9775",
        "1092.2126",
        "1081.6132",
        "1108.3436",
        "1169.1434",
        "1249.9951",
        "1329.5217",
        "1384.2829",
        "1394.6730",
        "1349.9679",
        "1251.2769",
        "1111.6631",
        "953.3878",
        "802.9353",
        "685.0178",
        "617.0082",
        "605.1449",
        "643.4199",
        "715.4045",
        "798.5537",
        "869.9214",
        "911.8824",
        "916.4530",
        "887.1548",
        "837.9675",
        "789.6345",
        "764.2378",
        "779.3825",
        "843.4329",
        "952.9830",
        "1093.2013",
        "1240.9840",
        "1370.1637",
        "1457.5174",
        "1488.1168",
        "1458.7260",
        "1378.4239",
        "1266.3065",
        "1146.8338",
        "1043.9608",
        "975.4830",
        "948.9746",
        "960.3004",
        "995.0516",
        "1032.5378",
        "1051.3382",
        "1035.0342",
        "976.7006",
        "881.0359",
        "763.5944",
        "647.2914",
        "557.0255",
        "513.7255",
        "529.2724",
        "603.5399",
        "724.2786",
        "869.8784",
        "1014.3424",
        "1133.2672",
        "1209.3805",
        "1236.2976",
        "1219.5965",
        "1174.9667",
        "1123.9058",
        "1088.0345",
        "1083.4395",
        "1116.4438",
        "1181.8514",
        "1264.1046",
        "1341.0744",
        "1389.5584",
        "1391.1349",
        "1336.9343",
        "1230.1494",
        "1085.6547",
        "926.8146",
        "780.2414",
        "669.7695",
        "611.1001",
        "608.4096",
        "653.7328",
        "729.2575",
        "811.9526",
        "879.3885",
        "915.3153",
        "913.6310",
        "879.7682",
        "829.1639",
        "783.1947",
        "763.5855",
        "786.6722",
        "858.9431",
        "974.9656",
        "1118.2280",
        "1264.7076",
        "1388.3118",
        "1466.8768",
        "1487.2715",
        "1448.3687",
        "1361.1673",
        "1246.0404",
        "1127.7862",
        "1029.6918",
        "968.0574",
        "948.5132",
        "965.0180",
        "1001.7700",
        "1037.5443",
        "1051.3773",
        "1028.1855",
        "962.9249",
        "862.2537",
        "743.2731",
        "629.6417",
        "546.0012",
        "512.0695",
    ];
    // TA-Lib 0.8.2, pandas 3.1.1
    const GOLDEN: &[(&str, usize, f64)] = &[
        ("sma(20)", 13, f64::NAN),
        ("sma(20)", 14, f64::NAN),
        ("sma(20)", 19, 107.33086499999999),
        ("sma(20)", 25, 106.30093500000002),
        ("sma(20)", 33, 99.67045500000003),
        ("sma(20)", 60, 108.154575),
        ("sma(20)", 119, 105.98286999999998),
        ("ema(10)", 13, 107.17343446007787),
        ("ema(10)", 14, 107.54335546733644),
        ("ema(10)", 19, 108.4567727626078),
        ("ema(10)", 25, 102.99922911914015),
        ("ema(10)", 33, 92.98387139215708),
        ("ema(10)", 60, 112.30724064440797),
        ("ema(10)", 119, 101.78119716278273),
        ("rsi(14)", 13, f64::NAN),
        ("rsi(14)", 14, 100.0),
        ("rsi(14)", 19, 75.08556479981671),
        ("rsi(14)", 25, 21.36595008388166),
        ("rsi(14)", 33, 20.705849902630696),
        ("rsi(14)", 60, 74.33819698522431),
        ("rsi(14)", 119, 23.842194572896418),
        ("macd(12,26,9)", 13, f64::NAN),
        ("macd(12,26,9)", 14, f64::NAN),
        ("macd(12,26,9)", 19, f64::NAN),
        ("macd(12,26,9)", 25, f64::NAN),
        ("macd(12,26,9)", 33, -4.549020673448524),
        ("macd(12,26,9)", 60, 3.9454909287393463),
        ("macd(12,26,9)", 119, -2.214469781806926),
        ("macd_signal(12,26,9)", 13, f64::NAN),
        ("macd_signal(12,26,9)", 14, f64::NAN),
        ("macd_signal(12,26,9)", 19, f64::NAN),
        ("macd_signal(12,26,9)", 25, f64::NAN),
        ("macd_signal(12,26,9)", 33, -3.1158582699033683),
        ("macd_signal(12,26,9)", 60, 3.396783401687442),
        ("macd_signal(12,26,9)", 119, -1.203273958417974),
        ("macd_hist(12,26,9)", 13, f64::NAN),
        ("macd_hist(12,26,9)", 14, f64::NAN),
        ("macd_hist(12,26,9)", 19, f64::NAN),
        ("macd_hist(12,26,9)", 25, f64::NAN),
        ("macd_hist(12,26,9)", 33, -1.4331624035451558),
        ("macd_hist(12,26,9)", 60, 0.5487075270519042),
        ("macd_hist(12,26,9)", 119, -1.0111958233889522),
        ("bb_upper(20,2)", 13, f64::NAN),
        ("bb_upper(20,2)", 14, f64::NAN),
        ("bb_upper(20,2)", 19, 110.80302380470636),
        ("bb_upper(20,2)", 25, 113.51212229399677),
        ("bb_upper(20,2)", 33, 115.6662071894377),
        ("bb_upper(20,2)", 60, 118.75063409984934),
        ("bb_upper(20,2)", 119, 116.94143783728603),
        ("bb_lower(20,2)", 13, f64::NAN),
        ("bb_lower(20,2)", 14, f64::NAN),
        ("bb_lower(20,2)", 19, 103.85870619529362),
        ("bb_lower(20,2)", 25, 99.08974770600328),
        ("bb_lower(20,2)", 33, 83.67470281056237),
        ("bb_lower(20,2)", 60, 97.55851590015065),
        ("bb_lower(20,2)", 119, 95.02430216271392),
        ("vwap(14)", 13, 106.59186114641192),
        ("vwap(14)", 14, 107.05511896086661),
        ("vwap(14)", 19, 108.13499382854005),
        ("vwap(14)", 25, 106.23713473011051),
        ("vwap(14)", 33, 95.15846391621525),
        ("vwap(14)", 60, 110.02637184813828),
        ("vwap(14)", 119, 103.18194710506573),
        ("volume_z(20)", 13, f64::NAN),
        ("volume_z(20)", 14, f64::NAN),
        ("volume_z(20)", 19, -2.4281001253518153),
        ("volume_z(20)", 25, -0.33506391094891724),
        ("volume_z(20)", 33, 0.7491873860570365),
        ("volume_z(20)", 60, -0.029423895807148808),
        ("volume_z(20)", 119, -1.8389303896574825),
    ];

    fn bar(i: usize) -> BarRec {
        let d = |s: &str| s.parse().unwrap();
        BarRec {
            token: 0,
            open_time: i as i64 * 60_000,
            interval: 60_000,
            open: d(CLOSE[i]),
            high: d(HIGH[i]),
            low: d(LOW[i]),
            close: d(CLOSE[i]),
            volume: d(VOLUME[i]),
        }
    }

    #[test]
    fn every_indicator_matches_the_reference_values() {
        let conditions: Vec<Condition> = GOLDEN
            .iter()
            .map(|(name, _, _)| format!("{name} > 0").parse().unwrap())
            .collect();
        let mut bank = IndicatorBank::new(&conditions);
        for i in 0..CLOSE.len() {
            bank.on_bar(&bar(i));
            for (c, (name, at, want)) in conditions.iter().zip(GOLDEN) {
                if *at != i {
                    continue;
                }
                let got = bank.value(c.left.indicator().unwrap());
                if want.is_nan() {
                    assert_eq!(
                        got, None,
                        "{name} at bar {i}: the reference is still warming up"
                    );
                    continue;
                }
                let got = got.unwrap_or(f64::NAN);
                let tol = 1e-9 * want.abs().max(1.0);
                assert!(
                    (got - want).abs() <= tol,
                    "{name} at bar {i}: {got} vs the reference's {want}"
                );
            }
        }
    }

    #[test]
    fn an_indicator_warms_up_before_it_has_a_value() {
        let c: Condition = "rsi(14) < 70".parse().unwrap();
        let mut bank = IndicatorBank::new([&c]);
        for i in 0..15 {
            assert_eq!(bank.check(&c), None, "bar {i}: 14 changes need 15 closes");
            bank.on_bar(&bar(i));
        }
        assert!(bank.check(&c).is_some());
    }
}
