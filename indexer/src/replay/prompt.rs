//! Prompts: where one ends on an input line, and what it says about the shell (user, cwd, `#`).

/// What a prompt tells: enough to tell one shell level from another.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Shape {
    /// `user` of a `user@host` prompt.
    pub user: Option<String>,
    /// `host` of a `user@host` prompt.
    pub host: Option<String>,
    /// The prompt's last sign: `$`, `#`, `%`, `>`.
    pub sigil: char,
}

/// A prompt found at the start of an input line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prompt {
    /// The prompt as shown, including its trailing space.
    pub text: String,
    /// Its shape.
    pub shape: Shape,
    /// The working directory it shows, if any.
    pub cwd: Option<String>,
}

/// Longest prompt considered when no marker says where it ends.
const MAX_PROMPT_CHARS: usize = 160;

impl Prompt {
    /// Parse the prompt from its text.
    pub fn parse(text: &str) -> Prompt {
        let trimmed = text.trim_end();
        let sigil = trimmed.chars().last().unwrap_or('$');
        let (user, host, cwd) = user_host_cwd(trimmed);
        Prompt {
            text: text.to_string(),
            shape: Shape { user, host, sigil },
            cwd,
        }
    }

    /// Is this the secondary prompt (PS2) of a continued line?
    pub fn is_continuation(&self) -> bool {
        self.text.trim_end() == ">"
    }
}

/// Split an input line into (prompt, command) with no marker saying where the prompt ends:
/// the prompt ends at the first `$ `, `# `, `% ` or `> ` (or at such a sign ending the line).
pub fn split(line: &str) -> Option<(String, String)> {
    split_at(line).map(|cut| (line[..cut].to_string(), line[cut..].to_string()))
}

/// Bytes that may begin a prompt's sign: the ASCII signs, and the lead bytes of the symbols.
const fn sign_starts() -> [bool; 256] {
    let mut t = [false; 256];
    t[b'$' as usize] = true;
    t[b'#' as usize] = true;
    t[b'%' as usize] = true;
    t[b'>' as usize] = true;
    let mut i = 0;
    while i < SYMBOL_SIGNS.len() {
        let mut buf = [0u8; 4];
        let lead = SYMBOL_SIGNS[i].encode_utf8(&mut buf).as_bytes()[0];
        t[lead as usize] = true;
        i += 1;
    }
    t
}

static SIGN_STARTS: [bool; 256] = sign_starts();

/// Where [`split`] would cut the line.
pub fn split_at(line: &str) -> Option<usize> {
    // Bytes, not chars: one table test per byte finds where a sign may be (this runs for every
    // line the shell accepts); a character starts at every byte that is not a UTF-8
    // continuation byte.
    let bytes = line.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        if !SIGN_STARTS[usize::from(b)] {
            continue;
        }
        // A prompt is at most MAX_PROMPT_CHARS characters (bytes count them from above).
        if i >= MAX_PROMPT_CHARS
            && bytes[..i].iter().filter(|&&c| c & 0xc0 != 0x80).count() >= MAX_PROMPT_CHARS
        {
            return None;
        }
        let len = if b < 0x80 {
            1
        } else {
            match line[i..].chars().next() {
                Some(c) if SYMBOL_SIGNS.contains(&c) => c.len_utf8(),
                _ => continue,
            }
        };
        let cut = match bytes.get(i + len) {
            None => i + len,
            Some(b' ') => i + len + 1,
            Some(_) => continue,
        };
        if !plausible(&line[..cut]) {
            return None;
        }
        return Some(cut);
    }
    None
}

/// Symbols that end the prompts of common themes (pure, starship, powerline), as `$`
/// ends bash's.
pub const SYMBOL_SIGNS: [char; 6] = ['❯', '›', '»', '▶', '➤', '❱'];

/// A prompt does not hold characters commands and output are full of.
fn plausible(prompt: &str) -> bool {
    let body = prompt.trim_end();
    let sign = body.chars().next_back().map_or(0, char::len_utf8);
    let body = &body[..body.len() - sign];
    // Byte tests: a substring search first builds a searcher, which costs more than a prompt.
    let b = body.as_bytes();
    !b.windows(2).any(|w| w == b"  ")
        && !b.iter().any(|c| {
            matches!(
                c,
                b'=' | b'"' | b'\'' | b'|' | b'<' | b'>' | b';' | b'`' | b'{'
            )
        })
        && !body.starts_with(' ')
}

