//! The escape sequences shells and line editors send most, read whole without a state machine.
//!
//! Cursor moves, erases, insert/delete characters, mode switches (`CSI ? 2004 h`) and two-byte
//! `ESC x` sequences, and the window titles bash sets at every prompt (`OSC 0 ; title BEL`),
//! make up nearly every escape in a shell session. [`parse`] recognises them when the whole
//! sequence is at hand and says how long it is; anything else (DCS strings, sub-parameters,
//! control bytes inside a sequence, a sequence cut by the end of the buffer) is left to the
//! [`vte`] parser, which handles every case the same way a terminal does.

/// Most parameters read by the fast path; longer sequences go to the parser.
pub const MAX_PARAMS: usize = 16;

/// Most `;`-separated parameters of an OSC string read by the fast path (vte keeps as many).
pub const MAX_OSC_PARAMS: usize = 16;

/// A complete escape sequence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seq<'a> {
    /// `CSI [private] params [intermediates] action`; a private marker (`?`, `>`, `=`, `<`)
    /// comes first among the intermediates, as vte reports it.
    Csi {
        /// First sub-parameter of each parameter (empty parameters read as 0).
        params: Params,
        /// Private marker and intermediate bytes.
        intermediates: &'a [u8],
        /// The final byte.
        action: char,
    },
    /// `OSC params ; … (BEL | ESC \\)`: an operating system command, such as a window title.
    Osc {
        /// Its body, between `ESC ]` and the terminator (see [`osc_params`]).
        body: &'a [u8],
        /// Ended by BEL; otherwise by `ESC \\`, which vte then reports as `ESC \\` itself.
        bell: bool,
    },
    /// `ESC [intermediates] byte`.
    Esc {
        /// Intermediate bytes (`(` of `ESC ( B`).
        intermediates: &'a [u8],
        /// The final byte.
        byte: u8,
    },
}

/// Parameters of a control sequence, without allocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Params {
    values: [u16; MAX_PARAMS],
    len: usize,
}

impl std::ops::Deref for Params {
    type Target = [u16];

    fn deref(&self) -> &[u16] {
        &self.values[..self.len]
    }
}

/// The `;`-separated parameters of an OSC string's body, as vte splits them; `None` when there
/// are more than [`MAX_OSC_PARAMS`] (vte drops the rest: the parser handles those).
pub fn osc_params<'a>(body: &'a [u8], out: &mut [&'a [u8]; MAX_OSC_PARAMS]) -> Option<usize> {
    let mut n = 0;
    for part in body.split(|&b| b == b';') {
        if n == MAX_OSC_PARAMS {
            return None;
        }
        out[n] = part;
        n += 1;
    }
    Some(n)
}

/// Read the sequence at the start of `bytes` (which starts with ESC): its length and meaning,
/// or `None` when the parser has to handle it.
pub fn parse(bytes: &[u8]) -> Option<(usize, Seq<'_>)> {
    debug_assert_eq!(bytes.first(), Some(&0x1b));
    match *bytes.get(1)? {
        b'[' => csi(bytes),
        b']' => osc(bytes),
        // DCS, SOS, PM, APC: strings, for the parser.
        b'P' | b'X' | b'^' | b'_' => None,
        b @ 0x30..=0x7e => Some((
            2,
            Seq::Esc {
                intermediates: &[],
                byte: b,
            },
        )),
        0x20..=0x2f => {
            let mut i = 2;
            while bytes.get(i).is_some_and(|b| (0x20..=0x2f).contains(b)) {
                i += 1;
            }
            match *bytes.get(i)? {
                b @ 0x30..=0x7e => Some((
                    i + 1,
                    Seq::Esc {
                        intermediates: &bytes[1..i],
                        byte: b,
                    },
                )),
                _ => None,
            }
        }
        _ => None,
    }
}

/// An OSC string of bytes vte keeps as they are (no control byte inside), ended by BEL or
/// `ESC \\`, with at most [`MAX_OSC_PARAMS`] parameters.
fn osc(bytes: &[u8]) -> Option<(usize, Seq<'_>)> {
    let body = &bytes[2..];
    let end = body.iter().position(|&b| b < 0x20)?;
    let (len, bell) = match body[end] {
        0x07 => (2 + end + 1, true),
        0x1b if body.get(end + 1) == Some(&b'\\') => (2 + end + 2, false),
        _ => return None,
    };
    if body[..end].iter().filter(|&&b| b == b';').count() >= MAX_OSC_PARAMS {
        return None;
    }
    Some((
        len,
        Seq::Osc {
            body: &body[..end],
            bell,
        },
    ))
}

