//! A local development chain: Foundry's anvil on a free port, and Uniswap V3 (WETH9, the factory, the position
//! manager, SwapRouter02, QuoterV2) deployed from Uniswap's published artifacts, plus test tokens and pools with
//! liquidity. `scripts/evm-setup.sh` fetches anvil and the artifacts from the npm registry into
//! `HYPEFLOW_EVM_DIR`; nothing of Uniswap's is in this repository.
//!
//! The keys below are anvil's well-known development accounts (public, funded only on a local chain).

use super::contracts::{INonfungiblePositionManager, IUniswapV3Factory, IERC20, IWETH9};
use super::ChainError;
use alloy::network::{EthereumWallet, TransactionBuilder};
use alloy::primitives::{aliases::I24, aliases::U160, aliases::U24, Address, Bytes, U256};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::rpc::types::TransactionRequest;
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::SolValue;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// anvil's first two development accounts (from its default mnemonic).
pub const DEV_KEYS: [&str; 2] = [
    "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
    "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
];

/// Where `scripts/evm-setup.sh` put anvil and the artifacts.
pub fn evm_dir() -> PathBuf {
    std::env::var_os("HYPEFLOW_EVM_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache/hypeflow-evm")
        })
}

/// An anvil process, stopped when dropped.
pub struct Anvil {
    child: Child,
    pub url: String,
}

