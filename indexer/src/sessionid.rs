//! Session ids: `<IAM user | role session | Identity Center user>-<suffix>`.

/// The name part and the suffix of a session id, if it has the shape Session Manager gives them:
/// a suffix of 17 lowercase hex characters (older) or 26 of `[a-z0-9]` (newer), split at the last `-`.
pub fn parse(id: &str) -> Option<(&str, &str)> {
    if id.len() > 96 {
        return None;
    }
    let (name, suffix) = id.rsplit_once('-')?;
    let ok = match suffix.len() {
        17 => suffix
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
        26 => suffix
            .bytes()
            .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase()),
        _ => false,
    };
    (ok && !name.is_empty() && !name.contains(['/', '\\']) && name != "..")
        .then_some((name, suffix))
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn session_ids() {
        assert_eq!(
            parse("jiwoo-de2414f130f6d253c"),
            Some(("jiwoo", "de2414f130f6d253c"))
        );
        assert_eq!(
            parse("hyejin@corp.example-7nfzzj1w9wtx9agz0edbc7amdy"),
            Some(("hyejin@corp.example", "7nfzzj1w9wtx9agz0edbc7amdy"))
        );
        assert_eq!(
            parse("i-0f66ff66ff66ff666-400a556367229add6"),
            Some(("i-0f66ff66ff66ff666", "400a556367229add6"))
        );
        assert_eq!(parse("testLogStream"), None);
        assert_eq!(parse("a-XYZ"), None);
        assert_eq!(parse("../x-0123456789abcdef0"), None);
    }
}
