//! Object storage behind one small trait: S3 (through the AWS SDK) and a local folder.
//! Both are checked by the same test suite (`tests/objects.rs` of the workspace's `tests/`).

use async_trait::async_trait;
use aws_sdk_s3::primitives::ByteStream;
use std::path::{Path, PathBuf};

/// The S3 client type, for callers that keep one.
pub use aws_sdk_s3::Client as S3Client;

/// Multipart uploads send parts of this size.
pub const PART_BYTES: usize = 8 << 20;

/// Why a storage call failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The object does not exist.
    #[error("{0}: no such object")]
    NotFound(String),
    /// Throttling, a 5xx, a timeout, a dropped connection, a refused permission: try again later.
    #[error("{0}")]
    Transient(String),
}

/// An object's name, version and size, as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    /// The key.
    pub key: String,
    /// Its version id, when versioned.
    pub version_id: Option<String>,
    /// Its size in bytes.
    pub size: u64,
    /// Its ETag as the store gives it (S3: in quotes), where it has one.
    pub etag: Option<String>,
}

/// Chunks of an object being read.
#[async_trait]
pub trait ChunkStream: Send {
    /// The next chunk; `None` at the end.
    async fn next(&mut self) -> Result<Option<Vec<u8>>, StoreError>;
    /// When the object was written ([`written`]), where the store says.
    fn written(&self) -> Option<String> {
        None
    }
    /// Its user metadata (`x-amz-meta-*`, names without the prefix), where the store has any.
    fn metadata(&self) -> std::collections::BTreeMap<String, String> {
        Default::default()
    }
}

/// A time of writing as sources carry it: RFC 3339 UTC to the second (S3's `LastModified`
/// precision), `2026-02-11T05:00:01Z`.
pub fn written(t: std::time::SystemTime) -> String {
    at_second(aws_sdk_s3::primitives::DateTime::from(t).secs())
}

/// RFC 3339 UTC of a time in seconds since the epoch.
fn at_second(secs: i64) -> String {
    aws_sdk_s3::primitives::DateTime::from_secs(secs)
        .fmt(aws_sdk_s3::primitives::DateTimeFormat::DateTime)
        .unwrap_or_default()
}

/// An object read whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadObject {
    /// Its bytes.
    pub bytes: Vec<u8>,
    /// The version id S3 returned with it.
    pub version_id: Option<String>,
    /// When it was written ([`written`]).
    pub written: Option<String>,
    /// Its user metadata (`x-amz-meta-*`, names without the prefix).
    pub metadata: std::collections::BTreeMap<String, String>,
}

/// An object being written in parts.
#[async_trait]
pub trait ObjectWriter: Send {
    /// Append bytes.
    async fn write(&mut self, bytes: &[u8]) -> Result<(), StoreError>;
    /// Complete the object; until then readers see the previous one (or none).
    async fn finish(self: Box<Self>) -> Result<(), StoreError>;
}

/// A bucket (or a folder standing for one).
#[async_trait]
pub trait ObjectStore: Send + Sync {
    /// `s3://bucket` or the folder, for messages and evidence.
    fn url(&self, key: &str) -> String;
    /// Read an object in chunks.
    async fn open(
        &self,
        key: &str,
        version: Option<&str>,
    ) -> Result<Box<dyn ChunkStream>, StoreError>;
    /// Read a whole (small) object; `None` when it does not exist.
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Write a whole (small) object.
    async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<(), StoreError>;
    /// Write an object in parts.
    async fn create(&self, key: &str) -> Result<Box<dyn ObjectWriter>, StoreError>;
    /// Delete an object (no error when it is already gone).
    async fn delete(&self, key: &str) -> Result<(), StoreError>;
    /// Every object under a prefix, in key order (newest version only).
    async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, StoreError>;
}

