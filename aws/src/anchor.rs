//! Anchoring ledger heads in S3 (new objects only, under Object Lock retention when asked),
//! and signing them with a KMS asymmetric key (`kms:Sign`, checked with `kms:Verify`).
//!
//! The engine's traits are synchronous (the index writer calls them after a commit): these
//! block on a Tokio runtime's handle, from a thread that is not one of its workers.

use indexer::anchor::{AnchorStore, HeadSignature, SignatureCheck, Signer, MAX_HEAD_BYTES};
use tokio::runtime::Handle;

/// The KMS client type, for callers that keep one.
pub use aws_sdk_kms::Client as KmsClient;

/// A KMS client from the standard environment.
pub async fn kms_client() -> KmsClient {
    let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    KmsClient::new(&config)
}

/// Heads under `s3://bucket/prefix/`.
pub struct S3Anchor {
    client: aws_sdk_s3::Client,
    bucket: String,
    prefix: String,
    /// Days each head is kept under Object Lock (compliance mode); `None`: the bucket's
    /// default retention, if it has one.
    retain_days: Option<u32>,
    rt: Handle,
}

impl S3Anchor {
    /// Heads at `s3://bucket/prefix`, written through `client` on `rt`.
    pub fn new(
        client: aws_sdk_s3::Client,
        url: &str,
        retain_days: Option<u32>,
        rt: Handle,
    ) -> Result<S3Anchor, String> {
        let (bucket, prefix) =
            crate::parse_s3_url(url).ok_or_else(|| format!("{url}: not an s3:// URL"))?;
        Ok(S3Anchor {
            client,
            bucket,
            prefix,
            retain_days,
            rt,
        })
    }

    fn key(&self, name: &str) -> String {
        if self.prefix.is_empty() {
            name.to_string()
        } else {
            format!("{}/{name}", self.prefix)
        }
    }
}

fn sdk_error<E: std::error::Error + 'static>(e: E) -> String {
    crate::one_line(&e)
}

impl AnchorStore for S3Anchor {
    fn location(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.prefix)
    }

    /// Every version of every head: a head written again under its name (possible in a
    /// bucket without Object Lock) is read as it was first written, and as it is now.
    fn list(&mut self) -> Result<Vec<(String, Vec<u8>)>, String> {
        let start = self.key("ledger-head-");
        self.rt.block_on(async {
            let mut versions = Vec::new();
            let (mut key_marker, mut version_marker): (Option<String>, Option<String>) =
                (None, None);
            loop {
                let page = self
                    .client
                    .list_object_versions()
                    .bucket(&self.bucket)
                    .prefix(&start)
                    .set_key_marker(key_marker.take())
                    .set_version_id_marker(version_marker.take())
                    .send()
                    .await
                    .map_err(|e| format!("{}: {}", self.location(), sdk_error(e)))?;
                for v in page.versions() {
                    versions.push((
                        v.key().unwrap_or_default().to_string(),
                        v.version_id().filter(|id| *id != "null").map(String::from),
                        v.size(),
                    ));
                }
                if page.is_truncated() != Some(true) {
                    break;
                }
                key_marker = page.next_key_marker().map(String::from);
                version_marker = page.next_version_id_marker().map(String::from);
                if key_marker.is_none() && version_marker.is_none() {
                    break;
                }
            }
            let mut out = Vec::new();
            for (key, version, size) in versions {
                let url = format!("s3://{}/{key}", self.bucket);
                if size.is_some_and(|s| s as u64 > MAX_HEAD_BYTES) {
                    return Err(format!("{url}: larger than a head can be"));
                }
                let got = self
                    .client
                    .get_object()
                    .bucket(&self.bucket)
                    .key(&key)
                    .set_version_id(version.clone())
                    .send()
                    .await
                    .map_err(|e| format!("{url}: {}", sdk_error(e)))?;
                let bytes = got
                    .body
                    .collect()
                    .await
                    .map_err(|e| format!("{url}: {e}"))?
                    .into_bytes()
                    .to_vec();
                let base = key.rsplit('/').next().unwrap_or(&key).to_string();
                let name = match version {
                    Some(v) => format!("{base}?versionId={v}"),
                    None => base,
                };
                out.push((name, bytes));
            }
            out.sort();
            Ok(out)
        })
    }

    fn create(&mut self, name: &str, bytes: &[u8]) -> Result<(), String> {
        let key = self.key(name);
        let url = format!("s3://{}/{key}", self.bucket);
        let mut put = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(&key)
            .content_type("application/json")
            // Written once: an object of that name already there is an error, not replaced.
            .if_none_match("*")
            // Object Lock puts must carry a checksum; every head carries one.
            .checksum_algorithm(aws_sdk_s3::types::ChecksumAlgorithm::Sha256)
            .body(bytes.to_vec().into());
        if let Some(days) = self.retain_days {
            let until = chrono::Utc::now() + chrono::Duration::days(i64::from(days));
            put = put
                .object_lock_mode(aws_sdk_s3::types::ObjectLockMode::Compliance)
                .object_lock_retain_until_date(aws_sdk_s3::primitives::DateTime::from_secs(
                    until.timestamp(),
                ));
        }
        self.rt
            .block_on(put.send())
            .map(|_| ())
            .map_err(|e| format!("{url}: {}", sdk_error(e)))
    }
}

