//! A stretch of terminal bytes as a terminal shows it: for people reading a session back
//! (`ssm-audit show`), never for deriving records (the replay does that).

/// Rows kept at most: a stretch with more lines keeps its last ones.
const MAX_ROWS: usize = 400;

/// Columns of the terminal the stretch is drawn on when its width is not known.
const COLS: u16 = 512;

/// `bytes` drawn on a fresh terminal of [`COLS`] columns, as plain text: escapes applied (the
/// title, colours, bracketed-paste markers gone; backspaces and carriage returns done), rows
/// without trailing blanks, blank rows at the end dropped. A stretch of more than [`MAX_ROWS`]
/// lines keeps its last ones.
pub fn as_shown(bytes: &[u8]) -> String {
    let lines = bytes.iter().filter(|&&b| b == b'\n').count() + 1;
    let rows = u16::try_from(lines.clamp(1, MAX_ROWS)).unwrap_or(1);
    let rows = std::num::NonZeroU16::new(rows).unwrap_or(std::num::NonZeroU16::MIN);
    let cols = std::num::NonZeroU16::new(COLS).unwrap_or(std::num::NonZeroU16::MIN);
    let mut parser = vt100::Parser::new(rows, cols, 0);
    parser.process(bytes);
    let text = parser.screen().contents();
    text.trim_end_matches(['\n', ' ']).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prompt_and_its_line_read_as_they_were_seen() {
        let bytes = b"\x1b[?2004h\x1b]0;ssm-user@ip-172-16-4-20: ~\x07\x1b[01;32mssm-user@ip-172-16-4-20\x1b[00m:\x1b[01;34m~\x1b[00m$ cd /etx\x08c\r\r\n\x1b[?2004l";
        assert_eq!(as_shown(bytes), "ssm-user@ip-172-16-4-20:~$ cd /etc");
        assert_eq!(as_shown(b"a\r\nb\r\n\r\n"), "a\nb");
    }
}
