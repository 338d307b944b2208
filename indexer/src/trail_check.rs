//! CloudTrail log file validation, as AWS documents it ("CloudTrail digest file structure",
//! "Custom implementations of CloudTrail log file integrity validation") and as the AWS CLI's
//! `cloudtrail validate-logs` does it.
//!
//! About hourly, CloudTrail writes a digest file that lists the log files it delivered (S3
//! bucket and key, SHA-256 of the uncompressed content) and names the digest before it (its key,
//! hash and signature). The digest is signed (SHA256withRSA) with the region's private key;
//! the signature, in hex, is in the digest object's S3 metadata (`signature`), over
//!
//! ```text
//! digestEndTime \n digestS3Bucket/digestS3Object \n hex SHA-256 of the uncompressed digest \n previousDigestSignature (or "null")
//! ```
//!
//! and the public keys are what `aws cloudtrail list-public-keys` prints.
//!
//! What this checks, given digests and trail files as read: each digest's signature and that it
//! is where it says it was written; the chain (each digest's record of the one before against
//! that digest); each listed log file's SHA-256; and that no trail file lies inside a digest's
//! period without being listed. A local copy has no S3 metadata: its signature cannot be
//! checked, and that is said; its hashes and chain still are.

use crate::kinds::ProblemKind;
use crate::model::sha256_hex;
use rsa::pkcs1::DecodeRsaPublicKey;
use rsa::signature::Verifier;
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};

/// The signing algorithm CloudTrail uses.
pub const ALGORITHM: &str = "SHA256withRSA";

