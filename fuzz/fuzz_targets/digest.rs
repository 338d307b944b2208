//! CloudTrail log file validation: any bytes as a digest file (the first line its `signature`
//! metadata, the rest its content), its signature checked with a fixed key, then validated
//! against the log files it lists (one of them changed), with itself as the digest before it,
//! with keys given and with keys asked for. No panic; the outcome is findings.
#![no_main]

use indexer::trail_check::{check_signature, validate, DigestRead, Keyring, PublicKeys, TrailRead};
use libfuzzer_sys::fuzz_target;
use std::collections::BTreeMap;

const NAME: &str = "s3://S3-bucket-name/AWSLogs/111122223333/CloudTrail-Digest/us-east-2/2015/08/17/111122223333_CloudTrail-Digest_us-east-2_your-trail-name_us-east-2_20150817T150131Z.json.gz";

/// The public half of `tests/fixtures/cloudtrail-digest/test-signing-key.pem`, as
/// `list-public-keys` prints it.
const KEYS: &str = r#"{"PublicKeyList":[{"Value":"MIIBCgKCAQEAv+CnBaihI2j09UgW6Mb4IqGa9Pd3dw8z9qoXWJTsmaMoNaaVqEvyghIXIutidkzJK3w80EHlSdqRUakQSfFWzRcYf5LoN4WQhUefkCUosGFhRfMIdWUhtFM2BEImQzAX2R8BymrROCrpESG5dEjUEpOSInHMiyA+nfaPzgpeIq5JfUxfpOjc4hC3UuZEe5jQ1DdZAcDOrkN3ec0LQ9CfPEpkJ2+/cm4oueciSctadK20HLY5Jr+y5gmPiBmZ78mu19nsi0n2YJiVE/4N1jNe8a+RYD8bdR8Pyks1BpiuqmHFPgHv7jSxUnwkXu0JuL2SN4k0in03UscQ+Q4oO87ybwIDAQAB","Fingerprint":"31e8b5433410dfb61a9dc45cc65b22ff"}]}"#;

fuzz_target!(|data: &[u8]| {
    let (signature, body) = match data.iter().position(|&b| b == b'\n') {
        Some(i) if !data.starts_with(b"{") => (&data[..i], &data[i + 1..]),
        _ => (&b""[..], data),
    };
    let mut metadata = BTreeMap::new();
    if !signature.is_empty() {
        metadata.insert(
            "signature".to_string(),
            String::from_utf8_lossy(signature).into_owned(),
        );
    }
    let Ok(d) = DigestRead::read(NAME, body, &metadata) else {
        return;
    };
    let Ok(keys) = PublicKeys::parse(KEYS.as_bytes()) else {
        return;
    };
    let _ = check_signature(&d, Some(&keys));
    let _ = check_signature(&d, None);
    let trails: Vec<TrailRead> = d
        .doc
        .log_files
        .iter()
        .enumerate()
        .map(|(i, f)| TrailRead {
            name: f.url(),
            sha256: if i == 0 { "0".repeat(64) } else { f.hash_value.clone() },
        })
        .collect();
    let mut local = d.clone();
    local.name = "copies/digest.json".into();
    let _ = validate(
        &[d.clone(), local],
        &trails,
        &mut Keyring::given(keys),
    );
    let mut asking = Keyring::asking(Box::new(|_: &str, _: &str| PublicKeys::parse(KEYS.as_bytes())));
    let _ = validate(std::slice::from_ref(&d), &trails, &mut asking);
    let mut failing = Keyring::asking(Box::new(|_: &str, _: &str| Err("unreachable".into())));
    let _ = validate(std::slice::from_ref(&d), &trails, &mut failing);
    let _ = failing.wanting();
});
