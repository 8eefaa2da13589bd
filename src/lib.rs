//! ssprd — self-service password reset for OpenLDAP and Active Directory.
//!
//! Users register verification methods once (security questions, email, phones, an
//! authenticator app); when they forget their password they prove who they are through a
//! kiosk or portal speaking gRPC, and ssprd writes the new password to the directory over
//! LDAPS, then verifies it by a bind. Administrators manage the policy and users through
//! `AdminService` (and `ssprd admin`).
//!
//! # Layout
//! Modules form layers; each imports only from layers above it in this list (no import
//! cycles — `tests/module_cycles.rs` fails when one comes back). Each module owns its
//! configuration section (its raw form, defaults and checks); [`config`] only composes them.
//!
//! Leaves, importing nothing of the crate:
//! - [`secret`]: the redacting, zeroizing [`secret::Secret`] type, and
//!   [`secret::SecretSource`] (a secret file or systemd credential).
//! - [`problems`]: the list of configuration problems every section's check adds to.
//! - [`deadline`]: the deadline of the request being served, which work for it answers
//!   before.
//! - [`language`]: the languages ssprd speaks (portal pages, messages) and how a tag is
//!   read.
//! - [`failpoint`]: crash and fault points for the crash and fault tests (debug builds only).
//! - [`tls`]: the rustls configurations (the client side shared by outbound connections, the
//!   gRPC server's), the one crypto provider, PEM files.
//! - [`audit`]: the audit record, its hash chain and verification, syslog/journald
//!   forwarding; `[audit]`.
//!
//! Domain pieces:
//! - [`method`]: verification methods (questions, one-time codes, TOTP, contact values);
//!   `[authenticator]`.
//! - [`password`]: local password rules, common and breached passwords; `[password]`.
//! - [`logging`]: log output; `[log]`.
//! - [`policy`]: the SSPR policy document (scope, methods and migration, admin and
//!   registration rules), reset limits, question counts, the question bank; `[policy]`.
//! - [`directory`]: the [`directory::Directory`] trait, ldap3 implementation with its
//!   connection pools (`directory::pool`), flavour quirks, and the service account's rights
//!   checked without changing anything (`directory::rights`, `ssprd check-directory`);
//!   `[directory]`.
//! - [`delivery`]: outbound codes and notifications: email (SMTP), SMS/voice (signed webhook),
//!   each message with an id that stays the same on every attempt, in the recipient's
//!   language (`delivery::text`: a catalogue per language, the admin's templates);
//!   `[email]`, `[gateway]`.
//! - [`store`]: one trait per capability (registrations, sessions, flows, account counters,
//!   audit log, policy, outbox, keys, upkeep, atomic batches) and [`store::Store`], their
//!   union; the sled backend (group commit: concurrent writers share flushes) and an
//!   in-memory one, both held to one contract suite
//!   (`tests/store_contract.rs`); `[store]`.
//! - [`flow`]: the pure core — no IO; `now`, randomness and the results of IO come in,
//!   the next state and what to do (or a typed refusal) go out. Counters, blocks and the
//!   attempt budget in `flow`; the reset flow's state machine (start and decoys, proofs,
//!   codes, completion, the end of a flow) in `flow::reset`; the shapes decoys wear, a
//!   sample of the real registrations, in `flow::decoy`; the registration session's and
//!   every change to a registration (the user's or an administrator's) in
//!   `flow::registration`; the password-write protocol's decisions in `flow::write`. Each
//!   has a test per transition; reset and registration also have property tests over
//!   arbitrary sequences of steps.
//! - [`lockout`]: pure decisions of the sign-in guard, which keeps the failed binds ssprd
//!   causes below the directory's lockout threshold; `[sign_in]`.
//!
//! Use cases and their adapters:
//! - [`service`]: the use cases, as executors of the core: load state, ask `flow`, carry
//!   out the effects in a fixed order (the order the timing-uniformity tests rely on) and
//!   map the core's refusals to one `ServiceError`. Reset codes go out in the background
//!   (`service::sending`), notifications wait in the store's outbox (`service::notify`);
//!   readiness (`service::health`) and the setup status with its advice
//!   (`service::status`); `[outbox]`, `[prefill]`.
//! - [`api`]: tonic adapters, client roles (`api::auth`), wire checks (`api::wire`), and the
//!   single `ServiceError` → `Status` mapping.
//! - [`listener`]: the hardened TLS listener both endpoints share: connection caps, TLS
//!   handshake, header and idle timeouts; HTTP/2 only (gRPC) or HTTP/1.1 and 2 (portal).
//! - [`grpc`]: the gRPC endpoint: call deadlines, client identity, roles and quotas, health,
//!   reflection; `[server]`, `[[clients]]`.
//! - [`portal`]: the web portal: forgot password, unlock and "My methods" pages over the
//!   same service, server-side sessions with CSRF tokens, strict security headers, English,
//!   German and French (Fluent), templates replaceable from a directory; `[portal]`.
//!
//! The process:
//! - [`config`]: figment layers (defaults < TOML < `SSPRD_*`) and the composition of every
//!   section's check.
//! - [`management`]: the readiness checks (which also set the gRPC health status) and the
//!   management listener — Prometheus `/metrics`, `/healthz`, `/readyz`; `[metrics]`.
//! - [`server`]: the daemon: builds everything from the checked configuration, runs the
//!   sweeper, outbox worker and readiness checks, serves the endpoint, the portal and the
//!   management listener, systemd notify and watchdog.
//! - `demo` (feature `demo`): `ssprd demo`, a throwaway slapd from the `ssprd-testbed`
//!   workspace crate (which the tests and benchmarks use too) and the daemon.
//! - [`setup`]: `ssprd setup`, the guided first run: the directory's answers and the
//!   rights check, the CA, certificates and keys it generates (`setup::pki`), the files and
//!   when an existing one is replaced (`setup::files`), the configuration edited with its
//!   comments kept (`setup::edit`, pure); `ssprd client-cert`, more client certificates
//!   from its CA (`setup::client`).
//! - [`admin_cli`]: `ssprd admin …`, the gRPC client of `AdminService` (by default with the
//!   admin certificate the setup wrote).
//! - [`cli`]: command line (`serve`, `setup`, `client-cert`, `check-config`,
//!   `check-directory`, `audit`, `backup`, `admin`, `demo`).

pub mod admin_cli;
pub mod api;
pub mod audit;
pub mod cli;
pub mod config;
pub mod deadline;
pub mod delivery;
#[cfg(feature = "demo")]
pub mod demo;
pub mod directory;
pub mod failpoint;
pub mod flow;
pub mod grpc;
pub mod language;
pub mod listener;
pub mod lockout;
pub mod logging;
pub mod management;
pub mod method;
pub mod password;
pub mod policy;
pub mod portal;
pub mod problems;
pub mod secret;
pub mod server;
pub mod service;
pub mod setup;
pub mod store;
pub mod tls;

pub use server::serve;
