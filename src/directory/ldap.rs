//! [`Directory`] over ldap3 with rustls.
//!
//! Connections are kept open in two bounded pools (see [`super::pool`]): one bound as the
//! service account, one for binds with users' passwords only. A new connection tries each
//! configured URI in order until one answers (each gets its share of the timeout to
//! connect). Every operation as a whole — waiting for a pooled connection, or connecting,
//! TLS and the service bind, then the search or write — ends within the configured timeout
//! (a paged user listing: each page). Passwords only ever cross a TLS connection
//! (`ldaps://` or StartTLS); `allow_insecure` only admits lookups on plain LDAP.

use super::pool::{Entry, Pool, Reuse};
use super::settings::{DirectoryConfig, Flavour, OpenldapPasswordWrite};
use super::{
    BindOutcome, Directory, DirectoryError, DirectoryPasswordPolicy, DirectoryUser, Lockout,
    UserListing, active_directory as ad,
    openldap::{self, PPOLICY_OID, PpolicyError},
};
use crate::secret::Secret;
use ldap3::{
    Ldap, LdapConnAsync, LdapConnSettings, LdapError, LdapResult, Mod, Scope, SearchEntry,
    controls::RawControl, exop::PasswordModify,
};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;
use tracing::{debug, instrument, warn};

/// LDAP result codes used here (RFC 4511).
pub(super) mod rc {
    pub const SUCCESS: u32 = 0;
    pub const UNAVAILABLE_CRITICAL_EXTENSION: u32 = 12;
    pub const NO_SUCH_ATTRIBUTE: u32 = 16;
    pub const CONSTRAINT_VIOLATION: u32 = 19;
    pub const INVALID_CREDENTIALS: u32 = 49;
    pub const INSUFFICIENT_ACCESS: u32 = 50;
    pub const BUSY: u32 = 51;
    pub const UNAVAILABLE: u32 = 52;
    pub const UNWILLING_TO_PERFORM: u32 = 53;
}

pub struct LdapDirectory {
    cfg: DirectoryConfig,
    tls: Arc<rustls::ClientConfig>,
    /// Connections bound as the service account.
    service_pool: Pool<Conn>,
    /// Connections used for users' binds only.
    bind_pool: Pool<Conn>,
}

/// An open connection, whether it is protected by TLS, and the URI it went to.
struct Conn {
    ldap: Ldap,
    tls: bool,
    timeout: Duration,
    uri: usize,
}

/// A pooled connection held for one operation. It goes back to its pool only through
/// [`Lease::done`], once the server has answered; dropped otherwise (an error, a timeout,
/// a cancelled call), it is closed.
struct Lease<'a> {
    entry: Option<Entry<Conn>>,
    pool: &'a Pool<Conn>,
    _permit: super::pool::Permit<'a>,
}

impl Lease<'_> {
    fn done(mut self) {
        if let Some(e) = self.entry.take() {
            self.pool.put_back(e, std::time::Instant::now());
        }
    }
}

impl std::ops::Deref for Lease<'_> {
    type Target = Conn;
    fn deref(&self) -> &Conn {
        &self
            .entry
            .as_ref()
            .expect("a lease holds its connection")
            .conn
    }
}

impl std::ops::DerefMut for Lease<'_> {
    fn deref_mut(&mut self) -> &mut Conn {
        &mut self
            .entry
            .as_mut()
            .expect("a lease holds its connection")
            .conn
    }
}

/// Which pool.
#[derive(Clone, Copy)]
enum Kind {
    Service,
    UserBinds,
}

impl Conn {
    async fn close(mut self) {
        let _ = tokio::time::timeout(self.timeout, self.ldap.unbind()).await;
    }
}

impl LdapDirectory {
    pub fn new(cfg: DirectoryConfig) -> Result<Self, DirectoryError> {
        let tls = crate::tls::client_config(cfg.ca_pem.as_deref())
            .map_err(|e| DirectoryError::Protocol(format!("directory {e}")))?;
        Ok(Self {
            service_pool: Pool::new("service", cfg.pool_size),
            bind_pool: Pool::new("user_binds", cfg.pool_size),
            cfg,
            tls: Arc::new(tls),
        })
    }

