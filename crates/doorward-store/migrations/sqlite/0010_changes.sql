-- Changes that other processes' read caches must hear of (`sqlite/changes.rs`), in commit order:
-- SQLite serializes writers, so `seq` grows with each commit and a rolled-back row leaves no gap.
CREATE TABLE changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    change TEXT NOT NULL
);
