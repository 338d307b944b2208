//! The ssm-audit engine: reads what AWS Session Manager, CloudWatch Logs and CloudTrail write,
//! replays terminal bytes into the commands a shell ran, attributes them to IAM principals and
//! instances, keeps the evidence, and stores it all in a tantivy index.
//!
//! It takes bytes and returns values: no AWS SDK, no async runtime, no command-line parsing.
//!
//! ```
//! use indexer::replay::{ReplayOptions, Replayer};
//! let mut r = Replayer::new(ReplayOptions::default());
//! r.feed(b"\x1b[?2004h[ssm-user@ip-10-0-0-1 ~]$ sudo id\r\r\n\x1b[?2004l\ruid=0(root)\r\r\n", 0);
//! let lines = r.finish().lines;
//! assert_eq!(lines[0].command, "sudo id");
//! assert_eq!(lines[0].run_as, "ssm-user");
//! ```

pub mod anchor;
pub mod derive;
pub mod error;
pub mod files;
pub mod formats;
pub mod ingest;
pub mod kinds;
pub mod ledger;
pub mod model;
pub mod names;
pub mod redact;
pub mod replay;
pub mod rules;
pub mod sessionid;
pub mod shellwords;
#[cfg(feature = "index")]
pub mod store;
pub mod stream;
#[cfg(feature = "trail-check")]
pub mod trail_check;
#[cfg(feature = "index")]
pub mod verify;

pub use error::{Error, Result};