/// A region's public keys, by fingerprint.
#[derive(Debug, Default, Clone)]
pub struct PublicKeys {
    keys: BTreeMap<String, rsa::RsaPublicKey>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PublicKeyList {
    public_key_list: Vec<PublicKeyEntry>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PublicKeyEntry {
    value: String,
    fingerprint: String,
}

impl PublicKeys {
    /// What `aws cloudtrail list-public-keys` prints: `{"PublicKeyList": [{"Value": <base64 of
    /// the DER PKCS #1 key>, "Fingerprint": …, "ValidityStartTime": …, "ValidityEndTime": …}]}`.
    /// Several such documents may be concatenated (one per region asked).
    pub fn parse(bytes: &[u8]) -> Result<PublicKeys, String> {
        use base64::Engine;
        let mut out = PublicKeys::default();
        for doc in serde_json::Deserializer::from_slice(bytes).into_iter::<PublicKeyList>() {
            let doc = doc.map_err(|e| format!("not `list-public-keys` output: {e}"))?;
            for k in doc.public_key_list {
                let der = base64::engine::general_purpose::STANDARD
                    .decode(k.value.trim())
                    .map_err(|e| format!("key {}: Value is not base64: {e}", k.fingerprint))?;
                let key = rsa::RsaPublicKey::from_pkcs1_der(&der).map_err(|e| {
                    format!("key {}: not a PKCS #1 RSA public key: {e}", k.fingerprint)
                })?;
                out.keys.insert(k.fingerprint.to_ascii_lowercase(), key);
            }
        }
        if out.keys.is_empty() {
            return Err("no public key in it".into());
        }
        Ok(out)
    }

    /// Keys as the CloudTrail API gives them: (fingerprint, DER of the PKCS #1 key) pairs.
    pub fn from_der(pairs: &[(String, Vec<u8>)]) -> Result<PublicKeys, String> {
        let mut out = PublicKeys::default();
        for (fingerprint, der) in pairs {
            let key = rsa::RsaPublicKey::from_pkcs1_der(der)
                .map_err(|e| format!("key {fingerprint}: not a PKCS #1 RSA public key: {e}"))?;
            out.keys.insert(fingerprint.to_ascii_lowercase(), key);
        }
        Ok(out)
    }

    /// Whether the key of this fingerprint is among them.
    pub fn has(&self, fingerprint: &str) -> bool {
        self.keys.contains_key(&fingerprint.to_ascii_lowercase())
    }

    /// Whether these keys, asked for as valid from `from` on, answer for `d`: its key is among
    /// them, or it is no older than what was asked (asking again would give nothing more).
    pub fn answer_for(&self, from: &str, d: &DigestRead) -> bool {
        self.has(&d.doc.digest_public_key_fingerprint) || d.doc.digest_start_time.as_str() >= from
    }

    /// How many keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// No keys.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// A digest file's content (the fields validation reads).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DigestDoc {
    /// The account.
    pub aws_account_id: String,
    /// Start of the period it covers.
    pub digest_start_time: String,
    /// End of it.
    pub digest_end_time: String,
    /// Where CloudTrail wrote it: bucket.
    pub digest_s3_bucket: String,
    /// And key.
    pub digest_s3_object: String,
    /// The fingerprint of the key that signed it.
    pub digest_public_key_fingerprint: String,
    /// `SHA256withRSA`.
    #[serde(default)]
    pub digest_signature_algorithm: Option<String>,
    /// The digest before it: bucket (absent for the first of a chain).
    #[serde(default)]
    pub previous_digest_s3_bucket: Option<String>,
    /// Its key.
    #[serde(default)]
    pub previous_digest_s3_object: Option<String>,
    /// The SHA-256 of its uncompressed content.
    #[serde(default)]
    pub previous_digest_hash_value: Option<String>,
    /// Its signature (`null` for the first).
    #[serde(default)]
    pub previous_digest_signature: Option<String>,
    /// The log files delivered in the period.
    #[serde(default)]
    pub log_files: Vec<LogFile>,
}

/// One log file a digest lists.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogFile {
    /// Bucket.
    pub s3_bucket: String,
    /// Key.
    pub s3_object: String,
    /// SHA-256 of its uncompressed content, hex.
    pub hash_value: String,
}

impl LogFile {
    /// `s3://bucket/key`.
    pub fn url(&self) -> String {
        format!("s3://{}/{}", self.s3_bucket, self.s3_object)
    }
}

/// Does this JSON look like a digest file?
pub fn is_digest(value: &serde_json::Value) -> bool {
    value.get("digestStartTime").is_some() || value.get("digestSignatureAlgorithm").is_some()
}

/// A digest file as read: where from, its uncompressed content, and its signature metadata.
#[derive(Debug, Clone)]
pub struct DigestRead {
    /// The source name (`s3://bucket/key` or a path).
    pub name: String,
    /// Its content.
    pub doc: DigestDoc,
    /// SHA-256 of its uncompressed content.
    pub sha256: String,
    /// The `signature` metadata (hex), when read with it.
    pub signature: Option<String>,
    /// The `signature-algorithm` metadata.
    pub signature_algorithm: Option<String>,
}

impl DigestRead {
    /// Read a digest object: `inflated`, its uncompressed bytes; `metadata`, its S3 user
    /// metadata (empty for a local copy).
    pub fn read(
        name: &str,
        inflated: &[u8],
        metadata: &BTreeMap<String, String>,
    ) -> Result<DigestRead, String> {
        let doc: DigestDoc = serde_json::from_slice(inflated)
            .map_err(|e| format!("not a CloudTrail digest file: {e}"))?;
        Ok(DigestRead {
            name: name.to_string(),
            doc,
            sha256: sha256_hex(inflated),
            signature: metadata.get("signature").cloned(),
            signature_algorithm: metadata.get("signature-algorithm").cloned(),
        })
    }

    /// Where CloudTrail wrote it, `s3://bucket/key`.
    pub fn url(&self) -> String {
        format!(
            "s3://{}/{}",
            self.doc.digest_s3_bucket, self.doc.digest_s3_object
        )
    }

    /// The string CloudTrail signs.
    pub fn string_to_sign(&self) -> String {
        format!(
            "{}\n{}/{}\n{}\n{}",
            self.doc.digest_end_time,
            self.doc.digest_s3_bucket,
            self.doc.digest_s3_object,
            self.sha256,
            self.doc
                .previous_digest_signature
                .as_deref()
                .unwrap_or("null")
        )
    }

    /// The region its key path names (`…/CloudTrail-Digest/<region>/…`).
    pub fn region(&self) -> Option<&str> {
        region_after(&self.doc.digest_s3_object, "/CloudTrail-Digest/")
    }
}

fn region_after<'a>(key: &'a str, marker: &str) -> Option<&'a str> {
    let rest = &key[key.find(marker)? + marker.len()..];
    rest.split('/').next()
}

