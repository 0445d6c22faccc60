//! Operator commands on `control.commands` (pause, resume, kill, flatten, promote, status), each signed with
//! HMAC-SHA256 under the secret in `HYPEFLOW_CONTROL_SECRET`. The executor obeys a command only when its
//! signature checks, it was issued within the last five minutes and its id is new; anything else goes to
//! `deadletter.control.commands` with an alert in the log, and is never obeyed. Every command obeyed is
//! journaled and answered on `control.replies`.

use crate::kafka::envelope;
use crate::model::time::{rfc3339, Millis};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// Where the shared secret is read from (never from a file, never logged).
pub const SECRET_ENV: &str = "HYPEFLOW_CONTROL_SECRET";
/// How old a command may be when it arrives.
pub const MAX_COMMAND_AGE_MS: Millis = 300_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Stop new entries until a resume (exits go on).
    Pause,
    /// End a pause or a kill.
    Resume,
    /// Stop everything, exits too, until a resume.
    Kill,
    /// Sell everything held now, then pause entries.
    Flatten,
    /// Move to the phase in `to` (gates must pass unless `force`).
    Promote,
    /// Answer with the ladder's state and the book.
    Status,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Command {
    pub id: String,
    pub action: Action,
    #[serde(default)]
    pub reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    #[serde(default)]
    pub force: bool,
    #[serde(with = "rfc3339")]
    pub issued_at: Millis,
    pub issuer: String,
    /// Hex HMAC-SHA256 of the command with this field empty.
    #[serde(default)]
    pub hmac: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Reply {
    pub command_id: String,
    pub ok: bool,
    pub message: String,
    #[serde(with = "rfc3339")]
    pub at: Millis,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<serde_json::Value>,
}

fn mac(secret: &[u8]) -> Hmac<Sha256> {
    // HMAC takes a key of any length
    <Hmac<Sha256> as Mac>::new_from_slice(secret).expect("HMAC accepts any key length")
}

impl Command {
    /// The bytes the signature covers: the command as JSON with `hmac` empty.
    fn signed_bytes(&self) -> Vec<u8> {
        let mut c = self.clone();
        c.hmac.clear();
        serde_json::to_vec(&c).unwrap_or_default()
    }

    pub fn sign(&mut self, secret: &[u8]) {
        let mut m = mac(secret);
        m.update(&self.signed_bytes());
        self.hmac = m
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
    }

    /// Constant-time check of the signature.
    pub fn verify(&self, secret: &[u8]) -> bool {
        let Some(sig) = decode_hex(&self.hmac) else {
            return false;
        };
        let mut m = mac(secret);
        m.update(&self.signed_bytes());
        m.verify_slice(&sig).is_ok()
    }
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if s.len() != 64 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// A command that may be obeyed, or why not (for the dead letter and the alert).
pub fn admit(
    bytes: &[u8],
    secret: &[u8],
    now: Millis,
    seen: impl Fn(&str) -> bool,
) -> Result<Command, String> {
    let c: Command = envelope::decode("command", bytes).map_err(|e| e.0)?;
    if !c.verify(secret) {
        return Err(format!(
            "command {} from {:?}: bad or missing signature",
            c.id, c.issuer
        ));
    }
    if c.issued_at < now - MAX_COMMAND_AGE_MS || c.issued_at > now + 5_000 {
        return Err(format!(
            "command {}: issued at {} ms, outside the last five minutes",
            c.id, c.issued_at
        ));
    }
    if seen(&c.id) {
        return Err(format!("command {}: already obeyed (a replay)", c.id));
    }
    if c.action == Action::Promote && c.to.is_none() {
        return Err(format!("command {}: promote needs `to`", c.id));
    }
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(action: Action, at: Millis) -> Command {
        Command {
            id: "c1".into(),
            action,
            reason: "r".into(),
            to: None,
            force: false,
            issued_at: at,
            issuer: "ops".into(),
            hmac: String::new(),
        }
    }

    #[test]
    fn only_a_fresh_new_command_signed_with_the_secret_is_admitted() {
        let now = 10_000_000;
        let mut c = cmd(Action::Pause, now - 1_000);
        c.sign(b"s3cret");
        let bytes = envelope::encode("command", &c);
        assert_eq!(admit(&bytes, b"s3cret", now, |_| false), Ok(c.clone()));
        assert!(admit(&bytes, b"other", now, |_| false)
            .unwrap_err()
            .contains("signature"));
        assert!(admit(&bytes, b"s3cret", now, |_| true)
            .unwrap_err()
            .contains("replay"));
        assert!(
            admit(&bytes, b"s3cret", now + MAX_COMMAND_AGE_MS + 2_000, |_| {
                false
            })
            .unwrap_err()
            .contains("five minutes")
        );
        // changing anything after signing breaks the signature
        let mut tampered = c.clone();
        tampered.action = Action::Flatten;
        let bytes = envelope::encode("command", &tampered);
        assert!(admit(&bytes, b"s3cret", now, |_| false)
            .unwrap_err()
            .contains("signature"));
        let unsigned = envelope::encode("command", &cmd(Action::Kill, now));
        assert!(admit(&unsigned, b"s3cret", now, |_| false).is_err());
        assert!(admit(b"{not json", b"s3cret", now, |_| false).is_err());
    }

    #[test]
    fn commands_and_replies_match_their_schemas() {
        let schema = |name: &str| -> serde_json::Value {
            let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join(format!("kafka/schemas/{name}.json"));
            serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
        };
        let mut c = cmd(Action::Promote, 0);
        c.to = Some("micro".into());
        c.sign(b"k");
        let r = Reply {
            command_id: "c1".into(),
            ok: true,
            message: "m".into(),
            at: 0,
            status: Some(serde_json::json!({"phase": "paper"})),
        };
        for (name, v) in [
            ("command", serde_json::to_value(&c).unwrap()),
            ("reply", serde_json::to_value(&r).unwrap()),
        ] {
            assert_eq!(
                crate::kafka::schema_check::check(&schema(name), &v),
                Vec::<String>::new(),
                "{name}"
            );
        }
    }
}
