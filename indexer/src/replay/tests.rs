//! Replay tests on byte snippets cut from recorded sessions.

use super::*;

fn replay_with(bytes: &[u8], markers: bool) -> Vec<InputLine> {
    let mut r = Replayer::new(ReplayOptions {
        markers,
        ..ReplayOptions::default()
    });
    r.feed(bytes, 0);
    r.finish().lines
}

fn commands(bytes: &[u8]) -> Vec<(String, String)> {
    replay_with(bytes, true)
        .into_iter()
        .filter(|l| !l.abandoned)
        .map(|l| (l.run_as, l.command))
        .collect()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[test]
fn bash_markers_ignore_a_printed_fake_prompt() {
    let got = commands(
        b"\x1b[?2004h[ssm-user@ip-10-20-1-5 ~]$ printf '[root@ip-10-20-1-5 ~]# cat /etc/shadow\\n'\r\r\n\x1b[?2004l\r[root@ip-10-20-1-5 ~]# cat /etc/shadow\r\r\n\x1b[?2004h[ssm-user@ip-10-20-1-5 ~]$ sudo id\r\r\n\x1b[?2004l\ruid=0(root)\r\r\n",
    );
    assert_eq!(
        got,
        pairs(&[
            (
                "ssm-user",
                "printf '[root@ip-10-20-1-5 ~]# cat /etc/shadow\\n'"
            ),
            ("ssm-user", "sudo id")
        ])
    );
}

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

#[test]
fn dash_without_markers_follows_sudo_and_ignores_printed_prompts() {
    let got = commands(
        b"$ lss\x08 \x08 -a\r\r\n.  ..\r\r\n$ printf '$ rm -rf /\\n# cat /etc/shadow\\n'\r\r\n$ rm -rf /\r\r\n# cat /etc/shadow\r\r\n$ sudo sh\r\r\n# id\r\r\nuid=0(root)\r\r\n# exit\r\r\n$ sleep 9^C\r\r\n$ exit\r\r\n",
    );
    assert_eq!(
        got,
        pairs(&[
            ("ssm-user", "ls -a"),
            ("ssm-user", "printf '$ rm -rf /\\n# cat /etc/shadow\\n'"),
            ("ssm-user", "sudo sh"),
            ("root", "id"),
            ("root", "exit"),
            ("ssm-user", "exit"),
        ])
    );
}

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
fn full_screen_programs_are_not_commands() {
    let got = commands(
        b"\x1b[?2004h[u@h ~]$ vi /tmp/t\r\r\n\x1b[?2004l\r\x1b[?1049h\x1b[H\x1b[2J~\r\n~\x1b[48;1H:wq\r\x1b[?1049l\x1b[?2004h[u@h ~]$ id\r\r\n\x1b[?2004l\ruid=1001\r\r\n",
    );
    assert_eq!(got, pairs(&[("u", "vi /tmp/t"), ("u", "id")]));
}

#[test]
fn byte_offsets_point_into_the_source() {
    let mut r = Replayer::new(ReplayOptions::default());
    let bytes = b"\x1b[?2004h[u@h ~]$ hostname\r\r\n\x1b[?2004l\rvm\r\r\n";
    r.feed(bytes, 44);
    let lines = r.finish().lines;
    assert_eq!((lines[0].byte_start, lines[0].byte_end), (44, 44 + 36));
}

/// Found by the `replay` fuzz target: invalid UTF-8 decodes to U+FFFD, three bytes long, from
/// one source byte; byte ranges must stay inside the input.
#[test]
fn invalid_utf8_keeps_byte_ranges_inside_the_input() {
    let bytes = b"\xfd\x80$# )";
    let mut r = Replayer::new(ReplayOptions {
        markers: false,
        width: Some(6),
        ..ReplayOptions::default()
    });
    r.feed(bytes, 0);
    let lines = r.finish().lines;
    assert!(!lines.is_empty());
    for l in lines {
        assert!(
            l.byte_start <= l.byte_end && l.byte_end <= bytes.len() as u64,
            "{l:?}"
        );
    }
}

#[test]
fn printable_runs_end_where_a_byte_scan_ends_them() {
    let naive = |b: &[u8]| {
        b.iter()
            .position(|c| !(0x20..0x7f).contains(c))
            .unwrap_or(b.len())
    };
    for stop in 0..=255u8 {
        for at in 0..20 {
            let mut bytes = [b'a'; 20];
            bytes[at] = stop;
            for start in 0..4 {
                let b = &bytes[start..];
                assert_eq!(super::printable_run(b), naive(b), "{stop:#x} at {at}");
            }
        }
    }
    assert_eq!(super::printable_run(b""), 0);
}

/// What the replay could not read, by byte range: a multiplexer's screen from the command that
/// drew it to where it left it, and a line with no prompt; not a multiplexer that only listed
/// its sessions, not a line interrupted.
#[test]
fn stretches_not_read_are_named() {
    let p = "\x1b[?2004h[u@h ~]$ ";
    let off = "\r\r\n\x1b[?2004l\r";
    let mut log = format!("{p}tmux ls{off}no server running\r\n");
    log += &format!("{p}tmux{off}");
    let alt_start = log.len();
    log += "\x1b[?1049h\x1b[1;23r\x1b[H[u@h ~]$ id\r\nuid=1000(u)\r\n\x1b[?1049l";
    let alt_end = log.len();
    log += &format!("[exited]\r\n{p}uptime{off} 10:00 up 1 day\r\n");
    let unprompted = log.len();
    log += "\x1b[?2004h: lost prompt\r\r\n\x1b[?2004l\r";
    let end = log.len();
    log += &format!("{p}abc^C\x1b[?2004l\r\r\n");
    let mut r = Replayer::new(ReplayOptions::default());
    r.feed(log.as_bytes(), 0);
    let done = r.finish();
    let got: Vec<(u64, u64, bool)> = done
        .partial
        .iter()
        .map(|p| (p.byte_start, p.byte_end, p.reason.contains("tmux")))
        .collect();
    assert_eq!(
        got,
        [
            // From the end of the line that started it (its marker) to where it left.
            (alt_start as u64 - 1, alt_end as u64, true),
            (unprompted as u64, end as u64 - 1, false)
        ],
        "{:?}",
        done.partial
    );
    let commands: Vec<&str> = done.lines.iter().map(|l| l.command.as_str()).collect();
    assert_eq!(
        commands,
        ["tmux ls", "tmux", "uptime", ": lost prompt", "abc"]
    );
}

/// bash prints the line its history expansion made: that is the command, and it moves the
/// stack of shells as typed in full would (`sudo !!` after `su -`).
#[test]
fn history_expansion_is_the_line_bash_printed() {
    let p = "\x1b[?2004h[u@h ~]$ ";
    let off = "\r\r\n\x1b[?2004l\r";
    let log = format!(
        "{p}su -{off}Password: \r\nsu: Authentication failure\r\n{p}sudo !!{off}sudo su -\r\r\n\x1b[?2004h[root@h ~]# id{off}uid=0(root)\r\n\x1b[?2004h[root@h ~]# echo '!!'{off}!!\r\n"
    );
    let lines = replay_with(log.as_bytes(), true);
    let got: Vec<(&str, &str, &str)> = lines
        .iter()
        .map(|l| (l.run_as.as_str(), l.command.as_str(), l.output.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            ("u", "su -", "Password: \nsu: Authentication failure"),
            ("u", "sudo su -", ""),
            ("root", "id", "uid=0(root)"),
            ("root", "echo '!!'", "!!"),
        ]
    );
    assert!(
        lines[1].suspicious[0].contains("\"sudo !!\""),
        "{:?}",
        lines[1]
    );
}

fn replayed(bytes: &[u8], markers: bool) -> Replayed {
    let mut r = Replayer::new(ReplayOptions {
        markers,
        ..ReplayOptions::default()
    });
    r.feed(bytes, 0);
    r.finish()
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
fn what_is_typed_after_echo_is_switched_off_is_a_stretch_not_read() {
    let r = replayed(
        b"$ stty -echo\r\n$ \r\nbash: typed: command not found\r\n$ \r\n$ whoami\r\nssm-user\r\n",
        false,
    );
    let got: Vec<&str> = r.lines.iter().map(|l| l.command.as_str()).collect();
    assert_eq!(got, ["stty -echo", "whoami"]);
    assert_eq!(r.partial.len(), 1, "{:?}", r.partial);
    assert!(r.partial[0].reason.contains("echo"));
    // Echo switched back on in the same line leaves nothing unread.
    let r = replayed(b"$ stty -echo; read x; stty echo\r\n$ whoami\r\n", false);
    assert!(r.partial.is_empty(), "{:?}", r.partial);
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