/// What a digest's signature check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signature {
    /// Signed by the region's key, where CloudTrail wrote it.
    Valid,
    /// Not what CloudTrail signed, or not where it was written: why.
    Invalid(String),
    /// Could not be checked: why.
    Unchecked(String),
}

/// What is said of a digest when no key can be had.
const NO_KEYS: &str =
    "no CloudTrail public keys given (--cloudtrail-keys): its signature was not checked";

/// What can be said of a digest's signature before any key: moved from where CloudTrail wrote
/// it, without its signature, signed with another algorithm.
fn before_keys(d: &DigestRead) -> Option<Signature> {
    // A digest read from S3 must be where it says CloudTrail wrote it.
    if d.name.starts_with("s3://") && d.name != d.url() {
        return Some(Signature::Invalid(format!(
            "it says it was written to {}: moved from where CloudTrail wrote it",
            d.url()
        )));
    }
    if d.signature.is_none() {
        return Some(Signature::Unchecked(
            "no `signature` metadata (a copy without its S3 metadata): its signature was not checked".into(),
        ));
    }
    if let Some(a) = d
        .signature_algorithm
        .as_deref()
        .or(d.doc.digest_signature_algorithm.as_deref())
    {
        if a != ALGORITHM {
            return Some(Signature::Invalid(format!(
                "signed with {a}, not {ALGORITHM}"
            )));
        }
    }
    None
}

/// The signature of `d` against `keys` (`whose`: which keys, for the message).
fn with_keys(d: &DigestRead, keys: &PublicKeys, whose: &str) -> Signature {
    let fingerprint = d.doc.digest_public_key_fingerprint.to_ascii_lowercase();
    let Some(key) = keys.keys.get(&fingerprint) else {
        return Signature::Invalid(format!(
            "signed with key {fingerprint}, which is not among the public keys {whose}"
        ));
    };
    let Some(Ok(bytes)) = d.signature.as_deref().map(|s| hex::decode(s.trim())) else {
        return Signature::Invalid("its `signature` metadata is not hex".into());
    };
    let Ok(signature) = rsa::pkcs1v15::Signature::try_from(bytes.as_slice()) else {
        return Signature::Invalid("its `signature` metadata is not an RSA signature".into());
    };
    let verifier = rsa::pkcs1v15::VerifyingKey::<rsa::sha2::Sha256>::new(key.clone());
    match verifier.verify(d.string_to_sign().as_bytes(), &signature) {
        Ok(()) => Signature::Valid,
        Err(_) => Signature::Invalid("the signature does not match its content".into()),
    }
}

/// Check a digest's signature with `keys`.
pub fn check_signature(d: &DigestRead, keys: Option<&PublicKeys>) -> Signature {
    match keys {
        Some(keys) => check_with(d, keys, "given"),
        None => before_keys(d).unwrap_or_else(|| Signature::Unchecked(NO_KEYS.into())),
    }
}

/// Check a digest's signature with `keys`, said to be `whose` ("the CloudTrail API lists for
/// …") when the digest's key is not among them.
pub fn check_with(d: &DigestRead, keys: &PublicKeys, whose: &str) -> Signature {
    before_keys(d).unwrap_or_else(|| with_keys(d, keys, whose))
}

/// Asks a region (first argument) for its public keys valid at some time from the second
/// argument (RFC 3339) until now.
pub type AskKeys = Box<dyn FnMut(&str, &str) -> Result<PublicKeys, String>>;

/// Where digests' public keys come from: a `list-public-keys` file given, or the CloudTrail API
/// asked once per region (again only for a digest older than what was asked and signed with a
/// key not found), or nowhere.
#[derive(Default)]
pub struct Keyring {
    given: Option<PublicKeys>,
    ask: Option<AskKeys>,
    /// Per region: (from when, the keys), or why they could not be had.
    asked: BTreeMap<String, Result<(String, PublicKeys), String>>,
}

impl Keyring {
    /// No keys: signatures are not checked, and that is said.
    pub fn none() -> Keyring {
        Keyring::default()
    }

