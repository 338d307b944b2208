//! The S3 session-log parser: any body between the headers and footers `script` writes (util-linux
//! before and after 2.35), as ingest reads it. No panic; every transcript's byte ranges fit.
#![no_main]

use indexer::formats::{parse, Parsed};
use libfuzzer_sys::fuzz_target;

const HEADERS: &[&[u8]] = &[
    b"Script started on 2026-01-01 00:00:00+0000\n",
    b"Script started on 2026-01-01 00:00:00+00:00 [COMMAND=\"cat /var/lib/amazon/ssm/i-0123456789abcdef0/session/orchestration/ann-0123456789abcdef0/Standard_Stream/ipcTempFile.log\" <not executed on terminal>]\n",
    b"",
];
const FOOTERS: &[&[u8]] = &[
    b"\nScript done on 2026-01-01 00:10:00+0000\n",
    b"\nScript done on 2026-01-01 00:10:00+00:00 [COMMAND_EXIT_CODE=\"0\"]\n",
    b"",
];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let mut bytes = HEADERS[usize::from(pick & 3) % HEADERS.len()].to_vec();
    bytes.extend_from_slice(body);
    bytes.extend_from_slice(FOOTERS[usize::from(pick >> 2) % FOOTERS.len()]);
    if let Ok(Parsed::Transcripts(ts)) = parse("logs/bob-0a1b2c3d4e5f6a7b8.log", &bytes) {
        for t in ts {
            assert!(t.body_offset as usize + t.body.len() <= bytes.len());
        }
    }
});
