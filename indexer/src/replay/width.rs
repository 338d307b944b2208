//! Width learning: the log does not say how wide the terminal was. A CR after a space one past
//! the end of the line may be readline forcing a wrap; the characters after it decide.

use super::*;

/// A lookahead after a CR that may be readline forcing a wrap at an unknown width.
#[derive(Debug, Clone)]
pub(super) struct WrapSuspect {
    pub(super) col: usize,
    /// The row's first cells before the CR.
    pub(super) orig: Vec<char>,
    /// What was printed since (and the bytes that printed it), held back until decided.
    pub(super) buf: Vec<(char, u64, u64)>,
}

/// Characters looked at after a suspicious CR before deciding.
pub(super) const SUSPECT_LOOKAHEAD: usize = 8;

impl Term {
    /// A CR right after a space printed one past the last cell may be readline forcing a wrap.
    pub(super) fn check_wrap_suspect(&mut self) {
        self.suspect = None;
        if self.screen.width().is_some() || self.alt {
            return;
        }
        let row_abs = self.screen.cursor_row();
        let col = self.screen.cursor_col();
        let Some(row) = self.screen.row(row_abs) else {
            return;
        };
        if col < 20 || row.cells.len() != col || self.last_print_col + 1 != col {
            return;
        }
        // zsh's PROMPT_SP: a `%` (or `#`) and spaces to the last column tell the width exactly.
        if matches!(row.cells[0], '%' | '#') && row.cells[1..].iter().all(|&c| c == ' ') {
            self.screen.set_width(col);
            return;
        }
        if self.last_printed[1] != ' ' {
            return;
        }
        // Only a line with something typed after its prompt can be wrapping.
        let typed = prompt::split(&row.text()).is_some_and(|(_, c)| !c.trim().is_empty());
        let reading = self.input.is_some() || !self.markers_trusted();
        if reading && typed {
            self.suspect = Some(WrapSuspect {
                col: col - 1,
                orig: row.cells.iter().take(SUSPECT_LOOKAHEAD).copied().collect(),
                buf: Vec::new(),
            });
        }
    }

    /// Decide a pending wrap suspicion. `ch` is the next printed character, `None` for any
    /// other event. Redraws after a CR reprint the prompt or show a search prompt; anything
    /// else printed there is the rest of a line that wrapped.
    #[inline]
    pub(super) fn resolve_suspect(&mut self, ch: Option<(char, u64, u64)>) {
        // Nearly always nothing is pending: that test is made where the call is.
        if self.suspect.is_some() {
            self.decide_suspect(ch);
        }
    }

    fn decide_suspect(&mut self, ch: Option<(char, u64, u64)>) {
        let Some(mut s) = self.suspect.take() else {
            return;
        };
        if let Some(ch) = ch {
            s.buf.push(ch);
            if s.buf.len() < SUSPECT_LOOKAHEAD {
                self.suspect = Some(s);
                return;
            }
        }
        let orig: String = s.orig.iter().take(s.buf.len()).collect();
        let printed: String = s.buf.iter().map(|c| c.0).collect();
        let redraw = printed.is_empty()
            || orig == printed
            || ["(reverse-i-search)", "(i-search)", "(failed "]
                .iter()
                .any(|p| p.starts_with(&printed) || printed.starts_with(p));
        if redraw {
            for &(c, start, end) in &s.buf {
                self.screen.print(c, start, end);
            }
            return;
        }
        self.screen.split_for_wrap(s.col, 0);
        for &(c, start, end) in &s.buf {
            self.screen.print(c, start, end);
        }
        if let Some(input) = &mut self.input {
            input.last_print_row = self.screen.cursor_row();
        }
    }
}

#[cfg(test)]
mod tests {
    #[allow(unused_imports)]
    use crate::replay::tests::{commands, pairs, replay_with, replayed};
    #[allow(unused_imports)]
    use crate::replay::*;

    #[test]
    fn readline_wrap_at_an_unknown_width_is_learned() {
        // 80 columns: readline prints a space and a CR where the line reaches the last column.
        let got = commands(
            b"\x1b[?2004h[ssm-user@ip-10-30-0-8 ~]$ grep -E '^(root|daemon|bin|sys|sync|games|man)' /etc/ \rpasswd | cut -d: -f1\r\r\n\x1b[?2004l\r",
        );
        assert_eq!(
            got,
            pairs(&[(
                "ssm-user",
                "grep -E '^(root|daemon|bin|sys|sync|games|man)' /etc/passwd | cut -d: -f1"
            )])
        );
    }

    #[test]
    fn a_cr_before_a_search_prompt_is_not_a_wrap() {
        let got = commands(
            b"\x1b[?2004hu@h:/etc$ \r(reverse-i-search)`': \x1b[K\x08\x08\x08s': \x1b[7ms\x1b[27mudo -i\x08\x08\x08\x08\x08\x08\x08\x08\x1b[19Pl': \x1b[7ml\x1b[27ms -d ssh*\ru@h:/etc$ ls -d ssh*\x1b[K\r\r\n\x1b[?2004l\r",
        );
        assert_eq!(got.last().map(|c| c.1.as_str()), Some("ls -d ssh*"));
    }
}
