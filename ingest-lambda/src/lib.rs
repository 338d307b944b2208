//! The ssm-audit Lambda: turns S3 and CloudWatch Logs events into per-session audit records with
//! the `indexer` engine, reading and writing through the AWS adapters of `aws-adapters`.
//!
//! The Lambda's `main` reads its environment once, builds its clients once, and hands
//! [`handler::handle`] to the runtime; tests call `handle` directly.

pub mod error;
pub mod handler;
pub mod pipeline;

use aws_adapters::{objects, parse_s3_url};
use std::sync::Arc;

/// Dependencies of the handler from the environment: `SSM_AUDIT_OUTPUT` (required),
/// `SSM_AUDIT_INDEX_DIR`, `SSM_AUDIT_ANCHOR` (`s3://bucket/prefix`, with the index),
/// `SSM_AUDIT_ANCHOR_RETAIN_DAYS`, `SSM_AUDIT_ANCHOR_SIGN_KEY` (optional), and the AWS SDK's
/// standard variables.
pub async fn deps_from_env() -> Result<handler::Deps, String> {
    let output = std::env::var("SSM_AUDIT_OUTPUT")
        .map_err(|_| "SSM_AUDIT_OUTPUT (s3://bucket/prefix) is not set".to_string())?;
    let (bucket, prefix) = parse_s3_url(&output)
        .ok_or_else(|| format!("SSM_AUDIT_OUTPUT={output:?} is not s3://bucket/prefix"))?;
    let client = objects::s3_client().await;
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let sign_key = match var("SSM_AUDIT_ANCHOR_SIGN_KEY") {
        Some(k) => Some((k, aws_adapters::anchor::kms_client().await)),
        None => None,
    };
    let anchor = match var("SSM_AUDIT_ANCHOR") {
        Some(url) if url.starts_with("s3://") => Some(handler::Anchor {
            client: client.clone(),
            url,
            retain_days: var("SSM_AUDIT_ANCHOR_RETAIN_DAYS")
                .map(|d| {
                    d.parse().map_err(|_| {
                        format!("SSM_AUDIT_ANCHOR_RETAIN_DAYS={d:?} is not a number of days")
                    })
                })
                .transpose()?,
            sign_key,
        }),
        Some(url) => {
            return Err(format!(
                "SSM_AUDIT_ANCHOR={url:?} is not s3://bucket/prefix"
            ))
        }
        None => None,
    };
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
        })
        .with_ec2(Arc::new(aws_adapters::ec2::Ec2Names::from_env().await))
        .with_cloudtrail(Arc::new(pipeline::ApiKeys::new(
            aws_adapters::cloudtrail::client().await,
        ))),
        index_dir: std::env::var_os("SSM_AUDIT_INDEX_DIR")
            .filter(|d| !d.is_empty())
            .map(Into::into),
        anchor,
    })
}
