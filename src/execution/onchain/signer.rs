//! Where the signing key comes from: an encrypted keystore (`--keystore FILE`, password from
//! `HYPEFLOW_KEYSTORE_PASSWORD`) or a raw key in `HYPEFLOW_PRIVATE_KEY`. Never from a file in the repository,
//! never printed: errors name the source, not the value.

use alloy::signers::local::PrivateKeySigner;
use std::path::Path;

pub fn load(keystore: Option<&Path>) -> Result<PrivateKeySigner, String> {
    if let Some(path) = keystore {
        let password = std::env::var("HYPEFLOW_KEYSTORE_PASSWORD").map_err(|_| {
            "HYPEFLOW_KEYSTORE_PASSWORD is not set: export the keystore's password".to_string()
        })?;
        return PrivateKeySigner::decrypt_keystore(path, password).map_err(|_| {
            format!(
                "cannot decrypt the keystore {} with HYPEFLOW_KEYSTORE_PASSWORD",
                path.display()
            )
        });
    }
    let key = std::env::var("HYPEFLOW_PRIVATE_KEY").map_err(|_| {
        "no signing key: pass --keystore FILE (password in HYPEFLOW_KEYSTORE_PASSWORD) or export HYPEFLOW_PRIVATE_KEY"
            .to_string()
    })?;
    key.trim()
        .parse()
        .map_err(|_| "HYPEFLOW_PRIVATE_KEY is not a 32-byte hex private key".to_string())
}
