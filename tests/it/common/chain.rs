//! A market on a fresh anvil for the on-chain executor tests: Uniswap V3 from its published artifacts, a USD
//! stablecoin, a token TKA at 2.5 USD (0.3% pool), WETH at 2,000 USD (0.05% pool), and a trader account (anvil's
//! second development key) holding USD; plus the venue configuration for it.

use alloy::primitives::Address;
use alloy::providers::Provider;
use alloy::signers::local::PrivateKeySigner;
use hypeflow::chain::contracts::IERC20;
use hypeflow::chain::devnet::{evm_dir, whole, Anvil, DemoMarket, Devnet, Uniswap, DEV_KEYS};

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
        let trader = TRADER_KEY.parse::<PrivateKeySigner>().unwrap().address();
        let m = dev.demo_market(trader).unwrap();
        Market {
            anvil,
            dev,
            uni: m.uni,
            usd: m.usd,
            tka: m.tka,
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

    /// The venue file for this market; `limits_extra` goes under [limits].
    pub fn venue_toml(&self, limits_extra: &str) -> String {
        Devnet::demo_venue_toml(
            &self.anvil.url,
            &DemoMarket {
                uni: self.uni,
                usd: self.usd,
                tka: self.tka,
            },
            limits_extra,
        )
    }
}
