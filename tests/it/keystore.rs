//! Keystores written by another tool: ethers v6 (from npm, installed by `scripts/evm-setup.sh`) spells the
//! Web3 Secret Storage section `Crypto`; the executor opens it, and the standard spelling, with the right
//! password, and says "wrong password" (not "not a keystore") with a wrong one.

use hypeflow::execution::onchain::signer::{from_keystore, SignerError};
use std::path::PathBuf;
use std::process::Command;

/// The private key of anvil's first dev account, a public test key.
const KEY: &str = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
const ADDRESS: &str = "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266";

fn ethers_dir() -> PathBuf {
    let evm = std::env::var("HYPEFLOW_EVM_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/hypeflow-evm")
        });
    evm.join("ethers/node_modules")
}

/// A keystore as ethers v6 writes it (scrypt with a small N, to keep the test fast).
fn ethers_keystore(password: &str) -> String {
    let script = format!(
        "const {{ encryptKeystoreJsonSync }} = require('ethers');\
         process.stdout.write(encryptKeystoreJsonSync({{ address: '{ADDRESS}', privateKey: '{KEY}' }}, '{password}', {{ scrypt: {{ N: 1024 }} }}));"
    );
    let out = Command::new("node")
        .args(["-e", &script])
        .env("NODE_PATH", ethers_dir())
        .output()
        .expect("node (run scripts/evm-setup.sh)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn a_keystore_written_by_ethers_v6_opens_and_a_wrong_password_is_named() {
    let written = ethers_keystore("correct horse");
    assert!(
        written.contains("\"Crypto\""),
        "ethers v6 spells the section Crypto: {written}"
    );
    let dir = tempfile::tempdir().unwrap();
    let ethers = dir.path().join("ethers.json");
    std::fs::write(&ethers, &written).unwrap();
    let standard = dir.path().join("standard.json");
    std::fs::write(&standard, written.replace("\"Crypto\"", "\"crypto\"")).unwrap();
    for f in [&ethers, &standard] {
        let signer = from_keystore(f, "correct horse").unwrap();
        assert_eq!(format!("{:#x}", signer.address()), ADDRESS);
        let wrong = from_keystore(f, "battery staple").unwrap_err();
        assert!(matches!(wrong, SignerError::WrongPassword(_)), "{wrong}");
        assert!(!wrong.to_string().contains("battery"), "{wrong}");
    }
    let before: Vec<_> = std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| {
            let mine = format!("hypeflow-keystore-{}-", std::process::id());
            e.file_name().to_string_lossy().starts_with(&mine)
        })
        .collect();
    assert!(before.is_empty(), "the private copy is removed: {before:?}");
}
