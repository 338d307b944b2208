//! CloudTrail's public keys, from the CloudTrail API (`ListPublicKeys`): what digest
//! signatures are checked with when no `list-public-keys` file is given.

use aws_sdk_cloudtrail::primitives::DateTime;

/// The CloudTrail client type, for callers that keep one.
pub use aws_sdk_cloudtrail::Client;

/// How long asking one region for its keys may take, retries included, before it is given up.
pub const ASK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(20);

/// A CloudTrail client from the standard environment (endpoint, credentials; the region is
/// given per call).
pub async fn client() -> Client {
    let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    Client::new(&config)
}

/// The public keys of `region` valid at some time from `start` (RFC 3339) until now, as
/// (fingerprint, DER of the PKCS #1 key) pairs, every page; why not, in one line.
pub async fn public_keys(
    client: &Client,
    region: &str,
    start: &str,
) -> Result<Vec<(String, Vec<u8>)>, String> {
    let start = DateTime::from_str(
        start,
        aws_sdk_cloudtrail::primitives::DateTimeFormat::DateTime,
    )
    .map_err(|e| format!("{start}: not a time: {e}"))?;
    let ask = async {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = client
                .list_public_keys()
                .start_time(start)
                .set_next_token(token.take())
                .customize()
                .config_override(
                    aws_sdk_cloudtrail::config::Builder::default()
                        .region(aws_sdk_cloudtrail::config::Region::new(region.to_string())),
                )
                .send()
                .await
                .map_err(one_line)?;
            for k in page.public_key_list() {
                if let (Some(f), Some(v)) = (k.fingerprint(), k.value()) {
                    out.push((f.to_string(), v.as_ref().to_vec()));
                }
            }
            match page.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_string()),
                _ => return Ok(out),
            }
        }
    };
    match tokio::time::timeout(ASK_TIMEOUT, ask).await {
        Ok(r) => r,
        Err(_) => Err(format!("no answer within {} s", ASK_TIMEOUT.as_secs())),
    }
}

/// An SDK error in one line: the service's code and message, or what kept the call from being
/// answered (never the SDK's debug structures).
fn one_line<E>(
    e: aws_sdk_cloudtrail::error::SdkError<E, aws_sdk_cloudtrail::config::http::HttpResponse>,
) -> String
where
    E: aws_sdk_cloudtrail::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    use aws_sdk_cloudtrail::error::SdkError;
    match &e {
        SdkError::ServiceError(s) => {
            let status = s.raw().status().as_u16();
            match (s.err().code(), s.err().message()) {
                (Some(code), Some(message)) => format!("{code}: {message} (HTTP {status})"),
                (Some(code), None) => format!("{code} (HTTP {status})"),
                _ => format!("HTTP {status}, an answer that is not CloudTrail's"),
            }
        }
        _ => crate::one_line(&e),
    }
}