    /// A connection of `kind` from its pool: an idle one that is still good, else a new
    /// one.
    async fn lease(&self, kind: Kind) -> Result<Lease<'_>, DirectoryError> {
        let pool = match kind {
            Kind::Service => &self.service_pool,
            Kind::UserBinds => &self.bind_pool,
        };
        let permit = pool.permit().await;
        while let Some(mut e) = pool.take_idle() {
            if e.conn.ldap.is_closed() {
                continue;
            }
            let usable = match super::pool::reuse(
                e.uri,
                e.opened,
                e.idle_since,
                std::time::Instant::now(),
            ) {
                Reuse::Use => true,
                Reuse::Check => self.answers(&mut e.conn).await,
                Reuse::Close => false,
            };
            if usable {
                return Ok(Lease {
                    entry: Some(e),
                    pool,
                    _permit: permit,
                });
            }
            // Dropped, not unbound: a dead connection could hold this call up.
        }
        let conn = match kind {
            Kind::Service => self.service().await?,
            Kind::UserBinds => {
                let conn = self.connect().await?;
                if !conn.tls {
                    conn.close().await;
                    return Err(DirectoryError::InsecureTransport);
                }
                conn
            }
        };
        let uri = conn.uri;
        Ok(Lease {
            entry: Some(Entry::new(conn, uri, std::time::Instant::now())),
            pool,
            _permit: permit,
        })
    }

    /// True when an idle connection still answers a Who am I? within a quarter of the
    /// operation's timeout (at most a second), leaving the rest for a new connection.
    async fn answers(&self, conn: &mut Conn) -> bool {
        let t = (self.timeout() / 4).min(Duration::from_secs(1));
        matches!(
            conn.ldap.with_timeout(t).extended(ldap3::exop::WhoAmI).await,
            Ok(ref r) if r.1.rc == rc::SUCCESS
        )
    }

    fn timeout(&self) -> Duration {
        self.cfg.timeout
    }

    /// `op` as a whole within the timeout.
    async fn bounded<T>(
        &self,
        op: impl std::future::Future<Output = Result<T, DirectoryError>>,
    ) -> Result<T, DirectoryError> {
        tokio::time::timeout(self.timeout(), op)
            .await
            .unwrap_or_else(|_| {
                Err(DirectoryError::Unavailable(format!(
                    "no answer within {} ms",
                    self.timeout().as_millis()
                )))
            })
    }

    /// Connects to the first reachable URI.
    async fn connect(&self) -> Result<Conn, DirectoryError> {
        let mut last = String::from("no directory URI configured");
        // Each server gets its share of the operation's time, so a hanging first server
        // leaves time to try the next.
        let share = self.timeout() / u32::try_from(self.cfg.uris.len().max(1)).unwrap_or(1);
        for (index, uri) in self.cfg.uris.iter().enumerate() {
            let ldaps = uri.to_ascii_lowercase().starts_with("ldaps://");
            let starttls = !ldaps && self.cfg.starttls;
            let stream = match tcp_connect(uri, ldaps, share).await {
                Ok(s) => s,
                Err(e) => {
                    warn!(%uri, error = %e, "directory server unreachable, trying the next one");
                    last = format!("{uri}: {e}");
                    continue;
                }
            };
            let settings = LdapConnSettings::new()
                .set_config(self.tls.clone())
                .set_conn_timeout(share)
                .set_starttls(starttls)
                .set_std_stream(ldap3::StdStream::Tcp(stream));
            let attempt =
                tokio::time::timeout(share, LdapConnAsync::with_settings(settings, uri)).await;
            match attempt {
                Ok(Ok((conn, ldap))) => {
                    ldap3::drive!(conn);
                    return Ok(Conn {
                        ldap,
                        tls: ldaps || starttls,
                        timeout: self.timeout(),
                        uri: index,
                    });
                }
                Ok(Err(e)) => {
                    warn!(%uri, error = %e, "directory server unreachable, trying the next one");
                    last = format!("{uri}: {e}");
                }
                Err(_) => {
                    warn!(%uri, "directory server connect timed out, trying the next one");
                    last = format!("{uri}: connect timed out");
                }
            }
        }
        Err(DirectoryError::Unavailable(last))
    }

    /// Connects and binds as the service account.
    async fn service(&self) -> Result<Conn, DirectoryError> {
        let mut conn = self.connect().await?;
        if !conn.tls && !self.cfg.allow_insecure {
            conn.close().await;
            return Err(DirectoryError::InsecureTransport);
        }
        let t = self.timeout();
        let res = conn
            .ldap
            .with_timeout(t)
            .simple_bind(&self.cfg.bind_dn, self.cfg.bind_password.expose())
            .await
            .map_err(op_error)?;
        if res.rc != rc::SUCCESS {
            conn.close().await;
            return Err(match res.rc {
                rc::BUSY | rc::UNAVAILABLE => DirectoryError::Unavailable(res.text),
                _ => DirectoryError::ServiceBind(format!("result {} {}", res.rc, res.text)),
            });
        }
        Ok(conn)
    }

    /// Runs a modify as the service account with optional controls; returns the raw result.
    async fn modify(
        &self,
        conn: &mut Conn,
        dn: &str,
        mods: Vec<Mod<Vec<u8>>>,
        ctrls: Vec<RawControl>,
    ) -> Result<LdapResult, DirectoryError> {
        let t = self.timeout();
        let ldap = conn.ldap.with_timeout(t);
        let ldap = if ctrls.is_empty() {
            ldap
        } else {
            ldap.with_controls(ctrls)
        };
        ldap.modify(dn, mods).await.map_err(op_error)
    }

    fn is_ad(&self) -> bool {
        self.cfg.flavour == Flavour::ActiveDirectory
    }

    fn refusal(&self, res: &LdapResult) -> DirectoryError {
        match res.rc {
            rc::INSUFFICIENT_ACCESS => DirectoryError::NotPermitted("write this password"),
            rc::BUSY | rc::UNAVAILABLE => DirectoryError::Unavailable(res.text.clone()),
            rc::UNAVAILABLE_CRITICAL_EXTENSION => DirectoryError::Protocol(
                "the server does not support a critical control (for AD: set \
                 directory.ad_policy_hints = false on Samba)"
                    .into(),
            ),
            rc::CONSTRAINT_VIOLATION | rc::UNWILLING_TO_PERFORM if self.is_ad() => {
                DirectoryError::Refused(ad::refusal_reason(&res.text))
            }
            rc::CONSTRAINT_VIOLATION | rc::UNWILLING_TO_PERFORM => {
                let reason = ppolicy_error(res)
                    .map(PpolicyError::policy_reason)
                    .unwrap_or(super::PolicyReason::Other);
                DirectoryError::Refused(reason)
            }
            other => DirectoryError::Protocol(format!("password write: result {other}")),
        }
    }
}

/// Maps an ldap3 error of an operation: IO problems and timeouts mean "unavailable".
fn op_error(e: LdapError) -> DirectoryError {
    match e {
        LdapError::Timeout { .. } => DirectoryError::Unavailable("operation timed out".into()),
        LdapError::Io { .. }
        | LdapError::OpSend { .. }
        | LdapError::ResultRecv { .. }
        | LdapError::EndOfStream => DirectoryError::Unavailable(e.to_string()),
        other => DirectoryError::Protocol(other.to_string()),
    }
}

fn ppolicy_error(res: &LdapResult) -> Option<PpolicyError> {
    res.ctrls
        .iter()
        .find(|c| c.1.ctype == PPOLICY_OID)
        .and_then(|c| c.1.val.as_deref())
        .and_then(openldap::decode_ppolicy)
        .and_then(|r| r.error)
}

/// The Relax Rules control (draft-zeilenga-ldap-relax), which lets a `manage` right change
/// operational attributes such as `pwdFailureTime`.
const RELAX_OID: &str = "1.3.6.1.4.1.4203.666.5.12";

fn ppolicy_request() -> RawControl {
    RawControl {
        ctype: PPOLICY_OID.into(),
        crit: false,
        val: None,
    }
}

fn first(entry: &SearchEntry, attr: &str) -> Option<String> {
    entry
        .attrs
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(attr))
        .and_then(|(_, v)| v.first().cloned())
}

fn first_bin(entry: &SearchEntry, attr: &str) -> Option<Vec<u8>> {
    entry
        .bin_attrs
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(attr))
        .and_then(|(_, v)| v.first().cloned())
        .or_else(|| first(entry, attr).map(String::into_bytes))
}

fn set(v: impl Into<Vec<u8>>) -> HashSet<Vec<u8>> {
    HashSet::from([v.into()])
}

/// The operations themselves; [`Directory`] bounds each (see there).
impl LdapDirectory {
    #[instrument(skip_all)]
    async fn op_find_user(&self, login: &str) -> Result<Option<DirectoryUser>, DirectoryError> {
        let mut conn = self.lease(Kind::Service).await?;
        let attr = &self.cfg.login_attribute;
        let filter = format!(
            "(&{}({}={}))",
            self.cfg.user_filter,
            attr,
            ldap3::ldap_escape(login)
        );
        let attrs = self.user_attrs();
        let t = self.timeout();
        let search = conn
            .ldap
            .with_timeout(t)
            .search(&self.cfg.base_dn, Scope::Subtree, &filter, attrs)
            .await
            .map_err(op_error)?;
        let (entries, res) = (search.0, search.1);
        if res.rc != rc::SUCCESS {
            return Err(match res.rc {
                rc::BUSY | rc::UNAVAILABLE => DirectoryError::Unavailable(res.text),
                32 => DirectoryError::Protocol(format!(
                    "search base {:?} does not exist, or the service account may not read it",
                    self.cfg.base_dn
                )),
                other => DirectoryError::Protocol(format!("user search: result {other}")),
            });
        }
        if entries.len() != 1 {
            debug!(
                matches = entries.len(),
                "user search did not match exactly one entry"
            );
            conn.done();
            return Ok(None);
        }
        let entry = SearchEntry::construct(entries.into_iter().next().expect("one entry"));
        let mut user = match self.user_of_entry(&entry, login) {
            Ok(u) => u,
            Err(e) => return Err(e),
        };
        if self.is_ad() {
            // The lockout bit is only in the constructed attribute, read with a base search.
            let computed = conn
                .ldap
                .with_timeout(t)
                .search(
                    &entry.dn,
                    Scope::Base,
                    "(objectClass=*)",
                    vec!["msDS-User-Account-Control-Computed"],
                )
                .await
                .map_err(op_error)?;
            user.locked = computed
                .0
                .into_iter()
                .next()
                .map(SearchEntry::construct)
                .and_then(|e| first(&e, "msDS-User-Account-Control-Computed"))
                .and_then(|v| v.parse::<u32>().ok())
                .is_some_and(|v| v & 0x10 != 0);
        }
        conn.done();
        Ok(Some(user))
    }