    /// The keys of a `list-public-keys` file.
    pub fn given(keys: PublicKeys) -> Keyring {
        Keyring {
            given: Some(keys),
            ..Keyring::default()
        }
    }

    /// Keys asked of the CloudTrail API with `ask`, when a digest needs them.
    pub fn asking(ask: AskKeys) -> Keyring {
        Keyring {
            ask: Some(ask),
            ..Keyring::default()
        }
    }

    /// Whether signatures can be checked at all (keys given, or an API to ask).
    pub fn has_source(&self) -> bool {
        self.given.is_some() || self.ask.is_some()
    }

    /// Check a digest's signature, asking for its region's keys when needed.
    pub fn check(&mut self, d: &DigestRead) -> Signature {
        if let Some(said) = before_keys(d) {
            return said;
        }
        if let Some(keys) = &self.given {
            return with_keys(d, keys, "given (--cloudtrail-keys)");
        }
        let Some(ask) = &mut self.ask else {
            return Signature::Unchecked(NO_KEYS.into());
        };
        let Some(region) = d.region().map(str::to_string) else {
            return Signature::Unchecked(
                "its key names no region, whose public keys the CloudTrail API could be asked for: its signature was not checked".into(),
            );
        };
        let start = d.doc.digest_start_time.as_str();
        let again = match self.asked.get(&region) {
            None => true,
            Some(Ok((from, keys))) => !keys.answer_for(from, d),
            Some(Err(_)) => false,
        };
        if again {
            match ask(&region, start) {
                Ok(keys) => {
                    self.asked
                        .insert(region.clone(), Ok((start.to_string(), keys)));
                }
                Err(why) if !self.asked.contains_key(&region) => {
                    self.asked.insert(region.clone(), Err(why));
                }
                Err(why) => return Signature::Unchecked(unasked(&region, &why)),
            }
        }
        match &self.asked[&region] {
            Ok((from, keys)) => with_keys(
                d,
                keys,
                &format!("the CloudTrail API lists for {region} from {from}"),
            ),
            Err(why) => Signature::Unchecked(unasked(&region, why)),
        }
    }

    /// Why signatures went unchecked for want of keys, when they did.
    pub fn wanting(&self) -> Option<String> {
        if self.given.is_some() {
            return None;
        }
        if self.ask.is_none() {
            return Some("no --cloudtrail-keys".into());
        }
        let failed: Vec<String> = self
            .asked
            .iter()
            .filter_map(|(region, r)| r.as_ref().err().map(|why| format!("{region}: {why}")))
            .collect();
        (!failed.is_empty()).then(|| {
            format!(
                "no --cloudtrail-keys, and the CloudTrail API did not give the public keys ({})",
                failed.join("; ")
            )
        })
    }
}

fn unasked(region: &str, why: &str) -> String {
    format!(
        "no --cloudtrail-keys, and the CloudTrail API did not give the public keys of {region} ({why}): its signature was not checked"
    )
}

/// A CloudTrail log file as read: its name and the SHA-256 of its uncompressed content.
pub use crate::ingest::TrailFile as TrailRead;

/// What validation found.
#[derive(Debug, Default)]
pub struct Findings {
    /// Digests whose signature was checked and holds.
    pub valid_digests: usize,
    /// Trail files listed, with the same hash, in a digest whose signature holds.
    pub validated: BTreeSet<String>,
    /// (source, kind, what is wrong): a changed or unlisted trail file, a digest that fails.
    pub problems: Vec<(String, ProblemKind, String)>,
    /// (source, what could not be checked).
    pub unchecked: Vec<(String, String)>,
    /// Log files a digest read from S3 lists that were not among the trail files read:
    /// (`s3://` URL, listed hash, the digest).
    pub not_read: Vec<(String, String, String)>,
}

