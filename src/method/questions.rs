//! Security questions: answer normalisation and argon2id hashing on a bounded blocking pool.

use crate::secret::Secret;
use argon2::{
    Algorithm, Argon2, Block, Params, Version,
    password_hash::phc::{Output, ParamsString, PasswordHash, Salt},
};
use std::sync::{Arc, Mutex};
use tokio::sync::Semaphore;
use unicode_normalization::UnicodeNormalization;
use zeroize::Zeroize;

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
///
/// The 19 MiB of work memory a hash needs comes from a pool of buffers, one per permit,
/// reused from hash to hash (and wiped between uses) rather than allocated fresh: fresh
/// allocations on the blocking pool's many threads left the daemon's resident memory far
/// above what two hashes at once need, and their page faults cost a good part of its CPU.
#[derive(Clone)]
pub struct AnswerHasher {
    permits: Arc<Semaphore>,
    memory: Arc<Mutex<Vec<Vec<Block>>>>,
    /// A hash of a random value, verified against when there is nothing real to compare
    /// (unknown user), so both paths do the same work.
    dummy: Arc<String>,
}

/// Hashes `pwd` as argon2id with the default parameters and a fresh salt into a PHC
/// string, in `memory`.
fn hash_in(memory: &mut [Block], pwd: &[u8]) -> Result<String, argon2::Error> {
    let params = Params::default();
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    let salt = Salt::generate();
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    argon.hash_password_into_with_memory(
        pwd,
        &salt,
        &mut out,
        &mut memory[..params.block_count()],
    )?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).expect("the default parameters encode"),
        salt: Some(salt),
        hash: Some(Output::new(&out).expect("a 32-byte output is valid")),
    };
    out.zeroize();
    Ok(phc.to_string())
}

/// Whether `pwd` matches the PHC string `phc` (argon2 of any variant and parameters it
/// names), computed in `memory` when it is large enough; compared in constant time.
fn verify_in(memory: &mut Vec<Block>, pwd: &[u8], phc: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (&parsed.salt, &parsed.hash) else {
        return false;
    };
    let Ok(algorithm) = Algorithm::try_from(parsed.algorithm.as_str()) else {
        return false;
    };
    let version = match parsed.version.map(Version::try_from).transpose() {
        Ok(v) => v.unwrap_or_default(),
        Err(_) => return false,
    };
    let Ok(params) = Params::try_from(&parsed) else {
        return false;
    };
    if memory.len() < params.block_count() {
        // Stored with more memory than today's parameters: grow this buffer once.
        memory.resize(params.block_count(), Block::default());
    }
    let mut out = vec![0u8; expected.len()];
    let argon = Argon2::new(algorithm, version, params.clone());
    let ok = argon
        .hash_password_into_with_memory(pwd, salt, &mut out, &mut memory[..params.block_count()])
        .is_ok()
        && Output::new(&out).is_ok_and(|o| o == *expected);
    out.zeroize();
    ok
}

impl AnswerHasher {
    pub fn new(max_concurrent: usize) -> Self {
        let permits = max_concurrent.max(1);
        let mut random = [0u8; 16];
        getrandom::fill(&mut random).expect("OS random source");
        let mut first = vec![Block::default(); Params::default().block_count()];
        let dummy = hash_in(&mut first, &random).expect("argon2 with default parameters");
        wipe(&mut first);
        Self {
            permits: Arc::new(Semaphore::new(permits)),
            memory: Arc::new(Mutex::new(vec![first])),
            dummy: Arc::new(dummy),
        }
    }

    /// Runs `work` on the blocking pool in a work-memory buffer from the pool (a new one
    /// while fewer than the permits exist), under a permit; the buffer is wiped and goes back.
    async fn with_memory<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Vec<Block>) -> T + Send + 'static,
    ) -> T {
        // The permit goes with the work: a caller that gives up does not free it early.
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .expect("semaphore never closed");
        let memory = self.memory.clone();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let taken = memory.lock().expect("memory pool lock").pop();
            let mut buf =
                taken.unwrap_or_else(|| vec![Block::default(); Params::default().block_count()]);
            let result = work(&mut buf);
            wipe(&mut buf);
            memory.lock().expect("memory pool lock").push(buf);
            result
        })
        .await
        .expect("hashing task panicked")
    }

    /// Hashes a normalised answer to a PHC string.
    pub async fn hash(&self, normalised: Secret) -> String {
        self.with_memory(move |m| {
            hash_in(m, normalised.expose().as_bytes())
                .expect("argon2 hashing with default parameters cannot fail")
        })
        .await
    }

    /// Checks a normalised answer against a stored PHC string (constant-time compare).
    /// `None` as the hash does the same work against a dummy and returns false.
    pub async fn verify(&self, normalised: Secret, phc: Option<String>) -> bool {
        let real = phc.is_some();
        let phc = phc.unwrap_or_else(|| self.dummy.as_ref().clone());
        self.with_memory(move |m| verify_in(m, normalised.expose().as_bytes(), &phc) && real)
            .await
    }

    /// Work-memory buffers held (at most one per permit).
    pub fn buffers(&self) -> usize {
        self.memory.lock().expect("memory pool lock").len()
    }
}

/// Wipes an argon2 work-memory buffer (it holds state derived from an answer).
/// Wipes the work memory at `memset` speed. The stores are kept: the buffer's address goes
/// through `black_box`, which the compiler must treat as reading it, so the zeros cannot be
/// left out as dead stores (volatile stores of one word at a time, what `zeroize` does,
/// cost a tenth of a security-question check's CPU on 19 MiB).
pub fn wipe(memory: &mut [Block]) {
    memory.fill(Block::default());
    std::hint::black_box(&*memory);
    std::sync::atomic::compiler_fence(std::sync::atomic::Ordering::SeqCst);
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

    /// Hashes stored before the memory pool (argon2's own `hash_password`) verify, and new
    /// ones verify with argon2's own verifier: the PHC strings are the same format.
    #[tokio::test]
    async fn pooled_hashes_match_argon2s_own() {
        use argon2::password_hash::{PasswordHasher, PasswordVerifier};
        let h = AnswerHasher::new(2);
        let old = Argon2::default().hash_password(b"rex").unwrap().to_string();
        assert!(h.verify(normalise("Rex"), Some(old.clone())).await);
        assert!(!h.verify(normalise("max"), Some(old)).await);
        let new = h.hash(normalise("Rex")).await;
        let parsed = PasswordHash::new(&new).unwrap();
        assert!(Argon2::default().verify_password(b"rex", &parsed).is_ok());
        assert!(Argon2::default().verify_password(b"max", &parsed).is_err());
        assert!(new.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{new}");
        // Other parameters (here less memory, more passes) are honoured.
        let custom = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(8192, 3, 1, None).unwrap(),
        )
        .hash_password(b"rex")
        .unwrap()
        .to_string();
        assert!(h.verify(normalise("rex"), Some(custom.clone())).await);
        assert!(!h.verify(normalise("max"), Some(custom)).await);
    }

    /// However many hashes run, no more buffers exist than permits.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn work_memory_is_reused() {
        let h = AnswerHasher::new(2);
        let tasks: Vec<_> = (0..12)
            .map(|i| {
                let h = h.clone();
                tokio::spawn(async move { h.hash(normalise(&format!("answer {i}"))).await })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        assert!(h.buffers() <= 2, "{} buffers", h.buffers());
    }
}