    #[instrument(skip_all)]
    async fn op_bind_as_user(
        &self,
        dn: &str,
        password: &Secret,
    ) -> Result<BindOutcome, DirectoryError> {
        // RFC 4513 §6.3.1: an empty password is an unauthenticated bind, which "succeeds".
        if password.is_empty() || password.expose().contains('\0') || dn.is_empty() {
            return Ok(BindOutcome::InvalidCredentials);
        }
        // A connection of the user-bind pool: nothing but binds is ever sent on it.
        let mut conn = self.lease(Kind::UserBinds).await?;
        let t = self.timeout();
        let ldap = conn.ldap.with_timeout(t);
        let ldap = if self.is_ad() {
            ldap
        } else {
            ldap.with_controls(vec![ppolicy_request()])
        };
        let res = ldap
            .simple_bind(dn, password.expose())
            .await
            .map_err(op_error)?;
        conn.done();
        let pp = ppolicy_error(&res);
        Ok(match res.rc {
            rc::SUCCESS if pp == Some(PpolicyError::ChangeAfterReset) => BindOutcome::MustChange,
            rc::SUCCESS => BindOutcome::Ok,
            rc::INVALID_CREDENTIALS if self.is_ad() => ad::bind_outcome(&res.text),
            rc::INVALID_CREDENTIALS => match pp {
                Some(PpolicyError::AccountLocked) => BindOutcome::Locked,
                Some(PpolicyError::PasswordExpired) => BindOutcome::Expired,
                _ => BindOutcome::InvalidCredentials,
            },
            rc::BUSY | rc::UNAVAILABLE => return Err(DirectoryError::Unavailable(res.text)),
            other => {
                return Err(DirectoryError::Protocol(format!(
                    "user bind: result {other}"
                )));
            }
        })
    }

    #[instrument(skip_all, fields(flavour = ?self.cfg.flavour))]
    async fn op_set_password(
        &self,
        user: &DirectoryUser,
        password: &Secret,
        must_change: bool,
    ) -> Result<(), DirectoryError> {
        let mut conn = self.lease(Kind::Service).await?;
        if !conn.tls {
            return Err(DirectoryError::InsecureTransport);
        }
        crate::failpoint::delay("directory.slow_write").await;
        let result = self.write_password(&mut conn, user, password).await;
        let result = match result {
            Ok(()) if must_change => {
                crate::failpoint::hit("directory.before_must_change");
                self.mark_must_change(&mut conn, user).await
            }
            other => other,
        };
        if result.is_ok() {
            conn.done();
        }
        result
    }

    /// Sets "change at next sign-in" on `conn` (OpenLDAP `pwdReset`, AD `pwdLastSet=0`).
    async fn mark_must_change(
        &self,
        conn: &mut Conn,
        user: &DirectoryUser,
    ) -> Result<(), DirectoryError> {
        let (attr, value) = if self.is_ad() {
            ("pwdLastSet", "0")
        } else {
            ("pwdReset", "TRUE")
        };
        let r = self
            .modify(
                conn,
                &user.dn,
                vec![Mod::Replace(attr.as_bytes().to_vec(), set(value))],
                vec![],
            )
            .await?;
        match r.rc {
            rc::SUCCESS => Ok(()),
            rc::INSUFFICIENT_ACCESS => Err(DirectoryError::NotPermitted(
                "require a change at next sign-in",
            )),
            rc::BUSY | rc::UNAVAILABLE => Err(DirectoryError::Unavailable(r.text)),
            other => Err(DirectoryError::Protocol(format!(
                "setting {attr}: result {other}"
            ))),
        }
    }

    async fn op_require_change(&self, user: &DirectoryUser) -> Result<(), DirectoryError> {
        let mut conn = self.lease(Kind::Service).await?;
        self.mark_must_change(&mut conn, user).await?;
        conn.done();
        Ok(())
    }

    async fn op_clear_failures(&self, user: &DirectoryUser) -> Result<(), DirectoryError> {
        if self.is_ad() {
            return self.op_unlock(user).await;
        }
        let mut conn = self.lease(Kind::Service).await?;
        // pwdFailureTime is NO-USER-MODIFICATION: only with the Relax Rules control.
        let relax = RawControl {
            ctype: RELAX_OID.into(),
            crit: true,
            val: None,
        };
        let mods = vec![Mod::Delete(b"pwdFailureTime".to_vec(), HashSet::new())];
        let res = self.modify(&mut conn, &user.dn, mods, vec![relax]).await?;
        conn.done();
        match res.rc {
            rc::SUCCESS | rc::NO_SUCH_ATTRIBUTE => Ok(()),
            rc::INSUFFICIENT_ACCESS
            | rc::CONSTRAINT_VIOLATION
            | rc::UNAVAILABLE_CRITICAL_EXTENSION => Err(DirectoryError::NotPermitted(
                "clear the failed binds (manage on pwdFailureTime, with the Relax Rules control)",
            )),
            rc::BUSY | rc::UNAVAILABLE => Err(DirectoryError::Unavailable(res.text)),
            other => Err(DirectoryError::Protocol(format!(
                "clearing pwdFailureTime: result {other}"
            ))),
        }
    }

