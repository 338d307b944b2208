//! Sources read through the AWS SDK: `s3://bucket/prefix` and `cloudwatch://group[/prefix]`.
//! The SDK takes its endpoint, region and credentials from the standard environment.

use anyhow::{anyhow, Context, Result};
use aws_adapters::objects::{self, ObjectStore, S3Store};
use indexer::model::SourceObject;

/// Is this argument a remote source?
pub fn is_remote(arg: &str) -> bool {
    arg.starts_with("s3://") || arg.starts_with("cloudwatch://")
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// Every object under `s3://bucket/prefix`, read one at a time and handed to `each`, with its
/// version id. Returns how many there were.
pub fn each_s3_object(
    url: &str,
    mut each: impl FnMut(usize, usize, Result<SourceObject, String>),
) -> Result<usize> {
    let (bucket, prefix) =
        aws_adapters::parse_s3_url(url).ok_or_else(|| anyhow!("{url}: not s3://bucket/prefix"))?;
    let rt = runtime()?;
    let client = rt.block_on(objects::s3_client());
    let store = S3Store::new(client, &bucket);
    let listed = rt
        .block_on(store.list(&prefix))
        .map_err(|e| anyhow!("listing {url}: {e}"))?;
    let total = listed.len();
    for (n, o) in listed.into_iter().enumerate() {
        let r = rt
            .block_on(store.read_versioned(&o.key, None))
            .map(|(bytes, version_id)| SourceObject {
                name: store.url(&o.key),
                version_id,
                bytes,
            })
            .map_err(|e| e.to_string());
        each(n, total, r);
    }
    Ok(total)
}

/// Streamed sessions of `cloudwatch://GROUP[/STREAM-PREFIX]` since `since_ms`, one
/// `filter-log-events` document per session. Group names may hold `/`: the longest leading
/// part that names an existing group is the group.
pub fn cloudwatch_streams(url: &str, since_ms: Option<i64>) -> Result<Vec<SourceObject>> {
    let path = url.strip_prefix("cloudwatch://").unwrap_or(url);
    if path.is_empty() {
        return Err(anyhow!("{url}: no log group"));
    }
    let rt = runtime()?;
    let client = rt.block_on(aws_adapters::cloudwatch::client());
    let (group, prefix) = rt
        .block_on(aws_adapters::cloudwatch::resolve_group(&client, path))
        .map_err(|e| anyhow!(e))?;
    let streams = rt
        .block_on(aws_adapters::cloudwatch::filter_log_events(
            &client,
            &group,
            prefix.as_deref(),
            since_ms,
        ))
        .map_err(|e| anyhow!(e))?;
    Ok(streams
        .into_iter()
        .map(|(stream, bytes)| SourceObject {
            name: format!("cloudwatch://{group}/{stream}"),
            version_id: None,
            bytes,
        })
        .collect())
}

/// Fetch `s3://bucket/key` (at a version) again, for `verify`.
pub struct S3Fetcher {
    rt: tokio::runtime::Runtime,
    client: Option<objects::S3Client>,
}

impl S3Fetcher {
    /// A fetcher; the S3 client is made on first use.
    pub fn new() -> Result<Self> {
        Ok(S3Fetcher {
            rt: runtime()?,
            client: None,
        })
    }

    /// The object's bytes, or why they cannot be had.
    pub fn fetch(
        &mut self,
        url: &str,
        version: Option<&str>,
    ) -> std::result::Result<Vec<u8>, String> {
        let (bucket, key) =
            aws_adapters::parse_s3_url(url).ok_or_else(|| format!("{url}: not an S3 URL"))?;
        let client = match &self.client {
            Some(c) => c.clone(),
            None => {
                let c = self.rt.block_on(objects::s3_client());
                self.client = Some(c.clone());
                c
            }
        };
        let store = S3Store::new(client, &bucket);
        self.rt
            .block_on(store.read_versioned(&key, version))
            .map(|(b, _)| b)
            .map_err(|e| e.to_string())
    }
}

/// Ask the EC2 API for the Name tags of `instances` (id → region of a session on it), one call
/// per region; what each region answered, as observed names (an instance without a Name is
/// recorded as looked up, so that it is not asked again). A region whose call fails is named
/// in a warning, and its instances stay unnamed.
pub fn instance_names(
    instances: &std::collections::BTreeMap<String, Option<String>>,
    warn: &mut dyn FnMut(&str) -> Result<()>,
) -> Result<Vec<indexer::names::InstanceNames>> {
    use indexer::names::InstanceNames;
    if instances.is_empty() {
        return Ok(Vec::new());
    }
    let mut by_region: std::collections::BTreeMap<Option<&str>, Vec<String>> = Default::default();
    for (id, region) in instances {
        by_region
            .entry(region.as_deref())
            .or_default()
            .push(id.clone());
    }
    let rt = runtime()?;
    let ec2 = rt.block_on(aws_adapters::ec2::Ec2Names::from_env());
    let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let mut out = Vec::new();
    for (region, ids) in by_region {
        match rt.block_on(ec2.names(region, &ids)) {
            Ok(found) => {
                for id in ids {
                    let mut n = InstanceNames::new(&id);
                    n.looked_up(found.get(&id).map(String::as_str), region, now.clone());
                    out.push(n);
                }
            }
            Err(why) => warn(&format!(
                "the names of {} instances were not looked up: {why}",
                ids.len()
            ))?,
        }
    }
    Ok(out)
}
