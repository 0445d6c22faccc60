//! Why a value or a record was refused. The reason is text because it travels into dead letters and error
//! messages, where a person reads it; it is its own type so a caller cannot take it for any other failure.

/// A value or record that is not what its field needs; the message names the field and what it should be.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

impl Invalid {
    /// The same refusal with what it was about in front ("post 17: ...").
    pub fn context(self, what: impl std::fmt::Display) -> Invalid {
        Invalid(format!("{what}: {}", self.0))
    }
}

/// A dead letter keeps the reason as the text a person reads.
impl From<Invalid> for String {
    fn from(v: Invalid) -> String {
        v.0
    }
}
