//! The output escaper: any text, as a log could hold it, made safe for each output. What each
//! promises is asserted: nothing hidden in a terminal cell, CSV, HTML or Markdown; no markup in
//! HTML; one code span in Markdown, with no line break; JSON that reads back as the same text.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let s = String::from_utf8_lossy(data);
    let s = s.as_ref();
    let hidden = |out: &str| out.chars().any(escape::is_hidden);
    for out in [
        escape::visible(s),
        escape::cell(s),
        escape::csv(s),
        escape::time(s),
        escape::address(s),
    ] {
        assert!(!hidden(&out), "{out:?}");
    }
    assert!(!escape::cell(s).contains(['\n', '\r']));
    assert!(!escape::csv(s).starts_with(['=', '+', '-', '@']));
    let html = escape::html(s);
    assert!(!hidden(&html) && !html.contains(['<', '>', '"', '\'']), "{html:?}");
    for in_table in [false, true] {
        let md = escape::md(s, in_table);
        assert!(!hidden(&md) && !md.contains(['\n', '\r']), "{md:?}");
        if md.is_empty() {
            assert!(s.is_empty());
            continue;
        }
        // One code span: a fence, a body with no run of backticks as long, the same fence.
        let fence = md.chars().take_while(|&c| c == '`').count();
        assert!(md.len() > 2 * fence && md.ends_with(&"`".repeat(fence)), "{md:?}");
        let body = &md[fence..md.len() - fence];
        let mut run = 0;
        for c in body.chars() {
            run = if c == '`' { run + 1 } else { 0 };
            assert!(run < fence, "{md:?}");
        }
        if in_table {
            assert!(!body.replace("\\|", "").contains('|'), "{md:?}");
        }
    }
    let json = escape::json(serde_json::to_string(s).unwrap());
    assert!(!hidden(&json.replace(['\n', '\r', '\t'], "")), "{json:?}");
    assert_eq!(serde_json::from_str::<String>(&json).unwrap(), s);
});