    #[instrument(skip_all, fields(flavour = ?self.cfg.flavour, ?state))]
    async fn op_change_password(
        &self,
        user: &DirectoryUser,
        current: &Secret,
        new: &Secret,
        state: BindOutcome,
    ) -> Result<(), DirectoryError> {
        let t = self.timeout();
        if self.is_ad() {
            // A change, not a reset: the old value's delete proves the old password.
            let mut conn = self.lease(Kind::Service).await?;
            if !conn.tls {
                return Err(DirectoryError::InsecureTransport);
            }
            let mods = vec![
                Mod::Delete(
                    b"unicodePwd".to_vec(),
                    set(ad::unicode_pwd(current).to_vec()),
                ),
                Mod::Add(b"unicodePwd".to_vec(), set(ad::unicode_pwd(new).to_vec())),
            ];
            let res = self.modify(&mut conn, &user.dn, mods, vec![]).await?;
            conn.done();
            return if res.rc == rc::SUCCESS {
                Ok(())
            } else {
                Err(self.refusal(&res))
            };
        }
        if state == BindOutcome::Expired {
            return self.set_expired(user, new).await;
        }
        // The user's own change, bound as the user: the policy's rules for a user's change
        // apply, and it clears pwdReset. The connection is not pooled again afterwards.
        let mut conn = self.lease(Kind::UserBinds).await?;
        let res = conn
            .ldap
            .with_timeout(t)
            .with_controls(vec![ppolicy_request()])
            .simple_bind(&user.dn, current.expose())
            .await
            .map_err(op_error)?;
        if res.rc == rc::INVALID_CREDENTIALS
            && ppolicy_error(&res) == Some(PpolicyError::PasswordExpired)
        {
            // The check before took the last grace bind: expired now, like above (the
            // current password was right a moment ago).
            return self.set_expired(user, new).await;
        }
        if res.rc != rc::SUCCESS {
            return Err(DirectoryError::Protocol(format!(
                "bind as the user to change the password: result {}",
                res.rc
            )));
        }
        let exop = PasswordModify {
            user_id: None,
            old_pass: Some(current.expose()),
            new_pass: Some(new.expose()),
        };
        let res = conn
            .ldap
            .with_timeout(t)
            .with_controls(vec![ppolicy_request()])
            .extended(exop)
            .await
            .map_err(op_error)?
            .1;
        if res.rc == rc::SUCCESS {
            Ok(())
        } else {
            Err(self.refusal(&res))
        }
    }

    /// OpenLDAP, a password expired without grace binds left: the user cannot bind to
    /// change it, so the service account sets it and clears the "must change" the policy
    /// then sets.
    async fn set_expired(&self, user: &DirectoryUser, new: &Secret) -> Result<(), DirectoryError> {
        self.op_set_password(user, new, false).await?;
        let mut conn = self.lease(Kind::Service).await?;
        let res = self
            .modify(
                &mut conn,
                &user.dn,
                vec![Mod::Replace(b"pwdReset".to_vec(), HashSet::new())],
                vec![],
            )
            .await?;
        conn.done();
        match res.rc {
            rc::SUCCESS | rc::NO_SUCH_ATTRIBUTE => Ok(()),
            rc::INSUFFICIENT_ACCESS => Err(DirectoryError::NotPermitted(
                "clear the change-at-next-sign-in flag (pwdReset)",
            )),
            other => Err(DirectoryError::Protocol(format!(
                "clearing pwdReset: result {other}"
            ))),
        }
    }

    #[instrument(skip_all)]
    async fn op_password_policy(
        &self,
        user: &DirectoryUser,
    ) -> Result<DirectoryPasswordPolicy, DirectoryError> {
        let mut conn = self.lease(Kind::Service).await?;
        let num = |e: &SearchEntry, a: &str| -> u32 {
            first(e, a).and_then(|v| v.parse().ok()).unwrap_or(0)
        };
        let policy = if self.is_ad() {
            let mut p = match self
                .read_entry(
                    &mut conn,
                    &self.domain_dn(),
                    vec!["minPwdLength", "pwdHistoryLength", "pwdProperties"],
                )
                .await?
            {
                Some(e) => DirectoryPasswordPolicy {
                    min_length: num(&e, "minPwdLength"),
                    history: num(&e, "pwdHistoryLength"),
                    complexity: num(&e, "pwdProperties") & 1 == 1,
                },
                None => DirectoryPasswordPolicy::default(),
            };
            // A fine-grained policy (PSO) that applies to the user wins, when readable.
            let pso = self
                .read_entry(&mut conn, &user.dn, vec!["msDS-ResultantPSO"])
                .await?
                .and_then(|e| first(&e, "msDS-ResultantPSO"));
            if let Some(pso) = pso
                && let Some(e) = self
                    .read_entry(
                        &mut conn,
                        &pso,
                        vec![
                            "msDS-MinimumPasswordLength",
                            "msDS-PasswordHistoryLength",
                            "msDS-PasswordComplexityEnabled",
                        ],
                    )
                    .await?
            {
                p = DirectoryPasswordPolicy {
                    min_length: num(&e, "msDS-MinimumPasswordLength"),
                    history: num(&e, "msDS-PasswordHistoryLength"),
                    complexity: first(&e, "msDS-PasswordComplexityEnabled")
                        .is_some_and(|v| v.eq_ignore_ascii_case("TRUE")),
                };
            }
            p
        } else {
            let own = self
                .read_entry(&mut conn, &user.dn, vec!["pwdPolicySubentry"])
                .await?
                .and_then(|e| first(&e, "pwdPolicySubentry"));
            let dn = own.unwrap_or_else(|| self.cfg.ppolicy_dn.clone());
            if dn.is_empty() {
                DirectoryPasswordPolicy::default()
            } else {
                match self
                    .read_entry(
                        &mut conn,
                        &dn,
                        vec!["pwdMinLength", "pwdInHistory", "pwdCheckModule"],
                    )
                    .await?
                {
                    Some(e) => DirectoryPasswordPolicy {
                        min_length: num(&e, "pwdMinLength"),
                        history: num(&e, "pwdInHistory"),
                        complexity: first(&e, "pwdCheckModule").is_some(),
                    },
                    None => DirectoryPasswordPolicy::default(),
                }
            }
        };
        conn.done();
        Ok(policy)
    }

    #[instrument(skip_all)]
    async fn op_lockout(&self, user: &DirectoryUser) -> Result<Lockout, DirectoryError> {
        let mut conn = self.lease(Kind::Service).await?;
        let result = if self.is_ad() {
            self.ad_lockout(&mut conn, user).await
        } else {
            self.ppolicy_lockout(&mut conn, user).await
        };
        if result.is_ok() {
            conn.done();
        }
        result
    }

