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

/// Split `s3://bucket/prefix` into the bucket and the prefix (no trailing `/`).
pub fn parse_s3_url(url: &str) -> Option<(String, String)> {
    let rest = url.strip_prefix("s3://")?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    (!bucket.is_empty()).then(|| (bucket.to_string(), prefix.trim_end_matches('/').to_string()))
}

#[cfg(test)]
mod tests {
    use super::parse_s3_url;

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