/// Read a whole object through its chunks.
pub async fn read_all(
    store: &dyn ObjectStore,
    key: &str,
    version: Option<&str>,
) -> Result<Vec<u8>, StoreError> {
    let mut s = store.open(key, version).await?;
    let mut out = Vec::new();
    while let Some(c) = s.next().await? {
        out.extend_from_slice(&c);
    }
    Ok(out)
}

// ---- S3 --------------------------------------------------------------------------------------

/// One S3 bucket through the AWS SDK.
#[derive(Clone)]
pub struct S3Store {
    client: aws_sdk_s3::Client,
    bucket: String,
}

impl S3Store {
    /// Read a whole object, with the version id and the time of writing S3 returned with it.
    pub async fn read_versioned(
        &self,
        key: &str,
        version: Option<&str>,
    ) -> Result<ReadObject, StoreError> {
        self.read_at_most(key, version, u64::MAX)
            .await?
            .map_err(|size| StoreError::Transient(format!("{}: {size} bytes", self.url(key))))
    }

    /// [`S3Store::read_versioned`], unless the object is larger than `limit` bytes: then its
    /// size (or `limit + 1` when S3 did not say it), without reading more than that.
    pub async fn read_at_most(
        &self,
        key: &str,
        version: Option<&str>,
        limit: u64,
    ) -> Result<Result<ReadObject, u64>, StoreError> {
        let out = self.get_object(key, version).await?;
        if let Some(size) = out.content_length().and_then(|l| u64::try_from(l).ok()) {
            if size > limit {
                return Ok(Err(size));
            }
        }
        let version_id = out.version_id().filter(|v| *v != "null").map(String::from);
        let metadata = out
            .metadata()
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default();
        let mut chunks = S3Chunks::of(out, self.url(key));
        let mut bytes = Vec::new();
        while let Some(c) = chunks.next().await? {
            bytes.extend_from_slice(&c);
            if bytes.len() as u64 > limit {
                return Ok(Err(limit.saturating_add(1)));
            }
        }
        Ok(Ok(ReadObject {
            bytes,
            version_id,
            written: chunks.written,
            metadata,
        }))
    }

    async fn get_object(
        &self,
        key: &str,
        version: Option<&str>,
    ) -> Result<aws_sdk_s3::operation::get_object::GetObjectOutput, StoreError> {
        self.client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .set_version_id(version.map(String::from))
            .send()
            .await
            .map_err(|e| classify(self.url(key), e))
    }

