//! The input-line tracker: where a line editor starts reading a line and when the shell takes
//! it, by the bracketed-paste markers or, without them, by the prompt at a line feed; the
//! line read off the screen at that moment, split from its prompt.

use super::*;

/// Where an input line began.
#[derive(Debug, Clone)]
pub(super) struct Input {
    pub(super) start_row: u64,
    pub(super) start_col: usize,
    pub(super) start_byte: u64,
    pub(super) last_print_row: u64,
    pub(super) printed: bool,
    pub(super) ctrl_c: bool,
    /// Keypad transmit mode was on when the line began (zsh's ZLE sets it).
    pub(super) keypad: bool,
}

/// End of the written text from `from`: a gap of never-written cells followed by more text is
/// a right prompt (zsh RPROMPT), not part of the line.
pub(super) fn first_gap_end(cells: &[char], from: usize) -> usize {
    let from = from.min(cells.len());
    // Skip any gap inside the prompt region itself.
    let mut i = from;
    while i < cells.len() {
        if cells[i] == EMPTY {
            let gap_start = i;
            while i < cells.len() && cells[i] == EMPTY {
                i += 1;
            }
            if i < cells.len() {
                return gap_start;
            }
            return gap_start;
        }
        i += 1;
    }
    cells.len()
}

impl Term {
    pub(super) fn markers_trusted(&self) -> bool {
        self.options.markers && self.top().markers && self.pending.is_none()
    }

    /// Bracketed paste switched on: a line editor starts reading a line here.
    pub(super) fn paste_on(&mut self) {
        if !self.options.markers {
            let taken = (self.drained + self.lines.len()) as u64;
            self.stream_mark_open = Some((self.seq_start, self.printed, taken));
            return;
        }
        if self.input.is_some() {
            return;
        }
        self.input = Some(Input {
            start_row: self.screen.cursor_row(),
            start_col: self.screen.cursor_col(),
            start_byte: self.seq_start,
            last_print_row: self.screen.cursor_row(),
            printed: false,
            ctrl_c: false,
            keypad: self.keypad,
        });
    }

