//! Streamed sessions (CloudWatch Logs) lost their CRs and, mostly, their escapes, line by
//! line: what can be put back (a search prompt and the prompt redrawn after it start at the
//! first column; fish's lines keep their escapes), and what is kept to say how a line was read.

use super::*;

/// Matches of a history search kept per streamed line.
pub(super) const SEARCH_MATCHES_KEPT: usize = 16;

impl Term {
    /// A printable run in a stream (or in fish's, whose markers are trusted): how many of its
    /// first bytes are the spaces after fish's `⏎` (not drawn), and where a dropped CR goes.
    pub(super) fn stream_print(&mut self, run: &[u8]) -> (usize, Option<usize>) {
        if !self.options.markers {
            self.printed += run.len() as u64;
        }
        let skip = if std::mem::take(&mut self.fish_spaces) {
            let spaces = run.iter().take_while(|&&b| b == b' ').count();
            self.fish_spaces = spaces == run.len();
            spaces
        } else {
            0
        };
        if self.stream_fish {
            return (skip, None);
        }
        let run = &run[skip..];
        if self.stream_mux.is_some() {
            self.stream_mux_end(run);
        }
        // A stream lost the CR before a search prompt and before the prompt readline redraws
        // after a search: put it back where one of them starts.
        if memchr::memmem::find(run, b"friendly interactive shell").is_some() {
            self.fish_stream();
        }
        self.stream_search_match(run);
        (skip, self.stream_cr_at(run))
    }

    /// The stream turns out to be fish's, whose lines kept their escapes: its input markers
    /// are trusted from here on, and a line it marked as begun is read from its row.
    pub(super) fn fish_stream(&mut self) {
        self.stream_fish = true;
        self.options.markers = true;
        if let Some((start, _, _)) = self.stream_mark_open.take() {
            let row = self.screen.logical_line(self.screen.cursor_row()).0;
            self.input = Some(Input {
                start_row: row,
                start_col: 0,
                start_byte: start,
                last_print_row: self.screen.cursor_row(),
                printed: true,
                ctrl_c: false,
                keypad: self.keypad,
            });
        }
    }

    /// In a stream, keep the match a history search displays (`…': MATCH`).
    pub(super) fn stream_search_match(&mut self, run: &[u8]) {
        if !self.stream_searching {
            self.stream_searching = memchr::memmem::find(run, b"-search)`").is_some();
        }
        if !self.stream_searching {
            return;
        }
        let Some(p) = memchr::memmem::rfind(run, b"': ") else {
            return;
        };
        let m = String::from_utf8_lossy(&run[p + 3..])
            .trim_end()
            .to_string();
        if !m.is_empty() {
            if self.stream_matches.len() == SEARCH_MATCHES_KEPT {
                self.stream_matches.remove(0);
            }
            self.stream_matches.push(m);
        }
    }

    /// Where in `run` (printed in a stream, whose CRs were dropped) a line editor's search
    /// prompt begins, or the prompt of the row is printed again (readline's redraw after a
    /// search): both were drawn from the first column.
    /// A multiplexer in a stream says when it ends (`[exited]`, `[detached …]`, `[screen is
    /// terminating]`): the stretch it drew is closed there.
    fn stream_mux_end(&mut self, run: &[u8]) {
        const ENDS: [&[u8]; 4] = [
            b"[exited]",
            b"[detached",
            b"[screen is terminating]",
            b"[remote detached",
        ];
        if memchr::memchr(b'[', run).is_some()
            && ENDS.iter().any(|e| memchr::memmem::find(run, e).is_some())
        {
            let end = self.pos + run.len() as u64;
            self.close_stream_mux(end);
        }
    }

    /// Close the stretch a multiplexer drew in a stream at `end`.
    pub(super) fn close_stream_mux(&mut self, end: u64) {
        if let Some((what, start)) = self.stream_mux.take() {
            if end > start {
                self.partial.push(Partial {
                    reason: format!(
                        "inside {what} in a streamed session: the stream keeps none of its screen, and the lines typed in it were read by their prompts alone"
                    ),
                    byte_start: start,
                    byte_end: end,
                });
            }
        }
    }

