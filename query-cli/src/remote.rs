//! What the CLI asks AWS besides its sources: sources again for `verify`, instance names.
//! The SDK takes its endpoint, region and credentials from the standard environment.

use anyhow::{Context, Result};
use aws_adapters::objects::{self, S3Store};
use indexer::files::ReadError;
use indexer::verify::Fetched;

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// Fetches sources again for `verify`, as the ledger recorded them: files (regular files
/// only), S3 objects at their version, and streamed sessions from their log group. None is
/// read past one byte more than its recorded size.
pub struct Refetch {
    rt: tokio::runtime::Runtime,
    s3: Option<objects::S3Client>,
    logs: Option<aws_adapters::cloudwatch::Client>,
}

impl Refetch {
    /// A fetcher; the clients are made on first use.
    pub fn new() -> Result<Self> {
        Ok(Refetch {
            rt: runtime()?,
            s3: None,
            logs: None,
        })
    }

    /// The source of ledger entry `e` again.
    pub fn fetch(&mut self, e: &indexer::ledger::Entry) -> Fetched {
        let name = e.source.as_str();
        let result = if let Some(path) = name.strip_prefix("cloudwatch://") {
            self.stream(path)
        } else if name.starts_with("s3://") {
            self.object(name, e.version_id.as_deref(), e.size)
        } else {
            return match indexer::files::read_regular(&indexer::files::path_of(name), Some(e.size))
            {
                Ok(bytes) => Fetched::Bytes(bytes, Default::default()),
                Err(ReadError::TooLarge(_)) => Fetched::Changed(format!(
                    "now larger than {} bytes (not read further)",
                    e.size
                )),
                Err(why) => Fetched::Missing(format!("cannot be read again: {why}")),
            };
        };
        result.unwrap_or_else(Fetched::Missing)
    }

    fn object(
        &mut self,
        url: &str,
        version: Option<&str>,
        size: u64,
    ) -> std::result::Result<Fetched, String> {
        let (bucket, key) =
            aws_adapters::parse_s3_url(url).ok_or_else(|| format!("{url}: not an S3 URL"))?;
        let rt = &self.rt;
        let client = match &self.s3 {
            Some(c) => c.clone(),
            None => rt.block_on(objects::s3_client()),
        };
        let store = S3Store::new(client.clone(), &bucket);
        let read = rt
            .block_on(store.read_at_most(&key, version, size))
            .map_err(|e| e.to_string());
        self.s3 = Some(client);
        Ok(match read? {
            Ok(o) => Fetched::Bytes(o.bytes, o.metadata),
            Err(now) => Fetched::Changed(format!("{now} bytes now (not read)")),
        })
    }

    /// A streamed session (`GROUP/STREAM`, the group's name may hold `/`, the stream's not),
    /// from every event of its stream, assembled as ingest assembles it.
    fn stream(&mut self, path: &str) -> std::result::Result<Fetched, String> {
        let Some((group, stream)) = path.rsplit_once('/') else {
            return Err(format!("cloudwatch://{path}: not GROUP/STREAM"));
        };
        let rt = &self.rt;
        let client = match &self.logs {
            Some(c) => c.clone(),
            None => rt.block_on(aws_adapters::cloudwatch::client()),
        };
        let found = rt.block_on(aws_adapters::cloudwatch::filter_log_events(
            &client,
            group,
            Some(stream),
            None,
        ));
        self.logs = Some(client);
        Ok(match found?.into_iter().find(|(s, _)| s == stream) {
            Some((_, bytes)) => Fetched::Bytes(bytes, Default::default()),
            None => Fetched::Missing(format!("the log stream {stream} of {group} has no events")),
        })
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

/// CloudTrail's public keys asked of the CloudTrail API (`ListPublicKeys` in the digest's
/// region), the client made on first use; why not, in one line.
pub fn cloudtrail_keys() -> indexer::trail_check::Keyring {
    let mut client: Option<(tokio::runtime::Runtime, aws_adapters::cloudtrail::Client)> = None;
    indexer::trail_check::Keyring::asking(Box::new(move |region: &str, from: &str| {
        if client.is_none() {
            let rt = runtime().map_err(|e| format!("{e:#}"))?;
            let c = rt.block_on(aws_adapters::cloudtrail::client());
            client = Some((rt, c));
        }
        let Some((rt, c)) = &client else {
            return Err("no CloudTrail client".into());
        };
        let pairs = rt.block_on(aws_adapters::cloudtrail::public_keys(c, region, from))?;
        if pairs.is_empty() {
            return Err(format!("it lists no public key valid since {from}"));
        }
        indexer::trail_check::PublicKeys::from_der(&pairs)
    }))
}