    /// Bracketed paste switched off: the line editor returned the line (Enter or Ctrl-C).
    pub(super) fn paste_off(&mut self) {
        if !self.options.markers {
            if let Some((start, printed, taken)) = self.stream_mark_open.take() {
                let read = (self.drained + self.lines.len()) as u64 > taken;
                if self.printed > printed && !read {
                    self.stream_marked.push((start, self.offset_end));
                }
            }
            return;
        }
        let Some(input) = self.input.take() else {
            return;
        };
        if !input.printed {
            return;
        }
        let (mut first, last) = self.screen.logical_line(input.last_print_row);
        self.truncated = self.screen.truncated(first, last);
        // Where the prompt ends is known exactly when the marker came after it (zsh), and its
        // row is still held.
        let exact = input.start_col > 0 && input.start_row >= self.screen.first_row();
        // The prompt line's text and its split, when known: the common one-line input reuses them.
        let mut start_line: Option<(u64, String, Option<usize>)> = None;
        if exact {
            first = self.screen.logical_line(input.start_row).0.min(first);
        } else {
            // The line may hold newlines (a paste): go back to the row that starts with the
            // prompt, but not past a redraw of it (after a completion listing).
            let (p_first, p_last) = self.screen.logical_line(input.start_row);
            let start_text = self.line_text(p_first, p_last);
            let split = prompt::split_at(&start_text);
            if let Some(cut) = split {
                let p = &start_text[..cut];
                let mut r = first;
                while r > p_first
                    && !self
                        .line_text(r, self.screen.logical_line(r).1)
                        .starts_with(p)
                {
                    r = self.screen.logical_line(r - 1).0;
                }
                if r == p_first
                    || self
                        .line_text(r, self.screen.logical_line(r).1)
                        .starts_with(p)
                {
                    first = r;
                }
            }
            start_line = Some((p_first, start_text, split));
        }
        // The logical lines of the input region, joined with newlines.
        let mut ranges = std::mem::take(&mut self.ranges);
        ranges.clear();
        let mut r = first;
        while r <= last {
            let (a, b) = self.screen.logical_line(r);
            ranges.push((a, b));
            r = b + 1;
        }
        let bytes = ranges
            .iter()
            .filter_map(|&(a, b)| self.screen.bytes_of(a, b))
            .reduce(|(p, q), (x, y)| (p.min(x), q.max(y)));
        let mut unprompted = false;
        let (prompt, mut command) = match start_line {
            // The same line as the prompt line's text: its split is known.
            Some((row, mut text, Some(cut))) if !exact && row == first => {
                let prompt = self.parse_prompt(&text[..cut]);
                text.drain(..cut);
                (prompt, text)
            }
            _ => {
                let first_cells = ranges
                    .first()
                    .map(|&(a, b)| self.screen.cells(a, b).0)
                    .unwrap_or_default();
                let cut = exact.then(|| {
                    ((input.start_row - first) as usize * self.screen.width().unwrap_or(0)
                        + input.start_col)
                        .min(first_cells.len())
                });
                let end = first_gap_end(&first_cells, cut.unwrap_or(0));
                let (prompt, command) = match cut {
                    Some(cut) if cut <= end => {
                        let (before, mut command) = (
                            cells_text(&first_cells[..cut]),
                            cells_text(&first_cells[cut..end]),
                        );
                        // Text left on the line before the marker (`read -p 'token: '` with
                        // echo off, no newline) pushed a prompt of this session along: the
                        // prompt is that one, not what came before it.
                        let known = self.prompts.iter().find(|p| {
                            !p.is_continuation() && p.text.len() > 2 && command.starts_with(&p.text)
                        });
                        match known {
                            Some(p) => {
                                let p = p.text.clone();
                                command.drain(..p.len());
                                (p, command)
                            }
                            None => (before, command),
                        }
                    }
                    _ => {
                        let text = cells_text(&first_cells[..end]);
                        match prompt::split(&text) {
                            Some(split) => split,
                            // A prompt the user set (`PS1='>> '`), shown as set.
                            None => {
                                match self.set_prompt.as_deref().filter(|p| text.starts_with(*p)) {
                                    Some(p) => (p.to_string(), text[p.len()..].to_string()),
                                    None => {
                                        unprompted = true;
                                        (String::new(), text)
                                    }
                                }
                            }
                        }
                    }
                };
                (self.parse_prompt(&prompt), command)
            }
        };
        for &(a, b) in ranges.iter().skip(1) {
            command.push('\n');
            // A line editor may move to where a row's text starts instead of writing the
            // indentation (fish indents the body of a block): cells never written before the
            // text are not part of it.
            let (cells, _) = self.screen.cells(a, b);
            let from = cells
                .iter()
                .position(|&c| c != EMPTY)
                .unwrap_or(cells.len());
            command.push_str(&cells_text(&cells[from..first_gap_end(&cells, from)]));
        }
        self.ranges = ranges;
        // zsh leaves keypad mode before it returns a line it accepted, not one it was interrupted in.
        let interrupted = input.ctrl_c || (input.keypad && self.keypad);
        let start = bytes.map_or(input.start_byte, |(a, _)| a.min(input.start_byte));
        // A line that ran with no prompt found before it: where the command starts is a guess.
        if unprompted && !interrupted && !command.trim().is_empty() {
            self.partial.push(Partial {
                reason: "no prompt recognised before this line: what was taken as the command may hold a prompt, or be output".into(),
                byte_start: start,
                byte_end: self.offset_end.max(start + 1),
            });
        }
        self.finish_output(input.start_row.min(first));
        self.accept(
            prompt,
            command,
            interrupted,
            (start, self.offset_end),
            last,
            true,
        );
    }

    /// Text of the logical line `first..=last` up to any right prompt.
    pub(super) fn line_text(&self, first: u64, last: u64) -> String {
        self.screen.text_to_gap(first, last)
    }