/// `user@host`, and the cwd after it, of prompts like `[u@h ~]$`, `u@h:~$`, `u@h:~ %`.
pub(super) fn user_host_cwd(prompt: &str) -> (Option<String>, Option<String>, Option<String>) {
    let Some(at) = prompt.find('@') else {
        return (None, None, None);
    };
    let before = &prompt[..at];
    let user: String = before
        .chars()
        .rev()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '$'))
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    let after = &prompt[at + 1..];
    let host: String = after
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
        .collect();
    if user.is_empty() || host.is_empty() {
        return (None, None, None);
    }
    let rest = after[host.len()..].trim_start_matches([':', ' ']);
    let cwd: String = rest
        .chars()
        .take_while(|c| {
            !matches!(c, ']' | ')' | '$' | '#' | '%' | '>') && !SYMBOL_SIGNS.contains(c)
        })
        .collect::<String>()
        .trim()
        .to_string();
    (Some(user), Some(host), (!cwd.is_empty()).then_some(cwd))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_common_prompts() {
        let cases = [
            (
                "🚀 ssm-user@ip-10-0-1-23:~ ❯ sudo su -",
                "🚀 ssm-user@ip-10-0-1-23:~ ❯ ",
                "sudo su -",
            ),
            ("λ ~/src › git status", "λ ~/src › ", "git status"),
            (
                "[ssm-user@ip-10-0-1-23 ~]$ ls -l",
                "[ssm-user@ip-10-0-1-23 ~]$ ",
                "ls -l",
            ),
            (
                "ssm-user@ip-172-31-5-9:/etc$ cat x > y",
                "ssm-user@ip-172-31-5-9:/etc$ ",
                "cat x > y",
            ),
            ("sh-5.2$ sudo ls", "sh-5.2$ ", "sudo ls"),
            ("$ date -u", "$ ", "date -u"),
            ("# exit", "# ", "exit"),
            ("> EOF", "> ", "EOF"),
            ("[root@ip-10-0-1-5 ~]#", "[root@ip-10-0-1-5 ~]#", ""),
        ];
        for (line, p, c) in cases {
            assert_eq!(split(line), Some((p.to_string(), c.to_string())), "{line}");
        }
        assert_eq!(split("uid=0(root) gid=0(root)"), None);
        assert_eq!(split("total 52"), None);
        // Characters, not bytes, count towards the prompt's length; a sign alone is no prompt
        // when what comes before it holds what commands and output hold.
        let wide = format!("{}$ id", "é".repeat(MAX_PROMPT_CHARS - 1));
        assert_eq!(split_at(&wide), Some(wide.len() - 2));
        let long = format!("{}$ id", "é".repeat(MAX_PROMPT_CHARS));
        assert_eq!(split_at(&long), None);
        for line in [
            "a  b$ x",
            "x=1$ y",
            "say \"hi\"$ x",
            "a|b$ c",
            "a;b# c",
            "`x`> y",
            " a$ b",
        ] {
            assert_eq!(split_at(line), None, "{line}");
        }
        assert_eq!(split_at("a b$ x"), Some(5));
    }

    #[test]
    fn shapes() {
        let p = Prompt::parse("[root@ip-10-0-1-5 ~]# ");
        assert_eq!(p.shape.user.as_deref(), Some("root"));
        assert_eq!(p.shape.sigil, '#');
        assert_eq!(p.cwd.as_deref(), Some("~"));
        let p = Prompt::parse("ssm-user@ip-172-16-4-20:/etc$ ");
        assert_eq!(p.cwd.as_deref(), Some("/etc"));
        assert_eq!(p.shape.host.as_deref(), Some("ip-172-16-4-20"));
        let p = Prompt::parse("sh-5.2$ ");
        assert_eq!(p.shape.user, None);
        assert!(Prompt::parse("> ").is_continuation());
    }
}