    #[instrument(skip_all)]
    async fn op_list_users(&self, attrs: &[String]) -> Result<UserListing, DirectoryError> {
        use ldap3::adapters::{Adapter, EntriesOnly, PagedResults};
        let mut conn = self.lease(Kind::Service).await?;
        let filter = if self.cfg.user_filter.is_empty() {
            format!("({}=*)", self.cfg.login_attribute)
        } else {
            format!(
                "(&{}({}=*))",
                self.cfg.user_filter, self.cfg.login_attribute
            )
        };
        let mut wanted = self.user_attrs();
        wanted.extend(attrs.iter().map(String::as_str));
        let adapters: Vec<Box<dyn Adapter<_, _>>> = vec![
            Box::new(EntriesOnly::new()),
            Box::new(PagedResults::new(200)),
        ];
        let mut stream = conn
            .ldap
            .with_timeout(self.timeout())
            .streaming_search_with(adapters, &self.cfg.base_dn, Scope::Subtree, &filter, wanted)
            .await
            .map_err(op_error)?;
        let mut out = Vec::new();
        loop {
            let next = tokio::time::timeout(self.timeout(), stream.next())
                .await
                .map_err(|_| DirectoryError::Unavailable("user listing timed out".into()))?
                .map_err(op_error)?;
            let Some(raw) = next else { break };
            let entry = SearchEntry::construct(raw);
            match self.user_of_entry(&entry, "") {
                Ok(user) => {
                    let values = attrs
                        .iter()
                        .filter_map(|a| first(&entry, a).map(|v| (a.clone(), v)))
                        .collect();
                    out.push((user, values));
                }
                Err(e) => debug!(error = %e, "entry skipped in user listing"),
            }
        }
        let res = stream.finish().await;
        if res.rc == rc::SUCCESS {
            conn.done();
        }
        match res.rc {
            rc::SUCCESS => Ok(out),
            rc::BUSY | rc::UNAVAILABLE => Err(DirectoryError::Unavailable(res.text)),
            other => Err(DirectoryError::Protocol(format!(
                "user listing: result {other} {}",
                res.text
            ))),
        }
    }

    async fn op_member_of_any(
        &self,
        user: &DirectoryUser,
        groups: &[String],
    ) -> Result<bool, DirectoryError> {
        if groups.is_empty() {
            return Ok(false);
        }
        let mut conn = self.lease(Kind::Service).await?;
        let result = if self.is_ad() {
            self.member_in_chain(&mut conn, user, groups).await
        } else {
            self.member_by_levels(&mut conn, user, groups).await
        };
        if result.is_ok() {
            conn.done();
        }
        result
    }

    /// The service account's rights, checked without changing anything (see
    /// [`super::rights`]); `login` names the user the checks use (default: the first user
    /// found other than the service account).
    pub async fn check_rights(&self, login: Option<&str>) -> super::rights::RightsReport {
        use super::rights::{
            Right, RightsReport, Verdict, effective_verdict, probe_value, probe_verdict,
        };
        let mut report = RightsReport {
            sample: None,
            checks: Vec::new(),
        };
        let not_checked = |report: &mut RightsReport, from: usize, why: &str| {
            let all = [
                Right::Bind,
                Right::FindUsers,
                Right::ReadPolicy,
                Right::SetPassword,
                Right::Unlock,
                Right::RequireChange,
            ];
            for r in &all[from..] {
                report.checks.push((*r, Verdict::Unknown(why.into())));
            }
        };
        let t = self.timeout();
        let mut conn = match self.bounded(self.service()).await {
            Ok(c) => c,
            Err(e) => {
                report
                    .checks
                    .push((Right::Bind, Verdict::Missing(e.to_string())));
                not_checked(&mut report, 1, "no bind");
                return report;
            }
        };
        report.checks.push((Right::Bind, Verdict::Granted));
        // A user to check against: the one named, or the first one found that is not the
        // service account itself (whose own entry it may well write).
        let user = match login {
            Some(l) => self.bounded(self.op_find_user(l)).await,
            None => {
                let found = conn
                    .ldap
                    .with_timeout(t)
                    .with_search_options(ldap3::SearchOptions::new().sizelimit(2))
                    .search(
                        &self.cfg.base_dn,
                        Scope::Subtree,
                        &self.cfg.user_filter,
                        vec![self.cfg.login_attribute.as_str()],
                    )
                    .await
                    .map_err(op_error);
                match found {
                    Ok(found) => {
                        let other = found
                            .0
                            .into_iter()
                            .map(SearchEntry::construct)
                            .find(|e| !e.dn.eq_ignore_ascii_case(&self.cfg.bind_dn))
                            .and_then(|e| first(&e, &self.cfg.login_attribute));
                        match other {
                            Some(l) => self.bounded(self.op_find_user(&l)).await,
                            None => Ok(None),
                        }
                    }
                    Err(e) => Err(e),
                }
            }
        };
        let user = match user {
            Ok(Some(u)) => u,
            found => {
                let why = match found {
                    Err(e) => e.to_string(),
                    _ => format!(
                        "no user {}matches directory.user_filter {:?} under \
                         directory.base_dn {:?} for {}: check both, and that the account may \
                         read the users",
                        login.map_or_else(
                            || "other than the service account ".to_string(),
                            |l| format!("{l:?} ")
                        ),
                        self.cfg.user_filter,
                        self.cfg.base_dn,
                        self.cfg.bind_dn
                    ),
                };
                report
                    .checks
                    .push((Right::FindUsers, Verdict::Missing(why)));
                not_checked(&mut report, 2, "no user found");
                conn.close().await;
                return report;
            }
        };
        report.sample = Some(user.login.clone());
        report.checks.push((Right::FindUsers, Verdict::Granted));
        report.checks.push((
            Right::ReadPolicy,
            match self.bounded(self.op_password_policy(&user)).await {
                Ok(_) => Verdict::Granted,
                Err(e) => Verdict::Missing(e.to_string()),
            },
        ));
        if self.is_ad() {
            let effective = conn
                .ldap
                .with_timeout(t)
                .search(
                    &user.dn,
                    Scope::Base,
                    "(objectClass=*)",
                    vec!["allowedAttributesEffective"],
                )
                .await
                .map_err(op_error)
                .map(|found| {
                    found
                        .0
                        .into_iter()
                        .next()
                        .map(SearchEntry::construct)
                        .and_then(|mut e| e.attrs.remove("allowedAttributesEffective"))
                        .unwrap_or_default()
                });
            report.checks.push((
                Right::SetPassword,
                Verdict::Unknown(
                    "the Reset Password right cannot be checked without changing a password: \
                     delegate \"Reset password\" on the users' OU"
                        .into(),
                ),
            ));
            for (right, attr) in [
                (Right::Unlock, "lockoutTime"),
                (Right::RequireChange, "pwdLastSet"),
            ] {
                let verdict = match &effective {
                    Ok(eff) => effective_verdict(eff, attr, &self.cfg.bind_dn),
                    Err(e) => Verdict::Unknown(format!("allowedAttributesEffective: {e}")),
                };
                report.checks.push((right, verdict));
            }
        } else {
            for (right, attr) in [
                (Right::SetPassword, "userPassword"),
                (Right::Unlock, "pwdAccountLockedTime"),
                (Right::RequireChange, "pwdReset"),
            ] {
                let value = probe_value(attr);
                let del = vec![Mod::Delete(
                    attr.as_bytes().to_vec(),
                    HashSet::from([value.into_bytes()]),
                )];
                let verdict = match self.modify(&mut conn, &user.dn, del, Vec::new()).await {
                    Ok(res) => probe_verdict(res.rc, &res.text, attr, &self.cfg.bind_dn),
                    Err(e) => Verdict::Unknown(e.to_string()),
                };
                report.checks.push((right, verdict));
            }
        }
        conn.close().await;
        report
    }

