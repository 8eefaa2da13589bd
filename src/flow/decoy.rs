//! What a decoy flow looks like: the methods, hints and questions of a real registration.
//!
//! A decoy (an unknown, unregistered, out-of-scope or disabled name) must show a verify
//! page that cannot be told from a real user's — the same sections, hints at the same kind
//! of addresses, questions of the same length. So decoys do not invent a shape: each wears
//! the *likeness* of a registration drawn from a sample of the real ones, with the
//! registration's methods in its order, its email hint's domain (and whether its first
//! letter is the login's), its phone number's country digit and length, and its questions.
//! Over many names, decoys then show what real users show, in the same proportions.
//!
//! The sample holds at most [`SAMPLE_SIZE`] registrations that meet the method policy,
//! those with the smallest keyed hash of their id: a uniform sample that stays put as
//! registrations come and go (a new one enters with probability `SAMPLE_SIZE / n`). A name
//! wears the member with the highest keyed hash of (name, member) — rendezvous hashing —
//! so a name looks the same on every start, and a changed sample moves few names. No
//! address, number or login of the registration is kept: only its shape.

use crate::method::Method;
use crate::method::contact::{self, ContactKind};
use crate::policy::MethodPolicy;
use crate::store::{Offer, Registration};
use sha2::{Digest, Sha256};

/// Registrations a sample holds at most.
pub const SAMPLE_SIZE: usize = 256;

/// The first letter of an email hint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Initial {
    /// The login's first letter (as users who name their mailbox after themselves have),
    /// upper case or not.
    Login { upper: bool },
    /// Another letter.
    Other(char),
}

/// The shape of a method's hint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HintShape {
    /// No hint (questions, an authenticator).
    None,
    /// `x•••@domain`.
    Email { initial: Initial, domain: String },
    /// `+h ••• ••• ••nn` for a number of `digits` digits starting with `head`.
    Phone { head: char, digits: usize },
}

/// A registration's shape, without its values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Likeness {
    /// Keyed hash of the registration's id: its place in the sample, and its name in the
    /// rendezvous.
    rank: [u8; 16],
    /// The methods it offers, in order, with their hint shapes.
    pub offers: Vec<(Method, HintShape)>,
    /// The question ids it registered.
    pub questions: Vec<String>,
}

/// A sample of likenesses (empty before any registration meets the policy).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Likenesses(Vec<Likeness>);

fn keyed(key: &[u8; 32], purpose: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(purpose);
    h.update(key);
    for p in parts {
        h.update((p.len() as u64).to_be_bytes());
        h.update(p);
    }
    h.finalize().into()
}

fn shape_of(kind: ContactKind, value: &str, login: &str) -> HintShape {
    match kind {
        ContactKind::Email => {
            let (local, domain) = value.split_once('@').unwrap_or((value, ""));
            let first = local.chars().next().unwrap_or('x');
            let login_first = login.chars().next().unwrap_or('\0');
            let initial = if first.to_lowercase().eq(login_first.to_lowercase()) {
                Initial::Login {
                    upper: first.is_uppercase(),
                }
            } else {
                Initial::Other(first)
            };
            HintShape::Email {
                initial,
                domain: domain.to_string(),
            }
        }
        ContactKind::Mobile | ContactKind::Office => {
            let digits: Vec<char> = value.chars().filter(char::is_ascii_digit).collect();
            HintShape::Phone {
                head: digits.first().copied().unwrap_or('1'),
                digits: digits.len(),
            }
        }
    }
}

/// The likeness of `reg` under `mp` at `now`, when it would get a real flow: its usable
/// methods ([`super::offers`]) meet the policy.
fn likeness(
    key: &[u8; 32],
    reg: &Registration,
    mp: &MethodPolicy,
    now: u64,
    reset_count: usize,
) -> Option<Likeness> {
    let offered = super::offers(reg, mp, now, reset_count);
    let methods: Vec<Method> = offered.iter().map(|o| o.method).collect();
    if offered.is_empty() || mp.unmet(&methods).is_some() {
        return None;
    }
    let offers = offered
        .iter()
        .map(|o| {
            let shape = o
                .method
                .contact_kind()
                .and_then(|kind| reg.contact(kind).map(|c| (kind, c)))
                .map_or(HintShape::None, |(kind, c)| {
                    shape_of(kind, &c.value, &reg.login)
                });
            (o.method, shape)
        })
        .collect();
    let rank = keyed(key, b"likeness rank\0", &[reg.user_id.as_bytes()]);
    Some(Likeness {
        rank: rank[..16].try_into().expect("16 bytes"),
        offers,
        questions: reg
            .questions
            .iter()
            .map(|q| q.question_id.clone())
            .collect(),
    })
}

