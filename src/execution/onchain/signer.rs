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
    #[error("HYPEFLOW_KEYSTORE_PASSWORD does not open the keystore {} (its MAC does not match): check the password", .0.display())]
    WrongPassword(PathBuf),
    #[error("{} is not a keystore this executor reads ({why}): expected Web3 Secret Storage JSON (version 3, scrypt or pbkdf2, aes-128-ctr)", path.display())]
    NotAKeystore { path: PathBuf, why: String },
    #[error("no signing key: pass --keystore FILE (password in HYPEFLOW_KEYSTORE_PASSWORD) or export HYPEFLOW_PRIVATE_KEY")]
    NoKey,
    #[error("HYPEFLOW_PRIVATE_KEY is not a 32-byte hex private key")]
    BadKey,
}

pub fn load(keystore: Option<&Path>) -> Result<PrivateKeySigner, SignerError> {
    if let Some(path) = keystore {
        let password =
            std::env::var("HYPEFLOW_KEYSTORE_PASSWORD").map_err(|_| SignerError::NoPassword)?;
        return from_keystore(path, &password);
    }
    let key = std::env::var("HYPEFLOW_PRIVATE_KEY").map_err(|_| SignerError::NoKey)?;
    key.trim().parse().map_err(|_| SignerError::BadKey)
}

/// Keystores are small; anything larger is not one.
const MAX_KEYSTORE_BYTES: u64 = 64 * 1024;

/// Decrypts a Web3 Secret Storage file. Some writers spell its `crypto` section `Crypto` (ethers v6, older
/// geth): such a file is read through a private copy with the section renamed, so the decryption (which
/// wants the lower-case name) sees the standard form. A wrong password and a file that is not a keystore
/// get different messages.
pub fn from_keystore(path: &Path, password: &str) -> Result<PrivateKeySigner, SignerError> {
    let not = |why: String| SignerError::NotAKeystore {
        path: path.to_path_buf(),
        why,
    };
    let size = std::fs::metadata(path)
        .map_err(|e| not(e.kind().to_string()))?
        .len();
    if size > MAX_KEYSTORE_BYTES {
        return Err(not(format!("{size} bytes, more than any keystore")));
    }
    let text = std::fs::read_to_string(path).map_err(|e| not(e.kind().to_string()))?;
    let mut json: serde_json::Value = serde_json::from_str(text.trim_start_matches('\u{feff}'))
        .map_err(|_| not("not JSON".into()))?;
    let obj = json
        .as_object_mut()
        .ok_or_else(|| not("not a JSON object".into()))?;
    if !obj.contains_key("crypto") {
        let upper = obj
            .remove("Crypto")
            .ok_or_else(|| not("no crypto section".into()))?;
        obj.insert("crypto".into(), upper);
        let copy = PrivateCopy::write(&json).map_err(|e| not(format!("cannot stage it: {e}")))?;
        return open(&copy.0, password, path);
    }
    open(path, password, path)
}

fn open(file: &Path, password: &str, named: &Path) -> Result<PrivateKeySigner, SignerError> {
    PrivateKeySigner::decrypt_keystore(file, password).map_err(|e| {
        // the library's messages name a kind (a MAC mismatch, a JSON field), never the key or the password
        let text = e.to_string();
        if text.contains("Mac Mismatch") {
            SignerError::WrongPassword(named.to_path_buf())
        } else {
            let kind = text
                .split(':')
                .next()
                .unwrap_or("unreadable")
                .trim()
                .to_string();
            SignerError::NotAKeystore {
                path: named.to_path_buf(),
                why: kind,
            }
        }
    })
}

/// A copy readable by this user only, removed when dropped.
struct PrivateCopy(PathBuf);

impl PrivateCopy {
    fn write(json: &serde_json::Value) -> std::io::Result<PrivateCopy> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let path = std::env::temp_dir().join(format!(
            "hypeflow-keystore-{}-{nanos}.json",
            std::process::id()
        ));
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)?;
        f.write_all(json.to_string().as_bytes())?;
        Ok(PrivateCopy(path))
    }
}

impl Drop for PrivateCopy {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What is not a keystore says so, and never as a password problem (files written by other tools are
    /// opened in `tests/it/keystore.rs`).
    #[test]
    fn a_file_that_is_not_a_keystore_is_named_as_such() {
        let dir = std::env::temp_dir().join(format!("hypeflow-ks-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for (body, why) in [
            ("{\"version\": 3}", "no crypto section"),
            ("not json", "not JSON"),
            ("[1, 2]", "not a JSON object"),
        ] {
            let f = dir.join("k.json");
            std::fs::write(&f, body).unwrap();
            let err = from_keystore(&f, "secret-pw").unwrap_err();
            assert!(
                matches!(err, SignerError::NotAKeystore { .. }),
                "{body}: {err}"
            );
            let text = err.to_string();
            assert!(text.contains(why) && !text.contains("secret-pw"), "{text}");
        }
        let big = dir.join("big.json");
        std::fs::write(&big, vec![b' '; 70_000]).unwrap();
        assert!(from_keystore(&big, "pw")
            .unwrap_err()
            .to_string()
            .contains("more than any keystore"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
