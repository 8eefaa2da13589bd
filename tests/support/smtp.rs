//! The SMTP sink lives in `ssprd::testbed` (the demo uses it too).

pub use ssprd::testbed::SmtpSink;