/// The delivery time and (account, region) a CloudTrail log file's name carries:
/// `<account>_CloudTrail_<region>_YYYYMMDDTHHmmZ_<unique>.json[.gz]`.
fn log_file_time(name: &str) -> Option<(String, String, String)> {
    let base = name.rsplit('/').next()?;
    let mut parts = base.split('_');
    let account = parts.next()?;
    if parts.next()? != "CloudTrail" {
        return None;
    }
    let region = parts.next()?;
    let t = parts.next()?;
    if t.len() != 14 || !t.ends_with('Z') || t.as_bytes()[8] != b'T' {
        return None;
    }
    let rfc = format!(
        "{}-{}-{}T{}:{}:00Z",
        &t[0..4],
        &t[4..6],
        &t[6..8],
        &t[9..11],
        &t[11..13]
    );
    Some((account.to_string(), region.to_string(), rfc))
}

/// Does the trail file `name` stand for the listed `s3://` URL? An S3 source is the URL itself;
/// a local copy is a path ending with the key.
fn same_file(name: &str, listed: &LogFile) -> bool {
    if name.starts_with("s3://") {
        return name == listed.url();
    }
    let key = listed.s3_object.trim_start_matches('/');
    name.ends_with(&format!("/{key}")) || name == key
}

/// Validate the `trails` read against the `digests` read.
pub fn validate(digests: &[DigestRead], trails: &[TrailRead], keys: &mut Keyring) -> Findings {
    let mut out = Findings::default();
    let mut vouching: Vec<(&DigestRead, bool)> = Vec::new();
    let mut refused: Vec<&DigestRead> = Vec::new();
    for d in digests {
        match keys.check(d) {
            Signature::Valid => {
                out.valid_digests += 1;
                vouching.push((d, true));
            }
            Signature::Invalid(why) => {
                refused.push(d);
                out.problems.push((
                    d.name.clone(),
                    ProblemKind::Digest,
                    format!("CloudTrail digest refused: {why}"),
                ))
            }
            Signature::Unchecked(why) => {
                out.unchecked.push((d.name.clone(), why));
                vouching.push((d, false));
            }
        }
    }
    // The chain: each digest's record of the one before, against that digest as read.
    let by_url: BTreeMap<String, &DigestRead> = digests.iter().map(|d| (d.url(), d)).collect();
    for d in digests {
        let (Some(bucket), Some(object)) = (
            &d.doc.previous_digest_s3_bucket,
            &d.doc.previous_digest_s3_object,
        ) else {
            continue;
        };
        let url = format!("s3://{bucket}/{object}");
        let Some(prev) = by_url.get(&url) else {
            out.unchecked.push((
                d.name.clone(),
                format!(
                    "the digest before it ({url}) was not read: the chain is checked from here on"
                ),
            ));
            continue;
        };
        if d.doc.previous_digest_hash_value.as_deref() != Some(prev.sha256.as_str()) {
            out.problems.push((
                prev.name.clone(),
                ProblemKind::Digest,
                format!(
                    "CloudTrail digest changed: the digest after it ({}) records its SHA-256 as {}, it is {}",
                    d.name,
                    d.doc.previous_digest_hash_value.as_deref().unwrap_or("nothing"),
                    prev.sha256
                ),
            ));
        } else if let (Some(recorded), Some(actual)) =
            (&d.doc.previous_digest_signature, &prev.signature)
        {
            if !recorded.eq_ignore_ascii_case(actual) {
                out.problems.push((
                    prev.name.clone(),
                    ProblemKind::Digest,
                    format!(
                        "CloudTrail digest chain broken: the digest after it ({}) records another signature for it",
                        d.name
                    ),
                ));
            }
        }
    }
    // Each listed log file against the trail file read.
    let mut listed_somewhere = vec![false; trails.len()];
    for (d, valid) in &vouching {
        for f in &d.doc.log_files {
            let matches: Vec<usize> = trails
                .iter()
                .enumerate()
                .filter(|(_, t)| same_file(&t.name, f))
                .map(|(i, _)| i)
                .collect();
            if matches.is_empty() && d.name.starts_with("s3://") {
                out.not_read
                    .push((f.url(), f.hash_value.clone(), d.name.clone()));
            }
            for i in matches {
                listed_somewhere[i] = true;
                let t = &trails[i];
                if t.sha256.eq_ignore_ascii_case(&f.hash_value) {
                    if *valid {
                        out.validated.insert(t.name.clone());
                    }
                } else {
                    out.problems.push((
                        t.name.clone(),
                        ProblemKind::Changed,
                        format!(
                            "CloudTrail file changed: its SHA-256 is {}, the digest {} lists {}",
                            t.sha256, d.name, f.hash_value
                        ),
                    ));
                }
            }
        }
    }
    // A trail file no digest lists, delivered inside a digest's period.
    for (t, listed) in trails.iter().zip(&listed_somewhere) {
        if *listed {
            continue;
        }
        if let Some(d) = refused
            .iter()
            .find(|d| d.doc.log_files.iter().any(|f| same_file(&t.name, f)))
        {
            out.unchecked.push((
                t.name.clone(),
                format!(
                    "listed only by the refused digest {}: not validated",
                    d.name
                ),
            ));
            continue;
        }
        let Some((account, region, time)) = log_file_time(&t.name) else {
            out.unchecked.push((
                t.name.clone(),
                "not named as CloudTrail names its log files, and no digest lists it: not validated".into(),
            ));
            continue;
        };
        let covering = vouching.iter().find(|(d, _)| {
            d.doc.aws_account_id == account
                && d.region() == Some(region.as_str())
                && d.doc.digest_start_time.as_str() <= time.as_str()
                && time.as_str() < d.doc.digest_end_time.as_str()
        });
        match covering {
            Some((d, _)) => out.problems.push((
                t.name.clone(),
                ProblemKind::Unlisted,
                format!(
                    "CloudTrail file not listed: delivered at {time}, inside the period of the digest {} ({} to {}), which does not list it",
                    d.name, d.doc.digest_start_time, d.doc.digest_end_time
                ),
            )),
            None => out.unchecked.push((
                t.name.clone(),
                "no digest read covers its delivery time: not validated".into(),
            )),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsa::pkcs1::{DecodeRsaPrivateKey, EncodeRsaPublicKey};
    use rsa::signature::{SignatureEncoding, Signer};

    const KEY: &str = include_str!("../../tests/fixtures/cloudtrail-digest/test-signing-key.pem");
    const BUCKET: &str = "trail";

    fn keys() -> (rsa::pkcs1v15::SigningKey<rsa::sha2::Sha256>, PublicKeys) {
        use base64::Engine;
        let private = rsa::RsaPrivateKey::from_pkcs1_pem(KEY).unwrap();
        let der = private.to_public_key().to_pkcs1_der().unwrap();
        let list = serde_json::json!({"PublicKeyList": [{
            "Value": base64::engine::general_purpose::STANDARD.encode(der.as_bytes()),
            "Fingerprint": "ABCDEF"
        }]});
        let keys = PublicKeys::parse(list.to_string().as_bytes()).unwrap();
        (rsa::pkcs1v15::SigningKey::new(private), keys)
    }

    const LOG: &str =
        "AWSLogs/1/CloudTrail/eu-west-1/2026/02/11/1_CloudTrail_eu-west-1_20260211T0510Z_a.json.gz";

    /// A digest of 05:00 to 06:00 listing LOG with `hash`, after `prev` (name, sha, signature).
    fn digest(hash: &str, prev: Option<(&str, &str, &str)>) -> serde_json::Value {
        let mut d = serde_json::json!({
            "awsAccountId": "1",
            "digestStartTime": "2026-02-11T05:00:00Z",
            "digestEndTime": "2026-02-11T06:00:00Z",
            "digestS3Bucket": BUCKET,
            "digestS3Object": "AWSLogs/1/CloudTrail-Digest/eu-west-1/2026/02/11/1_CloudTrail-Digest_eu-west-1_t_eu-west-1_20260211T060000Z.json.gz",
            "digestPublicKeyFingerprint": "abcdef",
            "digestSignatureAlgorithm": "SHA256withRSA",
            "previousDigestSignature": null,
            "logFiles": [{"s3Bucket": BUCKET, "s3Object": LOG, "hashValue": hash, "hashAlgorithm": "SHA-256"}]
        });
        if let Some((object, sha, sig)) = prev {
            d["previousDigestS3Bucket"] = BUCKET.into();
            d["previousDigestS3Object"] = object.into();
            d["previousDigestHashValue"] = sha.into();
            d["previousDigestSignature"] = sig.into();
        }
        d
    }

    fn read(
        name: &str,
        doc: &serde_json::Value,
        sign: Option<&rsa::pkcs1v15::SigningKey<rsa::sha2::Sha256>>,
    ) -> DigestRead {
        let bytes = serde_json::to_vec(doc).unwrap();
        let mut d = DigestRead::read(name, &bytes, &BTreeMap::new()).unwrap();
        if let Some(k) = sign {
            d.signature = Some(crate::model::hex(
                &k.sign(d.string_to_sign().as_bytes()).to_bytes(),
            ));
        }
        d
    }

    #[test]
    fn signatures_hashes_and_the_listing_are_checked() {
        let (signer, keys) = keys();
        let content = b"{\"Records\":[]}";
        let hash = sha256_hex(content);
        let url = format!("s3://{BUCKET}/AWSLogs/1/CloudTrail-Digest/eu-west-1/2026/02/11/1_CloudTrail-Digest_eu-west-1_t_eu-west-1_20260211T060000Z.json.gz");
        let signed = read(&url, &digest(&hash, None), Some(&signer));
        assert_eq!(check_signature(&signed, Some(&keys)), Signature::Valid);
        let trail = TrailRead {
            name: format!("s3://{BUCKET}/{LOG}"),
            sha256: hash.clone(),
        };
        let f = validate(
            std::slice::from_ref(&signed),
            std::slice::from_ref(&trail),
            &mut Keyring::given(keys.clone()),
        );
        assert!(
            f.problems.is_empty() && f.validated.contains(&trail.name),
            "{f:?}"
        );
        // Content changed after signing: the signature no longer matches.
        let mut forged = signed.clone();
        forged.sha256 = sha256_hex(b"other");
        assert!(matches!(
            check_signature(&forged, Some(&keys)),
            Signature::Invalid(_)
        ));
        // Read from another place than it says: moved.
        let mut moved = signed.clone();
        moved.name = "s3://elsewhere/x.json.gz".to_string();
        assert!(
            matches!(check_signature(&moved, Some(&keys)), Signature::Invalid(w) if w.contains("moved"))
        );
        // A changed trail file is named against the digest.
        let changed = TrailRead {
            name: trail.name.clone(),
            sha256: sha256_hex(b"changed"),
        };
        let f = validate(
            std::slice::from_ref(&signed),
            &[changed],
            &mut Keyring::given(keys.clone()),
        );
        assert!(
            matches!(f.problems.as_slice(), [(n, ProblemKind::Changed, _)] if *n == trail.name),
            "{f:?}"
        );
        // Another file delivered inside the period, listed by no digest.
        let forged_file = TrailRead {
            name: format!("s3://{BUCKET}/AWSLogs/1/CloudTrail/eu-west-1/2026/02/11/1_CloudTrail_eu-west-1_20260211T0530Z_x.json.gz"),
            sha256: hash.clone(),
        };
        let f = validate(
            std::slice::from_ref(&signed),
            &[trail.clone(), forged_file.clone()],
            &mut Keyring::given(keys.clone()),
        );
        assert!(
            matches!(f.problems.as_slice(), [(n, ProblemKind::Unlisted, _)] if *n == forged_file.name),
            "{f:?}"
        );
    }

    #[test]
    fn a_local_copy_is_checked_as_far_as_its_content_allows() {
        let (signer, keys) = keys();
        let hash = sha256_hex(b"log");
        let first = read("copies/first.json", &digest(&hash, None), Some(&signer));
        // No metadata on a local copy: the signature is named as not checked.
        let mut local = first.clone();
        local.signature = None;
        assert!(matches!(
            check_signature(&local, Some(&keys)),
            Signature::Unchecked(_)
        ));
        // Its listed hashes are still checked, against a local path ending with the key.
        let trail = TrailRead {
            name: format!("/evidence/{LOG}"),
            sha256: sha256_hex(b"edited"),
        };
        let f = validate(
            std::slice::from_ref(&local),
            &[trail],
            &mut Keyring::given(keys.clone()),
        );
        assert!(
            matches!(f.problems.as_slice(), [(_, ProblemKind::Changed, _)]),
            "{f:?}"
        );
        assert_eq!(f.unchecked.len(), 1);
        // The chain: a second digest recording another hash for the first.
        let mut second_doc = digest(
            &hash,
            Some((
                &first.doc.digest_s3_object,
                &sha256_hex(b"not it"),
                first.signature.as_deref().unwrap(),
            )),
        );
        second_doc["digestS3Object"] =
            "AWSLogs/1/CloudTrail-Digest/eu-west-1/2026/02/11/second.json.gz".into();
        second_doc["digestStartTime"] = "2026-02-11T06:00:00Z".into();
        second_doc["digestEndTime"] = "2026-02-11T07:00:00Z".into();
        second_doc["logFiles"] = serde_json::json!([]);
        let second = read("copies/second.json", &second_doc, Some(&signer));
        let mut first_named = first.clone();
        first_named.doc.digest_s3_bucket = BUCKET.into();
        let f = validate(
            &[first_named, second],
            &[],
            &mut Keyring::given(keys.clone()),
        );
        assert!(
            f.problems.iter().any(|(n, k, why)| n == "copies/first.json"
                && *k == ProblemKind::Digest
                && why.contains("records its SHA-256")),
            "{f:?}"
        );
    }

    #[test]
    fn keys_are_asked_of_the_api_once_per_region_and_failures_said() {
        use std::cell::RefCell;
        use std::rc::Rc;
        let (signer, keys) = keys();
        let hash = sha256_hex(b"log");
        let url = format!("s3://{BUCKET}/AWSLogs/1/CloudTrail-Digest/eu-west-1/2026/02/11/1_CloudTrail-Digest_eu-west-1_t_eu-west-1_20260211T060000Z.json.gz");
        let signed = read(&url, &digest(&hash, None), Some(&signer));
        let asked: Rc<RefCell<Vec<(String, String)>>> = Rc::default();
        let log = asked.clone();
        let api = keys.clone();
        let mut ring = Keyring::asking(Box::new(move |region: &str, from: &str| {
            log.borrow_mut().push((region.into(), from.into()));
            Ok(api.clone())
        }));
        assert_eq!(ring.check(&signed), Signature::Valid);
        assert_eq!(ring.check(&signed), Signature::Valid);
        assert_eq!(
            *asked.borrow(),
            [("eu-west-1".to_string(), "2026-02-11T05:00:00Z".to_string())]
        );
        // An older digest signed with a key not among those: asked again from its start, and
        // refused when the API does not list its key either.
        let mut older_doc = digest(&hash, None);
        older_doc["digestStartTime"] = "2026-01-01T00:00:00Z".into();
        older_doc["digestPublicKeyFingerprint"] = "0123".into();
        let older = read(&url, &older_doc, Some(&signer));
        assert!(
            matches!(ring.check(&older), Signature::Invalid(w) if w.contains("CloudTrail API lists for eu-west-1")),
        );
        assert_eq!(asked.borrow().len(), 2);
        assert_eq!(asked.borrow()[1].1, "2026-01-01T00:00:00Z");
        assert_eq!(ring.wanting(), None);
        // An API that cannot be reached: said once, not asked again, the reason kept.
        let calls = Rc::new(RefCell::new(0));
        let count = calls.clone();
        let mut down = Keyring::asking(Box::new(move |_: &str, _: &str| {
            *count.borrow_mut() += 1;
            Err("dispatch failure: connection refused".into())
        }));
        for _ in 0..3 {
            assert!(
                matches!(down.check(&signed), Signature::Unchecked(w) if w.contains("connection refused") && w.contains("eu-west-1"))
            );
        }
        assert_eq!(*calls.borrow(), 1);
        assert!(down.wanting().unwrap().contains("connection refused"));
        // A local copy has no signature to check: the API is not asked.
        let mut local = signed.clone();
        local.signature = None;
        let mut never = Keyring::asking(Box::new(|_: &str, _: &str| panic!("asked")));
        assert!(matches!(never.check(&local), Signature::Unchecked(_)));
        assert_eq!(
            Keyring::none().wanting().as_deref(),
            Some("no --cloudtrail-keys")
        );
    }
}