    /// A line feed leaves the cursor's row: without trusted markers, that may end an input line.
    pub(super) fn before_line_feed(&mut self) {
        if self.alt || self.input.is_some() || self.markers_trusted() {
            return;
        }
        let (first, last) = self.screen.logical_line(self.screen.cursor_row());
        let bytes = self.screen.bytes_of(first, last);
        let Some((_, end)) = bytes else {
            return;
        };
        if end <= self.last_accept_byte {
            return;
        }
        let text = self.line_text(first, last);
        let Some((prompt_text, command)) = prompt::split(&text) else {
            return;
        };
        self.truncated = self.screen.truncated(first, last);
        let prompt = self.parse_prompt(&prompt_text);
        if !(self.prompt_expected(&prompt) || self.shell_died(&prompt))
            || self.printed_by_last_command(text.trim())
        {
            return;
        }
        let trimmed = command.trim_end();
        let ctrl_c = trimmed.ends_with("^C");
        let command = if ctrl_c {
            trimmed.trim_end_matches("^C").to_string()
        } else {
            command
        };
        let start = bytes.map_or(self.offset, |(a, _)| a);
        let mut command = command;
        // A line recalled by a history search in a stream: readline redrew only the part of
        // it that differs from the search's display, with moves the stream does not keep. The
        // line is the last match displayed that begins with what was redrawn.
        if !self.stream_matches.is_empty() {
            let typed = command.trim_end().to_string();
            if let Some(m) = self
                .stream_matches
                .iter()
                .rev()
                .find(|m| m.len() > typed.len() && m.starts_with(&typed) && !typed.is_empty())
            {
                command = m.clone();
            }
            self.partial.push(Partial {
                reason: "a line recalled by a history search in a streamed session, whose cursor moves the stream does not keep: it is read from the search's display".into(),
                byte_start: start,
                byte_end: self.offset_end.max(start + 1),
            });
            self.stream_matches.clear();
        }
        self.stream_searching = false;
        if std::mem::take(&mut self.stream_bs_edit) && self.vi_mode {
            self.partial.push(Partial {
                reason: "a line edited in vi mode in a streamed session, whose cursor moves the stream does not keep: it may be read wrongly".into(),
                byte_start: start,
                byte_end: self.offset_end.max(start + 1),
            });
        }
        self.accept(
            prompt,
            command,
            ctrl_c,
            (start, self.offset_end),
            last,
            false,
        );
    }

    pub(super) fn finish(&mut self) {
        if let Some(input) = self.input.take() {
            if input.printed {
                // Typed, never entered: the session ended under it.
                let (first, last) = self.screen.logical_line(input.last_print_row);
                let (cells, _) = self.screen.cells(first, last);
                let text = cells_text(&cells[..first_gap_end(&cells, 0)]);
                if let Some((p, c)) = prompt::split(&text) {
                    self.accept(
                        Rc::new(Prompt::parse(&p)),
                        c,
                        true,
                        (input.start_byte, self.offset_end),
                        last,
                        true,
                    );
                }
            }
        }
        // Without markers, a prompt line still being typed when the log ends never ran.
        if !self.alt && self.input.is_none() && !self.markers_trusted() {
            let (first, last) = self.screen.logical_line(self.screen.cursor_row());
            let (cells, bytes) = self.screen.cells(first, last);
            let text = cells_text(&cells[..first_gap_end(&cells, 0)]);
            if let (Some((p, c)), Some((a, b))) = (prompt::split(&text), bytes) {
                let prompt = Rc::new(Prompt::parse(&p));
                if !c.trim().is_empty()
                    && b > self.last_accept_byte
                    && self.prompt_expected(&prompt)
                {
                    self.accept(prompt, c, true, (a, b), last, false);
                }
            }
        }
        let row = self.screen.last_row() + 1;
        self.collect_evicted();
        self.close_preamble(row);
        self.finish_output(row);
    }
}

