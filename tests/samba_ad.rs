//! End to end over gRPC+TLS against a real Samba AD DC (needs root; provisioned into a temp
//! dir). Samba's ports are fixed, so one DC serves every scenario, run in sequence.

mod support;

use support::{samba::SambaAd, scenarios};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn samba_ad_end_to_end() {
    support::init();
    if let Some(why) = support::samba::unavailable() {
        // The suite's own command (scripts/test.sh) runs as root with Samba installed and sets
        // SSPRD_REQUIRE_SAMBA=1, so this skip never hides a missing run in CI.
        assert!(
            std::env::var("SSPRD_REQUIRE_SAMBA").as_deref() != Ok("1"),
            "Samba AD tests required but cannot run: {why}"
        );
        eprintln!("SKIPPED samba_ad_end_to_end: {why}");
        return;
    }
    let started = std::time::Instant::now();
    let mut ad = SambaAd::start().await.expect("Samba AD DC starts");
    eprintln!("samba ready in {:?}", started.elapsed());
    let work = tempfile::tempdir().unwrap();
    let daemon = scenarios::daemon(&ad, work.path()).await;
    let mut c = daemon.clients().await;

    eprintln!("== register_and_reset");
    scenarios::register_and_reset(&ad, &mut c).await;
    eprintln!("== policy_refusals");
    scenarios::policy_refusals(&ad, &mut c).await;
    eprintln!("== unknown_user");
    scenarios::unknown_user(&ad, &mut c).await;
    eprintln!("== wrong_answers");
    scenarios::wrong_answers(&ad, &mut c).await;
    eprintln!("== unlock");
    scenarios::unlock(&ad, &mut c).await;
    eprintln!("== registration_errors");
    scenarios::registration_errors(&ad, &mut c).await;
    eprintln!("== password_policy_is_served");
    scenarios::password_policy_is_served(&ad, &mut c).await;
    eprintln!("== long_and_unicode_passwords");
    scenarios::long_and_unicode_passwords(&ad, &mut c).await;
    eprintln!("== must_change");
    scenarios::must_change(&ad, &work.path().join("mustchange")).await;
    eprintln!("== sign_in_never_locks");
    std::fs::create_dir_all(work.path().join("signin")).unwrap();
    scenarios::sign_in_never_locks(&ad, &work.path().join("signin")).await;
    eprintln!("== least_privilege");
    scenarios::least_privilege(&ad).await;
    eprintln!("== administration");
    scenarios::administration(&ad, &work.path().join("admin")).await;
    eprintln!("== crash_consistency");
    std::fs::create_dir_all(work.path().join("crash")).unwrap();
    scenarios::crash_consistency(&ad, &work.path().join("crash")).await;
    eprintln!("== directory_down");
    scenarios::directory_down(&mut ad, &mut c).await;

    daemon.stop().await;
    drop(ad);
    eprintln!("samba scenarios done in {:?}", started.elapsed());
}
