//! `kho import`: a JSON-lines file lands in one collection (records readable with `kho
//! record`/`kho person`, `kho verify` clean, `--json` report); invalid lines are reported by
//! line number without echoing payloads or whole IDs, exit 1, and nothing is imported;
//! custom field names; a second import of the same keys is refused.

mod common;

use std::path::Path;

use common::kho_ok;

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn import_loads_a_file_and_refuses_invalid_lines() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, good, bad) = (tmp.path().join("db"), tmp.path().join("good.jsonl"), tmp.path().join("bad.jsonl"));
    let mut text = String::new();
    for i in 0..500 {
        let id = format!("0791900{:05}", i % 120);
        text.push_str(&format!(
            "{{\"pk\": \"p{i:04}\", \"national_id\": \"{id}\", \"name\": \"Nguyen {i}\", \"n\": {i}}}\n"
        ));
        if i % 100 == 0 {
            text.push('\n'); // blank lines are skipped
        }
    }
    std::fs::write(&good, text).unwrap();
    let report = kho_ok(0, ["--json", "import", s(&dir), "--collection", "tax", s(&good)]).json();
    assert_eq!(report["rows"], 500);
    assert_eq!(report["imported"], true);
    assert_eq!(report["collection"], "tax");
    assert!(report["tables"].as_u64().unwrap() >= 1 && report["sequence"].as_u64().unwrap() > 0);
    let rec = kho_ok(0, ["--json", "record", s(&dir), "tax", "p0007"]).json();
    assert_eq!(rec["record"]["national_id"], "079190000007");
    assert_eq!(rec["record"]["payload"], serde_json::json!({"name": "Nguyen 7", "n": 7}));
    assert_eq!(kho_ok(0, ["--json", "person", s(&dir), "079190000007"]).json()["count"], 5);
    kho_ok(0, ["verify", s(&dir)]);
    let text = kho_ok(0, ["import", s(&dir), "--collection", "tax2", s(&good)]).stdout;
    assert!(text.starts_with("imported 500 records into tax2: "), "{text}");

    // Bad lines: each reported by number, nothing imported, exit 1.
    std::fs::write(
        &bad,
        concat!(
            "{\"pk\": \"ok\", \"national_id\": \"079190001234\", \"secret\": \"Tran Thi Secret\"}\n",
            "{\"pk\": \"b\", \"national_id\": \"999190001234\", \"secret\": \"Tran Thi Secret\"}\n",
            "{\"national_id\": \"079190001234\"}\n",
            "{\"pk\": \"c\"}\n",
            "{\"pk\": [1], \"national_id\": \"079190001234\"}\n",
            "not json\n",
            "[1, 2]\n",
        ),
    )
    .unwrap();
    {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new().append(true).open(&bad).unwrap();
        f.write_all(b"{\"pk\": \"\xff\"}\n").unwrap(); // line 8: not UTF-8
    }
    let run = kho_ok(1, ["import", s(&dir), "--collection", "new", s(&bad)]);
    for line in 2..=8 {
        assert!(run.stderr.contains(&format!("line {line}: ")), "line {line} not reported:\n{}", run.stderr);
    }
    assert!(!run.stderr.contains("line 1:"), "{}", run.stderr);
    assert!(run.stderr.contains("line 8: not UTF-8"), "{}", run.stderr);
    assert!(run.stderr.contains("7 rows invalid; nothing imported"), "{}", run.stderr);
    assert!(!run.stderr.contains("Secret") && !run.stderr.contains("999190001234"), "{}", run.stderr);
    assert_eq!(kho_ok(1, ["record", s(&dir), "new", "ok"]).stdout, "");
    let doc = kho_ok(1, ["--json", "import", s(&dir), "--collection", "new", s(&bad)]).json();
    assert_eq!(doc["imported"], false);
    assert_eq!(doc["invalid"], 7);
    assert_eq!(doc["problems"][0]["line"], 2);

    // Store-level problems (keys already held, repeated keys) by line too.
    let run = kho_ok(1, ["import", s(&dir), "--collection", "tax", s(&good)]);
    assert!(run.stderr.contains("line 1: collection \"tax\" already holds a record"), "{}", run.stderr);
    assert!(run.stderr.contains("... and 400 more"), "{}", run.stderr);

    // Custom field names.
    let custom = tmp.path().join("custom.jsonl");
    std::fs::write(&custom, "{\"plate\": \"59-X1 123.45\", \"cccd\": \"001185000042\", \"model\": \"Wave\"}\n")
        .unwrap();
    kho_ok(0, ["import", s(&dir), "--collection", "vehicle", "--pk-field", "plate", "--id-field", "cccd", s(&custom)]);
    let rec = kho_ok(0, ["--json", "record", s(&dir), "vehicle", "59-X1 123.45"]).json();
    assert_eq!(rec["record"]["payload"], serde_json::json!({"model": "Wave"}));
    kho_ok(0, ["verify", s(&dir)]);
}