    /// What the guided setup proposes: the naming context (AD's `defaultNamingContext`, else
    /// the first of `namingContexts` in the root DSE) and, on OpenLDAP, the password
    /// policies (`pwdPolicy` entries) under it, read as the service account.
    pub async fn discover(&self) -> Result<super::rights::Discovery, DirectoryError> {
        let t = self.timeout();
        let mut conn = self.bounded(self.service()).await?;
        let root = conn
            .ldap
            .with_timeout(t)
            .search(
                "",
                Scope::Base,
                "(objectClass=*)",
                vec!["defaultNamingContext", "namingContexts"],
            )
            .await
            .map_err(op_error)?
            .0
            .into_iter()
            .next()
            .map(SearchEntry::construct);
        let naming_context = root.and_then(|e| {
            first(&e, "defaultNamingContext").or_else(|| first(&e, "namingContexts"))
        });
        let mut password_policies = Vec::new();
        if let (false, Some(nc)) = (self.is_ad(), &naming_context) {
            // Best effort, under the naming context and under the conventional
            // ou=policies (a least-privilege account often may not search from the top):
            // one that may not read policies finds none, and the rights check says so.
            for base in [nc.clone(), format!("ou=policies,{nc}")] {
                if let Ok(found) = conn
                    .ldap
                    .with_timeout(t)
                    .with_search_options(ldap3::SearchOptions::new().sizelimit(10))
                    .search(
                        &base,
                        Scope::Subtree,
                        "(objectClass=pwdPolicy)",
                        vec!["1.1"],
                    )
                    .await
                {
                    for e in found.0 {
                        let dn = SearchEntry::construct(e).dn;
                        if !password_policies.contains(&dn) {
                            password_policies.push(dn);
                        }
                    }
                }
            }
        }
        conn.close().await;
        Ok(super::rights::Discovery {
            naming_context,
            password_policies,
        })
    }

    async fn op_check(&self) -> Result<(), DirectoryError> {
        let mut conn = self.lease(Kind::Service).await?;
        let found = conn
            .ldap
            .with_timeout(self.timeout())
            .extended(ldap3::exop::WhoAmI)
            .await
            .map_err(op_error)?;
        conn.done();
        match found.1.rc {
            rc::SUCCESS => Ok(()),
            rc::BUSY | rc::UNAVAILABLE => Err(DirectoryError::Unavailable(found.1.text)),
            other => Err(DirectoryError::Protocol(format!(
                "Who am I? as the service account: result {other}"
            ))),
        }
    }

    async fn op_password_marker(
        &self,
        user: &DirectoryUser,
    ) -> Result<Option<String>, DirectoryError> {
        let attr = if self.is_ad() {
            "pwdLastSet"
        } else {
            "pwdChangedTime"
        };
        let mut conn = self.lease(Kind::Service).await?;
        let res = conn
            .ldap
            .with_timeout(self.timeout())
            .search(&user.dn, Scope::Base, "(objectClass=*)", vec![attr])
            .await
            .map_err(op_error);
        let found = res?;
        conn.done();
        let (entries, result) = (found.0, found.1);
        match result.rc {
            rc::SUCCESS => Ok(entries
                .into_iter()
                .next()
                .map(SearchEntry::construct)
                .and_then(|e| first(&e, attr))),
            rc::BUSY | rc::UNAVAILABLE => Err(DirectoryError::Unavailable(result.text)),
            other => Err(DirectoryError::Protocol(format!(
                "reading {attr}: result {other}"
            ))),
        }
    }

    async fn op_unlock(&self, user: &DirectoryUser) -> Result<(), DirectoryError> {
        let mut conn = self.lease(Kind::Service).await?;
        let mods = if self.is_ad() {
            vec![Mod::Replace(b"lockoutTime".to_vec(), set("0"))]
        } else {
            vec![Mod::Delete(
                b"pwdAccountLockedTime".to_vec(),
                HashSet::new(),
            )]
        };
        let res = self.modify(&mut conn, &user.dn, mods, vec![]).await?;
        conn.done();
        match res.rc {
            rc::SUCCESS | rc::NO_SUCH_ATTRIBUTE => Ok(()),
            rc::INSUFFICIENT_ACCESS => Err(DirectoryError::NotPermitted("unlock this account")),
            rc::BUSY | rc::UNAVAILABLE => Err(DirectoryError::Unavailable(res.text)),
            other => Err(DirectoryError::Protocol(format!("unlock: result {other}"))),
        }
    }
}

/// Every operation as a whole — connecting, the TLS handshake, the service bind and the
/// operation itself — ends within `directory.timeout_ms` (a user listing: each page), so
/// one call can never take a multiple of it.
#[async_trait::async_trait]
impl Directory for LdapDirectory {
    async fn find_user(&self, login: &str) -> Result<Option<DirectoryUser>, DirectoryError> {
        self.bounded(self.op_find_user(login)).await
    }

    async fn check(&self) -> Result<(), DirectoryError> {
        self.bounded(self.op_check()).await
    }

    async fn bind_as_user(
        &self,
        dn: &str,
        password: &Secret,
    ) -> Result<BindOutcome, DirectoryError> {
        self.bounded(self.op_bind_as_user(dn, password)).await
    }

    async fn set_password(
        &self,
        user: &DirectoryUser,
        password: &Secret,
        must_change: bool,
    ) -> Result<(), DirectoryError> {
        self.bounded(self.op_set_password(user, password, must_change))
            .await
    }

    async fn password_policy(
        &self,
        user: &DirectoryUser,
    ) -> Result<DirectoryPasswordPolicy, DirectoryError> {
        self.bounded(self.op_password_policy(user)).await
    }

    async fn change_password(
        &self,
        user: &DirectoryUser,
        current: &Secret,
        new: &Secret,
        state: BindOutcome,
    ) -> Result<(), DirectoryError> {
        self.bounded(self.op_change_password(user, current, new, state))
            .await
    }

    async fn lockout(&self, user: &DirectoryUser) -> Result<Lockout, DirectoryError> {
        self.bounded(self.op_lockout(user)).await
    }

    async fn list_users(&self, attrs: &[String]) -> Result<UserListing, DirectoryError> {
        // Many pages: each has the timeout (see `op_list_users`), not the whole listing.
        self.op_list_users(attrs).await
    }

    async fn member_of_any(
        &self,
        user: &DirectoryUser,
        groups: &[String],
    ) -> Result<bool, DirectoryError> {
        self.bounded(self.op_member_of_any(user, groups)).await
    }

    async fn password_marker(
        &self,
        user: &DirectoryUser,
    ) -> Result<Option<String>, DirectoryError> {
        self.bounded(self.op_password_marker(user)).await
    }

    async fn unlock(&self, user: &DirectoryUser) -> Result<(), DirectoryError> {
        self.bounded(self.op_unlock(user)).await
    }

    async fn require_change(&self, user: &DirectoryUser) -> Result<(), DirectoryError> {
        self.bounded(self.op_require_change(user)).await
    }

    async fn clear_failures(&self, user: &DirectoryUser) -> Result<(), DirectoryError> {
        self.bounded(self.op_clear_failures(user)).await
    }
}

