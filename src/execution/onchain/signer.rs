//! Where the signing key comes from: an encrypted keystore (`--keystore FILE`, password from
//! `HYPEFLOW_KEYSTORE_PASSWORD`) or a raw key in `HYPEFLOW_PRIVATE_KEY`. Never from a file in the repository,
//! never printed: errors name the source, not the value.

use alloy::signers::local::PrivateKeySigner;
use std::path::{Path, PathBuf};

/// No variant carries the key, the password or the decryption library's message (which could echo either).
#[derive(Debug, thiserror::Error)]
pub enum SignerError {
    #[error("HYPEFLOW_KEYSTORE_PASSWORD is not set: export the keystore's password")]
    NoPassword,
    #[error("cannot decrypt the keystore {} with HYPEFLOW_KEYSTORE_PASSWORD", .0.display())]
    Keystore(PathBuf),
    #[error("no signing key: pass --keystore FILE (password in HYPEFLOW_KEYSTORE_PASSWORD) or export HYPEFLOW_PRIVATE_KEY")]
    NoKey,
    #[error("HYPEFLOW_PRIVATE_KEY is not a 32-byte hex private key")]
    BadKey,
}

pub fn load(keystore: Option<&Path>) -> Result<PrivateKeySigner, SignerError> {
    if let Some(path) = keystore {
        let password =
            std::env::var("HYPEFLOW_KEYSTORE_PASSWORD").map_err(|_| SignerError::NoPassword)?;
        return PrivateKeySigner::decrypt_keystore(path, password)
            .map_err(|_| SignerError::Keystore(path.to_path_buf()));
    }
    let key = std::env::var("HYPEFLOW_PRIVATE_KEY").map_err(|_| SignerError::NoKey)?;
    key.trim().parse().map_err(|_| SignerError::BadKey)
}
