//! ssprd — self-service password reset for OpenLDAP and Active Directory.
//!
//! Users register verification methods once (security questions, email, phones, an
//! authenticator app); when they forget their password they prove who they are through a
//! kiosk or portal speaking gRPC, and ssprd writes the new password to the directory over
//! LDAPS, then verifies it by a bind. Administrators manage the policy and users through
//! `AdminService` (and `ssprd admin`).
//!
//! # Layout
//! - [`cli`]: command line (`serve`, `check-config`, `audit`, `backup`, `admin`, `demo`).
//! - [`admin_cli`]: `ssprd admin …`, the gRPC client of `AdminService`.
//! - [`config`]: figment layers (defaults < TOML < `SSPRD_*`), validation, secret files.
//! - [`secret`]: the redacting, zeroizing [`secret::Secret`] type.
//! - [`deadline`]: the deadline of the request being served, which work for it answers
//!   before.
//! - [`policy`]: the SSPR policy document (scope, methods and migration, admin and
//!   registration rules), reset limits, question counts, the question bank.
//! - [`flow`]: pure flow decisions (question draws, decoys, throttling) — no IO.
//! - [`lockout`]: pure decisions of the sign-in guard, which keeps the failed binds ssprd
//!   causes below the directory's lockout threshold.
//! - [`method`]: verification methods (questions, one-time codes, TOTP, contact values).
//! - [`service`]: the use cases; executes flow decisions against store and directory.
//! - [`store`]: the [`store::Store`] trait and its sled implementation.
//! - [`audit`]: the hash-chained audit log, its verification, syslog/journald forwarding.
//! - [`directory`]: the [`directory::Directory`] trait, ldap3 implementation, flavour quirks.
//! - [`api`]: tonic adapters, client roles (`api::auth`), and the single `ServiceError` →
//!   `Status` mapping.
//! - [`server`]: the HTTP/2 listener with connection caps, TLS handshake and idle timeouts
//!   (`server::listener`), call deadlines, client identity and roles, health, reflection,
//!   sweeper, outbox worker, systemd notify and watchdog.
//! - [`delivery`]: outbound codes and notifications: email (SMTP), SMS/voice (signed webhook),
//!   each message with an id that stays the same on every attempt; reset codes go out in the
//!   background (`service::sending`), notifications wait in the store's outbox
//!   (`service::notify`).
//! - [`failpoint`]: crash and fault points for the crash and fault tests (debug builds only).
//! - [`tls`]: the rustls configurations: the client side shared by outbound connections, and
//!   the gRPC server's.
//! - [`testbed`]: a throwaway slapd with a demo directory (used by `ssprd demo` and tests).

pub mod admin_cli;
pub mod api;
pub mod audit;
pub mod cli;
pub mod config;
pub mod deadline;
pub mod delivery;
pub mod directory;
pub mod failpoint;
pub mod flow;
pub mod lockout;
pub mod method;
pub mod password;
pub mod policy;
pub mod secret;
pub mod server;
pub mod service;
pub mod store;
pub mod testbed;
pub mod tls;

pub use server::serve;