    /// Every version of every object under `prefix`, by key (delete markers left out): what
    /// `ListObjectVersions` says, which needs `s3:ListBucketVersions`. Each key's versions come
    /// newest first; an unversioned bucket's objects come once each, without a version id.
    pub async fn list_versions(&self, prefix: &str) -> Result<Vec<ObjectInfo>, StoreError> {
        let mut out = Vec::new();
        let (mut key_marker, mut version_marker): (Option<String>, Option<String>) = (None, None);
        loop {
            let page = self
                .client
                .list_object_versions()
                .bucket(&self.bucket)
                .prefix(prefix)
                .set_key_marker(key_marker.take())
                .set_version_id_marker(version_marker.take())
                .send()
                .await
                .map_err(|e| classify(self.url(prefix), e))?;
            for v in page.versions() {
                if let Some(k) = v.key() {
                    out.push(ObjectInfo {
                        key: k.to_string(),
                        version_id: v.version_id().filter(|v| *v != "null").map(String::from),
                        size: v.size().unwrap_or(0).max(0) as u64,
                        etag: v.e_tag().map(String::from),
                    });
                }
            }
            if page.is_truncated() != Some(true) {
                break;
            }
            key_marker = page.next_key_marker().map(String::from);
            version_marker = page.next_version_id_marker().map(String::from);
            if key_marker.is_none() {
                break;
            }
        }
        // Stable: a key's versions keep S3's order (newest first).
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    /// A bucket reached with `client`.
    pub fn new(client: aws_sdk_s3::Client, bucket: &str) -> Self {
        S3Store {
            client,
            bucket: bucket.to_string(),
        }
    }
}

/// An S3 client from the standard environment (`AWS_ENDPOINT_URL`, `AWS_REGION`, profiles),
/// with path-style addressing when an endpoint is given (local S3 servers).
pub async fn s3_client() -> aws_sdk_s3::Client {
    let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let path_style = std::env::var_os("AWS_ENDPOINT_URL").is_some()
        || std::env::var_os("AWS_ENDPOINT_URL_S3").is_some();
    let s3 = aws_sdk_s3::config::Builder::from(&config)
        .force_path_style(path_style)
        .request_checksum_calculation(aws_sdk_s3::config::RequestChecksumCalculation::WhenRequired)
        .response_checksum_validation(aws_sdk_s3::config::ResponseChecksumValidation::WhenRequired)
        .build();
    aws_sdk_s3::Client::from_conf(s3)
}

fn classify<
    E: std::error::Error + Send + Sync + 'static + aws_sdk_s3::error::ProvideErrorMetadata,
>(
    what: String,
    e: aws_sdk_s3::error::SdkError<E>,
) -> StoreError {
    use aws_sdk_s3::error::SdkError;
    if let SdkError::ServiceError(s) = &e {
        let code = s.err().code().unwrap_or("");
        if matches!(code, "NoSuchKey" | "NoSuchVersion" | "NotFound")
            || s.raw().status().as_u16() == 404
        {
            return StoreError::NotFound(what);
        }
        let msg = s.err().message().unwrap_or("");
        if code.is_empty() && msg.is_empty() {
            return StoreError::Transient(format!("{what}: {}", crate::one_line(&e)));
        }
        return StoreError::Transient(format!(
            "{what}: {code} {msg} (HTTP {})",
            s.raw().status().as_u16()
        ));
    }
    StoreError::Transient(format!("{what}: {}", crate::one_line(&e)))
}

struct S3Chunks {
    body: ByteStream,
    url: String,
    written: Option<String>,
    metadata: std::collections::BTreeMap<String, String>,
}

impl S3Chunks {
    fn of(out: aws_sdk_s3::operation::get_object::GetObjectOutput, url: String) -> S3Chunks {
        let written = out.last_modified().map(|t| at_second(t.secs()));
        let metadata = out
            .metadata()
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default();
        S3Chunks {
            body: out.body,
            url,
            written,
            metadata,
        }
    }
}

#[async_trait]
impl ChunkStream for S3Chunks {
    async fn next(&mut self) -> Result<Option<Vec<u8>>, StoreError> {
        match self.body.try_next().await {
            Ok(Some(b)) => Ok(Some(b.to_vec())),
            Ok(None) => Ok(None),
            Err(e) => Err(StoreError::Transient(format!(
                "{}: reading the body: {}",
                self.url,
                crate::one_line(&e)
            ))),
        }
    }

    fn written(&self) -> Option<String> {
        self.written.clone()
    }

    fn metadata(&self) -> std::collections::BTreeMap<String, String> {
        self.metadata.clone()
    }
}

struct S3Writer {
    store: S3Store,
    key: String,
    upload_id: Option<String>,
    parts: Vec<aws_sdk_s3::types::CompletedPart>,
    buf: Vec<u8>,
}

impl S3Writer {
    async fn flush_part(&mut self) -> Result<(), StoreError> {
        let url = self.store.url(&self.key);
        if self.upload_id.is_none() {
            let out = self
                .store
                .client
                .create_multipart_upload()
                .bucket(&self.store.bucket)
                .key(&self.key)
                .content_type("application/x-ndjson")
                .send()
                .await
                .map_err(|e| classify(url.clone(), e))?;
            self.upload_id = out.upload_id().map(String::from);
        }
        let n = self.parts.len() as i32 + 1;
        let body = std::mem::take(&mut self.buf);
        let out = self
            .store
            .client
            .upload_part()
            .bucket(&self.store.bucket)
            .key(&self.key)
            .upload_id(self.upload_id.clone().unwrap_or_default())
            .part_number(n)
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|e| classify(url, e))?;
        self.parts.push(
            aws_sdk_s3::types::CompletedPart::builder()
                .part_number(n)
                .set_e_tag(out.e_tag().map(String::from))
                .build(),
        );
        Ok(())
    }
}

