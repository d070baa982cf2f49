//! The `check` binary's answers to input that cannot be checked: an exercise that does not
//! exist (exit 2, the list of exercises, before Jaeger is asked anything) and a Jaeger that
//! does not answer (exit 2, one line). Its verdicts against a real Jaeger are tested in
//! xtask/tests/check.rs and, from the image, in xtask/tests/compose_up.rs.

use std::process::{Command, Output};

fn check(args: &[&str], jaeger: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_check"))
        .args(args)
        .env("JAEGER_URL", jaeger)
        .output()
        .unwrap()
}

/// A port leased to this process and bound by nobody: the connection is refused.
fn closed_url() -> String {
    format!("http://127.0.0.1:{}", testkit::free_port())
}

#[test]
fn an_exercise_that_does_not_exist_is_exit_2_with_the_list() {
    for args in [&["16"][..], &["0"], &["99", "--trace", "abc"]] {
        let output = check(args, &closed_url());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(output.stdout.is_empty());
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(
            stderr.starts_with(&format!(
                "check: there is no exercise {}; the exercises are: 1 (The first trace), 2 (",
                args[0]
            )),
            "{stderr}"
        );
        assert!(
            stderr.contains("14 (Two ways Rust loses a trace), 15 (One trace, two languages)"),
            "{stderr}"
        );
    }
}

#[test]
fn a_jaeger_that_does_not_answer_is_one_line_and_exit_2() {
    let url = closed_url();
    let output = check(&["1"], &url);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(output.stdout.is_empty());
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with(&format!("check: cannot reach Jaeger at {url}")),
        "{stderr}"
    );
}

#[test]
fn a_part_that_is_not_a_number_is_refused_by_the_parser() {
    let output = check(&["14", "--part", "x"], &closed_url());
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--part"));
}