impl Likenesses {
    /// The sample of `regs` (see the module doc): at most [`SAMPLE_SIZE`] of those that
    /// would get a real flow under `mp` at `now`.
    pub fn sample(
        key: &[u8; 32],
        regs: &[Registration],
        mp: &MethodPolicy,
        now: u64,
        reset_count: usize,
    ) -> Self {
        let mut all: Vec<Likeness> = regs
            .iter()
            .filter_map(|r| likeness(key, r, mp, now, reset_count))
            .collect();
        all.sort_by_key(|l| l.rank);
        all.truncate(SAMPLE_SIZE);
        Self(all)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The likeness `login` wears: the member with the highest keyed hash of (login,
    /// member), among those whose methods still meet `mp` (the policy may have changed
    /// since the sample was taken); `None` when none does.
    pub fn worn_by(&self, key: &[u8; 32], login: &str, mp: &MethodPolicy) -> Option<&Likeness> {
        let name = login.to_lowercase();
        self.0
            .iter()
            .filter(|l| {
                let methods: Vec<Method> = l.offers.iter().map(|(m, _)| *m).collect();
                methods.iter().all(|m| mp.is_enabled(*m)) && mp.unmet(&methods).is_none()
            })
            .max_by_key(|l| keyed(key, b"likeness worn\0", &[name.as_bytes(), &l.rank]))
    }
}

/// The offers a decoy for `login` shows in `likeness`: its methods, with hints made for
/// this login (an email's first letter, a number's hidden digits from a keyed hash).
pub fn offers(likeness: &Likeness, key: &[u8; 32], login: &str) -> Vec<Offer> {
    let d = keyed(key, b"likeness hints\0", &[login.to_lowercase().as_bytes()]);
    likeness
        .offers
        .iter()
        .map(|(method, shape)| {
            let hint = match shape {
                HintShape::None => String::new(),
                HintShape::Email { initial, domain } => {
                    let first = match initial {
                        Initial::Login { upper } => {
                            let c = login.chars().next().unwrap_or('x');
                            if *upper {
                                c.to_uppercase().next().unwrap_or(c)
                            } else {
                                c.to_lowercase().next().unwrap_or(c)
                            }
                        }
                        Initial::Other(c) => *c,
                    };
                    format!("{first}•••@{domain}")
                }
                HintShape::Phone { head, digits } => {
                    let rest: String = (1..*digits)
                        .map(|i| char::from(b'0' + d[i % 32] % 10))
                        .collect();
                    contact::mask(ContactKind::Mobile, &format!("+{head}{rest}"))
                }
            };
            Offer {
                method: *method,
                hint,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Authenticator, Contact, RegisteredQuestion};

    fn mp(enabled: &[Method], required: u32) -> MethodPolicy {
        MethodPolicy {
            enabled: enabled.to_vec(),
            required,
            questions_not_only: false,
            sms_alone_not_allowed: false,
        }
    }

    fn reg(
        id: &str,
        login: &str,
        email: Option<&str>,
        phone: Option<&str>,
        auth: bool,
    ) -> Registration {
        let mut r = Registration::empty(id, login, 0);
        r.questions = ["bank.first_pet", "bank.birth_city", "bank.first_car"]
            .iter()
            .map(|q| RegisteredQuestion {
                question_id: (*q).into(),
                answer_hash: String::new(),
            })
            .collect();
        for (kind, value) in [(ContactKind::Email, email), (ContactKind::Mobile, phone)] {
            if let Some(v) = value {
                r.contacts.push(Contact {
                    kind,
                    value: v.into(),
                    confirmed_at: 0,
                    usable_from: 0,
                });
            }
        }
        if auth {
            r.authenticator = Some(Authenticator {
                sealed_secret: String::new(),
                last_step: 0,
                enrolled_at: 0,
                usable_from: 0,
            });
        }
        r
    }

    const ALL: [Method; 4] = [
        Method::SecurityQuestions,
        Method::Email,
        Method::MobileSms,
        Method::AuthenticatorCode,
    ];

    #[test]
    fn a_decoy_wears_a_real_shape_with_its_own_letters_and_digits() {
        let key = [5u8; 32];
        let regs = vec![reg(
            "id-1",
            "jdoe",
            Some("JDoe@mail.example"),
            Some("+4915112345678"),
            false,
        )];
        let policy = mp(&ALL, 1);
        let sample = Likenesses::sample(&key, &regs, &policy, 10, 3);
        assert_eq!(sample.len(), 1);
        let l = sample.worn_by(&key, "mallory", &policy).unwrap();
        let o = offers(l, &key, "mallory");
        let methods: Vec<Method> = o.iter().map(|o| o.method).collect();
        assert_eq!(
            methods,
            [Method::SecurityQuestions, Method::Email, Method::MobileSms]
        );
        assert_eq!(
            o[1].hint, "M•••@mail.example",
            "the login's letter, upper as JDoe's"
        );
        assert!(o[2].hint.starts_with("+4 "), "{}", o[2].hint);
        let real = contact::mask(ContactKind::Mobile, "+4915112345678");
        assert_eq!(o[2].hint.chars().count(), real.chars().count());
        assert_ne!(o[2].hint, real, "not the real number's last digits");
        assert_eq!(
            l.questions,
            regs[0]
                .questions
                .iter()
                .map(|q| q.question_id.clone())
                .collect::<Vec<_>>()
        );
        // Stable per name.
        assert_eq!(offers(l, &key, "mallory"), o);
        assert_eq!(sample.worn_by(&key, "Mallory", &policy), Some(l));
    }

    /// Over many names, decoys show the shapes of the sample in its proportions.
    #[test]
    fn names_spread_over_the_sample() {
        let key = [6u8; 32];
        let mut regs = Vec::new();
        for i in 0..30 {
            let id = format!("id-{i}");
            let login = format!("user{i}");
            regs.push(match i % 3 {
                0 => reg(&id, &login, None, None, true),
                1 => reg(&id, &login, Some(&format!("u{i}@a.example")), None, false),
                _ => reg(&id, &login, Some(&format!("u{i}@b.example")), None, true),
            });
        }
        let policy = mp(&ALL, 1);
        let sample = Likenesses::sample(&key, &regs, &policy, 10, 3);
        assert_eq!(sample.len(), 30);
        let mut kinds = std::collections::BTreeMap::new();
        for n in 0..3_000 {
            let login = format!("nobody{n}");
            let l = sample.worn_by(&key, &login, &policy).unwrap();
            let shape: Vec<String> = offers(l, &key, &login)
                .iter()
                .map(|o| {
                    format!(
                        "{}{}",
                        o.method.name(),
                        o.hint.split('@').nth(1).unwrap_or("")
                    )
                })
                .collect();
            *kinds.entry(shape.join(",")).or_insert(0) += 1;
        }
        assert_eq!(kinds.len(), 3, "{kinds:?}");
        for (shape, n) in &kinds {
            assert!((800..1_200).contains(n), "{shape}: {n} of 3,000");
        }
    }

    #[test]
    fn the_sample_is_bounded_stable_and_follows_the_policy() {
        let key = [7u8; 32];
        let regs: Vec<Registration> = (0..1_000)
            .map(|i| reg(&format!("id-{i}"), "u", None, None, i % 2 == 0))
            .collect();
        let policy = mp(&ALL, 1);
        let sample = Likenesses::sample(&key, &regs, &policy, 10, 3);
        assert_eq!(sample.len(), SAMPLE_SIZE);
        // One registration more moves at most one member.
        let mut more = regs.clone();
        more.push(reg("id-new", "u", None, None, true));
        let again = Likenesses::sample(&key, &more, &policy, 10, 3);
        let kept = again.0.iter().filter(|l| sample.0.contains(l)).count();
        assert!(kept >= SAMPLE_SIZE - 1, "{kept}");
        // Authenticators switched off: only shapes that still meet the policy are worn.
        let no_auth = mp(&[Method::SecurityQuestions, Method::Email], 1);
        for n in 0..100 {
            if let Some(l) = sample.worn_by(&key, &format!("n{n}"), &no_auth) {
                assert!(
                    l.offers
                        .iter()
                        .all(|(m, _)| *m != Method::AuthenticatorCode)
                );
            }
        }
        // Registrations that would get no real flow are not sampled.
        let two = mp(&ALL, 2);
        let only_questions: Vec<Registration> = (0..10)
            .map(|i| reg(&format!("q{i}"), "u", None, None, false))
            .collect();
        assert!(Likenesses::sample(&key, &only_questions, &two, 10, 3).is_empty());
    }
}