#[async_trait]
impl ObjectWriter for S3Writer {
    async fn write(&mut self, bytes: &[u8]) -> Result<(), StoreError> {
        self.buf.extend_from_slice(bytes);
        if self.buf.len() >= PART_BYTES {
            self.flush_part().await?;
        }
        Ok(())
    }

    async fn finish(mut self: Box<Self>) -> Result<(), StoreError> {
        if self.upload_id.is_none() {
            // Small: one PUT.
            let body = std::mem::take(&mut self.buf);
            return self.store.put(&self.key, body).await;
        }
        if !self.buf.is_empty() {
            self.flush_part().await?;
        }
        let url = self.store.url(&self.key);
        self.store
            .client
            .complete_multipart_upload()
            .bucket(&self.store.bucket)
            .key(&self.key)
            .upload_id(self.upload_id.clone().unwrap_or_default())
            .multipart_upload(
                aws_sdk_s3::types::CompletedMultipartUpload::builder()
                    .set_parts(Some(std::mem::take(&mut self.parts)))
                    .build(),
            )
            .send()
            .await
            .map_err(|e| classify(url, e))?;
        Ok(())
    }
}

#[async_trait]
impl ObjectStore for S3Store {
    fn url(&self, key: &str) -> String {
        format!("s3://{}/{}", self.bucket, key)
    }

    async fn open(
        &self,
        key: &str,
        version: Option<&str>,
    ) -> Result<Box<dyn ChunkStream>, StoreError> {
        let out = self.get_object(key, version).await?;
        Ok(Box::new(S3Chunks::of(out, self.url(key))))
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        match read_all(self, key, None).await {
            Ok(b) => Ok(Some(b)),
            Err(StoreError::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<(), StoreError> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .body(ByteStream::from(bytes))
            .send()
            .await
            .map_err(|e| classify(self.url(key), e))?;
        Ok(())
    }

    async fn create(&self, key: &str) -> Result<Box<dyn ObjectWriter>, StoreError> {
        Ok(Box::new(S3Writer {
            store: self.clone(),
            key: key.to_string(),
            upload_id: None,
            parts: Vec::new(),
            buf: Vec::new(),
        }))
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| classify(self.url(key), e))?;
        Ok(())
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, StoreError> {
        let mut out = Vec::new();
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(prefix)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| classify(self.url(prefix), e))?;
            for o in page.contents() {
                if let Some(k) = o.key() {
                    out.push(ObjectInfo {
                        key: k.to_string(),
                        version_id: None,
                        size: o.size().unwrap_or(0).max(0) as u64,
                        etag: o.e_tag().map(String::from),
                    });
                }
            }
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }
}

// ---- a local folder ------------------------------------------------------------------------

/// A folder standing for a bucket: keys are relative paths.
#[derive(Debug, Clone)]
pub struct DirStore {
    root: PathBuf,
}

impl DirStore {
    /// The folder `root` (created when written to).
    pub fn new(root: &Path) -> Self {
        DirStore {
            root: root.to_path_buf(),
        }
    }

    fn path(&self, key: &str) -> Result<PathBuf, StoreError> {
        if key.split('/').any(|p| p == ".." || p == ".") || key.starts_with('/') {
            return Err(StoreError::NotFound(format!("{key}: not a plain key")));
        }
        Ok(self.root.join(key))
    }
}

fn io(what: &Path, e: std::io::Error) -> StoreError {
    if e.kind() == std::io::ErrorKind::NotFound {
        StoreError::NotFound(what.display().to_string())
    } else {
        StoreError::Transient(format!("{}: {e}", what.display()))
    }
}

struct FileChunks(tokio::fs::File, PathBuf, Option<String>);

#[async_trait]
impl ChunkStream for FileChunks {
    async fn next(&mut self) -> Result<Option<Vec<u8>>, StoreError> {
        use tokio::io::AsyncReadExt;
        let mut buf = vec![0u8; 1 << 20];
        let n = self.0.read(&mut buf).await.map_err(|e| io(&self.1, e))?;
        if n == 0 {
            return Ok(None);
        }
        buf.truncate(n);
        Ok(Some(buf))
    }

