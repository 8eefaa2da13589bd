//! Security questions: answer normalisation and argon2id hashing on a bounded blocking pool.

use crate::secret::Secret;
use argon2::{
    Argon2,
    password_hash::{PasswordHasher, PasswordVerifier, phc::PasswordHash},
};
use std::sync::Arc;
use tokio::sync::Semaphore;
use unicode_normalization::UnicodeNormalization;

/// Answer length bounds, in characters after normalisation.
pub const MIN_ANSWER_CHARS: usize = 3;
pub const MAX_ANSWER_CHARS: usize = 40;

/// Why an answer is not acceptable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AnswerError {
    #[error("the answer is shorter than {MIN_ANSWER_CHARS} characters")]
    TooShort,
    #[error("the answer is longer than {MAX_ANSWER_CHARS} characters")]
    TooLong,
}

/// Normalises an answer: Unicode NFKC, lowercase, trim, collapse inner white space.
/// The result is what gets hashed and compared, so "  Fluffy   McFluff " == "fluffy mcfluff".
pub fn normalise(answer: &str) -> Secret {
    let folded: String = answer.nfkc().collect::<String>().to_lowercase();
    let mut out = String::with_capacity(folded.len());
    for word in folded.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    // NFKC again: lowercasing can produce sequences that are not in NFKC.
    Secret::new(out.nfkc().collect::<String>())
}

/// Normalises and checks the length bounds.
pub fn normalise_checked(answer: &str) -> Result<Secret, AnswerError> {
    let n = normalise(answer);
    let chars = n.expose().chars().count();
    if chars < MIN_ANSWER_CHARS {
        Err(AnswerError::TooShort)
    } else if chars > MAX_ANSWER_CHARS {
        Err(AnswerError::TooLong)
    } else {
        Ok(n)
    }
}

/// argon2id hashing (m=19456 KiB, t=2, p=1: the OWASP defaults) with at most
/// `max_concurrent` hashes at once, each on tokio's blocking pool.
#[derive(Clone)]
pub struct AnswerHasher {
    permits: Arc<Semaphore>,
    /// A hash of a random value, verified against when there is nothing real to compare
    /// (unknown user), so both paths do the same work.
    dummy: Arc<String>,
}

impl AnswerHasher {
    pub fn new(max_concurrent: usize) -> Self {
        let mut random = [0u8; 16];
        getrandom::fill(&mut random).expect("OS random source");
        let dummy = Argon2::default()
            .hash_password(&random)
            .expect("argon2 with default parameters")
            .to_string();
        Self {
            permits: Arc::new(Semaphore::new(max_concurrent.max(1))),
            dummy: Arc::new(dummy),
        }
    }

    /// Hashes a normalised answer to a PHC string.
    pub async fn hash(&self, normalised: Secret) -> String {
        let _permit = self
            .permits
            .acquire()
            .await
            .expect("semaphore never closed");
        tokio::task::spawn_blocking(move || {
            Argon2::default()
                .hash_password(normalised.expose().as_bytes())
                .expect("argon2 hashing with default parameters cannot fail")
                .to_string()
        })
        .await
        .expect("hashing task panicked")
    }

    /// Checks a normalised answer against a stored PHC string (constant-time compare inside
    /// argon2). `None` as the hash does the same work against a dummy and returns false.
    pub async fn verify(&self, normalised: Secret, phc: Option<String>) -> bool {
        let _permit = self
            .permits
            .acquire()
            .await
            .expect("semaphore never closed");
        let real = phc.is_some();
        let phc = phc.unwrap_or_else(|| self.dummy.as_ref().clone());
        tokio::task::spawn_blocking(move || {
            let Ok(parsed) = PasswordHash::new(&phc) else {
                return false;
            };
            let ok = Argon2::default()
                .verify_password(normalised.expose().as_bytes(), &parsed)
                .is_ok();
            ok && real
        })
        .await
        .expect("verification task panicked")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalisation_folds_case_space_and_width() {
        assert_eq!(normalise("  Fluffy   McFluff ").expose(), "fluffy mcfluff");
        // Fullwidth letters fold to ASCII under NFKC.
        assert_eq!(normalise("ＦＬＵＦＦＹ").expose(), "fluffy");
        assert_eq!(normalise("Straße\tNo\u{00a0}5").expose(), "straße no 5");
        assert_eq!(normalise("é").expose(), normalise("e\u{301}").expose());
    }

    #[test]
    fn lengths_are_counted_after_normalisation() {
        assert_eq!(
            normalise_checked("  a  b ")
                .map(|s| s.expose().len())
                .unwrap(),
            3
        );
        assert_eq!(
            normalise_checked("  ab  ").unwrap_err(),
            AnswerError::TooShort
        );
        assert!(normalise_checked("abc").is_ok());
        assert_eq!(
            normalise_checked(&"x".repeat(41)).unwrap_err(),
            AnswerError::TooLong
        );
        assert!(normalise_checked(&"x".repeat(40)).is_ok());
    }

    #[tokio::test]
    async fn hash_then_verify() {
        let h = AnswerHasher::new(2);
        let phc = h.hash(normalise("Rex")).await;
        assert!(phc.starts_with("$argon2id$"));
        assert!(!phc.contains("rex"));
        assert!(h.verify(normalise(" REX "), Some(phc.clone())).await);
        assert!(!h.verify(normalise("max"), Some(phc)).await);
        assert!(!h.verify(normalise("anything"), None).await);
    }
}