fn csi(bytes: &[u8]) -> Option<(usize, Seq<'_>)> {
    let mut i = 2;
    let private_start = i;
    if bytes
        .get(i)
        .is_some_and(|b| matches!(b, b'?' | b'>' | b'=' | b'<'))
    {
        i += 1;
    }
    let private_end = i;
    let mut params = Params {
        values: [0; MAX_PARAMS],
        len: 0,
    };
    let mut value: u32 = 0;
    loop {
        let b = *bytes.get(i)?;
        match b {
            b'0'..=b'9' => {
                value = (value * 10 + u32::from(b - b'0')).min(u32::from(u16::MAX));
            }
            b';' => {
                if params.len == MAX_PARAMS {
                    return None;
                }
                params.values[params.len] = value as u16;
                params.len += 1;
                value = 0;
            }
            _ => break,
        }
        i += 1;
    }
    // The last (or only, possibly empty) parameter: vte reports `CSI K` as one parameter, 0.
    if params.len == MAX_PARAMS {
        return None;
    }
    params.values[params.len] = value as u16;
    params.len += 1;
    let inter_start = i;
    while bytes.get(i).is_some_and(|b| (0x20..=0x2f).contains(b)) {
        i += 1;
    }
    let action = *bytes.get(i)?;
    if !(0x40..=0x7e).contains(&action) {
        // Sub-parameters, a control byte inside the sequence, a malformed one: the parser's.
        return None;
    }
    // The private marker and the intermediates are reported together, as vte does; the fast
    // path only takes one of them at a time.
    let intermediates = match (private_end > private_start, i > inter_start) {
        (false, _) => &bytes[inter_start..i],
        (true, false) => &bytes[private_start..private_end],
        (true, true) => return None,
    };
    Some((
        i + 1,
        Seq::Csi {
            params,
            intermediates,
            action: char::from(action),
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What vte reports for the same bytes: (params, intermediates, action) of each CSI.
    fn vte_csi(bytes: &[u8]) -> Vec<(Vec<u16>, Vec<u8>, char)> {
        struct P(Vec<(Vec<u16>, Vec<u8>, char)>);
        impl vte::Perform for P {
            fn csi_dispatch(&mut self, params: &vte::Params, i: &[u8], _: bool, a: char) {
                self.0
                    .push((params.iter().map(|p| p[0]).collect(), i.to_vec(), a));
            }
        }
        let mut p = P(Vec::new());
        vte::Parser::new().advance(&mut p, bytes);
        p.0
    }

    #[test]
    fn reads_what_vte_reads() {
        for seq in [
            &b"\x1b[K"[..],
            b"\x1b[0K",
            b"\x1b[2J",
            b"\x1b[?2004h",
            b"\x1b[?2004l",
            b"\x1b[?1049h",
            b"\x1b[?1;2004h",
            b"\x1b[12;40H",
            b"\x1b[;5H",
            b"\x1b[3P",
            b"\x1b[@",
            b"\x1b[1;32m",
            b"\x1b[38;5;208m",
            b"\x1b[>4;1m",
            b"\x1b[99999C",
            b"\x1b[ q",
        ] {
            let (len, got) = parse(seq).unwrap_or_else(|| panic!("{seq:?}"));
            assert_eq!(len, seq.len(), "{seq:?}");
            let Seq::Csi {
                params,
                intermediates,
                action,
            } = got
            else {
                panic!("{seq:?} is a CSI");
            };
            assert_eq!(
                vec![(params.to_vec(), intermediates.to_vec(), action)],
                vte_csi(seq),
                "{seq:?}"
            );
        }
    }

    #[test]
    fn leaves_the_rest_to_the_parser() {
        for seq in [
            &b"\x1b"[..],
            b"\x1b[",
            b"\x1b[12",
            b"\x1b[1;2",
            b"\x1b]0;title",
            b"\x1b]0;ti\x08tle\x07",
            b"\x1b]0;title\x1b[K",
            b"\x1b]0;1;2;3;4;5;6;7;8;9;10;11;12;13;14;15;16\x07",
            b"\x1bP1$r\x1b\\",
            b"\x1b[38:5:208m",
            b"\x1b[1\x08C",
            b"\x1b[1;2;3;4;5;6;7;8;9;10;11;12;13;14;15;16;17m",
        ] {
            assert_eq!(parse(seq), None, "{seq:?}");
        }
    }

    /// What vte reports for the same bytes: OSC parameters, bell, and any ESC after them.
    #[allow(clippy::type_complexity)]
    fn vte_osc(bytes: &[u8]) -> (Vec<(Vec<Vec<u8>>, bool)>, Vec<u8>) {
        struct P(Vec<(Vec<Vec<u8>>, bool)>, Vec<u8>);
        impl vte::Perform for P {
            fn osc_dispatch(&mut self, params: &[&[u8]], bell: bool) {
                self.0
                    .push((params.iter().map(|p| p.to_vec()).collect(), bell));
            }
            fn esc_dispatch(&mut self, _: &[u8], _: bool, byte: u8) {
                self.1.push(byte);
            }
        }
        let mut p = P(Vec::new(), Vec::new());
        vte::Parser::new().advance(&mut p, bytes);
        (p.0, p.1)
    }

    #[test]
    fn reads_osc_strings_as_vte_does() {
        for seq in [
            &b"\x1b]0;ssm-user@ip-10-0-1-5:~\x07"[..],
            b"\x1b]2;title\x1b\\",
            b"\x1b]7;file://host/home/ec2-user\x07",
            b"\x1b]\x07",
            b"\x1b];;\x07",
            b"\x1b]0;caf\xc3\xa9 \xff\x07",
            b"\x1b]1;2;3;4;5;6;7;8;9;10;11;12;13;14;15;16\x07",
        ] {
            let (len, got) = parse(seq).unwrap_or_else(|| panic!("{seq:?}"));
            assert_eq!(len, seq.len(), "{seq:?}");
            let Seq::Osc { body, bell } = got else {
                panic!("{seq:?} is an OSC");
            };
            let mut split = [&[][..]; MAX_OSC_PARAMS];
            let n = osc_params(body, &mut split).unwrap_or_else(|| panic!("{seq:?}"));
            let params: Vec<Vec<u8>> = split[..n].iter().map(|p| p.to_vec()).collect();
            let after = if bell { vec![] } else { vec![b'\\'] };
            assert_eq!((vec![(params, bell)], after), vte_osc(seq), "{seq:?}");
        }
    }

    #[test]
    fn two_byte_and_charset_sequences() {
        assert_eq!(
            parse(b"\x1b7rest"),
            Some((
                2,
                Seq::Esc {
                    intermediates: &[],
                    byte: b'7'
                }
            ))
        );
        assert_eq!(
            parse(b"\x1b(B"),
            Some((
                3,
                Seq::Esc {
                    intermediates: b"(",
                    byte: b'B'
                }
            ))
        );
    }
}
