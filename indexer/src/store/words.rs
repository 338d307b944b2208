//! The full-text fields' tokenizer: the tokens of tantivy's `default` analyzer, made in one pass.
//!
//! `default` is three token streams stacked behind a boxed one: words split at every character
//! that is not alphanumeric, words of 40 bytes or more dropped (their positions kept as gaps),
//! then lowercased. Every command and its output go through it, so the three layers' calls per
//! token, and a Unicode lookup per ASCII byte, showed in the ingest's profile. This stream gives
//! the same tokens, offsets and positions (tests hold it to that), so it is registered under the
//! `default` name and an index stays readable by tantivy's own analyzer.

use tantivy::tokenizer::{Token, TokenStream, Tokenizer};

/// Tokens of 40 bytes or more are dropped, as tantivy's `default` does.
const TOO_LONG: usize = 40;

/// The tokenizer; see the module's documentation.
#[derive(Clone, Default)]
pub struct Words {
    token: Token,
}

/// The tokens of one text.
pub struct WordStream<'a> {
    text: &'a str,
    at: usize,
    token: &'a mut Token,
}

impl Tokenizer for Words {
    type TokenStream<'a> = WordStream<'a>;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> WordStream<'a> {
        self.token.reset();
        WordStream {
            text,
            at: 0,
            token: &mut self.token,
        }
    }
}

/// Whether the character starting at `at` is alphanumeric, and its length in bytes.
fn alnum_at(text: &str, at: usize) -> (bool, usize) {
    let b = text.as_bytes()[at];
    if b.is_ascii() {
        return (b.is_ascii_alphanumeric(), 1);
    }
    match text[at..].chars().next() {
        Some(c) => (c.is_alphanumeric(), c.len_utf8()),
        None => (false, 1),
    }
}

impl TokenStream for WordStream<'_> {
    fn advance(&mut self) -> bool {
        let text = self.text;
        let bytes = text.as_bytes();
        loop {
            // The next word's start.
            let mut start = self.at;
            loop {
                if start >= bytes.len() {
                    self.at = start;
                    self.token.text.clear();
                    return false;
                }
                let (alnum, len) = alnum_at(text, start);
                if alnum {
                    break;
                }
                start += len;
            }
            // Its end, noting whether it is all ASCII.
            let mut end = start;
            let mut ascii = true;
            while end < bytes.len() {
                let (alnum, len) = alnum_at(text, end);
                if !alnum {
                    break;
                }
                ascii &= len == 1;
                end += len;
            }
            self.at = end;
            self.token.position = self.token.position.wrapping_add(1);
            if end - start >= TOO_LONG {
                continue;
            }
            let word = &text[start..end];
            self.token.offset_from = start;
            self.token.offset_to = end;
            self.token.text.clear();
            if ascii {
                self.token.text.push_str(word);
                self.token.text.make_ascii_lowercase();
            } else {
                for c in word.chars() {
                    self.token.text.extend(c.to_lowercase());
                }
            }
            return true;
        }
    }

    fn token(&self) -> &Token {
        self.token
    }

    fn token_mut(&mut self) -> &mut Token {
        self.token
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tantivy::tokenizer::TokenizerManager;

    type Seen = (String, usize, usize, usize, usize);

    fn tokens_of(mut s: impl TokenStream) -> Vec<Seen> {
        let mut out = Vec::new();
        while s.advance() {
            let k = s.token();
            out.push((
                k.text.clone(),
                k.position,
                k.offset_from,
                k.offset_to,
                k.position_length,
            ));
        }
        out
    }

    fn same_as_default(texts: impl IntoIterator<Item = String>) -> usize {
        let mut theirs = TokenizerManager::default()
            .get("default")
            .expect("tantivy's default analyzer");
        let mut ours = Words::default();
        let mut n = 0;
        for text in texts {
            assert_eq!(
                tokens_of(ours.token_stream(&text)),
                tokens_of(theirs.token_stream(&text)),
                "{text:?}"
            );
            n += 1;
        }
        n
    }

    #[test]
    fn gives_the_default_analyzers_tokens() {
        let texts = [
            "",
            " ",
            "sudo su -",
            "Hello, happy tax payer!",
            "ls -la /var/log && grep -i ERROR syslog | wc -l",
            "CAPS and MiXeD CaSe",
            // 39, 40 and 41 bytes: the last two are dropped, their positions left as gaps.
            "a 012345678901234567890123456789012345678 b",
            "a 0123456789012345678901234567890123456789 b",
            "a 01234567890123456789012345678901234567890 b",
            // 20 two-byte letters are 40 bytes: dropped, though 20 characters.
            "x éééééééééééééééééééé y",
            "Ünïcödé ÉCOLE straße İstanbul ΣΊΣΥΦΟΣ Ⅻ ٣٤ 中文字 — 🎉ok🎉 done",
            "tab\tsep\u{a0}nbsp\u{2003}em",
            "trailing word",
            "x",
        ];
        same_as_default(texts.iter().map(|s| s.to_string()));
    }

    #[test]
    fn gives_the_default_analyzers_tokens_on_random_text() {
        // Pieces that hit each branch: ASCII words and separators, letters that change length
        // when lowercased, alphanumerics outside ASCII, separators outside ASCII, long runs.
        let pieces = [
            "a",
            "Z",
            "9",
            " ",
            "-",
            "_",
            "/",
            ".",
            "\t",
            "\n",
            "é",
            "É",
            "ß",
            "İ",
            "Σ",
            "中",
            "٣",
            "Ⅻ",
            "—",
            "🎉",
            "\u{a0}",
            "ǅ",
            "ﬀ",
            "abcdefghij",
            "ÀÉÎÕÜ",
        ];
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let texts = (0..20_000).map(|_| {
            let len = (next() % 40) as usize;
            (0..len)
                .map(|_| pieces[(next() % pieces.len() as u64) as usize])
                .collect::<String>()
        });
        assert_eq!(same_as_default(texts), 20_000);
    }

    #[test]
    fn gives_the_default_analyzers_tokens_on_recorded_sessions() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/fixtures/recorded/sessions");
        let mut texts = Vec::new();
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let object = crate::model::SourceObject {
                name: path.display().to_string(),
                version_id: None,
                bytes: std::fs::read(&path).unwrap(),
            };
            // The raw bytes, and the commands and output the index is given.
            texts.push(String::from_utf8_lossy(&object.bytes).into_owned());
            let Ok(crate::formats::Parsed::Transcripts(ts)) =
                crate::formats::parse(&object.name, &object.bytes)
            else {
                continue;
            };
            for t in &ts {
                let s = crate::model::SessionSource::from_transcript(t, &object, "digest");
                for l in &s.lines {
                    texts.push(l.command.clone());
                    texts.push(l.output.clone());
                }
            }
        }
        assert!(
            same_as_default(texts) > 100,
            "recorded sessions in {}",
            dir.display()
        );
    }
}
