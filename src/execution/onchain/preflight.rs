//! Simulating a swap before its approval is sent. An approval is a transaction of its own: sent for a swap
//! that then reverts (a deadline already past, a pool that moved, a token that taxes transfers), it costs gas
//! and leaves an allowance standing for nothing. So the swap is first run with `eth_call` as if the router were
//! already approved: the token's allowance slot is found from the access list of an `allowance` call (the slot
//! whose override makes `allowance` read back the override), and the call runs with that slot overridden.

use super::account::{revert_reason, Account};
use crate::chain::contracts::IERC20;
use crate::execution::venue::Refused;
use alloy::network::TransactionBuilder;
use alloy::primitives::{Address, Bytes, B256, U256};
use alloy::providers::Provider;
use alloy::rpc::types::state::{AccountOverride, StateOverride};
use alloy::rpc::types::TransactionRequest;
use alloy::sol_types::SolCall;

/// The storage override that gives the router an allowance of `amount` of `token` from the account.
pub fn allowance_override(
    acct: &Account,
    token: Address,
    amount: U256,
) -> Result<StateOverride, Refused> {
    let call = TransactionRequest::default()
        .with_from(acct.address)
        .with_to(token)
        .with_input(Bytes::from(
            IERC20::allowanceCall {
                owner: acct.address,
                spender: acct.router,
            }
            .abi_encode(),
        ));
    let unknown = || {
        Refused(format!(
            "cannot simulate the swap before approving: the allowance slot of token {token:#x} was not found"
        ))
    };
    acct.rt.block_on(async {
        let list =
            acct.provider.create_access_list(&call).await.map_err(|e| {
                Refused(format!("access list of allowance(): {}", revert_reason(&e)))
            })?;
        // a proxy token keeps its storage at its own address, so only that address's slots are candidates
        let slots: Vec<B256> = list
            .access_list
            .0
            .iter()
            .filter(|item| item.address == token)
            .flat_map(|item| item.storage_keys.iter().copied())
            .collect();
        for slot in slots {
            let overrides = one_slot(token, slot, amount);
            let out = acct
                .provider
                .call(call.clone())
                .overrides(overrides.clone())
                .await;
            let Ok(out) = out else { continue };
            if IERC20::allowanceCall::abi_decode_returns(&out).ok() == Some(amount) {
                return Ok(overrides);
            }
        }
        Err(unknown())
    })
}

fn one_slot(token: Address, slot: B256, value: U256) -> StateOverride {
    let mut o = StateOverride::default();
    o.insert(
        token,
        AccountOverride::default().with_state_diff([(slot, B256::from(value))]),
    );
    o
}

/// Runs the swap as if approved; the revert reason when it would fail.
pub fn simulate_as_approved(
    acct: &Account,
    tx: &TransactionRequest,
    token: Address,
    amount: U256,
) -> Result<(), Refused> {
    let overrides = allowance_override(acct, token, amount)?;
    acct.rt.block_on(async {
        acct.provider
            .call(tx.clone())
            .overrides(overrides)
            .await
            .map(|_| ())
            .map_err(|e| {
                Refused(format!(
                    "simulation reverted (before any approval was sent): {}",
                    revert_reason(&e)
                ))
            })
    })
}
