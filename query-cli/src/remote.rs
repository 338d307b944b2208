//! What the CLI asks AWS besides its sources: S3 objects again for `verify`, instance names.
//! The SDK takes its endpoint, region and credentials from the standard environment.

use anyhow::{Context, Result};
use aws_adapters::objects::{self, S3Store};

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
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
            .map(|o| o.bytes)
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
