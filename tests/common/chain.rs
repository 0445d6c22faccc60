//! A market on a fresh anvil for the on-chain executor tests: Uniswap V3 from its published artifacts, a USD
//! stablecoin, a token TKA at 2.5 USD (0.3% pool), WETH at 2,000 USD (0.05% pool), and a trader account (anvil's
//! second development key) holding USD; plus the venue configuration for it.

use alloy::primitives::Address;
use alloy::providers::Provider;
use alloy::signers::local::PrivateKeySigner;
use hypeflow::chain::contracts::IERC20;
use hypeflow::chain::devnet::{evm_dir, whole, Anvil, Devnet, Uniswap, DEV_KEYS};

pub struct Market {
    pub anvil: Anvil,
    pub dev: Devnet,
    pub uni: Uniswap,
    pub usd: Address,
    pub tka: Address,
    pub trader: Address,
}

pub const TRADER_KEY: &str = DEV_KEYS[1];

impl Market {
    pub fn start() -> Market {
        let dir = evm_dir();
        let anvil = Anvil::start(&dir).expect("anvil (run scripts/evm-setup.sh)");
        let dev = Devnet::connect(&anvil.url, DEV_KEYS[0], &dir).unwrap();
        let uni = dev.deploy_uniswap().unwrap();
        let usd = dev.deploy_token(1_000_000_000, false).unwrap();
        let tka = dev.deploy_token(1_000_000_000, false).unwrap();
        dev.wrap(&uni, 200).unwrap();
        dev.create_pool(&uni, tka, usd, 3000, 5, 2, 1_000_000)
            .unwrap();
        dev.create_pool(&uni, uni.weth, usd, 500, 2000, 1, 100)
            .unwrap();
        let trader = TRADER_KEY.parse::<PrivateKeySigner>().unwrap().address();
        let erc = IERC20::new(usd, &dev.provider);
        dev.send(
            "fund trader",
            erc.transfer(trader, whole(100_000))
                .into_transaction_request(),
        )
        .unwrap();
        Market {
            anvil,
            dev,
            uni,
            usd,
            tka,
            trader,
        }
    }

    pub fn balance(&self, token: Address, who: Address) -> alloy::primitives::U256 {
        self.dev
            .rt
            .block_on(async {
                IERC20::new(token, &self.dev.provider)
                    .balanceOf(who)
                    .call()
                    .await
            })
            .unwrap()
    }

    pub fn nonce(&self, who: Address) -> u64 {
        self.dev
            .rt
            .block_on(async { self.dev.provider.get_transaction_count(who).await })
            .unwrap()
    }

    /// Sends `n` whole TKA from the deployer to `to`.
    pub fn give_tka(&self, to: Address, n: u64) {
        let erc = IERC20::new(self.tka, &self.dev.provider);
        self.dev
            .send(
                "give TKA",
                erc.transfer(to, whole(n)).into_transaction_request(),
            )
            .unwrap();
    }

    /// The venue file for this market; `extra` goes under [limits].
    pub fn venue_toml(&self, limits_extra: &str) -> String {
        format!(
            r#"venue = "uniswap-v3"
chain_id = 31337
rpc_url = "{url}"
confirmations = 1
deadline_s = 120
receipt_timeout_s = 30
fee_tiers = [500, 3000, 10000]
gas_budget_bps = 100
[contracts]
factory = "{factory:#x}"
router = "{router:#x}"
quoter = "{quoter:#x}"
weth = "{weth:#x}"
[quote]
symbol = "USD"
address = "{usd:#x}"
[tokens]
TKA = "{tka:#x}"
[limits]
max_notional_per_trade = "5000"
max_notional_per_day = "20000"
max_daily_loss = "1000"
max_intent_age_s = 600
{limits_extra}
"#,
            url = self.anvil.url,
            factory = self.uni.factory,
            router = self.uni.router,
            quoter = self.uni.quoter,
            weth = self.uni.weth,
            usd = self.usd,
            tka = self.tka,
        )
    }
}
