//! The AWS adapters of ssm-audit, shared by the Lambda and the `ssm-audit` binary: object
//! storage behind one small trait (S3 and a local folder), CloudWatch Logs reads, EC2 name
//! look-ups, S3 URLs, and (feature `lambda-events`) the decoding of the Lambda's events.
//!
//! The engine (`indexer`) takes bytes and returns values; everything that talks to AWS is here.
//!
//! ```
//! assert_eq!(
//!     aws_adapters::parse_s3_url("s3://logs/sessions/"),
//!     Some(("logs".to_string(), "sessions".to_string()))
//! );
//! ```

#[cfg(feature = "sdk")]
pub mod anchor;
#[cfg(feature = "sdk")]
pub mod cloudtrail;
#[cfg(feature = "sdk")]
pub mod cloudwatch;
#[cfg(feature = "sdk")]
pub mod ec2;
#[cfg(feature = "lambda-events")]
pub mod events;
#[cfg(feature = "sdk")]
pub mod objects;

/// An error in one line a person reads: it and each of its causes, each said once (a cause
/// whose words its parent already holds is left out), never a debug structure. The AWS SDK's
/// own rendering ends with one; this is what every message of these adapters uses.
pub fn one_line(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        let text = s.to_string();
        if !text.is_empty() && !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cur = s.source();
    }
    out
}

/// Split `s3://bucket/prefix` into the bucket and the prefix (no trailing `/`).
pub fn parse_s3_url(url: &str) -> Option<(String, String)> {
    let rest = url.strip_prefix("s3://")?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    (!bucket.is_empty()).then(|| (bucket.to_string(), prefix.trim_end_matches('/').to_string()))
}

#[cfg(test)]
mod tests {
    use super::{one_line, parse_s3_url};

    #[derive(Debug)]
    struct E(&'static str, Option<Box<E>>);
    impl std::fmt::Display for E {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }
    impl std::error::Error for E {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.1.as_deref().map(|e| e as _)
        }
    }

    #[test]
    fn an_error_and_its_causes_in_one_line_each_once() {
        let e = E(
            "dispatch failure",
            Some(Box::new(E(
                "io error",
                Some(Box::new(E(
                    "io error",
                    Some(Box::new(E("Connection refused", None))),
                ))),
            ))),
        );
        assert_eq!(
            one_line(&e),
            "dispatch failure: io error: Connection refused"
        );
    }

    #[test]
    fn s3_urls() {
        assert_eq!(
            parse_s3_url("s3://b/p/q/"),
            Some(("b".into(), "p/q".into()))
        );
        assert_eq!(parse_s3_url("s3://b"), Some(("b".into(), "".into())));
        assert_eq!(parse_s3_url("s3:///x"), None);
        assert_eq!(parse_s3_url("b/x"), None);
    }
}
