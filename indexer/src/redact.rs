//! Masking secrets that users typed into command lines (and that commands printed) before a
//! report is handed over. The evidence (SHA-256 of the raw object) is never touched.

use regex::Regex;
use std::sync::OnceLock;

/// What replaces a secret.
pub const MASK: &str = "********";

fn patterns() -> &'static [(Regex, &'static str)] {
    static P: OnceLock<Vec<(Regex, &'static str)>> = OnceLock::new();
    P.get_or_init(|| {
        let p = |re: &str, keep: &'static str| (Regex::new(re).expect("valid pattern"), keep);
        vec![
            // AWS access key ids and the secrets that go with them.
            p(r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[A-Z0-9]{16}\b", ""),
            p(r"(?i)(aws_secret_access_key|aws_session_token|secret_?key|secretaccesskey)(\s*[=:]\s*|\s+)([^\s'\x22]+)", "$1$2"),
            // key=value and --key value forms of passwords and tokens.
            p(r"(?i)\b((?:pass(?:word|wd)?|pwd|token|api[_-]?key|secret|client[_-]?secret|access[_-]?token|auth)\s*[=:]\s*)('[^']*'|\x22[^\x22]*\x22|[^\s&;]+)", "$1"),
            p(r"(?i)(--(?:pass(?:word)?|token|secret|api-key|client-secret)(?:=|\s+))('[^']*'|\x22[^\x22]*\x22|\S+)", "$1"),
            // mysql -pSECRET / mysqladmin -pSECRET, sshpass -p SECRET.
            p(r"\b((?:mysql|mysqldump|mysqladmin|mariadb)\b[^|;&]*?\s-p)([^\s'\x22]+)", "$1"),
            p(r"\b(sshpass\s+-p\s*)(\S+)", "$1"),
            // Authorization headers, bearer tokens, well-known token shapes.
            p(r"(?i)(authorization:\s*(?:bearer|basic|token)\s+)([A-Za-z0-9._~+/=-]+)", "$1"),
            p(r"\b(?:ghp|gho|ghu|ghs|ghr|github_pat|glpat|xox[abpr])[_-][A-Za-z0-9_-]{10,}\b", ""),
            // Windows: `net user NAME PASSWORD /add`, `ConvertTo-SecureString 'pw' -AsPlainText`.
            p(r"(?i)\b(net1?(?:\.exe)?\s+user\s+\S+\s+)([^\s/*][^\s]*)", "$1"),
            p(r"(?i)(ConvertTo-SecureString\s+(?:-String\s+)?)('[^']*'|\x22[^\x22]*\x22|[^\s-]\S*)", "$1"),
            // Credentials in URLs: scheme://user:password@host.
            p(r"(://[^/\s:@]+:)([^@\s/]+)(@)", "$1"),
        ]
    })
}

/// The text with every secret it holds masked.
pub fn redact(text: &str) -> String {
    let mut out = text.to_string();
    for (re, keep) in patterns() {
        if keep.is_empty() {
            out = re.replace_all(&out, MASK).into_owned();
        } else if *keep == "$1" && re.captures_len() == 4 {
            out = re.replace_all(&out, format!("$1{MASK}$3")).into_owned();
        } else {
            out = re.replace_all(&out, format!("{keep}{MASK}")).into_owned();
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_masked_and_the_rest_kept() {
        let cases = [
            (
                "aws configure set aws_access_key_id AKIAIOSFODNN7EXAMPLE",
                "aws configure set aws_access_key_id ********",
            ),
            (
                "export AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                "export AWS_SECRET_ACCESS_KEY=********",
            ),
            (
                "curl -u admin:hunter2@ https://x",
                "curl -u admin:hunter2@ https://x",
            ),
            (
                "curl https://admin:hunter2@db.internal/x",
                "curl https://admin:********@db.internal/x",
            ),
            (
                "mysql -u root -pS3cret! -h db",
                "mysql -u root -p******** -h db",
            ),
            (
                "net user backdoor P@ssw0rd1 /add",
                "net user backdoor ******** /add",
            ),
            ("net user backdoor /add", "net user backdoor /add"),
            (
                "$p = ConvertTo-SecureString 'Hunter2!' -AsPlainText -Force",
                "$p = ConvertTo-SecureString ******** -AsPlainText -Force",
            ),
            (
                "./deploy --password 'p a s s' --region x",
                "./deploy --password ******** --region x",
            ),
            (
                "psql 'host=db password=abc123 user=x'",
                "psql 'host=db password=******** user=x'",
            ),
            (
                "curl -H 'Authorization: Bearer eyJhbGciOi.x.y' https://api",
                "curl -H 'Authorization: Bearer ********' https://api",
            ),
            (
                "git clone https://ghp_abcdefghijklmnopqrstuvwxyz0123@github.com/x",
                "git clone https://********@github.com/x",
            ),
            (
                "sshpass -p hunter2 ssh host",
                "sshpass -p ******** ssh host",
            ),
            ("sudo cat /etc/shadow", "sudo cat /etc/shadow"),
            ("echo token is missing", "echo token is missing"),
        ];
        for (input, want) in cases {
            assert_eq!(redact(input), want, "{input}");
        }
    }
}