    pub(super) fn stream_cr_at(&self, run: &[u8]) -> Option<usize> {
        const SEARCH: [&[u8]; 3] = [
            b"(reverse-i-search)`",
            b"(failed reverse-i-search)`",
            b"(i-search)`",
        ];
        let col = self.screen.cursor_col();
        let search = memchr::memchr(b'(', run).and_then(|_| {
            SEARCH
                .iter()
                .filter_map(|s| memchr::memmem::find(run, s))
                .filter(|&p| p > 0 || col > 0)
                .min()
        });
        let prompt = self
            .prompts
            .last()
            .filter(|p| !p.is_continuation() && p.text.len() >= 4)
            .and_then(|p| {
                let row = self.screen.row(self.screen.cursor_row())?;
                // The row shows this prompt, or a search prompt drawn over it; or a multiplexer
                // draws its screen (a status line, then the prompt where the cursor went).
                let starts = (p.text.chars().zip(&row.cells).all(|(a, &b)| a == b)
                    && row.cells.len() >= p.text.chars().count())
                    || row.cells.first() == Some(&'(')
                    || self.stream_mux.is_some();
                if !starts {
                    return None;
                }
                memchr::memmem::find_iter(run, p.text.as_bytes()).find(|&q| q > 0 || col > 0)
            });
        match (search, prompt) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
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
    fn streamed_lines_lost_their_erases_but_kept_backspaces() {
        // Streams strip CSI K per line: `shutdown -h now` then Ctrl-U leaves only backspaces.
        let mut text = b"sh-5.2$ shutdown -h now".to_vec();
        text.extend(std::iter::repeat_n(0x08, 15));
        text.extend_from_slice(b"uptime -p\r\nup 2 min\r\nsh-5.2$ sh-5.2$ date\r\n");
        let lines = replay_with(&text, false);
        let got: Vec<&str> = lines.iter().map(|l| l.command.as_str()).collect();
        assert_eq!(got, ["uptime -p", "date"]);
    }

    #[test]
    fn a_search_recall_in_a_stream_is_read_from_the_search_display_and_flagged() {
        // Cut from a streamed session: CRs, erases and insertions are gone; backspaces stay.
        let r = replayed(
            b"[ssm-user@ip-10-0-1-23 ~]$ echo alpha beta\r\nalpha beta\r\n[ssm-user@ip-10-0-1-23 ~]$ uname -m\r\nx86_64\r\n[ssm-user@ip-10-0-1-23 ~]$ (reverse-i-search)`': \x08\x08\x08a': uname -m\x08\x08\x08\x08\x08\x08\x08\x08\x08\x08\x08l': echo alpha beta\x08\x08\x08\x08\x08\x08\x08\x08\x08\x08\x08\x08\x08\x08\x08\x08\x08\x08p': echo alp\x08\x08\x08\x08\x08\x08\x08\x08\x08\x08\x08h': echo alph\x08\x08\x08\x08\x08\x08\x08\x08\x08\x08\x08\x08a': echo alpha\x08\x08\x08\x08\x08[ssm-user@ip-10-0-1-23 ~]$ echo alpha\x08\x08\x08\x08\x08\r\nalpha beta\r\n[ssm-user@ip-10-0-1-23 ~]$ echo alpha beta\x08\x08\x08\x08\x08\x08\x08\x08\x08\x08\x08\x08\x08\x08\x08uname -m\r\nx86_64\r\n",
            false,
        );
        let got: Vec<&str> = r.lines.iter().map(|l| l.command.as_str()).collect();
        assert_eq!(
            got,
            ["echo alpha beta", "uname -m", "echo alpha beta", "uname -m"]
        );
        assert_eq!(r.partial.len(), 1, "{:?}", r.partial);
        assert!(r.partial[0].reason.contains("history search"));
    }

    #[test]
    fn a_vi_mode_edit_in_a_stream_is_flagged() {
        let r = replayed(
            b"[u@h ~]$ set -o vi\r\n[u@h ~]$ echo one\r\none\r\n[u@h ~]$ echo one\x08\x08\x08\x08\x08\x08\x08\x08 two\r\none two\r\n",
            false,
        );
        assert_eq!(r.lines.len(), 3);
        assert_eq!(r.partial.len(), 1, "{:?}", r.partial);
        assert!(r.partial[0].reason.contains("vi mode"));
        // The same edit without vi mode is a deletion, read as such.
        let r = replayed(
            b"[u@h ~]$ echo one\r\none\r\n[u@h ~]$ echo one\x08\x08\x08two\r\ntwo\r\n",
            false,
        );
        assert_eq!(r.lines[1].command, "echo two");
        assert!(r.partial.is_empty());
    }

    #[test]
    fn fish_blocks_are_one_command_and_fish_streams_are_read() {
        // fish indents a block's body by moving to it, not by writing spaces.
        let got = commands(
            b"\x1b[?2004hu@h ~> for i in 1 2\r\r\n\x1b[29Cecho $i\r\r\n\x1b[25Cend\r\r\n\x1b[?2004l1\r\r\n2\r\r\n",
        );
        assert_eq!(got, pairs(&[("u", "for i in 1 2\necho $i\nend")]));
        // A fish stream keeps its escapes (it sets a title), not its CRs: `CSI n C` moved from
        // the first column, and `⏎` and its spaces left the row empty.
        let r = replayed(
            "Welcome to fish, the friendly interactive shell\r\n\x1b[?2004h\x1b]0;~\x07u@h ~> \x1b[K\x1b[7Ce\x1b[8C\x08e\x1b[8Cc\x1b[9Ch\x1b[10Co\x1b[11C\r\n\x1b[?2004l\x1b]0;echo ~\x07\r\n\u{23ce}                    \u{23ce} \x1b[K\x1b[?2004h\x1b]0;~\x07u@h ~> \x1b[K\x1b[7Cid\x1b[9C\r\n\x1b[?2004luid=1001\r\n".as_bytes(),
            false,
        );
        let got: Vec<&str> = r.lines.iter().map(|l| l.command.as_str()).collect();
        assert_eq!(got, ["echo", "id"]);
        assert!(r.partial.is_empty(), "{:?}", r.partial);
    }

    #[test]
    fn a_stream_line_marked_as_taken_but_not_read_is_a_stretch_not_read() {
        // A stream that kept the markers around a line it could not read (no prompt on it).
        let r = replayed(
            b"\x1b]0;t\x07\x1b[?2004hsome typing\r\n\x1b[?2004loutput\r\n",
            false,
        );
        assert!(r.lines.is_empty());
        assert_eq!(r.partial.len(), 1, "{:?}", r.partial);
        assert!(r.partial[0].reason.contains("markers"));
    }

    #[test]
    fn a_multiplexer_in_a_stream_is_read_by_its_prompts_and_flagged() {
        // Cut from a streamed session: tmux's status line and the prompt it drew below it
        // arrive as one line, and the inner shell's `exit` leaves the outer shell running.
        let r = replayed(
            b"[u@h ~]$ tmux\r\n\r\n[0] 0:bash*     \"vm\" 08:21 05-Dec-26[u@h ~]$ uname -r\r\n6.18\r\n[u@h ~]$ exit\r\nlogout\r\n[exited]\r\n[u@h ~]$ echo outside\r\noutside\r\n",
            false,
        );
        let got: Vec<&str> = r.lines.iter().map(|l| l.command.as_str()).collect();
        assert_eq!(got, ["tmux", "uname -r", "exit", "echo outside"]);
        assert_eq!(r.partial.len(), 1, "{:?}", r.partial);
        assert!(r.partial[0]
            .reason
            .contains("inside tmux in a streamed session"));
    }
}
