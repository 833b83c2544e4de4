//! The corpus of bad inputs in `tests/bad-inputs/`: each directory holds a broken file (a
//! site file, a policy, a CSV list or a command file) and `expected.txt`: the exit status,
//! then the exact messages (file, line, what was expected) that must appear; a line
//! `once: TEXT` must appear exactly once. An `args.txt` (one argument per line, `{site}` and
//! `{case}` replaced) gives the command line when the file alone does not.

use super::util::*;

#[test]
fn every_bad_input_gives_its_exact_error() {
    let corpus = repo().join("tests/bad-inputs");
    let mut cases: Vec<_> = std::fs::read_dir(&corpus)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    cases.sort();
    assert!(cases.len() >= 15, "the corpus has {} cases", cases.len());
    for case in cases {
        let name = case.file_name().unwrap().to_string_lossy().into_owned();
        let expected = std::fs::read_to_string(case.join("expected.txt")).unwrap();
        let mut lines = expected.lines();
        let status: i32 = lines
            .next()
            .unwrap()
            .strip_prefix("exit ")
            .unwrap()
            .parse()
            .unwrap();
        let (_tmp, site) = demo_copy();
        let s = site.to_str().unwrap().to_string();
        let mut args: Vec<String> = vec![
            "exec".into(),
            "--site".into(),
            s.clone(),
            "--no-save".into(),
            "server list".into(),
        ];
        for f in std::fs::read_dir(&case).unwrap().map(|e| e.unwrap().path()) {
            let file = f.file_name().unwrap().to_string_lossy().into_owned();
            match file.as_str() {
                "topology.yaml" | "registry.yaml" | "sessions.jsonl" => {
                    std::fs::copy(&f, site.join(&file)).unwrap();
                }
                "policy.yaml" => {
                    args = vec![
                        "validate".into(),
                        "--site".into(),
                        s.clone(),
                        f.display().to_string(),
                    ];
                }
                "list.csv" | "commands.pdadmin" => {
                    args = vec![
                        "run".into(),
                        "--site".into(),
                        s.clone(),
                        "--no-save".into(),
                        "-q".into(),
                        "--format".into(),
                        "jsonl".into(),
                        f.display().to_string(),
                    ];
                }
                _ => {}
            }
        }
        if let Ok(given) = std::fs::read_to_string(case.join("args.txt")) {
            args = given
                .lines()
                .map(|a| {
                    a.replace("{site}", &s)
                        .replace("{case}", case.to_str().unwrap())
                })
                .collect();
        }
        let out = run(&args.iter().map(String::as_str).collect::<Vec<_>>(), None);
        let all = format!("{}{}", stdout(&out), stderr(&out));
        assert_eq!(code(&out), status, "{name}: {all}");
        for want in lines {
            if let Some(once) = want.strip_prefix("once: ") {
                assert_eq!(
                    all.matches(once).count(),
                    1,
                    "{name}: not once\n  {once}\nin\n{all}"
                );
            } else {
                assert!(all.contains(want), "{name}: missing\n  {want}\nin\n{all}");
            }
        }
    }
}
