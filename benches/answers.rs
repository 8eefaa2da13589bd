//! Security-answer hashing: throughput and resident memory of ssprd's `AnswerHasher` (work
//! memory from a pool of reused buffers, one per permit) against the baseline measured in
//! the same run — the same argon2id hash (m=19456 KiB, t=2, p=1) under the same permits,
//! with argon2 allocating its 19 MiB afresh for every hash, as ssprd did before.
//!
//! Each mode runs in a child process of its own (this program run again), so its resident
//! memory is its own: `cargo bench --bench answers`. The daemon's blocking pool also runs
//! the store's flushes, so hashes land on many threads; each mode runs a stream of short
//! blocking tasks beside the hashes to do the same. The figures are printed, not asserted.
//!
//! Then the wipe of one hash's 19 MiB of work memory between uses, ssprd's (`memset`,
//! kept by an optimisation barrier) against `zeroize`'s volatile stores of one word at a
//! time, in the same process, alternated.

use ssprd::method::questions::{AnswerHasher, normalise};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::Semaphore;

/// Concurrent hashes allowed (the daemon's default: the number of CPUs, 2 here).
const PERMITS: usize = 2;
/// Callers waiting for a permit at once.
const CALLERS: usize = 32;

fn hashes() -> usize {
    if cfg!(debug_assertions) { 16 } else { 400 }
}

/// (VmHWM, VmRSS) of this process in MiB.
fn memory() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib = |key: &str| {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
            / 1024.0
    };
    (kib("VmHWM:"), kib("VmRSS:"))
}

async fn child(mode: &str) {
    let n = hashes();
    // Short blocking tasks beside the hashes, like the store's flushes in the daemon.
    let churn = tokio::spawn(async {
        loop {
            drop(tokio::task::spawn_blocking(|| {
                std::thread::sleep(std::time::Duration::from_millis(2))
            }));
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
    });
    let started = Instant::now();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let pooled = AnswerHasher::new(PERMITS);
    let permits = Arc::new(Semaphore::new(PERMITS));
    let callers: Vec<_> = (0..CALLERS)
        .map(|_| {
            let (next, pooled, permits) = (next.clone(), pooled.clone(), permits.clone());
            let mode = mode.to_string();
            tokio::spawn(async move {
                while next.fetch_add(1, std::sync::atomic::Ordering::SeqCst) < n {
                    if mode == "pooled" {
                        pooled.hash(normalise("the name of my first pet")).await;
                    } else {
                        let _permit = permits.clone().acquire_owned().await.unwrap();
                        tokio::task::spawn_blocking(|| {
                            use argon2::password_hash::PasswordHasher;
                            argon2::Argon2::default()
                                .hash_password(b"the name of my first pet")
                                .unwrap()
                                .to_string()
                        })
                        .await
                        .unwrap();
                    }
                }
            })
        })
        .collect();
    for c in callers {
        c.await.unwrap();
    }
    let took = started.elapsed().as_secs_f64();
    churn.abort();
    let (hwm, rss) = memory();
    println!("{mode} {:.1} {hwm:.0} {rss:.0}", n as f64 / took);
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--mode") {
        let mode = args[i + 1].clone();
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
            .block_on(child(&mode));
        return;
    }
    let run = |mode: &str| -> (f64, f64, f64) {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--mode", mode])
            .output()
            .unwrap();
        assert!(out.status.success(), "{mode}: {out:?}");
        let text = String::from_utf8_lossy(&out.stdout);
        let line = text.lines().find(|l| l.starts_with(mode)).unwrap();
        let f: Vec<f64> = line
            .split_whitespace()
            .skip(1)
            .map(|v| v.parse().unwrap())
            .collect();
        (f[0], f[1], f[2])
    };
    println!(
        "answer hashing: {} hashes, {PERMITS} at once, {CALLERS} callers",
        hashes()
    );
    // Alternated, twice each, so both see the same machine load.
    let mut rows = Vec::new();
    for round in 0..2 {
        for mode in ["fresh", "pooled"] {
            let (rate, hwm, rss) = run(mode);
            println!(
                "  round {round} {mode:>6}: {rate:6.1} hashes/s, peak resident {hwm:5.0} MiB, \
                 resident at the end {rss:5.0} MiB"
            );
            rows.push((mode, rate, hwm));
        }
    }
    let avg = |mode: &str, f: fn(&(&str, f64, f64)) -> f64| {
        let v: Vec<f64> = rows.iter().filter(|r| r.0 == mode).map(f).collect();
        v.iter().sum::<f64>() / v.len() as f64
    };
    let (fr, pr) = (avg("fresh", |r| r.1), avg("pooled", |r| r.1));
    let (fm, pm) = (avg("fresh", |r| r.2), avg("pooled", |r| r.2));
    println!(
        "  pooled / fresh: throughput {:.2}x, peak resident {:.2}x ({pm:.0} MiB vs {fm:.0} MiB; \
         target: at most ~150 MiB + 19 MiB per concurrent hash = {} MiB)",
        pr / fr,
        pm / fm,
        150 + 19 * PERMITS
    );
    wipes();
}

/// The wipe of one buffer of work memory: ssprd's against `zeroize`'s, alternated.
fn wipes() {
    use zeroize::Zeroize;
    let mut buf = vec![argon2::Block::default(); argon2::Params::default().block_count()];
    let rounds = if cfg!(debug_assertions) { 4 } else { 40 };
    let (mut ours, mut volatile) = (0.0, 0.0);
    for _ in 0..rounds {
        let t = Instant::now();
        ssprd::method::questions::wipe(&mut buf);
        ours += t.elapsed().as_secs_f64();
        let t = Instant::now();
        for block in buf.iter_mut() {
            block.zeroize();
        }
        volatile += t.elapsed().as_secs_f64();
    }
    let per = |s: f64| s * 1000.0 / f64::from(rounds);
    println!(
        "work-memory wipe ({} MiB): {:.2} ms, zeroize's volatile stores {:.2} ms (ratio {:.2})",
        buf.len() * 1024 / (1024 * 1024),
        per(ours),
        per(volatile),
        ours / volatile
    );
}
