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

/// Sources fetched ahead of the one `verify` asks for, at most: requests in flight at once.
const FETCH_AHEAD: usize = 16;

/// A source as the ledger names it: its name and version.
type SourceKey = (String, Option<String>);

/// Fetches sources again for `verify`, as the ledger recorded them: files (regular files
/// only), S3 objects at their version, and streamed sessions from their log group. None is
/// read past one byte more than its recorded size. Told the order ([`Refetch::upcoming`]), it
/// keeps [`FETCH_AHEAD`] S3 objects and streams in flight ahead of the one asked for.
pub struct Refetch {
    rt: tokio::runtime::Runtime,
    s3: Option<objects::S3Client>,
    logs: Option<aws_adapters::cloudwatch::Client>,
    /// What is still to be fetched from S3 or CloudWatch Logs, in order: name, version, size.
    plan: std::collections::VecDeque<(String, Option<String>, u64)>,
    /// Fetches under way, or done and not yet asked for.
    started: std::collections::HashMap<
        SourceKey,
        tokio::task::JoinHandle<std::result::Result<Fetched, String>>,
    >,
}

impl Refetch {
    /// A fetcher; the clients are made on first use.
    pub fn new() -> Result<Self> {
        Ok(Refetch {
            rt: tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .context("starting the async runtime")?,
            s3: None,
            logs: None,
            plan: Default::default(),
            started: Default::default(),
        })
    }

    /// The sources `verify` will ask for, in order: those in S3 and CloudWatch Logs are
    /// fetched ahead.
    pub fn upcoming(&mut self, entries: &[&indexer::ledger::Entry]) {
        self.plan = entries
            .iter()
            .filter(|e| e.source.starts_with("s3://") || e.source.starts_with("cloudwatch://"))
            .map(|e| (e.source.clone(), e.version_id.clone(), e.size))
            .collect();
        self.read_ahead();
    }

    /// Start fetches from the plan while fewer than [`FETCH_AHEAD`] are under way.
    fn read_ahead(&mut self) {
        while self.started.len() < FETCH_AHEAD {
            let Some((name, version, size)) = self.plan.pop_front() else {
                break;
            };
            let key = (name.clone(), version.clone());
            let task = if let Some(path) = name.strip_prefix("cloudwatch://") {
                let client = self.logs_client();
                let path = path.to_string();
                self.rt
                    .spawn(async move { fetch_stream(&client, &path).await })
            } else {
                let client = self.s3_client();
                self.rt.spawn(
                    async move { fetch_object(client, &name, version.as_deref(), size).await },
                )
            };
            self.started.insert(key, task);
        }
    }

    fn s3_client(&mut self) -> objects::S3Client {
        if self.s3.is_none() {
            self.s3 = Some(self.rt.block_on(objects::s3_client()));
        }
        self.s3.clone().expect("made above")
    }

    fn logs_client(&mut self) -> aws_adapters::cloudwatch::Client {
        if self.logs.is_none() {
            self.logs = Some(self.rt.block_on(aws_adapters::cloudwatch::client()));
        }
        self.logs.clone().expect("made above")
    }

    /// The source of ledger entry `e` again.
    pub fn fetch(&mut self, e: &indexer::ledger::Entry) -> Fetched {
        let name = e.source.as_str();
        let ahead = self
            .started
            .remove(&(e.source.clone(), e.version_id.clone()));
        let result = if let Some(task) = ahead {
            let r = self
                .rt
                .block_on(task)
                .unwrap_or_else(|join| Err(format!("fetching: {join}")));
            self.read_ahead();
            r
        } else if let Some(path) = name.strip_prefix("cloudwatch://") {
            let client = self.logs_client();
            self.rt.block_on(fetch_stream(&client, path))
        } else if name.starts_with("s3://") {
            let client = self.s3_client();
            self.rt
                .block_on(fetch_object(client, name, e.version_id.as_deref(), e.size))
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
}

/// An S3 object again, at its version, reading no more than one byte past `size`.
async fn fetch_object(
    client: objects::S3Client,
    url: &str,
    version: Option<&str>,
    size: u64,
) -> std::result::Result<Fetched, String> {
    let (bucket, key) =
        aws_adapters::parse_s3_url(url).ok_or_else(|| format!("{url}: not an S3 URL"))?;
    let store = S3Store::new(client, &bucket);
    let read = store
        .read_at_most(&key, version, size)
        .await
        .map_err(|e| e.to_string())?;
    Ok(match read {
        Ok(o) => Fetched::Bytes(o.bytes, o.metadata),
        Err(now) => Fetched::Changed(format!("{now} bytes now (not read)")),
    })
}

/// A streamed session (`GROUP/STREAM`, the group's name may hold `/`, the stream's not) again,
/// as its canonical document.
async fn fetch_stream(
    client: &aws_adapters::cloudwatch::Client,
    path: &str,
) -> std::result::Result<Fetched, String> {
    let Some((group, stream)) = path.rsplit_once('/') else {
        return Err(format!("cloudwatch://{path}: not GROUP/STREAM"));
    };
    let events = aws_adapters::cloudwatch::stream_events(client, group, stream, None).await?;
    Ok(if events.is_empty() {
        Fetched::Missing(format!("the log stream {stream} of {group} has no events"))
    } else {
        Fetched::Bytes(
            indexer::formats::stream_document(&events).0,
            Default::default(),
        )
    })
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
