//! Replay tests on byte snippets cut from recorded sessions, across the parts; the helpers
//! the parts' own tests use.

use super::*;

pub(super) fn replay_with(bytes: &[u8], markers: bool) -> Vec<InputLine> {
    replayed(bytes, markers).lines
}

pub(super) fn commands(bytes: &[u8]) -> Vec<(String, String)> {
    replay_with(bytes, true)
        .into_iter()
        .filter(|l| !l.abandoned)
        .map(|l| (l.run_as, l.command))
        .collect()
}

pub(super) fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
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

pub(super) fn replayed(bytes: &[u8], markers: bool) -> Replayed {
    let mut r = Replayer::new(ReplayOptions {
        markers,
        ..ReplayOptions::default()
    });
    r.feed(bytes, 0);
    r.finish()
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