    fn written(&self) -> Option<String> {
        self.2.clone()
    }
}

struct FileWriter {
    tmp: PathBuf,
    dest: PathBuf,
    file: tokio::fs::File,
}

#[async_trait]
impl ObjectWriter for FileWriter {
    async fn write(&mut self, bytes: &[u8]) -> Result<(), StoreError> {
        use tokio::io::AsyncWriteExt;
        self.file
            .write_all(bytes)
            .await
            .map_err(|e| io(&self.tmp, e))
    }

    async fn finish(mut self: Box<Self>) -> Result<(), StoreError> {
        use tokio::io::AsyncWriteExt;
        self.file.flush().await.map_err(|e| io(&self.tmp, e))?;
        self.file.sync_all().await.map_err(|e| io(&self.tmp, e))?;
        tokio::fs::rename(&self.tmp, &self.dest)
            .await
            .map_err(|e| io(&self.dest, e))
    }
}

#[async_trait]
impl ObjectStore for DirStore {
    fn url(&self, key: &str) -> String {
        self.root.join(key).display().to_string()
    }

    async fn open(
        &self,
        key: &str,
        _version: Option<&str>,
    ) -> Result<Box<dyn ChunkStream>, StoreError> {
        let p = self.path(key)?;
        let f = tokio::fs::File::open(&p).await.map_err(|e| io(&p, e))?;
        let at = f.metadata().await.ok().and_then(|m| m.modified().ok());
        Ok(Box::new(FileChunks(f, p, at.map(written))))
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let p = self.path(key)?;
        match tokio::fs::read(&p).await {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io(&p, e)),
        }
    }

    async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<(), StoreError> {
        let mut w = self.create(key).await?;
        w.write(&bytes).await?;
        w.finish().await
    }

    async fn create(&self, key: &str) -> Result<Box<dyn ObjectWriter>, StoreError> {
        let dest = self.path(key)?;
        if let Some(parent) = dest.parent() {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(|e| io(parent, e))?;
        }
        let tmp = dest.with_extension(format!("partial-{}", std::process::id()));
        let file = tokio::fs::File::create(&tmp)
            .await
            .map_err(|e| io(&tmp, e))?;
        Ok(Box::new(FileWriter { tmp, dest, file }))
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        let p = self.path(key)?;
        match tokio::fs::remove_file(&p).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io(&p, e)),
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, StoreError> {
        let mut out = Vec::new();
        let mut stack = vec![self.root.clone()];
        while let Some(dir) = stack.pop() {
            let mut rd = match tokio::fs::read_dir(&dir).await {
                Ok(rd) => rd,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io(&dir, e)),
            };
            while let Some(e) = rd.next_entry().await.map_err(|e| io(&dir, e))? {
                let p = e.path();
                let ft = e.file_type().await.map_err(|err| io(&p, err))?;
                if ft.is_dir() {
                    stack.push(p);
                } else if ft.is_file() {
                    let key = p
                        .strip_prefix(&self.root)
                        .map(|k| k.to_string_lossy().replace('\\', "/"))
                        .unwrap_or_default();
                    if key.starts_with(prefix) && !key.contains(".partial-") {
                        let size = e.metadata().await.map(|m| m.len()).unwrap_or(0);
                        out.push(ObjectInfo {
                            key,
                            version_id: None,
                            size,
                            etag: None,
                        });
                    }
                }
            }
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }
}
