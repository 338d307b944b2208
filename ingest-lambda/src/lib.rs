//! AWS I/O for ssm-audit: object storage (S3 and a local folder), CloudWatch Logs reading, and
//! the Lambda that turns S3 and CloudWatch Logs events into per-session audit records with the
//! `indexer` engine.
//!
//! The Lambda's `main` reads its environment once, builds its clients once, and hands
//! [`handler::handle`] to the runtime; tests call `handle` directly.

pub mod cloudwatch;
pub mod handler;
pub mod objects;
pub mod pipeline;

use std::sync::Arc;

/// Split `s3://bucket/prefix` into the bucket and the prefix (no trailing `/`).
pub fn parse_s3_url(url: &str) -> Option<(String, String)> {
    let rest = url.strip_prefix("s3://")?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    (!bucket.is_empty()).then(|| (bucket.to_string(), prefix.trim_end_matches('/').to_string()))
}

/// Dependencies of the handler from the environment: `SSM_AUDIT_OUTPUT` (required),
/// `SSM_AUDIT_INDEX_DIR` (optional), and the AWS SDK's standard variables.
pub async fn deps_from_env() -> Result<handler::Deps, String> {
    let output = std::env::var("SSM_AUDIT_OUTPUT")
        .map_err(|_| "SSM_AUDIT_OUTPUT (s3://bucket/prefix) is not set".to_string())?;
    let (bucket, prefix) = parse_s3_url(&output)
        .ok_or_else(|| format!("SSM_AUDIT_OUTPUT={output:?} is not s3://bucket/prefix"))?;
    let client = objects::s3_client().await;
    let out_store: Arc<dyn objects::ObjectStore> =
        Arc::new(objects::S3Store::new(client.clone(), &bucket));
    let buckets: handler::Buckets = Arc::new(move |b: &str| {
        Arc::new(objects::S3Store::new(client.clone(), b)) as Arc<dyn objects::ObjectStore>
    });
    Ok(handler::Deps {
        buckets,
        pipeline: pipeline::Pipeline::new(pipeline::Output {
            store: out_store,
            prefix,
        }),
        index_dir: std::env::var_os("SSM_AUDIT_INDEX_DIR")
            .filter(|d| !d.is_empty())
            .map(Into::into),
    })
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