impl Anvil {
    /// Starts anvil on a free port (1 s blocks off: every transaction is mined at once) and waits until it
    /// answers.
    pub fn start(dir: &Path) -> Result<Anvil, ChainError> {
        let bin = dir.join("bin/anvil");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| ChainError::Setup(format!("no free port: {e}")))?
            .port();
        let child = Command::new(&bin)
            .args(["--host", "127.0.0.1", "--port", &port.to_string(), "--silent"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| {
                ChainError::Setup(format!(
                    "cannot start {} ({e}); run `bash scripts/evm-setup.sh` (or set HYPEFLOW_EVM_DIR)",
                    bin.display()
                ))
            })?;
        let mut anvil = Anvil {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok(anvil);
            }
            if let Ok(Some(status)) = anvil.child.try_wait() {
                return Err(ChainError::Setup(format!(
                    "anvil exited at start: {status}"
                )));
            }
            if Instant::now() > deadline {
                return Err(ChainError::Setup(
                    "anvil did not open its port within 20 s".into(),
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Anvil {
    /// Stops the node now (its URL then refuses connections, as a node that went down does).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Anvil {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The deployed Uniswap V3 stack.
#[derive(Clone, Copy, Debug, serde::Serialize)]
pub struct Uniswap {
    pub weth: Address,
    pub factory: Address,
    pub position_manager: Address,
    pub router: Address,
    pub quoter: Address,
}

/// A wallet connection to the dev chain that deploys and sets up contracts.
pub struct Devnet {
    pub rt: tokio::runtime::Runtime,
    pub provider: DynProvider,
    pub deployer: Address,
    artifacts: PathBuf,
}

fn rpc(e: impl std::fmt::Display) -> ChainError {
    ChainError::Rpc(e.to_string())
}

impl Devnet {
    pub fn connect(url: &str, key: &str, dir: &Path) -> Result<Devnet, ChainError> {
        crate::net::http::install_tls();
        let signer: PrivateKeySigner = key
            .parse()
            .map_err(|_| ChainError::Setup("not a private key".into()))?;
        let deployer = signer.address();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| ChainError::Runtime(e.to_string()))?;
        let provider = ProviderBuilder::new()
            .wallet(EthereumWallet::from(signer))
            .connect_http(url.parse().map_err(|_| ChainError::Url(url.into()))?)
            .erased();
        Ok(Devnet {
            rt,
            provider,
            deployer,
            artifacts: dir.join("artifacts"),
        })
    }

    /// Creation code of an artifact (Hardhat's `bytecode` or Waffle's, with or without `0x`).
    pub fn bytecode(&self, name: &str) -> Result<Vec<u8>, ChainError> {
        let path = self.artifacts.join(format!("{name}.json"));
        let text = std::fs::read_to_string(&path).map_err(|e| {
            ChainError::Setup(format!(
                "{}: {e}; run `bash scripts/evm-setup.sh`",
                path.display()
            ))
        })?;
        let v: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| ChainError::Setup(format!("{}: {e}", path.display())))?;
        let hex = v["bytecode"]
            .as_str()
            .or_else(|| v["evm"]["bytecode"]["object"].as_str())
            .ok_or_else(|| ChainError::Setup(format!("{}: no bytecode", path.display())))?;
        alloy::hex::decode(hex.trim_start_matches("0x"))
            .map_err(|e| ChainError::Setup(format!("{}: bytecode: {e}", path.display())))
    }

    /// Deploys an artifact with ABI-encoded constructor arguments; waits for the receipt.
    pub fn deploy(&self, name: &str, args: Vec<u8>) -> Result<Address, ChainError> {
        let mut code = self.bytecode(name)?;
        code.extend(args);
        let tx = TransactionRequest::default()
            .with_deploy_code(Bytes::from(code))
            .with_gas_limit(15_000_000);
        let receipt = self.mined(&format!("deploying {name}"), tx)?;
        receipt
            .contract_address
            .ok_or_else(|| ChainError::Setup(format!("deploying {name}: no contract address")))
    }

    /// Sends a transaction and requires it to succeed.
    pub fn send(&self, what: &str, tx: TransactionRequest) -> Result<(), ChainError> {
        self.mined(what, tx).map(|_| ())
    }

    fn mined(
        &self,
        what: &str,
        tx: TransactionRequest,
    ) -> Result<alloy::rpc::types::TransactionReceipt, ChainError> {
        let receipt = self.rt.block_on(async {
            self.provider
                .send_transaction(tx)
                .await
                .map_err(rpc)?
                .get_receipt()
                .await
                .map_err(rpc)
        })?;
        if receipt.status() {
            Ok(receipt)
        } else {
            Err(ChainError::Setup(format!("{what} reverted")))
        }
    }

    pub fn deploy_uniswap(&self) -> Result<Uniswap, ChainError> {
        let weth = self.deploy("WETH9", vec![])?;
        let factory = self.deploy("UniswapV3Factory", vec![])?;
        // the token descriptor only serves tokenURI: any address will do
        let position_manager = self.deploy(
            "NonfungiblePositionManager",
            (factory, weth, Address::ZERO).abi_encode_params(),
        )?;
        let router = self.deploy(
            "SwapRouter02",
            (Address::ZERO, factory, position_manager, weth).abi_encode_params(),
        )?;
        let quoter = self.deploy("QuoterV2", (factory, weth).abi_encode_params())?;
        Ok(Uniswap {
            weth,
            factory,
            position_manager,
            router,
            quoter,
        })
    }

    /// An 18-decimal test token with `supply` whole tokens minted to the deployer; `deflating` burns 1% of every
    /// transfer (a fee-on-transfer token).
    pub fn deploy_token(&self, supply: u64, deflating: bool) -> Result<Address, ChainError> {
        let name = if deflating { "DeflatingERC20" } else { "ERC20" };
        self.deploy(name, (whole(supply),).abi_encode_params())
    }

    /// Wraps `amount` whole ETH into WETH for the deployer.
    pub fn wrap(&self, uni: &Uniswap, amount: u64) -> Result<(), ChainError> {
        let weth = IWETH9::new(uni.weth, &self.provider);
        let call = weth.deposit().value(whole(amount));
        self.send("WETH deposit", call.into_transaction_request())
    }

    /// Creates the `fee` pool of two 18-decimal tokens at `price` (whole `b` per whole `a`, as a ratio
    /// `num/den`) and adds full-range liquidity of `amount_a` whole `a` (and what the price asks of `b`).
    #[allow(clippy::too_many_arguments)]
    pub fn create_pool(
        &self,
        uni: &Uniswap,
        a: Address,
        b: Address,
        fee: u32,
        num: u64,
        den: u64,
        amount_a: u64,
    ) -> Result<Address, ChainError> {
        let (t0, t1, n, d) = if a < b {
            (a, b, num, den)
        } else {
            (b, a, den, num)
        };
        // sqrtPriceX96 = sqrt(t1 per t0) * 2^96 = sqrt((n << 192) / d)
        let ratio: U256 = (U256::from(n) << 192) / U256::from(d);
        let sqrt = ratio.root(2);
        let npm = INonfungiblePositionManager::new(uni.position_manager, &self.provider);
        let fee24 = U24::from(fee);
        self.send(
            "createAndInitializePoolIfNecessary",
            npm.createAndInitializePoolIfNecessary(t0, t1, fee24, U160::from(sqrt))
                .into_transaction_request()
                .with_gas_limit(6_000_000),
        )?;
        let amount_b = amount_a.saturating_mul(num) / den.max(1) + 1;
        let (amt0, amt1) = if a < b {
            (amount_a, amount_b)
        } else {
            (amount_b, amount_a)
        };
        for (t, amt) in [(t0, amt0), (t1, amt1)] {
            self.send(
                "approve",
                IERC20::new(t, &self.provider)
                    .approve(uni.position_manager, whole(amt))
                    .into_transaction_request(),
            )?;
        }
        let spacing: i32 = self.rt.block_on(async {
            IUniswapV3Factory::new(uni.factory, &self.provider)
                .feeAmountTickSpacing(fee24)
                .call()
                .await
                .map(|s| s.as_i32())
                .map_err(rpc)
        })?;
        let max_tick = 887_272 / spacing * spacing;
        let params = INonfungiblePositionManager::MintParams {
            token0: t0,
            token1: t1,
            fee: fee24,
            tickLower: I24::try_from(-max_tick).map_err(rpc)?,
            tickUpper: I24::try_from(max_tick).map_err(rpc)?,
            amount0Desired: whole(amt0),
            amount1Desired: whole(amt1),
            amount0Min: U256::ZERO,
            amount1Min: U256::ZERO,
            recipient: self.deployer,
            deadline: U256::from(u64::MAX),
        };
        // anvil's gas estimate for mint runs short: a fixed, generous limit
        self.send(
            "mint",
            npm.mint(params)
                .into_transaction_request()
                .with_gas_limit(1_000_000),
        )?;
        self.rt.block_on(async {
            IUniswapV3Factory::new(uni.factory, &self.provider)
                .getPool(t0, t1, fee24)
                .call()
                .await
                .map_err(rpc)
        })
    }
}

/// The market the executor's tests and benchmark trade on: Uniswap V3, a USD stablecoin, a token TKA at 2.5 USD
/// (0.3% pool), WETH at 2,000 USD (0.05% pool), and `trader` funded with 100,000 USD.
#[derive(Clone, Copy, Debug)]
pub struct DemoMarket {
    pub uni: Uniswap,
    pub usd: Address,
    pub tka: Address,
}

impl Devnet {
    pub fn demo_market(&self, trader: Address) -> Result<DemoMarket, ChainError> {
        let uni = self.deploy_uniswap()?;
        let usd = self.deploy_token(1_000_000_000, false)?;
        let tka = self.deploy_token(1_000_000_000, false)?;
        self.wrap(&uni, 200)?;
        self.create_pool(&uni, tka, usd, 3000, 5, 2, 1_000_000)?;
        self.create_pool(&uni, uni.weth, usd, 500, 2000, 1, 100)?;
        let erc = IERC20::new(usd, &self.provider);
        self.send(
            "fund the trader",
            erc.transfer(trader, whole(100_000))
                .into_transaction_request(),
        )?;
        Ok(DemoMarket { uni, usd, tka })
    }

    /// The venue file for a demo market (`limits_extra` goes under [limits]).
    pub fn demo_venue_toml(url: &str, m: &DemoMarket, limits_extra: &str) -> String {
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
max_notional_per_day = "1000000"
max_daily_loss = "1000"
max_intent_age_s = 600
{limits_extra}
"#,
            factory = m.uni.factory,
            router = m.uni.router,
            quoter = m.uni.quoter,
            weth = m.uni.weth,
            usd = m.usd,
            tka = m.tka,
        )
    }
}

/// `n` whole 18-decimal tokens in base units.
pub fn whole(n: u64) -> U256 {
    U256::from(n) * U256::from(10u64).pow(U256::from(18u8))
}