/// Signs heads with a KMS asymmetric key, and checks heads' signatures with `kms:Verify`.
pub struct KmsSigner {
    client: aws_sdk_kms::Client,
    /// The key as given (id, ARN or alias).
    key: String,
    /// Its ARN and the algorithm chosen, once described.
    described: Option<(String, aws_sdk_kms::types::SigningAlgorithmSpec)>,
    rt: Handle,
}

/// Algorithms preferred, in order, among those the key offers.
const PREFERRED: [&str; 3] = [
    "ECDSA_SHA_256",
    "RSASSA_PSS_SHA_256",
    "RSASSA_PKCS1_V1_5_SHA_256",
];

impl KmsSigner {
    /// Sign with `key`; `client` from the standard environment when `None`.
    pub fn new(client: Option<aws_sdk_kms::Client>, key: &str, rt: Handle) -> KmsSigner {
        let client = client.unwrap_or_else(|| {
            let config = rt.block_on(aws_config::load_defaults(
                aws_config::BehaviorVersion::latest(),
            ));
            aws_sdk_kms::Client::new(&config)
        });
        KmsSigner {
            client,
            key: key.to_string(),
            described: None,
            rt,
        }
    }

    fn describe(&mut self) -> Result<(String, aws_sdk_kms::types::SigningAlgorithmSpec), String> {
        if let Some(d) = &self.described {
            return Ok(d.clone());
        }
        let out = self
            .rt
            .block_on(self.client.describe_key().key_id(&self.key).send())
            .map_err(|e| format!("kms:DescribeKey {}: {}", self.key, sdk_error(e)))?;
        let meta = out
            .key_metadata()
            .ok_or_else(|| format!("kms:DescribeKey {}: no key metadata", self.key))?;
        let offered = meta.signing_algorithms();
        let algorithm = PREFERRED
            .iter()
            .find_map(|p| offered.iter().find(|a| a.as_str() == *p))
            .or_else(|| offered.first())
            .cloned()
            .ok_or_else(|| format!("{}: not a signing key (no signing algorithm)", self.key))?;
        let d = (meta.arn().unwrap_or(&self.key).to_string(), algorithm);
        self.described = Some(d.clone());
        Ok(d)
    }
}

impl Signer for KmsSigner {
    fn sign(&mut self, statement: &[u8]) -> Result<HeadSignature, String> {
        let (arn, algorithm) = self.describe()?;
        let out = self
            .rt
            .block_on(
                self.client
                    .sign()
                    .key_id(&arn)
                    .message(statement.to_vec().into())
                    .message_type(aws_sdk_kms::types::MessageType::Raw)
                    .signing_algorithm(algorithm.clone())
                    .send(),
            )
            .map_err(|e| format!("kms:Sign {arn}: {}", sdk_error(e)))?;
        let signature = out
            .signature()
            .ok_or_else(|| format!("kms:Sign {arn}: no signature returned"))?;
        Ok(HeadSignature {
            key: arn,
            algorithm: algorithm.as_str().to_string(),
            value: indexer::anchor::signature_hex(signature.as_ref()),
        })
    }
}

impl SignatureCheck for KmsSigner {
    fn verify(&mut self, signature: &HeadSignature, statement: &[u8]) -> Result<bool, String> {
        let Ok(bytes) = hex::decode(&signature.value) else {
            return Ok(false);
        };
        let algorithm =
            aws_sdk_kms::types::SigningAlgorithmSpec::from(signature.algorithm.as_str());
        let out = self.rt.block_on(
            self.client
                .verify()
                .key_id(&signature.key)
                .message(statement.to_vec().into())
                .message_type(aws_sdk_kms::types::MessageType::Raw)
                .signature(bytes.into())
                .signing_algorithm(algorithm)
                .send(),
        );
        match out {
            Ok(o) => Ok(o.signature_valid()),
            // KMS answers a signature that does not match with this error, not with `false`.
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_kms_invalid_signature_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(format!("kms:Verify {}: {}", signature.key, sdk_error(e))),
        }
    }
}