/// DNs compared loosely: case and spaces around separators do not matter.
pub(crate) fn dn_key(dn: &str) -> String {
    dn.split(',')
        .map(|rdn| {
            rdn.split_once('=').map_or_else(
                || rdn.trim().to_lowercase(),
                |(a, v)| format!("{}={}", a.trim().to_lowercase(), v.trim().to_lowercase()),
            )
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Nesting levels followed in OpenLDAP group membership.
const MAX_GROUP_DEPTH: usize = 10;

impl LdapDirectory {
    /// The attributes a [`DirectoryUser`] is built from.
    fn user_attrs(&self) -> Vec<&str> {
        let attr = self.cfg.login_attribute.as_str();
        if self.is_ad() {
            vec![
                attr,
                "objectGUID",
                "displayName",
                "cn",
                "userAccountControl",
                "adminCount",
            ]
        } else {
            vec![
                attr,
                "entryUUID",
                "displayName",
                "cn",
                "pwdAccountLockedTime",
            ]
        }
    }

    /// A user from a search entry with [`Self::user_attrs`]. (AD's lockout bit needs a
    /// separate read: `locked` is false here.)
    fn user_of_entry(
        &self,
        entry: &SearchEntry,
        login: &str,
    ) -> Result<DirectoryUser, DirectoryError> {
        let display_name = first(entry, "displayName")
            .or_else(|| first(entry, "cn"))
            .unwrap_or_default();
        let login = first(entry, &self.cfg.login_attribute).unwrap_or_else(|| login.to_string());
        if self.is_ad() {
            let guid = first_bin(entry, "objectGUID")
                .ok_or_else(|| DirectoryError::Protocol("user entry has no objectGUID".into()))?;
            let uac: u32 = first(entry, "userAccountControl")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            Ok(DirectoryUser {
                dn: entry.dn.clone(),
                id: hex::encode(guid),
                login,
                display_name,
                locked: false,
                disabled: uac & 0x2 != 0,
                admin_count: first(entry, "adminCount").as_deref() == Some("1"),
            })
        } else {
            let uuid = first(entry, "entryUUID").ok_or_else(|| {
                DirectoryError::Protocol(
                    "user entry has no entryUUID (is the service account allowed to read it?)"
                        .into(),
                )
            })?;
            let locked_time = first(entry, "pwdAccountLockedTime");
            Ok(DirectoryUser {
                dn: entry.dn.clone(),
                id: uuid,
                login,
                display_name,
                // 000001010000Z is ppolicy's "locked by an administrator".
                disabled: locked_time.as_deref() == Some("000001010000Z"),
                locked: locked_time.is_some(),
                admin_count: false,
            })
        }
    }

    /// Attributes of one entry (base search); `None` when absent or not readable.
    async fn read_entry(
        &self,
        conn: &mut Conn,
        dn: &str,
        attrs: Vec<&str>,
    ) -> Result<Option<SearchEntry>, DirectoryError> {
        let t = self.timeout();
        let res = conn
            .ldap
            .with_timeout(t)
            .search(dn, Scope::Base, "(objectClass=*)", attrs)
            .await
            .map_err(op_error)?;
        if res.1.rc != rc::SUCCESS {
            debug!(rc = res.1.rc, "policy entry not readable");
            return Ok(None);
        }
        Ok(res.0.into_iter().next().map(SearchEntry::construct))
    }

    /// AD: one base search on the user with LDAP_MATCHING_RULE_IN_CHAIN over `memberOf`.
    async fn member_in_chain(
        &self,
        conn: &mut Conn,
        user: &DirectoryUser,
        groups: &[String],
    ) -> Result<bool, DirectoryError> {
        let any: String = groups
            .iter()
            .map(|g| {
                format!(
                    "(memberOf:1.2.840.113556.1.4.1941:={})",
                    ldap3::ldap_escape(g)
                )
            })
            .collect();
        let filter = format!("(|{any})");
        let res = conn
            .ldap
            .with_timeout(self.timeout())
            .search(&user.dn, Scope::Base, &filter, vec!["1.1"])
            .await
            .map_err(op_error)?;
        match res.1.rc {
            rc::SUCCESS => Ok(!res.0.is_empty()),
            rc::BUSY | rc::UNAVAILABLE => Err(DirectoryError::Unavailable(res.1.text)),
            other => Err(DirectoryError::Protocol(format!(
                "group membership search: result {other}"
            ))),
        }
    }

    /// OpenLDAP: walks up the group graph one level per search, from the user to the
    /// groups holding it, then the groups holding those, … until a wanted group is found,
    /// nothing new appears, or [`MAX_GROUP_DEPTH`] levels were followed.
    async fn member_by_levels(
        &self,
        conn: &mut Conn,
        user: &DirectoryUser,
        groups: &[String],
    ) -> Result<bool, DirectoryError> {
        let wanted: HashSet<String> = groups.iter().map(|g| dn_key(g)).collect();
        let mut seen: HashSet<String> = HashSet::from([dn_key(&user.dn)]);
        let mut level: Vec<String> = vec![user.dn.clone()];
        let base = if self.cfg.group_base_dn.is_empty() {
            &self.cfg.base_dn
        } else {
            &self.cfg.group_base_dn
        };
        for _ in 0..MAX_GROUP_DEPTH {
            let mut next = Vec::new();
            for chunk in level.chunks(50) {
                let members: String = chunk
                    .iter()
                    .map(|dn| {
                        let e = ldap3::ldap_escape(dn);
                        format!("(member={e})(uniqueMember={e})")
                    })
                    .collect();
                let filter = format!(
                    "(&(|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames))(|{members}))"
                );
                let res = conn
                    .ldap
                    .with_timeout(self.timeout())
                    .search(base, Scope::Subtree, &filter, vec!["1.1"])
                    .await
                    .map_err(op_error)?;
                match res.1.rc {
                    rc::SUCCESS => {}
                    rc::BUSY | rc::UNAVAILABLE => {
                        return Err(DirectoryError::Unavailable(res.1.text));
                    }
                    other => {
                        return Err(DirectoryError::Protocol(format!(
                            "group membership search: result {other}"
                        )));
                    }
                }
                for e in res.0 {
                    let dn = SearchEntry::construct(e).dn;
                    let key = dn_key(&dn);
                    if wanted.contains(&key) {
                        return Ok(true);
                    }
                    if seen.insert(key) {
                        next.push(dn);
                    }
                }
            }
            if next.is_empty() {
                return Ok(false);
            }
            level = next;
        }
        Ok(false)
    }

    /// OpenLDAP: the user's `pwdPolicySubentry` (else `directory.ppolicy_dn`) and the
    /// user's `pwdFailureTime` values.
    async fn ppolicy_lockout(
        &self,
        conn: &mut Conn,
        user: &DirectoryUser,
    ) -> Result<Lockout, DirectoryError> {
        let entry = self
            .read_entry(conn, &user.dn, vec!["pwdPolicySubentry", "pwdFailureTime"])
            .await?;
        let times: Vec<String> = entry
            .as_ref()
            .and_then(|e| {
                e.attrs
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case("pwdFailureTime"))
                    .map(|(_, v)| v.clone())
            })
            .unwrap_or_default();
        let dn = entry
            .as_ref()
            .and_then(|e| first(e, "pwdPolicySubentry"))
            .unwrap_or_else(|| self.cfg.ppolicy_dn.clone());
        let policy = if dn.is_empty() {
            None
        } else {
            self.read_entry(
                conn,
                &dn,
                vec!["pwdLockout", "pwdMaxFailure", "pwdFailureCountInterval"],
            )
            .await?
        };
        let Some(policy) = policy else {
            return Ok(Lockout {
                threshold: None,
                window_secs: 0,
                failures: entry.is_some().then_some(times.len() as u32),
            });
        };
        let (threshold, window_secs) = openldap::lockout_policy(
            first(&policy, "pwdLockout").as_deref(),
            first(&policy, "pwdMaxFailure").as_deref(),
            first(&policy, "pwdFailureCountInterval").as_deref(),
        );
        Ok(Lockout {
            threshold: Some(threshold),
            window_secs,
            failures: entry
                .is_some()
                .then(|| openldap::counted_failures(&times, window_secs, unix_now())),
        })
    }

    /// AD: the user's resultant fine-grained policy when readable, else the domain's
    /// lockout settings, and the user's `badPwdCount` / `badPasswordTime`.
    async fn ad_lockout(
        &self,
        conn: &mut Conn,
        user: &DirectoryUser,
    ) -> Result<Lockout, DirectoryError> {
        let num = |e: &SearchEntry, a: &str| first(e, a).and_then(|v| v.trim().parse::<i64>().ok());
        let entry = self
            .read_entry(
                conn,
                &user.dn,
                vec!["msDS-ResultantPSO", "badPwdCount", "badPasswordTime"],
            )
            .await?;
        // A fine-grained policy (PSO) that applies wins over the domain's. By default only
        // domain admins may read a PSO's settings: when one applies but cannot be read, the
        // threshold is unknown (not the domain's, which may be laxer).
        let pso = entry.as_ref().and_then(|e| first(e, "msDS-ResultantPSO"));
        let mut policy = None;
        if let Some(pso) = pso {
            let e = self
                .read_entry(
                    conn,
                    &pso,
                    vec!["msDS-LockoutThreshold", "msDS-LockoutObservationWindow"],
                )
                .await?;
            policy = Some(e.map_or((None, None), |e| {
                (
                    num(&e, "msDS-LockoutThreshold"),
                    num(&e, "msDS-LockoutObservationWindow"),
                )
            }));
        } else {
            let domain = self.domain_dn();
            if let Some(e) = self
                .read_entry(
                    conn,
                    &domain,
                    vec!["lockoutThreshold", "lockOutObservationWindow"],
                )
                .await?
            {
                policy = Some((
                    num(&e, "lockoutThreshold"),
                    num(&e, "lockOutObservationWindow"),
                ));
            }
        }
        let (threshold, window) = match policy {
            Some((Some(t), w)) => (
                Some(u32::try_from(t).unwrap_or(0)),
                w.map_or(0, ad::interval_secs),
            ),
            _ => (None, 0),
        };
        let failures = entry.as_ref().and_then(|e| {
            let count = u32::try_from(num(e, "badPwdCount")?).ok()?;
            let last = num(e, "badPasswordTime").and_then(ad::filetime);
            Some(ad::counted_failures(count, last, window, unix_now()))
        });
        Ok(Lockout {
            threshold,
            window_secs: window,
            failures,
        })
    }

    /// The domain's DN: the `DC=` parts of the search base.
    fn domain_dn(&self) -> String {
        self.cfg
            .base_dn
            .split(',')
            .map(str::trim)
            .filter(|rdn| rdn.to_ascii_lowercase().starts_with("dc="))
            .collect::<Vec<_>>()
            .join(",")
    }

    async fn write_password(
        &self,
        conn: &mut Conn,
        user: &DirectoryUser,
        password: &Secret,
    ) -> Result<(), DirectoryError> {
        let t = self.timeout();
        let res = match (self.cfg.flavour, self.cfg.openldap_password_write) {
            (Flavour::ActiveDirectory, _) => {
                let value = ad::unicode_pwd(password);
                let ctrls = if self.cfg.ad_policy_hints {
                    vec![RawControl {
                        ctype: ad::POLICY_HINTS_OID.into(),
                        crit: true,
                        val: Some(ad::POLICY_HINTS_VALUE.to_vec()),
                    }]
                } else {
                    vec![]
                };
                let mods = vec![Mod::Replace(b"unicodePwd".to_vec(), set(value.to_vec()))];
                self.modify(conn, &user.dn, mods, ctrls).await?
            }
            (Flavour::Openldap, OpenldapPasswordWrite::Exop) => {
                let exop = PasswordModify {
                    user_id: Some(&user.dn),
                    old_pass: None,
                    new_pass: Some(password.expose()),
                };
                conn.ldap
                    .with_timeout(t)
                    .with_controls(vec![ppolicy_request()])
                    .extended(exop)
                    .await
                    .map_err(op_error)?
                    .1
            }
            (Flavour::Openldap, scheme) => {
                let hashed = zeroize::Zeroizing::new(match scheme {
                    OpenldapPasswordWrite::HashedSsha => openldap::ssha(password),
                    _ => openldap::argon2(password),
                });
                let mods = vec![Mod::Replace(
                    b"userPassword".to_vec(),
                    set(hashed.as_bytes().to_vec()),
                )];
                self.modify(conn, &user.dn, mods, vec![ppolicy_request()])
                    .await?
            }
        };
        if res.rc == rc::SUCCESS {
            Ok(())
        } else {
            Err(self.refusal(&res))
        }
    }
}

/// The wall clock in Unix seconds (the directory's failure times are wall times).
fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Opens the TCP connection for `uri` with Nagle's algorithm off. LDAP sends small requests
/// right after the TLS handshake; with Nagle on, each waits for the server's delayed ACK
/// (about 40 ms on Linux) — every directory operation paid that once per connection.
async fn tcp_connect(
    uri: &str,
    ldaps: bool,
    timeout: Duration,
) -> Result<std::net::TcpStream, String> {
    let url = url::Url::parse(uri).map_err(|e| format!("invalid URI: {e}"))?;
    let port = url.port().unwrap_or(if ldaps { 636 } else { 389 });
    let host = match url.host() {
        Some(url::Host::Domain(d)) if !d.is_empty() => d.to_string(),
        Some(url::Host::Ipv4(a)) => a.to_string(),
        Some(url::Host::Ipv6(a)) => a.to_string(),
        _ => "localhost".to_string(),
    };
    let stream = tokio::time::timeout(timeout, tokio::net::TcpStream::connect((host, port)))
        .await
        .map_err(|_| "connect timed out".to_string())?
        .map_err(|e| e.to_string())?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    stream.into_std().map_err(|e| e.to_string())
}
