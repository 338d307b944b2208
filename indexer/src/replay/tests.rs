use super::*;

fn replay(bytes: &[u8]) -> Vec<InputLine> {
    let mut r = Replayer::new(ReplayOptions::default());
    r.feed(bytes, 0);
    r.finish()
}

fn commands(bytes: &[u8]) -> Vec<(String, String)> {
    replay(bytes)
        .into_iter()
        .filter(|l| !l.abandoned)
        .map(|l| (l.run_as, l.command))
        .collect()
}

#[test]
fn smoke() {
    let got = commands(b"\x1b[?2004h[u@h ~]$ ls\r\r\n\x1b[?2004l\rfile\r\r\n\x1b[?2004h[u@h ~]$ ");
    assert_eq!(got, vec![("u".to_string(), "ls".to_string())]);
}
