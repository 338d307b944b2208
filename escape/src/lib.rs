//! Text that came from a log, CloudTrail, a stream or an inventory, made safe for each output it
//! reaches, in one place per output: the terminal (tables), CSV, JSON, HTML and Markdown.
//!
//! What a reader cannot see is shown: control characters (C0, DEL, C1) as `\xNN`; format
//! characters (bidi embeddings, overrides and isolates, zero-width spaces and joiners, the BOM,
//! tags), line and paragraph separators, spaces other than U+0020, and the invisible fillers as
//! `\u{NNNN}`. A command can then not display as another ("Trojan Source"), and no escape
//! sequence reaches the auditor's terminal. Times and addresses that do not parse as such are
//! shown escaped and flagged.
//!
//! ```
//! assert_eq!(escape::visible("ls\u{202e}txt.exe"), "ls\\u{202e}txt.exe");
//! assert_eq!(escape::md("x\n## forged", false), "`x ⏎ ## forged`");
//! assert_eq!(escape::html("<img onerror=x>"), "&lt;img onerror=x&gt;");
//! ```

use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};

/// Is `c` a character a reader would not see as itself?
pub fn is_hidden(c: char) -> bool {
    if c == ' ' {
        return false;
    }
    matches!(
        c.general_category(),
        GeneralCategory::Control
            | GeneralCategory::Format
            | GeneralCategory::LineSeparator
            | GeneralCategory::ParagraphSeparator
            | GeneralCategory::SpaceSeparator
    ) || matches!(
        c,
        // Letters and marks that display as nothing: Hangul fillers, the combining grapheme
        // joiner, the Mongolian variation selectors, the Braille blank.
        '\u{115f}' | '\u{1160}' | '\u{3164}' | '\u{ffa0}' | '\u{034f}' | '\u{180b}'
            ..='\u{180d}' | '\u{2800}'
    )
}

/// For the terminal: every hidden character shown (`\x1b`, `\u{202e}`).
pub fn visible(s: &str) -> String {
    if !s.chars().any(is_hidden) {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if !is_hidden(c) {
            out.push(c);
        } else if (c as u32) < 0x100 {
            out.push_str(&format!("\\x{:02x}", c as u32));
        } else {
            out.push_str(&format!("\\u{{{:04x}}}", c as u32));
        }
    }
    out
}

/// A table cell: [`visible`], the newlines of a multi-line command shown as ` ⏎ `.
pub fn cell(s: &str) -> String {
    visible(&s.replace("\r\n", "\n").replace('\n', " \u{23ce} "))
}

/// A CSV cell: [`visible`], and never read as a formula by a spreadsheet.
pub fn csv(s: &str) -> String {
    let v = visible(s);
    if v.starts_with(['=', '+', '-', '@']) {
        format!("'{v}")
    } else {
        v
    }
}

