//! Domain values that JSON spells as words: each an enum with its serde name, so the code never
//! compares strings and the JSON stays as it was.

use serde::{Deserialize, Serialize};

/// Declares a unit-only enum whose serde names are `as_str`'s, and `Display` prints them.
macro_rules! named {
    ($(#[$m:meta])* pub enum $t:ident { $($(#[$vm:meta])* $v:ident = $s:literal,)* }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        pub enum $t {
            $($(#[$vm])* #[serde(rename = $s)] $v,)*
        }

        impl $t {
            /// The name JSON gives it.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($t::$v => $s,)*
                }
            }
        }

        impl std::fmt::Display for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

named! {
    /// What kind of input a source is.
    pub enum SourceKind {
        /// A session log Session Manager wrote to S3.
        S3Log = "s3-log",
        /// A session streamed to CloudWatch Logs.
        CloudwatchStream = "cloudwatch-stream",
        /// A CloudTrail file (or a delivery of CloudTrail events).
        Cloudtrail = "cloudtrail",
        /// A CloudTrail digest file (log file validation): the log files of a period, signed.
        CloudtrailDigest = "cloudtrail-digest",
        /// `describe-instances` output: instances' Name tags.
        Inventory = "inventory",
        /// Command records derived elsewhere (the Lambda's output), named as such.
        Records = "records",
    }
}

impl SourceKind {
    /// A terminal transcript (a session log or a stream).
    pub fn is_transcript(self) -> bool {
        matches!(self, SourceKind::S3Log | SourceKind::CloudwatchStream)
    }
}

named! {
    /// Where a transcript's session id was found.
    pub enum IdFrom {
        /// The `Script started on …` header's session line.
        Header = "header",
        /// The object's or file's name.
        FileName = "file-name",
        /// The stream's own fields.
        Stream = "stream",
        /// The transcript's text.
        Transcript = "transcript",
    }
}

named! {
    /// What a session's principal rests on.
    #[derive(Default)]
    pub enum AttributedBy {
        /// CloudTrail's StartSession.
        Cloudtrail = "cloudtrail",
        /// A streamed session's own identity.
        Stream = "stream",
        /// The name part of the session id (`alice-0123…`).
        SessionId = "session-id",
        /// Nothing says who.
        #[default]
        None = "none",
    }
}

named! {
    /// What the user of a session's login shell rests on.
    pub enum LoginFrom {
        /// The stream's `runAsUser`.
        Stream = "stream",
        /// The session's own output (`whoami`, `id`).
        Output = "output",
        /// Nothing says: Session Manager's default user (`ssm-user`), which Run As replaces
        /// where it is turned on.
        Default = "default",
        /// Not known: the stream says the shell ran elevated or in a container (an empty
        /// `runAsUser`), or an ECS Exec session.
        Unknown = "unknown",
    }
}

named! {
    /// What is known of a session: CloudTrail's StartSession and a transcript, one of them, or
    /// only calls that were refused.
    pub enum Status {
        /// CloudTrail recorded its start and a transcript was indexed.
        Covered = "covered",
        /// CloudTrail recorded its start; no transcript was indexed (port forwarding, lost or
        /// unreadable logs).
        NoTranscript = "no transcript",
        /// A transcript with no CloudTrail StartSession.
        NoCloudtrail = "no cloudtrail",
        /// Only failed or denied calls: no session began.
        Denied = "denied",
    }
}

named! {
    /// What an auditor must look at in a session besides its status.
    pub enum Flag {
        /// Its sources disagree (see its `conflicts`).
        Conflict = "conflict",
        /// Calls on it failed or were denied (see its `denied`).
        Denied = "denied",
        /// Others than its starter resumed it (see its `participants`).
        Participants = "participants",
        /// A file named as its transcript is not terminal output (see its `unreadable`).
        Unreadable = "unreadable",
        /// Its transcript has stretches the replay could not read: commands may be missing
        /// (see its `partial`).
        Partial = "partial",
    }
}

named! {
    /// How much a rule's match matters.
    pub enum Severity {
        /// Worth knowing.
        Low = "low",
        /// Worth a look.
        Medium = "medium",
        /// Privilege, or a change to who may have it.
        High = "high",
    }
}

named! {
    /// What `verify` found wrong.
    pub enum ProblemKind {
        /// A source's bytes are not those ingested.
        Changed = "changed",
        /// A source cannot be read again.
        Missing = "missing",
        /// The index holds a source the ledger does not list.
        Unexpected = "unexpected",
        /// The ledger lists a source the index no longer holds.
        Deleted = "deleted",
        /// A source's lines, replayed again, differ from the index's.
        Commands = "commands",
        /// A record derived again differs from the index's.
        Records = "records",
        /// The ledger's chain is broken.
        Ledger = "ledger",
        /// The ledger disagrees with a head anchored outside the index, or a head is bad.
        Anchor = "anchor",
        /// A CloudTrail digest whose signature, place or chain fails.
        Digest = "digest",
        /// A CloudTrail file inside a digest's period that the digest does not list.
        Unlisted = "unlisted",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_value_is_written_and_read_by_its_name() {
        for k in [
            SourceKind::S3Log,
            SourceKind::CloudwatchStream,
            SourceKind::Cloudtrail,
            SourceKind::CloudtrailDigest,
            SourceKind::Inventory,
            SourceKind::Records,
        ] {
            let json = serde_json::to_string(&k).unwrap();
            assert_eq!(json, format!("\"{k}\""));
            assert_eq!(serde_json::from_str::<SourceKind>(&json).unwrap(), k);
        }
        assert_eq!(
            serde_json::to_string(&AttributedBy::SessionId).unwrap(),
            "\"session-id\""
        );
        assert_eq!(
            serde_json::from_str::<IdFrom>("\"file-name\"").unwrap(),
            IdFrom::FileName
        );
        assert!(serde_json::from_str::<SourceKind>("\"s3\"").is_err());
    }
}
