//! The pdadmin parser and the command-file reader: no input panics, and every command that
//! parses prints to text that parses back to the same command.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smsrefresh::command::parse;
use smsrefresh::command::reader::CommandReader;

fuzz_target!(|data: &[u8]| {
    for entry in CommandReader::new(data) {
        let Ok(smsrefresh::command::reader::Entry::Command { text, .. }) = entry else {
            continue;
        };
        if let Ok(cmd) = parse(&text) {
            assert_eq!(parse(&cmd.to_string()).as_ref(), Ok(&cmd));
        }
    }
});