#[cfg(test)]
mod tests {
    #[allow(unused_imports)]
    use crate::replay::tests::{commands, pairs, replay_with, replayed};
    #[allow(unused_imports)]
    use crate::replay::*;

    #[test]
    fn bash_ctrl_c_is_abandoned_and_backspaces_are_applied() {
        let lines = replay_with(
            b"\x1b[?2004h[u@h ~]$ sudo passwd root^C\x1b[?2004l\r\x1b[?2004h\x1b[?2004l\r\r\r\n\x1b[?2004h[u@h ~]$ sudo tail /var/log/secrue\x08\x1b[K\x08\x1b[K\x08\x1b[Kure\r\r\n\x1b[?2004l\r",
            true,
        );
        assert_eq!(lines.len(), 2);
        assert!(lines[0].abandoned);
        assert_eq!(lines[0].command, "sudo passwd root");
        assert!(!lines[1].abandoned);
        assert_eq!(lines[1].command, "sudo tail /var/log/secure");
    }

    #[test]
    fn zsh_right_prompt_and_ctrl_c() {
        let prompt = b"\x1b[1m\x1b[7m%\x1b[27m\x1b[1m\x1b[0m                                                                                                                                           \r \r\r\x1b[0m\x1b[27m\x1b[24m\x1b[J\x1b[36mssm-user@ip-10-1-3-3\x1b[39m:\x1b[34m~\x1b[39m % \x1b[K\x1b[107C\x1b[33m[14:39]\x1b[39m\x1b[114D\x1b[?1h\x1b=\x1b[?2004h";
        let mut bytes = Vec::new();
        bytes.extend_from_slice(prompt);
        bytes.extend_from_slice(b"s\x08sudo rm -rf /var/log\x1b[?2004l\r\r\r\n");
        bytes.extend_from_slice(prompt);
        bytes.extend_from_slice(b"uname -r\x1b[?1l\x1b>\x1b[?2004l\r\r\r\n6.1\r\r\n");
        let lines = replay_with(&bytes, true);
        assert_eq!(lines.len(), 2);
        assert!(lines[0].abandoned, "{:?}", lines[0]);
        assert_eq!(lines[0].command, "sudo rm -rf /var/log");
        assert_eq!(lines[1].command, "uname -r");
        assert!(!lines[1].abandoned);
        assert_eq!(lines[1].output, "6.1");
    }

    #[test]
    fn bracketed_paste_of_two_lines_is_two_commands() {
        let got = commands(
            b"\x1b[?2004h[ssm-user@ip-10-1-2-2 ~]$ \x1b[7mecho pasted one\x1b[27m\r\r\n\r\x1b[7mecho pasted two\x1b[27m\x1b[A\x1b[C\x1b[C\x1b[C\x1b[C\x1b[C\x1b[C\x1b[C\x1b[C\x1b[C\x1b[C\x1b[Cecho pasted one\r\r\n\recho pasted two\r\r\n\x1b[?2004l\rpasted one\r\r\npasted two\r\r\n",
        );
        assert_eq!(
            got,
            pairs(&[
                ("ssm-user", "echo pasted one"),
                ("ssm-user", "echo pasted two")
            ])
        );
    }

    #[test]
    fn heredocs_and_continuations_join_into_one_command() {
        let got = commands(
            b"\x1b[?2004h[u@h ~]$ cat > /tmp/p.sh <<EOF\r\r\n\x1b[?2004l\r\x1b[?2004h> echo patched\r\r\n\x1b[?2004l\r\x1b[?2004h> EOF\r\r\n\x1b[?2004l\r\x1b[?2004h[u@h ~]$ sh /tmp/p.sh && \\\r\r\n\x1b[?2004l\r\x1b[?2004h> rm /tmp/p.sh\r\r\n\x1b[?2004l\rpatched\r\r\n",
        );
        assert_eq!(
            got,
            pairs(&[
                ("u", "cat > /tmp/p.sh <<EOF\necho patched\nEOF"),
                ("u", "sh /tmp/p.sh && \\\nrm /tmp/p.sh")
            ])
        );
    }
}
