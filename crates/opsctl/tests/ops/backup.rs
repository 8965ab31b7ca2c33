//! scripts/backup.sh and scripts/restore.sh: a database with data survives the round
//! trip, a non-empty target is refused without --force, old dumps are deleted.

use crate::helpers::{customer_db, database_url};
use std::path::{Path, PathBuf};
use std::process::Command;

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../scripts")
        .join(name)
}

fn run(name: &str, args: &[&str]) -> std::process::Output {
    Command::new("bash")
        .arg(script(name))
        .args(args)
        .output()
        .expect("script runs")
}

async fn snapshot(url: &str) -> Vec<(String, String)> {
    let pool = opsctl::db::connect(url, "snapshot")
        .await
        .expect("connects");
    let rows = sqlx::query_as("SELECT username, password_hash FROM managers ORDER BY username")
        .fetch_all(&pool)
        .await
        .expect("managers read");
    pool.close().await;
    rows
}

#[tokio::test]
async fn a_backup_restores_into_another_database_with_the_same_data() {
    let (source, source_name) = customer_db().await;
    for user in ["ann", "ben", "cid"] {
        opsctl::managers::create(&source, user, &["MANAGER".into()], "a-long-password")
            .await
            .expect("manager created");
    }
    source.close().await;
    let dir = std::env::temp_dir().join(platform::testing::unique_name("ops_backups"));
    std::fs::create_dir_all(&dir).expect("dir");
    let old = dir.join("customer_db-20000101T000000Z.dump");
    let recent = dir.join("customer_db-20990101T000000Z.dump");
    std::fs::write(&old, b"old").expect("old dump");
    std::fs::write(&recent, b"recent").expect("recent dump");
    let set_age = |path: &Path, days: u32| {
        let status = Command::new("touch")
            .args(["-d", &format!("{days} days ago")])
            .arg(path)
            .status()
            .expect("touch");
        assert!(status.success());
    };
    set_age(&old, 20);
    set_age(&recent, 10);

    let source_url = database_url(&source_name);
    let dir_arg = dir.to_str().expect("utf-8 path");
    let backup = run("backup.sh", &["--dir", dir_arg, "--database", &source_url]);
    assert!(
        backup.status.success(),
        "{}",
        String::from_utf8_lossy(&backup.stderr)
    );
    assert!(!old.exists(), "a dump older than the retention is deleted");
    assert!(recent.exists(), "a 10-day-old dump is kept");
    let dump = std::fs::read_dir(&dir)
        .expect("listed")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.to_string_lossy().contains(&source_name))
        .expect("a dump of the database");

    let target_name = platform::testing::unique_name("ops");
    let target_url = database_url(&target_name);
    let dump_arg = dump.to_str().expect("utf-8 path");
    let restore = run("restore.sh", &[dump_arg, "--database", &target_url]);
    assert!(
        restore.status.success(),
        "{}",
        String::from_utf8_lossy(&restore.stderr)
    );
    let expected = snapshot(&source_url).await;
    assert_eq!(expected.len(), 3);
    assert_eq!(snapshot(&target_url).await, expected);

    let again = run("restore.sh", &[dump_arg, "--database", &target_url]);
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("--force"));
    let forced = run(
        "restore.sh",
        &[dump_arg, "--database", &target_url, "--force"],
    );
    assert!(
        forced.status.success(),
        "{}",
        String::from_utf8_lossy(&forced.stderr)
    );
    assert_eq!(snapshot(&target_url).await, expected);

    let short = run(
        "backup.sh",
        &[
            "--dir",
            dir_arg,
            "--retention-days",
            "7",
            "--database",
            &source_url,
        ],
    );
    assert_eq!(
        short.status.code(),
        Some(2),
        "a retention under 15 days is refused"
    );
    std::fs::remove_dir_all(&dir).ok();
}