/// A JSON document as serialized: every hidden character serde leaves raw (C1, DEL, format
/// characters, separators) written as a `\u` escape: the same value, nothing invisible.
pub fn json(serialized: String) -> String {
    // Raw `\n`, `\r` and `\t` are JSON's own whitespace (serde escapes them in strings).
    let hidden = |c: char| is_hidden(c) && !matches!(c, '\n' | '\r' | '\t');
    if !serialized.chars().any(hidden) {
        return serialized;
    }
    let mut out = String::with_capacity(serialized.len() + 16);
    for c in serialized.chars() {
        if hidden(c) {
            let mut units = [0u16; 2];
            for u in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{u:04x}"));
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// HTML text: [`visible`], then the five characters HTML gives a meaning escaped.
pub fn html(s: &str) -> String {
    visible(s)
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// Markdown: the value as a code span (nothing in it is read as Markdown or HTML: no heading,
/// link, image, emphasis or element), [`cell`] inside, its fence longer than any run of
/// backticks in it; in a table cell (`in_table`), `|` escaped as GFM tables ask.
pub fn md(s: &str, in_table: bool) -> String {
    let t = cell(s);
    if t.is_empty() {
        return String::new();
    }
    let mut longest = 0;
    let mut run = 0;
    for c in t.chars() {
        run = if c == '`' { run + 1 } else { 0 };
        longest = longest.max(run);
    }
    let fence = "`".repeat(longest + 1);
    let pad = if t.starts_with('`') || t.ends_with('`') || t.starts_with(' ') {
        " "
    } else {
        ""
    };
    let body = if in_table { t.replace('|', "\\|") } else { t };
    format!("{fence}{pad}{body}{pad}{fence}")
}

/// A time as a source gave it: itself when it is an RFC 3339 time, else shown and flagged.
pub fn time(s: &str) -> String {
    if chrono::DateTime::parse_from_rfc3339(s).is_ok() {
        s.to_string()
    } else {
        format!("{} [not a time]", cell(s))
    }
}

/// A source address as CloudTrail gave it: an IP address, or the name of an AWS service
/// (`ssm.amazonaws.com`, `AWS Internal`); anything else is shown and flagged.
pub fn address(s: &str) -> String {
    let service = s == "AWS Internal"
        || (s.ends_with(".amazonaws.com")
            && s.len() < 128
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-'));
    if s.parse::<std::net::IpAddr>().is_ok() || service {
        s.to_string()
    } else {
        format!("{} [not an address]", cell(s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_hidden_passes() {
        let hostile = "a\u{1b}]52;c;ZWNobw==\u{7}b\u{202e}gpj.exe\u{2066}\u{200b}\u{feff}\u{85}\u{7f}\u{a0}\u{2028}\u{e0041}\u{3164}";
        for out in [
            visible(hostile),
            cell(hostile),
            csv(hostile),
            html(hostile),
            md(hostile, true),
        ] {
            assert!(!out.chars().any(is_hidden), "{out:?}");
            assert!(out.contains("\\u{202e}") && out.contains("\\x1b"), "{out}");
        }
        let j = json(serde_json::to_string(hostile).unwrap());
        assert!(!j.chars().any(is_hidden), "{j}");
        assert_eq!(serde_json::from_str::<String>(&j).unwrap(), hostile);
        // Pretty JSON keeps its layout.
        let pretty = json(serde_json::to_string_pretty(&[hostile]).unwrap());
        assert!(pretty.contains("[\n  \""), "{pretty}");
        assert_eq!(
            serde_json::from_str::<Vec<String>>(&pretty).unwrap(),
            [hostile]
        );
        // Korean, emoji and ordinary punctuation are themselves.
        for plain in [
            "sudo cat /etc/shadow",
            "ls ~/문서/보고서.txt",
            "echo 🙂",
            "a\tb",
        ] {
            assert_eq!(visible(plain), plain.replace('\t', "\\x09"));
        }
    }

    #[test]
    fn markdown_values_are_code_spans() {
        assert_eq!(md("ls -la", true), "`ls -la`");
        assert_eq!(md("a|b", true), "`a\\|b`");
        assert_eq!(md("a|b", false), "`a|b`");
        assert_eq!(md("echo `id`", false), "`` echo `id` ``");
        assert_eq!(md("x\n## forged", false), "`x ⏎ ## forged`");
        assert_eq!(md("", false), "");
    }

    #[test]
    fn times_and_addresses_that_are_not_are_flagged() {
        assert_eq!(time("2026-02-11T05:00:01Z"), "2026-02-11T05:00:01Z");
        assert_eq!(time("2026\u{1b}[8m"), "2026\\x1b[8m [not a time]");
        assert_eq!(address("203.0.113.9"), "203.0.113.9");
        assert_eq!(address("2001:db8::1"), "2001:db8::1");
        assert_eq!(address("ssm.amazonaws.com"), "ssm.amazonaws.com");
        assert_eq!(address("AWS Internal"), "AWS Internal");
        assert_eq!(
            address("10.0.0.1\n## forged"),
            "10.0.0.1 ⏎ ## forged [not an address]"
        );
    }
}
